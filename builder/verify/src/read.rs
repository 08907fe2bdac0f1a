//! Reading a bundle's files: bounded whole reads, a split file as one
//! stream, and the streaming sha256 every step hashes with.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::Digest;

use crate::manifest::{FileEntry, Manifest};
use crate::{Rejection, VerifyError, io};

/// A file read whole, refusing one larger than `limit`.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// A file of the bundle verified in step 3, read whole (bounded).
pub(crate) fn read_listed(
    bundle: &Path,
    manifest: &Manifest,
    path: &str,
    limit: u64,
) -> Result<Vec<u8>, VerifyError> {
    let entry = listed(manifest, path)?;
    if entry.split {
        return Err(Rejection::MalformedManifest {
            reason: format!("manifest.json: {path} cannot be split"),
        }
        .into());
    }
    read_bounded(&bundle.join(path), limit).map_err(io(bundle.join(path).display()))
}

/// The manifest's entry for `path`, which must be there.
pub(crate) fn listed<'m>(manifest: &'m Manifest, path: &str) -> Result<&'m FileEntry, Rejection> {
    manifest.file(path).ok_or_else(|| Rejection::MissingFile {
        path: path.to_owned(),
    })
}

/// sha256 (hex) and length of everything `reader` yields, through a 1 MiB
/// buffer; `progress` hears of every read.
pub fn sha256_reader(
    reader: &mut dyn Read,
    progress: &(dyn Fn(u64) + Sync),
) -> std::io::Result<(String, u64)> {
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut done = 0;
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            return Ok((hex::encode(hasher.finalize()), done));
        }
        hasher.update(&buffer[..n]);
        done += n as u64;
        progress(n as u64);
    }
}

/// Reads a logical file of the bundle: the file itself, or its chunks in
/// order.
#[derive(Debug)]
pub struct LogicalReader {
    files: Vec<PathBuf>,
    current: Option<File>,
}

impl LogicalReader {
    /// Opens `entry` below `bundle`.
    pub fn open(bundle: &Path, entry: &FileEntry) -> Result<LogicalReader, VerifyError> {
        let files = if entry.split {
            (0..entry.chunks.len())
                .map(|i| bundle.join(entry.chunk_path(i)))
                .collect()
        } else {
            vec![bundle.join(&entry.path)]
        };
        Ok(LogicalReader {
            files: files.into_iter().rev().collect(),
            current: None,
        })
    }
}

impl Read for LogicalReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(file) = &mut self.current {
                let n = file.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.current = None;
            }
            match self.files.pop() {
                Some(path) => self.current = Some(File::open(path)?),
                None => return Ok(0),
            }
        }
    }
}
