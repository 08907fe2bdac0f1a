//! Which mirror serves each suite.
//!
//! In order: `--mirror` options, then `AIRLOCK_MIRROR`, then the host's apt
//! sources. Each option is `URL` (every suite) or `SUITE=URL` (one suite);
//! `AIRLOCK_MIRROR` takes the same, separated by commas.

use std::collections::BTreeMap;
use std::path::Path;

use airlock_debian::sources;

use crate::FetchError;

/// The base URL of each suite, and where it was configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirrors {
    by_suite: BTreeMap<String, (String, String)>,
}

impl Mirrors {
    /// The base URL for `suite` (no trailing slash).
    pub fn url(&self, suite: &str) -> &str {
        &self.by_suite[suite].0
    }

    /// Where the URL for `suite` came from.
    pub fn origin(&self, suite: &str) -> &str {
        &self.by_suite[suite].1
    }

    /// Mirrors given directly, for tests and tools: every suite at `url`.
    pub fn uniform(suites: &[String], url: &str) -> Mirrors {
        Mirrors {
            by_suite: suites
                .iter()
                .map(|s| {
                    (
                        s.clone(),
                        (url.trim_end_matches('/').to_owned(), "given".to_owned()),
                    )
                })
                .collect(),
        }
    }
}

/// Chooses a mirror for every suite. `host_root` is where `etc/apt` is read
/// from (`/` except in tests).
pub fn resolve(
    suites: &[String],
    components: &[String],
    options: &[String],
    environment: Option<&str>,
    host_root: &Path,
) -> Result<Mirrors, FetchError> {
    let mut by_suite = BTreeMap::new();
    let parse = |entry: &str, origin: &str, by_suite: &mut BTreeMap<String, (String, String)>| {
        let entry = entry.trim();
        if entry.is_empty() {
            return Ok(());
        }
        let (suite, url) = match entry.split_once('=') {
            Some((suite, url)) if !suite.contains('/') => (Some(suite), url),
            _ => (None, entry),
        };
        if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("file:/"))
        {
            return Err(FetchError::Mirror(format!(
                "{origin}: mirror {url:?} must start with http://, https:// or file:/"
            )));
        }
        let url = url.trim_end_matches('/').to_owned();
        for wanted in suites {
            if suite.is_none_or(|s| s == wanted) {
                by_suite
                    .entry(wanted.clone())
                    .or_insert_with(|| (url.clone(), origin.to_owned()));
            }
        }
        Ok(())
    };
    for option in options {
        parse(option, "--mirror", &mut by_suite)?;
    }
    if let Some(environment) = environment {
        for entry in environment.split(',') {
            parse(entry, "AIRLOCK_MIRROR", &mut by_suite)?;
        }
    }
    let missing: Vec<&String> = suites
        .iter()
        .filter(|s| !by_suite.contains_key(*s))
        .collect();
    if !missing.is_empty() {
        let host = sources::host_sources(host_root).map_err(|e| {
            FetchError::Mirror(format!(
                "reading apt sources below {}: {e}",
                host_root.display()
            ))
        })?;
        for suite in missing {
            match sources::mirror_for_suite(&host, suite, components) {
                Some((url, origin)) => {
                    by_suite.insert(
                        suite.clone(),
                        (url.trim_end_matches('/').to_owned(), origin.to_owned()),
                    );
                }
                None => {
                    return Err(FetchError::Mirror(format!(
                        "no mirror for suite {suite} (components {}): pass --mirror URL or --mirror {suite}=URL, set AIRLOCK_MIRROR, or add the suite to the host's apt sources",
                        components.join(", ")
                    )));
                }
            }
        }
    }
    Ok(Mirrors { by_suite })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_beat_environment_beat_host_sources() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("etc/apt/sources.list.d");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("debian.sources"),
            "Types: deb\nURIs: http://host.invalid/debian/\nSuites: bookworm bookworm-updates bookworm-security\nComponents: main\n",
        )
        .unwrap();
        let suites = strings(&["bookworm", "bookworm-updates", "bookworm-security"]);
        let mirrors = resolve(
            &suites,
            &strings(&["main"]),
            &strings(&["bookworm-security=http://sec.invalid/x/"]),
            Some("bookworm=http://env.invalid/d"),
            root.path(),
        )
        .unwrap();
        assert_eq!(mirrors.url("bookworm-security"), "http://sec.invalid/x");
        assert_eq!(mirrors.origin("bookworm-security"), "--mirror");
        assert_eq!(mirrors.url("bookworm"), "http://env.invalid/d");
        assert_eq!(
            mirrors.url("bookworm-updates"),
            "http://host.invalid/debian"
        );
        assert!(
            mirrors
                .origin("bookworm-updates")
                .ends_with("debian.sources:1")
        );
    }

    #[test]
    fn unknown_suite_says_how_to_fix_it() {
        let root = tempfile::tempdir().unwrap();
        let error = resolve(
            &strings(&["trixie"]),
            &strings(&["main"]),
            &[],
            None,
            root.path(),
        )
        .unwrap_err();
        assert!(
            error.to_string().starts_with("no mirror for suite trixie"),
            "{error}"
        );
        let error = resolve(
            &strings(&["trixie"]),
            &strings(&["main"]),
            &strings(&["ftp://x"]),
            None,
            root.path(),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("must start with http://"),
            "{error}"
        );
    }
}
