//! The caches the scripts' `ldconfig`, `systemd-hwdb update` and
//! `journalctl --update-catalog` (and the triggers that run them) would
//! write, built natively from the finished tree by [`airlock_caches`], byte
//! for byte what those tools write:
//!
//! - `/etc/ld.so.cache`, with the soname links ldconfig would make and
//!   without its dangling `.so.` links, when the image has ldconfig;
//! - `/usr/lib/udev/hwdb.bin` (`--usr`), when it has systemd-hwdb;
//! - `/var/lib/systemd/catalog/database`, when it has journalctl.
//!
//! ldconfig's `aux-cache` is not written: it only speeds up a later
//! ldconfig run, and holds inode numbers and times.

use std::collections::BTreeSet;
use std::io::Cursor;

use airlock_caches::ldcache::{self, Candidate, Chosen};
use airlock_store::Store;
use airlock_tree::{Content, Kind, Tree};

use super::{generated, put, remove, symlink};
use crate::BuildError;

mod dirs;
pub use dirs::scanned;

/// Builds every cache whose tool the image has.
pub fn configure(
    tree: &mut Tree,
    blobs: &Store,
    packages: &[crate::extract::Unpacked],
) -> Result<(), BuildError> {
    if has(tree, "sbin/ldconfig") {
        let version = version(packages, "libc-bin").ok_or_else(|| BuildError::Config {
            what: "ld.so.cache".to_owned(),
            message: "the image has ldconfig but not libc-bin's version".to_owned(),
        })?;
        linker_cache(tree, blobs, &ldcache::generator(&version))?;
    }
    if has(tree, "bin/systemd-hwdb") {
        hwdb(tree, blobs)?;
    }
    if has(tree, "bin/journalctl") {
        catalog(tree, blobs)?;
    }
    Ok(())
}

fn has(tree: &Tree, path: &str) -> bool {
    tree.lookup(path)
        .is_some_and(|(_, node)| matches!(node.kind, Kind::File(_) | Kind::Hardlink(_)))
}

/// A package's version, from its control file.
fn version(packages: &[crate::extract::Unpacked], name: &str) -> Option<String> {
    let package = packages.iter().find(|p| p.name == name)?;
    let control = std::str::from_utf8(package.control_files.get("control")?).ok()?;
    control
        .lines()
        .find_map(|line| line.strip_prefix("Version:"))
        .map(|v| v.trim().to_owned())
}

fn cache_error(what: &str) -> impl Fn(String) -> BuildError + '_ {
    move |message| BuildError::Config {
        what: what.to_owned(),
        message,
    }
}

/// The bytes of the file at canonical `path` (a hard link's target's).
fn content(tree: &Tree, path: &str) -> Option<Content> {
    match &tree.get(path)?.kind {
        Kind::File(content) => Some(content.clone()),
        Kind::Hardlink(target) => match &tree.get(target)?.kind {
            Kind::File(content) => Some(content.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn inspect(
    blobs: &Store,
    content: &Content,
    path: &str,
) -> Result<Option<airlock_caches::elf::Library>, BuildError> {
    let io = |source| BuildError::Io {
        what: format!("/{path}"),
        source,
    };
    match content {
        Content::Inline(bytes) => airlock_caches::elf::inspect(&mut Cursor::new(bytes)).map_err(io),
        Content::Stored { sha256, .. } => {
            let mut file = std::fs::File::open(blobs.path(sha256)).map_err(io)?;
            airlock_caches::elf::inspect(&mut file).map_err(io)
        }
    }
}

/// ld.so.cache: each scanned directory's libraries chosen as ldconfig
/// chooses them, the soname links it would make, and the file.
fn linker_cache(tree: &mut Tree, blobs: &Store, generator: &str) -> Result<(), BuildError> {
    let dirs = scanned(tree, blobs).map_err(cache_error("ld.so.cache"))?;
    let mut chosen_dirs: Vec<(String, Vec<Chosen>)> = Vec::new();
    for dir in &dirs {
        let mut candidates = Vec::new();
        let mut dangling = Vec::new();
        for (name, node) in tree.children(&dir.canonical) {
            if !ldcache::is_library_name(name) {
                continue;
            }
            let path = format!("{}/{name}", dir.canonical);
            let symlink = matches!(node.kind, Kind::Symlink(_));
            let target = match &node.kind {
                Kind::Symlink(_) => match tree.lookup(&path) {
                    Some((target, _)) => target,
                    None => {
                        dangling.push(path);
                        continue;
                    }
                },
                Kind::File(_) | Kind::Hardlink(_) => path.clone(),
                _ => continue,
            };
            let Some(content) = content(tree, &target) else {
                continue;
            };
            if let Some(library) = inspect(blobs, &content, &path)? {
                candidates.push(Candidate {
                    name: name.to_owned(),
                    symlink,
                    flags: library.flags,
                    soname: library.soname,
                });
            }
        }
        let chosen = ldcache::choose(&candidates);
        for path in dangling.into_iter().filter(|p| p.contains(".so.")) {
            remove(tree, &path)?;
        }
        link(tree, &dir.canonical, &chosen)?;
        chosen_dirs.push((dir.written.clone(), chosen));
    }
    let entries = ldcache::entries(&chosen_dirs);
    put(
        tree,
        "etc/ld.so.cache",
        generated(ldcache::write(&entries, generator), 0o644),
    )
}

/// The soname links ldconfig makes: `SONAME -> FILE` for each library file
/// whose soname names nothing, or a link to another file (but never over a
/// file, nor over the dynamic linker's own link).
fn link(tree: &mut Tree, dir: &str, chosen: &[Chosen]) -> Result<(), BuildError> {
    for library in chosen.iter().filter(|c| !c.link && c.name != c.soname) {
        let at = format!("{dir}/{}", library.soname);
        let file = tree
            .lookup(&format!("{dir}/{}", library.name))
            .map(|(p, _)| p);
        let replace = match tree.get(&at).map(|n| &n.kind) {
            None => true,
            Some(Kind::Symlink(_)) => {
                !library.soname.starts_with("ld-linux") && tree.lookup(&at).map(|(p, _)| p) != file
            }
            Some(_) => false,
        };
        if replace {
            put(tree, &at, symlink(&library.name))?;
        }
    }
    Ok(())
}

/// The files of `dirs` (canonical paths) a cache reads: names with
/// `suffix`, the first directory's hiding the same name in a later one,
/// sorted by name; each with the path it is known by and its bytes (a link
/// to /dev/null is an empty file, as systemd reads it).
fn config_files(
    tree: &Tree,
    blobs: &Store,
    dirs: &[&str],
    suffix: &str,
) -> Result<Vec<(String, String, Vec<u8>)>, BuildError> {
    let mut seen = BTreeSet::new();
    let mut files = Vec::new();
    for dir in dirs {
        let Some((canonical, node)) = tree.lookup(dir) else {
            continue;
        };
        if !matches!(node.kind, Kind::Directory) {
            continue;
        }
        for (name, node) in tree.children(&canonical) {
            if !name.ends_with(suffix) || !seen.insert(name.to_owned()) {
                continue;
            }
            let path = format!("{canonical}/{name}");
            let bytes = match &node.kind {
                Kind::Symlink(target) if target == "/dev/null" => Vec::new(),
                _ => {
                    let content = tree
                        .lookup(&path)
                        .and_then(|(target, _)| content(tree, &target))
                        .ok_or_else(|| BuildError::Config {
                            what: format!("/{path}"),
                            message: "not a file the cache can be built from".to_owned(),
                        })?;
                    super::read_content(blobs, &content)?
                }
            };
            files.push((name.to_owned(), format!("/{path}"), bytes));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

fn hwdb(tree: &mut Tree, blobs: &Store) -> Result<(), BuildError> {
    let files: Vec<airlock_caches::hwdb::File> =
        config_files(tree, blobs, airlock_caches::hwdb::DIRS, ".hwdb")?
            .into_iter()
            .map(|(_, path, bytes)| airlock_caches::hwdb::File { path, bytes })
            .collect();
    match airlock_caches::hwdb::build(&files) {
        Some(bytes) => put(tree, airlock_caches::hwdb::USR, generated(bytes, 0o444)),
        None => Ok(()),
    }
}

fn catalog(tree: &mut Tree, blobs: &Store) -> Result<(), BuildError> {
    let files: Vec<(String, Vec<u8>)> =
        config_files(tree, blobs, airlock_caches::catalog::DIRS, ".catalog")?
            .into_iter()
            .map(|(name, _, bytes)| (name, bytes))
            .collect();
    let database = airlock_caches::catalog::build(&files)
        .map_err(|e| cache_error("the journal's catalog")(e.to_string()))?;
    match database {
        Some(bytes) => put(
            tree,
            airlock_caches::catalog::DATABASE,
            generated(bytes, 0o644),
        ),
        None => Ok(()),
    }
}
