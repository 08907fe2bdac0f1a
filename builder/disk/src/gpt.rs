//! GUID partition tables (UEFI 2.10, section 5.3): a protective MBR, the
//! primary header and entry array at the start of the disk, their backup at
//! the end. 512-byte sectors, 128 entries of 128 bytes, partitions aligned
//! to 1 MiB, as every partitioning tool does today.

use std::fmt;
use std::io::{Seek, SeekFrom, Write};

use crate::DiskError;

mod read;

/// A sector: 512 bytes, the logical block size of every disk airlock
/// writes (the GPT's LBAs count these).
pub const SECTOR: u64 = 512;
/// Partitions start and end on 1 MiB boundaries.
pub const ALIGN: u64 = 1 << 20;
const ENTRIES: u64 = 128;
const ENTRY_SIZE: u64 = 128;
/// Sectors the entry array takes.
const ARRAY_SECTORS: u64 = ENTRIES * ENTRY_SIZE / SECTOR;
const HEADER_SIZE: u32 = 92;
/// A partition's name: at most 36 UTF-16 code units.
pub const LABEL_UNITS: usize = 36;

/// A GUID as GPT stores it: the first three fields little-endian, the last
/// two as bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// Parses the textual form (`C12A7328-F81F-11D2-BA4B-00A0C93EC93B`).
    pub const fn parse(text: &str) -> Guid {
        let text = text.as_bytes();
        assert!(text.len() == 36, "a GUID has 36 characters");
        let mut big = [0u8; 16];
        let (mut i, mut out) = (0, 0);
        while i < 36 {
            if text[i] == b'-' {
                i += 1;
                continue;
            }
            big[out] = hex(text[i]) << 4 | hex(text[i + 1]);
            out += 1;
            i += 2;
        }
        Guid::from_big_endian(big)
    }

    /// Parses the textual form of a GUID read from a file: `None` unless
    /// it is 32 hex digits in the 8-4-4-4-12 pattern.
    pub fn from_text(text: &str) -> Option<Guid> {
        let shape = text.len() == 36
            && text.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit(),
            });
        shape.then(|| Guid::parse(text))
    }

    /// The GUID whose textual form reads `bytes` in order (an RFC 4122
    /// UUID's bytes).
    pub const fn from_big_endian(b: [u8; 16]) -> Guid {
        Guid([
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
            b[14], b[15],
        ])
    }
}

const fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("not a hex digit"),
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9]
        )?;
        b[10..].iter().try_for_each(|x| write!(f, "{x:02X}"))
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Partition type GUIDs of the Discoverable Partitions Specification, for
/// x86-64.
pub mod types {
    use super::Guid;
    /// The EFI system partition.
    pub const ESP: Guid = Guid::parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    /// The root file system (x86-64).
    pub const ROOT_X86_64: Guid = Guid::parse("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709");
    /// The root's dm-verity hash tree (x86-64).
    pub const ROOT_VERITY_X86_64: Guid = Guid::parse("2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5");
    /// /var.
    pub const VAR: Guid = Guid::parse("4D21B016-B534-45C2-A9FB-5C16E091FD2D");
}

/// GPT attribute bits the specification and the DPS define.
pub mod attributes {
    /// The firmware must not touch the partition (UEFI: platform required).
    pub const REQUIRED: u64 = 1;
    /// Mount read-only (DPS, bit 60).
    pub const READ_ONLY: u64 = 1 << 60;
    /// Do not mount automatically (DPS, bit 63).
    pub const NO_AUTO: u64 = 1 << 63;
}

/// One partition to lay out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Its type.
    pub kind: Guid,
    /// Its own GUID.
    pub guid: Guid,
    /// Its name (GPT partition label).
    pub label: String,
    /// Its size in bytes (rounded up to 1 MiB).
    pub size: u64,
    /// GPT attribute bits.
    pub attributes: u64,
}

/// A partition placed on the disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    /// What was asked for, the size rounded up.
    pub spec: Spec,
    /// Its first sector.
    pub first_lba: u64,
}

impl Placed {
    /// Where it starts, in bytes.
    pub fn offset(&self) -> u64 {
        self.first_lba * SECTOR
    }

    /// Its last sector (inclusive, as GPT counts).
    pub fn last_lba(&self) -> u64 {
        self.first_lba + self.spec.size / SECTOR - 1
    }
}

/// A whole disk's partitioning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The disk's GUID.
    pub disk: Guid,
    /// The partitions, in table order.
    pub partitions: Vec<Placed>,
    /// The disk's size in bytes.
    pub size: u64,
}

fn round_up(value: u64, to: u64) -> Option<u64> {
    value.checked_next_multiple_of(to)
}

impl Layout {
    /// Places `specs` one after the other from 1 MiB on, each rounded up to
    /// 1 MiB, and leaves 1 MiB at the end for the backup table.
    pub fn new(disk: Guid, specs: Vec<Spec>) -> Result<Layout, DiskError> {
        if specs.len() as u64 > ENTRIES {
            return Err(DiskError::Layout(format!(
                "{} partitions; a GPT holds {ENTRIES}",
                specs.len()
            )));
        }
        let mut at = ALIGN;
        let mut partitions = Vec::with_capacity(specs.len());
        for mut spec in specs {
            if spec.label.encode_utf16().count() > LABEL_UNITS {
                return Err(DiskError::Layout(format!(
                    "the partition label {:?} is longer than GPT's {LABEL_UNITS} characters",
                    spec.label
                )));
            }
            if spec.size == 0 {
                return Err(DiskError::Layout(format!(
                    "the partition {:?} has no size",
                    spec.label
                )));
            }
            spec.size = round_up(spec.size, ALIGN).ok_or_else(too_large)?;
            let first_lba = at / SECTOR;
            at = at.checked_add(spec.size).ok_or_else(too_large)?;
            partitions.push(Placed { spec, first_lba });
        }
        let size = at.checked_add(ALIGN).ok_or_else(too_large)?;
        Ok(Layout {
            disk,
            partitions,
            size,
        })
    }

    fn sectors(&self) -> u64 {
        self.size / SECTOR
    }

    /// The entry array, as both copies hold it.
    fn entries(&self) -> Vec<u8> {
        let mut array = vec![0u8; (ENTRIES * ENTRY_SIZE) as usize];
        for (i, part) in self.partitions.iter().enumerate() {
            let entry = &mut array[i * ENTRY_SIZE as usize..][..ENTRY_SIZE as usize];
            entry[0..16].copy_from_slice(&part.spec.kind.0);
            entry[16..32].copy_from_slice(&part.spec.guid.0);
            entry[32..40].copy_from_slice(&part.first_lba.to_le_bytes());
            entry[40..48].copy_from_slice(&part.last_lba().to_le_bytes());
            entry[48..56].copy_from_slice(&part.spec.attributes.to_le_bytes());
            for (j, unit) in part.spec.label.encode_utf16().enumerate() {
                entry[56 + 2 * j..58 + 2 * j].copy_from_slice(&unit.to_le_bytes());
            }
        }
        array
    }

    /// A header: the primary (at LBA 1) or the backup (at the last LBA).
    fn header(&self, primary: bool, entries_crc: u32) -> [u8; SECTOR as usize] {
        let last = self.sectors() - 1;
        let (mine, other, array) = if primary {
            (1, last, 2)
        } else {
            (last, 1, last - ARRAY_SECTORS)
        };
        let mut header = [0u8; SECTOR as usize];
        header[0..8].copy_from_slice(b"EFI PART");
        header[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        header[12..16].copy_from_slice(&HEADER_SIZE.to_le_bytes());
        header[24..32].copy_from_slice(&mine.to_le_bytes());
        header[32..40].copy_from_slice(&other.to_le_bytes());
        header[40..48].copy_from_slice(&(2 + ARRAY_SECTORS).to_le_bytes());
        header[48..56].copy_from_slice(&(last - ARRAY_SECTORS - 1).to_le_bytes());
        header[56..72].copy_from_slice(&self.disk.0);
        header[72..80].copy_from_slice(&array.to_le_bytes());
        header[80..84].copy_from_slice(&(ENTRIES as u32).to_le_bytes());
        header[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
        header[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let crc = crc32fast::hash(&header[..HEADER_SIZE as usize]);
        header[16..20].copy_from_slice(&crc.to_le_bytes());
        header
    }

    /// The protective MBR: one partition of type 0xEE over the whole disk.
    fn protective_mbr(&self) -> [u8; SECTOR as usize] {
        let mut mbr = [0u8; SECTOR as usize];
        let entry = &mut mbr[446..462];
        entry[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
        entry[4] = 0xEE;
        entry[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
        entry[8..12].copy_from_slice(&1u32.to_le_bytes());
        let size = u32::try_from(self.sectors() - 1).unwrap_or(u32::MAX);
        entry[12..16].copy_from_slice(&size.to_le_bytes());
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        mbr
    }

    /// Writes the protective MBR and both tables into `disk`, which must
    /// already be `size` bytes long; the partitions' contents are the
    /// caller's.
    pub fn write_tables(&self, disk: &mut (impl Write + Seek)) -> std::io::Result<()> {
        let entries = self.entries();
        let crc = crc32fast::hash(&entries);
        let last = self.sectors() - 1;
        disk.seek(SeekFrom::Start(0))?;
        disk.write_all(&self.protective_mbr())?;
        disk.write_all(&self.header(true, crc))?;
        disk.write_all(&entries)?;
        disk.seek(SeekFrom::Start((last - ARRAY_SECTORS) * SECTOR))?;
        disk.write_all(&entries)?;
        disk.write_all(&self.header(false, crc))?;
        Ok(())
    }
}

fn too_large() -> DiskError {
    DiskError::Layout("the disk would be larger than 16 EiB".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_read_and_print_in_gpt_byte_order() {
        let esp = types::ESP;
        assert_eq!(
            esp.0,
            [
                0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E,
                0xC9, 0x3B
            ]
        );
        assert_eq!(esp.to_string(), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
        assert_eq!(
            Guid::from_text("c12a7328-f81f-11d2-ba4b-00a0c93ec93b"),
            Some(esp)
        );
        for bad in [
            "",
            "C12A7328-F81F-11D2-BA4B-00A0C93EC93",
            "C12A7328F-81F-11D2-BA4B-00A0C93EC93B",
            "G12A7328-F81F-11D2-BA4B-00A0C93EC93B",
            "C12A7328-F81F-11D2-BA4B-00A0C93EC9\u{e9}",
        ] {
            assert_eq!(Guid::from_text(bad), None, "{bad}");
        }
    }

    #[test]
    fn partitions_are_aligned_and_labels_bounded() {
        let spec = |label: &str, size| Spec {
            kind: types::VAR,
            guid: Guid([1; 16]),
            label: label.to_owned(),
            size,
            attributes: 0,
        };
        let layout = Layout::new(Guid([2; 16]), vec![spec("a", 1), spec("b", ALIGN + 1)]).unwrap();
        assert_eq!(layout.partitions[0].first_lba, 2048);
        assert_eq!(layout.partitions[0].spec.size, ALIGN);
        assert_eq!(layout.partitions[1].first_lba, 4096);
        assert_eq!(layout.partitions[1].last_lba(), 4096 + 4096 - 1);
        assert_eq!(layout.size, 5 * ALIGN);
        let long = "x".repeat(37);
        assert!(matches!(
            Layout::new(Guid([2; 16]), vec![spec(&long, 1)]),
            Err(DiskError::Layout(m)) if m.contains("longer")
        ));
        assert!(Layout::new(Guid([2; 16]), vec![spec("z", 0)]).is_err());
    }

    #[test]
    fn both_headers_carry_their_own_and_the_entries_checksums() {
        let layout = Layout::new(
            Guid([7; 16]),
            vec![Spec {
                kind: types::ESP,
                guid: Guid([9; 16]),
                label: "ESP".to_owned(),
                size: ALIGN,
                attributes: attributes::REQUIRED,
            }],
        )
        .unwrap();
        let mut disk = std::io::Cursor::new(vec![0u8; layout.size as usize]);
        layout.write_tables(&mut disk).unwrap();
        let disk = disk.into_inner();
        assert_eq!(&disk[510..512], &[0x55, 0xAA]);
        let last = disk.len() - SECTOR as usize;
        for (header, array) in [(512, 1024), (last, last - 16384)] {
            let h = &disk[header..header + 92];
            assert_eq!(&h[0..8], b"EFI PART");
            let mut zeroed = h.to_vec();
            zeroed[16..20].fill(0);
            assert_eq!(crc32fast::hash(&zeroed).to_le_bytes(), h[16..20]);
            let entries = &disk[array..array + 16384];
            assert_eq!(crc32fast::hash(entries).to_le_bytes(), h[88..92]);
            assert_eq!(&entries[56..62], &[b'E', 0, b'S', 0, b'P', 0]);
        }
    }
}
