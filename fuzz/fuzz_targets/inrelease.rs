//! InRelease: the OpenPGP cleartext framework and the Release fields, on
//! arbitrary bytes, against a fixed keyring.
#![no_main]

use libfuzzer_sys::fuzz_target;

use std::sync::OnceLock;

static KEYRING: &[u8] = include_bytes!("../../keys/debian/bookworm.pgp");
static CERTS: OnceLock<Vec<sequoia_openpgp::Cert>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let keyring = CERTS.get_or_init(|| {
        airlock_debian::release::read_keyring(KEYRING).expect("the shipped keyring parses")
    });
    let _ = airlock_debian::release::verify_inrelease(data, keyring, 1_750_000_000);
    if let Ok(release) = airlock_debian::release::Release::parse(data) {
        let _ = release.check_valid_until("fuzz", 1_750_000_000);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = airlock_debian::release::parse_date(text);
    }
});
