//! Booting the disk image as a host would: OVMF (the UEFI firmware of
//! Debian's ovmf package) from QEMU's flash, its variable store a writable
//! copy, and the disk a writable copy of disk.raw. No -kernel, -initrd or
//! -append: the firmware starts systemd-boot from the EFI system
//! partition, which starts the unified kernel image with the command line
//! sealed in it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::BootError;

/// Where Debian's ovmf package puts the firmware.
pub const OVMF_DIR: &str = "/usr/share/OVMF";
/// The firmware code (4 MiB flash), without Secure Boot.
pub const CODE: &str = "OVMF_CODE_4M.fd";
/// Its empty variable store.
pub const VARS: &str = "OVMF_VARS_4M.fd";

/// A UEFI boot's writable files.
#[derive(Clone, Debug)]
pub struct Uefi {
    /// The firmware code (read-only).
    pub code: PathBuf,
    /// The firmware's variable store (a writable copy).
    pub vars: PathBuf,
    /// The disk the machine boots from (a writable copy of disk.raw).
    pub disk: PathBuf,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BootError + '_ {
    move |source| BootError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Uefi {
    /// The firmware from `firmware` (OVMF_DIR) and, in `dir`, the disk
    /// copied from `disk_image` and the variable store copied from the
    /// firmware's, each only when it is not there yet: a machine booted
    /// again from the same `dir` finds its /var and its variables.
    pub fn prepare(firmware: &Path, disk_image: &Path, dir: &Path) -> Result<Uefi, BootError> {
        let code = firmware.join(CODE);
        let template = firmware.join(VARS);
        for path in [&code, &template] {
            if !path.is_file() {
                return Err(BootError::NotAnImage {
                    dir: firmware.to_owned(),
                    message: format!(
                        "no UEFI firmware {} (Debian: apt-get install ovmf)",
                        path.display()
                    ),
                });
            }
        }
        let vars = dir.join("efivars.fd");
        if !vars.exists() {
            std::fs::copy(&template, &vars).map_err(io(&vars))?;
        }
        let disk = dir.join("disk.raw");
        if !disk.exists() {
            sparse_copy(disk_image, &disk)?;
        }
        Ok(Uefi { code, vars, disk })
    }
}

/// Copies `from` to a new `to`, leaving holes where `from` has 1 MiB of
/// zeros (a disk image is mostly empty partitions).
pub fn sparse_copy(from: &Path, to: &Path) -> Result<(), BootError> {
    let mut source = File::open(from).map_err(io(from))?;
    let len = source.metadata().map_err(io(from))?.len();
    let mut target = File::create_new(to).map_err(io(to))?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < len {
        let want = buffer.len().min((len - at) as usize);
        source.read_exact(&mut buffer[..want]).map_err(io(from))?;
        if buffer[..want].iter().any(|b| *b != 0) {
            target.seek(SeekFrom::Start(at)).map_err(io(to))?;
            target.write_all(&buffer[..want]).map_err(io(to))?;
        }
        at += want as u64;
    }
    target.set_len(len).map_err(io(to))?;
    target.sync_all().map_err(io(to))
}

/// The QEMU arguments that replace direct kernel boot: the firmware's two
/// flash devices and the disk.
pub(crate) fn args(uefi: &Uefi) -> Vec<String> {
    let value = |path: &Path| path.display().to_string().replace(',', ",,");
    vec![
        "-drive".to_owned(),
        format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={}",
            value(&uefi.code)
        ),
        "-drive".to_owned(),
        format!("if=pflash,format=raw,unit=1,file={}", value(&uefi.vars)),
        "-drive".to_owned(),
        format!(
            "file={},format=raw,if=virtio,cache=unsafe",
            value(&uefi.disk)
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparse_copy_has_the_same_bytes_and_holes_where_zeros_were() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        let mut file = File::create(&from).unwrap();
        file.set_len(8 << 20).unwrap();
        file.seek(SeekFrom::Start(3 << 20)).unwrap();
        file.write_all(b"partition table").unwrap();
        file.seek(SeekFrom::Start((8 << 20) - 3)).unwrap();
        file.write_all(b"end").unwrap();
        drop(file);
        let to = dir.path().join("to");
        sparse_copy(&from, &to).unwrap();
        assert!(std::fs::read(&from).unwrap() == std::fs::read(&to).unwrap());
        use std::os::unix::fs::MetadataExt;
        let blocks = std::fs::metadata(&to).unwrap().blocks() * 512;
        assert!(
            blocks <= 3 << 20,
            "{blocks} bytes allocated for 2 MiB of data"
        );
        assert!(
            sparse_copy(&from, &to).is_err(),
            "never over an existing file"
        );
    }

    #[test]
    fn missing_firmware_names_the_package() {
        let dir = tempfile::tempdir().unwrap();
        let error = Uefi::prepare(dir.path(), &dir.path().join("d"), dir.path()).unwrap_err();
        assert!(
            error.to_string().contains("apt-get install ovmf"),
            "{error}"
        );
    }
}
