//! `airlock install BUNDLE --target DEVICE|FILE --trust DIR`: the first
//! install of a host, or a golden disk image for a hypervisor or CI,
//! written from a verified bundle.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use airlock_format::names::image as names;
use airlock_format::report::Report;
use airlock_image::emit::install;
use anyhow::Context;

use crate::exit::Exit;
use crate::shared::say;

const MIB: u64 = 1 << 20;

/// Install a verified bundle onto a disk: the GPT layout, the EFI system
/// partition with systemd-boot and the UKI, slot A, an empty slot B and a
/// /var that fills the rest of the target.
///
/// The bundle is verified first (every check `airlock verify` makes); the
/// disk is then assembled from the verified copies of its parts and must be
/// byte for byte the one the build report describes before anything is
/// written to the target. A target whose first or last MiB holds a
/// partition table, a file system's signature or other data is refused
/// unless --force names it again; so are a partition, a disk with other
/// than 512-byte sectors and a disk with a mounted file system. The
/// partition tables are written last, after a sync, so an install cut off
/// midway leaves a target that does not boot. A FILE target that does not exist is made (sparse) with
/// --size, and appears only once the install is complete.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bundle: a directory, or a tar written by `airlock export --tar`.
    bundle: PathBuf,
    #[command(flatten)]
    trust: crate::commands::verify::TrustArgs,
    /// The disk to install onto: a block device (not mounted, opened
    /// exclusively) or a disk image file.
    #[arg(long, value_name = "DEVICE|FILE")]
    target: PathBuf,
    /// The size of a FILE target that does not exist yet, in bytes or with
    /// a K, M, G or T suffix (powers of 1024) [default: the image's own
    /// disk size].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    size: Option<u64>,
    /// Write the Secure Boot signed systemd-boot and UKI the bundle carries
    /// (signed with `airlock sign-boot` before `airlock export`).
    #[arg(long)]
    secure_boot: bool,
    /// Overwrite a target whose first or last MiB holds a partition table
    /// or data; name the target again, as a guard against a wrong device
    /// (a --force that names anything else is refused).
    #[arg(long, value_name = "TARGET")]
    force: Option<PathBuf>,
}

/// A size in bytes, or with a K, M, G or T suffix.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("{text:?}: the suffix is K, M, G or T")),
            };
            (&text[..i], shift)
        }
        _ => (text, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (for example 8G)"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// The target, opened for writing.
enum Target {
    /// A device or a file that exists; its size, or none for an empty
    /// file (sized once the image is known).
    Existing { file: File, size: Option<u64> },
    /// A file that does not exist yet: made next to it once the bundle is
    /// verified, renamed into place once complete, removed on failure.
    New,
}

impl Args {
    pub fn run(self) -> anyhow::Result<Exit> {
        let target = self.open_target()?;
        let (opened, verified) =
            crate::commands::verify::verified_bundle(&self.bundle, &self.trust)?;
        let parent = match self.target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        let work_parent = match target {
            Target::New => parent.clone(),
            Target::Existing { .. } => std::env::temp_dir(),
        };
        let work = tempfile::Builder::new()
            .prefix(".airlock-install-")
            .tempdir_in(&work_parent)
            .with_context(|| format!("writing into {}", work_parent.display()))?;
        let assembled = crate::commands::disk_image::assemble_verified(
            &opened.dir,
            &verified,
            work.path(),
            self.secure_boot,
        )?;
        let report = Report::parse(&std::fs::read(work.path().join(names::REPORT))?)?;
        let described = report
            .disk
            .as_ref()
            .context("the build report has no disk")?;
        let mut new = None;
        let (mut file, size) = match target {
            Target::Existing { file, size } => (file, size),
            Target::New => {
                let temp = tempfile::Builder::new()
                    .prefix(".airlock-install-")
                    .tempfile_in(&parent)
                    .with_context(|| format!("writing into {}", parent.display()))?;
                let file = temp.as_file().try_clone()?;
                new = Some(temp);
                (file, None)
            }
        };
        let size = match size {
            Some(size) => size,
            None => {
                let size = self.size.unwrap_or(described.image.size);
                file.set_len(size)?;
                size
            }
        };
        say(&format!(
            "installing {} {} onto {} ({} MiB)",
            verified.name,
            verified.version,
            self.target.display(),
            size / MIB
        ));
        let layout = install::plan(described, size)?;
        let bar = crate::shared::bytes_bar("installing", install::to_copy(&layout));
        let installed = install::install(described, &assembled, &mut file, size, &|n| {
            if let Some(bar) = &bar {
                bar.inc(n);
            }
        })?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        if let Some(temp) = new {
            // tempfile makes it 0600; a disk image is for a hypervisor or
            // a CI runner that may run as another user.
            file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
            temp.persist_noclobber(&self.target)
                .map_err(|e| e.error)
                .with_context(|| format!("renaming into {}", self.target.display()))?;
            // The rename is durable only once the folder is synced.
            File::open(&parent)
                .and_then(|dir| dir.sync_all())
                .with_context(|| format!("syncing {}", parent.display()))?;
        } else if file.metadata()?.file_type().is_block_device()
            && let Err(e) = {
                // Our exclusive open would make the kernel refuse.
                drop(file);
                reread_partitions(&self.target)
            }
        {
            say(&format!(
                "note: the kernel did not re-read {}'s partition table ({e}); it will at the next boot",
                self.target.display()
            ));
        }
        let var = installed
            .layout
            .partitions
            .last()
            .expect("a /var partition");
        say(&format!(
            "installed {} {} onto {}{}: slot A holds it, slot B is empty, /var has {} MiB; synced",
            verified.name,
            verified.version,
            self.target.display(),
            if self.secure_boot {
                " (Secure Boot signed)"
            } else {
                ""
            },
            var.spec.size / MIB
        ));
        crate::commands::verify::record_consumed(&self.trust, &verified)?;
        Ok(Exit::Ok)
    }

    /// Opens the target, refusing one that is mounted, is not a disk, or
    /// holds a partition table or data (unless --force names it).
    fn open_target(&self) -> anyhow::Result<Target> {
        let path = &self.target;
        if let Some(force) = &self.force
            && !same_file(force, path)
        {
            anyhow::bail!(
                "--force names {}, not the target {}: it must name the target again",
                force.display(),
                path.display()
            );
        }
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Target::New),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let device = meta.file_type().is_block_device();
        if !device && !meta.is_file() {
            anyhow::bail!(
                "{}: not a block device or a disk image file",
                path.display()
            );
        }
        if device {
            let number = DeviceNumber::of(&meta);
            if number.sys().join("partition").exists() {
                anyhow::bail!(
                    "{} is a partition; install onto the whole disk that holds it",
                    path.display()
                );
            }
            if let Some(mount) = mounted(number)? {
                anyhow::bail!(
                    "{} is in use: {mount} is mounted; unmount it first",
                    path.display()
                );
            }
        }
        let mut options = File::options();
        options.read(true).write(true);
        if device {
            // The kernel refuses an exclusive open of a disk in use (a
            // mounted partition, a device-mapper target, another install).
            options.custom_flags(libc::O_EXCL);
        }
        let mut file = options
            .open(path)
            .with_context(|| format!("opening {} for writing", path.display()))?;
        if device {
            let sector = logical_sector_size(DeviceNumber::of(&meta))
                .with_context(|| format!("reading the sector size of {}", path.display()))?;
            if sector != 512 {
                anyhow::bail!(
                    "{} has {sector}-byte logical sectors; airlock writes its partition table \
                     for 512-byte sectors, which firmware would not find there",
                    path.display()
                );
            }
        }
        let size = file.seek(SeekFrom::End(0))?;
        if size == 0 && !device {
            return Ok(Target::Existing { file, size: None });
        }
        if let Some(wanted) = self.size {
            anyhow::bail!(
                "--size {wanted} is for a new or empty file; {} holds {size} bytes already",
                path.display()
            );
        }
        if let Some(found) = holds(&mut file, size)? {
            let forced = self.force.as_deref().is_some_and(|f| same_file(f, path));
            if !forced {
                anyhow::bail!(
                    "{} holds {found}; installing destroys it: pass --force {} to overwrite it",
                    path.display(),
                    path.display()
                );
            }
            say(&format!(
                "{}: overwriting {found} (--force)",
                path.display()
            ));
        }
        Ok(Target::Existing {
            file,
            size: Some(size),
        })
    }
}

/// What the target holds, if anything: its first and last MiB are read
/// (the partition tables, and the signatures of file systems).
fn holds(file: &mut File, size: u64) -> anyhow::Result<Option<&'static str>> {
    let mut head = vec![0u8; MIB.min(size) as usize];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut head)?;
    let mut tail = vec![0u8; MIB.min(size) as usize];
    file.seek(SeekFrom::Start(size - tail.len() as u64))?;
    file.read_exact(&mut tail)?;
    Ok(if head.get(512..520) == Some(b"EFI PART") {
        Some("a GPT partition table")
    } else if head.get(510..512) == Some(&[0x55, 0xAA]) {
        Some("an MBR partition table or a boot sector")
    } else if head.iter().chain(&tail).any(|&b| b != 0) {
        Some("data")
    } else {
        None
    })
}

/// Whether `a` and `b` name the same file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// A block device's number, as the kernel names it in /sys/dev/block.
#[derive(Clone, Copy, PartialEq, Eq)]
struct DeviceNumber {
    major: u64,
    minor: u64,
}

impl DeviceNumber {
    /// The number of the device `meta` describes.
    fn of(meta: &std::fs::Metadata) -> DeviceNumber {
        use std::os::unix::fs::MetadataExt;
        DeviceNumber::from_rdev(meta.rdev())
    }

    /// Splits a `dev_t` as glibc's major() and minor() do.
    fn from_rdev(dev: u64) -> DeviceNumber {
        DeviceNumber {
            major: ((dev >> 8) & 0xfff) | ((dev >> 32) & 0xffff_f000),
            minor: (dev & 0xff) | ((dev >> 12) & 0xffff_ff00),
        }
    }

    /// Its folder in sysfs.
    fn sys(self) -> PathBuf {
        PathBuf::from(format!("/sys/dev/block/{}:{}", self.major, self.minor))
    }

    /// The whole disk a partition belongs to (itself for a disk): sysfs
    /// puts a partition's folder inside its disk's.
    fn disk(self) -> DeviceNumber {
        let folder = std::fs::canonicalize(self.sys()).ok();
        let parent = folder
            .filter(|f| f.join("partition").exists())
            .and_then(|f| std::fs::read_to_string(f.parent()?.join("dev")).ok());
        parent
            .and_then(|text| {
                let (major, minor) = text.trim().split_once(':')?;
                Some(DeviceNumber {
                    major: major.parse().ok()?,
                    minor: minor.parse().ok()?,
                })
            })
            .unwrap_or(self)
    }
}

/// A mounted file system on the disk `device` or one of its partitions,
/// matched by device number (so /dev/loop10 is not /dev/loop1's).
fn mounted(device: DeviceNumber) -> anyhow::Result<Option<String>> {
    use std::os::unix::fs::FileTypeExt;
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    Ok(mounts.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        let source = words.next()?;
        let at = words.next()?;
        let meta = std::fs::metadata(source).ok()?;
        if !meta.file_type().is_block_device() {
            return None;
        }
        let number = DeviceNumber::of(&meta);
        (number == device || number.disk() == device).then(|| format!("{source} (on {at})"))
    }))
}

/// The disk's logical sector size, as sysfs reports it.
fn logical_sector_size(device: DeviceNumber) -> std::io::Result<u32> {
    let file = device.sys().join("queue/logical_block_size");
    let text = std::fs::read_to_string(&file)?;
    text.trim().parse().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {:?} is not a size", file.display(), text.trim()),
        )
    })
}

/// Asks the kernel to read the device's new partition table (util-linux's
/// `blockdev --rereadpt`), so its partitions appear without a reboot. Best
/// effort: the disk is written and synced whatever the kernel says.
fn reread_partitions(device: &Path) -> Result<(), String> {
    let output = std::process::Command::new("blockdev")
        .arg("--rereadpt")
        .arg(device)
        .output()
        .map_err(|e| format!("blockdev: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_split_as_glibc_does() {
        let number = |dev| {
            let n = DeviceNumber::from_rdev(dev);
            (n.major, n.minor)
        };
        // /dev/null is 1:3 on every Linux.
        let null = DeviceNumber::of(&std::fs::metadata("/dev/null").unwrap());
        assert_eq!((null.major, null.minor), (1, 3));
        // makedev(259, 10), an NVMe partition; makedev(0x12345, 0x6789A),
        // whose major reaches above bit 44 and minor above bit 20 (glibc
        // puts their high bits apart from the low ones).
        assert_eq!(number((259 << 8) | 10), (259, 10));
        assert_eq!(number(0x0001_2000_6783_459A), (0x12345, 0x6789A));
    }

    #[test]
    fn sizes_read_with_binary_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("8G"), Ok(8 << 30));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert!(parse_size("8X").unwrap_err().contains("suffix"));
        assert!(parse_size("eight").unwrap_err().contains("not a size"));
        assert!(
            parse_size("99999999999T")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn a_target_with_a_table_or_data_is_seen_and_a_blank_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        let file = |bytes: &[(u64, &[u8])]| {
            let f = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            f.set_len(8 * MIB).unwrap();
            for (at, b) in bytes {
                std::os::unix::fs::FileExt::write_all_at(&f, b, *at).unwrap();
            }
            f
        };
        assert_eq!(holds(&mut file(&[]), 8 * MIB).unwrap(), None);
        assert_eq!(
            holds(&mut file(&[(512, b"EFI PART")]), 8 * MIB).unwrap(),
            Some("a GPT partition table")
        );
        assert_eq!(
            holds(&mut file(&[(510, &[0x55, 0xAA])]), 8 * MIB).unwrap(),
            Some("an MBR partition table or a boot sector")
        );
        // An ext4 superblock's magic, and a backup table at the end.
        assert_eq!(
            holds(&mut file(&[(1024 + 56, &[0x53, 0xEF])]), 8 * MIB).unwrap(),
            Some("data")
        );
        assert_eq!(
            holds(&mut file(&[(8 * MIB - 512, b"EFI PART")]), 8 * MIB).unwrap(),
            Some("data")
        );
    }
}
