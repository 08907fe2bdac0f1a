//! Step 3: every byte. No file the manifest does not list, every listed
//! file present with its size, then every file (or chunk) streamed and
//! hashed in parallel, largest first. Swapped chunks are named as such.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::manifest::{FileEntry, MANIFEST, Manifest, SIGNATURES};
use crate::read::sha256_reader;
use crate::{Rejection, VerifyError, io};

/// Returns the bytes the manifest's files hold.
pub(crate) fn check(
    bundle: &Path,
    manifest: &Manifest,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<u64, VerifyError> {
    let present: BTreeSet<String> = walk(bundle)?.into_iter().collect();
    let listed: BTreeSet<String> = manifest.physical_files().into_iter().collect();
    if let Some(path) = present
        .iter()
        .find(|p| *p != MANIFEST && *p != SIGNATURES && !listed.contains(*p))
    {
        return Err(Rejection::UnlistedFile { path: path.clone() }.into());
    }
    // Presence and sizes first: cheap, and a clear message.
    if let Some(path) = listed.iter().find(|p| !present.contains(*p)) {
        return Err(Rejection::MissingFile { path: path.clone() }.into());
    }
    for entry in &manifest.files {
        check_sizes(bundle, entry, progress)?;
    }
    let units = units(manifest);
    let digests = hash(bundle, &units, progress)?;
    if let Some(rejection) = first_mismatch(&units, &digests) {
        return Err(rejection.into());
    }
    Ok(manifest.files.iter().map(|f| f.size).sum())
}

/// Every regular file below `dir`, as bundle paths.
fn walk(dir: &Path) -> Result<Vec<String>, VerifyError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        let full = dir.join(&relative);
        for entry in std::fs::read_dir(&full).map_err(io(full.display()))? {
            let entry = entry.map_err(io(full.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(Rejection::UnlistedFile {
                    path: relative.join(&name).display().to_string(),
                }
                .into());
            };
            let path = relative.join(name);
            let kind = entry.file_type().map_err(io(entry.path().display()))?;
            let bundle_path = path.to_str().expect("UTF-8 parts").to_owned();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                out.push(bundle_path);
            } else {
                return Err(Rejection::NotAFile { path: bundle_path }.into());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The physical files of `entry` have the sizes the manifest gives; a
/// chunk of another size that is another chunk is named as swapped.
fn check_sizes(
    bundle: &Path,
    entry: &FileEntry,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), VerifyError> {
    let files: Vec<(String, u64)> = if entry.split {
        (entry.ranges().iter().enumerate())
            .map(|(i, r)| (entry.chunk_path(i), r.1))
            .collect()
    } else {
        vec![(entry.path.clone(), entry.size)]
    };
    for (index, (file, expected)) in files.into_iter().enumerate() {
        let actual = std::fs::metadata(bundle.join(&file))
            .map_err(io(bundle.join(&file).display()))?
            .len();
        if actual == expected {
            continue;
        }
        if entry.split {
            let digest = hash_range(&bundle.join(&file), 0, actual, progress)?;
            if let Some(belongs_at) = entry.chunks.iter().position(|d| *d == digest) {
                return Err(Rejection::ChunksSwapped {
                    path: entry.path.clone(),
                    found_at: index,
                    belongs_at,
                }
                .into());
            }
        }
        return Err(Rejection::SizeMismatch {
            path: file,
            expected,
            actual,
        }
        .into());
    }
    Ok(())
}

/// One unit of hashing work.
struct Unit<'m> {
    entry: &'m FileEntry,
    /// Chunk index, when the entry has chunks.
    chunk: Option<usize>,
    /// The physical file.
    file: String,
    offset: u64,
    size: u64,
}

impl Unit<'_> {
    fn expected(&self) -> &str {
        match self.chunk {
            Some(i) => &self.entry.chunks[i],
            None => &self.entry.sha256,
        }
    }
}

/// The hashing work, in manifest order (by path, then chunk).
fn units(manifest: &Manifest) -> Vec<Unit<'_>> {
    let mut units = Vec::new();
    for entry in &manifest.files {
        for (index, &(offset, size)) in entry.ranges().iter().enumerate() {
            let (file, offset) = if entry.split {
                (entry.chunk_path(index), 0)
            } else {
                (entry.path.clone(), offset)
            };
            units.push(Unit {
                entry,
                chunk: (!entry.chunks.is_empty()).then_some(index),
                file,
                offset,
                size,
            });
        }
    }
    units.sort_by(|a, b| a.entry.path.cmp(&b.entry.path).then(a.chunk.cmp(&b.chunk)));
    units
}

/// Every unit's sha256, hashed largest first (so the tail of the parallel
/// run is short), returned in the units' order.
fn hash(
    bundle: &Path,
    units: &[Unit<'_>],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<String>, VerifyError> {
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by(|&a, &b| {
        (units[b].size.cmp(&units[a].size)).then(units[a].file.cmp(&units[b].file))
    });
    let hashed: Vec<(usize, Result<String, VerifyError>)> = order
        .into_par_iter()
        .map(|i| {
            let unit = &units[i];
            let digest = hash_range(&bundle.join(&unit.file), unit.offset, unit.size, progress);
            (i, digest)
        })
        .collect();
    let mut digests = vec![String::new(); units.len()];
    for (i, digest) in hashed {
        digests[i] = digest?;
    }
    Ok(digests)
}

/// The first unit, in manifest order, whose digest is not the manifest's.
fn first_mismatch(units: &[Unit<'_>], digests: &[String]) -> Option<Rejection> {
    let (unit, actual) = units
        .iter()
        .zip(digests)
        .find(|(unit, actual)| *actual != unit.expected())?;
    let swapped = unit.chunk.and_then(|i| {
        let j = unit.entry.chunks.iter().position(|d| d == actual)?;
        (j != i).then_some((i, j))
    });
    Some(match swapped {
        Some((found_at, belongs_at)) if unit.entry.split => Rejection::ChunksSwapped {
            path: unit.entry.path.clone(),
            found_at,
            belongs_at,
        },
        _ => Rejection::DigestMismatch {
            path: match unit.chunk {
                Some(i) if !unit.entry.split => format!("{} (chunk {i})", unit.entry.path),
                _ => unit.file.clone(),
            },
            expected: unit.expected().to_owned(),
            actual: actual.clone(),
        },
    })
}

fn hash_range(
    path: &Path,
    offset: u64,
    size: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<String, VerifyError> {
    let mut file = File::open(path).map_err(io(path.display()))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(io(path.display()))?;
    let (digest, done) =
        sha256_reader(&mut file.take(size), progress).map_err(io(path.display()))?;
    if done != size {
        return Err(io(path.display())(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "changed while being read",
        )));
    }
    Ok(digest)
}
