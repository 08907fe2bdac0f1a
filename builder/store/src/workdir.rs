//! Temporary work folders beside what a command writes (a build's
//! `.build-*` beside the image folders, an export's `.airlock-export-*`
//! beside the bundle), and what a killed command left behind.
//!
//! Each work folder holds a `lock` file that its process keeps locked
//! (flock) until it ends; the kernel drops the lock when the process dies,
//! however it dies. Holding a lock on the parent folder itself (so no lock
//! file is left beside what was written), a new run first removes every `PREFIX*` folder whose lock it can take (its
//! process is dead), then makes its own folder and locks it before letting
//! go, so a running command's folder is never taken for a dead one.

use std::fs::{self, File, OpenOptions};
use std::path::Path;

/// The lock file in each work folder.
const LOCK: &str = "lock";

/// A build's work folder: removed when dropped; its lock held until then.
#[derive(Debug)]
pub struct WorkDir {
    // Declared first: dropped (unlocked) after the folder is gone.
    dir: tempfile::TempDir,
    _lock: File,
}

impl WorkDir {
    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn io(what: &Path) -> impl FnOnce(std::io::Error) -> std::io::Error + '_ {
    move |source| std::io::Error::new(source.kind(), format!("{}: {source}", what.display()))
}

fn open_lock(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

/// Clears the `prefix*` folders dead runs left in `parent` and makes a new
/// one there. Returns the folder and how many stale ones were removed.
pub fn claim(parent: &Path, prefix: &str) -> std::io::Result<(WorkDir, usize)> {
    let folder_lock = File::open(parent).map_err(io(parent))?;
    folder_lock.lock().map_err(io(parent))?;
    let removed = sweep(parent, prefix)?;
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(parent)
        .map_err(io(parent))?;
    let lock_path = dir.path().join(LOCK);
    let lock = open_lock(&lock_path).map_err(io(&lock_path))?;
    lock.lock().map_err(io(&lock_path))?;
    drop(folder_lock);
    Ok((WorkDir { dir, _lock: lock }, removed))
}

/// Removes every `prefix*` folder of `parent` whose process is dead.
/// Called with the folder lock held.
fn sweep(parent: &Path, prefix: &str) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(parent).map_err(io(parent))? {
        let entry = entry.map_err(io(parent))?;
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(prefix) {
            continue;
        }
        let path = entry.path();
        if !entry.file_type().map_err(io(&path))?.is_dir() {
            continue;
        }
        // No lock file: its build died before making one, which it does
        // under the folder lock we hold, so it is not running.
        let alive = match File::options().write(true).open(path.join(LOCK)) {
            Ok(file) => match file.try_lock() {
                Ok(()) => false,
                Err(fs::TryLockError::WouldBlock) => true,
                Err(fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(io(&path)(e)),
        };
        if !alive {
            make_removable(&path);
            fs::remove_dir_all(&path).map_err(io(&path))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// A staged tree has read-only directories (0555): open them up so the
/// folder can be removed.
fn make_removable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(entry.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_build_s_folder_is_removed_and_a_live_one_kept() {
        let parent = tempfile::tempdir().unwrap();
        // A dead build: its folder and an unlocked lock file, a read-only
        // staged directory inside.
        let dead = parent.path().join(".build-dead");
        fs::create_dir_all(dead.join("staging/usr")).unwrap();
        fs::write(dead.join(LOCK), b"").unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dead.join("staging/usr"), fs::Permissions::from_mode(0o555))
                .unwrap();
        }
        // One that died before making its lock file.
        fs::create_dir(parent.path().join(".build-early")).unwrap();
        // A live one (this process holds its lock through another handle).
        let (live, removed) = claim(parent.path(), ".build-").unwrap();
        assert_eq!(removed, 2);
        assert!(!dead.exists());
        let (second, removed) = claim(parent.path(), ".build-").unwrap();
        assert_eq!(removed, 0, "a running build's folder is kept");
        assert!(live.path().is_dir() && second.path().is_dir());
        // Image folders and other files are never touched.
        fs::create_dir(parent.path().join("1-abc")).unwrap();
        let live_path = live.path().to_path_buf();
        drop(live);
        assert!(!live_path.exists(), "a finished build removes its folder");
        let (_third, removed) = claim(parent.path(), ".build-").unwrap();
        assert_eq!(removed, 0);
        assert!(parent.path().join("1-abc").is_dir());
    }
}
