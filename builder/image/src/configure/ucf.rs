//! `ucf` and `ucfr`, natively: the configuration files packages install
//! from a template in their postinst (openssh-server's sshd_config). On a
//! fresh system `ucf NEW DEST` copies NEW to DEST, with NEW's mode, when
//! DEST does not exist, and records NEW's md5 in /var/lib/ucf/hashfile
//! (`MD5  DEST`, md5sum's format); `ucfr PACKAGE DEST` records the owner in
//! /var/lib/ucf/registry (`PACKAGE \t DEST`, a tab between two spaces, as
//! ucfr writes it). A DEST the image has already
//! (a package's or the recipe's file) is kept, as ucf keeps it.

use std::collections::BTreeMap;

use airlock_store::Store;
use airlock_tree::{Kind, Tree};
use md5::Digest;

use super::scripts::Command;
use super::{generated, put, read_content};
use crate::BuildError;

/// One ucf step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `ucf [options] NEW DEST`.
    Install {
        /// The template.
        new: String,
        /// The configuration file.
        dest: String,
    },
    /// `ucfr [options] PACKAGE DEST`.
    Register {
        /// The package.
        package: String,
        /// The configuration file.
        dest: String,
    },
    /// `ucf --purge` or `ucfr --purge`: nothing on a fresh install.
    Nothing,
}

/// Reads a `ucf` or `ucfr` command; None for any other.
pub fn parse(command: &Command) -> Option<Result<Op, String>> {
    let program = command.name().rsplit('/').next()?;
    if !matches!(program, "ucf" | "ucfr") {
        return None;
    }
    if command.expands {
        return Some(Err(
            "a word's value is not known without running the script".to_owned(),
        ));
    }
    let mut operands = Vec::new();
    let mut purge = false;
    let mut words = command.words[1..].iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            // The md5sums of older versions' files: only for upgrades.
            "--sum-file" => {
                words.next();
            }
            "--purge" | "-p" => purge = true,
            "--three-way" | "-3" | "--debconf-ok" | "-d" | "--verbose" | "-v" | "--force"
            | "-f" => {}
            w if w.starts_with('-') => {
                return Some(Err(format!("option {w} is not one airlock knows")));
            }
            _ => operands.push(word.clone()),
        }
    }
    if purge {
        return Some(Ok(Op::Nothing));
    }
    Some(match (program, &operands[..]) {
        ("ucf", [new, dest]) if new.starts_with('/') && dest.starts_with('/') => Ok(Op::Install {
            new: new.clone(),
            dest: dest.clone(),
        }),
        ("ucfr", [package, dest]) if dest.starts_with('/') => Ok(Op::Register {
            package: package.clone(),
            dest: dest.clone(),
        }),
        _ => Err("expected NEW DEST (ucf) or PACKAGE DEST (ucfr), absolute paths".to_owned()),
    })
}

/// Does every ucf step of every script; writes the hashfile and the
/// registry when there was one.
pub fn configure(
    tree: &mut Tree,
    blobs: &Store,
    scripts: &BTreeMap<String, Vec<Command>>,
) -> Result<(), BuildError> {
    let mut hashes: BTreeMap<String, String> = BTreeMap::new();
    let mut registry: BTreeMap<String, String> = BTreeMap::new();
    for (package, command, op) in super::scripts::steps(scripts, parse) {
        match op {
            Op::Install { new, dest } => {
                let Some((_, node)) = tree.lookup(new.trim_start_matches('/')) else {
                    return Err(command.error(package, format!("{new}: no such file in the image")));
                };
                let Kind::File(content) = &node.kind else {
                    return Err(command.error(package, format!("{new}: not a regular file")));
                };
                let bytes = read_content(blobs, content)?;
                let mode = node.mode & 0o7777;
                hashes.insert(dest.clone(), hex::encode(md5::Md5::digest(&bytes)));
                let relative = dest.trim_start_matches('/');
                if tree.lookup(relative).is_none() {
                    put(tree, relative, generated(bytes, mode))?;
                }
            }
            Op::Register { package, dest } => {
                registry.insert(dest, package);
            }
            Op::Nothing => {}
        }
    }
    // ucf's own postinst makes both files; airlock makes them with what
    // the steps recorded.
    let has_ucf = tree.lookup("usr/bin/ucf").is_some();
    if has_ucf || !hashes.is_empty() {
        let text: String = hashes
            .iter()
            .map(|(dest, md5)| format!("{md5}  {dest}\n"))
            .collect();
        put(tree, "var/lib/ucf/hashfile", generated(text, 0o644))?;
    }
    if has_ucf || !registry.is_empty() {
        let text: String = registry
            .iter()
            .map(|(dest, package)| format!("{package} \t {dest}\n"))
            .collect();
        put(tree, "var/lib/ucf/registry", generated(text, 0o644))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_tree::{Content, Node};

    #[test]
    fn sshd_config_is_installed_from_its_template_once() {
        let mut tree = Tree::merged_usr();
        let template = Node::new(Kind::File(Content::Inline(b"Port 22\n".to_vec())), 0o644);
        tree.put("usr/share/openssh/sshd_config", template).unwrap();
        let commands = super::super::scripts::postinst(
            "#!/bin/sh\nnew_config=$(mktemp)\ncp -a /usr/share/openssh/sshd_config \"$new_config\"\nucf --three-way --debconf-ok /usr/share/openssh/sshd_config /etc/ssh/sshd_config\nucfr openssh-server /etc/ssh/sshd_config\n",
        );
        let scripts = BTreeMap::from([("openssh-server".to_owned(), commands)]);
        let blobs = Store::open(tempfile::tempdir().unwrap().path()).unwrap();
        configure(&mut tree, &blobs, &scripts).unwrap();
        fn text(tree: &Tree, path: &str) -> String {
            match &tree.get(path).unwrap().kind {
                Kind::File(Content::Inline(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
                _ => panic!("{path}"),
            }
        }
        assert_eq!(text(&tree, "etc/ssh/sshd_config"), "Port 22\n");
        assert_eq!(
            text(&tree, "var/lib/ucf/hashfile"),
            format!(
                "{:x}  /etc/ssh/sshd_config\n",
                md5::Md5::digest(b"Port 22\n")
            )
        );
        assert_eq!(
            text(&tree, "var/lib/ucf/registry"),
            "openssh-server \t /etc/ssh/sshd_config\n"
        );
        // A file the image has already is kept.
        let recipe = Node::new(Kind::File(Content::Inline(b"Port 2222\n".to_vec())), 0o600);
        tree.put("etc/ssh/sshd_config", recipe).unwrap();
        configure(&mut tree, &blobs, &scripts).unwrap();
        assert_eq!(text(&tree, "etc/ssh/sshd_config"), "Port 2222\n");
    }
}
