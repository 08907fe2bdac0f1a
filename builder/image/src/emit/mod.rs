//! Emitters beyond the tar: a staging directory for the tools that read
//! one, the EROFS root (mkfs.erofs with its reproducibility options) and
//! its dm-verity hash tree (computed by airlock-verity), the kernel and
//! initrd, and an ostree commit.

pub mod cpio;
pub mod disk;
pub mod initrd;
pub mod install;
pub mod staging;

use std::path::Path;
use std::process::Command;

use crate::BuildError;

/// Runs an external tool, turning failure into a clear error. The tool
/// dies with the build: a build killed with SIGKILL leaves no mkfs.erofs or
/// ostree writing on.
pub(crate) fn run(tool: &str, command: &mut Command) -> Result<String, BuildError> {
    die_with_parent(command);
    let output = command.output().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            BuildError::Config {
                what: tool.to_owned(),
                message: format!(
                    "{tool} is not installed (Debian: apt-get install {})",
                    match tool {
                        "mkfs.erofs" => "erofs-utils",
                        other => other,
                    }
                ),
            }
        } else {
            BuildError::Io {
                what: tool.to_owned(),
                source,
            }
        }
    })?;
    if !output.status.success() {
        return Err(BuildError::Config {
            what: tool.to_owned(),
            message: format!(
                "{} failed ({}): {}",
                tool,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Asks the kernel to SIGKILL the child when the thread that spawned it
/// exits (PR_SET_PDEATHSIG), and refuses to start it if that already
/// happened between fork and exec.
#[allow(unsafe_code)]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and calls
    // only prctl(2) and getppid(2), which are async-signal-safe; it touches
    // no memory shared with the parent and allocates only on the error
    // path, where the child is abandoned anyway.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::other(
                    "the build died before the tool started",
                ));
            }
            Ok(())
        });
    }
}

/// The EROFS image of `staging` at `out`: every time the epoch, the given
/// UUID, lz4hc-compressed, owners as staged.
pub fn erofs(staging: &Path, out: &Path, epoch: u64, uuid: &str) -> Result<(), BuildError> {
    run(
        "mkfs.erofs",
        Command::new("mkfs.erofs")
            .arg("--quiet")
            .arg(format!("-T{epoch}"))
            .arg(format!("-U{uuid}"))
            .arg("-zlz4hc")
            .arg(out)
            .arg(staging)
            .env("SOURCE_DATE_EPOCH", epoch.to_string())
            .env("TZ", "UTC")
            .env("LC_ALL", "C"),
    )?;
    Ok(())
}

/// Commits `staging` to a new archive-mode repository at `repo`; returns
/// the commit checksum. Owners, modes (setuid included) and xattrs (file
/// capabilities) are the staged ones, which are the tree's; the timestamp
/// is the epoch.
pub fn ostree(
    staging: &Path,
    repo: &Path,
    branch: &str,
    subject: &str,
    version: u64,
    epoch: u64,
) -> Result<String, BuildError> {
    let env = |command: &mut Command| {
        command
            .env("TZ", "UTC")
            .env("LC_ALL", "C")
            .env("SOURCE_DATE_EPOCH", epoch.to_string());
    };
    let mut init = Command::new("ostree");
    init.arg(format!("--repo={}", repo.display()))
        .args(["init", "--mode=archive"]);
    env(&mut init);
    run("ostree", &mut init)?;
    let mut commit = Command::new("ostree");
    commit
        .arg(format!("--repo={}", repo.display()))
        .arg("commit")
        .arg(format!("--branch={branch}"))
        .arg(format!("--tree=dir={}", staging.display()))
        .arg(format!("--timestamp=@{epoch}"))
        .arg(format!("--subject={subject}"))
        .arg(format!("--add-metadata-string=version={version}"))
        .arg("--no-bindings");
    env(&mut commit);
    let checksum = run("ostree", &mut commit)?.trim().to_owned();
    if checksum.len() != 64 || !checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(BuildError::Config {
            what: "ostree".to_owned(),
            message: format!("unexpected commit output {checksum:?}"),
        });
    }
    // The repository's tmp/ holds per-run state; it is not part of the commit.
    let tmp = repo.join("tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|source| BuildError::Io {
            what: tmp.display().to_string(),
            source,
        })?;
        std::fs::create_dir(&tmp).map_err(|source| BuildError::Io {
            what: tmp.display().to_string(),
            source,
        })?;
    }
    Ok(checksum)
}
