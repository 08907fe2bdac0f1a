//! The boot entries on the EFI system partition, read by their names:
//! systemd-boot's boot counting (the Boot Loader Specification's
//! "Automatic Boot Assessment") keeps an entry's state in its file name.
//! `NAME_VERSION.efi` is good (blessed, or never counted);
//! `NAME_VERSION+LEFT-DONE.efi` is being tried (LEFT tries left, DONE
//! made); with LEFT at 0 it failed, and systemd-boot boots it only when
//! nothing else is left.

use std::path::Path;

use serde::Serialize;

/// What an entry's name says about it.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Assessment {
    /// Not counted: blessed, or installed as known good.
    Good,
    /// Counted, with tries left.
    Pending {
        /// Tries left.
        left: u32,
        /// Tries made.
        done: u32,
    },
    /// Counted down to no tries left.
    Failed {
        /// Tries made.
        done: u32,
    },
}

/// One unified kernel image in `EFI/Linux`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Entry {
    /// Its file name.
    pub file: String,
    /// The image it boots, when the name says (`NAME_VERSION`).
    pub image: Option<String>,
    /// Its release number.
    pub version: Option<u64>,
    /// Its boot-counting state.
    #[serde(flatten)]
    pub assessment: Assessment,
}

/// `NAME_VERSION` (how the build names a release on the disk: partition
/// names, UKI files) as its parts; `None` for anything else.
pub fn release(text: &str) -> Option<(String, u64)> {
    let (name, version) = text.rsplit_once('_')?;
    if name.is_empty() {
        return None;
    }
    Some((name.to_owned(), version.parse().ok()?))
}

/// Reads a file name; `None` for what is not a `.efi` entry, or a counter
/// that is not two decimal numbers.
pub fn parse(file: &str) -> Option<Entry> {
    let stem = file.strip_suffix(".efi")?;
    let (base, assessment) = match stem.rsplit_once('+') {
        None => (stem, Assessment::Good),
        Some((base, counter)) => {
            let (left, done) = counter.split_once('-').unwrap_or((counter, "0"));
            let number = |s: &str| {
                (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| s.parse::<u32>().ok())
                    .flatten()
            };
            let (left, done) = (number(left)?, number(done)?);
            let assessment = if left == 0 {
                Assessment::Failed { done }
            } else {
                Assessment::Pending { left, done }
            };
            (base, assessment)
        }
    };
    let (image, version) = release(base).map_or((None, None), |(n, v)| (Some(n), Some(v)));
    Some(Entry {
        file: file.to_owned(),
        image,
        version,
        assessment,
    })
}

/// The entries in `esp`/EFI/Linux, newest release first; `None` when the
/// folder is not there (the partition is not mounted at `esp`).
pub fn read(esp: &Path) -> Option<Vec<Entry>> {
    let mut entries: Vec<Entry> = std::fs::read_dir(esp.join("EFI/Linux"))
        .ok()?
        .flatten()
        .filter_map(|e| parse(&e.file_name().to_string_lossy()))
        .collect();
    entries.sort_by(|a, b| b.version.cmp(&a.version).then(a.file.cmp(&b.file)));
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_say_good_pending_or_failed() {
        let good = parse("demo_1.efi").unwrap();
        assert_eq!(
            (good.image.as_deref(), good.version, &good.assessment),
            (Some("demo"), Some(1), &Assessment::Good)
        );
        assert_eq!(
            parse("demo_2+3.efi").unwrap().assessment,
            Assessment::Pending { left: 3, done: 0 }
        );
        assert_eq!(
            parse("demo_2+1-2.efi").unwrap().assessment,
            Assessment::Pending { left: 1, done: 2 }
        );
        assert_eq!(
            parse("demo_3+0-3.efi").unwrap().assessment,
            Assessment::Failed { done: 3 }
        );
        for not_an_entry in [
            "demo_1.conf",
            "demo_2+x.efi",
            "demo_2+1-.efi",
            "demo_2+-1.efi",
        ] {
            assert_eq!(parse(not_an_entry), None, "{not_an_entry}");
        }
        // A name that is not NAME_VERSION is still an entry, of no release.
        let odd = parse("linux.efi").unwrap();
        assert_eq!((odd.image, odd.version), (None, None));
    }

    #[test]
    fn entries_are_listed_newest_first_and_a_missing_esp_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).is_none());
        std::fs::create_dir_all(dir.path().join("EFI/Linux")).unwrap();
        for name in ["demo_1.efi", "demo_3+0-3.efi", "demo_2.efi", "notes.txt"] {
            std::fs::write(dir.path().join("EFI/Linux").join(name), b"").unwrap();
        }
        let files: Vec<String> = read(dir.path())
            .unwrap()
            .into_iter()
            .map(|e| e.file)
            .collect();
        assert_eq!(files, ["demo_3+0-3.efi", "demo_2.efi", "demo_1.efi"]);
    }
}
