//! The host's record of what it accepted (`--state DIR`): per image name,
//! the highest version installed and the latest time seen, so an older
//! release (rollback) or a stale one (freeze) is refused. Only commands
//! that consume a verified bundle write it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One image's record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The highest version accepted.
    pub version: u64,
    /// The latest time seen (seconds since the epoch): the host clock at
    /// acceptance or the accepted build's epoch, whichever is later.
    pub seen: u64,
}

fn file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

/// The record for `name`, if any.
pub fn read(dir: &Path, name: &str) -> std::io::Result<Option<Record>> {
    match std::fs::read(file(dir, name)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Records an accepted release, atomically; never lowers what is recorded.
pub fn record(dir: &Path, name: &str, version: u64, seen: u64) -> std::io::Result<Record> {
    std::fs::create_dir_all(dir)?;
    let old = read(dir, name)?.unwrap_or_default();
    let new = Record {
        version: old.version.max(version),
        seen: old.seen.max(seen),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&mut tmp, &new)?;
    tmp.as_file().sync_all()?;
    tmp.persist(file(dir, name)).map_err(|e| e.error)?;
    Ok(new)
}
