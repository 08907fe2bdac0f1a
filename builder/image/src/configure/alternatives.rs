//! Alternatives, declaratively: every `update-alternatives --install LINK
//! NAME PATH PRIORITY [--slave LINK NAME PATH]...` a package's postinst
//! declares (read as text) is a candidate. For each name the candidate with
//! the highest priority whose path is in the image wins (ties: the package
//! first by name), in auto mode, as update-alternatives would choose. The
//! links are LINK -> /etc/alternatives/NAME -> PATH, slaves likewise when
//! their path exists, and /var/lib/dpkg/alternatives/NAME records the
//! choice so update-alternatives works on the running system.

use std::collections::BTreeMap;

use airlock_tree::Tree;

use super::scripts::Command;
use super::{generated, put, symlink};
use crate::BuildError;

/// One `--install` declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The package that declares it.
    pub package: String,
    /// The generic link (e.g. /usr/bin/awk).
    pub link: String,
    /// The alternative's path (e.g. /usr/bin/mawk).
    pub path: String,
    /// Its priority.
    pub priority: i64,
    /// (link, name, path) for each slave.
    pub slaves: Vec<(String, String, String)>,
}

/// Parses one command; `Err` when it is an --install that cannot be read.
pub fn parse(package: &str, command: &Command) -> Option<Result<(String, Candidate), String>> {
    let program = command.words.first()?.rsplit('/').next()?;
    if program != "update-alternatives" {
        return None;
    }
    let at = command.words.iter().position(|w| w == "--install")?;
    if command.expands {
        return Some(Err(format!(
            "{package}: `{}` uses shell expansion; declare the alternative in the recipe's files",
            command.words.join(" ")
        )));
    }
    let rest = &command.words[at + 1..];
    let [link, name, path, priority, tail @ ..] = rest else {
        return Some(Err(format!(
            "{package}: cannot read `{}`",
            command.words.join(" ")
        )));
    };
    let Ok(priority) = priority.parse() else {
        return Some(Err(format!("{package}: bad priority {priority:?}")));
    };
    let mut slaves = Vec::new();
    let mut tail = tail;
    while let [flag, link, name, path, more @ ..] = tail {
        if flag != "--slave" {
            break;
        }
        slaves.push((link.clone(), name.clone(), path.clone()));
        tail = more;
    }
    Some(Ok((
        name.clone(),
        Candidate {
            package: package.to_owned(),
            link: link.clone(),
            path: path.clone(),
            priority,
            slaves,
        },
    )))
}

/// Installs the chosen alternatives; returns notes on what was not
/// understood.
pub fn configure(
    tree: &mut Tree,
    scripts: &BTreeMap<String, Vec<Command>>,
) -> Result<Vec<String>, BuildError> {
    let mut notes = Vec::new();
    let mut groups: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    for (package, commands) in scripts {
        for command in commands {
            match parse(package, command) {
                None => {}
                Some(Ok((name, candidate))) => groups.entry(name).or_default().push(candidate),
                Some(Err(note)) => notes.push(note),
            }
        }
    }
    for (name, mut candidates) in groups {
        candidates.retain(|c| tree.lookup(c.path.trim_start_matches('/')).is_some());
        candidates.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then_with(|| a.package.cmp(&b.package))
                .then_with(|| a.path.cmp(&b.path))
        });
        candidates.dedup_by(|a, b| a.path == b.path);
        let Some(best) = candidates.first() else {
            continue;
        };
        let link = best.link.trim_start_matches('/');
        put(tree, link, symlink(&format!("/etc/alternatives/{name}")))?;
        put(
            tree,
            &format!("etc/alternatives/{name}"),
            symlink(&best.path),
        )?;
        // Slave names across candidates, in order of first appearance.
        let mut slave_names: Vec<(String, String)> = Vec::new();
        for candidate in &candidates {
            for (link, slave, _) in &candidate.slaves {
                if !slave_names.iter().any(|(n, _)| n == slave) {
                    slave_names.push((slave.clone(), link.clone()));
                }
            }
        }
        slave_names.sort();
        for (slave, slave_link) in &slave_names {
            let chosen = best
                .slaves
                .iter()
                .find(|(_, n, _)| n == slave)
                .filter(|(_, _, p)| tree.lookup(p.trim_start_matches('/')).is_some());
            if let Some((_, _, path)) = chosen {
                put(
                    tree,
                    slave_link.trim_start_matches('/'),
                    symlink(&format!("/etc/alternatives/{slave}")),
                )?;
                put(tree, &format!("etc/alternatives/{slave}"), symlink(path))?;
            }
        }
        let mut admin = format!("auto\n{}\n", best.link);
        for (slave, link) in &slave_names {
            admin += &format!("{slave}\n{link}\n");
        }
        admin.push('\n');
        for candidate in &candidates {
            admin += &format!("{}\n{}\n", candidate.path, candidate.priority);
            for (slave, _) in &slave_names {
                let path = candidate
                    .slaves
                    .iter()
                    .find(|(_, n, _)| n == slave)
                    .map_or("", |(_, _, p)| p.as_str());
                admin += &format!("{path}\n");
            }
        }
        admin.push('\n');
        put(
            tree,
            &format!("var/lib/dpkg/alternatives/{name}"),
            generated(admin, 0o644),
        )?;
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_tree::{Content, Kind, Node};

    #[test]
    fn highest_priority_present_candidate_wins_with_slaves() {
        let mut tree = Tree::merged_usr();
        let file = || Node::new(Kind::File(Content::Inline(b"x".to_vec())), 0o755);
        tree.insert("usr/bin/mawk", file(), &|_| false).unwrap();
        tree.insert("usr/share/man/man1/mawk.1.gz", file(), &|_| false)
            .unwrap();
        let mut scripts = BTreeMap::new();
        scripts.insert(
            "mawk".to_owned(),
            super::super::scripts::postinst(
                "update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\\n --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz\n",
            ),
        );
        scripts.insert(
            "gawk".to_owned(),
            super::super::scripts::postinst(
                "update-alternatives --install /usr/bin/awk awk /usr/bin/gawk 10\nupdate-alternatives --install $L x /y 1\n",
            ),
        );
        let notes = configure(&mut tree, &scripts).unwrap();
        assert_eq!(notes.len(), 1, "{notes:?}");
        // gawk has the higher priority but is not in the image.
        let (path, _) = tree.lookup("usr/bin/awk").unwrap();
        assert_eq!(path, "usr/bin/mawk");
        let (path, _) = tree.lookup("usr/share/man/man1/awk.1.gz").unwrap();
        assert_eq!(path, "usr/share/man/man1/mawk.1.gz");
        let Kind::File(Content::Inline(admin)) =
            &tree.get("var/lib/dpkg/alternatives/awk").unwrap().kind
        else {
            panic!("no admin file");
        };
        assert_eq!(
            String::from_utf8_lossy(admin),
            "auto\n/usr/bin/awk\nawk.1.gz\n/usr/share/man/man1/awk.1.gz\n\n/usr/bin/mawk\n5\n/usr/share/man/man1/mawk.1.gz\n\n"
        );
    }
}
