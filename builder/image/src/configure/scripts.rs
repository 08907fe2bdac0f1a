//! Maintainer scripts read as data, never run: each package's `preinst`
//! and `postinst` walked by `airlock-maintscript` as dpkg would run them on
//! a fresh install, against the tree as it stands once every package is
//! unpacked. The result is every command the scripts would (or might) run,
//! with its package, script and line, for the native modules to do and
//! for [`super::maintscripts`] to account for, one by one.

use std::collections::{BTreeMap, BTreeSet};

use airlock_maintscript::{Arg, Image, Phase, Stat, Unreadable};
use airlock_store::Store;
use airlock_tree::{Kind, Tree};

use crate::BuildError;

/// One command from a maintainer script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The script it is in: `preinst` or `postinst`.
    pub script: &'static str,
    /// Its line (1-based).
    pub line: usize,
    /// The command as written.
    pub text: String,
    /// Its words after expansion; a word whose value is not known is kept
    /// as written (and `expands` is set).
    pub words: Vec<String>,
    /// Whether any word's value is not known.
    pub expands: bool,
    /// Whether it runs only under a condition the walk could not decide.
    pub conditional: bool,
    /// Files its output is redirected into, as written or expanded.
    pub writes: Vec<String>,
    /// Whether it appends to them (`>>`).
    pub append: bool,
    /// A here-document on its standard input (its value not known sets
    /// `expands`).
    pub stdin: Option<String>,
    /// The file-creation mask it runs with; None when the walk cannot say.
    pub umask: Option<u32>,
}

impl Command {
    /// The command's name (its first word).
    pub fn name(&self) -> &str {
        self.words.first().map_or("", String::as_str)
    }

    /// Where it is, for messages: `postinst line 12`.
    pub fn place(&self) -> String {
        format!("{} line {}", self.script, self.line)
    }

    /// A build error about this step of `package`'s script, naming the
    /// script, the line and the command.
    pub fn error(&self, package: &str, message: impl std::fmt::Display) -> BuildError {
        BuildError::Package {
            package: package.to_owned(),
            message: format!("{}: `{}`: {message}", self.place(), self.text),
        }
    }
}

/// Every step of every package's scripts that `parse` reads, with its
/// package, in order (packages by name, preinst before postinst). A step
/// `parse` cannot read is skipped: `maintscripts` reports each as a gap.
pub fn steps<'a, T: 'a>(
    scripts: &'a BTreeMap<String, Vec<Command>>,
    parse: fn(&Command) -> Option<Result<T, String>>,
) -> impl Iterator<Item = (&'a str, &'a Command, T)> + 'a {
    scripts.iter().flat_map(move |(package, commands)| {
        commands
            .iter()
            .filter_map(move |command| match parse(command) {
                Some(Ok(op)) => Some((package.as_str(), command, op)),
                _ => None,
            })
    })
}

/// Every package's scripts, read.
#[derive(Clone, Debug, Default)]
pub struct Scripts {
    /// The commands, by package, preinst before postinst.
    pub commands: BTreeMap<String, Vec<Command>>,
    /// What could not be followed, by package: (script, place).
    pub unreadable: BTreeMap<String, Vec<(&'static str, Unreadable)>>,
    /// The failing exits taken as not reached, by package: (script, place).
    pub assumed: BTreeMap<String, Vec<(&'static str, Unreadable)>>,
    /// The packages whose postinst a module of airlock does the work of by
    /// name (pinned to the script's sha256), with what it does: their
    /// postinst's steps are no gaps.
    pub handled: BTreeMap<String, &'static str>,
}

impl Scripts {
    /// Every command with its package.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Command)> {
        self.commands
            .iter()
            .flat_map(|(package, commands)| commands.iter().map(move |c| (package.as_str(), c)))
    }
}

/// The image as a script's walk sees it.
#[derive(Clone, Copy)]
struct TreeImage<'a> {
    /// The tree, for the scripts' file tests and globs.
    tree: &'a Tree,
    /// The store its files' bytes are in (for the shell libraries scripts
    /// source).
    blobs: Option<&'a Store>,
    /// The values of the package's debconf questions.
    debconf: &'a BTreeMap<String, String>,
    /// Every path the packages' file lists have (`/usr/bin/dpkg`, `/lib64`),
    /// for `dpkg-query -S`; None when not known.
    shipped: Option<&'a BTreeSet<String>>,
}

/// The defaults of a debconf `templates` file: `Template:` and `Default:`
/// of each stanza.
pub fn debconf_defaults(templates: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for stanza in templates.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .map(|value| value.trim().to_owned())
        };
        if let (Some(template), Some(default)) = (field("Template:"), field("Default:")) {
            out.insert(template, default);
        }
    }
    out
}

/// The largest shell library a script may source.
const MAX_LIBRARY: u64 = 256 << 10;

impl Image for TreeImage<'_> {
    fn stat(&self, path: &str) -> Option<Stat> {
        // airlock grants file capabilities natively, so to the scripts'
        // `command -v setcap` it is always there, and their setuid
        // fallback is not taken (see `capabilities`).
        if matches!(path, "/usr/sbin/setcap" | "/sbin/setcap") {
            return Some(Stat {
                kind: airlock_maintscript::Kind::File,
                mode: 0o755,
                size: 0,
            });
        }
        let path = airlock_tree::normalize_lexically(path.trim_start_matches('/'))?;
        let (_, node) = self.tree.lookup(&path)?;
        let (kind, size) = match &node.kind {
            Kind::Directory => (airlock_maintscript::Kind::Dir, 0),
            Kind::File(content) => (airlock_maintscript::Kind::File, content.size()),
            Kind::Hardlink(target) => {
                let size = match self.tree.get(target).map(|n| &n.kind) {
                    Some(Kind::File(content)) => content.size(),
                    _ => 0,
                };
                (airlock_maintscript::Kind::File, size)
            }
            _ => (airlock_maintscript::Kind::Other, 0),
        };
        Some(Stat {
            kind,
            mode: node.mode & 0o7777,
            size,
        })
    }

    fn is_symlink(&self, path: &str) -> bool {
        airlock_tree::normalize_lexically(path.trim_start_matches('/'))
            .and_then(|path| self.tree.canonical(&path).ok())
            .and_then(|path| self.tree.get(&path))
            .is_some_and(|node| matches!(node.kind, Kind::Symlink(_)))
    }

    fn read(&self, path: &str) -> Option<String> {
        let path = airlock_tree::normalize_lexically(path.trim_start_matches('/'))?;
        let (_, node) = self.tree.lookup(&path)?;
        let Kind::File(content) = &node.kind else {
            return None;
        };
        if content.size() > MAX_LIBRARY {
            return None;
        }
        let bytes = match (content, self.blobs) {
            (airlock_tree::Content::Inline(bytes), _) => bytes.clone(),
            (content, Some(blobs)) => super::read_content(blobs, content).ok()?,
            (_, None) => return None,
        };
        String::from_utf8(bytes).ok()
    }

    fn owner(&self, path: &str) -> Option<(u32, u32)> {
        let path = airlock_tree::normalize_lexically(path.trim_start_matches('/'))?;
        let node = self.tree.get(&self.tree.canonical(&path).ok()?)?;
        Some((node.uid, node.gid))
    }

    fn readlink(&self, path: &str) -> Option<String> {
        let path = airlock_tree::normalize_lexically(path.trim_start_matches('/'))?;
        let canonical = self.tree.canonical(&path).ok()?;
        match &self.tree.get(&canonical)?.kind {
            Kind::Symlink(target) => Some(target.clone()),
            _ => None,
        }
    }

    fn canonical(&self, path: &str) -> Option<String> {
        let path = airlock_tree::normalize_lexically(path.trim_start_matches('/'))?;
        let canonical = match self.tree.lookup(&path) {
            Some((canonical, _)) => canonical,
            None => self.tree.canonical(&path).ok()?,
        };
        Some(format!("/{canonical}"))
    }

    fn list(&self, path: &str) -> Option<Vec<String>> {
        let path = airlock_tree::normalize_lexically(path.trim_start_matches('/'))?;
        let (dir, node) = self.tree.lookup(&path)?;
        if !matches!(node.kind, Kind::Directory) {
            return None;
        }
        Some(
            self.tree
                .children(&dir)
                .into_iter()
                .map(|(name, _)| name.to_owned())
                .collect(),
        )
    }

    fn shipped(&self, path: &str) -> Option<bool> {
        let path = airlock_tree::normalize_lexically(path.trim_start_matches('/'))?;
        Some(self.shipped?.contains(&format!("/{path}")))
    }

    fn debconf(&self, question: &str) -> Option<String> {
        self.debconf.get(question).cloned()
    }
}

fn text(arg: &Arg) -> (String, bool) {
    match arg {
        Arg::Known(value) => (value.clone(), false),
        Arg::Unknown(written) => (written.clone(), true),
    }
}

/// Walks one script of `package` against `tree` (whose stored files are
/// in `blobs`).
pub fn walk(
    tree: &Tree,
    blobs: Option<&Store>,
    package: &str,
    phase: Phase,
    script: &str,
) -> Result<(Vec<Command>, Vec<Unreadable>), BuildError> {
    let image = TreeImage {
        tree,
        blobs,
        debconf: &BTreeMap::new(),
        shipped: None,
    };
    walk_asked(image, package, phase, script).map(|(c, u, _, _)| (c, u))
}

/// [`walk`] with the values of the package's debconf questions; also
/// returns the questions the script set.
fn walk_asked(
    image: TreeImage,
    package: &str,
    phase: Phase,
    script: &str,
) -> Result<Walked, BuildError> {
    let walk = airlock_maintscript::walk(script, phase, package, &image).map_err(|error| {
        BuildError::Package {
            package: package.to_owned(),
            message: error.to_string(),
        }
    })?;
    let commands = walk
        .invocations
        .into_iter()
        .map(|invocation| {
            // A word, here-document or file name whose value is not known
            // makes the whole command one that expands.
            let mut expands = false;
            let mut value = |arg: &Arg| {
                let (value, unknown) = text(arg);
                expands |= unknown;
                value
            };
            let words = invocation.words.iter().map(&mut value).collect();
            let stdin = invocation.stdin.as_ref().map(&mut value);
            let writes = invocation.writes.iter().map(&mut value).collect();
            Command {
                script: phase.script(),
                line: invocation.line,
                text: invocation.text,
                words,
                expands,
                conditional: invocation.conditional,
                writes,
                append: invocation.append,
                stdin,
                umask: invocation.umask,
            }
        })
        .collect();
    let assumed = walk
        .assumed
        .iter()
        .map(|&line| Unreadable {
            line,
            text: script
                .lines()
                .nth(line - 1)
                .unwrap_or("exit")
                .trim()
                .to_owned(),
            why: "taken as not reached: it fails the script, and every package of a built \
                  image is configured"
                .to_owned(),
        })
        .collect();
    Ok((commands, walk.unreadable, walk.debconf, assumed))
}

/// A walk's commands, what it could not follow, the debconf questions it
/// set, and the failing exits it took as not reached.
type Walked = (
    Vec<Command>,
    Vec<Unreadable>,
    BTreeMap<String, Option<String>>,
    Vec<Unreadable>,
);

/// The values of `package`'s debconf questions once its config script has
/// run with the noninteractive frontend: the templates' defaults, changed
/// by what the config script sets (a value the walk cannot know is
/// dropped, so the scripts see it as unknown). The config script's own
/// commands only ask questions (Debian policy), and are not steps.
fn questions(image: TreeImage, package: &crate::extract::Unpacked) -> BTreeMap<String, String> {
    let text = |name: &str| {
        package
            .control_files
            .get(name)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
    };
    let mut values = text("templates").map(debconf_defaults).unwrap_or_default();
    if let Some(config) = text("config")
        && let Ok((_, _, set, _)) = walk_asked(
            TreeImage {
                debconf: &values,
                ..image
            },
            &package.name,
            Phase::Config,
            config,
        )
    {
        for (question, value) in set {
            match value {
                Some(value) => values.insert(question, value),
                None => values.remove(&question),
            };
        }
    }
    values
}

/// Walks the `preinst` and `postinst` of every package against `tree`
/// (every package unpacked, nothing configured yet). A script that cannot
/// be read at all is one entry of `unreadable`.
pub fn read(tree: &Tree, blobs: &Store, packages: &[crate::extract::Unpacked]) -> Scripts {
    let mut scripts = Scripts::default();
    let shipped: BTreeSet<String> = packages
        .iter()
        .flat_map(|package| &package.entries)
        .filter(|(entry, _)| !entry.path.is_empty())
        .map(|(entry, _)| format!("/{}", entry.path))
        .collect();
    let empty = BTreeMap::new();
    let image = TreeImage {
        tree,
        blobs: Some(blobs),
        debconf: &empty,
        shipped: Some(&shipped),
    };
    for package in packages {
        let debconf = questions(image, package);
        for phase in [Phase::Preinst, Phase::Postinst] {
            let Some(bytes) = package.control_files.get(phase.script()) else {
                continue;
            };
            if phase == Phase::Postinst && super::exim4::handles(&package.name, bytes) {
                scripts
                    .handled
                    .insert(package.name.clone(), super::exim4::DOES);
            }
            // A script that is not text or not shell is a gap like any
            // other step airlock cannot read: nothing of it is done.
            let walked = match std::str::from_utf8(bytes) {
                Ok(text) => walk_asked(
                    TreeImage {
                        debconf: &debconf,
                        ..image
                    },
                    &package.name,
                    phase,
                    text,
                )
                .map(|(c, u, _, a)| (c, u, a)),
                Err(_) => Err(BuildError::Package {
                    package: package.name.clone(),
                    message: format!("{} is not UTF-8 text", phase.script()),
                }),
            };
            let (commands, unreadable, assumed) = walked.unwrap_or_else(|error| {
                let why = match error {
                    BuildError::Package { message, .. } => message,
                    other => other.to_string(),
                };
                (
                    Vec::new(),
                    vec![Unreadable {
                        line: 1,
                        text: "(the whole script)".to_owned(),
                        why,
                    }],
                    Vec::new(),
                )
            });
            if !assumed.is_empty() {
                scripts
                    .assumed
                    .entry(package.name.clone())
                    .or_default()
                    .extend(assumed.into_iter().map(|u| (phase.script(), u)));
            }
            scripts
                .commands
                .entry(package.name.clone())
                .or_default()
                .extend(commands);
            if !unreadable.is_empty() {
                scripts
                    .unreadable
                    .entry(package.name.clone())
                    .or_default()
                    .extend(unreadable.into_iter().map(|u| (phase.script(), u)));
            }
        }
    }
    scripts
}

/// The commands of one postinst walked against an empty tree: for tests.
#[cfg(test)]
pub(crate) fn postinst(text: &str) -> Vec<Command> {
    walk(&Tree::new(), None, "test", Phase::Postinst, text)
        .unwrap()
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postinst_is_walked_for_a_fresh_install() {
        let script = "#!/bin/sh\nset -e\nALT=/usr/bin/mawk\ncase \"$1\" in\n configure)\n\tupdate-alternatives --install /usr/bin/awk awk \"$ALT\" 5 \\\n\t  --slave '/usr/bin/nawk' nawk \"/usr/bin/mawk\" # comment\n  ;;\n abort-upgrade) rm -f /etc/gone ;;\nesac\nif [ -x /usr/sbin/absent ]; then absent --now; fi\nadduser --home \"$(pwd)\" x || true\n";
        let commands = postinst(script);
        let words: Vec<Vec<&str>> = commands
            .iter()
            .map(|c| c.words.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(
            words,
            vec![
                vec![
                    "update-alternatives",
                    "--install",
                    "/usr/bin/awk",
                    "awk",
                    "/usr/bin/mawk",
                    "5",
                    "--slave",
                    "/usr/bin/nawk",
                    "nawk",
                    "/usr/bin/mawk"
                ],
                vec!["adduser", "--home", "\"$(pwd)\"", "x"],
            ]
        );
        assert_eq!((commands[0].line, commands[0].expands), (6, false));
        assert!(commands[1].expands);
        assert_eq!(commands[1].place(), "postinst line 12");
    }

    #[test]
    fn file_tests_see_the_tree() {
        let mut tree = Tree::merged_usr();
        tree.put(
            "usr/sbin/present",
            airlock_tree::Node::new(
                Kind::File(airlock_tree::Content::Inline(b"x".to_vec())),
                0o755,
            ),
        )
        .unwrap();
        let script = "#!/bin/sh\nif [ -x /sbin/present ]; then present; fi\nif [ -x /usr/sbin/absent ]; then absent; fi\n[ -L /bin ] && linked\n";
        let (commands, _) = walk(&tree, None, "p", Phase::Postinst, script).unwrap();
        let names: Vec<&str> = commands.iter().map(Command::name).collect();
        assert_eq!(names, ["present", "linked"]);
    }

    #[test]
    fn readlink_looks_at_the_tree() {
        let tree = Tree::merged_usr();
        // usrmerge's test, and systemd-resolved's on a missing file.
        let script = "#!/bin/sh\n[ \"$(readlink -f /bin)\" = /usr/bin ] && merged\n[ \"$(readlink /etc/resolv.conf)\" != x ] && missing\necho \"$(readlink /bin)\"\n";
        let (commands, _) = walk(&tree, None, "p", Phase::Postinst, script).unwrap();
        let words: Vec<Vec<&str>> = commands
            .iter()
            .map(|c| c.words.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(
            words,
            [vec!["merged"], vec!["missing"], vec!["echo", "usr/bin"]]
        );
        assert!(commands.iter().all(|c| !c.conditional));
    }
}
