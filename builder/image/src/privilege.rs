//! Privilege in the image: what packages may ship, and the inventory a
//! reviewer reads first.
//!
//! Debian policy forbids device files in packages, so a device node fails
//! the build unless the recipe names its path in `[packages]
//! allow_device_nodes`. A setuid or setgid file that its group or everyone
//! may write is never legitimate (anyone could replace what runs with its
//! owner's rights): it fails the build whoever shipped it. Everything that
//! holds privilege (setuid and setgid files, file capabilities, device
//! nodes) goes into the inventory: the build report, both SBOMs and
//! `airlock diff` list it.

use std::collections::BTreeSet;

use airlock_tree::{Kind, Node, Tree};

use crate::BuildError;
use crate::capability::{FileCaps, XATTR};

/// Refuses what no package may ship: device nodes outside `allowed`
/// (canonical paths, no leading `/`) and group- or world-writable setuid or
/// setgid files.
pub fn check_entry(
    package: &str,
    path: &str,
    node: &Node,
    allowed: &BTreeSet<String>,
) -> Result<(), BuildError> {
    let refuse = |message: String| BuildError::Privilege {
        package: package.to_owned(),
        path: format!("/{path}"),
        message,
    };
    if let Kind::CharDevice { major, minor } | Kind::BlockDevice { major, minor } = node.kind
        && !allowed.contains(path)
    {
        return Err(refuse(format!(
            "a {} device node ({major},{minor}, mode {:04o}); Debian packages ship none: \
             name the path in [packages] allow_device_nodes if it is really wanted",
            device_letter(&node.kind),
            node.mode
        )));
    }
    // Directories are not: a setgid directory its group may write
    // (/var/local, /var/mail: 2775) is how shared folders work.
    if matches!(node.kind, Kind::File(_)) && node.mode & 0o6000 != 0 && node.mode & 0o022 != 0 {
        return Err(refuse(format!(
            "a {} file (mode {:04o}) that {} may write",
            if node.mode & 0o4000 != 0 {
                "setuid"
            } else {
                "setgid"
            },
            node.mode,
            if node.mode & 0o002 != 0 {
                "everyone"
            } else {
                "its group"
            }
        )));
    }
    Ok(())
}

fn device_letter(kind: &Kind) -> &'static str {
    match kind {
        Kind::BlockDevice { .. } => "block",
        _ => "character",
    }
}

pub use airlock_format::report::Privileged;

/// Every privileged path of `tree`, sorted by path. A capability xattr that
/// is not a valid one fails: nothing unreadable goes in silently.
pub fn inventory(tree: &Tree) -> Result<Vec<Privileged>, BuildError> {
    let mut out = Vec::new();
    for (path, node) in tree.iter() {
        let mut kinds = Vec::new();
        let is_file = matches!(node.kind, Kind::File(_));
        if is_file && node.mode & 0o4000 != 0 {
            kinds.push("setuid");
        }
        if is_file && node.mode & 0o2000 != 0 {
            kinds.push("setgid");
        }
        let capabilities = match node.xattrs.get(XATTR) {
            Some(bytes) => {
                let caps = FileCaps::from_xattr(bytes).map_err(|e| BuildError::Privilege {
                    package: node.owners.join(", "),
                    path: format!("/{path}"),
                    message: format!("{XATTR}: {e}"),
                })?;
                kinds.push("capabilities");
                Some(caps.to_string())
            }
            None => None,
        };
        let device = match node.kind {
            Kind::CharDevice { major, minor } => Some(format!("c {major},{minor}")),
            Kind::BlockDevice { major, minor } => Some(format!("b {major},{minor}")),
            _ => None,
        };
        if device.is_some() {
            kinds.push("device");
        }
        if kinds.is_empty() {
            continue;
        }
        kinds.sort_unstable();
        let mut packages = node.owners.clone();
        if packages.is_empty() {
            packages.push("airlock".to_owned());
        }
        out.push(Privileged {
            path: format!("/{path}"),
            kinds: kinds.into_iter().map(str::to_owned).collect(),
            mode: format!("{:04o}", node.mode),
            uid: node.uid,
            gid: node.gid,
            capabilities,
            device,
            packages,
        });
    }
    Ok(out)
}

/// The same checks as [`check_entry`] over the finished tree, for what the
/// recipe added (its own files may not be writable setuid files either).
pub fn check_tree(tree: &Tree, allowed: &BTreeSet<String>) -> Result<(), BuildError> {
    for (path, node) in tree.iter() {
        let owner = node
            .owners
            .first()
            .map_or("airlock", String::as_str)
            .to_owned();
        check_entry(&owner, path, node, allowed)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_tree::Content;

    fn node(kind: Kind, mode: u32) -> Node {
        let mut node = Node::new(kind, mode);
        node.owners = vec!["evil".to_owned()];
        node
    }

    fn file(mode: u32) -> Node {
        node(Kind::File(Content::Inline(b"x".to_vec())), mode)
    }

    #[test]
    fn devices_and_writable_setuid_files_are_refused_by_name() {
        let none = BTreeSet::new();
        let mem = node(Kind::CharDevice { major: 1, minor: 1 }, 0o666);
        let error = check_entry("evil", "dev/mem", &mem, &none).unwrap_err();
        assert_eq!(
            error.to_string(),
            "evil: /dev/mem: a character device node (1,1, mode 0666); Debian packages ship none: name the path in [packages] allow_device_nodes if it is really wanted"
        );
        let allowed = BTreeSet::from(["dev/mem".to_owned()]);
        check_entry("evil", "dev/mem", &mem, &allowed).unwrap();
        let error = check_entry("evil", "usr/bin/x", &file(0o6777), &none).unwrap_err();
        assert_eq!(
            error.to_string(),
            "evil: /usr/bin/x: a setuid file (mode 6777) that everyone may write"
        );
        let error = check_entry("evil", "usr/bin/x", &file(0o2775), &none).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("a setgid file (mode 2775) that its group may write")
        );
        for fine in [0o4755, 0o2755, 0o0777, 0o1777] {
            check_entry("good", "usr/bin/x", &file(fine), &none).unwrap();
        }
        // base-files' /var/local.
        check_entry(
            "base-files",
            "var/local",
            &node(Kind::Directory, 0o2775),
            &none,
        )
        .unwrap();
    }

    #[test]
    fn the_inventory_lists_setuid_capabilities_and_devices() {
        let mut tree = Tree::merged_usr();
        tree.insert("usr/bin/su", file(0o4755), &|_| false).unwrap();
        let mut ping = file(0o755);
        ping.xattrs.insert(
            XATTR.to_owned(),
            FileCaps::parse("cap_net_raw+ep").unwrap().to_xattr(),
        );
        tree.insert("usr/bin/ping", ping, &|_| false).unwrap();
        tree.insert("usr/bin/ls", file(0o755), &|_| false).unwrap();
        tree.insert("dev", node(Kind::Directory, 0o755), &|_| false)
            .unwrap();
        tree.insert(
            "dev/kmsg",
            node(
                Kind::CharDevice {
                    major: 1,
                    minor: 11,
                },
                0o644,
            ),
            &|_| false,
        )
        .unwrap();
        let lines: Vec<String> = inventory(&tree)
            .unwrap()
            .iter()
            .map(Privileged::describe)
            .collect();
        assert_eq!(
            lines,
            [
                "/dev/kmsg: device c 1,11 (0644 0:0, evil)",
                "/usr/bin/ping: capabilities cap_net_raw=ep (0755 0:0, evil)",
                "/usr/bin/su: setuid (4755 0:0, evil)",
            ]
        );
    }
}
