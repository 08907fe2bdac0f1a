//! Boots the minimal image (plus the test channel) under TCG and checks the
//! guest from inside. Needs qemu-system-x86_64, root (the EROFS staging
//! tree carries file owners), erofs-utils, ostree, and the real Debian
//! archive for a fresh lock: gated on AIRLOCK_TEST_NETWORK=1; with
//! AIRLOCK_REQUIRE_TOOLS=1 a missing QEMU is a failure, not a skip.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use airlock_boot::{Image, Options};
use qemu_tests::Machine;
use qemu_tests::setup::{
    airlock, assert_only_busybox_is_unreadable, busybox_offset, enabled, minimal_test_image,
    serial, shared_tempdir,
};

const BOOT: Duration = Duration::from_secs(300);
const HARD_LIMIT: Duration = Duration::from_secs(600);
const COMMAND: Duration = Duration::from_secs(120);
const MULTI_USER: &str = "Reached target multi-user.target";

/// Locks (fresh, against today's archive), fetches and builds the test
/// image once for every test in this binary.
fn image() -> &'static Image {
    static IMAGE: OnceLock<(tempfile::TempDir, Image)> = OnceLock::new();
    &IMAGE
        .get_or_init(|| {
            let dir = shared_tempdir();
            let folder = minimal_test_image(dir.path());
            let image = Image::open(&folder).unwrap();
            (dir, image)
        })
        .1
}

fn report(image: &Image) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(image.dir.join("build-report.json")).unwrap())
        .unwrap()
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

/// What recipes/tests/minimal.toml checks through `airlock test` on the
/// production image (the verity root, read-only, no failed unit, /tmp,
/// journald, setuid passwd, no packet leaving) is not repeated here: this
/// needs the test image (ping's capability comes from a package the
/// production recipe does not have) and the build report.
#[test]
fn the_verity_table_and_privileges_reach_the_booted_root() {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let mut machine = boot(Options::default());
    let root_hash = report(image())["verity"]["root_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let table = machine
        .check("dmsetup table airlock-root", COMMAND)
        .unwrap();
    assert!(
        table.contains(" verity 1 ") && table.contains(&root_hash),
        "{table}"
    );
    machine
        .check(
            "touch /var/lib/airlock-test && rm /var/lib/airlock-test",
            COMMAND,
        )
        .unwrap();
    // Privilege survives into the EROFS root. Regression: staging set modes
    // before owners, and chown(2) clears setuid bits, so su and passwd
    // lost theirs; and postinst setcap calls were not applied at all.
    assert_eq!(
        machine
            .check("stat -c '%a %U' /usr/bin/su /usr/bin/passwd", COMMAND)
            .unwrap(),
        "4755 root\n4755 root"
    );
    assert_eq!(
        machine.check("getcap /usr/bin/ping", COMMAND).unwrap(),
        "/usr/bin/ping cap_net_raw=ep"
    );
    let privileges = &report(image())["privileges"];
    let listed = |path: &str| {
        privileges
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["path"] == path)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(listed("/usr/bin/ping")["capabilities"], "cap_net_raw=ep");
    assert_eq!(listed("/usr/bin/ping")["packages"][0], "iputils-ping");
    assert_eq!(listed("/usr/bin/su")["kinds"][0], "setuid");
    poweroff(machine);
}

/// The minimal image's SBOMs pass the baselines buyers check them against.
#[test]
fn the_minimal_images_sboms_conform_to_ntia_bsi_and_fsct() {
    if !enabled() {
        return;
    }
    let log = qemu_tests::setup::assert_sboms_conform(&image().dir);
    eprintln!("{log}");
}

/// airlock writes the ostree commit itself, from the tree; `ostree commit`
/// of the same root (unpacked from rootfs.tar.zst with owners, modes and
/// xattrs, as root) must give the same checksum, and `ostree fsck` must
/// accept airlock's repository.
#[test]
fn the_ostree_commit_is_the_one_ostree_commit_makes_of_the_same_root() {
    if !enabled() {
        return;
    }
    let image = image();
    let report = report(image);
    let native = report["ostree_commit"].as_str().unwrap();
    let run = |command: &mut Command| {
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{command:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let repo = image.dir.join("ostree");
    run(Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .arg("fsck"));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    run(Command::new("tar")
        .args(["--zstd", "-xpf"])
        .arg(image.dir.join("rootfs.tar.zst"))
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-C"])
        .arg(&root));
    let oracle = dir.path().join("oracle");
    run(Command::new("ostree")
        .arg(format!("--repo={}", oracle.display()))
        .args(["init", "--mode=archive"]));
    let epoch = report["epoch"].as_u64().unwrap();
    let version = report["version"].as_u64().unwrap();
    let name = report["name"].as_str().unwrap();
    let commit = run(Command::new("ostree")
        .arg(format!("--repo={}", oracle.display()))
        .arg("commit")
        .arg(format!("--branch=airlock/{name}"))
        .arg(format!("--tree=dir={}", root.display()))
        .arg(format!("--timestamp=@{epoch}"))
        .arg(format!("--subject={name} {version}"))
        .arg(format!("--add-metadata-string=version={version}"))
        .arg("--no-bindings"));
    assert_eq!(commit.trim(), native);
}

#[test]
fn var_and_the_machine_id_persist_on_the_data_disk() {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let disks = tempfile::tempdir().unwrap();
    let with_disk = |name: &str| Options {
        data: Some(disks.path().join(name)),
        data_size: 256 << 20,
        ..Options::default()
    };
    let machine_id = "cat /etc/machine-id";
    let mut first = boot(with_disk("one.img"));
    let id_one = first.check(machine_id, COMMAND).unwrap();
    assert_eq!(id_one.len(), 32, "{id_one:?}");
    assert!(
        first
            .check("findmnt -no SOURCE /var", COMMAND)
            .unwrap()
            .starts_with("/dev/vdc")
    );
    first
        .check("echo kept > /var/lib/airlock-marker && sync", COMMAND)
        .unwrap();
    poweroff(first);

    let mut again = boot(with_disk("one.img"));
    assert_eq!(
        again.check("cat /var/lib/airlock-marker", COMMAND).unwrap(),
        "kept"
    );
    assert_eq!(
        again.check(machine_id, COMMAND).unwrap(),
        id_one,
        "the machine id lives on the data disk"
    );
    poweroff(again);

    let mut fresh = boot(with_disk("two.img"));
    assert_ne!(
        fresh
            .run("cat /var/lib/airlock-marker", COMMAND)
            .unwrap()
            .status,
        0
    );
    let id_two = fresh.check(machine_id, COMMAND).unwrap();
    assert_eq!(id_two.len(), 32);
    assert_ne!(id_one, id_two, "each fresh host gets its own machine-id");
    poweroff(fresh);
}

#[test]
fn a_corrupted_root_block_makes_reading_its_file_fail() {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let image = image();
    // Where busybox's first block lies in the EROFS image.
    let offset = busybox_offset(&image.dir.join("root.erofs"));
    let scratch = tempfile::tempdir().unwrap();
    let corrupted = scratch.path().join("root.erofs");
    std::fs::copy(image.dir.join("root.erofs"), &corrupted).unwrap();
    let mut bytes = std::fs::read(&corrupted).unwrap();
    bytes[offset as usize + 100] ^= 0x01;
    std::fs::write(&corrupted, &bytes).unwrap();
    drop(bytes);

    let mut machine = boot(Options {
        root: Some(corrupted),
        ..Options::default()
    });
    assert_only_busybox_is_unreadable(
        &mut machine,
        &format!(
            "byte {} (block {}) of root.erofs",
            offset + 100,
            (offset + 100) / 4096
        ),
    );
    poweroff(machine);
}

#[test]
fn boot_time_to_multi_user_median_of_three() {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let mut times = Vec::new();
    for _ in 0..3 {
        let mut machine = Machine::boot(image(), Options::default(), HARD_LIMIT).unwrap();
        times.push(machine.wait_console(MULTI_USER, BOOT).unwrap());
        machine.connect(COMMAND).unwrap();
        poweroff(machine);
    }
    times.sort();
    eprintln!(
        "boot to multi-user.target under TCG: median {:.1} s of {:?}",
        times[1].as_secs_f64(),
        times
            .iter()
            .map(|t| format!("{:.1}", t.as_secs_f64()))
            .collect::<Vec<_>>()
    );
    assert!(times[1] < BOOT);
}

#[test]
fn airlock_boot_verifies_a_bundle_boots_it_records_it_and_refuses_a_replay() {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let bundle = qemu_tests::setup::bundle(&image().dir);
    use std::io::{Read, Write};
    use std::os::unix::process::CommandExt;
    // Under a hard bound, in a process group of its own, so QEMU goes too.
    let mut child = Command::new("timeout")
        .args(["-s", "KILL", &HARD_LIMIT.as_secs().to_string()])
        .arg(airlock())
        .args(bundle.boot_args())
        .process_group(0)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        let mut seen = String::new();
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
            if seen.contains("root@airlock") {
                let _ = sender.send(());
                seen.clear();
            }
        }
    });
    let logged_in = receiver.recv_timeout(BOOT);
    let mut stdin = child.stdin.take().unwrap();
    // The test image's root shell on the console powers the guest off;
    // QEMU exits, and so does `airlock boot`.
    stdin.write_all(b"systemctl poweroff\n").unwrap();
    stdin.flush().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if status.is_none() {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .status();
        let _ = child.wait();
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        logged_in.is_ok(),
        "no root shell on the console; stderr: {stderr}"
    );
    let status = status.expect("airlock boot did not exit after the power button");
    assert!(status.success(), "exit {status}: {stderr}");
    assert!(stderr.contains("quit with Ctrl-A X"), "{stderr}");
    assert!(stderr.contains("the guest powered off"), "{stderr}");
    assert!(
        stderr.contains("verified minimal-test 1: signed by 2 of 2 required keys"),
        "{stderr}"
    );
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.state.join("minimal-test.json")).unwrap())
            .unwrap();
    assert_eq!(record["version"], 1);
    // The host recorded release 1: the same bundle again is a rollback,
    // refused before QEMU starts.
    let output = Command::new(airlock())
        .args(bundle.boot_args())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("rollback"), "{stderr}");
    assert!(!stderr.contains("booting"), "{stderr}");
}
