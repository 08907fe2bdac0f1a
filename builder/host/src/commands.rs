//! The commands that act on the running host: `update`, `health`,
//! `record`.

use std::fs::File;
use std::path::Path;
use std::process::ExitCode;

use airlock_disk::gpt::Layout;
use anyhow::Context;

use crate::{host, update};

/// Where `update` mounts the ESP when it is not mounted at /efi.
const ESP_MOUNT: &str = "/run/airlock/esp";

/// The host's root: every path below it.
fn root() -> &'static Path {
    Path::new("/")
}

/// `airlock-host update`, after the bundle verified.
pub fn update(
    bundle: &Path,
    verified: &airlock_verify::Verified,
    state: &Path,
    tries: u32,
    esp: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let running_root = host::running_root(root())?;
    let disk_path = host::disk_holding(root(), running_root)?;
    let mut disk = File::options()
        .read(true)
        .write(true)
        .open(&disk_path)
        .with_context(|| format!("opening {}", disk_path.display()))?;
    let (esp, mounted) = match esp {
        Some(dir) => (dir.to_owned(), false),
        None if host::mount_point(Path::new("/efi")) => ("/efi".into(), false),
        None => {
            let device = esp_device(&mut disk, &disk_path)?;
            host::mount_vfat(&device, Path::new(ESP_MOUNT))?;
            (ESP_MOUNT.into(), true)
        }
    };
    eprintln!(
        "updating {} to {} {} ({})",
        disk_path.display(),
        verified.name,
        verified.version,
        esp.display()
    );
    let bar = progress_bar(update::to_write(verified));
    let applied = update::apply(
        &update::Update {
            bundle,
            verified,
            running_root,
            esp: &esp,
            tries,
            secure_boot: host::secure_boot(root()),
            state,
        },
        &mut disk,
        &|n| {
            if let Some(bar) = &bar {
                bar.inc(n);
            }
        },
    );
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let unmounted = if mounted {
        host::unmount(Path::new(ESP_MOUNT))
    } else {
        Ok(())
    };
    let applied = applied?;
    unmounted?;
    for removed in &applied.removed {
        eprintln!("removed the boot entry EFI/Linux/{removed}");
    }
    eprintln!(
        "updated: {} {} is in slot {} ({} bytes), boot entry EFI/Linux/{} with {tries} tries; synced. \
         Reboot to start it: unless it boots good (boot-complete.target), systemd-boot returns to the running release on its own.",
        verified.name, verified.version, applied.slot, applied.written, applied.entry
    );
    Ok(ExitCode::SUCCESS)
}

/// The device of the ESP systemd-boot started from, found in the disk's
/// partition table.
fn esp_device(disk: &mut File, disk_path: &Path) -> anyhow::Result<std::path::PathBuf> {
    use std::io::{Seek, SeekFrom};
    let guid = host::booted_esp(root())?;
    let size = disk.seek(SeekFrom::End(0))?;
    let layout = Layout::read(disk, size).context("reading the disk's partition tables")?;
    let index = layout
        .partitions
        .iter()
        .position(|p| p.spec.guid == guid)
        .with_context(|| {
            format!(
                "the EFI system partition systemd-boot started from ({guid}) is not on {}",
                disk_path.display()
            )
        })?;
    host::partition_device(root(), disk_path, index + 1)
}

fn progress_bar(total: u64) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "writing the slot {bar:40} {bytes}/{total_bytes} {eta}",
        )
        .expect("a valid template"),
    );
    Some(bar)
}

/// A unit's state as systemd reports it.
#[derive(Debug, PartialEq, Eq)]
struct UnitState {
    /// `active`, `activating`, `failed`, `inactive`, …
    active: String,
    /// How often systemd restarted it.
    restarts: String,
}

fn unit_state(unit: &str) -> anyhow::Result<UnitState> {
    let output = std::process::Command::new("systemctl")
        .args([
            "show",
            "--property=ActiveState",
            "--property=NRestarts",
            "--",
        ])
        .arg(unit)
        .output()
        .context("running systemctl show")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_default()
            .to_owned()
    };
    Ok(UnitState {
        active: field("ActiveState"),
        restarts: field("NRestarts"),
    })
}

/// How long a unit must stay active, without a restart, to count.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

/// `airlock-host health UNIT…`: healthy once every unit is active and
/// stays so, not restarted, for [`SETTLE`]; unhealthy as soon as one has
/// failed or is inactive (it was ordered before this check, so it will not
/// start), or when `wait` passes first (a unit still starting, or one that
/// keeps restarting).
pub fn health(units: &[String], wait: std::time::Duration) -> anyhow::Result<ExitCode> {
    let deadline = std::time::Instant::now() + wait;
    let query = || {
        units
            .iter()
            .map(|u| unit_state(u))
            .collect::<anyhow::Result<Vec<_>>>()
    };
    let describe = |states: &[UnitState]| {
        units
            .iter()
            .zip(states)
            .filter(|(_, s)| s.active != "active")
            .map(|(u, s)| format!("{u} is {}", s.active))
            .collect::<Vec<_>>()
    };
    let verdict = loop {
        let states = query()?;
        if states
            .iter()
            .any(|s| s.active == "failed" || s.active == "inactive")
        {
            break Err(describe(&states));
        }
        let active = states.iter().all(|s| s.active == "active");
        if active {
            std::thread::sleep(SETTLE);
            if query()? == states {
                break Ok(());
            }
        }
        if std::time::Instant::now() > deadline {
            break Err(if active {
                vec![format!(
                    "{} did not stay active for {} s",
                    units.join(", "),
                    SETTLE.as_secs()
                )]
            } else {
                describe(&states)
            });
        }
        if !active {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    };
    match verdict {
        Ok(()) => {
            eprintln!("healthy: {} active", units.join(", "));
            Ok(ExitCode::SUCCESS)
        }
        Err(unhealthy) => {
            eprintln!(
                "UNHEALTHY: {}; this boot is not good{}",
                unhealthy.join(", "),
                if host::counted_boot(root()) {
                    " and will not be blessed"
                } else {
                    ""
                }
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// `airlock-host record`: the running release into the rollback state, with
/// the time its update saw when an update left it pending.
pub fn record(state: &Path) -> anyhow::Result<ExitCode> {
    let status = crate::status::read(&crate::status::Paths {
        root: root().to_owned(),
        trust: crate::TRUST.into(),
        state: state.to_owned(),
        esp: Vec::new(),
    });
    let (image, version) = status
        .running
        .as_ref()
        .and_then(|s| Some((s.image.clone()?, s.version?)))
        .context("this system does not run from an airlock slot holding a release")?;
    // The update that installed this release left the time its
    // verification saw; a release that was not installed by an update (the
    // first install) has none.
    let pending = update::read_pending(state)?.filter(|p| p.image == image && p.version == version);
    let seen = pending.as_ref().map_or(0, |p| p.seen);
    let record = airlock_verify::state::record(state, &image, version, seen)
        .with_context(|| format!("recording {image} {version} in {}", state.display()))?;
    if pending.is_some() {
        std::fs::remove_file(state.join(update::PENDING))
            .with_context(|| format!("removing {}", update::PENDING))?;
    }
    eprintln!(
        "recorded {image} {version} as booted good: {} accepts {image} from version {} on",
        state.display(),
        record.version
    );
    Ok(ExitCode::SUCCESS)
}
