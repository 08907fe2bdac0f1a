//! The lock file: every input of a recipe pinned by digest.
//!
//! `airlock lock` writes it; `airlock fetch` and `airlock build` read it. It is
//! TOML with every list sorted, so two locks of the same inputs are identical
//! bytes and a diff of two locks is a readable change review.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Location;
use crate::load::LoadedRecipe;
use airlock_format::Sha256;

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
    /// Every `[[components]]` file, sorted by name (the same pin as a
    /// model's: name, sha256, size).
    #[serde(default, rename = "component", skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<LockedModel>,
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

impl LockedPackage {
    /// The .deb's file name: the last part of its archive path.
    pub fn file_name(&self) -> &str {
        self.filename.rsplit('/').next().unwrap_or(&self.filename)
    }
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
    /// The pin of a model (`kind` "model") or component ("component").
    pub fn pinned(&self, kind: &str, name: &str) -> Option<&LockedModel> {
        let list = if kind == "model" {
            &self.models
        } else {
            &self.components
        };
        list.iter().find(|m| m.name == name)
    }

    /// Parses a lock file's text. Checks the format version and that every
    /// list is sorted and every filename stays below the mirror root.
    pub fn parse(file: &Path, text: &str) -> Result<Lock, LockError> {
        let invalid = |offset: usize, message: String| LockError::Invalid {
            location: Location::at(file.to_path_buf(), text, offset),
            message,
        };
        let toml_error = |error: toml::de::Error| {
            invalid(
                error.span().map_or(0, |s| s.start),
                error.message().trim_end().to_owned(),
            )
        };
        // The format version first: another format's fields would otherwise
        // be reported as unknown or missing.
        #[derive(Deserialize)]
        struct Header {
            version: u32,
        }
        let header: toml::Table = toml::from_str(text).map_err(toml_error)?;
        let version = toml::Value::Table(header)
            .try_into::<Header>()
            .map_err(|_| invalid(0, "missing `version`, the lock format".to_owned()))?
            .version;
        if version != LOCK_VERSION {
            return Err(LockError::Version {
                file: file.to_path_buf(),
                found: version,
            });
        }
        let lock: Lock = toml::from_str(text).map_err(toml_error)?;
        let names = |what: &str, names: Vec<&str>| {
            for pair in names.windows(2) {
                if pair[0] >= pair[1] {
                    return Err(invalid(
                        0,
                        format!(
                            "{what} must be sorted by name without repeats, but {:?} comes before {:?}",
                            pair[0], pair[1]
                        ),
                    ));
                }
            }
            Ok(())
        };
        names(
            "packages",
            lock.packages.iter().map(|p| p.name.as_str()).collect(),
        )?;
        names(
            "models",
            lock.models.iter().map(|m| m.name.as_str()).collect(),
        )?;
        names(
            "components",
            lock.components.iter().map(|c| c.name.as_str()).collect(),
        )?;
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
        sorted.components.sort();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Lock {
        let package = |name: &str, sha: &[u8]| LockedPackage {
            name: name.to_owned(),
            version: "1.0-1".to_owned(),
            architecture: "amd64".to_owned(),
            suite: "bookworm".to_owned(),
            filename: format!("pool/main/{name}_1.0-1_amd64.deb"),
            size: 1234,
            sha256: Sha256::of(sha),
            source: name.to_owned(),
            source_version: "1.0-1".to_owned(),
        };
        Lock {
            version: LOCK_VERSION,
            recipe: Sha256::of(b"recipe"),
            archive: LockedArchive {
                architecture: "amd64".to_owned(),
                components: vec!["main".to_owned()],
                suites: vec![LockedSuite {
                    name: "bookworm".to_owned(),
                    codename: "bookworm".to_owned(),
                    date: "Sat, 10 May 2025 09:12:34 UTC".to_owned(),
                    inrelease_sha256: Sha256::of(b"inrelease"),
                }],
            },
            // deliberately unsorted: the writer sorts
            packages: vec![package("zlib1g", b"z"), package("bash", b"b")],
            models: vec![LockedModel {
                name: "tiny".to_owned(),
                sha256: Sha256::of(b"model"),
                size: 42,
            }],
            components: vec![LockedModel {
                name: "host-tool".to_owned(),
                sha256: Sha256::of(b"tool"),
                size: 4,
            }],
        }
    }

    #[test]
    fn lock_text_is_sorted_and_stable() {
        let text = sample().to_toml();
        expect_test::expect![[r##"
            # Written by `airlock lock`; do not edit. Every input of the recipe, pinned by sha256.
            version = 1
            recipe = "e1d8e552330911f9f779f85b6f2c00a15e790dcc3fbb3b28f5da1d660a30c5b8"

            [archive]
            architecture = "amd64"
            components = ["main"]

            [[archive.suites]]
            name = "bookworm"
            codename = "bookworm"
            date = "Sat, 10 May 2025 09:12:34 UTC"
            inrelease_sha256 = "dbc1ddecd893ea830f238581650d07263d747989552a63f212637513202fe98c"

            [[package]]
            name = "bash"
            version = "1.0-1"
            architecture = "amd64"
            suite = "bookworm"
            filename = "pool/main/bash_1.0-1_amd64.deb"
            size = 1234
            sha256 = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"
            source = "bash"
            source_version = "1.0-1"

            [[package]]
            name = "zlib1g"
            version = "1.0-1"
            architecture = "amd64"
            suite = "bookworm"
            filename = "pool/main/zlib1g_1.0-1_amd64.deb"
            size = 1234
            sha256 = "594e519ae499312b29433b7dd8a97ff068defcba9755b6d5d00e84c524d67b06"
            source = "zlib1g"
            source_version = "1.0-1"

            [[model]]
            name = "tiny"
            sha256 = "9372c470eeadd5ecd9c3c74c2b3cb633f8e2f2fad799250a0f70d652b6b825e4"
            size = 42

            [[component]]
            name = "host-tool"
            sha256 = "7c9bbe5ec9b3fb774e8fa0f54247e93c34ddf8e5d16fe3073420de0ae81a262d"
            size = 4
        "##]]
        .assert_eq(&text);
        let parsed = Lock::parse(Path::new("x.lock"), &text).unwrap();
        assert_eq!(parsed.to_toml(), text);
    }

    #[test]
    fn unsorted_or_escaping_locks_are_refused() {
        let text = sample().to_toml();
        let swapped = text
            .replace("bash", "TMP")
            .replace("zlib1g", "bash")
            .replace("TMP", "zlib1g");
        let error = Lock::parse(Path::new("x.lock"), &swapped).unwrap_err();
        assert!(
            error.to_string().contains("packages must be sorted"),
            "{error}"
        );
        let escaping = text.replace("pool/main/bash_1.0-1_amd64.deb", "../../etc/passwd");
        let error = Lock::parse(Path::new("x.lock"), &escaping).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("must be a relative path below the mirror root"),
            "{error}"
        );
        let future = text.replace("version = 1\n", "version = 9\n");
        let error = Lock::parse(Path::new("x.lock"), &future).unwrap_err();
        assert!(
            error.to_string().contains("lock format 9 is not supported"),
            "{error}"
        );
    }
}
