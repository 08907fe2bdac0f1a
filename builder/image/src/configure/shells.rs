//! /etc/shells, as debianutils' `update-shells` writes it on a fresh
//! system: the template (usr/share/debianutils/shells) copied, then every
//! shell the template and each file of usr/share/debianutils/shells.d (in
//! byte order of their names) lists, each also under its resolved path
//! when a symlinked directory leads to it (/bin/sh and /usr/bin/sh on a
//! merged /usr), added once. /var/lib/shells.state records the packaged
//! shells, so update-shells on the running system keeps local edits.
//! Then each `add-shell SHELL…` of the postinsts (tmux's), in package
//! order, appends every SHELL and its resolved path that /etc/shells does
//! not list yet, as add-shell does.

use airlock_store::Store;
use airlock_tree::Tree;

use super::{generated, put, read_file};
use crate::BuildError;

const TEMPLATE: &str = "usr/share/debianutils/shells";
const PACKAGED: &str = "usr/share/debianutils/shells.d";

/// The shells a shells file lists: each line up to a `#`, when not empty.
fn listed(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .filter(|shell| !shell.is_empty())
}

/// `shell` with its directory resolved through the tree's symlinks.
fn resolved(tree: &Tree, shell: &str) -> Option<String> {
    let (dir, name) = shell.rsplit_once('/')?;
    let (dir, _) = tree.lookup(dir.trim_start_matches('/'))?;
    Some(format!("/{dir}/{name}").replace("//", "/"))
}

/// The two files' contents, from the template's text and the packaged
/// lists' texts in order.
pub fn render(tree: &Tree, template: &str, packaged: &[String]) -> (String, String) {
    let mut shells: Vec<String> = Vec::new();
    for text in std::iter::once(template).chain(packaged.iter().map(String::as_str)) {
        for shell in listed(text) {
            shells.push(shell.to_owned());
            if let Some(real) = resolved(tree, shell)
                && real != shell
            {
                shells.push(real);
            }
        }
    }
    let mut etc = String::new();
    let mut present: Vec<&str> = Vec::new();
    for line in template.lines() {
        let shell = line.split('#').next().unwrap_or_default();
        if shell.is_empty() || !present.contains(&shell) {
            etc += line;
            etc.push('\n');
            present.push(shell);
        }
    }
    let mut state = String::new();
    for shell in &shells {
        state += shell;
        state.push('\n');
        if !present.contains(&shell.as_str()) {
            etc += shell;
            etc.push('\n');
            present.push(shell);
        }
    }
    (etc, state)
}

/// Writes /etc/shells and /var/lib/shells.state when the image has
/// debianutils' template and no /etc/shells of its own (from the recipe's
/// files).
pub fn configure(
    tree: &mut Tree,
    blobs: &Store,
    commands: &std::collections::BTreeMap<String, Vec<super::scripts::Command>>,
) -> Result<(), BuildError> {
    if tree.lookup("etc/shells").is_some() {
        return Ok(());
    }
    let Some(template) = read_file(tree, blobs, TEMPLATE) else {
        return Ok(());
    };
    let mut packaged = Vec::new();
    if let Some((dir, _)) = tree.lookup(PACKAGED) {
        // children() is in byte order, as update-shells' C.UTF-8 glob.
        for (name, _) in tree.children(&dir) {
            if let Some(text) = read_file(tree, blobs, &format!("{dir}/{name}")) {
                packaged.push(String::from_utf8_lossy(&text).into_owned());
            }
        }
    }
    let (mut etc, state) = render(tree, &String::from_utf8_lossy(&template), &packaged);
    let added = commands
        .values()
        .flatten()
        .filter(|c| c.script == "postinst" && c.name().rsplit('/').next() == Some("add-shell"))
        .flat_map(|c| c.words.iter().skip(1));
    for shell in added {
        add(tree, &mut etc, shell);
    }
    put(tree, "etc/shells", generated(etc, 0o644))?;
    put(tree, "var/lib/shells.state", generated(state, 0o644))?;
    Ok(())
}

/// `add-shell SHELL`: SHELL and its resolved path, each unless listed.
fn add(tree: &Tree, etc: &mut String, shell: &str) {
    let real = resolved(tree, shell);
    for shell in std::iter::once(shell).chain(real.as_deref()) {
        if !etc.lines().any(|line| line == shell) {
            etc.push_str(shell);
            etc.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merged_usr_lists_both_paths_of_each_shell_once() {
        let tree = Tree::merged_usr();
        let (etc, state) = render(
            &tree,
            "# /etc/shells: valid login shells\n/bin/sh\n",
            &[
                "/bin/bash\n/bin/rbash\n".to_owned(),
                "/bin/dash\n/bin/sh\n".to_owned(),
            ],
        );
        assert_eq!(
            etc,
            "# /etc/shells: valid login shells\n/bin/sh\n/usr/bin/sh\n/bin/bash\n/usr/bin/bash\n/bin/rbash\n/usr/bin/rbash\n/bin/dash\n/usr/bin/dash\n"
        );
        assert_eq!(state.lines().count(), 10);
        let mut added = etc.clone();
        add(&tree, &mut added, "/usr/bin/tmux");
        add(&tree, &mut added, "/bin/bash");
        assert_eq!(added, format!("{etc}/usr/bin/tmux\n"));
        assert!(state.starts_with("/bin/sh\n/usr/bin/sh\n/bin/bash\n"));
    }
}
