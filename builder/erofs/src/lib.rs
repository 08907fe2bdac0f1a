//! A native EROFS writer fed by the tree model: no staging copy, no
//! mkfs.erofs, no root. Uncompressed: every file is flat, its full blocks
//! in the data area and its tail either packed right after its inode
//! (flat-inline) or in a last, zero-padded block of its own (flat-plain),
//! whichever wastes less.
//!
//! The image, in 4 KiB blocks:
//! - block 0: the superblock at byte 1024;
//! - from block 1 (`meta_blkaddr`): the inodes in tree order (the root's nid
//!   is 0), each 32-byte aligned, compact (32 bytes) unless an owner, the
//!   size or the link count needs the extended form (64 bytes), followed by
//!   its inline xattrs (`security.capability`, ...) and its inline tail; an
//!   inode with its xattrs and tail never crosses a block boundary;
//! - then the data blocks, file after file in the same order, directories
//!   included (their entries sorted by name, `.` and `..` first among them
//!   by that order, in blocks of 12-byte dirents followed by the names).
//!
//! Owners, modes, xattrs, hard links (one inode, its link count), devices
//! and fifos come from the tree; every timestamp is the epoch (compact
//! inodes take it from the superblock). The layout is planned from the tree
//! alone ([`Plan::new`]), so the image's size is known before a byte is
//! written and the bytes are written once, in order ([`Plan::write`]):
//! each stored file is read once from the store.
//!
//! The format as read by Linux 6.1 (Debian 12's kernel) and erofs-utils;
//! see erofs-utils' include/erofs_fs.h for the structures.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use airlock_format::Sha256;
use airlock_tree::{Content, Kind, Node, Tree};

/// The block size (and the only one written).
pub const BLOCK: u64 = 4096;
const MAGIC: u32 = 0xE0F5_E1E2;
const SUPERBLOCK_OFFSET: usize = 1024;
/// Where the inodes start, in blocks; nids count 32-byte slots from here.
const META_BLKADDR: u64 = 1;
const NULL_ADDR: u32 = u32::MAX;
const FLAT_PLAIN: u16 = 0;
const FLAT_INLINE: u16 = 2;
const COMPACT: u64 = 32;
const EXTENDED: u64 = 64;
const DIRENT: usize = 12;
const NAME_MAX: usize = 255;
const XATTR_HEADER: usize = 12;

const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;
const S_IFBLK: u32 = 0o060000;
const S_IFIFO: u32 = 0o010000;

/// What the image says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Every timestamp, in seconds since the epoch.
    pub epoch: u64,
    /// The file system's UUID.
    pub uuid: [u8; 16],
}

/// Why an image could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ErofsError {
    /// Reading a stored file or writing the image failed.
    #[error("{what}: {source}")]
    Io {
        /// The file.
        what: String,
        /// Why.
        source: io::Error,
    },
    /// EROFS cannot say this.
    #[error("/{path}: {message}")]
    Unsupported {
        /// The node.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A stored file's bytes are not the size the tree says.
    #[error("/{path}: the stored content has another size than the tree's {expected} bytes")]
    SizeChanged {
        /// The node.
        path: String,
        /// What the tree says.
        expected: u64,
    },
    /// More blocks than a 32-bit block address reaches.
    #[error("the image would have {0} blocks, more than EROFS addresses")]
    TooLarge(u64),
}

fn io_error(what: &Path) -> impl Fn(io::Error) -> ErofsError + '_ {
    move |source| ErofsError::Io {
        what: what.display().to_string(),
        source,
    }
}

/// What an inode's bytes are.
#[derive(Debug)]
enum Data<'t> {
    /// No data (devices, fifos).
    None,
    /// A regular file's content.
    File(&'t Content),
    /// Generated here: a directory's blocks or a symlink's target.
    Bytes(Vec<u8>),
}

#[derive(Debug)]
struct Inode<'t> {
    path: &'t str,
    node: &'t Node,
    /// Type bits and permissions.
    mode: u32,
    file_type: u8,
    nlink: u32,
    size: u64,
    data: Data<'t>,
    rdev: u32,
    /// The inline xattr body (header and entries), or empty.
    xattrs: Vec<u8>,
    extended: bool,
    /// Whether the tail is packed after the inode.
    inline: bool,
    /// First data block, or NULL_ADDR.
    start: u32,
    /// Byte offset of the inode.
    offset: u64,
    /// Directories: (name, inode index, file type), sorted by name.
    entries: Vec<(&'t str, usize, u8)>,
    /// Directories: the parent's inode index (the root's own).
    parent: usize,
}

impl Inode<'_> {
    fn nid(&self) -> u64 {
        (self.offset - META_BLKADDR * BLOCK) / COMPACT
    }

    fn inode_size(&self) -> u64 {
        if self.extended { EXTENDED } else { COMPACT }
    }

    fn tail(&self) -> u64 {
        self.size % BLOCK
    }

    /// Data blocks in the data area.
    fn full_blocks(&self) -> u64 {
        match self.data {
            Data::None => 0,
            _ if self.inline => self.size / BLOCK,
            _ => self.size.div_ceil(BLOCK),
        }
    }
}

/// An image laid out from a tree, ready to be written.
#[derive(Debug)]
pub struct Plan<'t> {
    inodes: Vec<Inode<'t>>,
    /// First block of the data area.
    data_start: u64,
    blocks: u64,
    options: Options,
}

impl<'t> Plan<'t> {
    /// Lays out `tree`: inodes, xattrs, directories, where every byte goes.
    pub fn new(tree: &'t Tree, options: Options) -> Result<Plan<'t>, ErofsError> {
        let mut inodes: Vec<Inode<'t>> = Vec::with_capacity(tree.len());
        let mut index: HashMap<&'t str, usize> = HashMap::with_capacity(tree.len());
        for (path, node) in tree.iter() {
            let (kind_bits, file_type, data, rdev) = match &node.kind {
                Kind::Hardlink(_) => continue,
                Kind::Directory => (S_IFDIR, 2, Data::Bytes(Vec::new()), 0),
                Kind::File(content) => (S_IFREG, 1, Data::File(content), 0),
                Kind::Symlink(target) => (S_IFLNK, 7, Data::Bytes(target.as_bytes().to_vec()), 0),
                Kind::CharDevice { major, minor } => (S_IFCHR, 3, Data::None, rdev(*major, *minor)),
                Kind::BlockDevice { major, minor } => {
                    (S_IFBLK, 4, Data::None, rdev(*major, *minor))
                }
                Kind::Fifo => (S_IFIFO, 5, Data::None, 0),
            };
            let permissions = if kind_bits == S_IFLNK {
                0o777
            } else {
                node.mode & 0o7777
            };
            index.insert(path, inodes.len());
            inodes.push(Inode {
                path,
                node,
                mode: kind_bits | permissions,
                file_type,
                nlink: if kind_bits == S_IFDIR { 2 } else { 1 },
                size: 0,
                data,
                rdev,
                xattrs: xattr_body(path, node)?,
                extended: false,
                inline: false,
                start: NULL_ADDR,
                offset: 0,
                entries: Vec::new(),
                parent: 0,
            });
        }
        // Names into their directories; hard links count on their target.
        for (path, node) in tree.iter() {
            if path.is_empty() {
                continue;
            }
            let target = match &node.kind {
                Kind::Hardlink(to) => {
                    let at = *index
                        .get(to.as_str())
                        .ok_or_else(|| ErofsError::Unsupported {
                            path: path.to_owned(),
                            message: format!("hard link to {to}, which is not in the tree"),
                        })?;
                    inodes[at].nlink += 1;
                    at
                }
                _ => index[path],
            };
            let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
            if name.len() > NAME_MAX {
                return Err(ErofsError::Unsupported {
                    path: path.to_owned(),
                    message: format!("a name of {} bytes (at most {NAME_MAX})", name.len()),
                });
            }
            let parent = index[parent];
            if inodes[target].file_type == 2 {
                inodes[parent].nlink += 1;
                inodes[target].parent = parent;
            }
            let file_type = inodes[target].file_type;
            inodes[parent].entries.push((name, target, file_type));
        }
        size_inodes(&mut inodes);

        let cursor = lay_out_metadata(&mut inodes);
        // The superblock holds the root's nid in 16 bits: it comes first.
        debug_assert_eq!(inodes[0].nid(), 0);

        // The data area, in the same order.
        let data_start = cursor.div_ceil(BLOCK);
        let mut next = data_start;
        for inode in &mut inodes {
            let blocks = inode.full_blocks();
            if blocks > 0 {
                inode.start = u32::try_from(next).map_err(|_| ErofsError::TooLarge(next))?;
                next += blocks;
            }
        }
        if next > u32::MAX as u64 {
            return Err(ErofsError::TooLarge(next));
        }
        Ok(Plan {
            inodes,
            data_start,
            blocks: next,
            options,
        })
    }

    /// The image's size in bytes.
    pub fn size(&self) -> u64 {
        self.blocks * BLOCK
    }

    /// Writes the image to `out` in one pass, reading each stored file
    /// from `blob(digest)` once; `progress` is told the bytes written.
    pub fn write(
        &self,
        blob: &dyn Fn(&Sha256) -> PathBuf,
        out: &mut dyn Write,
        progress: &dyn Fn(u64),
    ) -> Result<(), ErofsError> {
        let image = Path::new("the EROFS image");
        let mut out = Counted {
            inner: out,
            written: 0,
            progress,
        };
        let write = |out: &mut Counted<'_>, bytes: &[u8]| -> Result<(), ErofsError> {
            out.write_all(bytes).map_err(io_error(image))
        };
        write(&mut out, &self.superblock())?;
        for inode in &self.inodes {
            let gap = inode.offset - out.written;
            zeros(&mut out, gap).map_err(io_error(image))?;
            write(&mut out, &self.inode_bytes(inode))?;
            write(&mut out, &inode.xattrs)?;
            if inode.inline {
                let from = inode.size - inode.tail();
                match &inode.data {
                    Data::File(content) => {
                        let mut tail = vec![0u8; inode.tail() as usize];
                        read_at(inode, content, blob, from, &mut tail)?;
                        write(&mut out, &tail)?;
                    }
                    Data::Bytes(_) => {
                        let bytes = self.bytes(inode);
                        write(&mut out, &bytes[from as usize..])?;
                    }
                    Data::None => unreachable!("no tail without data"),
                }
            }
        }
        let gap = self.data_start * BLOCK - out.written;
        zeros(&mut out, gap).map_err(io_error(image))?;
        for inode in &self.inodes {
            let blocks = inode.full_blocks();
            if blocks == 0 {
                continue;
            }
            debug_assert_eq!(out.written, inode.start as u64 * BLOCK);
            let length = (blocks * BLOCK).min(inode.size);
            match &inode.data {
                Data::File(Content::Stored { sha256, .. }) => {
                    let source = blob(sha256);
                    let file = File::open(&source).map_err(io_error(&source))?;
                    if file.metadata().map_err(io_error(&source))?.len() != inode.size {
                        return Err(ErofsError::SizeChanged {
                            path: inode.path.to_owned(),
                            expected: inode.size,
                        });
                    }
                    let copied =
                        io::copy(&mut file.take(length), &mut out).map_err(io_error(&source))?;
                    if copied != length {
                        return Err(ErofsError::SizeChanged {
                            path: inode.path.to_owned(),
                            expected: inode.size,
                        });
                    }
                }
                Data::File(Content::Inline(bytes)) => write(&mut out, &bytes[..length as usize])?,
                Data::Bytes(_) => write(&mut out, &self.bytes(inode)[..length as usize])?,
                Data::None => unreachable!("no blocks without data"),
            }
            zeros(&mut out, blocks * BLOCK - length).map_err(io_error(image))?;
        }
        debug_assert_eq!(out.written, self.size());
        out.flush().map_err(io_error(image))
    }

    /// A directory's blocks with its entries' nids, or a symlink's target.
    fn bytes(&self, inode: &Inode<'_>) -> Vec<u8> {
        match &inode.data {
            Data::Bytes(_) if inode.file_type == 2 => {
                let parent = self.inodes[inode.parent].nid();
                directory(&dir_entries(inode, parent, &self.inodes))
            }
            Data::Bytes(bytes) => bytes.clone(),
            _ => Vec::new(),
        }
    }

    fn superblock(&self) -> Vec<u8> {
        let mut block = vec![0u8; BLOCK as usize];
        let mut sb = Vec::with_capacity(128);
        sb.extend_from_slice(&MAGIC.to_le_bytes());
        sb.extend_from_slice(&0u32.to_le_bytes()); // checksum (feature off)
        sb.extend_from_slice(&0u32.to_le_bytes()); // feature_compat
        sb.push(12); // blkszbits
        sb.push(0); // sb_extslots
        sb.extend_from_slice(&(self.inodes[0].nid() as u16).to_le_bytes());
        sb.extend_from_slice(&(self.inodes.len() as u64).to_le_bytes()); // inos
        sb.extend_from_slice(&self.options.epoch.to_le_bytes()); // build time
        sb.extend_from_slice(&0u32.to_le_bytes()); // its nanoseconds
        sb.extend_from_slice(&(self.blocks as u32).to_le_bytes());
        sb.extend_from_slice(&(META_BLKADDR as u32).to_le_bytes());
        sb.extend_from_slice(&0u32.to_le_bytes()); // no shared xattrs
        sb.extend_from_slice(&self.options.uuid);
        sb.extend_from_slice(&[0u8; 16]); // volume name
        sb.extend_from_slice(&0u32.to_le_bytes()); // feature_incompat
        sb.resize(128, 0);
        block[SUPERBLOCK_OFFSET..SUPERBLOCK_OFFSET + sb.len()].copy_from_slice(&sb);
        block
    }

    fn inode_bytes(&self, inode: &Inode<'_>) -> Vec<u8> {
        let layout = if inode.inline {
            FLAT_INLINE
        } else {
            FLAT_PLAIN
        };
        let version = u16::from(inode.extended);
        let format = version | (layout << 1);
        let icount: u16 = if inode.xattrs.is_empty() {
            0
        } else {
            ((inode.xattrs.len() - XATTR_HEADER) / 4 + 1) as u16
        };
        let i_u = if matches!(inode.data, Data::None) {
            inode.rdev
        } else {
            inode.start
        };
        let ino = (inode.nid() as u32).wrapping_add(1);
        let mut out = Vec::with_capacity(inode.inode_size() as usize);
        out.extend_from_slice(&format.to_le_bytes());
        out.extend_from_slice(&icount.to_le_bytes());
        out.extend_from_slice(&(inode.mode as u16).to_le_bytes());
        if inode.extended {
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(&inode.size.to_le_bytes());
            out.extend_from_slice(&i_u.to_le_bytes());
            out.extend_from_slice(&ino.to_le_bytes());
            out.extend_from_slice(&inode.node.uid.to_le_bytes());
            out.extend_from_slice(&inode.node.gid.to_le_bytes());
            out.extend_from_slice(&self.options.epoch.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes()); // mtime nanoseconds
            out.extend_from_slice(&inode.nlink.to_le_bytes());
            out.extend_from_slice(&[0u8; 16]);
        } else {
            out.extend_from_slice(&(inode.nlink as u16).to_le_bytes());
            out.extend_from_slice(&(inode.size as u32).to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes()); // mtime: the superblock's
            out.extend_from_slice(&i_u.to_le_bytes());
            out.extend_from_slice(&ino.to_le_bytes());
            out.extend_from_slice(&(inode.node.uid as u16).to_le_bytes());
            out.extend_from_slice(&(inode.node.gid as u16).to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
        }
        debug_assert_eq!(out.len() as u64, inode.inode_size());
        out
    }
}

/// Directory contents (sized: their nids are filled in when written),
/// every inode's size, and which inodes need the extended form.
fn size_inodes(inodes: &mut [Inode<'_>]) {
    for inode in inodes.iter_mut() {
        inode
            .entries
            .sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        if inode.file_type == 2 {
            // Sized now; the nids are filled in when written.
            inode.data = Data::Bytes(directory(&dir_entries(inode, 0, &[])));
        }
        inode.size = match &inode.data {
            Data::None => 0,
            Data::File(content) => content.size(),
            Data::Bytes(bytes) => bytes.len() as u64,
        };
        inode.extended = inode.node.uid > u16::MAX as u32
            || inode.node.gid > u16::MAX as u32
            || inode.size > u32::MAX as u64
            || inode.nlink > u16::MAX as u32;
    }
}

/// Places every inode in the metadata area, with its xattrs (and its tail,
/// when packed) inside one block; returns where the area ends.
fn lay_out_metadata(inodes: &mut [Inode<'_>]) -> u64 {
    let mut cursor = META_BLKADDR * BLOCK;
    for inode in inodes.iter_mut() {
        let head = inode.inode_size() + inode.xattrs.len() as u64;
        let room = BLOCK - cursor % BLOCK;
        let tail = if matches!(inode.data, Data::None) {
            0
        } else {
            inode.tail()
        };
        if tail > 0 && head + tail <= BLOCK {
            // Packed here, or after padding to the next block when that
            // wastes less than a data block of its own would.
            if head + tail <= room {
                inode.inline = true;
            } else if room < BLOCK - tail {
                cursor += room;
                inode.inline = true;
            }
        }
        if !inode.inline && head > BLOCK - cursor % BLOCK {
            cursor = cursor.next_multiple_of(BLOCK);
        }
        inode.offset = cursor;
        cursor += head + if inode.inline { tail } else { 0 };
        cursor = cursor.next_multiple_of(COMPACT);
    }
    cursor
}

/// Linux's `new_encode_dev`.
fn rdev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// A directory's entries with their nids: `.`, `..` and the children,
/// sorted by name. `inodes` empty: nids zero (for sizing).
fn dir_entries<'a>(
    inode: &'a Inode<'_>,
    parent: u64,
    inodes: &[Inode<'_>],
) -> Vec<(&'a [u8], u64, u8)> {
    let nid = |at: usize| inodes.get(at).map_or(0, Inode::nid);
    let own = if inodes.is_empty() { 0 } else { inode.nid() };
    let mut entries: Vec<(&[u8], u64, u8)> = vec![(b".", own, 2), (b"..", parent, 2)];
    entries.extend(
        inode
            .entries
            .iter()
            .map(|(name, at, file_type)| (name.as_bytes(), nid(*at), *file_type)),
    );
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// Directory blocks: per block, the dirents (nid, name offset, type) then
/// the names; every block but the last padded to the block size.
fn directory(entries: &[(&[u8], u64, u8)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < entries.len() {
        let mut count = 0;
        let mut used = 0;
        while at + count < entries.len()
            && used + DIRENT + entries[at + count].0.len() <= BLOCK as usize
        {
            used += DIRENT + entries[at + count].0.len();
            count += 1;
        }
        let block = &entries[at..at + count];
        let start = out.len();
        let mut name_offset = DIRENT * count;
        for (name, nid, file_type) in block {
            out.extend_from_slice(&nid.to_le_bytes());
            out.extend_from_slice(&(name_offset as u16).to_le_bytes());
            out.push(*file_type);
            out.push(0);
            name_offset += name.len();
        }
        for (name, _, _) in block {
            out.extend_from_slice(name);
        }
        at += count;
        if at < entries.len() {
            out.resize(start + BLOCK as usize, 0);
        }
    }
    out
}

/// The inline xattr body: a 12-byte header (no shared xattrs), then each
/// entry (name length, prefix index, value size, name suffix, value),
/// 4-byte aligned. Empty when the node has none.
fn xattr_body(path: &str, node: &Node) -> Result<Vec<u8>, ErofsError> {
    if node.xattrs.is_empty() {
        return Ok(Vec::new());
    }
    let unsupported = |message: String| ErofsError::Unsupported {
        path: path.to_owned(),
        message,
    };
    let mut out = vec![0u8; XATTR_HEADER];
    for (name, value) in &node.xattrs {
        let (index, suffix) = [("user.", 1u8), ("trusted.", 4), ("security.", 6)]
            .iter()
            .find_map(|(prefix, index)| name.strip_prefix(prefix).map(|rest| (*index, rest)))
            .or(match name.as_str() {
                "system.posix_acl_access" => Some((2, "")),
                "system.posix_acl_default" => Some((3, "")),
                _ => None,
            })
            .ok_or_else(|| unsupported(format!("the xattr {name} has no EROFS name prefix")))?;
        let name_len = u8::try_from(suffix.len())
            .map_err(|_| unsupported(format!("the xattr name {name} is too long")))?;
        let value_len = u16::try_from(value.len())
            .map_err(|_| unsupported(format!("the value of xattr {name} is too long")))?;
        out.push(name_len);
        out.push(index);
        out.extend_from_slice(&value_len.to_le_bytes());
        out.extend_from_slice(suffix.as_bytes());
        out.extend_from_slice(value);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    if (out.len() - XATTR_HEADER) / 4 + 1 > u16::MAX as usize {
        return Err(unsupported("too many xattrs".to_owned()));
    }
    Ok(out)
}

/// `buffer.len()` bytes of a file's content from offset `from`.
fn read_at(
    inode: &Inode<'_>,
    content: &Content,
    blob: &dyn Fn(&Sha256) -> PathBuf,
    from: u64,
    buffer: &mut [u8],
) -> Result<(), ErofsError> {
    match content {
        Content::Inline(bytes) => {
            buffer.copy_from_slice(&bytes[from as usize..from as usize + buffer.len()]);
            Ok(())
        }
        Content::Stored { sha256, .. } => {
            let source = blob(sha256);
            let mut file = File::open(&source).map_err(io_error(&source))?;
            let actual = file.metadata().map_err(io_error(&source))?.len();
            if actual != inode.size {
                return Err(ErofsError::SizeChanged {
                    path: inode.path.to_owned(),
                    expected: inode.size,
                });
            }
            file.seek(SeekFrom::Start(from))
                .map_err(io_error(&source))?;
            file.read_exact(buffer).map_err(io_error(&source))
        }
    }
}

fn zeros(out: &mut dyn Write, count: u64) -> io::Result<()> {
    const ZEROS: [u8; 4096] = [0; 4096];
    let mut left = count;
    while left > 0 {
        let n = left.min(ZEROS.len() as u64) as usize;
        out.write_all(&ZEROS[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Counts what passes, for offsets and progress.
struct Counted<'a> {
    inner: &'a mut dyn Write,
    written: u64,
    progress: &'a dyn Fn(u64),
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        (self.progress)(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests;
