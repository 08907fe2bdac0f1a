//! `[signing]` with certificates: the image's own trust anchors, in
//! `/usr/share/airlock/trust` as a trust directory `airlock verify --trust`
//! reads (`trust.toml` with the threshold, `release/NAME.asc`,
//! `builder/NAME.pub`).
//!
//! They sit under /usr, so on an installed host the dm-verity protected
//! running image decides who may approve its successor: a bundle never
//! brings its own anchors, and rotating approvers is a release signed under
//! the old rules that carries the new ones. Each key is checked here as the
//! verifier reads it (sequoia's certificate parser, p256's PEM reader; the
//! builder does not link the verifier), so the build refuses what the host
//! would: a certificate that does not parse, holds a secret key or is not
//! the signer's fingerprint, or a builder key that is not ECDSA P-256.

use airlock_recipe::Signing;
use airlock_tree::Tree;

use super::files::Added;
use super::{generated, put};
use crate::BuildError;

/// Where the anchors go.
pub const DIR: &str = "usr/share/airlock/trust";

fn refused(message: String) -> BuildError {
    BuildError::Config {
        what: "[signing]".to_owned(),
        message,
    }
}

/// The certificates in `text`, as the verifier reads a trust directory's
/// file: every one must parse, and none may hold secret key material.
fn certificates(text: &str) -> Result<Vec<sequoia_openpgp::Cert>, String> {
    use sequoia_openpgp::parse::Parse;
    let mut certs = Vec::new();
    let parser = sequoia_openpgp::cert::CertParser::from_bytes(text.as_bytes())
        .map_err(|e| e.to_string())?;
    for cert in parser {
        let cert = cert.map_err(|e| e.to_string())?;
        if cert.is_tsk() {
            return Err(
                "holds secret key material; a trust directory holds public keys only".to_owned(),
            );
        }
        certs.push(cert);
    }
    Ok(certs)
}

/// Writes the trust directory when the recipe gives the keys.
pub fn configure(tree: &mut Tree, signing: &Signing, added: &[Added]) -> Result<(), BuildError> {
    if !signing.anchors() {
        return Ok(());
    }
    let prefix = format!("{DIR}/");
    if let Some(added) = added
        .iter()
        .find(|a| a.path == DIR || a.path.starts_with(&prefix))
    {
        return Err(refused(format!(
            "/{} is the image's trust directory, written from [signing]; remove it from [files]",
            added.path
        )));
    }
    // The directory must be a real one under /usr: a symlink on the way
    // (from a package or [files]) would move it off the verity-protected
    // root, and nothing but what is written here may be in it (a [files]
    // entry through a symlink, or a package's file, would be one more
    // trusted key).
    let mut at = String::new();
    for part in DIR.split('/') {
        at = if at.is_empty() {
            part.to_owned()
        } else {
            format!("{at}/{part}")
        };
        if let Some(node) = tree.get(&at)
            && !matches!(node.kind, airlock_tree::Kind::Directory)
        {
            return Err(refused(format!(
                "/{at} is not a directory in the image; the trust directory /{DIR} must be a real directory under /usr"
            )));
        }
    }
    if let Some((path, _)) = tree.iter().find(|(path, node)| {
        path.starts_with(&prefix) && !matches!(node.kind, airlock_tree::Kind::Directory)
    }) {
        return Err(refused(format!(
            "/{path} is already in the trust directory /{DIR}; only [signing] writes there"
        )));
    }
    put(
        tree,
        &format!("{DIR}/trust.toml"),
        generated(format!("threshold = {}\n", signing.threshold), 0o644),
    )?;
    for signer in &signing.signers {
        let text = signer.certificate.as_deref().unwrap_or_default();
        let certs =
            certificates(text).map_err(|e| refused(format!("signers {}: {e}", signer.name)))?;
        let fingerprints: Vec<String> = certs.iter().map(|c| c.fingerprint().to_hex()).collect();
        if fingerprints != [signer.fingerprint.as_str()] {
            return Err(refused(format!(
                "signers {}: the certificate is {}, not the fingerprint {} the recipe pins",
                signer.name,
                if fingerprints.is_empty() {
                    "no OpenPGP certificate".to_owned()
                } else {
                    format!("the certificate of {}", fingerprints.join(", "))
                },
                signer.fingerprint.as_str()
            )));
        }
        put(
            tree,
            &format!("{DIR}/release/{}.asc", signer.name),
            generated(text, 0o644),
        )?;
    }
    for builder in &signing.builders {
        let text = builder.key.as_deref().unwrap_or_default();
        <p256::ecdsa::VerifyingKey as p256::pkcs8::DecodePublicKey>::from_public_key_pem(text)
            .map_err(|e| {
                refused(format!(
                    "builders {}: not an ECDSA P-256 public key: {e}",
                    builder.name
                ))
            })?;
        put(
            tree,
            &format!("{DIR}/builder/{}.pub", builder.name),
            generated(text, 0o644),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_recipe::{Fingerprint, Signer, TrustedBuilder};
    use airlock_tree::{Content, Kind, Node};
    use sequoia_openpgp::cert::CertBuilder;
    use sequoia_openpgp::serialize::SerializeInto;

    /// A public key only (P-256, made for this test with openssl).
    const BUILDER: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEhsHJ8Dldy3OGDfbZUQxXxR/XfAVD
5/nRorNetp9LVEw4W2rTSDyzTQcgTuN8wOnXa1gV8EsRXkdwBXNa/D46kA==
-----END PUBLIC KEY-----
";

    fn cert(name: &str) -> sequoia_openpgp::Cert {
        CertBuilder::general_purpose(Some(name))
            .generate()
            .unwrap()
            .0
    }

    fn armored(cert: &sequoia_openpgp::Cert) -> String {
        String::from_utf8(cert.armored().to_vec().unwrap()).unwrap()
    }

    fn signing(certs: &[(&str, &sequoia_openpgp::Cert, String)]) -> Signing {
        Signing {
            threshold: 2,
            signers: certs
                .iter()
                .map(|(name, cert, text)| Signer {
                    name: (*name).to_owned(),
                    fingerprint: cert.fingerprint().to_hex().parse::<Fingerprint>().unwrap(),
                    certificate_file: None,
                    certificate: Some(text.clone()),
                })
                .collect(),
            builders: vec![TrustedBuilder {
                name: "ci".to_owned(),
                key_file: None,
                key: Some(BUILDER.to_owned()),
            }],
        }
    }

    fn text(tree: &Tree, path: &str) -> String {
        let node = tree.get(path).unwrap_or_else(|| panic!("{path} missing"));
        assert_eq!(
            (node.mode & 0o7777, node.uid, node.gid),
            (0o644, 0, 0),
            "{path}"
        );
        match &node.kind {
            Kind::File(Content::Inline(bytes)) => String::from_utf8(bytes.clone()).unwrap(),
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn the_trust_directory_is_written_as_the_verifier_reads_it() {
        let (alice, bob) = (cert("alice"), cert("bob"));
        let signing = signing(&[
            ("alice", &alice, armored(&alice)),
            ("bob", &bob, armored(&bob)),
        ]);
        let mut tree = Tree::merged_usr();
        configure(&mut tree, &signing, &[]).unwrap();
        assert_eq!(text(&tree, &format!("{DIR}/trust.toml")), "threshold = 2\n");
        assert_eq!(text(&tree, &format!("{DIR}/builder/ci.pub")), BUILDER);
        let read = [
            certificates(&text(&tree, &format!("{DIR}/release/alice.asc"))).unwrap(),
            certificates(&text(&tree, &format!("{DIR}/release/bob.asc"))).unwrap(),
        ]
        .concat();
        let fingerprints: Vec<_> = read.iter().map(|c| c.fingerprint()).collect();
        assert_eq!(fingerprints, [alice.fingerprint(), bob.fingerprint()]);
        // No keys, no directory.
        let mut tree = Tree::merged_usr();
        configure(&mut tree, &Signing::default(), &[]).unwrap();
        assert!(tree.get(DIR).is_none());
    }

    #[test]
    fn keys_the_host_would_refuse_are_refused_by_name() {
        let (alice, bob) = (cert("alice"), cert("bob"));
        let refused = |signing: &Signing, added: &[Added]| {
            let mut tree = Tree::merged_usr();
            configure(&mut tree, signing, added)
                .unwrap_err()
                .to_string()
        };
        // Bob's entry holds Alice's certificate.
        let swapped = signing(&[
            ("alice", &alice, armored(&alice)),
            ("bob", &bob, armored(&alice)),
        ]);
        let message = refused(&swapped, &[]);
        assert!(
            message.contains(&format!(
                "signers bob: the certificate is the certificate of {}, not the fingerprint {}",
                alice.fingerprint().to_hex(),
                bob.fingerprint().to_hex()
            )),
            "{message}"
        );
        // A secret key.
        let secret = String::from_utf8(alice.as_tsk().armored().to_vec().unwrap()).unwrap();
        let message = refused(
            &signing(&[("alice", &alice, secret), ("bob", &bob, armored(&bob))]),
            &[],
        );
        assert!(
            message.contains("signers alice: holds secret key material"),
            "{message}"
        );
        // Not a certificate at all.
        let message = refused(
            &signing(&[
                ("alice", &alice, "hello\n".to_owned()),
                ("bob", &bob, armored(&bob)),
            ]),
            &[],
        );
        assert!(message.contains("signers alice:"), "{message}");
        // A builder key that is not P-256.
        let mut bad = signing(&[
            ("alice", &alice, armored(&alice)),
            ("bob", &bob, armored(&bob)),
        ]);
        bad.builders[0].key =
            Some("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".to_owned());
        let message = refused(&bad, &[]);
        assert!(
            message.contains("builders ci: not an ECDSA P-256 public key"),
            "{message}"
        );
        // A recipe file in the trust directory.
        let good = signing(&[
            ("alice", &alice, armored(&alice)),
            ("bob", &bob, armored(&bob)),
        ]);
        let added = Added {
            path: format!("{DIR}/release/mallory.asc"),
            node: Node::new(Kind::File(Content::Inline(Vec::new())), 0o644),
            owner: None,
        };
        let message = refused(&good, std::slice::from_ref(&added));
        assert!(
            message.contains(
                "/usr/share/airlock/trust/release/mallory.asc is the image's trust directory"
            ),
            "{message}"
        );
        // The same file reached through a [files] symlink is already there
        // when [signing] writes, and a symlinked /usr/share/airlock would
        // move the directory off /usr.
        let mut tree = Tree::merged_usr();
        tree.put(&added.path, added.node.clone()).unwrap();
        let message = configure(&mut tree, &good, &[]).unwrap_err().to_string();
        assert!(
            message.contains(
                "/usr/share/airlock/trust/release/mallory.asc is already in the trust directory"
            ),
            "{message}"
        );
        let mut tree = Tree::merged_usr();
        tree.put(
            "usr/share/airlock",
            Node::new(Kind::Symlink("/var/lib/keys".to_owned()), 0o777),
        )
        .unwrap();
        let message = configure(&mut tree, &good, &[]).unwrap_err().to_string();
        assert!(
            message.contains("/usr/share/airlock is not a directory in the image"),
            "{message}"
        );
    }
}
