//! The agent node (recipes/agent-node.toml plus the test channel) under TCG:
//! the agent runs sandboxed as its own user, reaches only its allow-list,
//! leaves audit records, and reads the model the recipe pinned; and the
//! example builds reproducibly. Same gates as boot.rs: QEMU, root, the
//! image tools and the real Debian archive (AIRLOCK_TEST_NETWORK=1).
//!
//! The allowed and the forbidden destination are listeners this test opens
//! on the host's 127.0.0.1:47180 and :47181 before the guest boots; QEMU's
//! user network hands the guest's connections to 10.0.2.100:47180 and
//! :47181 to them (through `airlock __relay`, as `airlock boot
//! --guest-forward` and `airlock test` do).

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use airlock_boot::{Image, Options};
use qemu_tests::Machine;
use qemu_tests::setup::{
    airlock, copy_tree, enabled, rebuild_elsewhere, serial, shared_tempdir, workspace,
};

const BOOT: Duration = Duration::from_secs(300);
const HARD_LIMIT: Duration = Duration::from_secs(900);
const COMMAND: Duration = Duration::from_secs(120);
// systemd shortens long status lines on the console ("airlock-ag…rvice").
const AGENT_STARTED: &str = "Started airlock-ag";
const AGENT_FAILED: &str = "Failed to start airlock-ag";
const ALLOWED_PORT: u16 = 47180;
const FORBIDDEN_PORT: u16 = 47181;

/// A scratch copy of what the agent-node test recipe needs, with the
/// example model made in it.
fn scratch() -> tempfile::TempDir {
    let dir = shared_tempdir();
    let root = dir.path();
    for file in ["recipes/agent-node.toml", "keys/debian/bookworm.pgp"] {
        std::fs::create_dir_all(root.join(file).parent().unwrap()).unwrap();
        std::fs::copy(workspace().join(file), root.join(file)).unwrap();
    }
    for tree in [
        "recipes/agent-node/overlay",
        "qemu-tests/recipes",
        "qemu-tests/overlay",
    ] {
        copy_tree(&workspace().join(tree), &root.join(tree));
    }
    airlock_example_model::write_file(
        &root.join("recipes/agent-node/model/example.gguf"),
        airlock_example_model::SEED,
    )
    .unwrap();
    dir
}

fn recipe(root: &Path) -> PathBuf {
    root.join("qemu-tests/recipes/agent-node-test.toml")
}

fn airlock_in(args: &[&str], recipe: &Path, extra: impl FnOnce(&mut Command)) -> Output {
    let mut command = Command::new(airlock());
    command.args(&args[..1]).arg(recipe).args(&args[1..]);
    command.env_remove("AIRLOCK_MIRROR");
    extra(&mut command);
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "airlock {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Locks (fresh) and builds the test image once for this binary.
fn built() -> &'static (tempfile::TempDir, Image) {
    static BUILT: OnceLock<(tempfile::TempDir, Image)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = scratch();
        let recipe = recipe(dir.path());
        airlock_in(&["lock"], &recipe, |_| {});
        let output = dir.path().join("images");
        airlock_in(
            &["build", "--output", output.to_str().unwrap()],
            &recipe,
            |_| {},
        );
        let image = Image::open(&airlock_fixtures::only_image(
            &output.join("agent-node-test"),
        ))
        .unwrap();
        (dir, image)
    })
}

/// The recipe's model digest.
fn model_sha256() -> String {
    let text = std::fs::read_to_string(workspace().join("recipes/agent-node.toml")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("sha256 = "))
        .expect("the recipe pins the model's sha256");
    line.trim_start_matches("sha256 = ")
        .trim_matches('"')
        .to_owned()
}

/// A host listener that reports every connection's first line.
fn listen(port: u16) -> Receiver<String> {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| {
        panic!("the test needs 127.0.0.1:{port} free for the agent to connect to: {e}")
    });
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut text = String::new();
            let _ = stream.read_to_string(&mut text);
            if sender.send(text).is_err() {
                break;
            }
        }
    });
    receiver
}

/// Polls `command` in the guest until it succeeds.
fn wait_for(machine: &mut Machine, command: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let outcome = machine.run(command, COMMAND).unwrap();
        if outcome.status == 0 {
            return outcome.output;
        }
        if Instant::now() > deadline {
            let status = machine
                .run(
                    "systemctl status --no-pager airlock-agent; journalctl -b --no-pager -u airlock-agent",
                    COMMAND,
                )
                .unwrap();
            panic!(
                "`{command}` did not succeed within {} s: {}\n{}",
                timeout.as_secs(),
                outcome.output,
                status.output
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// `probe.txt` lines as NAME → rest.
fn probe_lines(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn the_agent_runs_sandboxed_reaches_only_its_allow_list_and_is_audited() {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let allowed = listen(ALLOWED_PORT);
    let forbidden = listen(FORBIDDEN_PORT);
    let (_, image) = built();
    let disks = tempfile::tempdir().unwrap();
    let relay = |port: u16| {
        (
            std::net::SocketAddrV4::new([10, 0, 2, 100].into(), port),
            format!("{} __relay 127.0.0.1:{port}", airlock().display()),
        )
    };
    let options = Options {
        data: Some(disks.path().join("data.img")),
        data_size: 512 << 20,
        network: true,
        guest_forward: vec![relay(ALLOWED_PORT), relay(FORBIDDEN_PORT)],
        ..Options::default()
    };
    let mut machine = Machine::boot(image, options, HARD_LIMIT).unwrap();
    let (which, started) = machine
        .wait_console_any(&[AGENT_STARTED, AGENT_FAILED], BOOT)
        .unwrap();
    machine.connect(COMMAND).unwrap();
    if which == 1 {
        let status = machine
            .run(
                "systemctl status --no-pager airlock-agent; journalctl -b --no-pager -u airlock-agent",
                COMMAND,
            )
            .unwrap();
        panic!("the agent did not start:\n{}", status.output);
    }
    eprintln!(
        "boot to agent running (QEMU start to {AGENT_STARTED:?}, TCG): {:.1} s",
        started.as_secs_f64()
    );

    // The example agent's own run: it read the model, wrote its result, and
    // reached the allowed listener, which got the model's digest.
    let sha256 = model_sha256();
    let result = wait_for(
        &mut machine,
        "cat /var/lib/airlock-agent/result.json",
        Duration::from_secs(120),
    );
    eprintln!("result.json: {result}");
    assert!(
        result.contains(&format!("\"sha256\":\"{sha256}\"")),
        "{result}"
    );
    assert!(
        result.contains("\"architecture\":\"airlock-example\""),
        "{result}"
    );
    assert!(
        result.contains(r#"{"to":"10.0.2.100:47180","allowed":true,"outcome":"connected"}"#),
        "{result}"
    );
    for target in ["10.0.2.100:47181", "10.0.2.3:47180"] {
        assert!(result.contains(&format!("\"to\":\"{target}\",\"allowed\":false")));
        assert!(
            !result.contains(&format!(
                "\"to\":\"{target}\",\"allowed\":false,\"outcome\":\"connected\""
            )),
            "{result}"
        );
    }
    let got = allowed
        .recv_timeout(Duration::from_secs(10))
        .expect("the allowed listener got the agent's connection");
    assert_eq!(got, format!("airlock-agent model-sha256={sha256}\n"));
    assert_eq!(
        machine
            .check(
                "systemctl show -P Result airlock-agent; systemctl show -P ExecMainStatus airlock-agent",
                COMMAND
            )
            .unwrap(),
        "success\n0",
        "the agent exited 0 (it exits 1 when a forbidden destination answers)"
    );

    // The account, the unit's exposure rating, the model, the firewall's
    // policies, the audit rules and the sealed journal are checked on the
    // production image by recipes/tests/agent-node.toml (airlock_test.rs);
    // what follows needs the probe this test image carries.
    let uid = machine.check("id -u agent", COMMAND).unwrap();

    // A setuid-root copy of id(1) in the agent's writable directory: it does
    // elevate the agent's user outside the sandbox (the control), and does
    // not inside it.
    machine
        .check(
            "install -o root -g root -m 4755 /usr/bin/id /var/lib/airlock-agent/suid-id && findmnt -no OPTIONS -T /var/lib/airlock-agent",
            COMMAND,
        )
        .map(|options| assert!(!options.contains("nosuid"), "{options}"))
        .unwrap();
    assert_eq!(
        machine
            .check(
                "setpriv --reuid=agent --regid=agent --clear-groups /var/lib/airlock-agent/suid-id -u",
                COMMAND
            )
            .unwrap(),
        "0",
        "outside the sandbox the setuid bit works"
    );

    // Each wall on its own. A listener in the guest on 10.0.2.15:47182 that
    // root reaches, and a hole in the firewall's agent chain for it: the
    // agent still cannot connect, because systemd's IPAddressDeny= (in the
    // unit's cgroup) refuses the address.
    machine
        .check(
            "systemd-run --unit=probe-listener python3 -c 'import socket; s = socket.create_server((\"10.0.2.15\", 47182)); [c.close() for c, _ in iter(s.accept, None)]' && \
             nft insert rule inet airlock agent_egress ip daddr 10.0.2.15 tcp dport 47182 accept && \
             for i in $(seq 50); do timeout 3 bash -c 'exec 3<>/dev/tcp/10.0.2.15/47182' 2>/dev/null && exit 0; sleep 0.2; done; exit 1",
            COMMAND,
        )
        .expect("root reaches the guest's own listener");

    // The probe, in the agent's unit: a runtime drop-in replaces ExecStart
    // and nothing else.
    machine
        .check(
            "mkdir -p /run/systemd/system/airlock-agent.service.d && \
             printf '[Service]\\nType=oneshot\\nExecStart=\\nExecStart=/usr/lib/airlock-test/agent-probe\\n' \
               > /run/systemd/system/airlock-agent.service.d/probe.conf && \
             systemctl daemon-reload && systemctl start airlock-agent.service",
            COMMAND,
        )
        .unwrap();
    let probe = machine
        .check("cat /var/lib/airlock-agent/probe.txt", COMMAND)
        .unwrap();
    eprintln!("probe:\n{probe}");
    let lines = probe_lines(&probe);
    let line = |name: &str| {
        lines
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing:\n{probe}"))
    };
    assert!(
        line("id").starts_with(&format!("uid={uid}(agent)")),
        "{probe}"
    );
    assert_eq!(line("NoNewPrivs").trim(), "1", "{probe}");
    assert_eq!(line("CapEff").trim(), "0000000000000000", "{probe}");
    assert_eq!(line("CapBnd").trim(), "0000000000000000", "{probe}");
    assert_eq!(
        line("Seccomp").trim(),
        "2",
        "a seccomp filter is on: {probe}"
    );
    assert!(line("read-shadow").starts_with("failed"), "{probe}");
    for path in ["write-etc", "write-usr", "write-var-lib"] {
        assert!(line(path).starts_with("failed"), "{path}: {probe}");
    }
    assert!(line("write-own").starts_with("ok"), "{probe}");
    assert_eq!(line("read-model"), "ok GGUF", "{probe}");
    assert_eq!(line("setuid"), format!("ok {uid}"), "no elevation: {probe}");
    assert!(line("connect-allowed").starts_with("ok"), "{probe}");
    assert!(line("connect-port").starts_with("failed"), "{probe}");
    assert!(line("connect-address").starts_with("failed"), "{probe}");
    assert!(
        line("connect-local").starts_with("failed"),
        "systemd's IPAddressDeny= refuses an address the firewall lets through: {probe}"
    );
    assert!(
        forbidden.try_recv().is_err(),
        "nothing reached the forbidden listener"
    );

    // The agent chain dropped the probe's and the agent's attempts on the
    // forbidden port.
    let counter = machine
        .check(
            "nft list chain inet airlock agent_egress | grep -o 'counter packets [0-9]*'",
            COMMAND,
        )
        .unwrap();
    let dropped: u64 = counter.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(dropped >= 2, "the agent chain dropped packets: {counter}");

    // Audit: the agent's execve and connect calls, and its refused writes.
    let rules = machine.check("auditctl -l", COMMAND).unwrap();
    for key in [
        "airlock-agent-exec",
        "airlock-agent-connect",
        "airlock-agent-denied",
    ] {
        assert!(
            rules.contains(&format!("-F uid={uid} -F key={key}")),
            "{key}: {rules}"
        );
    }
    let execs = machine
        .check("ausearch --input-logs -k airlock-agent-exec -i", COMMAND)
        .unwrap();
    assert!(execs.contains("python3"), "the agent's own start: {execs}");
    assert!(execs.contains("agent-probe"), "{execs}");
    let connects = machine
        .check("ausearch --input-logs -k airlock-agent-connect -i", COMMAND)
        .unwrap();
    for port in [ALLOWED_PORT, FORBIDDEN_PORT] {
        assert!(
            connects.contains(&format!("lport={port}")),
            "{port}: {connects}"
        );
    }
    let denied = machine
        .check("ausearch --input-logs -k airlock-agent-denied -i", COMMAND)
        .unwrap();
    assert!(
        denied.contains("/etc/shadow") || denied.contains("shadow"),
        "{denied}"
    );
    assert!(denied.contains("airlock-probe"), "{denied}");

    let status = machine.poweroff(Duration::from_secs(120)).unwrap();
    assert!(status.success(), "QEMU exited with {status}");
}

/// The agent node's SBOMs pass the baselines buyers check them against,
/// and describe its model with the card the recipe gives.
#[test]
fn the_agent_nodes_sboms_conform_to_ntia_bsi_and_fsct_and_describe_the_model() {
    if !enabled() {
        return;
    }
    let (_, image) = built();
    let log = qemu_tests::setup::assert_sboms_conform(&image.dir);
    eprintln!("{log}");
    let spdx3: serde_json::Value =
        serde_json::from_slice(&std::fs::read(image.dir.join("sbom.spdx3.json")).unwrap()).unwrap();
    let graph = spdx3["@graph"].as_array().unwrap();
    let model = graph
        .iter()
        .find(|e| e["type"] == "ai_AIPackage")
        .expect("the model is an AIPackage");
    assert_eq!(model["software_packageVersion"], "1");
    assert_eq!(model["ai_safetyRiskAssessment"], "low");
    assert_eq!(model["ai_typeOfModel"][0], "random weights");
    let sha256 = model_sha256();
    assert!(
        model["verifiedUsing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["algorithm"] == "sha256" && h["hashValue"] == sha256.as_str())
    );
    // Every Debian package has a supplier (its maintainer) and depends on
    // what it depends on: libc6's dependents name it.
    let debs: Vec<&serde_json::Value> = graph
        .iter()
        .filter(|e| {
            e["type"] == "software_Package"
                && e["software_packageUrl"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("pkg:deb/"))
        })
        .collect();
    assert!(debs.len() > 100, "{} packages", debs.len());
    assert!(debs.iter().all(|d| d["suppliedBy"].is_string()));
    let libc = debs.iter().find(|d| d["name"] == "libc6").unwrap()["spdxId"].clone();
    let dependents = graph
        .iter()
        .filter(|e| {
            e["relationshipType"] == "dependsOn"
                && e["to"].as_array().is_some_and(|to| to.contains(&libc))
        })
        .count();
    assert!(dependents > 20, "{dependents} packages depend on libc6");
}

#[test]
fn the_agent_node_builds_reproducibly() {
    if !enabled() {
        return;
    }
    // Not QEMU, but two cores of image building would slow a booting guest.
    let _serial = serial();
    let (dir, first) = built();
    // The same recipe and lock from another folder, another clock, umask,
    // time zone, locale, thread count and temporary folder.
    let (_other, second) = rebuild_elsewhere(
        dir.path(),
        "qemu-tests/recipes/agent-node-test.toml",
        "agent-node-test",
    );
    assert_eq!(
        first.dir.file_name(),
        second.file_name(),
        "the inputs digest names the folder"
    );
    let (a, b) = (
        airlock_fixtures::tree_digests(&first.dir),
        airlock_fixtures::tree_digests(&second),
    );
    for name in [
        "root.erofs",
        "root.verity",
        "rootfs.tar.zst",
        "vmlinuz",
        "initrd.img",
        "sbom.cdx.json",
        "sbom.spdx.json",
        "sbom.spdx3.json",
        "build-report.json",
    ] {
        assert!(a.contains_key(name), "{name} missing: {a:?}");
    }
    assert_eq!(a, b, "every artifact is byte-identical");
}

/// The far side's rebuild of the agent node (its model and its overlay
/// files among the sources): exported with sources, signed, then rebuilt
/// from the bundle alone in an empty store, in a network namespace with no
/// interfaces, and every artifact compared with what was signed.
#[test]
fn the_agent_node_is_rebuilt_offline_from_its_bundle() {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let (dir, image) = built();
    let work = tempfile::tempdir().unwrap();
    let path = |name: &str| work.path().join(name);
    let run = |command: &mut Command| -> Output {
        let output = command.env_remove("AIRLOCK_MIRROR").output().unwrap();
        assert!(
            output.status.success(),
            "{command:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    };
    let keys = path("keys");
    run(Command::new(airlock())
        .args(["keygen", "--builder", "--out"])
        .arg(&keys));
    run(Command::new(airlock())
        .args(["keygen", "--release", "alice", "--out"])
        .arg(&keys));
    let trust = path("trust");
    std::fs::create_dir_all(trust.join("release")).unwrap();
    std::fs::create_dir_all(trust.join("builder")).unwrap();
    std::fs::write(trust.join("trust.toml"), "threshold = 1\n").unwrap();
    std::fs::copy(keys.join("alice.asc"), trust.join("release/alice.asc")).unwrap();
    std::fs::copy(keys.join("builder.pub"), trust.join("builder/builder.pub")).unwrap();
    let bundle = path("bundle");
    run(Command::new(airlock())
        .arg("export")
        .arg(&image.dir)
        .arg("--to")
        .arg(&bundle)
        .args(["--expires", "2099-01-01", "--with-sources", "--builder-key"])
        .arg(keys.join("builder.key")));
    run(Command::new(airlock())
        .arg("sign")
        .arg(&bundle)
        .arg("--key")
        .arg(keys.join("alice.key")));
    // The sources carry the overlay's files and the model, not their
    // paths on this machine.
    let files = std::fs::read_to_string(bundle.join("sources/files.json")).unwrap();
    assert!(
        !files.contains(&dir.path().display().to_string()),
        "the build machine's paths are in the sources: {files}"
    );
    assert!(
        files.contains("usr/lib/airlock-agent/agent.py"),
        "the overlay's files are among the sources: {files}"
    );
    assert!(
        bundle.join("sources/models/example-agent-model").is_file(),
        "the model is among the sources"
    );

    let output = Command::new("unshare")
        .arg("-n")
        .arg(airlock())
        .arg("rebuild")
        .arg(&bundle)
        .args(["--check", "--json", "--trust"])
        .arg(&trust)
        .env_remove("AIRLOCK_MIRROR")
        .env_remove("AIRLOCK_STORE")
        .env("TMPDIR", work.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "rebuild --check: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["reproduced"], true, "{json}");
    assert_eq!(json["mismatches"], serde_json::json!([]), "{json}");
}
