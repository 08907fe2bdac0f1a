//! `airlock disk-image BUNDLE --trust DIR --out FILE`: the far side's disk
//! image, assembled from a verified bundle, for `dd` onto a USB stick or a
//! hypervisor's import.

use std::path::{Path, PathBuf};

use airlock_format::names::{bundle, image as names};
use airlock_format::report::Report;
use airlock_image::emit::disk::{self, Files};
use airlock_verify::Verified;
use anyhow::Context;

use crate::exit::Exit;
use crate::shared::say;

/// Write the disk image of a verified bundle (its image built with "disk"
/// in [output] formats): raw for `dd` or qcow2 for a hypervisor.
///
/// The bundle is verified first; the disk is then assembled from the
/// verified copies of its parts (the root, its hash tree, the UKI and
/// systemd-boot) and must hash to the disk image the build report
/// describes, byte for byte, or nothing is written. With --secure-boot the
/// signed systemd-boot and UKI then replace the unsigned ones on its EFI
/// system partition. The host's state is read (rollback) but not recorded:
/// writing a disk image installs nothing.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bundle: a directory, or a tar written by `airlock export --tar`.
    bundle: PathBuf,
    #[command(flatten)]
    trust: crate::commands::verify::TrustArgs,
    /// Where to write the disk image (a new file; raw images are sparse).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// raw (for dd) or qcow2 (with qemu-img, from Debian's qemu-utils).
    #[arg(long, value_enum, default_value_t = Format::Raw)]
    format: Format,
    /// The disk with the Secure Boot signed systemd-boot and UKI the bundle
    /// carries (signed with `airlock sign-boot` before `airlock export`).
    #[arg(long)]
    secure_boot: bool,
}

/// A disk image file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A raw disk image.
    Raw,
    /// QEMU's qcow2.
    Qcow2,
}

impl Args {
    pub fn run(self) -> anyhow::Result<Exit> {
        if self.out.exists() {
            anyhow::bail!("{} exists; not overwriting it", self.out.display());
        }
        let (opened, verified) =
            crate::commands::verify::verified_bundle(&self.bundle, &self.trust)?;
        let parent = match self.out.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        let work = tempfile::Builder::new()
            .prefix(".airlock-disk-")
            .tempdir_in(&parent)
            .with_context(|| format!("writing into {}", parent.display()))?;
        let disk = assemble_verified(&opened.dir, &verified, work.path(), self.secure_boot)?;
        let partial = work.path().join("out");
        match self.format {
            Format::Raw => std::fs::rename(&disk, &partial)?,
            Format::Qcow2 => {
                let status = std::process::Command::new("qemu-img")
                    .args(["convert", "-f", "raw", "-O", "qcow2"])
                    .arg(&disk)
                    .arg(&partial)
                    .status()
                    .context("running qemu-img (Debian: apt-get install qemu-utils)")?;
                if !status.success() {
                    anyhow::bail!("qemu-img convert failed: {status}");
                }
            }
        }
        std::fs::File::open(&partial)?.sync_all()?;
        std::fs::rename(&partial, &self.out)
            .with_context(|| format!("renaming into {}", self.out.display()))?;
        let meta = std::fs::metadata(&self.out)?;
        say(&format!(
            "{}: {} {} disk image ({:?}{}), {} bytes, {} MiB on disk",
            self.out.display(),
            verified.name,
            verified.version,
            self.format,
            if self.secure_boot {
                ", Secure Boot signed"
            } else {
                ""
            },
            meta.len(),
            (std::os::unix::fs::MetadataExt::blocks(&meta) * 512) >> 20
        ));
        Ok(Exit::Ok)
    }
}

/// Copies what booting and the disk image need out of the verified bundle
/// into `dir` (each byte checked against the verified manifest again),
/// assembles dir/disk.raw and checks it is the build's, and with
/// `secure_boot` writes dir/secure-boot/disk.raw with the signed boot
/// files. Returns the disk image asked for.
pub fn assemble_verified(
    bundle_dir: &Path,
    verified: &Verified,
    dir: &Path,
    secure_boot: bool,
) -> anyhow::Result<PathBuf> {
    if !verified.disk {
        anyhow::bail!(
            "the bundle carries no disk image: its image was built without \"disk\" in [output] formats"
        );
    }
    if secure_boot && !verified.secure_boot {
        anyhow::bail!(
            "the bundle carries no Secure Boot signed boot files: run `airlock sign-boot IMAGE_DIR` before `airlock export`"
        );
    }
    let mut files = airlock_boot::bundle_files();
    for name in names::DISK_PARTS {
        files.push((bundle::artifact(name), name));
    }
    let signed = |name: &str| format!("{}/{name}", names::SECURE_BOOT);
    let signed_names: Vec<String> = names::DISK_PARTS.iter().map(|n| signed(n)).collect();
    if secure_boot {
        std::fs::create_dir_all(dir.join(names::SECURE_BOOT))?;
        for (name, local) in names::DISK_PARTS.iter().zip(&signed_names) {
            files.push((format!("{}/{name}", bundle::SECURE_BOOT), local.as_str()));
        }
    }
    airlock_verify::consume::copy_verified(bundle_dir, verified, &files, dir).map_err(
        |e| match e {
            e @ airlock_verify::consume::ConsumeError::Changed(_) => {
                anyhow::Error::from(crate::exit::Failure(e.to_string()))
            }
            other => other.into(),
        },
    )?;
    let report_path = dir.join(names::REPORT);
    let report = Report::parse(&std::fs::read(&report_path)?)
        .with_context(|| format!("reading {}", report_path.display()))?;
    say("assembling the disk image from the verified parts");
    let out = dir.join(names::DISK);
    disk::assemble(
        &report,
        &Files {
            loader: &dir.join(names::BOOT_LOADER),
            uki: &dir.join(names::UKI),
            root: &dir.join(names::EROFS),
            verity: &dir.join(names::VERITY),
        },
        &out,
    )?;
    say("the disk image is byte for byte the one the build report describes");
    if !secure_boot {
        return Ok(out);
    }
    let signed_out = dir.join(names::SECURE_BOOT).join(names::DISK);
    disk::with_boot_files(
        &out,
        &report,
        &dir.join(signed(names::BOOT_LOADER)),
        &dir.join(signed(names::UKI)),
        &signed_out,
    )?;
    Ok(signed_out)
}
