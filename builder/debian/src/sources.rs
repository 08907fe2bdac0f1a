//! apt's sources: where the host's mirror is. airlock never writes a mirror
//! into a recipe; it reads the host's `sources.list` (one-line format) and
//! `sources.list.d/*.sources` (deb822) to find a mirror per suite.

use std::io;
use std::path::Path;

use crate::control::ParagraphReader;

/// One `deb` source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptSource {
    /// Base URIs.
    pub uris: Vec<String>,
    /// Suites.
    pub suites: Vec<String>,
    /// Components.
    pub components: Vec<String>,
    /// Where it was read from (`file:line`).
    pub origin: String,
}

/// Parses a deb822 `.sources` file. Entries that are disabled, are not of
/// type `deb`, or use a URI scheme other than http, https or file are left
/// out.
pub fn parse_deb822(text: &str, origin: &str) -> Result<Vec<AptSource>, String> {
    let mut sources = Vec::new();
    for paragraph in ParagraphReader::new(text.as_bytes()).allow_comments() {
        let paragraph = paragraph.map_err(|e| format!("{origin}: {e}"))?;
        let list = |name: &str| -> Vec<String> {
            paragraph
                .get(name)
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        let enabled = !paragraph
            .get("Enabled")
            .is_some_and(|v| v.eq_ignore_ascii_case("no"));
        if !enabled || !list("Types").iter().any(|t| t == "deb") {
            continue;
        }
        let uris: Vec<String> = list("URIs").into_iter().filter(|u| usable_uri(u)).collect();
        if uris.is_empty() {
            continue;
        }
        sources.push(AptSource {
            uris,
            suites: list("Suites"),
            components: list("Components"),
            origin: format!("{origin}:{}", paragraph.line),
        });
    }
    Ok(sources)
}

/// Parses one-line `sources.list` text: `deb [options] uri suite component...`.
pub fn parse_one_line(text: &str, origin: &str) -> Vec<AptSource> {
    let mut sources = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some(rest) = line
            .strip_prefix("deb ")
            .or_else(|| line.strip_prefix("deb\t"))
        else {
            continue;
        };
        let mut rest = rest.trim_start();
        if rest.starts_with('[') {
            let Some(end) = rest.find(']') else { continue };
            rest = &rest[end + 1..];
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        let [uri, suite, components @ ..] = &words[..] else {
            continue;
        };
        if !usable_uri(uri) {
            continue;
        }
        sources.push(AptSource {
            uris: vec![(*uri).to_owned()],
            suites: vec![(*suite).to_owned()],
            components: components.iter().map(|c| (*c).to_owned()).collect(),
            origin: format!("{origin}:{}", index + 1),
        });
    }
    sources
}

fn usable_uri(uri: &str) -> bool {
    uri.starts_with("http://") || uri.starts_with("https://") || uri.starts_with("file:/")
}

/// Reads the apt sources below `root` (normally `/`): `etc/apt/sources.list`
/// and `etc/apt/sources.list.d/*.list` and `*.sources`, in file-name order.
pub fn host_sources(root: &Path) -> io::Result<Vec<AptSource>> {
    let mut sources = Vec::new();
    let list = root.join("etc/apt/sources.list");
    if list.exists() {
        let text = std::fs::read_to_string(&list)?;
        sources.extend(parse_one_line(&text, &list.display().to_string()));
    }
    let dir = root.join("etc/apt/sources.list.d");
    if dir.is_dir() {
        let mut paths: Vec<_> = std::fs::read_dir(&dir)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<io::Result<_>>()?;
        paths.sort();
        for path in paths {
            let origin = path.display().to_string();
            match path.extension().and_then(|e| e.to_str()) {
                Some("list") => {
                    sources.extend(parse_one_line(&std::fs::read_to_string(&path)?, &origin))
                }
                Some("sources") => sources.extend(
                    parse_deb822(&std::fs::read_to_string(&path)?, &origin)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
                ),
                _ => {}
            }
        }
    }
    Ok(sources)
}

/// The first source that carries `suite` with every one of `components`:
/// its first URI and where it was configured.
pub fn mirror_for_suite<'s>(
    sources: &'s [AptSource],
    suite: &str,
    components: &[String],
) -> Option<(&'s str, &'s str)> {
    sources
        .iter()
        .find(|source| {
            source.suites.iter().any(|s| s == suite)
                && components.iter().all(|c| source.components.contains(c))
        })
        .map(|source| (source.uris[0].as_str(), source.origin.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_sources_pick_the_right_mirror_per_suite() {
        let text = "Types: deb\n# comment\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb deb-src\nURIs: http://security.invalid/debian-security\nSuites: bookworm-security\nComponents: main contrib\n\nTypes: deb\nEnabled: no\nURIs: http://off.invalid/\nSuites: trixie\nComponents: main\n\nTypes: deb-src\nURIs: http://src.invalid/\nSuites: sid\nComponents: main\n";
        let sources = parse_deb822(text, "x.sources").unwrap();
        assert_eq!(sources.len(), 2);
        let main = ["main".to_owned()];
        assert_eq!(
            mirror_for_suite(&sources, "bookworm-updates", &main),
            Some(("http://mirror.invalid/debian", "x.sources:1"))
        );
        assert_eq!(
            mirror_for_suite(&sources, "bookworm-security", &main)
                .unwrap()
                .0,
            "http://security.invalid/debian-security"
        );
        assert_eq!(mirror_for_suite(&sources, "trixie", &main), None);
        assert_eq!(
            mirror_for_suite(&sources, "bookworm", &["contrib".to_owned()]),
            None
        );
    }

    #[test]
    fn one_line_sources_with_options_and_comments() {
        let text = "# header\ndeb [arch=amd64 signed-by=/k.gpg] http://m.invalid/debian bookworm main contrib # c\ndeb-src http://m.invalid/debian bookworm main\ndeb cdrom:[x]/ bookworm main\ndeb https://n.invalid/ bookworm-updates main\n";
        let sources = parse_one_line(text, "sources.list");
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].uris, ["http://m.invalid/debian"]);
        assert_eq!(sources[0].components, ["main", "contrib"]);
        assert_eq!(sources[0].origin, "sources.list:2");
        assert_eq!(sources[1].suites, ["bookworm-updates"]);
    }

    #[test]
    fn reads_a_host_tree() {
        let root = std::env::temp_dir().join(format!("airlock-sources-{}", std::process::id()));
        let dir = root.join("etc/apt/sources.list.d");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("b.sources"),
            "Types: deb\nURIs: http://b.invalid/\nSuites: s\nComponents: main\n",
        )
        .unwrap();
        std::fs::write(dir.join("a.list"), "deb http://a.invalid/ s main\n").unwrap();
        std::fs::write(
            dir.join("c.list.disabled"),
            "deb http://c.invalid/ s main\n",
        )
        .unwrap();
        let sources = host_sources(&root).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        let uris: Vec<_> = sources.iter().map(|s| s.uris[0].as_str()).collect();
        assert_eq!(uris, ["http://a.invalid/", "http://b.invalid/"]);
    }
}
