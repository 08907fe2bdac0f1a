//! `airlock gc --keep LOCK...`: remove what no given lock references.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::exit::Exit;
use crate::output::{GcReport, SCHEMA, print_json};
use crate::shared::{self, StoreArgs, say};

/// Remove store entries that none of the given locks references (packages,
/// models and the InRelease files they were resolved from).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Lock files whose inputs to keep.
    #[arg(long, required = true, num_args = 1.., value_name = "LOCK")]
    keep: Vec<PathBuf>,
    /// Only report what would be removed.
    #[arg(long)]
    dry_run: bool,
    /// Print a JSON report on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

impl Args {
    pub fn run(self) -> anyhow::Result<Exit> {
        let mut keep = BTreeSet::new();
        for path in &self.keep {
            let lock = shared::read_lock(path)?;
            keep.extend(lock.packages.iter().map(|p| p.sha256));
            keep.extend(lock.models.iter().map(|m| m.sha256));
            keep.extend(lock.components.iter().map(|c| c.sha256));
            keep.extend(lock.archive.suites.iter().map(|s| s.inrelease_sha256));
        }
        let store = self.store.open()?;
        let report = store.gc(&keep, self.dry_run)?;
        say(&format!(
            "{} {} entries ({} bytes), kept {}",
            if self.dry_run {
                "would remove"
            } else {
                "removed"
            },
            report.removed.len(),
            report.freed,
            report.kept
        ));
        if self.json {
            print_json(&GcReport {
                schema: SCHEMA,
                command: "gc",
                dry_run: self.dry_run,
                kept: report.kept,
                removed: report.removed.iter().map(|d| d.to_hex()).collect(),
                freed_bytes: report.freed,
            });
        }
        Ok(Exit::Ok)
    }
}
