//! mmdebstrap as the oracle for the example recipes: each is locked and
//! built by airlock, the same locked .debs are installed by mmdebstrap
//! (which runs every maintainer script, in a chroot), and the two trees
//! must agree on users, groups and everything under /etc and /var/lib, or
//! differ only as `qemu-tests/oracle/allow.toml` says and why
//! (`qemu_tests::oracle`). reference-all.toml is reference.toml with more
//! emitters: the same packages, so the same tree. The corpus has its own
//! run in tests/corpus.rs. Gated on the network (AIRLOCK_TEST_NETWORK=1),
//! mmdebstrap, dpkg-dev and root.

use std::path::Path;

use qemu_tests::oracle;
use qemu_tests::setup::{copy_tree, lock_and_build, serial, workspace};

fn enabled() -> bool {
    airlock_fixtures::gate::network("comparing airlock's images with mmdebstrap's")
        && oracle::available()
}

/// Builds recipes/NAME.toml in a scratch copy of the recipes and compares
/// it with mmdebstrap's tree.
fn recipe_agrees_with_mmdebstrap(name: &str) {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_tree(&workspace().join("recipes"), &root.join("recipes"));
    copy_tree(&workspace().join("keys/debian"), &root.join("keys/debian"));
    if name == "agent-node" {
        airlock_example_model::write_file(
            &root.join("recipes/agent-node/model/example.gguf"),
            airlock_example_model::SEED,
        )
        .unwrap();
    }
    let image = lock_and_build(
        &root.join(format!("recipes/{name}.toml")),
        &root.join("images"),
        name,
    );
    let allowed = oracle::against_mmdebstrap(name, Path::new(&image));
    assert!(
        !allowed.is_empty(),
        "an image with no difference at all from mmdebstrap's would mean the comparison read nothing"
    );
}

#[test]
fn minimal_agrees_with_mmdebstrap() {
    recipe_agrees_with_mmdebstrap("minimal");
}

#[test]
fn reference_agrees_with_mmdebstrap() {
    recipe_agrees_with_mmdebstrap("reference");
}

#[test]
fn server_agrees_with_mmdebstrap() {
    recipe_agrees_with_mmdebstrap("server");
}

#[test]
fn agent_node_agrees_with_mmdebstrap() {
    recipe_agrees_with_mmdebstrap("agent-node");
}
