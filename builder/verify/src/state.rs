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
///
/// Writers hold an exclusive lock on `DIR/.lock`, so two verifiers cannot
/// lose each other's update, and write `.NAME.json.new` before renaming
/// it over the record: a writer killed at any point leaves the old record
/// or the new one, and at most that one side file, which the next writer
/// overwrites.
pub fn record(dir: &Path, name: &str, version: u64, seen: u64) -> std::io::Result<Record> {
    std::fs::create_dir_all(dir)?;
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))?;
    lock.lock()?;
    let old = read(dir, name)?.unwrap_or_default();
    let new = Record {
        version: old.version.max(version),
        seen: old.seen.max(seen),
    };
    let side = dir.join(format!(".{name}.json.new"));
    let mut out = std::fs::File::create(&side)?;
    serde_json::to_writer_pretty(&mut out, &new)?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(&side, file(dir, name))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_only_rise_and_a_killed_writers_side_file_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path(), "node").unwrap(), None);
        record(dir.path(), "node", 3, 100).unwrap();
        // A writer killed after writing its side file, before the rename.
        std::fs::write(dir.path().join(".node.json.new"), b"{\"version\": 9").unwrap();
        assert_eq!(
            read(dir.path(), "node").unwrap(),
            Some(Record {
                version: 3,
                seen: 100
            })
        );
        let new = record(dir.path(), "node", 2, 200).unwrap();
        assert_eq!(
            new,
            Record {
                version: 3,
                seen: 200
            }
        );
        assert_eq!(read(dir.path(), "node").unwrap(), Some(new));
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [".lock", "node.json"]);
    }
}
