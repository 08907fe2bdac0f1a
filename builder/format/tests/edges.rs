//! Dependencies between airlock's crates run one way: from the formats, to
//! the libraries that read and write them, to the CLI; and the verifier,
//! which runs on air-gapped hosts, does not even link code that speaks to a
//! network. This reads each crate's normal dependency tree from cargo and
//! fails when an edge that must not exist comes back.

use std::collections::BTreeSet;
use std::process::Command;

/// (crate, a crate it must never depend on, why).
const FORBIDDEN: &[(&str, &str, &str)] = &[
    (
        "airlock-image",
        "airlock-verify",
        "the builder must not depend on the offline verifier",
    ),
    (
        "airlock-image",
        "airlock-release",
        "the builder must not depend on the release side",
    ),
    (
        "airlock-tree",
        "airlock-recipe",
        "the tree needs nothing from the recipe schema",
    ),
    (
        "airlock-store",
        "airlock-recipe",
        "the store needs nothing from the recipe schema",
    ),
    (
        "airlock-verify",
        "airlock-image",
        "the verifier must not link the builder",
    ),
    (
        "airlock-verify",
        "airlock-recipe",
        "the verifier reads bundles, not recipes",
    ),
    (
        "airlock-verify",
        "airlock-fetch",
        "the verifier never touches a network",
    ),
    (
        "airlock-host",
        "airlock-fetch",
        "the host tool never touches a network",
    ),
    (
        "airlock-host",
        "airlock-image",
        "the host tool runs on installed hosts, not builders",
    ),
];

/// Crates that speak HTTP, TLS, sockets or DNS.
const NETWORK: &[&str] = &[
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

/// Every crate in `package`'s normal (non-dev) dependency tree.
fn dependencies(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["tree", "--offline", "-p", package, "-e", "normal,build"])
        .args(["--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn no_forbidden_edge_between_airlocks_crates() {
    let mut broken = Vec::new();
    for (package, forbidden, why) in FORBIDDEN {
        let tree = dependencies(package);
        assert!(
            tree.contains(*package),
            "cargo tree -p {package} did not list it: {tree:?}"
        );
        if tree.contains(*forbidden) {
            broken.push(format!("{package} depends on {forbidden}: {why}"));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_format_crate_depends_on_no_other_airlock_crate() {
    let tree = dependencies("airlock-format");
    let airlock: Vec<&String> = tree
        .iter()
        .filter(|c| c.starts_with("airlock-") && *c != "airlock-format")
        .collect();
    assert!(airlock.is_empty(), "airlock-format depends on {airlock:?}");
    // The tree is real: what the digest type is made of is in it.
    assert!(tree.contains("sha2") && tree.contains("serde"), "{tree:?}");
}

/// The check can fail: the CLI does depend on the verifier and the builder.
#[test]
fn a_real_edge_is_seen() {
    let tree = dependencies("airlock");
    assert!(
        tree.contains("airlock-verify") && tree.contains("airlock-image"),
        "{tree:?}"
    );
}

#[test]
fn the_verifier_and_the_host_tool_have_no_network_http_or_tls_dependency() {
    for package in ["airlock-verify", "airlock-host"] {
        let tree = dependencies(package);
        // The tree is real: the verifier's own crypto is in it.
        for expected in [package, "airlock-verify", "sequoia-openpgp", "p256", "sha2"] {
            assert!(tree.contains(expected), "{expected} missing from {tree:?}");
        }
        let found: Vec<&&str> = NETWORK.iter().filter(|c| tree.contains(**c)).collect();
        assert!(found.is_empty(), "network crates in {package}: {found:?}");
    }
}
