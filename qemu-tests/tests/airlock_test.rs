//! `airlock test` itself, as users run it: the shipped test files of
//! recipes/minimal.toml and recipes/agent-node.toml against their
//! production images (the agent node's with -j 1 and -j 2, timed), a file
//! whose cases each fail in their own way (exit 1, JUnit failures carrying
//! expected and actual values, logs kept), a guest reaching an address no
//! one declared caught by `no_packets`, and Ctrl-C leaving no QEMU behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use qemu_tests::setup::{
    airlock, copy_tree, enabled, lock_and_build, minimal_test_image, serial, shared_tempdir,
    workspace,
};

/// recipes/minimal.toml (production, no test channel) and its test file,
/// copied and locked fresh, built once: (scratch root, image folder).
fn built() -> &'static (tempfile::TempDir, PathBuf) {
    static BUILT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = shared_tempdir();
        for file in ["recipes/minimal.toml", "keys/debian/bookworm.pgp"] {
            let to = root.path().join(file);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(workspace().join(file), to).unwrap();
        }
        copy_tree(
            &workspace().join("recipes/tests"),
            &root.path().join("recipes/tests"),
        );
        let image = lock_and_build(
            &root.path().join("recipes/minimal.toml"),
            &root.path().join("images"),
            "minimal",
        );
        (root, image)
    })
}

/// recipes/agent-node.toml, its overlay, the example model and the test
/// files, locked fresh and built once: (scratch root, image folder).
fn agent_node() -> &'static (tempfile::TempDir, PathBuf) {
    static BUILT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = shared_tempdir();
        for file in ["recipes/agent-node.toml", "keys/debian/bookworm.pgp"] {
            let to = root.path().join(file);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(workspace().join(file), to).unwrap();
        }
        for tree in ["recipes/agent-node/overlay", "recipes/tests"] {
            copy_tree(&workspace().join(tree), &root.path().join(tree));
        }
        airlock_example_model::write_file(
            &root.path().join("recipes/agent-node/model/example.gguf"),
            airlock_example_model::SEED,
        )
        .unwrap();
        let image = lock_and_build(
            &root.path().join("recipes/agent-node.toml"),
            &root.path().join("images"),
            "agent-node",
        );
        (root, image)
    })
}

fn airlock_test(args: &[&str]) -> Output {
    Command::new(airlock())
        .arg("test")
        .args(args)
        .env_remove("AIRLOCK_MIRROR")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Reads a JUnit file with PyPI's junitparser (AIRLOCK_SBOM_TOOLS, the
/// venv `cargo xtask ci` makes): one line per case, "suite|name|result|
/// message", results passed, failure or error.
fn junitparser(path: &Path) -> Option<Vec<String>> {
    let tools = std::env::var_os("AIRLOCK_SBOM_TOOLS")?;
    let script = r#"
import sys
from junitparser import JUnitXml, Failure, Error
xml = JUnitXml.fromfile(sys.argv[1])
for suite in xml:
    for case in suite:
        kind, message = "passed", ""
        for r in case.result:
            if isinstance(r, Failure): kind, message = "failure", r.message
            if isinstance(r, Error): kind, message = "error", r.message
        print(f"{suite.name}|{case.name}|{kind}|{message}")
"#;
    let out = Command::new(Path::new(&tools).join("python3"))
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "junitparser: {}", text(&out.stderr));
    Some(text(&out.stdout).lines().map(str::to_owned).collect())
}

#[test]
fn the_minimal_recipes_test_file_passes_on_the_production_image() {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let (root, _) = built();
    let junit = root.path().join("minimal.junit.xml");
    let recipe = root.path().join("recipes/minimal.toml");
    let output = root.path().join("images");
    let out = airlock_test(&[
        recipe.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    eprintln!("{stderr}");
    assert!(out.status.success(), "airlock test failed: {stderr}");
    assert!(
        stderr.contains("up to date"),
        "the image was not rebuilt: {stderr}"
    );
    let cases = std::fs::read_to_string(workspace().join("recipes/tests/minimal.toml"))
        .unwrap()
        .matches("[[case]]")
        .count();
    if let Some(parsed) = junitparser(&junit) {
        assert_eq!(parsed.len(), cases, "{parsed:?}");
        assert!(
            parsed.iter().all(|line| line.contains("|passed|")),
            "{parsed:?}"
        );
        assert!(
            parsed[0].starts_with("minimal.main|the system reaches running|"),
            "{parsed:?}"
        );
    }
}

#[test]
fn the_agent_node_test_file_passes_with_one_and_two_machines_at_a_time() {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let (root, _) = agent_node();
    let recipe = root.path().join("recipes/agent-node.toml");
    let output = root.path().join("images");
    let junit = root.path().join("agent-node.junit.xml");
    let mut seconds = Vec::new();
    for jobs in ["1", "2"] {
        let started = Instant::now();
        let out = airlock_test(&[
            recipe.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "-j",
            jobs,
        ]);
        seconds.push(started.elapsed().as_secs_f64());
        let stderr = text(&out.stderr);
        eprintln!("-j {jobs}:\n{stderr}");
        assert!(
            out.status.success(),
            "airlock test -j {jobs} failed: {stderr}"
        );
    }
    eprintln!(
        "recipes/tests/agent-node.toml (2 machines): -j 1 {:.1} s, -j 2 {:.1} s",
        seconds[0], seconds[1]
    );
    let cases = std::fs::read_to_string(workspace().join("recipes/tests/agent-node.toml"))
        .unwrap()
        .matches("[[case]]")
        .count();
    if let Some(parsed) = junitparser(&junit) {
        assert_eq!(parsed.len(), cases, "{parsed:?}");
        assert!(
            parsed.iter().all(|line| line.contains("|passed|")),
            "{parsed:?}"
        );
        assert!(
            parsed.iter().any(|l| l.starts_with("agent-node.reboot|")),
            "{parsed:?}"
        );
    }
}

/// On the agent node (which has a network configured), with its firewall
/// taken down: the guest tries an address the file does not declare.
const LEAKY: &str = r#"
schema = 1

[machine.main]
listen = ["sink"]
forward = [8081]

[[case]]
name = "the firewall is taken down"
run = "nft flush ruleset"

[[case]]
name = "the guest tries an address no one declared"
run = "timeout 3 bash -c 'exec 3<>/dev/tcp/10.0.2.3/80'; true"

[[case]]
name = "no packet leaves"
no_packets = true

[[case]]
name = "the sink hears from the guest"
listener = "sink"
timeout = 5

[[case]]
name = "a closed guest port answers"
port = 8081
timeout = 5

[[case]]
name = "the guest reaches the sink"
listener = "sink"
run = "exec 3<>/dev/tcp/{listen.sink.address}/{listen.sink.port} && echo hello >&3"
"#;

#[test]
fn a_guest_reaching_an_undeclared_address_is_caught() {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let (_, image) = agent_node();
    let dir = tempfile::tempdir().unwrap();
    let tests = dir.path().join("leaky.toml");
    std::fs::write(&tests, LEAKY).unwrap();
    let junit = dir.path().join("junit.xml");
    let out = airlock_test(&[
        image.to_str().unwrap(),
        "--tests",
        tests.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    eprintln!("{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("3 passed, 3 failed"), "{stderr}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let at = xml.find("name=\"no packet leaves\"").unwrap();
    let case = &xml[at..at + xml[at..].find("</testcase>").unwrap()];
    assert!(case.contains("<failure"), "{case}");
    assert!(
        case.contains("-&gt; 10.0.2.3:80"),
        "the packet is named: {case}"
    );
    for failed in [
        "the sink hears from the guest",
        "a closed guest port answers",
    ] {
        let at = xml.find(&format!("name=\"{failed}\"")).unwrap();
        let case = &xml[at..at + xml[at..].find("</testcase>").unwrap()];
        assert!(case.contains("<failure"), "{case}");
    }
}

/// A case of each kind that fails on the minimal image and three that
/// pass (one makes a failed unit for the next; one is a host command
/// talking to the guest through AIRLOCK_CHANNEL), on two machines.
const FAILING: &str = r#"
schema = 1

[machine.second]
memory = 768

[[case]]
name = "status"
run = "exit 3"

[[case]]
name = "stdout"
run = "echo actual-text"
stdout = { equals = "expected-text" }

[[case]]
name = "a unit"
unit = "airlock-no-such.service"

[[case]]
name = "a file"
file = "/usr/bin/passwd"
mode = "755"

[[case]]
name = "a failed unit"
run = "systemd-run --unit=airlock-made-to-fail false; sleep 1"

[[case]]
name = "no failed units"
no_failed_units = true

[[case]]
name = "boot budget"
multi_user_within = 0.001

[[case]]
name = "console"
console = { contains = ["this line is never printed"] }
timeout = 5

[[case]]
name = "host"
host = ["sh", "-c", "echo from the host; exit 4"]

[[case]]
name = "timeout"
run = "sleep 30"
timeout = 2

[[case]]
name = "host timeout"
host = ["sh", "-c", "sleep 300 & sleep 300"]
timeout = 3

[[case]]
name = "passes"
machine = "second"
run = "uname -s"
stdout = { equals = "Linux" }

[[case]]
name = "host channel"
machine = "second"
host = ["python3", "-c", '''
import base64, os, socket
s = socket.socket(socket.AF_UNIX); s.connect(os.environ["AIRLOCK_CHANNEL"])
s.sendall(b"7 " + base64.b64encode(b"cat /etc/hostname") + b"\n")
line = s.makefile().readline()
assert line.startswith("@@AIRLOCK-RESULT 7 0 "), line
print(base64.b64decode(line.split()[3].rstrip("@")).decode())
''']
"#;

#[test]
fn failing_cases_fail_with_their_values_and_keep_the_logs() {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let (_, image) = built();
    let dir = tempfile::tempdir().unwrap();
    let tests = dir.path().join("failing.toml");
    std::fs::write(&tests, FAILING).unwrap();
    let (junit, kept) = (dir.path().join("junit.xml"), dir.path().join("kept"));
    let out = airlock_test(&[
        image.to_str().unwrap(),
        "--tests",
        tests.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--keep-failed",
        kept.to_str().unwrap(),
        "-j",
        "2",
    ]);
    let stderr = text(&out.stderr);
    eprintln!("{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("3 passed, 10 failed, 0 could not be checked"),
        "{stderr}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    for (case, expected, actual) in [
        ("status", "exit status 0", "exit status 3"),
        (
            "stdout",
            "stdout equal to \"expected-text\"",
            "stdout was \"actual-text\"",
        ),
        ("a unit", "active", "inactive"),
        ("a file", "mode 755", "mode 4755"),
        (
            "no failed units",
            "no failed units",
            "airlock-made-to-fail.service",
        ),
        (
            "console",
            "containing \"this line is never printed\"",
            "was",
        ),
        ("host", "sh exits 0", "exit status: 4"),
        ("timeout", "done within 2 s", "still waiting for"),
        ("host timeout", "sh ends within 3 s", "killed"),
    ] {
        let at = xml
            .find(&format!("name=\"{}\"", case.replace('"', "&quot;")))
            .unwrap_or_else(|| panic!("no case {case} in\n{xml}"));
        let failure = &xml[at..xml[at..].find("</testcase>").map_or(xml.len(), |e| at + e)];
        let escaped = |s: &str| s.replace('&', "&amp;").replace('"', "&quot;");
        assert!(failure.contains("<failure"), "{case}: {failure}");
        assert!(
            failure.contains(&escaped(expected)),
            "{case} expected {expected}: {failure}"
        );
        assert!(
            failure.contains(&escaped(actual)),
            "{case} actual {actual}: {failure}"
        );
    }
    assert!(
        xml.contains("from the host"),
        "the host command's output is reported"
    );
    if let Some(parsed) = junitparser(&junit) {
        let failures = parsed.iter().filter(|l| l.contains("|failure|")).count();
        assert_eq!(failures, 10, "{parsed:?}");
        assert!(
            parsed.contains(&"failing.second|passes|passed|".to_owned()),
            "{parsed:?}"
        );
        assert!(
            parsed.contains(&"failing.second|host channel|passed|".to_owned()),
            "{parsed:?}"
        );
    }
    for file in ["console.log", "journal.txt", "cases.txt", "network-1.pcap"] {
        let path = kept.join("main").join(file);
        assert!(path.is_file(), "{} was not kept", path.display());
    }
    let journal = std::fs::read_to_string(kept.join("main/journal.txt")).unwrap();
    assert!(
        journal.contains("airlock-made-to-fail"),
        "the journal is the guest's"
    );
    assert!(
        !kept.join("second").exists(),
        "a machine whose cases passed keeps nothing"
    );
}

#[test]
fn a_test_image_that_carries_the_channel_is_tested_through_uefi() {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let root = shared_tempdir();
    // minimal-test: the minimal recipe plus the channel as a unit, which a
    // UEFI boot needs (its command line is sealed in the UKI).
    let image = minimal_test_image(root.path());
    let tests = root.path().join("uefi.toml");
    std::fs::write(
        &tests,
        "schema = 1\n\
         [[case]]\nname = \"running\"\nsystem = \"running\"\ntimeout = 600\n\
         [[case]]\nname = \"through UEFI, with the UKI's command line\"\n\
         run = \"test -d /sys/firmware/efi/efivars && cat /proc/cmdline\"\n\
         stdout = { contains = [\"airlock.root=\"], lacks = [\"systemd.run\"] }\n\
         [[case]]\nname = \"a marker on /var\"\nrun = \"echo kept > /var/lib/airlock-test-marker && sync\"\n\
         [[case]]\nname = \"reboot\"\nreboot = true\n\
         [[case]]\nname = \"the marker survived on the machine's copy of the disk\"\n\
         run = \"cat /var/lib/airlock-test-marker\"\nstdout = { equals = \"kept\" }\ntimeout = 600\n",
    )
    .unwrap();
    let out = airlock_test(&[
        image.to_str().unwrap(),
        "--tests",
        tests.to_str().unwrap(),
        "--uefi",
    ]);
    let stderr = text(&out.stderr);
    eprintln!("{stderr}");
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("(UEFI)") && stderr.contains("5 passed"),
        "{stderr}"
    );
}

fn qemu_running(marker: &str) -> usize {
    let pattern = format!("^{} .*{marker}", airlock_boot::QEMU);
    let out = Command::new("pgrep")
        .args(["-f", &pattern])
        .output()
        .unwrap();
    text(&out.stdout).lines().count()
}

#[test]
fn ctrl_c_leaves_no_qemu_behind() {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let (_, image) = built();
    // The image under a unique path (links to its files): QEMU's command
    // line names it, so pgrep finds this run's machines and no other.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("interrupted-image");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(image).unwrap() {
        let entry = entry.unwrap();
        std::os::unix::fs::symlink(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let tests = dir.path().join("slow.toml");
    std::fs::write(
        &tests,
        "schema = 1\n[machine.a]\n[machine.b]\n\
         [[case]]\nname = \"a\"\nmachine = \"a\"\nrun = \"sleep 600\"\ntimeout = 900\n\
         [[case]]\nname = \"b\"\nmachine = \"b\"\nrun = \"sleep 600\"\ntimeout = 900\n",
    )
    .unwrap();
    let mut child = Command::new(airlock())
        .arg("test")
        .arg(&copy)
        .arg("--tests")
        .arg(&tests)
        .args(["-j", "2"])
        .spawn()
        .unwrap();
    let marker = copy.display().to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    while qemu_running(&marker) < 2 {
        assert!(Instant::now() < deadline, "two machines never started");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(5));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while qemu_running(&marker) > 0 {
        assert!(
            Instant::now() < deadline,
            "QEMU still runs after Ctrl-C: {}",
            qemu_running(&marker)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
