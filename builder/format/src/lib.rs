//! The formats airlock's crates share, as types and pure functions: no I/O,
//! no clock, nothing that reads the host. Every crate that writes or reads
//! one of these uses this crate, so writer and reader cannot drift apart.
//!
//! - [`canonical`]: canonical JSON, the form airlock signs and hashes.
//! - [`Sha256`]: the digest type of recipes, locks, the store and the tree.
//! - [`time`]: UTC date-time text (RFC 3339, `Z` only) and the civil
//!   calendar.
//! - [`names`]: file names of image folders and bundles, kernel
//!   command-line keys, digest domains.
//! - [`report`]: the build report of every image folder.
//! - [`sbom`]: the property names airlock writes into SBOMs and reads back.

pub mod canonical;
mod digest;
pub mod names;
pub mod report;
pub mod sbom;
pub mod time;

pub use digest::{Sha256, Sha256ParseError};
