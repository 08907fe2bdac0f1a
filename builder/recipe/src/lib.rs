//! Recipe and lock-file schema for airlock: parse, validate, merge includes,
//! and compute canonical digests.
//!
//! This crate does no I/O. Reading files is the caller's job: [`load`] takes a
//! closure that returns a file's text, so the same code serves the CLI, tests
//! and fuzzers, and nothing here can touch the host by accident.

mod error;
mod load;
mod lock;
mod schema;
mod validate;
mod values;

pub use airlock_format::{Sha256, Sha256ParseError};
pub use error::{Location, RecipeError};
pub use load::{LoadedRecipe, canonical_digest, load, parse_single};
pub use lock::{
    LOCK_VERSION, Lock, LockError, LockedArchive, LockedModel, LockedPackage, LockedRecipe,
    LockedSuite,
};
pub use schema::*;
pub use values::*;
