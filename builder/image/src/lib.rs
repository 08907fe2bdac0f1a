//! The pure build: from locked packages in the store to the tree model, and
//! from the tree to artifacts. Nothing here reads the clock, the environment
//! or the host's file system layout; every timestamp is the recipe's epoch
//! and every list is sorted. Nothing from a package is executed.
//!
//! [`extract`] unpacks packages into the tree, [`configure`] does natively
//! what maintainer scripts would, [`tar`] and [`emit`] write the artifacts,
//! [`sbom`] the SBOMs, and [`pipeline`] runs it all for `airlock build`.

pub mod capability;
pub mod compare;
pub mod configure;
pub mod emit;
pub mod extract;
pub mod pipeline;
pub mod privilege;
pub mod sbom;
pub mod sources;
pub mod tar;

/// What can go wrong while building.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A package could not be read.
    #[error("{package}: {source}")]
    Deb {
        /// Which package.
        package: String,
        /// Why.
        source: airlock_deb::DebError,
    },
    /// A package's contents cannot go into the image.
    #[error("{package}: {source}")]
    Tree {
        /// Which package.
        package: String,
        /// Why.
        source: airlock_tree::TreeError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] airlock_store::StoreError),
    /// Writing an artifact failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being written.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// Native configuration failed.
    #[error("{what}: {message}")]
    Config {
        /// Which part (accounts, systemd, alternatives, …).
        what: String,
        /// What is wrong.
        message: String,
    },
    /// A file holds privilege no package may ship (a device node the
    /// recipe did not allow, a writable setuid or setgid file).
    #[error("{package}: {path}: {message}")]
    Privilege {
        /// Which package (`airlock` for the recipe's own files).
        package: String,
        /// The absolute path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A package's metadata is not what airlock supports.
    #[error("{package}: {message}")]
    Package {
        /// Which package.
        package: String,
        /// What is wrong.
        message: String,
    },
}
