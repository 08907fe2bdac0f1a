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

/// `airlock lock RECIPE` (a fresh lock against the host's apt sources),
/// then `airlock build RECIPE --output OUTPUT`: the folder of the image
/// named `name`.
pub fn lock_and_build(recipe: &Path, output: &Path, name: &str) -> PathBuf {
    for step in ["lock", "build"] {
        let mut command = Command::new(airlock());
        command.arg(step).arg(recipe);
        if step == "build" {
            command.arg("--output").arg(output);
        }
        let result = command.env_remove("AIRLOCK_MIRROR").output().unwrap();
        assert!(
            result.status.success(),
            "airlock {step} {}: {}",
            recipe.display(),
            String::from_utf8_lossy(&result.stderr)
        );
    }
    airlock_fixtures::only_image(&output.join(name))
}

/// Builds the recipe at `recipe` (relative to `dir`, the folder of a first
/// build, already locked) again from a copy of `dir` in another folder
/// (its images left behind), under other conditions than the first build:
/// umask 077, another clock (when faketime is there), time zone, locale,
/// one thread, another temporary folder. Returns the folder that holds
/// the copy (keep it while the image is read) and the folder of the image
/// named `name`.
pub fn rebuild_elsewhere(dir: &Path, recipe: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let other = tempfile::tempdir().unwrap();
    let root = other.path().join("elsewhere");
    copy_tree(dir, &root);
    let _ = std::fs::remove_dir_all(root.join("images"));
    let (output, tmp) = (other.path().join("out-b"), other.path().join("tmp-b"));
    std::fs::create_dir_all(&tmp).unwrap();
    let faketime = Command::new("sh")
        .args(["-c", "command -v faketime"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut script = "umask 077; exec ".to_owned();
    if faketime {
        script += "faketime '2031-07-04 12:00:00' ";
    }
    script += "\"$@\"";
    let status = Command::new("sh")
        .args(["-c", &script, "sh"])
        .arg(airlock())
        .arg("build")
        .arg(root.join(recipe))
        .arg("--output")
        .arg(&output)
        .env("TMPDIR", &tmp)
        .env("TZ", "Pacific/Kiritimati")
        .env("LANG", "de_DE.UTF-8")
        .env("LC_ALL", "de_DE.UTF-8")
        .env("RAYON_NUM_THREADS", "1")
        .env_remove("AIRLOCK_MIRROR")
        .status()
        .unwrap();
    assert!(status.success(), "the second build failed");
    let image = airlock_fixtures::only_image(&output.join(name));
    (other, image)
}
