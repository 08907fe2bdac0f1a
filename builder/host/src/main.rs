//! `airlock-host`: airlock on an installed host. It reads what arrives on
//! media and what the host runs, and never speaks to a network (it links
//! the offline verifier and nothing that does).
//!
//! - `verify BUNDLE`: every check `airlock verify` makes, against the
//!   running image's own trust anchors (/usr/share/airlock/trust, under
//!   dm-verity) and the host's rollback state (/var/lib/airlock/state), so
//!   a bundle can never bring its own keys.
//! - `update BUNDLE`: verify it so, write it into the slot the host does not
//!   run from and install its boot entry with systemd-boot's boot counting
//!   (see `update.rs` for the order of the writes).
//! - `status`: the running release and slot, the other slot, the boot entry
//!   and every entry's boot-counting state (pending, failed), the trust
//!   anchors in force and the recorded state, for people or `--json`.
//! - `health UNIT…`, `record`: what the image's units run
//!   at boot to decide and record that a release booted good (see the
//!   image's `[disk] health`).
//!
//! Exit codes: 0 verified (updated, healthy, …), 1 rejected (refused,
//! unhealthy), 2 usage or I/O.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod entries;
mod host;
mod status;
mod update;

/// Where an installed image keeps its trust anchors (docs/trust.md).
const TRUST: &str = "/usr/share/airlock/trust";
/// Where the host keeps its rollback and freeze state.
const STATE: &str = "/var/lib/airlock/state";

/// airlock on an installed host: verify bundles against the running
/// image's trust anchors, and report what the host runs.
#[derive(Debug, Parser)]
#[command(name = "airlock-host", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// A bundle and what it is verified against.
#[derive(Debug, clap::Args)]
struct Bundle {
    /// The bundle directory (on mounted media, read-only is fine).
    bundle: PathBuf,
    /// The trust directory; the running image's by default. Another one is
    /// for tests and recovery only.
    #[arg(long, value_name = "DIR", default_value = TRUST)]
    trust: PathBuf,
    /// The host's state directory.
    #[arg(long, value_name = "DIR", default_value = STATE)]
    state: PathBuf,
    /// A policy file (TOML), as `airlock verify --policy` reads it.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify a bundle (a directory, as `airlock export` writes it) against
    /// the running image's trust anchors and the host's state.
    Verify {
        #[command(flatten)]
        bundle: Bundle,
        /// The result as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Verify a bundle as `verify` does, write it into the slot the host
    /// does not run from, and install its boot entry, counted: systemd-boot
    /// tries it --tries times, and falls back to the running release on its
    /// own unless it boots good. Reboot to start it.
    Update {
        #[command(flatten)]
        bundle: Bundle,
        /// Boots systemd-boot tries before it gives the release up (1 to 9).
        #[arg(long, default_value_t = update::TRIES, value_parser = clap::value_parser!(u32).range(1..=9))]
        tries: u32,
        /// Where the EFI system partition is mounted, writable; by default
        /// /efi when it is mounted there, else the partition systemd-boot
        /// started from, mounted for the update.
        #[arg(long, value_name = "DIR")]
        esp: Option<PathBuf>,
    },
    /// The running release and slot, the other slot, the trust anchors in
    /// force and the recorded state.
    Status {
        /// As JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Read the host below this folder instead of `/` (its /proc, /sys,
        /// /dev, trust and state).
        #[arg(long, value_name = "DIR", default_value = "/", hide = true)]
        root: PathBuf,
        /// The trust directory.
        #[arg(long, value_name = "DIR", default_value = TRUST)]
        trust: PathBuf,
        /// The state directory.
        #[arg(long, value_name = "DIR", default_value = STATE)]
        state: PathBuf,
        /// Where the EFI system partition is mounted; by default the first
        /// of /efi, /boot and /boot/efi that holds EFI/Linux.
        #[arg(long, value_name = "DIR")]
        esp: Option<PathBuf>,
    },
    /// Check that every unit named is active and stays so (not restarted)
    /// for 5 s (airlock-health.service runs it before boot-complete.target):
    /// exit 0 when they do, 1 as soon as one failed or is inactive, or
    /// when --wait passes first.
    Health {
        /// The units.
        #[arg(required = true)]
        units: Vec<String>,
        /// How long to wait for them to be active and settled, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 120)]
        wait: u64,
    },
    /// Record the running release in the host's rollback state
    /// (airlock-record.service runs it once the boot is good).
    Record {
        /// The state directory.
        #[arg(long, value_name = "DIR", default_value = STATE)]
        state: PathBuf,
    },
}

/// Verifies; the verified release, or `None` when rejected.
fn verify(args: &Bundle, json: bool) -> anyhow::Result<Option<airlock_verify::Verified>> {
    let (bundle, trust, state) = (&args.bundle, &args.trust, &args.state);
    let anchors = airlock_verify::Trust::read(trust)?;
    let policy = airlock_verify::Policy::read(args.policy.as_deref())?;
    let options = airlock_verify::Options {
        trust: &anchors,
        policy: &policy,
        state: Some(state),
        now: airlock_verify::time::now(),
    };
    let result = airlock_verify::verify(bundle, &options, &|_| {});
    let (verified, value) = match result {
        Ok(v) => {
            eprintln!(
                "VERIFIED {} {}: signed by {} of {} required keys; {} files, {} bytes",
                v.name,
                v.version,
                v.signers.len(),
                v.threshold,
                v.files,
                v.bytes
            );
            let mut value = serde_json::to_value(&v)?;
            value["verified"] = true.into();
            (Some(v), value)
        }
        Err(airlock_verify::VerifyError::Rejected(rejection)) => {
            eprintln!("{}: REJECTED: {rejection}", bundle.display());
            let mut value = rejection.to_json();
            value["verified"] = false.into();
            (None, value)
        }
        Err(other) => return Err(other.into()),
    };
    if json {
        #[allow(clippy::print_stdout)]
        {
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
    }
    Ok(verified)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Verify { bundle, json } => Ok(if verify(&bundle, json)?.is_some() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }),
        Command::Update { bundle, tries, esp } => {
            let Some(verified) = verify(&bundle, false)? else {
                return Ok(ExitCode::from(1));
            };
            commands::update(
                &bundle.bundle,
                &verified,
                &bundle.state,
                tries,
                esp.as_deref(),
            )
        }
        Command::Health { units, wait } => {
            commands::health(&units, std::time::Duration::from_secs(wait))
        }
        Command::Record { state } => commands::record(&state),
        Command::Status {
            json,
            root,
            trust,
            state,
            esp,
        } => {
            let esp = esp.map_or_else(
                || ["/efi", "/boot", "/boot/efi"].map(PathBuf::from).to_vec(),
                |esp| vec![esp],
            );
            let status = status::read(&status::Paths {
                root,
                trust,
                state,
                esp,
            });
            #[allow(clippy::print_stdout)]
            if json {
                println!("{}", serde_json::to_string_pretty(&status.json())?);
            } else {
                print!("{}", status.human());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("airlock-host: {error:#}");
            if error.downcast_ref::<update::Refused>().is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::from(2)
            }
        }
    }
}
