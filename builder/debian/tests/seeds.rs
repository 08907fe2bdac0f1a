//! The committed fuzz seeds from the real archive (fuzz/seeds/inrelease and
//! fuzz/seeds/packages, made by fuzz/make-seeds) must stay inputs the
//! readers accept, so fuzzing starts from the paths real data takes.

use std::path::{Path, PathBuf};

use airlock_debian::packages::read_packages;
use airlock_debian::release::{Release, read_keyring, verify_inrelease};

/// The time the inrelease fuzz target verifies at: after the committed
/// InRelease was signed, before its Valid-Until.
const FUZZ_NOW: i64 = 1_796_083_200; // 2026-12-01T00:00:00Z

fn seeds(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target)
}

#[test]
fn the_inrelease_seed_is_signed_by_the_shipped_bookworm_keyring_and_valid_at_the_fuzz_time() {
    let keyring_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../keys/debian/bookworm.pgp");
    let keyring = read_keyring(&std::fs::read(keyring_path).unwrap()).unwrap();
    let signed = std::fs::read(seeds("inrelease").join("bookworm-security.InRelease")).unwrap();
    let text = verify_inrelease(&signed, &keyring, FUZZ_NOW).unwrap();
    let release = Release::parse(&text).unwrap();
    assert_eq!(release.codename, "bookworm-security");
    release
        .check_valid_until("bookworm-security", FUZZ_NOW)
        .unwrap();
    assert!(!release.sha256.is_empty());
    // The fuzz target must verify at the same time, or the seed only
    // exercises the rejection.
    let target = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets/inrelease.rs"),
    )
    .unwrap();
    assert!(
        target.contains("1_796_083_200"),
        "fuzz/fuzz_targets/inrelease.rs verifies at another time"
    );
}

#[test]
fn the_packages_seeds_are_index_excerpts_that_read_whole() {
    for name in ["bookworm-updates.Packages", "bookworm-security.Packages"] {
        let bytes = std::fs::read(seeds("packages").join(name)).unwrap();
        let mut names = Vec::new();
        let count = read_packages(bytes.as_slice(), |p| names.push(p.name)).unwrap();
        assert_eq!(count, 12, "{name}: {names:?}");
    }
}
