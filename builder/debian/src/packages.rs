//! Binary package entries from a Packages index.

use std::io::BufRead;

use airlock_recipe::Sha256;
use debversion::Version;

use crate::control::{ControlError, Paragraph, ParagraphReader};
use crate::relation::{Alternatives, Relation, RelationError, parse_relations};

/// Package priority (policy 2.5), most important first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Needed for the system to work.
    Required,
    /// Expected on any Unix-like system.
    Important,
    /// A reasonably small character-mode system.
    Standard,
    /// Everything else (and the obsolete `extra`, or no priority at all).
    Optional,
}

impl Priority {
    fn parse(text: Option<&str>) -> Priority {
        match text {
            Some("required") => Priority::Required,
            Some("important") => Priority::Important,
            Some("standard") => Priority::Standard,
            _ => Priority::Optional,
        }
    }
}

/// One binary package as a Packages index describes it.
#[derive(Clone, Debug)]
pub struct BinaryPackage {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: Version,
    /// Version as written in the index.
    pub version_text: String,
    /// Architecture.
    pub architecture: String,
    /// `Essential: yes`.
    pub essential: bool,
    /// Priority.
    pub priority: Priority,
    /// Depends.
    pub depends: Vec<Alternatives>,
    /// Pre-Depends.
    pub pre_depends: Vec<Alternatives>,
    /// Conflicts (alternatives are not allowed here).
    pub conflicts: Vec<Relation>,
    /// Breaks.
    pub breaks: Vec<Relation>,
    /// Provides.
    pub provides: Vec<Relation>,
    /// Path below the mirror root.
    pub filename: String,
    /// Size of the .deb.
    pub size: u64,
    /// sha256 of the .deb.
    pub sha256: Sha256,
    /// Source package name.
    pub source: String,
    /// Source version.
    pub source_version: String,
}

/// Why a Packages index could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PackagesError {
    /// Not deb822.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// A required field is missing or bad.
    #[error("line {line}: package {package:?}: {message}")]
    Field {
        /// Where the paragraph starts.
        line: usize,
        /// Which package (may be empty).
        package: String,
        /// What is wrong.
        message: String,
    },
    /// More entries than any real index has.
    #[error("more than {0} packages in one index")]
    TooMany(usize),
}

/// Most packages one index may hold (bookworm main has about 64 000).
pub const MAX_PACKAGES: usize = 1_000_000;

impl BinaryPackage {
    /// Reads an entry from its paragraph.
    pub fn from_paragraph(paragraph: &Paragraph) -> Result<BinaryPackage, PackagesError> {
        let name = paragraph.get("Package").unwrap_or_default().to_owned();
        let error = |message: String| PackagesError::Field {
            line: paragraph.line,
            package: name.clone(),
            message,
        };
        let required = |field: &str| {
            paragraph
                .get(field)
                .filter(|value| !value.is_empty())
                .ok_or_else(|| error(format!("missing field {field}")))
        };
        if crate::relation::parse_relation(&name).map_or(true, |r| r.name != name) {
            return Err(error("missing or invalid Package field".to_owned()));
        }
        let version_text = required("Version")?.to_owned();
        let version = version_text
            .parse::<Version>()
            .map_err(|_| error(format!("invalid Version {version_text:?}")))?;
        let relations = |field: &str| -> Result<Vec<Alternatives>, PackagesError> {
            paragraph
                .get(field)
                .map(parse_relations)
                .transpose()
                .map_err(|e: RelationError| error(format!("{field}: {e}")))
                .map(Option::unwrap_or_default)
        };
        let flat = |field: &str| -> Result<Vec<Relation>, PackagesError> {
            relations(field)?
                .into_iter()
                .map(|mut alternatives| {
                    if alternatives.len() == 1 {
                        Ok(alternatives.remove(0))
                    } else {
                        Err(error(format!("{field} must not contain alternatives")))
                    }
                })
                .collect()
        };
        let filename = required("Filename")?.to_owned();
        let size_text = required("Size")?;
        let size = size_text
            .parse::<u64>()
            .map_err(|_| error(format!("invalid Size {size_text:?}")))?;
        let sha256 = required("SHA256")?
            .parse::<Sha256>()
            .map_err(|e| error(format!("SHA256: {e}")))?;
        let (source, source_version) = match paragraph.get("Source") {
            None => (name.clone(), version_text.clone()),
            Some(text) => match text.split_once('(') {
                Some((source, rest)) => (
                    source.trim().to_owned(),
                    rest.trim_end_matches(')').trim().to_owned(),
                ),
                None => (text.trim().to_owned(), version_text.clone()),
            },
        };
        Ok(BinaryPackage {
            version,
            version_text,
            architecture: required("Architecture")?.to_owned(),
            essential: paragraph.get("Essential") == Some("yes"),
            priority: Priority::parse(paragraph.get("Priority")),
            depends: relations("Depends")?,
            pre_depends: relations("Pre-Depends")?,
            conflicts: flat("Conflicts")?,
            breaks: flat("Breaks")?,
            provides: flat("Provides")?,
            filename,
            size,
            sha256,
            source,
            source_version,
            name,
        })
    }
}

/// Streams a Packages index, calling `each` for every entry.
pub fn read_packages<R: BufRead>(
    reader: R,
    mut each: impl FnMut(BinaryPackage),
) -> Result<usize, PackagesError> {
    let mut count = 0;
    for paragraph in ParagraphReader::new(reader) {
        each(BinaryPackage::from_paragraph(&paragraph?)?);
        count += 1;
        if count > MAX_PACKAGES {
            return Err(PackagesError::TooMany(MAX_PACKAGES));
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: &str = "Package: libfoo1
Source: foo (1.2-1)
Version: 1.2-1+b1
Architecture: amd64
Priority: optional
Depends: libc6 (>= 2.34), a | b
Pre-Depends: dpkg (>= 1.15)
Provides: libfoo (= 1.2), foo-api
Conflicts: libfoo0
Breaks: old (<< 2)
Filename: pool/main/f/foo/libfoo1_1.2-1+b1_amd64.deb
Size: 1234
SHA256: ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
Description: foo
 long
";

    #[test]
    fn reads_every_field_we_use() {
        let mut all = Vec::new();
        let count = read_packages(format!("{ENTRY}\nPackage: bar\nVersion: 1\nArchitecture: all\nEssential: yes\nPriority: required\nFilename: pool/b/bar.deb\nSize: 1\nSHA256: {}\n", "0".repeat(64)).as_bytes(), |p| all.push(p)).unwrap();
        assert_eq!(count, 2);
        let foo = &all[0];
        assert_eq!(foo.name, "libfoo1");
        assert_eq!(
            (foo.source.as_str(), foo.source_version.as_str()),
            ("foo", "1.2-1")
        );
        assert_eq!(foo.depends.len(), 2);
        assert_eq!(foo.depends[1].len(), 2);
        assert_eq!(foo.provides[0].to_string(), "libfoo (= 1.2)");
        assert_eq!(foo.breaks[0].to_string(), "old (<< 2)");
        assert_eq!(foo.size, 1234);
        assert!(!foo.essential);
        let bar = &all[1];
        assert!(bar.essential);
        assert_eq!(bar.priority, Priority::Required);
        assert_eq!(
            (bar.source.as_str(), bar.source_version.as_str()),
            ("bar", "1")
        );
    }

    #[test]
    fn missing_or_bad_fields_are_named() {
        let error =
            read_packages(ENTRY.replace("Size: 1234\n", "").as_bytes(), |_| {}).unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 1: package \"libfoo1\": missing field Size"
        );
        let error = read_packages(ENTRY.replace("SHA256: ba", "SHA256: zz").as_bytes(), |_| {})
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("SHA256: expected a sha256 digest"),
            "{error}"
        );
        let error = read_packages(
            ENTRY
                .replace("Conflicts: libfoo0", "Conflicts: a | b")
                .as_bytes(),
            |_| {},
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("Conflicts must not contain alternatives"),
            "{error}"
        );
    }
}
