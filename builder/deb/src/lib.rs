//! Reading .deb files. A .deb comes from the archive, so its bytes are
//! untrusted even after its digest matched the lock: the reader streams,
//! bounds every size and count, and refuses any path that is absolute,
//! climbs with `..`, or is not valid UTF-8, before a caller sees it.
//!
//! This crate only reads. Where the entries go (merged-/usr, symlinks that
//! lead outside the image, collisions between packages) is decided by the
//! tree that receives them.

mod ar;
mod read;

pub use ar::{ArError, ArMember, ArReader};
pub use read::{
    Compression, DataEntry, DebError, EntryKind, Limits, installed_size_bound, read_deb,
};
