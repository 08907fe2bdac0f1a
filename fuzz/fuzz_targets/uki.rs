//! The systemd-stub a unified kernel image is assembled from comes from a
//! package: its PE headers are read defensively. Whatever the stub, the
//! assembly either refuses it or writes an image whose section table reads
//! back with the new sections last. A bundle's signed boot files are read
//! defensively too: checking any bytes as the signed form of the stub (or
//! the assembled image) returns a verdict, never panics, and accepts only
//! what carries a certificate table.
#![no_main]

use airlock_disk::authenticode::check_signed;
use airlock_disk::uki::{Section, assemble, sections};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let new = vec![
        Section {
            name: ".osrel",
            len: 3,
            content: Box::new(&b"ID\n"[..]),
        },
        Section {
            name: ".linux",
            len: 5,
            content: Box::new(&b"MZ..."[..]),
        },
    ];
    let half = data.len() / 2;
    let len = |b: &[u8]| b.len() as u64;
    for (signed, unsigned) in [(data, &data[half..]), (&data[..half], &data[half..])] {
        if check_signed(signed, len(signed), unsigned, len(unsigned)).is_ok() {
            assert!(signed.len() > unsigned.len(), "a signature takes room");
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    if assemble(data, new, &mut out).is_ok() {
        let out = out.into_inner();
        let listed = sections(&out).expect("an assembled image reads back");
        let names: Vec<&str> = listed.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(names[names.len() - 2..], [".osrel", ".linux"]);
    }
});
