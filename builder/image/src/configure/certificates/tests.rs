use std::path::Path;
use std::process::Command;

use airlock_tree::{Content, Node};

use super::*;

/// A self-signed certificate with this subject, made by openssl with
/// `string_mask` (`default` picks PrintableString, T61String and
/// BMPString as the text allows; `utf8only` UTF8String).
fn openssl_cert(dir: &Path, name: &str, subject: &str, mask: &str) -> Option<(Vec<u8>, u32)> {
    if !airlock_fixtures::gate::tool("openssl", "openssl") {
        return None;
    }
    let config = dir.join(format!("{name}.cnf"));
    std::fs::write(
        &config,
        format!("[req]\ndistinguished_name = dn\nstring_mask = {mask}\nutf8 = yes\n[dn]\n"),
    )
    .unwrap();
    let pem = dir.join(format!("{name}.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "1",
            "-keyout",
            "/dev/null",
            "-multivalue-rdn",
        ])
        .arg("-config")
        .arg(&config)
        .args(["-subj", subject, "-out"])
        .arg(&pem)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let hash = Command::new("openssl")
        .args(["x509", "-noout", "-subject_hash", "-in"])
        .arg(&pem)
        .output()
        .unwrap();
    let hash = u32::from_str_radix(String::from_utf8_lossy(&hash.stdout).trim(), 16).unwrap();
    Some((std::fs::read(&pem).unwrap(), hash))
}

const SUBJECTS: &[(&str, &str)] = &[
    ("/C=DE/O=Example, Inc./CN=  Mixed   CASE  Root  ", "default"),
    (
        "/C=DE/O=Example, Inc./CN=  Mixed   CASE  Root  ",
        "utf8only",
    ),
    ("/CN=Größe Tëst/O=Ünïcode", "default"),
    ("/CN=Größe Tëst/O=Ünïcode", "utf8only"),
    ("/CN=Ελληνικά ΡΙΖΑ", "default"),
    ("/CN=a+OU=B  b/O=multi", "utf8only"),
    ("/DC=org/DC=Example/CN=tab\there", "default"),
];

#[test]
fn the_subject_hash_is_openssls() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (subject, mask)) in SUBJECTS.iter().enumerate() {
        let Some((pem, expected)) = openssl_cert(dir.path(), &i.to_string(), subject, mask) else {
            return;
        };
        let ders = pem_certificates(&pem).unwrap();
        assert_eq!(ders.len(), 1);
        assert_eq!(
            subject_hash(&ders[0]).unwrap(),
            expected,
            "{subject} ({mask})"
        );
    }
}

fn file(bytes: &[u8]) -> Node {
    Node::new(Kind::File(Content::Inline(bytes.to_vec())), 0o644)
}

fn text(tree: &Tree, path: &str) -> String {
    match &tree.lookup(path).unwrap().1.kind {
        Kind::File(Content::Inline(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        other => panic!("{path} is {other:?}"),
    }
}

#[test]
fn update_ca_certificates_is_done_as_on_a_fresh_install() {
    let dir = tempfile::tempdir().unwrap();
    let Some((a, hash_a)) = openssl_cert(dir.path(), "a", "/CN=Root A/O=Example", "utf8only")
    else {
        return;
    };
    let (b, hash_b) =
        openssl_cert(dir.path(), "b", "/CN=Root (B), Two/O=Example", "default").unwrap();
    let blobs = Store::open_scratch(dir.path().join("blobs")).unwrap();
    let mut tree = Tree::merged_usr();
    tree.put("usr/sbin/update-ca-certificates", file(b"#!/bin/sh\n"))
        .unwrap();
    let b_unterminated = &b[..b.len() - 1];
    tree.put("usr/share/ca-certificates/mozilla/Root_A.crt", file(&a))
        .unwrap();
    tree.put(
        "usr/share/ca-certificates/mozilla/Root (B), Two.crt",
        file(b_unterminated),
    )
    .unwrap();
    // The same certificate twice: one hash link.
    tree.put("usr/share/ca-certificates/other/Again.crt", file(&a))
        .unwrap();
    let done = configure(&mut tree, &blobs, &[]).unwrap().unwrap();
    assert_eq!(
        done,
        Certificates {
            bundled: 3,
            hashed: 2
        }
    );
    let conf = text(&tree, CONF);
    assert!(conf.starts_with("# This file lists certificates"));
    assert!(
        conf.ends_with("#\nmozilla/Root (B), Two.crt\nmozilla/Root_A.crt\nother/Again.crt\n"),
        "{conf}"
    );
    assert_eq!(
        tree.get("etc/ssl/certs/Root_=B=__Two.pem").unwrap().kind,
        Kind::Symlink("/usr/share/ca-certificates/mozilla/Root (B), Two.crt".into())
    );
    let bundle = text(&tree, "etc/ssl/certs/ca-certificates.crt");
    let expected = format!(
        "{}{}\n{}",
        String::from_utf8_lossy(b_unterminated),
        "",
        String::from_utf8_lossy(&a)
    );
    assert!(bundle.starts_with(&expected), "the newline is added");
    assert_eq!(pem_certificates(bundle.as_bytes()).unwrap().len(), 3);
    let links: Vec<(String, Kind)> = tree
        .children("etc/ssl/certs")
        .into_iter()
        .filter(|(name, _)| name.contains(".0") || name.contains(".1"))
        .map(|(name, node)| (name.to_owned(), node.kind.clone()))
        .collect();
    let mut expected = vec![
        (format!("{hash_a:08x}.0"), Kind::Symlink("Again.pem".into())),
        (
            format!("{hash_b:08x}.0"),
            Kind::Symlink("Root_=B=__Two.pem".into()),
        ),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        links, expected,
        "Again.pem comes first by name; Root_A is its duplicate"
    );
    assert!(tree.get(LOCAL).is_some());
    // Without ca-certificates, nothing.
    let mut bare = Tree::merged_usr();
    assert_eq!(configure(&mut bare, &blobs, &[]).unwrap(), None);
}
