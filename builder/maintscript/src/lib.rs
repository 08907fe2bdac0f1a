//! Debian maintainer scripts read as data, never run.
//!
//! A script is parsed by a real shell parser (brush-parser, POSIX sh and
//! bash), then *walked* the way dpkg would run it for a fresh install of
//! the package: `preinst install`, `postinst configure` with no old
//! version. The walk follows the script's control flow as far as it can be
//! decided without running anything:
//!
//! - `case "$1"` and tests on `$1` and `$2` are decided by the arguments;
//! - variables assigned literal values (also from other variables and
//!   `${VAR:-default}`) are known; a value from a command substitution or
//!   arithmetic is not, except `$(dpkg-divert --truename PATH)`, which is
//!   PATH (scripts are read before any diversion exists); a variable the
//!   script never assigns is unset, as in the clean environment of an image build, where dpkg sets only its own
//!   (`DPKG_MAINTSCRIPT_PACKAGE`, `DPKG_MAINTSCRIPT_NAME`, `DPKG_ROOT`,
//!   `DPKG_ADMINDIR`);
//! - file tests (`[ -x /usr/sbin/foo ]`, `test -d`, `command -v foo`) are
//!   decided against the image as it stands after every package is
//!   unpacked (the [`Image`] the caller passes);
//! - `dpkg --compare-versions "$2" lt X` with no old version is decided as
//!   dpkg decides it;
//! - shell functions are followed into, `for` loops over known words are
//!   unrolled, and `exit` ends the walk;
//! - a shell library the script sources (`. /usr/share/dpkg/sh/…`) is
//!   walked in the script's scope when the image has it (its commands carry
//!   the line of the `.`); debconf's confmodule is not followed (a caller
//!   treats `db_*` as debconf questions).
//!
//! What cannot be decided is not guessed: every branch that might run is
//! walked and its commands are marked [`Invocation::conditional`]; a word
//! whose value is not known is an [`Arg::Unknown`]; and what the walk cannot
//! follow at all (`eval`, arithmetic, a redirected compound command) is an
//! [`Unreadable`] with its line. The result is every command the script
//! might run, in order, for the caller to do natively or refuse by name.

mod condition;
mod expand;
mod walk;

pub use expand::{Arg, SCRATCH, matches};

/// Which maintainer script, and so the arguments dpkg runs it with for a
/// fresh install.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// `preinst install`.
    Preinst,
    /// `postinst configure` (no old version).
    Postinst,
    /// debconf's `config configure` (no old version), run before the
    /// preinst to settle the package's questions.
    Config,
}

impl Phase {
    /// The control file's name.
    pub fn script(self) -> &'static str {
        match self {
            Phase::Preinst => "preinst",
            Phase::Postinst => "postinst",
            Phase::Config => "config",
        }
    }

    /// The arguments dpkg passes for a fresh install: the action and an
    /// empty old version.
    pub fn arguments(self) -> [&'static str; 2] {
        match self {
            Phase::Preinst => ["install", ""],
            Phase::Postinst | Phase::Config => ["configure", ""],
        }
    }
}

/// What is at a path of the image (absolute, symlinks followed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Its kind.
    pub kind: Kind,
    /// Its permission bits.
    pub mode: u32,
    /// Its size in bytes (files).
    pub size: u64,
}

/// The kinds of file a test can tell apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// Anything else (a device, a fifo, a socket).
    Other,
}

/// The image the script would run in, as far as its tests can see it.
pub trait Image {
    /// What is at `path` (absolute), following symlinks; None if nothing.
    fn stat(&self, path: &str) -> Option<Stat>;
    /// Whether `path` (absolute) is itself a symlink.
    fn is_symlink(&self, path: &str) -> bool;
    /// The text of a shell library at `path` (absolute) that a script
    /// sources with `.`; None if there is none (the `.` is then a command
    /// like any other).
    fn read(&self, path: &str) -> Option<String> {
        let _ = path;
        None
    }
    /// The target of the symlink at `path` (absolute), as written; None
    /// when it is not a symlink (`$(readlink PATH)` is then empty).
    fn readlink(&self, path: &str) -> Option<String> {
        let _ = path;
        None
    }
    /// `path` (absolute) with every symlink resolved (`readlink -f`); None
    /// when the image cannot say.
    fn canonical(&self, path: &str) -> Option<String> {
        let _ = path;
        None
    }
    /// The numeric owner and group of what is at `path` (absolute) itself,
    /// a symlink not followed (as `ls -ln PATH` prints them); None when
    /// nothing is there or the image cannot say.
    fn owner(&self, path: &str) -> Option<(u32, u32)> {
        let _ = path;
        None
    }
    /// The names in the directory at `path` (absolute), for globs; None
    /// when the image cannot say (the glob is then not known).
    fn list(&self, path: &str) -> Option<Vec<String>> {
        let _ = path;
        None
    }
    /// Whether some package of the image ships `path` (absolute, as its
    /// file list has it), for `dpkg-query -S`; None when not known.
    fn shipped(&self, path: &str) -> Option<bool> {
        let _ = path;
        None
    }
    /// The value of the package's debconf question `question` as the
    /// script finds it: its template's default, or what the package's
    /// config script set; None when not known.
    fn debconf(&self, question: &str) -> Option<String> {
        let _ = question;
        None
    }
}

/// One command the script would (or might) run, as words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The line it starts on (1-based).
    pub line: usize,
    /// The command as written in the script.
    pub text: String,
    /// Its words after expansion: the command name first.
    pub words: Vec<Arg>,
    /// Files its output is redirected into (`>`, `>>`; not /dev/null).
    pub writes: Vec<Arg>,
    /// Whether a write appends (`>>`) rather than replaces the file.
    pub append: bool,
    /// Its standard input, when it is a here-document.
    pub stdin: Option<Arg>,
    /// Whether it runs only under a condition the walk could not decide
    /// (it may or may not run on a fresh install).
    pub conditional: bool,
    /// The file-creation mask it runs with (dpkg's 022 until the script's
    /// `umask` changes it); None when the walk cannot say (an `umask`
    /// under a condition it could not decide, or with a value not known).
    pub umask: Option<u32>,
}

/// The file-creation mask dpkg runs maintainer scripts with.
pub const DPKG_UMASK: u32 = 0o022;

impl Invocation {
    /// The command's name, if known.
    pub fn name(&self) -> Option<&str> {
        self.words.first().and_then(Arg::known)
    }

    /// The known words, or None if any word's value is not known.
    pub fn known_words(&self) -> Option<Vec<&str>> {
        self.words.iter().map(Arg::known).collect()
    }
}

/// A place the walk could not follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    /// Its line (1-based).
    pub line: usize,
    /// What is written there.
    pub text: String,
    /// Why it cannot be read.
    pub why: String,
}

/// Everything a walk found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Walk {
    /// The commands that would or might run, in order.
    pub invocations: Vec<Invocation>,
    /// What could not be followed.
    pub unreadable: Vec<Unreadable>,
    /// The debconf questions the script set (`db_set`), with their values;
    /// None when it is not known (a value or a condition the walk cannot
    /// decide).
    pub debconf: std::collections::BTreeMap<String, Option<String>>,
    /// The lines of `exit N` (N not 0) the walk took as not reached, under
    /// a condition it could not decide: had the script exited there, dpkg
    /// would not have configured the package, and a built image has every
    /// package configured.
    pub assumed: Vec<usize>,
}

/// A script that is not valid shell.
#[derive(Debug, thiserror::Error)]
#[error("{script} is not valid shell: {message}")]
pub struct ParseError {
    /// The script's name.
    pub script: String,
    /// The parser's message (with the line).
    pub message: String,
}

/// Walks `script` (the text of `package`'s `phase` script) as a fresh
/// install would run it, against `image`.
pub fn walk(
    script: &str,
    phase: Phase,
    package: &str,
    image: &dyn Image,
) -> Result<Walk, ParseError> {
    let program = parse(script).map_err(|message| ParseError {
        script: phase.script().to_owned(),
        message,
    })?;
    Ok(walk::Walker::new(image, phase, package).program(&program))
}

/// Parses shell text, refusing what nests too deeply first.
fn parse(script: &str) -> Result<brush_parser::ast::Program, String> {
    if let Some(line) = too_deep(script) {
        return Err(format!(
            "compound commands nest more than {MAX_NESTING} deep by line {line}; \
             refused rather than followed"
        ));
    }
    let options = walk::options();
    let mut parser = brush_parser::Parser::new(std::io::Cursor::new(script), &options);
    parser.parse_program().map_err(|error| error.to_string())
}

/// The deepest nesting of compound commands a script may have. Real
/// maintainer scripts stay below ten; the parser and the walker recurse
/// once per level, so the bound keeps hostile text from exhausting the
/// stack.
pub const MAX_NESTING: usize = 200;

/// The line at which `script` first nests compound commands more than
/// [`MAX_NESTING`] deep, by a lexical count that errs towards deeper:
/// openers (`if`, `case`, `for`, `while`, `until`, `{`, `(`, `$(`) push,
/// their closers pop, and a `)` closes only a `(` (so `case` patterns do not
/// count as closers). Quotes are not tracked, so a quoted `if` counts as an
/// opener: a false alarm needs two hundred of them in a row.
fn too_deep(script: &str) -> Option<usize> {
    // Each opener still open; `true` for a parenthesis.
    let mut open: Vec<bool> = Vec::new();
    for (number, line) in script.lines().enumerate() {
        let code = line.split_once('#').map_or(line, |(code, _)| code);
        let spaced = code
            .replace("$(", " ( ")
            .replace('(', " ( ")
            .replace(')', " ) ")
            .replace(';', " ; ");
        for word in spaced.split(|c: char| c.is_whitespace() || c == '&' || c == '|') {
            match word {
                "if" | "case" | "for" | "while" | "until" | "{" => open.push(false),
                "(" => open.push(true),
                "fi" | "esac" | "done" | "}" => {
                    open.pop();
                }
                ")" if open.last() == Some(&true) => {
                    open.pop();
                }
                _ => {}
            }
            if open.len() > MAX_NESTING {
                return Some(number + 1);
            }
        }
    }
    None
}
