//! Booting the disk image as a host would: OVMF (the UEFI firmware of
//! Debian's ovmf package) from QEMU's flash, its variable store a writable
//! copy, and the disk a writable copy of disk.raw. No -kernel, -initrd or
//! -append: the firmware starts systemd-boot from the EFI system
//! partition, which starts the unified kernel image with the command line
//! sealed in it.

use std::path::{Path, PathBuf};

use crate::BootError;

/// Where Debian's ovmf package puts the firmware.
pub const OVMF_DIR: &str = "/usr/share/OVMF";
/// The firmware code (4 MiB flash), without Secure Boot.
pub const CODE: &str = "OVMF_CODE_4M.fd";
/// Its empty variable store.
pub const VARS: &str = "OVMF_VARS_4M.fd";
/// The firmware code that enforces Secure Boot once keys are enrolled (it
/// needs SMM, so that only the firmware writes its variables).
pub const SECURE_CODE: &str = "OVMF_CODE_4M.secboot.fd";
/// The SecureBoot variable's file under efivarfs: its last byte is 1 when
/// the firmware enforced Secure Boot.
pub const SECURE_BOOT_VARIABLE: &str =
    "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";

/// A UEFI boot's writable files.
#[derive(Clone, Debug)]
pub struct Uefi {
    /// The firmware code (read-only).
    pub code: PathBuf,
    /// The firmware's variable store (a writable copy).
    pub vars: PathBuf,
    /// The disk the machine boots from (a writable copy of disk.raw).
    pub disk: PathBuf,
    /// Whether the firmware enforces Secure Boot (SMM on, the secure flash).
    pub secure: bool,
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
        Ok(Uefi {
            code,
            vars,
            disk,
            secure: false,
        })
    }

    /// As [`Uefi::prepare`], with the firmware that enforces Secure Boot
    /// and, on a machine's first boot, a variable store in which
    /// `virt_fw_vars` (PyPI's virt-firmware) enrolled `keys`' PK, KEK and
    /// db certificates (from `airlock keygen --secure-boot`) and turned
    /// Secure Boot on.
    pub fn prepare_secure(
        firmware: &Path,
        disk_image: &Path,
        dir: &Path,
        keys: &Path,
        virt_fw_vars: &Path,
    ) -> Result<Uefi, BootError> {
        let vars = dir.join("efivars.fd");
        if !vars.exists() {
            let owner = std::fs::read_to_string(keys.join("owner.txt")).map_err(io(keys))?;
            let owner = owner.trim();
            let output = std::process::Command::new(virt_fw_vars)
                .arg("--input")
                .arg(firmware.join(VARS))
                .arg("--output")
                .arg(&vars)
                .arg("--set-pk")
                .arg(owner)
                .arg(keys.join("PK.crt"))
                .arg("--add-kek")
                .arg(owner)
                .arg(keys.join("KEK.crt"))
                .arg("--add-db")
                .arg(owner)
                .arg(keys.join("db.crt"))
                .arg("--secure-boot")
                .output()
                .map_err(|e| BootError::Io {
                    path: virt_fw_vars.to_owned(),
                    source: std::io::Error::new(
                        e.kind(),
                        format!("{e} (pip install virt-firmware)"),
                    ),
                })?;
            if !output.status.success() {
                return Err(BootError::NotAnImage {
                    dir: keys.to_owned(),
                    message: format!(
                        "virt-fw-vars could not enrol the keys: {}",
                        String::from_utf8_lossy(&output.stderr).trim()
                    ),
                });
            }
        }
        let mut uefi = Uefi::prepare(firmware, disk_image, dir)?;
        uefi.code = firmware.join(SECURE_CODE);
        if !uefi.code.is_file() {
            return Err(BootError::NotAnImage {
                dir: firmware.to_owned(),
                message: format!(
                    "no Secure Boot firmware {} (Debian: apt-get install ovmf)",
                    uefi.code.display()
                ),
            });
        }
        uefi.secure = true;
        Ok(uefi)
    }
}

/// Copies `from` to a new `to`, leaving holes where `from` has 1 MiB of
/// zeros.
pub fn sparse_copy(from: &Path, to: &Path) -> Result<(), BootError> {
    let target = airlock_disk::sparse_copy(from, to).map_err(io(to))?;
    target.sync_all().map_err(io(to))
}

/// The QEMU arguments that replace direct kernel boot: the firmware's two
/// flash devices and the disk.
pub(crate) fn args(uefi: &Uefi) -> Vec<String> {
    let value = |path: &Path| path.display().to_string().replace(',', ",,");
    let mut args = Vec::new();
    if uefi.secure {
        args.extend([
            "-global".to_owned(),
            "driver=cfi.pflash01,property=secure,value=on".to_owned(),
        ]);
    }
    args.extend([
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
    ]);
    args
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::{Seek, SeekFrom, Write};

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
