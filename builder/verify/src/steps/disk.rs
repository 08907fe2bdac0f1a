//! Step 5: the disk image's parts against the build report. A bundle does
//! not carry the disk image itself (most of it is empty space, and its
//! root and hash tree are artifacts already); it carries what else the
//! disk is assembled from: the unsigned UKI and systemd-boot the report
//! describes, and, when the image was signed for Secure Boot, the signed
//! pair with the db certificate. This step checks that every part is the
//! one the build wrote, and that each signed file is its unsigned self with
//! an Authenticode signature added and not one other byte changed, so the
//! far side can assemble a disk image that is byte for byte the build's.

use std::path::Path;

use airlock_format::names::{bundle, image};
use airlock_format::report::{Disk, Report};

use crate::manifest::{FileEntry, Manifest, paths};
use crate::read::{LogicalReader, read_listed};
use crate::{Rejection, VerifyError};

/// The largest build report read.
const MAX_REPORT: u64 = 64 << 20;

/// What step 5 proved.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    /// The bundle carries a disk image's parts.
    pub disk: bool,
    /// And the Secure Boot signed boot files.
    pub secure_boot: bool,
}

/// The bundle paths of the disk parts: (unsigned, signed).
fn boot_paths() -> Vec<(String, String)> {
    image::DISK_PARTS
        .iter()
        .map(|name| {
            (
                paths::artifact(name),
                format!("{}/{name}", bundle::SECURE_BOOT),
            )
        })
        .collect()
}

pub(crate) fn check(bundle_dir: &Path, manifest: &Manifest) -> Result<Checked, VerifyError> {
    let carried: Vec<&FileEntry> = manifest
        .files
        .iter()
        .filter(|f| {
            boot_paths().iter().any(|(u, _)| *u == f.path)
                || f.path
                    .strip_prefix(bundle::SECURE_BOOT)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .collect();
    let report = match manifest.file(paths::REPORT) {
        Some(_) => {
            let bytes = read_listed(bundle_dir, manifest, paths::REPORT, MAX_REPORT)?;
            Report::parse(&bytes).map_err(|e| Rejection::ReportUnreadable {
                reason: e.to_string(),
            })?
        }
        None if carried.is_empty() => return Ok(Checked::default()),
        None => {
            return Err(Rejection::MissingFile {
                path: paths::REPORT.to_owned(),
            }
            .into());
        }
    };
    let Some(disk) = &report.disk else {
        return match carried.first() {
            Some(entry) => Err(Rejection::DiskPartUnexpected {
                path: entry.path.clone(),
            }
            .into()),
            None => Ok(Checked::default()),
        };
    };
    check_parts(manifest, &report, disk)?;
    let secure_boot = carried
        .iter()
        .any(|f| f.path.starts_with(bundle::SECURE_BOOT));
    if secure_boot {
        check_signed(bundle_dir, manifest)?;
    }
    Ok(Checked {
        disk: true,
        secure_boot,
    })
}

/// Every part the disk is assembled from, with the report's digest.
fn check_parts(manifest: &Manifest, report: &Report, disk: &Disk) -> Result<(), Rejection> {
    let mut parts = vec![
        (paths::artifact(image::UKI), disk.uki.sha256.clone()),
        (
            paths::artifact(image::BOOT_LOADER),
            disk.boot_loader.sha256.clone(),
        ),
    ];
    for name in [image::EROFS, image::VERITY] {
        let built = report
            .artifact(name)
            .ok_or_else(|| Rejection::ReportUnreadable {
                reason: format!("it describes a disk image but lists no {name}"),
            })?;
        parts.push((paths::artifact(name), built.sha256.clone()));
    }
    for (path, expected) in parts {
        let entry = manifest
            .file(&path)
            .ok_or_else(|| Rejection::DiskPartMissing { path: path.clone() })?;
        if entry.sha256 != expected {
            return Err(Rejection::DiskPartDigest {
                path,
                expected,
                actual: entry.sha256.clone(),
            });
        }
    }
    Ok(())
}

/// The signed pair and the certificate, each signed file against its
/// unsigned self.
fn check_signed(bundle_dir: &Path, manifest: &Manifest) -> Result<(), VerifyError> {
    let cert = format!("{}/{}", bundle::SECURE_BOOT, bundle::DB_CERT);
    if manifest.file(&cert).is_none() {
        return Err(Rejection::DiskPartMissing { path: cert }.into());
    }
    for (unsigned_path, signed_path) in boot_paths() {
        let signed = manifest
            .file(&signed_path)
            .ok_or_else(|| Rejection::DiskPartMissing {
                path: signed_path.clone(),
            })?;
        let unsigned = manifest
            .file(&unsigned_path)
            .expect("check_parts found every unsigned part");
        airlock_disk::authenticode::check_signed(
            LogicalReader::open(bundle_dir, signed)?,
            signed.size,
            LogicalReader::open(bundle_dir, unsigned)?,
            unsigned.size,
        )
        .map_err(|e| match e {
            airlock_disk::DiskError::Io(source) => VerifyError::Io {
                what: signed_path.clone(),
                source,
            },
            other => Rejection::DiskSignature {
                path: signed_path.clone(),
                unsigned: unsigned_path.clone(),
                reason: match other {
                    airlock_disk::DiskError::Signed(reason) => reason,
                    other => other.to_string(),
                },
            }
            .into(),
        })?;
    }
    Ok(())
}
