//! What the running host says about itself: EFI variables systemd-boot and
//! the firmware set, the kernel command line, block devices in sysfs. Every
//! path is read below `root` (`/` on a host).

use std::path::{Path, PathBuf};

use airlock_disk::gpt::Guid;
use airlock_format::names::cmdline;
use anyhow::Context;

/// systemd-boot's vendor GUID, under which it publishes its EFI variables.
pub const LOADER_GUID: &str = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";
/// The UEFI global variables' GUID (`SecureBoot`).
const GLOBAL_GUID: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";

/// An EFI variable's value (after its 4 bytes of attributes).
pub fn efi_var(root: &Path, name: &str, guid: &str) -> Option<Vec<u8>> {
    let path = root.join(format!("sys/firmware/efi/efivars/{name}-{guid}"));
    let bytes = std::fs::read(path).ok()?;
    bytes.get(4..).map(<[u8]>::to_vec)
}

/// A systemd-boot variable holding UTF-16LE text ending in a NUL.
pub fn loader_string(root: &Path, name: &str) -> Option<String> {
    let bytes = efi_var(root, name, LOADER_GUID)?;
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16(&units).ok()
}

/// Whether the firmware enforces Secure Boot.
pub fn secure_boot(root: &Path) -> bool {
    efi_var(root, "SecureBoot", GLOBAL_GUID).is_some_and(|v| v.first() == Some(&1))
}

/// Whether this boot is counted (systemd-boot started an entry with a
/// tries counter and says where it is).
pub fn counted_boot(root: &Path) -> bool {
    loader_string(root, "LoaderBootCountPath").is_some()
}

/// The GUID of the root partition the kernel command line names.
pub fn running_root(root: &Path) -> anyhow::Result<Guid> {
    let line =
        std::fs::read_to_string(root.join("proc/cmdline")).context("reading /proc/cmdline")?;
    let value = line
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .find(|(k, _)| *k == cmdline::ROOT)
        .and_then(|(_, v)| v.strip_prefix(cmdline::PARTUUID))
        .with_context(|| {
            format!(
                "this system was not booted from an airlock slot: no {}={}… on the kernel command line",
                cmdline::ROOT,
                cmdline::PARTUUID
            )
        })?;
    Guid::from_text(value).with_context(|| format!("{value:?} is not a partition GUID"))
}

/// The whole disk that holds the partition with `guid` (`/dev/vda`):
/// through udev's by-partuuid link when udev made it, else by reading the
/// partition table of every disk sysfs lists.
pub fn disk_holding(root: &Path, guid: Guid) -> anyhow::Result<PathBuf> {
    let link = root.join(format!(
        "dev/disk/by-partuuid/{}",
        guid.to_string().to_lowercase()
    ));
    if let Ok(device) = std::fs::canonicalize(&link) {
        return crate::update::disk_of(root, &device);
    }
    let sys = root.join("sys/class/block");
    let entries = std::fs::read_dir(&sys).with_context(|| format!("reading {}", sys.display()))?;
    let mut names: Vec<_> = entries
        .flatten()
        .filter(|e| !e.path().join("partition").exists())
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        let device = root.join("dev").join(&name);
        let Ok(mut file) = std::fs::File::open(&device) else {
            continue;
        };
        let holds = std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))
            .ok()
            .and_then(|size| airlock_disk::gpt::Layout::read(&mut file, size).ok())
            .is_some_and(|layout| layout.partitions.iter().any(|p| p.spec.guid == guid));
        if holds {
            return Ok(Path::new("/dev").join(name));
        }
    }
    anyhow::bail!("no disk holds the partition {guid}")
}

/// The device of partition `number` of `disk` (`/dev/vda`, 1 → `/dev/vda1`),
/// from sysfs, with no help from udev.
pub fn partition_device(root: &Path, disk: &Path, number: usize) -> anyhow::Result<PathBuf> {
    let name = disk.file_name().context("a disk device has a name")?;
    let sys = root.join("sys/class/block").join(name);
    let entries = std::fs::read_dir(&sys).with_context(|| format!("reading {}", sys.display()))?;
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path().join("partition")) else {
            continue;
        };
        if text.trim().parse() == Ok(number) {
            return Ok(Path::new("/dev").join(entry.file_name()));
        }
    }
    anyhow::bail!("{} has no partition {number}", disk.display())
}

/// Whether `dir` is a mount point (a different device from its parent's).
pub fn mount_point(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(me), Ok(parent)) = (std::fs::metadata(dir), std::fs::metadata(dir.join(".."))) else {
        return false;
    };
    me.dev() != parent.dev() || me.ino() == parent.ino()
}

/// Mounts the FAT file system on `device` at `dir`: no devices, no set-uid,
/// nothing executable, readable by root only.
pub fn mount_vfat(device: &Path, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
    let status = std::process::Command::new("mount")
        .args(["-t", "vfat", "-o", "nosuid,nodev,noexec,umask=0077"])
        .arg(device)
        .arg(dir)
        .status()
        .context("running mount")?;
    anyhow::ensure!(
        status.success(),
        "mount {} {}: {status}",
        device.display(),
        dir.display()
    );
    Ok(())
}

/// Unmounts `dir`.
pub fn unmount(dir: &Path) -> anyhow::Result<()> {
    let status = std::process::Command::new("umount")
        .arg(dir)
        .status()
        .context("running umount")?;
    anyhow::ensure!(status.success(), "umount {}: {status}", dir.display());
    Ok(())
}

/// The ESP systemd-boot started from: its partition GUID, read from
/// `LoaderDevicePartUUID`.
pub fn booted_esp(root: &Path) -> anyhow::Result<Guid> {
    let text = loader_string(root, "LoaderDevicePartUUID").context(
        "systemd-boot did not say which partition it started from (LoaderDevicePartUUID)",
    )?;
    Guid::from_text(&text).with_context(|| format!("LoaderDevicePartUUID {text:?} is not a GUID"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sysfs as the kernel lays it out: /sys/class/block/NAME links into
    /// /sys/devices/…/vda/vda2, and a partition's folder has `partition`.
    fn sysfs(root: &Path) {
        let disk = root.join("sys/devices/pci0000:00/virtio1/block/vda");
        for (name, number) in [("vda1", "1"), ("vda2", "2"), ("vda6", "6")] {
            std::fs::create_dir_all(disk.join(name)).unwrap();
            std::fs::write(disk.join(name).join("partition"), format!("{number}\n")).unwrap();
        }
        let class = root.join("sys/class/block");
        std::fs::create_dir_all(&class).unwrap();
        std::os::unix::fs::symlink(&disk, class.join("vda")).unwrap();
        for name in ["vda1", "vda2", "vda6"] {
            std::os::unix::fs::symlink(disk.join(name), class.join(name)).unwrap();
        }
    }

    #[test]
    fn a_partition_leads_to_its_disk_and_a_number_to_its_device() {
        let dir = tempfile::tempdir().unwrap();
        sysfs(dir.path());
        assert_eq!(
            crate::update::disk_of(dir.path(), Path::new("/dev/vda2")).unwrap(),
            Path::new("/dev/vda")
        );
        let error = crate::update::disk_of(dir.path(), Path::new("/dev/vda")).unwrap_err();
        assert_eq!(error.to_string(), "/dev/vda is not a partition");
        assert_eq!(
            partition_device(dir.path(), Path::new("/dev/vda"), 6).unwrap(),
            Path::new("/dev/vda6")
        );
        let error = partition_device(dir.path(), Path::new("/dev/vda"), 3).unwrap_err();
        assert_eq!(error.to_string(), "/dev/vda has no partition 3");
    }

    #[test]
    fn efi_variables_are_read_past_their_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let vars = dir.path().join("sys/firmware/efi/efivars");
        std::fs::create_dir_all(&vars).unwrap();
        assert!(!secure_boot(dir.path()) && !counted_boot(dir.path()));
        std::fs::write(
            vars.join(format!("SecureBoot-{GLOBAL_GUID}")),
            [6, 0, 0, 0, 1],
        )
        .unwrap();
        let mut path: Vec<u8> = vec![6, 0, 0, 0];
        for unit in "\\EFI\\Linux\\demo_2+2-1.efi".encode_utf16().chain([0]) {
            path.extend(unit.to_le_bytes());
        }
        std::fs::write(
            vars.join(format!("LoaderBootCountPath-{LOADER_GUID}")),
            &path,
        )
        .unwrap();
        let mut uuid: Vec<u8> = vec![6, 0, 0, 0];
        for unit in "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
            .encode_utf16()
            .chain([0])
        {
            uuid.extend(unit.to_le_bytes());
        }
        std::fs::write(
            vars.join(format!("LoaderDevicePartUUID-{LOADER_GUID}")),
            &uuid,
        )
        .unwrap();
        assert!(secure_boot(dir.path()));
        assert!(counted_boot(dir.path()));
        assert_eq!(
            booted_esp(dir.path()).unwrap(),
            Guid::parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
        );
    }
}
