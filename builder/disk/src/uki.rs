//! Unified kernel images (the UAPI group's UKI specification): systemd's
//! EFI stub with sections added for the os-release, the command line, the
//! kernel version, the initrd and the kernel. The stub comes from a
//! package, so it is read as untrusted bytes: every offset is checked
//! against the file before it is used, and anything airlock does not
//! expect (another machine, a PE32 image, a signature already attached,
//! no room for the new section headers) is refused with the reason.
//!
//! The new sections follow the stub's last one, each at the next 4 KiB
//! virtual address and the next file-alignment boundary in the file. The
//! stub's COFF symbol table, which no loader reads, is dropped, and the
//! header's checksum is computed over the result as sbsign computes it, so
//! that a signed UKI with its signature removed is the UKI again, byte for
//! byte.

use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::DiskError;

/// A section to add: its name (at most 8 bytes) and content.
pub struct Section<'a> {
    /// `.osrel`, `.cmdline`, `.uname`, `.initrd`, `.linux`, ...
    pub name: &'static str,
    /// Its length in bytes.
    pub len: u64,
    /// Its bytes.
    pub content: Box<dyn Read + 'a>,
}

impl std::fmt::Debug for Section<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Section({}, {} bytes)", self.name, self.len)
    }
}

const SECTION_HEADER: usize = 40;
const IMAGE_FILE_MACHINE_AMD64: u16 = 0x8664;
const PE32_PLUS: u16 = 0x20B;
/// Initialized data, readable.
const DATA_CHARACTERISTICS: u32 = 0x4000_0040;
const VIRTUAL_ALIGN: u64 = 4096;

/// What the stub's headers say.
#[derive(Debug)]
struct Stub {
    /// Offset of the COFF header (after "PE\0\0").
    coff: usize,
    /// Offset of the optional header.
    optional: usize,
    /// Offset of the section table.
    table: usize,
    sections: usize,
    file_align: u64,
    section_align: u64,
    size_of_headers: usize,
    /// The end of the last section's raw data.
    raw_end: usize,
    /// The end of the last section's virtual extent.
    virtual_end: u64,
    names: Vec<[u8; 8]>,
}

fn u16_at(bytes: &[u8], at: usize) -> Result<u16, DiskError> {
    bytes
        .get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or_else(|| DiskError::Stub(format!("ends before offset {at}")))
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, DiskError> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| DiskError::Stub(format!("ends before offset {at}")))
}

fn refuse(why: impl Into<String>) -> DiskError {
    DiskError::Stub(why.into())
}

impl Stub {
    fn read(bytes: &[u8]) -> Result<Stub, DiskError> {
        if bytes.get(..2) != Some(b"MZ") {
            return Err(refuse("no MZ header: not a PE image"));
        }
        let pe = u32_at(bytes, 0x3C)? as usize;
        if bytes.get(pe..pe.saturating_add(4)) != Some(b"PE\0\0") {
            return Err(refuse("no PE signature"));
        }
        let coff = pe + 4;
        if u16_at(bytes, coff)? != IMAGE_FILE_MACHINE_AMD64 {
            return Err(refuse("not an x86-64 image"));
        }
        let sections = usize::from(u16_at(bytes, coff + 2)?);
        let optional_size = usize::from(u16_at(bytes, coff + 16)?);
        let optional = coff + 20;
        if u16_at(bytes, optional)? != PE32_PLUS {
            return Err(refuse("not a PE32+ image"));
        }
        let section_align = u64::from(u32_at(bytes, optional + 32)?);
        let file_align = u64::from(u32_at(bytes, optional + 36)?);
        if !file_align.is_power_of_two() || !section_align.is_power_of_two() {
            return Err(refuse("its alignments are not powers of two"));
        }
        let size_of_headers = u32_at(bytes, optional + 60)? as usize;
        let directories = u32_at(bytes, optional + 108)? as usize;
        if directories > 4 && u32_at(bytes, optional + 112 + 4 * 8 + 4)? != 0 {
            return Err(refuse(
                "it is signed already; airlock signs the assembled image instead",
            ));
        }
        let table = optional + optional_size;
        let table_end = table + sections * SECTION_HEADER;
        if table_end > size_of_headers || size_of_headers > bytes.len() {
            return Err(refuse("its section table is outside its headers"));
        }
        let mut stub = Stub {
            coff,
            optional,
            table,
            sections,
            file_align,
            section_align,
            size_of_headers,
            raw_end: size_of_headers,
            virtual_end: 0,
            names: Vec::new(),
        };
        for i in 0..sections {
            let at = table + i * SECTION_HEADER;
            let mut name = [0u8; 8];
            name.copy_from_slice(&bytes[at..at + 8]);
            let virtual_size = u64::from(u32_at(bytes, at + 8)?);
            let address = u64::from(u32_at(bytes, at + 12)?);
            let raw_size = u32_at(bytes, at + 16)? as usize;
            let raw_at = u32_at(bytes, at + 20)? as usize;
            let raw_end = raw_at
                .checked_add(raw_size)
                .filter(|end| *end <= bytes.len())
                .ok_or_else(|| refuse("a section's data is past the end of the file"))?;
            stub.raw_end = stub.raw_end.max(raw_end);
            stub.virtual_end = stub
                .virtual_end
                .max(address + virtual_size.max(raw_size as u64));
            stub.names.push(name);
        }
        Ok(stub)
    }
}

/// Writes the stub with `sections` appended to `out`.
pub fn assemble(
    stub: &[u8],
    sections: Vec<Section<'_>>,
    out: &mut (impl Write + Seek),
) -> Result<(), DiskError> {
    let start = out.stream_position()?;
    let parsed = Stub::read(stub)?;
    let checksum_at = parsed.optional + 64;
    let mut summing = Summing {
        out: &mut *out,
        sum: 0,
        len: 0,
        odd: None,
    };
    write_image(stub, &parsed, sections, &mut summing)?;
    let checksum = summing.finish();
    out.seek(SeekFrom::Start(start + checksum_at as u64))?;
    out.write_all(&checksum.to_le_bytes())?;
    out.seek(SeekFrom::End(0))?;
    Ok(())
}

/// Sums what passes through as the PE checksum does: 16-bit little-endian
/// words, the carries folded in, then the length added. The checksum field
/// itself is written as zero, so it adds nothing.
struct Summing<'a, W: Write> {
    out: &'a mut W,
    sum: u64,
    len: u64,
    odd: Option<u8>,
}

impl<W: Write> Summing<'_, W> {
    fn add(&mut self, word: u16) {
        self.sum += u64::from(word);
        self.sum = (self.sum & 0xffff) + (self.sum >> 16);
    }

    fn finish(mut self) -> u32 {
        if let Some(low) = self.odd.take() {
            self.add(u16::from(low));
        }
        let folded = (self.sum & 0xffff) + (self.sum >> 16);
        ((folded & 0xffff) + self.len) as u32
    }
}

impl<W: Write> Write for Summing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.out.write(buf)?;
        let mut bytes = &buf[..written];
        self.len += written as u64;
        if let Some(low) = self.odd.take() {
            match bytes.split_first() {
                Some((high, rest)) => {
                    self.add(u16::from_le_bytes([low, *high]));
                    bytes = rest;
                }
                None => self.odd = Some(low),
            }
        }
        let mut words = bytes.chunks_exact(2);
        for word in &mut words {
            self.add(u16::from_le_bytes([word[0], word[1]]));
        }
        if let [last] = words.remainder() {
            self.odd = Some(*last);
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn write_image(
    stub: &[u8],
    parsed: &Stub,
    sections: Vec<Section<'_>>,
    out: &mut impl Write,
) -> Result<(), DiskError> {
    let free = parsed.size_of_headers - (parsed.table + parsed.sections * SECTION_HEADER);
    if free < sections.len() * SECTION_HEADER {
        return Err(refuse(format!(
            "its headers have room for {} more sections, not {}",
            free / SECTION_HEADER,
            sections.len()
        )));
    }
    let mut headers = stub[..parsed.size_of_headers].to_vec();
    let mut at = parsed.table + parsed.sections * SECTION_HEADER;
    if headers[at..at + sections.len() * SECTION_HEADER]
        .iter()
        .any(|b| *b != 0)
    {
        return Err(refuse("the space after its section table is not empty"));
    }
    let mut address = parsed.virtual_end;
    let mut raw = parsed.raw_end as u64;
    let mut placed = Vec::with_capacity(sections.len());
    for section in &sections {
        let name = section.name.as_bytes();
        if name.len() > 8 {
            return Err(refuse(format!(
                "{} is longer than a section name",
                section.name
            )));
        }
        let mut padded = [0u8; 8];
        padded[..name.len()].copy_from_slice(name);
        if parsed.names.contains(&padded) {
            return Err(refuse(format!("it has a {} section already", section.name)));
        }
        address = address.next_multiple_of(VIRTUAL_ALIGN);
        raw = raw.next_multiple_of(parsed.file_align);
        let raw_size = section.len.next_multiple_of(parsed.file_align);
        let header = &mut headers[at..at + SECTION_HEADER];
        header[..name.len()].copy_from_slice(name);
        header[8..12].copy_from_slice(&fit(section.len)?.to_le_bytes());
        header[12..16].copy_from_slice(&fit(address)?.to_le_bytes());
        header[16..20].copy_from_slice(&fit(raw_size)?.to_le_bytes());
        header[20..24].copy_from_slice(&fit(raw)?.to_le_bytes());
        header[36..40].copy_from_slice(&DATA_CHARACTERISTICS.to_le_bytes());
        placed.push(raw);
        at += SECTION_HEADER;
        address += section.len;
        raw += raw_size;
    }
    let count =
        u16::try_from(parsed.sections + sections.len()).map_err(|_| refuse("too many sections"))?;
    headers[parsed.coff + 2..parsed.coff + 4].copy_from_slice(&count.to_le_bytes());
    // No symbol table.
    headers[parsed.coff + 8..parsed.coff + 16].fill(0);
    let image_size = fit(address.next_multiple_of(parsed.section_align))?;
    headers[parsed.optional + 56..parsed.optional + 60].copy_from_slice(&image_size.to_le_bytes());
    headers[parsed.optional + 64..parsed.optional + 68].fill(0);
    out.write_all(&headers)?;
    out.write_all(&stub[parsed.size_of_headers..parsed.raw_end])?;
    let mut written = parsed.raw_end as u64;
    for (section, at) in sections.into_iter().zip(placed) {
        zeros(out, at - written)?;
        written = at;
        let copied = io::copy(&mut section.content.take(section.len), out)?;
        if copied != section.len {
            return Err(DiskError::Layout(format!(
                "the UKI's {} section ended after {copied} of {} bytes",
                section.name, section.len
            )));
        }
        let padded = section.len.next_multiple_of(parsed.file_align);
        zeros(out, padded - section.len)?;
        written += padded;
    }
    Ok(())
}

fn fit(value: u64) -> Result<u32, DiskError> {
    u32::try_from(value)
        .map_err(|_| DiskError::Layout("the UKI would be larger than 4 GiB".to_owned()))
}

fn zeros(out: &mut impl Write, count: u64) -> io::Result<()> {
    io::copy(&mut io::repeat(0).take(count), out).map(drop)
}

/// The sections of a UKI `assemble` wrote, read back: (name, virtual
/// address, size, file offset). For tests and `airlock` checks.
pub fn sections(image: &[u8]) -> Result<Vec<(String, u32, u32, u32)>, DiskError> {
    let stub = Stub::read(image)?;
    let mut out = Vec::with_capacity(stub.sections);
    for (i, name) in stub.names.iter().enumerate() {
        let at = stub.table + i * SECTION_HEADER;
        let name = String::from_utf8_lossy(name)
            .trim_end_matches('\0')
            .to_owned();
        out.push((
            name,
            u32_at(image, at + 12)?,
            u32_at(image, at + 8)?,
            u32_at(image, at + 20)?,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
