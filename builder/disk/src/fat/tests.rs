use std::fs::File;
use std::path::Path;
use std::process::Command;

use super::*;

const MIB: u64 = 1 << 20;

fn volume(size: u64) -> Volume {
    Volume {
        size,
        id: 0x1234_ABCD,
        label: "ESP".to_owned(),
        hidden_sectors: 2048,
        epoch: 1_700_000_000,
    }
}

/// The files of an ESP, and 40 more in one folder so that it takes more
/// than one cluster; one file is streamed from a reader.
fn files() -> Vec<(String, Content<'static>)> {
    let mut files = vec![
        (
            "EFI/BOOT/BOOTX64.EFI".to_owned(),
            Content::Bytes(vec![0xB0; 3000]),
        ),
        (
            "EFI/systemd/systemd-bootx64.efi".to_owned(),
            Content::Bytes(vec![0xB0; 3000]),
        ),
        (
            "loader/loader.conf".to_owned(),
            Content::Bytes(b"timeout 0\neditor no\n".to_vec()),
        ),
        (
            "EFI/Linux/agent-node_1.2.3.efi".to_owned(),
            Content::Reader(300_000, Box::new(std::io::repeat(0x55).take(300_000))),
        ),
        ("EFI/Linux/empty".to_owned(), Content::Bytes(Vec::new())),
    ];
    for i in 0..40 {
        files.push((
            format!("many/file number {i:02}.txt"),
            Content::Bytes(format!("{i}\n").into_bytes()),
        ));
    }
    files
}

fn written(dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut file = File::create(&path).unwrap();
    file.set_len(64 * MIB).unwrap();
    write(&mut file, &volume(64 * MIB), files()).unwrap();
    path
}

#[test]
fn the_same_files_give_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let a = std::fs::read(written(dir.path(), "a")).unwrap();
    let b = std::fs::read(written(dir.path(), "b")).unwrap();
    assert!(a == b, "two writes differ");
    assert_eq!(&a[510..512], &[0x55, 0xAA]);
    assert_eq!(&a[82..90], b"FAT32   ");
    assert_eq!(a[..512], a[6 * 512..7 * 512], "the backup boot sector");
    assert_eq!(&a[67..71], &0x1234_ABCDu32.to_le_bytes());
}

#[test]
fn timestamps_are_the_epoch_in_fat_form() {
    // 2023-11-14 22:13:20 UTC.
    let t = DosTime::from_epoch(1_700_000_000);
    assert_eq!(t.date, (43 << 9) | (11 << 5) | 14);
    assert_eq!(t.time, (22 << 11) | (13 << 5) | 10);
    assert_eq!(
        DosTime::from_epoch(0),
        DosTime::from_epoch(315_532_800),
        "clamped to 1980"
    );
    assert_eq!(civil(0), (1970, 1, 1));
    assert_eq!(civil(11_016), (2000, 2, 29));
}

#[test]
fn short_names_are_unique_and_long_names_split_in_thirteens() {
    assert!(is_plain_short("BOOTX64.EFI"));
    assert!(!is_plain_short("loader"));
    assert!(!is_plain_short("loader.conf"));
    assert_eq!(&short_name("BOOTX64.EFI", &[]), b"BOOTX64 EFI");
    let first = short_name("systemd-bootx64.efi", &[]);
    assert_eq!(&first, b"SYSTEM~1EFI");
    assert_eq!(&short_name("systemd-other.efi", &[first]), b"SYSTEM~2EFI");
    let entries = long_entries("agent-node_1.2.3.efi", 7);
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0][0], 0x42, "the last part comes first, marked");
    assert_eq!(entries[1][0], 0x01);
    assert!(entries.iter().all(|e| e[11] == 0x0F && e[13] == 7));
}

#[test]
fn what_does_not_fit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = File::create(dir.path().join("x")).unwrap();
    let small = write(&mut file, &volume(16 * MIB), vec![]).unwrap_err();
    assert!(small.to_string().contains("too small for FAT32"), "{small}");
    let big = vec![(
        "k".to_owned(),
        Content::Reader(40 * MIB, Box::new(std::io::repeat(0))),
    )];
    let full = write(&mut file, &volume(34 * MIB), big).unwrap_err();
    assert!(full.to_string().contains("esp_mib"), "{full}");
    for (files, why) in [
        (vec!["a/b", "a/b"], "twice"),
        (vec!["a", "a/b"], "is a file"),
        (vec!["a:b"], "FAT file system"),
        (vec!["a/"], "FAT file system"),
    ] {
        let files = files
            .into_iter()
            .map(|p| (p.to_owned(), Content::Bytes(vec![1])))
            .collect();
        let error = write(&mut file, &volume(64 * MIB), files).unwrap_err();
        assert!(error.to_string().contains(why), "{error}");
    }
}

#[test]
fn fsck_vfat_finds_nothing_to_fix() {
    if !airlock_fixtures::gate::tool("fsck.vfat", "dosfstools") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = written(dir.path(), "esp");
    // fsck.fat -n exits 0 whatever it finds: what it found is in its
    // output, which for a clean volume is its version and one summary line.
    let out = Command::new("fsck.vfat")
        .arg("-n")
        .arg(&path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "{text}");
    // 45 files and 6 folders (EFI, BOOT, systemd, Linux, loader, many) and the label.
    assert!(lines[1].contains(": 52 files,"), "{text}");
}

#[test]
fn mtools_reads_every_file_back_by_its_long_name() {
    if !airlock_fixtures::gate::tool("mcopy", "mtools") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = written(dir.path(), "esp");
    let image = format!("{}", path.display());
    for (name, content) in files() {
        let out = Command::new("mtype")
            .env("MTOOLS_SKIP_CHECK", "1")
            .args(["-i", &image, &format!("::/{name}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = match content {
            Content::Bytes(b) => b,
            Content::Reader(len, mut r) => {
                let mut b = Vec::new();
                r.read_to_end(&mut b).unwrap();
                assert_eq!(b.len() as u64, len);
                b
            }
        };
        assert!(out.stdout == expected, "{name} reads back differently");
    }
    let label = Command::new("mlabel")
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-i", &image, "-s", "::"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&label.stdout).contains("ESP"));
}
