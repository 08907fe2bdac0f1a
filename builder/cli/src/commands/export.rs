//! `airlock export IMAGE_DIR --to DIR | --tar FILE`: the transfer bundle.

use std::path::PathBuf;

use airlock_release::bundle::{Destination, ExportOptions, export};
use airlock_release::keys::BuilderSigner;

use crate::exit::Exit;
use crate::shared::{StoreArgs, key_password, parse_size, say};

/// Write a transfer bundle: artifacts, SBOMs, signed provenance, manifest.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("destination").required(true).args(["to", "tar"])))]
pub struct Args {
    /// The image folder written by `airlock build`.
    image: PathBuf,
    /// Write the bundle as a new directory.
    #[arg(long, value_name = "DIR")]
    to: Option<PathBuf>,
    /// Write the bundle as one tar file.
    #[arg(long, value_name = "FILE")]
    tar: Option<PathBuf>,
    /// Split files larger than SIZE (e.g. 4095M for FAT32, 1G) into parts.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    chunk_size: Option<u64>,
    /// Include the exact .debs and models (from the store), so the far side
    /// can rebuild without a network.
    #[arg(long)]
    with_sources: bool,
    /// The previous release's bundle: adds an ostree static delta and a
    /// change report.
    #[arg(long, value_name = "OLD_BUNDLE")]
    previous: Option<PathBuf>,
    /// When hosts stop accepting this release: YYYY-MM-DD or
    /// YYYY-MM-DDTHH:MM:SSZ (UTC). Required: a release that never expires
    /// can be replayed forever.
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    expires: u64,
    /// The builder key that signs the provenance (`airlock keygen --builder`).
    #[arg(long, env = "AIRLOCK_BUILDER_KEY", value_name = "FILE")]
    builder_key: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
}

fn parse_date(text: &str) -> Result<u64, String> {
    airlock_verify::time::parse(text)
        .ok_or_else(|| format!("{text:?} is not YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)"))
}

impl Args {
    pub fn run(self) -> anyhow::Result<Exit> {
        let started = std::time::Instant::now();
        let password = key_password()?;
        let builder = BuilderSigner::load(&self.builder_key, password.as_deref().unwrap_or(b""))?;
        if self.chunk_size == Some(0) {
            anyhow::bail!("--chunk-size must be more than 0");
        }
        let store = if self.with_sources {
            Some(self.store.open()?)
        } else {
            None
        };
        let destination = match (self.to, self.tar) {
            (Some(dir), None) => Destination::Dir(dir),
            (None, Some(tar)) => Destination::Tar(tar),
            _ => unreachable!("clap requires exactly one"),
        };
        let progress = |step: &str| {
            say(&format!(
                "{:6.1} s  {step}",
                started.elapsed().as_secs_f64()
            ))
        };
        let exported = export(
            &ExportOptions {
                image: &self.image,
                destination,
                chunk_size: self.chunk_size,
                expires: self.expires,
                builder: &builder,
                sources: store.as_ref(),
                previous: self.previous.as_deref(),
            },
            &progress,
        )?;
        say(&format!(
            "{}: {} {} ({} files), manifest sha256 {}, expires {}",
            exported.path.display(),
            exported.manifest.name,
            exported.manifest.version,
            exported.manifest.physical_files().len() + 1,
            exported.manifest_sha256,
            exported.manifest.expires
        ));
        say("next: each approver runs `airlock sign BUNDLE --key KEY`");
        Ok(Exit::Ok)
    }
}
