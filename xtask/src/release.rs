//! `cargo xtask release`: the airlock binaries (`airlock`, and the host
//! tool `airlock-host` that images carry as a pinned component) built so
//! that anyone can build them again, byte for byte, from the same source
//! release.
//!
//! What would otherwise make two builds differ, and what this pins:
//! - the toolchain: rust-toolchain.toml names one rustc; every rustc the
//!   build runs is that one (RUSTUP_TOOLCHAIN), and the build refuses to
//!   run under another;
//! - the dependencies: `--locked`, from Cargo.lock;
//! - the paths: rustc and the C compiler record source paths (panic
//!   messages, line tables, `file!()`); the workspace, the cargo home and
//!   the target folder are remapped to fixed names (/airlock, /cargo), so
//!   the folder you cloned into and your user's home never reach the
//!   binary;
//! - the flags: RUSTFLAGS and CFLAGS are set here, not taken from the
//!   environment or a user's cargo config; incremental compilation is off;
//! - the target: the target folder is `target/reproducible`, whatever
//!   CARGO_TARGET_DIR says, so no other build's artifacts mix in.
//!
//! Both are built by one cargo invocation (so one feature resolution), and
//! each lands in `target/reproducible/` with its sha256 printed and written
//! beside it (`airlock.sha256`, `airlock-host.sha256`, in sha256sum's
//! format). A recipe pins `airlock-host` by that digest.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{cargo, root, run};

/// The binaries a release builds; each is its package's only binary.
pub const BINARIES: [&str; 2] = ["airlock", "airlock-host"];

/// The toolchain rust-toolchain.toml pins (its `channel`).
fn pinned_toolchain(root: &Path) -> Result<String, String> {
    let file = root.join("rust-toolchain.toml");
    let text = fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("channel"))
        .filter_map(|rest| rest.trim().strip_prefix('='))
        .map(|value| value.trim().trim_matches('"').to_owned())
        .next()
        .ok_or_else(|| format!("{}: no channel", file.display()))
}

/// The cargo home cargo uses (CARGO_HOME, or ~/.cargo).
fn cargo_home() -> Result<PathBuf, String> {
    if let Some(home) = env::var_os("CARGO_HOME") {
        return Ok(PathBuf::from(home));
    }
    env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cargo"))
        .ok_or_else(|| "neither CARGO_HOME nor HOME is set".to_owned())
}

/// The one command that builds the release binary, with every setting that
/// decides its bytes.
fn build_command(root: &Path, target: &Path, cargo_home: &Path, toolchain: &str) -> Command {
    // The target folder lies inside the workspace, so /airlock covers it.
    // Both folders arrive resolved (release() canonicalizes them, and the
    // build runs with that CARGO_HOME), so each has one spelling and the
    // flags have the same shape from any folder.
    let maps = [(cargo_home, "/cargo"), (root, "/airlock")];
    let rustflags: Vec<String> = maps
        .iter()
        .map(|(from, to)| format!("--remap-path-prefix={}={to}", from.display()))
        .collect();
    let cflags: Vec<String> = maps
        .iter()
        .map(|(from, to)| format!("-ffile-prefix-map={}={to}", from.display()))
        .collect();
    // Cargo's encoded form keeps a path with spaces in one flag; the C
    // compiler's CFLAGS cannot (release() refuses such folders).
    let (rustflags, cflags) = (rustflags.join("\u{1f}"), cflags.join(" "));
    let mut command = cargo();
    command
        .current_dir(root)
        .args(["build", "--locked", "--release"])
        .args(BINARIES.iter().flat_map(|name| ["--package", name]))
        .arg("--target-dir")
        .arg(target)
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags)
        .env("CFLAGS", cflags)
        .env("CARGO_INCREMENTAL", "0")
        // A cargo home reached through a symlink would otherwise give the
        // registry's sources a second spelling in the compilers' paths.
        .env("CARGO_HOME", cargo_home)
        // rustup's rustc picks its toolchain by the folder it runs in, and
        // cargo runs it inside each crate's source, where a crate's own
        // rust-toolchain file could name another; this names the pinned
        // one for every invocation (without rustup it is ignored, and the
        // version check above stands).
        .env("RUSTUP_TOOLCHAIN", toolchain)
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR");
    command
}

/// Builds target/reproducible/airlock and airlock-host; their paths and
/// sha256s.
pub fn release() -> Result<Vec<(PathBuf, String)>, String> {
    let root = root();
    let pinned = pinned_toolchain(&root)?;
    let rustc = Command::new("rustc")
        .arg("--version")
        .current_dir(&root)
        .env("RUSTUP_TOOLCHAIN", &pinned)
        .output()
        .map_err(|e| format!("rustc: {e}"))?;
    let rustc = String::from_utf8_lossy(&rustc.stdout).trim().to_owned();
    if !rustc.starts_with(&format!("rustc {pinned} ")) {
        return Err(format!(
            "rust-toolchain.toml pins {pinned}, but rustc here is {rustc:?}; \
             a reproducible airlock needs the pinned toolchain (rustup installs it)"
        ));
    }
    let cargo_home = cargo_home()?;
    let cargo_home =
        fs::canonicalize(&cargo_home).map_err(|e| format!("{}: {e}", cargo_home.display()))?;
    let root = fs::canonicalize(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    for folder in [&root, &cargo_home] {
        if folder.display().to_string().contains(char::is_whitespace) {
            return Err(format!(
                "{}: a reproducible build needs folders without spaces (the C compiler's \
                 path remapping cannot carry them)",
                folder.display()
            ));
        }
    }
    let target = root.join("target/reproducible");
    run(&mut build_command(&root, &target, &cargo_home, &pinned))?;
    eprintln!("{rustc}");
    let mut built = Vec::new();
    for name in BINARIES {
        let binary = target.join("release").join(name);
        let digest = sha256(&binary)?;
        let published = target.join(name);
        fs::copy(&binary, &published).map_err(|e| format!("{}: {e}", published.display()))?;
        fs::write(
            target.join(format!("{name}.sha256")),
            format!("{digest}  {name}\n"),
        )
        .map_err(|e| format!("{}: {e}", target.display()))?;
        // One line per binary on stdout: what `sha256sum -c` and scripts
        // read.
        #[allow(clippy::print_stdout)]
        {
            println!("{digest}  {}", published.display());
        }
        built.push((published, digest));
    }
    Ok(built)
}

/// sha256 of a file, with coreutils (the xtask uses only the standard
/// library).
pub fn sha256(file: &Path) -> Result<String, String> {
    let output = Command::new("sha256sum")
        .arg(file)
        .output()
        .map_err(|e| format!("sha256sum: {e}"))?;
    if !output.status.success() {
        return Err(format!("sha256sum {}: {}", file.display(), output.status));
    }
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| format!("sha256sum {}: no digest", file.display()))
}
