//! An update on a disk file: a host running `demo 1` from slot A, an EFI
//! system partition as a folder, a bundle of `demo 2` as a folder, and a
//! `Verified` made the way the verifier makes it (the manifest's digests
//! of the bundle's files).

use std::io::Read;

use airlock_disk::gpt::{Guid, Spec, attributes};
use airlock_verify::manifest::{FileEntry, Manifest, Sboms};
use sha2::Digest;

use super::*;
use crate::entries::{Assessment, Entry};

const MIB: u64 = 1 << 20;
const DISK: u64 = 32 * MIB;

fn guid(n: u8) -> Guid {
    Guid::from_big_endian([n; 16])
}

/// The host's disk: ESP 2 MiB, slot A (demo 1) 4 + 1 MiB, slot B empty,
/// /var; every partition filled with its own byte.
fn disk(dir: &Path) -> PathBuf {
    let spec = |kind, n, label: &str, mib, attributes| Spec {
        kind,
        guid: guid(n),
        label: label.to_owned(),
        size: mib * MIB,
        attributes,
    };
    let ro = attributes::READ_ONLY;
    let layout = Layout::new(
        guid(9),
        vec![
            spec(types::ESP, 1, "esp", 2, 0),
            spec(types::ROOT_X86_64, 2, "root-a:demo_1", 4, ro),
            spec(types::ROOT_VERITY_X86_64, 3, "verity-a:demo_1", 1, ro),
            spec(types::ROOT_X86_64, 4, "root-b:_empty", 4, ro),
            spec(types::ROOT_VERITY_X86_64, 5, "verity-b:_empty", 1, ro),
            spec(types::VAR, 6, "var", 8, 0),
        ],
    )
    .unwrap();
    let mut bytes = vec![0u8; DISK as usize];
    for (i, p) in layout.partitions.iter().enumerate() {
        bytes[p.offset() as usize..][..p.spec.size as usize].fill(0x10 + i as u8);
    }
    let path = dir.join("disk.raw");
    std::fs::write(&path, bytes).unwrap();
    let mut file = File::options().write(true).open(&path).unwrap();
    let mut layout = layout;
    layout.size = DISK;
    layout.write_tables(&mut file).unwrap();
    path
}

fn entry(path: &str, bytes: &[u8]) -> FileEntry {
    FileEntry {
        path: path.into(),
        size: bytes.len() as u64,
        sha256: hex::encode(sha2::Sha256::digest(bytes)),
        chunk_size: None,
        chunks: vec![],
        split: false,
    }
}

/// A bundle of `demo VERSION` whose root is `root_mib` MiB of 0xAB, and
/// the verification of it.
fn bundle(dir: &Path, version: u64, root_mib: u64) -> (PathBuf, Verified) {
    let bundle = dir.join(format!("bundle-{version}"));
    std::fs::create_dir_all(bundle.join("artifacts")).unwrap();
    let release = format!("demo_{version}");
    let part = |label: &str, n: u8| serde_json::json!({"label": label, "type": "x", "guid": guid(n).to_string(), "offset": 0, "size": 0});
    let artifact = |path: &str| serde_json::json!({"path": path, "size": 0, "sha256": ""});
    let report = serde_json::json!({
        "schema": airlock_format::report::SCHEMA, "name": "demo", "version": version, "epoch": 0,
        "inputs": "", "recipe": "", "lock": "", "airlock": "", "packages": 0, "artifacts": [],
        "verity": null, "kernel": null, "cmdline": null, "ostree_commit": null, "ostree_branch": null,
        "notes": [], "privileges": [], "first_boot": [],
        "disk": {
            "image": artifact("disk.raw"), "uki": artifact("uki.efi"),
            "boot_loader": artifact("systemd-bootx64.efi"), "cmdline": "", "guid": guid(0x99).to_string(),
            "partitions": [
                part("esp", 0x91),
                part(&format!("root-a:{release}"), 0x20 + version as u8),
                part(&format!("verity-a:{release}"), 0x30 + version as u8),
            ],
        },
    });
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("build-report.json", serde_json::to_vec(&report).unwrap()),
        (
            "artifacts/root.erofs",
            vec![0xAB; (root_mib * MIB) as usize],
        ),
        ("artifacts/root.verity", vec![0xCD; 70_000]),
        (
            "artifacts/uki.efi",
            format!("UKI of {release}").into_bytes(),
        ),
    ];
    let mut entries = Vec::new();
    for (path, bytes) in &files {
        std::fs::write(bundle.join(path), bytes).unwrap();
        entries.push(entry(path, bytes));
    }
    let verified = Verified {
        name: "demo".into(),
        version,
        expires: "2099-01-01T00:00:00Z".into(),
        signers: vec![],
        threshold: 2,
        ignored_signatures: vec![],
        builder: String::new(),
        files: entries.len(),
        bytes: 0,
        packages: 0,
        models: 0,
        disk: true,
        secure_boot: false,
        policy: vec![],
        seen: 1_800_000_000 + version,
        manifest: Manifest {
            schema: 1,
            name: "demo".into(),
            version,
            epoch: 0,
            expires: "2099-01-01T00:00:00Z".into(),
            airlock: "0.1.0".into(),
            inputs: String::new(),
            recipe: String::new(),
            lock: String::new(),
            sbom: Sboms {
                cyclonedx: String::new(),
                spdx: String::new(),
                spdx3: None,
            },
            provenance: String::new(),
            verity: None,
            cmdline: None,
            ostree: None,
            previous: None,
            files: entries,
        },
    };
    (bundle, verified)
}

struct Host {
    dir: tempfile::TempDir,
    disk: PathBuf,
    esp: PathBuf,
    state: PathBuf,
}

fn host() -> Host {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk(dir.path());
    let esp = dir.path().join("esp");
    std::fs::create_dir_all(esp.join("EFI/Linux")).unwrap();
    std::fs::write(esp.join("EFI/Linux/demo_1.efi"), b"UKI of demo_1").unwrap();
    let state = dir.path().join("state");
    Host {
        disk,
        esp,
        state,
        dir,
    }
}

fn run(host: &Host, bundle: &Path, verified: &Verified, running: Guid) -> anyhow::Result<Applied> {
    let mut disk = File::options()
        .read(true)
        .write(true)
        .open(&host.disk)
        .unwrap();
    apply(
        &Update {
            bundle,
            verified,
            running_root: running,
            esp: &host.esp,
            tries: 3,
            secure_boot: false,
            state: &host.state,
        },
        &mut disk,
        &|_| {},
    )
}

fn layout(host: &Host) -> Layout {
    Layout::read(&mut File::open(&host.disk).unwrap(), DISK).unwrap()
}

fn labels(host: &Host) -> Vec<String> {
    layout(host)
        .partitions
        .into_iter()
        .map(|p| p.spec.label)
        .collect()
}

fn bytes_at(host: &Host, offset: u64, len: u64) -> Vec<u8> {
    let mut file = File::open(&host.disk).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    let mut out = vec![0; len as usize];
    file.read_exact(&mut out).unwrap();
    out
}

fn digest(path: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

fn esp_files(host: &Host) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(host.esp.join("EFI/Linux"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn an_update_fills_the_other_slot_names_it_and_adds_a_counted_entry_last() {
    let host = host();
    let (bundle, verified) = bundle(host.dir.path(), 2, 3);
    let before = layout(&host);
    let slot_a = bytes_at(&host, before.partitions[1].offset(), 5 * MIB);
    let applied = run(&host, &bundle, &verified, guid(2)).unwrap();
    assert_eq!(applied.slot, "b");
    assert_eq!(applied.entry, "demo_2+3.efi");
    assert_eq!(applied.written, 3 * MIB + 70_000);
    let after = layout(&host);
    assert_eq!(
        labels(&host),
        [
            "esp",
            "root-a:demo_1",
            "verity-a:demo_1",
            "root-b:demo_2",
            "verity-b:demo_2",
            "var"
        ]
    );
    // Slot B has the release's GUIDs (which its UKI names); slot A, the
    // ESP's and /var's GUIDs and every offset are as they were.
    assert_eq!(after.partitions[3].spec.guid, guid(0x22));
    assert_eq!(after.partitions[4].spec.guid, guid(0x32));
    for i in [0, 1, 2, 5] {
        assert_eq!(after.partitions[i], before.partitions[i]);
    }
    assert_eq!(
        bytes_at(&host, before.partitions[1].offset(), 5 * MIB),
        slot_a
    );
    let root_b = bytes_at(&host, after.partitions[3].offset(), 4 * MIB);
    assert!(root_b[..(3 * MIB) as usize].iter().all(|&b| b == 0xAB));
    let verity_b = bytes_at(&host, after.partitions[4].offset(), 70_000);
    assert!(verity_b.iter().all(|&b| b == 0xCD));
    assert_eq!(esp_files(&host), ["demo_1.efi", "demo_2+3.efi"]);
    assert_eq!(
        std::fs::read(host.esp.join("EFI/Linux/demo_2+3.efi")).unwrap(),
        b"UKI of demo_2"
    );
    // Pending, not recorded: the state learns of it once it boots good.
    assert_eq!(
        read_pending(&host.state).unwrap(),
        Some(Pending {
            image: "demo".into(),
            version: 2,
            seen: 1_800_000_002
        })
    );
    assert!(!host.state.join("demo.json").exists());
}

#[test]
fn the_next_update_goes_back_to_slot_a_and_drops_the_entry_that_pointed_there() {
    let host = host();
    let (bundle2, verified2) = bundle(host.dir.path(), 2, 3);
    run(&host, &bundle2, &verified2, guid(2)).unwrap();
    // demo 2 booted good from slot B: systemd-bless-boot dropped the counter.
    std::fs::rename(
        host.esp.join("EFI/Linux/demo_2+3.efi"),
        host.esp.join("EFI/Linux/demo_2.efi"),
    )
    .unwrap();
    let (bundle3, verified3) = bundle(host.dir.path(), 3, 2);
    let applied = run(&host, &bundle3, &verified3, guid(0x22)).unwrap();
    assert_eq!(applied.slot, "a");
    assert_eq!(applied.removed, ["demo_1.efi"]);
    assert_eq!(esp_files(&host), ["demo_2.efi", "demo_3+3.efi"]);
    assert_eq!(
        labels(&host),
        [
            "esp",
            "root-a:demo_3",
            "verity-a:demo_3",
            "root-b:demo_2",
            "verity-b:demo_2",
            "var"
        ]
    );
    assert_eq!(layout(&host).partitions[1].spec.guid, guid(0x23));
}

#[test]
fn refusals_change_nothing_on_the_disk_or_the_esp() {
    let host = host();
    let unchanged = |host: &Host| (digest(&host.disk), esp_files(host));
    let before = unchanged(&host);
    let refused = |result: anyhow::Result<Applied>| {
        let error = result.unwrap_err();
        assert!(error.downcast_ref::<Refused>().is_some(), "{error:#}");
        error.to_string()
    };
    // A replay of the running release, or an older one.
    let (bundle1, verified1) = bundle(host.dir.path(), 1, 3);
    let error = refused(run(&host, &bundle1, &verified1, guid(2)));
    assert_eq!(
        error,
        "rollback: this host runs demo 1; the bundle is version 1"
    );
    // Another image.
    let (bundle2, mut other) = bundle(host.dir.path(), 2, 3);
    other.name = "other".into();
    let error = refused(run(&host, &bundle2, &other, guid(2)));
    assert!(
        error.contains("this host runs demo; the bundle is other"),
        "{error}"
    );
    // A root larger than the slot.
    let (bundle5, verified5) = bundle(host.dir.path(), 5, 5);
    let error = refused(run(&host, &bundle5, &verified5, guid(2)));
    assert!(
        error.contains("slot b's partition holds 4194304"),
        "{error}"
    );
    // A bundle without a disk image.
    let (_, mut no_disk) = bundle(host.dir.path(), 2, 3);
    no_disk.disk = false;
    refused(run(&host, &bundle2, &no_disk, guid(2)));
    // Not running from a slot of this disk.
    refused(run(
        &host,
        &bundle2,
        &bundle(host.dir.path(), 2, 3).1,
        guid(0x77),
    ));
    assert_eq!(unchanged(&host), before);
    assert!(!host.state.join(PENDING).exists());
}

#[test]
fn a_bundle_changed_after_verification_leaves_the_slot_unnamed_and_no_entry() {
    let host = host();
    let (bundle, verified) = bundle(host.dir.path(), 2, 3);
    // The medium changes between verification and the copy.
    let mut root = std::fs::read(bundle.join("artifacts/root.erofs")).unwrap();
    root[MIB as usize] ^= 1;
    std::fs::write(bundle.join("artifacts/root.erofs"), root).unwrap();
    let slot_a = bytes_at(&host, layout(&host).partitions[1].offset(), 5 * MIB);
    let error = run(&host, &bundle, &verified, guid(2)).unwrap_err();
    assert!(error.downcast_ref::<Refused>().is_some(), "{error:#}");
    assert_eq!(
        error.to_string(),
        "artifacts/root.erofs changed after verification; not using it"
    );
    assert_eq!(
        labels(&host),
        [
            "esp",
            "root-a:demo_1",
            "verity-a:demo_1",
            "root-b:_empty",
            "verity-b:_empty",
            "var"
        ]
    );
    assert_eq!(esp_files(&host), ["demo_1.efi"]);
    assert_eq!(
        bytes_at(&host, layout(&host).partitions[1].offset(), 5 * MIB),
        slot_a
    );
    assert!(!host.state.join(PENDING).exists());
}

#[test]
fn no_update_while_the_running_release_is_still_being_tried() {
    let host = host();
    std::fs::rename(
        host.esp.join("EFI/Linux/demo_1.efi"),
        host.esp.join("EFI/Linux/demo_1+2-1.efi"),
    )
    .unwrap();
    let (bundle, verified) = bundle(host.dir.path(), 2, 3);
    let error = run(&host, &bundle, &verified, guid(2)).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("has not booted good yet (EFI/Linux/demo_1+2-1.efi"),
        "{error}"
    );
    let entries: Vec<Entry> = crate::entries::read(&host.esp).unwrap();
    assert_eq!(
        entries[0].assessment,
        Assessment::Pending { left: 2, done: 1 }
    );
}
