//! Watching a guest's serial console written to a file (`Console::File`):
//! what `airlock boot --until` and the boot tests both wait on.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// A console log file, read as it grows.
#[derive(Debug)]
pub struct ConsoleLog {
    path: PathBuf,
    seen: Vec<u8>,
}

/// How a wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Waited {
    /// The console showed the needle with this index.
    Shown(usize),
    /// The guest stopped first.
    Exited(ExitStatus),
    /// The deadline passed first.
    TimedOut,
}

impl ConsoleLog {
    /// The log at `path` (it need not exist yet).
    pub fn new(path: &Path) -> ConsoleLog {
        ConsoleLog {
            path: path.to_owned(),
            seen: Vec::new(),
        }
    }

    /// Reads what the guest printed since the last call, and returns it.
    pub fn poll(&mut self) -> std::io::Result<&[u8]> {
        let start = self.seen.len();
        match std::fs::File::open(&self.path) {
            Ok(mut file) => {
                file.seek(SeekFrom::Start(start as u64))?;
                file.read_to_end(&mut self.seen)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(&self.seen[start..])
    }

    /// Everything printed so far, without terminal escape sequences
    /// (systemd colours its status lines).
    pub fn text(&self) -> String {
        strip_escapes(&String::from_utf8_lossy(&self.seen))
    }

    /// Waits until the console shows one of `needles` (escape sequences
    /// ignored), `child` exits, or `deadline` passes, handing every new
    /// piece of output to `echo` as it arrives.
    pub fn wait_for(
        &mut self,
        child: &mut Child,
        needles: &[&str],
        deadline: Instant,
        echo: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<Waited> {
        loop {
            // Whether it has stopped, asked before reading: what it printed
            // before stopping is then in the read.
            let exited = child.try_wait()?;
            let fresh = self.poll()?;
            if !fresh.is_empty() {
                echo(fresh)?;
            }
            let text = self.text();
            if let Some(found) = needles.iter().position(|n| text.contains(n)) {
                return Ok(Waited::Shown(found));
            }
            if let Some(status) = exited {
                return Ok(Waited::Exited(status));
            }
            if Instant::now() > deadline {
                return Ok(Waited::TimedOut);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `text` without ANSI CSI escape sequences.
pub fn strip_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn shell(script: &str) -> Child {
        Command::new("sh").args(["-c", script]).spawn().unwrap()
    }

    #[test]
    fn waits_for_coloured_text_and_echoes_what_arrives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        let mut child = shell(&format!(
            "sleep 0.2; printf 'boot\\n\\033[0;32m  OK  \\033[0m] Reached target\\n' > {0}; sleep 5",
            path.display()
        ));
        let mut log = ConsoleLog::new(&path);
        let mut echoed = Vec::new();
        let waited = log
            .wait_for(
                &mut child,
                &["never", "OK  ] Reached target"],
                Instant::now() + Duration::from_secs(10),
                &mut |bytes| {
                    echoed.extend_from_slice(bytes);
                    Ok(())
                },
            )
            .unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(waited, Waited::Shown(1));
        assert!(echoed.starts_with(b"boot\n\x1b[0;32m"), "{echoed:?}");
        assert_eq!(log.text(), "boot\n  OK  ] Reached target\n");
    }

    #[test]
    fn a_guest_that_stops_or_stays_silent_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        let mut child = shell(&format!("printf 'panic\\n' > {}; exit 3", path.display()));
        let mut log = ConsoleLog::new(&path);
        let waited = log
            .wait_for(
                &mut child,
                &["login:"],
                Instant::now() + Duration::from_secs(10),
                &mut |_| Ok(()),
            )
            .unwrap();
        assert!(
            matches!(waited, Waited::Exited(status) if status.code() == Some(3)),
            "{waited:?}"
        );
        assert_eq!(log.text(), "panic\n");

        let mut child = shell("sleep 5");
        let mut silent = ConsoleLog::new(&dir.path().join("none.log"));
        let waited = silent
            .wait_for(
                &mut child,
                &["login:"],
                Instant::now() + Duration::from_millis(300),
                &mut |_| Ok(()),
            )
            .unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(waited, Waited::TimedOut);
    }
}
