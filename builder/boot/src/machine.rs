//! A running guest the host talks to: the serial console in a file, and a
//! command channel on a virtio-serial port named `airlock.test`.
//!
//! The protocol is one line each way. The host sends `ID BASE64(command)`;
//! the guest runs the command with bash, as root, and answers
//! `@@AIRLOCK-RESULT ID STATUS BASE64(output)@@`. The guest's side is
//! [`CHANNEL_SCRIPT`]. Test images (qemu-tests' `test-channel.toml`)
//! carry it as a unit; `airlock test` boots production images unchanged
//! and starts it from the kernel command line instead ([`attach_words`]).
//!
//! QEMU always goes away: every machine runs under `timeout -s KILL` (a hard
//! bound that holds even if this process dies), is told to stop when the
//! thread that started it dies, and dropping a [`Machine`] (also while a
//! test panics) or [`kill_all`] (a Ctrl-C handler's job) kills and reaps it.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::{Console, Image, Options};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// What can go wrong in the harness.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// QEMU could not be set up or started.
    #[error("starting QEMU: {0}")]
    Start(String),
    /// Something did not happen in time.
    #[error("timed out after {seconds} s waiting for {what}; console tail:\n{tail}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        seconds: u64,
        /// The end of the serial console.
        tail: String,
    },
    /// The guest or the channel misbehaved.
    #[error("{0}")]
    Channel(String),
}

/// A command's result in the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Exit status.
    pub status: i32,
    /// stdout and stderr together (trailing newlines trimmed).
    pub output: String,
}

/// A running guest.
#[derive(Debug)]
pub struct Machine {
    child: Child,
    dir: tempfile::TempDir,
    console: PathBuf,
    socket: PathBuf,
    channel: Option<(UnixStream, Receiver<String>)>,
    started: Instant,
    next_id: u64,
}

impl Machine {
    /// Boots `image` with `options` (console and channel are set here), for
    /// at most `hard_limit` in all.
    pub fn boot(
        image: &Image,
        mut options: Options,
        hard_limit: Duration,
    ) -> Result<Machine, HarnessError> {
        let dir = tempfile::tempdir().map_err(|e| HarnessError::Start(e.to_string()))?;
        let console = dir.path().join("console.log");
        let socket = dir.path().join("channel.sock");
        options.console = Console::File(console.clone());
        options.channel = Some(socket.clone());
        let qemu =
            crate::command(image, &options).map_err(|e| HarnessError::Start(e.to_string()))?;
        let mut command = Command::new("timeout");
        command
            .args(["-s", "KILL", &hard_limit.as_secs().max(1).to_string()])
            .arg(qemu.get_program())
            .args(qemu.get_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group, so QEMU can be killed with it.
            .process_group(0);
        let child = {
            let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
            let child = command
                .spawn()
                .map_err(|e| HarnessError::Start(format!("{}: {e}", crate::QEMU)))?;
            running.push(child.id());
            child
        };
        Ok(Machine {
            child,
            dir,
            console,
            socket,
            channel: None,
            started: Instant::now(),
            next_id: 0,
        })
    }

    /// A folder that lives as long as the machine (for disks and dumps).
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the serial console printed so far, without terminal
    /// escape sequences (systemd colours its status lines).
    pub fn console(&self) -> String {
        std::fs::read(&self.console)
            .map(|b| crate::strip_escapes(&String::from_utf8_lossy(&b)))
            .unwrap_or_default()
    }

    fn tail(&self) -> String {
        let console = self.console();
        let lines: Vec<&str> = console.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    }

    fn timeout(&self, what: &str, timeout: Duration) -> HarnessError {
        HarnessError::Timeout {
            what: what.to_owned(),
            seconds: timeout.as_secs(),
            tail: self.tail(),
        }
    }

    /// Whether QEMU has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits until the console shows `needle`; returns the time since boot.
    pub fn wait_console(
        &mut self,
        needle: &str,
        timeout: Duration,
    ) -> Result<Duration, HarnessError> {
        self.wait_console_any(&[needle], timeout)
            .map(|(_, elapsed)| elapsed)
    }

    /// Waits until the console shows one of `needles`; returns which one
    /// and the time since boot.
    pub fn wait_console_any(
        &mut self,
        needles: &[&str],
        timeout: Duration,
    ) -> Result<(usize, Duration), HarnessError> {
        let mut log = crate::ConsoleLog::new(&self.console);
        let waited = log
            .wait_for(
                &mut self.child,
                needles,
                Instant::now() + timeout,
                &mut |_| Ok(()),
            )
            .map_err(|e| HarnessError::Channel(format!("reading the console: {e}")))?;
        match waited {
            crate::Waited::Shown(found) => Ok((found, self.started.elapsed())),
            crate::Waited::Exited(_) => Err(HarnessError::Channel(format!(
                "QEMU exited before the console showed any of {needles:?}; console tail:\n{}",
                self.tail()
            ))),
            crate::Waited::TimedOut => {
                Err(self.timeout(&format!("any of {needles:?} on the console"), timeout))
            }
        }
    }

    /// Connects to the test channel and waits until the guest answers.
    pub fn connect(&mut self, timeout: Duration) -> Result<(), HarnessError> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(&self.socket) {
                Ok(stream) => break stream,
                Err(_) if Instant::now() < deadline && self.exited().is_none() => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(HarnessError::Channel(format!("channel socket: {e}"))),
            }
        };
        let reader = stream
            .try_clone()
            .map_err(|e| HarnessError::Channel(e.to_string()))?;
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(reader);
            let mut line = String::new();
            while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
                if sender.send(std::mem::take(&mut line)).is_err() {
                    break;
                }
            }
        });
        self.channel = Some((stream, receiver));
        // The guest may not listen yet: ask until it answers.
        loop {
            match self.run("true", Duration::from_secs(2)) {
                Ok(_) => return Ok(()),
                Err(HarnessError::Timeout { .. }) if Instant::now() < deadline => {}
                Err(HarnessError::Timeout { .. }) => {
                    return Err(self.timeout("the guest's test channel", timeout));
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// Runs `command` in the guest (bash, as root) and returns its status
    /// and output.
    pub fn run(&mut self, command: &str, timeout: Duration) -> Result<Outcome, HarnessError> {
        self.next_id += 1;
        let id = self.next_id;
        let (stream, receiver) = self
            .channel
            .as_mut()
            .ok_or_else(|| HarnessError::Channel("not connected".to_owned()))?;
        writeln!(stream, "{id} {}", STANDARD.encode(command))
            .map_err(|e| HarnessError::Channel(format!("sending: {e}")))?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(left) {
                Ok(line) => {
                    let Some(body) = line
                        .trim_end()
                        .strip_prefix("@@AIRLOCK-RESULT ")
                        .and_then(|rest| rest.strip_suffix("@@"))
                    else {
                        continue;
                    };
                    let mut parts = body.splitn(3, ' ');
                    let (Some(got), Some(status), output) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        continue;
                    };
                    if got != id.to_string() {
                        continue; // an answer to an earlier, abandoned command
                    }
                    let status = status
                        .parse()
                        .map_err(|_| HarnessError::Channel(format!("bad status in {line:?}")))?;
                    let output = STANDARD.decode(output.unwrap_or_default()).map_err(|e| {
                        HarnessError::Channel(format!("bad output in {line:?}: {e}"))
                    })?;
                    return Ok(Outcome {
                        status,
                        output: String::from_utf8_lossy(&output).trim_end().to_owned(),
                    });
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(self.timeout(&format!("`{command}` in the guest"), timeout));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(HarnessError::Channel(format!(
                        "the channel closed while running `{command}`; console tail:\n{}",
                        self.tail()
                    )));
                }
            }
        }
    }

    /// Runs `command` and fails unless it exits 0; returns its output.
    pub fn check(&mut self, command: &str, timeout: Duration) -> Result<String, HarnessError> {
        let outcome = self.run(command, timeout)?;
        if outcome.status != 0 {
            return Err(HarnessError::Channel(format!(
                "`{command}` exited {}: {}",
                outcome.status, outcome.output
            )));
        }
        Ok(outcome.output)
    }

    /// Waits for QEMU to exit (after the guest powers off).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(self.timeout("QEMU to exit", timeout));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asks the guest to power off and waits for QEMU to exit.
    pub fn poweroff(self, timeout: Duration) -> Result<ExitStatus, HarnessError> {
        self.go_down("systemctl poweroff", timeout)
    }

    /// Asks the guest to reboot and waits for QEMU to exit (it runs with
    /// -no-reboot: the next boot is a new machine on the same disk and
    /// firmware variables).
    pub fn reboot(self, timeout: Duration) -> Result<ExitStatus, HarnessError> {
        self.go_down("systemctl reboot", timeout)
    }

    fn go_down(mut self, command: &str, timeout: Duration) -> Result<ExitStatus, HarnessError> {
        if let Some((stream, _)) = self.channel.as_mut() {
            // No answer comes back: the guest goes down.
            let _ = writeln!(stream, "0 {}", STANDARD.encode(command));
        }
        self.wait_exit(timeout)
    }

    /// QEMU's own error output so far (after it exited).
    pub fn qemu_stderr(&mut self) -> String {
        let mut text = String::new();
        if self.exited().is_some()
            && let Some(stderr) = self.child.stderr.as_mut()
        {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            kill_group(self.child.id());
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        RUNNING
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|id| *id != self.child.id());
    }
}

/// The process groups of the machines this process runs.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// `timeout` and QEMU share a process group led by `timeout`.
fn kill_group(leader: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{leader}")])
        .stderr(Stdio::null())
        .status();
}

/// Kills every machine this process started and has not dropped (for a
/// Ctrl-C handler: the process is about to exit, and the machines' own
/// process groups do not get the terminal's signal). Machines started
/// after this call are not affected; the caller exits.
pub fn kill_all() {
    let running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
    for leader in running.iter() {
        kill_group(*leader);
    }
}

/// The guest's side of the channel ([`CHANNEL_SCRIPT`]) as kernel
/// command-line words for a direct boot: systemd's run generator
/// (`systemd.run=`) makes kernel-command-line.service, which writes the
/// script (gzipped, in base64) to /run/airlock-test-channel and runs it
/// with `boot`: it starts itself as the transient service
/// `airlock-test-channel.service` and then the image's own default target,
/// because the generator made kernel-command-line.target the default.
/// `systemd.wants=` pulls the service in as well where the image sets its
/// own default target in /etc, which hides the generator's. Nothing in the
/// image changes. This is no door into production machines: whoever sets
/// the command line of a direct boot controls the machine anyway
/// (`init=`), and a unified kernel image's command line is sealed, so a
/// UEFI boot cannot be given these.
pub fn attach_words() -> Vec<String> {
    use std::io::Write as _;
    let mut script = String::new();
    for line in CHANNEL_SCRIPT.lines().map(str::trim_start) {
        if !line.is_empty() && !line.starts_with('#') {
            script.push_str(line);
            script.push('\n');
        }
    }
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    gz.write_all(script.as_bytes()).expect("writing to memory");
    let packed = STANDARD.encode(gz.finish().expect("writing to memory"));
    vec![
        format!(
            "systemd.run=\"/bin/bash -c 'echo {packed}|base64 -d|gunzip>/run/airlock-test-channel&&exec /bin/bash /run/airlock-test-channel boot'\""
        ),
        "systemd.wants=kernel-command-line.service".to_owned(),
        "systemd.run_success_action=none".to_owned(),
        "systemd.run_failure_action=none".to_owned(),
    ]
}

/// The guest's side of the test channel: a bash script that serves the
/// port `airlock.test`.
pub const CHANNEL_SCRIPT: &str = include_str!("machine/channel.sh");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attached_channel_is_the_script_and_fits_the_command_line() {
        use std::io::Read as _;
        let words = attach_words();
        let run = &words[0];
        // systemd expands $ and % in ExecStart=; the command must have neither.
        assert!(!run.contains('$') && !run.contains('%'), "{run}");
        let packed = run
            .split("echo ")
            .nth(1)
            .and_then(|rest| rest.split('|').next())
            .unwrap();
        let gz = STANDARD.decode(packed).unwrap();
        let mut script = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut script)
            .unwrap();
        assert!(script.contains("port=/dev/virtio-ports/airlock.test\n"));
        assert!(script.contains("systemd-run --unit=airlock-test-channel"));
        assert!(!script.contains("# "), "comments are left out");
        // x86's kernel command line holds 2048 bytes; the image's own words
        // (the root hash, salt and console) take about 300.
        let length: usize = words.iter().map(|w| w.len() + 1).sum();
        assert!(length < 1100, "{length} bytes");
        assert_eq!(words.len(), 4);
    }

    #[test]
    fn escapes_are_stripped() {
        assert_eq!(
            crate::strip_escapes(
                "[\u{1b}[0;32m  OK  \u{1b}[0m] Reached target \u{1b}[0;1;39mmulti-user.target\u{1b}[0m - M"
            ),
            "[  OK  ] Reached target multi-user.target - M"
        );
    }
}
