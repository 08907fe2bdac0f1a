//! The steps done to the tree, as the programs would do them on a fresh
//! install. What the program would fail at (a source that is not there, a
//! link that exists without `-f`) changes nothing here either.

use std::collections::BTreeMap;

use airlock_store::Store;
use airlock_tree::{Content, Kind, Node, Tree};

use super::{Mode, Op};
use crate::BuildError;
use crate::configure::accounts::Accounts;
use crate::configure::files::Added;
use crate::configure::scripts::Command;
use crate::configure::{maintscripts, read_content};

/// The largest file `cat FILE > …` reads.
const MAX_READ: u64 = 1 << 20;

/// Does every literal step of every script, in order; returns how many.
pub fn configure(
    tree: &mut Tree,
    blobs: &Store,
    scripts: &BTreeMap<String, Vec<Command>>,
    accounts: &Accounts,
    added: &[Added],
) -> Result<usize, BuildError> {
    let mut done = 0;
    for (package, command, op) in crate::configure::scripts::steps(scripts, super::parse) {
        if op.at_runtime_only() || left_to_others(&op, added) || removes_scratch(&op) {
            continue;
        }
        let Some(umask) = command.umask else {
            return Err(command.error(
                package,
                "the file-creation mask it runs with is not known (an umask the walk could not \
                 decide)"
                    .to_owned(),
            ));
        };
        let mut step = Step {
            tree,
            blobs,
            accounts,
            umask,
        };
        step.apply(&op)
            .map_err(|message| command.error(package, message))?;
        done += 1;
    }
    Ok(done)
}

/// Removes the scratch files the scripts' `$(mktemp)` named (once every
/// step that reads them, such as ucf's, is done), as the scripts' own
/// clean-up would.
pub fn remove_scratch(tree: &mut Tree) -> Result<(), BuildError> {
    let prefix = airlock_maintscript::SCRATCH.trim_start_matches('/');
    let scratch: Vec<String> = tree
        .iter()
        .filter(|(path, _)| path.starts_with(prefix))
        .map(|(path, _)| path.to_owned())
        .collect();
    for path in scratch {
        crate::configure::remove(tree, &path)?;
    }
    Ok(())
}

/// Whether the step only removes scratch files: they stay until every
/// step that reads them is done (ucf's, after the script's own `rm -f
/// "$tmp"`), then [`remove_scratch`] removes them.
fn removes_scratch(op: &Op) -> bool {
    matches!(op, Op::Remove { paths, .. }
        if paths.iter().all(|p| p.starts_with(airlock_maintscript::SCRATCH)))
}

/// Whether a module of airlock or the recipe writes a path the step
/// changes: they win.
fn left_to_others(op: &Op, added: &[Added]) -> bool {
    op.targets().iter().any(|path| {
        maintscripts::writer(path).is_some()
            || relative(path).is_ok_and(|rel| added.iter().any(|a| a.path == rel))
    })
}

/// `/etc/x/../y` → `etc/y`.
fn relative(path: &str) -> Result<String, String> {
    airlock_tree::normalize_lexically(path.trim_start_matches('/'))
        .ok_or_else(|| format!("{path} climbs above the root"))
}

fn base_name(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

struct Step<'a> {
    tree: &'a mut Tree,
    blobs: &'a Store,
    accounts: &'a Accounts,
    /// The script's file-creation mask at this step (dpkg's 022 unless it
    /// ran `umask`).
    umask: u32,
}

impl Step<'_> {
    fn apply(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::Mkdir {
                paths,
                mode,
                owner,
                group,
                existing,
            } => {
                let ids = self.ids(owner.as_deref(), group.as_deref())?;
                for path in paths {
                    self.mkdir(path, mode.as_ref(), ids, *existing)?;
                }
            }
            Op::Chown {
                paths,
                owner,
                group,
                login_group,
                recursive,
                no_follow,
            } => self.chown(
                paths,
                (owner.as_deref(), group.as_deref()),
                *login_group,
                *recursive,
                !*no_follow,
            )?,
            Op::Chmod {
                paths,
                mode,
                recursive,
            } => self.chmod(paths, mode, *recursive)?,
            Op::Link {
                target,
                link,
                symbolic,
                force,
                no_dereference,
            } => self.link(target, link, *symbolic, *force, *no_dereference)?,
            Op::Touch(paths) => {
                for path in paths {
                    if self.tree.lookup(&relative(path)?).is_none() {
                        let at = self.new_file(path)?;
                        self.put(&at, file(Vec::new(), self.umask))?;
                    }
                }
            }
            Op::Remove { paths, recursive } => {
                for path in paths {
                    let canonical = self.canonical(path)?;
                    match self.tree.get(&canonical).map(|n| &n.kind) {
                        None => {}
                        Some(Kind::Directory) if !recursive => {}
                        Some(_) => {
                            self.tree.remove(&canonical).map_err(|e| e.to_string())?;
                        }
                    }
                }
            }
            Op::Rmdir(paths) => {
                for path in paths {
                    let canonical = self.canonical(path)?;
                    if matches!(
                        self.tree.get(&canonical).map(|n| &n.kind),
                        Some(Kind::Directory)
                    ) && self.tree.children(&canonical).is_empty()
                    {
                        self.tree.remove(&canonical).map_err(|e| e.to_string())?;
                    }
                }
            }
            Op::Move { from, to } => self.copy_or_move(from, to, true, &Copy::moved(self.umask))?,
            Op::Copy { .. } => self.copy(op)?,
            Op::Write {
                path,
                bytes,
                append,
            } => self.write(path, bytes.clone(), *append)?,
            Op::Concatenate {
                from,
                edits,
                path,
                append,
            } => {
                let mut bytes = Vec::new();
                for file in from {
                    bytes.extend(self.read(file)?);
                }
                if !edits.is_empty() {
                    let text = String::from_utf8(bytes)
                        .map_err(|_| format!("sed reads {}, which is not text", from.join(" ")))?;
                    bytes = super::sed::apply(edits, &text).into_bytes();
                }
                self.write(path, bytes, *append)?;
            }
        }
        Ok(())
    }

    /// `chown`/`chgrp`: `OWNER:` with no group takes the owner's login
    /// group, as chown(1) does.
    fn chown(
        &mut self,
        paths: &[String],
        (owner, group): (Option<&str>, Option<&str>),
        login_group: bool,
        recursive: bool,
        follow: bool,
    ) -> Result<(), String> {
        let (uid, mut gid) = self.ids(owner, group)?;
        if login_group {
            let name = owner.unwrap_or_default();
            gid = Some(
                self.accounts
                    .users
                    .iter()
                    .find(|u| Some(u.uid) == uid)
                    .map(|u| u.gid)
                    .ok_or_else(|| format!("no user {name} for its login group"))?,
            );
        }
        for path in paths {
            for node in self.nodes(path, recursive, follow)? {
                let node = self.tree.get_mut(&node).expect("listed");
                node.uid = uid.unwrap_or(node.uid);
                node.gid = gid.unwrap_or(node.gid);
            }
        }
        Ok(())
    }

    /// `chmod`: symlinks keep their mode; `X` sees directories.
    fn chmod(&mut self, paths: &[String], mode: &Mode, recursive: bool) -> Result<(), String> {
        for path in paths {
            for node in self.nodes(path, recursive, true)? {
                let node = self.tree.get_mut(&node).expect("listed");
                match node.kind {
                    Kind::Symlink(_) => {}
                    Kind::Directory => node.mode = mode.apply(node.mode, true, self.umask),
                    _ => node.mode = mode.apply(node.mode, false, self.umask),
                }
            }
        }
        Ok(())
    }

    /// `cp` and `install`: the copy, or an empty file from /dev/null.
    fn copy(&mut self, op: &Op) -> Result<(), String> {
        let Op::Copy {
            from,
            to,
            preserve,
            recursive,
            mode,
            owner,
            group,
        } = op
        else {
            unreachable!("a copy");
        };
        let copy = Copy {
            preserve: *preserve,
            recursive: *recursive,
            mode: mode.clone(),
            ids: self.ids(owner.as_deref(), group.as_deref())?,
            umask: self.umask,
        };
        if from == "/dev/null" {
            // `install -m 644 /dev/null FILE`: an empty file.
            let rel = relative(to)?;
            let node = copy.node(&file(Vec::new(), self.umask), None, false);
            self.put(&rel, node)
        } else {
            self.copy_or_move(from, to, false, &copy)
        }
    }

    fn ids(
        &self,
        owner: Option<&str>,
        group: Option<&str>,
    ) -> Result<(Option<u32>, Option<u32>), String> {
        let uid = owner
            .map(|name| {
                name.parse()
                    .ok()
                    .or_else(|| self.accounts.uid(name))
                    .ok_or_else(|| format!("no user {name}"))
            })
            .transpose()?;
        let gid = group
            .map(|name| {
                name.parse()
                    .ok()
                    .or_else(|| self.accounts.gid(name))
                    .ok_or_else(|| format!("no group {name}"))
            })
            .transpose()?;
        Ok((uid, gid))
    }

    fn canonical(&self, path: &str) -> Result<String, String> {
        self.tree
            .canonical(&relative(path)?)
            .map_err(|e| e.to_string())
    }

    fn put(&mut self, rel: &str, node: Node) -> Result<(), String> {
        self.tree
            .put(rel, node)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// The canonical paths a step on `path` changes: what it leads to
    /// (`follow`) or itself, and with `recursive` everything below a
    /// directory. Nothing when it is not there (the program would fail and
    /// change nothing).
    fn nodes(&self, path: &str, recursive: bool, follow: bool) -> Result<Vec<String>, String> {
        let rel = relative(path)?;
        let canonical = if follow {
            match self.tree.lookup(&rel) {
                Some((canonical, _)) => canonical,
                None => return Ok(Vec::new()),
            }
        } else {
            self.canonical(path)?
        };
        let Some(node) = self.tree.get(&canonical) else {
            return Ok(Vec::new());
        };
        let mut out = vec![canonical.clone()];
        if recursive && matches!(node.kind, Kind::Directory) {
            let prefix = format!("{canonical}/");
            out.extend(
                self.tree
                    .iter()
                    .filter(|(key, _)| key.starts_with(&prefix))
                    .map(|(key, _)| key.to_owned()),
            );
        }
        Ok(out)
    }

    fn mkdir(
        &mut self,
        path: &str,
        mode: Option<&Mode>,
        (uid, gid): (Option<u32>, Option<u32>),
        existing: bool,
    ) -> Result<(), String> {
        let rel = relative(path)?;
        let default = 0o777 & !self.umask;
        match self.tree.lookup(&rel) {
            Some((canonical, node)) if matches!(node.kind, Kind::Directory) => {
                if existing {
                    let node = self.tree.get_mut(&canonical).expect("looked up");
                    if let Some(mode) = mode {
                        node.mode = mode.apply(node.mode, true, self.umask);
                    }
                    node.uid = uid.unwrap_or(node.uid);
                    node.gid = gid.unwrap_or(node.gid);
                }
                Ok(())
            }
            Some(_) => Err(format!("{path} exists and is not a directory")),
            None => {
                let mut node = Node::new(
                    Kind::Directory,
                    mode.map_or(default, |m| m.apply(default, true, self.umask)),
                );
                node.uid = uid.unwrap_or(0);
                node.gid = gid.unwrap_or(0);
                self.put(&rel, node)
            }
        }
    }

    fn link(
        &mut self,
        target: &str,
        link: &str,
        symbolic: bool,
        force: bool,
        no_dereference: bool,
    ) -> Result<(), String> {
        let mut rel = relative(link)?;
        if !no_dereference
            && matches!(
                self.tree.lookup(&rel).map(|(_, n)| &n.kind),
                Some(Kind::Directory)
            )
        {
            rel = format!("{rel}/{}", base_name(target));
        }
        let canonical = self.tree.canonical(&rel).map_err(|e| e.to_string())?;
        match self.tree.get(&canonical).map(|n| &n.kind) {
            Some(Kind::Directory) => return Err(format!("{link} is a directory")),
            Some(_) if !force => return Ok(()),
            _ => {}
        }
        let node = if symbolic {
            Node::new(Kind::Symlink(target.to_owned()), 0o777)
        } else {
            let Some((to, node)) = self.tree.lookup(&relative(target)?) else {
                return Ok(());
            };
            if !matches!(node.kind, Kind::File(_)) {
                return Err(format!("{target} is not a file to hard-link"));
            }
            let mut link = node.clone();
            link.kind = Kind::Hardlink(to);
            link.owners.clear();
            link
        };
        self.tree.remove(&canonical).map_err(|e| e.to_string())?;
        self.put(&canonical, node)
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        // The device every host has, whether or not the image lists it.
        if path == "/dev/null" {
            return Ok(Vec::new());
        }
        let Some((_, node)) = self.tree.lookup(&relative(path)?) else {
            return Err(format!("{path} is not in the image"));
        };
        match &node.kind {
            Kind::File(content) if content.size() <= MAX_READ => {
                read_content(self.blobs, content).map_err(|e| e.to_string())
            }
            Kind::File(_) => Err(format!("{path} is larger than airlock reads for a script")),
            _ => Err(format!("{path} is not a file")),
        }
    }

    fn write(&mut self, path: &str, bytes: Vec<u8>, append: bool) -> Result<(), String> {
        let rel = relative(path)?;
        match self.tree.lookup(&rel) {
            Some((canonical, node)) => {
                let mut node = node.clone();
                let old = match &node.kind {
                    Kind::File(content) if append => {
                        read_content(self.blobs, content).map_err(|e| e.to_string())?
                    }
                    Kind::File(_) => Vec::new(),
                    _ => return Err(format!("{path} is not a file")),
                };
                node.kind = Kind::File(Content::Inline([old, bytes].concat()));
                node.owners.clear();
                self.put(&canonical, node)
            }
            None => {
                let at = self.new_file(path)?;
                self.put(&at, file(bytes, self.umask))
            }
        }
    }

    /// Where a file made at `path` lands (which holds nothing yet): not
    /// through a link that leads nowhere in the image (to /proc, say),
    /// which the program would follow and airlock cannot.
    fn new_file(&self, path: &str) -> Result<String, String> {
        let canonical = self.canonical(path)?;
        match self.tree.get(&canonical).map(|n| &n.kind) {
            Some(Kind::Symlink(target)) => Err(format!(
                "{path} is a link to {target}, which is not in the image"
            )),
            _ => Ok(canonical),
        }
    }

    fn copy_or_move(
        &mut self,
        from: &str,
        to: &str,
        moved: bool,
        how: &Copy,
    ) -> Result<(), String> {
        let from_rel = relative(from)?;
        let source = if moved {
            let canonical = self.canonical(from)?;
            self.tree.get(&canonical).map(|n| (canonical, n.clone()))
        } else {
            self.tree.lookup(&from_rel).map(|(c, n)| (c, n.clone()))
        };
        let Some((source, node)) = source else {
            return Ok(());
        };
        let directory = matches!(node.kind, Kind::Directory);
        if directory && !how.recursive {
            return Ok(());
        }
        let rel = relative(to)?;
        let existing = self.tree.lookup(&rel).map(|(c, n)| (c, n.clone()));
        let dest = match &existing {
            // Into a directory (also through a link to one).
            Some((dir, node)) if matches!(node.kind, Kind::Directory) => {
                format!("{dir}/{}", base_name(&source))
            }
            // cp writes through a link to the file it leads to; mv
            // replaces the link itself.
            Some((file, _)) if !moved => file.clone(),
            _ if moved => self.canonical(to)?,
            _ => self.new_file(to)?,
        };
        if dest == source || dest.starts_with(&format!("{source}/")) {
            return Err(format!("{to} is {from} or inside it"));
        }
        let kept_mode = existing
            .filter(|(c, n)| *c == dest && matches!(n.kind, Kind::File(_)))
            .map(|(_, n)| n.mode);
        let mut below: Vec<(String, Node)> = Vec::new();
        if directory {
            let prefix = format!("{source}/");
            below = self
                .tree
                .iter()
                .filter(|(key, _)| key.starts_with(&prefix))
                .map(|(key, n)| (format!("{dest}/{}", &key[prefix.len()..]), n.clone()))
                .collect();
            if below
                .iter()
                .any(|(_, n)| matches!(n.kind, Kind::Hardlink(_)))
            {
                return Err(format!(
                    "{from} holds hard links, which airlock does not copy"
                ));
            }
        }
        if moved {
            self.tree.remove(&source).map_err(|e| e.to_string())?;
        }
        self.put(&dest, how.node(&node, kept_mode, moved))?;
        for (path, node) in below {
            self.put(&path, how.node(&node, None, moved))?;
        }
        Ok(())
    }
}

/// How a copy's nodes get their metadata.
struct Copy {
    preserve: bool,
    recursive: bool,
    mode: Option<Mode>,
    ids: (Option<u32>, Option<u32>),
    umask: u32,
}

impl Copy {
    fn moved(umask: u32) -> Copy {
        Copy {
            preserve: true,
            recursive: true,
            mode: None,
            umask,
            ids: (None, None),
        }
    }

    /// The copy of `node`; `kept_mode` is the mode of the file it
    /// overwrites (cp keeps it).
    fn node(&self, node: &Node, kept_mode: Option<u32>, moved: bool) -> Node {
        let mut copy = node.clone();
        if !moved {
            copy.owners.clear();
        }
        if !self.preserve {
            copy.mode = kept_mode.unwrap_or(node.mode & !self.umask);
            copy.uid = 0;
            copy.gid = 0;
            copy.xattrs.clear();
        }
        if let Some(mode) = &self.mode {
            copy.mode = mode.apply(copy.mode, matches!(copy.kind, Kind::Directory), self.umask);
        }
        copy.uid = self.ids.0.unwrap_or(copy.uid);
        copy.gid = self.ids.1.unwrap_or(copy.gid);
        copy
    }
}

fn file(bytes: Vec<u8>, umask: u32) -> Node {
    Node::new(Kind::File(Content::Inline(bytes)), 0o666 & !umask)
}
