//! `airlock sign-boot IMAGE_DIR --key db.key --cert db.crt`: the Secure
//! Boot signatures of a built disk image, made where the db key is kept.

use std::path::PathBuf;

use airlock_format::names::image as names;
use anyhow::Context;

use crate::exit::Exit;
use crate::shared::say;

/// Sign an image's systemd-boot and unified kernel image with a Secure Boot
/// db key, and write the disk image that holds them.
///
/// Writes IMAGE_DIR/secure-boot/: systemd-bootx64.efi and uki.efi signed
/// (each is its unsigned self, as the build report's digests describe it,
/// with an Authenticode signature appended), and disk.raw, the built disk
/// image with those two on its EFI system partition. The build's own
/// artifacts are not touched: they stay what a rebuild reproduces.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image folder (built with "disk" in [output] formats).
    image: PathBuf,
    /// The db private key (PEM), e.g. keys/secure-boot/db.key.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The db certificate (PEM), e.g. keys/secure-boot/db.crt.
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
}

impl Args {
    pub fn run(self) -> anyhow::Result<Exit> {
        let out = self.image.join(names::SECURE_BOOT);
        if out.exists() {
            anyhow::bail!("{} exists: remove it to sign again", out.display());
        }
        for name in [names::UKI, names::BOOT_LOADER, names::DISK] {
            if !self.image.join(name).is_file() {
                anyhow::bail!(
                    "{}: no {name}; build the image with \"disk\" in [output] formats",
                    self.image.display()
                );
            }
        }
        let scratch = tempfile::Builder::new()
            .prefix(".secure-boot-")
            .tempdir_in(&self.image)
            .with_context(|| format!("writing into {}", self.image.display()))?;
        for name in [names::BOOT_LOADER, names::UKI] {
            airlock_release::secure_boot::sign(
                &self.image.join(name),
                &self.key,
                &self.cert,
                &scratch.path().join(name),
            )?;
            say(&format!(
                "signed {name}; sbverify accepts it with {}",
                self.cert.display()
            ));
        }
        let report_path = self.image.join(names::REPORT);
        let report = airlock_format::report::Report::parse(
            &std::fs::read(&report_path)
                .with_context(|| format!("reading {}", report_path.display()))?,
        )
        .with_context(|| format!("reading {}", report_path.display()))?;
        airlock_image::emit::disk::with_boot_files(
            &self.image.join(names::DISK),
            &report,
            &scratch.path().join(names::BOOT_LOADER),
            &scratch.path().join(names::UKI),
            &scratch.path().join(names::DISK),
        )?;
        std::fs::copy(&self.cert, scratch.path().join(names::DB_CERT))
            .with_context(|| format!("copying {}", self.cert.display()))?;
        let scratch = scratch.keep();
        std::fs::rename(&scratch, &out)
            .with_context(|| format!("renaming {} to {}", scratch.display(), out.display()))?;
        say(&format!(
            "{}: the signed disk image; `airlock boot --uefi --secure-boot KEYS_DIR {}` boots it with Secure Boot enforced",
            out.join(names::DISK).display(),
            self.image.display()
        ));
        Ok(Exit::Ok)
    }
}
