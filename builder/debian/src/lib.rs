//! Debian archive formats for airlock, and the dependency solver.
//!
//! Everything here reads untrusted bytes (indexes and signatures from a
//! mirror), so every parser is streaming, bounded and fuzzed
//! (fuzz/fuzz_targets). The only I/O is reading the host's apt sources in
//! [`sources::host_sources`].

pub mod control;
pub mod index;
pub mod packages;
pub mod relation;
pub mod release;
pub mod solver;
pub mod sources;

pub use debversion::Version;
