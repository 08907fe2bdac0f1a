//! The disk image: a GPT disk that boots through UEFI, laid out by the
//! Discoverable Partitions Specification.
//!
//! | # | partition | type | GUID | label |
//! |---|---|---|---|---|
//! | 1 | EFI system (FAT32) | ESP | from the inputs | `esp` |
//! | 2 | root, slot A (the EROFS root) | root x86-64 | root hash, first half | `root-a:NAME_VERSION` |
//! | 3 | its dm-verity tree | root-verity x86-64 | root hash, second half | `verity-a:NAME_VERSION` |
//! | 4, 5 | slot B, empty (unless `slot_b = false`) | the same | from the inputs | `root-b:_empty`, `verity-b:_empty` |
//! | 6 | /var, empty until the initrd formats it | var | from the inputs | `var` |
//!
//! The EFI system partition holds systemd-boot (from the locked
//! systemd-boot-efi package, as the removable-media default loader and in
//! EFI/systemd), a loader.conf that boots the newest entry at once and
//! allows no command-line edits, and the unified kernel image in EFI/Linux,
//! where systemd-boot finds it. The UKI's command line names the root and
//! its hash tree by partition GUID, so the initrd opens the partitions the
//! UKI was built with and no other; the kernel gets no command line from
//! anywhere else. Slot A's GUIDs are the root hash's halves, as
//! systemd-repart makes them. Empty partitions are holes in the file.

use std::fs::{self, File};
use std::io::{self, BufReader, Seek, SeekFrom, Write};
use std::path::Path;

use airlock_disk::fat::{self, Content};
use airlock_disk::gpt::{Guid, Layout, Spec, attributes, types};
use airlock_disk::uki::{self, Section};
use airlock_format::names::{cmdline, image as names};
use airlock_format::report::{Artifact, Disk, Partition, Report};
use airlock_recipe::Recipe;
use airlock_store::Store;
use airlock_tree::Tree;

use crate::BuildError;
use crate::configure::read_content;
use crate::pipeline::io;

/// Where the locked systemd-boot-efi package puts the boot loader and the
/// stub.
const BOOT_LOADER: &str = "usr/lib/systemd/boot/efi/systemd-bootx64.efi";
const STUB: &str = "usr/lib/systemd/boot/efi/linuxx64.efi.stub";
const MIB: u64 = 1 << 20;

/// What the disk is made of.
#[derive(Debug)]
pub struct Parts<'a> {
    pub recipe: &'a Recipe,
    pub tree: &'a Tree,
    pub blobs: &'a Store,
    /// The image folder with root.erofs, root.verity, vmlinuz, initrd.img.
    pub out: &'a Path,
    /// The kernel's version.
    pub kernel: &'a str,
    /// The command line of a direct boot (the dm-verity parameters in it).
    pub cmdline: &'a str,
    /// The root hash, hex.
    pub root_hash: &'a str,
    /// The inputs digest, from which the GUIDs and the FAT volume id are
    /// derived.
    pub inputs: &'a airlock_recipe::Sha256,
}

fn fail(message: impl Into<String>) -> BuildError {
    BuildError::Config {
        what: "[output] disk".to_owned(),
        message: message.into(),
    }
}

/// Writes uki.efi and disk.raw into the image folder.
pub fn write(parts: &Parts<'_>) -> Result<Disk, BuildError> {
    let disk_options = parts.recipe.disk.clone().unwrap_or_default();
    let name = format!("{}_{}", parts.recipe.image.name, parts.recipe.image.version);
    let root_hash = hex::decode(parts.root_hash).map_err(|_| fail("the root hash is not hex"))?;
    let (first, second) = root_hash.split_at(16);
    let root_guid = Guid::from_big_endian(first.try_into().expect("sha256 halves"));
    let verity_guid = Guid::from_big_endian(second[..16].try_into().expect("sha256 halves"));
    let var = types::VAR;
    let cmdline = format!(
        "{} {}={}{} {}={}{} {}={}{}",
        parts.cmdline,
        cmdline::ROOT,
        cmdline::PARTUUID,
        text(root_guid),
        cmdline::HASH,
        cmdline::PARTUUID,
        text(verity_guid),
        cmdline::DATA,
        cmdline::PARTTYPE,
        text(var),
    );
    let uki_path = parts.out.join(names::UKI);
    write_uki(parts, &cmdline, &uki_path)?;

    let erofs = parts.out.join(names::EROFS);
    let verity = parts.out.join(names::VERITY);
    let erofs_size = size_of(&erofs)?;
    let root_size = root_size(disk_options.root_mib, erofs_size)?;
    let verity_size = size_of(&verity)?.max(hash_tree_size(root_size.next_multiple_of(MIB)));
    let guid = |what: &str| Guid::from_big_endian(derive(parts, what));
    let label = |kind: &str, slot: &str| bounded(&format!("{kind}-{slot}:"), &name);
    let mut specs = vec![
        spec(
            types::ESP,
            guid("disk-esp"),
            "esp".to_owned(),
            disk_options.esp_mib * MIB,
            0,
        ),
        spec(
            types::ROOT_X86_64,
            root_guid,
            label("root", "a"),
            root_size,
            attributes::READ_ONLY,
        ),
        spec(
            types::ROOT_VERITY_X86_64,
            verity_guid,
            label("verity", "a"),
            verity_size,
            attributes::READ_ONLY,
        ),
    ];
    if disk_options.slot_b {
        specs.push(spec(
            types::ROOT_X86_64,
            guid("disk-root-b"),
            "root-b:_empty".to_owned(),
            root_size,
            attributes::READ_ONLY,
        ));
        specs.push(spec(
            types::ROOT_VERITY_X86_64,
            guid("disk-verity-b"),
            "verity-b:_empty".to_owned(),
            verity_size,
            attributes::READ_ONLY,
        ));
    }
    specs.push(spec(
        var,
        guid("disk-var"),
        "var".to_owned(),
        disk_options.var_mib * MIB,
        0,
    ));
    let layout = Layout::new(guid("disk-guid"), specs).map_err(|e| fail(e.to_string()))?;

    let disk_path = parts.out.join(names::DISK);
    let loader_path = parts.out.join(names::BOOT_LOADER);
    fs::write(&loader_path, image_file(parts, BOOT_LOADER)?)
        .map_err(io(loader_path.display().to_string()))?;
    let esp = &layout.partitions[0];
    let volume = esp_volume(
        parts.inputs,
        parts.recipe.image.epoch,
        esp.offset(),
        esp.spec.size,
    )?;
    let files = Files {
        loader: &loader_path,
        uki: &uki_path,
        root: &erofs,
        verity: &verity,
    };
    write_disk(&layout, &volume, &name, &files, &disk_path)?;
    Ok(Disk {
        image: artifact(&disk_path, names::DISK)?,
        uki: artifact(&uki_path, names::UKI)?,
        boot_loader: artifact(&loader_path, names::BOOT_LOADER)?,
        cmdline,
        guid: text(layout.disk),
        partitions: described(&layout),
    })
}

/// The files a disk image is made of.
#[derive(Debug)]
pub struct Files<'a> {
    /// systemd-boot (unsigned, or signed for Secure Boot).
    pub loader: &'a Path,
    /// The unified kernel image (unsigned, or signed).
    pub uki: &'a Path,
    /// The EROFS root.
    pub root: &'a Path,
    /// Its dm-verity hash tree.
    pub verity: &'a Path,
}

/// Writes the disk image at `path`: the partition tables, the EFI system
/// partition, slot A's root and hash tree; every other byte a hole. The
/// one writer of disk images, for the build and for the far side.
fn write_disk(
    layout: &Layout,
    volume: &fat::Volume,
    name: &str,
    files: &Files<'_>,
    path: &Path,
) -> Result<(), BuildError> {
    let (root, verity) = (&layout.partitions[1], &layout.partitions[2]);
    for (file, partition) in [(files.root, root), (files.verity, verity)] {
        if size_of(file)? > partition.spec.size {
            return Err(fail(format!(
                "{} is larger than its partition {}",
                file.display(),
                partition.spec.label
            )));
        }
    }
    let mut disk = File::create(path).map_err(io(path.display().to_string()))?;
    disk.set_len(layout.size)
        .map_err(io(path.display().to_string()))?;
    layout
        .write_tables(&mut disk)
        .map_err(io(path.display().to_string()))?;
    let esp = &layout.partitions[0];
    write_esp(
        volume,
        name,
        files.loader,
        files.uki,
        esp.offset(),
        &mut disk,
    )?;
    copy_into(files.root, root.offset(), &mut disk)?;
    copy_into(files.verity, verity.offset(), &mut disk)?;
    disk.sync_all().map_err(io(path.display().to_string()))
}

/// The far side's disk image: written from `files` (checked already
/// against a verified manifest) and the layout the build report gives,
/// then hashed and compared with the disk image the build wrote. `files`
/// must be the unsigned systemd-boot and UKI; [`with_boot_files`] swaps
/// in the signed ones afterwards. A disk that differs is removed.
pub fn assemble(report: &Report, files: &Files<'_>, out: &Path) -> Result<(), BuildError> {
    let disk = report
        .disk
        .as_ref()
        .ok_or_else(|| fail("the image has no disk image: add \"disk\" to [output] formats"))?;
    let layout = layout_of(disk)?;
    let (inputs, esp) = (inputs_of(report)?, &layout.partitions[0]);
    let volume = esp_volume(&inputs, report.epoch, esp.offset(), esp.spec.size)?;
    let name = format!("{}_{}", report.name, report.version);
    write_disk(&layout, &volume, &name, files, out)?;
    let (sha256, size) = airlock_store::hash_file(out)?;
    if sha256.to_hex() != disk.image.sha256 || size != disk.image.size {
        let _ = fs::remove_file(out);
        return Err(fail(format!(
            "the disk image assembled from the parts has sha256 {}, not the built one's {}",
            sha256.to_hex(),
            disk.image.sha256
        )));
    }
    Ok(())
}

/// The layout a report's disk describes, checked to place every
/// partition where the report says.
pub(crate) fn layout_of(disk: &Disk) -> Result<Layout, BuildError> {
    let guid = |text: &str| {
        Guid::from_text(text).ok_or_else(|| fail(format!("{text:?} in the report is not a GUID")))
    };
    let mut specs = Vec::with_capacity(disk.partitions.len());
    for p in &disk.partitions {
        let kind = guid(&p.kind)?;
        let read_only = kind == types::ROOT_X86_64 || kind == types::ROOT_VERITY_X86_64;
        specs.push(spec(
            kind,
            guid(&p.guid)?,
            p.label.clone(),
            p.size,
            if read_only { attributes::READ_ONLY } else { 0 },
        ));
    }
    let layout = Layout::new(guid(&disk.guid)?, specs).map_err(|e| fail(e.to_string()))?;
    let expected = [types::ESP, types::ROOT_X86_64, types::ROOT_VERITY_X86_64];
    let kinds: Vec<Guid> = layout.partitions.iter().map(|p| p.spec.kind).collect();
    if kinds.get(..3) != Some(&expected[..]) || described(&layout) != disk.partitions {
        return Err(fail(
            "the report's partitions are not a layout airlock writes",
        ));
    }
    Ok(layout)
}

fn inputs_of(report: &Report) -> Result<airlock_recipe::Sha256, BuildError> {
    report
        .inputs
        .parse()
        .map_err(|_| fail("the report's inputs digest is not sha256"))
}

/// Each slot's root partition: the recipe's size, or the root's own.
fn root_size(root_mib: Option<u64>, erofs_size: u64) -> Result<u64, BuildError> {
    match root_mib {
        None => Ok(erofs_size),
        Some(mib) if mib * MIB >= erofs_size => Ok(mib * MIB),
        Some(mib) => Err(fail(format!(
            "[disk] root_mib = {mib} is smaller than the root ({} MiB)",
            erofs_size.div_ceil(MIB)
        ))),
    }
}

fn spec(kind: Guid, guid: Guid, label: String, size: u64, attributes: u64) -> Spec {
    Spec {
        kind,
        guid,
        label,
        size,
        attributes,
    }
}

/// The report's view of the partitions.
pub(crate) fn described(layout: &Layout) -> Vec<Partition> {
    layout
        .partitions
        .iter()
        .map(|p| Partition {
            label: p.spec.label.clone(),
            kind: text(p.spec.kind),
            guid: text(p.spec.guid),
            offset: p.offset(),
            size: p.spec.size,
        })
        .collect()
}

/// 16 bytes derived from the inputs for one purpose.
fn derive(parts: &Parts<'_>, what: &str) -> [u8; 16] {
    crate::pipeline::derived(parts.inputs, what)[..16]
        .try_into()
        .expect("16 of 32 bytes")
}

/// A GUID as the initrd and the report write it: lower case.
pub(crate) fn text(guid: Guid) -> String {
    guid.to_string().to_ascii_lowercase()
}

/// `prefix` and `name`, the name cut to fit a GPT label.
fn bounded(prefix: &str, name: &str) -> String {
    let room = airlock_disk::gpt::LABEL_UNITS - prefix.len();
    let name: String = name.chars().take(room).collect();
    format!("{prefix}{name}")
}

/// The size of a dm-verity hash tree (4 KiB blocks, sha256) over `data`
/// bytes: every level's blocks, 128 digests to a block.
fn hash_tree_size(data: u64) -> u64 {
    let mut blocks = data.div_ceil(4096);
    let mut total = 0;
    loop {
        blocks = blocks.div_ceil(128);
        total += blocks;
        if blocks <= 1 {
            return total * 4096;
        }
    }
}

fn size_of(path: &Path) -> Result<u64, BuildError> {
    Ok(fs::metadata(path)
        .map_err(io(path.display().to_string()))?
        .len())
}

fn artifact(path: &Path, name: &str) -> Result<Artifact, BuildError> {
    let (sha256, size) = airlock_store::hash_file(path)?;
    Ok(Artifact {
        path: name.to_owned(),
        size,
        sha256: sha256.to_hex(),
    })
}

/// A file of the image, whole (the stub, the boot loader, os-release).
fn image_file(parts: &Parts<'_>, path: &str) -> Result<Vec<u8>, BuildError> {
    match parts.tree.lookup(path) {
        Some((_, node)) => match &node.kind {
            airlock_tree::Kind::File(content) => read_content(parts.blobs, content),
            _ => Err(fail(format!("/{path} in the image is not a file"))),
        },
        None if path.starts_with("usr/lib/systemd/boot") => Err(fail(format!(
            "the image has no /{path}: add systemd-boot-efi to [packages] install"
        ))),
        None => Err(fail(format!("the image has no /{path}"))),
    }
}

/// The unified kernel image: the stub with the os-release (naming the
/// image and its release for the boot menu), the command line, the
/// kernel's version, the initrd and the kernel.
fn write_uki(parts: &Parts<'_>, cmdline: &str, path: &Path) -> Result<(), BuildError> {
    let stub = image_file(parts, STUB)?;
    let mut osrel = image_file(parts, "etc/os-release")?;
    if !osrel.ends_with(b"\n") {
        osrel.push(b'\n');
    }
    osrel.extend(
        format!(
            "IMAGE_ID={}\nIMAGE_VERSION={}\n",
            parts.recipe.image.name, parts.recipe.image.version
        )
        .into_bytes(),
    );
    let file = |name: &str| -> Result<(u64, File), BuildError> {
        let path = parts.out.join(name);
        let file = File::open(&path).map_err(io(path.display().to_string()))?;
        Ok((size_of(&path)?, file))
    };
    let (initrd_len, initrd) = file(names::INITRD)?;
    let (linux_len, linux) = file(names::KERNEL)?;
    let bytes = |name, b: Vec<u8>| Section {
        name,
        len: b.len() as u64,
        content: Box::new(io::Cursor::new(b)),
    };
    let sections = vec![
        bytes(".osrel", osrel),
        bytes(".cmdline", cmdline.as_bytes().to_vec()),
        bytes(".uname", parts.kernel.as_bytes().to_vec()),
        Section {
            name: ".initrd",
            len: initrd_len,
            content: Box::new(BufReader::new(initrd)),
        },
        Section {
            name: ".linux",
            len: linux_len,
            content: Box::new(BufReader::new(linux)),
        },
    ];
    let mut out = io::BufWriter::new(File::create(path).map_err(io(path.display().to_string()))?);
    uki::assemble(&stub, sections, &mut out).map_err(|e| fail(e.to_string()))?;
    out.flush().map_err(io(path.display().to_string()))
}

/// The ESP's FAT parameters: its size and place, the volume id derived
/// from the inputs, the epoch.
fn esp_volume(
    inputs: &airlock_recipe::Sha256,
    epoch: u64,
    offset: u64,
    size: u64,
) -> Result<fat::Volume, BuildError> {
    let id = crate::pipeline::derived(inputs, "disk-fat-volume-id");
    Ok(fat::Volume {
        size,
        id: u32::from_le_bytes([id[0], id[1], id[2], id[3]]),
        label: "ESP".to_owned(),
        hidden_sectors: u32::try_from(offset / airlock_disk::gpt::SECTOR)
            .map_err(|_| fail("the EFI system partition starts past 2 TiB"))?,
        epoch,
    })
}

/// The EFI system partition, written in place on the disk (whose ESP
/// sectors must be zero): systemd-boot as the removable-media loader and
/// in EFI/systemd, the UKI in EFI/Linux, the loader configuration.
fn write_esp(
    volume: &fat::Volume,
    name: &str,
    loader: &Path,
    uki_path: &Path,
    offset: u64,
    disk: &mut File,
) -> Result<(), BuildError> {
    let loader = fs::read(loader).map_err(io(loader.display().to_string()))?;
    let uki_len = size_of(uki_path)?;
    let uki = File::open(uki_path).map_err(io(uki_path.display().to_string()))?;
    let files = vec![
        (
            "EFI/BOOT/BOOTX64.EFI".to_owned(),
            Content::Bytes(loader.clone()),
        ),
        (
            "EFI/systemd/systemd-bootx64.efi".to_owned(),
            Content::Bytes(loader),
        ),
        (
            format!("EFI/Linux/{name}.efi"),
            Content::Reader(uki_len, Box::new(BufReader::new(uki))),
        ),
        (
            "loader/loader.conf".to_owned(),
            Content::Bytes(b"timeout 0\neditor no\n".to_vec()),
        ),
    ];
    let mut window = Window { disk, base: offset };
    fat::write(&mut window, volume, files).map_err(|e| fail(e.to_string()))
}

/// Writes `out`, a sparse copy of the disk image `from` (as `report`
/// describes it) whose EFI system partition holds `loader` and `uki` (the
/// signed systemd-boot and UKI, for Secure Boot) instead of the unsigned
/// ones; every other byte is `from`'s.
pub fn with_boot_files(
    from: &Path,
    report: &Report,
    loader: &Path,
    uki: &Path,
    out: &Path,
) -> Result<(), BuildError> {
    let disk = report
        .disk
        .as_ref()
        .ok_or_else(|| fail("the image has no disk image: add \"disk\" to [output] formats"))?;
    let esp = disk
        .partitions
        .first()
        .filter(|p| p.label == "esp")
        .ok_or_else(|| fail("the disk's first partition is not its ESP"))?;
    let volume = esp_volume(&inputs_of(report)?, report.epoch, esp.offset, esp.size)?;
    let mut target = airlock_disk::sparse_copy_except(from, out, esp.offset..esp.offset + esp.size)
        .map_err(io(out.display().to_string()))?;
    let name = format!("{}_{}", report.name, report.version);
    write_esp(&volume, &name, loader, uki, esp.offset, &mut target)?;
    target.sync_all().map_err(io(out.display().to_string()))
}

/// A file system's view of its partition: offsets from the partition's
/// start.
struct Window<'a> {
    disk: &'a mut File,
    base: u64,
}

impl Write for Window<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.disk.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.disk.flush()
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let at = match to {
            SeekFrom::Start(n) => self.disk.seek(SeekFrom::Start(self.base + n))?,
            other => self.disk.seek(other)?,
        };
        Ok(at - self.base)
    }
}

/// Streams `source` into the disk at `offset`.
fn copy_into(source: &Path, offset: u64, disk: &mut File) -> Result<(), BuildError> {
    let mut reader = BufReader::new(File::open(source).map_err(io(source.display().to_string()))?);
    disk.seek(SeekFrom::Start(offset))
        .map_err(io(source.display().to_string()))?;
    io::copy(&mut reader, disk).map_err(io(source.display().to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_tree_size_counts_every_level() {
        // One data block: one hash block.
        assert_eq!(hash_tree_size(4096), 4096);
        // 128 blocks fill one hash block; 129 need two and a level above.
        assert_eq!(hash_tree_size(128 * 4096), 4096);
        assert_eq!(hash_tree_size(129 * 4096), 3 * 4096);
        // 1 GiB: 262144 blocks, 2048 + 16 + 1 hash blocks.
        assert_eq!(hash_tree_size(1 << 30), (2048 + 16 + 1) * 4096);
    }

    fn report_disk() -> Disk {
        let guid = |n: u8| Guid::from_big_endian([n; 16]);
        let specs = vec![
            spec(types::ESP, guid(1), "esp".to_owned(), 8 * MIB, 0),
            spec(
                types::ROOT_X86_64,
                guid(2),
                "root-a:x_1".to_owned(),
                3 * MIB,
                attributes::READ_ONLY,
            ),
            spec(
                types::ROOT_VERITY_X86_64,
                guid(3),
                "verity-a:x_1".to_owned(),
                MIB,
                attributes::READ_ONLY,
            ),
            spec(types::VAR, guid(4), "var".to_owned(), 4 * MIB, 0),
        ];
        let layout = Layout::new(guid(9), specs).unwrap();
        let artifact = |path: &str| Artifact {
            path: path.to_owned(),
            size: 0,
            sha256: String::new(),
        };
        Disk {
            image: artifact(names::DISK),
            uki: artifact(names::UKI),
            boot_loader: artifact(names::BOOT_LOADER),
            cmdline: String::new(),
            guid: text(layout.disk),
            partitions: described(&layout),
        }
    }

    #[test]
    fn the_far_side_reads_the_layout_back_from_the_report() {
        let disk = report_disk();
        let layout = layout_of(&disk).unwrap();
        assert_eq!(described(&layout), disk.partitions);
        assert_eq!(text(layout.disk), disk.guid);
        assert_eq!(layout.partitions[1].spec.attributes, attributes::READ_ONLY);
        assert_eq!(layout.partitions[3].spec.attributes, 0);
    }

    #[test]
    fn a_report_layout_airlock_does_not_write_is_refused() {
        let mut moved = report_disk();
        moved.partitions[2].offset += MIB;
        let mut reordered = report_disk();
        reordered.partitions.swap(1, 2);
        let mut bad_guid = report_disk();
        bad_guid.partitions[0].guid = "not-a-guid".to_owned();
        for (disk, expected) in [
            (moved, "not a layout airlock writes"),
            (reordered, "not a layout airlock writes"),
            (bad_guid, "\"not-a-guid\" in the report is not a GUID"),
        ] {
            let error = layout_of(&disk).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn labels_keep_their_slot_and_fit_gpt() {
        assert_eq!(bounded("root-a:", "agent-node_3"), "root-a:agent-node_3");
        let long = bounded("verity-a:", &"n".repeat(64));
        assert_eq!(long.len(), 36);
        assert!(long.starts_with("verity-a:nnn"));
    }
}
