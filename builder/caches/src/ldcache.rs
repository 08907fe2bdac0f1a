//! `/etc/ld.so.cache` as glibc 2.36's `ldconfig` (Debian's build) writes
//! it: which libraries become entries ([`select`]), their order, and the
//! file ([`write`]); [`read`] parses one back.
//!
//! The file is the "new" format alone: a 48-byte header (`glibc-ld.so.
//! cache1.1`, the count, the string table's length, the byte-order flag 2,
//! the extension's offset), 24-byte entries (flags, the soname's and the
//! path's offsets, an OS version of 0, hwcaps), the string table (every
//! distinct string once, sorted by its reversed bytes, descending, so that
//! a string that ends another shares its bytes), and, 4-aligned, an
//! extension directory holding the generator string (`ldconfig (Debian
//! GLIBC VERSION) stable release version UPSTREAM`). String offsets count
//! from the start of the file.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use crate::Error;

const MAGIC: &[u8; 20] = b"glibc-ld.so.cache1.1";
const HEADER: usize = 48;
const ENTRY: usize = 24;
const EXTENSION_MAGIC: u32 = 0xEAA4_2174;
/// The most entries [`read`] accepts.
const MAX_ENTRIES: usize = 1 << 20;

/// One file of a scanned directory that [`crate::elf::inspect`] read as a
/// library.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Its name in the directory.
    pub name: String,
    /// Whether it is a symlink (to a library).
    pub symlink: bool,
    /// Its kind ([`crate::elf::X86_64`], …).
    pub flags: i32,
    /// Its `DT_SONAME`.
    pub soname: Option<String>,
}

/// The library a directory provides under one soname: the file ldconfig
/// chose for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    /// The soname (or the link's own name, for a development link such as
    /// `libz.so`).
    pub soname: String,
    /// The file chosen for it.
    pub name: String,
    /// Whether that file is a link.
    pub link: bool,
    /// Its kind.
    pub flags: i32,
}

/// One entry of the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its kind.
    pub flags: i32,
    /// The name it is looked up by.
    pub key: String,
    /// The path the dynamic linker opens.
    pub path: String,
    /// Hardware capabilities (0: none).
    pub hwcap: u64,
}

/// Whether `name` is one ldconfig looks at: `lib*` or `ld-*` with `.so` in
/// it, or `ld.so.*`/`ld64.so.*`, and no prelink leftover.
pub fn is_library_name(name: &str) -> bool {
    let library = ((name.starts_with("lib") || name.starts_with("ld-")) && name.contains(".so"))
        || name.starts_with("ld.so.")
        || name.starts_with("ld64.so.");
    let bytes = name.as_bytes();
    let prelink = name.ends_with(".#prelink#")
        || (bytes.len() >= 17 && &bytes[bytes.len() - 17..bytes.len() - 6] == b".#prelink#.");
    library && !prelink
}

/// One directory's libraries as ldconfig chooses them: a file's soname is
/// its `DT_SONAME` (or its name); a symlink named as the soname, or a
/// `.so` link whose name begins it, stands under its own name; for each
/// soname a file beats a link, and between two of a kind the later version
/// wins (by [`libcmp`]).
pub fn choose(candidates: &[Candidate]) -> Vec<Chosen> {
    let mut chosen: Vec<Chosen> = Vec::new();
    for candidate in candidates {
        let mut soname = candidate
            .soname
            .clone()
            .unwrap_or_else(|| candidate.name.clone());
        let link = candidate.symlink
            && (candidate.name == soname
                || (candidate.name.ends_with(".so") && soname.starts_with(&candidate.name)));
        if link {
            soname = candidate.name.clone();
        }
        match chosen.iter_mut().find(|c| c.soname == soname) {
            Some(existing) => {
                let newer = (existing.link && !link)
                    || (existing.link == link
                        && libcmp(&existing.name, &candidate.name) == Ordering::Less);
                if newer {
                    existing.name = candidate.name.clone();
                    existing.link = link;
                }
            }
            None => chosen.push(Chosen {
                soname,
                name: candidate.name.clone(),
                link,
                flags: candidate.flags,
            }),
        }
    }
    chosen
}

/// The cache's entries for the directories in the order ldconfig scans
/// them (`/etc/ld.so.conf`'s, then the built-in ones; each once, under the
/// path it was first named by): sorted by soname, latest version first,
/// then by kind; a soname in several directories keeps their order.
pub fn entries(dirs: &[(String, Vec<Chosen>)]) -> Vec<Entry> {
    let mut entries: Vec<Entry> = dirs
        .iter()
        .flat_map(|(dir, chosen)| {
            chosen.iter().map(move |c| Entry {
                flags: c.flags,
                key: c.soname.clone(),
                path: format!("{dir}/{}", c.soname),
                hwcap: 0,
            })
        })
        .collect();
    entries.sort_by(|a, b| {
        libcmp(&b.key, &a.key)
            .then(b.flags.cmp(&a.flags))
            .then(b.hwcap.count_ones().cmp(&a.hwcap.count_ones()))
            .then(b.hwcap.cmp(&a.hwcap))
    });
    entries
}

/// glibc's `_dl_cache_libcmp`: bytes compared in order, except that runs
/// of digits compare as numbers, and a digit sorts after any other byte.
pub fn libcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit = |c: Option<&u8>| c.is_some_and(u8::is_ascii_digit);
    while i < a.len() {
        let (c1, c2) = (a[i], b.get(j).copied().unwrap_or(0));
        if c1.is_ascii_digit() {
            if !c2.is_ascii_digit() {
                return Ordering::Greater;
            }
            let (mut v1, mut v2) = (0u128, 0u128);
            while digit(a.get(i)) {
                v1 = v1
                    .saturating_mul(10)
                    .saturating_add(u128::from(a[i] - b'0'));
                i += 1;
            }
            while digit(b.get(j)) {
                v2 = v2
                    .saturating_mul(10)
                    .saturating_add(u128::from(b[j] - b'0'));
                j += 1;
            }
            if v1 != v2 {
                return v1.cmp(&v2);
            }
        } else if c2.is_ascii_digit() {
            return Ordering::Less;
        } else if c1 != c2 {
            return c1.cmp(&c2);
        } else {
            i += 1;
            j += 1;
        }
    }
    if j < b.len() {
        Ordering::Less
    } else {
        Ordering::Equal
    }
}

/// The string table: every distinct string once, sorted by reversed bytes
/// (descending), a string that ends the one before it sharing its tail;
/// returns the table and each string's offset in it.
fn string_table<'a>(strings: impl IntoIterator<Item = &'a str>) -> (Vec<u8>, Vec<(&'a str, u32)>) {
    let unique: BTreeSet<&str> = strings.into_iter().collect();
    let mut order: Vec<&str> = unique.into_iter().collect();
    order.sort_by(|a, b| b.bytes().rev().cmp(a.bytes().rev()));
    let mut offsets: Vec<(&str, u32)> = Vec::with_capacity(order.len());
    let mut previous: Option<(&str, u32)> = None;
    for s in order {
        let offset = match previous {
            None => 0,
            Some((p, off)) if p.ends_with(s) => off + (p.len() - s.len()) as u32,
            Some((p, off)) => off + p.len() as u32 + 1,
        };
        offsets.push((s, offset));
        previous = Some((s, offset));
    }
    let size = previous.map_or(0, |(s, off)| off as usize + s.len() + 1);
    let mut table = vec![0u8; size];
    for (s, off) in &offsets {
        table[*off as usize..*off as usize + s.len()].copy_from_slice(s.as_bytes());
    }
    offsets.sort();
    (table, offsets)
}

/// The cache file for `entries` (in cache order, from [`entries`]), with
/// `generator` as its generator string.
pub fn write(entries: &[Entry], generator: &str) -> Vec<u8> {
    let (table, offsets) = string_table(
        entries
            .iter()
            .flat_map(|e| [e.key.as_str(), e.path.as_str()]),
    );
    let strings_at = (HEADER + ENTRY * entries.len()) as u32;
    let offset = |s: &str| {
        let index = offsets
            .binary_search_by(|(t, _)| (*t).cmp(s))
            .expect("every string is in the table");
        strings_at + offsets[index].1
    };
    let extension = (strings_at as usize + table.len()).next_multiple_of(4);
    let mut out = Vec::with_capacity(extension + 24 + generator.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&(table.len() as u32).to_le_bytes());
    out.extend_from_slice(&[2, 0, 0, 0]);
    out.extend_from_slice(&(extension as u32).to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    for entry in entries {
        out.extend_from_slice(&entry.flags.to_le_bytes());
        out.extend_from_slice(&offset(&entry.key).to_le_bytes());
        out.extend_from_slice(&offset(&entry.path).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&entry.hwcap.to_le_bytes());
    }
    out.extend_from_slice(&table);
    out.resize(extension, 0);
    // The extension directory: one section, the generator.
    out.extend_from_slice(&EXTENSION_MAGIC.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for field in [0, 0, extension as u32 + 24, generator.len() as u32] {
        out.extend_from_slice(&field.to_le_bytes());
    }
    out.extend_from_slice(generator.as_bytes());
    out
}

/// The generator string Debian's ldconfig writes, for libc-bin `version`
/// (`2.36-9+deb12u14`: `ldconfig (Debian GLIBC 2.36-9+deb12u14) stable
/// release version 2.36`).
pub fn generator(version: &str) -> String {
    let upstream = version.split_once(':').map_or(version, |(_, v)| v);
    let upstream = upstream.rsplit_once('-').map_or(upstream, |(u, _)| u);
    format!("ldconfig (Debian GLIBC {version}) stable release version {upstream}")
}

/// Parses a cache file: its entries and its generator string.
pub fn read(bytes: &[u8]) -> Result<(Vec<Entry>, Option<String>), Error> {
    let bad = |message: &str| Error::Format {
        what: "ld.so.cache",
        message: message.to_owned(),
    };
    if bytes.len() < HEADER || &bytes[..20] != MAGIC {
        return Err(bad("no glibc-ld.so.cache1.1 header"));
    }
    let u32_at = |at: usize| -> Result<u32, Error> {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("four bytes")))
            .ok_or_else(|| bad("truncated"))
    };
    let count = u32_at(20)? as usize;
    if count > MAX_ENTRIES || HEADER + count * ENTRY > bytes.len() {
        return Err(bad("more entries than the file holds"));
    }
    let string = |at: u32| -> Result<String, Error> {
        let rest = bytes
            .get(at as usize..)
            .ok_or_else(|| bad("a string past the end"))?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| bad("a string with no end"))?;
        String::from_utf8(rest[..end].to_vec()).map_err(|_| bad("a string that is not UTF-8"))
    };
    let mut entries = Vec::with_capacity(count);
    for index in 0..count {
        let at = HEADER + index * ENTRY;
        let hwcap = u64::from(u32_at(at + 16)?) | (u64::from(u32_at(at + 20)?) << 32);
        entries.push(Entry {
            flags: u32_at(at)? as i32,
            key: string(u32_at(at + 4)?)?,
            path: string(u32_at(at + 8)?)?,
            hwcap,
        });
    }
    let extension = u32_at(32)? as usize;
    let mut generator = None;
    if extension != 0 && u32_at(extension)? == EXTENSION_MAGIC {
        let sections = u32_at(extension + 4)? as usize;
        for index in 0..sections.min(16) {
            let at = extension + 8 + index * 16;
            if u32_at(at)? == 0 {
                let (offset, size) = (u32_at(at + 8)? as usize, u32_at(at + 12)? as usize);
                let text = bytes
                    .get(offset..offset.saturating_add(size))
                    .ok_or_else(|| bad("a generator past the end"))?;
                generator = Some(String::from_utf8_lossy(text).into_owned());
            }
        }
    }
    Ok((entries, generator))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers_and_digits_sort_last() {
        assert_eq!(libcmp("libz.so.10", "libz.so.9"), Ordering::Greater);
        assert_eq!(libcmp("libz.so.1", "libz.so.1"), Ordering::Equal);
        assert_eq!(libcmp("libz.so", "libz.so.1"), Ordering::Less);
        assert_eq!(libcmp("lib2.so", "libz.so"), Ordering::Greater);
        assert_eq!(libcmp("libc.so.6", "libm.so.6"), Ordering::Less);
    }

    #[test]
    fn a_string_that_ends_another_shares_its_bytes() {
        let (table, offsets) = string_table(["/lib/libz.so.1", "libz.so.1", "libm.so.6"]);
        assert_eq!(table, b"libm.so.6\0/lib/libz.so.1\0");
        assert_eq!(
            offsets,
            vec![("/lib/libz.so.1", 10), ("libm.so.6", 0), ("libz.so.1", 15)]
        );
    }

    #[test]
    fn a_file_beats_a_link_and_a_dev_link_stands_under_its_name() {
        let candidate = |name: &str, symlink, soname: &str| Candidate {
            name: name.to_owned(),
            symlink,
            flags: crate::elf::X86_64,
            soname: Some(soname.to_owned()),
        };
        let chosen = choose(&[
            candidate("libz.so", true, "libz.so.1"),
            candidate("libz.so.1", true, "libz.so.1"),
            candidate("libz.so.1.2.13", false, "libz.so.1"),
            candidate("libfoo.so", true, "libfoo-2.0.so.0"),
        ]);
        let names: Vec<(&str, &str, bool)> = chosen
            .iter()
            .map(|c| (c.soname.as_str(), c.name.as_str(), c.link))
            .collect();
        assert_eq!(
            names,
            [
                ("libz.so", "libz.so", true),
                ("libz.so.1", "libz.so.1.2.13", false),
                ("libfoo-2.0.so.0", "libfoo.so", false),
            ]
        );
    }

    #[test]
    fn what_is_written_reads_back() {
        let chosen = |soname: &str| Chosen {
            soname: soname.to_owned(),
            name: soname.to_owned(),
            link: false,
            flags: crate::elf::X86_64,
        };
        let entries = entries(&[
            ("/usr/local/lib".to_owned(), vec![chosen("libzstd.so.1")]),
            (
                "/lib/x86_64-linux-gnu".to_owned(),
                vec![
                    chosen("libc.so.6"),
                    chosen("libzstd.so.1"),
                    chosen("libz.so.1"),
                ],
            ),
        ]);
        let keys: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            keys,
            [
                "/usr/local/lib/libzstd.so.1",
                "/lib/x86_64-linux-gnu/libzstd.so.1",
                "/lib/x86_64-linux-gnu/libz.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
            ]
        );
        let generator = generator("2.36-9+deb12u14");
        assert_eq!(
            generator,
            "ldconfig (Debian GLIBC 2.36-9+deb12u14) stable release version 2.36"
        );
        let bytes = write(&entries, &generator);
        assert_eq!(read(&bytes).unwrap(), (entries, Some(generator)));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_read_without_panicking(bytes: Vec<u8>) {
            let mut file = MAGIC.to_vec();
            file.extend(bytes);
            let _ = read(&file);
        }
    }
}
