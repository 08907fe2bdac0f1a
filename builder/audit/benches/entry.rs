//! What one action log entry costs: signing it with both keys (Ed25519
//! and ML-DSA-65) and appending it with its fsync, and verifying it.
//! `cargo bench -p airlock-audit`.

use airlock_audit::{Action, Decision, HostKey, Writer, verify};
use criterion::{Criterion, criterion_group, criterion_main};

fn action(i: u64) -> Action {
    Action {
        time: 1_800_000_000 + i,
        service: "inference".into(),
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        body_sha256: "ab".repeat(32),
        decision: Decision::Allowed,
        approver: None,
        status: Some(200),
    }
}

fn entry(c: &mut Criterion) {
    let key = HostKey::from_seed(&[3; 64]);
    c.bench_function("sign one entry (Ed25519 + ML-DSA-65)", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            key.sign(i, "00", action(i))
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("actions.log");
    let mut writer = Writer::open(&path, HostKey::from_seed(&[3; 64])).unwrap();
    c.bench_function("append one entry (sign, write, fsync)", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            writer.append(action(i)).unwrap()
        })
    });
    let small = dir.path().join("hundred.log");
    let mut hundred = Writer::open(&small, HostKey::from_seed(&[3; 64])).unwrap();
    for i in 0..100 {
        hundred.append(action(i)).unwrap();
    }
    let bytes = std::fs::read(&small).unwrap();
    let public = key.public();
    c.bench_function("verify 100 entries", |b| {
        b.iter(|| verify(bytes.as_slice(), &public).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = entry
}
criterion_main!(benches);
