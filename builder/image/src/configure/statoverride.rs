//! `dpkg-statoverride`, natively: each `--add USER GROUP MODE PATH` of the
//! scripts (read as data) is recorded in /var/lib/dpkg/statoverride, as
//! dpkg keeps it, and applied to the path's owner and mode the way dpkg
//! would on a fresh install: an override a preinst adds applies when the
//! package's files are unpacked, one a postinst adds only with `--update`
//! (the files are there already). `--remove PATH` drops a record; `--list`
//! only asks.

use std::collections::BTreeMap;

use airlock_tree::Tree;

use super::accounts::Accounts;
use super::scripts::Command;
use super::{generated, put};
use crate::BuildError;

/// One `dpkg-statoverride` step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `--add [--update] USER GROUP MODE PATH`.
    Add {
        /// The owner (a name, or `#UID`).
        user: String,
        /// The group (a name, or `#GID`).
        group: String,
        /// The mode.
        mode: u32,
        /// The path (absolute).
        path: String,
        /// Whether `--update` applies it now.
        update: bool,
    },
    /// `--remove PATH`.
    Remove(String),
    /// `--list`: only asks.
    List,
}

/// Reads a `dpkg-statoverride` command; None if it is another command.
pub fn parse(command: &Command) -> Option<Result<Op, String>> {
    if command.name().rsplit('/').next() != Some("dpkg-statoverride") {
        return None;
    }
    if command.expands {
        return Some(Err(
            "a word's value is not known without running the script".to_owned(),
        ));
    }
    let mut update = false;
    let mut action = None;
    let mut operands = Vec::new();
    for word in &command.words[1..] {
        match word.as_str() {
            "--update" => update = true,
            "--quiet" | "--force" => {}
            w if w.starts_with("--force-") => {}
            "--add" | "--remove" | "--list" => action = Some(word.clone()),
            w if w.starts_with('-') => {
                return Some(Err(format!("option {w} is not one airlock knows")));
            }
            _ => operands.push(word.clone()),
        }
    }
    Some(match (action.as_deref(), &operands[..]) {
        (Some("--add"), [user, group, mode, path]) => match u32::from_str_radix(mode, 8) {
            Ok(mode) if mode <= 0o7777 && path.starts_with('/') => Ok(Op::Add {
                user: user.clone(),
                group: group.clone(),
                mode,
                path: path.clone(),
                update,
            }),
            _ => Err(format!("cannot read mode {mode:?} and path {path:?}")),
        },
        (Some("--remove"), [path]) => Ok(Op::Remove(path.clone())),
        (Some("--list"), _) => Ok(Op::List),
        _ => Err("expected --add USER GROUP MODE PATH, --remove PATH or --list".to_owned()),
    })
}

fn id(name: &str, lookup: impl Fn(&str) -> Option<u32>) -> Option<u32> {
    match name.strip_prefix('#') {
        Some(number) => number.parse().ok(),
        None => lookup(name),
    }
}

/// Applies every override of every script (packages in name order) and
/// writes /var/lib/dpkg/statoverride; returns the records.
pub fn configure(
    tree: &mut Tree,
    scripts: &BTreeMap<String, Vec<Command>>,
    accounts: &Accounts,
) -> Result<BTreeMap<String, (String, String, u32)>, BuildError> {
    let mut records: BTreeMap<String, (String, String, u32)> = BTreeMap::new();
    for (package, command, op) in super::scripts::steps(scripts, parse) {
        match op {
            Op::Add {
                user,
                group,
                mode,
                path,
                update,
            } => {
                let uid = id(&user, |n| accounts.uid(n))
                    .ok_or_else(|| command.error(package, format!("no user {user}")))?;
                let gid = id(&group, |n| accounts.gid(n))
                    .ok_or_else(|| command.error(package, format!("no group {group}")))?;
                let applies = update || command.script == "preinst";
                if applies && let Some((canonical, _)) = tree.lookup(path.trim_start_matches('/')) {
                    let node = tree.get_mut(&canonical).expect("looked up");
                    node.uid = uid;
                    node.gid = gid;
                    node.mode = mode;
                }
                records.insert(path, (user, group, mode));
            }
            Op::Remove(path) => {
                records.remove(&path);
            }
            Op::List => {}
        }
    }
    let text: String = records
        .iter()
        .map(|(path, (user, group, mode))| format!("{user} {group} {mode:o} {path}\n"))
        .collect();
    put(tree, "var/lib/dpkg/statoverride", generated(text, 0o644))?;
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_tree::{Kind, Node};

    #[test]
    fn chronys_overrides_are_recorded_and_applied() {
        let mut tree = Tree::merged_usr();
        tree.put("var/lib/chrony", Node::new(Kind::Directory, 0o755))
            .unwrap();
        tree.put("var/log/chrony", Node::new(Kind::Directory, 0o755))
            .unwrap();
        let mut accounts = Accounts::default();
        for op in super::super::scripts::postinst("adduser --system --group _chrony\n")
            .iter()
            .filter_map(super::super::accounts::parse)
        {
            accounts.apply_for_tests(&op.unwrap());
        }
        let commands = super::super::scripts::postinst(
            "#!/bin/sh\nif ! dpkg-statoverride --list /var/lib/chrony > /dev/null; then\n  dpkg-statoverride --update --add _chrony _chrony 0750 /var/lib/chrony\nfi\ndpkg-statoverride --add _chrony adm 2750 /var/log/chrony\ndpkg-statoverride --add _chrony _chrony 0755 /usr/bin/gone\ndpkg-statoverride --remove /usr/bin/gone\n",
        );
        let scripts = BTreeMap::from([("chrony".to_owned(), commands)]);
        let error = configure(&mut tree, &scripts, &accounts).unwrap_err();
        assert!(error.to_string().contains("no group adm"), "{error}");
        // adm is not a group here: named in the error. With it, it works.
        accounts.apply_for_tests(&super::super::accounts::Op::Group {
            name: "adm".to_owned(),
            gid: Some(4),
            system: true,
        });
        let records = configure(&mut tree, &scripts, &accounts).unwrap();
        assert_eq!(records.len(), 2);
        let lib = tree.get("var/lib/chrony").unwrap();
        assert_eq!((lib.uid, lib.gid, lib.mode), (999, 999, 0o750));
        let log = tree.get("var/log/chrony").unwrap();
        assert_eq!(
            log.mode, 0o755,
            "no --update in a postinst: not applied now"
        );
        let Kind::File(airlock_tree::Content::Inline(text)) =
            &tree.get("var/lib/dpkg/statoverride").unwrap().kind
        else {
            panic!("no statoverride file");
        };
        assert_eq!(
            String::from_utf8_lossy(text),
            "_chrony _chrony 750 /var/lib/chrony\n_chrony adm 2750 /var/log/chrony\n"
        );
    }
}
