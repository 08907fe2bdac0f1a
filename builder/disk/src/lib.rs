//! The parts of a bootable disk image, written natively so that the same
//! inputs give the same bytes on any host, with no tool's version in
//! between: a GUID partition table laid out by the Discoverable Partitions
//! Specification ([`gpt`]), a FAT32 EFI system partition ([`fat`]), and a
//! unified kernel image assembled from systemd-stub ([`uki`]).
//!
//! Nothing here knows about recipes or images: the image crate decides
//! what goes where; this crate writes it.

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
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
