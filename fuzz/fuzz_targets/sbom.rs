//! What the SBOMs read from a package's own files, on arbitrary bytes: a
//! copyright file (DEP-5 fields or free form, licenses into SPDX
//! expressions), the dpkg status built from control paragraphs
//! (maintainers, Depends/Pre-Depends/Provides resolved among the
//! installed set) and os-release. None may panic.
#![no_main]

use airlock_image::sbom::{debian, licenses};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut refs = licenses::Refs::new();
    let read = licenses::read("fuzz", Some(data), &mut refs);
    if let Some(license) = &read.license {
        assert!(!license.contains('\n'), "one expression: {license:?}");
    }
    let text = String::from_utf8_lossy(data);
    let status = debian::status(&text);
    for (name, (depends, _)) in debian::dependencies(&status) {
        assert!(!depends.contains(&name), "{name} depends on itself");
        assert!(depends.iter().all(|d| status.contains_key(d)));
    }
    for entry in status.values() {
        if let Some(party) = debian::maintainer(&entry.maintainer) {
            assert!(party.problems().is_empty(), "{party:?}");
        }
    }
    let _ = debian::distribution(&text);
});
