use std::os::unix::fs::symlink;

use expect_test::expect;
use sequoia_openpgp as openpgp;
use sequoia_openpgp::serialize::SerializeInto;

use super::*;
use crate::host::LOADER_GUID;

const ROOT_A: &str = "0c8ad6de-41a0-4d5b-9c3f-8a1b2c3d4e5f";
const VERITY_A: &str = "1d9be7ef-52b1-4e6c-ad40-9b2c3d4e5f60";

/// A host's /proc, /sys and /dev as a folder: an installed disk (ESP, slot
/// A holding demo 1, an empty slot B, /var) booted from slot A.
fn host(dir: &Path) {
    let write = |path: &str, text: &[u8]| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "proc/cmdline",
        format!(
            "console=ttyS0 airlock.roothash=ab airlock.root=PARTUUID={} airlock.hash=PARTUUID={VERITY_A} airlock.data=PARTTYPE=4d21b016-b534-45c2-a9fb-5c16e091fd2d\n",
            ROOT_A.to_uppercase()
        )
        .as_bytes(),
    );
    let parts = [
        ("vda1", "esp", "aaaaaaaa-0000-0000-0000-000000000001"),
        ("vda2", "root-a:demo_1", ROOT_A),
        ("vda3", "verity-a:demo_1", VERITY_A),
        (
            "vda4",
            "root-b:_empty",
            "aaaaaaaa-0000-0000-0000-000000000004",
        ),
        (
            "vda5",
            "verity-b:_empty",
            "aaaaaaaa-0000-0000-0000-000000000005",
        ),
        ("vda6", "var", "aaaaaaaa-0000-0000-0000-000000000006"),
    ];
    for (n, (device, name, uuid)) in parts.iter().enumerate() {
        write(&format!("sys/class/block/{device}/partition"), b"1\n");
        write(
            &format!("sys/class/block/{device}/uevent"),
            format!("MAJOR=254\nMINOR={}\nDEVNAME={device}\nDEVTYPE=partition\nPARTN={}\nPARTNAME={name}\n", n + 1, n + 1).as_bytes(),
        );
        std::fs::create_dir_all(dir.join("dev/disk/by-partuuid")).unwrap();
        symlink(
            format!("../../{device}"),
            dir.join("dev/disk/by-partuuid").join(uuid),
        )
        .unwrap();
    }
    // The whole disk is not a partition.
    write("sys/class/block/vda/uevent", b"DEVNAME=vda\nDEVTYPE=disk\n");
    // systemd-boot's variable: attributes, then UTF-16LE with a NUL.
    let mut entry = vec![6, 0, 0, 0];
    for unit in "demo_1.efi".encode_utf16().chain([0]) {
        entry.extend(unit.to_le_bytes());
    }
    write(
        &format!("sys/firmware/efi/efivars/LoaderEntrySelected-{LOADER_GUID}"),
        &entry,
    );
    // The EFI system partition at /efi: demo 1 good, demo 2 failed its
    // tries.
    write("efi/EFI/Linux/demo_1.efi", b"");
    write("efi/EFI/Linux/demo_2+0-3.efi", b"");
    write(
        "var/lib/airlock/state/demo.json",
        br#"{"version":1,"seen":1780272000}"#,
    );
}

/// A trust directory: 1 of 1 approvers, one builder key.
fn trust(dir: &Path) -> String {
    let (cert, _) = openpgp::cert::CertBuilder::general_purpose(Some("Alice <alice@example.org>"))
        .generate()
        .unwrap();
    std::fs::create_dir_all(dir.join("release")).unwrap();
    std::fs::create_dir_all(dir.join("builder")).unwrap();
    std::fs::write(
        dir.join("release/alice.asc"),
        cert.armored().to_vec().unwrap(),
    )
    .unwrap();
    let key = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
    let public = p256::pkcs8::EncodePublicKey::to_public_key_pem(
        key.verifying_key(),
        p256::pkcs8::LineEnding::LF,
    )
    .unwrap();
    std::fs::write(dir.join("builder/ci.pub"), public).unwrap();
    std::fs::write(dir.join("trust.toml"), "threshold = 1\n").unwrap();
    cert.fingerprint().to_hex()
}

fn paths(root: &Path) -> Paths {
    Paths {
        root: root.to_path_buf(),
        trust: PathBuf::from("/usr/share/airlock/trust"),
        state: PathBuf::from("/var/lib/airlock/state"),
        esp: vec![PathBuf::from("/efi"), PathBuf::from("/boot")],
    }
}

#[test]
fn status_names_the_running_slot_the_other_the_anchors_and_the_state() {
    let dir = tempfile::tempdir().unwrap();
    host(dir.path());
    let fingerprint = trust(&dir.path().join("usr/share/airlock/trust"));
    let status = read(&paths(dir.path()));
    let running = status.running.as_ref().expect("booted from slot A");
    assert_eq!(
        (
            running.slot.as_str(),
            running.image.as_deref(),
            running.version
        ),
        ("a", Some("demo"), Some(1))
    );
    let human = status.human().replace(&fingerprint, "FINGERPRINT");
    expect![[r#"
        running: demo 1 from slot a
        slot a: demo 1  (/dev/vda2, hash tree /dev/vda3)  [running]
        slot b: empty  (/dev/vda4, hash tree /dev/vda5)
        boot entry: demo_1.efi
        boot entry demo_2+0-3.efi: FAILED: no tries left after 3; systemd-boot fell back
        boot entry demo_1.efi: good
        trust: 1 of 1 approvers must sign (/usr/share/airlock/trust), 1 builder key(s)
          approver FINGERPRINT Alice <alice@example.org>
        state: demo accepted up to version 1, latest time seen 2026-06-01T00:00:00Z
    "#]]
    .assert_eq(&human);
    let json = status.json();
    assert_eq!(json["slots"][1]["image"], serde_json::Value::Null);
    assert_eq!(json["slots"][0]["running"], true);
    assert_eq!(json["trust"]["threshold"], 1);
    assert_eq!(json["trust"]["approvers"][0]["fingerprint"], fingerprint);
    assert_eq!(json["state"][0]["version"], 1);
    assert_eq!(json["entries"][0]["state"], "failed");
    assert_eq!(json["entries"][0]["version"], 2);
}

#[test]
fn a_host_without_slots_or_anchors_says_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc")).unwrap();
    // Direct boot: the root is a whole disk, not a partition.
    std::fs::write(
        dir.path().join("proc/cmdline"),
        "airlock.root=/dev/vda airlock.hash=/dev/vdb\n",
    )
    .unwrap();
    let status = read(&paths(dir.path()));
    assert!(status.running.is_none() && status.slots.is_empty());
    let human = status.human();
    assert!(
        human.starts_with("running: not from an airlock A/B slot"),
        "{human}"
    );
    assert!(human.contains("trust: none in force: "), "{human}");
    assert!(human.contains("state: no release recorded yet"), "{human}");
    assert!(
        human.contains("the EFI system partition is not mounted"),
        "{human}"
    );
    assert!(status.json()["trust"]["error"].is_string());
}

#[test]
fn slot_names_are_read_strictly() {
    assert_eq!(
        slot_name("root-a:my_image_12", "root"),
        Some(("a".to_owned(), Some(("my_image".to_owned(), 12))))
    );
    assert_eq!(
        slot_name("root-b:_empty", "root"),
        Some(("b".to_owned(), None))
    );
    assert_eq!(slot_name("verity-a:x_1", "root"), None);
    assert_eq!(slot_name("root", "root"), None);
    assert_eq!(
        slot_name("root-a:x_notanumber", "root"),
        Some(("a".to_owned(), None))
    );
}
