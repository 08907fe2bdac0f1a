//! `airlock-host update BUNDLE`: a verified release written into the slot
//! the host does not run from, and a boot entry that systemd-boot tries a
//! few times before it falls back to the running release on its own.
//!
//! The order of the writes keeps the host bootable into the release it
//! runs at every instant, whatever is cut off:
//!
//! 1. the boot entries of anything but the running release leave the EFI
//!    system partition (they could only point at the slot about to be
//!    overwritten, or at a failed attempt), and the ESP is synced;
//! 2. the other slot's partitions are renamed `root-X:_empty`,
//!    `verity-X:_empty` in both partition tables (a slot being written
//!    claims no release);
//! 3. the root and its hash tree are streamed from the bundle into the
//!    slot, every byte hashed on the way against the verified manifest:
//!    what lands on the disk is what was verified, or the slot stays
//!    unnamed and the update fails;
//! 4. the slot gets the release's partition GUIDs (the root hash's halves,
//!    which the new UKI's command line names) and names, in both tables;
//! 5. last, the UKI is written beside the entries as a hidden file, synced
//!    and renamed to `NAME_VERSION+TRIES.efi`: the boot entry, counted.
//!
//! The running slot, its GUIDs and its boot entry are never written. Until
//! the rename, systemd-boot finds nothing new and boots the running
//! release. The release is recorded in the host's state only once it
//! booted good (`airlock-host record`, after `boot-complete.target`); the
//! update leaves `pending.json` in the state folder for that.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use airlock_disk::gpt::{Guid, Layout, types};
use airlock_format::names::{bundle, image as names};
use airlock_format::report::Report;
use airlock_verify::Verified;
use airlock_verify::consume;
use anyhow::Context;
use serde::{Deserialize, Serialize};

/// How many times systemd-boot tries a new release before it falls back.
pub const TRIES: u32 = 3;

/// The largest build report read.
const MAX_REPORT: u64 = 16 << 20;

/// An update refused for what the bundle or the host is, not for an I/O
/// failure: exit status 1.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

fn refuse(message: impl Into<String>) -> anyhow::Error {
    Refused(message.into()).into()
}

/// What to update with, and where.
#[derive(Debug)]
pub struct Update<'a> {
    /// The bundle directory.
    pub bundle: &'a Path,
    /// What verifying it gave.
    pub verified: &'a Verified,
    /// The GUID of the root partition the host runs from (the kernel
    /// command line's `airlock.root=PARTUUID=`).
    pub running_root: Guid,
    /// Where the EFI system partition is mounted, writable.
    pub esp: &'a Path,
    /// Tries before systemd-boot gives the release up.
    pub tries: u32,
    /// Whether the host boots with Secure Boot on (then the bundle must
    /// carry signed boot files).
    pub secure_boot: bool,
    /// The host's state folder (`pending.json` goes there).
    pub state: &'a Path,
}

/// What an update wrote.
#[derive(Debug)]
pub struct Applied {
    /// The slot written (`a` or `b`).
    pub slot: String,
    /// The boot entry's file name in EFI/Linux.
    pub entry: String,
    /// The boot entries removed from the ESP.
    pub removed: Vec<String>,
    /// Bytes written into the slot.
    pub written: u64,
}

/// The release an update is waiting to see boot good.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pending {
    /// The image.
    pub image: String,
    /// Its release number.
    pub version: u64,
    /// The latest time the verification saw (seconds since the epoch).
    pub seen: u64,
}

/// The file that holds it, in the state folder.
pub const PENDING: &str = "pending.json";

/// `root-a:NAME_V` → (`a`, `NAME_V`).
fn slot_label<'l>(label: &'l str, kind: &str) -> Option<(&'l str, &'l str)> {
    label.strip_prefix(kind)?.strip_prefix('-')?.split_once(':')
}

/// The partition of `kind` (`root`, `verity`) in `slot`.
fn slot_partition(layout: &Layout, kind: &str, slot: &str) -> Option<usize> {
    let guid = if kind == "root" {
        types::ROOT_X86_64
    } else {
        types::ROOT_VERITY_X86_64
    };
    layout.partitions.iter().position(|p| {
        p.spec.kind == guid && slot_label(&p.spec.label, kind).is_some_and(|(s, _)| s == slot)
    })
}

/// The new release's root or hash tree partition in its build report
/// (slot A of the disk the build laid out): its GUID and what its name
/// says after `KIND-a:`.
fn described(report: &Report, kind: &str) -> anyhow::Result<(Guid, String)> {
    let disk = report.disk.as_ref().ok_or_else(|| {
        refuse("the bundle carries no disk image: its image was built without \"disk\" in [output] formats")
    })?;
    let part = disk
        .partitions
        .iter()
        .find(|p| slot_label(&p.label, kind).is_some_and(|(s, _)| s == "a"))
        .ok_or_else(|| refuse(format!("the bundle's disk has no {kind}-a partition")))?;
    let guid = Guid::from_text(&part.guid).ok_or_else(|| {
        refuse(format!(
            "the bundle's {kind} GUID {:?} is not a GUID",
            part.guid
        ))
    })?;
    let (_, holds) = slot_label(&part.label, kind).expect("found by its label");
    Ok((guid, holds.to_owned()))
}

/// Writes `layout`'s tables and syncs the disk.
fn write_tables(disk: &mut File, layout: &Layout) -> anyhow::Result<()> {
    layout
        .write_tables(disk)
        .context("writing the partition tables")?;
    disk.sync_all().context("syncing the disk")
}

/// A writer into one partition of the disk that refuses to pass its end
/// and reports what it wrote.
struct Window<'a> {
    disk: &'a mut File,
    at: u64,
    end: u64,
    progress: &'a dyn Fn(u64),
}

impl Write for Window<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.at + bytes.len() as u64 > self.end {
            return Err(std::io::Error::other("larger than the partition"));
        }
        self.disk.seek(SeekFrom::Start(self.at))?;
        let n = self.disk.write(bytes)?;
        self.at += n as u64;
        (self.progress)(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.disk.flush()
    }
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

/// The bytes [`apply`] writes into the slot, for a progress bar.
pub fn to_write(verified: &Verified) -> u64 {
    [names::EROFS, names::VERITY]
        .iter()
        .filter_map(|name| verified.manifest.file(&bundle::artifact(name)))
        .map(|f| f.size)
        .sum()
}

/// What the checks found: where the release goes.
/// A release: an image's name and its version.
type Release = Option<(String, u64)>;

struct Plan {
    /// The disk's partitioning as read.
    layout: Layout,
    /// The running release, when the running slot's name says.
    running: Release,
    /// The slot to write (`a` or `b`) and its root and hash tree
    /// partitions (indexes into `layout`).
    slot: String,
    root: usize,
    verity: usize,
    /// The release's GUIDs and names (after `KIND-X:`) for them.
    names: [(Guid, String); 2],
}

fn is_running(entry: &crate::entries::Entry, running: &Release) -> bool {
    matches!((&entry.image, entry.version, running),
        (Some(image), Some(version), Some((name, v))) if image == name && version == *v)
}

/// The running slot and release: refuses another image's bundle or one
/// not newer than the running release.
fn running(layout: &Layout, update: &Update<'_>) -> anyhow::Result<(usize, String, Release)> {
    let verified = update.verified;
    let index = layout
        .partitions
        .iter()
        .position(|p| p.spec.guid == update.running_root)
        .ok_or_else(|| {
            refuse(format!(
                "the running root partition {} is not on this disk",
                update.running_root
            ))
        })?;
    let (slot, holds) =
        slot_label(&layout.partitions[index].spec.label, "root").ok_or_else(|| {
            refuse("the running root partition is not an airlock slot (root-X:NAME_V)")
        })?;
    let release = crate::entries::release(holds);
    if let Some((name, version)) = &release {
        if *name != verified.name {
            return Err(refuse(format!(
                "this host runs {name}; the bundle is {}: an update keeps the image's name",
                verified.name
            )));
        }
        if verified.version <= *version {
            return Err(refuse(format!(
                "rollback: this host runs {name} {version}; the bundle is version {}",
                verified.version
            )));
        }
    }
    Ok((index, slot.to_owned(), release))
}

/// Every check before the first write.
fn plan(update: &Update<'_>, disk: &mut File) -> anyhow::Result<Plan> {
    let verified = update.verified;
    if !verified.disk {
        return Err(refuse(
            "the bundle carries no disk image: its image was built without \"disk\" in [output] formats",
        ));
    }
    if update.secure_boot && !verified.secure_boot {
        return Err(refuse(
            "this host boots with Secure Boot and the bundle's boot files are not signed (`airlock sign-boot` before `airlock export`)",
        ));
    }
    let report = consume::read_verified(update.bundle, verified, bundle::REPORT, MAX_REPORT)?;
    let report = Report::parse(&report).context("reading the bundle's build report")?;
    let names = [described(&report, "root")?, described(&report, "verity")?];

    let size = disk.seek(SeekFrom::End(0)).context("sizing the disk")?;
    let layout = Layout::read(disk, size).context("reading the disk's partition tables")?;
    let (index, running_slot, running) = running(&layout, update)?;
    let slot = layout
        .partitions
        .iter()
        .enumerate()
        .filter(|(i, p)| *i != index && p.spec.kind == types::ROOT_X86_64)
        .find_map(|(_, p)| slot_label(&p.spec.label, "root").map(|(s, _)| s.to_owned()))
        .filter(|s| *s != running_slot)
        .ok_or_else(|| {
            refuse("the disk has no second slot to update into (built with slot_b = false?)")
        })?;
    let root = slot_partition(&layout, "root", &slot).expect("found above");
    let verity = slot_partition(&layout, "verity", &slot)
        .ok_or_else(|| refuse(format!("slot {slot} has no hash tree partition")))?;
    for (name, part) in [(names::EROFS, root), (names::VERITY, verity)] {
        let path = bundle::artifact(name);
        let file = verified
            .manifest
            .file(&path)
            .ok_or_else(|| refuse(format!("the bundle has no {path}")))?;
        let room = layout.partitions[part].spec.size;
        if file.size > room {
            return Err(refuse(format!(
                "{name} has {} bytes; slot {slot}'s partition holds {room} (set [disk] root_mib for room to grow)",
                file.size
            )));
        }
    }
    let guids = [names[0].0, names[1].0];
    if layout
        .partitions
        .iter()
        .enumerate()
        .any(|(i, p)| i != root && i != verity && guids.contains(&p.spec.guid))
    {
        return Err(refuse(
            "the release's partition GUIDs are already on this disk",
        ));
    }
    let entries = crate::entries::read(update.esp).unwrap_or_default();
    if let Some(trying) = entries.iter().find(|e| {
        is_running(e, &running)
            && matches!(e.assessment, crate::entries::Assessment::Pending { .. })
    }) {
        return Err(refuse(format!(
            "the running release has not booted good yet (EFI/Linux/{} is still being tried): update once it is, so the release it would fall back to is kept",
            trying.file
        )));
    }
    Ok(Plan {
        layout,
        running,
        slot,
        root,
        verity,
        names,
    })
}

fn changed(e: consume::ConsumeError) -> anyhow::Error {
    match e {
        e @ consume::ConsumeError::Changed(_) => refuse(e.to_string()),
        other => anyhow::Error::from(other),
    }
}

/// Writes the verified release into the slot the host does not run from,
/// in the order the module describes. `disk` is the boot disk, opened for
/// reading and writing.
pub fn apply(
    update: &Update<'_>,
    disk: &mut File,
    progress: &dyn Fn(u64),
) -> anyhow::Result<Applied> {
    let verified = update.verified;
    let Plan {
        mut layout,
        running,
        slot,
        root,
        verity,
        names,
    } = plan(update, disk)?;

    // 1. No entry may point at the slot about to be written.
    let linux = update.esp.join("EFI/Linux");
    std::fs::create_dir_all(&linux).with_context(|| format!("writing {}", linux.display()))?;
    let mut removed = Vec::new();
    for entry in crate::entries::read(update.esp).unwrap_or_default() {
        if !is_running(&entry, &running) {
            let path = linux.join(&entry.file);
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            removed.push(entry.file);
        }
    }
    sync_dir(&linux)?;

    // 2. The slot claims no release while it is written.
    for (part, kind) in [(root, "root"), (verity, "verity")] {
        layout.partitions[part].spec.label = format!("{kind}-{slot}:_empty");
    }
    write_tables(disk, &layout)?;

    // 3. The verified bytes, hashed on the way in.
    let mut written = 0;
    for (name, part) in [(names::EROFS, root), (names::VERITY, verity)] {
        let placed = &layout.partitions[part];
        let mut window = Window {
            at: placed.offset(),
            end: placed.offset() + placed.spec.size,
            disk,
            progress,
        };
        written += consume::stream_verified(
            update.bundle,
            verified,
            &bundle::artifact(name),
            &mut window,
        )
        .map_err(changed)?;
    }
    disk.sync_all().context("syncing the disk")?;

    // 4. The release's GUIDs and names.
    for ((part, kind), (guid, holds)) in [(root, "root"), (verity, "verity")].into_iter().zip(names)
    {
        let spec = &mut layout.partitions[part].spec;
        spec.guid = guid;
        spec.label = format!("{kind}-{slot}:{holds}");
    }
    write_tables(disk, &layout)?;

    // 5. The boot entry, counted, last.
    let entry = write_entry(update, &linux)?;
    write_pending(
        update.state,
        &Pending {
            image: verified.name.clone(),
            version: verified.version,
            seen: verified.seen,
        },
    )?;
    Ok(Applied {
        slot,
        entry,
        removed,
        written,
    })
}

/// Writes the UKI into `linux` (EFI/Linux) as a hidden file, syncs it and
/// renames it to the counted entry's name; returns that name.
fn write_entry(update: &Update<'_>, linux: &Path) -> anyhow::Result<String> {
    let verified = update.verified;
    let release = format!("{}_{}", verified.name, verified.version);
    let hidden = linux.join(format!(".{release}.efi.new"));
    let source = if verified.secure_boot {
        format!("{}/{}", bundle::SECURE_BOOT, names::UKI)
    } else {
        bundle::artifact(names::UKI)
    };
    let written = (|| -> anyhow::Result<()> {
        let mut out =
            File::create(&hidden).with_context(|| format!("writing {}", hidden.display()))?;
        consume::stream_verified(update.bundle, verified, &source, &mut out).map_err(changed)?;
        out.sync_all().context("syncing the boot entry")
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&hidden);
        return Err(e);
    }
    let entry = format!("{release}+{}.efi", update.tries);
    std::fs::rename(&hidden, linux.join(&entry)).context("naming the boot entry")?;
    sync_dir(linux)?;
    Ok(entry)
}

/// Writes `pending.json` atomically.
fn write_pending(state: &Path, pending: &Pending) -> anyhow::Result<()> {
    std::fs::create_dir_all(state).with_context(|| format!("writing {}", state.display()))?;
    let side = state.join(format!(".{PENDING}.new"));
    let mut out = File::create(&side).with_context(|| format!("writing {}", side.display()))?;
    serde_json::to_writer_pretty(&mut out, pending)?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(&side, state.join(PENDING))?;
    sync_dir(state)
}

/// The pending release, if an update left one.
pub fn read_pending(state: &Path) -> anyhow::Result<Option<Pending>> {
    let path = state.join(PENDING);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::Error::from(e).context(format!("reading {}", path.display()))),
    }
}

/// The whole disk a partition device belongs to (`/dev/vda2` → `/dev/vda`),
/// through sysfs below `root`.
pub fn disk_of(root: &Path, partition: &Path) -> anyhow::Result<PathBuf> {
    let name = partition
        .file_name()
        .context("a partition device has a name")?;
    let sys = root.join("sys/class/block").join(name);
    let real = std::fs::canonicalize(&sys).with_context(|| format!("reading {}", sys.display()))?;
    anyhow::ensure!(
        real.join("partition").exists(),
        "{} is not a partition",
        partition.display()
    );
    let disk = real
        .parent()
        .and_then(Path::file_name)
        .context("a partition's sysfs folder sits in its disk's")?;
    Ok(Path::new("/dev").join(disk))
}

#[cfg(test)]
mod tests;
