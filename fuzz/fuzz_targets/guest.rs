//! What `airlock test` reads that a guest under test wrote or a user gave
//! it: QEMU's packet dump of the guest's traffic (the guest chooses every
//! byte of its frames) and test files. None may panic.
#![no_main]

use airlock_testing::net::{Allowed, leaving};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let allowed = Allowed {
        listeners: vec!["10.0.2.100:47180".parse().expect("an address")],
        forwarded: vec![22],
    };
    if let Ok(left) = leaving(data, &allowed) {
        assert!(left.iter().all(|line| !line.is_empty()));
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(plan) = airlock_testing::spec::parse("fuzz.toml", text)
    {
        assert!(plan.case_count() > 0);
    }
});
