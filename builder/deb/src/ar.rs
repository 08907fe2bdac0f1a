//! The `ar` archive format as .deb uses it (common format, no symbol table).

use std::io::{self, Read};

/// Why an ar archive could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArError {
    /// Reading failed.
    #[error("reading the ar archive: {0}")]
    Io(#[from] io::Error),
    /// Not an ar archive, or a broken header.
    #[error("ar archive: {0}")]
    Format(String),
}

/// One member's header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArMember {
    /// Name, without the trailing `/` GNU ar adds.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// Reads members one after the other.
#[derive(Debug)]
pub struct ArReader<R> {
    reader: R,
    /// Bytes of the current member not yet consumed, and its padding.
    remaining: u64,
    padding: bool,
}

impl<R: Read> ArReader<R> {
    /// Checks the global header.
    pub fn new(mut reader: R) -> Result<Self, ArError> {
        let mut magic = [0u8; 8];
        reader
            .read_exact(&mut magic)
            .map_err(|_| ArError::Format("too short for an ar archive".to_owned()))?;
        if &magic != b"!<arch>\n" {
            return Err(ArError::Format("missing the !<arch> header".to_owned()));
        }
        Ok(ArReader {
            reader,
            remaining: 0,
            padding: false,
        })
    }

    /// The next member's header, or `None` at the end. Skips whatever of the
    /// previous member was not read.
    pub fn next_member(&mut self) -> Result<Option<ArMember>, ArError> {
        let skip = self.remaining + u64::from(self.padding);
        io::copy(&mut (&mut self.reader).take(skip), &mut io::sink())?;
        self.remaining = 0;
        self.padding = false;

        let mut header = [0u8; 60];
        let mut filled = 0;
        while filled < header.len() {
            match self.reader.read(&mut header[filled..])? {
                0 if filled == 0 => return Ok(None),
                0 => return Err(ArError::Format("truncated member header".to_owned())),
                n => filled += n,
            }
        }
        if &header[58..60] != b"`\n" {
            return Err(ArError::Format("bad member header terminator".to_owned()));
        }
        let text = |range: std::ops::Range<usize>| {
            std::str::from_utf8(&header[range])
                .map(|s| s.trim_end().to_owned())
                .map_err(|_| ArError::Format("member header is not ASCII".to_owned()))
        };
        let name = text(0..16)?;
        let name = name.strip_suffix('/').unwrap_or(&name).to_owned();
        let size_text = text(48..58)?;
        let size: u64 = size_text
            .parse()
            .map_err(|_| ArError::Format(format!("bad member size {size_text:?}")))?;
        if name.is_empty() || name.contains('/') {
            return Err(ArError::Format(format!("bad member name {name:?}")));
        }
        self.remaining = size;
        self.padding = size % 2 == 1;
        Ok(Some(ArMember { name, size }))
    }

    /// A reader over the current member's data.
    pub fn data(&mut self) -> MemberReader<'_, R> {
        MemberReader { ar: self }
    }
}

/// Reads one member's bytes.
#[derive(Debug)]
pub struct MemberReader<'a, R> {
    ar: &'a mut ArReader<R>,
}

impl<R: Read> Read for MemberReader<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.ar.remaining == 0 {
            return Ok(0);
        }
        let want = buffer
            .len()
            .min(usize::try_from(self.ar.remaining).unwrap_or(usize::MAX));
        let n = self.ar.reader.read(&mut buffer[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "ar member is truncated",
            ));
        }
        self.ar.remaining -= n as u64;
        Ok(n)
    }
}
