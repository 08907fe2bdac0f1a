//! Boots the server example (openssh-server, chrony, nginx, sudo, curl,
//! ca-certificates, systemd-resolved) under TCG, built with no maintainer
//! script run, and checks that its services work: no failed unit, ssh
//! takes a key login from the host through QEMU's user network with host
//! keys made at first boot on /var, nginx answers, chrony runs. Gated like
//! the other boot tests (AIRLOCK_TEST_NETWORK=1: a fresh lock against the
//! real archive).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use airlock_boot::{Image, Options};
use qemu_tests::Machine;
use qemu_tests::setup::{
    assert_ssh_key_login, copy_tree, enabled, free_port, lock_and_build, operator_recipe,
    rebuild_elsewhere, serial, shared_tempdir, workspace,
};

const BOOT: Duration = Duration::from_secs(420);
const HARD_LIMIT: Duration = Duration::from_secs(900);
const COMMAND: Duration = Duration::from_secs(120);

/// Makes the operator's key, then locks and builds the server image with
/// an operator that may log in with it.
fn build(root: &Path) -> (Image, PathBuf) {
    for file in ["recipes/server.toml", "keys/debian/bookworm.pgp"] {
        std::fs::create_dir_all(root.join(file).parent().unwrap()).unwrap();
        std::fs::copy(workspace().join(file), root.join(file)).unwrap();
    }
    for folder in ["qemu-tests/recipes", "qemu-tests/overlay"] {
        copy_tree(&workspace().join(folder), &root.join(folder));
    }
    let key = operator_recipe(
        root,
        "qemu-tests/recipes/server-operator.toml",
        "server-test.toml",
        "server-test",
    );
    let recipe = root.join("qemu-tests/recipes/server-operator.toml");
    let folder = lock_and_build(&recipe, &root.join("images"), "server-test");
    (Image::open(&folder).unwrap(), key)
}

/// The server image, built once for every test here: (its folder's
/// parent, the image, the operator's key).
fn built() -> &'static (tempfile::TempDir, Image, PathBuf) {
    static BUILT: OnceLock<(tempfile::TempDir, Image, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = shared_tempdir();
        let (image, key) = build(dir.path());
        (dir, image, key)
    })
}

#[test]
fn the_server_example_builds_reproducibly() {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let (dir, first, _) = built();
    // The same recipe and lock from another folder, with another umask,
    // clock, time zone, locale, thread count and temporary folder: the
    // files airlock generates in place of the scripts (accounts, the CA
    // bundle and its hash links, the first-boot units, ucf's sshd_config)
    // come out the same.
    let (_other, second) = rebuild_elsewhere(
        dir.path(),
        "qemu-tests/recipes/server-operator.toml",
        "server-test",
    );
    let (a, b) = (
        airlock_fixtures::tree_digests(&first.dir),
        airlock_fixtures::tree_digests(&second),
    );
    assert!(a.contains_key("root.erofs") && a.contains_key("build-report.json"));
    assert!(a.contains_key("sbom.spdx3.json"));
    assert_eq!(a, b, "every artifact is byte-identical");
}

/// The server example's SBOMs pass the baselines buyers check them against.
#[test]
fn the_server_examples_sboms_conform_to_ntia_bsi_and_fsct() {
    if !enabled() {
        return;
    }
    let (_, image, _) = built();
    let log = qemu_tests::setup::assert_sboms_conform(&image.dir);
    eprintln!("{log}");
}

#[test]
fn the_server_example_boots_with_every_service_running_and_takes_an_ssh_key_login() {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let (_, image, key) = built();
    let key = key.as_path();
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(image.dir.join("build-report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        report["first_boot"][0]["name"], "ssh-host-keys",
        "the report lists the keys made at first boot"
    );
    let port = free_port();
    let options = Options {
        memory_mib: 1536,
        forward: vec![(port, 22)],
        ..Options::default()
    };
    let mut machine = Machine::boot(image, options, HARD_LIMIT).unwrap();
    // The test channel starts early: talk to the guest while it boots, so
    // that a unit that never finishes starting is named, not a timeout.
    machine.connect(BOOT).unwrap();
    let state = machine.run(
        "timeout 300 systemctl is-system-running --wait",
        Duration::from_secs(330),
    );
    let stuck = machine
        .check(
            "systemctl list-jobs --no-pager; systemctl --failed --no-pager; \
             journalctl -b --no-pager -u ssh.service -u chrony.service -u nginx.service | tail -n 40",
            COMMAND,
        )
        .unwrap();
    assert_eq!(
        state.as_ref().map(|s| s.output.as_str()).ok(),
        Some("running"),
        "the boot did not finish clean: {stuck}"
    );
    let active = machine
        .run(
            "systemctl is-active ssh.service chrony.service nginx.service airlock-ssh-host-keys.service",
            COMMAND,
        )
        .unwrap();
    assert_eq!(
        active.output.split_whitespace().collect::<Vec<_>>(),
        ["active"; 4],
        "{}",
        active.output
    );
    // The host keys are the host's own, on /var; none came in the image.
    let keys = machine.check("ls /var/lib/airlock/ssh", COMMAND).unwrap();
    assert!(keys.contains("ssh_host_ed25519_key.pub"), "{keys}");
    machine
        .check("test ! -e /etc/ssh/ssh_host_ed25519_key", COMMAND)
        .unwrap();
    let fingerprint = machine
        .check(
            "ssh-keygen -l -f /var/lib/airlock/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2",
            COMMAND,
        )
        .unwrap();
    // A key login from the host; sshd may still be starting.
    assert_ssh_key_login(key, port);
    let scan = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ssh-keyscan -t ed25519 -p {port} 127.0.0.1 2>/dev/null | ssh-keygen -l -f - | cut -d' ' -f2"
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&scan.stdout).trim(),
        fingerprint,
        "sshd serves the key made at first boot"
    );
    // nginx answers; chrony runs and reports its (unreachable) sources.
    let http = machine
        .check(
            "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/",
            COMMAND,
        )
        .unwrap();
    assert_eq!(http, "200");
    let sources = machine.run("chronyc -n sources", COMMAND).unwrap();
    assert_eq!(sources.status, 0, "{}", sources.output);
    let status = machine.poweroff(Duration::from_secs(120)).unwrap();
    assert!(status.success(), "QEMU exited with {status}");
}
