//! The parts of a bootable disk image, written natively so that the same
//! inputs give the same bytes on any host, with no tool's version in
//! between: a GUID partition table laid out by the Discoverable Partitions
//! Specification ([`gpt`]), a FAT32 EFI system partition ([`fat`]), and a
//! unified kernel image assembled from systemd-stub ([`uki`]).
//!
//! Nothing here knows about recipes or images: the image crate decides
//! what goes where; this crate writes it.

pub mod authenticode;
pub mod fat;
pub mod gpt;
pub mod uki;

/// Why a disk, a file system or a kernel image could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// The parts do not fit, or a name or size is out of bounds.
    #[error("{0}")]
    Layout(String),
    /// The systemd-stub is not a PE image airlock can extend.
    #[error("the UKI stub: {0}")]
    Stub(String),
    /// A signed PE image is not its unsigned self plus a signature.
    #[error("signed image: {0}")]
    Signed(String),
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Copies `from` to a new file `to`, leaving holes where `from` has a
/// whole MiB of zeros (a disk image is mostly empty partitions), and
/// returns `to` open for writing.
pub fn sparse_copy(from: &Path, to: &Path) -> std::io::Result<File> {
    sparse_copy_except(from, to, 0..0)
}

/// [`sparse_copy`], with the MiB-aligned byte range `hole` left a hole
/// whatever `from` holds there (a partition to be written anew).
pub fn sparse_copy_except(
    from: &Path,
    to: &Path,
    hole: std::ops::Range<u64>,
) -> std::io::Result<File> {
    let mut source = File::open(from)?;
    let len = source.metadata()?.len();
    let mut target = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(to)?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < len {
        let want = buffer.len().min((len - at) as usize);
        source.read_exact(&mut buffer[..want])?;
        if !hole.contains(&at) && buffer[..want].iter().any(|b| *b != 0) {
            target.seek(SeekFrom::Start(at))?;
            target.write_all(&buffer[..want])?;
        }
        at += want as u64;
    }
    target.set_len(len)?;
    Ok(target)
}
