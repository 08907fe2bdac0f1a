//! The systemd-stub a unified kernel image is assembled from comes from a
//! package: its PE headers are read defensively. Whatever the stub, the
//! assembly either refuses it or writes an image whose section table reads
//! back with the new sections last.
#![no_main]

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
    let mut out = std::io::Cursor::new(Vec::new());
    if assemble(data, new, &mut out).is_ok() {
        let out = out.into_inner();
        let listed = sections(&out).expect("an assembled image reads back");
        let names: Vec<&str> = listed.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(names[names.len() - 2..], [".osrel", ".linux"]);
    }
});
