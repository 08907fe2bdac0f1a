//! airlock's offline verifier.
//!
//! `verify` checks a transfer bundle in the order docs/trust.md gives, one
//! module of [`steps`] per step, and stops at the first failure with a
//! [`Rejection`] naming exactly what is wrong, with the expected and the
//! actual value:
//!
//! 1. the detached OpenPGP signatures over manifest.json, against the host's
//!    pinned keys, with a threshold of distinct keys;
//! 2. the version against the host's record (rollback) and `expires`
//!    against the latest time the host has seen (freeze);
//! 3. every file, streamed and hashed in parallel (chunk by chunk), and no
//!    file that the manifest does not list;
//! 4. the provenance: a DSSE envelope signed by a pinned builder key, whose
//!    subjects are the bundle's artifacts;
//! 5. the disk image's parts against the build report: the UKI, systemd-boot,
//!    the root and its hash tree are the ones the build wrote, and each
//!    Secure Boot signed file is its unsigned self plus a signature;
//! 6. the SBOMs against the image: every package in the image's dpkg
//!    database with the same version, every model's digest;
//! 7. the host's policy.
//!
//! This crate has no network, HTTP or TLS code, nor any dependency that
//! does (a test checks the dependency tree).

#![forbid(unsafe_code)]

pub mod consume;
pub mod dsse;
pub mod image;
pub mod manifest;
pub mod policy;
mod read;
mod rejection;
pub mod signatures;
pub mod state;
mod steps;
pub mod tarball;
pub mod time;

use std::path::Path;

use serde::Serialize;

use manifest::Manifest;
pub use policy::Policy;
pub use read::{LogicalReader, sha256_reader};
pub use rejection::{Rejection, RejectionKind};
pub use steps::sboms::{PRIVILEGE_PROPERTY, sbom_privileges};

/// A verification that could not be carried out (exit 2), as opposed to a
/// rejection (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The bundle failed a check.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The trust directory or policy is unusable.
    #[error("{0}")]
    Setup(String),
    /// Reading failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being read.
        what: String,
        /// Why.
        source: std::io::Error,
    },
}

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> VerifyError {
    let what = what.to_string();
    move |source| VerifyError::Io { what, source }
}

/// The host's pinned trust: `DIR/trust.toml` (`threshold = K`),
/// `DIR/release/*.asc` (OpenPGP certificates of the release approvers) and
/// `DIR/builder/*.pub` (cosign public keys of the builders).
#[derive(Debug)]
pub struct Trust {
    /// Release approvers.
    pub release: Vec<sequoia_openpgp::Cert>,
    /// How many distinct approvers must sign.
    pub threshold: usize,
    /// Builder keys.
    pub builders: Vec<dsse::BuilderKey>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustFile {
    threshold: usize,
}

impl Trust {
    /// Reads a trust directory.
    pub fn read(dir: &Path) -> Result<Trust, VerifyError> {
        let file = dir.join("trust.toml");
        let text = std::fs::read_to_string(&file).map_err(io(file.display()))?;
        let parsed: TrustFile = toml::from_str(&text)
            .map_err(|e| VerifyError::Setup(format!("{}: {}", file.display(), e.message())))?;
        let release = signatures::read_certs(&dir.join("release"))
            .map_err(io(dir.join("release").display()))?;
        let builders = dsse::BuilderKey::read_dir(&dir.join("builder"))
            .map_err(io(dir.join("builder").display()))?;
        if parsed.threshold == 0 || parsed.threshold > release.len() {
            return Err(VerifyError::Setup(format!(
                "{}: threshold {} with {} release keys in {}",
                file.display(),
                parsed.threshold,
                release.len(),
                dir.join("release").display()
            )));
        }
        if builders.is_empty() {
            return Err(VerifyError::Setup(format!(
                "{}: no builder key (*.pub)",
                dir.join("builder").display()
            )));
        }
        Ok(Trust {
            release,
            threshold: parsed.threshold,
            builders,
        })
    }
}

/// What to verify against.
#[derive(Debug)]
pub struct Options<'a> {
    /// Pinned keys.
    pub trust: &'a Trust,
    /// Policy.
    pub policy: &'a Policy,
    /// The host's state directory, if it keeps one.
    pub state: Option<&'a Path>,
    /// The host clock (seconds since the epoch).
    pub now: u64,
}

/// What a verified bundle is.
#[derive(Clone, Debug, Serialize)]
pub struct Verified {
    /// Image name.
    pub name: String,
    /// Version.
    pub version: u64,
    /// Expiry.
    pub expires: String,
    /// Distinct approvers (primary key fingerprints).
    pub signers: Vec<String>,
    /// The threshold.
    pub threshold: usize,
    /// Issuers of signatures by keys this host does not pin (not counted).
    pub ignored_signatures: Vec<String>,
    /// The builder key that signed the provenance.
    pub builder: String,
    /// Files checked.
    pub files: usize,
    /// Bytes hashed.
    pub bytes: u64,
    /// Packages matched between the SBOMs and the image.
    pub packages: usize,
    /// Models matched.
    pub models: usize,
    /// Whether the bundle carries a disk image's parts (checked against
    /// the build report).
    pub disk: bool,
    /// And the Secure Boot signed systemd-boot and UKI.
    pub secure_boot: bool,
    /// Policy rules applied.
    pub policy: Vec<String>,
    /// The latest time this verification knew of; what a consumer records.
    pub seen: u64,
    /// The manifest.
    #[serde(skip)]
    pub manifest: Manifest,
}

/// Verifies the bundle in directory `bundle`. `progress` is called with the
/// number of bytes hashed since its last call.
pub fn verify(
    bundle: &Path,
    options: &Options<'_>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Verified, VerifyError> {
    let steps::signed::Signed {
        manifest,
        approvals,
    } = steps::signed::check(bundle, options.trust, options.now)?;
    let seen = steps::fresh::check(&manifest, options.state, options.now)?;
    let bytes = steps::files::check(bundle, &manifest, progress)?;
    let builder = steps::provenance::check(bundle, &manifest, &options.trust.builders)?;
    let disk = steps::disk::check(bundle, &manifest)?;
    let sboms = steps::sboms::check(bundle, &manifest)?;
    let policy = steps::policy::check(
        bundle,
        &manifest,
        options.policy,
        &sboms.contents.privileges,
        &sboms.contents.packages,
        &sboms.cyclonedx,
    )?;
    Ok(Verified {
        name: manifest.name.clone(),
        version: manifest.version,
        expires: manifest.expires.clone(),
        signers: approvals.signers,
        threshold: approvals.threshold,
        ignored_signatures: approvals.ignored,
        builder,
        files: manifest.physical_files().len(),
        bytes,
        packages: sboms.packages,
        models: sboms.models,
        disk: disk.disk,
        secure_boot: disk.secure_boot,
        policy,
        seen: seen.max(manifest.epoch),
        manifest,
    })
}
