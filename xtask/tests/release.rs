//! `cargo xtask release` gives the same airlock binary from two checkouts in
//! different folders, built with a different home, cargo home and user
//! name: the far side can build airlock from the source release and compare
//! its sha256 with the one the provenance records.
//!
//! Two release builds from scratch (several minutes each), so this runs only
//! with AIRLOCK_TEST_RELEASE=1; `cargo xtask ci` sets it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The tracked files of this checkout, copied to `to`.
fn checkout(to: &Path) {
    let listed = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(workspace())
        .output()
        .expect("git ls-files (the test copies the tracked files)");
    assert!(listed.status.success(), "git ls-files: {}", listed.status);
    for name in listed.stdout.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).unwrap();
        let (from, into) = (workspace().join(name), to.join(name));
        // A tracked file deleted in the working tree is not part of it.
        if from.symlink_metadata().is_err() {
            continue;
        }
        std::fs::create_dir_all(into.parent().unwrap()).unwrap();
        std::fs::copy(&from, &into).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

fn real_home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").expect("HOME"))
}

/// `cargo xtask release` in `dir` with `home` as HOME (and, when given,
/// `cargo_home` as CARGO_HOME) and `user` as the user name; each printed
/// sha256 with its binary's path (airlock, then airlock-host).
fn release(
    dir: &Path,
    home: &Path,
    cargo_home: Option<&Path>,
    user: &str,
) -> Vec<(String, PathBuf)> {
    let rustup_home =
        std::env::var_os("RUSTUP_HOME").map_or_else(|| real_home().join(".rustup"), PathBuf::from);
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .args(["xtask", "release"])
        .current_dir(dir)
        .env("HOME", home)
        .env("USER", user)
        .env("LOGNAME", user)
        .env("RUSTUP_HOME", rustup_home)
        // The outer `cargo test`'s settings must not leak into the build.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("RUSTUP_TOOLCHAIN");
    match cargo_home {
        Some(cargo_home) => command.env("CARGO_HOME", cargo_home),
        None => command.env_remove("CARGO_HOME"),
    };
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "cargo xtask release in {}: {}\n{}",
        dir.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .map(|line| {
            let mut words = line.split_whitespace();
            let digest = words.next().expect("a sha256 on stdout").to_owned();
            let path = PathBuf::from(words.next().expect("the binary's path"));
            (digest, path)
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[test]
fn two_checkouts_in_two_folders_give_the_same_airlock_and_host_tool() {
    if std::env::var_os("AIRLOCK_TEST_RELEASE").is_none() {
        eprintln!(
            "skipped: two release builds of airlock; set AIRLOCK_TEST_RELEASE=1 (cargo xtask ci does)"
        );
        return;
    }
    let temp = tempfile_dir();
    // Two folders of different names and depths, two homes; the second
    // reaches the same crate sources through a cargo home of another name.
    let first = temp.join("first/airlock");
    let second = temp.join("elsewhere/deeper/checkout-of-airlock");
    checkout(&first);
    checkout(&second);
    let real_cargo_home =
        std::env::var_os("CARGO_HOME").map_or_else(|| real_home().join(".cargo"), PathBuf::from);
    let other_home = temp.join("home/builder-two");
    std::fs::create_dir_all(&other_home).unwrap();
    let other_cargo_home = other_home.join("cargo-home");
    std::os::unix::fs::symlink(&real_cargo_home, &other_cargo_home).unwrap();

    let ones = release(&first, &real_home(), Some(&real_cargo_home), "alice");
    let twos = release(&second, &other_home, Some(&other_cargo_home), "bob");
    let names = |built: &[(String, PathBuf)]| -> Vec<String> {
        built
            .iter()
            .map(|(_, path)| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(&ones), ["airlock", "airlock-host"]);
    assert_eq!(names(&twos), names(&ones));
    for ((one, one_binary), (two, two_binary)) in ones.iter().zip(&twos) {
        assert_eq!(
            one,
            two,
            "the two checkouts built different {} binaries",
            one_binary.display()
        );
        assert_eq!(one.len(), 64, "{one:?} is not a sha256");
        let bytes = std::fs::read(one_binary).unwrap();
        assert_eq!(bytes, std::fs::read(two_binary).unwrap());
        // The digest file beside it says the same, in sha256sum's format.
        let name = one_binary.file_name().unwrap().to_string_lossy();
        let recorded = std::fs::read_to_string(one_binary.with_file_name(format!("{name}.sha256")));
        assert_eq!(recorded.unwrap(), format!("{one}  {name}\n"));
        // Neither folder's name reached the binary: the paths were remapped.
        for folder in [
            &first,
            &second,
            &other_home,
            &real_cargo_home.join("registry"),
        ] {
            assert!(
                !contains(&bytes, &folder.display().to_string()),
                "{} names the build folder {}",
                one_binary.display(),
                folder.display()
            );
        }
    }
    // And airlock names itself by its digest.
    let (one, one_binary) = &ones[0];
    let version = Command::new(one_binary).arg("--version").output().unwrap();
    assert!(
        String::from_utf8_lossy(&version.stdout).contains(&format!("(sha256 {one})")),
        "{}",
        String::from_utf8_lossy(&version.stdout)
    );
    // The host tool runs: it is a real program, not a leftover.
    let host = Command::new(&ones[1].1).arg("--help").output().unwrap();
    assert!(
        String::from_utf8_lossy(&host.stdout).contains("status"),
        "{}",
        String::from_utf8_lossy(&host.stdout)
    );
    std::fs::remove_dir_all(&temp).unwrap();
}

/// A fresh folder under the system's temporary directory (the xtask uses
/// only the standard library, so no tempfile crate).
fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("airlock-release-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
