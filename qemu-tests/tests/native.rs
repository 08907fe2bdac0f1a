//! The formats airlock writes itself, on the real minimal recipe:
//! recipes/minimal.toml with `erofs_compression = "none"`, built by
//! `nobody` (no root anywhere in the build), boots and passes its test file
//! through `airlock test`, and `fsck.erofs --extract` of its EROFS root
//! gives exactly the tree of its rootfs.tar.zst. (boot.rs checks the ostree
//! commit against `ostree commit`; builder/erofs's tests mount the writer's
//! images in the host's kernel.) Needs root to become nobody and to unpack
//! with owners, QEMU, erofs-utils and the Debian archive.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use qemu_tests::setup::{airlock, copy_tree, enabled, serial, shared_tempdir, workspace};

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every path below `root`: kind, permissions (setuid and setgid aside:
/// fsck.erofs 1.5 sets the owner after the mode, which clears them), owner,
/// size, content digest or link target.
fn describe(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let kind = meta.file_type();
        let what = if kind.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            "dir".to_owned()
        } else if kind.is_symlink() {
            format!("link {}", std::fs::read_link(&path).unwrap().display())
        } else if kind.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            format!(
                "file {} {}",
                bytes.len(),
                airlock_format::Sha256::of(&bytes)
            )
        } else {
            format!("special {:x}", meta.rdev())
        };
        let relative = path.strip_prefix(root).unwrap().display().to_string();
        out.insert(
            format!("/{relative}"),
            format!(
                "{what} {:o} {}:{}",
                meta.mode() & 0o1777,
                meta.uid(),
                meta.gid()
            ),
        );
    }
    out
}

#[test]
fn the_minimal_recipe_built_natively_by_nobody_boots_and_matches_its_tar() {
    if !enabled() || !airlock_fixtures::gate::root("building as nobody and unpacking with owners") {
        return;
    }
    let _serial = serial();
    let scratch = shared_tempdir();
    let root = scratch.path();
    for file in ["recipes/minimal.toml", "keys/debian/bookworm.pgp"] {
        std::fs::create_dir_all(root.join(file).parent().unwrap()).unwrap();
        std::fs::copy(workspace().join(file), root.join(file)).unwrap();
    }
    copy_tree(
        &workspace().join("recipes/tests"),
        &root.join("recipes/tests"),
    );
    let recipe = root.join("recipes/minimal.toml");
    let text = std::fs::read_to_string(&recipe).unwrap();
    let native = text.replace(
        "[output]\nformats = [",
        "[output]\nerofs_compression = \"none\"\nformats = [",
    );
    assert_ne!(text, native, "recipes/minimal.toml's [output] changed");
    std::fs::write(&recipe, native).unwrap();
    run(Command::new(airlock())
        .arg("lock")
        .arg(&recipe)
        .env_remove("AIRLOCK_MIRROR"));
    // nobody gets the folder, a copy of airlock it can run, and a store of
    // its own.
    let bin = root.join("bin/airlock");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(airlock(), &bin).unwrap();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    run(Command::new("chown")
        .args(["-R", "nobody:nogroup"])
        .arg(root));
    let images = root.join("images");
    let build = Command::new("setpriv")
        .args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
        .arg(&bin)
        .arg("build")
        .arg(&recipe)
        .arg("--output")
        .arg(&images)
        .arg("--store")
        .arg(root.join("store"))
        .env("HOME", root)
        .env("TMPDIR", root)
        .env_remove("AIRLOCK_MIRROR")
        .env_remove("AIRLOCK_STORE")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&build.stderr);
    eprintln!("{log}");
    assert!(build.status.success(), "airlock build as nobody: {log}");
    let image = airlock_fixtures::only_image(&images.join("minimal"));
    assert_eq!(
        std::fs::metadata(image.join("root.erofs")).unwrap().uid(),
        65534
    );

    // It boots: the minimal recipe's own test file.
    let tested = Command::new(airlock())
        .arg("test")
        .arg(&image)
        .arg("--tests")
        .arg(root.join("recipes/tests/minimal.toml"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&tested.stderr);
    eprintln!("{report}");
    assert!(tested.status.success(), "airlock test: {report}");

    // The EROFS root holds exactly the tar's tree.
    let from_erofs = root.join("from-erofs");
    run(Command::new("fsck.erofs")
        .arg(format!("--extract={}", from_erofs.display()))
        .arg("--preserve")
        .arg(image.join("root.erofs")));
    let from_tar = root.join("from-tar");
    std::fs::create_dir(&from_tar).unwrap();
    run(Command::new("tar")
        .args(["--zstd", "-xpf"])
        .arg(image.join("rootfs.tar.zst"))
        .args(["--numeric-owner", "-C"])
        .arg(&from_tar));
    let (erofs, tar) = (describe(&from_erofs), describe(&from_tar));
    let differing: Vec<_> = tar
        .iter()
        .filter(|(path, what)| *path != "/" && erofs.get(*path) != Some(*what))
        .take(5)
        .map(|(path, what)| format!("{path}: tar {what}, erofs {:?}", erofs.get(path)))
        .collect();
    assert!(differing.is_empty(), "{differing:#?}");
    assert_eq!(erofs.len(), tar.len(), "the same paths");
    assert!(tar.len() > 5_000, "{} paths", tar.len());
}
