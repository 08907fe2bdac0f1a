//! The minimal image's disk image (the "disk" format), booted as a host
//! boots it: OVMF, then systemd-boot from the EFI system partition, then
//! the unified kernel image with the command line sealed in it; no
//! -kernel, -initrd or -append. Checks the partition table and the ESP
//! with the standard tools, that two builds give the same disk, that the
//! root is the verity root the UKI names, that /var persists on the disk,
//! and that a changed byte in the root partition fails the read of its
//! file. Gated like the other boot tests (AIRLOCK_TEST_NETWORK=1, root,
//! QEMU), and needs ovmf, fdisk, dosfstools, mtools and binutils.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use airlock_boot::uefi::{OVMF_DIR, Uefi};
use airlock_boot::{Image, Options};
use airlock_format::report::Disk;
use qemu_tests::Machine;
use qemu_tests::setup::{
    assert_only_busybox_is_unreadable, busybox_offset, enabled, minimal_test_image,
    rebuild_elsewhere, serial, shared_tempdir,
};

const BOOT: Duration = Duration::from_secs(300);
const HARD_LIMIT: Duration = Duration::from_secs(600);
const COMMAND: Duration = Duration::from_secs(120);
const MULTI_USER: &str = "Reached target multi-user.target";

/// The scratch folder of the build and the image, built once per binary.
fn built() -> &'static (tempfile::TempDir, Image) {
    static IMAGE: OnceLock<(tempfile::TempDir, Image)> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let dir = shared_tempdir();
        let folder = minimal_test_image(dir.path());
        let image = Image::open(&folder).unwrap();
        (dir, image)
    })
}

fn image() -> &'static Image {
    &built().1
}

fn disk() -> &'static Disk {
    image().disk.as_ref().expect("minimal builds a disk image")
}

/// A UEFI machine whose disk copy and firmware variables live in `dir`.
fn uefi(dir: &Path) -> Options {
    Options {
        uefi: Some(Uefi::prepare(Path::new(OVMF_DIR), &image().dir.join("disk.raw"), dir).unwrap()),
        ..Options::default()
    }
}

fn boot(options: Options) -> Machine {
    let mut machine = Machine::boot(image(), options, HARD_LIMIT).unwrap();
    let elapsed = machine.wait_console(MULTI_USER, BOOT).unwrap();
    eprintln!("multi-user.target after {:.1} s", elapsed.as_secs_f64());
    machine.connect(COMMAND).unwrap();
    machine
}

fn poweroff(machine: Machine) {
    let status = machine.poweroff(Duration::from_secs(120)).unwrap();
    assert!(status.success(), "QEMU exited with {status}");
}

fn output(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_disk_image_has_the_dps_partitions_a_clean_esp_and_a_uki_with_its_sections() {
    if !enabled() {
        return;
    }
    let disk = disk();
    let path = image().dir.join("disk.raw");
    let table: serde_json::Value =
        serde_json::from_str(&output(Command::new("sfdisk").arg("--json").arg(&path))).unwrap();
    let table = &table["partitiontable"];
    assert_eq!(table["label"], "gpt");
    assert_eq!(table["sectorsize"], 512);
    let parts = table["partitions"].as_array().unwrap();
    let seen: Vec<(String, String, u64)> = parts
        .iter()
        .map(|p| {
            (
                p["type"].as_str().unwrap().to_ascii_lowercase(),
                p["name"].as_str().unwrap().to_owned(),
                p["size"].as_u64().unwrap() * 512,
            )
        })
        .collect();
    let root = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";
    let verity = "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5";
    let kinds: Vec<(&str, &str)> = seen
        .iter()
        .map(|(t, n, _)| (t.as_str(), n.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "esp"),
            (root, "root-a:minimal-test_1"),
            (verity, "verity-a:minimal-test_1"),
            (root, "root-b:_empty"),
            (verity, "verity-b:_empty"),
            ("4d21b016-b534-45c2-a9fb-5c16e091fd2d", "var"),
        ]
    );
    assert_eq!(seen[0].2, 256 << 20, "the ESP's default size");
    assert_eq!(seen[5].2, 1024 << 20, "/var's default size");
    assert_eq!(seen[1].2, seen[3].2, "slot B as large as slot A");
    let erofs = std::fs::metadata(image().dir.join("root.erofs"))
        .unwrap()
        .len();
    assert!(
        seen[1].2 >= erofs && seen[1].2 - erofs < 1 << 20,
        "{} for {erofs}",
        seen[1].2
    );
    for (part, reported) in parts.iter().zip(&disk.partitions) {
        assert_eq!(
            part["uuid"].as_str().unwrap().to_ascii_lowercase(),
            reported.guid
        );
        assert_eq!(part["start"].as_u64().unwrap() * 512, reported.offset);
    }
    // Slot A's GUIDs are the root hash's halves.
    let root_hash = image()
        .cmdline
        .split(' ')
        .find_map(|w| w.strip_prefix("airlock.roothash="))
        .unwrap()
        .to_owned();
    assert_eq!(disk.partitions[1].guid.replace('-', ""), root_hash[..32]);
    assert_eq!(disk.partitions[2].guid.replace('-', ""), root_hash[32..]);

    // The ESP, cut out of the disk, is a clean FAT with what systemd-boot
    // needs.
    let scratch = tempfile::tempdir().unwrap();
    let esp = scratch.path().join("esp.img");
    let mut from = std::fs::File::open(&path).unwrap();
    from.seek(SeekFrom::Start(disk.partitions[0].offset))
        .unwrap();
    let mut bytes = vec![0u8; disk.partitions[0].size as usize];
    from.read_exact(&mut bytes).unwrap();
    std::fs::write(&esp, &bytes).unwrap();
    drop(bytes);
    let fsck = output(Command::new("fsck.vfat").arg("-n").arg(&esp));
    assert_eq!(fsck.lines().filter(|l| !l.is_empty()).count(), 2, "{fsck}");
    let mtools = |args: &[&str]| {
        output(
            Command::new(args[0])
                .env("MTOOLS_SKIP_CHECK", "1")
                .arg("-i")
                .arg(&esp)
                .args(&args[1..]),
        )
    };
    assert_eq!(
        mtools(&["mtype", "::/loader/loader.conf"]),
        "timeout 0\neditor no\n"
    );
    let on_esp = scratch.path().join("uki-from-esp.efi");
    mtools(&[
        "mcopy",
        "::/EFI/Linux/minimal-test_1.efi",
        on_esp.to_str().unwrap(),
    ]);
    let uki = image().dir.join("uki.efi");
    assert!(std::fs::read(&on_esp).unwrap() == std::fs::read(&uki).unwrap());
    let boot_loader = scratch.path().join("BOOTX64.EFI");
    mtools(&[
        "mcopy",
        "::/EFI/BOOT/BOOTX64.EFI",
        boot_loader.to_str().unwrap(),
    ]);
    assert!(std::fs::read(&boot_loader).unwrap().starts_with(b"MZ"));

    // The UKI's sections, as objdump lists them, and its command line.
    let sections = output(Command::new("objdump").arg("-h").arg(&uki));
    for name in [".osrel", ".cmdline", ".uname", ".initrd", ".linux"] {
        assert!(
            sections.contains(&format!(" {name} ")),
            "{name}:\n{sections}"
        );
    }
    let cmdline = scratch.path().join("cmdline");
    output(
        Command::new("objcopy")
            .args(["-O", "binary", "--only-section=.cmdline"])
            .arg(&uki)
            .arg(&cmdline),
    );
    assert_eq!(std::fs::read_to_string(&cmdline).unwrap(), disk.cmdline);
    assert!(
        disk.cmdline.starts_with(&image().cmdline),
        "{}",
        disk.cmdline
    );
}

#[test]
fn two_builds_under_different_conditions_give_the_same_disk_image() {
    if !enabled() {
        return;
    }
    let (dir, first) = built();
    let (_other, second) = rebuild_elsewhere(
        dir.path(),
        "qemu-tests/recipes/minimal-test.toml",
        "minimal-test",
    );
    let (a, b) = (
        airlock_fixtures::tree_digests(&first.dir),
        airlock_fixtures::tree_digests(&second),
    );
    for name in ["disk.raw", "uki.efi", "build-report.json"] {
        assert!(a.contains_key(name), "{name} was built");
        assert_eq!(a.get(name), b.get(name), "{name}");
    }
    assert_eq!(a, b, "every file of the image folder");
}

#[test]
fn the_disk_image_boots_through_uefi_on_its_verity_root_and_keeps_var() {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let scratch = tempfile::tempdir().unwrap();
    let options = uefi(scratch.path());
    let mut machine = boot(options.clone());
    let state = machine
        .run("systemctl is-system-running --wait", COMMAND)
        .unwrap();
    let failed = machine
        .check("systemctl --failed --no-legend --plain", COMMAND)
        .unwrap();
    assert_eq!(state.output, "running", "failed units: {failed}");
    machine
        .check("test -d /sys/firmware/efi", COMMAND)
        .expect("booted through UEFI");
    assert_eq!(
        machine.check("cat /proc/cmdline", COMMAND).unwrap(),
        disk().cmdline,
        "the kernel's command line is the UKI's"
    );
    let mount = machine
        .check("findmnt -no SOURCE,FSTYPE,OPTIONS /", COMMAND)
        .unwrap();
    let words: Vec<&str> = mount.split_whitespace().collect();
    assert_eq!(words[..2], ["/dev/mapper/airlock-root", "erofs"], "{mount}");
    assert!(words[2].split(',').any(|o| o == "ro"), "{mount}");
    let root_hash = image()
        .cmdline
        .split(' ')
        .find_map(|w| w.strip_prefix("airlock.roothash="))
        .unwrap();
    let table = machine
        .check("dmsetup table airlock-root", COMMAND)
        .unwrap();
    assert!(
        table.contains(" verity 1 ") && table.contains(root_hash),
        "{table}"
    );
    qemu_tests::setup::assert_runs_from_slot_a(&mut machine, COMMAND);
    let id = machine.check("cat /etc/machine-id", COMMAND).unwrap();
    machine
        .check("echo kept > /var/lib/airlock-uefi-test && sync", COMMAND)
        .unwrap();
    poweroff(machine);

    let mut machine = boot(options);
    assert_eq!(
        machine
            .check("cat /var/lib/airlock-uefi-test", COMMAND)
            .unwrap(),
        "kept",
        "/var persists on the disk"
    );
    assert_eq!(machine.check("cat /etc/machine-id", COMMAND).unwrap(), id);
    poweroff(machine);
}

#[test]
fn a_changed_byte_in_the_root_partition_fails_the_read_of_its_file() {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let scratch = tempfile::tempdir().unwrap();
    let options = uefi(scratch.path());
    let at = disk().partitions[1].offset + busybox_offset(&image().dir.join("root.erofs")) + 100;
    let copy: PathBuf = options.uefi.as_ref().unwrap().disk.clone();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&copy)
        .unwrap();
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(at)).unwrap();
    file.read_exact(&mut byte).unwrap();
    file.seek(SeekFrom::Start(at)).unwrap();
    file.write_all(&[byte[0] ^ 0x01]).unwrap();
    drop(file);

    let mut machine = boot(options);
    assert_only_busybox_is_unreadable(
        &mut machine,
        &format!("byte {at} of the disk (slot A's root)"),
    );
    poweroff(machine);
}

#[test]
fn time_to_multi_user_through_uefi_and_direct_median_of_three() {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let median = |uefi_boot: bool| {
        let mut times = Vec::new();
        for _ in 0..3 {
            let scratch = tempfile::tempdir().unwrap();
            let options = if uefi_boot {
                uefi(scratch.path())
            } else {
                Options::default()
            };
            let mut machine = Machine::boot(image(), options, HARD_LIMIT).unwrap();
            times.push(machine.wait_console(MULTI_USER, BOOT).unwrap());
            machine.connect(COMMAND).unwrap();
            poweroff(machine);
        }
        times.sort();
        let shown: Vec<String> = times
            .iter()
            .map(|t| format!("{:.1}", t.as_secs_f64()))
            .collect();
        (times[1], shown)
    };
    let (uefi_median, uefi_times) = median(true);
    let (direct_median, direct_times) = median(false);
    eprintln!(
        "boot to multi-user.target under TCG, median of three: through OVMF and systemd-boot {:.1} s {uefi_times:?}; direct kernel boot {:.1} s {direct_times:?}",
        uefi_median.as_secs_f64(),
        direct_median.as_secs_f64()
    );
    assert!(uefi_median < BOOT);
}

#[test]
fn secure_boot_boots_what_airlock_signed_and_the_firmware_refuses_any_other_uki() {
    if !enabled() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path();
    let (image_dir, keys) = qemu_tests::setup::signed_copy(&image().dir, root);
    let signed = image_dir.join("secure-boot");
    // The signed UKI is the built one plus a signature.
    let stripped = root.join("stripped.efi");
    std::fs::copy(signed.join("uki.efi"), &stripped).unwrap();
    output(Command::new("sbattach").arg("--remove").arg(&stripped));
    assert!(std::fs::read(&stripped).unwrap() == std::fs::read(image_dir.join("uki.efi")).unwrap());

    let _serial = serial();
    let machine_dir = |name: &str| {
        let dir = root.join(name);
        std::fs::create_dir(&dir).unwrap();
        Uefi::prepare_secure(
            Path::new(OVMF_DIR),
            &signed.join("disk.raw"),
            &dir,
            &keys,
            &qemu_tests::setup::virt_fw_vars(),
        )
        .unwrap()
    };
    let mut machine = boot(Options {
        uefi: Some(machine_dir("signed")),
        ..Options::default()
    });
    let variable = machine
        .check(
            &format!("od -An -t u1 {}", airlock_boot::uefi::SECURE_BOOT_VARIABLE),
            COMMAND,
        )
        .unwrap();
    assert_eq!(
        variable.split_whitespace().last(),
        Some("1"),
        "SecureBoot: {variable}"
    );
    assert!(machine.console().contains("Secure boot enabled"));
    poweroff(machine);

    // Three UKIs the firmware must refuse behind the signed systemd-boot:
    // one byte changed, signed by another db key, not signed.
    let changed = root.join("changed.efi");
    let mut bytes = std::fs::read(signed.join("uki.efi")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&changed, bytes).unwrap();
    let foreign = root.join("foreign.efi");
    output(
        Command::new("sbsign")
            .arg("--key")
            .arg(root.join("keys/theirs/db.key"))
            .arg("--cert")
            .arg(root.join("keys/theirs/db.crt"))
            .arg("--output")
            .arg(&foreign)
            .arg(image_dir.join("uki.efi")),
    );
    let esp = disk().partitions[0].offset;
    for (name, uki) in [
        ("changed", changed),
        ("foreign", foreign),
        ("unsigned", image_dir.join("uki.efi")),
    ] {
        let uefi = machine_dir(name);
        output(
            Command::new("mcopy")
                .env("MTOOLS_SKIP_CHECK", "1")
                .arg("-o")
                .arg("-i")
                .arg(format!("{}@@{esp}", uefi.disk.display()))
                .arg(&uki)
                .arg("::/EFI/Linux/minimal-test_1.efi"),
        );
        let mut machine = Machine::boot(
            image(),
            Options {
                uefi: Some(uefi),
                ..Options::default()
            },
            HARD_LIMIT,
        )
        .unwrap();
        let refused = machine.wait_console(
            "Error loading \\EFI\\Linux\\minimal-test_1.efi: Access Denied",
            BOOT,
        );
        let console = machine.console();
        eprintln!("{name} UKI: refused: {}", refused.is_ok());
        assert!(refused.is_ok(), "{name}: {console}");
        assert!(!console.contains("Linux version"), "{name}: a kernel ran");
    }
}

fn sha256_of(path: &Path) -> String {
    let output = output(Command::new("sha256sum").arg(path));
    output.split_whitespace().next().unwrap().to_owned()
}

#[test]
fn a_signed_bundle_carries_the_disk_in_parts_and_becomes_it_again_on_the_far_side() {
    if !enabled() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path();
    let (image_dir, keys) = qemu_tests::setup::signed_copy(&image().dir, root);
    let bundle = qemu_tests::setup::bundle(&image_dir);
    let airlock = || {
        let mut command = Command::new(qemu_tests::setup::airlock());
        command.env_remove("AIRLOCK_MIRROR");
        command
    };
    // The bundle carries the parts, not the disk image.
    let artifacts = bundle.bundle.join("artifacts");
    assert!(!artifacts.join("disk.raw").exists());
    let mut extra = 0;
    for part in [
        "uki.efi",
        "systemd-bootx64.efi",
        "secure-boot/uki.efi",
        "secure-boot/systemd-bootx64.efi",
        "secure-boot/db.crt",
    ] {
        extra += std::fs::metadata(artifacts.join(part)).unwrap().len();
    }
    let verified = output(
        airlock()
            .arg("verify")
            .arg(&bundle.bundle)
            .arg("--trust")
            .arg(&bundle.trust)
            .arg("--json"),
    );
    let verified: serde_json::Value = serde_json::from_str(&verified).unwrap();
    assert_eq!(verified["result"]["disk"], true, "{verified}");
    assert_eq!(verified["result"]["secure_boot"], true, "{verified}");

    // Raw: the built disk image, byte for byte, and as sparse.
    let raw = root.join("far.raw");
    output(
        airlock()
            .arg("disk-image")
            .arg(&bundle.bundle)
            .arg("--trust")
            .arg(&bundle.trust)
            .arg("--out")
            .arg(&raw),
    );
    assert_eq!(sha256_of(&raw), disk().image.sha256);
    let allocated = |path: &Path| {
        std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(path).unwrap()) * 512
    };
    assert!(allocated(&raw) <= allocated(&image().dir.join("disk.raw")) + (1 << 20));
    eprintln!(
        "disk image: {} bytes, {} MiB allocated; the bundle carries {} bytes for it beside the root and its hash tree (unsigned and signed boot files)",
        std::fs::metadata(&raw).unwrap().len(),
        allocated(&raw) >> 20,
        extra
    );
    // qcow2 with the signed boot files: the disk sign-boot wrote.
    let qcow2 = root.join("far.qcow2");
    output(
        airlock()
            .arg("disk-image")
            .arg(&bundle.bundle)
            .arg("--trust")
            .arg(&bundle.trust)
            .args(["--secure-boot", "--format", "qcow2", "--out"])
            .arg(&qcow2),
    );
    output(
        Command::new("qemu-img")
            .args(["compare", "-f", "qcow2", "-F", "raw"])
            .arg(&qcow2)
            .arg(image_dir.join("secure-boot/disk.raw")),
    );
    let refused = airlock()
        .arg("disk-image")
        .arg(&bundle.bundle)
        .arg("--trust")
        .arg(&bundle.trust)
        .arg("--out")
        .arg(&raw)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("exists"));

    // And it boots from the bundle with Secure Boot enforced.
    let _serial = serial();
    let booted = airlock()
        .args(bundle.boot_args())
        .arg("--uefi")
        .arg("--secure-boot")
        .arg(&keys)
        .args(["--until", MULTI_USER, "--timeout", "900"])
        .env("PATH", path_with_virt_fw_vars())
        .output()
        .unwrap();
    let console = String::from_utf8_lossy(&booted.stdout);
    assert!(
        booted.status.success(),
        "{console}\n{}",
        String::from_utf8_lossy(&booted.stderr)
    );
    assert!(console.contains("Secure boot enabled"), "{console}");
    assert!(
        String::from_utf8_lossy(&booted.stderr).contains("recorded minimal-test version 1"),
        "{}",
        String::from_utf8_lossy(&booted.stderr)
    );
}

/// PATH with the folder of virt-fw-vars first (`airlock boot
/// --secure-boot` runs it from PATH).
fn path_with_virt_fw_vars() -> std::ffi::OsString {
    let tool = qemu_tests::setup::virt_fw_vars();
    let mut paths: Vec<PathBuf> = tool.parent().map(Path::to_owned).into_iter().collect();
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap()
}
