//! The caches airlock builds from packages' files: the ELF reader
//! ldconfig's choice rests on, the ld.so.cache reader (and a write of what
//! it read, read again), and hwdb.bin and the journal catalog built from
//! arbitrary source files. The first byte picks the reader.
#![no_main]

use std::io::Cursor;

use airlock_caches::{catalog, elf, hwdb, ldcache};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            let _ = elf::inspect(&mut Cursor::new(rest));
        }
        1 => {
            if let Ok((entries, generator)) = ldcache::read(rest) {
                let generator = generator.unwrap_or_default();
                let written = ldcache::write(&entries, &generator);
                let (again, read_generator) =
                    ldcache::read(&written).expect("airlock's own cache reads");
                assert_eq!(again, entries);
                assert_eq!(read_generator.unwrap_or_default(), generator);
            }
        }
        2 => {
            let file = hwdb::File {
                path: "/usr/lib/udev/hwdb.d/60-fuzz.hwdb".to_owned(),
                bytes: rest.to_vec(),
            };
            let _ = hwdb::build(&[file]);
        }
        _ => {
            let _ = catalog::build(&[("fuzz.de.catalog".to_owned(), rest.to_vec())]);
        }
    }
});
