//! The trust chain end to end: a fixture image is built, exported, signed by
//! two of three approvers and verified against a 2-of-3 trust directory;
//! then every way a bundle can be tampered with is rejected with its own
//! error; independent tools (gpg, sq, openssl, the CycloneDX and SPDX
//! reference validators, ostree) confirm the artifacts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use super::{
    Conditions, Env, assert_exit, build_packages, build_recipe, build_under, have, image_dir,
    is_root, stderr,
};

const PASSWORD: &str = "correct horse battery staple";

/// A model file: the GGUF magic and a few bytes.
pub(super) const MODEL: &[u8] = b"GGUF\x03\x00\x00\x00tiny test weights";

/// A pinned component: a host tool (a script standing in for a binary).
pub(super) const TOOL: &[u8] = b"#!/bin/sh\necho host tool\n";

/// The build fixture's recipe with a model.
fn recipe(base: &str) -> String {
    use sha2::Digest;
    format!(
        "{base}
[[models]]
name = \"tiny\"
sha256 = \"{}\"
path = \"models/tiny.gguf\"
destination = \"/opt/models/tiny.gguf\"
license = \"Apache-2.0\"

[models.card]
description = \"A tiny test model\"
architecture = \"llama\"
format = \"gguf\"
parameters = \"1K\"
quantization = \"F32\"
intended_use = \"integration tests\"
limitations = \"none worth mentioning\"

[[components]]
name = \"host-tool\"
version = \"1.0.0\"
sha256 = \"{}\"
path = \"bin/host-tool\"
destination = \"/usr/bin/host-tool\"
executable = true
license = \"Apache-2.0\"
copyright = \"Copyright 2026 the airlock authors\"
",
        hex::encode(sha2::Sha256::digest(MODEL)),
        hex::encode(sha2::Sha256::digest(TOOL))
    )
}

/// Writes the model file beside the fixture recipe; `base` with it.
pub(super) fn with_model(env: &Env, base: &str) -> String {
    std::fs::create_dir_all(env.path("recipe/models")).unwrap();
    std::fs::write(env.path("recipe/models/tiny.gguf"), MODEL).unwrap();
    std::fs::create_dir_all(env.path("recipe/bin")).unwrap();
    std::fs::write(env.path("recipe/bin/host-tool"), TOOL).unwrap();
    write_overlay(env, false);
    format!(
        "{}\n[[files.tree]]\nsource = \"overlay\"\ntarget = \"/opt/overlay\"\n",
        recipe(base)
    )
}

/// The recipe's [files] tree: a file, an executable and a link, made in
/// one order or (`reversed`) the other, so the directory order on disk
/// differs between two builds.
pub(super) fn write_overlay(env: &Env, reversed: bool) {
    use std::os::unix::fs::PermissionsExt;
    let overlay = env.path("recipe/overlay");
    let _ = std::fs::remove_dir_all(&overlay);
    std::fs::create_dir_all(&overlay).unwrap();
    let text = || std::fs::write(overlay.join(OVERLAY_FILE), OVERLAY_TEXT).unwrap();
    let script = || {
        std::fs::create_dir_all(overlay.join("bin")).unwrap();
        std::fs::write(overlay.join("bin/hello"), "#!/bin/sh\necho hello\n").unwrap();
        std::fs::set_permissions(
            overlay.join("bin/hello"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
    };
    let link = || std::os::unix::fs::symlink(OVERLAY_FILE, overlay.join("greeting.link")).unwrap();
    let mut steps: Vec<&dyn Fn()> = vec![&text, &script, &link];
    if reversed {
        steps.reverse();
    }
    for step in steps {
        step();
    }
}

/// The overlay's text file and its bytes.
pub(super) const OVERLAY_FILE: &str = "greeting.txt";
pub(super) const OVERLAY_TEXT: &str = "hello from the build machine's overlay\n";

pub(super) fn formats() -> &'static str {
    if have("mkfs.erofs") && have("ostree") && is_root() {
        r#"["tar", "erofs", "ostree"]"#
    } else {
        r#"["tar"]"#
    }
}

pub(super) fn airlock() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_airlock"));
    command
        .env_remove("AIRLOCK_MIRROR")
        .env_remove("AIRLOCK_STORE")
        .env_remove("AIRLOCK_BUILDER_KEY")
        .env("AIRLOCK_KEY_PASSWORD", PASSWORD);
    command
}

pub(super) fn run(command: &mut Command) -> Output {
    command.output().unwrap()
}

/// A fixture repository, three approvers and an outsider, a builder key and
/// a 2-of-3 trust directory.
pub(super) struct Release {
    pub(super) env: Env,
}

impl Release {
    fn new() -> Release {
        Release::with(build_packages(), |env| {
            with_model(env, &build_recipe(formats()))
        })
    }

    /// A release of other packages and another recipe.
    fn with(
        packages: Vec<airlock_fixtures::DebSpec>,
        recipe: impl FnOnce(&Env) -> String,
    ) -> Release {
        let env = Env::with(|spec| spec.packages = packages);
        env.write_recipe(&recipe(&env));
        assert_exit(&env.lock(&[]), 0);
        let keys = env.path("keys");
        assert_exit(
            &run(airlock().args(["keygen", "--builder", "--out"]).arg(&keys)),
            0,
        );
        for who in ["alice", "bob", "carol", "mallory"] {
            assert_exit(
                &run(airlock()
                    .args(["keygen", "--release", who, "--valid-days", "30", "--out"])
                    .arg(&keys)),
                0,
            );
        }
        let trust = env.path("trust");
        std::fs::create_dir_all(trust.join("release")).unwrap();
        std::fs::create_dir_all(trust.join("builder")).unwrap();
        std::fs::write(trust.join("trust.toml"), "threshold = 2\n").unwrap();
        for who in ["alice", "bob", "carol"] {
            std::fs::copy(
                keys.join(format!("{who}.asc")),
                trust.join(format!("release/{who}.asc")),
            )
            .unwrap();
        }
        std::fs::copy(keys.join("builder.pub"), trust.join("builder/builder.pub")).unwrap();
        Release { env }
    }

    pub(super) fn path(&self, relative: &str) -> PathBuf {
        self.env.path(relative)
    }

    pub(super) fn build(&self, output: &str) -> PathBuf {
        assert_exit(&self.try_build(output), 0);
        image_dir(&self.path(output))
    }

    /// `airlock build` into `output`, however it ends.
    pub(super) fn try_build(&self, output: &str) -> Output {
        build_under(
            &self.env,
            &Conditions {
                store: "store",
                output,
                tmp: "tmp",
                umask: "022",
                tz: "UTC",
                lang: "C.UTF-8",
                threads: "2",
                faketime: None,
            },
        )
    }

    pub(super) fn export(&self, image: &Path, args: &[&str]) -> Output {
        run(airlock()
            .arg("export")
            .arg(image)
            .args(["--expires", "2099-01-01", "--builder-key"])
            .arg(self.path("keys/builder.key"))
            .arg("--store")
            .arg(self.path("store"))
            .args(args))
    }

    pub(super) fn sign(&self, bundle: &Path, who: &str) {
        assert_exit(
            &run(airlock()
                .arg("sign")
                .arg(bundle)
                .arg("--key")
                .arg(self.path(&format!("keys/{who}.key")))),
            0,
        );
    }

    fn verify(&self, bundle: &Path, extra: &[&str]) -> (Output, Value) {
        self.verify_against(bundle, &self.path("trust"), extra)
    }

    pub(super) fn verify_against(
        &self,
        bundle: &Path,
        trust: &Path,
        extra: &[&str],
    ) -> (Output, Value) {
        let output = run(airlock()
            .arg("verify")
            .arg(bundle)
            .arg("--trust")
            .arg(trust)
            .arg("--json")
            .args(extra));
        let json = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        (output, json)
    }

    /// Verifies and expects a rejection of `kind` (exit 1).
    fn rejected(&self, bundle: &Path, extra: &[&str], kind: &str) -> String {
        self.rejected_by(bundle, &self.path("trust"), extra, kind)
    }

    /// The same against another trust directory.
    pub(super) fn rejected_by(
        &self,
        bundle: &Path,
        trust: &Path,
        extra: &[&str],
        kind: &str,
    ) -> String {
        let (output, json) = self.verify_against(bundle, trust, extra);
        assert_eq!(
            output.status.code(),
            Some(1),
            "expected a rejection ({kind}); stderr: {}",
            stderr(&output)
        );
        assert_eq!(json["verified"], false);
        assert_eq!(json["rejection"]["kind"], kind, "{json}");
        json["rejection"]["message"].as_str().unwrap().to_owned()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// `gpg --import` of `files` into a fresh home, then the armored export:
/// how an operator merges a revocation into a certificate.
fn gpg_merge(home: &Path, files: &[&Path]) -> Vec<u8> {
    std::fs::create_dir_all(home).unwrap();
    let gpg = || {
        let mut command = Command::new("gpg");
        command
            .arg("--homedir")
            .arg(home)
            .args(["--batch", "--quiet"]);
        command
    };
    for file in files {
        let output = run(gpg().arg("--import").arg(file));
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let output = run(gpg().args(["--armor", "--export"]));
    assert!(output.status.success() && !output.stdout.is_empty());
    output.stdout
}

fn flip_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

fn manifest(bundle: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap()
}

/// Rewrites the manifest for files changed in place (as a compromised
/// build or release machine could), drops the signatures and has `signers`
/// sign again: only the later checks can catch what changed.
fn reseal(release: &Release, bundle: &Path, changed: &[&str], signers: &[&str]) {
    let mut m = manifest(bundle);
    for path in changed {
        let digest = sha256_file(&bundle.join(path));
        let size = std::fs::metadata(bundle.join(path)).unwrap().len();
        let entry = m["files"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|f| f["path"] == *path)
            .unwrap();
        entry["sha256"] = Value::from(digest.clone());
        entry["size"] = Value::from(size);
        match *path {
            "sbom.cdx.json" => m["sbom"]["cyclonedx"] = Value::from(digest),
            "sbom.spdx.json" => m["sbom"]["spdx"] = Value::from(digest),
            "provenance.dsse.json" => m["provenance"] = Value::from(digest),
            _ => {}
        }
    }
    std::fs::write(
        bundle.join("manifest.json"),
        airlock_format::canonical::to_vec(&m),
    )
    .unwrap();
    std::fs::remove_file(bundle.join("manifest.json.asc")).unwrap();
    for who in signers {
        release.sign(bundle, who);
    }
}

/// Gives `name` in the provenance's list `list` (`subject`, or
/// `byproducts` in runDetails) the digest `digest`, and signs the
/// statement again with the builder key, as a compromised build machine
/// could.
fn resign_provenance(release: &Release, bundle: &Path, list: &str, name: &str, digest: &str) {
    use base64::Engine;
    let path = bundle.join("provenance.dsse.json");
    let envelope: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut statement: Value =
        serde_json::from_slice(&b64.decode(envelope["payload"].as_str().unwrap()).unwrap())
            .unwrap();
    let entries = match list {
        "subject" => &mut statement["subject"],
        _ => &mut statement["predicate"]["runDetails"][list],
    };
    let entry = entries
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["name"] == name)
        .unwrap();
    entry["digest"]["sha256"] = Value::from(digest);
    let signer = airlock_release::keys::BuilderSigner::load(
        &release.path("keys/builder.key"),
        PASSWORD.as_bytes(),
    )
    .unwrap();
    std::fs::write(
        &path,
        airlock_release::provenance::envelope(
            &airlock_format::canonical::to_vec(&statement),
            &signer,
        ),
    )
    .unwrap();
}

/// Every regular file below `dir`: relative path → sha256.
fn tree_digests(dir: &Path) -> std::collections::BTreeMap<String, String> {
    super::digests(dir)
}

#[test]
fn round_trip_two_of_three_deterministic_bundles_and_a_flipped_byte_in_every_file() {
    let release = Release::new();
    let image = release.build("out");
    let full = image.join("root.erofs").is_file();

    // Export twice, directory and tar: the same bytes.
    let chunk = "8K";
    for (name, args) in [
        ("b1", vec!["--to", "b1"]),
        ("b2", vec!["--to", "b2"]),
        ("t1", vec!["--tar", "t1.tar"]),
        ("t2", vec!["--tar", "t2.tar"]),
    ] {
        let target = release.path(name);
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all[1] = if name.starts_with('t') {
            format!("{}.tar", target.display())
        } else {
            target.display().to_string()
        };
        all.extend([
            "--chunk-size".to_owned(),
            chunk.to_owned(),
            "--with-sources".to_owned(),
        ]);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let output = release.export(&image, &refs);
        assert_exit(&output, 0);
    }
    let bundle = release.path("b1");
    assert_eq!(tree_digests(&bundle), tree_digests(&release.path("b2")));
    assert_eq!(
        sha256_file(&release.path("t1.tar")),
        sha256_file(&release.path("t2.tar")),
        "tar bundles differ"
    );
    // An existing destination is never overwritten.
    let again = release.export(&image, &["--to", bundle.to_str().unwrap()]);
    assert_exit(&again, 2);
    assert!(stderr(&again).contains("exists"), "{}", stderr(&again));

    // What the bundle holds.
    let m = manifest(&bundle);
    let paths: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for expected in [
        "README.txt",
        "artifacts/rootfs.tar.zst",
        "build-report.json",
        "lock.toml",
        "provenance.dsse.json",
        "recipe.json",
        "sbom.cdx.json",
        "sbom.spdx.json",
        "sbom.spdx3.json",
        "sources/debs/mawk_1.3.4_amd64.deb",
        "sources/models/tiny",
        "sources/components/host-tool",
        "sources/files.json",
    ] {
        assert!(paths.contains(&expected), "{expected} not in {paths:?}");
    }
    // The manifest names the SPDX 3 SBOM, and the provenance names every
    // SBOM as a byproduct with the digest the manifest lists.
    let listed = |path: &str| {
        m["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .unwrap()["sha256"]
            .clone()
    };
    assert_eq!(m["sbom"]["spdx3"], listed("sbom.spdx3.json"));
    let envelope: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("provenance.dsse.json")).unwrap())
            .unwrap();
    let payload = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap()
    };
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    let byproducts = statement["predicate"]["runDetails"]["byproducts"]
        .as_array()
        .unwrap();
    for path in ["sbom.cdx.json", "sbom.spdx.json", "sbom.spdx3.json"] {
        let named = byproducts.iter().find(|b| b["name"] == path).unwrap();
        assert_eq!(named["digest"]["sha256"], listed(path), "{path}");
    }
    // The [files] tree travels as a record of what the build read (modes as
    // the build gave them, no host path) and the bytes by digest.
    let record: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("sources/files.json")).unwrap()).unwrap();
    let text_digest = sha256_hex(OVERLAY_TEXT.as_bytes());
    assert_eq!(
        record["files"],
        serde_json::json!([
            {"kind": "directory", "path": "opt/overlay/bin", "mode": 0o755},
            {"kind": "file", "path": "opt/overlay/bin/hello", "mode": 0o755,
             "sha256": sha256_hex(b"#!/bin/sh\necho hello\n"), "size": 21},
            {"kind": "symlink", "path": "opt/overlay/greeting.link", "target": OVERLAY_FILE},
            {"kind": "file", "path": "opt/overlay/greeting.txt", "mode": 0o644,
             "sha256": text_digest, "size": OVERLAY_TEXT.len()},
        ]),
        "{record}"
    );
    assert!(
        !record
            .to_string()
            .contains(&release.path("").display().to_string())
    );
    assert_eq!(
        std::fs::read(bundle.join(format!("sources/files/{text_digest}"))).unwrap(),
        OVERLAY_TEXT.as_bytes()
    );
    if full {
        assert!(paths.contains(&"artifacts/root.erofs"));
        assert!(m["verity"]["root_hash"].as_str().unwrap().len() == 64);
        assert!(m["ostree"]["commit"].as_str().unwrap().len() == 64);
    }
    let erofs_split = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["split"] == true)
        .expect("a file larger than 8K is split")
        .clone();
    let split_path = erofs_split["path"].as_str().unwrap().to_owned();
    assert!(bundle.join(format!("{split_path}.000")).is_file());
    assert!(!bundle.join(&split_path).exists());
    assert_eq!(m["name"], "fixture");
    assert_eq!(m["version"], 3);
    assert_eq!(m["expires"], "2099-01-01T00:00:00Z");
    let readme = std::fs::read_to_string(bundle.join("README.txt")).unwrap();
    assert!(
        readme.contains("airlock verify") && readme.contains(&split_path),
        "{readme}"
    );

    // The SBOMs: packages with purl, sha256, source and DEP-5 licenses;
    // files the recipe added.
    let cdx: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("sbom.cdx.json")).unwrap()).unwrap();
    let mawk = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "mawk")
        .unwrap();
    assert_eq!(
        mawk["purl"],
        "pkg:deb/debian/mawk@1.3.4?arch=amd64&distro=test"
    );
    assert_eq!(
        mawk["licenses"][0]["expression"],
        "GPL-2.0-only AND (GPL-2.0-only OR MIT)"
    );
    assert_eq!(mawk["hashes"][0]["content"].as_str().unwrap().len(), 64);
    assert!(
        cdx["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "file" && c["name"] == "/etc/motd")
    );
    let model = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "machine-learning-model")
        .unwrap();
    assert_eq!(model["name"], "tiny");
    assert_eq!(
        model["modelCard"]["modelParameters"]["architectureFamily"],
        "llama"
    );
    assert_eq!(model["hashes"][0]["content"], sha256_hex(MODEL));
    let serial = cdx["serialNumber"].as_str().unwrap().to_owned();
    assert!(serial.starts_with("urn:uuid:"));
    assert_eq!(cdx["metadata"]["timestamp"], "2023-11-14T22:13:20Z");

    // Two of three sign, on "separate machines": verified.
    let (output, _) = release.verify(&bundle, &[]);
    assert_exit(&output, 1); // unsigned so far
    release.sign(&bundle, "alice");
    release.rejected(&bundle, &[], "below-threshold");
    release.sign(&bundle, "bob");
    // Signing again with the same key replaces, not adds.
    release.sign(&bundle, "bob");
    let (output, json) = release.verify(&bundle, &[]);
    assert_exit(&output, 0);
    assert_eq!(json["verified"], true, "{json}");
    assert_eq!(json["result"]["signers"].as_array().unwrap().len(), 2);
    assert_eq!(json["result"]["threshold"], 2);
    assert!(json["result"]["packages"].as_u64().unwrap() >= 3);
    assert_eq!(json["result"]["models"], 1);
    assert!(
        stderr(&output).contains("VERIFIED fixture 3"),
        "{}",
        stderr(&output)
    );
    // And the tar bundle, signed in place.
    let tar = release.path("t1.tar");
    release.sign(&tar, "carol");
    release.sign(&tar, "alice");
    let (output, json) = release.verify(&tar, &[]);
    assert_exit(&output, 0);
    assert_eq!(json["result"]["signers"].as_array().unwrap().len(), 2);

    // A policy that holds, and ones that do not.
    std::fs::write(
        release.path("policy-ok.toml"),
        "denied_packages = [\"telnet\"]\nallowed_licenses = [\"GPL-2.0-only\", \"MIT\", \"Apache-2.0\"]\nallow_unknown_licenses = true\n",
    )
    .unwrap();
    let policy_ok = release.path("policy-ok.toml");
    let (output, json) = release.verify(&bundle, &["--policy", policy_ok.to_str().unwrap()]);
    assert_exit(&output, 0);
    assert_eq!(
        json["result"]["policy"],
        serde_json::json!(["denied_packages", "allowed_licenses"])
    );
    for (name, text, kind, detail) in [
        (
            "deny",
            "denied_packages = [\"mawk\"]\n",
            "policy-denied-package",
            "the image has mawk",
        ),
        (
            "license",
            "allowed_licenses = [\"MIT\"]\nallow_unknown_licenses = true\n",
            "policy-license",
            "mawk is licensed",
        ),
        (
            "unknown",
            "allowed_licenses = [\"GPL-2.0-only\", \"MIT\"]\n",
            "policy-unknown-license",
            "no known license",
        ),
        (
            "firewall",
            "require_default_deny_firewall = true\n",
            "policy-no-firewall",
            "the recipe has no [firewall]",
        ),
        (
            "audit",
            "require_audit = true\n",
            "policy-not-installed",
            "auditd is not installed",
        ),
    ] {
        let path = release.path(&format!("policy-{name}.toml"));
        std::fs::write(&path, text).unwrap();
        let message = release.rejected(&bundle, &["--policy", path.to_str().unwrap()], kind);
        assert!(message.contains(detail), "{name}: {message}");
    }

    // An image without the disk format gives no disk image, and says why
    // (after verifying: exit 2, nothing written).
    let out = release.path("fixture.raw");
    let refused = run(airlock()
        .arg("disk-image")
        .arg(&bundle)
        .arg("--trust")
        .arg(release.path("trust"))
        .arg("--out")
        .arg(&out));
    assert_exit(&refused, 2);
    assert!(
        stderr(&refused).contains("verified fixture 3")
            && stderr(&refused).contains("the bundle carries no disk image"),
        "{}",
        stderr(&refused)
    );
    assert!(!out.exists());
    // So does install, and the new target file is not left behind.
    // `airlock install BUNDLE --trust T --target OUT EXTRA`, refused (exit
    // 2) with `message`.
    let install_refused = |bundle: &Path, extra: &[&Path], message: &str| {
        let refused = run(airlock()
            .arg("install")
            .arg(bundle)
            .arg("--trust")
            .arg(release.path("trust"))
            .arg("--target")
            .arg(&out)
            .args(extra));
        assert_exit(&refused, 2);
        assert!(stderr(&refused).contains(message), "{}", stderr(&refused));
    };
    install_refused(&bundle, &[], "the bundle carries no disk image");
    let left: Vec<_> = std::fs::read_dir(release.path(""))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("fixture.raw") || n.starts_with(".airlock-install-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // A used target is refused before the bundle is even read.
    std::fs::write(&out, b"an old file system").unwrap();
    let nothing = release.path("no-such-bundle");
    install_refused(
        &nothing,
        &[],
        "holds data; installing destroys it: pass --force",
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"an old file system");
    // --force must name the target itself, not some other file.
    let other = release.path("trust/trust.toml");
    install_refused(
        &nothing,
        &[Path::new("--force"), &other],
        "it must name the target again",
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"an old file system");
    std::fs::remove_file(&out).unwrap();

    // The tamper matrix. Every file of the bundle, one flipped byte each.
    let mut case = 0;
    let mut fresh = |release: &Release| {
        case += 1;
        let copy = release.path(&format!("case-{case}"));
        copy_dir(&bundle, &copy);
        copy
    };
    let physical: Vec<String> = super::digests(&bundle)
        .into_iter()
        .filter(|(p, d)| d != "dir" && !p.starts_with("manifest.json"))
        .map(|(p, _)| p)
        .collect();
    assert!(physical.len() > 10);
    for path in &physical {
        let copy = fresh(&release);
        if std::fs::metadata(copy.join(path)).unwrap().len() == 0 {
            // Nothing to flip in an empty file (ostree has some): grow it.
            std::fs::write(copy.join(path), b"x").unwrap();
            let message = release.rejected(&copy, &[], "size-mismatch");
            assert!(
                message.starts_with(&format!("{path}: 1 bytes")),
                "{path}: {message}"
            );
        } else {
            flip_byte(&copy.join(path));
            let message = release.rejected(&copy, &[], "digest-mismatch");
            assert!(
                message.starts_with(&format!("{path}: sha256 ")),
                "{path}: {message}"
            );
        }
        std::fs::remove_dir_all(&copy).unwrap();
    }
    // Every other tamper, one per rejection kind, is in the verifier's own
    // table (builder/verify/tests/tamper.rs).
    // Regression: an approver whose certificate is revoked still counted.
    // The revocation keygen wrote, merged into alice.asc as gpg does on
    // import; the bundle is signed by alice and bob.
    if have("gpg") {
        let trust = release.path("trust-revoked");
        copy_dir(&release.path("trust"), &trust);
        let merged = gpg_merge(
            &release.path("gnupg-revoke"),
            &[
                &release.path("keys/alice.asc"),
                &release.path("keys/alice.rev"),
            ],
        );
        std::fs::write(trust.join("release/alice.asc"), merged).unwrap();
        let message = release.rejected_by(&bundle, &trust, &[], "revoked-signer");
        assert!(message.contains("hard revocation"), "{message}");
        // The same revocation beside the certificate, as its own file.
        let trust = release.path("trust-revoked-file");
        copy_dir(&release.path("trust"), &trust);
        std::fs::copy(
            release.path("keys/alice.rev"),
            trust.join("release/alice.rev"),
        )
        .unwrap();
        release.rejected_by(&bundle, &trust, &[], "revoked-signer");
    }
    // An older (or the same) version than the host has: rollback.
    let state = release.path("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("fixture.json"), r#"{"version": 3, "seen": 0}"#).unwrap();
    let message = release.rejected(&bundle, &["--state", state.to_str().unwrap()], "rollback");
    assert!(
        message.contains("version 3 is not newer than version 3"),
        "{message}"
    );
    // --json carries the rejection's values beside its kind.
    let (_, json) = release.verify(&bundle, &["--state", state.to_str().unwrap()]);
    assert_eq!(
        (
            &json["rejection"]["version"],
            &json["rejection"]["recorded"]
        ),
        (&serde_json::json!(3), &serde_json::json!(3)),
        "{json}"
    );
    // The host has seen a later time than the expiry: freeze.
    std::fs::write(
        state.join("fixture.json"),
        r#"{"version": 2, "seen": 4102444800}"#,
    )
    .unwrap();
    release.rejected(&bundle, &["--state", state.to_str().unwrap()], "expired");
    std::fs::write(state.join("fixture.json"), r#"{"version": 2, "seen": 0}"#).unwrap();
    let (output, _) = release.verify(&bundle, &["--state", state.to_str().unwrap()]);
    assert_exit(&output, 0);
    // An expired manifest.
    let expired = release.path("expired");
    let output = run(airlock()
        .arg("export")
        .arg(&image)
        .args(["--expires", "2024-01-01", "--builder-key"])
        .arg(release.path("keys/builder.key"))
        .arg("--to")
        .arg(&expired));
    assert_exit(&output, 0);
    release.sign(&expired, "alice");
    release.sign(&expired, "carol");
    let message = release.rejected(&expired, &[], "expired");
    assert!(message.contains("2024-01-01T00:00:00Z"), "{message}");
    // A wrong password and a missing trust directory are usage errors (2).
    let output = run(airlock()
        .env("AIRLOCK_KEY_PASSWORD", "wrong")
        .arg("sign")
        .arg(&bundle)
        .arg("--key")
        .arg(release.path("keys/carol.key")));
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("wrong password"),
        "{}",
        stderr(&output)
    );
    let output = run(airlock()
        .arg("verify")
        .arg(&bundle)
        .arg("--trust")
        .arg(release.path("nowhere")));
    assert_exit(&output, 2);
}

fn tool_output(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        stderr(&output)
    );
    output
}

/// The reference validators (CycloneDX's strict JSON schema validator,
/// spdx-tools) accept the SBOMs in `dir`.
fn validate_sboms(old: &Path) {
    if let Some(python) = sbom_tool("python3").filter(|p| {
        Command::new(p)
            .args(["-c", "import cyclonedx.validation.json"])
            .output()
            .is_ok_and(|o| o.status.success())
            || airlock_fixtures::gate::tools_required()
    }) {
        let script = "import sys\nfrom cyclonedx.schema import SchemaVersion\nfrom cyclonedx.validation.json import JsonStrictValidator\nerrors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\nif errors:\n    print(errors)\n    sys.exit(1)\nprint('valid CycloneDX 1.6')\n";
        let output = tool_output(
            Command::new(&python)
                .args(["-c", script])
                .arg(old.join("sbom.cdx.json")),
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("valid CycloneDX 1.6"));
    }
    if let Some(pyspdxtools) = sbom_tool("pyspdxtools") {
        let output = Command::new(&pyspdxtools)
            .arg("-i")
            .arg(old.join("sbom.spdx.json"))
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            stderr(&output)
        );
        assert!(
            output.status.success() && !all.contains("ValidationMessage"),
            "{all}"
        );
    }
}

/// Where the SBOM validators are: AIRLOCK_SBOM_TOOLS (a virtualenv's bin
/// folder, which `cargo xtask ci` makes), else PATH.
fn sbom_tool(name: &str) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("AIRLOCK_SBOM_TOOLS") {
        let path = Path::new(&dir).join(name);
        assert!(path.is_file(), "{} missing", path.display());
        return Some(path);
    }
    have(name).then(|| PathBuf::from(name))
}

#[test]
fn independent_tools_confirm_signatures_provenance_sboms_and_the_delta() {
    let release = Release::new();
    let first = release.build("out-3");
    let old = release.path("bundle-3");
    assert_exit(&release.export(&first, &["--to", old.to_str().unwrap()]), 0);
    release.sign(&old, "alice");
    release.sign(&old, "carol");

    // gpg and sq count the two approvals.
    if have("gpg") {
        let home = release.path("gnupg");
        std::fs::create_dir_all(&home).unwrap();
        for who in ["alice", "carol"] {
            tool_output(
                Command::new("gpg")
                    .env("GNUPGHOME", &home)
                    .args(["--batch", "--import"])
                    .arg(release.path(&format!("keys/{who}.asc"))),
            );
        }
        let output = tool_output(
            Command::new("gpg")
                .env("GNUPGHOME", &home)
                .args(["--batch", "--status-fd", "1", "--verify"])
                .arg(old.join("manifest.json.asc"))
                .arg(old.join("manifest.json")),
        );
        let status = String::from_utf8_lossy(&output.stdout);
        assert_eq!(status.matches("[GNUPG:] GOODSIG").count(), 2, "{status}");
    }
    if have("sq") {
        let sq_verify = |signatures: &str| {
            let mut command = Command::new("sq");
            command.args(["verify", "--signatures", signatures]);
            for who in ["alice", "bob", "carol"] {
                command
                    .arg("--signer-cert")
                    .arg(release.path(&format!("keys/{who}.asc")));
            }
            command
                .arg("--detached")
                .arg(old.join("manifest.json.asc"))
                .arg(old.join("manifest.json"));
            command
        };
        tool_output(&mut sq_verify("2"));
        // And sq refuses when three are required.
        assert!(!sq_verify("3").output().unwrap().status.success());
    }

    // openssl checks the DSSE signature over the PAE.
    if have("openssl") {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let envelope: Value =
            serde_json::from_slice(&std::fs::read(old.join("provenance.dsse.json")).unwrap())
                .unwrap();
        let payload = b64.decode(envelope["payload"].as_str().unwrap()).unwrap();
        let pae = airlock_verify::dsse::pae(envelope["payloadType"].as_str().unwrap(), &payload);
        std::fs::write(release.path("pae.bin"), pae).unwrap();
        std::fs::write(
            release.path("sig.der"),
            b64.decode(envelope["signatures"][0]["sig"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        let output = tool_output(
            Command::new("openssl")
                .args(["dgst", "-sha256", "-verify"])
                .arg(release.path("keys/builder.pub"))
                .arg("-signature")
                .arg(release.path("sig.der"))
                .arg(release.path("pae.bin")),
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("Verified OK"));
        let statement: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
        let deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
            .as_array()
            .unwrap();
        assert!(deps.iter().any(|d| {
            d["uri"]
                .as_str()
                .unwrap()
                .starts_with("pkg:deb/debian/mawk@1.3.4")
        }));
    }

    // The reference validators accept the SBOMs.
    validate_sboms(&old);

    // The next release: a changed file, a delta from the previous bundle,
    // a change report, and `airlock diff`.
    release.env.write_recipe(
        &recipe(&build_recipe(formats()))
            .replace("version = 3", "version = 4")
            .replace(
                "authorized use only",
                "authorized use only; all use is audited",
            ),
    );
    assert_exit(&release.env.lock(&["--update"]), 0);
    let second = release.build("out-4");
    let new = release.path("bundle-4");
    let output = release.export(
        &second,
        &[
            "--to",
            new.to_str().unwrap(),
            "--previous",
            old.to_str().unwrap(),
        ],
    );
    assert_exit(&output, 0);
    let changes = std::fs::read_to_string(new.join("changes.txt")).unwrap();
    assert!(
        changes.contains("fixture 3 -> fixture 4") && changes.contains("~ /etc/motd"),
        "{changes}"
    );
    let m = manifest(&new);
    assert_eq!(m["previous"]["version"], 3);
    let output = run(airlock().arg("diff").arg(&old).arg(&new).arg("--json"));
    assert_exit(&output, 0);
    let diff: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        diff["diff"]["files"]["changed"],
        serde_json::json!(["/etc/motd"])
    );
    assert_eq!(diff["diff"]["packages"]["added"], serde_json::json!([]));
    let output = run(airlock().arg("diff").arg(&first).arg(&second));
    assert_exit(&output, 0);
    assert!(String::from_utf8_lossy(&output.stdout).contains("firewall: no change"));
    // The delta applies offline onto the previous commit.
    if let (Some(from), Some(to)) = (
        m["previous"]["ostree_commit"].as_str(),
        m["ostree"]["commit"].as_str(),
    ) {
        let repo = release.path("host-repo");
        let repo_arg = format!("--repo={}", repo.display());
        tool_output(Command::new("ostree").args(["init", &repo_arg, "--mode=archive"]));
        tool_output(
            Command::new("ostree")
                .args(["pull-local", &repo_arg])
                .arg(old.join("artifacts/ostree"))
                .arg(from),
        );
        tool_output(
            Command::new("ostree")
                .args(["static-delta", "apply-offline", &repo_arg])
                .arg(new.join(format!("delta/{from}-{to}.delta"))),
        );
        let output = tool_output(Command::new("ostree").args(["cat", &repo_arg, to, "/etc/motd"]));
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "authorized use only; all use is audited\n"
        );
        tool_output(Command::new("ostree").args(["fsck", &repo_arg]));
    } else {
        assert!(
            !is_root() || !have("ostree"),
            "no ostree commit although ostree is available"
        );
    }
}

fn privileged_packages() -> Vec<airlock_fixtures::DebSpec> {
    let mut packages = build_packages();
    packages.push(
        airlock_fixtures::DebSpec::new("iputils-ping", "20221126")
            .file("bin/ping", b"\x7fELF ping")
            .mode("bin/ping", 0o755)
            .control_file("postinst", airlock_fixtures::PING_POSTINST.as_bytes()),
    );
    packages.push(
        airlock_fixtures::DebSpec::new("sudo", "1.9.13")
            .file("usr/bin/sudo", b"\x7fELF sudo")
            .mode("usr/bin/sudo", 0o4755),
    );
    packages
}

/// The tar entry at `path`: its mode and PAX records.
fn tar_entry(image: &Path, path: &str) -> (u32, Vec<(String, Vec<u8>)>) {
    let file = std::fs::File::open(image.join("rootfs.tar.zst")).unwrap();
    let mut archive = tar::Archive::new(zstd::stream::read::Decoder::new(file).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() != Some(path) {
            continue;
        }
        let mode = entry.header().mode().unwrap();
        let records = entry
            .pax_extensions()
            .unwrap()
            .into_iter()
            .flatten()
            .map(|r| {
                let r = r.unwrap();
                (r.key().unwrap().to_owned(), r.value_bytes().to_vec())
            })
            .collect();
        return (mode, records);
    }
    panic!("{path} is not in the tar");
}

/// Regression (the setcap half of finding 5 and the staging fault): a
/// package's `setcap` and its setuid bit reach every emitter; the inventory
/// is in the report and both SBOMs; `airlock diff` shows what was gained;
/// the verifier checks the SBOM's inventory against the image and enforces
/// the policy's privilege keys.
#[test]
fn privilege_is_inventoried_carried_diffed_and_enforced() {
    let install = r#"install = ["daemon"]"#;
    let release = Release::with(privileged_packages(), |env| {
        with_model(
            env,
            &build_recipe(formats())
                .replace(install, r#"install = ["daemon", "iputils-ping", "sudo"]"#),
        )
    });
    let image = release.build("out");
    let report: Value =
        serde_json::from_slice(&std::fs::read(image.join("build-report.json")).unwrap()).unwrap();
    assert_eq!(
        report["privileges"],
        serde_json::json!([
            {"path": "/usr/bin/ping", "kinds": ["capabilities"], "mode": "0755", "uid": 0, "gid": 0,
             "capabilities": "cap_net_raw=ep", "packages": ["iputils-ping"]},
            {"path": "/usr/bin/sudo", "kinds": ["setuid"], "mode": "4755", "uid": 0, "gid": 0,
             "packages": ["sudo"]},
        ])
    );
    // The tar: the capability as the PAX record GNU tar and bsdtar read.
    let (mode, records) = tar_entry(&image, "usr/bin/ping");
    assert_eq!(mode, 0o755);
    assert_eq!(
        records,
        [(
            "SCHILY.xattr.security.capability".to_owned(),
            hex::decode("0100000200200000000000000000000000000000").unwrap()
        )]
    );
    assert_eq!(tar_entry(&image, "usr/bin/sudo").0, 0o4755);
    // The ostree commit keeps the setuid bit and the capability.
    if image.join("ostree").is_dir() {
        let ls = |path: &str| {
            let output = run(Command::new("ostree")
                .arg(format!("--repo={}", image.join("ostree").display()))
                .args(["ls", "-X", report["ostree_commit"].as_str().unwrap(), path]));
            assert!(output.status.success(), "{}", stderr(&output));
            String::from_utf8_lossy(&output.stdout).into_owned()
        };
        let sudo = ls("/usr/bin/sudo");
        assert!(sudo.starts_with("-04755 0 0 "), "{sudo}");
        let ping = ls("/usr/bin/ping");
        assert!(ping.contains("security.capability"), "{ping}");
    }
    // Both SBOMs carry it on the package that shipped it.
    let cdx: Value =
        serde_json::from_slice(&std::fs::read(image.join("sbom.cdx.json")).unwrap()).unwrap();
    let ping = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "iputils-ping")
        .unwrap();
    assert!(
        ping["properties"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "airlock:privilege"
                && p["value"]
                    == "/usr/bin/ping: capabilities cap_net_raw=ep (0755 0:0, iputils-ping)"),
        "{ping}"
    );
    let spdx = std::fs::read_to_string(image.join("sbom.spdx.json")).unwrap();
    assert!(
        spdx.contains("airlock:privilege /usr/bin/sudo: setuid (4755 0:0, sudo)"),
        "{spdx}"
    );
    validate_sboms(&image);

    // airlock diff against the release without them: privilege first.
    release
        .env
        .write_recipe(&with_model(&release.env, &build_recipe(formats())));
    assert_exit(&release.env.lock(&[]), 0);
    let old = release.build("out-old");
    let output = run(airlock().arg("diff").arg(&old).arg(&image));
    assert_exit(&output, 0);
    let text = stderr(&output) + &String::from_utf8_lossy(&output.stdout);
    let privilege = text
        .find("PRIVILEGE (setuid, setgid, capabilities, devices): 2 gained")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(privilege < text.find("packages:").unwrap(), "{text}");
    assert!(
        text.contains("  + /usr/bin/ping: capabilities cap_net_raw=ep (0755 0:0, iputils-ping)"),
        "{text}"
    );

    // Exported, signed, verified; the policy keys enforced.
    let bundle = release.path("bundle");
    assert_exit(
        &release.export(&image, &["--to", bundle.to_str().unwrap()]),
        0,
    );
    release.sign(&bundle, "alice");
    release.sign(&bundle, "bob");
    let policy = |name: &str, text: &str| {
        let path = release.path(&format!("policy-{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let fine = policy(
        "fine",
        "allowed_setuid = [\"/usr/bin/sudo\"]\ndeny_device_nodes = true\n",
    );
    let (output, json) = release.verify(&bundle, &["--policy", &fine]);
    assert_exit(&output, 0);
    assert_eq!(
        json["result"]["policy"],
        serde_json::json!(["allowed_setuid", "deny_device_nodes"])
    );
    let message = release.rejected(
        &bundle,
        &["--policy", &policy("nosetuid", "allowed_setuid = []\n")],
        "policy-setuid",
    );
    assert!(message.contains("/usr/bin/sudo (mode 4755)"), "{message}");
    let message = release.rejected(
        &bundle,
        &[
            "--policy",
            &policy("nocaps", "deny_file_capabilities = true\n"),
        ],
        "policy-file-capability",
    );
    assert!(message.contains("/usr/bin/ping"), "{message}");
    // An SBOM that hides the capability, resealed and re-signed: the
    // image's own tar headers contradict it.
    let copy = release.path("hidden");
    copy_dir(&bundle, &copy);
    let text = std::fs::read_to_string(copy.join("sbom.cdx.json")).unwrap();
    let hidden = text.replace(
        "/usr/bin/ping: capabilities cap_net_raw=ep (0755 0:0, iputils-ping)",
        "/usr/bin/ping-not: capabilities cap_net_raw=ep (0755 0:0, iputils-ping)",
    );
    assert_ne!(hidden, text);
    std::fs::write(copy.join("sbom.cdx.json"), hidden).unwrap();
    reseal(&release, &copy, &["sbom.cdx.json"], &["alice", "bob"]);
    // The approvers signed it, but the builder's provenance names the SBOM
    // it wrote.
    let message = release.rejected(&copy, &[], "provenance-input");
    assert!(message.contains("sbom.cdx.json"), "{message}");
    // With the builder key too, the image's own tar headers still
    // contradict it.
    let digest = sha256_file(&copy.join("sbom.cdx.json"));
    resign_provenance(&release, &copy, "byproducts", "sbom.cdx.json", &digest);
    reseal(
        &release,
        &copy,
        &["provenance.dsse.json"],
        &["alice", "bob"],
    );
    let message = release.rejected(&copy, &[], "sbom-privilege-unlisted");
    assert!(
        message.contains("the image has capabilities /usr/bin/ping, which the SBOM's privilege inventory does not list"),
        "{message}"
    );
}

/// Names of `prefix*` entries in `dir`.
fn leftovers(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Export and sign killed at several points leave either no bundle or a
/// whole one, and the old signature file or the new one; the next run of
/// the same command leaves no temporary folder behind.
#[test]
fn killed_export_and_sign_leave_the_old_state_or_the_new() {
    let release = Release::new();
    let image = release.build("out");
    let media = release.path("media");
    std::fs::create_dir_all(&media).unwrap();
    let bundle = media.join("bundle");
    let export = || {
        airlock()
            .arg("export")
            .arg(&image)
            .args(["--expires", "2099-01-01", "--builder-key"])
            .arg(release.path("keys/builder.key"))
            .arg("--store")
            .arg(release.path("store"))
            .arg("--to")
            .arg(&bundle)
            .args(["--chunk-size", "8K", "--with-sources"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut landed = 0;
    for delay in [0u64, 1, 3, 8, 20] {
        let mut child = export();
        // Wait for its work folder, then a little more.
        while leftovers(&media, ".airlock-export-").is_empty()
            && child.try_wait().unwrap().is_none()
        {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        std::thread::sleep(std::time::Duration::from_millis(delay));
        let mid_run = child.try_wait().unwrap().is_none();
        child.kill().ok();
        child.wait().unwrap();
        if mid_run {
            landed += 1;
        }
        // No bundle, or a complete one.
        if bundle.exists() {
            assert!(
                bundle.join("manifest.json").is_file(),
                "a partial bundle after {delay} ms"
            );
            std::fs::remove_dir_all(&bundle).unwrap();
        }
    }
    assert!(landed > 0, "no kill landed inside an export");
    assert!(
        !leftovers(&media, ".airlock-export-").is_empty(),
        "the killed exports left their folders"
    );
    assert!(export().wait().unwrap().success());
    assert_eq!(
        leftovers(&media, "."),
        Vec::<String>::new(),
        "the next export removed what the killed ones left"
    );

    // Sign: alice's signature is there; bob's is added while being killed.
    release.sign(&bundle, "alice");
    let before = std::fs::read(bundle.join("manifest.json.asc")).unwrap();
    for delay in [0u64, 1, 2, 5, 10, 20] {
        let mut child = airlock()
            .arg("sign")
            .arg(&bundle)
            .arg("--key")
            .arg(release.path("keys/bob.key"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        child.kill().ok();
        let status = child.wait().unwrap();
        let now = std::fs::read(bundle.join("manifest.json.asc")).unwrap();
        // Nothing but the listed files and the signature file in the bundle.
        let (output, json) = release.verify(&bundle, &[]);
        if now == before {
            assert_eq!(json["rejection"]["kind"], "below-threshold", "{json}");
        } else {
            assert!(
                status.success() || output.status.success(),
                "a torn signature file"
            );
            assert_exit(&output, 0);
            std::fs::write(bundle.join("manifest.json.asc"), &before).unwrap();
        }
    }
    release.sign(&bundle, "bob");
    let (output, _) = release.verify(&bundle, &[]);
    assert_exit(&output, 0);
    assert_eq!(leftovers(&media, ".airlock-sign-"), Vec::<String>::new());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(bundle.join("manifest.json.asc"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o644,
        "the signature file is readable like the rest of the bundle"
    );
}

/// A small tmpfs mounted at a folder (root only), unmounted when dropped:
/// a disk that fills up.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    /// Mounts `bytes` of tmpfs at `dir`, or `None` when this process is
    /// not root (which fails under AIRLOCK_REQUIRE_TOOLS).
    fn mount(dir: &Path, bytes: u64) -> Option<SmallDisk> {
        if !airlock_fixtures::gate::root("mounting a small tmpfs") {
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let size = format!("size={bytes},mode=0755");
        let output = run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(dir));
        assert!(
            output.status.success(),
            "mount -t tmpfs: {}",
            stderr(&output)
        );
        Some(SmallDisk {
            dir: dir.to_owned(),
        })
    }

    /// Fills what is left with one file, written until the disk is full.
    fn fill(&self) {
        use std::io::Write;
        let mut file = std::fs::File::create(self.dir.join(".filler")).unwrap();
        let chunk = vec![0xa5u8; 4096];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling {}: {e}", self.dir.display()),
            }
        }
    }

    /// Everything below the disk but the filler, as relative paths.
    fn contents(&self) -> std::collections::BTreeSet<String> {
        fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeSet<String>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                let relative = path.strip_prefix(root).unwrap().display().to_string();
                if relative == ".filler" {
                    continue;
                }
                if entry.file_type().unwrap().is_dir() {
                    walk(root, &path, out);
                }
                out.insert(relative);
            }
        }
        let mut out = std::collections::BTreeSet::new();
        walk(&self.dir, &self.dir, &mut out);
        out
    }

    fn make_room(&self) {
        std::fs::remove_file(self.dir.join(".filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// A command that ran out of space failed with exit 2, said so, and left
/// the disk as it found it.
fn failed_for_space(
    what: &str,
    output: &Output,
    disk: &SmallDisk,
    before: &std::collections::BTreeSet<String>,
) {
    let message = stderr(output);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{what} on a full disk: {message}"
    );
    assert!(
        message.contains("No space left on device"),
        "{what} on a full disk does not say so: {message}"
    );
    assert_eq!(
        &disk.contents(),
        before,
        "{what} on a full disk left something behind"
    );
}

/// Fetch, build, export and sign on a disk that is full: each fails with
/// the reason, leaves nothing it wrote, and works once there is room.
#[test]
fn a_full_disk_gives_a_clear_error_and_leaves_nothing() {
    let release = Release::new();

    // Fetch into a store on a full disk.
    let Some(disk) = SmallDisk::mount(&release.path("store"), 8 << 20) else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    // The store's empty skeleton first: a store that exists is not a leftover.
    assert_exit(&release.env.airlock(&["store", "verify"]), 0);
    disk.fill();
    let before = disk.contents();
    failed_for_space("fetch", &release.env.fetch(&[]), &disk, &before);
    disk.make_room();
    assert_exit(&release.env.fetch(&[]), 0);
    // The store stays on its small disk, which is full again for the build.

    // Build onto a full disk.
    let out = SmallDisk::mount(&release.path("out-full"), 8 << 20).unwrap();
    out.fill();
    let before = out.contents();
    failed_for_space("build", &release.try_build("out-full"), &out, &before);
    drop(out);

    // Export onto full media.
    let image = release.build("out");
    let media = SmallDisk::mount(&release.path("media-full"), 8 << 20).unwrap();
    media.fill();
    let before = media.contents();
    let bundle = release.path("media-full/bundle");
    let exported = release.export(&image, &["--to", bundle.to_str().unwrap()]);
    failed_for_space("export", &exported, &media, &before);
    drop(media);

    // Sign a bundle on media that filled up after alice signed.
    let staged = release.path("staged");
    assert_exit(
        &release.export(&image, &["--to", staged.to_str().unwrap()]),
        0,
    );
    release.sign(&staged, "alice");
    let size: u64 = airlock_fixtures::tree_digests(&staged)
        .keys()
        .map(|path| std::fs::metadata(staged.join(path)).unwrap().len())
        .sum();
    let media = SmallDisk::mount(&release.path("media-sign"), size + (8 << 20)).unwrap();
    copy_dir(&staged, &release.path("media-sign/bundle"));
    let bundle = release.path("media-sign/bundle");
    let signed_once = std::fs::read(bundle.join("manifest.json.asc")).unwrap();
    media.fill();
    let before = media.contents();
    let signed = run(airlock()
        .arg("sign")
        .arg(&bundle)
        .arg("--key")
        .arg(release.path("keys/bob.key")));
    failed_for_space("sign", &signed, &media, &before);
    assert_eq!(
        std::fs::read(bundle.join("manifest.json.asc")).unwrap(),
        signed_once
    );
    media.make_room();
    release.sign(&bundle, "bob");
    let (output, _) = release.verify(&bundle, &[]);
    assert_exit(&output, 0);
}

/// `airlock rebuild BUNDLE --check --json`, without a network when it can
/// (a network namespace with no interfaces), with an empty store.
fn rebuild(release: &Release, bundle: &Path) -> (Output, Value) {
    let offline =
        airlock_fixtures::gate::root("rebuilding in a network namespace without interfaces")
            && airlock_fixtures::gate::tool("unshare", "util-linux");
    let mut command = if offline {
        let mut command = Command::new("unshare");
        command
            .args(["-n", "--"])
            .arg(env!("CARGO_BIN_EXE_airlock"));
        command
    } else {
        Command::new(env!("CARGO_BIN_EXE_airlock"))
    };
    command
        .arg("rebuild")
        .arg(bundle)
        .args(["--check", "--json", "--trust"])
        .arg(release.path("trust"))
        .env("TMPDIR", release.path(""))
        .env_remove("AIRLOCK_STORE");
    let output = command.output().unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, json)
}

/// `rootfs.tar.zst` with one file's bytes replaced, every other entry
/// (PAX records included) copied as it was.
fn replace_in_rootfs(path: &Path, target: &str, bytes: &[u8]) {
    let compressed = std::fs::read(path).unwrap();
    let raw = zstd::decode_all(&compressed[..]).unwrap();
    let mut archive = tar::Archive::new(&raw[..]);
    let mut out = tar::Builder::new(Vec::new());
    let mut replaced = false;
    for entry in archive.entries().unwrap().raw(true) {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        if entry.path_bytes().as_ref() == target.as_bytes() {
            data = bytes.to_vec();
            header.set_size(data.len() as u64);
            header.set_cksum();
            replaced = true;
        }
        out.append(&header, &data[..]).unwrap();
    }
    assert!(replaced, "{target} is not in {}", path.display());
    std::fs::write(
        path,
        zstd::encode_all(&out.into_inner().unwrap()[..], 3).unwrap(),
    )
    .unwrap();
}

#[test]
fn the_far_side_rebuilds_from_the_bundle_alone_and_catches_a_resealed_artifact() {
    let release = Release::new();
    let image = release.build("out");
    let bundle = release.path("with-sources");
    let output = release.export(
        &image,
        &["--to", bundle.to_str().unwrap(), "--with-sources"],
    );
    assert_exit(&output, 0);
    release.sign(&bundle, "alice");
    release.sign(&bundle, "bob");

    // Offline, from an empty store: every artifact as signed.
    let (output, json) = rebuild(&release, &bundle);
    assert_exit(&output, 0);
    assert_eq!(json["reproduced"], true, "{json}");
    // The provenance names the binary that built it: this one.
    assert_eq!(json["builder"]["same"], true, "{json}");
    assert_eq!(
        json["builder"]["signed"],
        sha256_file(Path::new(env!("CARGO_BIN_EXE_airlock"))).as_str()
    );
    assert!(
        stderr(&output).contains("REPRODUCED"),
        "{}",
        stderr(&output)
    );

    // A compromised release machine: /etc/motd changed inside the root,
    // the provenance re-signed with the builder key and the manifest with
    // two trusted approvers. Every signature is good, so verify passes;
    // the rebuild names the artifact and the path.
    let copy = release.path("resealed");
    copy_dir(&bundle, &copy);
    replace_in_rootfs(
        &copy.join("artifacts/rootfs.tar.zst"),
        "etc/motd",
        b"all is well, nothing to see\n",
    );
    let digest = sha256_file(&copy.join("artifacts/rootfs.tar.zst"));
    resign_provenance(
        &release,
        &copy,
        "subject",
        "artifacts/rootfs.tar.zst",
        &digest,
    );
    reseal(
        &release,
        &copy,
        &["artifacts/rootfs.tar.zst", "provenance.dsse.json"],
        &["alice", "bob"],
    );
    let (output, _) = release.verify(&copy, &[]);
    assert_exit(&output, 0);
    let (output, json) = rebuild(&release, &copy);
    assert_exit(&output, 1);
    assert_eq!(json["reproduced"], false, "{json}");
    let mismatch = &json["mismatches"][0];
    assert_eq!(mismatch["artifact"], "artifacts/rootfs.tar.zst", "{json}");
    assert_eq!(mismatch["expected"], digest.as_str());
    let differs = mismatch["differs"].to_string();
    assert!(differs.contains("/etc/motd: content sha256"), "{json}");
    assert!(stderr(&output).contains("NOT REPRODUCED artifacts/rootfs.tar.zst"));

    // A bundle exported without sources: refused, naming what is missing.
    let bare = release.path("bare");
    assert_exit(
        &release.export(&image, &["--to", bare.to_str().unwrap()]),
        0,
    );
    release.sign(&bare, "alice");
    release.sign(&bare, "bob");
    let (output, _) = rebuild(&release, &bare);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains(
            "sources are incomplete, missing sources/components/host-tool, sources/debs/"
        ),
        "{}",
        stderr(&output)
    );
    // A source the lock does not name, listed and signed: refused by name.
    let extra = release.path("extra");
    copy_dir(&bundle, &extra);
    std::fs::write(
        extra.join("sources/debs/extra_1_amd64.deb"),
        b"not in the lock",
    )
    .unwrap();
    let mut m = manifest(&extra);
    m["files"].as_array_mut().unwrap().push(serde_json::json!({
        "path": "sources/debs/extra_1_amd64.deb",
        "size": 15,
        "sha256": sha256_hex(b"not in the lock"),
    }));
    m["files"]
        .as_array_mut()
        .unwrap()
        .sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    std::fs::write(
        extra.join("manifest.json"),
        airlock_format::canonical::to_vec(&m),
    )
    .unwrap();
    std::fs::remove_file(extra.join("manifest.json.asc")).unwrap();
    release.sign(&extra, "alice");
    release.sign(&extra, "bob");
    let (output, _) = rebuild(&release, &extra);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("does not name: sources/debs/extra_1_amd64.deb"),
        "{}",
        stderr(&output)
    );
}
