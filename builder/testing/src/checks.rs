//! Each check kind against a running machine. Commands sent to the guest
//! run under the guest's `timeout`, so one that hangs ends and the channel
//! (which serves one command at a time) stays usable for the next case.

use std::time::{Duration, Instant};

use airlock_boot::machine::HarnessError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::run::{Running, Verdict};
use crate::spec::{Case, Check, FileCheck, Match, UnitState};

type Checked = Result<(Verdict, String), HarnessError>;

fn pass(output: String) -> Checked {
    Ok((Verdict::Passed, output))
}

fn fail(expected: impl Into<String>, actual: impl Into<String>, output: String) -> Checked {
    Ok((
        Verdict::Failed {
            expected: expected.into(),
            actual: actual.into(),
        },
        output,
    ))
}

/// Runs one case's check.
pub(crate) fn check(machine: &mut Running, case: &Case) -> Checked {
    let timeout = Duration::from_secs(case.timeout);
    match &case.check {
        Check::Run {
            script,
            status,
            stdout,
            stderr,
        } => run_check(machine, script, *status, stdout, stderr, timeout),
        Check::Unit { unit, state } => unit_check(machine, unit, *state, timeout),
        Check::System(want) => {
            let got = guest(machine, "systemctl is-system-running --wait", timeout)?;
            let state = got.stdout.trim();
            if state == want {
                pass(got.stdout)
            } else {
                let failed = guest(machine, "systemctl --failed --no-legend --plain", timeout)?;
                fail(want.clone(), state, failed.stdout)
            }
        }
        Check::NoFailedUnits => {
            let got = guest(machine, "systemctl --failed --no-legend --plain", timeout)?;
            if got.stdout.trim().is_empty() {
                pass(String::new())
            } else {
                fail("no failed units", got.stdout.trim(), got.stdout.clone())
            }
        }
        Check::File(file) => file_check(machine, file, timeout),
        Check::Heard {
            listener,
            heard,
            run,
        } => heard_check(machine, listener, *heard, run.as_deref(), timeout),
        Check::Reach {
            port,
            reachable,
            send,
            expect,
        } => {
            let Some((_, address)) = machine.forwards.iter().find(|f| f.0 == *port) else {
                return fail(
                    format!("port {port} forwarded"),
                    "not forwarded",
                    String::new(),
                );
            };
            let within = if *reachable {
                timeout
            } else {
                Duration::from_secs(3).min(timeout)
            };
            let got = crate::net::reach(*address, send.as_deref(), expect.as_deref(), within);
            match (got, reachable) {
                (Ok(text), true) => pass(text),
                (Err(why), false) => pass(why),
                (Ok(text), false) => fail(
                    format!("guest port {port} not reachable"),
                    format!("it answered {text:?}"),
                    text,
                ),
                (Err(why), true) => fail(format!("guest port {port} reachable"), why.clone(), why),
            }
        }
        Check::NoPackets => {
            let bytes = std::fs::read(&machine.pcap).unwrap_or_default();
            match crate::net::leaving(&bytes, &machine.allowed()) {
                Ok(left) if left.is_empty() => pass(String::new()),
                Ok(left) => fail(
                    "no packet leaves the guest",
                    format!("{} packets, first: {}", left.len(), left[0]),
                    left.join("\n"),
                ),
                Err(e) => Ok((
                    Verdict::Error(format!("reading the network dump: {e}")),
                    String::new(),
                )),
            }
        }
        Check::MultiUserWithin(budget) => multi_user(machine, *budget, timeout),
        Check::Console(m) => console_check(machine, m, timeout),
        Check::Host(argv) => crate::host::run(machine, argv, timeout),
        Check::Reboot => Ok((
            Verdict::Error("reboot is run by the machine loop".to_owned()),
            String::new(),
        )),
    }
}

/// What a guest command printed.
pub(crate) struct Printed {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `script` in the guest under `timeout` (in the guest too), its
/// stdout and stderr apart.
pub(crate) fn guest(
    machine: &mut Running,
    script: &str,
    timeout: Duration,
) -> Result<Printed, HarnessError> {
    let encoded = STANDARD.encode(script);
    let seconds = timeout.as_secs().max(1);
    let wrapper = format!(
        "o=$(mktemp) e=$(mktemp); timeout -s KILL {seconds} bash -c \"$(echo {encoded} | base64 -d)\" >$o 2>$e </dev/null; s=$?; \
         printf '\\n@@O:%s\\n@@E:%s\\n' \"$(base64 -w0 <$o)\" \"$(base64 -w0 <$e)\"; rm -f $o $e; exit $s"
    );
    let outcome = machine
        .machine
        .run(&wrapper, timeout + Duration::from_secs(15))?;
    // The marked lines at the end: the guest's shell may say more first (a
    // job it killed).
    let marked = |mark: &str| -> Result<String, HarnessError> {
        let line = outcome
            .output
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(mark))
            .unwrap_or_default();
        STANDARD
            .decode(line)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| {
                HarnessError::Channel(format!("the guest's answer {:?}: {e}", outcome.output))
            })
    };
    let (stdout, stderr) = (marked("@@O:")?, marked("@@E:")?);
    if outcome.status == 137 {
        return Err(HarnessError::Timeout {
            what: format!("`{}` in the guest", first_line(script)),
            seconds,
            tail: String::new(),
        });
    }
    Ok(Printed {
        status: outcome.status,
        stdout,
        stderr,
    })
}

fn first_line(script: &str) -> &str {
    script.lines().next().unwrap_or_default()
}

fn run_check(
    machine: &mut Running,
    script: &str,
    status: i32,
    stdout: &Option<Match>,
    stderr: &Option<Match>,
    timeout: Duration,
) -> Checked {
    let script = machine.expand(script);
    let got = guest(machine, &script, timeout)?;
    let output = format!(
        "exit status {}\n--- stdout\n{}\n--- stderr\n{}",
        got.status, got.stdout, got.stderr
    );
    if got.status != status {
        return fail(
            format!("exit status {status}"),
            format!("exit status {}", got.status),
            output,
        );
    }
    for (m, text, stream) in [
        (stdout, &got.stdout, "stdout"),
        (stderr, &got.stderr, "stderr"),
    ] {
        if let Some(m) = m
            && let Err((expected, actual)) = matches(m, text)
        {
            return fail(
                format!("{stream} {expected}"),
                format!("{stream} {actual}"),
                output,
            );
        }
    }
    pass(output)
}

/// Whether `text` matches: Err((expected, actual)) names the first part
/// that does not. Trailing newlines are ignored.
pub(crate) fn matches(m: &Match, text: &str) -> Result<(), (String, String)> {
    let text = text.trim_end_matches('\n');
    let shown = || format!("was {:?}", clip(text));
    if let Some(want) = &m.equals
        && text != want.trim_end_matches('\n')
    {
        return Err((format!("equal to {want:?}"), shown()));
    }
    if let Some(want) = m.contains.iter().find(|w| !text.contains(w.as_str())) {
        return Err((format!("containing {want:?}"), shown()));
    }
    if let Some(bad) = m.lacks.iter().find(|w| text.contains(w.as_str())) {
        let line = text
            .lines()
            .find(|l| l.contains(bad.as_str()))
            .unwrap_or_default();
        return Err((
            format!("without {bad:?}"),
            format!("has it: {:?}", clip(line)),
        ));
    }
    if let Some(pattern) = &m.regex {
        let regex = regex::Regex::new(pattern)
            .map_err(|e| (format!("regex {pattern:?}"), e.to_string()))?;
        if !regex.is_match(text) {
            return Err((format!("matching /{pattern}/"), shown()));
        }
    }
    Ok(())
}

/// The console so far must match: what it must show is waited for until
/// the timeout; a line it must lack fails at once.
fn console_check(machine: &mut Running, m: &Match, timeout: Duration) -> Checked {
    let deadline = Instant::now() + timeout;
    let lacking = Match {
        lacks: m.lacks.clone(),
        ..Match::default()
    };
    loop {
        let text = machine.machine.console();
        if let Err((expected, actual)) = matches(&lacking, &text) {
            return fail(expected, actual, tail(&text, 40));
        }
        match matches(m, &text) {
            Ok(()) => return pass(String::new()),
            Err((expected, actual)) if Instant::now() >= deadline => {
                return fail(expected, actual, tail(&text, 40));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

fn clip(text: &str) -> String {
    const MAX: usize = 400;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn unit_check(machine: &mut Running, unit: &str, want: UnitState, timeout: Duration) -> Checked {
    let deadline = Instant::now() + timeout;
    let quoted = format!("'{}'", unit.replace('\'', "'\\''"));
    loop {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        let got = guest(machine, &format!("systemctl is-active {quoted}"), left)?;
        let state = got.stdout.trim().to_owned();
        if state == want.word() {
            return pass(state);
        }
        let settling = matches!(state.as_str(), "activating" | "deactivating" | "reloading");
        // A unit on its way may still get there; one that settled elsewhere
        // is done, unless the wanted state is a later one (failed after a
        // restart, inactive after a stop).
        if (!settling && want == UnitState::Active) || Instant::now() >= deadline {
            let status = guest(
                machine,
                &format!("systemctl status --no-pager --lines=20 {quoted}"),
                Duration::from_secs(30),
            )?;
            return fail(want.word(), state, status.stdout);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn file_check(machine: &mut Running, file: &FileCheck, timeout: Duration) -> Checked {
    let path = format!("'{}'", file.path.replace('\'', "'\\''"));
    let script = format!(
        "if [ -e {path} ] || [ -L {path} ]; then echo present; else echo absent; exit 0; fi\n\
         stat -c '%a %U %G' {path}\n\
         if [ -f {path} ]; then sha256sum < {path} | cut -d' ' -f1; else echo -; fi\n\
         if [ -d {path} ]; then p={path}/.airlock-test-probe; if touch \"$p\" 2>/dev/null; then rm -f \"$p\"; echo writable; else echo read-only; fi\n\
         elif ( : >> {path} ) 2>/dev/null; then echo writable; else echo read-only; fi"
    );
    let got = guest(machine, &script, timeout)?;
    let lines: Vec<&str> = got.stdout.lines().collect();
    let output = got.stdout.clone();
    let present = lines.first() == Some(&"present");
    if present != file.present {
        let word = |p: bool| if p { "present" } else { "absent" };
        return fail(word(file.present), word(present), output);
    }
    if !present {
        return pass(output);
    }
    let stat: Vec<&str> = lines.get(1).unwrap_or(&"").split(' ').collect();
    let fields = [
        ("mode", &file.mode, stat.first()),
        ("owner", &file.owner, stat.get(1)),
        ("group", &file.group, stat.get(2)),
        ("sha256", &file.sha256, lines.get(2)),
    ];
    for (what, want, got) in fields {
        let got = got.copied().unwrap_or("?");
        if let Some(want) = want {
            let same = if what == "mode" {
                want.trim_start_matches('0') == got.trim_start_matches('0')
            } else {
                want == got
            };
            if !same {
                return fail(format!("{what} {want}"), format!("{what} {got}"), output);
            }
        }
    }
    if let Some(read_only) = file.read_only {
        let got = lines.get(3).copied().unwrap_or("?");
        let want = if read_only { "read-only" } else { "writable" };
        if got != want {
            return fail(want, got, output);
        }
    }
    pass(output)
}

fn heard_check(
    machine: &mut Running,
    name: &str,
    heard: bool,
    run: Option<&str>,
    timeout: Duration,
) -> Checked {
    let Some(index) = machine.listeners.iter().position(|l| l.name == name) else {
        return fail(format!("listener {name}"), "not declared", String::new());
    };
    // Without a command: anything since the machine booted counts.
    let before = if run.is_some() {
        machine.listeners[index].heard()
    } else {
        0
    };
    let started = Instant::now();
    let mut output = String::new();
    if let Some(script) = run {
        let script = machine.expand(script);
        let got = guest(machine, &script, timeout)?;
        output = format!(
            "exit status {}\n--- stdout\n{}\n--- stderr\n{}",
            got.status, got.stdout, got.stderr
        );
    }
    // A connection may reach the listener a moment after the command ends.
    let settle = if heard {
        timeout.saturating_sub(started.elapsed())
    } else {
        Duration::from_secs(2)
    };
    let deadline = Instant::now() + settle;
    loop {
        let now = machine.listeners[index].heard() - before;
        if heard && now > 0 {
            return pass(output);
        }
        if Instant::now() >= deadline {
            return if heard == (now > 0) {
                pass(output)
            } else if heard {
                fail(
                    format!("listener {name} hears from the guest"),
                    "no connection arrived",
                    output,
                )
            } else {
                fail(
                    format!("listener {name} hears nothing"),
                    format!("{now} connections arrived"),
                    output,
                )
            };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn multi_user(machine: &mut Running, budget: f64, timeout: Duration) -> Checked {
    // When multi-user.target became active, counted from the kernel's
    // start.
    let script = "systemctl is-system-running --wait >/dev/null; \
                  systemctl show -P ActiveEnterTimestampMonotonic multi-user.target";
    let got = guest(machine, script, timeout)?;
    let micros: u64 = got.stdout.trim().parse().unwrap_or(0);
    if micros == 0 {
        return fail(
            format!("multi-user.target within {budget} s"),
            "never reached",
            got.stdout,
        );
    }
    let seconds = micros as f64 / 1e6;
    let shown = format!("{seconds:.1} s after the kernel started");
    if seconds <= budget {
        pass(shown)
    } else {
        fail(
            format!("multi-user.target within {budget} s"),
            shown.clone(),
            shown,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_match_names_the_first_part_that_fails() {
        let m = Match {
            equals: None,
            contains: vec!["running".to_owned()],
            lacks: vec!["panic".to_owned()],
            regex: Some("^r.*g$".to_owned()),
        };
        assert_eq!(matches(&m, "running"), Ok(()));
        assert_eq!(
            matches(&m, "degraded").unwrap_err().0,
            "containing \"running\""
        );
        let (expected, actual) = matches(&m, "running\nkernel panic").unwrap_err();
        assert_eq!(expected, "without \"panic\"");
        assert_eq!(actual, "has it: \"kernel panic\"");
        assert_eq!(
            matches(&m, "running late").unwrap_err().0,
            "matching /^r.*g$/"
        );
        assert_eq!(
            matches(&m, "running\n"),
            Ok(()),
            "trailing newlines are ignored"
        );
        let exact = Match {
            equals: Some("a\n".to_owned()),
            ..Match::default()
        };
        assert_eq!(matches(&exact, "a"), Ok(()));
        assert!(matches(&exact, "a b").is_err());
    }
}
