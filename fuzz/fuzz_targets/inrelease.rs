//! InRelease: the OpenPGP cleartext framework and the Release fields, on
//! arbitrary bytes, against a fixed keyring.
#![no_main]

use libfuzzer_sys::fuzz_target;

use std::sync::OnceLock;

static KEYRING: &[u8] = include_bytes!("../../keys/debian/bookworm.pgp");
static CERTS: OnceLock<Vec<sequoia_openpgp::Cert>> = OnceLock::new();
/// After the committed seed (fuzz/seeds/inrelease, bookworm-security) was
/// signed and before its Valid-Until, so the seed verifies and fuzzing
/// starts past the signature check (builder/debian/tests/seeds.rs).
const FUZZ_NOW: i64 = 1_796_083_200; // 2026-12-01T00:00:00Z

fuzz_target!(|data: &[u8]| {
    let keyring = CERTS.get_or_init(|| {
        airlock_debian::release::read_keyring(KEYRING).expect("the shipped keyring parses")
    });
    let _ = airlock_debian::release::verify_inrelease(data, keyring, FUZZ_NOW);
    if let Ok(release) = airlock_debian::release::Release::parse(data) {
        let _ = release.check_valid_until("fuzz", FUZZ_NOW);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = airlock_debian::release::parse_date(text);
    }
});
