//! `airlock verify BUNDLE --trust DIR`: the offline check on the receiving
//! host. Exit 0 verified, 1 rejected, 2 usage or I/O error.

use std::path::{Path, PathBuf};

use airlock_verify::{Options, Policy, Trust, Verified, VerifyError};
use anyhow::Context;

use crate::exit::Exit;
use crate::shared::say;

/// Verify a transfer bundle against this host's pinned keys, state and policy.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bundle: a directory, or a tar written by `airlock export --tar`.
    bundle: PathBuf,
    /// This host's trust directory: trust.toml (threshold = K), release/*.asc,
    /// builder/*.pub.
    #[arg(long, value_name = "DIR")]
    trust: PathBuf,
    /// Policy file (TOML): allowed_licenses, allow_unknown_licenses,
    /// denied_packages, require_default_deny_firewall, require_audit.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// This host's state directory (highest accepted version and latest time
    /// seen, per image). `verify` reads it; commands that consume a bundle
    /// update it.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// What `verify` and the commands that consume bundles share.
#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// This host's trust directory: trust.toml (threshold = K), release/*.asc,
    /// builder/*.pub.
    #[arg(long, value_name = "DIR")]
    pub trust: Option<PathBuf>,
    /// Policy file (TOML).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// This host's state directory; updated once the bundle is consumed.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
}

/// A bundle opened for verification: a directory, or a tar unpacked into a
/// temporary directory that lives as long as this (flock-held, so the next
/// run removes it if this one is killed).
#[derive(Debug)]
pub struct Opened {
    /// The bundle directory.
    pub dir: PathBuf,
    _unpacked: Option<airlock_store::workdir::WorkDir>,
}

/// Opens a bundle directory or tar.
pub fn open(bundle: &Path) -> anyhow::Result<Opened> {
    let meta =
        std::fs::metadata(bundle).with_context(|| format!("reading {}", bundle.display()))?;
    if meta.is_dir() {
        return Ok(Opened {
            dir: bundle.to_path_buf(),
            _unpacked: None,
        });
    }
    say(&format!("{}: unpacking the tar bundle", bundle.display()));
    let (temp, _stale) = airlock_store::workdir::claim(&std::env::temp_dir(), "airlock-verify-")
        .context("making a temporary directory")?;
    let dir = temp.path().join("bundle");
    std::fs::create_dir(&dir)?;
    airlock_release::bundle::unpack_tar(bundle, &dir)?;
    Ok(Opened {
        dir,
        _unpacked: Some(temp),
    })
}

/// Opens and verifies a bundle; a rejection is a failure (exit 1).
pub fn verified_bundle(path: &Path, trust: &TrustArgs) -> anyhow::Result<(Opened, Verified)> {
    let trust_dir = trust.trust.as_deref().context(
        "a bundle needs --trust DIR (the host's pinned keys): it is verified before it is used",
    )?;
    let opened = open(path)?;
    let verified = match run_verify(
        &opened.dir,
        trust_dir,
        trust.policy.as_deref(),
        trust.state.as_deref(),
    )? {
        Ok(verified) => verified,
        Err(rejection) => {
            return Err(
                crate::exit::Failure(format!("{}: REJECTED: {rejection}", path.display())).into(),
            );
        }
    };
    say(&format!(
        "verified {} {}: signed by {} of {} required keys",
        verified.name,
        verified.version,
        verified.signers.len(),
        verified.threshold
    ));
    Ok((opened, verified))
}

/// Records a release the command consumed in the host's state (with
/// --state), so a later bundle cannot roll it back, and says so.
pub fn record_consumed(trust: &TrustArgs, verified: &Verified) -> anyhow::Result<()> {
    if let Some(state) = &trust.state {
        let record = airlock_verify::consume::record(state, verified)
            .with_context(|| format!("recording the release in {}", state.display()))?;
        say(&format!(
            "recorded {} version {} in {}",
            verified.name,
            record.version,
            state.display()
        ));
    }
    Ok(())
}

/// Verifies with a progress bar on a terminal.
pub fn run_verify(
    bundle: &Path,
    trust_dir: &Path,
    policy: Option<&Path>,
    state: Option<&Path>,
) -> anyhow::Result<Result<Verified, airlock_verify::Rejection>> {
    let trust = Trust::read(trust_dir)?;
    let policy = Policy::read(policy)?;
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "verifying {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .expect("a valid template"),
        );
        Some(bar)
    } else {
        None
    };
    if let Some(bar) = &bar
        && let Ok(bytes) = std::fs::read(bundle.join(airlock_verify::manifest::MANIFEST))
        && let Ok(manifest) = airlock_verify::manifest::Manifest::parse(&bytes)
    {
        bar.set_length(manifest.files.iter().map(|f| f.size).sum());
    }
    let progress = |n: u64| {
        if let Some(bar) = &bar {
            bar.inc(n);
        }
    };
    let options = Options {
        trust: &trust,
        policy: &policy,
        state,
        now: airlock_verify::time::now(),
    };
    let result = airlock_verify::verify(bundle, &options, &progress);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match result {
        Ok(verified) => Ok(Ok(verified)),
        Err(VerifyError::Rejected(rejection)) => Ok(Err(rejection)),
        Err(other) => Err(other.into()),
    }
}

impl Args {
    pub fn run(self) -> anyhow::Result<Exit> {
        let started = std::time::Instant::now();
        let opened = open(&self.bundle)?;
        let result = run_verify(
            &opened.dir,
            &self.trust,
            self.policy.as_deref(),
            self.state.as_deref(),
        )?;
        let elapsed = started.elapsed().as_secs_f64();
        let json = match &result {
            Ok(v) => {
                say(&format!(
                    "VERIFIED {} {} in {elapsed:.1} s: signed by {} of {} required keys; {} files, {} bytes; provenance by {}; {}{} packages and {} models match the SBOMs; policy: {}",
                    v.name,
                    v.version,
                    v.signers.len(),
                    v.threshold,
                    v.files,
                    v.bytes,
                    v.builder,
                    match (v.disk, v.secure_boot) {
                        (false, _) => "",
                        (true, false) => "the disk image's parts match the build report; ",
                        (true, true) => {
                            "the disk image's parts match the build report, and its Secure Boot signed boot files are theirs plus a signature; "
                        }
                    },
                    v.packages,
                    v.models,
                    if v.policy.is_empty() {
                        "no rules".to_owned()
                    } else {
                        v.policy.join(", ")
                    }
                ));
                serde_json::json!({
                    "schema": crate::output::SCHEMA,
                    "command": "verify",
                    "verified": true,
                    "result": v,
                })
            }
            Err(rejection) => {
                say(&format!("REJECTED {}: {rejection}", self.bundle.display()));
                serde_json::json!({
                    "schema": crate::output::SCHEMA,
                    "command": "verify",
                    "verified": false,
                    "rejection": rejection.to_json(),
                })
            }
        };
        if self.json {
            #[allow(clippy::print_stdout)]
            {
                println!("{}", serde_json::to_string_pretty(&json)?);
            }
        }
        Ok(if result.is_ok() {
            Exit::Ok
        } else {
            Exit::Failure
        })
    }
}
