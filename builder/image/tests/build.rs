//! Extraction and the tar emitter on packages the tests build.

use std::path::Path;
use std::process::Command;

use airlock_deb::Limits;
use airlock_fixtures::{DebSpec, RawEntry, RawKind, build_raw_deb};
use airlock_image::extract::{Package, into_tree, unpack};
use airlock_image::tar::{write_tar, write_tar_zst};
use airlock_store::Store;

const EPOCH: u64 = 1_700_000_000;

/// Writes the fixture packages into `dir` and returns them in lock order.
fn packages(dir: &Path) -> Vec<Package> {
    let debs = [
        (
            DebSpec::new("dash", "0.5"),
            vec![
                RawEntry::new("./", RawKind::Directory),
                RawEntry::new("./bin/", RawKind::Directory),
                RawEntry::new("./bin/dash", RawKind::File(b"\x7fELF dash".to_vec())),
                RawEntry::new("./bin/sh", RawKind::Symlink("dash".to_owned())),
                RawEntry::new(
                    "./usr/share/doc/dash/copyright",
                    RawKind::File(b"GPL".to_vec()),
                ),
            ],
        ),
        (
            DebSpec::new("gzip", "1.12"),
            vec![
                RawEntry::new("./", RawKind::Directory),
                RawEntry::new("./usr/bin/gzip", RawKind::File(vec![b'g'; 100_000])),
                RawEntry::new(
                    "./usr/bin/gunzip",
                    RawKind::Hardlink("./usr/bin/gzip".to_owned()),
                ),
                RawEntry::new(
                    &format!("./usr/share/doc/gzip/{}", "long-name-".repeat(12)),
                    RawKind::File(b"x".to_vec()),
                ),
                RawEntry::new(
                    "./usr/share/doc/dash/copyright",
                    RawKind::File(b"GPL".to_vec()),
                ),
            ],
        ),
    ];
    debs.iter()
        .map(|(spec, entries)| {
            let path = dir.join(format!("{}.deb", spec.name));
            std::fs::write(&path, build_raw_deb(spec, entries, "xz")).unwrap();
            Package {
                name: spec.name.clone(),
                deb: path,
            }
        })
        .collect()
}

/// Unpacks and emits with a fresh blob store on `threads` threads.
fn build(packages: &[Package], blobs: &Path, threads: usize) -> Vec<u8> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let blobs = Store::open(blobs).unwrap();
    pool.install(|| {
        let unpacked = unpack(packages, &blobs, &Limits::default()).unwrap();
        let tree = into_tree(&unpacked, &Default::default()).unwrap();
        let mut out = Vec::new();
        write_tar_zst(&tree, &blobs, EPOCH, 3, &mut out).unwrap();
        out
    })
}

#[test]
fn two_builds_under_different_conditions_give_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let packages = packages(dir.path());
    let first = build(&packages, &dir.path().join("blobs-a"), 1);
    let second = build(&packages, &dir.path().join("elsewhere/blobs-b"), 2);
    assert!(first == second, "rootfs.tar.zst differs between builds");
    assert!(!first.is_empty());
}

#[test]
fn the_archive_is_what_gnu_tar_expects() {
    let dir = tempfile::tempdir().unwrap();
    let packages = packages(dir.path());
    let blobs = Store::open(dir.path().join("blobs")).unwrap();
    let tree = into_tree(
        &unpack(&packages, &blobs, &Limits::default()).unwrap(),
        &Default::default(),
    )
    .unwrap();
    let tar_path = dir.path().join("rootfs.tar");
    write_tar(
        &tree,
        &blobs,
        EPOCH,
        std::fs::File::create(&tar_path).unwrap(),
    )
    .unwrap();

    let output = Command::new("tar")
        .args([
            "--list",
            "--verbose",
            "--numeric-owner",
            "--full-time",
            "--file",
        ])
        .arg(&tar_path)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listing = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = listing.lines().collect();
    // merged-/usr: dash's /bin files landed in usr/bin; hard link kept
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().nth(5).unwrap())
        .collect();
    assert_eq!(&names[..6], ["./", "bin", "lib", "lib64", "sbin", "usr"]);
    assert!(names.contains(&"usr/bin/dash"));
    assert!(listing.contains("usr/bin/sh -> dash"), "{listing}");
    assert!(
        listing.contains("usr/bin/gunzip link to usr/bin/gzip"),
        "{listing}"
    );
    assert!(
        listing.contains(&format!("usr/share/doc/gzip/{}", "long-name-".repeat(12))),
        "{listing}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("bin/")),
        "nothing stays below the bin symlink"
    );
    // every entry: numeric root ownership and the epoch as mtime
    for line in &lines {
        assert!(line.contains(" 0/0 "), "{line}");
        assert!(line.contains("2023-11-14 22:13:20"), "{line}");
    }
    // paths are sorted, parents first
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.trim_start_matches("./").to_owned());
    assert_eq!(names, sorted);
    // the shared, identical copyright file is owned by both packages
    assert_eq!(
        tree.get("usr/share/doc/dash/copyright").unwrap().owners,
        ["dash", "gzip"]
    );
}

#[test]
fn conflicting_files_need_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Store::open(dir.path().join("blobs")).unwrap();
    let make = |name: &str, fields: &[(&str, &str)], content: &[u8]| {
        let mut spec = DebSpec::new(name, "1");
        for (field, value) in fields {
            spec = spec.field(field, value);
        }
        let path = dir.path().join(format!("{name}.deb"));
        let entries = [RawEntry::new(
            "./etc/tool.conf",
            RawKind::File(content.to_vec()),
        )];
        std::fs::write(&path, build_raw_deb(&spec, &entries, "gz")).unwrap();
        Package {
            name: name.to_owned(),
            deb: path,
        }
    };
    let old = make("old-tool", &[], b"old");
    let new = make("new-tool", &[("Replaces", "old-tool (<< 2)")], b"new");
    let rival = make("rival", &[], b"rival");

    let error = into_tree(
        &unpack(&[old.clone(), rival], &blobs, &Limits::default()).unwrap(),
        &Default::default(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "rival: etc/tool.conf: shipped by old-tool and by rival with different contents or metadata (and rival does not replace old-tool)"
    );
    // the replacing package wins in either order
    for order in [vec![old.clone(), new.clone()], vec![new, old]] {
        let tree = into_tree(
            &unpack(&order, &blobs, &Limits::default()).unwrap(),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(tree.get("etc/tool.conf").unwrap().owners, ["new-tool"]);
    }
}

#[test]
fn a_package_writing_through_an_escaping_symlink_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Store::open(dir.path().join("blobs")).unwrap();
    let entries = [
        RawEntry::new("./etc/", RawKind::Directory),
        RawEntry::new("./etc/link", RawKind::Symlink("../../../root".to_owned())),
        RawEntry::new(
            "./etc/link/.ssh/authorized_keys",
            RawKind::File(b"key".to_vec()),
        ),
    ];
    let path = dir.path().join("evil.deb");
    std::fs::write(
        &path,
        build_raw_deb(&DebSpec::new("evil", "1"), &entries, "xz"),
    )
    .unwrap();
    let package = Package {
        name: "evil".to_owned(),
        deb: path,
    };
    let error = into_tree(
        &unpack(&[package], &blobs, &Limits::default()).unwrap(),
        &Default::default(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "evil: etc/link/.ssh/authorized_keys: writing through etc/link -> ../../../root would leave the image root"
    );
}

fn hostile_tree(name: &str, entries: &[RawEntry]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Store::open_scratch(dir.path().join("blobs")).unwrap();
    let path = dir.path().join(format!("{name}.deb"));
    std::fs::write(
        &path,
        build_raw_deb(&DebSpec::new(name, "1"), entries, "gz"),
    )
    .unwrap();
    let package = Package {
        name: name.to_owned(),
        deb: path,
    };
    into_tree(
        &unpack(&[package], &blobs, &Limits::default()).unwrap(),
        &Default::default(),
    )
    .unwrap_err()
    .to_string()
}

#[test]
fn a_package_shipping_one_path_twice_is_refused() {
    let error = hostile_tree(
        "twice",
        &[
            RawEntry::new("./usr/bin/x", RawKind::File(b"one".to_vec())),
            RawEntry::new("./bin/x", RawKind::File(b"two".to_vec())),
        ],
    );
    assert_eq!(error, "twice: usr/bin/x: shipped twice by twice");
}

#[test]
fn a_hard_link_through_a_symlink_out_of_the_tree_is_refused() {
    let error = hostile_tree(
        "linker",
        &[
            RawEntry::new("./etc/", RawKind::Directory),
            RawEntry::new("./etc/up", RawKind::Symlink("/".to_owned())),
            RawEntry::new(
                "./etc/shadow-copy",
                RawKind::Hardlink("./etc/up/etc/shadow".to_owned()),
            ),
        ],
    );
    assert!(
        error.starts_with("linker: etc/shadow-copy: hard link to"),
        "{error}"
    );
    assert!(
        error.ends_with("which is not a regular file in the image"),
        "{error}"
    );
}

/// Regression: a world-writable /dev/mem and a mode 6777 binary from a
/// package went into images without a word.
#[test]
fn device_nodes_and_writable_setuid_files_from_packages_are_refused() {
    let error = hostile_tree(
        "memdev",
        &[
            RawEntry::new("./dev/", RawKind::Directory),
            RawEntry::new("./dev/mem", RawKind::CharDevice(1, 1)).mode(0o666),
        ],
    );
    assert_eq!(
        error,
        "memdev: /dev/mem: a character device node (1,1, mode 0666); Debian packages ship none: name the path in [packages] allow_device_nodes if it is really wanted"
    );
    let error = hostile_tree(
        "suidall",
        &[RawEntry::new("./usr/bin/rootme", RawKind::File(b"\x7fELF".to_vec())).mode(0o6777)],
    );
    assert_eq!(
        error,
        "suidall: /usr/bin/rootme: a setuid file (mode 6777) that everyone may write"
    );
}

#[test]
fn a_device_node_the_recipe_allows_goes_in() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Store::open_scratch(dir.path().join("blobs")).unwrap();
    let path = dir.path().join("console.deb");
    let entries = [
        RawEntry::new("./dev/", RawKind::Directory),
        RawEntry::new("./dev/console", RawKind::CharDevice(5, 1)).mode(0o600),
    ];
    std::fs::write(
        &path,
        build_raw_deb(&DebSpec::new("console", "1"), &entries, "gz"),
    )
    .unwrap();
    let package = Package {
        name: "console".to_owned(),
        deb: path,
    };
    let unpacked = unpack(&[package], &blobs, &Limits::default()).unwrap();
    let allowed = std::collections::BTreeSet::from(["dev/console".to_owned()]);
    let tree = into_tree(&unpacked, &allowed).unwrap();
    let inventory = airlock_image::privilege::inventory(&tree).unwrap();
    assert_eq!(inventory.len(), 1);
    assert_eq!(
        inventory[0].describe(),
        "/dev/console: device c 5,1 (0600 0:0, console)"
    );
}
