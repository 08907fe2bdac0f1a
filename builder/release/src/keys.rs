//! Keys: the builder's (ECDSA P-256 in cosign's encrypted key format,
//! through the sigstore crate) and the release approvers' (OpenPGP, RFC 4880
//! profile so gpg and sq read them, with an explicit validity period).

use std::path::{Path, PathBuf};
use std::time::Duration;

use openpgp::cert::{CertBuilder, CipherSuite};
use openpgp::crypto::Password;
use openpgp::packet::Packet;
use openpgp::packet::signature::SignatureBuilder;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::{Marshal, MarshalInto};
use openpgp::types::SignatureType;
use p256::pkcs8::DecodePrivateKey;
use sequoia_openpgp as openpgp;
use sigstore::crypto::SigningScheme;
use sigstore::crypto::signing_key::SigStoreKeyPair;

use crate::ReleaseError;

fn key_error(what: impl std::fmt::Display) -> impl FnOnce(anyhow::Error) -> ReleaseError {
    let what = what.to_string();
    move |e| ReleaseError::Key {
        what,
        message: format!("{e:#}"),
    }
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ReleaseError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(crate::io(path.display()))?;
    file.write_all(bytes).map_err(crate::io(path.display()))?;
    file.sync_all().map_err(crate::io(path.display()))
}

/// Files written by a key generation.
#[derive(Debug)]
pub struct Generated {
    /// The secret key (0600).
    pub secret: PathBuf,
    /// The public key, for trust directories.
    pub public: PathBuf,
    /// A revocation certificate, for release keys.
    pub revocation: Option<PathBuf>,
    /// Fingerprint or key id.
    pub id: String,
}

/// Generates a builder key: `DIR/NAME.key` (cosign's encrypted PEM) and
/// `DIR/NAME.pub` (PEM public key).
pub fn generate_builder(
    dir: &Path,
    name: &str,
    password: &[u8],
) -> Result<Generated, ReleaseError> {
    let generate = || -> Result<(String, String, String), anyhow::Error> {
        let signer = SigningScheme::ECDSA_P256_SHA256_ASN1.create_signer()?;
        let pair = signer.to_sigstore_keypair()?;
        let secret = pair.private_key_to_encrypted_pem(password)?.to_string();
        let public = pair.public_key_to_pem()?;
        let key = airlock_verify::dsse::BuilderKey::from_pem(name, &public)
            .map_err(anyhow::Error::msg)?;
        Ok((secret, public, key.keyid))
    };
    let (secret, public, keyid) = generate().map_err(key_error("generating the builder key"))?;
    std::fs::create_dir_all(dir).map_err(crate::io(dir.display()))?;
    let (secret_path, public_path) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    );
    write_new(&secret_path, secret.as_bytes(), 0o600)?;
    write_new(&public_path, public.as_bytes(), 0o644)?;
    Ok(Generated {
        secret: secret_path,
        public: public_path,
        revocation: None,
        id: keyid,
    })
}

/// A builder's signing key, loaded.
pub struct BuilderSigner {
    key: p256::ecdsa::SigningKey,
    /// sha256 of the DER public key, hex.
    pub keyid: String,
}

impl std::fmt::Debug for BuilderSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuilderSigner")
            .field("keyid", &self.keyid)
            .finish()
    }
}

impl BuilderSigner {
    /// Loads a cosign-format key (encrypted or not) through the sigstore
    /// crate. Signing then uses the same key with RFC 6979 deterministic
    /// nonces, so that a bundle's bytes depend only on its content.
    pub fn load(path: &Path, password: &[u8]) -> Result<BuilderSigner, ReleaseError> {
        let pem = std::fs::read(path).map_err(crate::io(path.display()))?;
        let load = || -> Result<BuilderSigner, anyhow::Error> {
            let text = String::from_utf8_lossy(&pem);
            let pair = if text.contains("ENCRYPTED") {
                SigStoreKeyPair::from_encrypted_pem(&pem, password)?
            } else {
                SigStoreKeyPair::from_pem(&pem)?
            };
            let der = pair.private_key_to_der()?;
            let key = p256::ecdsa::SigningKey::from_pkcs8_der(&der)
                .map_err(|e| anyhow::anyhow!(format!("not an ECDSA P-256 key: {e}")))?;
            let public = pair.public_key_to_pem()?;
            let keyid = airlock_verify::dsse::BuilderKey::from_pem("builder", &public)
                .map_err(anyhow::Error::msg)?
                .keyid;
            Ok(BuilderSigner { key, keyid })
        };
        load().map_err(key_error(path.display()))
    }

    /// An ASN.1 DER ECDSA P-256 / SHA-256 signature.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer;
        let signature: p256::ecdsa::Signature = self.key.sign(message);
        signature.to_der().as_bytes().to_vec()
    }
}

/// Generates a release approver's key: `DIR/NAME.key` (secret, armored,
/// encrypted when a password is given), `DIR/NAME.asc` (public certificate)
/// and `DIR/NAME.rev` (revocation certificate).
pub fn generate_release(
    dir: &Path,
    name: &str,
    user_id: &str,
    validity: Duration,
    password: Option<&[u8]>,
) -> Result<Generated, ReleaseError> {
    /// Armored secret key, public certificate, revocation; fingerprint.
    struct Made(Vec<u8>, Vec<u8>, Vec<u8>, String);
    let generate = || -> Result<Made, anyhow::Error> {
        let (cert, revocation) = CertBuilder::new()
            .set_cipher_suite(CipherSuite::Cv25519)
            .set_profile(openpgp::Profile::RFC4880)?
            .add_userid(user_id)
            .add_signing_subkey()
            .set_validity_period(validity)
            .set_password(password.map(Password::from))
            .generate()?;
        let secret = cert.as_tsk().armored().to_vec()?;
        let public = cert.armored().to_vec()?;
        let mut rev = Vec::new();
        {
            let mut writer =
                openpgp::armor::Writer::new(&mut rev, openpgp::armor::Kind::PublicKey)?;
            let revoked = cert.clone().insert_packets(Packet::from(revocation))?.0;
            revoked.serialize(&mut writer)?;
            writer.finalize()?;
        }
        Ok(Made(secret, public, rev, cert.fingerprint().to_hex()))
    };
    let Made(secret, public, rev, fingerprint) =
        generate().map_err(key_error("generating the release key"))?;
    std::fs::create_dir_all(dir).map_err(crate::io(dir.display()))?;
    let paths = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.asc")),
        dir.join(format!("{name}.rev")),
    );
    write_new(&paths.0, &secret, 0o600)?;
    write_new(&paths.1, &public, 0o644)?;
    write_new(&paths.2, &rev, 0o600)?;
    Ok(Generated {
        secret: paths.0,
        public: paths.1,
        revocation: Some(paths.2),
        id: fingerprint,
    })
}

/// Adds a detached signature over `manifest` by the release key in
/// `key_file` to the armored signatures `existing`, replacing an earlier
/// signature by the same key. Returns the new armored text and the
/// signer's fingerprint.
pub fn sign_manifest(
    manifest: &[u8],
    existing: Option<&[u8]>,
    key_file: &Path,
    password: Option<&[u8]>,
) -> Result<(Vec<u8>, String), ReleaseError> {
    let bytes = std::fs::read(key_file).map_err(crate::io(key_file.display()))?;
    let sign = || -> Result<(Vec<u8>, String), anyhow::Error> {
        let cert = openpgp::Cert::from_bytes(&bytes)?;
        let policy = StandardPolicy::new();
        let key = cert
            .keys()
            .with_policy(&policy, None)
            .supported()
            .alive()
            .revoked(false)
            .for_signing()
            .secret()
            .next()
            .ok_or_else(|| {
                anyhow::anyhow!(format!(
                    "{} has no secret signing key that is valid now (expired or revoked?)",
                    cert.fingerprint()
                ))
            })?
            .key()
            .clone();
        let key = if key.secret().is_encrypted() {
            let password = password.ok_or_else(|| {
                anyhow::anyhow!("the key is encrypted: set AIRLOCK_KEY_PASSWORD".to_owned())
            })?;
            key.decrypt_secret(&Password::from(password))
                .map_err(|_| anyhow::anyhow!("wrong password for the key".to_owned()))?
        } else {
            key
        };
        let mut pair = key.into_keypair()?;
        let signature =
            SignatureBuilder::new(SignatureType::Binary).sign_message(&mut pair, manifest)?;
        let mine: Vec<openpgp::KeyHandle> = cert.keys().map(|ka| ka.key().key_handle()).collect();
        let mut all = match existing {
            Some(existing) => airlock_verify::signatures::read_signatures(existing)
                .map_err(|e| anyhow::anyhow!(format!("manifest.json.asc: {e}")))?,
            None => Vec::new(),
        };
        all.retain(|sig| {
            !sig.get_issuers()
                .iter()
                .any(|issuer| mine.iter().any(|m| m.aliases(issuer)))
        });
        all.push(signature);
        let mut out = Vec::new();
        let mut writer = openpgp::armor::Writer::new(&mut out, openpgp::armor::Kind::Signature)?;
        for sig in all {
            Packet::from(sig).serialize(&mut writer)?;
        }
        writer.finalize()?;
        Ok((out, cert.fingerprint().to_hex()))
    };
    sign().map_err(key_error(key_file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_keys_round_trip_through_cosign_format_and_sign_deterministically() {
        let dir = tempfile::tempdir().unwrap();
        let generated = generate_builder(dir.path(), "builder", b"pw").unwrap();
        let pem = std::fs::read_to_string(&generated.secret).unwrap();
        assert!(
            pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"),
            "{pem}"
        );
        assert!(BuilderSigner::load(&generated.secret, b"wrong").is_err());
        let signer = BuilderSigner::load(&generated.secret, b"pw").unwrap();
        assert_eq!(signer.keyid, generated.id);
        let (a, b) = (signer.sign(b"message"), signer.sign(b"message"));
        assert_eq!(a, b, "RFC 6979 signatures are deterministic");
        // The sigstore crate's own verifier accepts the signature.
        let public = std::fs::read(&generated.public).unwrap();
        let key = sigstore::crypto::CosignVerificationKey::from_pem(
            &public,
            &SigningScheme::ECDSA_P256_SHA256_ASN1,
        )
        .unwrap();
        key.verify_signature(sigstore::crypto::Signature::Raw(&a), b"message")
            .unwrap();
        assert!(
            key.verify_signature(sigstore::crypto::Signature::Raw(&a), b"other")
                .is_err()
        );
        // And so does the verifier's.
        let verifier =
            airlock_verify::dsse::BuilderKey::from_pem("b", std::str::from_utf8(&public).unwrap())
                .unwrap();
        assert!(verifier.verifies(b"message", &a));
        // Existing files are never overwritten.
        assert!(generate_builder(dir.path(), "builder", b"pw").is_err());
    }
}
