//! A real directory made from the tree, for the tools that read one
//! (mkfs.erofs, ostree). Every path comes from the tree, whose parents are
//! real directories it made itself, so nothing here follows a link a package
//! planted. Owners are set as the tree says, which needs root; times are
//! irrelevant (both tools are given the epoch).

use std::fs;
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::path::Path;

use airlock_store::Store;
use airlock_tree::{Content, Kind, Tree};

use crate::BuildError;

/// Writes the tree below `dir` (which must exist and be empty).
pub fn stage(tree: &Tree, blobs: &Store, dir: &Path) -> Result<(), BuildError> {
    let io = |path: &Path| {
        let what = path.display().to_string();
        move |source: std::io::Error| BuildError::Io { what, source }
    };
    let mut directories = Vec::new();
    for (path, node) in tree.iter() {
        let target = if path.is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(path)
        };
        match &node.kind {
            Kind::Directory => {
                if !path.is_empty() {
                    fs::create_dir(&target).map_err(io(&target))?;
                }
                directories.push((target.clone(), node.mode));
            }
            Kind::File(Content::Stored { sha256, .. }) => {
                fs::copy(blobs.path(sha256), &target).map_err(io(&target))?;
                fs::set_permissions(&target, fs::Permissions::from_mode(node.mode))
                    .map_err(io(&target))?;
            }
            Kind::File(Content::Inline(bytes)) => {
                fs::write(&target, bytes).map_err(io(&target))?;
                fs::set_permissions(&target, fs::Permissions::from_mode(node.mode))
                    .map_err(io(&target))?;
            }
            Kind::Symlink(link) => symlink(link, &target).map_err(io(&target))?,
            Kind::Hardlink(to) => {
                fs::hard_link(dir.join(to), &target).map_err(io(&target))?;
                continue; // shares the owner of its target
            }
            Kind::CharDevice { .. } | Kind::BlockDevice { .. } | Kind::Fifo => {
                return Err(BuildError::Config {
                    what: "staging".to_owned(),
                    message: format!(
                        "/{path}: device nodes and fifos cannot be staged for EROFS or ostree"
                    ),
                });
            }
        }
        lchown(&target, Some(node.uid), Some(node.gid)).map_err(|source| {
            if source.kind() == std::io::ErrorKind::PermissionDenied {
                BuildError::Config {
                    what: "staging".to_owned(),
                    message: "setting file owners for the EROFS and ostree emitters needs root; \
                              run as root, or set [output] formats = [\"tar\"]"
                        .to_owned(),
                }
            } else {
                io(&target)(source)
            }
        })?;
        if !node.xattrs.is_empty() {
            return Err(BuildError::Config {
                what: "staging".to_owned(),
                message: format!("/{path}: extended attributes are not staged yet"),
            });
        }
    }
    // Directory modes last (children of a 0555 directory were written).
    for (path, mode) in directories.into_iter().rev() {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(io(&path))?;
    }
    Ok(())
}
