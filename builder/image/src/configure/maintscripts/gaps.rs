//! The steps airlock does not do, as the build report and the build's
//! refusal name them.

use std::collections::BTreeMap;

use airlock_tree::Tree;

use super::super::literal;
use super::super::scripts::{Command, Scripts};
use super::paths::scratch_only;
use super::{Verdict, classify};

/// One step airlock does not do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    /// The package.
    pub package: String,
    /// `preinst` or `postinst`.
    pub script: &'static str,
    /// The line.
    pub line: usize,
    /// The command as written.
    pub text: String,
    /// Its words as the walk expanded them, when they differ from the text
    /// (`mkdir -p "$DPKG_ROOT$1"` in a function is `mkdir -p /var/opt`).
    pub run: Option<String>,
    /// Why it is not done.
    pub why: String,
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} line {}: `{}`",
            self.package,
            self.script,
            self.line,
            one_line(&self.text)
        )?;
        if let Some(run) = &self.run {
            write!(f, " (as run: `{}`)", one_line(run))?;
        }
        write!(f, ": {}", self.why)
    }
}

fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() > 120 {
        format!("{}…", joined.chars().take(120).collect::<String>())
    } else {
        joined
    }
}

/// Every step of every script that airlock does not do, in package order.
pub fn gaps(tree: &Tree, scripts: &Scripts) -> Vec<Gap> {
    let mut gaps = Vec::new();
    let handled =
        |package: &str, script: &str| script == "postinst" && scripts.handled.contains_key(package);
    let unknown = unknown_scratch(scripts);
    for (package, command) in scripts.iter() {
        if handled(package, command.script) {
            continue;
        }
        let verdict = match classify(tree, package, command) {
            Verdict::Unhandled(why) => Some(why),
            _ => reads_unknown_scratch(&unknown, package, command),
        };
        if let Some(why) = verdict {
            if removes_nothing(tree, scripts, command) {
                continue;
            }
            let run = command.words.join(" ");
            let run = (!command.expands
                && one_line(&run) != one_line(&command.text)
                && command.text.contains('$'))
            .then_some(run);
            gaps.push(Gap {
                package: package.to_owned(),
                script: command.script,
                line: command.line,
                text: command.text.clone(),
                run,
                why,
            });
        }
    }
    for (package, places) in &scripts.unreadable {
        for (script, place) in places {
            if handled(package, script) {
                continue;
            }
            gaps.push(Gap {
                package: package.clone(),
                script,
                line: place.line,
                text: place.text.clone(),
                run: None,
                why: place.why.clone(),
            });
        }
    }
    gaps.sort_by(|a, b| {
        (&a.package, a.script, a.line, &a.text).cmp(&(&b.package, b.script, b.line, &b.text))
    });
    // A function called several times shows the same step once.
    gaps.dedup();
    gaps
}

/// The scratch files (`$(mktemp)`) whose content is not known, by package,
/// with the line of the step that made it so: a step on them that airlock
/// could not do exactly (a here-document with a value not known, a write
/// under a condition the walk cannot decide). A step only on scratch files
/// is no gap by itself (airlock removes them), but one that carries such a
/// file into the image is.
fn unknown_scratch(scripts: &Scripts) -> BTreeMap<(String, String), usize> {
    let mut unknown = BTreeMap::new();
    for (package, command) in scripts.iter() {
        let Some(targets) = literal::targets(command) else {
            continue;
        };
        let exact = matches!(literal::parse(command), Some(Ok(_))) && !command.expands;
        if scratch_only(&targets) && !exact {
            for target in targets {
                unknown
                    .entry((package.to_owned(), target))
                    .or_insert(command.line);
            }
        }
    }
    unknown
}

/// Why a step that names a scratch file of [`unknown_scratch`] and changes
/// something outside the scratch files is a gap (apparmor's
/// `mv -f "$tmp" /etc/apparmor.d/tunables/home.d/ubuntu`, whose `$tmp` was
/// written under a condition).
fn reads_unknown_scratch(
    unknown: &BTreeMap<(String, String), usize>,
    package: &str,
    command: &Command,
) -> Option<String> {
    let (path, line) = command.words.iter().skip(1).find_map(|word| {
        unknown
            .get(&(package.to_owned(), word.clone()))
            .map(|line| (word, line))
    })?;
    let program = command.name().rsplit('/').next().unwrap_or("");
    let inside = literal::targets(command).is_some_and(|targets| scratch_only(&targets));
    if inside || program == "rm" {
        return None;
    }
    Some(format!(
        "it reads {path}, a scratch file of the script's whose content is not known (line {line} \
         wrote it in a way airlock could not do exactly)"
    ))
}

/// Whether `command` is an `rm` (under a condition the walk cannot decide)
/// of paths the image does not have and no other step of any script
/// names: it changes nothing whether or not it runs (libc6's `rm -f
/// /etc/ld.so.nohwcap`).
fn removes_nothing(tree: &Tree, scripts: &Scripts, command: &Command) -> bool {
    if command.name().rsplit('/').next() != Some("rm") || !command.writes.is_empty() {
        return false;
    }
    // Its operands as written: a pattern that matched nothing is passed
    // on as it is, and names nothing the image has either.
    let targets: Vec<String> = command
        .words
        .iter()
        .skip(1)
        .filter(|w| !w.starts_with('-'))
        .cloned()
        .collect();
    if targets.is_empty() || command.expands {
        return false;
    }
    let absent = |path: &str| {
        airlock_tree::normalize_lexically(path.trim_start_matches('/')).is_some_and(|path| {
            tree.lookup(&path).is_none()
                && tree
                    .canonical(&path)
                    .is_ok_and(|canonical| tree.get(&canonical).is_none())
        })
    };
    let named_elsewhere = |path: &str| {
        scripts.iter().any(|(_, other)| {
            other.name().rsplit('/').next() != Some("rm")
                && other
                    .words
                    .iter()
                    .chain(&other.writes)
                    .any(|word| word.contains(path))
        })
    };
    targets
        .iter()
        .all(|path| path.starts_with('/') && absent(path) && !named_elsewhere(path))
}
