//! airlock's connected side: everything that talks to a mirror.
//!
//! - [`mirror`]: which base URL serves each suite (command line, environment
//!   or the host's apt sources; never the recipe);
//! - [`http`]: GET with resume, bounded sizes and retries;
//! - [`archive`]: InRelease verified with the recipe's keyring, Packages
//!   indexes checked against it and parsed while streaming;
//! - [`lock`]: resolve a recipe into a [`airlock_recipe::Lock`];
//! - [`download`]: fetch every locked input into the store, in parallel.

pub mod archive;
pub mod download;
pub mod http;
pub mod lock;
pub mod mirror;

use airlock_recipe::Sha256;

/// What can go wrong on the connected side.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// An HTTP request failed.
    #[error("{url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What happened.
        message: String,
    },
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] airlock_store::StoreError),
    /// No mirror is known for a suite.
    #[error("{0}")]
    Mirror(String),
    /// A Release file failed verification.
    #[error("{url}: suite {suite}: {source}")]
    Release {
        /// Which suite.
        suite: String,
        /// The InRelease URL.
        url: String,
        /// Why.
        source: airlock_debian::release::ReleaseError,
    },
    /// An index is bad.
    #[error("{what}: {message}")]
    Index {
        /// Which index (URL or store path).
        what: String,
        /// Why.
        message: String,
    },
    /// An index's uncompressed content does not match the Release file.
    #[error("{what}: sha256 mismatch: expected {expected}, got {actual}")]
    IndexDigest {
        /// Which index.
        what: String,
        /// From InRelease.
        expected: Sha256,
        /// What it hashed to.
        actual: Sha256,
    },
    /// The request cannot be resolved.
    #[error(transparent)]
    Solve(#[from] airlock_debian::solver::SolveError),
    /// The recipe is wrong in a way only locking can tell.
    #[error("{0}")]
    Recipe(String),
    /// Several downloads failed.
    #[error("{} of {total} downloads failed:\n{}", failures.len(), failures.join("\n"))]
    Downloads {
        /// How many were attempted.
        total: usize,
        /// One line per failure.
        failures: Vec<String>,
        /// Whether any failure was content that did not match its pin (as
        /// opposed to the network failing).
        mismatch: bool,
    },
    /// `--offline` and inputs are missing from the store.
    #[error("--offline: {} inputs are not in the store:\n{}", missing.len(), missing.join("\n"))]
    Offline {
        /// One line per missing input.
        missing: Vec<String>,
    },
}

impl FetchError {
    /// Whether this is a verification failure (bytes or signatures that do not
    /// match what is pinned or trusted) rather than an I/O or usage problem.
    pub fn is_verification_failure(&self) -> bool {
        match self {
            FetchError::Release { .. }
            | FetchError::IndexDigest { .. }
            | FetchError::Solve(_)
            | FetchError::Offline { .. } => true,
            FetchError::Downloads { mismatch, .. } => *mismatch,
            FetchError::Store(error) => error.is_mismatch(),
            _ => false,
        }
    }
}
