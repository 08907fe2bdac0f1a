//! Release and InRelease files: OpenPGP verification against the recipe's
//! keyring, the index digests they list, and their validity window.

use std::collections::BTreeMap;

use airlock_recipe::Sha256;
use sequoia_openpgp as openpgp;

use openpgp::Cert;
use openpgp::KeyHandle;
use openpgp::cert::CertParser;
use openpgp::parse::Parse;
use openpgp::parse::stream::{
    MessageLayer, MessageStructure, VerificationError, VerificationHelper, VerifierBuilder,
};
use openpgp::policy::StandardPolicy;

use crate::control::ParagraphReader;

/// What can go wrong with a Release file or its signature.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The keyring is unreadable or empty.
    #[error("keyring: {0}")]
    Keyring(String),
    /// No good signature by a key in the keyring.
    #[error("InRelease is not signed by any key in the keyring ({keyring}): {detail}")]
    Unsigned {
        /// The keyring's fingerprints.
        keyring: String,
        /// What the verifier saw.
        detail: String,
    },
    /// A signature by a key in the keyring did not verify.
    #[error("InRelease has a bad signature: {0}")]
    BadSignature(String),
    /// Not a Release file.
    #[error("Release: {0}")]
    Syntax(String),
    /// Valid-Until is in the past.
    #[error(
        "Release for {suite} expired: Valid-Until is {valid_until}, now is {now} (a mirror may be replaying old metadata; pass --insecure-ignore-valid-until only for a deliberate snapshot)"
    )]
    Expired {
        /// Which suite.
        suite: String,
        /// The field's text.
        valid_until: String,
        /// The time compared with, RFC 2822.
        now: String,
    },
}

/// Reads an OpenPGP keyring (binary or armored, one or more certificates).
pub fn read_keyring(bytes: &[u8]) -> Result<Vec<Cert>, ReleaseError> {
    let certs = CertParser::from_bytes(bytes)
        .map_err(|e| ReleaseError::Keyring(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ReleaseError::Keyring(e.to_string()))?;
    if certs.is_empty() {
        return Err(ReleaseError::Keyring("no certificates".to_owned()));
    }
    Ok(certs)
}

/// Verifies a cleartext-signed InRelease and returns the signed text: the only
/// bytes that may be trusted. At least one signature must be good and made by
/// a key in `keyring`; any signature by a keyring key that fails is an error.
/// Signatures by keys outside the keyring are ignored.
///
/// `now` is the time to check key validity at (seconds since the epoch); the
/// connected side passes the clock.
pub fn verify_inrelease(
    inrelease: &[u8],
    keyring: &[Cert],
    now: i64,
) -> Result<Vec<u8>, ReleaseError> {
    let policy = StandardPolicy::new();
    let helper = Helper {
        keyring,
        outcome: Outcome::default(),
    };
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(now.max(0) as u64);
    let keyring_names = || {
        keyring
            .iter()
            .map(|cert| cert.fingerprint().to_hex())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut verifier = match VerifierBuilder::from_bytes(inrelease)
        .and_then(|builder| builder.with_policy(&policy, time, helper))
    {
        Ok(verifier) => verifier,
        Err(error) => {
            let text = format!("{error:#}");
            return Err(if text.contains("bad signature") {
                ReleaseError::BadSignature(text)
            } else {
                ReleaseError::Unsigned {
                    keyring: keyring_names(),
                    detail: text,
                }
            });
        }
    };
    let mut content = Vec::new();
    std::io::copy(&mut verifier, &mut content).map_err(|e| ReleaseError::Unsigned {
        keyring: keyring_names(),
        detail: e.to_string(),
    })?;
    let outcome = &verifier.helper_ref().outcome;
    if let Some(bad) = &outcome.bad {
        return Err(ReleaseError::BadSignature(bad.clone()));
    }
    if outcome.good == 0 {
        return Err(ReleaseError::Unsigned {
            keyring: keyring_names(),
            detail: outcome.notes.join("; "),
        });
    }
    Ok(content)
}

#[derive(Default)]
struct Outcome {
    good: usize,
    bad: Option<String>,
    notes: Vec<String>,
}

struct Helper<'k> {
    keyring: &'k [Cert],
    outcome: Outcome,
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self.keyring.to_vec())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        for layer in structure {
            let MessageLayer::SignatureGroup { results } = layer else {
                self.outcome
                    .notes
                    .push("unexpected message structure".to_owned());
                continue;
            };
            for result in results {
                match result {
                    Ok(_) => self.outcome.good += 1,
                    Err(VerificationError::MissingKey { sig }) => self.outcome.notes.push(format!(
                        "signature by {} (not in the keyring)",
                        sig.issuers()
                            .next()
                            .map_or("an unknown key".to_owned(), |i| i.to_hex())
                    )),
                    Err(other) => {
                        self.outcome.bad.get_or_insert_with(|| other.to_string());
                    }
                }
            }
        }
        if self.outcome.notes.is_empty() && self.outcome.good == 0 && self.outcome.bad.is_none() {
            self.outcome.notes.push("no signatures".to_owned());
        }
        Ok(())
    }
}

/// One file an index lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Size in bytes.
    pub size: u64,
    /// sha256.
    pub sha256: Sha256,
}

/// The fields of a Release file that airlock uses.
#[derive(Clone, Debug)]
pub struct Release {
    /// `Suite:`.
    pub suite: String,
    /// `Codename:`.
    pub codename: String,
    /// `Date:` as written.
    pub date: String,
    /// `Valid-Until:` as written.
    pub valid_until: Option<String>,
    /// `SHA256:` entries by path.
    pub sha256: BTreeMap<String, IndexEntry>,
    /// `Acquire-By-Hash: yes`: every index is also served, immutably, under
    /// `by-hash/SHA256/<digest>` next to its name, so a client holding this
    /// Release never races the archive's next publication.
    pub acquire_by_hash: bool,
}

impl Release {
    /// Parses the (already verified) text of a Release file.
    pub fn parse(text: &[u8]) -> Result<Release, ReleaseError> {
        let syntax = |message: String| ReleaseError::Syntax(message);
        let paragraph = ParagraphReader::new(text)
            .next_paragraph()
            .map_err(|e| syntax(e.to_string()))?
            .ok_or_else(|| syntax("empty Release file".to_owned()))?;
        let field = |name: &str| paragraph.get(name).map(str::to_owned);
        let date = field("Date").ok_or_else(|| syntax("missing Date".to_owned()))?;
        parse_date(&date).ok_or_else(|| syntax(format!("invalid Date {date:?}")))?;
        let valid_until = field("Valid-Until");
        if let Some(valid_until) = &valid_until {
            parse_date(valid_until)
                .ok_or_else(|| syntax(format!("invalid Valid-Until {valid_until:?}")))?;
        }
        let mut sha256 = BTreeMap::new();
        for line in paragraph.get("SHA256").unwrap_or_default().lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [digest, size, path] = parts[..] else {
                return Err(syntax(format!(
                    "SHA256 line {line:?} is not \"digest size path\""
                )));
            };
            let entry = IndexEntry {
                size: size
                    .parse()
                    .map_err(|_| syntax(format!("invalid size in {line:?}")))?,
                sha256: digest.parse().map_err(|e| syntax(format!("{e}")))?,
            };
            sha256.insert(path.to_owned(), entry);
        }
        if sha256.is_empty() {
            return Err(syntax(
                "no SHA256 entries (airlock does not trust MD5 or SHA1)".to_owned(),
            ));
        }
        Ok(Release {
            suite: field("Suite").unwrap_or_default(),
            codename: field("Codename").unwrap_or_default(),
            date,
            valid_until,
            sha256,
            acquire_by_hash: field("Acquire-By-Hash").is_some_and(|v| v.trim() == "yes"),
        })
    }

    /// Fails when `Valid-Until` is before `now` (seconds since the epoch).
    pub fn check_valid_until(&self, suite: &str, now: i64) -> Result<(), ReleaseError> {
        let Some(valid_until) = &self.valid_until else {
            return Ok(());
        };
        let until = parse_date(valid_until).unwrap_or(i64::MIN);
        if until < now {
            return Err(ReleaseError::Expired {
                suite: suite.to_owned(),
                valid_until: valid_until.clone(),
                now: format_date(now),
            });
        }
        Ok(())
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// Parses an RFC 2822 date as Release files write it
/// (`Sat, 10 May 2025 09:12:34 UTC`), into seconds since the epoch.
pub fn parse_date(text: &str) -> Option<i64> {
    let rest = match text.split_once(", ") {
        Some((weekday, rest)) if WEEKDAYS.contains(&weekday) => rest,
        _ => text,
    };
    let parts: Vec<&str> = rest.split_whitespace().collect();
    let [day, month, year, time, zone] = parts[..] else {
        return None;
    };
    let day: i64 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let year: i64 = year.parse().ok().filter(|y| (1970..=9999).contains(y))?;
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [hour, minute, second] = hms[..] else {
        return None;
    };
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let offset = match zone {
        "UTC" | "GMT" | "Z" => 0,
        _ => {
            let sign = match zone.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits = &zone[1..];
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            sign * (digits[..2].parse::<i64>().ok()? * 3600 + digits[2..].parse::<i64>().ok()? * 60)
        }
    };
    // month is 1..=12 and day 1..=31, checked above.
    let days = airlock_format::time::days_from_civil(year, month as u32, day as u32);
    Some(days * 86400 + hour * 3600 + minute * 60 + second - offset)
}

/// Formats seconds since the epoch as Release files do.
pub fn format_date(seconds: i64) -> String {
    let days = seconds.div_euclid(86400);
    let rest = seconds.rem_euclid(86400);
    let (year, month, day) = airlock_format::time::civil_from_days(days);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} UTC",
        WEEKDAYS[days.rem_euclid(7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(parse_date("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        let t = parse_date("Sat, 10 May 2025 09:12:34 UTC").unwrap();
        assert_eq!(t, 1746868354);
        assert_eq!(format_date(t), "Sat, 10 May 2025 09:12:34 UTC");
        assert_eq!(parse_date("Sat, 10 May 2025 11:12:34 +0200"), Some(t));
        assert_eq!(parse_date("10 May 2025 09:12:34 UTC"), Some(t));
        for bad in [
            "",
            "Sat, 10 Mai 2025 09:12:34 UTC",
            "Sat, 32 May 2025 09:12:34 UTC",
            "Sat, 10 May 2025 09:12 UTC",
            "Sat, 10 May 2025 09:12:34 CEST",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn release_fields_and_expiry() {
        let text = format!(
            "Origin: Debian\nSuite: stable\nCodename: bookworm\nDate: Sat, 10 May 2025 09:12:34 UTC\nValid-Until: Sat, 17 May 2025 09:12:34 UTC\nSHA256:\n {} 12 main/binary-amd64/Packages.xz\n",
            "a".repeat(64)
        );
        let release = Release::parse(text.as_bytes()).unwrap();
        assert_eq!(release.codename, "bookworm");
        assert!(!release.acquire_by_hash);
        assert_eq!(release.sha256["main/binary-amd64/Packages.xz"].size, 12);
        let before = parse_date("Fri, 16 May 2025 00:00:00 UTC").unwrap();
        let after = parse_date("Sun, 18 May 2025 00:00:00 UTC").unwrap();
        assert!(release.check_valid_until("bookworm", before).is_ok());
        let error = release.check_valid_until("bookworm", after).unwrap_err();
        assert!(error.to_string().starts_with("Release for bookworm expired: Valid-Until is Sat, 17 May 2025 09:12:34 UTC, now is Sun, 18 May 2025 00:00:00 UTC"), "{error}");
    }

    #[test]
    fn acquire_by_hash_is_read_only_when_yes() {
        let text = |value: &str| {
            format!(
                "Date: Sat, 10 May 2025 09:12:34 UTC\nAcquire-By-Hash: {value}\nSHA256:\n {} 12 main/binary-amd64/Packages.xz\n",
                "a".repeat(64)
            )
        };
        assert!(
            Release::parse(text("yes").as_bytes())
                .unwrap()
                .acquire_by_hash
        );
        assert!(
            !Release::parse(text("no").as_bytes())
                .unwrap()
                .acquire_by_hash
        );
    }

    #[test]
    fn release_without_sha256_is_refused() {
        let error = Release::parse(b"Date: Sat, 10 May 2025 09:12:34 UTC\nMD5Sum:\n abc 1 x\n")
            .unwrap_err();
        assert!(error.to_string().contains("no SHA256 entries"), "{error}");
    }
}
