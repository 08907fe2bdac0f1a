//! InRelease verification against keys generated for the test.

use airlock_debian::release::{ReleaseError, read_keyring, verify_inrelease};
use airlock_fixtures::TestKey;

const RELEASE: &str = "Origin: test\nSuite: test\nCodename: test\nDate: Sat, 10 May 2025 09:12:34 UTC\nSHA256:\n 0000000000000000000000000000000000000000000000000000000000000000 0 main/binary-amd64/Packages\n";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn a_good_signature_yields_exactly_the_signed_text() {
    let key = TestKey::generate("archive");
    let signed = key.clearsign(RELEASE.as_bytes());
    let keyring = read_keyring(&key.public_keyring()).unwrap();
    let text = verify_inrelease(&signed, &keyring, now()).unwrap();
    assert_eq!(String::from_utf8(text).unwrap(), RELEASE);
}

#[test]
fn a_keyring_with_other_keys_too_still_verifies() {
    let key = TestKey::generate("archive");
    let other = TestKey::generate("other");
    let signed = key.clearsign(RELEASE.as_bytes());
    let mut keyring_bytes = other.public_keyring();
    keyring_bytes.extend(key.public_keyring());
    let keyring = read_keyring(&keyring_bytes).unwrap();
    assert_eq!(keyring.len(), 2);
    assert!(verify_inrelease(&signed, &keyring, now()).is_ok());
}

#[test]
fn a_signature_by_a_key_outside_the_keyring_is_refused() {
    let key = TestKey::generate("archive");
    let stranger = TestKey::generate("stranger");
    let signed = stranger.clearsign(RELEASE.as_bytes());
    let keyring = read_keyring(&key.public_keyring()).unwrap();
    let error = verify_inrelease(&signed, &keyring, now()).unwrap_err();
    assert!(matches!(error, ReleaseError::Unsigned { .. }), "{error}");
    assert!(
        error.to_string().contains("(not in the keyring)"),
        "{error}"
    );
}

#[test]
fn altered_text_is_refused() {
    let key = TestKey::generate("archive");
    let signed = String::from_utf8(key.clearsign(RELEASE.as_bytes())).unwrap();
    let keyring = read_keyring(&key.public_keyring()).unwrap();
    let altered = signed.replace("Codename: test", "Codename: evil");
    assert_ne!(altered, signed);
    let error = verify_inrelease(altered.as_bytes(), &keyring, now()).unwrap_err();
    assert!(
        matches!(
            error,
            ReleaseError::BadSignature(_) | ReleaseError::Unsigned { .. }
        ),
        "{error}"
    );
}

#[test]
fn unsigned_text_and_garbage_are_refused() {
    let key = TestKey::generate("archive");
    let keyring = read_keyring(&key.public_keyring()).unwrap();
    assert!(verify_inrelease(RELEASE.as_bytes(), &keyring, now()).is_err());
    assert!(verify_inrelease(b"\x00\xff garbage", &keyring, now()).is_err());
    assert!(read_keyring(b"not a key").is_err());
    assert!(read_keyring(b"").is_err());
}

#[test]
fn the_shipped_debian_keyring_parses() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../keys/debian/bookworm.pgp"
    ))
    .unwrap();
    let keyring = read_keyring(&bytes).unwrap();
    let fingerprints: Vec<String> = keyring.iter().map(|c| c.fingerprint().to_hex()).collect();
    assert_eq!(
        fingerprints,
        [
            "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8",
            "05AB90340C0C5E797F44A8C8254CF3B5AEC0A8F0",
            "4D64FEC119C2029067D6E791F8D2585B8783D481",
        ]
    );
}
