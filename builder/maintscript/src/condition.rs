//! Conditions decided without running anything: `test` and `[`, `command
//! -v`, `which` and `type`, and `dpkg --compare-versions` against an empty
//! old version. Anything else is [`Status::Unknown`].

use crate::{Image, Kind};

/// A command's exit status as far as the walk knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Exit status 0.
    True,
    /// A non-zero exit status.
    False,
    /// Not known without running it.
    Unknown,
}

impl Status {
    pub fn from_bool(value: bool) -> Self {
        if value { Status::True } else { Status::False }
    }

    pub fn not(self) -> Self {
        match self {
            Status::True => Status::False,
            Status::False => Status::True,
            Status::Unknown => Status::Unknown,
        }
    }
}

/// dpkg runs maintainer scripts with this PATH.
const PATH: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// Commands the shell itself provides (so `command -v` finds them).
const BUILTINS: &[&str] = &[
    ".", ":", "[", "break", "cd", "command", "continue", "echo", "eval", "exec", "exit", "export",
    "false", "getopts", "local", "printf", "pwd", "read", "readonly", "return", "set", "shift",
    "test", "trap", "true", "type", "umask", "unset", "wait",
];

/// `path` made absolute against the script's working directory; None when
/// it is relative and the directory is not known.
pub fn absolute(cwd: Option<&str>, path: &str) -> Option<String> {
    if path.starts_with('/') {
        Some(path.to_owned())
    } else {
        let cwd = cwd?.trim_end_matches('/');
        Some(format!("{cwd}/{path}"))
    }
}

fn executable(image: &dyn Image, path: &str) -> bool {
    image
        .stat(path)
        .is_some_and(|stat| stat.kind == Kind::File && stat.mode & 0o111 != 0)
}

/// Whether `path` (absolute) is in one of the directories of dpkg's PATH.
pub fn on_path(path: &str) -> bool {
    path.rsplit_once('/')
        .is_some_and(|(dir, _)| PATH.contains(&dir))
}

/// Whether `name` is a command the script could run: a builtin, a
/// function it defined, or an executable on dpkg's PATH in the image.
pub fn found(image: &dyn Image, name: &str, is_function: bool) -> bool {
    if name.contains('/') {
        // A relative name with a slash is rare in maintainer scripts; it
        // is read against `/`, where dpkg starts them.
        return absolute(Some("/"), name).is_some_and(|path| executable(image, &path));
    }
    is_function
        || BUILTINS.contains(&name)
        || PATH
            .iter()
            .any(|dir| executable(image, &format!("{dir}/{name}")))
}

fn unary(image: &dyn Image, cwd: Option<&str>, op: &str, operand: &str) -> Status {
    let path = match absolute(cwd, operand) {
        Some(path) => path,
        None if matches!(op, "-z" | "-n") => String::new(),
        None => return Status::Unknown,
    };
    let stat = || image.stat(&path);
    let result = match op {
        "-z" => operand.is_empty(),
        "-n" => !operand.is_empty(),
        "-e" | "-a" | "-r" | "-w" => stat().is_some(),
        "-f" => stat().is_some_and(|s| s.kind == Kind::File),
        "-d" => stat().is_some_and(|s| s.kind == Kind::Dir),
        "-x" => stat().is_some_and(|s| s.mode & 0o111 != 0),
        "-s" => stat().is_some_and(|s| s.size > 0 || s.kind == Kind::Dir),
        "-L" | "-h" => image.is_symlink(&path),
        "-b" | "-c" | "-p" | "-S" => match stat() {
            None => false,
            Some(s) if s.kind != Kind::Other => false,
            Some(_) => return Status::Unknown,
        },
        _ => return Status::Unknown,
    };
    Status::from_bool(result)
}

fn binary(left: &str, op: &str, right: &str) -> Status {
    let numbers = || {
        Some((
            left.trim().parse::<i64>().ok()?,
            right.trim().parse::<i64>().ok()?,
        ))
    };
    let result = match op {
        "=" | "==" => left == right,
        "!=" => left != right,
        "-eq" | "-ne" | "-lt" | "-le" | "-gt" | "-ge" => {
            let Some((l, r)) = numbers() else {
                return Status::Unknown;
            };
            match op {
                "-eq" => l == r,
                "-ne" => l != r,
                "-lt" => l < r,
                "-le" => l <= r,
                "-gt" => l > r,
                _ => l >= r,
            }
        }
        _ => return Status::Unknown,
    };
    Status::from_bool(result)
}

/// `test ARGS` (or `[ ARGS ]` with the `]` removed), by POSIX's rules for
/// up to four arguments.
pub fn test(image: &dyn Image, cwd: Option<&str>, args: &[&str]) -> Status {
    let test = |args: &[&str]| test(image, cwd, args);
    match args {
        [] => Status::False,
        [one] => Status::from_bool(!one.is_empty()),
        ["!", rest @ ..] if rest.len() <= 2 => test(rest).not(),
        [op, operand] => unary(image, cwd, op, operand),
        [left, op, right] if !matches!(*op, "-a" | "-o") => binary(left, op, right),
        [left, "-a", right] => and(test(&[left]), test(&[right])),
        [left, "-o", right] => or(test(&[left]), test(&[right])),
        ["(", inner @ .., ")"] => test(inner),
        // More arguments: XSI's `-a` and `-o`, `-a` binding tighter. An
        // operator can only stand where an operand ended, which the
        // shorter forms above already read; past four arguments it is the
        // first `-o`, else the first `-a`, that splits.
        _ => match split_at(args, "-o") {
            Some((left, right)) => or(test(left), test(right)),
            None => match split_at(args, "-a") {
                Some((left, right)) => and(test(left), test(right)),
                None => Status::Unknown,
            },
        },
    }
}

/// `args` split around the first `op` that has a whole test of one to
/// three arguments before it.
fn split_at<'a, 'b>(args: &'a [&'b str], op: &str) -> Option<(&'a [&'b str], &'a [&'b str])> {
    (1..args.len().saturating_sub(1))
        .filter(|&i| args[i] == op)
        .find(|&i| i <= 3 && is_whole(&args[..i]))
        .map(|i| (&args[..i], &args[i + 1..]))
}

/// Whether `args` reads as one test on its own (an operand, a unary or a
/// binary test, possibly negated).
fn is_whole(args: &[&str]) -> bool {
    match args {
        [_] => true,
        ["!", rest @ ..] => !rest.is_empty() && is_whole(rest),
        [op, _] => op.starts_with('-'),
        [_, op, _] => !matches!(*op, "-a" | "-o"),
        _ => false,
    }
}

fn and(a: Status, b: Status) -> Status {
    match (a, b) {
        (Status::False, _) | (_, Status::False) => Status::False,
        (Status::True, Status::True) => Status::True,
        _ => Status::Unknown,
    }
}

fn or(a: Status, b: Status) -> Status {
    match (a, b) {
        (Status::True, _) | (_, Status::True) => Status::True,
        (Status::False, Status::False) => Status::False,
        _ => Status::Unknown,
    }
}

/// `dpkg --compare-versions A OP B` when A is empty (no old version, as on
/// a fresh install): an empty version is earlier than any other, except
/// for the `-nl` operators, where it is later.
pub fn compare_versions(args: &[&str]) -> Status {
    let [left, op, right] = args else {
        return Status::Unknown;
    };
    if !left.is_empty() || right.is_empty() {
        return Status::Unknown;
    }
    let earlier = match *op {
        "lt" | "le" | "<<" | "<=" | "<" | "ne" => true,
        "gt" | "ge" | ">>" | ">=" | ">" | "eq" => false,
        "lt-nl" | "le-nl" => false,
        "gt-nl" | "ge-nl" => true,
        _ => return Status::Unknown,
    };
    Status::from_bool(earlier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Stat;

    struct Fake;
    impl Image for Fake {
        fn stat(&self, path: &str) -> Option<Stat> {
            match path {
                "/usr/sbin/adduser" => Some(Stat {
                    kind: Kind::File,
                    mode: 0o755,
                    size: 10,
                }),
                "/etc/default/x" => Some(Stat {
                    kind: Kind::File,
                    mode: 0o644,
                    size: 0,
                }),
                "/etc" => Some(Stat {
                    kind: Kind::Dir,
                    mode: 0o755,
                    size: 0,
                }),
                _ => None,
            }
        }
        fn is_symlink(&self, path: &str) -> bool {
            path == "/bin"
        }
    }

    #[test]
    fn tests_follow_posix_and_the_image() {
        let t = |args: &[&str]| test(&Fake, Some("/"), args);
        assert_eq!(t(&["-x", "/usr/sbin/adduser"]), Status::True);
        assert_eq!(t(&["-x", "/etc/default/x"]), Status::False);
        assert_eq!(t(&["-s", "/etc/default/x"]), Status::False);
        assert_eq!(t(&["-f", "/etc/default/x"]), Status::True);
        assert_eq!(t(&["-d", "/etc"]), Status::True);
        assert_eq!(t(&["!", "-e", "/nowhere"]), Status::True);
        assert_eq!(t(&["-L", "/bin"]), Status::True);
        assert_eq!(t(&["configure", "=", "configure"]), Status::True);
        assert_eq!(t(&["", "!=", ""]), Status::False);
        assert_eq!(t(&["-z", ""]), Status::True);
        assert_eq!(t(&["3", "-lt", "10"]), Status::True);
        assert_eq!(t(&["a", "-lt", "10"]), Status::Unknown);
        assert_eq!(t(&["x"]), Status::True);
        assert_eq!(t(&["-nt", "a", "b", "c", "d"]), Status::Unknown);
        // XSI's -a and -o past three arguments (coreutils' postinst).
        let touch = [
            "configure",
            "=",
            "configure",
            "-a",
            "!",
            "-e",
            "/usr/sbin/adduser",
        ];
        assert_eq!(t(&touch), Status::False);
        let either = [
            "upgrade",
            "=",
            "configure",
            "-o",
            "-d",
            "/etc",
            "-a",
            "-z",
            "",
        ];
        assert_eq!(t(&either), Status::True);
        let neither = [
            "upgrade",
            "=",
            "configure",
            "-o",
            "-d",
            "/nowhere",
            "-a",
            "x",
        ];
        assert_eq!(t(&neither), Status::False);
        assert_eq!(t(&["a", "b", "-a", "c", "d"]), Status::Unknown);
        assert!(found(&Fake, "adduser", false));
        assert!(!found(&Fake, "deluser", false));
        assert!(found(&Fake, "deluser", true));
        assert!(found(&Fake, "printf", false));
    }

    #[test]
    fn an_empty_old_version_is_earlier_than_any() {
        assert_eq!(compare_versions(&["", "lt", "1.0"]), Status::True);
        assert_eq!(compare_versions(&["", "ge", "1.0"]), Status::False);
        assert_eq!(compare_versions(&["", "lt-nl", "1.0"]), Status::False);
        assert_eq!(compare_versions(&["2.0", "lt", "1.0"]), Status::Unknown);
    }
}
