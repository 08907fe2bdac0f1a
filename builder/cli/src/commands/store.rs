//! `airlock store verify`: re-hash every store entry.

use crate::exit::Exit;
use crate::output::{CorruptEntry, SCHEMA, StoreVerifyReport, print_json};
use crate::shared::{StoreArgs, say};

/// Store subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Re-hash every entry; exit 1 if any does not match its name.
    Verify(VerifyArgs),
}

/// `airlock store verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Print a JSON report on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

impl Command {
    pub fn run(self) -> anyhow::Result<Exit> {
        match self {
            Command::Verify(args) => args.run(),
        }
    }
}

impl VerifyArgs {
    fn run(self) -> anyhow::Result<Exit> {
        let store = self.store.open()?;
        let report = store.verify()?;
        for (path, actual) in &report.corrupt {
            say(&format!(
                "corrupt: {}: content hashes to {actual}, not to its name",
                path.display()
            ));
        }
        say(&format!(
            "{} entries ok ({} bytes), {} corrupt",
            report.ok,
            report.bytes,
            report.corrupt.len()
        ));
        if self.json {
            print_json(&StoreVerifyReport {
                schema: SCHEMA,
                command: "store verify",
                ok: report.ok,
                bytes: report.bytes,
                corrupt: report
                    .corrupt
                    .iter()
                    .map(|(path, actual)| CorruptEntry {
                        path: path.display().to_string(),
                        actual_sha256: actual.to_hex(),
                    })
                    .collect(),
            });
        }
        Ok(if report.corrupt.is_empty() {
            Exit::Ok
        } else {
            Exit::Failure
        })
    }
}
