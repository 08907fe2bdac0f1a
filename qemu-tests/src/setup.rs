//! What every boot-test binary needs before it boots anything: whether the
//! tests may run here, the `airlock` binary, one guest at a time, and the
//! workspace's recipes copied into a scratch folder.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether QEMU and the network tests are on (a missing QEMU fails under
/// AIRLOCK_REQUIRE_TOOLS).
pub fn enabled() -> bool {
    if !airlock_fixtures::gate::tool(airlock_boot::QEMU, "qemu-system-x86") {
        eprintln!("skipped: needs {}", airlock_boot::QEMU);
        return false;
    }
    airlock_fixtures::gate::network("booting a freshly locked image")
}

/// One boot at a time: two TCG guests on two cores only slow each other.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The folder (under the temporary folder) that holds [`shared_tempdir`]s.
pub const SHARED: &str = "airlock-qemu-tests";

/// A scratch folder for what a test binary builds once and keeps in a
/// static (its shared image). Rust never drops statics, so a plain
/// `TempDir` there would outlive the binary and, one binary after another,
/// fill the disk over a CI run. These are named after the process that
/// made them, and the first call in each binary removes those of
/// processes that are gone: at most one binary's leftovers stay.
pub fn shared_tempdir() -> tempfile::TempDir {
    static SWEPT: OnceLock<()> = OnceLock::new();
    let parent = std::env::temp_dir().join(SHARED);
    std::fs::create_dir_all(&parent).unwrap();
    SWEPT.get_or_init(|| {
        for entry in std::fs::read_dir(&parent).unwrap().flatten() {
            let name = entry.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.split_once('-'))
                .map(|(p, _)| p);
            let gone = pid.is_some_and(|pid| {
                pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists()
            });
            if gone {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
    tempfile::Builder::new()
        .prefix(&format!("{}-", std::process::id()))
        .tempdir_in(&parent)
        .unwrap()
}

/// The airlock binary (AIRLOCK_BIN, or built now).
pub fn airlock() -> PathBuf {
    if let Some(path) = std::env::var_os("AIRLOCK_BIN") {
        return PathBuf::from(path);
    }
    // The binary is not a dependency of this crate, so cargo does not
    // rebuild it for these tests: make sure it is current (a no-op when it
    // is, as under `cargo test --workspace`).
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| cargo_build("airlock")).clone()
}

/// `cargo build -p PACKAGE` in the workspace; its binary's path.
fn cargo_build(package: &str) -> PathBuf {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(["build", "-p", package])
        .current_dir(workspace())
        .status()
        .unwrap();
    assert!(status.success(), "cargo build -p {package} failed");
    workspace().join("target/debug").join(package)
}

/// Copies a folder tree (files and folders only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `airlock lock RECIPE` (a fresh lock against the host's apt sources),
/// then `airlock build RECIPE --output OUTPUT`: the folder of the image
/// named `name`.
pub fn lock_and_build(recipe: &Path, output: &Path, name: &str) -> PathBuf {
    for step in ["lock", "build"] {
        let mut command = Command::new(airlock());
        command.arg(step).arg(recipe);
        if step == "build" {
            command.arg("--output").arg(output);
        }
        let result = command.env_remove("AIRLOCK_MIRROR").output().unwrap();
        assert!(
            result.status.success(),
            "airlock {step} {}: {}",
            recipe.display(),
            String::from_utf8_lossy(&result.stderr)
        );
    }
    airlock_fixtures::only_image(&output.join(name))
}

/// The host tool (`airlock-host`, built now like [`airlock`], with its
/// debugging sections left out so the image stays small).
pub fn host_tool() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let built = cargo_build("airlock-host");
            let stripped =
                std::env::temp_dir().join(format!("airlock-host-stripped-{}", std::process::id()));
            let status = Command::new("objcopy")
                .arg("--strip-debug")
                .arg(built)
                .arg(&stripped)
                .status()
                .unwrap();
            assert!(status.success(), "objcopy --strip-debug airlock-host");
            stripped
        })
        .clone()
}

/// Puts the host tool beside the recipes under `root` and a recipe part,
/// `host-tool.toml`, that pins it as a `[[components]]` file at
/// /usr/bin/airlock-host with the libraries it links (nettle, for
/// OpenPGP). The tool's digest changes with airlock's source, so the part
/// is written here, not committed; releases pin the binary `cargo xtask
/// release` builds.
pub fn add_host_tool(recipes: &Path) {
    use sha2::Digest;
    let binary = recipes.join("host/airlock-host");
    std::fs::create_dir_all(binary.parent().unwrap()).unwrap();
    std::fs::copy(host_tool(), &binary).unwrap();
    let digest = hex::encode(sha2::Sha256::digest(std::fs::read(&binary).unwrap()));
    std::fs::write(
        recipes.join("host-tool.toml"),
        format!(
            "schema = 1\n\n[packages]\ninstall = [\"libnettle8\", \"libhogweed6\", \"libgmp10\"]\n\n\
             [[components]]\nname = \"airlock-host\"\nversion = \"{}\"\nsha256 = \"{digest}\"\n\
             path = \"host/airlock-host\"\ndestination = \"/usr/bin/airlock-host\"\nexecutable = true\n\
             license = \"Apache-2.0\"\n\
             copyright = \"Copyright 2026 the airlock authors\"\n",
            env!("CARGO_PKG_VERSION")
        ),
    )
    .unwrap();
}

/// Copies what qemu-tests/recipes/minimal-test.toml needs into `root` (a
/// scratch folder) and adds the host tool ([`add_host_tool`]) to its
/// include list; returns the recipes' folder (root/qemu-tests/recipes).
pub fn minimal_test_recipes(root: &Path) -> PathBuf {
    for file in ["recipes/minimal.toml", "keys/debian/bookworm.pgp"] {
        std::fs::create_dir_all(root.join(file).parent().unwrap()).unwrap();
        std::fs::copy(workspace().join(file), root.join(file)).unwrap();
    }
    for tree in ["qemu-tests/recipes", "qemu-tests/overlay"] {
        copy_tree(&workspace().join(tree), &root.join(tree));
    }
    let recipes = root.join("qemu-tests/recipes");
    add_host_tool(&recipes);
    let recipe = recipes.join("minimal-test.toml");
    let text = std::fs::read_to_string(&recipe).unwrap();
    let with_tool = text.replace(
        "\"test-channel.toml\"]",
        "\"test-channel.toml\", \"host-tool.toml\"]",
    );
    assert_ne!(text, with_tool, "minimal-test.toml's include list changed");
    std::fs::write(&recipe, with_tool).unwrap();
    recipes
}

/// [`minimal_test_recipes`], locked fresh against today's archive and
/// built into `root`/images: the image the boot, UEFI and install tests
/// boot.
pub fn minimal_test_image(root: &Path) -> PathBuf {
    let recipes = minimal_test_recipes(root);
    lock_and_build(
        &recipes.join("minimal-test.toml"),
        &root.join("images"),
        "minimal-test",
    )
}

pub fn rebuild_elsewhere(dir: &Path, recipe: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let other = tempfile::tempdir().unwrap();
    let root = other.path().join("elsewhere");
    std::fs::create_dir_all(&root).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let target = root.join(entry.file_name());
        if entry.file_name() == "images" {
            // Not copied: sparse disk images would be written out whole.
        } else if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
    let (output, tmp) = (other.path().join("out-b"), other.path().join("tmp-b"));
    std::fs::create_dir_all(&tmp).unwrap();
    let faketime = Command::new("sh")
        .args(["-c", "command -v faketime"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut script = "umask 077; exec ".to_owned();
    if faketime {
        script += "faketime '2031-07-04 12:00:00' ";
    }
    script += "\"$@\"";
    let status = Command::new("sh")
        .args(["-c", &script, "sh"])
        .arg(airlock())
        .arg("build")
        .arg(root.join(recipe))
        .arg("--output")
        .arg(&output)
        .env("TMPDIR", &tmp)
        .env("TZ", "Pacific/Kiritimati")
        .env("LANG", "de_DE.UTF-8")
        .env("LC_ALL", "de_DE.UTF-8")
        .env("RAYON_NUM_THREADS", "1")
        .env_remove("AIRLOCK_MIRROR")
        .status()
        .unwrap();
    assert!(status.success(), "the second build failed");
    let image = airlock_fixtures::only_image(&output.join(name));
    (other, image)
}

/// Makes an operator's SSH key in `root` and writes the recipe `recipe`
/// (relative to `root`) that includes `include` (relative to the recipe's
/// folder) and adds an operator who may log in with that key and nothing
/// else. Returns the private key's path.
pub fn operator_recipe(root: &Path, recipe: &str, include: &str, name: &str) -> PathBuf {
    let key = root.join("operator-key");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "operator@test", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success(), "ssh-keygen");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    std::fs::write(
        root.join(recipe),
        format!(
            "schema = 1\ninclude = [{include:?}]\n\n[image]\nname = {name:?}\n\n\
             [[users]]\nname = \"operator\"\nsystem = false\nhome = \"/home/operator\"\n\
             shell = \"/bin/bash\"\nauthorized_keys = [{:?}]\n",
            public.trim()
        ),
    )
    .unwrap();
    key
}

/// A TCP port free on the host's loopback now, for a forward into a guest.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `ssh` from the host into the guest (forwarded to `port`) as the
/// operator, with the test's key and nothing else (no password, no agent).
pub fn ssh(key: &Path, port: u16, command: &str) -> std::process::Output {
    Command::new("ssh")
        .arg("-i")
        .arg(key)
        .args(["-p", &port.to_string()])
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "PasswordAuthentication=no",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=20",
            "operator@127.0.0.1",
            command,
        ])
        .output()
        .unwrap()
}

/// Logs in as the operator and runs `id -un`, again every few seconds for
/// up to three minutes while sshd may still be starting; fails the test
/// unless the login succeeds as the operator.
pub fn assert_ssh_key_login(key: &Path, port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let login = loop {
        let output = ssh(key, port, "id -un");
        if output.status.success() || std::time::Instant::now() > deadline {
            break output;
        }
        std::thread::sleep(std::time::Duration::from_secs(5));
    };
    assert!(
        login.status.success(),
        "ssh key login: {}",
        String::from_utf8_lossy(&login.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&login.stdout).trim(), "operator");
}

/// Where busybox's first block lies in an EROFS root (dump.erofs's
/// extent listing): the corruption tests flip a bit there.
pub fn busybox_offset(erofs: &Path) -> u64 {
    let dump = Command::new("dump.erofs")
        .args(["--path=/usr/bin/busybox", "-e"])
        .arg(erofs)
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout).into_owned();
    dump.lines()
        .find_map(|line| {
            let (_, physical) = line
                .trim()
                .strip_prefix("0:")?
                .split_once('|')?
                .1
                .split_once(':')?;
            physical.split("..").next()?.trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("no extent in {dump}"))
}

/// After one bit of /usr/bin/busybox's first block was flipped (`where_`
/// says where): reading busybox fails with an I/O error, the kernel
/// reports the corrupted block, and every other file still reads.
pub fn assert_only_busybox_is_unreadable(machine: &mut crate::Machine, where_: &str) {
    let timeout = std::time::Duration::from_secs(120);
    let read = machine
        .run("cat /usr/bin/busybox > /dev/null", timeout)
        .unwrap();
    let kernel = machine
        .check(
            "dmesg | grep -i 'verity' | grep -i corrupt | head -3",
            timeout,
        )
        .unwrap();
    eprintln!(
        "corruption test: flipped one bit at {where_}, inside /usr/bin/busybox\n  cat /usr/bin/busybox: exit {}: {}\n  kernel: {kernel}",
        read.status, read.output
    );
    assert_ne!(read.status, 0, "reading the corrupted file fails");
    assert!(
        read.output.contains("Input/output error"),
        "{}",
        read.output
    );
    assert!(kernel.contains("is corrupted"), "{kernel}");
    // Everything else still reads.
    machine
        .check("cat /usr/bin/bash /usr/lib/os-release > /dev/null", timeout)
        .unwrap();
}

/// The image in `image_dir` exported as a bundle (split into 64 MiB parts), signed
/// by two of two throwaway approvers, with the host's trust directory.
#[derive(Debug)]
pub struct Bundle {
    _dir: tempfile::TempDir,
    /// The bundle's folder.
    pub bundle: PathBuf,
    /// The host's trust folder.
    pub trust: PathBuf,
    /// The host's state folder (not made yet).
    pub state: PathBuf,
}

impl Bundle {
    /// `boot BUNDLE --trust DIR --state DIR`.
    pub fn boot_args(&self) -> Vec<std::ffi::OsString> {
        vec![
            "boot".into(),
            self.bundle.clone().into(),
            "--trust".into(),
            self.trust.clone().into(),
            "--state".into(),
            self.state.clone().into(),
        ]
    }
}

pub fn bundle(image_dir: &Path) -> Bundle {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let trust = dir.path().join("trust");
    let airlock = || {
        let mut command = Command::new(airlock());
        command.env("AIRLOCK_KEY_PASSWORD", "test");
        command
    };
    let ok = |command: &mut Command| {
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{command:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    ok(airlock().args(["keygen", "--builder", "--out"]).arg(&keys));
    for who in ["alice", "bob"] {
        ok(airlock()
            .args(["keygen", "--release", who, "--out"])
            .arg(&keys));
        std::fs::create_dir_all(trust.join("release")).unwrap();
        std::fs::copy(
            keys.join(format!("{who}.asc")),
            trust.join(format!("release/{who}.asc")),
        )
        .unwrap();
    }
    std::fs::create_dir_all(trust.join("builder")).unwrap();
    std::fs::copy(keys.join("builder.pub"), trust.join("builder/builder.pub")).unwrap();
    std::fs::write(trust.join("trust.toml"), "threshold = 2\n").unwrap();
    let bundle = dir.path().join("bundle");
    ok(airlock()
        .arg("export")
        .arg(image_dir)
        .arg("--to")
        .arg(&bundle)
        .args([
            "--expires",
            "2099-01-01",
            "--chunk-size",
            "64M",
            "--builder-key",
        ])
        .arg(keys.join("builder.key")));
    assert!(bundle.join("artifacts/root.erofs.001").is_file());
    for who in ["alice", "bob"] {
        ok(airlock()
            .arg("sign")
            .arg(&bundle)
            .arg("--key")
            .arg(keys.join(format!("{who}.key"))));
    }
    let state = dir.path().join("state");
    Bundle {
        _dir: dir,
        bundle,
        trust,
        state,
    }
}

/// A tool of the test tools' virtualenv (AIRLOCK_SBOM_TOOLS, which `cargo
/// xtask ci` makes), else on PATH.
pub fn sbom_tool(name: &str) -> PathBuf {
    match std::env::var_os("AIRLOCK_SBOM_TOOLS") {
        Some(dir) => Path::new(&dir).join(name),
        None => PathBuf::from(name),
    }
}

/// The SBOMs of the image folder `image_dir` pass the buyers' checks:
/// `ntia-checker` (ntia-conformance-checker) finds the SPDX 3 document
/// conformant to NTIA's minimum elements, BSI TR-03183 and CISA's FSCT
/// minimum, and the SPDX 2.3 one to NTIA's and to every FSCT element but
/// the SBOM type (which the checker reads only from SPDX 3); the
/// CycloneDX strict validator and pyspdxtools accept theirs. Returns the
/// checker's reports, for the log.
pub fn assert_sboms_conform(image_dir: &Path) -> String {
    let checker = sbom_tool("ntia-checker");
    let run = |args: &[&str], file: &str| {
        let output = Command::new(&checker)
            .args(args)
            .arg(image_dir.join(file))
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", checker.display()));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    };
    let mut log = String::new();
    for comply in ["ntia", "bsi", "fsct3-min"] {
        let (ok, text) = run(&["-s", "spdx3", "-c", comply, "-v"], "sbom.spdx3.json");
        assert!(
            ok && text.contains("Conformant: True"),
            "SPDX 3, {comply}:\n{text}"
        );
        log += &text;
    }
    let (ok, text) = run(&["-c", "ntia"], "sbom.spdx.json");
    assert!(
        ok && text.contains("Conformant: True"),
        "SPDX 2.3, ntia:\n{text}"
    );
    log += &text;
    // fsct3-min on SPDX 2.3: every row true but the SBOM type's.
    let (_, text) = run(&["-c", "fsct3-min"], "sbom.spdx.json");
    for line in text.lines().filter(|l| l.contains('?')) {
        assert!(
            line.contains("True") || line.contains("SBOM type"),
            "SPDX 2.3, fsct3-min: {line}\n{text}"
        );
    }
    assert!(text.contains("SBOM type"), "{text}");
    log += &text;
    let spdx = Command::new(sbom_tool("pyspdxtools"))
        .arg("-i")
        .arg(image_dir.join("sbom.spdx.json"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&spdx.stderr);
    assert!(
        spdx.status.success() && !said.contains("ValidationMessage"),
        "{said}"
    );
    let script = "import sys\nfrom cyclonedx.schema import SchemaVersion\nfrom cyclonedx.validation.json import JsonStrictValidator\nerrors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\nif errors:\n    print(errors)\n    sys.exit(1)\n";
    let cyclonedx = Command::new(sbom_tool("python3"))
        .args(["-c", script])
        .arg(image_dir.join("sbom.cdx.json"))
        .output()
        .unwrap();
    assert!(
        cyclonedx.status.success(),
        "CycloneDX: {}",
        String::from_utf8_lossy(&cyclonedx.stdout)
    );
    log
}

/// virt-fw-vars: in the test tools' virtualenv, else on PATH.
pub fn virt_fw_vars() -> PathBuf {
    sbom_tool("virt-fw-vars")
}

/// A copy of the image folder `image` in `root` (sign-boot writes into
/// it), two Secure Boot key sets in root/keys ("ours", "theirs"), and the
/// copy signed with ours: (the copy, our keys).
pub fn signed_copy(image: &Path, root: &Path) -> (PathBuf, PathBuf) {
    let run = |command: &mut Command| {
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{command:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let image_dir = root.join("image");
    run(Command::new("cp")
        .args(["-a", "--sparse=always"])
        .arg(image)
        .arg(&image_dir));
    for name in ["ours", "theirs"] {
        run(Command::new(airlock())
            .args(["keygen", "--secure-boot", "--out"])
            .arg(root.join("keys"))
            .args(["--name", name]));
    }
    let keys = root.join("keys/ours");
    run(Command::new(airlock())
        .arg("sign-boot")
        .arg(&image_dir)
        .arg("--key")
        .arg(keys.join("db.key"))
        .arg("--cert")
        .arg(keys.join("db.crt")));
    (image_dir, keys)
}

/// The machine runs from slot A of a disk laid out as airlock's: the
/// verity root over vda3 with its hash tree on vda2, and /var on vda6.
pub fn assert_runs_from_slot_a(machine: &mut crate::Machine, timeout: std::time::Duration) {
    assert_eq!(
        machine
            .check("dmsetup deps -o devname airlock-root", timeout)
            .unwrap(),
        "2 dependencies\t: (vda3) (vda2)",
        "the root and its hash tree are slot A's partitions"
    );
    assert_eq!(
        machine.check("findmnt -no SOURCE /var", timeout).unwrap(),
        "/dev/vda6"
    );
}
