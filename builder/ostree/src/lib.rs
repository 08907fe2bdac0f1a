//! A native writer of ostree archive repositories, fed by the tree model:
//! no staging copy of the tree, no `ostree` binary, no root.
//!
//! The objects are ostree's own, byte for byte where ostree's checksums
//! cover them, so a commit written here has the checksum `ostree commit`
//! gives for the same tree (owners, modes and xattrs as the tree says; the
//! timestamp and metadata given), and users' remotes and static deltas
//! keep working:
//! - a file object's checksum is sha256 over its header, GVariant
//!   `(uuuusa(ayay))` (uid, gid, mode big-endian, rdev 0, the symlink
//!   target or "", xattrs sorted by name, each name with its trailing NUL)
//!   behind a 4-byte big-endian length and 4 zero bytes, then the content;
//!   the `.filez` holds the archive header `(tuuuusa(ayay))` (the size
//!   first) the same way, then the content raw-deflated. The deflate level
//!   changes only the `.filez` bytes, never a checksum;
//! - `.dirmeta` is `(uuua(ayay))`; `.dirtree` is `(a(say)a(sayay))`, files
//!   and then directories sorted by name, with binary checksums;
//! - `.commit` is `(a{sv}aya(say)sstayay)`: metadata, no parent, no related
//!   objects, subject, body, timestamp (big-endian), root tree, root meta.
//!
//! File objects are written in parallel, each read once from the store,
//! hashed and compressed in one pass, largest first; memory holds one
//! buffer per thread and the directory objects.

pub mod gvariant;

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use airlock_format::Sha256;
use airlock_tree::{Content, Kind, Node, Tree};
use rayon::prelude::*;
use sha2::Digest;

use gvariant::Value;

/// The deflate level of `.filez` objects unless told otherwise: fast.
/// ostree's own default is 6; the level never changes a checksum.
pub const DEFAULT_LEVEL: u32 = 1;

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

/// What the commit says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// The ref written under `refs/heads/`.
    pub branch: String,
    /// The subject line.
    pub subject: String,
    /// The body (`""` for none).
    pub body: String,
    /// String metadata (`--add-metadata-string=KEY=VALUE`), any order.
    pub metadata: BTreeMap<String, String>,
    /// Seconds since the epoch.
    pub timestamp: u64,
}

/// What was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The commit checksum, hex.
    pub commit: String,
    /// Distinct objects written, the commit included.
    pub objects: usize,
    /// Bytes of file content read.
    pub content_bytes: u64,
}

/// Why a commit could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OstreeError {
    /// Reading or writing failed.
    #[error("{what}: {source}")]
    Io {
        /// The file.
        what: String,
        /// Why.
        source: io::Error,
    },
    /// ostree has no object for this kind of node.
    #[error("/{path}: ostree cannot hold a {kind}")]
    Unsupported {
        /// The node.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// A stored file's bytes are not the size the tree says.
    #[error("/{path}: the stored content has {actual} bytes, the tree says {expected}")]
    SizeChanged {
        /// The node.
        path: String,
        /// What the tree says.
        expected: u64,
        /// What was read.
        actual: u64,
    },
    /// The repository folder exists and is not empty.
    #[error("{0}: exists and is not empty")]
    NotEmpty(String),
}

fn io_error(path: &Path) -> impl Fn(io::Error) -> OstreeError + '_ {
    move |source| OstreeError::Io {
        what: path.display().to_string(),
        source,
    }
}

/// Writes `tree` as a commit into a new archive repository at `repo`
/// (absent or empty), reading stored contents from `blob(digest)`.
/// `progress` is told the bytes of content done as they go.
pub fn write(
    tree: &Tree,
    blob: &(dyn Fn(&Sha256) -> PathBuf + Sync),
    repo: &Path,
    info: &CommitInfo,
    level: u32,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Written, OstreeError> {
    init(repo)?;
    let repo_writer = Repo::new(repo);

    // File objects, largest first so the parallel tail is short.
    let mut leaves: Vec<(&str, &Node)> = Vec::new();
    for (path, node) in tree.iter() {
        match &node.kind {
            Kind::File(_) | Kind::Symlink(_) => leaves.push((path, node)),
            Kind::Directory | Kind::Hardlink(_) => {}
            Kind::CharDevice { .. } => return unsupported(path, "character device"),
            Kind::BlockDevice { .. } => return unsupported(path, "block device"),
            Kind::Fifo => return unsupported(path, "fifo"),
        }
    }
    leaves.sort_by(|a, b| size(b.1).cmp(&size(a.1)).then(a.0.cmp(b.0)));
    let read = AtomicU64::new(0);
    let files: HashMap<&str, [u8; 32]> = leaves
        .par_iter()
        .enumerate()
        .map(|(index, &(path, node))| {
            let checksum = repo_writer.file_object(index, path, node, blob, level, &|n| {
                read.fetch_add(n, Ordering::Relaxed);
                progress(n);
            })?;
            Ok((path, checksum))
        })
        .collect::<Result<_, OstreeError>>()?;

    // Directories, deepest first: every child's checksums exist before
    // its parent's dirtree is made.
    let mut children: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    for (path, _) in tree.iter() {
        if path.is_empty() {
            continue;
        }
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        children.entry(parent).or_default().push((name, path));
    }
    let mut dirs: HashMap<&str, ([u8; 32], [u8; 32])> = HashMap::new();
    let directories: Vec<(&str, &Node)> = tree
        .iter()
        .filter(|(_, node)| node.kind == Kind::Directory)
        .collect();
    for &(path, node) in directories.iter().rev() {
        let meta = repo_writer.metadata("dirmeta", &dirmeta(node))?;
        let mut file_entries = Vec::new();
        let mut dir_entries = Vec::new();
        let mut names = children.remove(path).unwrap_or_default();
        names.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        for (name, child) in names {
            let child_node = tree.get(child).expect("a listed child exists");
            let file = match &child_node.kind {
                Kind::Directory => {
                    let (tree_sum, meta_sum) = dirs.remove(child).expect("children come first");
                    dir_entries.push(Value::Tuple(vec![
                        Value::str(name),
                        Value::Bytes(tree_sum.to_vec()),
                        Value::Bytes(meta_sum.to_vec()),
                    ]));
                    continue;
                }
                Kind::Hardlink(target) => files.get(target.as_str()),
                _ => files.get(child),
            };
            let file = file.expect("every file and link was written");
            file_entries.push(Value::Tuple(vec![
                Value::str(name),
                Value::Bytes(file.to_vec()),
            ]));
        }
        let dirtree = Value::Tuple(vec![
            Value::Array("(say)".into(), file_entries),
            Value::Array("(sayay)".into(), dir_entries),
        ]);
        let tree_sum = repo_writer.metadata("dirtree", &dirtree)?;
        dirs.insert(path, (tree_sum, meta));
    }
    let (root_tree, root_meta) = dirs.remove("").expect("the tree has a root directory");

    let metadata = info
        .metadata
        .iter()
        .map(|(key, value)| {
            Value::Entry(
                Box::new(Value::str(key)),
                Box::new(Value::Variant(Box::new(Value::str(value)))),
            )
        })
        .collect();
    let commit = Value::Tuple(vec![
        Value::Array("{sv}".into(), metadata),
        Value::Bytes(Vec::new()),
        Value::Array("(say)".into(), Vec::new()),
        Value::str(&info.subject),
        Value::str(&info.body),
        Value::be64(info.timestamp),
        Value::Bytes(root_tree.to_vec()),
        Value::Bytes(root_meta.to_vec()),
    ]);
    let commit = hex::encode(repo_writer.metadata("commit", &commit)?);
    let reference = repo.join("refs/heads").join(&info.branch);
    if let Some(parent) = reference.parent() {
        fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    fs::write(&reference, format!("{commit}\n")).map_err(io_error(&reference))?;
    Ok(Written {
        commit,
        objects: count_objects(&repo.join("objects"))?,
        content_bytes: read.load(Ordering::Relaxed),
    })
}

/// The object files under `objects/`.
fn count_objects(objects: &Path) -> Result<usize, OstreeError> {
    let mut count = 0;
    for folder in fs::read_dir(objects).map_err(io_error(objects))? {
        let folder = folder.map_err(io_error(objects))?.path();
        count += fs::read_dir(&folder).map_err(io_error(&folder))?.count();
    }
    Ok(count)
}

fn unsupported<T>(path: &str, kind: &'static str) -> Result<T, OstreeError> {
    Err(OstreeError::Unsupported {
        path: path.to_owned(),
        kind,
    })
}

fn size(node: &Node) -> u64 {
    match &node.kind {
        Kind::File(content) => content.size(),
        _ => 0,
    }
}

/// The folders `ostree init --mode=archive` makes, and its config.
fn init(repo: &Path) -> Result<(), OstreeError> {
    if repo.exists() {
        let mut entries = fs::read_dir(repo).map_err(io_error(repo))?;
        if entries.next().is_some() {
            return Err(OstreeError::NotEmpty(repo.display().to_string()));
        }
    }
    for dir in [
        "extensions",
        "objects",
        "refs/heads",
        "refs/mirrors",
        "refs/remotes",
        "state",
        "tmp",
    ] {
        let dir = repo.join(dir);
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    }
    let config = repo.join("config");
    fs::write(&config, "[core]\nrepo_version=1\nmode=archive-z2\n").map_err(io_error(&config))
}

/// `(ayay)` xattrs, sorted by name, each name with its trailing NUL (a
/// GVariant bytestring, as ostree reads them from a file).
fn xattrs(node: &Node) -> Value {
    let entries = node
        .xattrs
        .iter()
        .map(|(name, value)| {
            let mut name = name.as_bytes().to_vec();
            name.push(0);
            Value::Tuple(vec![Value::Bytes(name), Value::Bytes(value.clone())])
        })
        .collect();
    Value::Array("(ayay)".into(), entries)
}

fn dirmeta(node: &Node) -> Value {
    Value::Tuple(vec![
        Value::be32(node.uid),
        Value::be32(node.gid),
        Value::be32(S_IFDIR | (node.mode & 0o7777)),
        xattrs(node),
    ])
}

/// A file's mode (type bits included) and symlink target.
fn file_mode(node: &Node) -> (u32, &str) {
    match &node.kind {
        Kind::Symlink(target) => (S_IFLNK | 0o777, target),
        _ => (S_IFREG | (node.mode & 0o7777), ""),
    }
}

/// The checksummed header `(uuuusa(ayay))`, length-prefixed.
fn file_header(node: &Node) -> Vec<u8> {
    header(node, None)
}

/// The archive header `(tuuuusa(ayay))`, length-prefixed: the same with
/// the content's size first.
fn archive_header(node: &Node, size: u64) -> Vec<u8> {
    header(node, Some(size))
}

fn header(node: &Node, size: Option<u64>) -> Vec<u8> {
    let (mode, target) = file_mode(node);
    let mut members: Vec<Value> = size.map(Value::be64).into_iter().collect();
    members.extend([
        Value::be32(node.uid),
        Value::be32(node.gid),
        Value::be32(mode),
        Value::U32(0),
        Value::str(target),
        xattrs(node),
    ]);
    prefixed(&Value::Tuple(members))
}

/// A variant behind its 4-byte big-endian size and 4 zero bytes.
fn prefixed(value: &Value) -> Vec<u8> {
    let bytes = value.to_bytes();
    let mut out = Vec::with_capacity(bytes.len() + 8);
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&bytes);
    out
}

struct Repo<'a> {
    root: &'a Path,
}

impl<'a> Repo<'a> {
    fn new(root: &'a Path) -> Self {
        Repo { root }
    }

    fn object_path(&self, checksum: &[u8; 32], kind: &str) -> PathBuf {
        let hex = hex::encode(checksum);
        self.root
            .join("objects")
            .join(&hex[..2])
            .join(format!("{}.{kind}", &hex[2..]))
    }

    /// Moves a finished temporary object into place (once per checksum).
    fn install(
        &self,
        temporary: &Path,
        checksum: &[u8; 32],
        kind: &str,
    ) -> Result<(), OstreeError> {
        let target = self.object_path(checksum, kind);
        let folder = target.parent().expect("objects/XX");
        fs::create_dir_all(folder).map_err(io_error(folder))?;
        if target.exists() {
            fs::remove_file(temporary).map_err(io_error(temporary))?;
            return Ok(());
        }
        fs::rename(temporary, &target).map_err(io_error(&target))
    }

    /// A metadata object (stored as its serialized bytes); its checksum.
    fn metadata(&self, kind: &str, value: &Value) -> Result<[u8; 32], OstreeError> {
        let bytes = value.to_bytes();
        let checksum: [u8; 32] = sha2::Sha256::digest(&bytes).into();
        let target = self.object_path(&checksum, kind);
        if !target.exists() {
            let folder = target.parent().expect("objects/XX");
            fs::create_dir_all(folder).map_err(io_error(folder))?;
            fs::write(&target, &bytes).map_err(io_error(&target))?;
        }
        Ok(checksum)
    }

    /// A `.filez` object: header, then the content read once, hashed and
    /// deflated as it goes. Returns its checksum.
    fn file_object(
        &self,
        index: usize,
        path: &str,
        node: &Node,
        blob: &(dyn Fn(&Sha256) -> PathBuf + Sync),
        level: u32,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<[u8; 32], OstreeError> {
        let expected = size(node);
        let temporary = self.root.join("tmp").join(format!("object-{index}"));
        let file = File::create(&temporary).map_err(io_error(&temporary))?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        let mut hasher = sha2::Sha256::new();
        hasher.update(file_header(node));
        out.write_all(&archive_header(node, expected))
            .map_err(io_error(&temporary))?;
        if let Kind::File(content) = &node.kind {
            let mut encoder =
                flate2::write::DeflateEncoder::new(out, flate2::Compression::new(level));
            let read = match content {
                Content::Inline(bytes) => {
                    hasher.update(bytes);
                    encoder.write_all(bytes).map_err(io_error(&temporary))?;
                    bytes.len() as u64
                }
                Content::Stored { sha256, .. } => {
                    let source = blob(sha256);
                    let mut input = File::open(&source).map_err(io_error(&source))?;
                    copy(&mut input, &mut hasher, &mut encoder, progress)
                        .map_err(io_error(&source))?
                }
            };
            if read != expected {
                return Err(OstreeError::SizeChanged {
                    path: path.to_owned(),
                    expected,
                    actual: read,
                });
            }
            out = encoder.finish().map_err(io_error(&temporary))?;
        }
        out.flush().map_err(io_error(&temporary))?;
        drop(out);
        let checksum: [u8; 32] = hasher.finalize().into();
        self.install(&temporary, &checksum, "filez")?;
        Ok(checksum)
    }
}

/// Streams `input` into the hash and the encoder; returns the bytes read.
fn copy(
    input: &mut impl Read,
    hasher: &mut sha2::Sha256,
    encoder: &mut impl Write,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<u64> {
    let mut buffer = vec![0u8; 1 << 17];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buffer) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..n]);
        encoder.write_all(&buffer[..n])?;
        total += n as u64;
        progress(n as u64);
    }
}

#[cfg(test)]
mod tests;
