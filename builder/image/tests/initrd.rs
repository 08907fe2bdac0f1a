//! The initrd without the network or QEMU: the generated /init as a
//! snapshot, the cpio writer read back by GNU cpio, and a whole initrd
//! written from a fixture tree (static tools, a fixture kernel's modules)
//! with its modules in dependency order, byte for byte the same twice.

use std::path::Path;
use std::process::Command;

use airlock_image::configure::modules::{Module, load_order, module_name};
use airlock_image::emit::cpio::{Entry, Writer};
use airlock_image::emit::initrd::{Kernel, init_script, write_initrd};
use airlock_store::Store;
use airlock_tree::{Content, Kind, Node, Tree};

const VERSION: &str = "6.1.0-test-amd64";

fn module(path: &str, depends: &[&str]) -> Module {
    Module {
        path: path.to_owned(),
        name: module_name(path),
        depends: depends.iter().map(|d| d.to_string()).collect(),
        ..Module::default()
    }
}

/// A fixture kernel's modules, listed (as modules.order would) before what
/// they depend on.
fn modules() -> Vec<Module> {
    vec![
        module("kernel/drivers/md/dm-verity.ko", &["dm_bufio", "dm_mod"]),
        module("kernel/drivers/md/dm-bufio.ko", &["dm_mod"]),
        module("kernel/drivers/md/dm-mod.ko", &[]),
        module("kernel/drivers/block/virtio_blk.ko", &["virtio_ring"]),
        module("kernel/drivers/virtio/virtio_ring.ko", &[]),
        module("kernel/fs/erofs/erofs.ko", &[]),
        module("kernel/sound/unused.ko", &[]),
    ]
}

fn wanted() -> Vec<String> {
    ["dm-verity", "virtio_blk", "erofs"]
        .map(str::to_owned)
        .to_vec()
}

#[test]
fn modules_load_after_what_they_need_and_only_those_asked_for() {
    let modules = modules();
    let order: Vec<&str> = load_order(&modules, &wanted())
        .unwrap()
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(
        order,
        [
            "dm_mod",
            "dm_bufio",
            "dm_verity",
            "virtio_ring",
            "virtio_blk",
            "erofs"
        ]
    );
    assert_eq!(
        load_order(&modules, &["nvme".to_owned()]).unwrap_err(),
        "nvme",
        "a module the kernel lacks is named"
    );
}

#[test]
fn the_generated_init_is_this_script() {
    let modules = modules();
    let order = load_order(&modules, &wanted()).unwrap();
    expect_test::expect_file!["snapshots/init.sh"].assert_eq(&init_script(VERSION, &order));
}

/// A 64-bit static ELF executable with no program or section headers: what
/// the initrd needs of busybox-static and dmsetup here (no DT_NEEDED).
fn static_elf(tag: u8) -> Vec<u8> {
    let mut elf = vec![0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2; // 64-bit
    elf[5] = 1; // little endian
    elf[6] = 1; // version
    elf[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf[18..20].copy_from_slice(&0x3eu16.to_le_bytes()); // x86-64
    elf[20..24].copy_from_slice(&1u32.to_le_bytes());
    elf[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    elf[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    elf[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
    elf.push(tag);
    elf
}

fn file(bytes: &[u8], mode: u32) -> Node {
    Node::new(Kind::File(Content::Inline(bytes.to_vec())), mode)
}

fn fixture_tree() -> Tree {
    let mut tree = Tree::merged_usr();
    tree.put("usr/bin/busybox", file(&static_elf(1), 0o755))
        .unwrap();
    tree.put("usr/sbin/dmsetup", file(&static_elf(2), 0o755))
        .unwrap();
    tree.put(&format!("boot/vmlinuz-{VERSION}"), file(b"kernel", 0o644))
        .unwrap();
    for module in modules() {
        let path = format!("usr/lib/modules/{VERSION}/{}", module.path);
        tree.put(
            &path,
            file(format!("module {}", module.name).as_bytes(), 0o644),
        )
        .unwrap();
    }
    tree
}

fn initrd(tree: &Tree, epoch: u64) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Store::open_scratch(dir.path().join("blobs")).unwrap();
    let kernel = Kernel {
        version: VERSION.to_owned(),
        vmlinuz: format!("boot/vmlinuz-{VERSION}"),
    };
    let mut out = Vec::new();
    write_initrd(
        tree,
        &blobs,
        &kernel,
        &modules(),
        &wanted(),
        epoch,
        3,
        &mut out,
    )
    .unwrap();
    out
}

/// GNU cpio's verbose listing and an extraction into `to`, or `None` when
/// cpio is missing (which fails under AIRLOCK_REQUIRE_TOOLS).
fn gnu_cpio(archive: &[u8], to: &Path) -> Option<String> {
    if !airlock_fixtures::gate::tool("cpio", "cpio") {
        return None;
    }
    let run = |args: &[&str]| {
        use std::io::Write;
        let mut child = Command::new("cpio")
            .args(args)
            .current_dir(to)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(archive).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "cpio {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let listing = run(&["-t", "-v", "--quiet", "--numeric-uid-gid"]);
    run(&[
        "-i",
        "-d",
        "-m",
        "--quiet",
        "--no-absolute-filenames",
        "--nonmatching",
        "dev/*",
    ]);
    Some(listing)
}

#[test]
fn gnu_cpio_reads_back_what_the_writer_wrote() {
    let mut archive = Vec::new();
    let mut writer = Writer::new(&mut archive, 1_700_000_000);
    let long = format!("usr/share/{}/file", "d".repeat(200));
    writer.append(".", &Entry::Directory, 0o755, 0, 0).unwrap();
    writer
        .append("etc", &Entry::Directory, 0o755, 0, 0)
        .unwrap();
    writer
        .append("etc/odd", &Entry::File(b"three".to_vec()), 0o640, 0, 0)
        .unwrap();
    writer
        .append("etc/setuid", &Entry::File(vec![7; 4097]), 0o4755, 0, 0)
        .unwrap();
    writer
        .append("etc/link", &Entry::Symlink("odd".to_owned()), 0o777, 0, 0)
        .unwrap();
    writer
        .append("dev", &Entry::Directory, 0o755, 0, 0)
        .unwrap();
    writer
        .append("dev/console", &Entry::CharDevice(5, 1), 0o600, 0, 0)
        .unwrap();
    for dir in ["usr", "usr/share", &long[..long.len() - 5]] {
        writer.append(dir, &Entry::Directory, 0o755, 0, 0).unwrap();
    }
    writer
        .append(&long, &Entry::File(Vec::new()), 0o644, 1000, 1000)
        .unwrap();
    writer.finish().unwrap();
    assert_eq!(archive.len() % 4, 0, "newc entries are 4-byte aligned");

    let dir = tempfile::tempdir().unwrap();
    let Some(listing) = gnu_cpio(&archive, dir.path()) else {
        return;
    };
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 11, "{listing}");
    assert!(listing.contains("crw-------"), "{listing}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("crw-------") && l.contains("5,") && l.ends_with("dev/console")),
        "{listing}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("-rwsr-xr-x") && l.ends_with("etc/setuid")),
        "{listing}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("lrwxrwxrwx") && l.ends_with("etc/link -> odd")),
        "{listing}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" 1000 ") && l.ends_with(&long)),
        "{listing}"
    );
    assert_eq!(std::fs::read(dir.path().join("etc/odd")).unwrap(), b"three");
    assert_eq!(
        std::fs::read(dir.path().join("etc/setuid")).unwrap(),
        vec![7; 4097]
    );
    assert_eq!(
        std::fs::read_link(dir.path().join("etc/link")).unwrap(),
        Path::new("odd")
    );
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir.path().join("etc/odd")).unwrap();
    assert_eq!(meta.mtime(), 1_700_000_000);
    assert_eq!(meta.mode() & 0o7777, 0o640);
}

#[test]
fn an_initrd_from_a_fixture_tree_holds_the_tools_the_modules_in_order_and_init() {
    let tree = fixture_tree();
    let first = initrd(&tree, 1_700_000_000);
    assert_eq!(
        first,
        initrd(&fixture_tree(), 1_700_000_000),
        "the same initrd twice"
    );
    assert_ne!(
        first,
        initrd(&tree, 1_700_000_001),
        "the epoch is every entry's time"
    );
    let archive = zstd::decode_all(first.as_slice()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let Some(listing) = gnu_cpio(&archive, dir.path()) else {
        return;
    };
    let names: Vec<&str> = listing
        .lines()
        .map(|l| l.split(" -> ").next().unwrap().rsplit(' ').next().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are sorted");
    for line in listing.lines() {
        assert!(line.contains(" 0 "), "owned by root: {line}");
    }
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("crw-------") && l.ends_with(" dev/console")),
        "{listing}"
    );
    assert!(listing.contains("bin -> usr/bin"), "{listing}");
    assert_eq!(
        std::fs::read(dir.path().join("usr/bin/busybox")).unwrap(),
        static_elf(1)
    );
    assert_eq!(
        std::fs::read(dir.path().join("usr/sbin/dmsetup")).unwrap(),
        static_elf(2)
    );
    let init = std::fs::read_to_string(dir.path().join("init")).unwrap();
    let modules = modules();
    assert_eq!(
        init,
        init_script(VERSION, &load_order(&modules, &wanted()).unwrap())
    );
    let loaded: Vec<&str> = init
        .lines()
        .find_map(|l| l.strip_prefix("for module in "))
        .unwrap()
        .trim_end_matches("; do")
        .split(' ')
        .collect();
    let base = format!("/usr/lib/modules/{VERSION}/kernel");
    assert_eq!(
        loaded,
        [
            "md/dm-mod.ko",
            "md/dm-bufio.ko",
            "md/dm-verity.ko",
            "virtio/virtio_ring.ko",
            "block/virtio_blk.ko"
        ]
        .iter()
        .map(|m| format!("{base}/drivers/{m}"))
        .chain([format!("{base}/fs/erofs/erofs.ko")])
        .collect::<Vec<_>>()
    );
    for module in &loaded {
        let bytes = std::fs::read(dir.path().join(module.trim_start_matches('/'))).unwrap();
        assert!(bytes.starts_with(b"module "), "{module}");
    }
    assert!(
        !dir.path()
            .join(format!("usr/lib/modules/{VERSION}/kernel/sound/unused.ko"))
            .exists()
    );
}

#[test]
fn an_initrd_without_its_tools_names_the_package_to_add() {
    let mut tree = fixture_tree();
    tree.remove("usr/sbin/dmsetup").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let blobs = Store::open_scratch(dir.path().join("blobs")).unwrap();
    let kernel = Kernel {
        version: VERSION.to_owned(),
        vmlinuz: format!("boot/vmlinuz-{VERSION}"),
    };
    let error = write_initrd(
        &tree,
        &blobs,
        &kernel,
        &modules(),
        &wanted(),
        0,
        3,
        Vec::new(),
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("add dmsetup to [packages] install"),
        "{error}"
    );
}
