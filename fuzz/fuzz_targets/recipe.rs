//! The recipe parser on arbitrary text, with includes served from the input.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = airlock_recipe::parse_single(Path::new("fuzz.toml"), text);
    // Every include resolves to the same text: exercises merging and loops.
    let _ = airlock_recipe::load(
        Path::new("r/fuzz.toml"),
        &mut |_: &Path| Ok(text.to_owned()),
    );
});
