//! The verifier runs on air-gapped hosts: it must not even link code that
//! speaks to a network. This reads its normal (non-dev) dependency tree from
//! cargo and rejects any HTTP, TLS, socket-runtime or DNS crate.

use std::process::Command;

const FORBIDDEN: &[&str] = &[
    "reqwest",
    "hyper",
    "h2",
    "h3",
    "ureq",
    "curl",
    "isahc",
    "surf",
    "attohttpc",
    "rustls",
    "native-tls",
    "openssl",
    "openssl-sys",
    "tokio",
    "async-std",
    "mio",
    "socket2",
    "trust-dns",
    "hickory-resolver",
    "hickory-proto",
    "url",
    "sigstore",
    "oci-client",
    "tungstenite",
];

#[test]
fn the_verifier_has_no_network_http_or_tls_dependency() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            "airlock-verify",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).unwrap();
    let crates: std::collections::BTreeSet<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    // The tree is real: the verifier's own crypto is in it.
    for expected in ["airlock-verify", "sequoia-openpgp", "p256", "sha2"] {
        assert!(
            crates.contains(expected),
            "{expected} missing from:\n{tree}"
        );
    }
    let found: Vec<&&str> = FORBIDDEN.iter().filter(|c| crates.contains(**c)).collect();
    assert!(
        found.is_empty(),
        "network crates in the verifier: {found:?}\n{tree}"
    );
}
