//! Developer tasks: `cargo xtask` lists them. Only the standard library
//! (and the dependency-free example-model crate), so this builds in seconds
//! and before any system package is installed.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod release;

/// Debian packages the build needs: sequoia's nettle backend binds to libnettle
/// through bindgen, which needs libclang.
const BUILD_PACKAGES: &[&str] = &["pkg-config", "nettle-dev", "libclang-dev", "clang"];

/// Debian packages `airlock build` runs: mkfs.erofs for the EROFS root and
/// ostree for the commit.
const IMAGE_PACKAGES: &[&str] = &["erofs-utils", "ostree"];

/// Debian packages the demo signs and boots its image with: QEMU; OVMF, the
/// UEFI firmware `airlock boot --uefi` boots the disk image through; openssl,
/// efitools and sbsigntool, with which `airlock keygen --secure-boot` makes
/// the Secure Boot keys and `airlock sign-boot` signs the boot files; and
/// python3-venv for virt-fw-vars (PyPI's virt-firmware), which enrols the
/// keys in the firmware's variable store.
const BOOT_PACKAGES: &[&str] = &[
    "qemu-system-x86",
    "ovmf",
    "openssl",
    "efitools",
    "sbsigntool",
    "python3-venv",
];

/// Debian packages the tests check airlock's output with: veritysetup,
/// faketime (a shifted clock), kmod (modprobe against airlock's module
/// indexes), dpkg (--verify), nftables (nft -c checks the rendered
/// ruleset), QEMU for the boot tests, gpg and sq (the
/// release signatures), openssl (the DSSE signature), cpio (reads the
/// initrd back), python3-venv (the SBOM reference validators, from PyPI),
/// openssh-client (the server boot test logs in with a key it makes), and
/// mmdebstrap with dpkg-dev's dpkg-scanpackages (the oracle tests install
/// the same locked .debs with their scripts run, to compare trees), and
/// what reads the disk image back: ovmf (UEFI boots), fdisk (sfdisk),
/// dosfstools (fsck.vfat), mtools and binutils (objdump on the UKI), and
/// for Secure Boot sbsigntool (sbsign, sbverify, sbattach) and efitools
/// (signed enrolment updates), qemu-utils (qemu-img writes and
/// compares the qcow2 disk image), and e2fsprogs (mkfs.ext4 makes the
/// update test's "USB stick").
const TEST_PACKAGES: &[&str] = &[
    "cryptsetup-bin",
    "cpio",
    "faketime",
    "kmod",
    "nftables",
    "dpkg",
    "qemu-system-x86",
    "gnupg",
    "sq",
    "openssl",
    "python3-venv",
    "openssh-client",
    "mmdebstrap",
    "dpkg-dev",
    "ovmf",
    "fdisk",
    "dosfstools",
    "mtools",
    "binutils",
    "sbsigntool",
    "efitools",
    "qemu-utils",
    "e2fsprogs",
];

/// The test tools from PyPI: the SBOM reference validators (CycloneDX's own
/// library, its strict JSON schema validator, and the SPDX project's
/// tools), the SPDX project's compliance checker (ntia-checker: NTIA
/// minimum elements, BSI TR-03183, CISA FSCT), virt-firmware, whose virt-fw-vars enrols Secure Boot keys in
/// OVMF's variable store for the UEFI tests, and junitparser, which reads
/// back the JUnit XML `airlock test` writes.
const SBOM_TOOLS: &[&str] = &[
    "cyclonedx-python-lib[json-validation]==11.12.0",
    "spdx-tools==0.8.5",
    "ntia-conformance-checker==6.0.0",
    "virt-firmware==26.10",
    "junitparser==4.0.2",
];

const TASKS: &[(&str, &str)] = &[
    (
        "deps",
        "install the Debian packages the build needs (apt-get, as root)",
    ),
    (
        "demo",
        "the main job: the agent node (recipes/agent-node.toml) made, locked, fetched and built, its boot files signed for Secure Boot, exported, signed (2 of 3, demo keys), verified, rebuilt offline, and its disk image booted through UEFI with Secure Boot enforced until its agent has run (as root)",
    ),
    (
        "model",
        "make the agent-node example's model (recipes/agent-node/model/example.gguf: seeded random weights in GGUF, ~1 MiB)",
    ),
    (
        "release",
        "the airlock binaries, reproducibly (--locked, the pinned toolchain, remapped paths, fixed flags): target/reproducible/airlock and airlock-host (the host tool images pin), each with its sha256",
    ),
    (
        "ci",
        "what CI runs: deps and test tools, fmt check, clippy, every test (network and tool tests on), fuzz targets built, cargo deny (licenses, bans, sources)",
    ),
    (
        "bench",
        "airlock build against mmdebstrap on the same .debs, with hyperfine (as root; needs mmdebstrap, hyperfine, dpkg-dev)",
    ),
    (
        "bench-disk",
        "airlock build of recipes/minimal.toml with and without the disk format, with hyperfine (as root; needs hyperfine)",
    ),
    (
        "bench-verify",
        "airlock verify of a bundle holding a 4 GiB model against sha256sum, and its peak memory (needs openssl, hyperfine, ~17 GiB of disk)",
    ),
    (
        "fuzz",
        "run every fuzz target for SECONDS each (default 30; needs cargo-fuzz and a nightly toolchain)",
    ),
];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None | Some("help") | Some("--help") => {
            list();
            Ok(())
        }
        Some("deps") => deps(BUILD_PACKAGES),
        Some("bench-verify") => deps(&[BUILD_PACKAGES, &["openssl", "hyperfine", "time"]].concat())
            .and_then(|()| run(cargo().args(["build", "--release", "--package", "airlock"])))
            .and_then(|()| {
                run(&mut Command::new(
                    root().join("xtask/scripts/bench-verify.sh"),
                ))
            }),
        Some("bench-disk") => deps(&[BUILD_PACKAGES, IMAGE_PACKAGES, &["hyperfine"]].concat())
            .and_then(|()| run(cargo().args(["build", "--release", "--package", "airlock"])))
            .and_then(|()| {
                run(&mut Command::new(
                    root().join("xtask/scripts/bench-disk.sh"),
                ))
            }),
        Some("bench") => deps(
            &[
                BUILD_PACKAGES,
                IMAGE_PACKAGES,
                &["mmdebstrap", "hyperfine", "dpkg-dev", "time"],
            ]
            .concat(),
        )
        .and_then(|()| run(cargo().args(["build", "--release", "--package", "airlock"])))
        .and_then(|()| {
            run(&mut Command::new(
                root().join("xtask/scripts/bench-vs-mmdebstrap.sh"),
            ))
        }),
        Some("demo") => {
            deps(&[BUILD_PACKAGES, IMAGE_PACKAGES, BOOT_PACKAGES].concat()).and_then(|()| demo())
        }
        Some("release") => deps(BUILD_PACKAGES).and_then(|()| release::release().map(drop)),
        Some("model") => model().map(|path| eprintln!("wrote {}", path.display())),
        Some("ci") => {
            deps(&[BUILD_PACKAGES, IMAGE_PACKAGES, TEST_PACKAGES].concat()).and_then(|()| ci())
        }
        Some("fuzz") => fuzz(args.get(1).map_or("30", String::as_str)),
        Some(other) => Err(format!(
            "unknown task {other:?}; `cargo xtask` lists the tasks"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn list() {
    eprintln!("cargo xtask TASK\n\ntasks:");
    for (name, what) in TASKS {
        eprintln!("  {name:<12} {what}");
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn run(command: &mut Command) -> Result<(), String> {
    eprintln!("$ {command:?}");
    let status = command
        .current_dir(root())
        .status()
        .map_err(|e| format!("{command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed: {status}"))
    }
}

fn cargo() -> Command {
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn deps(packages: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root {
        return Err(format!(
            "missing Debian packages: {}; run: sudo apt-get install {}",
            missing.join(" "),
            missing.join(" ")
        ));
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(missing.iter().filter(|p| **p != "qemu-utils"))
        .args(same_release_qemu(&missing))
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// When QEMU's system emulator is installed, qemu-utils must come from the
/// same release: a machine may carry a newer qemu-utils from elsewhere that
/// Breaks the release's qemu-system-common. Names it with the release
/// (`qemu-utils/CODENAME`), allowing the downgrade.
fn same_release_qemu(missing: &[&str]) -> Vec<String> {
    let codename = fs::read_to_string("/etc/os-release").ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix("VERSION_CODENAME=").map(str::to_owned))
    });
    match codename {
        Some(codename) if missing.contains(&"qemu-system-x86") => vec![
            "--allow-downgrades".to_owned(),
            format!("qemu-utils/{}", codename.trim_matches('"')),
        ],
        _ if missing.contains(&"qemu-utils") => vec!["qemu-utils".to_owned()],
        _ => Vec::new(),
    }
}

/// Where the example model goes (not committed: the recipe pins its sha256
/// and this task makes it again, byte for byte).
const MODEL: &str = "recipes/agent-node/model/example.gguf";

fn model() -> Result<PathBuf, String> {
    let path = root().join(MODEL);
    airlock_example_model::write_file(&path, airlock_example_model::SEED)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

fn demo() -> Result<(), String> {
    // The reproducible binary: its sha256 goes into the provenance, and a
    // far side that builds the same source release gets the same one.
    let (airlock, _) = release::release()?
        .into_iter()
        .next()
        .ok_or("cargo xtask release built nothing")?;
    let recipe = "recipes/agent-node.toml";
    eprintln!("demo: making the example model");
    model()?;
    run(Command::new(&airlock).args(["lock", recipe]))?;
    run(Command::new(&airlock).args(["fetch", recipe]))?;
    // The report (--json) names the image folder: VERSION-INPUTS[..12].
    let built = Command::new(&airlock)
        .args(["build", recipe, "--offline", "--json"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("{}: {e}", airlock.display()))?;
    if !built.status.success() {
        return Err(format!("airlock build failed: {}", built.status));
    }
    let report = String::from_utf8_lossy(&built.stdout);
    let field = |key: &str| -> Result<String, String> {
        let start = report
            .find(&format!("\"{key}\": "))
            .ok_or(format!("no {key} in the build report"))?
            + key.len()
            + 4;
        Ok(report[start..]
            .trim_start_matches('"')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect())
    };
    let image = root().join(format!(
        "images/agent-node/{}-{}",
        field("version")?,
        &field("inputs")?[..12]
    ));
    // The trust chain, with throwaway keys: export, two of three approve,
    // verify against a 2-of-3 trust directory.
    let demo = root().join("target/demo");
    let _ = std::fs::remove_dir_all(&demo);
    let keys = demo.join("keys");
    run(Command::new(&airlock)
        .args(["keygen", "--builder", "--out"])
        .arg(&keys))?;
    for who in ["alice", "bob", "carol"] {
        run(Command::new(&airlock)
            .args(["keygen", "--release", who, "--valid-days", "90", "--out"])
            .arg(&keys))?;
    }
    let trust = demo.join("trust");
    std::fs::create_dir_all(trust.join("release")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(trust.join("builder")).map_err(|e| e.to_string())?;
    std::fs::write(trust.join("trust.toml"), "threshold = 2\n").map_err(|e| e.to_string())?;
    for who in ["alice", "bob", "carol"] {
        std::fs::copy(
            keys.join(format!("{who}.asc")),
            trust.join(format!("release/{who}.asc")),
        )
        .map_err(|e| e.to_string())?;
    }
    std::fs::copy(keys.join("builder.pub"), trust.join("builder/builder.pub"))
        .map_err(|e| e.to_string())?;
    // Secure Boot: the operator's own PK, KEK and db, and the image's
    // systemd-boot and UKI signed with the db key (a step apart from the
    // build: the build's own artifacts stay what a rebuild reproduces).
    run(Command::new(&airlock)
        .args(["keygen", "--secure-boot", "--out"])
        .arg(&keys))?;
    let signed = image.join("secure-boot");
    let _ = std::fs::remove_dir_all(&signed);
    run(Command::new(&airlock)
        .arg("sign-boot")
        .arg(&image)
        .arg("--key")
        .arg(keys.join("secure-boot/db.key"))
        .arg("--cert")
        .arg(keys.join("secure-boot/db.crt")))?;
    let bundle = root().join("images/bundles/agent-node-1");
    let _ = std::fs::remove_dir_all(&bundle);
    let expires = Command::new("date")
        .args(["-u", "-d", "+90 days", "+%F"])
        .output()
        .map_err(|e| e.to_string())?;
    let expires = String::from_utf8_lossy(&expires.stdout).trim().to_owned();
    run(Command::new(&airlock)
        .arg("export")
        .arg(&image)
        .arg("--to")
        .arg(&bundle)
        .args(["--expires", &expires, "--with-sources", "--builder-key"])
        .arg(keys.join("builder.key")))?;
    for who in ["alice", "carol"] {
        run(Command::new(&airlock)
            .arg("sign")
            .arg(&bundle)
            .arg("--key")
            .arg(keys.join(format!("{who}.key"))))?;
    }
    run(Command::new(&airlock)
        .arg("verify")
        .arg(&bundle)
        .arg("--trust")
        .arg(&trust))?;
    // The far side's second check: rebuild the image from the bundle's own
    // sources, in an empty store, with no network (a network namespace
    // without interfaces), and compare every byte with what was signed.
    let mut rebuild = Command::new("unshare");
    rebuild
        .arg("-n")
        .arg(&airlock)
        .arg("rebuild")
        .arg(&bundle)
        .arg("--check")
        .arg("--trust")
        .arg(&trust);
    run(&mut rebuild)?;
    // Boot the verified bundle on the user-mode network, with listeners on
    // the host for the agent's allowed (10.0.2.100:47180) and forbidden
    // (10.0.2.100:47181) destinations, until the agent reports.
    // The disk image, as the far side assembles it from the verified
    // bundle, boots through UEFI firmware with Secure Boot enforced and
    // the demo's keys enrolled (virt-fw-vars, from target/sbom-tools).
    let heard = listen(&[47180, 47181])?;
    let state = demo.join("host-state");
    let tools = sbom_tools()?;
    let path = env::join_paths(
        std::iter::once(tools).chain(env::split_paths(&env::var_os("PATH").unwrap_or_default())),
    )
    .map_err(|e| e.to_string())?;
    run(Command::new(&airlock)
        .arg("boot")
        .arg(&bundle)
        .arg("--trust")
        .arg(&trust)
        .arg("--state")
        .arg(&state)
        .arg("--uefi")
        .arg("--secure-boot")
        .arg(keys.join("secure-boot"))
        .arg("--data")
        .arg(demo.join("machine"))
        .env("PATH", path)
        .args([
            "--guest-forward",
            "10.0.2.100:47180=47180",
            "--guest-forward",
            "10.0.2.100:47181=47181",
            "--until",
            "airlock-agent: done",
            "--timeout",
            "600",
        ]))?;
    std::thread::sleep(std::time::Duration::from_secs(1));
    let heard: Vec<String> = heard.try_iter().collect();
    eprintln!("demo: the host's listeners heard:");
    for line in &heard {
        eprintln!("      {line}");
    }
    if !heard
        .iter()
        .any(|l| l.starts_with("47180: airlock-agent model-sha256="))
    {
        return Err("the agent's allowed connection did not reach the host".to_owned());
    }
    if heard.iter().any(|l| l.starts_with("47181")) {
        return Err("the agent reached a forbidden port".to_owned());
    }
    eprintln!(
        "demo: recipes/agent-node.toml is locked, its inputs are in the store, its image is in {}, its boot files are signed for Secure Boot, a bundle signed by 2 of 3 (demo keys in target/demo/keys) is verified in {}, rebuilt offline from its own sources byte for byte, and its disk image booted through UEFI with Secure Boot enforced: the agent ran sandboxed, reached only its allowed destination, and reported",
        image.display(),
        bundle.display()
    );
    eprintln!(
        "      boot it yourself: {} boot {} --trust {} --network (direct kernel boot), or add --uefi --secure-boot {} (virt-fw-vars on PATH)",
        airlock.display(),
        bundle.display(),
        trust.display(),
        keys.join("secure-boot").display()
    );
    Ok(())
}

/// Listens on 127.0.0.1 at each port; every connection's first line comes
/// back as "PORT: LINE".
fn listen(ports: &[u16]) -> Result<std::sync::mpsc::Receiver<String>, String> {
    use std::io::BufRead;
    let (sender, receiver) = std::sync::mpsc::channel();
    for &port in ports {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .map_err(|e| format!("127.0.0.1:{port} (the demo listens there): {e}"))?;
        let sender = sender.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut line = String::new();
                let _ = std::io::BufReader::new(stream).read_line(&mut line);
                let _ = sender.send(format!("{port}: {}", line.trim_end()));
            }
        });
    }
    Ok(receiver)
}

fn ci() -> Result<(), String> {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // Tests that need the network or outside tools are gated by environment
    // variables; CI turns every one of them on.
    // `--all-targets` builds target/debug/airlock before any test runs; the
    // boot tests drive that binary instead of building it again with the
    // feature set of `cargo build -p airlock`.
    let sbom_tools = sbom_tools()?;
    let tested = run(cargo()
        .args(["test", "--workspace", "--all-targets"])
        .env("AIRLOCK_TEST_NETWORK", "1")
        .env("AIRLOCK_TEST_RELEASE", "1")
        .env("AIRLOCK_REQUIRE_TOOLS", "1")
        .env("AIRLOCK_SBOM_TOOLS", sbom_tools)
        .env("AIRLOCK_BIN", root().join("target/debug/airlock")));
    // The boot tests' shared images outlive their binaries (each binary
    // removes those of the ones before it): the last one's go here.
    let _ = fs::remove_dir_all(std::env::temp_dir().join("airlock-qemu-tests"));
    tested?;
    // The fuzz targets must keep building (on stable, without sanitizers),
    // and every committed seed and past finding must still run clean.
    run(cargo().args(["build", "--manifest-path", "fuzz/Cargo.toml", "--bins"]))?;
    replay_fuzz_inputs()?;
    // airlock's own supply chain: licenses, banned crates and sources
    // (deny.toml), checked offline.
    cargo_deny()?;
    run(cargo().args(["deny", "check", "licenses", "bans", "sources"]))?;
    Ok(())
}

/// The cargo-deny CI pins, installed from crates.io when missing.
const CARGO_DENY: &str = "0.20.2";

fn cargo_deny() -> Result<(), String> {
    let installed = cargo().args(["deny", "--version"]).output().is_ok_and(|o| {
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains(CARGO_DENY)
    });
    if installed {
        return Ok(());
    }
    run(cargo().args(["install", "--locked", "cargo-deny", "--version", CARGO_DENY]))
}

/// A virtualenv in target/ with the SBOM validators; its bin folder.
fn sbom_tools() -> Result<PathBuf, String> {
    let venv = root().join("target/sbom-tools");
    let bin = venv.join("bin");
    if ["pyspdxtools", "ntia-checker", "virt-fw-vars"]
        .iter()
        .any(|tool| !bin.join(tool).is_file())
    {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(bin.join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(SBOM_TOOLS))?;
    }
    Ok(bin)
}

/// The fuzz targets, from fuzz/Cargo.toml's `[[bin]]` names.
fn fuzz_targets() -> Result<Vec<String>, String> {
    let manifest = fs::read_to_string(root().join("fuzz/Cargo.toml"))
        .map_err(|e| format!("fuzz/Cargo.toml: {e}"))?;
    let targets: Vec<String> = manifest
        .lines()
        .filter_map(|line| line.strip_prefix("name = \""))
        .filter_map(|rest| rest.strip_suffix('"'))
        .filter(|name| *name != "airlock-fuzz")
        .map(str::to_owned)
        .collect();
    if targets.is_empty() {
        return Err("fuzz/Cargo.toml names no fuzz target".to_owned());
    }
    Ok(targets)
}

/// A target's committed inputs: fuzz/seeds/TARGET (real inputs) and
/// fuzz/regressions/TARGET (what fuzzing once found), those that exist.
fn fuzz_inputs(target: &str) -> Vec<PathBuf> {
    ["fuzz/seeds", "fuzz/regressions"]
        .iter()
        .map(|dir| root().join(dir).join(target))
        .filter(|dir| dir.is_dir())
        .collect()
}

/// Runs every committed input once through its target's stable build (a
/// libFuzzer binary given files runs each one and exits).
fn replay_fuzz_inputs() -> Result<(), String> {
    for target in fuzz_targets()? {
        let mut files = Vec::new();
        for dir in fuzz_inputs(&target) {
            for entry in fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
                let path = entry.map_err(|e| e.to_string())?.path();
                if path.is_file() {
                    files.push(path);
                }
            }
        }
        if files.is_empty() {
            return Err(format!(
                "fuzz target {target} has no committed seeds in fuzz/seeds/{target}"
            ));
        }
        files.sort();
        eprintln!(
            "replaying {} committed inputs through fuzz target {target}",
            files.len()
        );
        run(Command::new(root().join("fuzz/target/debug").join(&target))
            .args(&files)
            .stdout(std::process::Stdio::null()))?;
    }
    Ok(())
}

/// Fuzzes every target for `seconds` each with cargo-fuzz (nightly, with
/// sanitizers), starting from the committed seeds; what it learns goes to
/// fuzz/corpus/TARGET (git-ignored), what it finds to fuzz/artifacts.
fn fuzz(seconds: &str) -> Result<(), String> {
    seconds
        .parse::<u64>()
        .map_err(|_| format!("cargo xtask fuzz SECONDS: {seconds:?} is not a number"))?;
    let probe = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(["fuzz", "--version"])
        .output()
        .map_err(|e| format!("cargo fuzz: {e} (cargo install cargo-fuzz)"))?;
    if !probe.status.success() {
        return Err(
            "cargo fuzz is missing (cargo install cargo-fuzz; a nightly toolchain is needed)"
                .to_owned(),
        );
    }
    for target in fuzz_targets()? {
        let corpus = root().join("fuzz/corpus").join(&target);
        fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
        run(Command::new("cargo")
            .args(["+nightly", "fuzz", "run", &target])
            .arg(&corpus)
            .args(fuzz_inputs(&target))
            .args(["--", &format!("-max_total_time={seconds}")])
            .current_dir(root()))?;
    }
    Ok(())
}
