//! File capabilities that packages grant in their postinst with `setcap`
//! (iputils-ping's `setcap cap_net_raw+ep /bin/ping`), read from the script
//! as data and applied as the `security.capability` xattr, never run.
//!
//! The scripts guard the call with `command -v setcap` and fall back to a
//! setuid bit when it is missing or fails; airlock always applies the
//! capability, the narrower privilege the package asks for first (to the
//! scripts' tests `setcap` is always there, see `scripts`, and the
//! fallback is not taken). The words come from the walk of the script, so
//! `PROGRAM=$(dpkg-divert --truename /bin/ping)` before the call is the
//! path itself; any word the walk does not know fails the build, naming
//! the package, the line and the command.

use std::collections::BTreeMap;

use airlock_tree::{Kind, Tree};

use super::scripts::Command;
use crate::BuildError;
use crate::capability::{FileCaps, XATTR};

/// One capability a package granted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Granted {
    /// The package.
    pub package: String,
    /// The file (canonical path).
    pub path: String,
    /// Its capabilities.
    pub caps: FileCaps,
}

/// Applies every `setcap` of every package's postinst, in package order.
pub fn configure(
    tree: &mut Tree,
    scripts: &BTreeMap<String, Vec<Command>>,
) -> Result<Vec<Granted>, BuildError> {
    let mut granted = Vec::new();
    for (package, commands) in scripts {
        for command in commands {
            if command.script != "postinst" || command.name().rsplit('/').next() != Some("setcap") {
                continue;
            }
            let fail = |message: String| BuildError::Package {
                package: package.clone(),
                message: format!("{}: {message}", command.place()),
            };
            if command.expands {
                return Err(fail(format!(
                    "`{}`: a word airlock cannot expand without running the script",
                    command.text
                )));
            }
            for (text, file) in setcap_pairs(&command.words).map_err(&fail)? {
                let caps = if text.is_empty() {
                    FileCaps::default() // setcap -r
                } else {
                    FileCaps::parse(&text).map_err(|e| fail(format!("setcap: {e}")))?
                };
                let relative = file.trim_start_matches('/');
                let Some((path, node)) = tree.lookup(relative) else {
                    return Err(fail(format!(
                        "setcap {text} {file}: no such file in the image"
                    )));
                };
                if !matches!(node.kind, Kind::File(_)) {
                    return Err(fail(format!("setcap {text} {file}: not a regular file")));
                }
                let node = tree.get_mut(&path).expect("looked up");
                if caps.is_empty() {
                    node.xattrs.remove(XATTR);
                } else {
                    node.xattrs.insert(XATTR.to_owned(), caps.to_xattr());
                }
                granted.push(Granted {
                    package: package.clone(),
                    path,
                    caps,
                });
            }
        }
    }
    Ok(granted)
}

/// `setcap [-q] [-v] [-r] CAPS FILE [CAPS FILE …]` as (caps, file) pairs;
/// `-r` (remove) is an empty set. `-v` only verifies, so it grants nothing.
fn setcap_pairs(words: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut rest = &words[1..];
    let mut remove = false;
    while let Some(option) = rest.first().filter(|w| w.starts_with('-')) {
        match option.as_str() {
            "-q" => {}
            "-v" => return Ok(Vec::new()),
            "-r" => remove = true,
            other => {
                return Err(format!(
                    "`{}`: setcap option {other} is not supported",
                    words.join(" ")
                ));
            }
        }
        rest = &rest[1..];
    }
    if remove {
        return Ok(rest
            .iter()
            .map(|file| (String::new(), file.clone()))
            .collect());
    }
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(format!(
            "`{}`: expected capabilities and file pairs",
            words.join(" ")
        ));
    }
    Ok(rest
        .chunks(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_tree::{Content, Node};

    fn walked(scripts: BTreeMap<String, String>) -> BTreeMap<String, Vec<Command>> {
        scripts
            .into_iter()
            .map(|(package, text)| (package, super::super::scripts::postinst(&text)))
            .collect()
    }

    fn tree() -> Tree {
        let mut tree = Tree::merged_usr();
        let file = Node::new(Kind::File(Content::Inline(b"\x7fELF".to_vec())), 0o755);
        tree.insert("usr/bin/ping", file.clone(), &|_| false)
            .unwrap();
        tree.insert("usr/bin/mtr-packet", file, &|_| false).unwrap();
        tree
    }

    #[test]
    fn ping_gets_cap_net_raw_through_the_bin_symlink() {
        let mut tree = tree();
        let scripts = BTreeMap::from([
            ("iputils-ping".to_owned(), airlock_fixtures::PING_POSTINST.to_owned()),
            (
                "mtr-tiny".to_owned(),
                "if ! setcap cap_net_raw+ep /usr/bin/mtr-packet; then\n chmod u+s /usr/bin/mtr-packet\nfi\n"
                    .to_owned(),
            ),
        ]);
        let granted = configure(&mut tree, &walked(scripts)).unwrap();
        assert_eq!(granted.len(), 2);
        assert_eq!(granted[0].path, "usr/bin/ping");
        assert_eq!(granted[0].caps.to_string(), "cap_net_raw=ep");
        let ping = tree.get("usr/bin/ping").unwrap();
        assert_eq!(
            ping.xattrs.get(XATTR).map(hex::encode).as_deref(),
            Some("0100000200200000000000000000000000000000")
        );
        assert_eq!(ping.mode, 0o755, "the setuid fallback is not taken");
        assert!(
            tree.get("usr/bin/mtr-packet")
                .unwrap()
                .xattrs
                .contains_key(XATTR)
        );
    }

    #[test]
    fn what_cannot_be_read_as_data_fails_by_name() {
        for (script, expected) in [
            ("setcap cap_net_raw+ep $(which ping)\n", "cannot expand"),
            (
                "P=`which ping`\nsetcap cap_net_raw+ep $P\n",
                "cannot expand",
            ),
            ("setcap -n 1000 cap_net_raw+ep /usr/bin/ping\n", "option -n"),
            ("setcap cap_net_raw+ep /usr/bin/nope\n", "no such file"),
            (
                "setcap cap_net_rawr+ep /usr/bin/ping\n",
                "unknown capability",
            ),
        ] {
            let scripts = BTreeMap::from([("p".to_owned(), script.to_owned())]);
            let error = configure(&mut tree(), &walked(scripts))
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with("p: postinst line ") && error.contains(expected),
                "{script:?}: {error}"
            );
        }
    }

    #[test]
    fn remove_and_verify_forms() {
        let mut tree = tree();
        let scripts = BTreeMap::from([
            (
                "a".to_owned(),
                "setcap cap_net_raw+ep /usr/bin/ping\n".to_owned(),
            ),
            (
                "b".to_owned(),
                "setcap -v cap_sys_admin+ep /usr/bin/ping\nsetcap -r /usr/bin/ping\n".to_owned(),
            ),
        ]);
        configure(&mut tree, &walked(scripts)).unwrap();
        assert!(tree.get("usr/bin/ping").unwrap().xattrs.is_empty());
    }
}
