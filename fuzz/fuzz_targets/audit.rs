//! What `airlock audit verify` reads from a host: an action log (the host,
//! or whoever took it, chose every byte) and a public key file. None may
//! panic, and nothing but the real log verifies.
#![no_main]

use airlock_audit::{HostKey, PublicKey, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = HostKey::from_seed(&[1; 64]).public();
    if let Ok(verified) = verify(data, &key) {
        assert_eq!(verified.last.len(), 64);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = PublicKey::parse("fuzz.pub", text);
    }
});
