//! A tree with every kind of node ostree holds (devices and fifos are
//! added by the tests that can hold them), shared by the emitters' tests
//! and their comparisons with `ostree commit` and mkfs.erofs.

use std::path::PathBuf;

use airlock_format::Sha256;

use crate::{Content, Kind, Node, Tree};

/// A folder of contents named by digest, standing in for the store.
#[derive(Debug)]
pub struct Blobs {
    dir: PathBuf,
}

impl Blobs {
    /// Blobs kept in `dir` (which must exist).
    pub fn new(dir: impl Into<PathBuf>) -> Blobs {
        Blobs { dir: dir.into() }
    }

    /// Stores `bytes`; the content that names them.
    pub fn add(&self, bytes: &[u8]) -> Content {
        let sha256 = Sha256::of(bytes);
        std::fs::write(self.path(&sha256), bytes).expect("the blob folder is writable");
        Content::Stored {
            sha256,
            size: bytes.len() as u64,
        }
    }

    /// Where the content with `digest` is.
    pub fn path(&self, digest: &Sha256) -> PathBuf {
        self.dir.join(digest.to_hex())
    }
}

/// A regular file node.
pub fn file(content: Content, mode: u32) -> Node {
    Node::new(Kind::File(content), mode)
}

/// Files stored and inline, empty, setuid, owned by a user, with a
/// capability, a symlink, a hard link and a restricted directory.
pub fn tree(add: &mut dyn FnMut(&[u8]) -> Content) -> Tree {
    let mut tree = Tree::merged_usr();
    let text: Vec<u8> = b"the quick brown fox\n".repeat(4000);
    tree.put("usr/share/doc/fox.txt", file(add(&text), 0o644))
        .unwrap();
    tree.put("usr/share/doc/empty", file(add(b""), 0o644))
        .unwrap();
    tree.put(
        "etc/hostname",
        file(Content::Inline(b"node\n".to_vec()), 0o644),
    )
    .unwrap();
    tree.put("usr/bin/su", file(add(b"\x7fELF su"), 0o4755))
        .unwrap();
    let mut ping = file(add(b"\x7fELF ping"), 0o755);
    ping.xattrs.insert(
        "security.capability".to_owned(),
        vec![1, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    tree.put("usr/bin/ping", ping).unwrap();
    let mut home = Node::new(Kind::Directory, 0o700);
    (home.uid, home.gid) = (1000, 1000);
    tree.put("home/agent", home).unwrap();
    let mut owned = file(Content::Inline(b"mine".to_vec()), 0o600);
    (owned.uid, owned.gid) = (1000, 1000);
    tree.put("home/agent/notes", owned).unwrap();
    tree.put("usr/bin/sh", Node::new(Kind::Symlink("dash".into()), 0o777))
        .unwrap();
    tree.put(
        "usr/share/doc/fox2.txt",
        Node::new(Kind::Hardlink("usr/share/doc/fox.txt".into()), 0o644),
    )
    .unwrap();
    tree
}
