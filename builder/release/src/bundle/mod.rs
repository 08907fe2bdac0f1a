//! Transfer bundles: `airlock export` writes one from an image folder,
//! `airlock sign` adds an approver's signature to it.
//!
//! A bundle's bytes depend only on the image, the options and the keys:
//! files are copied, not re-encoded, the manifest is canonical JSON, the
//! provenance signature uses deterministic nonces, and a tar bundle has
//! sorted entries with fixed owners, modes and times.

mod copy;
mod plan;
mod seal;
mod sign;
mod tar;

use std::fs;
use std::path::{Path, PathBuf};

use airlock_format::report::Report;
use airlock_recipe::Lock;
use airlock_store::Store;
use airlock_verify::manifest::{self, Manifest, paths};
use rayon::prelude::*;
use sha2::Digest;

pub use self::sign::sign;
pub use self::tar::{unpack_tar, write_tar};
use crate::keys::BuilderSigner;
use crate::{ReleaseError, io};

/// Where a bundle goes.
#[derive(Debug, Clone)]
pub enum Destination {
    /// A new directory.
    Dir(PathBuf),
    /// A new tar file.
    Tar(PathBuf),
}

/// What `airlock export` was asked for.
#[derive(Debug)]
pub struct ExportOptions<'a> {
    /// The image folder.
    pub image: &'a Path,
    /// Where.
    pub destination: Destination,
    /// Split files larger than this into `PATH.000`, `PATH.001`, ...
    pub chunk_size: Option<u64>,
    /// `expires`, seconds since the epoch.
    pub expires: u64,
    /// The builder key for the provenance.
    pub builder: &'a BuilderSigner,
    /// The store, to copy the exact .debs and models into sources/.
    pub sources: Option<&'a Store>,
    /// The previous release's bundle, for a static delta and a change report.
    pub previous: Option<&'a Path>,
}

/// What was written.
#[derive(Debug)]
pub struct Exported {
    /// The bundle (directory or tar).
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// sha256 of manifest.json.
    pub manifest_sha256: String,
}

fn invalid(message: impl Into<String>) -> ReleaseError {
    ReleaseError::Invalid(message.into())
}

/// sha256 (hex) of a file, streamed.
fn hash_file(path: &Path) -> Result<String, ReleaseError> {
    airlock_store::hash_file(path)
        .map(|(digest, _)| digest.to_hex())
        .map_err(|e| invalid(e.to_string()))
}

/// Reads an image folder's report and checks that every artifact is what
/// the build wrote.
pub fn read_image(image: &Path) -> Result<(Report, Lock), ReleaseError> {
    let report_path = image.join(paths::REPORT);
    let report = Report::parse(&fs::read(&report_path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => invalid(format!(
            "{}: not an image folder (no build-report.json); build one with `airlock build`",
            image.display()
        )),
        _ => io(report_path.display())(e),
    })?)
    .map_err(|e| invalid(format!("{}: {e}", report_path.display())))?;
    report.artifacts.par_iter().try_for_each(|artifact| {
        let (name, want) = (&artifact.path, &artifact.sha256);
        manifest::check_path(name).map_err(invalid)?;
        let got = hash_file(&image.join(name))?;
        if &got != want {
            return Err(invalid(format!(
                "{}: sha256 {got}, but the build report says {want}: the image folder changed after the build",
                image.join(name).display()
            )));
        }
        Ok(())
    })?;
    let recipe =
        fs::read(image.join(paths::RECIPE)).map_err(io(image.join(paths::RECIPE).display()))?;
    let mut hasher = sha2::Sha256::new();
    hasher.update(airlock_format::names::domain::RECIPE);
    hasher.update(&recipe);
    if hex::encode(hasher.finalize()) != report.recipe {
        return Err(invalid(format!(
            "{}: not the recipe the build report names",
            image.join(paths::RECIPE).display()
        )));
    }
    let lock_path = image.join(paths::LOCK);
    let lock_text = fs::read_to_string(&lock_path).map_err(io(lock_path.display()))?;
    if hex::encode(sha2::Sha256::digest(lock_text.as_bytes())) != report.lock {
        return Err(invalid(format!(
            "{}: not the lock the build report names",
            lock_path.display()
        )));
    }
    let lock = Lock::parse(&lock_path, &lock_text).map_err(|e| invalid(e.to_string()))?;
    Ok((report, lock))
}

/// Writes a bundle: the image folder checked against its report, the
/// files planned and copied, then sealed, then moved into place.
pub fn export(
    options: &ExportOptions<'_>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Exported, ReleaseError> {
    let image = options.image;
    progress("checking the image folder against its build report");
    let (report, lock) = read_image(image)?;
    if report
        .artifact(airlock_format::names::image::ROOTFS_TAR)
        .is_none()
    {
        return Err(invalid(format!(
            "{}: the image has no rootfs.tar.zst; add \"tar\" to [output] formats: \
             `airlock verify` reads the image's dpkg database and models from it to check the SBOMs",
            image.display()
        )));
    }
    let final_path = match &options.destination {
        Destination::Dir(path) | Destination::Tar(path) => path.clone(),
    };
    if fs::symlink_metadata(&final_path).is_ok() {
        return Err(invalid(format!(
            "{} exists; a bundle is written to a new path",
            final_path.display()
        )));
    }
    let parent = final_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io(parent.display()))?;
    let (work, _stale) =
        airlock_store::workdir::claim(parent, ".airlock-export-").map_err(io(parent.display()))?;
    let staging = work.path().join("bundle");
    fs::create_dir(&staging).map_err(io(staging.display()))?;

    let split_at = options.chunk_size;
    let mut planned = plan::image(&report, image, split_at)?;
    if let Some(store) = options.sources {
        planned.extend(plan::sources(image, &lock, store, split_at)?);
    }
    let mut previous = None;
    if let Some(old) = options.previous {
        progress("comparing with the previous release");
        let (record, files) = plan::previous(old, image, &report, work.path(), progress)?;
        planned.extend(files);
        previous = Some(record);
    }
    progress("copying files into the bundle");
    copy::copy_all(&planned, &staging, split_at)?;
    // Everything but the manifest and the provenance is in place: describe it.
    let files = copy::describe_all(&planned, &staging, split_at)?;
    progress("signing the provenance with the builder key");
    let (manifest, bytes) = seal::seal(&staging, &report, &lock, options, files, previous)?;
    match &options.destination {
        Destination::Dir(path) => {
            fs::rename(&staging, path).map_err(io(path.display()))?;
        }
        Destination::Tar(path) => {
            progress("writing the tar");
            let partial = work.path().join("bundle.tar");
            write_tar(&staging, &partial, manifest.epoch)?;
            fs::rename(&partial, path).map_err(io(path.display()))?;
        }
    }
    Ok(Exported {
        path: final_path,
        manifest_sha256: hex::encode(sha2::Sha256::digest(&bytes)),
        manifest,
    })
}

/// Every regular file below `dir`, relative, sorted.
fn files_below(dir: &Path) -> Result<Vec<String>, ReleaseError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        let full = dir.join(&relative);
        for entry in fs::read_dir(&full).map_err(io(full.display()))? {
            let entry = entry.map_err(io(full.display()))?;
            let path = relative.join(entry.file_name());
            let kind = entry.file_type().map_err(io(entry.path().display()))?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                out.push(
                    path.to_str()
                        .ok_or_else(|| invalid(format!("{}: not UTF-8", path.display())))?
                        .to_owned(),
                );
            } else {
                return Err(invalid(format!(
                    "{}: not a regular file",
                    dir.join(&path).display()
                )));
            }
        }
    }
    out.sort();
    Ok(out)
}
