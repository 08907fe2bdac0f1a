//! airlock's offline verifier.
//!
//! `verify` checks a transfer bundle in the order docs/trust.md gives, and
//! stops at the first failure with a [`Rejection`] naming exactly what is
//! wrong:
//!
//! 1. the detached OpenPGP signatures over manifest.json, against the host's
//!    pinned keys, with a threshold of distinct keys;
//! 2. the version against the host's record (rollback) and `expires`
//!    against the latest time the host has seen (freeze);
//! 3. every file, streamed and hashed in parallel (chunk by chunk), and no
//!    file that the manifest does not list;
//! 4. the provenance: a DSSE envelope signed by a pinned builder key, whose
//!    subjects are the bundle's artifacts;
//! 5. the SBOMs against the image: every package in the image's dpkg
//!    database with the same version, every model's digest;
//! 6. the host's policy.
//!
//! This crate has no network, HTTP or TLS code, nor any dependency that
//! does (a test checks the dependency tree).

#![forbid(unsafe_code)]

pub mod consume;
pub mod dsse;
pub mod image;
pub mod manifest;
pub mod policy;
pub mod signatures;
pub mod state;
pub mod tarball;
pub mod time;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use sha2::Digest;

use manifest::{FileEntry, MANIFEST, MAX_MANIFEST, Manifest, SIGNATURES, paths};
pub use policy::Policy;

/// Why a bundle was rejected. Each kind of failure has its own variant and
/// its own [`Rejection::kind`] code, which `--json` reports.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No manifest.json.
    #[error("the bundle has no manifest.json")]
    NoManifest,
    /// No signature at all.
    #[error("manifest.json is not signed (no manifest.json.asc, or no signature in it)")]
    Unsigned,
    /// The signature file is not OpenPGP.
    #[error("manifest.json.asc: {0}")]
    BadSignatureFile(String),
    /// The signature file holds bytes that are not part of any signature
    /// (trailing data, armor headers, unsigned subpackets, an oversized
    /// packet): nothing may ride along unverified.
    #[error("manifest.json.asc: {what} at byte {offset}: only signature packets are accepted")]
    SignatureFileExtraData {
        /// Where.
        offset: usize,
        /// What.
        what: String,
    },
    /// A signature by a trusted key that does not verify: the manifest
    /// changed after signing, or the signature is damaged.
    #[error("bad signature {reason}")]
    BadSignature {
        /// Which and why.
        reason: String,
    },
    /// Not enough signatures, and one was by a pinned approver whose
    /// certificate or signing key is revoked for that signature.
    #[error("revoked approver: {reason}; {have} of {need} required signatures count")]
    RevokedSigner {
        /// Whose, which revocation and when.
        reason: String,
        /// Good trusted signatures.
        have: usize,
        /// Threshold.
        need: usize,
    },
    /// Not enough signatures, and one was by a pinned approver whose
    /// certificate or key had expired (or was not yet valid).
    #[error("expired approver: {reason}; {have} of {need} required signatures count")]
    ExpiredSigner {
        /// Whose and why.
        reason: String,
        /// Good trusted signatures.
        have: usize,
        /// Threshold.
        need: usize,
    },
    /// Not enough signatures, and one was by a key the host does not trust.
    #[error(
        "signature by untrusted key {issuer}; {have} of {need} required signatures by trusted keys"
    )]
    UntrustedSigner {
        /// The key id or fingerprint.
        issuer: String,
        /// Good trusted signatures.
        have: usize,
        /// Threshold.
        need: usize,
    },
    /// Not enough signatures, and one key signed more than once.
    #[error(
        "key {fingerprint} signed more than once and counts once; {have} of {need} required distinct keys"
    )]
    DuplicateSigner {
        /// The key.
        fingerprint: String,
        /// Distinct good signers.
        have: usize,
        /// Threshold.
        need: usize,
    },
    /// Not enough signatures.
    #[error("{have} of {need} required signatures by distinct trusted keys")]
    BelowThreshold {
        /// Distinct good signers.
        have: usize,
        /// Threshold.
        need: usize,
    },
    /// The manifest is signed but malformed.
    #[error("{0}")]
    Malformed(String),
    /// Older than or equal to what the host has.
    #[error(
        "rollback: {name} version {version} is not newer than version {recorded}, which this host already accepted"
    )]
    Rollback {
        /// Image name.
        name: String,
        /// The bundle's version.
        version: u64,
        /// The recorded version.
        recorded: u64,
    },
    /// Expired relative to the latest time the host has seen.
    #[error("expired: the manifest expires {expires}, but this host has seen {seen}")]
    Expired {
        /// The manifest's expiry.
        expires: String,
        /// The latest time known.
        seen: String,
    },
    /// A listed file is missing.
    #[error("{path}: missing")]
    MissingFile {
        /// Bundle path.
        path: String,
    },
    /// A file the manifest does not list.
    #[error("{path}: not listed in the manifest")]
    UnlistedFile {
        /// Bundle path.
        path: String,
    },
    /// Not a regular file.
    #[error("{path}: not a regular file")]
    NotAFile {
        /// Bundle path.
        path: String,
    },
    /// Wrong size.
    #[error("{path}: {actual} bytes, the manifest says {expected}")]
    SizeMismatch {
        /// Bundle path.
        path: String,
        /// Manifest.
        expected: u64,
        /// Found.
        actual: u64,
    },
    /// Wrong content.
    #[error("{path}: sha256 {actual}, the manifest says {expected}")]
    DigestMismatch {
        /// Bundle path (a chunk's own name when split).
        path: String,
        /// Manifest.
        expected: String,
        /// Found.
        actual: String,
    },
    /// Two chunks of a split file are in each other's place.
    #[error(
        "{path}: chunk {found_at} holds the bytes of chunk {belongs_at} (chunks swapped or renamed)"
    )]
    ChunksSwapped {
        /// The logical file.
        path: String,
        /// Where the bytes were found.
        found_at: usize,
        /// Where they belong.
        belongs_at: usize,
    },
    /// The provenance envelope does not verify.
    #[error("provenance: {0}")]
    ProvenanceSignature(String),
    /// The provenance's subjects do not match the bundle.
    #[error("provenance subject {name}: {problem}")]
    ProvenanceSubject {
        /// Subject name.
        name: String,
        /// What.
        problem: String,
    },
    /// The provenance describes another build.
    #[error("provenance: {0}")]
    ProvenanceMismatch(String),
    /// An SBOM disagrees with the image or with the manifest.
    #[error("SBOM: {0}")]
    SbomMismatch(String),
    /// A setuid or setgid file the policy's `allowed_setuid` does not name.
    #[error("policy: allowed_setuid: {path} (mode {mode}) is setuid or setgid and not allowed")]
    SetuidNotAllowed {
        /// The file.
        path: String,
        /// Its mode, octal.
        mode: String,
    },
    /// A file capability, and the policy has `deny_file_capabilities`.
    #[error("policy: deny_file_capabilities: {path} has file capabilities")]
    FileCapabilityDenied {
        /// The file.
        path: String,
    },
    /// A device node, and the policy has `deny_device_nodes`.
    #[error("policy: deny_device_nodes: {path} is a device node ({device})")]
    DeviceNodeDenied {
        /// The node.
        path: String,
        /// Type and numbers.
        device: String,
    },
    /// A policy rule is not met.
    #[error("policy: {rule}: {detail}")]
    Policy {
        /// The rule's key.
        rule: String,
        /// What breaks it.
        detail: String,
    },
}

impl Rejection {
    /// A stable code for scripts.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::NoManifest => "no-manifest",
            Rejection::Unsigned => "unsigned",
            Rejection::BadSignatureFile(_) => "bad-signature-file",
            Rejection::SignatureFileExtraData { .. } => "signature-file-extra-data",
            Rejection::BadSignature { .. } => "bad-signature",
            Rejection::RevokedSigner { .. } => "revoked-signer",
            Rejection::ExpiredSigner { .. } => "expired-signer",
            Rejection::UntrustedSigner { .. } => "untrusted-signer",
            Rejection::DuplicateSigner { .. } => "duplicate-signer",
            Rejection::BelowThreshold { .. } => "below-threshold",
            Rejection::Malformed(_) => "malformed-manifest",
            Rejection::Rollback { .. } => "rollback",
            Rejection::Expired { .. } => "expired",
            Rejection::MissingFile { .. } => "missing-file",
            Rejection::UnlistedFile { .. } => "unlisted-file",
            Rejection::NotAFile { .. } => "not-a-file",
            Rejection::SizeMismatch { .. } => "size-mismatch",
            Rejection::DigestMismatch { .. } => "digest-mismatch",
            Rejection::ChunksSwapped { .. } => "chunks-swapped",
            Rejection::ProvenanceSignature(_) => "provenance-signature",
            Rejection::ProvenanceSubject { .. } => "provenance-subject",
            Rejection::ProvenanceMismatch(_) => "provenance-mismatch",
            Rejection::SbomMismatch(_) => "sbom-mismatch",
            Rejection::SetuidNotAllowed { .. } => "policy-setuid",
            Rejection::FileCapabilityDenied { .. } => "policy-file-capability",
            Rejection::DeviceNodeDenied { .. } => "policy-device-node",
            Rejection::Policy { .. } => "policy",
        }
    }
}

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
    // 1. Signatures over the exact bytes.
    let manifest_path = bundle.join(MANIFEST);
    let manifest_bytes = match read_bounded(&manifest_path, MAX_MANIFEST) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Rejection::NoManifest.into());
        }
        Err(e) => return Err(io(manifest_path.display())(e)),
    };
    let signatures_path = bundle.join(SIGNATURES);
    let signature_bytes = match read_bounded(&signatures_path, signatures::MAX_SIGNATURES_FILE) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Rejection::Unsigned.into());
        }
        Err(e) => return Err(io(signatures_path.display())(e)),
    };
    let sigs = signatures::read_signatures(&signature_bytes).map_err(|e| match e {
        signatures::SignatureFileError::Malformed(text) => Rejection::BadSignatureFile(text),
        signatures::SignatureFileError::ExtraData { offset, what } => {
            Rejection::SignatureFileExtraData { offset, what }
        }
    })?;
    let clock = std::time::UNIX_EPOCH + std::time::Duration::from_secs(options.now);
    let approvals = signatures::check(
        &manifest_bytes,
        &sigs,
        &options.trust.release,
        options.trust.threshold,
        clock,
    )?;
    let manifest =
        Manifest::parse(&manifest_bytes).map_err(|e| Rejection::Malformed(e.to_string()))?;

    // 2. Rollback and freeze.
    let record = match options.state {
        Some(dir) => state::read(dir, &manifest.name).map_err(io(dir.display()))?,
        None => None,
    };
    if let Some(record) = &record
        && manifest.version <= record.version
    {
        return Err(Rejection::Rollback {
            name: manifest.name.clone(),
            version: manifest.version,
            recorded: record.version,
        }
        .into());
    }
    let seen = options.now.max(record.as_ref().map_or(0, |r| r.seen));
    let expires = time::parse(&manifest.expires).expect("checked by Manifest::parse");
    if expires <= seen {
        return Err(Rejection::Expired {
            expires: manifest.expires,
            seen: time::format(seen),
        }
        .into());
    }

    // 3. Every byte.
    let bytes = check_files(bundle, &manifest, progress)?;

    // 4. Provenance.
    let builder = check_provenance(bundle, &manifest, &options.trust.builders)?;

    // 5. SBOMs against the image.
    let (packages, models, contents, cdx) = check_sboms(bundle, &manifest)?;

    // 6. Policy.
    let mut policy = check_privilege_policy(options.policy, &contents.privileges)?;
    policy.extend(check_policy(
        bundle,
        options.policy,
        &contents.packages,
        &cdx,
    )?);

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
        packages,
        models,
        policy,
        seen: seen.max(manifest.epoch),
        manifest,
    })
}

fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// A file of the bundle verified after step 3, read whole (bounded).
fn read_listed(
    bundle: &Path,
    manifest: &Manifest,
    path: &str,
    limit: u64,
) -> Result<Vec<u8>, VerifyError> {
    let entry = manifest.file(path).ok_or_else(|| Rejection::MissingFile {
        path: path.to_owned(),
    })?;
    if entry.split {
        return Err(Rejection::Malformed(format!("manifest.json: {path} cannot be split")).into());
    }
    read_bounded(&bundle.join(path), limit).map_err(io(bundle.join(path).display()))
}

/// Every regular file below `dir`, as bundle paths.
fn walk(dir: &Path) -> Result<Vec<String>, VerifyError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        let full = dir.join(&relative);
        for entry in std::fs::read_dir(&full).map_err(io(full.display()))? {
            let entry = entry.map_err(io(full.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(Rejection::UnlistedFile {
                    path: relative.join(&name).display().to_string(),
                }
                .into());
            };
            let path = relative.join(name);
            let kind = entry.file_type().map_err(io(entry.path().display()))?;
            let bundle_path = path.to_str().expect("UTF-8 parts").to_owned();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                out.push(bundle_path);
            } else {
                return Err(Rejection::NotAFile { path: bundle_path }.into());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// One unit of hashing work.
struct Unit<'m> {
    entry: &'m FileEntry,
    /// Chunk index, when the entry has chunks.
    chunk: Option<usize>,
    /// The physical file.
    file: String,
    offset: u64,
    size: u64,
}

fn check_files(
    bundle: &Path,
    manifest: &Manifest,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<u64, VerifyError> {
    let present: BTreeSet<String> = walk(bundle)?.into_iter().collect();
    let listed: BTreeSet<String> = manifest.physical_files().into_iter().collect();
    for path in &present {
        if path != MANIFEST && path != SIGNATURES && !listed.contains(path) {
            return Err(Rejection::UnlistedFile { path: path.clone() }.into());
        }
    }
    let mut units = Vec::new();
    for entry in &manifest.files {
        let ranges = entry.ranges();
        for (index, &(offset, size)) in ranges.iter().enumerate() {
            let chunk = (!entry.chunks.is_empty()).then_some(index);
            let (file, offset) = if entry.split {
                (entry.chunk_path(index), 0)
            } else {
                (entry.path.clone(), offset)
            };
            units.push(Unit {
                entry,
                chunk,
                file,
                offset,
                size,
            });
        }
    }
    // Presence and sizes first: cheap, and a clear message.
    for path in &listed {
        if !present.contains(path) {
            return Err(Rejection::MissingFile { path: path.clone() }.into());
        }
    }
    for entry in &manifest.files {
        let (files, expected): (Vec<String>, Vec<u64>) = if entry.split {
            entry
                .ranges()
                .iter()
                .enumerate()
                .map(|(i, r)| (entry.chunk_path(i), r.1))
                .unzip()
        } else {
            (vec![entry.path.clone()], vec![entry.size])
        };
        for (index, (file, expected)) in files
            .iter()
            .cloned()
            .zip(expected.iter().copied())
            .enumerate()
        {
            let actual = std::fs::metadata(bundle.join(&file))
                .map_err(io(bundle.join(&file).display()))?
                .len();
            if actual != expected {
                // A chunk of another size may be another chunk, moved.
                if entry.split {
                    let digest = hash_range(&bundle.join(&file), 0, actual, progress)?;
                    if let Some(belongs_at) = entry.chunks.iter().position(|d| *d == digest) {
                        return Err(Rejection::ChunksSwapped {
                            path: entry.path.clone(),
                            found_at: index,
                            belongs_at,
                        }
                        .into());
                    }
                }
                return Err(Rejection::SizeMismatch {
                    path: file,
                    expected,
                    actual,
                }
                .into());
            }
        }
    }
    // Largest first, so the tail of the parallel run is short.
    units.sort_by(|a, b| b.size.cmp(&a.size).then(a.file.cmp(&b.file)));
    let results: Vec<Result<String, VerifyError>> = units
        .par_iter()
        .map(|unit| hash_range(&bundle.join(&unit.file), unit.offset, unit.size, progress))
        .collect();
    let mut first: Option<Rejection> = None;
    let mut ordered: Vec<(&Unit<'_>, String)> = Vec::new();
    for (unit, result) in units.iter().zip(results) {
        ordered.push((unit, result?));
    }
    ordered.sort_by(|a, b| {
        a.0.entry
            .path
            .cmp(&b.0.entry.path)
            .then(a.0.chunk.cmp(&b.0.chunk))
    });
    for (unit, actual) in &ordered {
        let expected = match unit.chunk {
            Some(i) => &unit.entry.chunks[i],
            None => &unit.entry.sha256,
        };
        if actual != expected && first.is_none() {
            let swapped = unit.chunk.and_then(|i| {
                unit.entry
                    .chunks
                    .iter()
                    .position(|d| d == actual)
                    .filter(|&j| j != i)
                    .map(|j| (i, j))
            });
            first = Some(match swapped {
                Some((found_at, belongs_at)) if unit.entry.split => Rejection::ChunksSwapped {
                    path: unit.entry.path.clone(),
                    found_at,
                    belongs_at,
                },
                _ => Rejection::DigestMismatch {
                    path: match unit.chunk {
                        Some(i) if !unit.entry.split => {
                            format!("{} (chunk {i})", unit.entry.path)
                        }
                        _ => unit.file.clone(),
                    },
                    expected: expected.clone(),
                    actual: actual.clone(),
                },
            });
        }
    }
    if let Some(rejection) = first {
        return Err(rejection.into());
    }
    Ok(manifest.files.iter().map(|f| f.size).sum())
}

fn hash_range(
    path: &Path,
    offset: u64,
    size: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<String, VerifyError> {
    let mut file = File::open(path).map_err(io(path.display()))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(io(path.display()))?;
    let (digest, done) =
        sha256_reader(&mut file.take(size), progress).map_err(io(path.display()))?;
    if done != size {
        return Err(io(path.display())(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "changed while being read",
        )));
    }
    Ok(digest)
}

/// sha256 (hex) and length of everything `reader` yields, through a 1 MiB
/// buffer; `progress` hears of every read.
pub fn sha256_reader(
    reader: &mut dyn Read,
    progress: &(dyn Fn(u64) + Sync),
) -> std::io::Result<(String, u64)> {
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut done = 0;
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            return Ok((hex::encode(hasher.finalize()), done));
        }
        hasher.update(&buffer[..n]);
        done += n as u64;
        progress(n as u64);
    }
}

/// The manifest's own record of the SBOM, provenance, recipe and lock must
/// match the files it lists (already hashed in step 3).
fn listed_digest<'m>(manifest: &'m Manifest, path: &str) -> Result<&'m str, Rejection> {
    manifest
        .file(path)
        .map(|f| f.sha256.as_str())
        .ok_or_else(|| Rejection::MissingFile {
            path: path.to_owned(),
        })
}

fn check_provenance(
    bundle: &Path,
    manifest: &Manifest,
    builders: &[dsse::BuilderKey],
) -> Result<String, VerifyError> {
    if listed_digest(manifest, paths::PROVENANCE)? != manifest.provenance {
        return Err(Rejection::ProvenanceMismatch(
            "provenance.dsse.json is not the file the manifest names".to_owned(),
        )
        .into());
    }
    let bytes = read_listed(bundle, manifest, paths::PROVENANCE, 64 << 20)?;
    let (payload, builder) =
        dsse::open(&bytes, builders).map_err(Rejection::ProvenanceSignature)?;
    let statement: dsse::Statement = serde_json::from_slice(&payload)
        .map_err(|e| Rejection::ProvenanceSignature(format!("not an in-toto statement: {e}")))?;
    if statement.statement_type != dsse::STATEMENT_V1
        || statement.predicate_type != dsse::SLSA_PROVENANCE_V1
    {
        return Err(Rejection::ProvenanceMismatch(format!(
            "statement {} with predicate {}, expected in-toto Statement v1 with SLSA provenance v1",
            statement.statement_type, statement.predicate_type
        ))
        .into());
    }
    // The subjects are exactly the artifacts (and the ostree commit).
    let mut expected: BTreeMap<String, String> = manifest
        .files
        .iter()
        .filter(|f| f.path.starts_with("artifacts/") && !f.path.starts_with("artifacts/ostree/"))
        .map(|f| (f.path.clone(), f.sha256.clone()))
        .collect();
    if let Some(ostree) = &manifest.ostree {
        expected.insert(format!("ostree:{}", ostree.branch), ostree.commit.clone());
    }
    let mut seen = BTreeSet::new();
    for subject in &statement.subject {
        let digest = subject.digest.get("sha256").cloned().unwrap_or_default();
        match expected.get(&subject.name) {
            None => {
                return Err(Rejection::ProvenanceSubject {
                    name: subject.name.clone(),
                    problem: "not an artifact of this bundle".to_owned(),
                }
                .into());
            }
            Some(want) if *want != digest => {
                return Err(Rejection::ProvenanceSubject {
                    name: subject.name.clone(),
                    problem: format!("sha256 {digest}, the bundle has {want}"),
                }
                .into());
            }
            Some(_) => {
                seen.insert(subject.name.clone());
            }
        }
    }
    if let Some(missing) = expected.keys().find(|k| !seen.contains(*k)) {
        return Err(Rejection::ProvenanceSubject {
            name: missing.clone(),
            problem: "artifact missing from the provenance's subjects".to_owned(),
        }
        .into());
    }
    let external = &statement.predicate["buildDefinition"]["externalParameters"];
    for (what, want) in [("recipe", &manifest.recipe), ("lock", &manifest.lock)] {
        let got = external[what]["digest"]["sha256"].as_str().unwrap_or("");
        if got != want {
            return Err(Rejection::ProvenanceMismatch(format!(
                "the {what} digest is {got:?}, the manifest says {want}"
            ))
            .into());
        }
    }
    Ok(builder)
}

fn check_sboms(
    bundle: &Path,
    manifest: &Manifest,
) -> Result<(usize, usize, image::Contents, serde_json::Value), VerifyError> {
    for (path, digest) in [
        (paths::CYCLONEDX, &manifest.sbom.cyclonedx),
        (paths::SPDX, &manifest.sbom.spdx),
    ] {
        if listed_digest(manifest, path)? != digest {
            return Err(Rejection::SbomMismatch(format!(
                "{path} is not the file the manifest names"
            ))
            .into());
        }
    }
    let sbom_error = |path: &str, e: serde_json::Error| {
        Rejection::SbomMismatch(format!("{path}: not JSON: {e}"))
    };
    let cdx: serde_json::Value =
        serde_json::from_slice(&read_listed(bundle, manifest, paths::CYCLONEDX, 256 << 20)?)
            .map_err(|e| sbom_error(paths::CYCLONEDX, e))?;
    let spdx: serde_json::Value =
        serde_json::from_slice(&read_listed(bundle, manifest, paths::SPDX, 256 << 20)?)
            .map_err(|e| sbom_error(paths::SPDX, e))?;
    if cdx["bomFormat"] != "CycloneDX" || cdx["specVersion"] != "1.6" {
        return Err(
            Rejection::SbomMismatch(format!("{} is not CycloneDX 1.6", paths::CYCLONEDX)).into(),
        );
    }
    if spdx["spdxVersion"] != "SPDX-2.3" {
        return Err(Rejection::SbomMismatch(format!("{} is not SPDX 2.3", paths::SPDX)).into());
    }
    let empty = Vec::new();
    let mut cdx_packages = BTreeMap::new();
    let mut models = BTreeMap::new();
    for component in cdx["components"].as_array().unwrap_or(&empty) {
        let text = |key: &str| component[key].as_str().unwrap_or("").to_owned();
        let purl = text("purl");
        if purl.starts_with("pkg:deb/") {
            cdx_packages.insert(text("name"), text("version"));
        } else if component["type"] == "machine-learning-model" {
            let path = component["properties"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .find(|p| p["name"] == "airlock:path")
                .and_then(|p| p["value"].as_str())
                .unwrap_or("")
                .to_owned();
            let digest = component["hashes"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .find(|h| h["alg"] == "SHA-256")
                .and_then(|h| h["content"].as_str())
                .unwrap_or("")
                .to_owned();
            models.insert(path, (text("name"), digest));
        }
    }
    let mut spdx_packages = BTreeMap::new();
    for package in spdx["packages"].as_array().unwrap_or(&empty) {
        let is_deb = package["externalRefs"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .any(|r| {
                r["referenceLocator"]
                    .as_str()
                    .is_some_and(|l| l.starts_with("pkg:deb/"))
            });
        if is_deb {
            spdx_packages.insert(
                package["name"].as_str().unwrap_or("").to_owned(),
                package["versionInfo"].as_str().unwrap_or("").to_owned(),
            );
        }
    }
    if cdx_packages != spdx_packages {
        let differs = cdx_packages
            .iter()
            .find(|(n, v)| spdx_packages.get(*n) != Some(*v))
            .map(|(n, _)| n.clone())
            .or_else(|| {
                spdx_packages
                    .keys()
                    .find(|n| !cdx_packages.contains_key(*n))
                    .cloned()
            })
            .unwrap_or_default();
        return Err(Rejection::SbomMismatch(format!(
            "the CycloneDX and SPDX SBOMs disagree about package {differs}"
        ))
        .into());
    }
    let Some(tar) = manifest.file(paths::ROOTFS_TAR) else {
        return Err(Rejection::SbomMismatch(format!(
            "the bundle has no {}, so the SBOM cannot be checked against the image",
            paths::ROOTFS_TAR
        ))
        .into());
    };
    let wanted: BTreeSet<String> = models.keys().cloned().collect();
    let contents = image::scan(LogicalReader::open(bundle, tar)?, &wanted)
        .map_err(|e| Rejection::SbomMismatch(format!("reading the image: {e}")))?;
    for (name, version) in &contents.packages {
        match cdx_packages.get(name) {
            None => {
                return Err(Rejection::SbomMismatch(format!(
                    "the image has package {name} {version}, which the SBOM does not list"
                ))
                .into());
            }
            Some(stated) if stated != version => {
                return Err(Rejection::SbomMismatch(format!(
                    "the image has {name} {version}, the SBOM says {stated}"
                ))
                .into());
            }
            Some(_) => {}
        }
    }
    if let Some(name) = cdx_packages
        .keys()
        .find(|n| !contents.packages.contains_key(*n))
    {
        return Err(Rejection::SbomMismatch(format!(
            "the SBOM lists package {name}, which the image does not have"
        ))
        .into());
    }
    for (path, (name, digest)) in &models {
        match contents.files.get(path) {
            None => {
                return Err(Rejection::SbomMismatch(format!(
                    "model {name}: {path} is not in the image"
                ))
                .into());
            }
            Some(actual) if actual != digest => {
                return Err(Rejection::SbomMismatch(format!(
                    "model {name}: {path} has sha256 {actual}, the SBOM says {digest}"
                ))
                .into());
            }
            Some(_) => {}
        }
    }
    check_inventory(&cdx, &contents.privileges)?;
    Ok((cdx_packages.len(), models.len(), contents, cdx))
}

/// The SBOM property that carries one privileged path.
pub use airlock_format::sbom::PRIVILEGE_PROPERTY;

/// A CycloneDX SBOM's privilege inventory: every `airlock:privilege`
/// property (of any component, and of the image's own), path → its line
/// (`PATH: KINDS … (MODE UID:GID, PACKAGES)`).
pub fn sbom_privileges(cdx: &serde_json::Value) -> Result<BTreeMap<String, String>, String> {
    let components = cdx["components"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(std::iter::once(&cdx["metadata"]["component"]));
    let mut out = BTreeMap::new();
    for property in components.flat_map(|c| c["properties"].as_array().into_iter().flatten()) {
        if property["name"] != PRIVILEGE_PROPERTY {
            continue;
        }
        let line = property["value"].as_str().unwrap_or("");
        let Some((path, _)) = line.split_once(": ") else {
            return Err(format!("privilege inventory: cannot read {line:?}"));
        };
        out.insert(path.to_owned(), line.to_owned());
    }
    Ok(out)
}

/// The SBOM's privilege inventory (`airlock:privilege` properties, one
/// `PATH: KINDS …` line each) must name exactly the image's privileged
/// paths with the same kinds: a setuid file or capability the SBOM hides
/// is a lie about the image.
fn check_inventory(
    cdx: &serde_json::Value,
    actual: &BTreeMap<String, image::Privilege>,
) -> Result<(), Rejection> {
    let stated: BTreeMap<String, String> = sbom_privileges(cdx)
        .map_err(Rejection::SbomMismatch)?
        .into_iter()
        .map(|(path, line)| {
            let rest = line.split_once(": ").map_or("", |(_, rest)| rest);
            let kinds = rest.split([' ', '(']).next().unwrap_or("").to_owned();
            (path, kinds)
        })
        .collect();
    for (path, privilege) in actual {
        let kinds = privilege.kinds.join("+");
        match stated.get(path) {
            None => {
                return Err(Rejection::SbomMismatch(format!(
                    "the image has {kinds} {path}, which the SBOM's privilege inventory does not list"
                )));
            }
            Some(claimed) if *claimed != kinds => {
                return Err(Rejection::SbomMismatch(format!(
                    "{path} is {kinds} in the image, the SBOM says {claimed}"
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(path) = stated.keys().find(|p| !actual.contains_key(*p)) {
        return Err(Rejection::SbomMismatch(format!(
            "the SBOM lists {path} as privileged, but the image's is not"
        )));
    }
    Ok(())
}

/// The policy's privilege rules, against what the image's own tar headers
/// say (read in step 5).
fn check_privilege_policy(
    policy: &Policy,
    privileges: &BTreeMap<String, image::Privilege>,
) -> Result<Vec<String>, Rejection> {
    let mut applied = Vec::new();
    if let Some(allowed) = &policy.allowed_setuid {
        let allowed: BTreeSet<&str> = allowed.iter().map(String::as_str).collect();
        for (path, privilege) in privileges {
            let setid = privilege
                .kinds
                .iter()
                .any(|k| *k == "setuid" || *k == "setgid");
            if setid && !allowed.contains(path.as_str()) {
                return Err(Rejection::SetuidNotAllowed {
                    path: path.clone(),
                    mode: format!("{:04o}", privilege.mode),
                });
            }
        }
        applied.push("allowed_setuid".to_owned());
    }
    if policy.deny_file_capabilities {
        if let Some((path, _)) = privileges
            .iter()
            .find(|(_, p)| p.kinds.contains(&"capabilities"))
        {
            return Err(Rejection::FileCapabilityDenied { path: path.clone() });
        }
        applied.push("deny_file_capabilities".to_owned());
    }
    if policy.deny_device_nodes {
        if let Some((path, privilege)) = privileges.iter().find(|(_, p)| p.device.is_some()) {
            return Err(Rejection::DeviceNodeDenied {
                path: path.clone(),
                device: privilege.device.clone().unwrap_or_default(),
            });
        }
        applied.push("deny_device_nodes".to_owned());
    }
    Ok(applied)
}

fn check_policy(
    bundle: &Path,
    policy: &Policy,
    installed: &BTreeMap<String, String>,
    cdx: &serde_json::Value,
) -> Result<Vec<String>, VerifyError> {
    let mut applied = Vec::new();
    let fail = |rule: &str, detail: String| -> VerifyError {
        Rejection::Policy {
            rule: rule.to_owned(),
            detail,
        }
        .into()
    };
    if !policy.denied_packages.is_empty() {
        if let Some(name) = policy
            .denied_packages
            .iter()
            .find(|p| installed.contains_key(*p))
        {
            return Err(fail("denied_packages", format!("the image has {name}")));
        }
        applied.push("denied_packages".to_owned());
    }
    if !policy.allowed_licenses.is_empty() {
        let allowed: BTreeSet<String> = policy.allowed_licenses.iter().cloned().collect();
        let empty = Vec::new();
        for component in cdx["components"].as_array().unwrap_or(&empty) {
            if component["type"] == "file" {
                continue;
            }
            let name = component["name"].as_str().unwrap_or("?");
            let expression = component["licenses"][0]["expression"].as_str();
            match expression {
                None if policy.allow_unknown_licenses => {}
                None => {
                    return Err(fail(
                        "allowed_licenses",
                        format!("{name} has no known license (allow_unknown_licenses is off)"),
                    ));
                }
                Some(expression) => match policy::expression_allowed(expression, &allowed) {
                    Some(true) => {}
                    Some(false) => {
                        return Err(fail(
                            "allowed_licenses",
                            format!("{name} is licensed {expression}"),
                        ));
                    }
                    None => {
                        return Err(fail(
                            "allowed_licenses",
                            format!("{name}: cannot read license expression {expression:?}"),
                        ));
                    }
                },
            }
        }
        applied.push("allowed_licenses".to_owned());
    }
    if policy.require_default_deny_firewall || policy.require_audit {
        let recipe: serde_json::Value = serde_json::from_slice(
            &read_bounded(&bundle.join(paths::RECIPE), 16 << 20).map_err(io(paths::RECIPE))?,
        )
        .map_err(|e| fail("recipe.json", e.to_string()))?;
        if policy.require_default_deny_firewall {
            let firewall = &recipe["firewall"];
            if firewall.is_null() {
                return Err(fail(
                    "require_default_deny_firewall",
                    "the recipe has no [firewall]".to_owned(),
                ));
            }
            for chain in ["input", "output", "forward"] {
                if firewall[chain] != "drop" {
                    return Err(fail(
                        "require_default_deny_firewall",
                        format!("the {chain} policy is {}", firewall[chain]),
                    ));
                }
            }
            if !installed.contains_key("nftables") {
                return Err(fail(
                    "require_default_deny_firewall",
                    "nftables is not installed".to_owned(),
                ));
            }
            applied.push("require_default_deny_firewall".to_owned());
        }
        if policy.require_audit {
            if !installed.contains_key("auditd") {
                return Err(fail("require_audit", "auditd is not installed".to_owned()));
            }
            let audit = &recipe["audit"];
            if audit.is_null() {
                return Err(fail(
                    "require_audit",
                    "the recipe has no [audit]".to_owned(),
                ));
            }
            let has_rules = audit["rules"].as_array().is_some_and(|r| !r.is_empty())
                || (audit["agent_rules"] == true && !recipe["agent"].is_null());
            if !has_rules {
                return Err(fail(
                    "require_audit",
                    "the recipe has no audit rules".to_owned(),
                ));
            }
            applied.push("require_audit".to_owned());
        }
    }
    Ok(applied)
}

/// Reads a logical file of the bundle: the file itself, or its chunks in
/// order.
#[derive(Debug)]
pub struct LogicalReader {
    files: Vec<PathBuf>,
    current: Option<File>,
}

impl LogicalReader {
    /// Opens `entry` below `bundle`.
    pub fn open(bundle: &Path, entry: &FileEntry) -> Result<LogicalReader, VerifyError> {
        let files = if entry.split {
            (0..entry.chunks.len())
                .map(|i| bundle.join(entry.chunk_path(i)))
                .collect()
        } else {
            vec![bundle.join(&entry.path)]
        };
        Ok(LogicalReader {
            files: files.into_iter().rev().collect(),
            current: None,
        })
    }
}

impl Read for LogicalReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(file) = &mut self.current {
                let n = file.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.current = None;
            }
            match self.files.pop() {
                Some(path) => self.current = Some(File::open(path)?),
                None => return Ok(0),
            }
        }
    }
}
