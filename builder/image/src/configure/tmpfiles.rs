//! The tmpfiles.d links into /etc, made at build time. systemd-tmpfiles
//! applies tmpfiles.d at every boot (and systemd's postinst applies it
//! when the package is installed), but the image's /etc is on the
//! read-only root: a link it would make there (systemd's
//! `L+ /etc/mtab - - - - ../proc/self/mounts`) could never be made on the
//! host, so airlock makes it in the image. Only `L` and `L+` lines with a
//! literal path under /etc and a literal target are read; everything else
//! stays with systemd-tmpfiles at boot (/var, /run and /tmp are writable
//! there).

use std::collections::BTreeMap;

use airlock_store::Store;
use airlock_tree::{Kind, Tree};

use super::{put, read_content, remove, symlink};
use crate::BuildError;

/// Where tmpfiles.d files are, lowest precedence first: a file name in a
/// later folder replaces the same name in an earlier one.
const FOLDERS: &[&str] = &["usr/lib/tmpfiles.d", "etc/tmpfiles.d"];

/// Makes the links; returns the paths made.
pub fn configure(tree: &mut Tree, blobs: &Store) -> Result<Vec<String>, BuildError> {
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for folder in FOLDERS {
        let Some((dir, _)) = tree.lookup(folder) else {
            continue;
        };
        for (name, _) in tree.children(&dir) {
            if name.ends_with(".conf") {
                files.insert(name.to_owned(), format!("{dir}/{name}"));
            }
        }
    }
    let mut links = Vec::new();
    for path in files.values() {
        let Some((_, node)) = tree.lookup(path) else {
            continue;
        };
        let Kind::File(content) = &node.kind else {
            continue;
        };
        let text = String::from_utf8_lossy(&read_content(blobs, content)?).into_owned();
        links.extend(text.lines().filter_map(link));
    }
    let mut made = Vec::new();
    for (path, target, replace) in links {
        let relative = path.trim_start_matches('/');
        match tree.get(relative).map(|node| &node.kind) {
            Some(Kind::Symlink(existing)) if *existing == target => continue,
            Some(Kind::Directory) => continue,
            Some(_) if !replace => continue,
            Some(_) => remove(tree, relative)?,
            None => {}
        }
        put(tree, relative, symlink(&target))?;
        made.push(path);
    }
    Ok(made)
}

/// `L[+] /etc/PATH - - - - TARGET`: the path, the target and whether an
/// existing file is replaced; None for any other line.
fn link(line: &str) -> Option<(String, String, bool)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [kind, path, _, _, _, _, target] = fields[..] else {
        return None;
    };
    let replace = match kind {
        "L" => false,
        "L+" => true,
        _ => return None,
    };
    let literal = |text: &str| !text.contains('%') && !text.contains('\\');
    let under_etc = path.starts_with("/etc/")
        && !path.contains("/../")
        && !path.ends_with("/..")
        && literal(path);
    (under_etc && target != "-" && literal(target)).then(|| {
        (
            path.trim_end_matches('/').to_owned(),
            target.to_owned(),
            replace,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_tree::{Content, Node};

    fn conf(text: &str) -> Node {
        Node::new(Kind::File(Content::Inline(text.as_bytes().to_vec())), 0o644)
    }

    #[test]
    fn links_into_etc_are_made_and_the_rest_left_to_boot() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Store::open_scratch(dir.path()).unwrap();
        let mut tree = Tree::merged_usr();
        tree.put(
            "usr/lib/tmpfiles.d/debian.conf",
            conf(
                "# comment\nL+ /etc/mtab   -    -    -    -  ../proc/self/mounts\n\
                 L /var/lib/x - - - - /y\nL /etc/%H - - - - /z\nL /etc/default-target - - - - -\n\
                 r! /etc/passwd.lock\nL /etc/keep - - - - /other\n",
            ),
        )
        .unwrap();
        tree.put("etc/keep", conf("kept")).unwrap();
        // A file in /etc/tmpfiles.d replaces the same name in /usr/lib.
        tree.put(
            "usr/lib/tmpfiles.d/override.conf",
            conf("L /etc/overridden - - - - /a\n"),
        )
        .unwrap();
        tree.put(
            "etc/tmpfiles.d/override.conf",
            conf("L /etc/local - - - - /b\n"),
        )
        .unwrap();
        let made = configure(&mut tree, &blobs).unwrap();
        assert_eq!(made, ["/etc/mtab", "/etc/local"]);
        assert_eq!(
            tree.get("etc/mtab").unwrap().kind,
            Kind::Symlink("../proc/self/mounts".to_owned())
        );
        assert!(matches!(tree.get("etc/keep").unwrap().kind, Kind::File(_)));
        assert!(tree.get("var/lib/x").is_none(), "/var is made at boot");
        assert!(tree.get("etc/overridden").is_none());
        assert_eq!(configure(&mut tree, &blobs).unwrap().len(), 0, "made once");
    }
}
