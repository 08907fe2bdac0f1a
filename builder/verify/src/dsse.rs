//! DSSE envelopes (https://github.com/secure-systems-lab/dsse) holding
//! in-toto statements, signed with ECDSA P-256 / SHA-256 keys in cosign's
//! public key format (PEM SubjectPublicKeyInfo).

use std::path::Path;

use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::pkcs8::DecodePublicKey;
use serde::{Deserialize, Serialize};

/// The in-toto payload type.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
/// in-toto Statement v1.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// SLSA provenance v1.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

/// A DSSE envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Envelope {
    /// Base64 of the payload.
    pub payload: String,
    /// What the payload is.
    pub payload_type: String,
    /// Signatures over the PAE of type and payload.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One DSSE signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    /// Key id: sha256 of the DER public key, hex.
    #[serde(default)]
    pub keyid: String,
    /// Base64 of the ASN.1 DER ECDSA signature.
    pub sig: String,
}

/// DSSE's pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A builder's public key.
#[derive(Clone, Debug)]
pub struct BuilderKey {
    /// Where it came from.
    pub name: String,
    /// sha256 of its DER SubjectPublicKeyInfo, hex.
    pub keyid: String,
    key: p256::ecdsa::VerifyingKey,
}

impl BuilderKey {
    /// Parses a cosign public key (PEM).
    pub fn from_pem(name: &str, pem: &str) -> Result<BuilderKey, String> {
        let key = p256::ecdsa::VerifyingKey::from_public_key_pem(pem)
            .map_err(|e| format!("{name}: not an ECDSA P-256 public key: {e}"))?;
        let der = p256::pkcs8::EncodePublicKey::to_public_key_der(&key)
            .map_err(|e| format!("{name}: {e}"))?;
        Ok(BuilderKey {
            name: name.to_owned(),
            keyid: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(der.as_bytes())),
            key,
        })
    }

    /// Reads every `*.pub` in `dir`, sorted by name.
    pub fn read_dir(dir: &Path) -> std::io::Result<Vec<BuilderKey>> {
        let mut names: Vec<_> = std::fs::read_dir(dir)?
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "pub"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path)?;
                BuilderKey::from_pem(&path.display().to_string(), &text)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            })
            .collect()
    }

    /// Whether `signature` (DER) over `message` is this key's.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        p256::ecdsa::Signature::from_der(signature)
            .is_ok_and(|sig| self.key.verify(message, &sig).is_ok())
    }
}

/// Why an envelope does not open.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not a DSSE envelope, or its payload is not base64.
    #[error("{0}")]
    Malformed(String),
    /// Another payload type than in-toto's.
    #[error("payload type {0:?}, expected {IN_TOTO:?}")]
    PayloadType(String),
    /// No signature by one of the keys: the key ids it was signed by (`?`
    /// where a signature names none), empty when it has no signature.
    #[error("no signature by a trusted builder key")]
    Untrusted(Vec<String>),
}

/// Parses an envelope and returns its payload and the name of the key that
/// signed it, if one of `keys` did.
pub fn open(bytes: &[u8], keys: &[BuilderKey]) -> Result<(Vec<u8>, String), OpenError> {
    let envelope: Envelope = serde_json::from_slice(bytes)
        .map_err(|e| OpenError::Malformed(format!("not a DSSE envelope: {e}")))?;
    if envelope.payload_type != IN_TOTO {
        return Err(OpenError::PayloadType(envelope.payload_type));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64
        .decode(&envelope.payload)
        .map_err(|e| OpenError::Malformed(format!("payload is not base64: {e}")))?;
    let message = pae(&envelope.payload_type, &payload);
    for signature in &envelope.signatures {
        let Ok(sig) = b64.decode(&signature.sig) else {
            continue;
        };
        if let Some(key) = keys.iter().find(|k| k.verifies(&message, &sig)) {
            return Ok((payload, key.name.clone()));
        }
    }
    Err(OpenError::Untrusted(
        envelope
            .signatures
            .iter()
            .map(|s| {
                if s.keyid.is_empty() {
                    "?".to_owned()
                } else {
                    s.keyid.clone()
                }
            })
            .collect(),
    ))
}

/// The parts of an in-toto statement the verifier reads.
#[derive(Clone, Debug, Deserialize)]
pub struct Statement {
    /// Statement type.
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// Subjects.
    pub subject: Vec<Subject>,
    /// Predicate type.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The predicate.
    pub predicate: serde_json::Value,
}

/// One subject.
#[derive(Clone, Debug, Deserialize)]
pub struct Subject {
    /// Name (a bundle path, or `ostree:BRANCH`).
    pub name: String,
    /// Digests by algorithm.
    pub digest: std::collections::BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_spec_example() {
        // From the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }
}
