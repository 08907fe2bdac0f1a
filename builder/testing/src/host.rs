//! The host-side escape hatch: a command run on the host while the machine
//! is up, passing when it exits 0. It gets the machine through its
//! environment:
//!
//! - `AIRLOCK_CHANNEL`: a unix socket speaking the channel's protocol
//!   (send `ID BASE64(command)\n`, read `@@AIRLOCK-RESULT ID STATUS
//!   BASE64(output)@@\n`; the command runs in the guest with bash, as root);
//! - `AIRLOCK_CONSOLE`: a file with the serial console so far;
//! - `AIRLOCK_PCAP`: the network dump so far;
//! - `AIRLOCK_LISTEN_<NAME>`: a listener's host address (127.0.0.1:PORT;
//!   NAME upper-cased, `-` as `_`);
//! - `AIRLOCK_FORWARD_<PORT>`: the host address of a forwarded guest port.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::run::{Running, Verdict};

/// Runs `argv` (relative paths from the test file's folder) for at most
/// `timeout`, serving its channel requests.
pub(crate) fn run(
    machine: &mut Running,
    argv: &[String],
    timeout: Duration,
) -> Result<(Verdict, String), airlock_boot::machine::HarnessError> {
    let scratch = machine.machine.scratch().to_owned();
    let socket = scratch.join("host-channel.sock");
    let _ = std::fs::remove_file(&socket);
    let console = scratch.join("console-so-far.log");
    let prepared = UnixListener::bind(&socket)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .and_then(|l| std::fs::write(&console, machine.machine.console()).map(|()| l));
    let listener = match prepared {
        Ok(l) => l,
        Err(e) => {
            return Ok((
                Verdict::Error(format!("preparing the host command: {e}")),
                String::new(),
            ));
        }
    };
    let program = if argv[0].contains('/') {
        machine.base.join(&argv[0])
    } else {
        argv[0].clone().into()
    };
    let mut command = Command::new(&program);
    command
        .args(&argv[1..])
        .current_dir(&machine.base)
        .env("AIRLOCK_CHANNEL", &socket)
        .env("AIRLOCK_CONSOLE", &console)
        .env("AIRLOCK_PCAP", &machine.pcap)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: at the timeout it goes with everything it
        // started, which would otherwise hold its output open.
        .process_group(0);
    for l in &machine.listeners {
        let name = l.name.to_ascii_uppercase().replace('-', "_");
        command.env(format!("AIRLOCK_LISTEN_{name}"), l.address.to_string());
    }
    for (guest, host) in &machine.forwards {
        command.env(format!("AIRLOCK_FORWARD_{guest}"), host.to_string());
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Ok((
                Verdict::Error(format!("starting {}: {e}", program.display())),
                String::new(),
            ));
        }
    };
    let output = collect(&mut child);
    let deadline = Instant::now() + timeout;
    let mut client: Option<BufReader<UnixStream>> = None;
    let status = loop {
        if let Some(status) = child.try_wait().ok().flatten() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        if let Ok((stream, _)) = listener.accept() {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
            client = Some(BufReader::new(stream));
        }
        match client.as_mut().map(serve_one(machine, deadline)) {
            Some(Ok(true)) => {}
            Some(Ok(false)) => client = None,
            Some(Err(e)) => return Err(e),
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let printed = output.join().unwrap_or_default();
    let _ = std::fs::remove_file(&socket);
    Ok(match status {
        Some(s) if s.success() => (Verdict::Passed, printed),
        Some(s) => (
            Verdict::Failed {
                expected: format!("{} exits 0", argv[0]),
                actual: format!("it exited with {s}"),
            },
            printed,
        ),
        None => (
            Verdict::Failed {
                expected: format!("{} ends within {} s", argv[0], timeout.as_secs()),
                actual: "it was still running and was killed".to_owned(),
            },
            printed,
        ),
    })
}

/// Reads one request line (if one arrives within a moment) and answers
/// it; Ok(false) once the client has gone.
fn serve_one(
    machine: &mut Running,
    deadline: Instant,
) -> impl FnMut(&mut BufReader<UnixStream>) -> Result<bool, airlock_boot::machine::HarnessError> + '_
{
    move |client| {
        let mut line = String::new();
        match client.read_line(&mut line) {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(true);
            }
            Err(_) => return Ok(false),
        }
        let Some((id, payload)) = line.trim_end().split_once(' ') else {
            return Ok(true);
        };
        let command = STANDARD
            .decode(payload)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let left = deadline.saturating_duration_since(Instant::now());
        let outcome = machine
            .machine
            .run(&command, left.max(Duration::from_secs(1)))?;
        let answer = format!(
            "@@AIRLOCK-RESULT {id} {} {}@@\n",
            outcome.status,
            STANDARD.encode(outcome.output)
        );
        Ok(client.get_mut().write_all(answer.as_bytes()).is_ok())
    }
}

/// The child's stdout and stderr, read in threads, joined when it ends.
fn collect(child: &mut std::process::Child) -> std::thread::JoinHandle<String> {
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    std::thread::spawn(move || {
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(e) = err.as_mut() {
                let _ = e.read_to_string(&mut text);
            }
            text
        });
        let mut text = String::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_string(&mut text);
        }
        format!(
            "--- stdout\n{text}\n--- stderr\n{}",
            errors.join().unwrap_or_default()
        )
    })
}
