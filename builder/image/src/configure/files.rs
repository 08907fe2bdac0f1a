//! The recipe's `[files]`: inline files and directory trees from the build
//! host. A host tree is read in name order and normalized: owner root,
//! directories 0755, files 0755 when the owner may execute them and 0644
//! otherwise, symlinks as they are; the host's owners, umask, times and
//! other files (devices, sockets) never reach the image.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use airlock_recipe::InlineFile;
use airlock_store::Store;
use airlock_tree::{Content, Kind, Node, Tree};

use super::accounts::Accounts;
use crate::BuildError;

/// One file the recipe adds.
#[derive(Clone, Debug)]
pub struct Added {
    /// Image path, relative.
    pub path: String,
    /// The node (owned by root until accounts exist).
    pub node: Node,
    /// Owner and group names, for inline files.
    pub owner: Option<(String, String)>,
}

/// Reads a host directory tree into the blob store.
pub fn read_host_tree(
    source: &Path,
    target: &str,
    blobs: &Store,
) -> Result<Vec<Added>, BuildError> {
    let io = |path: &Path| {
        let what = path.display().to_string();
        move |source| BuildError::Io { what, source }
    };
    let metadata = fs::metadata(source).map_err(io(source))?;
    if !metadata.is_dir() {
        return Err(BuildError::Config {
            what: "[files] tree".to_owned(),
            message: format!("{} is not a directory", source.display()),
        });
    }
    let mut out = Vec::new();
    let mut stack = vec![(source.to_path_buf(), target.trim_matches('/').to_owned())];
    while let Some((dir, image_dir)) = stack.pop() {
        let mut names: Vec<_> = fs::read_dir(&dir)
            .map_err(io(&dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io(&dir))?;
        names.sort();
        for name in names.into_iter().rev() {
            let host = dir.join(&name);
            let name = name.to_str().ok_or_else(|| BuildError::Config {
                what: "[files] tree".to_owned(),
                message: format!("{}: not a UTF-8 name", host.display()),
            })?;
            let path = if image_dir.is_empty() {
                name.to_owned()
            } else {
                format!("{image_dir}/{name}")
            };
            let meta = fs::symlink_metadata(&host).map_err(io(&host))?;
            let node = if meta.is_dir() {
                stack.push((host.clone(), path.clone()));
                Node::new(Kind::Directory, 0o755)
            } else if meta.file_type().is_symlink() {
                let target = fs::read_link(&host).map_err(io(&host))?;
                let target = target.to_str().ok_or_else(|| BuildError::Config {
                    what: "[files] tree".to_owned(),
                    message: format!("{}: not a UTF-8 link", host.display()),
                })?;
                Node::new(Kind::Symlink(target.to_owned()), 0o777)
            } else if meta.is_file() {
                let file = fs::File::open(&host).map_err(io(&host))?;
                let (sha256, size) = blobs.add_reader(&host.display().to_string(), file)?;
                let mode = if meta.permissions().mode() & 0o100 != 0 {
                    0o755
                } else {
                    0o644
                };
                Node::new(Kind::File(Content::Stored { sha256, size }), mode)
            } else {
                return Err(BuildError::Config {
                    what: "[files] tree".to_owned(),
                    message: format!(
                        "{}: only directories, files and symlinks can be added",
                        host.display()
                    ),
                });
            };
            out.push(Added {
                path,
                node,
                owner: None,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// An inline file.
pub fn inline(path: &str, file: &InlineFile) -> Added {
    Added {
        path: path.trim_start_matches('/').to_owned(),
        node: Node::new(
            Kind::File(Content::Inline(file.content.clone().into_bytes())),
            file.mode.0,
        ),
        owner: Some((file.owner.to_string(), file.group.to_string())),
    }
}

/// Puts the added files into the tree (they win over packages' files).
pub fn apply(tree: &mut Tree, added: &[Added]) -> Result<(), BuildError> {
    for file in added {
        tree.insert(&file.path, file.node.clone(), &|_| true)
            .or_else(|_| tree.put(&file.path, file.node.clone()))
            .map_err(|source| BuildError::Tree {
                package: "[files]".to_owned(),
                source,
            })?;
    }
    Ok(())
}

/// Gives inline files their owners, once the accounts exist.
pub fn set_owners(tree: &mut Tree, added: &[Added], accounts: &Accounts) -> Result<(), BuildError> {
    for file in added {
        let Some((owner, group)) = &file.owner else {
            continue;
        };
        let missing = |what: &str, name: &str| BuildError::Config {
            what: "[files] inline".to_owned(),
            message: format!("/{}: {what} {name} does not exist in the image", file.path),
        };
        let mut node = file.node.clone();
        node.uid = accounts.uid(owner).ok_or_else(|| missing("user", owner))?;
        node.gid = accounts.gid(group).ok_or_else(|| missing("group", group))?;
        tree.put(&file.path, node)
            .map_err(|source| BuildError::Tree {
                package: "[files]".to_owned(),
                source,
            })?;
    }
    Ok(())
}
