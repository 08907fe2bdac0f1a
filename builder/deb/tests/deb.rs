//! The .deb reader on packages the tests build, honest and hostile.

use airlock_deb::{DataEntry, DebError, EntryKind, Limits, read_deb};
use airlock_fixtures::{DebSpec, RawEntry, RawKind, build_deb, build_raw_deb};

fn read(bytes: &[u8], limits: &Limits) -> Result<Vec<(DataEntry, Vec<u8>)>, DebError> {
    let mut entries = Vec::new();
    read_deb(bytes, limits, |entry, reader| {
        let mut data = Vec::new();
        reader.read_to_end(&mut data).map_err(|e| e.to_string())?;
        entries.push((entry.clone(), data));
        Ok(())
    })?;
    Ok(entries)
}

fn spec() -> DebSpec {
    DebSpec::new("hello", "1.0")
}

fn hostile(entries: &[RawEntry]) -> DebError {
    read(&build_raw_deb(&spec(), entries, "xz"), &Limits::default()).unwrap_err()
}

#[test]
fn reads_control_files_and_data_entries() {
    let bytes = build_deb(&spec().field("Depends", "libc6"));
    let mut seen = Vec::new();
    let control = read_deb(bytes.as_slice(), &Limits::default(), |entry, reader| {
        let mut data = String::new();
        reader.read_to_string(&mut data).unwrap();
        seen.push((entry.path.clone(), data));
        Ok(())
    })
    .unwrap();
    let text = String::from_utf8(control["control"].clone()).unwrap();
    assert!(text.starts_with("Package: hello\nVersion: 1.0\n"), "{text}");
    assert!(text.contains("Depends: libc6\n"), "{text}");
    assert_eq!(
        seen,
        [(
            "usr/share/doc/hello/README".to_owned(),
            "hello 1.0\n".to_owned()
        )]
    );
}

#[test]
fn every_compression_reads_the_same() {
    let entries = [
        RawEntry::new("./", RawKind::Directory),
        RawEntry::new("./usr/bin/", RawKind::Directory),
        RawEntry::new("./usr/bin/hello", RawKind::File(b"#!/bin/sh\n".to_vec())),
        RawEntry::new("./usr/bin/hi", RawKind::Symlink("hello".to_owned())),
        RawEntry::new(
            "./usr/bin/hey",
            RawKind::Hardlink("./usr/bin/hello".to_owned()),
        ),
    ];
    let mut results = Vec::new();
    for compression in ["", "gz", "xz", "zst"] {
        results.push(
            read(
                &build_raw_deb(&spec(), &entries, compression),
                &Limits::default(),
            )
            .unwrap(),
        );
    }
    for result in &results[1..] {
        assert_eq!(result, &results[0]);
    }
    let kinds: Vec<(&str, &EntryKind)> = results[0]
        .iter()
        .map(|(e, _)| (e.path.as_str(), &e.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("", &EntryKind::Directory),
            ("usr/bin", &EntryKind::Directory),
            ("usr/bin/hello", &EntryKind::File { size: 10 }),
            (
                "usr/bin/hi",
                &EntryKind::Symlink {
                    target: "hello".to_owned()
                }
            ),
            (
                "usr/bin/hey",
                &EntryKind::Hardlink {
                    target: "usr/bin/hello".to_owned()
                }
            ),
        ]
    );
    assert_eq!(results[0][2].1, b"#!/bin/sh\n");
}

#[test]
fn path_traversal_is_rejected() {
    let error = hostile(&[RawEntry::new(
        "./../../etc/cron.d/evil",
        RawKind::File(b"x".to_vec()),
    )]);
    assert_eq!(
        error.to_string(),
        "data.tar: unsafe path \"./../../etc/cron.d/evil\": `..` component"
    );
}

#[test]
fn absolute_path_is_rejected() {
    let error = hostile(&[RawEntry::new("/etc/passwd", RawKind::File(b"x".to_vec()))]);
    assert_eq!(
        error.to_string(),
        "data.tar: unsafe path \"/etc/passwd\": absolute path"
    );
}

#[test]
fn hardlink_out_of_the_tree_is_rejected() {
    let error = hostile(&[RawEntry::new(
        "./usr/x",
        RawKind::Hardlink("../../etc/shadow".to_owned()),
    )]);
    assert_eq!(
        error.to_string(),
        "data.tar: unsafe path \"../../etc/shadow\": `..` component"
    );
    let error = hostile(&[RawEntry::new(
        "./usr/x",
        RawKind::Hardlink("/etc/shadow".to_owned()),
    )]);
    assert_eq!(
        error.to_string(),
        "data.tar: unsafe path \"/etc/shadow\": absolute path"
    );
}

#[test]
fn oversize_entry_and_too_many_entries_are_rejected() {
    let limits = Limits {
        max_file: 1 << 20,
        ..Limits::default()
    };
    let bytes = build_raw_deb(
        &spec(),
        &[RawEntry::new("./big", RawKind::ClaimedFile(1 << 40))],
        "xz",
    );
    let error = read(&bytes, &limits).unwrap_err();
    assert_eq!(
        error.to_string(),
        "data.tar.xz: big: 1099511627776 exceeds the limit of 1048576"
    );

    let limits = Limits {
        max_entries: 3,
        ..Limits::default()
    };
    let entries: Vec<RawEntry> = (0..5)
        .map(|i| RawEntry::new(&format!("./f{i}"), RawKind::File(vec![])))
        .collect();
    let error = read(&build_raw_deb(&spec(), &entries, "gz"), &limits).unwrap_err();
    assert_eq!(
        error.to_string(),
        "data.tar.gz: entries: 4 exceeds the limit of 3"
    );
}

#[test]
fn symlinks_and_devices_are_reported_for_the_tree_to_judge() {
    // An escaping symlink is not an error here: only writing through it is,
    // and that is the tree's business. The reader reports it faithfully.
    let entries = [
        RawEntry::new("./etc/evil", RawKind::Symlink("/root/.ssh".to_owned())),
        RawEntry::new("./dev/mem", RawKind::CharDevice(1, 1)),
    ];
    let result = read(&build_raw_deb(&spec(), &entries, "xz"), &Limits::default()).unwrap();
    assert_eq!(
        result[0].0.kind,
        EntryKind::Symlink {
            target: "/root/.ssh".to_owned()
        }
    );
    assert_eq!(
        result[1].0.kind,
        EntryKind::CharDevice { major: 1, minor: 1 }
    );
}

#[test]
fn broken_containers_are_rejected() {
    let good = build_deb(&spec());
    assert!(read(b"", &Limits::default()).is_err());
    assert!(read(b"!<arch>\n", &Limits::default()).is_err());
    assert!(read(&good[..good.len() / 2], &Limits::default()).is_err());
    let mut bad_magic = good.clone();
    bad_magic[0] = b'?';
    assert!(read(&bad_magic, &Limits::default()).is_err());
    // a member header cut short
    let truncated_header = [&b"!<arch>\n"[..], b"control.tar.gz  "].concat();
    assert!(read(&truncated_header, &Limits::default()).is_err());
    // no debian-binary first
    let no_version = [&b"!<arch>\n"[..], &good[8 + 60 + 4..]].concat();
    let error = read(&no_version, &Limits::default()).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("expected debian-binary first"),
        "{error}"
    );
}

#[test]
fn the_callback_can_refuse_an_entry() {
    let error = read_deb(build_deb(&spec()).as_slice(), &Limits::default(), |_, _| {
        Err("setuid not allowed".to_owned())
    })
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "usr/share/doc/hello/README: setuid not allowed"
    );
}

/// Regression: a package of a few kilobytes could unpack to gigabytes, as
/// long as each file stayed under 8 GiB and the package under 64 GiB.
#[test]
fn a_package_may_not_unpack_to_more_than_its_installed_size_allows() {
    let claims = |kib: &str, size: u64| {
        build_raw_deb(
            &spec().field("Installed-Size", kib),
            &[RawEntry::new(
                "./usr/share/blob",
                RawKind::ClaimedFile(size),
            )],
            "xz",
        )
    };
    // 4 KiB declared: the bound is 4096 + 1024 + 1 MiB.
    assert_eq!(
        airlock_deb::installed_size_bound(4),
        4096 + 1024 + (1 << 20)
    );
    let error = read(&claims("4", 3 << 30), &Limits::default()).unwrap_err();
    assert!(
        matches!(
            error,
            DebError::InstalledSizeExceeded {
                declared_kib: 4,
                limit: 1_053_696,
                actual: 3_221_225_472,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "data.tar: its files total at least 3221225472 bytes (at usr/share/blob), but the package declares Installed-Size: 4 (KiB), which allows at most 1053696 bytes"
    );
    // Within the margin: read (the claimed file then fails for want of
    // bytes, which is a different error).
    let within = build_raw_deb(
        &spec().field("Installed-Size", "1"),
        &[RawEntry::new(
            "./usr/share/blob",
            RawKind::File(vec![7; 5000]),
        )],
        "xz",
    );
    assert!(read(&within, &Limits::default()).is_ok());
    // The bound can be turned off (the absolute limits still hold).
    let off = Limits {
        installed_size: false,
        max_total: 1 << 30,
        ..Limits::default()
    };
    let error = read(&claims("4", 3 << 30), &off).unwrap_err();
    assert!(matches!(error, DebError::TooLarge { .. }), "{error:?}");
    // A broken field is refused, not ignored.
    let error = read(&claims("lots", 10), &Limits::default()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "control: Installed-Size \"lots\" is not a number"
    );
}
