//! What base-files' and libc-bin's postinst do on a first installation,
//! as a table: files copied from the packages' own defaults when nothing
//! is there yet, the directories and links of the file-system layout, and
//! the empty login records. Each row applies only when its source (or the
//! package that provides it) is in the image.

use airlock_tree::{Kind, Node, Tree};

use super::accounts::Accounts;
use super::{generated, put, symlink};
use crate::BuildError;

/// (default, destination): copied when the destination is absent.
const FROM_DEFAULTS: &[(&str, &str)] = &[
    ("usr/share/base-files/dot.profile", "root/.profile"),
    ("usr/share/base-files/dot.bashrc", "root/.bashrc"),
    ("usr/share/base-files/profile", "etc/profile"),
    ("usr/share/base-files/motd", "etc/motd"),
    ("usr/share/base-files/info.dir", "usr/share/info/dir"),
    ("usr/share/libc-bin/nsswitch.conf", "etc/nsswitch.conf"),
];

/// (directory, mode, group): made when absent, as base-files does.
const DIRECTORIES: &[(&str, u32, &str)] = &[
    ("mnt", 0o755, "root"),
    ("srv", 0o755, "root"),
    ("opt", 0o755, "root"),
    ("etc/opt", 0o755, "root"),
    ("var/opt", 0o755, "root"),
    ("media", 0o755, "root"),
    ("var/mail", 0o2775, "mail"),
    ("run/lock", 0o1777, "root"),
    ("usr/local", 0o755, "root"),
    ("usr/local/share", 0o755, "root"),
    ("usr/local/share/man", 0o755, "root"),
    ("usr/local/bin", 0o755, "root"),
    ("usr/local/games", 0o755, "root"),
    ("usr/local/lib", 0o755, "root"),
    ("usr/local/include", 0o755, "root"),
    ("usr/local/sbin", 0o755, "root"),
    ("usr/local/src", 0o755, "root"),
    ("usr/local/etc", 0o755, "root"),
];

/// (link, target): directories base-files turns into links, and links it
/// makes.
const LINKS: &[(&str, &str)] = &[
    ("var/run", "/run"),
    ("var/lock", "/run/lock"),
    ("var/spool/mail", "../mail"),
    ("usr/local/man", "share/man"),
];

/// (file, mode): empty login records, group utmp.
const RECORDS: &[(&str, u32)] = &[
    ("var/log/wtmp", 0o664),
    ("var/log/btmp", 0o660),
    ("var/log/lastlog", 0o664),
];

/// Whether `path` (relative) is one the table writes: a script step on it
/// is done here.
pub fn covers(path: &str) -> bool {
    FROM_DEFAULTS.iter().any(|(_, d)| *d == path)
        || DIRECTORIES.iter().any(|(d, _, _)| *d == path)
        || LINKS.iter().any(|(l, _)| *l == path)
        || RECORDS.iter().any(|(r, _)| *r == path)
        || path == "etc/dpkg/origins/default"
}

/// Applies the table.
pub fn configure(tree: &mut Tree, accounts: &Accounts) -> Result<(), BuildError> {
    for (default, destination) in FROM_DEFAULTS {
        if tree.lookup(destination).is_some() {
            continue;
        }
        if let Some((_, node)) = tree.lookup(default) {
            let mut node = node.clone();
            node.owners.clear();
            node.mode = 0o644;
            put(tree, destination, node)?;
        }
    }
    if tree.lookup("usr/share/base-files").is_none() {
        return Ok(());
    }
    if tree.lookup("etc/dpkg/origins/debian").is_some()
        && tree.lookup("etc/dpkg/origins/default").is_none()
    {
        put(tree, "etc/dpkg/origins/default", symlink("debian"))?;
    }
    for (path, mode, group) in DIRECTORIES {
        if tree.lookup(path).is_none() {
            let mut node = Node::new(Kind::Directory, *mode);
            node.gid = accounts.gid(group).unwrap_or(0);
            put(tree, path, node)?;
        }
    }
    for (link, target) in LINKS {
        let is_link = matches!(tree.get(link).map(|n| &n.kind), Some(Kind::Symlink(_)));
        if !is_link {
            tree.remove(link).map_err(|source| BuildError::Tree {
                package: "base-files".to_owned(),
                source,
            })?;
            put(tree, link, symlink(target))?;
        }
    }
    let utmp = accounts.gid("utmp").unwrap_or(0);
    for (path, mode) in RECORDS {
        if tree.lookup(path).is_none() {
            let mut node = generated(Vec::new(), *mode);
            node.gid = utmp;
            put(tree, path, node)?;
        }
    }
    Ok(())
}
