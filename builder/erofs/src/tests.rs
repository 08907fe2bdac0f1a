use std::io::Write;
use std::path::PathBuf;

use airlock_format::Sha256;
use airlock_tree::{Content, Kind, Node, Tree};

use super::*;

fn options() -> Options {
    Options {
        epoch: 1_700_000_000,
        uuid: [7; 16],
    }
}

fn file(bytes: &[u8], mode: u32) -> Node {
    Node::new(Kind::File(Content::Inline(bytes.to_vec())), mode)
}

fn no_blobs(_: &Sha256) -> PathBuf {
    unreachable!("inline contents only")
}

fn image(tree: &Tree) -> Vec<u8> {
    let plan = Plan::new(tree, options()).unwrap();
    let mut out = Vec::new();
    plan.write(&no_blobs, &mut out, &|_| {}).unwrap();
    assert_eq!(out.len() as u64, plan.size());
    out
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap())
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

#[test]
fn the_superblock_names_the_root_the_blocks_and_the_epoch() {
    let mut tree = Tree::new();
    tree.put("etc/hostname", file(b"node\n", 0o644)).unwrap();
    let bytes = image(&tree);
    let sb = &bytes[1024..1024 + 128];
    assert_eq!(u32_at(sb, 0), 0xE0F5_E1E2);
    assert_eq!(sb[12], 12, "4 KiB blocks");
    assert_eq!(u16_at(sb, 14), 0, "the root is nid 0");
    assert_eq!(
        u64::from_le_bytes(sb[16..24].try_into().unwrap()),
        3,
        "inodes"
    );
    assert_eq!(
        u64::from_le_bytes(sb[24..32].try_into().unwrap()),
        1_700_000_000
    );
    assert_eq!(u32_at(sb, 36) as usize * 4096, bytes.len());
    assert_eq!(u32_at(sb, 40), 1, "inodes from block 1");
    assert_eq!(&sb[48..64], &[7; 16]);
    // Everything packs into the metadata block: two blocks in all.
    assert_eq!(bytes.len(), 2 * 4096);
}

#[test]
fn small_files_are_packed_after_their_inode() {
    let mut tree = Tree::new();
    tree.put("motd", file(b"hello\n", 0o644)).unwrap();
    let plan = Plan::new(&tree, options()).unwrap();
    let motd = plan.inodes.iter().find(|i| i.path == "motd").unwrap();
    assert!(motd.inline && motd.start == NULL_ADDR);
    let bytes = image(&tree);
    let at = motd.offset as usize;
    assert_eq!(u16_at(&bytes, at), FLAT_INLINE << 1, "compact, flat-inline");
    assert_eq!(u16_at(&bytes, at + 4), 0o100644);
    assert_eq!(u32_at(&bytes, at + 8), 6, "size");
    assert_eq!(&bytes[at + 32..at + 38], b"hello\n");
}

#[test]
fn a_file_of_whole_blocks_has_no_tail_and_a_big_tail_gets_its_own_block() {
    let mut tree = Tree::new();
    tree.put("one-block", file(&[1; 4096], 0o644)).unwrap();
    tree.put("almost", file(&[2; 4095], 0o644)).unwrap();
    let plan = Plan::new(&tree, options()).unwrap();
    let find = |name: &str| plan.inodes.iter().find(|i| i.path == name).unwrap();
    let whole = find("one-block");
    assert!(!whole.inline);
    assert_eq!(whole.full_blocks(), 1);
    // 4095 bytes do not fit beside a 32-byte inode in one block.
    let almost = find("almost");
    assert!(!almost.inline);
    assert_eq!(almost.full_blocks(), 1);
    let bytes = image(&tree);
    let start = almost.start as usize * 4096;
    assert_eq!(&bytes[start..start + 4095], &[2; 4095][..]);
    assert_eq!(bytes[start + 4095], 0, "zero-padded");
}

#[test]
fn owners_beyond_16_bits_and_huge_files_take_the_extended_inode() {
    // A 4 GiB + 1 "model", sparse in the store: the extended inode carries
    // its 64-bit size, its data is read once and written in place.
    let dir = tempfile::tempdir().unwrap();
    let size = (4u64 << 30) + 1;
    let digest = Sha256([9; 32]);
    let blob = dir.path().join("model");
    std::fs::File::create(&blob).unwrap().set_len(size).unwrap();
    let mut tree = Tree::new();
    let mut model = Node::new(
        Kind::File(Content::Stored {
            sha256: digest,
            size,
        }),
        0o444,
    );
    (model.uid, model.gid) = (70_000, 70_001);
    tree.put("models/big.gguf", model).unwrap();
    let plan = Plan::new(&tree, options()).unwrap();
    let big = plan
        .inodes
        .iter()
        .find(|i| i.path == "models/big.gguf")
        .unwrap();
    assert!(big.extended);
    assert_eq!(
        big.full_blocks(),
        size / 4096,
        "the one-byte tail is packed inline"
    );
    // Write the metadata and count the rest, without 4 GiB of disk.
    struct Head {
        kept: Vec<u8>,
        seen: u64,
    }
    impl Write for Head {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let room = (64 * 1024usize).saturating_sub(self.kept.len());
            self.kept.extend_from_slice(&buf[..room.min(buf.len())]);
            self.seen += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut head = Head {
        kept: Vec::new(),
        seen: 0,
    };
    let blob_for = |_: &Sha256| blob.clone();
    plan.write(&blob_for, &mut head, &|_| {}).unwrap();
    assert_eq!(head.seen, plan.size());
    let at = big.offset as usize;
    let bytes = &head.kept;
    assert_eq!(u16_at(bytes, at) & 1, 1, "extended");
    assert_eq!(
        u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap()),
        size
    );
    assert_eq!(u32_at(bytes, at + 24), 70_000);
    assert_eq!(u32_at(bytes, at + 28), 70_001);
    assert_eq!(
        u64::from_le_bytes(bytes[at + 32..at + 40].try_into().unwrap()),
        1_700_000_000
    );
}

#[test]
fn directories_span_blocks_each_beginning_with_its_own_dirents() {
    let mut tree = Tree::new();
    for i in 0..300 {
        tree.put(&format!("many/{i:03}-{}", "y".repeat(50)), file(b"", 0o644))
            .unwrap();
    }
    let plan = Plan::new(&tree, options()).unwrap();
    let many = plan.inodes.iter().find(|i| i.path == "many").unwrap();
    let blocks = plan.bytes(many);
    assert!(blocks.len() > 3 * 4096, "{}", blocks.len());
    let mut names = Vec::new();
    for block in blocks.chunks(4096) {
        let count = u16_at(block, 8) as usize / 12;
        for i in 0..count {
            let start = u16_at(block, i * 12 + 8) as usize;
            let end = if i + 1 < count {
                u16_at(block, (i + 1) * 12 + 8) as usize
            } else {
                block[start..]
                    .iter()
                    .position(|b| *b == 0)
                    .map_or(block.len(), |n| start + n)
            };
            names.push(String::from_utf8(block[start..end].to_vec()).unwrap());
        }
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "sorted across blocks");
    assert_eq!(names.len(), 302);
    assert_eq!(&names[..2], [".", ".."]);
}

#[test]
fn xattrs_are_encoded_with_their_prefix_index() {
    let mut node = file(b"", 0o755);
    node.xattrs
        .insert("security.capability".into(), vec![1, 2, 3]);
    node.xattrs.insert("user.a".into(), vec![]);
    let body = xattr_body("usr/bin/ping", &node).unwrap();
    let expected: Vec<u8> = [
        &[0u8; 12][..],
        &[10, 6, 3, 0],
        b"capability",
        &[1, 2, 3, 0, 0, 0], // name + value = 13, padded to 16
        &[1, 1, 0, 0],
        b"a",
        &[0, 0, 0],
    ]
    .concat();
    assert_eq!(body, expected);
    node.xattrs.insert("system.other".into(), vec![1]);
    let error = xattr_body("etc/x", &node).unwrap_err();
    assert_eq!(
        error.to_string(),
        "/etc/x: the xattr system.other has no EROFS name prefix"
    );
}

#[test]
fn names_longer_than_255_bytes_are_refused() {
    let mut tree = Tree::new();
    tree.put(&"n".repeat(256), file(b"", 0o644)).unwrap();
    let error = Plan::new(&tree, options()).unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("a name of 256 bytes (at most 255)"),
        "{error}"
    );
}

#[test]
fn device_numbers_are_linux_encoded() {
    assert_eq!(rdev(1, 3), 0x103);
    assert_eq!(rdev(8, 0), 0x800);
    assert_eq!(
        rdev(300, 70_000),
        (70_000 & 0xff) | (300 << 8) | ((70_000 & !0xff) << 12)
    );
}

#[test]
fn the_same_tree_gives_the_same_bytes() {
    let build = || {
        let mut tree = Tree::merged_usr();
        for i in 0..50 {
            tree.put(&format!("etc/f{i}"), file(&vec![i as u8; i * 97], 0o644))
                .unwrap();
        }
        image(&tree)
    };
    assert_eq!(build(), build());
}
