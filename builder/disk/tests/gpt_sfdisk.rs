//! The GPT reader and writer against util-linux's sfdisk, an independent
//! implementation: a table sfdisk writes (in the shape airlock uses) reads
//! back as sfdisk describes it, and a slot airlock relabels and re-GUIDs
//! reads in sfdisk as airlock wrote it. Needs sfdisk (Debian's fdisk).

use std::io::Write;
use std::process::{Command, Stdio};

use airlock_disk::gpt::{Guid, Layout, SECTOR, types};

/// 100 sectors: three small partitions in the usable area 34..=66.
const SCRIPT: &str = "label: gpt
first-lba: 34
last-lba: 66
label-id: 0C8AD6DE-41A0-4D5B-9C3F-8A1B2C3D4E5F
start=34, size=8, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name=\"root-a:demo_1\", uuid=1D9BE7EF-52B1-4E6C-AD40-9B2C3D4E5F60
start=42, size=8, type=2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5, name=\"verity-a:demo_1\", uuid=2E0CF8F0-63C2-4F7D-BE51-AC3D4E5F6071
start=50, size=8, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name=\"root-b:_empty\", uuid=3F1D09A1-74D3-4A8E-8F62-BD4E5F607182
";

fn sfdisk_json(disk: &std::path::Path) -> serde_json::Value {
    let out = Command::new("sfdisk")
        .arg("--json")
        .arg(disk)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn sfdisk_and_airlock_read_each_others_tables() {
    if !airlock_fixtures::gate::tool("sfdisk", "fdisk") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    let size = 100 * SECTOR;
    std::fs::File::create(&disk).unwrap().set_len(size).unwrap();
    let mut sfdisk = Command::new("sfdisk")
        .args(["-q", "--no-reread"])
        .arg(&disk)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    sfdisk
        .stdin
        .take()
        .unwrap()
        .write_all(SCRIPT.as_bytes())
        .unwrap();
    assert!(sfdisk.wait().unwrap().success());

    let mut file = std::fs::File::options()
        .read(true)
        .write(true)
        .open(&disk)
        .unwrap();
    let mut layout = Layout::read(&mut file, size).unwrap();
    assert_eq!(
        layout.disk.to_string(),
        "0C8AD6DE-41A0-4D5B-9C3F-8A1B2C3D4E5F"
    );
    let listed: Vec<(String, String, u64, u64)> = layout
        .partitions
        .iter()
        .map(|p| {
            (
                p.spec.label.clone(),
                p.spec.guid.to_string(),
                p.first_lba,
                p.spec.size,
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (
                "root-a:demo_1".to_owned(),
                "1D9BE7EF-52B1-4E6C-AD40-9B2C3D4E5F60".to_owned(),
                34,
                8 * SECTOR
            ),
            (
                "verity-a:demo_1".to_owned(),
                "2E0CF8F0-63C2-4F7D-BE51-AC3D4E5F6071".to_owned(),
                42,
                8 * SECTOR
            ),
            (
                "root-b:_empty".to_owned(),
                "3F1D09A1-74D3-4A8E-8F62-BD4E5F607182".to_owned(),
                50,
                8 * SECTOR
            ),
        ]
    );
    assert_eq!(layout.partitions[1].spec.kind, types::ROOT_VERITY_X86_64);

    // Slot B takes release 2: a new name and the GUID its UKI names.
    let new = Guid::parse("4A2E1AB2-85E4-4B9F-9A73-CE5F60718293");
    layout.partitions[2].spec.label = "root-b:demo_2".to_owned();
    layout.partitions[2].spec.guid = new;
    layout.write_tables(&mut file).unwrap();
    drop(file);
    let table = sfdisk_json(&disk);
    let b = &table["partitiontable"]["partitions"][2];
    assert_eq!(b["name"], "root-b:demo_2", "{table}");
    assert_eq!(b["uuid"], new.to_string(), "{table}");
    assert_eq!(b["start"], 50, "{table}");
    assert_eq!(
        table["partitiontable"]["partitions"][0]["name"],
        "root-a:demo_1"
    );
    // sfdisk's own check finds nothing wrong with what airlock wrote.
    let verify = Command::new("sfdisk")
        .arg("--verify")
        .arg(&disk)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
