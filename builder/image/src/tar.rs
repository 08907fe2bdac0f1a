//! rootfs.tar(.zst): the tree as a tar archive, deterministically. Entries
//! in path order (parents first), names relative to the root (the root
//! itself is `./`), numeric owners and no user or group names, every mtime
//! the recipe's epoch, GNU long-name records for long paths, and PAX records
//! (sorted) only for xattrs.

use std::io::{self, Write};

use airlock_store::Store;
use airlock_tree::{Content, Kind, Tree};

use crate::BuildError;

/// Writes the tree as an uncompressed tar to `out`.
pub fn write_tar(
    tree: &Tree,
    blobs: &Store,
    epoch: u64,
    out: impl Write,
) -> Result<(), BuildError> {
    let io = |source| BuildError::Io {
        what: "rootfs.tar".to_owned(),
        source,
    };
    let mut builder = ::tar::Builder::new(out);
    builder.mode(::tar::HeaderMode::Complete);
    builder.follow_symlinks(false);
    for (path, node) in tree.iter() {
        let name = if path.is_empty() { "./" } else { path };
        let mut header = ::tar::Header::new_gnu();
        header.set_mode(node.mode);
        header.set_uid(u64::from(node.uid));
        header.set_gid(u64::from(node.gid));
        header.set_mtime(epoch);
        header.set_size(0);
        if !node.xattrs.is_empty() {
            let keys: Vec<String> = node
                .xattrs
                .keys()
                .map(|key| format!("SCHILY.xattr.{key}"))
                .collect();
            let records = keys
                .iter()
                .map(String::as_str)
                .zip(node.xattrs.values().map(Vec::as_slice));
            builder.append_pax_extensions(records).map_err(io)?;
        }
        match &node.kind {
            Kind::Directory => {
                header.set_entry_type(::tar::EntryType::Directory);
                builder
                    .append_data(&mut header, name, io::empty())
                    .map_err(io)?;
            }
            Kind::File(content) => {
                header.set_entry_type(::tar::EntryType::Regular);
                header.set_size(content.size());
                match content {
                    Content::Inline(bytes) => {
                        builder.append_data(&mut header, name, bytes.as_slice())
                    }
                    Content::Stored { sha256, .. } => {
                        let path = blobs.path(sha256);
                        let file = std::fs::File::open(&path).map_err(|source| BuildError::Io {
                            what: path.display().to_string(),
                            source,
                        })?;
                        builder.append_data(&mut header, name, io::BufReader::new(file))
                    }
                }
                .map_err(io)?;
            }
            Kind::Symlink(target) => {
                header.set_entry_type(::tar::EntryType::Symlink);
                builder.append_link(&mut header, name, target).map_err(io)?;
            }
            Kind::Hardlink(target) => {
                header.set_entry_type(::tar::EntryType::Link);
                builder.append_link(&mut header, name, target).map_err(io)?;
            }
            Kind::CharDevice { major, minor } | Kind::BlockDevice { major, minor } => {
                let entry_type = if matches!(node.kind, Kind::CharDevice { .. }) {
                    ::tar::EntryType::Char
                } else {
                    ::tar::EntryType::Block
                };
                header.set_entry_type(entry_type);
                header.set_device_major(*major).map_err(io)?;
                header.set_device_minor(*minor).map_err(io)?;
                builder
                    .append_data(&mut header, name, io::empty())
                    .map_err(io)?;
            }
            Kind::Fifo => {
                header.set_entry_type(::tar::EntryType::Fifo);
                builder
                    .append_data(&mut header, name, io::empty())
                    .map_err(io)?;
            }
        }
    }
    builder
        .into_inner()
        .and_then(|mut out| out.flush())
        .map_err(io)
}

/// Writes the tree as a zstd-compressed tar (single-threaded, so the bytes
/// do not depend on the machine).
pub fn write_tar_zst(
    tree: &Tree,
    blobs: &Store,
    epoch: u64,
    level: i32,
    out: impl Write,
) -> Result<(), BuildError> {
    let io = |source| BuildError::Io {
        what: airlock_format::names::image::ROOTFS_TAR.to_owned(),
        source,
    };
    let mut encoder = zstd::stream::write::Encoder::new(out, level).map_err(io)?;
    encoder.include_checksum(true).map_err(io)?;
    write_tar(tree, blobs, epoch, &mut encoder)?;
    encoder.finish().and_then(|mut out| out.flush()).map_err(io)
}
