//! The native ostree writer against `ostree` itself: the same tree staged
//! and committed with `ostree commit` (as airlock did before the native
//! writer) gives the same commit checksum; `ostree fsck` accepts the
//! native repository; static deltas between two native commits generate
//! and apply. Needs ostree (Debian: ostree) and root (the staged copy
//! carries owners); under AIRLOCK_REQUIRE_TOOLS both are required.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use airlock_fixtures::gate;
use airlock_image::emit;
use airlock_ostree::CommitInfo;
use airlock_store::Store;
use airlock_tree::fixture;
use airlock_tree::{Content, Kind, Node, Tree};

fn ostree(repo: &Path, args: &[&str]) -> String {
    let output = Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .args(args)
        .output()
        .expect("ostree runs");
    assert!(
        output.status.success(),
        "ostree {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn store(dir: &Path) -> Store {
    Store::open_scratch(dir.join("store")).unwrap()
}

fn add(store: &Store, bytes: &[u8]) -> Content {
    let (sha256, size) = store.add_reader("fixture", bytes).unwrap();
    Content::Stored { sha256, size }
}

fn info(version: u64) -> CommitInfo {
    CommitInfo {
        branch: "airlock/fixture".into(),
        subject: format!("fixture {version}"),
        body: String::new(),
        metadata: BTreeMap::from([("version".to_owned(), version.to_string())]),
        timestamp: 1_700_000_000 + version,
    }
}

/// The checksum `ostree commit` gives for `tree`, staged as the build
/// staged it, committed as the build committed it before the native
/// writer (owners, modes and xattrs as staged, the epoch as timestamp).
fn oracle(tree: &Tree, store: &Store, dir: &Path, version: u64) -> String {
    let staging = dir.join(format!("staging-{version}"));
    std::fs::create_dir(&staging).unwrap();
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o755)).unwrap();
    emit::staging::stage(tree, store, &staging).unwrap();
    let info = info(version);
    let repo = dir.join(format!("oracle-{version}"));
    ostree(&repo, &["init", "--mode=archive"]);
    let commit = ostree(
        &repo,
        &[
            "commit",
            &format!("--branch={}", info.branch),
            &format!("--tree=dir={}", staging.display()),
            &format!("--timestamp=@{}", info.timestamp),
            &format!("--subject={}", info.subject),
            &format!("--add-metadata-string=version={version}"),
            "--no-bindings",
        ],
    );
    commit.trim().to_owned()
}

fn native(tree: &Tree, store: &Store, repo: &Path, version: u64) -> String {
    airlock_ostree::write(tree, &|d| store.path(d), repo, &info(version), 1, &|_| {})
        .unwrap()
        .commit
}

fn ready() -> bool {
    gate::tool("ostree", "ostree") && gate::root("staging a tree with its owners for ostree commit")
}

#[test]
fn the_native_commit_is_the_one_ostree_commit_makes() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let tree = fixture::tree(&mut |bytes| add(&store, bytes));
    let repo = dir.path().join("native");
    let native = native(&tree, &store, &repo, 1);
    assert_eq!(native, oracle(&tree, &store, dir.path(), 1));
    ostree(&repo, &["fsck"]);
    // What ostree reads back from the native repository.
    let listing = ostree(&repo, &["ls", "-R", "-X", &native, "/usr/bin"]);
    assert!(listing.contains("-04755 0 0"), "{listing}");
    assert!(listing.contains("security.capability"), "{listing}");
    let cat = ostree(&repo, &["cat", &native, "/etc/hostname"]);
    assert_eq!(cat, "node\n");
    let show = ostree(&repo, &["show", &native]);
    assert!(
        show.contains("fixture 1") && show.contains("Version: 1"),
        "{show}"
    );
}

#[test]
fn large_directories_match_ostree_commit_too() {
    // Thousands of entries push a dirtree past 64 KiB (4-byte framing
    // offsets) and a directory name of 255 bytes.
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let mut tree = Tree::merged_usr();
    for i in 0..3000 {
        let content = add(&store, format!("file {i}\n").as_bytes());
        tree.put(
            &format!("usr/share/many/{i:05}-{}", "n".repeat(20)),
            fixture::file(content, 0o644),
        )
        .unwrap();
    }
    let long = "l".repeat(255);
    tree.put(
        &format!("usr/share/{long}/{long}"),
        fixture::file(add(&store, b""), 0o600),
    )
    .unwrap();
    tree.put("usr/share/link", Node::new(Kind::Symlink(long), 0o777))
        .unwrap();
    let native = native(&tree, &store, &dir.path().join("native"), 2);
    assert_eq!(native, oracle(&tree, &store, dir.path(), 2));
}

#[test]
fn static_deltas_between_two_native_commits_generate_and_apply() {
    if !gate::tool("ostree", "ostree") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let first = fixture::tree(&mut |bytes| add(&store, bytes));
    let mut second = first.clone();
    second
        .put(
            "etc/motd",
            fixture::file(add(&store, b"release two\n"), 0o644),
        )
        .unwrap();
    second.remove("usr/bin/su").unwrap();
    // Two commits into one repository: the second on top (its own write
    // into a fresh folder, then its objects pulled in locally).
    let repo = dir.path().join("repo");
    let from = native(&first, &store, &repo, 1);
    let other = dir.path().join("other");
    let to = native(&second, &store, &other, 2);
    ostree(&repo, &["pull-local", other.to_str().unwrap(), &to]);
    ostree(&repo, &["fsck"]);
    let delta = dir.path().join("delta");
    ostree(
        &repo,
        &[
            "static-delta",
            "generate",
            &format!("--from={from}"),
            &format!("--to={to}"),
            "--inline",
            &format!("--filename={}", delta.display()),
        ],
    );
    // A repository with only the first commit takes the delta offline.
    let target = dir.path().join("target");
    ostree(&target, &["init", "--mode=archive"]);
    ostree(&target, &["pull-local", repo.to_str().unwrap(), &from]);
    ostree(
        &target,
        &["static-delta", "apply-offline", delta.to_str().unwrap()],
    );
    ostree(&target, &["fsck"]);
    assert_eq!(ostree(&target, &["cat", &to, "/etc/motd"]), "release two\n");
}
