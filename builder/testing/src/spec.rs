//! The test file: TOML, read strictly (unknown keys are errors, with their
//! line and column), then checked into a [`Plan`]: machines, and for each
//! its cases in file order, each one [`Check`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The machine a case runs on when it names none.
pub const MAIN: &str = "main";

/// Why a test file is refused.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Not TOML, or a key or value the schema does not have.
    #[error("{file}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// toml's message, with the line and column.
        message: String,
    },
    /// A case or machine that does not make sense.
    #[error("{file}: {what}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// Which case or machine.
        what: String,
        /// Why.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    schema: u32,
    #[serde(default)]
    machine: BTreeMap<String, MachineSpec>,
    #[serde(default)]
    case: Vec<RawCase>,
}

/// How a machine is booted.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineSpec {
    /// Guest memory in MiB.
    #[serde(default = "default_memory")]
    pub memory: u32,
    /// Virtual CPUs.
    #[serde(default = "default_cpus")]
    pub cpus: u32,
    /// Give the machine a fresh writable disk for /var (kept across the
    /// machine's reboots); without one /var is a tmpfs.
    #[serde(default)]
    pub data: bool,
    /// How long the guest may take until its command channel answers, in
    /// seconds.
    #[serde(default = "default_boot_timeout")]
    pub boot_timeout: u64,
    /// Host listeners the guest may reach: each listens on 127.0.0.1 on a
    /// port the runner picks, and the guest reaches it at 10.0.2.100:PORT
    /// (a name alone) or at the address the entry gives
    /// (`{ name = "api", guest = "10.0.2.2:8080" }`, for images whose
    /// configuration names a fixed address); commands name it
    /// `{listen.NAME}` (`ADDRESS:PORT`), `{listen.NAME.address}` and
    /// `{listen.NAME.port}`.
    #[serde(default)]
    pub listen: Vec<ListenSpec>,
    /// Guest TCP ports the host may connect to (through a forwarded port
    /// on 127.0.0.1 the runner picks).
    #[serde(default)]
    pub forward: Vec<u16>,
}

/// A host listener: a name, or a name and the guest-side address.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum ListenSpec {
    /// Reached at 10.0.2.100 on the host port.
    Name(String),
    /// Reached at `guest` (IPv4:PORT in 10.0.2.0/24).
    At {
        /// Its name.
        name: String,
        /// Where the guest connects.
        guest: std::net::SocketAddrV4,
    },
}

impl ListenSpec {
    /// Its name.
    pub fn name(&self) -> &str {
        match self {
            ListenSpec::Name(name) | ListenSpec::At { name, .. } => name,
        }
    }
}

fn default_memory() -> u32 {
    1024
}
fn default_cpus() -> u32 {
    2
}
fn default_boot_timeout() -> u64 {
    600
}

impl Default for MachineSpec {
    fn default() -> Self {
        MachineSpec {
            memory: default_memory(),
            cpus: default_cpus(),
            data: false,
            boot_timeout: default_boot_timeout(),
            listen: Vec::new(),
            forward: Vec::new(),
        }
    }
}

/// How a text is matched.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// The whole text (trailing newlines ignored).
    pub equals: Option<String>,
    /// Contains each of these.
    #[serde(default)]
    pub contains: Vec<String>,
    /// Contains none of these.
    #[serde(default)]
    pub lacks: Vec<String>,
    /// Matches this regular expression (Rust `regex` syntax, searched
    /// anywhere; anchor it with `^…$` and `(?m)` as needed).
    pub regex: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    #[serde(default)]
    machine: Option<String>,
    timeout: Option<u64>,
    // run
    run: Option<String>,
    status: Option<i32>,
    stdout: Option<Match>,
    stderr: Option<Match>,
    // unit
    unit: Option<String>,
    state: Option<String>,
    system: Option<String>,
    no_failed_units: Option<bool>,
    // file
    file: Option<String>,
    present: Option<bool>,
    mode: Option<String>,
    owner: Option<String>,
    group: Option<String>,
    sha256: Option<String>,
    read_only: Option<bool>,
    // network
    listener: Option<String>,
    heard: Option<bool>,
    port: Option<u16>,
    reachable: Option<bool>,
    send: Option<String>,
    expect: Option<String>,
    no_packets: Option<bool>,
    // boot
    multi_user_within: Option<f64>,
    console: Option<Match>,
    // escape hatch and machine lifecycle
    host: Option<Vec<String>>,
    reboot: Option<bool>,
}

/// A unit state `systemctl is-active` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitState {
    /// `active`.
    Active,
    /// `failed`.
    Failed,
    /// `inactive`.
    Inactive,
}

impl UnitState {
    /// The word systemctl prints.
    pub fn word(self) -> &'static str {
        match self {
            UnitState::Active => "active",
            UnitState::Failed => "failed",
            UnitState::Inactive => "inactive",
        }
    }
}

/// What a file must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCheck {
    /// Absolute path in the guest.
    pub path: String,
    /// Whether it exists (false: the other keys must be absent).
    pub present: bool,
    /// Octal permission bits, as `stat -c %a` prints them (e.g. "4755").
    pub mode: Option<String>,
    /// Owner's name.
    pub owner: Option<String>,
    /// Group's name.
    pub group: Option<String>,
    /// Content digest.
    pub sha256: Option<String>,
    /// Whether writing to it must fail (true) or work (false).
    pub read_only: Option<bool>,
}

/// One case's check.
#[derive(Clone, Debug, PartialEq)]
pub enum Check {
    /// A command in the guest (bash, as root).
    Run {
        /// The script.
        script: String,
        /// Its exit status.
        status: i32,
        /// Its standard output.
        stdout: Option<Match>,
        /// Its standard error.
        stderr: Option<Match>,
    },
    /// A unit's state.
    Unit {
        /// The unit.
        unit: String,
        /// The state it must be in.
        state: UnitState,
    },
    /// `systemctl is-system-running --wait` prints this.
    System(String),
    /// `systemctl --failed` lists nothing.
    NoFailedUnits,
    /// A file.
    File(FileCheck),
    /// A host listener heard (or did not hear) from the guest while the
    /// optional command ran.
    Heard {
        /// The listener.
        listener: String,
        /// Whether it must.
        heard: bool,
        /// Run in the guest first.
        run: Option<String>,
    },
    /// The host can (or cannot) reach a forwarded guest port.
    Reach {
        /// The guest port (one of the machine's `forward`).
        port: u16,
        /// Whether it must.
        reachable: bool,
        /// Sent after connecting.
        send: Option<String>,
        /// Must arrive (default: any byte).
        expect: Option<String>,
    },
    /// No packet left the guest since it started, except ARP and traffic
    /// with the declared listeners and forwarded ports.
    NoPackets,
    /// multi-user.target was reached within this many seconds of the
    /// kernel starting.
    MultiUserWithin(f64),
    /// The serial console so far.
    Console(Match),
    /// A host-side command, given the machine (see docs/testing.md).
    Host(Vec<String>),
    /// Reboot the machine (the next cases run on the new boot).
    Reboot,
}

/// A case: its name and check.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// Its name (unique in the file).
    pub name: String,
    /// How long it may take, in seconds.
    pub timeout: u64,
    /// What it checks.
    pub check: Check,
}

/// A machine and the cases that run on it, in order.
#[derive(Clone, Debug)]
pub struct MachinePlan {
    /// Its name.
    pub name: String,
    /// How it boots.
    pub spec: MachineSpec,
    /// Its cases.
    pub cases: Vec<Case>,
}

/// A checked test file.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Machines with at least one case, in name order.
    pub machines: Vec<MachinePlan>,
}

impl Plan {
    /// Every case.
    pub fn case_count(&self) -> usize {
        self.machines.iter().map(|m| m.cases.len()).sum()
    }
}

/// Reads and checks a test file.
pub fn load(path: &Path) -> Result<Plan, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|e| SpecError::Syntax {
        file: path.display().to_string(),
        message: e.to_string(),
    })?;
    parse(&path.display().to_string(), &text)
}

/// Parses and checks a test file's text (`file` names it in errors).
pub fn parse(file: &str, text: &str) -> Result<Plan, SpecError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| SpecError::Syntax {
        file: file.to_owned(),
        message: e.to_string(),
    })?;
    let invalid = |what: &str, message: String| SpecError::Invalid {
        file: file.to_owned(),
        what: what.to_owned(),
        message,
    };
    if raw.schema != 1 {
        return Err(invalid(
            "schema",
            format!("{} is not a schema this airlock reads (1)", raw.schema),
        ));
    }
    if raw.case.is_empty() {
        return Err(invalid("case", "the file has no [[case]]".to_owned()));
    }
    let mut machines: BTreeMap<String, MachinePlan> = BTreeMap::new();
    for (name, spec) in &raw.machine {
        check_machine(name, spec).map_err(|m| invalid(&format!("machine {name:?}"), m))?;
    }
    let mut names = std::collections::BTreeSet::new();
    for raw_case in raw.case {
        let what = format!("case {:?}", raw_case.name);
        if raw_case.name.trim().is_empty() {
            return Err(invalid("case", "a case has an empty name".to_owned()));
        }
        if !names.insert(raw_case.name.clone()) {
            return Err(invalid(&what, "two cases have this name".to_owned()));
        }
        let machine = raw_case.machine.clone().unwrap_or_else(|| MAIN.to_owned());
        let spec = match raw.machine.get(&machine) {
            Some(spec) => spec.clone(),
            None if machine == MAIN => MachineSpec::default(),
            None => {
                return Err(invalid(
                    &what,
                    format!("no [machine.{machine}] declares the machine it names"),
                ));
            }
        };
        let case = check_case(raw_case, &spec).map_err(|m| invalid(&what, m))?;
        machines
            .entry(machine.clone())
            .or_insert_with(|| MachinePlan {
                name: machine,
                spec,
                cases: Vec::new(),
            })
            .cases
            .push(case);
    }
    Ok(Plan {
        machines: machines.into_values().collect(),
    })
}

fn check_machine(name: &str, spec: &MachineSpec) -> Result<(), String> {
    let word = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !word(name) {
        return Err("machine names are letters, digits, - and _ (at most 64)".to_owned());
    }
    if let Some(bad) = spec.listen.iter().find(|l| !word(l.name())) {
        return Err(format!(
            "listener {:?}: names are letters, digits, - and _",
            bad.name()
        ));
    }
    for listen in &spec.listen {
        if let ListenSpec::At { name, guest } = listen
            && (guest.ip().octets()[..3] != [10, 0, 2]
                || guest.port() == 0
                || guest.ip().octets()[3] == 15)
        {
            return Err(format!(
                "listener {name:?}: the guest address is in 10.0.2.0/24, not the guest's own 10.0.2.15, with a port"
            ));
        }
    }
    if !(128..=65536).contains(&spec.memory) || !(1..=64).contains(&spec.cpus) {
        return Err("memory is 128..65536 MiB and cpus 1..64".to_owned());
    }
    if spec.boot_timeout == 0 || spec.boot_timeout > 3600 {
        return Err("boot_timeout is 1..3600 seconds".to_owned());
    }
    if spec.forward.contains(&0) {
        return Err("forward: port 0".to_owned());
    }
    Ok(())
}

/// The keys a case has, for telling which check it is.
fn check_kind(raw: &RawCase) -> Result<&'static str, String> {
    let kinds = [
        ("unit", raw.unit.is_some()),
        ("system", raw.system.is_some()),
        ("no_failed_units", raw.no_failed_units.is_some()),
        ("file", raw.file.is_some()),
        ("listener", raw.listener.is_some()),
        ("port", raw.port.is_some()),
        ("no_packets", raw.no_packets.is_some()),
        ("multi_user_within", raw.multi_user_within.is_some()),
        ("console", raw.console.is_some()),
        ("host", raw.host.is_some()),
        ("reboot", raw.reboot.is_some()),
    ];
    let present: Vec<&str> = kinds.iter().filter(|k| k.1).map(|k| k.0).collect();
    match (present.as_slice(), raw.run.is_some()) {
        ([], true) => Ok("run"),
        ([], false) => Err("says nothing to check: give one of run, unit, system, \
                            no_failed_units, file, listener, port, no_packets, \
                            multi_user_within, console, host, reboot"
            .to_owned()),
        ([one], _) => Ok(one),
        (many, _) => Err(format!(
            "gives {} checks ({}); a case checks one thing",
            many.len(),
            many.join(", ")
        )),
    }
}

fn check_case(raw: RawCase, spec: &MachineSpec) -> Result<Case, String> {
    let kind = check_kind(&raw)?;
    let allowed: &[&str] = match kind {
        "run" => &["status", "stdout", "stderr"],
        "unit" => &["state"],
        "file" => &["present", "mode", "owner", "group", "sha256", "read_only"],
        "listener" => &["heard", "run"],
        "port" => &["reachable", "send", "expect"],
        _ => &[],
    };
    let extras = [
        ("run", raw.run.is_some() && kind != "run"),
        ("status", raw.status.is_some()),
        ("stdout", raw.stdout.is_some()),
        ("stderr", raw.stderr.is_some()),
        ("state", raw.state.is_some()),
        ("present", raw.present.is_some()),
        ("mode", raw.mode.is_some()),
        ("owner", raw.owner.is_some()),
        ("group", raw.group.is_some()),
        ("sha256", raw.sha256.is_some()),
        ("read_only", raw.read_only.is_some()),
        ("heard", raw.heard.is_some()),
        ("reachable", raw.reachable.is_some()),
        ("send", raw.send.is_some()),
        ("expect", raw.expect.is_some()),
    ];
    if let Some((key, _)) = extras
        .iter()
        .find(|(key, given)| *given && !allowed.contains(key))
    {
        return Err(format!("{key} does not go with a {kind} check"));
    }
    for m in [&raw.stdout, &raw.stderr, &raw.console]
        .into_iter()
        .flatten()
    {
        check_match(m)?;
    }
    let check = build_check(kind, &raw, spec)?;
    let timeout = raw.timeout.unwrap_or(60);
    if timeout == 0 || timeout > 3600 {
        return Err("timeout is 1..3600 seconds".to_owned());
    }
    Ok(Case {
        name: raw.name,
        timeout,
        check,
    })
}

fn check_match(m: &Match) -> Result<(), String> {
    if m.equals.is_none() && m.contains.is_empty() && m.lacks.is_empty() && m.regex.is_none() {
        return Err("a match needs equals, contains, lacks or regex".to_owned());
    }
    if let Some(pattern) = &m.regex {
        regex::Regex::new(pattern).map_err(|e| format!("regex {pattern:?}: {e}"))?;
    }
    Ok(())
}

fn build_check(kind: &str, raw: &RawCase, spec: &MachineSpec) -> Result<Check, String> {
    Ok(match kind {
        "run" => Check::Run {
            script: raw.run.clone().unwrap_or_default(),
            status: raw.status.unwrap_or(0),
            stdout: raw.stdout.clone(),
            stderr: raw.stderr.clone(),
        },
        "unit" => Check::Unit {
            unit: raw.unit.clone().unwrap_or_default(),
            state: match raw.state.as_deref().unwrap_or("active") {
                "active" => UnitState::Active,
                "failed" => UnitState::Failed,
                "inactive" => UnitState::Inactive,
                other => {
                    return Err(format!("state {other:?}: one of active, failed, inactive"));
                }
            },
        },
        "system" => Check::System(raw.system.clone().unwrap_or_default()),
        "no_failed_units" => match raw.no_failed_units {
            Some(true) => Check::NoFailedUnits,
            _ => return Err("no_failed_units = false checks nothing".to_owned()),
        },
        "file" => Check::File(file_check(raw)?),
        "listener" => {
            let listener = raw.listener.clone().unwrap_or_default();
            if !spec.listen.iter().any(|l| l.name() == listener) {
                return Err(format!(
                    "listener {listener:?} is not in its machine's listen list"
                ));
            }
            Check::Heard {
                listener,
                heard: raw.heard.unwrap_or(true),
                run: raw.run.clone(),
            }
        }
        "port" => {
            let port = raw.port.unwrap_or_default();
            if !spec.forward.contains(&port) {
                return Err(format!("port {port} is not in its machine's forward list"));
            }
            Check::Reach {
                port,
                reachable: raw.reachable.unwrap_or(true),
                send: raw.send.clone(),
                expect: raw.expect.clone(),
            }
        }
        "no_packets" => match raw.no_packets {
            Some(true) => Check::NoPackets,
            _ => return Err("no_packets = false checks nothing".to_owned()),
        },
        "multi_user_within" => match raw.multi_user_within {
            Some(s) if s > 0.0 && s.is_finite() => Check::MultiUserWithin(s),
            _ => return Err("multi_user_within is a positive number of seconds".to_owned()),
        },
        "console" => Check::Console(raw.console.clone().unwrap_or_default()),
        "host" => match &raw.host {
            Some(argv) if !argv.is_empty() && !argv[0].is_empty() => Check::Host(argv.clone()),
            _ => {
                return Err(
                    "host is a command and its arguments: [\"./check.sh\", \"arg\"]".to_owned(),
                );
            }
        },
        "reboot" => match raw.reboot {
            Some(true) => Check::Reboot,
            _ => return Err("reboot = false does nothing".to_owned()),
        },
        other => return Err(format!("{other}: not a check")),
    })
}

fn file_check(raw: &RawCase) -> Result<FileCheck, String> {
    let path = raw.file.clone().unwrap_or_default();
    if !path.starts_with('/') || path.contains('\0') {
        return Err(format!("file {path:?} is not an absolute path"));
    }
    let check = FileCheck {
        path,
        present: raw.present.unwrap_or(true),
        mode: raw.mode.clone(),
        owner: raw.owner.clone(),
        group: raw.group.clone(),
        sha256: raw.sha256.clone().map(|s| s.to_ascii_lowercase()),
        read_only: raw.read_only,
    };
    let detail = check.mode.is_some()
        || check.owner.is_some()
        || check.group.is_some()
        || check.sha256.is_some()
        || check.read_only.is_some();
    if !check.present && detail {
        return Err("present = false goes with nothing else".to_owned());
    }
    if let Some(mode) = &check.mode
        && (mode.is_empty() || mode.len() > 4 || !mode.bytes().all(|b| (b'0'..=b'7').contains(&b)))
    {
        return Err(format!(
            "mode {mode:?}: octal, as stat -c %a prints it (\"755\", \"4755\")"
        ));
    }
    if let Some(digest) = &check.sha256
        && (digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(format!("sha256 {digest:?}: 64 hex digits"));
    }
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
schema = 1

[machine.net]
listen = ["sink"]
forward = [22]
memory = 512

[[case]]
name = "running"
system = "running"

[[case]]
name = "root is read-only"
run = "touch /usr/x"
status = 1
stderr = { contains = ["Read-only file system"] }

[[case]]
name = "passwd"
file = "/usr/bin/passwd"
mode = "4755"
owner = "root"

[[case]]
name = "the sink hears"
machine = "net"
listener = "sink"
run = "exec 3<>/dev/tcp/{listen.sink}"
"#;

    #[test]
    fn the_example_becomes_a_plan_per_machine_in_file_order() {
        let plan = parse("t.toml", EXAMPLE).unwrap();
        assert_eq!(plan.case_count(), 4);
        let names: Vec<&str> = plan.machines.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["main", "net"]);
        assert_eq!(plan.machines[0].spec.memory, 1024);
        assert_eq!(plan.machines[1].spec.memory, 512);
        assert_eq!(
            plan.machines[0].cases[0].check,
            Check::System("running".to_owned())
        );
        assert_eq!(
            plan.machines[0].cases[1].check,
            Check::Run {
                script: "touch /usr/x".to_owned(),
                status: 1,
                stdout: None,
                stderr: Some(Match {
                    contains: vec!["Read-only file system".to_owned()],
                    ..Match::default()
                }),
            }
        );
        assert!(matches!(
            &plan.machines[1].cases[0].check,
            Check::Heard {
                heard: true,
                run: Some(_),
                ..
            }
        ));
    }

    fn error(text: &str) -> String {
        parse("t.toml", &format!("schema = 1\n{text}"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn bad_files_are_refused_by_name() {
        let unknown = error("[[case]]\nname = \"x\"\nrun = \"true\"\nstatuss = 1\n");
        assert!(
            unknown.contains("line 5") && unknown.contains("statuss"),
            "{unknown}"
        );
        let two = error("[[case]]\nname = \"x\"\nunit = \"a\"\nfile = \"/a\"\n");
        assert!(
            two.contains("case \"x\"") && two.contains("2 checks (unit, file)"),
            "{two}"
        );
        let none = error("[[case]]\nname = \"x\"\n");
        assert!(none.contains("says nothing to check"), "{none}");
        let stray = error("[[case]]\nname = \"x\"\nunit = \"a\"\nmode = \"755\"\n");
        assert!(
            stray.contains("mode does not go with a unit check"),
            "{stray}"
        );
        let listener = error("[[case]]\nname = \"x\"\nlistener = \"sink\"\n");
        assert!(
            listener.contains("not in its machine's listen list"),
            "{listener}"
        );
        let machine = error("[[case]]\nname = \"x\"\nmachine = \"b\"\nsystem = \"running\"\n");
        assert!(machine.contains("no [machine.b]"), "{machine}");
        let mode = error("[[case]]\nname = \"x\"\nfile = \"/a\"\nmode = \"rwx\"\n");
        assert!(mode.contains("octal"), "{mode}");
        let regex = error("[[case]]\nname = \"x\"\nrun = \"true\"\nstdout = { regex = \"(\" }\n");
        assert!(regex.contains("regex \"(\""), "{regex}");
        let twice = error(
            "[[case]]\nname = \"x\"\nrun = \"true\"\n[[case]]\nname = \"x\"\nrun = \"true\"\n",
        );
        assert!(twice.contains("two cases have this name"), "{twice}");
        let schema = parse(
            "t.toml",
            "schema = 2\n[[case]]\nname = \"x\"\nrun = \"true\"\n",
        )
        .unwrap_err();
        assert!(schema.to_string().contains("2 is not a schema"), "{schema}");
        let empty = error("");
        assert!(empty.contains("no [[case]]"), "{empty}");
    }
}
