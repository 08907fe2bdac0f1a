//! SysV init links, as `update-rc.d NAME defaults` leaves them on a system
//! without insserv (Debian's default since bookworm, and mmdebstrap's): for
//! each runlevel the script's LSB header names in `Default-Start`, a link
//! `/etc/rcN.d/S01NAME -> ../init.d/NAME`, and `K01NAME` for each runlevel
//! in `Default-Stop` (`defaults-disabled` makes every link a K link). A
//! script that already has a link keeps its links, as update-rc.d does.
//!
//! systemd's sysv generator reads these links: a script with no unit of its
//! own (exim4) becomes a service wanted by the targets of its S links, so
//! the links are what start it. For a script with a unit, systemd ignores
//! them, and they are written all the same, as update-rc.d would.

use std::collections::BTreeMap;

use airlock_store::Store;
use airlock_tree::Tree;

use super::scripts::Command;
use super::{put, read_file, symlink};
use crate::BuildError;

/// What one `update-rc.d` call asks, when it is read exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `defaults` (and the obsolete `start`/`stop`, which it falls back
    /// to), or `defaults-disabled` (false).
    Defaults { name: String, enabled: bool },
    /// `remove`: on a fresh image there is nothing to remove.
    Remove,
}

/// Reads `update-rc.d [-f] NAME ACTION …`; Err says why it is not done.
pub fn parse(args: &[&str]) -> Result<Call, String> {
    let operands: Vec<&str> = args.iter().copied().filter(|a| *a != "-f").collect();
    if let Some(option) = operands.iter().find(|a| a.starts_with('-')) {
        return Err(format!("update-rc.d option {option}"));
    }
    match operands[..] {
        [name, "defaults" | "start" | "stop", ..] => Ok(Call::Defaults {
            name: name.to_owned(),
            enabled: true,
        }),
        [name, "defaults-disabled"] => Ok(Call::Defaults {
            name: name.to_owned(),
            enabled: false,
        }),
        [_, "remove"] => Ok(Call::Remove),
        [_, action, ..] => Err(format!("update-rc.d {action}")),
        _ => Err("update-rc.d without a name and an action".to_owned()),
    }
}

/// `Default-Start` and `Default-Stop` from an init script's LSB header.
pub fn runlevels(script: &str) -> (Vec<String>, Vec<String>) {
    let (mut start, mut stop) = (Vec::new(), Vec::new());
    let mut inside = false;
    for line in script.lines() {
        if line.trim_end() == "### BEGIN INIT INFO" {
            inside = true;
        } else if line.trim_end() == "### END INIT INFO" {
            break;
        } else if inside {
            if let Some(levels) = line.strip_prefix("# Default-Start:") {
                start = levels.split_whitespace().map(str::to_owned).collect();
            } else if let Some(levels) = line.strip_prefix("# Default-Stop:") {
                stop = levels.split_whitespace().map(str::to_owned).collect();
            }
        }
    }
    (start, stop)
}

/// Whether `level` is a runlevel update-rc.d makes a directory for.
fn is_runlevel(level: &str) -> bool {
    matches!(level, "0" | "1" | "2" | "3" | "4" | "5" | "6" | "S")
}

/// Writes the links of every exact `update-rc.d … defaults` in the
/// scripts, in the order the packages are configured; returns notes on
/// what could not be done.
pub fn configure(
    tree: &mut Tree,
    blobs: &Store,
    scripts: &BTreeMap<String, Vec<Command>>,
) -> Result<Vec<String>, BuildError> {
    let mut notes = Vec::new();
    for (package, commands) in scripts {
        for command in commands {
            if command.conditional || command.expands {
                continue;
            }
            let words = &command.words;
            let Some(at) = words
                .iter()
                .position(|w| w.rsplit('/').next() == Some("update-rc.d"))
            else {
                continue;
            };
            let args: Vec<&str> = words[at + 1..].iter().map(String::as_str).collect();
            let Ok(Call::Defaults { name, enabled }) = parse(&args) else {
                continue;
            };
            if has_links(tree, &name) {
                continue;
            }
            let Some(script) = read_file(tree, blobs, &format!("etc/init.d/{name}")) else {
                notes.push(format!(
                    "{package}: update-rc.d {name}: no /etc/init.d/{name}, so no links"
                ));
                continue;
            };
            let (start, stop) = runlevels(&String::from_utf8_lossy(&script));
            let first = if enabled { 'S' } else { 'K' };
            let links = start
                .iter()
                .map(|level| (level, first))
                .chain(stop.iter().map(|level| (level, 'K')));
            for (level, kind) in links {
                if !is_runlevel(level) {
                    notes.push(format!(
                        "{package}: /etc/init.d/{name} names runlevel {level:?}, which update-rc.d \
                         would make a folder for; no link made"
                    ));
                    continue;
                }
                put(
                    tree,
                    &format!("etc/rc{level}.d/{kind}01{name}"),
                    symlink(&format!("../init.d/{name}")),
                )?;
            }
        }
    }
    Ok(notes)
}

/// Whether any `/etc/rc?.d/[SK]NNname` exists.
fn has_links(tree: &Tree, name: &str) -> bool {
    ["0", "1", "2", "3", "4", "5", "6", "S"]
        .iter()
        .any(|level| {
            let Some((dir, _)) = tree.lookup(&format!("etc/rc{level}.d")) else {
                return false;
            };
            tree.children(&dir).into_iter().any(|(link, _)| {
                let bytes = link.as_bytes();
                bytes.len() > 3
                    && matches!(bytes[0], b'S' | b'K')
                    && bytes[1].is_ascii_digit()
                    && bytes[2].is_ascii_digit()
                    && &link[3..] == name
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_tree::{Content, Kind, Node};

    const EXIM4: &str = "#!/bin/sh\n### BEGIN INIT INFO\n# Provides:          exim4\n\
        # Required-Start:    $remote_fs $syslog $named $network $time\n\
        # Default-Start:     2 3 4 5\n# Default-Stop:      0 1 6\n\
        # Short-Description: exim Mail Transport Agent\n### END INIT INFO\n\
        # Default-Start: 1\n";

    #[test]
    fn calls_are_read_exactly() {
        assert_eq!(
            parse(&["exim4", "defaults"]),
            Ok(Call::Defaults {
                name: "exim4".into(),
                enabled: true
            })
        );
        assert_eq!(
            parse(&["-f", "x", "defaults-disabled"]),
            Ok(Call::Defaults {
                name: "x".into(),
                enabled: false
            })
        );
        assert_eq!(parse(&["x", "remove"]), Ok(Call::Remove));
        assert!(parse(&["x", "enable", "2"]).unwrap_err().contains("enable"));
        assert!(parse(&["--force", "x", "defaults"]).is_err());
        assert!(parse(&["x"]).is_err());
        assert_eq!(
            runlevels(EXIM4),
            (
                vec!["2".into(), "3".into(), "4".into(), "5".into()],
                vec!["0".into(), "1".into(), "6".into()]
            ),
            "only the header counts"
        );
    }

    #[test]
    fn links_follow_the_lsb_header_and_existing_links_stay() {
        let mut tree = Tree::merged_usr();
        let file = |text: &str| Node::new(Kind::File(Content::Inline(text.into())), 0o755);
        tree.put("etc/init.d/exim4", file(EXIM4)).unwrap();
        tree.put("etc/init.d/old", file(EXIM4)).unwrap();
        tree.put("etc/init.d/maybe", file(EXIM4)).unwrap();
        tree.put("etc/rc3.d/S20old", symlink("../init.d/old"))
            .unwrap();
        let mut scripts = BTreeMap::new();
        scripts.insert(
            "exim4-base".to_owned(),
            super::super::scripts::postinst(
                "update-rc.d exim4 defaults >/dev/null\nupdate-rc.d old defaults\nupdate-rc.d gone defaults\nif grep -q x /etc/y; then\n  update-rc.d maybe defaults\nfi\n",
            ),
        );
        let dir = tempfile::tempdir().unwrap();
        let blobs = Store::open_scratch(dir.path().join("blobs")).unwrap();
        let notes = configure(&mut tree, &blobs, &scripts).unwrap();
        let link = |path: &str| tree.get(path).map(|n| n.kind.clone());
        assert_eq!(
            link("etc/rc2.d/S01exim4"),
            Some(Kind::Symlink("../init.d/exim4".into()))
        );
        assert_eq!(
            link("etc/rc6.d/K01exim4"),
            Some(Kind::Symlink("../init.d/exim4".into()))
        );
        assert!(link("etc/rc1.d/S01exim4").is_none());
        assert!(link("etc/rc2.d/S01old").is_none(), "old had a link already");
        assert!(
            link("etc/rc2.d/S01maybe").is_none(),
            "a call under a condition the walk could not decide is a gap"
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("no /etc/init.d/gone"), "{notes:?}");
    }
}
