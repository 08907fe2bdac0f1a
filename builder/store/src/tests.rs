use super::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    (dir, store)
}

#[test]
fn inserts_only_verified_content() {
    let (_dir, store) = store();
    let digest = Sha256::of(b"hello");
    let path = store
        .insert_reader("hello", &digest, Some(5), &b"hello"[..])
        .unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"hello");
    assert!(store.contains(&digest));
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o444
    );

    let wrong = Sha256::of(b"other");
    let error = store
        .insert_reader("x.deb", &wrong, None, &b"hello"[..])
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("x.deb: sha256 mismatch: expected {wrong}, got {digest}")
    );
    assert!(!store.contains(&wrong));
    let error = store
        .insert_reader("y.deb", &Sha256::of(b"hello!"), Some(6), &b"hello"[..])
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "y.deb: size mismatch: expected 6 bytes, got 5"
    );
    // nothing is left behind in tmp/
    assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);
}

#[test]
fn partial_downloads_resume_and_commit_after_checking() {
    let (_dir, store) = store();
    let digest = Sha256::of(b"0123456789");
    let mut partial = store.partial(&digest).unwrap();
    partial.file.write_all(b"01234").unwrap();
    drop(partial);
    let mut partial = store.partial(&digest).unwrap();
    assert_eq!(partial.len, 5);
    partial.file.write_all(b"56789").unwrap();
    let path = store.commit_partial(partial, "ten", Some(10)).unwrap();
    assert_eq!(fs::read(path).unwrap(), b"0123456789");

    // a corrupt partial is discarded, so the next attempt starts clean
    let other = Sha256::of(b"abc");
    let mut partial = store.partial(&other).unwrap();
    partial.file.write_all(b"abX").unwrap();
    assert!(store.commit_partial(partial, "abc", None).is_err());
    assert_eq!(store.partial(&other).unwrap().len, 0);
    assert!(!store.contains(&other));
}

#[test]
fn verify_finds_corrupt_entries() {
    let (_dir, store) = store();
    let good = Sha256::of(b"good");
    store
        .insert_reader("good", &good, None, &b"good"[..])
        .unwrap();
    let bad = Sha256::of(b"bad");
    let path = store.insert_reader("bad", &bad, None, &b"bad"[..]).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&path, b"evil").unwrap();
    let report = store.verify().unwrap();
    assert_eq!(report.ok, 1);
    assert_eq!(report.corrupt, vec![(path, Sha256::of(b"evil"))]);
}

#[test]
fn gc_keeps_only_what_is_referenced() {
    let (_dir, store) = store();
    let keep = Sha256::of(b"keep");
    let drop_me = Sha256::of(b"drop");
    store.insert_reader("k", &keep, None, &b"keep"[..]).unwrap();
    store
        .insert_reader("d", &drop_me, None, &b"drop"[..])
        .unwrap();
    let mut partial = store.partial(&Sha256::of(b"zzz")).unwrap();
    partial.file.write_all(b"z").unwrap();
    drop(partial);

    let keep_set: BTreeSet<Sha256> = [keep].into();
    let dry = store.gc(&keep_set, true).unwrap();
    assert_eq!(dry.removed, [drop_me]);
    assert!(store.contains(&drop_me));

    let report = store.gc(&keep_set, false).unwrap();
    assert_eq!((report.kept, report.removed.len(), report.freed), (1, 1, 5));
    assert!(store.contains(&keep) && !store.contains(&drop_me));
    assert_eq!(
        fs::read_dir(store.root().join("partial")).unwrap().count(),
        0
    );
}

#[test]
fn concurrent_inserts_of_one_entry_agree() {
    let (_dir, store) = store();
    let data = vec![7u8; 3 << 20];
    let digest = Sha256::of(&data);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let _lock = store.lock_shared().unwrap();
                store
                    .insert_reader("big", &digest, Some(data.len() as u64), &data[..])
                    .unwrap();
            });
        }
    });
    assert_eq!(hash_file(&store.path(&digest)).unwrap().0, digest);
    assert_eq!(store.entries().unwrap(), [digest]);
}

#[test]
fn add_reader_names_content_by_its_digest() {
    let (_dir, store) = store();
    let (digest, size) = store.add_reader("x", &b"content"[..]).unwrap();
    assert_eq!((digest, size), (Sha256::of(b"content"), 7));
    assert_eq!(fs::read(store.path(&digest)).unwrap(), b"content");
    // adding it again is a no-op that gives the same answer
    assert_eq!(store.add_reader("x", &b"content"[..]).unwrap(), (digest, 7));
    assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);
}
