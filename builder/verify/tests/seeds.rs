//! The committed fuzz seeds of the bundle target (fuzz/seeds/bundle, taken
//! by fuzz/make-seeds from the demo's signed bundle) must stay inputs the
//! verifier's readers accept, so fuzzing starts past their first check.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use airlock_verify::{image, manifest::Manifest, policy::Policy, signatures};

fn seed(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds/bundle")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(seed(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn the_bundle_seeds_are_what_the_verifier_reads() {
    let manifest = Manifest::parse(&read("manifest.json")).unwrap();
    assert_eq!(
        manifest.to_canonical(),
        read("manifest.json"),
        "the seed is canonical"
    );
    assert_eq!(
        signatures::read_signatures(&read("manifest.json.asc"))
            .unwrap()
            .len(),
        2
    );
    let cdx: serde_json::Value = serde_json::from_slice(&read("sbom.cdx.excerpt.json")).unwrap();
    assert!(!airlock_verify::sbom_privileges(&cdx).unwrap().is_empty());
    let text = String::from_utf8(read("dpkg-status.excerpt")).unwrap();
    assert!(image::installed(&text).len() >= 10);
    Policy::parse(&String::from_utf8(read("policy.toml")).unwrap()).unwrap();
    let contents = image::scan(
        std::fs::File::open(seed("rootfs-sample.tar.zst")).unwrap(),
        &BTreeSet::new(),
    )
    .unwrap();
    assert!(contents.privileges.len() >= 2, "{:?}", contents.privileges);
    let dir = tempfile::tempdir().unwrap();
    airlock_verify::tarball::unpack(
        std::fs::File::open(seed("bundle-head.tar")).unwrap(),
        dir.path(),
    )
    .unwrap();
    assert!(dir.path().join("manifest.json").is_file());
}
