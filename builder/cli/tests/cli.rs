//! End-to-end tests of the `airlock` binary against a signed Debian
//! repository that the tests build and serve on 127.0.0.1. One test binary
//! for the whole CLI; tests that need the real archive are gated (see
//! `real_archive`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use airlock_fixtures::{DebSpec, RepoSpec, Server, TestKey, write_repo};

const DAY: i64 = 86400;

struct Env {
    dir: tempfile::TempDir,
    server: Server,
    key: TestKey,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn packages() -> Vec<DebSpec> {
    vec![
        DebSpec::new("base-files", "12.4")
            .field("Essential", "yes")
            .field("Priority", "required"),
        DebSpec::new("libc6", "2.36-9").field("Priority", "required"),
        DebSpec::new("mawk", "1.3.4")
            .field("Priority", "required")
            .field("Provides", "awk"),
        DebSpec::new("gawk", "5.2.1")
            .field("Priority", "optional")
            .field("Provides", "awk"),
        DebSpec::new("app", "1.0").field("Depends", "libc6 (>= 2.30), awk"),
        DebSpec::new("tool", "2.0").field("Depends", "libfoo (>= 1.5) | libfoo-compat"),
        DebSpec::new("libfoo", "1.0"),
        DebSpec::new("libfoo-compat", "1.0").field("Provides", "libfoo-api (= 1.0)"),
        DebSpec::new("spoiler", "1.0").field("Conflicts", "app"),
        DebSpec::new("needs-ghost", "1.0").field("Depends", "ghost (>= 1)"),
    ]
}

const RECIPE: &str = r#"schema = 1

[image]
name = "fixture"
version = 1
epoch = 1700000000

[archive]
suites = ["test"]
keyring = "keyring.pgp"

[packages]
install = ["app", "tool"]
"#;

impl Env {
    /// A repository signed by a fresh key, valid for a week, and a recipe
    /// whose keyring is that key.
    fn new() -> Env {
        Env::with(|_| {})
    }

    fn with(adjust: impl FnOnce(&mut RepoSpec)) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let key = TestKey::generate("archive");
        let mut spec = RepoSpec {
            suite: "test".to_owned(),
            packages: packages(),
            date: now() - DAY,
            valid_until: Some(now() + 7 * DAY),
        };
        adjust(&mut spec);
        write_repo(&dir.path().join("repo"), &spec, &key);
        std::fs::create_dir_all(dir.path().join("recipe")).unwrap();
        std::fs::write(dir.path().join("recipe/keyring.pgp"), key.public_keyring()).unwrap();
        std::fs::write(dir.path().join("recipe/fixture.toml"), RECIPE).unwrap();
        let server = Server::serve(&dir.path().join("repo"));
        Env { dir, server, key }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn recipe(&self) -> PathBuf {
        self.path("recipe/fixture.toml")
    }

    fn write_recipe(&self, text: &str) {
        std::fs::write(self.recipe(), text).unwrap();
    }

    fn airlock(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_airlock"))
            .args(args)
            .arg("--store")
            .arg(self.path("store"))
            .env_remove("AIRLOCK_MIRROR")
            .env_remove("AIRLOCK_STORE")
            .output()
            .unwrap()
    }

    fn lock(&self, extra: &[&str]) -> Output {
        let recipe = self.recipe();
        let mut args = vec![
            "lock",
            recipe.to_str().unwrap(),
            "--mirror",
            self.server.url(),
        ];
        args.extend_from_slice(extra);
        self.airlock(&args)
    }

    fn fetch(&self, extra: &[&str]) -> Output {
        self.fetch_command().args(extra).output().unwrap()
    }

    /// `airlock fetch` of the fixture recipe, not yet run.
    fn fetch_command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_airlock"));
        command
            .arg("fetch")
            .arg(self.recipe())
            .args(["--mirror", self.server.url(), "--store"])
            .arg(self.path("store"))
            .env_remove("AIRLOCK_MIRROR")
            .env_remove("AIRLOCK_STORE");
        command
    }

    fn lock_text(&self) -> String {
        std::fs::read_to_string(self.path("recipe/fixture.lock")).unwrap()
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        stderr(output)
    );
}

/// Runs `airlock store verify --json`, expects success, and returns how many
/// entries were fine.
fn verified_entries(env: &Env) -> u64 {
    let output = env.airlock(&["store", "verify", "--json"]);
    assert_exit(&output, 0);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    report["ok"].as_u64().unwrap()
}

fn locked_names(lock: &str) -> Vec<String> {
    let lock = airlock_recipe_lock(lock);
    lock.packages.into_iter().map(|p| p.name).collect()
}

fn airlock_recipe_lock(text: &str) -> airlock_recipe::Lock {
    airlock_recipe::Lock::parse(Path::new("fixture.lock"), text).unwrap()
}

#[test]
fn version_names_the_binary_by_its_sha256() {
    use sha2::Digest;
    let binary = env!("CARGO_BIN_EXE_airlock");
    let digest = hex::encode(sha2::Sha256::digest(std::fs::read(binary).unwrap()));
    for flag in ["--version", "-V"] {
        let output = Command::new(binary).arg(flag).output().unwrap();
        assert_exit(&output, 0);
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            format!("airlock {} (sha256 {digest})", env!("CARGO_PKG_VERSION"))
        );
    }
    // The digest is the binary's, not a constant: a copy with one byte
    // appended (still a valid ELF) names another.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("airlock");
    let mut bytes = std::fs::read(binary).unwrap();
    bytes.push(0);
    std::fs::write(&copy, &bytes).unwrap();
    std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let output = Command::new(&copy).arg("--version").output().unwrap();
    let other = hex::encode(sha2::Sha256::digest(&bytes));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(&other),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn lock_resolves_alternatives_virtuals_and_the_base_set_deterministically() {
    let env = Env::new();
    let output = env.lock(&["--json"]);
    assert_exit(&output, 0);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["status"], "written");
    assert_eq!(report["packages"], 6);
    let first = env.lock_text();
    // minbase brings base-files, libc6 and mawk; awk is satisfied by mawk (the
    // more important provider); libfoo is too old, so libfoo-compat.
    assert_eq!(
        locked_names(&first),
        [
            "app",
            "base-files",
            "libc6",
            "libfoo-compat",
            "mawk",
            "tool"
        ]
    );
    let lock = airlock_recipe_lock(&first);
    let app = lock.packages.iter().find(|p| p.name == "app").unwrap();
    assert_eq!(app.filename, "pool/main/app_1.0_amd64.deb");
    assert_eq!(app.suite, "test");
    assert_eq!(lock.archive.suites[0].codename, "test");

    // a second lock with --update resolves again and writes the same bytes
    let output = env.lock(&["--update", "--json"]);
    assert_exit(&output, 0);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["status"], "unchanged");
    assert_eq!(env.lock_text(), first);

    // without --update a matching lock is left alone and the mirror untouched
    let requests = env.server.requests();
    assert_exit(&env.lock(&[]), 0);
    assert_eq!(env.server.requests(), requests);
}

#[test]
fn lock_update_replaces_an_unreadable_lock() {
    let env = Env::new();
    std::fs::write(env.path("recipe/fixture.lock"), "version = 99\n").unwrap();
    let output = env.lock(&[]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("lock format 99 is not supported"),
        "{}",
        stderr(&output)
    );
    let output = env.lock(&["--update"]);
    assert_exit(&output, 0);
    assert!(
        stderr(&output).contains("replacing unreadable"),
        "{}",
        stderr(&output)
    );
    assert_exit(&env.lock(&["--check"]), 0);
}

#[test]
fn lock_check_fails_on_a_stale_lock() {
    let env = Env::new();
    assert_exit(&env.lock(&["--check"]), 1);
    assert_exit(&env.lock(&[]), 0);
    assert_exit(&env.lock(&["--check"]), 0);
    env.write_recipe(&RECIPE.replace("version = 1", "version = 2"));
    let output = env.lock(&["--check"]);
    assert_exit(&output, 1);
    let text = stderr(&output);
    assert!(
        text.contains("fixture.lock: lock is stale: it was made for recipe sha256:"),
        "{text}"
    );
    assert!(text.contains("run `airlock lock --update`"), "{text}");
    // fetch refuses it too
    assert_exit(&env.fetch(&[]), 1);
}

#[test]
fn fetch_cold_then_warm_without_network() {
    let env = Env::new();
    assert_exit(&env.lock(&[]), 0);
    let output = env.fetch(&["--json"]);
    assert_exit(&output, 0);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (report["downloaded"].as_u64(), report["present"].as_u64()),
        (Some(6), Some(0))
    );

    let requests = env.server.requests();
    let output = env.fetch(&["--json"]);
    assert_exit(&output, 0);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (report["downloaded"].as_u64(), report["present"].as_u64()),
        (Some(0), Some(6))
    );
    assert_eq!(
        env.server.requests(),
        requests,
        "a warm fetch makes no request"
    );
    assert_exit(&env.fetch(&["--offline"]), 0);

    // 6 packages, the InRelease and the Packages index
    assert_eq!(verified_entries(&env), 8);
}

#[test]
fn fetch_offline_lists_what_is_missing() {
    let env = Env::new();
    assert_exit(&env.lock(&[]), 0);
    let output = env.fetch(&["--offline"]);
    assert_exit(&output, 1);
    let text = stderr(&output);
    assert!(
        text.contains("--offline: 6 inputs are not in the store"),
        "{text}"
    );
    assert!(text.contains("app_1.0_amd64.deb sha256:"), "{text}");
}

#[test]
fn truncated_download_is_resumed_and_verified() {
    let env = Env::new();
    assert_exit(&env.lock(&[]), 0);
    env.server
        .faults
        .lock()
        .unwrap()
        .truncate_once
        .insert("/pool/main/app_1.0_amd64.deb".to_owned());
    assert_exit(&env.fetch(&[]), 0);
    let log = env.server.log();
    let ranged: Vec<_> = log.iter().filter(|line| line.contains("bytes=")).collect();
    assert_eq!(ranged.len(), 1, "one resumed request: {log:?}");
    assert!(
        ranged[0].starts_with("GET /pool/main/app_1.0_amd64.deb bytes="),
        "{log:?}"
    );
    assert_exit(&env.airlock(&["store", "verify"]), 0);
}

#[test]
fn truncated_download_restarts_when_the_server_cannot_resume() {
    let env = Env::new();
    assert_exit(&env.lock(&[]), 0);
    {
        let mut faults = env.server.faults.lock().unwrap();
        faults
            .truncate_once
            .insert("/pool/main/tool_2.0_amd64.deb".to_owned());
        faults.ignore_range = true;
    }
    assert_exit(&env.fetch(&[]), 0);
    assert_exit(&env.airlock(&["store", "verify"]), 0);
}

#[test]
fn killed_fetch_leaves_no_entry_and_the_next_one_resumes() {
    let env = Env::new();
    assert_exit(&env.lock(&[]), 0);
    let lock = airlock_recipe_lock(&env.lock_text());
    let app = lock
        .packages
        .iter()
        .find(|p| p.name == "app")
        .unwrap()
        .clone();
    let path = "/pool/main/app_1.0_amd64.deb".to_owned();
    env.server.faults.lock().unwrap().stall.insert(path.clone());

    let mut child = env
        .fetch_command()
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until half of app's .deb has landed in its partial file.
    let partial = env
        .path("store/partial")
        .join(format!("{}.part", app.sha256));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < app.size / 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the download never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let entry = env
        .path("store/sha256")
        .join(&app.sha256.to_hex()[..2])
        .join(app.sha256.to_hex());
    assert!(!entry.exists(), "a killed download must not leave an entry");
    assert_exit(&env.airlock(&["store", "verify"]), 0);

    env.server.faults.lock().unwrap().stall.clear();
    assert_exit(&env.fetch(&[]), 0);
    let resumed = format!("GET {path} bytes={}-", app.size / 2);
    assert!(
        env.server.log().contains(&resumed),
        "expected {resumed:?} in {:?}",
        env.server.log()
    );
    assert!(entry.exists());
    assert_exit(&env.airlock(&["store", "verify"]), 0);
}

/// Descendants of `pid` (from /proc): (pid, command name).
fn descendants(pid: u32) -> Vec<(u32, String)> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …; comm may hold spaces, so split after ')'.
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c).to_owned();
        let ppid: u32 = tail
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        all.push((child, ppid, comm));
    }
    let mut out = Vec::new();
    let mut parents = vec![pid];
    while let Some(parent) = parents.pop() {
        for (child, ppid, comm) in &all {
            if *ppid == parent {
                out.push((*child, comm.clone()));
                parents.push(*child);
            }
        }
    }
    out
}

fn alive(pid: u32, comm: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.contains(&format!("({comm})"))
            && !stat
                .rsplit_once(')')
                .is_some_and(|(_, t)| t.trim_start().starts_with('Z'))
    })
}

/// Regression: a build killed with SIGKILL while writing the EROFS root
/// and the ostree commit left its `.build-*` folder for good, and its
/// mkfs.erofs and ostree children ran on. Killed at several points, the
/// build leaves no child running, and the next build removes the folder.
#[test]
fn a_killed_build_takes_its_children_with_it_and_the_next_build_clears_its_folder() {
    let formats = trust::formats();
    let full = formats.contains("erofs");
    let env = Env::with(|spec| spec.packages = build_packages());
    env.write_recipe(&trust::with_model(&env, &build_recipe(formats)));
    assert_exit(&env.lock(&[]), 0);
    let output = env.path("out");
    let parent = output.join("fixture");
    let spawn_build = |path: Option<String>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_airlock"));
        command
            .arg("build")
            .arg(env.recipe())
            .arg("--output")
            .arg(&output)
            .arg("--store")
            .arg(env.path("store"))
            .args(["--mirror", env.server.url()])
            .env_remove("AIRLOCK_MIRROR")
            .env_remove("AIRLOCK_STORE")
            .stderr(std::process::Stdio::null());
        if let Some(path) = path {
            command.env("PATH", path);
        }
        command.spawn().unwrap()
    };
    let work_file = |name: &str| -> Option<PathBuf> {
        std::fs::read_dir(&parent).ok()?.flatten().find_map(|e| {
            let path = e.path();
            (e.file_name().to_string_lossy().starts_with(".build-") && path.join(name).exists())
                .then_some(path)
        })
    };
    let points: &[&str] = if full {
        &[
            "blobs",
            "staging",
            "image/root.erofs",
            "image/rootfs.tar.zst",
        ]
    } else {
        &["blobs", "image/rootfs.tar.zst"]
    };
    let mut killed_mid_build = 0;
    for point in points {
        let mut child = spawn_build(None);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let mut finished = false;
        while work_file(point).is_none() {
            if child.try_wait().unwrap().is_some() {
                finished = true;
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{point} never appeared"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let running = descendants(child.id());
        child.kill().ok();
        child.wait().unwrap();
        // No child outlives the build (they get SIGKILL from the kernel).
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        for (pid, comm) in &running {
            while alive(*pid, comm) {
                assert!(
                    std::time::Instant::now() < until,
                    "{comm} ({pid}) outlived the killed build"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        // Only the old state or the new: no image folder without its report.
        for entry in std::fs::read_dir(&parent).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                assert!(
                    entry.path().join("build-report.json").is_file(),
                    "{name} is incomplete"
                );
            }
        }
        if !finished && work_file("").is_some() {
            killed_mid_build += 1;
        }
        // Start again from nothing for the next point.
        if let Ok(dir) = std::fs::read_dir(&parent) {
            for entry in dir.flatten() {
                if !entry.file_name().to_string_lossy().starts_with('.') {
                    std::fs::remove_dir_all(entry.path()).unwrap();
                }
            }
        }
    }
    assert!(killed_mid_build > 0, "no kill landed inside a build");
    if full {
        // A tool that would run for ten minutes (an mkfs.erofs that only
        // sleeps): killing the build must end it at once.
        let fake = env.path("fake-bin");
        std::fs::create_dir_all(&fake).unwrap();
        std::fs::write(fake.join("mkfs.erofs"), "#!/bin/sh\nexec sleep 600\n").unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                fake.join("mkfs.erofs"),
                std::fs::Permissions::from_mode(0o755),
            )
            .unwrap();
        }
        let path = format!(
            "{}:{}",
            fake.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = spawn_build(Some(path));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let sleeper = loop {
            if let Some(found) = descendants(child.id())
                .into_iter()
                .find(|(_, c)| c == "sleep")
            {
                break found;
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "the build ended without running mkfs.erofs"
            );
            assert!(std::time::Instant::now() < deadline, "mkfs.erofs never ran");
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        child.kill().unwrap();
        child.wait().unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while alive(sleeper.0, &sleeper.1) {
            assert!(
                std::time::Instant::now() < until,
                "mkfs.erofs (pid {}) outlived the killed build",
                sleeper.0
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    // The next build runs and clears every folder the killed ones left.
    assert!(
        work_file("").is_some(),
        "the killed builds left their folders"
    );
    let rebuilt = env.airlock(&[
        "build",
        env.recipe().to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--mirror",
        env.server.url(),
    ]);
    assert_exit(&rebuilt, 0);
    assert!(
        stderr(&rebuilt).contains("killed builds left"),
        "{}",
        stderr(&rebuilt)
    );
    assert_eq!(work_file(""), None, "nothing temporary is left");
}

#[test]
fn two_processes_share_one_store() {
    let env = Env::new();
    assert_exit(&env.lock(&[]), 0);
    let spawn = || env.fetch_command().output();
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(spawn);
        let second = scope.spawn(spawn);
        (
            first.join().unwrap().unwrap(),
            second.join().unwrap().unwrap(),
        )
    });
    assert_exit(&first, 0);
    assert_exit(&second, 0);
    assert_eq!(verified_entries(&env), 8);
}

#[test]
fn deb_hash_mismatch_names_the_file_and_both_digests() {
    let env = Env::new();
    assert_exit(&env.lock(&[]), 0);
    let lock = airlock_recipe_lock(&env.lock_text());
    let app = lock.packages.iter().find(|p| p.name == "app").unwrap();
    // the mirror now serves other bytes of the same size
    let path = env.path("repo/pool/main/app_1.0_amd64.deb");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let actual = airlock_recipe::Sha256::of(&bytes);

    let output = env.fetch(&[]);
    assert_exit(&output, 1);
    let text = stderr(&output);
    assert!(text.contains("1 of 6 downloads failed"), "{text}");
    assert!(
        text.contains(&format!(
            "app_1.0_amd64.deb: sha256 mismatch: expected {}, got {actual}",
            app.sha256
        )),
        "{text}"
    );
    // nothing unverified was stored
    let store_path = env
        .path("store/sha256")
        .join(&app.sha256.to_hex()[..2])
        .join(app.sha256.to_hex());
    assert!(!store_path.exists());
    assert_eq!(std::fs::read_dir(env.path("store/tmp")).unwrap().count(), 0);
}

#[test]
fn packages_index_hash_mismatch_is_rejected() {
    let env = Env::new();
    let path = env.path("repo/dists/test/main/binary-amd64/Packages.xz");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let output = env.lock(&[]);
    assert_exit(&output, 1);
    let text = stderr(&output);
    assert!(
        text.contains("/dists/test/main/binary-amd64/Packages.xz: sha256 mismatch: expected "),
        "{text}"
    );
    assert!(
        text.contains(&format!(", got {}", airlock_recipe::Sha256::of(&bytes))),
        "{text}"
    );
    assert!(!env.path("recipe/fixture.lock").exists());
}

#[test]
fn inrelease_signed_by_another_key_is_rejected() {
    let env = Env::new();
    let stranger = TestKey::generate("stranger");
    std::fs::write(env.path("recipe/keyring.pgp"), stranger.public_keyring()).unwrap();
    let output = env.lock(&[]);
    assert_exit(&output, 1);
    let text = stderr(&output);
    assert!(
        text.contains(
            "/dists/test/InRelease: suite test: InRelease is not signed by any key in the keyring"
        ),
        "{text}"
    );
    assert!(text.contains("(not in the keyring)"), "{text}");
    drop(env.key);
}

#[test]
fn tampered_inrelease_is_rejected() {
    let env = Env::new();
    let path = env.path("repo/dists/test/InRelease");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("Codename: test", "Codename: evil")).unwrap();
    let output = env.lock(&[]);
    assert_exit(&output, 1);
    assert!(stderr(&output).contains("InRelease"), "{}", stderr(&output));
}

#[test]
fn expired_valid_until_is_rejected_unless_insecurely_overridden() {
    let env = Env::with(|spec| {
        spec.date = now() - 30 * DAY;
        spec.valid_until = Some(now() - 20 * DAY);
    });
    let output = env.lock(&[]);
    assert_exit(&output, 1);
    let text = stderr(&output);
    assert!(
        text.contains("Release for test expired: Valid-Until is "),
        "{text}"
    );
    assert!(text.contains(", now is "), "{text}");
    assert_exit(&env.lock(&["--insecure-ignore-valid-until"]), 0);
}

#[test]
fn unsatisfiable_request_names_package_relation_and_candidates() {
    let env = Env::new();
    env.write_recipe(&RECIPE.replace(
        r#"install = ["app", "tool"]"#,
        r#"install = ["needs-ghost", "app", "spoiler"]"#,
    ));
    let output = env.lock(&[]);
    assert_exit(&output, 1);
    let text = stderr(&output);
    assert!(
        text.contains("cannot satisfy the package request"),
        "{text}"
    );
    assert!(text.contains("ghost (>= 1)"), "{text}");
    assert!(
        text.contains("needs-ghost 1.0 needs ghost (>= 1): no package or provider of that name"),
        "{text}"
    );

    env.write_recipe(&RECIPE.replace(
        r#"install = ["app", "tool"]"#,
        r#"install = ["tool (>= 3)"]"#,
    ));
    let text = stderr(&env.lock(&[]));
    assert!(
        text.contains("the recipe needs tool (>= 3): rejected tool 2.0 (version does not match)"),
        "{text}"
    );
}

#[test]
fn malformed_recipes_are_usage_errors_with_locations() {
    let env = Env::new();
    env.write_recipe(&RECIPE.replace("epoch = 1700000000", "epoch = 1700000000\nepohc = 1"));
    let output = env.lock(&[]);
    assert_exit(&output, 2);
    let text = stderr(&output);
    assert!(
        text.contains("fixture.toml:7:1: unknown field `epohc`, expected one of"),
        "{text}"
    );

    env.write_recipe(&RECIPE.replace("version = 1", "version = \"one\""));
    let text = stderr(&env.lock(&[]));
    assert!(
        text.contains("fixture.toml:5:11: invalid type: string \"one\", expected u64"),
        "{text}"
    );

    std::fs::write(
        env.path("recipe/other.toml"),
        "include = [\"fixture.toml\"]\nschema = 1\n",
    )
    .unwrap();
    env.write_recipe(&format!("include = [\"other.toml\"]\n{RECIPE}"));
    let output = env.lock(&[]);
    assert_exit(&output, 2);
    let text = stderr(&output);
    assert!(text.contains("other.toml:1:12: include loop:"), "{text}");

    let output = env.airlock(&["lock"]);
    assert_exit(&output, 2);
}

#[test]
fn gc_keeps_what_locks_reference() {
    let env = Env::new();
    assert_exit(&env.lock(&[]), 0);
    assert_exit(&env.fetch(&[]), 0);
    // drop a package from the recipe and re-lock: its .deb is now garbage
    env.write_recipe(&RECIPE.replace(r#"install = ["app", "tool"]"#, r#"install = ["app"]"#));
    assert_exit(&env.lock(&[]), 0);
    let lock = env.path("recipe/fixture.lock");
    let output = env.airlock(&["gc", "--keep", lock.to_str().unwrap(), "--json"]);
    assert_exit(&output, 0);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // tool, libfoo-compat and the Packages index go; 4 packages and InRelease stay
    assert_eq!(report["removed"].as_array().unwrap().len(), 3, "{report}");
    assert_eq!(report["kept"], 5);
    assert_exit(&env.fetch(&["--offline"]), 0);
}

#[test]
fn store_verify_reports_corruption() {
    let env = Env::new();
    assert_exit(&env.lock(&[]), 0);
    assert_exit(&env.fetch(&[]), 0);
    let lock = airlock_recipe_lock(&env.lock_text());
    let hex = lock.packages[0].sha256.to_hex();
    let entry = env.path("store/sha256").join(&hex[..2]).join(&hex);
    let mut permissions = std::fs::metadata(&entry).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o644);
    std::fs::set_permissions(&entry, permissions).unwrap();
    std::fs::write(&entry, b"rotten").unwrap();
    let output = env.airlock(&["store", "verify"]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains(&format!("corrupt: {}", entry.display())),
        "{}",
        stderr(&output)
    );
}

/// Locks and fetches recipes/minimal.toml from the real Debian archive through
/// the host's apt sources. Needs the network, so it runs only with
/// AIRLOCK_TEST_NETWORK=1 (CI sets it; `cargo xtask ci` does too).
#[test]
fn real_archive() {
    if !airlock_fixtures::gate::network("the real-archive round trip") {
        return;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    // Copy the recipe and its keyring, so the committed lock is not touched.
    std::fs::create_dir_all(dir.path().join("recipes")).unwrap();
    std::fs::create_dir_all(dir.path().join("keys/debian")).unwrap();
    std::fs::copy(
        workspace.join("recipes/minimal.toml"),
        dir.path().join("recipes/minimal.toml"),
    )
    .unwrap();
    std::fs::copy(
        workspace.join("keys/debian/bookworm.pgp"),
        dir.path().join("keys/debian/bookworm.pgp"),
    )
    .unwrap();
    let airlock = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_airlock"))
            .args(args)
            .arg("--store")
            .arg(dir.path().join("store"))
            .current_dir(dir.path())
            .env_remove("AIRLOCK_MIRROR")
            .output()
            .unwrap()
    };
    let output = airlock(&["lock", "recipes/minimal.toml"]);
    assert_exit(&output, 0);
    let first = std::fs::read_to_string(dir.path().join("recipes/minimal.lock")).unwrap();
    let names = locked_names(&first);
    for needed in [
        "systemd",
        "systemd-sysv",
        "nftables",
        "linux-image-cloud-amd64",
        "base-files",
        "libc6",
        "apt",
    ] {
        assert!(
            names.iter().any(|n| n == needed),
            "{needed} missing from {names:?}"
        );
    }
    assert_exit(&airlock(&["lock", "recipes/minimal.toml", "--update"]), 0);
    let second = std::fs::read_to_string(dir.path().join("recipes/minimal.lock")).unwrap();
    assert_eq!(
        first, second,
        "two locks of the same archive state are identical"
    );

    assert_exit(&airlock(&["fetch", "recipes/minimal.toml"]), 0);
    let output = airlock(&["fetch", "recipes/minimal.toml", "--offline", "--json"]);
    assert_exit(&output, 0);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["downloaded"], 0);
    assert_eq!(report["present"].as_u64(), Some(names.len() as u64));

    // Build it twice under different conditions (the second into a new
    // store, which the build fills from the archive): identical bytes.
    let recipe = dir.path().join("recipes/minimal.toml");
    let first = build_in(
        dir.path(),
        &recipe,
        None,
        &Conditions {
            store: "store",
            output: "out-a",
            tmp: "tmp-a",
            umask: "022",
            tz: "UTC",
            lang: "C.UTF-8",
            threads: "2",
            faketime: None,
        },
    );
    assert_exit(&first, 0);
    let second = build_in(
        dir.path(),
        &recipe,
        None,
        &Conditions {
            store: "store-b",
            output: "b/out-b",
            tmp: "tmp-b",
            umask: "077",
            tz: "America/St_Johns",
            lang: "fr_FR.UTF-8",
            threads: "1",
            faketime: have("faketime").then_some("2033-02-03 04:05:06"),
        },
    );
    assert_exit(&second, 0);
    let (a, b) = (
        image_dir_of(&dir.path().join("out-a"), "minimal"),
        image_dir_of(&dir.path().join("b/out-b"), "minimal"),
    );
    let (da, db) = (digests(&a), digests(&b));
    assert_eq!(
        da, db,
        "every artifact of the minimal image is byte-identical"
    );
    for name in [
        "rootfs.tar.zst",
        "root.erofs",
        "root.verity",
        "vmlinuz",
        "initrd.img",
        "ostree",
    ] {
        assert!(da.contains_key(name), "{name} missing: {da:?}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&read_to_string(&a.join("build-report.json"))).unwrap();
    // The minimal recipe acknowledges nothing, so no step is left undone
    // (the build would have failed); what notes there are name the
    // failing exits the walk took as not reached (libc6's checks of the
    // machine it runs on), with package, script and line.
    let notes: Vec<&str> = report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for note in &notes {
        assert!(
            note.starts_with("maintainer script check assumed to pass: ")
                && (note.contains(" postinst line ") || note.contains(" preinst line ")),
            "{note}"
        );
    }
    // The caches airlock builds are in the image (and so in the
    // double-build comparison above).
    let listing = Command::new("tar")
        .arg("-tf")
        .arg(a.join("rootfs.tar.zst"))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    for cache in [
        "etc/ld.so.cache",
        "usr/lib/udev/hwdb.bin",
        "var/lib/systemd/catalog/database",
    ] {
        assert!(listing.lines().any(|l| l == cache), "{cache} missing");
    }
    let root = dir.path().join("root");
    untar(&a, &root);
    // What libpam-runtime's and base-files' scripts would have made.
    let auth = read_to_string(&root.join("etc/pam.d/common-auth"));
    assert!(
        auth.contains("auth\t[success=1 default=ignore]\tpam_unix.so nullok\n"),
        "{auth}"
    );
    assert_eq!(
        std::fs::read_link(root.join("var/run")).unwrap(),
        Path::new("/run")
    );
    assert!(root.join("etc/profile").is_file() && root.join("etc/nsswitch.conf").is_file());
    // dpkg sees every locked package installed, and nothing modified.
    let list = Command::new("dpkg-query")
        .arg(format!("--admindir={}/var/lib/dpkg", root.display()))
        .args(["-W", "-f", "${db:Status-Abbrev}\\n"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    assert_eq!(
        list.lines().filter(|l| l.trim() == "ii").count(),
        names.len(),
        "{list}"
    );
    let verify = Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .arg("--verify")
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", stderr(&verify));
    assert_eq!(String::from_utf8_lossy(&verify.stdout), "");
    // kmod finds modules through airlock's indexes, by name and by alias,
    // as it does through depmod's.
    let kernel = report["kernel"].as_str().unwrap();
    if have("modprobe") {
        let probe = |args: &[&str]| {
            let output = Command::new("modprobe")
                .arg("-d")
                .arg(&root)
                .args(["-S", kernel])
                .args(args)
                .output()
                .unwrap();
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        };
        assert_eq!(probe(&["-R", "nfnetlink-subsys-10"]), "nf_tables");
        assert_eq!(probe(&["-R", "fs-erofs"]), "erofs");
        assert_eq!(probe(&["-R", "virtio:d00000002v00001AF4"]), "virtio_blk");
        let depends = probe(&["--show-depends", "dm-verity"]);
        for needed in ["dm-mod.ko", "dm-bufio.ko", "dm-verity.ko"] {
            assert!(depends.contains(needed), "{depends}");
        }
    }
    if is_root() {
        cross_check_erofs_verity_ostree(&a, &report, &root);
        caches_are_what_the_images_own_tools_write(&root);
    }
}

/// The image's own ldconfig, systemd-hwdb and journalctl, run in a chroot
/// of its root (an oracle for this test only: airlock never runs them),
/// write byte for byte the caches airlock wrote natively.
fn caches_are_what_the_images_own_tools_write(root: &Path) {
    let chroot = |args: &[&str]| {
        let output = Command::new("chroot")
            .arg(root)
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    };
    let check = |path: &str, tool: &[&str], written: &str| {
        let ours = std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("/{path}: {e}"));
        if written == path {
            std::fs::remove_file(root.join(path)).unwrap();
        }
        chroot(tool);
        let theirs = std::fs::read(root.join(written)).unwrap();
        assert!(
            ours == theirs,
            "/{path}: airlock's {} bytes differ from {tool:?}'s {}",
            ours.len(),
            theirs.len()
        );
    };
    check(
        "etc/ld.so.cache",
        &["/sbin/ldconfig", "-X", "-C", "/tmp/ld.so.cache.oracle"],
        "tmp/ld.so.cache.oracle",
    );
    check(
        "usr/lib/udev/hwdb.bin",
        &["/usr/bin/systemd-hwdb", "--usr", "update"],
        "usr/lib/udev/hwdb.bin",
    );
    check(
        "var/lib/systemd/catalog/database",
        &["/usr/bin/journalctl", "--update-catalog"],
        "var/lib/systemd/catalog/database",
    );
}

#[test]
fn completions_and_man_page_are_generated_from_the_cli() {
    let output = Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_exit(&output, 0);
    let script = String::from_utf8(output.stdout).unwrap();
    assert!(
        script.contains("_airlock()") && script.contains("--insecure-ignore-valid-until"),
        "{script}"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_airlock"))
        .arg("man")
        .output()
        .unwrap();
    assert_exit(&output, 0);
    let man = String::from_utf8(output.stdout).unwrap();
    assert!(man.contains(".TH airlock"), "{man}");
    assert!(man.contains("Exit codes"), "{man}");
}

// ---------------------------------------------------------------------------
// airlock build

/// Packages for build tests: enough to exercise every native configuration
/// step (accounts, alternatives, units, conffiles, the dpkg database).
fn build_packages() -> Vec<DebSpec> {
    vec![
        DebSpec::new("base-passwd", "3.6.1")
            .field("Essential", "yes")
            .file(
                "usr/share/base-passwd/passwd.master",
                b"root:*:0:0:root:/root:/bin/sh\ndaemon:*:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
            )
            .file(
                "usr/share/base-passwd/group.master",
                b"root:*:0:\ndaemon:*:1:\nshadow:*:42:\n",
            ),
        DebSpec::new("mawk", "1.3.4")
            .field("Provides", "awk")
            .file("usr/bin/mawk", b"\x7fELF mawk")
            .file(
                "usr/share/doc/mawk/copyright",
                b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: mawk\n\nFiles: *\nCopyright: 2009 Thomas E. Dickey\nLicense: GPL-2\n\nFiles: debian/*\nCopyright: 2020 Debian\nLicense: GPL-2 or Expat\n",
            )
            .control_file(
                "postinst",
                b"#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n  update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\\n    --slave /usr/bin/nawk nawk /usr/bin/mawk\nfi\n",
            ),
        DebSpec::new("daemon", "2.0")
            .field("Depends", "awk")
            .file(
                "lib/systemd/system/daemon.service",
                b"[Unit]\nDescription=d\n[Service]\nExecStart=/usr/bin/mawk\n[Install]\nWantedBy=multi-user.target\nAlias=d.service\n",
            )
            .file("usr/lib/sysusers.d/daemon.conf", b"u daemon-user - \"The daemon\" /var/lib/daemon\n")
            .file("etc/daemon.conf", b"setting = 1\n")
            .control_file("conffiles", b"/etc/daemon.conf\n")
            .control_file(
                "postinst",
                b"#!/bin/sh\nif deb-systemd-helper --quiet was-enabled 'daemon.service'; then\n  deb-systemd-helper enable 'daemon.service' >/dev/null || true\nfi\n",
            ),
    ]
}

fn build_recipe(formats: &str) -> String {
    format!(
        r#"schema = 1

[image]
name = "fixture"
version = 3
epoch = 1700000000
hostname = "node"

[archive]
suites = ["test"]
keyring = "keyring.pgp"

[packages]
base = "essential"
install = ["daemon"]

[[users]]
name = "operator1"
system = false
groups = ["daemon"]
authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f ops@lab"]

[files.inline."/etc/motd"]
content = "authorized use only\n"

[files.inline."/etc/daemon.d/secret"]
content = "x\n"
mode = 0o640
group = "daemon"

[output]
formats = {formats}
"#
    )
}

/// Whether `tool` is here (through the one test gate: under
/// AIRLOCK_REQUIRE_TOOLS a missing tool fails).
fn have(tool: &str) -> bool {
    let package = match tool {
        "mkfs.erofs" | "fsck.erofs" => "erofs-utils",
        "veritysetup" => "cryptsetup-bin",
        "modprobe" => "kmod",
        "gpg" => "gnupg",
        other => other,
    };
    airlock_fixtures::gate::tool(tool, package)
}

/// Whether the tests run as root (through the one test gate: under
/// AIRLOCK_REQUIRE_TOOLS not being root fails).
fn is_root() -> bool {
    airlock_fixtures::gate::root(
        "writing mkfs.erofs images (whose staging tree carries file owners) and building as nobody",
    )
}

/// Every file below `dir` (relative path → sha256), symlinks as targets.
fn digests(dir: &Path) -> std::collections::BTreeMap<String, String> {
    airlock_fixtures::tree_digests(dir)
}

/// Conditions one build runs under.
struct Conditions<'a> {
    store: &'a str,
    output: &'a str,
    tmp: &'a str,
    umask: &'a str,
    tz: &'a str,
    lang: &'a str,
    threads: &'a str,
    faketime: Option<&'a str>,
}

fn build_under(env: &Env, c: &Conditions<'_>) -> Output {
    build_in(env.dir.path(), &env.recipe(), Some(env.server.url()), c)
}

/// `airlock build` with every path below `base`, under conditions `c`.
fn build_in(base: &Path, recipe: &Path, mirror: Option<&str>, c: &Conditions<'_>) -> Output {
    build_as(base, recipe, mirror, c, None)
}

/// [`build_in`], as `user` (with setpriv) when given.
fn build_as(
    base: &Path,
    recipe: &Path,
    mirror: Option<&str>,
    c: &Conditions<'_>,
    user: Option<&str>,
) -> Output {
    for dir in [c.tmp, c.output] {
        std::fs::create_dir_all(base.join(dir)).unwrap();
    }
    let mut script = format!("umask {}; exec ", c.umask);
    if let Some(user) = user {
        script += &format!("setpriv --reuid {user} --regid nogroup --clear-groups ");
    }
    if let Some(time) = c.faketime {
        script += &format!("faketime '{time}' ");
    }
    script += "\"$@\"";
    let mut command = Command::new("sh");
    command
        .args(["-c", &script, "sh", env!("CARGO_BIN_EXE_airlock"), "build"])
        .arg(recipe)
        .arg("--output")
        .arg(base.join(c.output))
        .arg("--store")
        .arg(base.join(c.store))
        .env("TMPDIR", base.join(c.tmp))
        .env("TZ", c.tz)
        .env("LANG", c.lang)
        .env("LC_ALL", c.lang)
        .env("RAYON_NUM_THREADS", c.threads)
        .env_remove("AIRLOCK_MIRROR")
        .env_remove("AIRLOCK_STORE");
    if let Some(mirror) = mirror {
        command.args(["--mirror", mirror]);
    }
    command.output().unwrap()
}

fn image_dir(output: &Path) -> PathBuf {
    image_dir_of(output, "fixture")
}

fn image_dir_of(output: &Path, name: &str) -> PathBuf {
    airlock_fixtures::only_image(&output.join(name))
}

fn untar(image: &Path, to: &Path) {
    let file = std::fs::File::open(image.join("rootfs.tar.zst")).unwrap();
    let mut archive = tar::Archive::new(zstd::stream::read::Decoder::new(file).unwrap());
    archive.set_preserve_permissions(true);
    archive.unpack(to).unwrap();
}

/// The formats airlock writes itself (tar, the uncompressed EROFS root with
/// its dm-verity tree, ostree) build without root: once as root (or the
/// user running the tests) and once as `nobody` with another umask, clock,
/// time zone, locale, thread count and folder, to the same bytes.
#[test]
fn a_native_build_needs_no_root_and_is_reproducible() {
    let root = is_root();
    if !root {
        eprintln!("note: not root, so both builds run as this user");
    }
    let env = Env::with(|spec| spec.packages = build_packages());
    let recipe = build_recipe(r#"["tar", "erofs", "ostree"]"#)
        .replace("[output]\n", "[output]\nerofs_compression = \"none\"\n");
    assert!(recipe.contains("erofs_compression"), "{recipe}");
    env.write_recipe(&trust::with_model(&env, &recipe));
    assert_exit(&env.lock(&[]), 0);
    let first = build_under(
        &env,
        &Conditions {
            store: "store-a",
            output: "out-a",
            tmp: "tmp-a",
            umask: "022",
            tz: "UTC",
            lang: "C.UTF-8",
            threads: "1",
            faketime: None,
        },
    );
    assert_exit(&first, 0);
    let user = root.then_some("nobody");
    if root {
        use std::os::unix::fs::MetadataExt;
        // nobody can read the recipe and its lock and write only its own
        // folders.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut stack = vec![env.path("recipe")];
        while let Some(path) = stack.pop() {
            let meta = std::fs::metadata(&path).unwrap();
            let extra = if meta.is_dir() { 0o555 } else { 0o444 };
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(meta.mode() | extra))
                .unwrap();
            if meta.is_dir() {
                stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            }
        }
        for dir in ["store-b", "elsewhere", "elsewhere/out-b", "tmp-b"] {
            std::fs::create_dir_all(env.path(dir)).unwrap();
            std::os::unix::fs::chown(env.path(dir), Some(65534), Some(65534)).unwrap();
        }
    }
    let second = build_as(
        env.dir.path(),
        &env.recipe(),
        Some(env.server.url()),
        &Conditions {
            store: "store-b",
            output: "elsewhere/out-b",
            tmp: "tmp-b",
            umask: "077",
            tz: "Pacific/Kiritimati",
            lang: "de_DE.UTF-8",
            threads: "2",
            faketime: have("faketime").then_some("2031-07-04 12:00:00"),
        },
        user,
    );
    assert_exit(&second, 0);
    let (a, b) = (
        image_dir(&env.path("out-a")),
        image_dir(&env.path("elsewhere/out-b")),
    );
    let (da, db) = (digests(&a), digests(&b));
    assert_eq!(da, db, "every artifact is byte-identical");
    for name in ["root.erofs", "root.verity", "ostree", "rootfs.tar.zst"] {
        assert!(da.contains_key(name), "{name} missing from {da:?}");
    }
    if root {
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(b.join("root.erofs")).unwrap().uid();
        assert_eq!(owner, 65534, "written by nobody");
    }
    // The tools agree with what airlock wrote, when they are here.
    if have("fsck.erofs") {
        let fsck = Command::new("fsck.erofs")
            .arg(b.join("root.erofs"))
            .output()
            .unwrap();
        assert!(
            fsck.status.success(),
            "{}",
            String::from_utf8_lossy(&fsck.stderr)
        );
    }
    if have("ostree") {
        let fsck = Command::new("ostree")
            .arg(format!("--repo={}", b.join("ostree").display()))
            .arg("fsck")
            .output()
            .unwrap();
        assert!(
            fsck.status.success(),
            "{}",
            String::from_utf8_lossy(&fsck.stderr)
        );
    }
    if have("veritysetup") {
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(b.join("build-report.json")).unwrap()).unwrap();
        let root_hash = report["verity"]["root_hash"].as_str().unwrap();
        let verify = Command::new("veritysetup")
            .args([
                "verify",
                "--no-superblock",
                "--hash=sha256",
                "--data-block-size=4096",
                "--hash-block-size=4096",
            ])
            .arg(format!(
                "--salt={}",
                report["verity"]["salt"].as_str().unwrap()
            ))
            .arg(b.join("root.erofs"))
            .arg(b.join("root.verity"))
            .arg(root_hash)
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "{}",
            String::from_utf8_lossy(&verify.stderr)
        );
    }
}

#[test]
fn build_is_reproducible_across_paths_umask_locale_clock_and_threads() {
    let full = have("mkfs.erofs") && have("ostree") && is_root();
    let faketime = have("faketime");
    let formats = if full {
        r#"["tar", "erofs", "ostree"]"#
    } else {
        r#"["tar"]"#
    };
    let env = Env::with(|spec| spec.packages = build_packages());
    env.write_recipe(&trust::with_model(&env, &build_recipe(formats)));
    assert_exit(&env.lock(&[]), 0);
    let first = build_under(
        &env,
        &Conditions {
            store: "store-a",
            output: "out-a",
            tmp: "tmp-a",
            umask: "022",
            tz: "UTC",
            lang: "C.UTF-8",
            threads: "1",
            faketime: None,
        },
    );
    assert_exit(&first, 0);
    // The recipe's overlay made again in the other order: another
    // directory order on disk, the same image.
    trust::write_overlay(&env, true);
    let second = build_under(
        &env,
        &Conditions {
            store: "store-b",
            output: "elsewhere/out-b",
            tmp: "tmp-b",
            umask: "077",
            tz: "Pacific/Kiritimati",
            lang: "de_DE.UTF-8",
            threads: "2",
            faketime: faketime.then_some("2031-07-04 12:00:00"),
        },
    );
    assert_exit(&second, 0);
    let (a, b) = (
        image_dir(&env.path("out-a")),
        image_dir(&env.path("elsewhere/out-b")),
    );
    assert_eq!(
        a.file_name(),
        b.file_name(),
        "the inputs digest names the folder"
    );
    let (da, db) = (digests(&a), digests(&b));
    assert_eq!(da, db, "every artifact is byte-identical");
    let expected: &[&str] = if full {
        &[
            "build-report.json",
            "root.erofs",
            "root.verity",
            "rootfs.tar.zst",
            "ostree",
            "sbom.cdx.json",
            "sbom.spdx.json",
            "sbom.spdx3.json",
            "recipe.json",
            "lock.toml",
            ".airlock-build.json",
            "sources/files.json",
        ]
    } else {
        &[
            "build-report.json",
            "rootfs.tar.zst",
            "sbom.cdx.json",
            "sbom.spdx.json",
            "sbom.spdx3.json",
            "recipe.json",
            "lock.toml",
            ".airlock-build.json",
            "sources/files.json",
        ]
    };
    for name in expected {
        assert!(da.contains_key(*name), "{name} missing from {da:?}");
    }
    // Nothing is left behind but the image folder.
    let left: Vec<_> = std::fs::read_dir(env.path("out-a/fixture"))
        .unwrap()
        .collect();
    assert_eq!(left.len(), 1);

    // The same inputs again: a cache hit that changes nothing.
    let again_conditions = Conditions {
        store: "store-a",
        output: "out-a",
        tmp: "tmp-a",
        umask: "022",
        tz: "UTC",
        lang: "C",
        threads: "2",
        faketime: None,
    };
    let again = build_under(&env, &again_conditions);
    assert_exit(&again, 0);
    assert!(stderr(&again).contains("up to date"), "{}", stderr(&again));
    assert_eq!(digests(&a), da);
    // Another airlock binary (another cache key) with the same version and
    // inputs: no reuse. The folder is built again, to the same bytes, and
    // replaced whole.
    let built_path = a.join(".airlock-build.json");
    let mut built: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&built_path).unwrap()).unwrap();
    assert_eq!(built["cache_key"].as_str().unwrap().len(), 64, "{built}");
    assert_eq!(
        built["airlock_sha256"].as_str().unwrap(),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            std::fs::read(env!("CARGO_BIN_EXE_airlock")).unwrap()
        )),
        "the binary that built it"
    );
    built["cache_key"] = serde_json::Value::from("0".repeat(64));
    std::fs::write(&built_path, built.to_string()).unwrap();
    let other = build_under(&env, &again_conditions);
    assert_exit(&other, 0);
    assert!(!stderr(&other).contains("up to date"), "{}", stderr(&other));
    assert_eq!(digests(&a), da, "rebuilt to the same bytes, key restored");
    assert_eq!(
        std::fs::read_dir(env.path("out-a/fixture"))
            .unwrap()
            .count(),
        1,
        "the replaced folder is gone"
    );

    // What native configuration made.
    let root = env.path("root");
    untar(&a, &root);
    let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap();
    // The model, read-only, from the store, byte for byte.
    {
        use std::os::unix::fs::MetadataExt;
        let model = root.join("opt/models/tiny.gguf");
        assert_eq!(std::fs::read(&model).unwrap(), trust::MODEL);
        assert_eq!(std::fs::metadata(&model).unwrap().mode() & 0o7777, 0o444);
        // The component, executable and read-only, likewise.
        let tool = root.join("usr/bin/host-tool");
        assert_eq!(std::fs::read(&tool).unwrap(), trust::TOOL);
        assert_eq!(std::fs::metadata(&tool).unwrap().mode() & 0o7777, 0o555);
    }
    let passwd = read("etc/passwd");
    assert!(
        passwd.starts_with("root:x:0:0:root:/root:/bin/sh\n"),
        "{passwd}"
    );
    assert!(
        passwd.contains("daemon-user:x:999:999:The daemon:/var/lib/daemon:/usr/sbin/nologin\n"),
        "{passwd}"
    );
    assert!(
        passwd.contains("operator1:x:1000:1000::/home/operator1:/usr/sbin/nologin\n"),
        "{passwd}"
    );
    assert!(read("etc/group").contains("daemon:x:1:operator1\n"));
    // The operator's key, as sshd's StrictModes wants it: theirs, 0700/0600.
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            read("home/operator1/.ssh/authorized_keys"),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f ops@lab\n"
        );
        for (path, mode) in [
            ("home/operator1", 0o750),
            ("home/operator1/.ssh", 0o700),
            ("home/operator1/.ssh/authorized_keys", 0o600),
        ] {
            let meta = std::fs::symlink_metadata(root.join(path)).unwrap();
            assert_eq!(meta.mode() & 0o7777, mode, "{path}");
        }
        // The owners, from the archive's headers.
        let file = std::fs::File::open(a.join("rootfs.tar.zst")).unwrap();
        let mut archive = tar::Archive::new(zstd::stream::read::Decoder::new(file).unwrap());
        let owners: Vec<(String, u64, u64)> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let path = entry.path().unwrap().display().to_string();
                let header = entry.header();
                (path, header.uid().unwrap(), header.gid().unwrap())
            })
            .filter(|(path, _, _)| path.starts_with("home/operator1"))
            .collect();
        assert_eq!(owners.len(), 3, "{owners:?}");
        assert!(
            owners
                .iter()
                .all(|(_, uid, gid)| (*uid, *gid) == (1000, 1000)),
            "{owners:?}"
        );
    }
    assert!(read("etc/shadow").contains("operator1:*:19675:0:99999:7:::\n"));
    let link = |path: &str| {
        std::fs::read_link(root.join(path))
            .unwrap()
            .display()
            .to_string()
    };
    assert_eq!(link("usr/bin/awk"), "/etc/alternatives/awk");
    assert_eq!(link("etc/alternatives/awk"), "/usr/bin/mawk");
    assert_eq!(link("etc/alternatives/nawk"), "/usr/bin/mawk");
    assert_eq!(
        link("etc/systemd/system/multi-user.target.wants/daemon.service"),
        "/lib/systemd/system/daemon.service"
    );
    assert_eq!(
        link("etc/systemd/system/d.service"),
        "/lib/systemd/system/daemon.service"
    );
    assert_eq!(link("etc/localtime"), "/usr/share/zoneinfo/Etc/UTC");
    assert_eq!(read("etc/hostname"), "node\n");
    assert_eq!(read("etc/machine-id"), "");
    assert_eq!(read("etc/motd"), "authorized use only\n");
    let status = read("var/lib/dpkg/status");
    assert_eq!(
        status.matches("Status: install ok installed\n").count(),
        3,
        "{status}"
    );
    assert!(
        status.contains("Conffiles:\n /etc/daemon.conf "),
        "{status}"
    );
    assert!(read("var/lib/dpkg/info/daemon.list").contains("/lib/systemd/system/daemon.service\n"));
    let report: serde_json::Value =
        serde_json::from_str(&read_to_string(&a.join("build-report.json"))).unwrap();
    assert_eq!(report["packages"], 3);
    assert_eq!(report["version"], 3);

    if have("dpkg") {
        let verify = Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .arg("--verify")
            .output()
            .unwrap();
        assert!(verify.status.success(), "{}", stderr(&verify));
        assert_eq!(
            String::from_utf8_lossy(&verify.stdout),
            "",
            "dpkg --verify reports nothing"
        );
        let list = Command::new("dpkg-query")
            .arg(format!("--admindir={}/var/lib/dpkg", root.display()))
            .args(["-W", "-f", "${db:Status-Abbrev}${Package}\\n"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&list.stdout),
            "ii base-passwd\nii daemon\nii mawk\n"
        );
    }
    if full {
        cross_check_erofs_verity_ostree(&a, &report, &root);
    }
}

fn read_to_string(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// The EROFS root against the tar, its hash tree with veritysetup, the
/// ostree commit with ostree fsck.
fn cross_check_erofs_verity_ostree(image: &Path, report: &serde_json::Value, tar_root: &Path) {
    let verity = &report["verity"];
    if have("veritysetup") {
        let output = Command::new("veritysetup")
            .arg("verify")
            .arg(image.join("root.erofs"))
            .arg(image.join("root.verity"))
            .arg(verity["root_hash"].as_str().unwrap())
            .args([
                "--no-superblock",
                "--hash=sha256",
                "--data-block-size=4096",
                "--hash-block-size=4096",
            ])
            .arg(format!("--data-blocks={}", verity["data_blocks"]))
            .arg(format!("--salt={}", verity["salt"].as_str().unwrap()))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "veritysetup verify: {}",
            stderr(&output)
        );
    }
    if have("fsck.erofs") {
        let extracted = image
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("erofs-root");
        let output = Command::new("fsck.erofs")
            .arg(format!("--extract={}", extracted.display()))
            .arg(image.join("root.erofs"))
            .output()
            .unwrap();
        assert!(output.status.success(), "fsck.erofs: {}", stderr(&output));
        assert_eq!(
            digests(&extracted),
            digests(tar_root),
            "EROFS and tar hold the same tree"
        );
    }
    let repo = image.join("ostree");
    let fsck = Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .arg("fsck")
        .output()
        .unwrap();
    assert!(fsck.status.success(), "ostree fsck: {}", stderr(&fsck));
    let ls = Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .args([
            "ls",
            "-R",
            report["ostree_commit"].as_str().unwrap(),
            "/etc",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&ls.stdout).contains("/etc/passwd"),
        "{}",
        String::from_utf8_lossy(&ls.stdout)
    );
}

#[test]
fn build_refuses_a_stale_lock_and_a_failed_build_leaves_nothing() {
    let env = Env::with(|spec| spec.packages = build_packages());
    env.write_recipe(&build_recipe(r#"["tar"]"#));
    let recipe = env.recipe();
    let recipe = recipe.to_str().unwrap();
    let output = env.path("out");
    let output = output.to_str().unwrap();

    let missing = env.airlock(&["build", recipe, "--output", output]);
    assert_exit(&missing, 2);
    assert!(
        stderr(&missing).contains("run `airlock lock` first"),
        "{}",
        stderr(&missing)
    );

    assert_exit(&env.lock(&[]), 0);
    let offline = env.airlock(&["build", recipe, "--output", output, "--offline"]);
    assert_exit(&offline, 1);
    assert!(
        stderr(&offline).contains("daemon_2.0"),
        "{}",
        stderr(&offline)
    );

    env.write_recipe(&build_recipe(r#"["tar"]"#).replace("version = 3", "version = 4"));
    let stale = env.airlock(&["build", recipe, "--output", output]);
    assert_exit(&stale, 1);
    assert!(stderr(&stale).contains("stale"), "{}", stderr(&stale));

    // A unit that is not in the image: the build fails after unpacking, and
    // nothing that looks like an image is left.
    env.write_recipe(&format!(
        "{}\n[services]\nenable = [\"ghost.service\"]\n",
        build_recipe(r#"["tar"]"#)
    ));
    assert_exit(&env.lock(&["--update"]), 0);
    let failed = env.airlock(&[
        "build",
        recipe,
        "--output",
        output,
        "--mirror",
        env.server.url(),
    ]);
    assert_exit(&failed, 1);
    assert!(
        stderr(&failed).contains("ghost.service: no such unit in the image"),
        "{}",
        stderr(&failed)
    );
    // The image's first build failed: not even its name's folder is left.
    assert!(
        !env.path("out/fixture").exists(),
        "left behind: {:?}",
        std::fs::read_dir(env.path("out/fixture")).map(|d| d.count())
    );
}

/// A maintainer-script step airlock does not do fails the build, named by
/// package, script, line and command; acknowledged in the recipe with a
/// reason, the build goes on and the build report's notes say so.
#[test]
fn a_script_step_airlock_does_not_do_fails_the_build_unless_acknowledged() {
    let env = Env::with(|spec| {
        spec.packages = build_packages();
        spec.packages
            .push(DebSpec::new("gizmo", "1.0").control_file(
            "postinst",
            b"#!/bin/sh\nset -e\ngizmo-setup --now /etc/gizmo\nadduser --system --group gizmo\n",
        ));
        spec.packages.push(
            DebSpec::new("broken", "1.0").control_file("postinst", b"#!/bin/sh\nif then ( fi\n"),
        );
    });
    let recipe_text = build_recipe(r#"["tar"]"#).replace(
        "install = [\"daemon\"]",
        "install = [\"daemon\", \"gizmo\", \"broken\"]",
    );
    env.write_recipe(&recipe_text);
    let recipe = env.recipe();
    let recipe = recipe.to_str().unwrap();
    assert_exit(&env.lock(&[]), 0);
    let build = |output: &str| {
        env.airlock(&[
            "build",
            recipe,
            "--output",
            env.path(output).to_str().unwrap(),
            "--mirror",
            env.server.url(),
        ])
    };
    let refused = build("out-a");
    assert_exit(&refused, 1);
    let message = stderr(&refused);
    assert!(
        message.contains("gizmo postinst line 3: `gizmo-setup --now /etc/gizmo`"),
        "{message}"
    );
    // A script that is not shell at all: nothing of it is done, and it says so.
    assert!(
        message.contains("broken postinst line 1: `(the whole script)`")
            && message.contains("not valid shell"),
        "{message}"
    );
    assert!(
        message.contains("acknowledge = { \"broken\" = ") && message.contains(", \"gizmo\" = "),
        "the error says how to acknowledge: {message}"
    );
    assert!(
        !message.contains("adduser"),
        "the adduser is done natively, not a gap: {message}"
    );
    assert!(
        !env.path("out-a/fixture").exists(),
        "a refused build leaves no image"
    );

    env.write_recipe(&recipe_text.replace(
        "install = [\"daemon\", \"gizmo\", \"broken\"]",
        "install = [\"daemon\", \"gizmo\", \"broken\"]\nacknowledge = { gizmo = \"the setup only prints a banner\", broken = \"its postinst does nothing on a fresh install\" }",
    ));
    assert_exit(&env.lock(&["--update"]), 0);
    assert_exit(&build("out-b"), 0);
    let folder = std::fs::read_dir(env.path("out-b").join("fixture"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let report: serde_json::Value =
        serde_json::from_str(&read_to_string(&folder.join("build-report.json"))).unwrap();
    let notes: Vec<&str> = report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains(
            "(acknowledged: the setup only prints a banner): gizmo postinst line 3: \
             `gizmo-setup --now /etc/gizmo`"
        )),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.contains(
            "(acknowledged: its postinst does nothing on a fresh install): broken postinst line 1"
        )),
        "{notes:?}"
    );
    let listing = Command::new("tar")
        .arg("-xOf")
        .arg(folder.join("rootfs.tar.zst"))
        .arg("etc/passwd")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listing.stdout).contains("\ngizmo:x:"),
        "the script's adduser is done: {}",
        String::from_utf8_lossy(&listing.stdout)
    );

    env.write_recipe(&recipe_text.replace(
        "install = [\"daemon\", \"gizmo\", \"broken\"]",
        "install = [\"daemon\", \"gizmo\", \"broken\"]\nacknowledge = { gizmo = \" \" }",
    ));
    let empty = env.airlock(&["lock", recipe, "--update"]);
    assert_exit(&empty, 2);
    assert!(
        stderr(&empty).contains("acknowledge gizmo"),
        "{}",
        stderr(&empty)
    );
}

// ---------------------------------------------------------------------------
// The trust chain: keygen, export, sign, verify, diff.

#[path = "cli/trust.rs"]
mod trust;

#[path = "cli/anchors.rs"]
mod anchors;

/// `airlock audit verify` and `export` on a log the agent runtime's
/// library wrote: a good log passes with its count and last digest, a
/// changed entry fails naming it (exit 1), export refuses a broken log.
#[test]
fn audit_verify_names_the_entry_that_breaks_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let key = airlock_audit::HostKey::from_seed(&[5; 64]);
    let public = dir.path().join("host-key.pub");
    std::fs::write(&public, key.public().to_text()).unwrap();
    let log = dir.path().join("actions.log");
    let mut writer =
        airlock_audit::Writer::open(&log, airlock_audit::HostKey::from_seed(&[5; 64])).unwrap();
    for i in 0..4u64 {
        writer
            .append(airlock_audit::Action {
                time: 1_800_000_000 + i,
                service: "tickets".into(),
                method: "POST".into(),
                path: format!("/api/{i}"),
                body_sha256: "0".repeat(64),
                decision: airlock_audit::Decision::Allowed,
                approver: None,
                status: Some(201),
            })
            .unwrap();
    }
    drop(writer);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_airlock"))
            .arg("audit")
            .args(args)
            .output()
            .unwrap()
    };
    let (log_arg, key_arg) = (log.to_str().unwrap(), public.to_str().unwrap());
    let good = run(&["verify", log_arg, "--key", key_arg, "--json"]);
    assert_exit(&good, 0);
    let report: serde_json::Value = serde_json::from_slice(&good.stdout).unwrap();
    assert_eq!(report["entries"], 4);
    assert_eq!(report["key"].as_str().unwrap(), key.public().fingerprint());
    assert!(stderr(&good).contains("4 entries"), "{}", stderr(&good));

    let exported = dir.path().join("for-the-auditor");
    let export = run(&[
        "export",
        log_arg,
        "--key",
        key_arg,
        "--to",
        exported.to_str().unwrap(),
    ]);
    assert_exit(&export, 0);
    assert_eq!(
        std::fs::read(exported.join("actions.log")).unwrap(),
        std::fs::read(&log).unwrap()
    );
    let summary = std::fs::read_to_string(exported.join("SUMMARY.txt")).unwrap();
    assert!(summary.contains("entries: 4\n"), "{summary}");

    let text = std::fs::read_to_string(&log).unwrap();
    let changed = text.replacen("/api/2", "/api/9", 1);
    assert_ne!(text, changed);
    std::fs::write(&log, changed).unwrap();
    let bad = run(&["verify", log_arg, "--key", key_arg]);
    assert_exit(&bad, 1);
    assert!(
        stderr(&bad).contains("broken at line 3 (entry 2): the Ed25519 signature does not verify"),
        "{}",
        stderr(&bad)
    );
    let refused = run(&[
        "export",
        log_arg,
        "--key",
        key_arg,
        "--to",
        dir.path().join("again").to_str().unwrap(),
    ]);
    assert_exit(&refused, 1);
    assert!(!dir.path().join("again").exists());
}
