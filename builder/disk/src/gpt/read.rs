//! Reading a GPT back: what an installed host's disk holds, before an
//! update rewrites one slot's entries. The bytes come from a disk that the
//! host booted but that anything with physical access could have written,
//! so every field is checked before it is used: both headers' CRCs, the
//! entry array's CRC, the shape airlock writes (128 entries of 128 bytes,
//! the array right after the primary header), every partition inside the
//! usable area and none overlapping another. Anything else is refused, with
//! what was found.

use std::io::{Read, Seek, SeekFrom};

use super::{
    ARRAY_SECTORS, ENTRIES, ENTRY_SIZE, Guid, HEADER_SIZE, LABEL_UNITS, Layout, Placed, SECTOR,
    Spec,
};
use crate::DiskError;

fn bad(message: impl Into<String>) -> DiskError {
    DiskError::Layout(format!("the disk's partition table: {}", message.into()))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads `len` bytes at `offset`.
fn read_at(disk: &mut (impl Read + Seek), offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
    let mut bytes = vec![0u8; len];
    disk.seek(SeekFrom::Start(offset))?;
    disk.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// One header, checked: its CRC, its shape, where it says it is; returns
/// (disk GUID, entries' CRC, the entry array's LBA).
fn header(sector: &[u8], at: u64, other: u64, last: u64) -> Result<(Guid, u32, u64), DiskError> {
    let which = if at == 1 { "primary" } else { "backup" };
    if &sector[0..8] != b"EFI PART" {
        return Err(bad(format!("no {which} GPT header at sector {at}")));
    }
    if u32_at(sector, 12) != HEADER_SIZE {
        return Err(bad(format!(
            "{which} header size {} (airlock writes {HEADER_SIZE})",
            u32_at(sector, 12)
        )));
    }
    let mut zeroed = sector[..HEADER_SIZE as usize].to_vec();
    zeroed[16..20].fill(0);
    if crc32fast::hash(&zeroed) != u32_at(sector, 16) {
        return Err(bad(format!("the {which} header's checksum does not match")));
    }
    let (mine, alternate) = (u64_at(sector, 24), u64_at(sector, 32));
    if mine != at || alternate != other {
        return Err(bad(format!(
            "the {which} header says it is at sector {mine} with its copy at {alternate}; \
             on this disk they are {at} and {other}"
        )));
    }
    let (first_usable, last_usable) = (u64_at(sector, 40), u64_at(sector, 48));
    if first_usable != 2 + ARRAY_SECTORS || last_usable != last - ARRAY_SECTORS - 1 {
        return Err(bad(format!(
            "{which} header's usable sectors {first_usable}..={last_usable} are not the ones \
             airlock writes for this disk"
        )));
    }
    if u32_at(sector, 80) != ENTRIES as u32 || u32_at(sector, 84) != ENTRY_SIZE as u32 {
        return Err(bad(format!(
            "{which} header: {} entries of {} bytes (airlock writes {ENTRIES} of {ENTRY_SIZE})",
            u32_at(sector, 80),
            u32_at(sector, 84)
        )));
    }
    let guid = Guid(sector[56..72].try_into().expect("16 bytes"));
    Ok((guid, u32_at(sector, 88), u64_at(sector, 72)))
}

/// One entry's partition, or `None` for an unused entry.
fn entry(bytes: &[u8], index: usize) -> Result<Option<Placed>, DiskError> {
    let kind = Guid(bytes[0..16].try_into().expect("16 bytes"));
    if kind.0 == [0; 16] {
        return Ok(None);
    }
    let (first_lba, last_lba) = (u64_at(bytes, 32), u64_at(bytes, 40));
    if last_lba < first_lba {
        return Err(bad(format!(
            "entry {index} ends (sector {last_lba}) before it starts ({first_lba})"
        )));
    }
    let units: Vec<u16> = bytes[56..56 + 2 * LABEL_UNITS]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    let label = String::from_utf16(&units)
        .map_err(|_| bad(format!("entry {index}'s name is not UTF-16")))?;
    Ok(Some(Placed {
        spec: Spec {
            kind,
            guid: Guid(bytes[16..32].try_into().expect("16 bytes")),
            label,
            size: (last_lba - first_lba + 1) * SECTOR,
            attributes: u64_at(bytes, 48),
        },
        first_lba,
    }))
}

impl Layout {
    /// Reads the partitioning of a disk of `size` bytes, as airlock writes
    /// it (see the module's documentation for what is checked). The
    /// partitions come in table order; unused entries are skipped, so a
    /// table with gaps between used entries is refused (airlock writes none).
    pub fn read(disk: &mut (impl Read + Seek), size: u64) -> Result<Layout, DiskError> {
        if !size.is_multiple_of(SECTOR) || size / SECTOR < 2 * (2 + ARRAY_SECTORS) {
            return Err(bad(format!("a disk of {size} bytes cannot hold one")));
        }
        let last = size / SECTOR - 1;
        let primary = read_at(disk, SECTOR, SECTOR as usize)?;
        let (guid, crc, array_lba) = header(&primary, 1, last, last)?;
        if array_lba != 2 {
            return Err(bad(format!(
                "the primary entry array is at sector {array_lba}, not 2"
            )));
        }
        let array_len = (ENTRIES * ENTRY_SIZE) as usize;
        let array = read_at(disk, 2 * SECTOR, array_len)?;
        if crc32fast::hash(&array) != crc {
            return Err(bad("the entry array's checksum does not match"));
        }
        let backup = read_at(disk, last * SECTOR, SECTOR as usize)?;
        let (backup_guid, backup_crc, backup_array) = header(&backup, last, 1, last)?;
        if backup_guid != guid || backup_crc != crc || backup_array != last - ARRAY_SECTORS {
            return Err(bad("the backup header does not match the primary"));
        }
        if read_at(disk, backup_array * SECTOR, array_len)? != array {
            return Err(bad("the backup entry array differs from the primary"));
        }
        let mut partitions: Vec<Placed> = Vec::new();
        let mut ended = false;
        for (index, bytes) in array.chunks_exact(ENTRY_SIZE as usize).enumerate() {
            match entry(bytes, index)? {
                None => ended = true,
                Some(_) if ended => {
                    return Err(bad(format!("entry {index} follows an unused entry")));
                }
                Some(placed) => {
                    let (first, end) = (placed.first_lba, placed.last_lba());
                    if first < 2 + ARRAY_SECTORS || end > last - ARRAY_SECTORS - 1 {
                        return Err(bad(format!(
                            "entry {index} ({first}..={end}) lies outside the usable sectors"
                        )));
                    }
                    if let Some(other) = partitions
                        .iter()
                        .find(|p| p.first_lba <= end && first <= p.last_lba())
                    {
                        return Err(bad(format!(
                            "entry {index} overlaps {:?}",
                            other.spec.label
                        )));
                    }
                    partitions.push(placed);
                }
            }
        }
        Ok(Layout {
            disk: guid,
            partitions,
            size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ALIGN, attributes, types};
    use super::*;

    fn layout() -> Layout {
        let spec = |kind, guid: u8, label: &str, size| Spec {
            kind,
            guid: Guid([guid; 16]),
            label: label.to_owned(),
            size,
            attributes: if kind == types::ESP {
                attributes::REQUIRED
            } else {
                0
            },
        };
        Layout::new(
            Guid([1; 16]),
            vec![
                spec(types::ESP, 2, "esp", ALIGN),
                spec(types::ROOT_X86_64, 3, "root-a:demo_1", 2 * ALIGN),
                spec(types::ROOT_VERITY_X86_64, 4, "verity-a:demo_1", ALIGN),
                spec(types::ROOT_X86_64, 5, "root-b:_empty", 2 * ALIGN),
                spec(types::VAR, 6, "var", ALIGN),
            ],
        )
        .unwrap()
    }

    fn written(layout: &Layout) -> std::io::Cursor<Vec<u8>> {
        let mut disk = std::io::Cursor::new(vec![0u8; layout.size as usize]);
        layout.write_tables(&mut disk).unwrap();
        disk
    }

    #[test]
    fn a_written_table_reads_back_the_same() {
        let layout = layout();
        let mut disk = written(&layout);
        assert_eq!(Layout::read(&mut disk, layout.size).unwrap(), layout);
        // One slot relabelled and given another GUID, written and read
        // again: what an update does to slot B.
        let mut updated = layout.clone();
        updated.partitions[3].spec.label = "root-b:demo_2".to_owned();
        updated.partitions[3].spec.guid = Guid([9; 16]);
        updated.write_tables(&mut disk).unwrap();
        assert_eq!(Layout::read(&mut disk, layout.size).unwrap(), updated);
    }

    #[test]
    fn damaged_or_foreign_tables_are_refused() {
        let layout = layout();
        let size = layout.size as usize;
        let last = size - SECTOR as usize;
        type Damage = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(&str, Damage)> = vec![
            ("no primary GPT header", Box::new(|d| d[512] = b'X')),
            ("primary header's checksum", Box::new(|d| d[512 + 60] ^= 1)),
            ("entry array's checksum", Box::new(|d| d[1024 + 57] ^= 1)),
            (
                "backup header's checksum",
                Box::new(move |d| d[last + 60] ^= 1),
            ),
            (
                "backup entry array differs",
                Box::new(move |d| d[last - 16384 + 57] ^= 1),
            ),
        ];
        for (expected, damage) in cases {
            let mut bytes = written(&layout).into_inner();
            damage(&mut bytes);
            let error = Layout::read(&mut std::io::Cursor::new(bytes), layout.size)
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{expected}: {error}");
        }
        // Read as a disk of another size: the headers are not where it ends.
        let mut bytes = written(&layout).into_inner();
        bytes.extend(vec![0u8; ALIGN as usize]);
        let error = Layout::read(&mut std::io::Cursor::new(bytes), layout.size + ALIGN)
            .unwrap_err()
            .to_string();
        assert!(error.contains("copy at"), "{error}");
        assert!(Layout::read(&mut std::io::Cursor::new(vec![0u8; 512]), 512).is_err());
    }

    #[test]
    fn overlapping_or_out_of_bounds_entries_are_refused() {
        let mut layout = layout();
        layout.partitions[1].first_lba -= 1;
        let error = Layout::read(&mut written(&layout), layout.size)
            .unwrap_err()
            .to_string();
        assert!(error.contains("overlaps \"esp\""), "{error}");
        let mut layout = self::layout();
        layout.partitions[4].spec.size += ALIGN;
        let error = Layout::read(&mut written(&layout), layout.size)
            .unwrap_err()
            .to_string();
        assert!(error.contains("outside the usable sectors"), "{error}");
    }
}
