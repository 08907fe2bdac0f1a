//! The committed fuzz seeds for the .deb reader (fuzz/seeds/deb, made by
//! fuzz/make-seeds from bookworm packages) must stay inputs the reader
//! accepts: a seed it rejects would only ever exercise its error paths.

use std::path::Path;

use airlock_deb::{Limits, read_deb};

#[test]
fn every_deb_seed_is_a_package_the_reader_accepts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/deb");
    let mut seeds = 0;
    let mut compressions = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let mut entries = 0;
        let control = read_deb(bytes.as_slice(), &Limits::default(), |_, reader| {
            entries += 1;
            std::io::copy(reader, &mut std::io::sink())
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_stem().unwrap().to_str().unwrap();
        let fields = String::from_utf8(control["control"].clone()).unwrap();
        assert!(
            fields.contains(&format!("Package: {name}\n")),
            "{}",
            path.display()
        );
        assert!(entries > 1, "{}: {entries} data entries", path.display());
        let data = String::from_utf8_lossy(&bytes);
        compressions.extend(
            ["xz", "gz", "zst"]
                .into_iter()
                .filter(|c| data.contains(&format!("data.tar.{c}"))),
        );
        seeds += 1;
    }
    assert!(seeds >= 6, "{seeds} seeds in {}", dir.display());
    assert_eq!(
        compressions.len(),
        3,
        "data members in every compression: {compressions:?}"
    );
}
