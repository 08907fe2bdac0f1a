//! The directories ldconfig scans: those `/etc/ld.so.conf` names (with its
//! `include`s), then Debian's built-in ones, each once (by where it leads),
//! under the path that named it first.

use std::collections::BTreeSet;

use airlock_store::Store;
use airlock_tree::{Kind, Tree};

/// Debian's ldconfig's own directories, after the configuration's.
const BUILTIN: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib",
    "/usr/lib",
];

/// The subdirectories ldconfig reads as hardware-capability variants.
const HWCAP_DIRS: &[&str] = &[
    "sse2", "x86_64", "avx512_1", "i586", "i686", "haswell", "xeon_phi", "tls",
];

/// How deep `include`s may nest.
const MAX_DEPTH: usize = 8;

/// One directory ldconfig scans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dir {
    /// As the configuration names it (the cache's paths begin with it).
    pub written: String,
    /// Where it leads in the tree.
    pub canonical: String,
}

/// The directories, in ldconfig's order; an error (why airlock does not
/// build the cache) for what it does not read: a glob it cannot expand,
/// or a library variant directory (`glibc-hwcaps/…`, `tls`, …), whose
/// entries airlock does not write.
pub fn scanned(tree: &Tree, blobs: &Store) -> Result<Vec<Dir>, String> {
    let mut scan = Scan {
        tree,
        blobs,
        dirs: Vec::new(),
        seen: BTreeSet::new(),
    };
    scan.conf("/etc/ld.so.conf", 0)?;
    for dir in BUILTIN {
        scan.dir(dir)?;
    }
    Ok(scan.dirs)
}

struct Scan<'a> {
    tree: &'a Tree,
    blobs: &'a Store,
    dirs: Vec<Dir>,
    seen: BTreeSet<String>,
}

impl Scan<'_> {
    fn conf(&mut self, path: &str, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("{path}: includes nest too deeply"));
        }
        let Some(text) = self.text(path)? else {
            return Ok(());
        };
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim_start();
            if line.is_empty() {
                continue;
            }
            if let Some(patterns) = line
                .strip_prefix("include")
                .filter(|rest| rest.starts_with([' ', '\t']))
            {
                for pattern in patterns.split([' ', '\t']).filter(|p| !p.is_empty()) {
                    for file in self.glob(path, pattern)? {
                        self.conf(&file, depth + 1)?;
                    }
                }
            } else if line.len() > 5
                && line[..5].eq_ignore_ascii_case("hwcap")
                && line[5..].starts_with([' ', '\t'])
            {
                continue;
            } else {
                self.dir(line)?;
            }
        }
        Ok(())
    }

    /// A configuration file's text, if the tree has it.
    fn text(&self, path: &str) -> Result<Option<String>, String> {
        let Some((canonical, _)) = self.tree.lookup(path.trim_start_matches('/')) else {
            return Ok(None);
        };
        let Some(content) = super::content(self.tree, &canonical) else {
            return Ok(None);
        };
        if content.size() > 1 << 20 {
            return Err(format!("{path} is larger than 1 MiB"));
        }
        let bytes = super::super::read_content(self.blobs, &content).map_err(|e| e.to_string())?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| format!("{path} is not UTF-8 text"))
    }

    /// An `include` pattern's files, sorted: only its last part may be a
    /// pattern; a relative one is read from the including file's
    /// directory.
    fn glob(&self, from: &str, pattern: &str) -> Result<Vec<String>, String> {
        let pattern = if pattern.starts_with('/') {
            pattern.to_owned()
        } else {
            let dir = from.rsplit_once('/').map_or("", |(dir, _)| dir);
            format!("{dir}/{pattern}")
        };
        let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", &pattern));
        if dir.contains(['*', '?', '[']) {
            return Err(format!(
                "ld.so.conf includes {pattern}: airlock reads a pattern only in its last part"
            ));
        }
        let Some((canonical, node)) = self.tree.lookup(dir.trim_start_matches('/')) else {
            return Ok(Vec::new());
        };
        if !matches!(node.kind, Kind::Directory) {
            return Ok(Vec::new());
        }
        let pattern = [(name.to_owned(), false)];
        let mut files: Vec<String> = self
            .tree
            .children(&canonical)
            .into_iter()
            .filter(|(n, _)| {
                (name.starts_with('.') || !n.starts_with('.'))
                    && airlock_maintscript::matches(n, &pattern)
            })
            .map(|(n, _)| format!("{dir}/{n}"))
            .collect();
        files.sort();
        Ok(files)
    }

    fn dir(&mut self, line: &str) -> Result<(), String> {
        let path = line.trim_end().trim_end_matches('/');
        let path = path.split('=').next().unwrap_or("");
        if path.is_empty() {
            return Ok(());
        }
        let Some((canonical, node)) = self.tree.lookup(path.trim_start_matches('/')) else {
            return Ok(());
        };
        if !matches!(node.kind, Kind::Directory) || !self.seen.insert(canonical.clone()) {
            return Ok(());
        }
        for (name, _) in self.tree.children(&canonical) {
            let sub = format!("{canonical}/{name}");
            let is_dir = |path: &str| {
                self.tree
                    .lookup(path)
                    .is_some_and(|(_, n)| matches!(n.kind, Kind::Directory))
            };
            if HWCAP_DIRS.contains(&name) && is_dir(&sub) {
                return Err(variant(&format!("{path}/{name}")));
            }
            if name == "glibc-hwcaps" && is_dir(&sub) {
                for (variant_name, _) in self.tree.children(&sub) {
                    if !variant_name.starts_with('.')
                        && !variant_name.contains(':')
                        && is_dir(&format!("{sub}/{variant_name}"))
                    {
                        return Err(variant(&format!("{path}/glibc-hwcaps/{variant_name}")));
                    }
                }
            }
        }
        self.dirs.push(Dir {
            written: path.to_owned(),
            canonical,
        });
        Ok(())
    }
}

fn variant(path: &str) -> String {
    format!(
        "{path} holds libraries for particular processors, whose ld.so.cache entries airlock \
         does not write"
    )
}
