//! Emitters beyond the tar: a staging directory for mkfs.erofs, the EROFS
//! root (mkfs.erofs with its reproducibility options) and its dm-verity hash
//! tree (computed by airlock-verity), the kernel and initrd, the disk image.
//! The ostree commit is airlock-ostree's, written from the tree.

pub mod cpio;
pub mod disk;
pub mod initrd;
pub mod install;
pub mod staging;

use std::path::Path;
use std::process::Command;

use crate::BuildError;

/// Runs an external tool, turning failure into a clear error. The tool
/// dies with the build: a build killed with SIGKILL leaves no mkfs.erofs
/// writing on.
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
