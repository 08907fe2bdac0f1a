//! The corpus (qemu-tests/recipes/corpus.toml): 44 packages ops teams put
//! on golden server images, configured with no maintainer script run.
//! It builds with every gap named and acknowledged in the recipe (a new
//! one fails the build), reproducibly, and boots under TCG with the
//! services airlock configures fully running and answering: ssh, nginx,
//! chrony, PostgreSQL and MariaDB (their data made at first boot), Redis,
//! rsyslog,
//! cron, the node exporter. The units still known to fail are listed in
//! [`KNOWN_FAILING`] with why; the test fails if another fails, or if one
//! of them starts working (so that the list only shrinks). Gated like the
//! other boot tests (AIRLOCK_TEST_NETWORK=1).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use airlock_boot::{Image, Options};
use qemu_tests::Machine;
use qemu_tests::setup::{copy_tree, enabled, lock_and_build, rebuild_elsewhere, serial, workspace};

const BOOT: Duration = Duration::from_secs(600);
const HARD_LIMIT: Duration = Duration::from_secs(1200);
const COMMAND: Duration = Duration::from_secs(120);

/// The units that fail on the corpus image today, and why: each is a gap
/// the recipe acknowledges.
const KNOWN_FAILING: &[(&str, &str)] = &[(
    "named.service",
    "bind9's postinst steps after its rndc key are not done yet (acknowledged in the \
     recipe): without the group's write on /var/cache/bind, named cannot keep its managed keys",
)];

fn build(root: &Path) -> PathBuf {
    for file in ["recipes/server.toml", "keys/debian/bookworm.pgp"] {
        std::fs::create_dir_all(root.join(file).parent().unwrap()).unwrap();
        std::fs::copy(workspace().join(file), root.join(file)).unwrap();
    }
    for folder in ["qemu-tests/recipes", "qemu-tests/overlay"] {
        copy_tree(&workspace().join(folder), &root.join(folder));
    }
    lock_and_build(
        &root.join("qemu-tests/recipes/corpus.toml"),
        &root.join("images"),
        "corpus",
    )
}

fn built() -> &'static (tempfile::TempDir, PathBuf) {
    static BUILT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let folder = build(dir.path());
        (dir, folder)
    })
}

fn report(folder: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(folder.join("build-report.json")).unwrap())
        .unwrap()
}

#[test]
fn the_corpus_builds_with_every_gap_acknowledged_and_reproducibly() {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let (dir, first) = built();
    let report = report(first);
    let notes: Vec<&str> = report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    // Every gap is acknowledged (an unacknowledged one fails the build),
    // and every acknowledgement still names one.
    for note in &notes {
        assert!(
            !note.starts_with("maintainer script step not done: ") && !note.contains("can go"),
            "{note}"
        );
    }
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("maintainer script step not done (acknowledged: ")),
        "{notes:?}"
    );
    let makers: Vec<&str> = report["first_boot"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        makers,
        [
            "ssh-host-keys",
            "mariadb-datadir",
            "postgresql-cluster",
            "ssl-snakeoil"
        ]
    );
    let (_other, second) =
        rebuild_elsewhere(dir.path(), "qemu-tests/recipes/corpus.toml", "corpus");
    assert_eq!(
        airlock_fixtures::tree_digests(first),
        airlock_fixtures::tree_digests(&second),
        "every artifact is byte-identical"
    );
}

#[test]
fn the_corpus_boots_and_its_services_answer() {
    if !enabled() {
        return;
    }
    let _serial = serial();
    let (_, folder) = built();
    let image = Image::open(folder).unwrap();
    let options = Options {
        memory_mib: 2048,
        network: true,
        ..Options::default()
    };
    let mut machine = Machine::boot(&image, options, HARD_LIMIT).unwrap();
    machine.connect(BOOT).unwrap();
    let _ = machine.run(
        "timeout 480 systemctl is-system-running --wait",
        Duration::from_secs(500),
    );
    let failed = machine
        .check(
            "systemctl --failed --no-legend --plain --no-pager | cut -d' ' -f1",
            COMMAND,
        )
        .unwrap();
    let failed: Vec<&str> = failed.split_whitespace().collect();
    let known: Vec<&str> = KNOWN_FAILING.iter().map(|(unit, _)| *unit).collect();
    let journal = machine
        .check(
            &format!(
                "for u in {}; do journalctl -b --no-pager -u $u | tail -n 25; done",
                failed.join(" ")
            ),
            COMMAND,
        )
        .unwrap_or_default();
    assert_eq!(
        failed, known,
        "failed units (expected {KNOWN_FAILING:?}):\n{journal}"
    );
    let active = machine
        .run(
            "systemctl is-active ssh.service nginx.service chrony.service \
             postgresql@15-main.service redis-server.service rsyslog.service cron.service \
             prometheus-node-exporter.service airlock-postgresql-cluster.service \
             airlock-ssl-snakeoil.service mariadb.service airlock-mariadb-datadir.service",
            COMMAND,
        )
        .unwrap();
    assert_eq!(
        active.output.split_whitespace().collect::<Vec<_>>(),
        ["active"; 12],
        "{}",
        active.output
    );
    let http = machine
        .check(
            "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/",
            COMMAND,
        )
        .unwrap();
    assert_eq!(http, "200");
    let query = machine
        .check("runuser -u postgres -- psql -tAc 'select 40 + 2'", COMMAND)
        .unwrap();
    assert_eq!(query.trim(), "42");
    let maria = machine
        .check("mariadb -N -e 'select 40 + 2'", COMMAND)
        .unwrap();
    assert_eq!(maria.trim(), "42");
    let ping = machine.check("redis-cli ping", COMMAND).unwrap();
    assert_eq!(ping.trim(), "PONG");
    let sources = machine.run("chronyc -n sources", COMMAND).unwrap();
    assert_eq!(sources.status, 0, "{}", sources.output);
    let metrics = machine
        .check(
            "curl -s http://127.0.0.1:9100/metrics | grep -c '^node_'",
            COMMAND,
        )
        .unwrap();
    assert!(metrics.trim().parse::<u32>().unwrap_or(0) > 10, "{metrics}");
    let status = machine.poweroff(Duration::from_secs(120)).unwrap();
    assert!(status.success(), "QEMU exited with {status}");
}
