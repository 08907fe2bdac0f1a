//! mmdebstrap as the oracle for what the maintainer scripts would make.
//!
//! For an image airlock built, [`mmdebstrap`] installs the same locked
//! .debs with mmdebstrap (root mode: a chroot in which every maintainer
//! script runs), from a flat repository of the store's copies, into a tar.
//! [`compare`] then sets that tree beside airlock's `rootfs.tar.zst`:
//!
//! - the users and groups: names, homes, shells, primary groups and
//!   members (ids may differ, so owners are compared by name);
//! - every entry under /etc and /var/lib (unit enablement, alternatives,
//!   statoverrides, generated configuration, the dpkg database), each path
//!   a statoverride names, and each link into /etc/alternatives: its kind,
//!   link target, mode, owner, group and, for files under /etc and
//!   /var/lib, its sha256.
//!
//! Every difference must be on the committed allow-list
//! (`qemu-tests/oracle/allow.toml`) with its reason, and every entry of the
//! list must still match a difference of each recipe it names, so that the
//! list only shrinks ([`check`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use sha2::Digest;

/// What one path is, as far as the comparison goes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Directory,
    /// A regular file: the sha256 of its bytes when it is in scope of the
    /// content comparison, else empty.
    File(String),
    Link(String),
    Other(String),
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Directory => f.write_str("directory"),
            Kind::File(_) => f.write_str("file"),
            Kind::Link(_) => f.write_str("symlink"),
            Kind::Other(what) => f.write_str(what),
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    kind: Kind,
    mode: u32,
    uid: u64,
    gid: u64,
}

/// A root file system read from a tar: its entries by normalized path
/// (no leading `./` or `/`), and the text of the few files the comparison
/// reads (the account databases and the statoverride list).
#[derive(Debug, Default)]
pub struct Root {
    entries: BTreeMap<String, Entry>,
    text: BTreeMap<String, String>,
}

/// The files whose text is kept.
const TEXT: &[&str] = &[
    "etc/passwd",
    "etc/group",
    "etc/shadow",
    "var/lib/dpkg/statoverride",
];

/// The account databases: their bytes differ with the ids each tree
/// chose, and with the day shadow's dates were written; what they say is
/// compared record by record instead ([`accounts`]).
const ACCOUNTS: &[&str] = &["etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"];

/// Files whose order says nothing, with the lines of one record: their
/// sorted records are compared. /etc/shells is a set of shells (its order
/// follows the order dpkg configured the shells' packages in); dpkg reads
/// its diversions (three lines each) and statoverrides into tables (and
/// writes the overrides in its hash table's order); ucf greps its
/// registry and hashfile, appended in the order packages registered.
const UNORDERED: &[(&str, usize)] = &[
    ("etc/shells", 1),
    ("var/lib/dpkg/diversions", 3),
    ("var/lib/dpkg/statoverride", 1),
    ("var/lib/ucf/registry", 1),
    ("var/lib/ucf/hashfile", 1),
];

/// The digest a file's bytes are compared by.
fn digest(path: &str, bytes: &[u8]) -> String {
    if ACCOUNTS.contains(&path) {
        return "the records are compared".to_owned();
    }
    if let Some((_, lines)) = UNORDERED.iter().find(|(p, _)| *p == path) {
        let text = String::from_utf8_lossy(bytes);
        let all: Vec<&str> = text.lines().collect();
        let mut records: Vec<String> = all.chunks(*lines).map(|r| r.join("\n")).collect();
        records.sort();
        return hex::encode(sha2::Sha256::digest(records.join("\n").as_bytes()));
    }
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Whether a file's bytes are compared.
fn hashed(path: &str) -> bool {
    path.starts_with("etc/") || path.starts_with("var/lib/")
}

fn normalize(path: &str) -> String {
    path.trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_owned()
}

impl Root {
    /// Reads a tar stream (owners as numbers, names from the tree's own
    /// /etc/passwd and /etc/group).
    pub fn read_tar(reader: impl Read) -> std::io::Result<Root> {
        let mut root = Root::default();
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let path = normalize(&entry.path()?.to_string_lossy());
            if path.is_empty() {
                continue;
            }
            let header = entry.header();
            let (mode, uid, gid) = (header.mode()? & 0o7777, header.uid()?, header.gid()?);
            let entry_type = header.entry_type();
            let link = entry
                .link_name()?
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let kind = match entry_type {
                tar::EntryType::Directory => Kind::Directory,
                tar::EntryType::Symlink => Kind::Link(link),
                tar::EntryType::Link => root
                    .entries
                    .get(&normalize(&link))
                    .map_or(Kind::Other(format!("hard link to {link}")), |e| {
                        e.kind.clone()
                    }),
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let small = TEXT.contains(&path.as_str())
                        || ACCOUNTS.contains(&path.as_str())
                        || UNORDERED.iter().any(|(p, _)| *p == path);
                    if small {
                        let mut bytes = Vec::new();
                        entry.read_to_end(&mut bytes)?;
                        let digest = digest(&path, &bytes);
                        if TEXT.contains(&path.as_str()) {
                            root.text
                                .insert(path.clone(), String::from_utf8_lossy(&bytes).into_owned());
                        }
                        Kind::File(digest)
                    } else if hashed(&path) {
                        let mut hasher = sha2::Sha256::new();
                        let mut buffer = [0u8; 65536];
                        loop {
                            let n = entry.read(&mut buffer)?;
                            if n == 0 {
                                break;
                            }
                            hasher.update(&buffer[..n]);
                        }
                        Kind::File(hex::encode(hasher.finalize()))
                    } else {
                        Kind::File(String::new())
                    }
                }
                other => Kind::Other(format!("{other:?}")),
            };
            root.entries.insert(
                path,
                Entry {
                    kind,
                    mode,
                    uid,
                    gid,
                },
            );
        }
        Ok(root)
    }

    /// Reads `rootfs.tar.zst` or a plain tar.
    pub fn open(path: &Path) -> std::io::Result<Root> {
        let file = std::fs::File::open(path)?;
        if path.extension().is_some_and(|e| e == "zst") {
            Root::read_tar(zstd::Decoder::new(file)?)
        } else {
            Root::read_tar(std::io::BufReader::new(file))
        }
    }

    /// The `:`-separated records of a kept file.
    fn records(&self, file: &str) -> Vec<Vec<&str>> {
        self.text
            .get(file)
            .map(|t| {
                t.lines()
                    .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                    .map(|l| l.split(':').collect())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn names(&self, file: &str) -> BTreeMap<u64, String> {
        self.records(file)
            .into_iter()
            .filter_map(|r| Some((r.get(2)?.parse().ok()?, r[0].to_owned())))
            .collect()
    }

    /// The paths the statoverride list names.
    fn overridden(&self) -> Vec<String> {
        self.text
            .get("var/lib/dpkg/statoverride")
            .map(|t| {
                t.lines()
                    .filter_map(|l| l.split_whitespace().nth(3))
                    .map(normalize)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One way the two trees differ.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Difference {
    /// The path (no leading `/`), or `user:NAME` or `group:NAME`.
    pub path: String,
    /// Which property: `airlock-only`, `mmdebstrap-only`, `kind`,
    /// `target`, `mode`, `owner`, `group`, `content`, `home`, `shell`,
    /// `password`, `primary-group` or `members`.
    pub what: &'static str,
    /// airlock's value, then mmdebstrap's.
    pub detail: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}] {}", self.path, self.what, self.detail)
    }
}

/// Every difference between airlock's tree and mmdebstrap's, sorted.
pub fn compare(airlock: &Root, oracle: &Root) -> Vec<Difference> {
    let mut out = Vec::new();
    accounts(airlock, oracle, &mut out);
    let in_scope = |root: &Root| -> BTreeSet<String> {
        let mut paths: BTreeSet<String> = root
            .entries
            .iter()
            .filter(|(path, entry)| {
                path.as_str() == "etc"
                    || path.starts_with("etc/")
                    || path.starts_with("var/lib/")
                    || matches!(&entry.kind, Kind::Link(t) if t.starts_with("/etc/alternatives/"))
            })
            .map(|(path, _)| path.clone())
            .collect();
        paths.extend(root.overridden());
        paths
    };
    let mut paths = in_scope(airlock);
    paths.extend(in_scope(oracle));
    let owners = |root: &Root| (root.names("etc/passwd"), root.names("etc/group"));
    let (a_users, a_groups) = owners(airlock);
    let (o_users, o_groups) = owners(oracle);
    let name = |names: &BTreeMap<u64, String>, id: u64| {
        names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"))
    };
    for path in paths {
        let mut differ = |what: &'static str, ours: String, theirs: String| {
            out.push(Difference {
                path: path.clone(),
                what,
                detail: format!("{ours} vs {theirs}"),
            });
        };
        let (ours, theirs) = match (airlock.entries.get(&path), oracle.entries.get(&path)) {
            (Some(ours), Some(theirs)) => (ours, theirs),
            (Some(ours), None) => {
                differ("airlock-only", ours.kind.to_string(), "absent".into());
                continue;
            }
            (None, Some(theirs)) => {
                differ("mmdebstrap-only", "absent".into(), theirs.kind.to_string());
                continue;
            }
            (None, None) => continue,
        };
        match (&ours.kind, &theirs.kind) {
            (Kind::Link(a), Kind::Link(b)) if a != b => differ("target", a.clone(), b.clone()),
            (Kind::File(a), Kind::File(b)) if a != b => {
                differ("content", short(a), short(b));
            }
            (a, b) if std::mem::discriminant(a) != std::mem::discriminant(b) => {
                differ("kind", a.to_string(), b.to_string());
            }
            _ => {}
        }
        // A link's own mode and owner mean nothing to the programs that
        // follow it.
        if matches!(ours.kind, Kind::Link(_)) || matches!(theirs.kind, Kind::Link(_)) {
            continue;
        }
        if ours.mode != theirs.mode {
            differ(
                "mode",
                format!("{:04o}", ours.mode),
                format!("{:04o}", theirs.mode),
            );
        }
        let (a, b) = (name(&a_users, ours.uid), name(&o_users, theirs.uid));
        if a != b {
            differ("owner", a, b);
        }
        let (a, b) = (name(&a_groups, ours.gid), name(&o_groups, theirs.gid));
        if a != b {
            differ("group", a, b);
        }
    }
    out.sort();
    out
}

fn short(digest: &str) -> String {
    digest.get(..12).unwrap_or(digest).to_owned()
}

/// Users (home, shell, primary group by name) and groups (members).
fn accounts(airlock: &Root, oracle: &Root, out: &mut Vec<Difference>) {
    type Table = BTreeMap<String, Vec<String>>;
    let read = |root: &Root, file: &str| -> Table {
        root.records(file)
            .into_iter()
            .map(|r| (r[0].to_owned(), r.iter().map(|f| (*f).to_owned()).collect()))
            .collect()
    };
    let group_of = |root: &Root, gid: &str| -> String {
        gid.parse()
            .ok()
            .and_then(|id: u64| root.names("etc/group").get(&id).cloned())
            .unwrap_or_else(|| format!("#{gid}"))
    };
    let field = |record: &[String], n: usize| record.get(n).cloned().unwrap_or_default();
    let (shadow_a, shadow_b) = (read(airlock, "etc/shadow"), read(oracle, "etc/shadow"));
    let login = |shadow: &Table, name: &str| -> String {
        match shadow.get(name).map(|r| field(r, 1)) {
            None => "no shadow entry".to_owned(),
            Some(p) if p.starts_with('!') => "locked".to_owned(),
            Some(p) if p == "*" || p.is_empty() => format!("{p:?}"),
            Some(_) => "a password hash".to_owned(),
        }
    };
    for (kind, file) in [("user", "etc/passwd"), ("group", "etc/group")] {
        let (ours, theirs) = (read(airlock, file), read(oracle, file));
        let names: BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
        for name in names {
            let path = format!("{kind}:{name}");
            let mut differ = |what: &'static str, a: String, b: String| {
                out.push(Difference {
                    path: path.clone(),
                    what,
                    detail: format!("{a} vs {b}"),
                });
            };
            let (a, b) = match (ours.get(name), theirs.get(name)) {
                (Some(a), Some(b)) => (a, b),
                (Some(_), None) => {
                    differ("airlock-only", kind.into(), "absent".into());
                    continue;
                }
                (None, _) => {
                    differ("mmdebstrap-only", "absent".into(), kind.into());
                    continue;
                }
            };
            if kind == "user" {
                for (what, n) in [("home", 5), ("shell", 6)] {
                    if field(a, n) != field(b, n) {
                        differ(what, field(a, n), field(b, n));
                    }
                }
                // How the account can log in: locked (`!…`), no password
                // (`*`), or a hash (never compared as bytes: salts differ).
                let (pa, pb) = (login(&shadow_a, name), login(&shadow_b, name));
                if pa != pb {
                    differ("password", pa, pb);
                }
                let (ga, gb) = (
                    group_of(airlock, &field(a, 3)),
                    group_of(oracle, &field(b, 3)),
                );
                if ga != gb {
                    differ("primary-group", ga, gb);
                }
            } else {
                let members = |r: &[String]| -> BTreeSet<String> {
                    field(r, 3)
                        .split(',')
                        .filter(|m| !m.is_empty())
                        .map(str::to_owned)
                        .collect()
                };
                let (ma, mb) = (members(a), members(b));
                if ma != mb {
                    let list =
                        |m: &BTreeSet<String>| m.iter().cloned().collect::<Vec<_>>().join(",");
                    differ("members", list(&ma), list(&mb));
                }
            }
        }
    }
}

/// The committed allow-list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowList {
    /// Its entries.
    pub allow: Vec<Allow>,
}

/// One allowed difference, or a family of them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allow {
    /// A glob over [`Difference::path`]: `*` within one segment, `**`
    /// across segments.
    pub path: String,
    /// The properties it allows to differ (every one when absent).
    #[serde(default)]
    pub what: Vec<String>,
    /// The recipes (image names) it is for.
    pub recipes: Vec<String>,
    /// Why the difference is right, or why it does not matter.
    pub reason: String,
}

impl AllowList {
    /// Reads `qemu-tests/oracle/allow.toml`.
    pub fn load() -> AllowList {
        let path = crate::setup::workspace().join("qemu-tests/oracle/allow.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

impl Allow {
    fn allows(&self, recipe: &str, difference: &Difference) -> bool {
        self.recipes.iter().any(|r| r == recipe)
            && (self.what.is_empty() || self.what.iter().any(|w| w == difference.what))
            && glob(self.path.as_bytes(), difference.path.as_bytes())
    }
}

/// `*` matches within a segment, `**` across segments, `?` one byte,
/// `{a,b}` either (not nested).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern {
        [] => text.is_empty(),
        [b'{', rest @ ..] => {
            let Some(end) = rest.iter().position(|&b| b == b'}') else {
                return false;
            };
            rest[..end]
                .split(|&b| b == b',')
                .any(|alternative| glob(&[alternative, &rest[end + 1..]].concat(), text))
        }
        [b'*', b'*', rest @ ..] => (0..=text.len()).any(|n| glob(rest, &text[n..])),
        [b'*', rest @ ..] => (0..=text.len())
            .take_while(|&n| n == 0 || text[n - 1] != b'/')
            .any(|n| glob(rest, &text[n..])),
        [b'?', rest @ ..] => !text.is_empty() && glob(rest, &text[1..]),
        [c, rest @ ..] => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

/// What [`check`] found allowed: each reason with its differences.
pub type Allowed = BTreeMap<String, Vec<Difference>>;

/// Checks every difference of `recipe` against the allow-list: an error
/// names each difference no entry allows and each entry for this recipe
/// that allows none (it can go).
pub fn check(
    recipe: &str,
    differences: &[Difference],
    list: &AllowList,
) -> Result<Allowed, String> {
    let mut allowed = Allowed::new();
    let mut used = vec![false; list.allow.len()];
    let mut unexplained = Vec::new();
    for difference in differences {
        match list.allow.iter().position(|a| a.allows(recipe, difference)) {
            Some(n) => {
                used[n] = true;
                allowed
                    .entry(list.allow[n].reason.clone())
                    .or_default()
                    .push(difference.clone());
            }
            None => unexplained.push(difference.to_string()),
        }
    }
    let stale: Vec<&str> = list
        .allow
        .iter()
        .zip(&used)
        .filter(|(a, used)| !**used && a.recipes.iter().any(|r| r == recipe))
        .map(|(a, _)| a.path.as_str())
        .collect();
    if unexplained.is_empty() && stale.is_empty() {
        return Ok(allowed);
    }
    Err(format!(
        "{recipe}: {} difference(s) from mmdebstrap not on qemu-tests/oracle/allow.toml:\n  {}\n\
         allow-list entries for {recipe} that no difference needs any more: {stale:?}",
        unexplained.len(),
        unexplained.join("\n  ")
    ))
}

/// Whether the oracle can run here: mmdebstrap, dpkg-scanpackages and
/// root (mmdebstrap's root mode); under AIRLOCK_REQUIRE_TOOLS a missing one
/// fails the test.
pub fn available() -> bool {
    airlock_fixtures::gate::tool("mmdebstrap", "mmdebstrap")
        && airlock_fixtures::gate::tool("dpkg-scanpackages", "dpkg-dev")
        && airlock_fixtures::gate::root("running mmdebstrap (root mode) as the oracle")
}

/// Installs the packages `image` (an image folder) locked, from the
/// store's copies, with mmdebstrap in `work`; returns the tar it wrote.
pub fn mmdebstrap(image: &Path, work: &Path) -> PathBuf {
    let lock_path = image.join("lock.toml");
    let text = std::fs::read_to_string(&lock_path).unwrap();
    let lock = airlock_recipe::Lock::parse(&lock_path, &text).unwrap();
    let store = std::env::var_os("AIRLOCK_STORE")
        .map(PathBuf::from)
        .or_else(airlock_store::Store::default_root)
        .expect("a store folder");
    let store = airlock_store::Store::open(store).unwrap();
    let flat = work.join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    for package in &lock.packages {
        std::fs::copy(store.path(&package.sha256), flat.join(package.file_name()))
            .unwrap_or_else(|e| panic!("{} from the store: {e}", package.name));
    }
    let packages = Command::new("dpkg-scanpackages")
        .args(["--multiversion", "."])
        .current_dir(&flat)
        .output()
        .unwrap();
    assert!(packages.status.success(), "dpkg-scanpackages");
    std::fs::write(flat.join("Packages"), &packages.stdout).unwrap();
    let suite = &lock.archive.suites[0].codename;
    std::fs::write(
        flat.join("Release"),
        format!(
            "Suite: {suite}\nCodename: {suite}\nArchitectures: {} all\nSHA256:\n {} {} Packages\n",
            lock.archive.architecture,
            hex::encode(sha2::Sha256::digest(&packages.stdout)),
            packages.stdout.len()
        ),
    )
    .unwrap();
    let names: Vec<&str> = lock.packages.iter().map(|p| p.name.as_str()).collect();
    let tar = work.join("mmdebstrap.tar");
    let result = Command::new("timeout")
        .args(["-s", "KILL", "1800", "mmdebstrap", "--mode=root"])
        // The Essential:yes set first, then every other locked package
        // through apt, which configures pre-dependencies before their
        // dependents (the custom variant's single dpkg call ran
        // mariadb-server's preinst before adduser was configured). The
        // repository holds only the locked .debs, so apt can pick no
        // other.
        .arg("--variant=essential")
        .arg(format!("--include={}", names.join(",")))
        .arg("--aptopt=Apt::Install-Recommends \"false\"")
        .arg(suite)
        .arg(&tar)
        .arg(format!("deb [trusted=yes] copy://{} ./", flat.display()))
        .output()
        .unwrap();
    if !result.status.success() {
        // dpkg's own words about the package that failed are near the end.
        let stderr = String::from_utf8_lossy(&result.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        panic!(
            "mmdebstrap failed ({}):\n{}",
            result.status,
            lines[lines.len().saturating_sub(80)..].join("\n")
        );
    }
    tar
}

/// The whole oracle for one image folder: mmdebstrap, compare, check.
/// Returns what was allowed, by reason.
pub fn against_mmdebstrap(recipe: &str, image: &Path) -> Allowed {
    let work = tempfile::tempdir().unwrap();
    let tar = mmdebstrap(image, work.path());
    let oracle = Root::open(&tar).unwrap();
    let ours = Root::open(&image.join("rootfs.tar.zst")).unwrap();
    // For a person reading the differences: AIRLOCK_ORACLE_KEEP=DIR keeps
    // both trees there.
    if let Some(keep) = std::env::var_os("AIRLOCK_ORACLE_KEEP") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&tar, keep.join(format!("{recipe}-mmdebstrap.tar"))).unwrap();
        std::fs::copy(
            image.join("rootfs.tar.zst"),
            keep.join(format!("{recipe}-airlock.tar.zst")),
        )
        .unwrap();
    }
    let differences = compare(&ours, &oracle);
    let allowed = check(recipe, &differences, &AllowList::load()).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "{recipe}: {} difference(s) from mmdebstrap, each allowed:",
        differences.len()
    );
    for (reason, differences) in &allowed {
        eprintln!("  {} × {reason}", differences.len());
    }
    allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_within_and_across_segments() {
        assert!(glob(b"etc/*.conf", b"etc/a.conf"));
        assert!(!glob(b"etc/*.conf", b"etc/x/a.conf"));
        assert!(glob(b"etc/**", b"etc/x/a.conf"));
        assert!(glob(
            b"var/lib/dpkg/info/*.list",
            b"var/lib/dpkg/info/bash.list"
        ));
        assert!(!glob(b"user:*", b"group:x"));
        assert!(glob(
            b"etc/ssh/ssh_host_?sa_key",
            b"etc/ssh/ssh_host_rsa_key"
        ));
        assert!(glob(b"var/lib/{a,b/c}", b"var/lib/b/c"));
        assert!(glob(b"x{,/**}", b"x") && glob(b"x{,/**}", b"x/y/z"));
        assert!(!glob(b"var/lib/{a,b}", b"var/lib/c"));
    }

    fn tar(entries: &[(&str, &[u8], u32, u64)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data, mode, uid) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(*mode);
            header.set_uid(*uid);
            header.set_gid(0);
            header.set_cksum();
            builder.append_data(&mut header, path, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn owners_are_compared_by_name_and_every_difference_is_named() {
        let ours = Root::read_tar(
            &tar(&[
                (
                    "./etc/passwd",
                    b"root:x:0:0::/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n",
                    0o644,
                    0,
                ),
                (
                    "./etc/group",
                    b"root:x:0:\nnogroup:x:65534:\nssl-cert:x:101:postgres\n",
                    0o644,
                    0,
                ),
                ("./etc/a", b"one", 0o644, 100),
                ("./etc/shells", b"# shells\n/bin/sh\n/bin/bash\n", 0o644, 0),
                (
                    "./etc/shadow",
                    b"root:*:20089:0:99999:7:::\nsshd:!:20089::::::\n",
                    0o640,
                    0,
                ),
                ("./etc/only-ours", b"", 0o644, 0),
                ("./usr/bin/x", b"not compared", 0o755, 0),
            ])[..],
        )
        .unwrap();
        let theirs = Root::read_tar(
            &tar(&[
                (
                    "etc/passwd",
                    b"root:x:0:0::/root:/bin/sh\nsshd:x:105:65534::/run/sshd:/bin/false\n",
                    0o644,
                    0,
                ),
                (
                    "etc/group",
                    b"root:x:0:\nnogroup:x:65534:\nssl-cert:x:107:\n",
                    0o644,
                    0,
                ),
                ("etc/a", b"two", 0o640, 105),
                ("etc/shells", b"# shells\n/bin/bash\n/bin/sh\n", 0o644, 0),
                (
                    "etc/shadow",
                    b"root:*:20427:0:99999:7:::\nsshd:*:20427::::::\n",
                    0o640,
                    0,
                ),
                ("usr/bin/x", b"other bytes", 0o755, 0),
            ])[..],
        )
        .unwrap();
        let found: Vec<String> = compare(&ours, &theirs)
            .iter()
            .map(|d| format!("{} {}", d.path, d.what))
            .collect();
        assert_eq!(
            found,
            [
                "etc/a content",
                "etc/a mode",
                "etc/only-ours airlock-only",
                "group:ssl-cert members",
                "user:sshd password",
                "user:sshd shell",
            ],
            "sshd owns etc/a in both (uid 100 and 105), the account files differ only in ids \
             and dates, /etc/shells only in order, and usr/bin/x is out of scope"
        );

        let list: AllowList = toml::from_str(
            r#"
            [[allow]]
            path = "etc/{b,c}"
            recipes = ["x"]
            reason = "matches nothing"
            [[allow]]
            path = "etc/*"
            what = ["content", "mode", "airlock-only"]
            recipes = ["x"]
            reason = "r"
            "#,
        )
        .unwrap();
        let differences = compare(&ours, &theirs);
        let error = check("x", &differences, &list).unwrap_err();
        assert!(
            error.contains("group:ssl-cert [members] postgres vs "),
            "{error}"
        );
        assert!(error.contains("user:sshd [shell]"), "{error}");
        assert!(error.contains("etc/{b,c}"), "the stale entry: {error}");
        assert!(
            check("y", &differences, &list).is_err(),
            "no entry is for y"
        );
    }
}
