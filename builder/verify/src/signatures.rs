//! The release signatures: detached OpenPGP signatures over manifest.json
//! by the host's pinned keys, k of n distinct keys.
//!
//! The signature file is read strictly: it is OpenPGP signature packets
//! (binary, or armored blocks with nothing but whitespace around them and
//! no armor headers), and each packet's unsigned part carries only the
//! issuer. Nothing else may ride along on the medium unverified.
//!
//! A signature counts when its key was bound to a pinned certificate and
//! alive when it signed, is still alive at the host's time, and neither the
//! certificate nor the key is revoked for it: a hard revocation (no reason,
//! key compromised, or an unknown reason) voids every signature, whenever
//! made; a soft one (superseded, retired, user id no longer valid) voids the
//! signatures made after it.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::SystemTime;

use openpgp::cert::amalgamation::ValidAmalgamation;
use openpgp::cert::{Cert, CertParser};
use openpgp::packet::signature::subpacket::SubpacketTag;
use openpgp::packet::{Key, Packet, Signature, key};
use openpgp::parse::{Dearmor, PacketParserBuilder, PacketParserResult, Parse};
use openpgp::policy::{Policy as _, StandardPolicy};
use openpgp::serialize::MarshalInto;
use openpgp::types::{RevocationStatus, RevocationType, SignatureType};
use sequoia_openpgp as openpgp;

use crate::Rejection;

/// The largest signature file read.
pub const MAX_SIGNATURES_FILE: u64 = 1 << 20;
/// The most signatures read from it.
pub const MAX_SIGNATURES: usize = 64;
/// The largest one signature packet may be (an RSA-4096 signature with the
/// usual subpackets is about 600 bytes).
pub const MAX_SIGNATURE_PACKET: usize = 4096;

const BEGIN: &str = "-----BEGIN PGP SIGNATURE-----";
const END: &str = "-----END PGP SIGNATURE-----";

/// Why a signature file was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureFileError {
    /// It is not OpenPGP signatures at all, or a packet is damaged.
    #[error("{0}")]
    Malformed(String),
    /// Well-formed signatures, but bytes beside them that are not part of
    /// any signature.
    #[error("{what} at byte {offset}")]
    ExtraData {
        /// Where the first such byte is.
        offset: usize,
        /// What it is.
        what: String,
    },
}

fn extra(offset: usize, what: impl Into<String>) -> SignatureFileError {
    SignatureFileError::ExtraData {
        offset,
        what: what.into(),
    }
}

/// What the signature check found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Approvals {
    /// Primary fingerprints of the distinct trusted keys with a good signature.
    pub signers: Vec<String>,
    /// How many were needed.
    pub threshold: usize,
    /// Issuers of signatures by keys the host does not pin (not counted).
    pub ignored: Vec<String>,
}

/// Reads every signature packet from armored (possibly several
/// concatenated blocks) or binary data, refusing anything else.
pub fn read_signatures(data: &[u8]) -> Result<Vec<Signature>, SignatureFileError> {
    let first = data.iter().position(|b| !b.is_ascii_whitespace());
    let armored = first.is_some_and(|at| data[at..].starts_with(BEGIN.as_bytes()));
    let mut out = Vec::new();
    if armored {
        for (offset, block) in armor_blocks(data)? {
            let decoded = dearmor(block).map_err(|e| {
                SignatureFileError::Malformed(format!("bad armor at byte {offset}: {e}"))
            })?;
            read_packets(&decoded, offset, &mut out)?;
        }
    } else {
        read_packets(data, 0, &mut out)?;
    }
    Ok(out)
}

/// Splits armored text into its blocks (with their offsets), refusing any
/// byte outside a block that is not whitespace.
fn armor_blocks(data: &[u8]) -> Result<Vec<(usize, &[u8])>, SignatureFileError> {
    let mut blocks = Vec::new();
    let mut at = 0;
    loop {
        while at < data.len() && data[at].is_ascii_whitespace() {
            at += 1;
        }
        if at == data.len() {
            return Ok(blocks);
        }
        if !data[at..].starts_with(BEGIN.as_bytes()) {
            return Err(extra(at, "data outside any armored signature block"));
        }
        let Some(length) = find(&data[at..], END.as_bytes()) else {
            return Err(SignatureFileError::Malformed(format!(
                "the armored block at byte {at} has no end line"
            )));
        };
        let end = at + length + END.len();
        blocks.push((at, &data[at..end]));
        at = end;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decodes one armored block: the begin line, one empty line (no armor
/// headers: a header is text nobody signed), base64 lines, an optional
/// checksum line, the end line.
fn dearmor(block: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(block).map_err(|_| "not ASCII".to_owned())?;
    let mut lines = text.lines();
    lines.next(); // the begin line
    if lines.next().map(str::trim_end) != Some("") {
        return Err("armor headers are not accepted".to_owned());
    }
    for line in lines {
        let line = line.trim_end();
        if line == END {
            break;
        }
        let base64 = line.strip_prefix('=').unwrap_or(line);
        if !base64
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
        {
            return Err(format!("{line:?} is not base64"));
        }
    }
    let mut reader = openpgp::armor::Reader::from_bytes(
        block,
        openpgp::armor::ReaderMode::Tolerant(Some(openpgp::armor::Kind::Signature)),
    );
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Parses binary OpenPGP data that must be signature packets and nothing
/// else.
fn read_packets(
    data: &[u8],
    offset: usize,
    out: &mut Vec<Signature>,
) -> Result<(), SignatureFileError> {
    let before = out.len();
    // Binary only: the parser would otherwise look for armor anywhere and
    // skip what comes before it.
    let parser = PacketParserBuilder::from_bytes(data)
        .map(|builder| builder.dearmor(Dearmor::Disabled))
        .and_then(PacketParserBuilder::build);
    let mut ppr = match parser {
        Ok(ppr) => ppr,
        Err(e) if before == 0 => return Err(SignatureFileError::Malformed(e.to_string())),
        Err(_) => return Err(extra(offset, "data that is not an OpenPGP packet")),
    };
    while let PacketParserResult::Some(pp) = ppr {
        let (packet, next) = match pp.next() {
            Ok(step) => step,
            Err(e) if out.is_empty() => return Err(SignatureFileError::Malformed(e.to_string())),
            Err(e) => {
                return Err(extra(
                    offset,
                    format!(
                        "data after signature {} that is not a packet ({e})",
                        out.len()
                    ),
                ));
            }
        };
        ppr = next;
        let sig = match packet {
            Packet::Signature(sig) => sig,
            other if out.is_empty() => {
                return Err(SignatureFileError::Malformed(format!(
                    "a {} packet, not a signature",
                    other.tag()
                )));
            }
            other => {
                return Err(extra(
                    offset,
                    format!("a {} packet after signature {}", other.tag(), out.len()),
                ));
            }
        };
        check_packet(&sig, out.len() + 1, offset)?;
        out.push(sig);
        if out.len() > MAX_SIGNATURES {
            return Err(SignatureFileError::Malformed(format!(
                "more than {MAX_SIGNATURES} signatures"
            )));
        }
    }
    if out.len() == before && !data.is_empty() {
        return Err(extra(offset, "an armored block with no signature in it"));
    }
    Ok(())
}

/// The unsigned parts of a signature packet: only the issuer subpackets
/// may be there, and the packet is small.
fn check_packet(sig: &Signature, number: usize, offset: usize) -> Result<(), SignatureFileError> {
    let size = sig.serialized_len();
    if size > MAX_SIGNATURE_PACKET {
        return Err(extra(
            offset,
            format!("signature {number} is {size} bytes, more than {MAX_SIGNATURE_PACKET}"),
        ));
    }
    for subpacket in sig.unhashed_area().iter() {
        match subpacket.tag() {
            SubpacketTag::Issuer | SubpacketTag::IssuerFingerprint => {}
            tag => {
                return Err(extra(
                    offset,
                    format!("signature {number} carries an unsigned {tag:?} subpacket"),
                ));
            }
        }
    }
    Ok(())
}

/// Reads every certificate in `dir` (`*.asc`, `*.pgp`, `*.cert`, and
/// revocation certificates `*.rev`), sorted by file name. Copies of one
/// certificate are merged, so a revocation in any file applies.
pub fn read_certs(dir: &Path) -> std::io::Result<Vec<Cert>> {
    let mut names: Vec<_> = std::fs::read_dir(dir)?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "asc" || e == "pgp" || e == "cert" || e == "rev")
        })
        .collect();
    names.sort();
    let mut certs: Vec<Cert> = Vec::new();
    for name in names {
        let bytes = std::fs::read(&name)?;
        for cert in CertParser::from_bytes(&bytes).map_err(|e| invalid(&name, e))? {
            let cert = cert.map_err(|e| invalid(&name, e))?;
            if cert.is_tsk() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{}: holds secret key material; a trust directory holds public keys only",
                        name.display()
                    ),
                ));
            }
            let cert = cert.strip_secret_key_material();
            match certs
                .iter_mut()
                .find(|known| known.fingerprint() == cert.fingerprint())
            {
                Some(known) => {
                    *known = known
                        .clone()
                        .merge_public(cert)
                        .map_err(|e| invalid(&name, e))?;
                }
                None => certs.push(cert),
            }
        }
    }
    Ok(certs)
}

fn invalid(path: &Path, error: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{}: {error}", path.display()),
    )
}

/// Why a signature by a pinned key does not count.
enum Void {
    /// The signature itself is bad or unusable.
    Bad(String),
    /// The certificate or the signing key is revoked for it.
    Revoked(String),
    /// The certificate or the signing key was not alive when it signed, or
    /// is not alive now.
    Expired(String),
}

/// Judges one signature by `cert`: the key that made it, if it counts.
fn judge(
    sig: &Signature,
    cert: &Cert,
    policy: &StandardPolicy<'_>,
    now: SystemTime,
) -> Result<Key<key::PublicParts, key::UnspecifiedRole>, Void> {
    let fingerprint = cert.fingerprint().to_hex();
    let issuers = sig.get_issuers();
    let Some(made) = sig.signature_creation_time() else {
        return Err(Void::Bad(format!("by {fingerprint} has no creation time")));
    };
    // The key as bound when it signed.
    let at_signing = cert.with_policy(policy, made).map_err(|e| {
        Void::Expired(format!(
            "{fingerprint} was not valid when it signed ({})",
            crate::time::format(unix(made))
        ))
        .or_reason(e)
    })?;
    let key = at_signing
        .keys()
        .for_signing()
        .key_handles(issuers.iter())
        .next()
        .ok_or_else(|| {
            Void::Expired(format!(
                "{fingerprint} had no signing key matching the signature when it signed"
            ))
        })?;
    // Revocations: a hard one at any time; a soft one only if it came
    // before the signature (revocation_status at `made` applies both rules).
    if let RevocationStatus::Revoked(revocations) = cert.revocation_status(policy, made) {
        return Err(Void::Revoked(format!(
            "certificate {fingerprint}: {}",
            describe(&revocations)
        )));
    }
    if let RevocationStatus::Revoked(revocations) = key.revocation_status() {
        return Err(Void::Revoked(format!(
            "signing key {} of {fingerprint}: {}",
            key.key().fingerprint().to_hex(),
            describe(&revocations)
        )));
    }
    if let Err(e) = key.alive() {
        return Err(Void::Expired(format!("{fingerprint}: {e} when it signed")));
    }
    // Still alive at the host's time: an expired certificate approves
    // nothing new.
    let at_now = cert
        .with_policy(policy, now)
        .map_err(|e| Void::Expired(format!("{fingerprint} is not valid now")).or_reason(e))?;
    let still = at_now
        .keys()
        .key_handle(key.key().key_handle())
        .next()
        .ok_or_else(|| Void::Expired(format!("{fingerprint}: the signing key is not bound now")))?;
    if let Err(e) = still.alive() {
        return Err(Void::Expired(format!("{fingerprint}: {e}")));
    }
    Ok(key.key().clone().role_into_unspecified())
}

impl Void {
    fn or_reason(self, error: impl std::fmt::Display) -> Void {
        match self {
            Void::Expired(text) => Void::Expired(format!("{text}: {error}")),
            other => other,
        }
    }
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A revocation's reason, kind and date, for the rejection.
fn describe(revocations: &[&Signature]) -> String {
    revocations
        .iter()
        .map(|rev| {
            let (reason, message) = rev.reason_for_revocation().map_or(
                ("no reason given".to_owned(), String::new()),
                |(code, text)| (code.to_string(), String::from_utf8_lossy(text).into_owned()),
            );
            let kind = match rev
                .reason_for_revocation()
                .map(|(code, _)| code.revocation_type())
            {
                Some(RevocationType::Soft) => "soft",
                _ => "hard",
            };
            let date = rev
                .signature_creation_time()
                .map_or_else(|| "undated".to_owned(), |t| crate::time::format(unix(t)));
            if message.is_empty() {
                format!("{kind} revocation ({reason}) of {date}")
            } else {
                format!("{kind} revocation ({reason}: {message:?}) of {date}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Checks the signatures over `message` against `certs`; `now` is the time
/// keys must still be valid at.
pub fn check(
    message: &[u8],
    signatures: &[Signature],
    certs: &[Cert],
    threshold: usize,
    now: SystemTime,
) -> Result<Approvals, Rejection> {
    let policy = StandardPolicy::new();
    let mut good: Vec<String> = Vec::new();
    let mut untrusted = Vec::new();
    let mut duplicates = BTreeSet::new();
    let mut bad = Vec::new();
    let mut revoked = Vec::new();
    let mut expired = Vec::new();
    for sig in signatures {
        if sig.typ() != SignatureType::Binary {
            bad.push(format!(
                "a {} signature, not a binary document signature",
                sig.typ()
            ));
            continue;
        }
        let issuers = sig.get_issuers();
        let Some(cert) = certs.iter().find(|cert| {
            cert.keys()
                .any(|ka| issuers.iter().any(|h| h.aliases(ka.key().key_handle())))
        }) else {
            untrusted.push(
                issuers
                    .first()
                    .map_or_else(|| "no issuer".to_owned(), |h| h.to_hex()),
            );
            continue;
        };
        let key = match judge(sig, cert, &policy, now) {
            Ok(key) => key,
            Err(Void::Bad(reason)) => {
                bad.push(reason);
                continue;
            }
            Err(Void::Revoked(reason)) => {
                revoked.push(reason);
                continue;
            }
            Err(Void::Expired(reason)) => {
                expired.push(reason);
                continue;
            }
        };
        let fingerprint = cert.fingerprint().to_hex();
        let verified = sig.verify_message(&key, message).is_ok()
            && policy
                .signature(sig, openpgp::policy::HashAlgoSecurity::CollisionResistance)
                .is_ok()
            && sig
                .signature_alive(now, std::time::Duration::from_secs(300))
                .is_ok();
        if !verified {
            bad.push(format!("by {fingerprint} does not match manifest.json"));
        } else if good.contains(&fingerprint) {
            duplicates.insert(fingerprint);
        } else {
            good.push(fingerprint);
        }
    }
    if good.len() >= threshold {
        good.sort();
        untrusted.sort();
        return Ok(Approvals {
            signers: good,
            threshold,
            ignored: untrusted,
        });
    }
    // Not enough: say why, the most specific reason first.
    let (have, need) = (good.len(), threshold);
    if signatures.is_empty() {
        return Err(Rejection::Unsigned);
    }
    if let Some(reason) = bad.into_iter().next() {
        return Err(Rejection::BadSignature { reason });
    }
    if let Some(reason) = revoked.into_iter().next() {
        return Err(Rejection::RevokedSigner { reason, have, need });
    }
    if let Some(reason) = expired.into_iter().next() {
        return Err(Rejection::ExpiredSigner { reason, have, need });
    }
    if let Some(issuer) = untrusted.into_iter().next() {
        return Err(Rejection::UntrustedSigner { issuer, have, need });
    }
    if let Some(fingerprint) = duplicates.into_iter().next() {
        return Err(Rejection::DuplicateSigner {
            fingerprint,
            have,
            need,
        });
    }
    Err(Rejection::BelowThreshold { have, need })
}

#[cfg(test)]
mod tests;
