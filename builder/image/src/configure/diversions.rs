//! `dpkg-divert`, natively: each `--add` of the scripts (read as data) is
//! recorded in /var/lib/dpkg/diversions as dpkg keeps it (the path, where
//! it is diverted to, the package or `:` for a local one), and with
//! `--rename` the file moves to the diverted name. On a fresh install no
//! diversion exists before the scripts make one, so `--remove` has nothing
//! to remove and `--listpackage`/`--truename` only ask (the walk answers
//! them: no diverter, the path itself).

use std::collections::BTreeMap;

use airlock_tree::Tree;

use super::scripts::Command;
use super::{generated, put};
use crate::BuildError;

/// One `dpkg-divert` step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `[--package P | --local] [--divert TO] [--rename | --no-rename]
    /// --add PATH`.
    Add {
        /// The path diverted.
        path: String,
        /// Where it goes (`PATH.distrib` when not given).
        to: String,
        /// The package it is diverted for; None for `--local`.
        package: Option<String>,
        /// Whether the file moves now.
        rename: bool,
    },
    /// `--remove PATH`.
    Remove(String),
    /// `--list`, `--listpackage`, `--truename`: only asks.
    Query,
}

/// Reads a `dpkg-divert` command; None if it is another command.
pub fn parse(command: &Command) -> Option<Result<Op, String>> {
    if command.name().rsplit('/').next() != Some("dpkg-divert") {
        return None;
    }
    if command.expands {
        return Some(Err(
            "a word's value is not known without running the script".to_owned(),
        ));
    }
    Some(read(&command.words[1..]))
}

fn read(words: &[String]) -> Result<Op, String> {
    let (mut package, mut to, mut rename, mut action) = (None, None, false, None);
    let mut operands = Vec::new();
    let mut words = words.iter();
    while let Some(word) = words.next() {
        let mut value = |name: &str| {
            words
                .next()
                .cloned()
                .ok_or_else(|| format!("{name} without its value"))
        };
        match word.as_str() {
            "--package" => package = Some(value("--package")?),
            "--local" => package = None,
            "--divert" => to = Some(value("--divert")?),
            "--rename" => rename = true,
            "--no-rename" | "--quiet" | "--test" => {}
            "--add" | "--remove" | "--list" | "--listpackage" | "--truename" => {
                action = Some(word.clone());
            }
            w if w.starts_with('-') => return Err(format!("option {w} is not one airlock reads")),
            _ => operands.push(word.clone()),
        }
    }
    match (action.as_deref(), &operands[..]) {
        (Some("--add") | None, [path]) if path.starts_with('/') => Ok(Op::Add {
            to: to.unwrap_or_else(|| format!("{path}.distrib")),
            path: path.clone(),
            package,
            rename,
        }),
        (Some("--remove"), [path]) => Ok(Op::Remove(path.clone())),
        (Some("--list" | "--listpackage" | "--truename"), _) => Ok(Op::Query),
        _ => Err("expected --add PATH, --remove PATH or a query".to_owned()),
    }
}

/// Why an `--add` of `package`'s script cannot be done, if it cannot: it
/// diverts a file another package ships without moving it, and dpkg would
/// then have unpacked that package's file to the diverted name.
pub fn refused(tree: &Tree, op: &Op) -> Option<String> {
    let Op::Add {
        path,
        package,
        rename: false,
        ..
    } = op
    else {
        return None;
    };
    let (_, node) = tree.lookup(path.trim_start_matches('/'))?;
    let shipper = node.owners.first()?;
    (Some(shipper) != package.as_ref()).then(|| {
        format!(
            "diverts {path}, which {shipper} ships, without --rename: dpkg would unpack it to \
             the diverted name, which airlock does not do"
        )
    })
}

/// Does every diversion of every script and writes
/// /var/lib/dpkg/diversions; returns the records (path → (to, package)).
pub fn configure(
    tree: &mut Tree,
    scripts: &BTreeMap<String, Vec<Command>>,
) -> Result<BTreeMap<String, (String, String)>, BuildError> {
    let mut records: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (package, command, op) in super::scripts::steps(scripts, parse) {
        if let Some(why) = refused(tree, &op) {
            return Err(command.error(package, why));
        }
        match op {
            Op::Add {
                path,
                to,
                package: diverter,
                rename,
            } => {
                let from = path.trim_start_matches('/');
                if rename
                    && let Some(node) = tree.get(from).cloned()
                    && tree.lookup(to.trim_start_matches('/')).is_none()
                {
                    let fail = |source| BuildError::Tree {
                        package: package.to_owned(),
                        source,
                    };
                    tree.remove(from).map_err(fail)?;
                    tree.put(to.trim_start_matches('/'), node).map_err(fail)?;
                }
                records.insert(path, (to, diverter.unwrap_or_else(|| ":".to_owned())));
            }
            Op::Remove(path) => {
                records.remove(&path);
            }
            Op::Query => {}
        }
    }
    let text: String = records
        .iter()
        .map(|(path, (to, package))| format!("{path}\n{to}\n{package}\n"))
        .collect();
    put(tree, "var/lib/dpkg/diversions", generated(text, 0o644))?;
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_tree::{Content, Kind, Node};

    #[test]
    fn dashs_diversions_are_recorded_and_a_rename_moves_the_file() {
        let mut tree = Tree::merged_usr();
        tree.put(
            "usr/bin/tool",
            Node::new(Kind::File(Content::Inline(b"x".to_vec())), 0o755).owned_by("tool"),
        )
        .unwrap();
        let commands = super::super::scripts::postinst(
            "#!/bin/sh\ndpkg-divert --package bash --no-rename --remove /bin/sh\ndpkg-divert --package dash --no-rename --divert /bin/sh.distrib --add /bin/sh\ndpkg-divert --local --rename --add /usr/bin/tool\n",
        );
        let scripts = BTreeMap::from([("dash".to_owned(), commands)]);
        let records = configure(&mut tree, &scripts).unwrap();
        assert_eq!(records.len(), 2);
        let Kind::File(Content::Inline(text)) = &tree.get("var/lib/dpkg/diversions").unwrap().kind
        else {
            panic!("no diversions file");
        };
        assert_eq!(
            String::from_utf8_lossy(text),
            "/bin/sh\n/bin/sh.distrib\ndash\n/usr/bin/tool\n/usr/bin/tool.distrib\n:\n"
        );
        assert!(tree.get("usr/bin/tool").is_none());
        assert!(tree.get("usr/bin/tool.distrib").is_some(), "renamed");
        // Diverting another package's file without moving it is refused.
        let commands = super::super::scripts::postinst(
            "#!/bin/sh\ndpkg-divert --package mine --add /usr/bin/tool.distrib\n",
        );
        let scripts = BTreeMap::from([("mine".to_owned(), commands)]);
        let error = configure(&mut tree, &scripts).unwrap_err().to_string();
        assert!(error.contains("which tool ships"), "{error}");
    }
}
