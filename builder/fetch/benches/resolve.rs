//! Solver benchmark on the real Debian archive: resolve a request whose
//! closure is about 300 packages against bookworm, bookworm-updates and
//! bookworm-security (about 66 000 candidates).
//!
//! Loading the archive needs the network (the host's apt sources), so like
//! the network tests this runs only with AIRLOCK_TEST_NETWORK=1:
//!
//!     AIRLOCK_TEST_NETWORK=1 cargo bench -p airlock-fetch --bench resolve

use std::path::Path;

use airlock_debian::relation::parse_relations;
use airlock_debian::solver::{Request, resolve};
use airlock_fetch::archive::{self, ArchiveOptions};
use airlock_fetch::http::Http;
use airlock_fetch::mirror;
use airlock_recipe::{Archive, BaseSet, HostPath};
use criterion::{Criterion, criterion_group, criterion_main};

/// The request: minbase, an init system, a kernel and a server's worth of
/// tools, including virtual packages (an MTA) and alternatives.
const INSTALL: &[&str] = &[
    "systemd-sysv",
    "nftables",
    "auditd",
    "bubblewrap",
    "busybox-static",
    "ca-certificates",
    "python3",
    "openssh-server",
    "curl",
    "iproute2",
    "sudo",
    "rsync",
    "gnupg",
    "git",
    "perl",
    "build-essential",
    "python3-pip",
    "lvm2",
    "cryptsetup",
    "tmux",
    "htop",
    "postfix",
    "chrony",
    "man-db",
    "dbus",
    "xfsprogs",
    "zstd",
    "jq",
    "linux-image-cloud-amd64",
];

fn solver(c: &mut Criterion) {
    if std::env::var_os("AIRLOCK_TEST_NETWORK").is_none() {
        eprintln!("skipped: loading the archive needs the network; set AIRLOCK_TEST_NETWORK=1");
        return;
    }
    let store_dir = tempfile::tempdir().unwrap();
    let store = airlock_store::Store::open(store_dir.path()).unwrap();
    let suites: Vec<String> = ["bookworm", "bookworm-updates", "bookworm-security"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let archive = Archive {
        suites: suites.clone(),
        components: vec!["main".to_owned()],
        architecture: "amd64".to_owned(),
        keyring: Some("keys/debian/bookworm.pgp".parse::<HostPath>().unwrap()),
    };
    let mirrors = mirror::resolve(&suites, &archive.components, &[], None, Path::new("/")).unwrap();
    let keyring_bytes =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../keys/debian/bookworm.pgp"))
            .unwrap();
    let keyring = airlock_debian::release::read_keyring(&keyring_bytes).unwrap();
    let options = ArchiveOptions {
        insecure_ignore_valid_until: false,
        now: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    };
    let loaded = archive::load(
        &Http::new(),
        &store,
        &mirrors,
        &archive,
        &keyring,
        options,
        &|_| {},
    )
    .unwrap();
    let request = Request {
        base: BaseSet::Minbase,
        install: INSTALL
            .iter()
            .flat_map(|r| parse_relations(r).unwrap())
            .collect(),
        exclude: Vec::new(),
    };
    let closure = resolve(&loaded.universe, &request).unwrap().len();
    eprintln!(
        "closure: {closure} packages from {} candidates",
        loaded.universe.len()
    );
    assert!(
        (250..=350).contains(&closure),
        "the request should close over about 300 packages"
    );

    let mut group = c.benchmark_group("solver");
    group.sample_size(20);
    group.bench_function(format!("resolve_{closure}_packages"), |b| {
        b.iter(|| resolve(&loaded.universe, &request).unwrap())
    });
    group.finish();
}

criterion_group!(benches, solver);
criterion_main!(benches);
