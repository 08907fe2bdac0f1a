//! The .deb reader (ar, tar, gz/xz/zst) on arbitrary bytes, with small limits
//! so a decompression bomb is found rather than exhausting memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = airlock_deb::Limits {
        max_control_file: 1 << 16,
        max_entries: 1 << 10,
        max_file: 1 << 20,
        max_total: 1 << 22,
        max_path: 4096,
        installed_size: true,
    };
    let _ = airlock_deb::read_deb(data, &limits, |entry, reader| {
        // Every path handed out is relative and free of `..`.
        assert!(!entry.path.starts_with('/'));
        assert!(!entry.path.split('/').any(|part| part == ".."));
        std::io::copy(reader, &mut std::io::sink())
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
});
