use super::*;

fn key(byte: u8) -> HostKey {
    HostKey::from_seed(&[byte; 64])
}

fn action(i: u64) -> Action {
    Action {
        time: 1_800_000_000 + i,
        service: "inference".to_owned(),
        method: if i.is_multiple_of(2) { "GET" } else { "POST" }.to_owned(),
        path: format!("/v1/items/{i}"),
        body_sha256: hex::encode(sha2::Sha256::digest(i.to_string())),
        decision: if i == 3 {
            Decision::Approved
        } else {
            Decision::Allowed
        },
        approver: (i == 3).then(|| "alice".to_owned()),
        status: Some(200),
    }
}

/// A log of `n` entries written through [`Writer`], as lines.
fn log(dir: &Path, n: u64) -> Vec<String> {
    let path = dir.join("actions.log");
    let mut writer = Writer::open(&path, key(1)).unwrap();
    for i in 0..n {
        writer.append(action(i)).unwrap();
    }
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn check(lines: &[String]) -> Result<Verified, Broken> {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    verify(text.as_bytes(), &key(1).public())
}

#[test]
fn a_written_log_verifies_and_names_its_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let lines = log(dir.path(), 5);
    let verified = check(&lines).unwrap();
    assert_eq!(verified.entries, 5);
    assert_eq!(verified.last, line_digest(lines[4].as_bytes()));
    let empty = verify(&b""[..], &key(1).public()).unwrap();
    assert_eq!((empty.entries, empty.last), (0, key(1).public().genesis()));
}

#[test]
fn a_changed_entry_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = log(dir.path(), 5);
    lines[2] = lines[2].replace("\"status\":200", "\"status\":201");
    let broken = check(&lines).unwrap_err();
    assert_eq!(
        broken.to_string(),
        "line 3 (entry 2): the Ed25519 signature does not verify: the entry was changed"
    );
}

#[test]
fn a_removed_entry_is_named_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = log(dir.path(), 5);
    lines.remove(2);
    let broken = check(&lines).unwrap_err();
    assert_eq!(
        broken.to_string(),
        "line 3 (entry 3): entry 3 stands where entry 2 belongs: entries were removed or reordered"
    );
}

#[test]
fn two_swapped_entries_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = log(dir.path(), 5);
    lines.swap(1, 3);
    let broken = check(&lines).unwrap_err();
    assert_eq!((broken.line, broken.seq), (2, Some(3)));
}

#[test]
fn an_entry_from_another_chain_breaks_the_chain() {
    // The same key, another log: each entry is well signed, but it does
    // not follow this log's line before it.
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut lines = log(a.path(), 4);
    let path = b.path().join("other.log");
    let mut other = Writer::open(&path, key(1)).unwrap();
    for i in 0..4 {
        other.append(action(i + 100)).unwrap();
    }
    let foreign: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines[2] = foreign[2].clone();
    let broken = check(&lines).unwrap_err();
    assert_eq!(broken.line, 3);
    assert!(broken.reason.contains("does not follow"), "{broken}");
}

#[test]
fn each_signature_is_checked_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let lines = log(dir.path(), 2);
    let mut entry: Entry = serde_json::from_str(&lines[1]).unwrap();
    // The ML-DSA signature of entry 0 on entry 1: Ed25519 still verifies.
    let first: Entry = serde_json::from_str(&lines[0]).unwrap();
    entry.ml_dsa_65 = first.ml_dsa_65;
    let changed = vec![lines[0].clone(), serde_json::to_string(&entry).unwrap()];
    let broken = check(&changed).unwrap_err();
    assert_eq!(broken.line, 2);
    assert!(
        broken
            .reason
            .starts_with("the ML-DSA-65 signature does not verify"),
        "{broken}"
    );
    // Another key: nothing verifies from the first line on.
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let other = verify(text.as_bytes(), &key(2).public()).unwrap_err();
    assert_eq!(other.line, 1);
}

#[test]
fn the_chain_continues_across_reopening_and_a_broken_log_is_not_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("actions.log");
    log(dir.path(), 3);
    // Reopened (a reboot): the next entry continues the chain.
    let mut writer = Writer::open(&path, key(1)).unwrap();
    let entry = writer.append(action(3)).unwrap();
    assert_eq!(entry.seq, 3);
    drop(writer);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        verify(text.as_bytes(), &key(1).public()).unwrap().entries,
        4
    );
    // Truncated mid-line: refused, and the file is left as it was.
    let cut = &text[..text.len() - 10];
    std::fs::write(&path, cut).unwrap();
    let error = Writer::open(&path, key(1)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "line 4: the last line is cut short (no newline); nothing appended"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), cut);
}

#[test]
fn keys_round_trip_through_their_files() {
    let secret = key(7);
    let text = secret.secret_text();
    assert_eq!(text.len(), 129);
    let again = HostKey::parse_secret("secret", &text).unwrap();
    assert_eq!(again.public(), secret.public());
    let public = secret.public().to_text();
    let parsed = PublicKey::parse("public", &public).unwrap();
    assert_eq!(parsed, secret.public());
    assert_eq!(parsed.fingerprint().len(), 64);
    let error = PublicKey::parse(
        "k.pub",
        "airlock action log public key v1\ned25519 AAAA\nml-dsa-65 AAAA\n",
    )
    .unwrap_err();
    assert_eq!(error.to_string(), "k.pub: the ed25519 key is not 32 bytes");
    let error = PublicKey::parse("k.pub", "something else\n").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("k.pub: the first line is not"),
        "{error}"
    );
}

#[test]
fn signing_is_deterministic() {
    let a = key(1).sign(0, "x", action(0));
    let b = key(1).sign(0, "x", action(0));
    assert_eq!(a, b);
}
