//! A host updated from media: `airlock install` of release 1 onto a blank
//! disk file from the host side, then, in the guest booted from that disk
//! alone (UEFI, Secure Boot enforced), `airlock-host update` from a second
//! virtual disk, the "USB stick", mounted read-only.
//!
//! - Replays, tampered and under-signed bundles are refused and nothing on
//!   the disk changes (its partitions hashed before and after).
//! - Release 2 goes into slot B; after the reboot it runs from there, /var
//!   written under release 1 is still there, its boot entry is blessed by
//!   systemd-bless-boot once the health check passed, and the state
//!   records it.
//! - QEMU killed in the middle of an update leaves a machine that boots
//!   release 2.
//! - Release 3 requires a unit that fails: its boot is not good, the
//!   health check reboots, and after its one try systemd-boot boots
//!   release 2 again on its own; `airlock-host status` reports 3 as failed
//!   and the state still says 2.
//! - Key rotation: release 6, signed by a new approver alone, is refused
//!   while release 2 runs; release 5, approved under the old rules, pins
//!   the new approver, and once it runs release 6 is accepted.
//!
//! Gated like the other boot tests (AIRLOCK_TEST_NETWORK=1, root, QEMU),
//! and needs ovmf, sbsigntool, efitools, virt-fw-vars and mkfs.ext4.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use airlock_boot::uefi::{OVMF_DIR, Uefi};
use airlock_boot::{Image, Options};
use qemu_tests::Machine;
use qemu_tests::setup::{
    airlock, enabled, lock_and_build, minimal_test_recipes, serial, shared_tempdir, virt_fw_vars,
};

const BOOT: Duration = Duration::from_secs(300);
const HARD_LIMIT: Duration = Duration::from_secs(900);
const COMMAND: Duration = Duration::from_secs(120);
const UPDATE: Duration = Duration::from_secs(600);
const MULTI_USER: &str = "Reached target multi-user.target";
/// The serial console's autologin.
const AUTOLOGIN: &str = "login: root (automatic login)";
const DISK: u64 = 3 << 30;
/// Where the guest mounts the stick.
const STICK: &str = "/run/stick";

fn run(command: &mut Command) -> Output {
    let output = command.env_remove("AIRLOCK_MIRROR").output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn airlock_cmd() -> Command {
    let mut command = Command::new(airlock());
    command.env("AIRLOCK_KEY_PASSWORD", "test");
    command
}

/// The release keys (alice, bob, carol), the builder key and the Secure
/// Boot keys under `root`/keys, and two `[signing]` parts of a recipe that
/// bake anchors into the image: `signing.toml` (alice and bob, both must
/// sign) and `signing-rotated.toml` (carol alone).
fn keys(root: &Path, recipes: &Path) -> PathBuf {
    let keys = root.join("keys/release");
    let mut signers = Vec::new();
    for who in ["alice", "bob", "carol"] {
        let out = run(airlock_cmd()
            .args(["keygen", "--release", who, "--out"])
            .arg(&keys));
        let fingerprint = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        signers.push(format!(
            "  {{ name = \"{who}\", fingerprint = \"{fingerprint}\", certificate_file = \"{}\" }},",
            keys.join(format!("{who}.asc")).display()
        ));
    }
    run(airlock_cmd()
        .args(["keygen", "--builder", "--out"])
        .arg(&keys));
    run(airlock_cmd()
        .args(["keygen", "--secure-boot", "--out"])
        .arg(root.join("keys"))
        .args(["--name", "ours"]));
    let builders = format!(
        "builders = [{{ name = \"ci\", key_file = \"{}\" }}]\n",
        keys.join("builder.pub").display()
    );
    for (file, threshold, who) in [
        ("signing.toml", 2, &signers[..2]),
        ("signing-rotated.toml", 1, &signers[2..]),
    ] {
        std::fs::write(
            recipes.join(file),
            format!(
                "schema = 1\n\n[signing]\nthreshold = {threshold}\nsigners = [\n{}\n]\n{builders}",
                who.join("\n"),
            ),
        )
        .unwrap();
    }
    keys
}

/// Builds release `version` of the update test image (the minimal test
/// image with the host tool, systemd-boot, a health check and the keys),
/// signs its boot files for Secure Boot and exports it as a bundle signed
/// by `signers`. Release 3 requires a unit that fails; releases from 5 on
/// carry the rotated anchors (carol alone).
fn release(root: &Path, recipes: &Path, version: u64, signers: &[&str]) -> (PathBuf, PathBuf) {
    let broken = version == 3;
    let signing = if version >= 5 {
        "signing-rotated.toml"
    } else {
        "signing.toml"
    };
    let mut text = format!(
        "schema = 1\ninclude = [\"minimal-test.toml\", \"{signing}\"]\n\n\
         [image]\nname = \"update-test\"\nversion = {version}\n\n\
         [packages]\ninstall = [\"systemd-boot\"]\n\n\
         [disk]\nroot_mib = 400\n# Not the test channel: it restarts until the harness connects.\nhealth = [\"systemd-journald.service\", \"systemd-udevd.service\"{}]\n",
        if broken {
            ", \"airlock-test-broken.service\""
        } else {
            ""
        }
    );
    if broken {
        text += "\n[files.inline.\"/usr/lib/systemd/system/airlock-test-broken.service\"]\n\
                 content = \"[Unit]\\nDescription=a unit release 3 requires, broken on purpose\\n[Service]\\nType=oneshot\\nExecStart=/bin/false\\n[Install]\\nWantedBy=multi-user.target\\n\"\n\n\
                 [services]\nenable = [\"airlock-test-broken.service\"]\n";
    }
    let recipe = recipes.join(format!("update-test-{version}.toml"));
    std::fs::write(&recipe, text).unwrap();
    let image = lock_and_build(
        &recipe,
        &root.join(format!("images-{version}")),
        "update-test",
    );
    let sb = root.join("keys/ours");
    run(airlock_cmd()
        .arg("sign-boot")
        .arg(&image)
        .arg("--key")
        .arg(sb.join("db.key"))
        .arg("--cert")
        .arg(sb.join("db.crt")));
    let bundle = root.join(format!("stick/v{version}"));
    let keys = root.join("keys/release");
    run(airlock_cmd()
        .arg("export")
        .arg(&image)
        .arg("--to")
        .arg(&bundle)
        .args(["--expires", "2099-01-01", "--builder-key"])
        .arg(keys.join("builder.key")));
    for who in signers {
        run(airlock_cmd()
            .arg("sign")
            .arg(&bundle)
            .arg("--key")
            .arg(keys.join(format!("{who}.key"))));
    }
    (image, bundle)
}

/// The host side's trust directory for the first install: the same keys
/// the image bakes in.
fn trust(root: &Path) -> PathBuf {
    let keys = root.join("keys/release");
    let trust = root.join("trust");
    std::fs::create_dir_all(trust.join("release")).unwrap();
    std::fs::create_dir_all(trust.join("builder")).unwrap();
    for who in ["alice", "bob"] {
        std::fs::copy(
            keys.join(format!("{who}.asc")),
            trust.join(format!("release/{who}.asc")),
        )
        .unwrap();
    }
    std::fs::copy(keys.join("builder.pub"), trust.join("builder/ci.pub")).unwrap();
    std::fs::write(trust.join("trust.toml"), "threshold = 2\n").unwrap();
    trust
}

/// An ext4 file system holding `dir`'s bundles: the stick.
fn stick(dir: &Path, out: &Path) -> PathBuf {
    let size = String::from_utf8(run(Command::new("du").args(["-sb"]).arg(dir)).stdout).unwrap();
    let bytes: u64 = size.split_whitespace().next().unwrap().parse().unwrap();
    let image = out.join("stick.img");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(bytes + bytes / 5 + (64 << 20))
        .unwrap();
    run(Command::new("mkfs.ext4")
        .args(["-q", "-L", "airlock-stick", "-d"])
        .arg(dir)
        .arg(&image));
    image
}

struct Host<'a> {
    image: &'a Image,
    uefi: Uefi,
    stick: PathBuf,
}

impl Host<'_> {
    fn boot(&self) -> (Machine, Instant) {
        let options = Options {
            uefi: Some(self.uefi.clone()),
            media: vec![self.stick.clone()],
            ..Options::default()
        };
        let started = Instant::now();
        (
            Machine::boot(self.image, options, HARD_LIMIT).unwrap(),
            started,
        )
    }

    /// Boots until startup finished and connects; the stick mounted
    /// read-only. (On a counted boot multi-user.target waits for the health
    /// check, the blessing and the record, while the serial console's
    /// autologin is up before: the channel is the readiness signal.)
    fn up(&self) -> (Machine, Instant) {
        let (mut machine, started) = self.boot();
        if let Err(e) = machine.wait_console_any(&[MULTI_USER, AUTOLOGIN], BOOT) {
            panic!(
                "{e}\nthe whole console:\n{}\nQEMU said: {}",
                machine.console(),
                machine.qemu_stderr()
            );
        }
        machine.connect(COMMAND).unwrap();
        let running = machine
            .run("systemctl is-system-running --wait", BOOT)
            .unwrap();
        assert!(
            running.output.contains("running") || running.output.contains("degraded"),
            "{}\n{}",
            running.output,
            machine.console()
        );
        machine
            .check(
                &format!("mkdir -p {STICK} && mount -o ro /dev/vdb {STICK}"),
                COMMAND,
            )
            .unwrap();
        (machine, started)
    }
}

fn status(machine: &mut Machine) -> serde_json::Value {
    serde_json::from_str(
        &machine
            .check("airlock-host status --json --esp /efi", COMMAND)
            .unwrap(),
    )
    .unwrap()
}

/// Waits until the record unit ran (a boot is good and recorded).
fn recorded(machine: &mut Machine) -> String {
    machine
        .check(
            "for i in $(seq 120); do s=$(systemctl is-active airlock-record.service); \
             [ \"$s\" = active ] && break; [ \"$s\" = failed ] && break; sleep 1; done; \
             systemctl is-active airlock-record.service; journalctl -b -u airlock-record.service -o cat | tail -1",
            COMMAND,
        )
        .unwrap()
}

/// Every partition's and both tables' digests.
fn disk_digests(machine: &mut Machine) -> String {
    machine
        .check(
            "sha256sum /dev/vda1 /dev/vda2 /dev/vda3 /dev/vda4 /dev/vda5; \
             head -c 1048576 /dev/vda | sha256sum; \
             tail -c 1048576 /dev/vda | sha256sum",
            Duration::from_secs(600),
        )
        .unwrap()
}

fn update(machine: &mut Machine, bundle: &str, extra: &str) -> qemu_tests::Outcome {
    machine
        .run(
            &format!("airlock-host update {STICK}/{bundle} {extra} 2>&1"),
            UPDATE,
        )
        .unwrap()
}

#[test]
fn a_host_updates_from_media_into_the_other_slot_and_falls_back_from_a_bad_release() {
    if !enabled() {
        return;
    }
    let root = shared_tempdir();
    let root = root.path();
    let recipes = minimal_test_recipes(root);
    keys(root, &recipes);
    let (image_1, bundle_1) = release(root, &recipes, 1, &["alice", "bob"]);
    release(root, &recipes, 2, &["alice", "bob"]);
    release(root, &recipes, 3, &["alice", "bob"]);
    // Release 4: signed by alice alone, and a copy signed by both whose
    // root was changed after signing.
    let (_, bundle_4) = release(root, &recipes, 4, &["alice"]);
    let tampered = root.join("stick/v4-tampered");
    run(Command::new("cp")
        .args(["-a"])
        .arg(&bundle_4)
        .arg(&tampered));
    run(airlock_cmd()
        .arg("sign")
        .arg(&tampered)
        .arg("--key")
        .arg(root.join("keys/release/bob.key")));
    let chunk = tampered.join("artifacts/root.erofs");
    let mut bytes = std::fs::read(&chunk).unwrap();
    bytes[4096] ^= 0xFF;
    std::fs::write(&chunk, bytes).unwrap();
    std::fs::rename(&bundle_4, root.join("stick/v4-one-signer")).unwrap();
    // Key rotation: release 5, approved under the old rules, pins carol
    // alone; release 6 is approved by carol alone.
    release(root, &recipes, 5, &["alice", "bob"]);
    release(root, &recipes, 6, &["carol"]);
    let trust = trust(root);
    let stick = stick(&root.join("stick"), root);

    // The first install, from the host side.
    let machine_dir = root.join("machine");
    std::fs::create_dir(&machine_dir).unwrap();
    let disk = machine_dir.join("disk.raw");
    std::fs::File::create(&disk).unwrap().set_len(DISK).unwrap();
    let started = Instant::now();
    run(airlock_cmd()
        .arg("install")
        .arg(&bundle_1)
        .arg("--trust")
        .arg(&trust)
        .arg("--target")
        .arg(&disk)
        .arg("--secure-boot"));
    eprintln!("FIGURE install: {:.1} s", started.elapsed().as_secs_f64());

    let _serial = serial();
    let image = Image::open(&image_1).unwrap();
    let uefi = Uefi::prepare_secure(
        Path::new(OVMF_DIR),
        &disk,
        &machine_dir,
        &root.join("keys/ours"),
        &virt_fw_vars(),
    )
    .unwrap();
    let host = Host {
        image: &image,
        uefi,
        stick,
    };

    // Release 1 runs from slot A and is recorded once it booted.
    let (mut machine, _) = host.up();
    assert!(machine.console().contains("Secure boot enabled"));
    qemu_tests::setup::assert_runs_from_slot_a(&mut machine, COMMAND);
    let record = recorded(&mut machine);
    assert!(record.starts_with("active"), "{record}");
    machine
        .check("echo written-under-1 > /var/lib/update-marker", COMMAND)
        .unwrap();
    let before = disk_digests(&mut machine);
    for (bundle, why) in [
        ("v1", "rollback"),
        ("v4-one-signer", "REJECTED"),
        ("v4-tampered", "REJECTED"),
    ] {
        let refused = update(&mut machine, bundle, "");
        assert_eq!(refused.status, 1, "{bundle}: {}", refused.output);
        assert!(refused.output.contains(why), "{bundle}: {}", refused.output);
    }
    assert_eq!(
        disk_digests(&mut machine),
        before,
        "refusals change nothing"
    );

    let started = Instant::now();
    let updated = update(&mut machine, "v2", "");
    eprintln!("FIGURE update: {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(updated.status, 0, "{}", updated.output);
    assert!(
        updated
            .output
            .contains("boot entry EFI/Linux/update-test_2+3.efi"),
        "{}",
        updated.output
    );
    let pending = status(&mut machine);
    assert!(
        pending["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["file"] == "update-test_2+3.efi" && e["state"] == "pending"),
        "{pending}"
    );
    machine.reboot(Duration::from_secs(120)).unwrap();

    // Release 2 runs from slot B, blessed and recorded; /var is kept.
    let (mut machine, _) = host.up();
    assert_eq!(
        machine
            .check("dmsetup deps -o devname airlock-root", COMMAND)
            .unwrap(),
        "2 dependencies\t: (vda5) (vda4)"
    );
    assert_eq!(
        machine
            .check("cat /var/lib/update-marker", COMMAND)
            .unwrap(),
        "written-under-1"
    );
    let record = recorded(&mut machine);
    assert!(record.starts_with("active"), "{record}");
    let two = status(&mut machine);
    assert_eq!(two["running"]["slot"], "b", "{two}");
    assert_eq!(two["running"]["version"], 2, "{two}");
    assert_eq!(two["slots"][0]["version"], 1, "{two}");
    assert_eq!(two["slots"][1]["version"], 2, "{two}");
    assert_eq!(
        two["entries"],
        serde_json::json!([
            {"file": "update-test_2.efi", "image": "update-test", "version": 2, "state": "good"},
            {"file": "update-test_1.efi", "image": "update-test", "version": 1, "state": "good"},
        ]),
        "{two}"
    );
    assert_eq!(two["state"][0]["version"], 2, "{two}");
    // A replay of release 1 is a rollback now by the recorded state too.
    let replay = update(&mut machine, "v1", "");
    assert_eq!(replay.status, 1, "{}", replay.output);

    // Killed in the middle of an update: release 2 still boots.
    machine
        .check(
            &format!("setsid nohup airlock-host update {STICK}/v3 > /run/update.log 2>&1 &"),
            COMMAND,
        )
        .unwrap();
    // Killed once the writes into slot A have begun: its name in the
    // partition table (UTF-16) has become `root-a:_empty`.
    let log = machine
        .check(
            "for i in $(seq 6000); do dd if=/dev/vda bs=512 skip=2 count=32 2>/dev/null | tr -d '\\000' | grep -q 'root-a:_empty' && break; sleep 0.1; done; cat /run/update.log",
            UPDATE,
        )
        .unwrap();
    drop(machine);
    assert!(log.contains("updating /dev/vda"), "{log}");
    assert!(!log.contains("updated:"), "killed too late: {log}");
    let (mut machine, _) = host.up();
    let after_kill = status(&mut machine);
    assert_eq!(after_kill["running"]["version"], 2, "{after_kill}");
    assert_eq!(after_kill["running"]["slot"], "b", "{after_kill}");
    assert_eq!(
        after_kill["slots"][0]["image"],
        serde_json::Value::Null,
        "the half-written slot claims no release: {after_kill}"
    );

    // Release 3 fails its health check: one try, then release 2 again.
    let updated = update(&mut machine, "v3", "--tries 1");
    assert_eq!(updated.status, 0, "{}", updated.output);
    machine.reboot(Duration::from_secs(120)).unwrap();
    let (mut machine, started) = host.boot();
    machine
        .wait_exit(BOOT)
        .expect("release 3's failed health check reboots");
    let console = machine.console();
    assert!(
        console.contains("UNHEALTHY: airlock-test-broken.service is failed"),
        "{console}"
    );
    drop(machine);
    let (mut machine, _) = host.up();
    eprintln!(
        "FIGURE failed boot to fallback running: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let fallen_back = status(&mut machine);
    assert_eq!(fallen_back["running"]["version"], 2, "{fallen_back}");
    assert!(
        fallen_back["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["file"] == "update-test_3+0-1.efi" && e["state"] == "failed"),
        "{fallen_back}"
    );
    assert_eq!(fallen_back["state"][0]["version"], 2, "{fallen_back}");
    let human = machine
        .check("airlock-host status --esp /efi", COMMAND)
        .unwrap();
    assert!(human.contains("FAILED"), "{human}");

    // Key rotation. Release 6 is signed by carol alone, whom the running
    // release 2 does not trust: refused. Release 5, approved by alice and
    // bob, pins carol; once it runs, release 6 is accepted.
    let refused = update(&mut machine, "v6", "");
    assert_eq!(refused.status, 1, "{}", refused.output);
    assert!(refused.output.contains("REJECTED"), "{}", refused.output);
    let updated = update(&mut machine, "v5", "");
    assert_eq!(updated.status, 0, "{}", updated.output);
    assert!(
        updated
            .output
            .contains("removed the boot entry EFI/Linux/update-test_3+0-1.efi"),
        "{}",
        updated.output
    );
    machine.reboot(Duration::from_secs(120)).unwrap();
    let (mut machine, _) = host.up();
    let record = recorded(&mut machine);
    assert!(record.starts_with("active"), "{record}");
    let five = status(&mut machine);
    assert_eq!(five["running"]["version"], 5, "{five}");
    assert_eq!(five["running"]["slot"], "a", "{five}");
    assert_eq!(five["trust"]["threshold"], 1, "{five}");
    assert_eq!(
        five["trust"]["approvers"].as_array().unwrap().len(),
        1,
        "{five}"
    );
    let accepted = update(&mut machine, "v6", "");
    assert_eq!(accepted.status, 0, "{}", accepted.output);
    assert!(
        accepted.output.contains("update-test 6 is in slot b"),
        "{}",
        accepted.output
    );
    let status = machine.poweroff(Duration::from_secs(120)).unwrap();
    assert!(status.success(), "QEMU exited with {status}");
}
