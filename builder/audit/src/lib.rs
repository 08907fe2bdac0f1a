//! The signed action log: every action the agent runtime takes for the
//! agent, appended to a hash chain and signed twice by a key the host
//! makes for itself, so that an auditor can check the record offline with
//! nothing but the log and the host's public key.
//!
//! On disk, one JSON object per line:
//!
//! ```text
//! {"seq":0,"prev":"<hex>","action":{...},"ed25519":"<base64>","ml_dsa_65":"<base64>"}
//! ```
//!
//! - `seq` counts from 0; `prev` is the sha256 of the previous line's bytes
//!   (without its newline), and for the first entry the sha256 of the
//!   domain and the key's fingerprint, which ties the chain to its key;
//! - both signatures cover the same message: the domain
//!   `airlock-action-log-v1`, a zero byte, then the canonical JSON of
//!   `{"seq","prev","action"}` (fields in that order, as written here);
//! - Ed25519 (RFC 8032) and ML-DSA-65 (FIPS 204, deterministic, with the
//!   domain as its context): the record stays checkable after classical
//!   signatures are retired, and neither algorithm alone can forge it.
//!
//! [`verify`] reads a log and names the first entry that breaks it: one
//! changed (its signatures fail), one removed or two swapped (the sequence
//! breaks where it happened), one inserted from elsewhere (the chain
//! breaks). Cutting entries off the end leaves a shorter valid log; the
//! count and the last digest ([`Verified`]) are what an operator records
//! off the host to catch that.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::Signer as _;
use ml_dsa::{Keypair as _, MlDsa65};
use serde::{Deserialize, Serialize};
use sha2::Digest;

/// What the signatures are about: no other airlock message can be taken
/// for a log entry, nor one of another version of this format.
pub const DOMAIN: &[u8] = b"airlock-action-log-v1";

/// The first line of a public key file.
const PUBLIC_HEADER: &str = "airlock action log public key v1";

/// The longest line read from a log (an entry is about 5 KiB).
const MAX_LINE: u64 = 64 * 1024;

/// What the runtime decided about a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The recipe allows it: forwarded.
    Allowed,
    /// It needed a person, who approved it: forwarded.
    Approved,
    /// It needed a person, who denied it.
    Denied,
    /// It needed a person, and nobody answered in time.
    TimedOut,
    /// The recipe does not allow it.
    Refused,
}

/// One brokered request and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// When, in seconds since the epoch, by the host's clock.
    pub time: u64,
    /// The recipe's name of the service.
    pub service: String,
    /// The HTTP method.
    pub method: String,
    /// The request path.
    pub path: String,
    /// The sha256 of the request body, hex.
    pub body_sha256: String,
    /// The decision.
    pub decision: Decision,
    /// Who approved or denied it, when a person did.
    pub approver: Option<String>,
    /// The service's response status, when it was forwarded.
    pub status: Option<u16>,
}

/// The part of an entry the signatures cover, in this field order.
#[derive(Serialize)]
struct Signed<'a> {
    seq: u64,
    prev: &'a str,
    action: &'a Action,
}

/// One line of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Its place in the chain, from 0.
    pub seq: u64,
    /// sha256 of the previous line (hex).
    pub prev: String,
    /// What happened.
    pub action: Action,
    /// Ed25519 signature (base64).
    pub ed25519: String,
    /// ML-DSA-65 signature (base64).
    pub ml_dsa_65: String,
}

impl Entry {
    fn message(&self) -> Vec<u8> {
        message(self.seq, &self.prev, &self.action)
    }
}

fn message(seq: u64, prev: &str, action: &Action) -> Vec<u8> {
    let mut out = DOMAIN.to_vec();
    out.push(0);
    serde_json::to_writer(&mut out, &Signed { seq, prev, action })
        .expect("an entry always serializes");
    out
}

/// Why a key or a log could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Reading or writing failed.
    #[error("{what}: {source}")]
    Io {
        /// The file.
        what: String,
        /// Why.
        source: io::Error,
    },
    /// A key file is not one.
    #[error("{what}: {message}")]
    BadKey {
        /// The file.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// The log to append to is broken; nothing was appended.
    #[error("{0}; nothing appended")]
    Broken(Broken),
}

/// The first entry that breaks a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    /// Its line, from 1.
    pub line: u64,
    /// Its sequence number, when it could be read.
    pub seq: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "line {} (entry {seq}): {}", self.line, self.reason),
            None => write!(f, "line {}: {}", self.line, self.reason),
        }
    }
}

impl std::error::Error for Broken {}

/// A log that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// How many entries.
    pub entries: u64,
    /// The sha256 of the last line, hex (the first `prev` when empty):
    /// what the next entry will name, and what to record off the host.
    pub last: String,
}

/// The host's signing key: an Ed25519 key and an ML-DSA-65 key, both
/// derived from 64 secret bytes.
pub struct HostKey {
    seed: [u8; 64],
    ed25519: ed25519_dalek::SigningKey,
    ml_dsa: ml_dsa::SigningKey<MlDsa65>,
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostKey({})", self.public().fingerprint())
    }
}

impl HostKey {
    /// The key of these 64 secret bytes: the first 32 are the Ed25519
    /// secret key, the last 32 the ML-DSA-65 seed (FIPS 204's ξ).
    pub fn from_seed(seed: &[u8; 64]) -> HostKey {
        let ed: [u8; 32] = seed[..32].try_into().expect("32 bytes");
        let ml: [u8; 32] = seed[32..].try_into().expect("32 bytes");
        HostKey {
            seed: *seed,
            ed25519: ed25519_dalek::SigningKey::from_bytes(&ed),
            ml_dsa: ml_dsa::SigningKey::<MlDsa65>::from_seed(&ml.into()),
        }
    }

    /// A new key from the kernel's random source.
    pub fn generate() -> Result<HostKey, AuditError> {
        let mut seed = [0u8; 64];
        File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut seed))
            .map_err(|source| AuditError::Io {
                what: "/dev/urandom".to_owned(),
                source,
            })?;
        Ok(HostKey::from_seed(&seed))
    }

    /// The secret as a file holds it: 128 hex digits and a newline.
    pub fn secret_text(&self) -> String {
        format!("{}\n", hex::encode(self.seed))
    }

    /// Reads [`HostKey::secret_text`].
    pub fn parse_secret(what: &str, text: &str) -> Result<HostKey, AuditError> {
        let mut seed = [0u8; 64];
        hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| AuditError::BadKey {
            what: what.to_owned(),
            message: "expected 128 hex digits".to_owned(),
        })?;
        Ok(HostKey::from_seed(&seed))
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            ed25519: self.ed25519.verifying_key(),
            ml_dsa: self.ml_dsa.verifying_key(),
        }
    }

    /// A signed entry for `action` at `seq` after `prev`.
    pub fn sign(&self, seq: u64, prev: &str, action: Action) -> Entry {
        let message = message(seq, prev, &action);
        let ed25519 = self.ed25519.sign(&message);
        let ml_dsa = self
            .ml_dsa
            .expanded_key()
            .sign_deterministic(&message, DOMAIN)
            .expect("the context is shorter than 255 bytes");
        Entry {
            seq,
            prev: prev.to_owned(),
            action,
            ed25519: BASE64.encode(ed25519.to_bytes()),
            ml_dsa_65: BASE64.encode(ml_dsa.encode()),
        }
    }
}

/// The host's public key, as an auditor holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct PublicKey {
    ed25519: ed25519_dalek::VerifyingKey,
    ml_dsa: ml_dsa::VerifyingKey<MlDsa65>,
}

impl PublicKey {
    /// The key file's text: a header line, then `ed25519 BASE64` and
    /// `ml-dsa-65 BASE64`.
    pub fn to_text(&self) -> String {
        format!(
            "{PUBLIC_HEADER}\ned25519 {}\nml-dsa-65 {}\n",
            BASE64.encode(self.ed25519.as_bytes()),
            BASE64.encode(self.ml_dsa.encode())
        )
    }

    /// Reads [`PublicKey::to_text`].
    pub fn parse(what: &str, text: &str) -> Result<PublicKey, AuditError> {
        let bad = |message: &str| AuditError::BadKey {
            what: what.to_owned(),
            message: message.to_owned(),
        };
        let mut lines = text.lines();
        if lines.next() != Some(PUBLIC_HEADER) {
            return Err(bad(&format!("the first line is not {PUBLIC_HEADER:?}")));
        }
        let mut field = |name: &str| -> Result<Vec<u8>, AuditError> {
            let line = lines.next().unwrap_or_default();
            let value = line
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .ok_or_else(|| bad(&format!("expected a line `{name} BASE64`")))?;
            BASE64
                .decode(value)
                .map_err(|_| bad(&format!("the {name} key is not base64")))
        };
        let ed = field("ed25519")?;
        let ml = field("ml-dsa-65")?;
        let ed: [u8; 32] = ed
            .try_into()
            .map_err(|_| bad("the ed25519 key is not 32 bytes"))?;
        let ed25519 = ed25519_dalek::VerifyingKey::from_bytes(&ed)
            .map_err(|_| bad("the ed25519 key is not a curve point"))?;
        let encoded = ml_dsa::EncodedVerifyingKey::<MlDsa65>::try_from(ml.as_slice())
            .map_err(|_| bad("the ml-dsa-65 key is not 1952 bytes"))?;
        Ok(PublicKey {
            ed25519,
            ml_dsa: ml_dsa::VerifyingKey::<MlDsa65>::decode(&encoded),
        })
    }

    /// sha256 over both keys' encodings, hex: what the operator records
    /// off the host at first boot.
    pub fn fingerprint(&self) -> String {
        let mut hasher = sha2::Sha256::new();
        hasher.update(self.ed25519.as_bytes());
        hasher.update(self.ml_dsa.encode());
        hex::encode(hasher.finalize())
    }

    /// The `prev` of the first entry of a log signed by this key.
    pub fn genesis(&self) -> String {
        let mut hasher = sha2::Sha256::new();
        hasher.update(DOMAIN);
        hasher.update([0]);
        hasher.update(self.fingerprint());
        hex::encode(hasher.finalize())
    }

    fn check(&self, entry: &Entry) -> Result<(), &'static str> {
        let message = entry.message();
        let ed = BASE64
            .decode(&entry.ed25519)
            .ok()
            .and_then(|b| ed25519_dalek::Signature::from_slice(&b).ok())
            .ok_or("the Ed25519 signature is not one")?;
        self.ed25519
            .verify_strict(&message, &ed)
            .map_err(|_| "the Ed25519 signature does not verify")?;
        let ml = BASE64
            .decode(&entry.ml_dsa_65)
            .ok()
            .and_then(|b| ml_dsa::Signature::<MlDsa65>::try_from(b.as_slice()).ok())
            .ok_or("the ML-DSA-65 signature is not one")?;
        if !self.ml_dsa.verify_with_context(&message, DOMAIN, &ml) {
            return Err("the ML-DSA-65 signature does not verify");
        }
        Ok(())
    }
}

fn line_digest(line: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(line))
}

/// Checks a whole log against `key`; the first entry that breaks it, or
/// what the log holds.
pub fn verify(log: impl Read, key: &PublicKey) -> Result<Verified, Broken> {
    let mut reader = BufReader::new(log);
    let mut expected_prev = key.genesis();
    let mut count = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let number = count + 1;
        let broken = |seq: Option<u64>, reason: String| Broken {
            line: number,
            seq,
            reason,
        };
        let read = (&mut reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| broken(None, format!("unreadable: {e}")))?;
        if read == 0 {
            return Ok(Verified {
                entries: count,
                last: expected_prev,
            });
        }
        if line.last() != Some(&b'\n') {
            return Err(broken(
                None,
                if read as u64 > MAX_LINE {
                    format!("longer than {MAX_LINE} bytes")
                } else {
                    "the last line is cut short (no newline)".to_owned()
                },
            ));
        }
        let bytes = &line[..line.len() - 1];
        let entry: Entry = serde_json::from_slice(bytes)
            .map_err(|e| broken(None, format!("not a log entry: {e}")))?;
        key.check(&entry).map_err(|reason| {
            broken(Some(entry.seq), format!("{reason}: the entry was changed"))
        })?;
        if entry.seq != count {
            return Err(broken(
                Some(entry.seq),
                format!(
                    "entry {} stands where entry {count} belongs: entries were removed or reordered",
                    entry.seq
                ),
            ));
        }
        if entry.prev != expected_prev {
            return Err(broken(
                Some(entry.seq),
                "does not follow the line before it (its prev is not that line's sha256)"
                    .to_owned(),
            ));
        }
        expected_prev = line_digest(bytes);
        count += 1;
    }
}

/// Appends to a log, continuing its chain.
#[derive(Debug)]
pub struct Writer {
    file: File,
    key: HostKey,
    next: u64,
    prev: String,
}

impl Writer {
    /// Opens (or creates) the log at `path`, verifying what is there with
    /// `key`: a broken log is never appended to.
    pub fn open(path: &Path, key: HostKey) -> Result<Writer, AuditError> {
        let io_error = |source| AuditError::Io {
            what: path.display().to_string(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io_error)?;
        let verified = verify(&file, &key.public()).map_err(AuditError::Broken)?;
        Ok(Writer {
            file,
            key,
            next: verified.entries,
            prev: verified.last,
        })
    }

    /// Signs `action` as the next entry, writes it and syncs it to disk
    /// before returning.
    pub fn append(&mut self, action: Action) -> Result<Entry, AuditError> {
        let entry = self.key.sign(self.next, &self.prev, action);
        let line = serde_json::to_vec(&entry).expect("an entry always serializes");
        let mut bytes = line.clone();
        bytes.push(b'\n');
        let io_error = |source| AuditError::Io {
            what: "the action log".to_owned(),
            source,
        };
        self.file.write_all(&bytes).map_err(io_error)?;
        self.file.sync_data().map_err(io_error)?;
        self.next += 1;
        self.prev = line_digest(&line);
        Ok(entry)
    }
}

#[cfg(test)]
mod tests;
