//! The verification steps, one module each, in the order
//! [`crate::verify`] runs them (and docs/trust.md documents them). Each
//! step reads only what the steps before it have proven.

pub(crate) mod disk;
pub(crate) mod files;
pub(crate) mod fresh;
pub(crate) mod policy;
pub(crate) mod provenance;
pub(crate) mod sboms;
pub(crate) mod signed;
