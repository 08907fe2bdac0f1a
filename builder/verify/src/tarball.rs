//! Tar bundles (`airlock export --tar`), unpacked defensively: only
//! directories and regular files, only bundle paths (relative, no `..`),
//! never over an existing file, a bounded number of entries.

use std::io::Read;
use std::path::Path;

use crate::manifest::check_path;

/// The most entries a bundle tar may have.
pub const MAX_ENTRIES: usize = 1_000_000;

/// Unpacks a bundle tar into `to` (an empty directory).
pub fn unpack(reader: impl Read, to: &Path) -> Result<(), String> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| e.to_string())?;
    for (count, entry) in entries.enumerate() {
        if count >= MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} entries"));
        }
        let mut entry = entry.map_err(|e| e.to_string())?;
        let raw = entry.path_bytes();
        let name = std::str::from_utf8(&raw)
            .map_err(|_| "an entry name is not UTF-8".to_owned())?
            .trim_end_matches('/')
            .to_owned();
        check_path(&name)?;
        let target = to.join(&name);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target).map_err(|e| format!("{name}: {e}"))?;
            }
            tar::EntryType::Regular => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| format!("{name}: {e}"))?;
                }
                let mut out = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(|e| format!("{name}: {e}"))?;
                std::io::copy(&mut entry, &mut out).map_err(|e| format!("{name}: {e}"))?;
            }
            other => {
                return Err(format!(
                    "{name} is a {other:?}; a bundle holds only files and directories"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(name: &str, kind: tar::EntryType, data: &[u8]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        // Bypass the tar crate's own path checks, as a hostile tar would.
        let bytes = name.as_bytes();
        header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        header.set_cksum();
        builder.append(&header, data).unwrap();
        builder.into_inner().unwrap()
    }

    #[test]
    fn hostile_entries_are_refused() {
        for (name, kind, expected) in [
            ("../escape", tar::EntryType::Regular, "not a path inside"),
            ("/etc/passwd", tar::EntryType::Regular, "not a path inside"),
            ("a/../../b", tar::EntryType::Regular, "not a path inside"),
            (
                "link",
                tar::EntryType::Symlink,
                "only files and directories",
            ),
            ("dev", tar::EntryType::Char, "only files and directories"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let error = unpack(&tar_with(name, kind, b"x")[..], dir.path()).unwrap_err();
            assert!(error.contains(expected), "{name}: {error}");
        }
        let dir = tempfile::tempdir().unwrap();
        unpack(
            &tar_with("ok/file", tar::EntryType::Regular, b"x")[..],
            dir.path(),
        )
        .unwrap();
        assert_eq!(std::fs::read(dir.path().join("ok/file")).unwrap(), b"x");
        // A second entry of the same name does not overwrite the first.
        let error = unpack(
            &tar_with("ok/file", tar::EntryType::Regular, b"y")[..],
            dir.path(),
        )
        .unwrap_err();
        assert!(error.contains("exists"), "{error}");
    }
}
