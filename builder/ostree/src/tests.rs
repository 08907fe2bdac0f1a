use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use airlock_tree::{Content, Kind, Node, Tree};

use super::*;
use airlock_tree::fixture::{Blobs, file};

/// A folder for blobs, kept as long as the returned guard lives.
fn blobs() -> (tempfile::TempDir, Blobs) {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Blobs::new(dir.path());
    (dir, blobs)
}

fn fixture(blobs: &Blobs) -> Tree {
    airlock_tree::fixture::tree(&mut |bytes| blobs.add(bytes))
}

fn info() -> CommitInfo {
    CommitInfo {
        branch: "airlock/fixture".into(),
        subject: "fixture 1".into(),
        body: String::new(),
        metadata: BTreeMap::from([("version".to_owned(), "1".to_owned())]),
        timestamp: 1_700_000_001,
    }
}

fn commit(tree: &Tree, blobs: &Blobs, repo: &Path, level: u32) -> Result<Written, OstreeError> {
    write(tree, &|d| blobs.path(d), repo, &info(), level, &|_| {})
}

/// Every file below `dir`, relative path → bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn the_same_tree_gives_the_same_repository_whatever_the_threads() {
    let (_dir, blobs) = blobs();
    let tree = fixture(&blobs);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let four = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    let first = one.install(|| commit(&tree, &blobs, &a.path().join("repo"), 1).unwrap());
    let second = four.install(|| commit(&tree, &blobs, &b.path().join("repo"), 1).unwrap());
    assert_eq!(first, second);
    assert_eq!(files(&a.path().join("repo")), files(&b.path().join("repo")));
    let reference = std::fs::read_to_string(a.path().join("repo/refs/heads/airlock/fixture"));
    assert_eq!(reference.unwrap(), format!("{}\n", first.commit));
}

#[test]
fn the_deflate_level_changes_the_objects_bytes_never_a_checksum() {
    let (_dir, blobs) = blobs();
    let tree = fixture(&blobs);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let fast = commit(&tree, &blobs, a.path(), 1).unwrap();
    let best = commit(&tree, &blobs, b.path(), 9).unwrap();
    assert_eq!(fast.commit, best.commit);
    let (fast_files, best_files) = (files(a.path()), files(b.path()));
    assert_eq!(
        fast_files.keys().collect::<Vec<_>>(),
        best_files.keys().collect::<Vec<_>>()
    );
    assert!(
        fast_files
            .iter()
            .any(|(path, bytes)| best_files[path] != *bytes)
    );
}

#[test]
fn a_filez_object_is_its_header_then_the_content_deflated() {
    let (_dir, blobs) = blobs();
    let tree = fixture(&blobs);
    let repo = tempfile::tempdir().unwrap();
    commit(&tree, &blobs, repo.path(), 1).unwrap();
    let text: Vec<u8> = b"the quick brown fox\n".repeat(4000);
    let node = tree.get("usr/share/doc/fox.txt").unwrap();
    let mut hasher = sha2::Sha256::new();
    hasher.update(file_header(node));
    hasher.update(&text);
    let checksum: [u8; 32] = hasher.finalize().into();
    let hex = hex::encode(checksum);
    let object = repo
        .path()
        .join(format!("objects/{}/{}.filez", &hex[..2], &hex[2..]));
    let bytes = std::fs::read(&object).unwrap();
    let length = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
    assert_eq!(&bytes[4..8], &[0; 4]);
    // The header's first field: the size, big-endian.
    assert_eq!(u64::from_be_bytes(bytes[8..16].try_into().unwrap()), 80_000);
    // uid 0, gid 0, mode 0100644, big-endian.
    assert_eq!(&bytes[16..28], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0xa4]);
    let mut content = Vec::new();
    flate2::read::DeflateDecoder::new(&bytes[8 + length..])
        .read_to_end(&mut content)
        .unwrap();
    assert_eq!(content, text);
    assert!(bytes.len() < 2_000, "compressed: {}", bytes.len());
}

#[test]
fn a_hard_link_and_identical_files_share_one_object() {
    let (_dir, blobs) = blobs();
    let mut tree = fixture(&blobs);
    let repo = tempfile::tempdir().unwrap();
    let before = commit(&tree, &blobs, repo.path(), 1).unwrap();
    // The same bytes and metadata again under another name: no new file object.
    let text: Vec<u8> = b"the quick brown fox\n".repeat(4000);
    tree.put("usr/share/doc/fox-copy.txt", file(blobs.add(&text), 0o644))
        .unwrap();
    let again = tempfile::tempdir().unwrap();
    let after = commit(&tree, &blobs, again.path(), 1).unwrap();
    assert_ne!(before.commit, after.commit);
    let filez = |dir: &Path| files(dir).keys().filter(|p| p.ends_with(".filez")).count();
    assert_eq!(filez(repo.path()), filez(again.path()));
    // 11 distinct file objects: fox (and its hard link), empty, hostname,
    // su, ping, notes, sh and the four merged-/usr links to usr/*.
    assert_eq!(filez(repo.path()), 11);
    assert_eq!(
        before.objects,
        files(repo.path())
            .keys()
            .filter(|p| p.starts_with("objects/"))
            .count()
    );
}

#[test]
fn devices_are_refused_by_path() {
    let (_dir, blobs) = blobs();
    let mut tree = fixture(&blobs);
    tree.put(
        "dev/null",
        Node::new(Kind::CharDevice { major: 1, minor: 3 }, 0o666),
    )
    .unwrap();
    let repo = tempfile::tempdir().unwrap();
    let error = commit(&tree, &blobs, repo.path(), 1).unwrap_err();
    assert_eq!(
        error.to_string(),
        "/dev/null: ostree cannot hold a character device"
    );
}

#[test]
fn a_blob_of_another_size_is_refused() {
    let (_dir, blobs) = blobs();
    let mut tree = fixture(&blobs);
    let content = blobs.add(b"twelve bytes");
    let Content::Stored { sha256, .. } = content else {
        unreachable!()
    };
    tree.put(
        "etc/short",
        file(Content::Stored { sha256, size: 13 }, 0o644),
    )
    .unwrap();
    let repo = tempfile::tempdir().unwrap();
    let error = commit(&tree, &blobs, repo.path(), 1).unwrap_err();
    assert_eq!(
        error.to_string(),
        "/etc/short: the stored content has 12 bytes, the tree says 13"
    );
}

#[test]
fn a_repository_folder_that_is_not_empty_is_refused() {
    let (_dir, blobs) = blobs();
    let tree = fixture(&blobs);
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("precious"), b"keep").unwrap();
    let error = commit(&tree, &blobs, repo.path(), 1).unwrap_err();
    assert!(matches!(error, OstreeError::NotEmpty(_)), "{error}");
    assert_eq!(
        std::fs::read(repo.path().join("precious")).unwrap(),
        b"keep"
    );
}

#[test]
fn a_directory_of_thousands_of_entries_widens_its_offsets() {
    // A dirtree above 64 KiB needs 4-byte framing offsets; ostree's
    // checksum for it is checked in airlock-image's oracle test, here its
    // own shape: 3000 entries, each (name, 32 bytes) framed.
    let (_dir, blobs) = blobs();
    let mut tree = Tree::new();
    for i in 0..3000 {
        tree.put(
            &format!("many/file-{i:05}"),
            file(Content::Inline(i.to_string().into_bytes()), 0o644),
        )
        .unwrap();
    }
    let repo = tempfile::tempdir().unwrap();
    commit(&tree, &blobs, repo.path(), 1).unwrap();
    let dirtrees: Vec<Vec<u8>> = files(repo.path())
        .into_iter()
        .filter(|(p, _)| p.ends_with(".dirtree"))
        .map(|(_, bytes)| bytes)
        .collect();
    let big = dirtrees.iter().max_by_key(|b| b.len()).unwrap();
    assert!(big.len() > 65_536, "{}", big.len());
    // The last 4 bytes: the tuple's one framing offset, the end of the
    // files array, which is everything before it (no subdirectories).
    let end = u32::from_le_bytes(big[big.len() - 4..].try_into().unwrap()) as usize;
    assert_eq!(end, big.len() - 4);
    // The files array's own last offset (4 bytes before that): the end of
    // the 3000th element, inside the array's body.
    let last = u32::from_le_bytes(big[end - 4..end].try_into().unwrap()) as usize;
    assert_eq!(last, end - 3000 * 4);
}

#[test]
fn the_commit_checksum_of_the_fixture_stays_what_ostree_gives() {
    // airlock-image's oracle test checks this tree's commit against
    // `ostree commit`; this pins it where ostree is not installed.
    let (_dir, blobs) = blobs();
    let tree = fixture(&blobs);
    let repo = tempfile::tempdir().unwrap();
    let written = commit(&tree, &blobs, repo.path(), 1).unwrap();
    expect_test::expect!["6591b934e535bc48ca8abb8cf5c596c87ff1e02b6045c459b38891cd67b9b5d2"]
        .assert_eq(&written.commit);
}
