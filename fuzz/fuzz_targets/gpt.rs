//! An installed host's partition table is read back before an update
//! rewrites one slot's entries; the disk may have been written by anyone
//! with physical access. Whatever the bytes, reading returns a layout or an
//! error, never panics; a layout it returns lies inside the disk with no
//! overlaps, and writing it back gives bytes that read back the same.
#![no_main]

use airlock_disk::gpt::{Layout, SECTOR};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The input is the disk; sizes that are not whole sectors are refused.
    let size = data.len() as u64;
    let mut disk = std::io::Cursor::new(data.to_vec());
    if let Ok(layout) = Layout::read(&mut disk, size) {
        for (i, a) in layout.partitions.iter().enumerate() {
            assert!(a.last_lba() < size / SECTOR);
            for b in &layout.partitions[i + 1..] {
                assert!(a.last_lba() < b.first_lba || b.last_lba() < a.first_lba);
            }
        }
        let mut again = std::io::Cursor::new(vec![0u8; data.len()]);
        layout.write_tables(&mut again).unwrap();
        assert_eq!(Layout::read(&mut again, size).unwrap(), layout);
    }
});
