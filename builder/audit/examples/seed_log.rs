//! Writes a small real action log, signed by the fuzz target's key (the
//! seed bytes [1; 64]), to the path given: the audit fuzz target's seed
//! (fuzz/make-seeds runs it).

use airlock_audit::{Action, Decision, HostKey, Writer};

fn main() {
    let path = std::env::args().nth(1).expect("usage: seed_log PATH");
    let mut writer = Writer::open(path.as_ref(), HostKey::from_seed(&[1; 64])).expect("a log");
    let decisions = [
        (Decision::Allowed, None, Some(200)),
        (Decision::Approved, Some("alice"), Some(201)),
        (Decision::TimedOut, None, None),
        (Decision::Refused, None, None),
    ];
    for (i, (decision, approver, status)) in decisions.into_iter().enumerate() {
        writer
            .append(Action {
                time: 1_800_000_000 + i as u64,
                service: "tickets".into(),
                method: if i % 2 == 0 { "GET" } else { "POST" }.into(),
                path: format!("/api/tickets/{i}"),
                body_sha256: format!("{:064x}", i),
                decision,
                approver: approver.map(str::to_owned),
                status,
            })
            .expect("appended");
    }
}
