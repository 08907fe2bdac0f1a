//! `airlock audit`: the agent runtime's signed action log, checked offline
//! with the host's public key (recorded off the host at its first boot).

use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use crate::exit::{Exit, Failure};
use crate::output::{SCHEMA, print_json};
use crate::shared::say;

/// Action log subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check a log's hash chain and both signatures of every entry; exit 1
    /// naming the first entry that breaks it.
    Verify(VerifyArgs),
    /// Verify a log, then copy it with its public key and a summary into a
    /// folder for an auditor.
    Export(ExportArgs),
}

/// `airlock audit verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The log (one signed JSON entry a line).
    log: PathBuf,
    /// The host's public key file.
    #[arg(long)]
    key: PathBuf,
    /// Print a JSON report on stdout.
    #[arg(long)]
    json: bool,
}

/// `airlock audit export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The log.
    log: PathBuf,
    /// The host's public key file.
    #[arg(long)]
    key: PathBuf,
    /// The folder to write (must not exist).
    #[arg(long)]
    to: PathBuf,
}

/// `airlock audit verify --json`.
#[derive(Debug, Serialize)]
struct AuditReport {
    schema: u32,
    command: &'static str,
    ok: bool,
    /// The key's fingerprint (sha256 over both public keys).
    key: String,
    entries: Option<u64>,
    /// sha256 of the last line: record it to catch a log cut short.
    last: Option<String>,
    broken_line: Option<u64>,
    broken_entry: Option<u64>,
    reason: Option<String>,
}

impl Command {
    pub fn run(self) -> anyhow::Result<Exit> {
        match self {
            Command::Verify(args) => args.run(),
            Command::Export(args) => args.run(),
        }
    }
}

fn read_key(path: &PathBuf) -> anyhow::Result<airlock_audit::PublicKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the public key {}", path.display()))?;
    Ok(airlock_audit::PublicKey::parse(
        &path.display().to_string(),
        &text,
    )?)
}

fn check(
    log: &PathBuf,
    key: &airlock_audit::PublicKey,
) -> anyhow::Result<Result<airlock_audit::Verified, airlock_audit::Broken>> {
    let file =
        std::fs::File::open(log).with_context(|| format!("reading the log {}", log.display()))?;
    Ok(airlock_audit::verify(file, key))
}

impl VerifyArgs {
    fn run(self) -> anyhow::Result<Exit> {
        let key = read_key(&self.key)?;
        let result = check(&self.log, &key)?;
        let mut report = AuditReport {
            schema: SCHEMA,
            command: "audit verify",
            ok: result.is_ok(),
            key: key.fingerprint(),
            entries: None,
            last: None,
            broken_line: None,
            broken_entry: None,
            reason: None,
        };
        let exit = match result {
            Ok(verified) => {
                say(&format!(
                    "{}: {} entries, every one signed (Ed25519 and ML-DSA-65) by key {} and chained; last line sha256 {}",
                    self.log.display(),
                    verified.entries,
                    key.fingerprint(),
                    verified.last
                ));
                report.entries = Some(verified.entries);
                report.last = Some(verified.last);
                Exit::Ok
            }
            Err(broken) => {
                say(&format!("{}: broken at {broken}", self.log.display()));
                report.broken_line = Some(broken.line);
                report.broken_entry = broken.seq;
                report.reason = Some(broken.reason);
                Exit::Failure
            }
        };
        if self.json {
            print_json(&report);
        }
        Ok(exit)
    }
}

impl ExportArgs {
    fn run(self) -> anyhow::Result<Exit> {
        let key = read_key(&self.key)?;
        let verified = check(&self.log, &key)?.map_err(|broken| {
            Failure(format!(
                "{}: broken at {broken}; nothing exported",
                self.log.display()
            ))
        })?;
        std::fs::create_dir(&self.to)
            .with_context(|| format!("creating {} (it must not exist)", self.to.display()))?;
        let copy = |from: &PathBuf, name: &str| -> anyhow::Result<()> {
            std::fs::copy(from, self.to.join(name)).with_context(|| {
                format!("copying {} into {}", from.display(), self.to.display())
            })?;
            Ok(())
        };
        copy(&self.log, "actions.log")?;
        copy(&self.key, "host-key.pub")?;
        let summary = format!(
            "log: actions.log\nentries: {}\nlast line sha256: {}\nkey: host-key.pub\nkey fingerprint: {}\n\
             check with: airlock audit verify actions.log --key host-key.pub\n",
            verified.entries,
            verified.last,
            key.fingerprint()
        );
        std::fs::write(self.to.join("SUMMARY.txt"), summary)
            .with_context(|| format!("writing {}", self.to.join("SUMMARY.txt").display()))?;
        say(&format!(
            "{}: {} entries verified and exported",
            self.to.display(),
            verified.entries
        ));
        Ok(Exit::Ok)
    }
}
