//! The image's own trust anchors: a recipe whose `[signing]` names the
//! approvers' certificates and the builder's key carries them in
//! /usr/share/airlock/trust, and that directory, taken from the built image
//! alone, is what decides whether the next bundle verifies.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use super::trust::{airlock, run};
use super::{
    Conditions, Env, assert_exit, build_packages, build_recipe, build_under, image_dir, stderr,
    untar,
};

/// `airlock keygen ARGS --out KEYS`: what it prints (a fingerprint or a
/// key id).
fn keygen(keys: &Path, args: &[&str]) -> String {
    let output = run(airlock().arg("keygen").args(args).arg("--out").arg(keys));
    assert_exit(&output, 0);
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn build(env: &Env) -> Output {
    build_under(
        env,
        &Conditions {
            store: "store",
            output: "images",
            tmp: "tmp",
            umask: "022",
            tz: "UTC",
            lang: "C.UTF-8",
            threads: "2",
            faketime: None,
        },
    )
}

fn verify(bundle: &Path, trust: &Path) -> (Output, Value) {
    let output = run(airlock()
        .arg("verify")
        .arg(bundle)
        .arg("--trust")
        .arg(trust)
        .arg("--json"));
    let json = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, json)
}

#[test]
fn the_image_carries_its_approvers_and_they_decide_who_signs_its_successor() {
    let env = Env::with(|spec| spec.packages = build_packages());
    let keys = env.path("keys");
    let keygen = |args: &[&str]| keygen(&keys, args);
    keygen(&["--builder"]);
    let mut signers = String::new();
    for who in ["alice", "bob", "carol", "mallory"] {
        let fingerprint = keygen(&["--release", who, "--valid-days", "30"]);
        if who != "mallory" {
            signers += &format!(
                "  {{ name = \"{who}\", fingerprint = \"{fingerprint}\", certificate_file = \"../keys/{who}.asc\" }},\n"
            );
        }
    }
    let recipe = format!(
        "{}\n[signing]\nthreshold = 2\nsigners = [\n{signers}]\nbuilders = [{{ name = \"ci\", key_file = \"../keys/builder.pub\" }}]\n",
        build_recipe(r#"["tar"]"#)
    );
    env.write_recipe(&recipe);
    assert_exit(&env.lock(&[]), 0);
    assert_exit(&build(&env), 0);
    let image = image_dir(&env.path("images"));

    // The anchors are in the image, byte for byte the operator's files.
    let root = env.path("root");
    untar(&image, &root);
    let trust = root.join("usr/share/airlock/trust");
    let read = |path: &Path| std::fs::read(path).unwrap();
    assert_eq!(read(&trust.join("trust.toml")), b"threshold = 2\n");
    for who in ["alice", "bob", "carol"] {
        assert_eq!(
            read(&trust.join(format!("release/{who}.asc"))),
            read(&keys.join(format!("{who}.asc")))
        );
    }
    assert!(!trust.join("release/mallory.asc").exists());
    assert_eq!(
        read(&trust.join("builder/ci.pub")),
        read(&keys.join("builder.pub"))
    );
    // The merged recipe carries the certificates, not the build machine's
    // paths, so a rebuild needs nothing else.
    let merged = String::from_utf8(read(&image.join("recipe.json"))).unwrap();
    assert!(
        merged.contains("BEGIN PGP PUBLIC KEY BLOCK") && !merged.contains("certificate_file"),
        "{merged}"
    );

    // The image's own directory verifies a bundle two of its approvers
    // signed, and refuses one an approver and an outsider signed.
    let export = |to: &str| {
        let output = run(airlock()
            .arg("export")
            .arg(&image)
            .args(["--expires", "2099-01-01", "--builder-key"])
            .arg(keys.join("builder.key"))
            .arg("--store")
            .arg(env.path("store"))
            .arg("--to")
            .arg(env.path(to)));
        assert_exit(&output, 0);
        env.path(to)
    };
    let sign = |bundle: &Path, who: &str| {
        assert_exit(
            &run(airlock()
                .arg("sign")
                .arg(bundle)
                .arg("--key")
                .arg(keys.join(format!("{who}.key")))),
            0,
        );
    };
    let approved = export("approved");
    sign(&approved, "alice");
    sign(&approved, "carol");
    let (output, json) = verify(&approved, &trust);
    assert_exit(&output, 0);
    assert_eq!(json["verified"], true, "{json}");
    assert_eq!(json["result"]["threshold"], 2);
    assert_eq!(json["result"]["signers"].as_array().unwrap().len(), 2);

    let outsider = export("outsider");
    sign(&outsider, "alice");
    sign(&outsider, "mallory");
    let (output, json) = verify(&outsider, &trust);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(json["rejection"]["kind"], "untrusted-signer", "{json}");
}

#[test]
fn a_certificate_that_is_not_the_pinned_signer_fails_the_build_by_name() {
    let env = Env::with(|spec| spec.packages = build_packages());
    let keys = env.path("keys");
    let keygen = |args: &[&str]| keygen(&keys, args);
    keygen(&["--builder"]);
    let alice = keygen(&["--release", "alice", "--valid-days", "30"]);
    keygen(&["--release", "mallory", "--valid-days", "30"]);
    // Alice's entry pins her fingerprint but names Mallory's certificate.
    let recipe = format!(
        "{}\n[signing]\nthreshold = 1\nsigners = [{{ name = \"alice\", fingerprint = \"{alice}\", certificate_file = \"../keys/mallory.asc\" }}]\nbuilders = [{{ name = \"ci\", key_file = \"../keys/builder.pub\" }}]\n",
        build_recipe(r#"["tar"]"#)
    );
    env.write_recipe(&recipe);
    assert_exit(&env.lock(&[]), 0);
    let output = build(&env);
    assert_exit(&output, 1);
    let message = stderr(&output);
    assert!(
        message.contains("[signing]: signers alice: the certificate is the certificate of")
            && message.contains(&format!("not the fingerprint {alice} the recipe pins")),
        "{message}"
    );
    // And no image is left behind.
    let images: Vec<_> = std::fs::read_dir(env.path("images/fixture"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    assert!(images.is_empty(), "{images:?}");
}
