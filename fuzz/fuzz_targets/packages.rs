//! Packages indexes (deb822 paragraphs and relation fields) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut universe = airlock_debian::index::Universe::new("amd64");
    let _ = airlock_debian::packages::read_packages(data, |package| universe.add(package, "fuzz"));
    universe.finish();
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = airlock_debian::relation::parse_relations(text);
        let _ = airlock_debian::sources::parse_deb822(text, "fuzz");
        let _ = airlock_debian::sources::parse_one_line(text, "fuzz");
    }
});
