//! The release signatures: detached OpenPGP signatures over manifest.json
//! by the host's pinned keys, k of n distinct keys.

use std::collections::BTreeSet;
use std::path::Path;

use openpgp::cert::{Cert, CertParser};
use openpgp::packet::{Packet, Signature};
use openpgp::parse::{PacketParser, PacketParserResult, Parse};
use openpgp::policy::{Policy as _, StandardPolicy};
use openpgp::types::SignatureType;
use sequoia_openpgp as openpgp;

use crate::Rejection;

/// The largest signature file read.
pub const MAX_SIGNATURES_FILE: u64 = 1 << 20;
/// The most signatures read from it.
pub const MAX_SIGNATURES: usize = 64;

/// What the signature check found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Approvals {
    /// Primary fingerprints of the distinct trusted keys with a good signature.
    pub signers: Vec<String>,
    /// How many were needed.
    pub threshold: usize,
}

/// Reads every signature packet from armored (possibly several concatenated
/// blocks) or binary data.
pub fn read_signatures(data: &[u8]) -> Result<Vec<Signature>, String> {
    let text = std::str::from_utf8(data).ok();
    let blocks: Vec<Vec<u8>> = match text {
        Some(text) if text.contains("-----BEGIN PGP SIGNATURE-----") => text
            .split_inclusive("-----END PGP SIGNATURE-----")
            .filter(|part| part.contains("-----BEGIN PGP SIGNATURE-----"))
            .map(|part| {
                let start = part.find("-----BEGIN").expect("checked");
                let mut reader = openpgp::armor::Reader::from_bytes(
                    &part.as_bytes()[start..],
                    openpgp::armor::ReaderMode::Tolerant(Some(openpgp::armor::Kind::Signature)),
                );
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut reader, &mut bytes)
                    .map(|_| bytes)
                    .map_err(|e| format!("bad armor: {e}"))
            })
            .collect::<Result<_, _>>()?,
        _ => vec![data.to_vec()],
    };
    let mut out = Vec::new();
    for block in blocks {
        let mut ppr = PacketParser::from_bytes(&block).map_err(|e| e.to_string())?;
        while let PacketParserResult::Some(pp) = ppr {
            let (packet, next) = pp.next().map_err(|e| e.to_string())?;
            ppr = next;
            match packet {
                Packet::Signature(sig) => out.push(sig),
                other => return Err(format!("unexpected {} packet", other.tag())),
            }
            if out.len() > MAX_SIGNATURES {
                return Err(format!("more than {MAX_SIGNATURES} signatures"));
            }
        }
    }
    Ok(out)
}

/// Reads every certificate in `dir` (`*.asc`, `*.pgp`, `*.cert`), sorted by
/// file name.
pub fn read_certs(dir: &Path) -> std::io::Result<Vec<Cert>> {
    let mut names: Vec<_> = std::fs::read_dir(dir)?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "asc" || e == "pgp" || e == "cert")
        })
        .collect();
    names.sort();
    let mut certs = Vec::new();
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
            certs.push(cert.strip_secret_key_material());
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

/// Checks the signatures over `message` against `certs`; `now` is the time
/// keys and signatures must be valid at.
pub fn check(
    message: &[u8],
    signatures: &[Signature],
    certs: &[Cert],
    threshold: usize,
    now: std::time::SystemTime,
) -> Result<Approvals, Rejection> {
    let policy = StandardPolicy::new();
    let mut good: Vec<String> = Vec::new();
    let mut untrusted = Vec::new();
    let mut duplicates = BTreeSet::new();
    let mut bad = Vec::new();
    for sig in signatures {
        if sig.typ() != SignatureType::Binary {
            bad.push(format!(
                "a {} signature, not a binary document signature",
                sig.typ()
            ));
            continue;
        }
        let issuers = sig.get_issuers();
        let signer = certs.iter().find_map(|cert| {
            let valid = cert.with_policy(&policy, now).ok()?;
            valid
                .keys()
                .for_signing()
                .alive()
                .revoked(false)
                .find(|ka| issuers.iter().any(|h| h.aliases(ka.key().key_handle())))
                .map(|ka| (cert, ka.key().clone()))
        });
        let Some((cert, key)) = signer else {
            let known = certs.iter().any(|cert| {
                cert.keys()
                    .any(|ka| issuers.iter().any(|h| h.aliases(ka.key().key_handle())))
            });
            let issuer = issuers
                .first()
                .map_or_else(|| "no issuer".to_owned(), |h| h.to_hex());
            if known {
                bad.push(format!(
                    "by {issuer}, whose key is expired, revoked or not valid for signing"
                ));
            } else {
                untrusted.push(issuer);
            }
            continue;
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
        return Ok(Approvals {
            signers: good,
            threshold,
        });
    }
    // Not enough: say why, the most specific reason first.
    if signatures.is_empty() {
        return Err(Rejection::Unsigned);
    }
    if let Some(reason) = bad.into_iter().next() {
        return Err(Rejection::BadSignature { reason });
    }
    if let Some(issuer) = untrusted.into_iter().next() {
        return Err(Rejection::UntrustedSigner {
            issuer,
            have: good.len(),
            need: threshold,
        });
    }
    if let Some(fingerprint) = duplicates.into_iter().next() {
        return Err(Rejection::DuplicateSigner {
            fingerprint,
            have: good.len(),
            need: threshold,
        });
    }
    Err(Rejection::BelowThreshold {
        have: good.len(),
        need: threshold,
    })
}
