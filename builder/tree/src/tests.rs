use super::*;

fn file(bytes: &[u8]) -> Node {
    Node::new(Kind::File(Content::Inline(bytes.to_vec())), 0o644)
}

fn never(_: &str) -> bool {
    false
}

#[test]
fn merged_usr_sends_bin_to_usr_bin() {
    let mut tree = Tree::merged_usr();
    let landed = tree
        .insert("bin/sh", file(b"sh").owned_by("dash"), &never)
        .unwrap();
    assert_eq!(landed, "usr/bin/sh");
    assert!(tree.get("bin/sh").is_none());
    // a package's own "./bin/" directory entry leaves the symlink alone
    tree.insert(
        "bin",
        Node::new(Kind::Directory, 0o755).owned_by("dash"),
        &never,
    )
    .unwrap();
    assert_eq!(
        tree.get("bin").unwrap().kind,
        Kind::Symlink("usr/bin".to_owned())
    );
    expect_test::expect![[r#"
        0755 0:0 directory /
        0777 0:0 symlink /bin -> usr/bin
        0777 0:0 symlink /lib -> usr/lib
        0777 0:0 symlink /lib64 -> usr/lib64
        0777 0:0 symlink /sbin -> usr/sbin
        0755 0:0 directory /usr
        0755 0:0 directory /usr/bin
        0644 0:0 file /usr/bin/sh (2 bytes)
        0755 0:0 directory /usr/lib
        0755 0:0 directory /usr/lib64
        0755 0:0 directory /usr/sbin
    "#]]
    .assert_eq(&tree.to_string());
}

#[test]
fn missing_parents_are_created_in_order() {
    let mut tree = Tree::new();
    tree.insert("usr/share/doc/x/README", file(b"x"), &never)
        .unwrap();
    let paths: Vec<&str> = tree.iter().map(|(path, _)| path).collect();
    assert_eq!(
        paths,
        [
            "",
            "usr",
            "usr/share",
            "usr/share/doc",
            "usr/share/doc/x",
            "usr/share/doc/x/README"
        ]
    );
}

#[test]
fn writing_through_a_symlink_that_leaves_the_root_is_refused() {
    let mut tree = Tree::new();
    tree.insert(
        "etc/evil",
        Node::new(Kind::Symlink("../../../root".to_owned()), 0o777).owned_by("bad"),
        &never,
    )
    .unwrap();
    let error = tree
        .insert(
            "etc/evil/.ssh/authorized_keys",
            file(b"key").owned_by("bad"),
            &never,
        )
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "etc/evil/.ssh/authorized_keys: writing through etc/evil -> ../../../root would leave the image root"
    );
    // through a chain: a -> b, b -> ..
    tree.insert(
        "b",
        Node::new(Kind::Symlink("..".to_owned()), 0o777),
        &never,
    )
    .unwrap();
    tree.insert("a", Node::new(Kind::Symlink("b".to_owned()), 0o777), &never)
        .unwrap();
    assert!(matches!(
        tree.insert("a/x", file(b"x"), &never),
        Err(TreeError::Escapes { .. })
    ));
    // through a link to the root and then up
    tree.insert("r", Node::new(Kind::Symlink("/".to_owned()), 0o777), &never)
        .unwrap();
    tree.insert(
        "up",
        Node::new(Kind::Symlink("r/..".to_owned()), 0o777),
        &never,
    )
    .unwrap();
    assert!(matches!(
        tree.insert("up/x", file(b"x"), &never),
        Err(TreeError::Escapes { .. })
    ));
}

#[test]
fn absolute_symlinks_resolve_inside_the_image() {
    let mut tree = Tree::new();
    tree.insert("opt/data", Node::new(Kind::Directory, 0o755), &never)
        .unwrap();
    tree.insert(
        "srv",
        Node::new(Kind::Symlink("/opt/data".to_owned()), 0o777),
        &never,
    )
    .unwrap();
    assert_eq!(
        tree.insert("srv/x", file(b"x"), &never).unwrap(),
        "opt/data/x"
    );
}

#[test]
fn symlink_loops_are_refused() {
    let mut tree = Tree::new();
    tree.insert("a", Node::new(Kind::Symlink("b".to_owned()), 0o777), &never)
        .unwrap();
    tree.insert("b", Node::new(Kind::Symlink("a".to_owned()), 0o777), &never)
        .unwrap();
    let error = tree.insert("a/x", file(b"x"), &never).unwrap_err();
    assert_eq!(
        error,
        TreeError::SymlinkLoop {
            path: "a/x".to_owned()
        }
    );
}

#[test]
fn a_file_is_not_a_directory() {
    let mut tree = Tree::new();
    tree.insert("etc/hostname", file(b"h"), &never).unwrap();
    let error = tree
        .insert("etc/hostname/x", file(b"x"), &never)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "etc/hostname/x: etc/hostname is a file, not a directory"
    );
}

#[test]
fn hardlinks_must_point_at_a_regular_file_in_the_tree() {
    let mut tree = Tree::merged_usr();
    tree.insert("bin/gzip", file(b"gz"), &never).unwrap();
    let landed = tree
        .insert(
            "bin/gunzip",
            Node::new(Kind::Hardlink("bin/gzip".to_owned()), 0o755),
            &never,
        )
        .unwrap();
    assert_eq!(landed, "usr/bin/gunzip");
    assert_eq!(
        tree.get("usr/bin/gunzip").unwrap().kind,
        Kind::Hardlink("usr/bin/gzip".to_owned())
    );
    let error = tree
        .insert(
            "x",
            Node::new(Kind::Hardlink("etc/shadow".to_owned()), 0o644),
            &never,
        )
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "x: hard link to etc/shadow, which is not a regular file in the image"
    );
    let error = tree
        .insert(
            "y",
            Node::new(Kind::Hardlink("usr/bin".to_owned()), 0o644),
            &never,
        )
        .unwrap_err();
    assert!(matches!(error, TreeError::BadHardlink { .. }));
}

#[test]
fn two_packages_on_one_path() {
    let mut tree = Tree::new();
    tree.insert("etc/shared", file(b"same").owned_by("a"), &never)
        .unwrap();
    // identical: shared, both owners recorded
    tree.insert("etc/shared", file(b"same").owned_by("b"), &never)
        .unwrap();
    assert_eq!(tree.get("etc/shared").unwrap().owners, ["a", "b"]);
    // different: a conflict, unless the newcomer replaces the owner
    let error = tree
        .insert("etc/shared", file(b"other").owned_by("c"), &never)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "etc/shared: shipped by a and by c with different contents or metadata (and c does not replace a)"
    );
    tree.insert("etc/shared", file(b"other").owned_by("c"), &|owner| {
        owner == "a"
    })
    .unwrap();
    assert_eq!(tree.get("etc/shared").unwrap().owners, ["c"]);
    // the same package twice
    let error = tree
        .insert("etc/shared", file(b"other").owned_by("c"), &never)
        .unwrap_err();
    assert_eq!(
        error,
        TreeError::Duplicate {
            path: "etc/shared".to_owned(),
            package: "c".to_owned()
        }
    );
}

#[test]
fn paths_must_be_normalized() {
    let mut tree = Tree::new();
    for bad in ["/etc/x", "etc/../x", "etc//x", "etc/x/", "./etc"] {
        assert!(
            matches!(
                tree.insert(bad, file(b"x"), &never),
                Err(TreeError::NotNormalized { .. })
            ),
            "{bad}"
        );
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn component() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_owned()),
            Just("b".to_owned()),
            Just("c".to_owned()),
            Just("..".to_owned()),
            Just("".to_owned())
        ]
    }

    fn path() -> impl Strategy<Value = String> {
        proptest::collection::vec(component(), 1..5).prop_map(|parts| parts.join("/"))
    }

    proptest! {
        /// Whatever links and files hostile packages add, in whatever order,
        /// every node stays at a normalized path inside the image and nothing
        /// panics.
        #[test]
        fn nothing_lands_outside_the_root(ops in proptest::collection::vec((path(), path(), any::<bool>()), 1..24)) {
            let mut tree = Tree::merged_usr();
            for (at, target, is_link) in ops {
                let node = if is_link {
                    Node::new(Kind::Symlink(target), 0o777)
                } else {
                    Node::new(Kind::File(Content::Inline(target.into_bytes())), 0o644)
                };
                let _ = tree.insert(&at, node, &|_| true);
            }
            for (path, _) in tree.iter() {
                prop_assert!(check_normalized(path).is_ok(), "{path:?}");
            }
        }
    }
}

#[test]
fn lookup_follows_every_link_and_stays_inside() {
    let mut tree = Tree::merged_usr();
    let file = || Node::new(Kind::File(Content::Inline(b"x".to_vec())), 0o644);
    tree.insert("usr/bin/mawk", file(), &|_| false).unwrap();
    tree.put(
        "etc/alternatives/awk",
        Node::new(Kind::Symlink("/usr/bin/mawk".into()), 0o777),
    )
    .unwrap();
    tree.put(
        "usr/bin/awk",
        Node::new(Kind::Symlink("/etc/alternatives/awk".into()), 0o777),
    )
    .unwrap();
    let (path, node) = tree.lookup("bin/awk").unwrap();
    assert_eq!(path, "usr/bin/mawk");
    let mut links = Vec::new();
    tree.lookup_recording("bin/awk", &mut links).unwrap();
    assert_eq!(
        links,
        [
            ("usr/bin/awk".to_owned(), "/etc/alternatives/awk".to_owned()),
            (
                "etc/alternatives/awk".to_owned(),
                "/usr/bin/mawk".to_owned()
            ),
        ]
    );
    assert!(matches!(node.kind, Kind::File(_)));
    tree.put(
        "usr/bin/out",
        Node::new(Kind::Symlink("../../..".into()), 0o777),
    )
    .unwrap();
    assert!(tree.lookup("usr/bin/out").is_none());
    tree.put(
        "usr/bin/loop",
        Node::new(Kind::Symlink("loop".into()), 0o777),
    )
    .unwrap();
    assert!(tree.lookup("usr/bin/loop").is_none());
}

#[test]
fn put_replaces_files_but_not_directories_and_remove_takes_subtrees() {
    let mut tree = Tree::merged_usr();
    let file = |b: &[u8]| Node::new(Kind::File(Content::Inline(b.to_vec())), 0o644);
    tree.insert("etc/passwd", file(b"pkg").owned_by("base-passwd"), &|_| {
        false
    })
    .unwrap();
    tree.put("etc/passwd", file(b"airlock")).unwrap();
    assert_eq!(
        tree.get("etc/passwd").unwrap().kind,
        Kind::File(Content::Inline(b"airlock".to_vec()))
    );
    assert!(tree.put("etc", file(b"no")).is_err());
    assert_eq!(
        tree.children("etc")
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>(),
        ["passwd"]
    );
    assert!(tree.remove("etc").unwrap());
    assert!(tree.get("etc/passwd").is_none());
    assert!(!tree.remove("etc").unwrap());
}
