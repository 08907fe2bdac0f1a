//! A FAT32 file system holding a fixed set of files, as an EFI system
//! partition needs (Microsoft's FAT specification, 1.03): 512-byte
//! sectors, two FATs, the root directory in a cluster chain, VFAT long
//! names for any name that is not its own upper-case 8.3 form. Every file
//! is contiguous; directories come first, then files, each in name order;
//! every timestamp is the build's epoch; the volume id is the caller's.
//! Nothing else varies, so the same files give the same bytes.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::DiskError;

const SECTOR: u64 = 512;
const RESERVED: u64 = 32;
const FATS: u64 = 2;
const ENTRY: usize = 32;
const EOC: u32 = 0x0FFF_FFFF;
/// FAT32 needs at least this many clusters (fewer make it FAT16).
const MIN_CLUSTERS: u64 = 65_525;

/// A file's bytes: in memory, or read from a reader of a known length.
pub enum Content<'a> {
    /// The bytes.
    Bytes(Vec<u8>),
    /// `len` bytes from the reader.
    Reader(u64, Box<dyn Read + 'a>),
}

impl Content<'_> {
    fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Reader(len, _) => *len,
        }
    }
}

impl std::fmt::Debug for Content<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Content({} bytes)", self.len())
    }
}

/// The file system's fixed parameters.
#[derive(Clone, Debug)]
pub struct Volume {
    /// Its size in bytes (a multiple of 512).
    pub size: u64,
    /// The volume serial number.
    pub id: u32,
    /// The volume label (at most 11 characters of 8.3's set).
    pub label: String,
    /// Sectors before the file system on its disk (the partition's first
    /// LBA), which the boot sector records.
    pub hidden_sectors: u32,
    /// Seconds since 1970 for every timestamp (clamped to FAT's
    /// 1980–2107).
    pub epoch: u64,
}

/// A directory being laid out: its children in name order and, once
/// allocated, its first cluster.
#[derive(Default)]
struct Dir {
    dirs: BTreeMap<String, Dir>,
    files: BTreeMap<String, File>,
    first_cluster: u32,
}

/// A file being laid out: which content, how long, its first cluster.
struct File {
    content: usize,
    len: u64,
    first_cluster: u32,
}

/// The geometry the size gives.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    sectors_per_cluster: u64,
    fat_sectors: u64,
    clusters: u64,
}

impl Geometry {
    fn new(size: u64) -> Result<Geometry, DiskError> {
        let sectors = size / SECTOR;
        // The specification's table of cluster sizes for FAT32.
        let sectors_per_cluster = match sectors {
            0..66_600 => {
                return Err(DiskError::Layout(format!(
                    "an EFI system partition of {} MiB is too small for FAT32 (33 MiB at least)",
                    size >> 20
                )));
            }
            66_600..532_480 => 1,
            532_480..16_777_216 => 8,
            16_777_216..33_554_432 => 16,
            33_554_432..67_108_864 => 32,
            _ => 64,
        };
        // The specification's FAT size computation.
        let per = (256 * sectors_per_cluster + FATS) / 2;
        let fat_sectors = (sectors - RESERVED).div_ceil(per);
        let clusters = (sectors - RESERVED - FATS * fat_sectors) / sectors_per_cluster;
        if clusters < MIN_CLUSTERS {
            return Err(DiskError::Layout(format!(
                "{clusters} clusters are too few for FAT32"
            )));
        }
        Ok(Geometry {
            sectors_per_cluster,
            fat_sectors,
            clusters,
        })
    }

    fn cluster_bytes(&self) -> u64 {
        self.sectors_per_cluster * SECTOR
    }

    fn data_start(&self) -> u64 {
        (RESERVED + FATS * self.fat_sectors) * SECTOR
    }

    fn cluster_offset(&self, cluster: u32) -> u64 {
        self.data_start() + u64::from(cluster - 2) * self.cluster_bytes()
    }
}

/// Writes a FAT32 file system holding `files` (paths with `/`, no leading
/// one) at the start of `out`, which must be `volume.size` bytes of zeros
/// (a fresh sparse file): only the sectors that are not zero are written.
pub fn write(
    out: &mut (impl Write + Seek),
    volume: &Volume,
    files: Vec<(String, Content<'_>)>,
) -> Result<(), DiskError> {
    let geometry = Geometry::new(volume.size)?;
    let mut root = Dir::default();
    let mut contents = Vec::with_capacity(files.len());
    for (index, (path, content)) in files.into_iter().enumerate() {
        root.insert(&path, index, content.len())?;
        contents.push(Some(content));
    }
    let mut fat = vec![0u32; geometry.clusters as usize + 2];
    fat[0] = 0x0FFF_FFF8;
    fat[1] = EOC;
    let mut next = 2u32;
    root.allocate_dirs(&geometry, &mut fat, &mut next, true)?;
    root.allocate_files(&geometry, &mut fat, &mut next)?;
    let free = geometry.clusters - u64::from(next - 2);
    let boot = boot_sector(volume, &geometry, root.first_cluster);
    let info = fs_info(free, next);
    for at in [0, 6] {
        out.seek(SeekFrom::Start(at * SECTOR))?;
        out.write_all(&boot)?;
        out.write_all(&info)?;
        // The third sector of each copy carries only the signature.
        let mut third = [0u8; SECTOR as usize];
        third[510..].copy_from_slice(&[0x55, 0xAA]);
        out.write_all(&third)?;
    }
    let table: Vec<u8> = fat.iter().flat_map(|e| e.to_le_bytes()).collect();
    for copy in 0..FATS {
        out.seek(SeekFrom::Start(
            (RESERVED + copy * geometry.fat_sectors) * SECTOR,
        ))?;
        out.write_all(&table)?;
    }
    let stamp = DosTime::from_epoch(volume.epoch);
    root.write_dirs(out, &geometry, stamp, 0, Some(&volume.label))?;
    root.write_files(out, &geometry, &mut contents)
}

/// Takes `clusters` clusters from `next` on and chains them in the FAT.
fn chain(fat: &mut [u32], next: &mut u32, clusters: u64) -> Result<u32, DiskError> {
    let first = *next;
    let end = u64::from(first) + clusters;
    if end > fat.len() as u64 {
        return Err(DiskError::Layout(
            "the files do not fit in the EFI system partition: make [disk] esp_mib larger"
                .to_owned(),
        ));
    }
    let end = end as u32;
    for cluster in first..end {
        fat[cluster as usize] = if cluster + 1 == end { EOC } else { cluster + 1 };
    }
    *next = end;
    Ok(first)
}

impl Dir {
    fn insert(&mut self, path: &str, content: usize, len: u64) -> Result<(), DiskError> {
        let mut parts: Vec<&str> = path.split('/').collect();
        let name = parts.pop().unwrap_or_default();
        let mut dir = self;
        for part in parts {
            check_name(part)?;
            if dir.files.contains_key(part) {
                return Err(DiskError::Layout(format!("{path}: {part} is a file")));
            }
            dir = dir.dirs.entry(part.to_owned()).or_default();
        }
        check_name(name)?;
        if len > u64::from(u32::MAX) {
            return Err(DiskError::Layout(format!(
                "{path} has {len} bytes; a FAT32 file holds less than 4 GiB"
            )));
        }
        let file = File {
            content,
            len,
            first_cluster: 0,
        };
        if dir.dirs.contains_key(name) || dir.files.insert(name.to_owned(), file).is_some() {
            return Err(DiskError::Layout(format!("{path} is named twice")));
        }
        Ok(())
    }

    fn allocate_dirs(
        &mut self,
        geometry: &Geometry,
        fat: &mut [u32],
        next: &mut u32,
        is_root: bool,
    ) -> Result<(), DiskError> {
        let entries = self.entries(is_root, DosTime::default(), 0, None).len();
        let clusters = (entries as u64 * ENTRY as u64)
            .div_ceil(geometry.cluster_bytes())
            .max(1);
        self.first_cluster = chain(fat, next, clusters)?;
        for dir in self.dirs.values_mut() {
            dir.allocate_dirs(geometry, fat, next, false)?;
        }
        Ok(())
    }

    fn allocate_files(
        &mut self,
        geometry: &Geometry,
        fat: &mut [u32],
        next: &mut u32,
    ) -> Result<(), DiskError> {
        for dir in self.dirs.values_mut() {
            dir.allocate_files(geometry, fat, next)?;
        }
        for file in self.files.values_mut() {
            let clusters = file.len.div_ceil(geometry.cluster_bytes());
            if clusters > 0 {
                file.first_cluster = chain(fat, next, clusters)?;
            }
        }
        Ok(())
    }

    /// The directory's 32-byte entries: the label (root) or `.` and `..`,
    /// then for each child its long-name entries and its short entry.
    fn entries(
        &self,
        is_root: bool,
        stamp: DosTime,
        parent: u32,
        label: Option<&str>,
    ) -> Vec<[u8; ENTRY]> {
        let mut entries = Vec::new();
        if is_root {
            if let Some(label) = label {
                entries.push(short_entry(&pad_label(label), 0x08, 0, 0, stamp));
            }
        } else {
            entries.push(short_entry(
                b".          ",
                0x10,
                self.first_cluster,
                0,
                stamp,
            ));
            entries.push(short_entry(b"..         ", 0x10, parent, 0, stamp));
        }
        let mut taken = Vec::new();
        let children = self
            .dirs
            .iter()
            .map(|(n, d)| (n, 0x10, d.first_cluster, 0))
            .chain(
                self.files
                    .iter()
                    .map(|(n, f)| (n, 0x20, f.first_cluster, f.len)),
            );
        for (name, attribute, cluster, len) in children {
            let short = short_name(name, &taken);
            taken.push(short);
            if !is_plain_short(name) {
                entries.extend(long_entries(name, checksum(&short)));
            }
            // A FAT32 file's size is 32 bits: `insert` refuses more.
            entries.push(short_entry(&short, attribute, cluster, len as u32, stamp));
        }
        entries
    }

    fn write_dirs(
        &self,
        out: &mut (impl Write + Seek),
        geometry: &Geometry,
        stamp: DosTime,
        parent: u32,
        label: Option<&str>,
    ) -> Result<(), DiskError> {
        let is_root = label.is_some();
        let bytes: Vec<u8> = self.entries(is_root, stamp, parent, label).concat();
        out.seek(SeekFrom::Start(geometry.cluster_offset(self.first_cluster)))?;
        out.write_all(&bytes)?;
        // `..` of a directory in the root names cluster 0.
        let own = if is_root { 0 } else { self.first_cluster };
        for dir in self.dirs.values() {
            dir.write_dirs(out, geometry, stamp, own, None)?;
        }
        Ok(())
    }

    fn write_files(
        &self,
        out: &mut (impl Write + Seek),
        geometry: &Geometry,
        contents: &mut [Option<Content<'_>>],
    ) -> Result<(), DiskError> {
        for dir in self.dirs.values() {
            dir.write_files(out, geometry, contents)?;
        }
        for (name, file) in &self.files {
            let Some(content) = contents[file.content].take() else {
                continue;
            };
            if file.len == 0 {
                continue;
            }
            out.seek(SeekFrom::Start(geometry.cluster_offset(file.first_cluster)))?;
            let copied = match content {
                Content::Bytes(bytes) => {
                    out.write_all(&bytes)?;
                    bytes.len() as u64
                }
                Content::Reader(len, reader) => io::copy(&mut reader.take(len), out)?,
            };
            if copied != file.len {
                return Err(DiskError::Layout(format!(
                    "{name} ended after {copied} of its {} bytes",
                    file.len
                )));
            }
        }
        Ok(())
    }
}

/// A name the ESP may hold: not empty, no `.` or `..`, at most 255
/// characters, none of FAT's forbidden ones.
fn check_name(name: &str) -> Result<(), DiskError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.encode_utf16().count() > 255
        || name.chars().any(|c| c < ' ' || "\"*/:<>?\\|".contains(c))
        || name.ends_with('.')
        || name.ends_with(' ');
    if bad {
        return Err(DiskError::Layout(format!(
            "{name:?} is not a name a FAT file system can hold"
        )));
    }
    Ok(())
}

const SHORT_SPECIAL: &str = "$%'-_@~`!(){}^#&";

fn short_char(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || SHORT_SPECIAL.contains(c)
}

/// True when `name` is its own short name: upper case, 8.3, short
/// characters only.
fn is_plain_short(name: &str) -> bool {
    let (base, ext) = match name.rsplit_once('.') {
        Some((base, ext)) => (base, ext),
        None => (name, ""),
    };
    (1..=8).contains(&base.len())
        && ext.len() <= 3
        && !(name.contains('.') && ext.is_empty())
        && base.chars().chain(ext.chars()).all(short_char)
}

/// The 11-byte short name: the name itself when it is plain, else a basis
/// name with `~N`, the first N not `taken`.
fn short_name(name: &str, taken: &[[u8; 11]]) -> [u8; 11] {
    let split = |name: &str| -> (String, String) {
        let (base, ext) = match name.rsplit_once('.') {
            Some((base, ext)) if !base.is_empty() => (base.to_owned(), ext.to_owned()),
            _ => (name.to_owned(), String::new()),
        };
        let clean = |s: &str| -> String {
            s.chars()
                .filter(|c| *c != ' ' && *c != '.')
                .map(|c| c.to_ascii_uppercase())
                .map(|c| if short_char(c) { c } else { '_' })
                .collect()
        };
        (clean(&base), clean(&ext))
    };
    let pack = |base: &str, ext: &str| -> [u8; 11] {
        let mut short = [b' '; 11];
        for (i, b) in base.bytes().take(8).enumerate() {
            short[i] = b;
        }
        for (i, b) in ext.bytes().take(3).enumerate() {
            short[8 + i] = b;
        }
        short
    };
    let (base, ext) = split(name);
    if is_plain_short(name) {
        return pack(&base, &ext);
    }
    for n in 1u32.. {
        let tail = format!("~{n}");
        let keep = 8 - tail.len();
        let basis: String = base.chars().take(keep).collect();
        let short = pack(&format!("{basis}{tail}"), &ext);
        if !taken.contains(&short) {
            return short;
        }
    }
    unreachable!("u32 names run out only after 4 billion entries")
}

/// The short name's checksum the long-name entries carry.
fn checksum(short: &[u8; 11]) -> u8 {
    short
        .iter()
        .fold(0u8, |sum, &b| sum.rotate_right(1).wrapping_add(b))
}

/// The long-name entries of `name`, in the order they are stored (the last
/// part first).
fn long_entries(name: &str, checksum: u8) -> Vec<[u8; ENTRY]> {
    let mut units: Vec<u16> = name.encode_utf16().collect();
    let parts = units.len().div_ceil(13);
    if !units.len().is_multiple_of(13) {
        units.push(0);
    }
    units.resize(parts * 13, 0xFFFF);
    let mut entries = Vec::with_capacity(parts);
    for part in (0..parts).rev() {
        let mut entry = [0u8; ENTRY];
        entry[0] = (part as u8 + 1) | if part + 1 == parts { 0x40 } else { 0 };
        entry[11] = 0x0F;
        entry[13] = checksum;
        let chunk = &units[part * 13..part * 13 + 13];
        let slots = (1..11)
            .step_by(2)
            .chain((14..26).step_by(2))
            .chain((28..32).step_by(2));
        for (slot, unit) in slots.zip(chunk) {
            entry[slot..slot + 2].copy_from_slice(&unit.to_le_bytes());
        }
        entries.push(entry);
    }
    entries
}

fn short_entry(
    name: &[u8; 11],
    attribute: u8,
    cluster: u32,
    len: u32,
    stamp: DosTime,
) -> [u8; ENTRY] {
    let mut entry = [0u8; ENTRY];
    entry[..11].copy_from_slice(name);
    entry[11] = attribute;
    entry[14..16].copy_from_slice(&stamp.time.to_le_bytes());
    entry[16..18].copy_from_slice(&stamp.date.to_le_bytes());
    entry[18..20].copy_from_slice(&stamp.date.to_le_bytes());
    entry[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
    entry[22..24].copy_from_slice(&stamp.time.to_le_bytes());
    entry[24..26].copy_from_slice(&stamp.date.to_le_bytes());
    entry[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
    entry[28..32].copy_from_slice(&len.to_le_bytes());
    entry
}

fn pad_label(label: &str) -> [u8; 11] {
    let mut out = [b' '; 11];
    for (i, b) in label.bytes().take(11).enumerate() {
        out[i] = b.to_ascii_uppercase();
    }
    out
}

fn boot_sector(volume: &Volume, geometry: &Geometry, root_cluster: u32) -> [u8; SECTOR as usize] {
    let mut s = [0u8; SECTOR as usize];
    s[0..3].copy_from_slice(&[0xEB, 0x58, 0x90]);
    s[3..11].copy_from_slice(b"airlock ");
    s[11..13].copy_from_slice(&(SECTOR as u16).to_le_bytes());
    s[13] = geometry.sectors_per_cluster as u8;
    s[14..16].copy_from_slice(&(RESERVED as u16).to_le_bytes());
    s[16] = FATS as u8;
    s[21] = 0xF8;
    s[24..26].copy_from_slice(&32u16.to_le_bytes());
    s[26..28].copy_from_slice(&64u16.to_le_bytes());
    s[28..32].copy_from_slice(&volume.hidden_sectors.to_le_bytes());
    s[32..36].copy_from_slice(&((volume.size / SECTOR) as u32).to_le_bytes());
    s[36..40].copy_from_slice(&(geometry.fat_sectors as u32).to_le_bytes());
    s[44..48].copy_from_slice(&root_cluster.to_le_bytes());
    s[48..50].copy_from_slice(&1u16.to_le_bytes());
    s[50..52].copy_from_slice(&6u16.to_le_bytes());
    s[64] = 0x80;
    s[66] = 0x29;
    s[67..71].copy_from_slice(&volume.id.to_le_bytes());
    s[71..82].copy_from_slice(&pad_label(&volume.label));
    s[82..90].copy_from_slice(b"FAT32   ");
    s[510..].copy_from_slice(&[0x55, 0xAA]);
    s
}

fn fs_info(free: u64, next: u32) -> [u8; SECTOR as usize] {
    let mut s = [0u8; SECTOR as usize];
    s[0..4].copy_from_slice(&0x4161_5252u32.to_le_bytes());
    s[484..488].copy_from_slice(&0x6141_7272u32.to_le_bytes());
    s[488..492].copy_from_slice(&(free as u32).to_le_bytes());
    s[492..496].copy_from_slice(&next.to_le_bytes());
    s[508..].copy_from_slice(&0xAA55_0000u32.to_le_bytes());
    s
}

/// A FAT date and time (local time by FAT's rules; airlock writes UTC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct DosTime {
    date: u16,
    time: u16,
}

impl DosTime {
    fn from_epoch(epoch: u64) -> DosTime {
        const MIN: u64 = 315_532_800; // 1980-01-01
        const MAX: u64 = 4_354_819_198; // 2107-12-31 23:59:58
        let epoch = epoch.clamp(MIN, MAX);
        let days = (epoch / 86_400) as i64;
        let seconds = epoch % 86_400;
        let (year, month, day) = civil(days);
        DosTime {
            date: (((year - 1980) as u16) << 9) | ((month as u16) << 5) | day as u16,
            time: ((seconds / 3600) as u16) << 11
                | (((seconds / 60) % 60) as u16) << 5
                | ((seconds % 60) / 2) as u16,
        }
    }
}

/// The civil date of a day count since 1970 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
