//! Licenses and copyright notices from a Debian package's copyright file:
//! the machine-readable format (DEP-5) read field by field, its license
//! short names turned into SPDX expressions; a free-form file kept whole
//! as the package's own license text, with its copyright lines.

use std::collections::BTreeMap;

/// A license that is not on SPDX's list, as SPDX's extracted licensing
/// information states it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicenseText {
    /// Its name.
    pub name: String,
    /// Its text.
    pub text: String,
}

/// The prefix of the LicenseRef that stands for a free-form copyright
/// file's own terms.
pub const FREE_FORM: &str = "LicenseRef-Debian-copyright-";

/// The LicenseRefs of a document, by id.
pub type Refs = BTreeMap<String, LicenseText>;

/// A package's copyright notice, as its copyright file gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The notices, one per line.
    Text(String),
    /// The file was read and holds no notice (SPDX: NONE).
    NoneFound,
    /// There is no file to read (SPDX: NOASSERTION).
    Unknown,
}

/// What a package's copyright file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Licensing {
    /// The SPDX expression of its licenses.
    pub license: Option<String>,
    /// Its copyright notices.
    pub notice: Notice,
}

/// Reads one package's copyright file: a machine-readable one gives its
/// `License:` and `Copyright:` fields; a free-form one is the license
/// text itself (a LicenseRef whose text is the file), with the lines that
/// state a copyright as the notice.
pub fn read(package: &str, text: Option<&[u8]>, refs: &mut Refs) -> Licensing {
    let Some(bytes) = text else {
        return Licensing {
            license: None,
            notice: Notice::Unknown,
        };
    };
    if let Some(names) = debian_licenses(bytes) {
        let notices = dep5_copyrights(bytes);
        return Licensing {
            license: Some(expression(&names, refs)),
            notice: notice(notices),
        };
    }
    let text = String::from_utf8_lossy(bytes).into_owned();
    let mut id = String::from(FREE_FORM);
    id.extend(package.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
            c
        } else {
            '-'
        }
    }));
    let notices = text
        .lines()
        .map(str::trim)
        .filter(|line| {
            let lower = line.to_lowercase();
            (lower.starts_with("copyright")
                || lower.starts_with("(c)")
                || lower.starts_with('\u{a9}'))
                && line.contains(|c: char| c.is_ascii_digit())
        })
        .map(str::to_owned)
        .collect();
    refs.insert(
        id.clone(),
        LicenseText {
            name: format!("the license terms in Debian package {package}'s copyright file"),
            text,
        },
    );
    Licensing {
        license: Some(id),
        notice: notice(notices),
    }
}

fn notice(mut lines: Vec<String>) -> Notice {
    let mut seen = std::collections::BTreeSet::new();
    lines.retain(|line| !line.is_empty() && seen.insert(line.clone()));
    if lines.is_empty() {
        Notice::NoneFound
    } else {
        Notice::Text(lines.join("\n"))
    }
}

/// The `Copyright:` fields of a DEP-5 file's `Files:` paragraphs, one line
/// per holder (continuation lines included).
fn dep5_copyrights(text: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(text);
    let mut out = Vec::new();
    for paragraph in text.split("\n\n") {
        let mut in_field = false;
        let mut is_files = false;
        let mut lines = Vec::new();
        for line in paragraph.lines() {
            if line.starts_with([' ', '\t']) {
                if in_field && line.trim() != "." {
                    lines.push(line.trim().to_owned());
                }
                continue;
            }
            in_field = false;
            if let Some((key, value)) = line.split_once(':') {
                if key.eq_ignore_ascii_case("Files") {
                    is_files = true;
                } else if key.eq_ignore_ascii_case("Copyright") {
                    in_field = true;
                    lines.push(value.trim().to_owned());
                }
            }
        }
        if is_files {
            out.extend(lines);
        }
    }
    out
}

/// The `License:` short names of a machine-readable (DEP-5) copyright
/// file's `Files:` paragraphs, in order of first appearance; None when the
/// file is not machine-readable.
pub fn debian_licenses(text: &[u8]) -> Option<Vec<String>> {
    let text = String::from_utf8_lossy(text);
    let mut paragraphs = text.split("\n\n").filter(|p| !p.trim().is_empty());
    let header = paragraphs.next()?;
    let is_dep5 = header.lines().any(|line| {
        line.split_once(':').is_some_and(|(k, v)| {
            k.eq_ignore_ascii_case("Format") && v.contains("copyright-format")
        })
    });
    if !is_dep5 {
        return None;
    }
    let mut names: Vec<String> = Vec::new();
    for paragraph in std::iter::once(header).chain(paragraphs) {
        let field = |name: &str| {
            paragraph.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
        };
        if field("Files").is_none() {
            continue;
        }
        if let Some(license) = field("License").filter(|l| !l.is_empty())
            && !names.contains(&license)
        {
            names.push(license);
        }
    }
    (!names.is_empty()).then_some(names)
}

/// Debian short names that are SPDX identifiers under another spelling.
const SPDX_NAMES: &[(&str, &str)] = &[
    ("apache-2", "Apache-2.0"),
    ("apache-2.0", "Apache-2.0"),
    ("artistic", "Artistic-1.0-Perl"),
    ("artistic-1.0", "Artistic-1.0"),
    ("artistic-2.0", "Artistic-2.0"),
    ("bsd-2-clause", "BSD-2-Clause"),
    ("bsd-3-clause", "BSD-3-Clause"),
    ("bsd-4-clause", "BSD-4-Clause"),
    ("bsl-1.0", "BSL-1.0"),
    ("cc0", "CC0-1.0"),
    ("cc0-1.0", "CC0-1.0"),
    ("expat", "MIT"),
    ("mit", "MIT"),
    ("isc", "ISC"),
    ("zlib", "Zlib"),
    ("x11", "X11"),
    ("curl", "curl"),
    ("ftl", "FTL"),
    ("openssl", "OpenSSL"),
    ("mpl-1.1", "MPL-1.1"),
    ("mpl-2.0", "MPL-2.0"),
    ("psf-2", "PSF-2.0"),
    ("python-2.0", "Python-2.0"),
    ("unicode-dfs-2016", "Unicode-DFS-2016"),
    ("gpl-2.0", "GPL-2.0-only"),
    ("gpl-2.0+", "GPL-2.0-or-later"),
    ("gpl-3.0", "GPL-3.0-only"),
    ("gpl-3.0+", "GPL-3.0-or-later"),
    ("lgpl-2.0", "LGPL-2.0-only"),
    ("lgpl-2.0+", "LGPL-2.0-or-later"),
    ("lgpl-3.0", "LGPL-3.0-only"),
    ("lgpl-3.0+", "LGPL-3.0-or-later"),
    ("gpl-1", "GPL-1.0-only"),
    ("gpl-1+", "GPL-1.0-or-later"),
    ("gpl-2", "GPL-2.0-only"),
    ("gpl-2+", "GPL-2.0-or-later"),
    ("gpl-3", "GPL-3.0-only"),
    ("gpl-3+", "GPL-3.0-or-later"),
    ("lgpl-2", "LGPL-2.0-only"),
    ("lgpl-2+", "LGPL-2.0-or-later"),
    ("lgpl-2.1", "LGPL-2.1-only"),
    ("lgpl-2.1+", "LGPL-2.1-or-later"),
    ("lgpl-3", "LGPL-3.0-only"),
    ("lgpl-3+", "LGPL-3.0-or-later"),
    ("agpl-3", "AGPL-3.0-only"),
    ("agpl-3+", "AGPL-3.0-or-later"),
    ("gfdl-1.2", "GFDL-1.2-only"),
    ("gfdl-1.2+", "GFDL-1.2-or-later"),
    ("gfdl-1.3", "GFDL-1.3-only"),
    ("gfdl-1.3+", "GFDL-1.3-or-later"),
];

/// One Debian license term as an SPDX id or a LicenseRef (recorded in
/// `refs` with the Debian name).
fn term(name: &str, refs: &mut Refs) -> String {
    let lower = name.to_ascii_lowercase();
    if let Some((_, id)) = SPDX_NAMES.iter().find(|(debian, _)| *debian == lower) {
        return (*id).to_owned();
    }
    let mut id = String::from("LicenseRef-");
    for c in name.chars() {
        id.push(if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
            c
        } else {
            '-'
        });
    }
    refs.insert(
        id.clone(),
        LicenseText {
            name: name.to_owned(),
            text: format!(
                "The Debian license short name \"{name}\"; its text is in the package's /usr/share/doc/PACKAGE/copyright file in the image."
            ),
        },
    );
    id
}

/// An SPDX expression for a package's Debian license lines: each line's
/// `or`/`and` kept, lines joined with AND; a term with `with` (an
/// exception in Debian's free form) becomes one LicenseRef.
pub fn expression(lines: &[String], refs: &mut Refs) -> String {
    let mut parts = Vec::new();
    for line in lines {
        let mut out: Vec<String> = Vec::new();
        let mut current: Vec<&str> = Vec::new();
        let flush = |current: &mut Vec<&str>, out: &mut Vec<String>, refs: &mut Refs| {
            if !current.is_empty() {
                out.push(term(&current.join(" "), refs));
                current.clear();
            }
        };
        for word in line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
        {
            match word.to_ascii_lowercase().as_str() {
                "or" | "and" => {
                    flush(&mut current, &mut out, refs);
                    if !out.is_empty() && !out.last().is_some_and(|t| t == "OR" || t == "AND") {
                        out.push(word.to_ascii_uppercase());
                    }
                }
                _ => current.push(word),
            }
        }
        flush(&mut current, &mut out, refs);
        if out.last().is_some_and(|t| t == "OR" || t == "AND") {
            out.pop();
        }
        if out.is_empty() {
            continue;
        }
        let text = out.join(" ");
        parts.push(if out.len() > 1 && lines.len() > 1 {
            format!("({text})")
        } else {
            text
        });
    }
    parts.dedup();
    parts.join(" AND ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep5_licenses_become_spdx_expressions() {
        let text = b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: x\n\nFiles: *\nCopyright: 2020 A\nLicense: GPL-2+\n text\n\nFiles: lib/*\nCopyright: 2020 B\nLicense: Expat or Artistic\n\nFiles: debian/*\nLicense: GPL-2+\n\nLicense: GPL-2+\n full text\n";
        let names = debian_licenses(text).unwrap();
        assert_eq!(names, vec!["GPL-2+", "Expat or Artistic"]);
        let mut refs = Refs::new();
        assert_eq!(
            expression(&names, &mut refs),
            "GPL-2.0-or-later AND (MIT OR Artistic-1.0-Perl)"
        );
        assert!(refs.is_empty());
        let read_back = read("x", Some(text), &mut refs);
        assert_eq!(
            read_back,
            Licensing {
                license: Some("GPL-2.0-or-later AND (MIT OR Artistic-1.0-Perl)".to_owned()),
                notice: Notice::Text("2020 A\n2020 B".to_owned()),
            }
        );
        let names = vec!["GPL-3+ with OpenSSL exception".to_owned()];
        assert_eq!(
            expression(&names, &mut refs),
            "LicenseRef-GPL-3--with-OpenSSL-exception"
        );
        assert_eq!(refs.len(), 1);
        assert_eq!(
            debian_licenses(b"This package was debianized by ...\n\nGPL\n"),
            None
        );
    }

    #[test]
    fn free_form_files_are_their_own_license_text_and_notices() {
        let mut refs = Refs::new();
        let text = b"This is libfoo, packaged by A.\n\nCopyright (C) 1999, 2004 Foo Ltd.\nCopyright (C) 1999, 2004 Foo Ltd.\n  (c) 2010 Bar\nCopyright holders are listed below\n\nSee /usr/share/common-licenses/GPL-2.\n";
        let got = read("lib foo", Some(text), &mut refs);
        assert_eq!(
            got.license.as_deref(),
            Some("LicenseRef-Debian-copyright-lib-foo")
        );
        assert_eq!(
            got.notice,
            Notice::Text("Copyright (C) 1999, 2004 Foo Ltd.\n(c) 2010 Bar".to_owned())
        );
        assert_eq!(
            refs["LicenseRef-Debian-copyright-lib-foo"].text.as_bytes(),
            text
        );
        let none = read("y", Some(b"Public domain, no claims.\n"), &mut refs);
        assert_eq!(none.notice, Notice::NoneFound);
        assert_eq!(read("z", None, &mut refs).notice, Notice::Unknown);
        // A DEP-5 file whose Files paragraphs state no copyright.
        let dep5 = b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: MIT\n";
        assert_eq!(read("w", Some(dep5), &mut refs).notice, Notice::NoneFound);
    }
}
