//! The release side of the trust chain (docs/trust.md): keys, provenance,
//! the manifest, transfer bundles, approvals and the reviewer's diff. What
//! the far side runs is in `airlock-verify`, which this crate shares the
//! bundle format with.

pub mod bundle;
pub mod diff;
pub mod keys;
pub mod provenance;
pub mod secure_boot;

/// What can go wrong on the release side.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// A key could not be made, read or used.
    #[error("{what}: {message}")]
    Key {
        /// Which key.
        what: String,
        /// Why.
        message: String,
    },
    /// The image folder or bundle is not what it should be.
    #[error("{0}")]
    Invalid(String),
    /// A tool failed.
    #[error("{tool}: {message}")]
    Tool {
        /// Which.
        tool: String,
        /// Why.
        message: String,
    },
    /// Reading or writing failed.
    #[error("{what}: {source}")]
    Io {
        /// What.
        what: String,
        /// Why.
        source: std::io::Error,
    },
}

pub(crate) fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> ReleaseError {
    let what = what.to_string();
    move |source| ReleaseError::Io { what, source }
}
