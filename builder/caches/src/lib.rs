//! The caches Debian's maintainer scripts and triggers would generate in an
//! image, written natively from the image's own files, byte for byte what
//! the real tools write (so that a rebuild, or the tool itself run in the
//! image, gives the same file):
//!
//! - [`ldcache`]: `/etc/ld.so.cache`, as glibc 2.36's `ldconfig` writes it
//!   (the new format with its generator extension), from the libraries
//!   [`elf`] reads;
//! - [`hwdb`]: udev's `hwdb.bin`, as systemd 252's `systemd-hwdb update`;
//! - [`catalog`]: the journal's message catalog, as `journalctl
//!   --update-catalog`.
//!
//! Every input is a package's file, so untrusted: the readers bound what
//! they read, and a file they cannot read is an error naming it, never a
//! guess.

pub mod catalog;
pub mod elf;
pub mod hwdb;
pub mod ldcache;
mod lines;
mod strbuf;

/// Why a cache could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input file is not what the cache's format allows.
    #[error("{file}: {message}")]
    Input {
        /// The file, as the image has it.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A cache file that does not parse.
    #[error("not a valid {what}: {message}")]
    Format {
        /// The kind of file.
        what: &'static str,
        /// What is wrong.
        message: String,
    },
}
