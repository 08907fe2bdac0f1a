//! `airlock-host status`: what this host runs and what it trusts, read from
//! the running system only: the kernel command line (which partition the
//! verity root was opened from), the partitions' GPT names (`root-a:NAME_V`,
//! `root-b:_empty`, …, as `airlock install` and the build write them),
//! systemd-boot's `LoaderEntrySelected`, the trust directory under /usr and
//! the rollback state on /var.
//!
//! Every path is read below `root` (`/` on a host), so the tests build a
//! host's /proc, /sys and /dev as a folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use airlock_format::names::cmdline;
use serde::Serialize;

/// The largest text file this reads (a command line, a uevent, a state
/// record).
const MAX_TEXT: u64 = 1 << 20;

/// Where the host keeps what status reads.
#[derive(Clone, Debug)]
pub struct Paths {
    /// `/` on a host.
    pub root: PathBuf,
    /// The trust directory (an absolute path, read below `root`).
    pub trust: PathBuf,
    /// The state directory (likewise).
    pub state: PathBuf,
    /// Where the EFI system partition may be mounted (likewise), the first
    /// that holds `EFI/Linux` counting.
    pub esp: Vec<PathBuf>,
}

impl Paths {
    fn under(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }
}

/// One A/B slot: a root partition and its hash tree's.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Slot {
    /// `a` or `b`.
    pub slot: String,
    /// The image it holds, when it holds one.
    pub image: Option<String>,
    /// Its release number.
    pub version: Option<u64>,
    /// The root partition's device (`/dev/vda2`).
    pub root: String,
    /// The hash tree partition's device, when there is one.
    pub verity: Option<String>,
    /// Whether the running system was booted from it.
    pub running: bool,
}

/// One approver in the trust directory.
#[derive(Debug, Serialize)]
pub struct Approver {
    /// The certificate's fingerprint.
    pub fingerprint: String,
    /// Its first user ID, when it has one.
    pub user_id: Option<String>,
}

/// The trust anchors in force.
#[derive(Debug, Serialize)]
pub struct Anchors {
    /// Where they are.
    pub dir: String,
    /// How many approvers must sign.
    pub threshold: usize,
    /// The release approvers.
    pub approvers: Vec<Approver>,
    /// How many builder keys may sign provenance.
    pub builders: usize,
}

/// The rollback state of one image.
#[derive(Debug, Serialize)]
pub struct Recorded {
    /// The image.
    pub image: String,
    /// The highest version accepted.
    pub version: u64,
    /// The latest time seen (seconds since the epoch).
    pub seen: u64,
}

/// Everything `status` reports.
#[derive(Debug, Serialize)]
pub struct Status {
    /// The running slot's image and release, when the system runs from one.
    pub running: Option<Slot>,
    /// Every slot on the boot disk.
    pub slots: Vec<Slot>,
    /// The boot entry systemd-boot started, when it says.
    pub boot_entry: Option<String>,
    /// The unified kernel images on the EFI system partition with their
    /// boot-counting state, newest first; `None` when it is not mounted.
    pub entries: Option<Vec<crate::entries::Entry>>,
    /// The trust anchors in force, or why there are none.
    pub trust: Result<Anchors, String>,
    /// The rollback state on /var.
    pub state: Vec<Recorded>,
}

/// A small text file below the root, when it is there.
fn text(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut out = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_TEXT)
        .read_to_string(&mut out)
        .ok()?;
    Some(out)
}

/// `KEY=VALUE` on the kernel command line.
fn cmdline_value<'t>(line: &'t str, key: &str) -> Option<&'t str> {
    line.split_whitespace()
        .filter_map(|word| word.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// A partition as sysfs and udev show it.
#[derive(Debug)]
struct Partition {
    /// `vda2`.
    device: String,
    /// Its GPT name.
    name: String,
    /// Its unique GUID (lower case), when udev linked it.
    uuid: Option<String>,
}

fn partitions(paths: &Paths) -> Vec<Partition> {
    // /dev/disk/by-partuuid/GUID -> ../../vda2
    let mut uuids = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(paths.under("/dev/disk/by-partuuid")) {
        for entry in entries.flatten() {
            if let Ok(target) = std::fs::read_link(entry.path())
                && let Some(device) = target.file_name()
            {
                let uuid = entry.file_name().to_string_lossy().to_lowercase();
                uuids.insert(device.to_string_lossy().into_owned(), uuid);
            }
        }
    }
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(paths.under("/sys/class/block")) else {
        return found;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.join("partition").exists() {
            continue;
        }
        let Some(uevent) = text(&dir.join("uevent")) else {
            continue;
        };
        let field = |key: &str| {
            uevent
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_owned)
        };
        let device = field("DEVNAME").unwrap_or_else(|| entry.file_name().to_string_lossy().into());
        found.push(Partition {
            uuid: uuids.get(&device).cloned(),
            name: field("PARTNAME").unwrap_or_default(),
            device,
        });
    }
    found.sort_by(|a, b| a.device.cmp(&b.device));
    found
}

/// `root-a:NAME_VERSION` → (`a`, NAME, VERSION); `root-b:_empty` → (`b`,
/// none, none).
fn slot_name(label: &str, kind: &str) -> Option<(String, Option<(String, u64)>)> {
    let rest = label.strip_prefix(kind)?.strip_prefix('-')?;
    let (slot, holds) = rest.split_once(':')?;
    Some((slot.to_owned(), crate::entries::release(holds)))
}

fn slots(paths: &Paths, running_uuid: Option<&str>) -> Vec<Slot> {
    let parts = partitions(paths);
    let mut slots = Vec::new();
    for part in &parts {
        let Some((slot, release)) = slot_name(&part.name, "root") else {
            continue;
        };
        let verity = parts
            .iter()
            .find(|p| slot_name(&p.name, "verity").is_some_and(|(s, _)| s == slot))
            .map(|p| format!("/dev/{}", p.device));
        let running = running_uuid.is_some() && part.uuid.as_deref() == running_uuid;
        let (image, version) = release.map_or((None, None), |(n, v)| (Some(n), Some(v)));
        slots.push(Slot {
            slot,
            image,
            version,
            root: format!("/dev/{}", part.device),
            verity,
            running,
        });
    }
    slots.sort_by(|a, b| a.slot.cmp(&b.slot));
    slots
}

/// systemd-boot's `LoaderEntrySelected`.
fn boot_entry(paths: &Paths) -> Option<String> {
    crate::host::loader_string(&paths.root, "LoaderEntrySelected")
}

fn anchors(paths: &Paths) -> Result<Anchors, String> {
    let dir = paths.under(&paths.trust.to_string_lossy());
    let trust = airlock_verify::Trust::read(&dir).map_err(|e| e.to_string())?;
    let approvers = trust
        .release
        .iter()
        .map(|cert| Approver {
            fingerprint: cert.fingerprint().to_hex(),
            user_id: cert
                .userids()
                .next()
                .map(|u| String::from_utf8_lossy(u.userid().value()).into_owned()),
        })
        .collect();
    Ok(Anchors {
        dir: paths.trust.display().to_string(),
        threshold: trust.threshold,
        approvers,
        builders: trust.builders.len(),
    })
}

fn state(paths: &Paths) -> Vec<Recorded> {
    let dir = paths.under(&paths.state.to_string_lossy());
    let mut recorded = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return recorded;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(image) = name.strip_suffix(".json") else {
            continue;
        };
        if let Ok(Some(record)) = airlock_verify::state::read(&dir, image) {
            recorded.push(Recorded {
                image: image.to_owned(),
                version: record.version,
                seen: record.seen,
            });
        }
    }
    recorded.sort_by(|a, b| a.image.cmp(&b.image));
    recorded
}

/// Reads the host's status.
pub fn read(paths: &Paths) -> Status {
    let line = text(&paths.under("/proc/cmdline")).unwrap_or_default();
    let running_uuid = cmdline_value(&line, cmdline::ROOT)
        .and_then(|v| v.strip_prefix(cmdline::PARTUUID))
        .map(str::to_lowercase);
    let slots = slots(paths, running_uuid.as_deref());
    let running = slots.iter().find(|s| s.running).cloned();
    Status {
        running,
        slots,
        boot_entry: boot_entry(paths),
        entries: paths
            .esp
            .iter()
            .find_map(|esp| crate::entries::read(&paths.under(&esp.to_string_lossy()))),
        trust: anchors(paths),
        state: state(paths),
    }
}

impl Status {
    /// The report for people.
    pub fn human(&self) -> String {
        let release = |s: &Slot| match (&s.image, s.version) {
            (Some(image), Some(version)) => format!("{image} {version}"),
            _ => "empty".to_owned(),
        };
        let mut out = String::new();
        match &self.running {
            Some(slot) => out += &format!("running: {} from slot {}\n", release(slot), slot.slot),
            None => {
                out += "running: not from an airlock A/B slot (no airlock.root partition on the command line matches one)\n"
            }
        }
        for slot in &self.slots {
            out += &format!(
                "slot {}: {}  ({}{}){}\n",
                slot.slot,
                release(slot),
                slot.root,
                slot.verity
                    .as_deref()
                    .map(|v| format!(", hash tree {v}"))
                    .unwrap_or_default(),
                if slot.running { "  [running]" } else { "" }
            );
        }
        if let Some(entry) = &self.boot_entry {
            out += &format!("boot entry: {entry}\n");
        }
        out += &self.entries_text();
        match &self.trust {
            Ok(anchors) => {
                out += &format!(
                    "trust: {} of {} approvers must sign ({}), {} builder key(s)\n",
                    anchors.threshold,
                    anchors.approvers.len(),
                    anchors.dir,
                    anchors.builders
                );
                for approver in &anchors.approvers {
                    out += &format!(
                        "  approver {}{}\n",
                        approver.fingerprint,
                        approver
                            .user_id
                            .as_deref()
                            .map(|u| format!(" {u}"))
                            .unwrap_or_default()
                    );
                }
            }
            Err(why) => out += &format!("trust: none in force: {why}\n"),
        }
        if self.state.is_empty() {
            out += "state: no release recorded yet\n";
        }
        for record in &self.state {
            out += &format!(
                "state: {} accepted up to version {}, latest time seen {}\n",
                record.image,
                record.version,
                airlock_format::time::format(record.seen)
            );
        }
        out
    }

    /// The boot entries' lines.
    fn entries_text(&self) -> String {
        use crate::entries::Assessment;
        let Some(entries) = &self.entries else {
            return "boot entries: the EFI system partition is not mounted (/efi, /boot, /boot/efi)\n"
                .to_owned();
        };
        let mut out = String::new();
        for entry in entries {
            let state = match entry.assessment {
                Assessment::Good => "good".to_owned(),
                Assessment::Pending { left, done } => {
                    format!("pending: {left} tries left, {done} made")
                }
                Assessment::Failed { done } => {
                    format!("FAILED: no tries left after {done}; systemd-boot fell back")
                }
            };
            out += &format!("boot entry {}: {state}\n", entry.file);
        }
        out
    }

    /// The report for machines.
    pub fn json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("a status serializes");
        value["trust"] = match &self.trust {
            Ok(anchors) => serde_json::to_value(anchors).expect("anchors serialize"),
            Err(why) => serde_json::json!({"error": why}),
        };
        value
    }
}

#[cfg(test)]
mod tests;
