//! The verifier's readers on arbitrary bytes: the manifest (what parses
//! must round-trip through the canonical form), the signature file, the
//! DSSE envelope, a bundle tar, the image's dpkg status and tar stream,
//! the SBOM's privilege properties, the host's policy file, dates and
//! license expressions. None may panic.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use airlock_verify::{dsse, image, manifest::Manifest, policy, signatures, tarball};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = Manifest::parse(data) {
        let again = Manifest::parse(&manifest.to_canonical()).expect("a canonical manifest parses");
        assert_eq!(again, manifest);
        let _ = manifest.physical_files();
        for file in &manifest.files {
            let _ = file.ranges();
        }
    }
    let _ = signatures::read_signatures(data);
    let _ = dsse::open(data, &[]);
    if let Ok(text) = std::str::from_utf8(data) {
        let _: BTreeMap<String, String> = image::installed(text);
        let allowed: BTreeSet<String> = ["MIT".to_owned()].into();
        let _ = policy::expression_allowed(text, &allowed);
        let _ = policy::Policy::parse(text);
        if let Some(unix) = airlock_verify::time::parse(text) {
            assert_eq!(
                airlock_verify::time::parse(&airlock_verify::time::format(unix)),
                Some(unix)
            );
        }
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = airlock_verify::sbom_privileges(&value);
    }
    let wanted: BTreeSet<String> = ["/model".to_owned()].into();
    let _ = image::scan(data, &wanted);
    if let Ok(dir) = tempfile::tempdir() {
        let _ = tarball::unpack(data, dir.path());
    }
});
