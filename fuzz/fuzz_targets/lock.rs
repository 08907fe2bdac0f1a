//! Lock files on arbitrary text: parse, and re-serialize what parses.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(lock) = airlock_recipe::Lock::parse(Path::new("fuzz.lock"), text) {
        let again = airlock_recipe::Lock::parse(Path::new("fuzz.lock"), &lock.to_toml())
            .expect("a lock we wrote parses");
        assert_eq!(again, lock);
    }
});
