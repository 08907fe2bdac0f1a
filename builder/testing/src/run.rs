//! Running a plan: each machine boots the image (unchanged, with the
//! command channel attached from outside), on its own restricted network,
//! and runs its cases in order; machines run in parallel up to `jobs`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use airlock_boot::machine::{HarnessError, Machine};
use airlock_boot::{Image, Options};

use crate::checks;
use crate::net::{self, Listener};
use crate::spec::{Check, MachinePlan, Plan};

/// How a case ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// It held.
    Passed,
    /// It did not: what was expected, and what was seen.
    Failed {
        /// What the case asked for.
        expected: String,
        /// What the guest showed.
        actual: String,
    },
    /// It could not be checked (the machine did not come up, the channel
    /// broke).
    Error(String),
}

/// One case's result.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// The machine it ran on.
    pub machine: String,
    /// The case.
    pub name: String,
    /// How it ended.
    pub verdict: Verdict,
    /// How long it took.
    pub seconds: f64,
    /// What the guest (or host command) printed for it.
    pub output: String,
}

/// How the runner runs.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Machines at once.
    pub jobs: usize,
    /// Use KVM.
    pub kvm: bool,
    /// Where to keep the logs of machines with a failed case.
    pub keep_failed: Option<PathBuf>,
    /// The command (and first arguments) QEMU runs for each connection the
    /// guest opens to a listener; the listener's address is added as the
    /// last argument, and the command's stdin and stdout are the
    /// connection (`airlock __relay`).
    pub relay: Vec<String>,
    /// The folder host commands run in (the test file's).
    pub base: PathBuf,
    /// Boot the image's disk image through UEFI firmware (OVMF, from this
    /// folder) instead of the kernel directly. The command line is the
    /// one sealed in the UKI, so the channel cannot be attached: the image
    /// must carry it (a unit serving the port `airlock.test`, as test
    /// images do). Each machine gets its own copy of the disk, which holds
    /// /var and is kept across its reboots.
    pub uefi: Option<PathBuf>,
}

/// Runs every machine of `plan` on `image`; `report` sees each result as
/// it comes. Results are in plan order.
pub fn run(
    image: &Image,
    plan: &Plan,
    settings: &Settings,
    report: &(dyn Fn(&CaseResult) + Sync),
) -> Vec<CaseResult> {
    let queue = Mutex::new(plan.machines.iter().enumerate());
    let results: Mutex<Vec<(usize, Vec<CaseResult>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..settings.jobs.clamp(1, plan.machines.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                    let Some((index, machine)) = next else { break };
                    let done = run_machine(image, machine, settings, report);
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((index, done));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().flat_map(|(_, r)| r).collect()
}

/// A booted machine with what its checks need from the host side.
pub(crate) struct Running {
    pub machine: Machine,
    pub listeners: Vec<Listener>,
    /// (guest port, host address) of each forwarded port.
    pub forwards: Vec<(u16, std::net::SocketAddr)>,
    pub pcap: PathBuf,
    pub base: PathBuf,
}

impl Running {
    pub fn allowed(&self) -> net::Allowed {
        net::Allowed {
            listeners: self.listeners.iter().map(|l| l.guest).collect(),
            forwarded: self.forwards.iter().map(|f| f.0).collect(),
        }
    }

    /// `{listen.NAME}` and `{listen.NAME.port}` replaced by the guest's
    /// way to a listener.
    pub fn expand(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for l in &self.listeners {
            out = out.replace(
                &format!("{{listen.{}.port}}", l.name),
                &l.guest.port().to_string(),
            );
            out = out.replace(
                &format!("{{listen.{}.address}}", l.name),
                &l.guest.ip().to_string(),
            );
            out = out.replace(&format!("{{listen.{}}}", l.name), &l.guest.to_string());
        }
        out
    }
}

fn run_machine(
    image: &Image,
    plan: &MachinePlan,
    settings: &Settings,
    report: &(dyn Fn(&CaseResult) + Sync),
) -> Vec<CaseResult> {
    let mut results = Vec::new();
    let mut finish = |case: &str, verdict: Verdict, started: Instant, output: String| {
        let result = CaseResult {
            machine: plan.name.clone(),
            name: case.to_owned(),
            verdict,
            seconds: started.elapsed().as_secs_f64(),
            output,
        };
        report(&result);
        results.push(result);
    };
    let scratch = match tempfile::Builder::new().prefix("airlock-test-").tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            for case in &plan.cases {
                finish(
                    &case.name,
                    Verdict::Error(format!("a scratch folder: {e}")),
                    Instant::now(),
                    String::new(),
                );
            }
            return results;
        }
    };
    let mut running = None;
    let mut boot_error = None;
    for case in &plan.cases {
        let started = Instant::now();
        if running.is_none() && boot_error.is_none() {
            match boot(image, plan, settings, scratch.path()) {
                Ok(r) => running = Some(r),
                Err(e) => boot_error = Some(e),
            }
        }
        let Some(machine) = running.as_mut() else {
            let why = boot_error.clone().unwrap_or_default();
            finish(&case.name, Verdict::Error(why), started, String::new());
            continue;
        };
        if case.check == Check::Reboot {
            let Some(machine) = running.take() else {
                continue;
            };
            let (verdict, output) = reboot(machine, case.timeout);
            finish(&case.name, verdict, started, output);
            continue;
        }
        let (verdict, output) = match checks::check(machine, case) {
            Ok(done) => done,
            Err(HarnessError::Timeout { what, seconds, .. }) => (
                Verdict::Failed {
                    expected: format!("done within {seconds} s"),
                    actual: format!("still waiting for {what}"),
                },
                String::new(),
            ),
            Err(e) => (Verdict::Error(e.to_string()), String::new()),
        };
        finish(&case.name, verdict, started, output);
    }
    let failed = results.iter().any(|r| r.verdict != Verdict::Passed);
    if let (true, Some(keep)) = (failed, &settings.keep_failed) {
        let dir = keep.join(&plan.name);
        if let Err(e) = keep_logs(&dir, running.as_mut(), &results, scratch.path()) {
            eprintln!("airlock: keeping the logs in {}: {e}", dir.display());
        }
    }
    results
}

fn boot(
    image: &Image,
    plan: &MachinePlan,
    settings: &Settings,
    scratch: &Path,
) -> Result<Running, String> {
    let spec = &plan.spec;
    let mut listeners = Vec::new();
    let mut guest_forward = Vec::new();
    for listen in &spec.listen {
        let guest = match listen {
            crate::spec::ListenSpec::Name(_) => None,
            crate::spec::ListenSpec::At { guest, .. } => Some(*guest),
        };
        let listener = Listener::start(listen.name(), guest)
            .map_err(|e| format!("listener {}: {e}", listen.name()))?;
        let mut argv: Vec<String> = settings.relay.iter().map(|a| shell_quote(a)).collect();
        argv.push(listener.address.to_string());
        guest_forward.push((listener.guest, argv.join(" ")));
        listeners.push(listener);
    }
    let mut forwards = Vec::new();
    for guest in &spec.forward {
        let host = net::free_port().map_err(|e| format!("a free port: {e}"))?;
        forwards.push((*guest, std::net::SocketAddr::from(([127, 0, 0, 1], host))));
    }
    let pcap = scratch.join(format!("network-{}.pcap", next_boot(scratch)));
    let uefi = match &settings.uefi {
        None => None,
        Some(firmware) => {
            let disk = image.disk.as_ref().ok_or(
                "the image has no disk image for a UEFI boot: add \"disk\" to [output] formats",
            )?;
            let dir = scratch.join("uefi");
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            Some(
                airlock_boot::uefi::Uefi::prepare(
                    firmware,
                    &image.dir.join(&disk.image.path),
                    &dir,
                )
                .map_err(|e| e.to_string())?,
            )
        }
    };
    let options = Options {
        memory_mib: spec.memory,
        cpus: spec.cpus,
        kvm: settings.kvm,
        data: (spec.data && uefi.is_none()).then(|| scratch.join("var.raw")),
        attach_channel: uefi.is_none(),
        uefi,
        restrict: true,
        guest_forward,
        forward: forwards.iter().map(|(g, h)| (h.port(), *g)).collect(),
        network_dump: Some(pcap.clone()),
        ..Options::default()
    };
    let budget: u64 =
        plan.cases.iter().map(|c| c.timeout + 15).sum::<u64>() + spec.boot_timeout + 60;
    let mut machine =
        Machine::boot(image, options, Duration::from_secs(budget)).map_err(|e| e.to_string())?;
    if let Err(e) = machine.connect(Duration::from_secs(spec.boot_timeout)) {
        // Kept with the logs: why it did not come up is on its console.
        let _ = std::fs::write(
            scratch.join("console-of-the-failed-boot.log"),
            machine.console(),
        );
        let qemu = machine.qemu_stderr();
        return Err(format!(
            "the machine did not come up: {e}{}",
            if qemu.is_empty() {
                String::new()
            } else {
                format!("; QEMU: {}", qemu.trim())
            }
        ));
    }
    Ok(Running {
        machine,
        listeners,
        forwards,
        pcap,
        base: settings.base.clone(),
    })
}

/// Counts the boots in a machine's scratch folder (one pcap each).
fn next_boot(scratch: &Path) -> usize {
    std::fs::read_dir(scratch)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("network-"))
                .count()
        })
        .unwrap_or(0)
        + 1
}

fn reboot(running: Running, timeout: u64) -> (Verdict, String) {
    match running.machine.reboot(Duration::from_secs(timeout)) {
        Ok(_) => (Verdict::Passed, String::new()),
        Err(e) => (
            Verdict::Failed {
                expected: "the guest goes down for a reboot".to_owned(),
                actual: e.to_string(),
            },
            String::new(),
        ),
    }
}

fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-:".contains(&b))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The console, the guest's journal (when the channel still answers), the
/// network dumps and each case's output, into `dir`.
fn keep_logs(
    dir: &Path,
    running: Option<&mut Running>,
    results: &[CaseResult],
    scratch: &Path,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if let Some(running) = running {
        std::fs::write(dir.join("console.log"), running.machine.console())?;
        let journal = running
            .machine
            .run(
                "journalctl -b --no-pager -o short-monotonic",
                Duration::from_secs(60),
            )
            .map_or_else(
                |e| format!("(the journal could not be read: {e})"),
                |o| o.output,
            );
        std::fs::write(dir.join("journal.txt"), journal)?;
    }
    for entry in std::fs::read_dir(scratch)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".pcap") || name.ends_with(".log") {
            std::fs::copy(entry.path(), dir.join(entry.file_name()))?;
        }
    }
    let mut cases = String::new();
    for r in results {
        cases.push_str(&format!(
            "== {} ({:.1} s): {:?}\n{}\n\n",
            r.name, r.seconds, r.verdict, r.output
        ));
    }
    std::fs::write(dir.join("cases.txt"), cases)
}
