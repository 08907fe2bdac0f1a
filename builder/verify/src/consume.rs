//! Consuming a verified bundle: copying what a command needs out of it,
//! with every byte hashed against the verified manifest again (a bundle
//! changed between verification and use is refused), then recording the
//! release in the host's state, so an older one is refused later. What
//! `airlock boot BUNDLE` does today, and what install and update need.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::Digest;

use crate::state::{self, Record};
use crate::{LogicalReader, Verified};

/// Why a verified bundle could not be consumed.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// The bundle does not have a file the command needs.
    #[error("the bundle has no {0}")]
    Missing(String),
    /// A file no longer matches the verified manifest.
    #[error("{0} changed after verification; not using it")]
    Changed(String),
    /// Reading or writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Copies `files` (bundle path, name to give it) of the verified bundle
/// at `bundle` into `to`, checking each against `verified.manifest` while
/// copying. A file that fails the check is removed again.
pub fn copy_verified(
    bundle: &Path,
    verified: &Verified,
    files: &[(String, &str)],
    to: &Path,
) -> Result<(), ConsumeError> {
    for (bundle_path, name) in files {
        let target = to.join(name);
        let io = |source| ConsumeError::Io {
            path: target.clone(),
            source,
        };
        let mut out = std::fs::File::create(&target).map_err(io)?;
        if let Err(e) = stream_verified(bundle, verified, bundle_path, &mut out) {
            drop(out);
            let _ = std::fs::remove_file(&target);
            return Err(e);
        }
        out.sync_all().map_err(io)?;
    }
    Ok(())
}

/// Streams the file `bundle_path` of the verified bundle at `bundle` into
/// `out`, hashing every byte on the way, and returns its size. When the
/// bytes no longer match `verified.manifest` (the medium changed after
/// verification) it fails with [`ConsumeError::Changed`] once they are
/// written: what `out` received is then not the verified file, and the
/// caller must not use it (a partition it went to is left unlabelled, a
/// file removed).
pub fn stream_verified(
    bundle: &Path,
    verified: &Verified,
    bundle_path: &str,
    out: &mut dyn Write,
) -> Result<u64, ConsumeError> {
    let entry = verified
        .manifest
        .file(bundle_path)
        .ok_or_else(|| ConsumeError::Missing(bundle_path.to_owned()))?;
    let source = bundle.join(bundle_path);
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ConsumeError::Io { path, source }
    };
    let mut reader = LogicalReader::open(bundle, entry).map_err(|e| ConsumeError::Io {
        path: source.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buffer).map_err(io(&source))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > entry.size {
            return Err(ConsumeError::Changed(bundle_path.to_owned()));
        }
        hasher.update(&buffer[..n]);
        out.write_all(&buffer[..n])
            .map_err(|source| ConsumeError::Io {
                path: PathBuf::from(format!("the copy of {bundle_path}")),
                source,
            })?;
    }
    if size != entry.size || hex::encode(hasher.finalize()) != entry.sha256 {
        return Err(ConsumeError::Changed(bundle_path.to_owned()));
    }
    Ok(size)
}

/// The file `bundle_path` of the verified bundle, read into memory (a
/// small one: the build report), checked against the manifest.
pub fn read_verified(
    bundle: &Path,
    verified: &Verified,
    bundle_path: &str,
    limit: u64,
) -> Result<Vec<u8>, ConsumeError> {
    let entry = verified
        .manifest
        .file(bundle_path)
        .ok_or_else(|| ConsumeError::Missing(bundle_path.to_owned()))?;
    if entry.size > limit {
        return Err(ConsumeError::Io {
            path: bundle.join(bundle_path),
            source: std::io::Error::other(format!(
                "{} bytes; at most {limit} are read into memory",
                entry.size
            )),
        });
    }
    let mut out = Vec::with_capacity(entry.size as usize);
    stream_verified(bundle, verified, bundle_path, &mut out)?;
    Ok(out)
}

/// Records the verified release in the host's state folder `dir`.
pub fn record(dir: &Path, verified: &Verified) -> Result<Record, ConsumeError> {
    state::record(dir, &verified.name, verified.version, verified.seen).map_err(|source| {
        ConsumeError::Io {
            path: dir.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{FileEntry, Manifest, Sboms};

    fn entry(path: &str, bytes: &[u8]) -> FileEntry {
        FileEntry {
            path: path.into(),
            size: bytes.len() as u64,
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
            chunk_size: None,
            chunks: vec![],
            split: false,
        }
    }

    fn verified(files: Vec<FileEntry>) -> Verified {
        Verified {
            name: "node".into(),
            version: 4,
            expires: "2030-01-01T00:00:00Z".into(),
            signers: vec![],
            threshold: 2,
            ignored_signatures: vec![],
            builder: String::new(),
            files: files.len(),
            bytes: 0,
            packages: 0,
            models: 0,
            disk: false,
            secure_boot: false,
            policy: vec![],
            seen: 1_800_000_000,
            manifest: Manifest {
                schema: 1,
                name: "node".into(),
                version: 4,
                epoch: 1_700_000_000,
                expires: "2030-01-01T00:00:00Z".into(),
                airlock: "0.1.0".into(),
                inputs: String::new(),
                recipe: String::new(),
                lock: String::new(),
                sbom: Sboms {
                    cyclonedx: String::new(),
                    spdx: String::new(),
                    spdx3: None,
                },
                provenance: String::new(),
                verity: None,
                cmdline: None,
                ostree: None,
                previous: None,
                files,
            },
        }
    }

    #[test]
    fn copies_what_still_matches_and_refuses_what_changed_after_verification() {
        let bundle = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        std::fs::create_dir(bundle.path().join("artifacts")).unwrap();
        std::fs::write(bundle.path().join("artifacts/vmlinuz"), b"kernel").unwrap();
        std::fs::write(bundle.path().join("build-report.json"), b"{}").unwrap();
        let verified = verified(vec![
            entry("artifacts/vmlinuz", b"kernel"),
            entry("build-report.json", b"{}"),
        ]);
        let files = [("artifacts/vmlinuz".to_owned(), "vmlinuz")];
        copy_verified(bundle.path(), &verified, &files, to.path()).unwrap();
        assert_eq!(std::fs::read(to.path().join("vmlinuz")).unwrap(), b"kernel");

        // Changed on the medium after it was verified: refused, and no
        // half-checked copy stays.
        std::fs::write(bundle.path().join("artifacts/vmlinuz"), b"kernel!").unwrap();
        std::fs::remove_file(to.path().join("vmlinuz")).unwrap();
        let error = copy_verified(bundle.path(), &verified, &files, to.path()).unwrap_err();
        assert!(
            matches!(&error, ConsumeError::Changed(p) if p == "artifacts/vmlinuz"),
            "{error}"
        );
        assert!(!to.path().join("vmlinuz").exists());

        let missing = [("artifacts/initrd.img".to_owned(), "initrd.img")];
        let error = copy_verified(bundle.path(), &verified, &missing, to.path()).unwrap_err();
        assert_eq!(error.to_string(), "the bundle has no artifacts/initrd.img");
    }

    #[test]
    fn recording_a_release_keeps_the_highest_version_and_latest_time() {
        let state = tempfile::tempdir().unwrap();
        let record = record(state.path(), &verified(vec![])).unwrap();
        assert_eq!((record.version, record.seen), (4, 1_800_000_000));
        assert_eq!(state::read(state.path(), "node").unwrap(), Some(record));
    }
}
