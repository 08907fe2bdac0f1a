//! The image's own trust anchors: a recipe whose `[signing]` names the
//! approvers' certificates and the builder's key carries them in
//! /usr/share/airlock/trust, and that directory, taken from the built image
//! alone, is what decides whether the next bundle verifies.

use std::path::Path;

use super::trust::{Release, airlock, run};
use super::{Env, assert_exit, build_packages, build_recipe, stderr, untar};

/// `airlock keygen ARGS --out KEYS`: what it prints (a fingerprint or a
/// key id).
fn keygen(keys: &Path, args: &[&str]) -> String {
    let output = run(airlock().arg("keygen").args(args).arg("--out").arg(keys));
    assert_exit(&output, 0);
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A fixture repository and keys (no trust directory: the image brings
/// its own).
fn release() -> Release {
    Release {
        env: Env::with(|spec| spec.packages = build_packages()),
    }
}

#[test]
fn the_image_carries_its_approvers_and_they_decide_who_signs_its_successor() {
    let release = release();
    let keys = release.path("keys");
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
    release.env.write_recipe(&recipe);
    assert_exit(&release.env.lock(&[]), 0);
    let image = release.build("images");

    // The anchors are in the image, byte for byte the operator's files.
    let root = release.path("root");
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
        let bundle = release.path(to);
        assert_exit(
            &release.export(&image, &["--to", bundle.to_str().unwrap()]),
            0,
        );
        bundle
    };
    let approved = export("approved");
    release.sign(&approved, "alice");
    release.sign(&approved, "carol");
    let (output, json) = release.verify_against(&approved, &trust, &[]);
    assert_exit(&output, 0);
    assert_eq!(json["verified"], true, "{json}");
    assert_eq!(json["result"]["threshold"], 2);
    assert_eq!(json["result"]["signers"].as_array().unwrap().len(), 2);

    let outsider = export("outsider");
    release.sign(&outsider, "alice");
    release.sign(&outsider, "mallory");
    release.rejected_by(&outsider, &trust, &[], "untrusted-signer");
}

#[test]
fn a_certificate_that_is_not_the_pinned_signer_fails_the_build_by_name() {
    let release = release();
    let keys = release.path("keys");
    let keygen = |args: &[&str]| keygen(&keys, args);
    keygen(&["--builder"]);
    let alice = keygen(&["--release", "alice", "--valid-days", "30"]);
    keygen(&["--release", "mallory", "--valid-days", "30"]);
    // Alice's entry pins her fingerprint but names Mallory's certificate.
    let recipe = format!(
        "{}\n[signing]\nthreshold = 1\nsigners = [{{ name = \"alice\", fingerprint = \"{alice}\", certificate_file = \"../keys/mallory.asc\" }}]\nbuilders = [{{ name = \"ci\", key_file = \"../keys/builder.pub\" }}]\n",
        build_recipe(r#"["tar"]"#)
    );
    release.env.write_recipe(&recipe);
    assert_exit(&release.env.lock(&[]), 0);
    let output = release.try_build("images");
    assert_exit(&output, 1);
    let message = stderr(&output);
    assert!(
        message.contains("[signing]: signers alice: the certificate is the certificate of")
            && message.contains(&format!("not the fingerprint {alice} the recipe pins")),
        "{message}"
    );
    // And no image is left behind.
    let images: Vec<_> = std::fs::read_dir(release.path("images/fixture"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    assert!(images.is_empty(), "{images:?}");
}
