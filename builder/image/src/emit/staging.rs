//! A real directory made from the tree, for mkfs.erofs (and for the tests
//! that compare airlock's native writers with the tools that read one). Every path comes from the tree, whose parents are
//! real directories it made itself, so nothing here follows a link a package
//! planted. Owners are set as the tree says, which needs root; times are
//! irrelevant (mkfs.erofs is given the epoch).

use std::fs;
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::path::Path;

use airlock_store::Store;
use airlock_tree::{Content, Kind, Tree};

use crate::BuildError;

/// Writes the tree below `dir` (which must exist and be empty).
///
/// Per node: create, then owner, then mode, then xattrs. In that order
/// because chown(2) clears the setuid and setgid bits (for root too) and
/// drops `security.capability`: chmod before chown lost every setuid bit
/// of the EROFS root.
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
        let mut mode = Some(node.mode);
        match &node.kind {
            Kind::Directory => {
                if !path.is_empty() {
                    fs::create_dir(&target).map_err(io(&target))?;
                }
                directories.push((target.clone(), node.mode));
                mode = None; // set last, once its children are written
            }
            Kind::File(Content::Stored { sha256, .. }) => {
                fs::copy(blobs.path(sha256), &target).map_err(io(&target))?;
            }
            Kind::File(Content::Inline(bytes)) => {
                fs::write(&target, bytes).map_err(io(&target))?;
            }
            Kind::Symlink(link) => {
                symlink(link, &target).map_err(io(&target))?;
                mode = None; // a symlink has none
            }
            Kind::Hardlink(to) => {
                fs::hard_link(dir.join(to), &target).map_err(io(&target))?;
                continue; // shares the inode (owner, mode, xattrs) of its target
            }
            Kind::CharDevice { .. } | Kind::BlockDevice { .. } | Kind::Fifo => {
                return Err(BuildError::Config {
                    what: "staging".to_owned(),
                    message: format!("/{path}: device nodes and fifos cannot be staged for EROFS"),
                });
            }
        }
        lchown(&target, Some(node.uid), Some(node.gid)).map_err(|source| {
            if source.kind() == std::io::ErrorKind::PermissionDenied {
                BuildError::Config {
                    what: "staging".to_owned(),
                    message: "setting file owners for the EROFS emitter needs root; \
                              run as root, or leave \"erofs\" out of [output] formats \
                              (\"tar\" and \"ostree\" need no root)"
                        .to_owned(),
                }
            } else {
                io(&target)(source)
            }
        })?;
        if let Some(mode) = mode {
            fs::set_permissions(&target, fs::Permissions::from_mode(mode)).map_err(io(&target))?;
        }
        set_xattrs(path, node, &target)?;
    }
    // Directory modes last (children of a 0555 directory were written).
    for (path, mode) in directories.into_iter().rev() {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(io(&path))?;
    }
    Ok(())
}

/// Sets the node's xattrs on the staged file, and refuses any other the
/// host's file system added on its own (an SELinux label, say): the tools
/// would copy it into the image, and the image would depend on the host.
fn set_xattrs(path: &str, node: &airlock_tree::Node, target: &Path) -> Result<(), BuildError> {
    let fail = |message: String| BuildError::Config {
        what: "staging".to_owned(),
        message: format!("/{path}: {message}"),
    };
    for (name, value) in &node.xattrs {
        xattr::set(target, name, value)
            .map_err(|e| fail(format!("setting the {name} xattr: {e}")))?;
    }
    let present: Vec<String> = xattr::list(target)
        .map_err(|e| fail(format!("listing xattrs: {e}")))?
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    if let Some(extra) = present.iter().find(|name| !node.xattrs.contains_key(*name)) {
        return Err(fail(format!(
            "the staging file system added the xattr {extra}, which the image does not have; \
             build on a file system without automatic labels"
        )));
    }
    Ok(())
}
