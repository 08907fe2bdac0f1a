//! The record of the files a recipe's `[files]` trees added, written into
//! the image folder as `sources/files.json` with each file's bytes beside it
//! (`sources/files/SHA256`): what the far side needs, besides the recipe, the
//! lock, the .debs and the models, to rebuild the image without the build
//! machine's folders. Inline files are in the recipe itself.
//!
//! The record keeps what the build read and nothing of where it read it:
//! image paths, kinds, the modes the build gave them, digests and link
//! targets, in the order the build added them.

use std::fs;
use std::path::Path;

use airlock_store::Store;
use airlock_tree::{Content, Kind, Node};
use serde::{Deserialize, Serialize};

use crate::BuildError;
use crate::configure::files::Added;

/// The record's format version.
pub const SCHEMA: u32 = 1;
/// Its path in the image folder (and in a bundle with sources).
pub const FILES_JSON: &str = "sources/files.json";
/// The folder of the files' bytes, each named by its sha256.
pub const FILES_DIR: &str = "sources/files";

/// The record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// [`SCHEMA`].
    pub schema: u32,
    /// In the order the build added them.
    pub files: Vec<Entry>,
}

/// One added path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "lowercase")]
pub enum Entry {
    /// A directory.
    Directory {
        /// Image path, relative.
        path: String,
        /// Mode.
        mode: u32,
    },
    /// A regular file, its bytes at `sources/files/SHA256`.
    File {
        /// Image path, relative.
        path: String,
        /// Mode.
        mode: u32,
        /// Its sha256.
        sha256: String,
        /// Its size.
        size: u64,
    },
    /// A symbolic link.
    Symlink {
        /// Image path, relative.
        path: String,
        /// Where it points.
        target: String,
    },
}

/// The added files that came from `[files]` trees (inline files have an
/// owner and are in the recipe).
fn from_trees(added: &[Added]) -> impl Iterator<Item = &Added> {
    added.iter().filter(|a| a.owner.is_none())
}

/// Writes the record and the files' bytes below `out`, when the recipe's
/// trees added anything.
pub fn write(out: &Path, added: &[Added], blobs: &Store) -> Result<(), BuildError> {
    let io = |path: &Path| {
        let what = path.display().to_string();
        move |source| BuildError::Io { what, source }
    };
    let mut files = Vec::new();
    for file in from_trees(added) {
        let path = file.path.clone();
        files.push(match &file.node.kind {
            Kind::Directory => Entry::Directory {
                path,
                mode: file.node.mode,
            },
            Kind::Symlink(target) => Entry::Symlink {
                path,
                target: target.clone(),
            },
            Kind::File(Content::Stored { sha256, size }) => {
                let dir = out.join(FILES_DIR);
                fs::create_dir_all(&dir).map_err(io(&dir))?;
                let copy = dir.join(sha256.to_hex());
                if !copy.exists() {
                    fs::copy(blobs.path(sha256), &copy).map_err(io(&copy))?;
                }
                Entry::File {
                    path,
                    mode: file.node.mode,
                    sha256: sha256.to_hex(),
                    size: *size,
                }
            }
            other => unreachable!("a [files] tree adds no {other:?}"),
        });
    }
    if files.is_empty() {
        return Ok(());
    }
    let record = Record {
        schema: SCHEMA,
        files,
    };
    let mut text = serde_json::to_string_pretty(&record).expect("a record serializes");
    text.push('\n');
    let path = out.join(FILES_JSON);
    fs::write(&path, text).map_err(io(&path))
}

/// Reads a record back as the added files it describes, the files' bytes
/// put into `blobs` from `dir` (the folder holding `sources/`), each
/// checked against its digest.
pub fn read(dir: &Path, blobs: &Store) -> Result<Vec<Added>, BuildError> {
    let path = dir.join(FILES_JSON);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(BuildError::Io {
                what: path.display().to_string(),
                source,
            });
        }
    };
    let bad = |message: String| BuildError::Config {
        what: FILES_JSON.to_owned(),
        message,
    };
    let record: Record = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if record.schema != SCHEMA {
        return Err(bad(format!("schema {}, expected {SCHEMA}", record.schema)));
    }
    let mut added = Vec::new();
    for entry in record.files {
        let (path, node) = match entry {
            Entry::Directory { path, mode } => (path, Node::new(Kind::Directory, mode)),
            Entry::Symlink { path, target } => (path, Node::new(Kind::Symlink(target), 0o777)),
            Entry::File {
                path,
                mode,
                sha256,
                size,
            } => {
                let source = dir.join(FILES_DIR).join(&sha256);
                let file = fs::File::open(&source).map_err(|e| {
                    bad(format!(
                        "{path}: its bytes ({}) are missing: {e}",
                        source.display()
                    ))
                })?;
                let (digest, read) = blobs.add_reader(&source.display().to_string(), file)?;
                if digest.to_hex() != sha256 || read != size {
                    return Err(bad(format!(
                        "{path}: {} has sha256 {digest} ({read} bytes), the record says {sha256} ({size} bytes)",
                        source.display()
                    )));
                }
                let content = Content::Stored {
                    sha256: digest,
                    size,
                };
                (path, Node::new(Kind::File(content), mode))
            }
        };
        added.push(Added {
            path,
            node,
            owner: None,
        });
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_files(blobs: &Store) -> Vec<Added> {
        let (sha256, size) = blobs.add_reader("motd", &b"hello\n"[..]).unwrap();
        let node = |kind, mode| Node::new(kind, mode);
        vec![
            Added {
                path: "etc/airlock".to_owned(),
                node: node(Kind::Directory, 0o755),
                owner: None,
            },
            Added {
                path: "etc/airlock/motd".to_owned(),
                node: node(Kind::File(Content::Stored { sha256, size }), 0o644),
                owner: None,
            },
            Added {
                path: "etc/airlock/link".to_owned(),
                node: node(Kind::Symlink("motd".to_owned()), 0o777),
                owner: None,
            },
            Added {
                path: "etc/inline".to_owned(),
                node: node(Kind::File(Content::Inline(b"x".to_vec())), 0o600),
                owner: Some(("root".to_owned(), "root".to_owned())),
            },
        ]
    }

    #[test]
    fn the_record_reads_back_as_the_tree_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Store::open_scratch(dir.path().join("a")).unwrap();
        let added = tree_files(&blobs);
        let out = dir.path().join("image");
        write(&out, &added, &blobs).unwrap();
        let other = Store::open_scratch(dir.path().join("b")).unwrap();
        let back = read(&out, &other).unwrap();
        let shape = |a: &[Added]| -> Vec<(String, u32, String)> {
            a.iter()
                .map(|a| (a.path.clone(), a.node.mode, format!("{:?}", a.node.kind)))
                .collect()
        };
        assert_eq!(
            shape(&back),
            shape(&added[..3]),
            "inline files are the recipe's"
        );
        let Kind::File(Content::Stored { sha256, .. }) = &back[1].node.kind else {
            panic!("a file")
        };
        assert_eq!(fs::read(other.path(sha256)).unwrap(), b"hello\n");
    }

    #[test]
    fn changed_or_missing_bytes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Store::open_scratch(dir.path().join("a")).unwrap();
        let added = tree_files(&blobs);
        let out = dir.path().join("image");
        write(&out, &added, &blobs).unwrap();
        let copy = fs::read_dir(out.join(FILES_DIR))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        fs::write(&copy, b"changed\n").unwrap();
        let other = Store::open_scratch(dir.path().join("b")).unwrap();
        let error = read(&out, &other).unwrap_err().to_string();
        assert!(error.contains("the record says"), "{error}");
        fs::remove_file(&copy).unwrap();
        let error = read(&out, &other).unwrap_err().to_string();
        assert!(error.contains("are missing"), "{error}");
    }

    #[test]
    fn a_recipe_without_trees_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Store::open_scratch(dir.path().join("a")).unwrap();
        let inline = tree_files(&blobs).split_off(3);
        write(dir.path(), &inline, &blobs).unwrap();
        assert!(!dir.path().join("sources").exists());
        assert!(read(dir.path(), &blobs).unwrap().is_empty());
    }
}
