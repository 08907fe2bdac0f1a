//! File capabilities that packages grant in their postinst with `setcap`
//! (iputils-ping's `setcap cap_net_raw+ep /bin/ping`), read from the script
//! as data and applied as the `security.capability` xattr, never run.
//!
//! The scripts guard the call with `command -v setcap` and fall back to a
//! setuid bit when it is missing or fails; airlock always applies the
//! capability, the narrower privilege the package asks for first. Plain
//! assignments before the call (`PROGRAM=/bin/ping`, and
//! `PROGRAM=$(dpkg-divert --truename /bin/ping)`, which is the path itself
//! in an image without diversions) are substituted; any other expansion
//! fails the build, naming the package and the command.

use std::collections::BTreeMap;

use airlock_tree::{Kind, Tree};

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

/// Applies every `setcap` of every package's postinst (`scripts`: package
/// name → postinst text), in package order.
pub fn configure(
    tree: &mut Tree,
    scripts: &BTreeMap<String, String>,
) -> Result<Vec<Granted>, BuildError> {
    let mut granted = Vec::new();
    for (package, script) in scripts {
        let fail = |message: String| BuildError::Package {
            package: package.clone(),
            message: format!("postinst: {message}"),
        };
        let variables = assignments(script);
        for command in super::scripts::commands(script) {
            // The splitter leaves `if`, `elif`, `while`, `until` and a
            // `!` after them in front of the command they test.
            let start = command
                .words
                .iter()
                .position(|w| !matches!(w.as_str(), "if" | "elif" | "while" | "until" | "!"))
                .unwrap_or(command.words.len());
            let Some(first) = command.words.get(start) else {
                continue;
            };
            if first.rsplit('/').next() != Some("setcap") {
                continue;
            }
            let words: Vec<String> = command.words[start..]
                .iter()
                .map(|word| substitute(word, &variables))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    fail(format!(
                        "`{}`: a word airlock cannot expand without running the script",
                        command.words.join(" ")
                    ))
                })?;
            for (text, file) in setcap_pairs(&words).map_err(&fail)? {
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

/// `NAME=value` lines whose value needs no shell: a literal, or
/// `$(dpkg-divert --truename PATH)`.
fn assignments(script: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in script.lines() {
        let line = line.trim();
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let valid_name = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            continue;
        }
        let value = value.trim().trim_matches('"');
        let literal = if let Some(inner) = value
            .strip_prefix("$(dpkg-divert --truename ")
            .and_then(|v| v.strip_suffix(')'))
        {
            Some(inner.trim().to_owned())
        } else if value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:".contains(c))
        {
            Some(value.to_owned())
        } else {
            None
        };
        match literal {
            Some(literal) if !literal.is_empty() => {
                out.insert(name.to_owned(), literal);
            }
            // Assigned something airlock cannot know: forget it, so a use
            // of it fails rather than taking an older value.
            _ => {
                out.remove(name);
            }
        }
    }
    out
}

/// `word` with `$NAME` and `${NAME}` replaced, or `None` if something is
/// left that needs the shell.
fn substitute(word: &str, variables: &BTreeMap<String, String>) -> Option<String> {
    let mut out = String::new();
    let mut rest = word;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced.find('}')?;
            (&braced[..end], &braced[end + 1..])
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.push_str(variables.get(name)?);
        rest = tail;
    }
    if rest.contains('`') {
        return None;
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_tree::{Content, Node};

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
        let granted = configure(&mut tree, &scripts).unwrap();
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
            let error = configure(&mut tree(), &scripts).unwrap_err().to_string();
            assert!(
                error.starts_with("p: postinst: ") && error.contains(expected),
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
        configure(&mut tree, &scripts).unwrap();
        assert!(tree.get("usr/bin/ping").unwrap().xattrs.is_empty());
    }
}
