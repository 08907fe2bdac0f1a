//! airlock's store: every input (a .deb, an index, a model) as one file named
//! by its sha256.
//!
//! Layout below the root:
//! - `sha256/ab/abcdef…`: entries, read-only, complete and verified;
//! - `tmp/`: files being written; renamed into `sha256/` only after their
//!   digest matched, so a killed process never leaves a corrupt entry;
//! - `partial/<digest>.part`: interrupted downloads, kept for resuming, each
//!   guarded by an exclusive file lock so two processes never write one;
//! - `lock`: shared by every process that reads or adds entries, exclusive
//!   for `gc`, so a collection never removes what another process is using.

pub mod workdir;

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use airlock_format::Sha256;
use rayon::prelude::*;
use sha2::Digest;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Content did not hash to what was expected.
    #[error("{what}: sha256 mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was being stored (a file name or URL).
        what: String,
        /// The pinned digest.
        expected: Sha256,
        /// What the bytes hash to.
        actual: Sha256,
    },
    /// Content had the wrong size.
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// What was being stored.
        what: String,
        /// The pinned size.
        expected: u64,
        /// What arrived.
        actual: u64,
    },
}

impl StoreError {
    /// Whether content did not match its pinned digest or size.
    pub fn is_mismatch(&self) -> bool {
        matches!(
            self,
            StoreError::DigestMismatch { .. } | StoreError::SizeMismatch { .. }
        )
    }

    /// Whether the file system is out of space (or quota): retrying cannot
    /// help, and what was half written should go.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Io { source, .. }
            if matches!(source.raw_os_error(), Some(errno::ENOSPC | errno::EDQUOT)))
    }
}

/// The two errno values of a full file system (Linux).
mod errno {
    pub const ENOSPC: i32 = 28;
    pub const EDQUOT: i32 = 122;
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A store on disk.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// Whether entries are fsynced before they appear (false for a build's
    /// scratch blob area, which is thrown away after the build).
    durable: bool,
}

/// A held store lock; released on drop.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// An interrupted or new download of one entry, locked for this process.
#[derive(Debug)]
pub struct Partial {
    /// The partial file, positioned at its end.
    pub file: File,
    /// Bytes already there.
    pub len: u64,
    path: PathBuf,
    digest: Sha256,
}

impl Partial {
    /// Where the partial file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The result of [`Store::verify`].
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Entries whose content matched their name.
    pub ok: usize,
    /// Bytes hashed.
    pub bytes: u64,
    /// Entries whose content did not match: (path, actual digest).
    pub corrupt: Vec<(PathBuf, Sha256)>,
}

/// The result of [`Store::gc`].
#[derive(Debug, Default)]
pub struct GcReport {
    /// Entries kept.
    pub kept: usize,
    /// Entries removed (or that would be, on a dry run).
    pub removed: Vec<Sha256>,
    /// Bytes freed.
    pub freed: u64,
}

impl Store {
    /// The default root: `$XDG_CACHE_HOME/airlock`, else `~/.cache/airlock`.
    pub fn default_root() -> Option<PathBuf> {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
        Some(cache.join("airlock"))
    }

    /// Opens (and if need be creates) a store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let root = root.into();
        for dir in ["sha256", "tmp", "partial"] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(io_error(&path))?;
        }
        Ok(Store {
            root,
            durable: true,
        })
    }

    /// Opens a scratch store at `root`: the same layout and checks, but no
    /// fsync, for content a build derives and discards (a crash loses it,
    /// and the next build makes it again).
    pub fn open_scratch(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let mut store = Store::open(root)?;
        store.durable = false;
        Ok(store)
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the entry for `digest` lives (whether or not it exists).
    pub fn path(&self, digest: &Sha256) -> PathBuf {
        let hex = digest.to_hex();
        self.root.join("sha256").join(&hex[..2]).join(hex)
    }

    /// Whether the entry exists.
    pub fn contains(&self, digest: &Sha256) -> bool {
        self.path(digest).is_file()
    }

    fn lock_file(&self) -> Result<File, StoreError> {
        let path = self.root.join("lock");
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error(&path))
    }

    /// Takes the store lock shared: for every process that reads or adds.
    pub fn lock_shared(&self) -> Result<StoreLock, StoreError> {
        let file = self.lock_file()?;
        file.lock_shared()
            .map_err(io_error(&self.root.join("lock")))?;
        Ok(StoreLock { _file: file })
    }

    /// Takes the store lock exclusively: for gc.
    pub fn lock_exclusive(&self) -> Result<StoreLock, StoreError> {
        let file = self.lock_file()?;
        file.lock().map_err(io_error(&self.root.join("lock")))?;
        Ok(StoreLock { _file: file })
    }

    /// Streams `reader` into the store, checking it hashes to `expected` (and
    /// has `expected_size` bytes, when given). Nothing is stored otherwise.
    pub fn insert_reader(
        &self,
        what: &str,
        expected: &Sha256,
        expected_size: Option<u64>,
        reader: impl Read,
    ) -> Result<PathBuf, StoreError> {
        let target = self.path(expected);
        if target.is_file() {
            return Ok(target);
        }
        let (tmp, actual, size) = self.spool(what, reader)?;
        check(what, expected, expected_size, actual, size)?;
        self.persist(tmp.into_temp_path(), &target)?;
        Ok(target)
    }

    /// Streams `reader` into the store under whatever digest it has (for
    /// content airlock produces, such as files extracted from a verified
    /// package). Returns the digest and size.
    pub fn add_reader(&self, what: &str, reader: impl Read) -> Result<(Sha256, u64), StoreError> {
        let (tmp, digest, size) = self.spool(what, reader)?;
        let target = self.path(&digest);
        if !target.is_file() {
            self.persist(tmp.into_temp_path(), &target)?;
        }
        Ok((digest, size))
    }

    /// Streams `reader` into a new file in `tmp/`, hashing it on the way:
    /// (the file, its digest, its size). The file is deleted when dropped.
    fn spool(
        &self,
        what: &str,
        mut reader: impl Read,
    ) -> Result<(tempfile::NamedTempFile, Sha256, u64), StoreError> {
        let tmp_dir = self.root.join("tmp");
        let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(io_error(&tmp_dir))?;
        let mut hasher = sha2::Sha256::new();
        let mut buffer = vec![0u8; 256 << 10];
        let mut size = 0u64;
        loop {
            let n = reader
                .read(&mut buffer)
                .map_err(io_error(Path::new(what)))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            tmp.write_all(&buffer[..n]).map_err(io_error(tmp.path()))?;
            size += n as u64;
        }
        Ok((tmp, Sha256(hasher.finalize().into()), size))
    }

    /// Copies a file into the store, checking its digest.
    pub fn insert_file(&self, source: &Path, expected: &Sha256) -> Result<PathBuf, StoreError> {
        let file = File::open(source).map_err(io_error(source))?;
        self.insert_reader(&source.display().to_string(), expected, None, file)
    }

    fn persist(&self, tmp: impl AsRef<Path>, target: &Path) -> Result<(), StoreError> {
        let tmp = tmp.as_ref();
        if self.durable {
            let file = File::open(tmp).map_err(io_error(tmp))?;
            file.sync_all().map_err(io_error(tmp))?;
        }
        fs::set_permissions(tmp, fs::Permissions::from_mode(0o444)).map_err(io_error(tmp))?;
        let dir = target.parent().expect("entries live in a shard folder");
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        fs::rename(tmp, target).map_err(io_error(target))?;
        if self.durable {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_error(dir))?;
        }
        Ok(())
    }

    /// Opens the partial download of `digest` for appending, waiting while
    /// another process holds it.
    pub fn partial(&self, digest: &Sha256) -> Result<Partial, StoreError> {
        let path = self.partial_path(digest);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_error(&path))?;
        file.lock().map_err(io_error(&path))?;
        let len = file.seek(SeekFrom::End(0)).map_err(io_error(&path))?;
        Ok(Partial {
            file,
            len,
            path,
            digest: *digest,
        })
    }

    /// Checks a finished partial download and moves it into place. On a
    /// mismatch the partial file is deleted, so the next attempt starts over.
    pub fn commit_partial(
        &self,
        partial: Partial,
        what: &str,
        expected_size: Option<u64>,
    ) -> Result<PathBuf, StoreError> {
        let target = self.path(&partial.digest);
        let (actual, size) = hash_file(&partial.path)?;
        if let Err(error) = check(what, &partial.digest, expected_size, actual, size) {
            let _ = fs::remove_file(&partial.path);
            return Err(error);
        }
        self.persist(&partial.path, &target)?;
        Ok(target)
    }

    /// Deletes the partial download of `digest`, if any (after the disk
    /// filled up: its bytes cannot be finished, and they hold space).
    pub fn discard_partial(&self, digest: &Sha256) {
        let _ = fs::remove_file(self.partial_path(digest));
    }

    fn partial_path(&self, digest: &Sha256) -> PathBuf {
        self.root
            .join("partial")
            .join(format!("{}.part", digest.to_hex()))
    }

    /// Discards a partial download (for a server that cannot resume).
    pub fn reset_partial(&self, partial: &mut Partial) -> Result<(), StoreError> {
        partial.file.set_len(0).map_err(io_error(&partial.path))?;
        partial
            .file
            .seek(SeekFrom::Start(0))
            .map_err(io_error(&partial.path))?;
        partial.len = 0;
        Ok(())
    }

    /// Every entry's digest, sorted.
    pub fn entries(&self) -> Result<Vec<Sha256>, StoreError> {
        let base = self.root.join("sha256");
        let mut digests = Vec::new();
        for shard in fs::read_dir(&base).map_err(io_error(&base))? {
            let shard = shard.map_err(io_error(&base))?.path();
            if !shard.is_dir() {
                continue;
            }
            for entry in fs::read_dir(&shard).map_err(io_error(&shard))? {
                let entry = entry.map_err(io_error(&shard))?;
                if let Some(digest) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                    digests.push(digest);
                }
            }
        }
        digests.sort();
        Ok(digests)
    }

    /// Re-hashes every entry, in parallel.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let _lock = self.lock_shared()?;
        let results: Vec<(Sha256, Sha256, u64)> = self
            .entries()?
            .into_par_iter()
            .map(|digest| {
                let (actual, size) = hash_file(&self.path(&digest))?;
                Ok((digest, actual, size))
            })
            .collect::<Result<_, StoreError>>()?;
        let mut report = VerifyReport::default();
        for (digest, actual, size) in results {
            report.bytes += size;
            if digest == actual {
                report.ok += 1;
            } else {
                report.corrupt.push((self.path(&digest), actual));
            }
        }
        Ok(report)
    }

    /// Removes every entry not in `keep`, and leftover temporary and partial
    /// files. Holds the store lock exclusively while it works.
    pub fn gc(&self, keep: &BTreeSet<Sha256>, dry_run: bool) -> Result<GcReport, StoreError> {
        let _lock = self.lock_exclusive()?;
        let mut report = GcReport::default();
        for digest in self.entries()? {
            if keep.contains(&digest) {
                report.kept += 1;
                continue;
            }
            let path = self.path(&digest);
            report.freed += fs::metadata(&path).map_err(io_error(&path))?.len();
            if !dry_run {
                fs::remove_file(&path).map_err(io_error(&path))?;
            }
            report.removed.push(digest);
        }
        if !dry_run {
            for dir in ["tmp", "partial"] {
                let dir = self.root.join(dir);
                for entry in fs::read_dir(&dir).map_err(io_error(&dir))? {
                    let path = entry.map_err(io_error(&dir))?.path();
                    report.freed += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                    fs::remove_file(&path).map_err(io_error(&path))?;
                }
            }
        }
        Ok(report)
    }
}

fn check(
    what: &str,
    expected: &Sha256,
    expected_size: Option<u64>,
    actual: Sha256,
    size: u64,
) -> Result<(), StoreError> {
    if let Some(expected_size) = expected_size
        && expected_size != size
    {
        return Err(StoreError::SizeMismatch {
            what: what.to_owned(),
            expected: expected_size,
            actual: size,
        });
    }
    if actual != *expected {
        return Err(StoreError::DigestMismatch {
            what: what.to_owned(),
            expected: *expected,
            actual,
        });
    }
    Ok(())
}

/// Streams a file through sha256: (digest, size).
pub fn hash_file(path: &Path) -> Result<(Sha256, u64), StoreError> {
    let mut file = File::open(path).map_err(io_error(path))?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(io_error(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((Sha256(hasher.finalize().into()), size))
}

#[cfg(test)]
mod tests;
