//! Locked packages into the tree model. Packages are read in parallel (each
//! file's bytes go to the blob store, named by digest); their entries then go
//! into the tree one package at a time in lock order, so the result does not
//! depend on thread scheduling.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use airlock_deb::{DataEntry, EntryKind, Limits, read_deb};
use airlock_debian::control::ParagraphReader;
use airlock_debian::relation::parse_relations;
use airlock_store::Store;
use airlock_tree::{Content, Kind, Node, Tree, TreeError};
use rayon::prelude::*;

use crate::BuildError;

/// One package to unpack.
#[derive(Clone, Debug)]
pub struct Package {
    /// Its name.
    pub name: String,
    /// Its .deb (verified by the store).
    pub deb: PathBuf,
}

/// A package as read: its control files and every data entry.
#[derive(Debug)]
pub struct Unpacked {
    /// The package's name.
    pub name: String,
    /// Control files (control, md5sums, conffiles, scripts: never run).
    pub control_files: BTreeMap<String, Vec<u8>>,
    /// Data entries in archive order, with file contents in the blob store.
    pub entries: Vec<(DataEntry, Option<Content>)>,
    /// Packages this one Replaces (by name).
    pub replaces: Vec<String>,
}

/// Reads every package (in parallel), putting file contents into `blobs`.
pub fn unpack(
    packages: &[Package],
    blobs: &Store,
    limits: &Limits,
) -> Result<Vec<Unpacked>, BuildError> {
    packages
        .par_iter()
        .map(|package| unpack_one(package, blobs, limits))
        .collect()
}

fn unpack_one(package: &Package, blobs: &Store, limits: &Limits) -> Result<Unpacked, BuildError> {
    let file = File::open(&package.deb).map_err(|source| BuildError::Io {
        what: package.deb.display().to_string(),
        source,
    })?;
    let mut entries = Vec::new();
    let mut store_error = None;
    let control_files = read_deb(BufReader::new(file), limits, |entry, reader| {
        let content = match entry.kind {
            EntryKind::File { .. } => match blobs.add_reader(&entry.path, reader) {
                Ok((sha256, size)) => Some(Content::Stored { sha256, size }),
                Err(error) => {
                    let message = error.to_string();
                    store_error = Some(error);
                    return Err(message);
                }
            },
            _ => None,
        };
        entries.push((entry.clone(), content));
        Ok(())
    })
    .map_err(|source| match store_error.take() {
        Some(error) => BuildError::Store(error),
        None => BuildError::Deb {
            package: package.name.clone(),
            source,
        },
    })?;
    let replaces = control_field(&control_files, "Replaces")
        .map(|text| {
            parse_relations(&text)
                .map(|groups| {
                    groups
                        .into_iter()
                        .flatten()
                        .map(|relation| relation.name)
                        .collect()
                })
                .map_err(|e| BuildError::Package {
                    package: package.name.clone(),
                    message: format!("Replaces: {e}"),
                })
        })
        .transpose()?
        .unwrap_or_default();
    Ok(Unpacked {
        name: package.name.clone(),
        control_files,
        entries,
        replaces,
    })
}

fn control_field(control_files: &BTreeMap<String, Vec<u8>>, field: &str) -> Option<String> {
    let control = control_files.get("control")?;
    let paragraph = ParagraphReader::new(control.as_slice())
        .next_paragraph()
        .ok()??;
    paragraph.get(field).map(str::to_owned)
}

/// Puts unpacked packages into a merged-/usr tree, in the order given.
///
/// Two packages shipping one path is an error unless the contents and
/// metadata are identical (the path is then shared), or one of them Replaces
/// the other (its version wins, whichever was unpacked first). Versioned
/// Replaces are taken by name; the lock holds one version of each package.
///
/// Each entry is first checked against [`crate::privilege::check_entry`]:
/// device nodes only at `allowed_devices` (canonical paths), no writable
/// setuid or setgid files.
pub fn into_tree(
    unpacked: &[Unpacked],
    allowed_devices: &std::collections::BTreeSet<String>,
) -> Result<Tree, BuildError> {
    let mut tree = Tree::merged_usr();
    let replaces: BTreeMap<&str, &[String]> = unpacked
        .iter()
        .map(|u| (u.name.as_str(), u.replaces.as_slice()))
        .collect();
    let does_replace = |who: &str, whom: &str| {
        replaces
            .get(who)
            .is_some_and(|list| list.iter().any(|n| n == whom))
    };
    for package in unpacked {
        for (entry, content) in &package.entries {
            let kind = match (&entry.kind, content) {
                (EntryKind::Directory, _) => Kind::Directory,
                (EntryKind::File { .. }, Some(content)) => Kind::File(content.clone()),
                (EntryKind::Symlink { target }, _) => Kind::Symlink(target.clone()),
                (EntryKind::Hardlink { target }, _) => Kind::Hardlink(target.clone()),
                (EntryKind::CharDevice { major, minor }, _) => Kind::CharDevice {
                    major: *major,
                    minor: *minor,
                },
                (EntryKind::BlockDevice { major, minor }, _) => Kind::BlockDevice {
                    major: *major,
                    minor: *minor,
                },
                (EntryKind::Fifo, _) => Kind::Fifo,
                (EntryKind::File { .. }, None) => {
                    unreachable!("unpack stores every file's content")
                }
            };
            let id = |value: u64, what: &str| {
                u32::try_from(value).map_err(|_| BuildError::Package {
                    package: package.name.clone(),
                    message: format!("{}: {what} {value} is out of range", entry.path),
                })
            };
            let node = Node {
                kind,
                mode: entry.mode & 0o7777,
                uid: id(entry.uid, "uid")?,
                gid: id(entry.gid, "gid")?,
                xattrs: BTreeMap::new(),
                owners: vec![package.name.clone()],
            };
            crate::privilege::check_entry(&package.name, &entry.path, &node, allowed_devices)?;
            let result = tree.insert(&entry.path, node, &|owner| {
                does_replace(&package.name, owner)
            });
            match result {
                Ok(_) => {}
                // The earlier package Replaces this one: its file stays.
                Err(TreeError::Conflict { existing, .. })
                    if does_replace(&existing, &package.name) => {}
                Err(source) => {
                    return Err(BuildError::Tree {
                        package: package.name.clone(),
                        source,
                    });
                }
            }
        }
    }
    Ok(tree)
}
