//! Installing onto a host's disk: the partitions of a disk image that was
//! assembled from a verified bundle (and checked to be the build's, byte
//! for byte) written onto a target, a block device or a file, whose /var
//! partition grows to fill it.
//!
//! Every partition before /var sits where the build report puts it, so
//! the EFI system partition, slot A's root and hash tree and the empty
//! slot B are the build's bytes at the build's offsets; only /var's size,
//! and with it the partition tables, follow the target.
//!
//! The order of the writes makes an interrupted install harmless: the old
//! partition tables (both copies) are cleared first, so from the first
//! write on the firmware finds no EFI system partition on the target; then
//! slot A's root and hash tree, then the heads of the partitions that must
//! start empty (slot B, and /var, which the initrd formats only when its
//! first 64 KiB are zero), then the EFI system partition with the boot
//! loader and the UKI (the boot entry), and last the new partition tables,
//! each phase synced before the next. A target cut off before the last
//! write has no partition table and does not boot.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use airlock_disk::gpt::{ALIGN, Layout, types};
use airlock_format::report::Disk;

use crate::BuildError;
use crate::emit::disk;

fn fail(message: impl Into<String>) -> BuildError {
    BuildError::Config {
        what: "install".to_owned(),
        message: message.into(),
    }
}

fn io_error(what: &str) -> impl Fn(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        what: what.to_owned(),
        source,
    }
}

/// The layout written onto a target of `size` bytes: the build report's
/// (`described`), with /var (the last partition) grown to fill the target
/// and the backup table at the target's end.
pub fn plan(described: &Disk, size: u64) -> Result<Layout, BuildError> {
    let mut layout = disk::layout_of(described)?;
    let needed = layout.size;
    let var = layout
        .partitions
        .last_mut()
        .filter(|p| p.spec.kind == types::VAR)
        .ok_or_else(|| fail("the disk's last partition is not /var"))?;
    if size < needed {
        return Err(fail(format!(
            "the target holds {} MiB; the image needs at least {} MiB",
            size >> 20,
            needed.div_ceil(ALIGN)
        )));
    }
    // /var runs to the last whole MiB before the backup table's MiB.
    let end = (size - ALIGN) / ALIGN * ALIGN;
    var.spec.size = end - var.offset();
    // The tables name the target's last sector, wherever it falls.
    layout.size = size / 512 * 512;
    Ok(layout)
}

/// What was written.
#[derive(Debug)]
pub struct Installed {
    /// The layout on the target.
    pub layout: Layout,
    /// Bytes copied from the assembled disk image.
    pub copied: u64,
}

/// The number of bytes [`install`] copies for `layout` (for a progress
/// bar): slot A and the EFI system partition.
pub fn to_copy(layout: &Layout) -> u64 {
    layout.partitions.iter().take(3).map(|p| p.spec.size).sum()
}

/// Writes the disk image `assembled` (laid out as the build report's
/// `described` says) onto `target`, `size` bytes long, in the order the
/// module describes, and syncs it. `progress` is told of every MiB copied.
pub fn install(
    described: &Disk,
    assembled: &Path,
    target: &mut File,
    size: u64,
    progress: &dyn Fn(u64),
) -> Result<Installed, BuildError> {
    let layout = plan(described, size)?;
    let what = "the install target";
    let sync = |target: &mut File| target.sync_all().map_err(io_error(what));
    let mut source = File::open(assembled).map_err(io_error("the assembled disk image"))?;
    let tail = size / 512 * 512 - ALIGN;
    let mut copier = Copier::new(progress);
    copier.clear(target, 0, ALIGN)?;
    copier.clear(target, tail, size - tail)?;
    sync(target)?;
    let (esp, slot_a) = (&layout.partitions[0], &layout.partitions[1..3]);
    for part in slot_a {
        copier.copy(&mut source, target, part.offset(), part.spec.size)?;
    }
    for part in &layout.partitions[3..] {
        copier.clear(target, part.offset(), ALIGN.min(part.spec.size))?;
    }
    copier.copy(&mut source, target, esp.offset(), esp.spec.size)?;
    sync(target)?;
    layout.write_tables(target).map_err(io_error(what))?;
    sync(target)?;
    Ok(Installed {
        copied: copier.copied,
        layout,
    })
}

/// Copies and clears in MiB chunks, leaving alone (and so sparse) what is
/// already zero on the target where the source is zero.
struct Copier<'a> {
    from: Vec<u8>,
    to: Vec<u8>,
    copied: u64,
    progress: &'a dyn Fn(u64),
}

impl<'a> Copier<'a> {
    fn new(progress: &'a dyn Fn(u64)) -> Copier<'a> {
        Copier {
            from: vec![0; ALIGN as usize],
            to: vec![0; ALIGN as usize],
            copied: 0,
            progress,
        }
    }

    /// Copies `len` bytes at `offset` of `source` to the same offset of
    /// `target`.
    fn copy(
        &mut self,
        source: &mut File,
        target: &mut File,
        offset: u64,
        len: u64,
    ) -> Result<(), BuildError> {
        source
            .seek(SeekFrom::Start(offset))
            .map_err(io_error("the assembled disk image"))?;
        let mut at = 0;
        while at < len {
            let n = (len - at).min(ALIGN) as usize;
            source
                .read_exact(&mut self.from[..n])
                .map_err(io_error("the assembled disk image"))?;
            if self.from[..n].iter().all(|&b| b == 0) {
                self.zero(target, offset + at, n)?;
            } else {
                write_at(target, offset + at, &self.from[..n])?;
            }
            at += n as u64;
            self.copied += n as u64;
            (self.progress)(n as u64);
        }
        Ok(())
    }

    /// Makes `len` bytes at `offset` of `target` zero.
    fn clear(&mut self, target: &mut File, offset: u64, len: u64) -> Result<(), BuildError> {
        let mut at = 0;
        while at < len {
            let n = (len - at).min(ALIGN) as usize;
            self.zero(target, offset + at, n)?;
            at += n as u64;
        }
        Ok(())
    }

    /// Writes zeros over `n` bytes at `offset` unless they are zero
    /// already (a hole in a new file stays a hole).
    fn zero(&mut self, target: &mut File, offset: u64, n: usize) -> Result<(), BuildError> {
        let what = "the install target";
        target
            .seek(SeekFrom::Start(offset))
            .map_err(io_error(what))?;
        let mut got = 0;
        while got < n {
            match target.read(&mut self.to[got..n]).map_err(io_error(what))? {
                0 => break,
                k => got += k,
            }
        }
        if got == n && self.to[..n].iter().all(|&b| b == 0) {
            return Ok(());
        }
        self.to[..n].fill(0);
        let zeros = std::mem::take(&mut self.to);
        let written = write_at(target, offset, &zeros[..n]);
        self.to = zeros;
        written
    }
}

fn write_at(target: &mut File, offset: u64, bytes: &[u8]) -> Result<(), BuildError> {
    let what = "the install target";
    target
        .seek(SeekFrom::Start(offset))
        .map_err(io_error(what))?;
    target.write_all(bytes).map_err(io_error(what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_disk::gpt::{Guid, Spec, attributes};
    use airlock_format::report::Artifact;

    const MIB: u64 = ALIGN;

    /// A report's disk: ESP 2 MiB, slot A 3 + 1 MiB, slot B the same, /var
    /// 4 MiB (16 MiB with the tables).
    fn described() -> Disk {
        let guid = |n: u8| Guid::from_big_endian([n; 16]);
        let spec = |kind, n, label: &str, mib, attributes| Spec {
            kind,
            guid: guid(n),
            label: label.to_owned(),
            size: mib * MIB,
            attributes,
        };
        let ro = attributes::READ_ONLY;
        let layout = Layout::new(
            guid(9),
            vec![
                spec(types::ESP, 1, "esp", 2, 0),
                spec(types::ROOT_X86_64, 2, "root-a:x_1", 3, ro),
                spec(types::ROOT_VERITY_X86_64, 3, "verity-a:x_1", 1, ro),
                spec(types::ROOT_X86_64, 4, "root-b:_empty", 3, ro),
                spec(types::ROOT_VERITY_X86_64, 5, "verity-b:_empty", 1, ro),
                spec(types::VAR, 6, "var", 4, 0),
            ],
        )
        .unwrap();
        let artifact = |path: &str| Artifact {
            path: path.to_owned(),
            size: 0,
            sha256: String::new(),
        };
        Disk {
            image: artifact("disk.raw"),
            uki: artifact("uki.efi"),
            boot_loader: artifact("systemd-bootx64.efi"),
            cmdline: String::new(),
            guid: disk::text(layout.disk),
            partitions: disk::described(&layout),
        }
    }

    /// The built disk image: every partition filled with its own byte
    /// (slot B and /var too, which the install must not copy), the
    /// middle MiB of the root zero.
    fn assembled(dir: &Path, disk: &Disk) -> std::path::PathBuf {
        let path = dir.join("disk.raw");
        let size = disk::layout_of(disk).unwrap().size;
        let mut bytes = vec![0u8; size as usize];
        for (i, p) in disk.partitions.iter().enumerate() {
            bytes[p.offset as usize..][..p.size as usize].fill(0x10 + i as u8);
        }
        let root = &disk.partitions[1];
        bytes[(root.offset + MIB) as usize..][..MIB as usize].fill(0);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn read(path: &Path, offset: u64, len: u64) -> Vec<u8> {
        let mut file = File::open(path).unwrap();
        file.seek(SeekFrom::Start(offset)).unwrap();
        let mut bytes = vec![0; len as usize];
        file.read_exact(&mut bytes).unwrap();
        bytes
    }

    /// A used 64 MiB disk: every byte 0xAA, an old GPT header at LBA 1.
    fn used_target(path: &Path) -> File {
        let mut bytes = vec![0xAAu8; 64 << 20];
        bytes[512..520].copy_from_slice(b"EFI PART");
        std::fs::write(path, bytes).unwrap();
        File::options().read(true).write(true).open(path).unwrap()
    }

    #[test]
    fn an_install_copies_slot_a_and_the_esp_clears_the_rest_and_grows_var() {
        let dir = tempfile::tempdir().unwrap();
        let disk = described();
        let source = assembled(dir.path(), &disk);
        let target_path = dir.path().join("target");
        let mut target = used_target(&target_path);
        let size = 64 << 20;
        let installed = install(&disk, &source, &mut target, size, &|_| {}).unwrap();
        assert_eq!(installed.copied, 6 * MIB);
        assert_eq!(to_copy(&installed.layout), 6 * MIB);
        for p in &disk.partitions[..3] {
            assert!(
                read(&target_path, p.offset, p.size) == read(&source, p.offset, p.size),
                "{} is the build's",
                p.label
            );
        }
        for p in &disk.partitions[3..] {
            assert!(
                read(&target_path, p.offset, MIB).iter().all(|&b| b == 0),
                "{} starts empty",
                p.label
            );
        }
        // /var runs to the MiB before the backup table; its offset stays.
        let var = installed.layout.partitions.last().unwrap();
        assert_eq!(var.offset(), disk.partitions[5].offset);
        assert_eq!(var.offset() + var.spec.size, size - MIB);
        // Both headers, the backup at the target's last sector.
        assert_eq!(&read(&target_path, 512, 8), b"EFI PART");
        let backup = read(&target_path, size - 512, 512);
        assert_eq!(&backup[..8], b"EFI PART");
        assert_eq!(
            u64::from_le_bytes(backup[24..32].try_into().unwrap()),
            size / 512 - 1
        );
        // The entry array names /var's new last sector.
        let entries = read(&target_path, 1024, 6 * 128);
        let last_lba = u64::from_le_bytes(entries[5 * 128 + 40..][..8].try_into().unwrap());
        assert_eq!(last_lba, (size - MIB) / 512 - 1);
    }

    #[test]
    fn a_new_file_target_stays_sparse_where_the_image_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let disk = described();
        let source = assembled(dir.path(), &disk);
        let target_path = dir.path().join("target");
        let mut target = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&target_path)
            .unwrap();
        let size = 1 << 30;
        target.set_len(size).unwrap();
        install(&disk, &source, &mut target, size, &|_| {}).unwrap();
        let allocated = std::os::unix::fs::MetadataExt::blocks(&target.metadata().unwrap()) * 512;
        // Slot A and the ESP less the root's zero MiB, and the tables.
        assert!(allocated <= 7 * MIB, "{allocated} bytes allocated");
        let root = &disk.partitions[1];
        assert!(
            read(&target_path, root.offset + MIB, MIB)
                .iter()
                .all(|&b| b == 0)
        );
    }

    #[test]
    fn an_install_cut_off_midway_leaves_no_partition_table() {
        let dir = tempfile::tempdir().unwrap();
        let disk = described();
        let source = assembled(dir.path(), &disk);
        let target_path = dir.path().join("target");
        let mut target = used_target(&target_path);
        let copied = std::cell::Cell::new(0u64);
        let cut = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            install(&disk, &source, &mut target, 64 << 20, &|n| {
                copied.set(copied.get() + n);
                // Cut off once slot A and half the ESP are written.
                assert!(copied.get() < 5 * MIB, "the machine loses power");
            })
        }));
        assert!(cut.is_err());
        assert!(read(&target_path, 0, MIB).iter().all(|&b| b == 0));
        assert!(
            read(&target_path, (64 << 20) - MIB, MIB)
                .iter()
                .all(|&b| b == 0)
        );
    }

    #[test]
    fn a_target_smaller_than_the_image_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let disk = described();
        let source = assembled(dir.path(), &disk);
        let target_path = dir.path().join("target");
        let mut target = used_target(&target_path);
        let error = install(&disk, &source, &mut target, 12 << 20, &|_| {})
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("the target holds 12 MiB; the image needs at least 16 MiB"),
            "{error}"
        );
        assert_eq!(&read(&target_path, 512, 8), b"EFI PART");
    }
}
