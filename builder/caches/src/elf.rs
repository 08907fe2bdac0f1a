//! What `ldconfig` reads of a shared library: its class and machine, the
//! program interpreter, and the dynamic section's `DT_SONAME` and
//! `DT_NEEDED`. The reader seeks to the few bytes it needs (a library can
//! be hundreds of megabytes) and bounds every count and string.

use std::io::{Read, Seek, SeekFrom};

/// ldconfig's kind of an x86-64 (ELF64) library: `libc6,x86-64`.
pub const X86_64: i32 = 0x0303;
/// An x32 (ELF32 on x86-64) library.
pub const X32: i32 = 0x0803;
/// An i386 library linked against glibc: `libc6`.
pub const I386_LIBC6: i32 = 0x0003;
/// Another i386 ELF library: `ELF`.
pub const I386_ELF: i32 = 0x0001;

/// The most program headers or dynamic entries read.
const MAX_ENTRIES: u64 = 1 << 16;
/// The longest string read (a soname, an interpreter).
const MAX_STRING: usize = 4096;

/// A library as ldconfig sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Library {
    /// Its kind, one of the constants of this module.
    pub flags: i32,
    /// Its `DT_SONAME`, if it has one.
    pub soname: Option<String>,
}

/// The interpreters that make an i386 ELF a glibc library.
const INTERPRETERS: &[&[u8]] = &[
    b"/lib/ld-linux.so.2",
    b"/libx32/ld-linux-x32.so.2",
    b"/lib64/ld-linux-x86-64.so.2",
];

struct Header {
    class64: bool,
    phoff: u64,
    phentsize: u64,
    phnum: u64,
}

#[derive(Clone, Copy)]
struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

/// Reads `file` as ldconfig does: None when it is not a library ldconfig
/// lists (not ELF, not a shared object, another machine, no dynamic
/// section or string table: it skips those without a word); an error
/// only when reading fails.
pub fn inspect(file: &mut (impl Read + Seek)) -> std::io::Result<Option<Library>> {
    let mut ident = [0u8; 64];
    if !read_exact_or_short(file, 0, &mut ident)? {
        return Ok(None);
    }
    let Some(header) = header(&ident) else {
        return Ok(None);
    };
    let machine = u16::from_le_bytes([ident[18], ident[19]]);
    let class_flags = match (machine, header.class64) {
        (62, true) => Some(X86_64),
        (62, false) => Some(X32),
        (3, false) => None,
        _ => return Ok(None),
    };
    let segments = segments(file, &header)?;
    let mut flags = class_flags.unwrap_or(I386_ELF);
    for segment in segments.iter().filter(|s| s.kind == 3) {
        let interpreter = string_at(file, segment.offset)?;
        if INTERPRETERS.contains(&interpreter.as_slice()) {
            flags = class_flags.unwrap_or(I386_LIBC6);
        }
    }
    let Some(dynamic) = segments.iter().find(|s| s.kind == 2 && s.filesz > 0) else {
        return Ok(None);
    };
    let entries = dynamic_entries(file, &header, dynamic)?;
    let Some(strtab) = entries.iter().find(|(tag, _)| *tag == 5).map(|(_, v)| *v) else {
        return Ok(None);
    };
    // The string table's address as a file offset, through the first
    // loaded segment that holds it.
    let base = segments
        .iter()
        .find(|s| s.kind == 1 && s.vaddr <= strtab && strtab < s.vaddr.saturating_add(s.filesz))
        .map_or(Some(0), |s| s.vaddr.checked_sub(s.offset));
    let Some(strtab) = base.and_then(|base| strtab.checked_sub(base)) else {
        return Ok(None);
    };
    let mut soname = None;
    for (tag, value) in &entries {
        match tag {
            1 if flags == I386_ELF => {
                let needed = string_at(file, strtab.saturating_add(*value))?;
                if needed == b"libc.so.6" || needed == b"libm.so.6" {
                    flags = I386_LIBC6;
                }
            }
            14 if soname.is_none() => {
                let name = string_at(file, strtab.saturating_add(*value))?;
                soname = Some(String::from_utf8_lossy(&name).into_owned());
            }
            _ => {}
        }
    }
    Ok(Some(Library { flags, soname }))
}

fn header(ident: &[u8; 64]) -> Option<Header> {
    if &ident[..4] != b"\x7fELF" || ident[5] != 1 {
        return None;
    }
    let class64 = match ident[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    // ET_DYN only.
    if u16::from_le_bytes([ident[16], ident[17]]) != 3 {
        return None;
    }
    let u16_at = |at: usize| u64::from(u16::from_le_bytes([ident[at], ident[at + 1]]));
    let (phoff, phentsize, phnum) = if class64 {
        (le(&ident[32..40]), u16_at(54), u16_at(56))
    } else {
        (le(&ident[28..32]), u16_at(42), u16_at(44))
    };
    let needed = if class64 { 56 } else { 32 };
    (phentsize >= needed && phnum <= MAX_ENTRIES).then_some(Header {
        class64,
        phoff,
        phentsize,
        phnum,
    })
}

fn segments(file: &mut (impl Read + Seek), header: &Header) -> std::io::Result<Vec<Segment>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; header.phentsize as usize];
    for index in 0..header.phnum {
        let at = header
            .phoff
            .saturating_add(index.saturating_mul(header.phentsize));
        if !read_exact_or_short(file, at, &mut buf)? {
            break;
        }
        let kind = le(&buf[0..4]) as u32;
        let (offset, vaddr, filesz) = if header.class64 {
            (le(&buf[8..16]), le(&buf[16..24]), le(&buf[32..40]))
        } else {
            (le(&buf[4..8]), le(&buf[8..12]), le(&buf[16..20]))
        };
        out.push(Segment {
            kind,
            offset,
            vaddr,
            filesz,
        });
    }
    Ok(out)
}

fn dynamic_entries(
    file: &mut (impl Read + Seek),
    header: &Header,
    dynamic: &Segment,
) -> std::io::Result<Vec<(u64, u64)>> {
    let size: u64 = if header.class64 { 16 } else { 8 };
    let count = (dynamic.filesz / size).min(MAX_ENTRIES);
    let mut out = Vec::new();
    let mut buf = vec![0u8; size as usize];
    for index in 0..count {
        if !read_exact_or_short(file, dynamic.offset.saturating_add(index * size), &mut buf)? {
            break;
        }
        let half = size as usize / 2;
        let (tag, value) = (le(&buf[..half]), le(&buf[half..]));
        if tag == 0 {
            break;
        }
        out.push((tag, value));
    }
    Ok(out)
}

/// The NUL-terminated string at `offset` (at most [`MAX_STRING`] bytes).
fn string_at(file: &mut (impl Read + Seek), offset: u64) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(offset))?;
    let mut out = Vec::new();
    file.take(MAX_STRING as u64).read_to_end(&mut out)?;
    if let Some(end) = out.iter().position(|&b| b == 0) {
        out.truncate(end);
    }
    Ok(out)
}

/// Fills `buf` from `offset`; false when the file ends first.
fn read_exact_or_short(
    file: &mut (impl Read + Seek),
    offset: u64,
    buf: &mut [u8],
) -> std::io::Result<bool> {
    file.seek(SeekFrom::Start(offset))?;
    match file.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// A little-endian unsigned integer of 4 or 8 bytes.
fn le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn the_hosts_libc_is_an_x86_64_library_with_its_soname() {
        let mut file = std::fs::File::open("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
        assert_eq!(
            inspect(&mut file).unwrap(),
            Some(Library {
                flags: X86_64,
                soname: Some("libc.so.6".to_owned())
            })
        );
    }

    #[test]
    fn what_is_not_a_shared_library_is_skipped() {
        for bytes in [
            &b"/* GNU ld script */ GROUP ( libc.so.6 )"[..],
            b"\x7fELF",
            &[0u8; 200][..],
        ] {
            assert_eq!(inspect(&mut Cursor::new(bytes)).unwrap(), None);
        }
        // An executable that is not position-independent (ET_EXEC).
        let mut exec = std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
        exec[16] = 2;
        assert_eq!(inspect(&mut Cursor::new(exec)).unwrap(), None);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_read_without_panicking(bytes: Vec<u8>) {
            let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
            elf.extend(bytes);
            let _ = inspect(&mut Cursor::new(elf));
        }
    }
}
