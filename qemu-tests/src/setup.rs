//! What every boot-test binary needs before it boots anything: whether the
//! tests may run here, the `airlock` binary, one guest at a time, and the
//! workspace's recipes copied into a scratch folder.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether QEMU and the network tests are on (a missing QEMU fails under
/// AIRLOCK_REQUIRE_TOOLS).
pub fn enabled() -> bool {
    if !airlock_fixtures::gate::tool(airlock_boot::QEMU, "qemu-system-x86") {
        eprintln!("skipped: needs {}", airlock_boot::QEMU);
        return false;
    }
    airlock_fixtures::gate::network("booting a freshly locked image")
}

/// One boot at a time: two TCG guests on two cores only slow each other.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The airlock binary (AIRLOCK_BIN, or built now).
pub fn airlock() -> PathBuf {
    if let Some(path) = std::env::var_os("AIRLOCK_BIN") {
        return PathBuf::from(path);
    }
    // The binary is not a dependency of this crate, so cargo does not
    // rebuild it for these tests: make sure it is current (a no-op when it
    // is, as under `cargo test --workspace`).
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let status =
                Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
                    .args(["build", "-p", "airlock"])
                    .current_dir(workspace())
                    .status()
                    .unwrap();
            assert!(status.success(), "cargo build -p airlock failed");
            workspace().join("target/debug/airlock")
        })
        .clone()
}

/// Copies a folder tree (files and folders only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
