//! `airlock sign BUNDLE --key FILE`: one approver's detached signature
//! over the bundle's manifest, added to manifest.json.asc beside the others.

use std::path::PathBuf;

use crate::exit::Exit;
use crate::shared::{key_password, say};

/// Add a release approval (OpenPGP signature over manifest.json) to a bundle.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bundle (directory or tar) written by `airlock export`.
    bundle: PathBuf,
    /// The approver's secret key (written by `airlock keygen --release`).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
}

impl Args {
    pub fn run(self) -> anyhow::Result<Exit> {
        let password = key_password()?;
        let fingerprint =
            airlock_release::bundle::sign(&self.bundle, &self.key, password.as_deref())?;
        say(&format!(
            "{}: signed by {fingerprint}",
            self.bundle.display()
        ));
        Ok(Exit::Ok)
    }
}
