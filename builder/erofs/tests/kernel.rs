//! The native EROFS image as Linux and erofs-utils read it: `fsck.erofs`
//! accepts it and extracts it, and the kernel, mounting it read-only from a
//! loop device, shows exactly the tree: every path, kind, mode, owner,
//! size, content, symlink target, device number, xattr and hard link.
//! Needs root and erofs-utils; under AIRLOCK_REQUIRE_TOOLS both are
//! required (and the mount must work).

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use airlock_erofs::{Options, Plan};
use airlock_fixtures::gate;
use airlock_tree::fixture::{self, Blobs};
use airlock_tree::{Content, Kind, Node, Tree};
use sha2::Digest;

/// A folder for blobs, kept as long as the returned guard lives.
fn blobs() -> (tempfile::TempDir, Blobs) {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Blobs::new(dir.path());
    (dir, blobs)
}

/// The ostree fixture plus what only EROFS holds and the odd shapes:
/// devices, a fifo, empty files, a file of exactly one block and one of
/// one block and a byte, names of 255 bytes, a directory of several
/// blocks, hard links in deep folders, an owner beyond 16 bits.
fn odd_tree(blobs: &Blobs) -> Tree {
    let mut tree = fixture::tree(&mut |bytes| blobs.add(bytes));
    let file = fixture::file;
    tree.put(
        "dev/null",
        Node::new(Kind::CharDevice { major: 1, minor: 3 }, 0o666),
    )
    .unwrap();
    tree.put(
        "dev/sda",
        Node::new(Kind::BlockDevice { major: 8, minor: 0 }, 0o660),
    )
    .unwrap();
    tree.put(
        "dev/big",
        Node::new(
            Kind::CharDevice {
                major: 300,
                minor: 70_000,
            },
            0o600,
        ),
    )
    .unwrap();
    tree.put("run/fifo", Node::new(Kind::Fifo, 0o600)).unwrap();
    tree.put("data/block", file(blobs.add(&[7u8; 4096]), 0o644))
        .unwrap();
    tree.put(
        "data/block-and-a-byte",
        file(blobs.add(&[8u8; 4097]), 0o644),
    )
    .unwrap();
    let mixed: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    tree.put("data/mixed", file(blobs.add(&mixed), 0o640))
        .unwrap();
    tree.put(
        "data/inline-empty",
        file(Content::Inline(Vec::new()), 0o644),
    )
    .unwrap();
    let long = "n".repeat(255);
    tree.put(
        &format!("data/{long}"),
        file(blobs.add(b"long name\n"), 0o644),
    )
    .unwrap();
    let long_dir = "d".repeat(255);
    tree.put(
        &format!("data/{long_dir}/{long}"),
        file(blobs.add(b""), 0o600),
    )
    .unwrap();
    for i in 0..400 {
        let name = format!("many/{i:04}-{}", "x".repeat(40 + i % 60));
        tree.put(
            &name,
            file(Content::Inline(format!("{i}\n").into_bytes()), 0o644),
        )
        .unwrap();
    }
    tree.put(
        "deep/a/b/c/d/e/f/original",
        file(blobs.add(b"shared inode\n"), 0o4750),
    )
    .unwrap();
    for at in ["deep/z/link", "deep/a/b/link", "other/link"] {
        tree.put(
            at,
            Node::new(Kind::Hardlink("deep/a/b/c/d/e/f/original".into()), 0),
        )
        .unwrap();
    }
    let mut far = file(Content::Inline(b"far owner".to_vec()), 0o600);
    (far.uid, far.gid) = (100_000, 70_000);
    tree.put("home/far", far).unwrap();
    let mut attrs = file(Content::Inline(b"labelled".to_vec()), 0o644);
    attrs
        .xattrs
        .insert("user.origin".into(), b"airlock".to_vec());
    attrs
        .xattrs
        .insert("trusted.overlay.opaque".into(), b"y".to_vec());
    tree.put("etc/labelled", attrs).unwrap();
    tree
}

fn options() -> Options {
    Options {
        epoch: 1_700_000_000,
        uuid: *b"airlock-erofs-01",
    }
}

fn write_image(tree: &Tree, blobs: &Blobs, image: &Path) {
    let plan = Plan::new(tree, options()).unwrap();
    let mut out = std::io::BufWriter::new(std::fs::File::create(image).unwrap());
    plan.write(&|d| blobs.path(d), &mut out, &|_| {}).unwrap();
    drop(out);
    assert_eq!(std::fs::metadata(image).unwrap().len(), plan.size());
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What a path is, as a string to compare.
fn describe_tree(tree: &Tree, blobs: &Blobs) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (path, node) in tree.iter() {
        let node = match &node.kind {
            Kind::Hardlink(to) => tree.get(to).unwrap(),
            _ => node,
        };
        let what = match &node.kind {
            Kind::Directory => format!("dir {:o}", node.mode),
            Kind::File(content) => {
                let bytes = match content {
                    Content::Inline(bytes) => bytes.clone(),
                    Content::Stored { sha256, .. } => std::fs::read(blobs.path(sha256)).unwrap(),
                };
                format!(
                    "file {:o} {} {}",
                    node.mode,
                    bytes.len(),
                    hex::encode(sha2::Sha256::digest(&bytes))
                )
            }
            Kind::Symlink(target) => format!("link {target}"),
            Kind::CharDevice { major, minor } => format!("chr {:o} {major},{minor}", node.mode),
            Kind::BlockDevice { major, minor } => format!("blk {:o} {major},{minor}", node.mode),
            Kind::Fifo => format!("fifo {:o}", node.mode),
            Kind::Hardlink(_) => unreachable!(),
        };
        let xattrs: Vec<String> = node
            .xattrs
            .iter()
            .map(|(k, v)| format!("{k}={}", hex::encode(v)))
            .collect();
        out.insert(
            format!("/{path}"),
            format!("{what} {}:{} [{}]", node.uid, node.gid, xattrs.join(",")),
        );
    }
    out
}

/// The same description of a mounted (or extracted) tree.
fn describe_dir(root: &Path, with_xattrs: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let kind = meta.file_type();
        let mode = meta.mode() & 0o7777;
        let major = |rdev: u64| ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
        let minor = |rdev: u64| (rdev & 0xff) | ((rdev >> 12) & !0xff);
        let what = if kind.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
            format!("dir {mode:o}")
        } else if kind.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            format!(
                "file {mode:o} {} {}",
                bytes.len(),
                hex::encode(sha2::Sha256::digest(&bytes))
            )
        } else if kind.is_symlink() {
            format!("link {}", std::fs::read_link(&path).unwrap().display())
        } else if kind.is_char_device() {
            format!("chr {mode:o} {},{}", major(meta.rdev()), minor(meta.rdev()))
        } else if kind.is_block_device() {
            format!("blk {mode:o} {},{}", major(meta.rdev()), minor(meta.rdev()))
        } else {
            format!("fifo {mode:o}")
        };
        let xattrs: Vec<String> = if with_xattrs {
            let mut names: Vec<_> = xattr::list(&path).unwrap().collect();
            names.sort();
            names
                .iter()
                .map(|name| {
                    let value = xattr::get(&path, name).unwrap().unwrap_or_default();
                    format!("{}={}", name.to_string_lossy(), hex::encode(value))
                })
                .collect()
        } else {
            Vec::new()
        };
        let relative = path.strip_prefix(root).unwrap().display().to_string();
        out.insert(
            format!("/{relative}"),
            format!(
                "{what} {}:{} [{}]",
                meta.uid(),
                meta.gid(),
                xattrs.join(",")
            ),
        );
    }
    out
}

fn ready() -> bool {
    gate::tool("fsck.erofs", "erofs-utils")
        && gate::root("mounting an EROFS image and extracting it with its owners")
}

#[test]
fn linux_mounts_the_image_and_shows_exactly_the_tree() {
    if !ready() {
        return;
    }
    let (_dir, blobs) = blobs();
    let tree = odd_tree(&blobs);
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("root.erofs");
    write_image(&tree, &blobs, &image);
    run(Command::new("fsck.erofs").arg(&image));
    let mount = dir.path().join("mnt");
    std::fs::create_dir(&mount).unwrap();
    run(Command::new("mount")
        .args(["-t", "erofs", "-o", "loop,ro"])
        .arg(&image)
        .arg(&mount));
    let seen = describe_dir(&mount, true);
    let inode = |p: &str| std::fs::metadata(mount.join(p)).unwrap();
    let links: Vec<(u64, u64)> = [
        "deep/a/b/c/d/e/f/original",
        "deep/z/link",
        "deep/a/b/link",
        "other/link",
    ]
    .iter()
    .map(|p| (inode(p).ino(), inode(p).nlink()))
    .collect();
    let dirs_nlink = inode("deep/a").nlink();
    let mtime = inode("usr/bin/su").mtime();
    run(Command::new("umount").arg(&mount));
    let expected = describe_tree(&tree, &blobs);
    for (path, what) in &expected {
        assert_eq!(seen.get(path), Some(what), "{path}");
    }
    assert_eq!(
        seen.len(),
        expected.len(),
        "{:?}",
        seen.keys()
            .filter(|k| !expected.contains_key(*k))
            .collect::<Vec<_>>()
    );
    assert!(links.iter().all(|l| *l == (links[0].0, 4)), "{links:?}");
    assert_eq!(dirs_nlink, 3, "deep/a holds one directory");
    assert_eq!(mtime, 1_700_000_000);
}

#[test]
fn fsck_erofs_extracts_the_tree() {
    if !ready() {
        return;
    }
    let (_dir, blobs) = blobs();
    let tree = odd_tree(&blobs);
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("root.erofs");
    write_image(&tree, &blobs, &image);
    let out = dir.path().join("out");
    run(Command::new("fsck.erofs")
        .arg(format!("--extract={}", out.display()))
        .arg("--preserve")
        .arg(&image));
    // fsck.erofs 1.5 extracts no xattrs, and sets the owner after the
    // mode, which clears setuid and setgid (the mount test checks those
    // bits); everything else must be there.
    let without_set_id = |what: String| {
        let mut words: Vec<String> = what.split(' ').map(str::to_owned).collect();
        if ["file", "dir"].contains(&words[0].as_str()) {
            let mode = u32::from_str_radix(&words[1], 8).unwrap();
            words[1] = format!("{:o}", mode & !0o6000);
        }
        words.join(" ")
    };
    let seen: BTreeMap<String, String> = describe_dir(&out, false)
        .into_iter()
        .map(|(path, what)| (path, without_set_id(what)))
        .collect();
    let expected: BTreeMap<String, String> = describe_tree(&tree, &blobs)
        .into_iter()
        .map(|(path, what)| {
            (
                path,
                without_set_id(format!("{}[]", what.rsplit_once('[').unwrap().0)),
            )
        })
        .collect();
    // The extraction's root folder is fsck's own.
    for (path, what) in expected.iter().filter(|(p, _)| *p != "/") {
        assert_eq!(seen.get(path), Some(what), "{path}");
    }
}
