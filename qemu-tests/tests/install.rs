//! `airlock install`: a signed bundle of the minimal image installed from
//! the host side onto a blank disk file, which then boots alone through
//! UEFI with Secure Boot enforced, as a host's disk does: the firmware
//! and systemd-boot find the EFI system partition the install wrote, the
//! UKI opens slot A's verity root, and /var fills the rest of the disk.
//! Gated like the other boot tests (AIRLOCK_TEST_NETWORK=1, root, QEMU),
//! and needs ovmf, sbsigntool, efitools and virt-fw-vars.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use airlock_boot::uefi::{OVMF_DIR, Uefi};
use airlock_boot::{Image, Options};
use qemu_tests::Machine;
use qemu_tests::setup::{
    airlock, bundle, enabled, minimal_test_image, serial, shared_tempdir, signed_copy, virt_fw_vars,
};

const BOOT: Duration = Duration::from_secs(300);
const HARD_LIMIT: Duration = Duration::from_secs(600);
const COMMAND: Duration = Duration::from_secs(120);
const MULTI_USER: &str = "Reached target multi-user.target";
/// The blank disk: larger than the image's own disk, so /var grows.
const DISK: u64 = 3 << 30;

fn run(command: &mut Command) -> Output {
    command.env_remove("AIRLOCK_MIRROR").output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_bundle_installed_onto_a_blank_disk_boots_alone_through_uefi_with_secure_boot() {
    if !enabled() {
        return;
    }
    let built = shared_tempdir();
    let image = Image::open(&minimal_test_image(built.path())).unwrap();
    let described = image.disk.clone().expect("minimal builds a disk image");
    let scratch = tempfile::tempdir().unwrap();
    let (image_dir, keys) = signed_copy(&image.dir, scratch.path());
    let bundle = bundle(&image_dir);
    let machine_dir = scratch.path().join("machine");
    std::fs::create_dir(&machine_dir).unwrap();
    let disk = machine_dir.join("disk.raw");
    std::fs::File::create(&disk).unwrap().set_len(DISK).unwrap();
    let install = |extra: &[&str]| {
        run(Command::new(airlock())
            .arg("install")
            .arg(&bundle.bundle)
            .arg("--trust")
            .arg(&bundle.trust)
            .arg("--target")
            .arg(&disk)
            .arg("--secure-boot")
            .args(extra))
    };
    let installed = install(&[]);
    assert!(installed.status.success(), "{}", stderr(&installed));
    assert!(
        stderr(&installed).contains(&format!(
            "installed minimal-test 1 onto {} (Secure Boot signed)",
            disk.display()
        )),
        "{}",
        stderr(&installed)
    );
    assert_eq!(std::fs::metadata(&disk).unwrap().len(), DISK);
    // A second install onto the now partitioned disk needs --force.
    let refused = install(&[]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("holds a GPT partition table")
            && stderr(&refused).contains("--force"),
        "{}",
        stderr(&refused)
    );
    let sfdisk = run(Command::new("sfdisk").arg("--json").arg(&disk));
    assert!(sfdisk.status.success(), "{}", stderr(&sfdisk));
    let table: serde_json::Value = serde_json::from_slice(&sfdisk.stdout).unwrap();
    let names: Vec<&str> = table["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "esp",
            "root-a:minimal-test_1",
            "verity-a:minimal-test_1",
            "root-b:_empty",
            "verity-b:_empty",
            "var"
        ]
    );

    let _serial = serial();
    let uefi = Uefi::prepare_secure(
        Path::new(OVMF_DIR),
        &disk,
        &machine_dir,
        &keys,
        &virt_fw_vars(),
    )
    .unwrap();
    assert_eq!(
        uefi.disk, disk,
        "the machine boots the installed disk itself"
    );
    let options = Options {
        uefi: Some(uefi),
        ..Options::default()
    };
    let mut machine = Machine::boot(&image, options, HARD_LIMIT).unwrap();
    machine.wait_console(MULTI_USER, BOOT).unwrap();
    machine.connect(COMMAND).unwrap();
    assert!(machine.console().contains("Secure boot enabled"));
    assert_eq!(
        machine.check("cat /proc/cmdline", COMMAND).unwrap(),
        described.cmdline,
        "the kernel's command line is the UKI's"
    );
    qemu_tests::setup::assert_runs_from_slot_a(&mut machine, COMMAND);
    // The host tool the image pins ([[components]]) reads the same from
    // the running system: slot A holds minimal-test 1 and runs, slot B is
    // empty, and systemd-boot says which entry it started.
    let status: serde_json::Value = serde_json::from_str(
        &machine
            .check("airlock-host status --json", COMMAND)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(status["running"]["slot"], "a", "{status}");
    assert_eq!(status["running"]["image"], "minimal-test", "{status}");
    assert_eq!(status["running"]["version"], 1, "{status}");
    assert_eq!(status["slots"][1]["slot"], "b", "{status}");
    assert_eq!(
        status["slots"][1]["image"],
        serde_json::Value::Null,
        "{status}"
    );
    assert_eq!(status["slots"][0]["root"], "/dev/vda2", "{status}");
    assert!(
        status["boot_entry"]
            .as_str()
            .is_some_and(|e| e.contains("minimal-test")),
        "{status}"
    );
    // With the EFI system partition mounted (read-only), it lists the
    // boot entries: the one UKI the install wrote, uncounted, so good.
    let mounted = machine
        .check(
            "mkdir -p /run/esp && mount -o ro -t vfat /dev/vda1 /run/esp && airlock-host status --json --esp /run/esp",
            COMMAND,
        )
        .unwrap();
    let with_esp: serde_json::Value = serde_json::from_str(&mounted).unwrap();
    assert_eq!(
        with_esp["entries"],
        serde_json::json!([{"file": "minimal-test_1.efi", "image": "minimal-test", "version": 1, "state": "good"}]),
        "{with_esp}"
    );
    let human = machine.check("airlock-host status", COMMAND).unwrap();
    assert!(
        human.contains("running: minimal-test 1 from slot a") && human.contains("slot b: empty"),
        "{human}"
    );
    let var_bytes: u64 = machine
        .check("cat /sys/class/block/vda6/size", COMMAND)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 512;
    let var = &described.partitions[5];
    assert_eq!(
        var.offset + var_bytes,
        DISK - (1 << 20),
        "/var fills the disk"
    );
    assert!(var_bytes > var.size);
    let status = machine.poweroff(Duration::from_secs(120)).unwrap();
    assert!(status.success(), "QEMU exited with {status}");
}
