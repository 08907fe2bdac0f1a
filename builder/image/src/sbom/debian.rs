//! What the image's own dpkg database and os-release say about its
//! packages: who maintains each (the supplier), which locked packages each
//! depends on (Depends and Pre-Depends, resolved the way the lock's
//! solver did: against the locked set, virtual packages through Provides),
//! and which distribution they come from (the originator).

use std::collections::{BTreeMap, BTreeSet};

use airlock_debian::Version;
use airlock_debian::relation::{Alternatives, parse_relations};
use airlock_recipe::{Party, PartyKind};

/// One package's paragraph of /var/lib/dpkg/status, the fields the SBOMs use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// `Version`.
    pub version: String,
    /// `Maintainer`.
    pub maintainer: String,
    /// `Depends` and `Pre-Depends`.
    pub depends: Vec<String>,
    /// `Provides`.
    pub provides: String,
}

/// The status file's paragraphs by package name.
pub fn status(text: &str) -> BTreeMap<String, Status> {
    let mut out = BTreeMap::new();
    for paragraph in text.split("\n\n") {
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        let mut last = None;
        for line in paragraph.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(key) = &last
                    && let Some(value) = fields.get_mut(key)
                {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if let Some((key, value)) = line.split_once(':') {
                let key = key.to_ascii_lowercase();
                fields.insert(key.clone(), value.trim().to_owned());
                last = Some(key);
            }
        }
        let Some(name) = fields.get("package").cloned() else {
            continue;
        };
        let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
        let depends = ["pre-depends", "depends"]
            .iter()
            .map(|k| get(k))
            .filter(|v| !v.is_empty())
            .collect();
        out.insert(
            name,
            Status {
                version: get("version"),
                maintainer: get("maintainer"),
                depends,
                provides: get("provides"),
            },
        );
    }
    out
}

/// A `Maintainer:` value (`Name <email>`) as a party. Debian's teams
/// maintain through list addresses and say so in their names; a
/// maintainer is an organization when either shows, a person otherwise.
pub fn maintainer(value: &str) -> Option<Party> {
    let (name, email) = match value.split_once('<') {
        Some((name, rest)) => (name, rest.split_once('>').map(|(email, _)| email.trim())),
        None => (value, None),
    };
    let name: String = name
        .chars()
        .filter(|c| !"<>()".contains(*c))
        .collect::<String>()
        .trim()
        .to_owned();
    if name.is_empty() {
        return None;
    }
    let email = email.filter(|e| e.contains('@')).map(str::to_owned);
    let lower = name.to_lowercase();
    let team = [
        "team",
        "maintainers",
        "group",
        "project",
        "developers",
        "packagers",
        "community",
    ]
    .iter()
    .any(|word| lower.contains(word))
        || email.as_deref().is_some_and(|e| {
            e.split_once('@').is_some_and(|(_, host)| {
                host.starts_with("lists.") || host.contains("alioth-lists")
            })
        });
    let mut party = Party {
        name,
        kind: if team {
            PartyKind::Organization
        } else {
            PartyKind::Person
        },
        email,
        url: None,
    };
    // An address the recipe's own rules would refuse is not stated.
    if !party.problems().is_empty() {
        party.email = None;
    }
    party.problems().is_empty().then_some(party)
}

/// The distribution, from an os-release file: `NAME`, with `HOME_URL`.
pub fn distribution(os_release: &str) -> Option<Party> {
    let value = |key: &str| {
        os_release.lines().find_map(|line| {
            let rest = line.strip_prefix(key)?.strip_prefix('=')?;
            Some(rest.trim().trim_matches('"').to_owned())
        })
    };
    let name = value("NAME").filter(|n| !n.is_empty())?;
    Some(Party {
        name: name.replace(['<', '>', '(', ')'], ""),
        kind: PartyKind::Organization,
        email: None,
        url: value("HOME_URL").filter(|u| u.starts_with("http")),
    })
}

/// Each package's dependencies among the installed ones (sorted), and
/// whether every one of its relations resolved.
pub fn dependencies(status: &BTreeMap<String, Status>) -> BTreeMap<String, (Vec<String>, bool)> {
    let mut providers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, entry) in status {
        for group in parse_relations(&entry.provides).unwrap_or_default() {
            for relation in group {
                providers
                    .entry(relation.name)
                    .or_default()
                    .insert(name.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    for (name, entry) in status {
        let mut edges = BTreeSet::new();
        let mut complete = true;
        for field in &entry.depends {
            let Ok(groups) = parse_relations(field) else {
                complete = false;
                continue;
            };
            for group in groups {
                match resolve(&group, status, &providers) {
                    Some(target) if target != *name => {
                        edges.insert(target);
                    }
                    Some(_) => {}
                    None => complete = false,
                }
            }
        }
        out.insert(name.clone(), (edges.into_iter().collect(), complete));
    }
    out
}

/// The first alternative an installed package satisfies: itself at a
/// version the constraint allows, or a provider of it.
fn resolve(
    group: &Alternatives,
    status: &BTreeMap<String, Status>,
    providers: &BTreeMap<String, BTreeSet<String>>,
) -> Option<String> {
    for relation in group {
        if let Some(entry) = status.get(&relation.name) {
            let fits = match (&relation.constraint, entry.version.parse::<Version>()) {
                (None, _) => true,
                (Some(constraint), Ok(version)) => constraint.matches(&version),
                (Some(_), Err(_)) => false,
            };
            if fits {
                return Some(relation.name.clone());
            }
        }
        if relation.constraint.is_none()
            && let Some(provider) = providers.get(&relation.name).and_then(|p| p.first())
        {
            return Some(provider.clone());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: a\nVersion: 1.0\nMaintainer: Ada Lovelace <ada@example.org>\nPre-Depends: libc6 (>= 2.36)\nDepends: b | c, mail-transport-agent,\n d (>= 3)\n\nPackage: b\nVersion: 2\nMaintainer: Debian X Team <team+x@tracker.example.org>\n\nPackage: libc6\nVersion: 2.36-9\nMaintainer: GNU Libc Maintainers <debian-glibc@lists.example.org>\nProvides: mail-transport-agent\n\nPackage: d\nVersion: 2\nMaintainer: D\n";

    #[test]
    fn dependencies_resolve_against_the_installed_set() {
        let status = status(STATUS);
        assert_eq!(status["a"].depends.len(), 2);
        let deps = dependencies(&status);
        // d (>= 3) is not satisfied by d 2: a's list is incomplete.
        assert_eq!(deps["a"], (vec!["b".to_owned(), "libc6".to_owned()], false));
        assert_eq!(deps["b"], (vec![], true));
    }

    #[test]
    fn maintainers_and_the_distribution_become_parties() {
        let status = status(STATUS);
        let ada = maintainer(&status["a"].maintainer).unwrap();
        assert_eq!(
            (ada.name.as_str(), ada.kind),
            ("Ada Lovelace", PartyKind::Person)
        );
        assert_eq!(ada.email.as_deref(), Some("ada@example.org"));
        let team = maintainer(&status["b"].maintainer).unwrap();
        assert_eq!(team.kind, PartyKind::Organization);
        let libc = maintainer(&status["libc6"].maintainer).unwrap();
        assert_eq!(libc.kind, PartyKind::Organization);
        let d = maintainer("D").unwrap();
        assert_eq!((d.email, d.kind), (None, PartyKind::Person));
        assert_eq!(maintainer(" <x@y>"), None);
        assert_eq!(maintainer("A <@x y>").unwrap().email, None);
        let debian = distribution(
            "PRETTY_NAME=\"X 12\"\nNAME=\"X GNU/Linux\"\nHOME_URL=\"https://x.example/\"\n",
        )
        .unwrap();
        assert_eq!(debian.name, "X GNU/Linux");
        assert_eq!(debian.url.as_deref(), Some("https://x.example/"));
        assert_eq!(distribution("ID=x\n"), None);
    }
}
