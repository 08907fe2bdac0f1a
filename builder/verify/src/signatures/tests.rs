//! Signature rules: revocations (hard and soft, certificate and subkey),
//! expiry, and the strict reading of the signature file.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openpgp::cert::prelude::*;
use openpgp::packet::signature::SignatureBuilder;
use openpgp::packet::signature::subpacket::NotationDataFlags;
use openpgp::serialize::Serialize;
use openpgp::types::ReasonForRevocation;

use super::*;

const MESSAGE: &[u8] = b"{\"name\":\"minimal\"}";
const DAY: u64 = 86_400;

fn at(days: u64) -> SystemTime {
    // 2026-01-01 plus days.
    UNIX_EPOCH + Duration::from_secs(1_767_225_600 + days * DAY)
}

/// A release-style certificate (certify-only primary, signing subkey)
/// made at day 0, valid for `valid_days`.
fn approver(valid_days: u64) -> Cert {
    CertBuilder::new()
        .set_cipher_suite(CipherSuite::Cv25519)
        .add_userid("Ada <ada@example.org>")
        .add_signing_subkey()
        .set_creation_time(at(0))
        .set_validity_period(Duration::from_secs(valid_days * DAY))
        .generate()
        .expect("generate")
        .0
}

fn sign(cert: &Cert, when: SystemTime) -> Signature {
    let policy = StandardPolicy::new();
    let key = cert
        .keys()
        .with_policy(&policy, when)
        .for_signing()
        .secret()
        .next()
        .expect("a signing key")
        .key()
        .clone();
    let mut pair = key.into_keypair().expect("keypair");
    SignatureBuilder::new(SignatureType::Binary)
        .set_signature_creation_time(when)
        .expect("time")
        .sign_message(&mut pair, MESSAGE)
        .expect("sign")
}

fn primary_signer(cert: &Cert) -> openpgp::crypto::KeyPair {
    cert.primary_key()
        .key()
        .clone()
        .parts_into_secret()
        .expect("secret")
        .into_keypair()
        .expect("keypair")
}

fn revoke_cert(cert: &Cert, reason: ReasonForRevocation, when: SystemTime) -> Cert {
    let revocation = CertRevocationBuilder::new()
        .set_reason_for_revocation(reason, b"test")
        .expect("reason")
        .set_signature_creation_time(when)
        .expect("time")
        .build(&mut primary_signer(cert), cert, None)
        .expect("revoke");
    cert.clone().insert_packets(revocation).expect("merge").0
}

fn revoke_subkey(cert: &Cert, reason: ReasonForRevocation, when: SystemTime) -> Cert {
    let subkey = cert.keys().subkeys().next().expect("subkey");
    let revocation = SubkeyRevocationBuilder::new()
        .set_reason_for_revocation(reason, b"test")
        .expect("reason")
        .set_signature_creation_time(when)
        .expect("time")
        .build(&mut primary_signer(cert), cert, subkey.key(), None)
        .expect("revoke");
    cert.clone().insert_packets(revocation).expect("merge").0
}

fn verdict(cert: &Cert, sig: Signature, now: SystemTime) -> Result<Approvals, Rejection> {
    check(MESSAGE, &[sig], std::slice::from_ref(cert), 1, now)
}

fn kind(result: Result<Approvals, Rejection>) -> &'static str {
    match result {
        Ok(_) => "counted",
        Err(rejection) => rejection.kind(),
    }
}

#[test]
fn an_unrevoked_live_approver_counts() {
    let cert = approver(365);
    let approvals = verdict(&cert, sign(&cert, at(10)), at(20)).expect("counted");
    assert_eq!(approvals.signers, vec![cert.fingerprint().to_hex()]);
}

/// Regression: a revocation of the certificate itself (what `airlock keygen
/// --release` writes to NAME.rev, merged into NAME.asc) was ignored, since
/// only the signing subkey's revocation status was looked at.
#[test]
fn certificate_revocations_hard_void_all_soft_void_later_signatures() {
    let cert = approver(365);
    let sig = sign(&cert, at(10));
    let cases = [
        (ReasonForRevocation::KeyCompromised, 20, "revoked-signer"),
        (ReasonForRevocation::Unspecified, 20, "revoked-signer"),
        (ReasonForRevocation::KeyCompromised, 5, "revoked-signer"),
        (ReasonForRevocation::KeyRetired, 20, "counted"),
        (ReasonForRevocation::KeySuperseded, 20, "counted"),
        (ReasonForRevocation::KeyRetired, 5, "revoked-signer"),
        (ReasonForRevocation::KeySuperseded, 5, "revoked-signer"),
    ];
    for (reason, day, expected) in cases {
        let revoked = revoke_cert(&cert, reason, at(day));
        assert_eq!(
            kind(verdict(&revoked, sig.clone(), at(30))),
            expected,
            "certificate {reason} on day {day}, signature on day 10"
        );
    }
}

#[test]
fn the_revocation_certificate_keygen_makes_is_hard_and_voids_everything() {
    let (cert, revocation) = CertBuilder::new()
        .set_cipher_suite(CipherSuite::Cv25519)
        .add_userid("Ada <ada@example.org>")
        .add_signing_subkey()
        .set_creation_time(at(0))
        .generate()
        .expect("generate");
    let sig = sign(&cert, at(10));
    let revoked = cert.insert_packets(revocation).expect("merge").0;
    let rejection = verdict(&revoked, sig, at(30)).expect_err("revoked");
    assert_eq!(rejection.kind(), "revoked-signer");
    assert!(
        rejection.to_string().contains("hard revocation"),
        "{rejection}"
    );
}

#[test]
fn subkey_revocations_follow_the_same_rule() {
    let cert = approver(365);
    let sig = sign(&cert, at(10));
    let cases = [
        (ReasonForRevocation::KeyCompromised, 20, "revoked-signer"),
        (ReasonForRevocation::Unspecified, 20, "revoked-signer"),
        (ReasonForRevocation::KeyRetired, 20, "counted"),
        (ReasonForRevocation::KeySuperseded, 5, "revoked-signer"),
    ];
    for (reason, day, expected) in cases {
        let revoked = revoke_subkey(&cert, reason, at(day));
        assert_eq!(
            kind(verdict(&revoked, sig.clone(), at(30))),
            expected,
            "subkey {reason} on day {day}, signature on day 10"
        );
    }
}

#[test]
fn an_expired_certificate_approves_nothing() {
    let cert = approver(15);
    // Made while valid, checked after the certificate expired.
    assert_eq!(
        kind(verdict(&cert, sign(&cert, at(10)), at(30))),
        "expired-signer"
    );
    // Still valid at the host's time: counts.
    assert_eq!(kind(verdict(&cert, sign(&cert, at(10)), at(12))), "counted");
}

#[test]
fn a_signature_dated_before_the_certificate_does_not_count() {
    let cert = approver(365);
    // Backdated: the signing key was not bound yet.
    let sig = sign(&cert, at(10));
    let later = CertBuilder::new()
        .set_cipher_suite(CipherSuite::Cv25519)
        .add_userid("Ada <ada@example.org>")
        .add_signing_subkey()
        .set_creation_time(at(11))
        .generate()
        .expect("generate")
        .0;
    let early = sign(&later, at(11));
    assert_eq!(kind(verdict(&cert, sig, at(20))), "counted");
    let backdated = {
        let mut pair = later
            .keys()
            .subkeys()
            .next()
            .expect("subkey")
            .key()
            .clone()
            .parts_into_secret()
            .expect("secret")
            .into_keypair()
            .expect("pair");
        SignatureBuilder::new(SignatureType::Binary)
            .set_signature_creation_time(at(5))
            .expect("time")
            .sign_message(&mut pair, MESSAGE)
            .expect("sign")
    };
    assert_eq!(kind(verdict(&later, early, at(20))), "counted");
    assert_eq!(kind(verdict(&later, backdated, at(20))), "expired-signer");
}

#[test]
fn a_revocation_in_another_file_of_the_trust_directory_applies() {
    let (cert, revocation) = CertBuilder::new()
        .set_cipher_suite(CipherSuite::Cv25519)
        .add_userid("Ada <ada@example.org>")
        .add_signing_subkey()
        .set_creation_time(at(0))
        .generate()
        .expect("generate");
    let sig = sign(&cert, at(10));
    let revoked = cert.clone().insert_packets(revocation).expect("merge").0;
    for (first, second) in [("a.asc", "b.rev"), ("b.asc", "a.asc")] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut plain = Vec::new();
        cert.armored().serialize(&mut plain).expect("armor");
        let mut with_revocation = Vec::new();
        revoked
            .armored()
            .serialize(&mut with_revocation)
            .expect("armor");
        std::fs::write(dir.path().join(first), &plain).expect("write");
        std::fs::write(dir.path().join(second), &with_revocation).expect("write");
        let certs = read_certs(dir.path()).expect("read");
        assert_eq!(certs.len(), 1, "copies of one certificate are merged");
        let result = check(MESSAGE, std::slice::from_ref(&sig), &certs, 1, at(20));
        assert_eq!(kind(result), "revoked-signer", "{first} then {second}");
    }
}

fn armored(sigs: &[Signature]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer =
        openpgp::armor::Writer::new(&mut out, openpgp::armor::Kind::Signature).expect("armor");
    for sig in sigs {
        Packet::from(sig.clone())
            .serialize(&mut writer)
            .expect("write");
    }
    writer.finalize().expect("finalize");
    out
}

fn binary(sigs: &[Signature]) -> Vec<u8> {
    let mut out = Vec::new();
    for sig in sigs {
        Packet::from(sig.clone())
            .serialize(&mut out)
            .expect("write");
    }
    out
}

fn read_kind(data: &[u8]) -> &'static str {
    match read_signatures(data) {
        Ok(_) => "ok",
        Err(SignatureFileError::Malformed(_)) => "malformed",
        Err(SignatureFileError::ExtraData { .. }) => "extra-data",
    }
}

/// Regression: 100 KB appended after the armored block verified.
#[test]
fn bytes_beside_the_signatures_are_refused() {
    let cert = approver(365);
    let one = sign(&cert, at(10));
    let two = sign(&approver(365), at(10));
    let good = armored(&[one.clone(), two.clone()]);
    assert_eq!(read_signatures(&good).expect("good").len(), 2);
    let mut concatenated = armored(std::slice::from_ref(&one));
    concatenated.extend_from_slice(b"\n\n");
    concatenated.extend_from_slice(&armored(std::slice::from_ref(&two)));
    assert_eq!(read_signatures(&concatenated).expect("two blocks").len(), 2);
    assert_eq!(read_kind(&binary(&[one.clone(), two.clone()])), "ok");

    let noise: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut trailing = good.clone();
    trailing.extend_from_slice(&noise);
    assert_eq!(read_kind(&trailing), "extra-data");
    let mut trailing_text = good.clone();
    trailing_text.extend_from_slice(b"this rides along\n");
    assert_eq!(read_kind(&trailing_text), "extra-data");
    let mut leading = b"note: approved\n".to_vec();
    leading.extend_from_slice(&good);
    assert_eq!(read_kind(&leading), "malformed", "not armor, not packets");
    let mut between = armored(std::slice::from_ref(&one));
    between.extend_from_slice(b"x\n");
    between.extend_from_slice(&armored(std::slice::from_ref(&two)));
    assert_eq!(read_kind(&between), "extra-data");
    let mut binary_trailing = binary(std::slice::from_ref(&one));
    binary_trailing.extend_from_slice(&noise);
    assert_eq!(read_kind(&binary_trailing), "extra-data");

    let text = String::from_utf8(good.clone()).expect("ascii");
    let with_header = text.replacen(
        "-----BEGIN PGP SIGNATURE-----\n",
        "-----BEGIN PGP SIGNATURE-----\nComment: rides along\n",
        1,
    );
    assert_ne!(with_header, text);
    assert_eq!(read_kind(with_header.as_bytes()), "malformed");
}

#[test]
fn unsigned_subpackets_other_than_the_issuer_are_refused() {
    let cert = approver(365);
    let policy = StandardPolicy::new();
    let mut pair = cert
        .keys()
        .with_policy(&policy, at(10))
        .for_signing()
        .secret()
        .next()
        .expect("key")
        .key()
        .clone()
        .into_keypair()
        .expect("pair");
    let sig = SignatureBuilder::new(SignatureType::Binary)
        .set_signature_creation_time(at(10))
        .expect("time")
        .sign_message(&mut pair, MESSAGE)
        .expect("sign");
    let mut stuffed = sig.clone();
    stuffed
        .unhashed_area_mut()
        .add(
            openpgp::packet::signature::subpacket::Subpacket::new(
                openpgp::packet::signature::subpacket::SubpacketValue::NotationData(
                    openpgp::packet::signature::subpacket::NotationData::new(
                        "rides@example.org",
                        vec![7u8; 1000],
                        NotationDataFlags::empty(),
                    ),
                ),
                false,
            )
            .expect("subpacket"),
        )
        .expect("add");
    // Still a valid signature over the message: the unhashed area is not
    // covered by it, which is exactly why it must be empty.
    assert_eq!(
        kind(check(
            MESSAGE,
            std::slice::from_ref(&stuffed),
            std::slice::from_ref(&cert),
            1,
            at(20)
        )),
        "counted"
    );
    assert_eq!(read_kind(&armored(&[sig])), "ok");
    assert_eq!(read_kind(&armored(&[stuffed])), "extra-data");
}

#[test]
fn a_trust_directory_holding_a_secret_key_is_refused() {
    let cert = approver(365);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut secret = Vec::new();
    cert.as_tsk()
        .armored()
        .serialize(&mut secret)
        .expect("armor");
    std::fs::write(dir.path().join("ada.asc"), secret).expect("write");
    let error = read_certs(dir.path()).expect_err("a secret key");
    assert!(
        error.to_string().contains("holds secret key material"),
        "{error}"
    );
}
