//! The lock file: every input of a recipe pinned by digest.
//!
//! `airlock lock` writes it; `airlock fetch` and `airlock build` read it. It is
//! TOML with every list sorted, so two locks of the same inputs are identical
//! bytes and a diff of two locks is a readable change review.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Sha256;
use crate::error::Location;
use crate::load::LoadedRecipe;

/// The lock format this airlock writes and reads.
pub const LOCK_VERSION: u32 = 1;

const HEADER: &str =
    "# Written by `airlock lock`; do not edit. Every input of the recipe, pinned by sha256.\n";

/// A lock file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// Lock format version, [`LOCK_VERSION`].
    pub version: u32,
    /// Canonical digest of the recipe this lock was made from.
    pub recipe: Sha256,
    /// The archive state the packages were resolved against.
    pub archive: LockedArchive,
    /// Every package, sorted by name.
    #[serde(default, rename = "package", skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<LockedPackage>,
    /// Every model, sorted by name.
    #[serde(default, rename = "model", skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<LockedModel>,
}

/// The archive as it was when locked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedArchive {
    /// Debian architecture.
    pub architecture: String,
    /// Components.
    pub components: Vec<String>,
    /// Every suite, in the recipe's order.
    pub suites: Vec<LockedSuite>,
}

/// One suite's signed InRelease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedSuite {
    /// Suite as the recipe names it.
    pub name: String,
    /// Codename from the Release file.
    pub codename: String,
    /// `Date:` from the Release file.
    pub date: String,
    /// sha256 of the InRelease file that was verified.
    pub inrelease_sha256: Sha256,
}

/// One package.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Architecture (`all` or the archive's).
    pub architecture: String,
    /// Suite it was taken from.
    pub suite: String,
    /// Path below the mirror root.
    pub filename: String,
    /// Size of the .deb.
    pub size: u64,
    /// sha256 of the .deb.
    pub sha256: Sha256,
    /// Source package.
    pub source: String,
    /// Source version.
    pub source_version: String,
}

/// One model file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedModel {
    /// Model name from the recipe.
    pub name: String,
    /// sha256 of the file.
    pub sha256: Sha256,
    /// Size in bytes.
    pub size: u64,
}

/// What can be wrong with a lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Not a valid lock file.
    #[error("{location}: {message}")]
    Invalid {
        /// Where.
        location: Location,
        /// What.
        message: String,
    },
    /// Written by a different lock format.
    #[error("{}: lock format {found} is not supported (expected {LOCK_VERSION}); run `airlock lock --update`", file.display())]
    Version {
        /// The lock.
        file: PathBuf,
        /// What it says.
        found: u32,
    },
    /// The lock was made from a different recipe.
    #[error("{}: lock is stale: it was made for recipe sha256:{locked}, but the recipe is now sha256:{actual}; run `airlock lock --update`", file.display())]
    Stale {
        /// The lock.
        file: PathBuf,
        /// The recipe digest in the lock.
        locked: Sha256,
        /// The recipe's digest now.
        actual: Sha256,
    },
}

impl Lock {
    /// Parses a lock file's text. Checks the format version and that every
    /// list is sorted and every filename stays below the mirror root.
    pub fn parse(file: &Path, text: &str) -> Result<Lock, LockError> {
        let invalid = |offset: usize, message: String| LockError::Invalid {
            location: Location::at(file.to_path_buf(), text, offset),
            message,
        };
        let lock: Lock = toml::from_str(text).map_err(|error| {
            invalid(
                error.span().map_or(0, |s| s.start),
                error.message().trim_end().to_owned(),
            )
        })?;
        if lock.version != LOCK_VERSION {
            return Err(LockError::Version {
                file: file.to_path_buf(),
                found: lock.version,
            });
        }
        for pair in lock.packages.windows(2) {
            if pair[0].name >= pair[1].name {
                return Err(invalid(
                    0,
                    format!(
                        "packages must be sorted by name without repeats, but {:?} comes before {:?}",
                        pair[0].name, pair[1].name
                    ),
                ));
            }
        }
        for pair in lock.models.windows(2) {
            if pair[0].name >= pair[1].name {
                return Err(invalid(
                    0,
                    format!(
                        "models must be sorted by name without repeats, but {:?} comes before {:?}",
                        pair[0].name, pair[1].name
                    ),
                ));
            }
        }
        for package in &lock.packages {
            let bad = package.filename.starts_with('/')
                || package
                    .filename
                    .split('/')
                    .any(|part| part == ".." || part.is_empty());
            if bad {
                return Err(invalid(
                    0,
                    format!(
                        "package {}: filename {:?} must be a relative path below the mirror root",
                        package.name, package.filename
                    ),
                ));
            }
        }
        Ok(lock)
    }

    /// The lock as TOML text, ready to write.
    pub fn to_toml(&self) -> String {
        let mut sorted = self.clone();
        sorted.packages.sort();
        sorted.models.sort();
        let body = toml::to_string(&sorted).expect("a lock always serializes to TOML");
        format!("{HEADER}{body}")
    }

    /// Checks that this lock belongs to `recipe`, giving the only type a build
    /// accepts.
    pub fn check(self, file: &Path, recipe: LoadedRecipe) -> Result<LockedRecipe, LockError> {
        if self.recipe != recipe.digest {
            return Err(LockError::Stale {
                file: file.to_path_buf(),
                locked: self.recipe,
                actual: recipe.digest,
            });
        }
        Ok(LockedRecipe { recipe, lock: self })
    }
}

/// A recipe together with a lock made for it. Only [`Lock::check`] makes one,
/// so code that takes a `LockedRecipe` cannot be handed a stale lock.
#[derive(Clone, Debug)]
pub struct LockedRecipe {
    recipe: LoadedRecipe,
    lock: Lock,
}

impl LockedRecipe {
    /// The recipe.
    pub fn recipe(&self) -> &LoadedRecipe {
        &self.recipe
    }

    /// The lock.
    pub fn lock(&self) -> &Lock {
        &self.lock
    }
}
