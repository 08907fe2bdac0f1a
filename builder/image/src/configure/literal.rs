//! The literal file-system steps of maintainer scripts, done natively:
//! `mkdir`, `install -d`, `chown`, `chgrp`, `chmod`, `ln`, `touch`, `rm`,
//! `rmdir`, `mv`, `cp`, and text written into a file through a
//! redirection (`echo …`, `printf …`, `cat <<EOF`, `: >`).
//!
//! A step is done only when it is exact: it runs on a fresh install
//! whatever the image holds (not under a condition the walk could not
//! decide), every word's value is known, every path is absolute, and every
//! option is one read here. Anything else is refused with the reason, and
//! [`super::maintscripts`] makes it a gap. Steps are done in the order the
//! scripts would run them (packages by name, preinst before postinst),
//! once the accounts exist, with dpkg's umask (022). A path a module of
//! airlock writes itself (/etc/passwd, base-files' table) or a file of the
//! recipe is left to them: the recipe wins over a package's script.
//! Steps on the file systems the image mounts fresh at boot (/run, /proc,
//! /sys, /dev) have no lasting effect and are not done.

mod apply;
mod mode;
mod print;
pub mod sed;

pub use apply::{configure, remove_scratch};
pub use mode::Mode;

use print::{echo, printf};

use super::scripts::Command;

/// One step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `mkdir [-p] [-m MODE] DIR…`, `install -d [-m MODE] [-o USER]
    /// [-g GROUP] DIR…`.
    Mkdir {
        /// The directories.
        paths: Vec<String>,
        /// The mode to give them (mkdir: only when made).
        mode: Option<Mode>,
        /// The owner (`install -o`).
        owner: Option<String>,
        /// The group (`install -g`).
        group: Option<String>,
        /// Whether an existing directory gets the mode and owner too
        /// (`install -d` does; `mkdir` leaves it).
        existing: bool,
    },
    /// `chown [-R] [-h] OWNER[:[GROUP]] PATH…`, `chgrp [-R] GROUP PATH…`.
    Chown {
        /// The paths.
        paths: Vec<String>,
        /// The new owner, if it changes.
        owner: Option<String>,
        /// The new group, if it changes.
        group: Option<String>,
        /// `OWNER:` with no group: the owner's login group (nfs-common's
        /// `chown statd: /var/lib/nfs/sm`).
        login_group: bool,
        /// `-R`.
        recursive: bool,
        /// `-h`: a symlink itself, not what it leads to.
        no_follow: bool,
    },
    /// `chmod [-R] MODE PATH…`.
    Chmod {
        /// The paths.
        paths: Vec<String>,
        /// The mode.
        mode: Mode,
        /// `-R`.
        recursive: bool,
    },
    /// `ln [-s] [-f] [-n] [-T] TARGET LINK`.
    Link {
        /// The target, as written (a symlink's) or absolute (a hard link's).
        target: String,
        /// Where the link goes.
        link: String,
        /// `-s`.
        symbolic: bool,
        /// `-f`: replaces what is there.
        force: bool,
        /// `-n`/`-T`: LINK itself, even when it leads to a directory.
        no_dereference: bool,
    },
    /// `touch PATH…` (`-c`: only existing ones, so nothing).
    Touch(Vec<String>),
    /// `rm [-f] [-r] PATH…`.
    Remove {
        /// The paths.
        paths: Vec<String>,
        /// `-r`: directories too.
        recursive: bool,
    },
    /// `rmdir [-p] DIR…`: empty directories.
    Rmdir(Vec<String>),
    /// `mv [-f] FROM TO`.
    Move {
        /// The source.
        from: String,
        /// The destination.
        to: String,
    },
    /// `cp [-a|-p|-r|-d|-f] FROM TO`, `install [-m MODE] [-o] [-g] FROM TO`.
    Copy {
        /// The source.
        from: String,
        /// The destination.
        to: String,
        /// Mode, owner and links kept (`-a`, `-p`).
        preserve: bool,
        /// Directories copied whole (`-r`, `-a`).
        recursive: bool,
        /// The mode `install` gives the copy.
        mode: Option<Mode>,
        /// The owner `install -o` gives it.
        owner: Option<String>,
        /// The group `install -g` gives it.
        group: Option<String>,
    },
    /// Text written into a file: `echo … > PATH`, `cat <<EOF >> PATH`.
    Write {
        /// The file.
        path: String,
        /// What is written.
        bytes: Vec<u8>,
        /// `>>`.
        append: bool,
    },
    /// `cat FILE… > PATH`: files of the image concatenated into one;
    /// `sed 's/…/…/' FILE… > PATH`: edited on the way.
    Concatenate {
        /// The files read.
        from: Vec<String>,
        /// sed's substitutions (none for `cat`).
        edits: Vec<sed::Substitution>,
        /// The file written.
        path: String,
        /// `>>`.
        append: bool,
    },
}

/// The file systems the image mounts fresh at every boot.
const RUNTIME: &[&str] = &["/run", "/proc", "/sys", "/dev", "/var/run"];

impl Op {
    /// The paths the step changes.
    pub fn targets(&self) -> Vec<&str> {
        match self {
            Op::Mkdir { paths, .. }
            | Op::Chown { paths, .. }
            | Op::Chmod { paths, .. }
            | Op::Remove { paths, .. }
            | Op::Touch(paths)
            | Op::Rmdir(paths) => paths.iter().map(String::as_str).collect(),
            Op::Link { link, .. } => vec![link],
            Op::Move { from, to } => vec![from, to],
            Op::Copy { to, .. } => vec![to],
            Op::Write { path, .. } | Op::Concatenate { path, .. } => vec![path],
        }
    }

    /// Whether every path it changes is on a file system the image mounts
    /// fresh at boot, so that it has no lasting effect.
    pub fn at_runtime_only(&self) -> bool {
        self.targets().iter().all(|path| {
            RUNTIME
                .iter()
                .any(|dir| *path == *dir || path.starts_with(&format!("{dir}/")))
        })
    }
}

/// The programs read here.
pub const PROGRAMS: &[&str] = &[
    "mkdir", "install", "chown", "chgrp", "chmod", "ln", "touch", "rm", "rmdir", "mv", "cp",
];

/// Reads a literal file-system step: None if `command` is none (another
/// program, and no redirection into a file), else the step or why airlock
/// does not do it.
pub fn parse(command: &Command) -> Option<Result<Op, String>> {
    let program = command.name().rsplit('/').next().unwrap_or("");
    if command.writes.is_empty() && !PROGRAMS.contains(&program) {
        return None;
    }
    let op = read(command, program);
    // A step with no effect is none whether or not it runs.
    if matches!(&op, Ok(Op::Touch(paths)) if paths.is_empty()) {
        return Some(op);
    }
    if command.conditional {
        return Some(Err(
            "it runs only under a condition the walk cannot decide, and airlock does not \
             guess whether it would"
                .to_owned(),
        ));
    }
    if command.umask.is_none() {
        return Some(Err(
            "the file-creation mask it runs with is not known (an umask the walk cannot decide)"
                .to_owned(),
        ));
    }
    Some(op)
}

/// The paths a literal step would change if it ran, whether or not it
/// does: for telling whose paths they are.
pub fn targets(command: &Command) -> Option<Vec<String>> {
    let program = command.name().rsplit('/').next().unwrap_or("");
    if !command.writes.is_empty() {
        // Whatever writes them, these are the files that change.
        let known = command
            .writes
            .iter()
            .all(|w| w.starts_with('/') && !w.contains(['$', '`']));
        return known.then(|| command.writes.clone());
    }
    if !PROGRAMS.contains(&program) {
        return None;
    }
    if let Ok(op) = read(command, program) {
        return Some(op.targets().into_iter().map(str::to_owned).collect());
    }
    // Not exact: the paths it names, when those at least are known (a word
    // the walk does not know is kept as written, with its `$`).
    let paths: Vec<String> = match program {
        "ln" | "cp" | "mv" | "install" => command.words.last().into_iter().cloned().collect(),
        _ => command.words[1..]
            .iter()
            .filter(|w| w.starts_with('/'))
            .cloned()
            .collect(),
    };
    let known = |w: &String| w.starts_with('/') && !w.contains(['$', '`', '*', '?', '[']);
    (!paths.is_empty() && paths.iter().all(known)).then_some(paths)
}

fn read(command: &Command, program: &str) -> Result<Op, String> {
    // `touch -h` and `touch -c` make nothing whatever their words: they
    // only set times (of a link itself, of files already there).
    if program == "touch"
        && command.words[1..]
            .iter()
            .any(|w| matches!(w.as_str(), "-h" | "-c" | "--no-dereference" | "--no-create"))
    {
        return Ok(Op::Touch(Vec::new()));
    }
    if command.expands {
        return Err("a word's value is not known without running the script".to_owned());
    }
    let args: Vec<&str> = command.words[1..].iter().map(String::as_str).collect();
    if !command.writes.is_empty() {
        return written(command, program, &args);
    }
    let op = match program {
        "mkdir" => mkdir(&args)?,
        "install" => install(&args)?,
        "chown" | "chgrp" => chown(program, &args)?,
        "chmod" => chmod(&args)?,
        "ln" => ln(&args)?,
        "touch" => {
            let args: Vec<&str> = args
                .iter()
                .copied()
                .filter(|a| !a.starts_with("--reference=") && !a.starts_with("--date="))
                .map(|a| if a == "--no-dereference" { "-h" } else { a })
                .collect();
            let (flags, values, paths) = options(&args, "acmh", "rdt")?;
            // -c creates nothing, and neither does -h (it sets a link's
            // own times); what is left is timestamps, which airlock sets.
            if flags.iter().any(|f| matches!(f, 'c' | 'h')) {
                Op::Touch(Vec::new())
            } else {
                let _ = values;
                Op::Touch(paths)
            }
        }
        "rm" => {
            let (flags, paths) = split(&args, "frRv", "")?;
            Op::Remove {
                paths,
                recursive: flags.iter().any(|f| matches!(f, 'r' | 'R')),
            }
        }
        "rmdir" => {
            let args: Vec<&str> = args
                .into_iter()
                .filter(|a| *a != "--ignore-fail-on-non-empty")
                .collect();
            Op::Rmdir(split(&args, "pv", "")?.1)
        }
        "mv" => match &split(&args, "fv", "")?.1[..] {
            [from, to] => Op::Move {
                from: from.clone(),
                to: to.clone(),
            },
            _ => return Err("mv with other than one source and one destination".to_owned()),
        },
        "cp" => cp(&args)?,
        _ => unreachable!("one of PROGRAMS"),
    };
    for path in op.targets() {
        check_path(path)?;
    }
    Ok(op)
}

/// Splits arguments into single-letter flags (`flags`, or `with_value`
/// taking the next word) and operands; long options are refused.
fn split(args: &[&str], flags: &str, with_value: &str) -> Result<(Vec<char>, Vec<String>), String> {
    let (set, _, operands) = options(args, flags, with_value)?;
    Ok((set, operands))
}

/// Flags, the values of the flags that take one (in order), and operands.
type Options = (Vec<char>, Vec<(char, String)>, Vec<String>);

fn options(args: &[&str], flags: &str, with_value: &str) -> Result<Options, String> {
    let mut set = Vec::new();
    let mut values = Vec::new();
    let mut operands = Vec::new();
    let mut args = args.iter();
    let mut only_operands = false;
    while let Some(arg) = args.next() {
        if only_operands || !arg.starts_with('-') || *arg == "-" {
            operands.push((*arg).to_owned());
            continue;
        }
        if *arg == "--" {
            only_operands = true;
            continue;
        }
        let long = match *arg {
            "--parents" => Some('p'),
            "--force" => Some('f'),
            "--recursive" => Some('R'),
            "--symbolic" => Some('s'),
            "--no-dereference" => Some('n'),
            "--no-target-directory" => Some('T'),
            "--verbose" => Some('v'),
            "--archive" => Some('a'),
            "--directory" => Some('d'),
            "--no-create" => Some('c'),
            _ => None,
        };
        if let Some(flag) = long
            && flags.contains(flag)
        {
            set.push(flag);
            continue;
        }
        // `--mode=644`, `--mode 644`, and the same for --owner, --group.
        let valued = [("--mode", 'm'), ("--owner", 'o'), ("--group", 'g')]
            .into_iter()
            .find(|(name, letter)| {
                with_value.contains(*letter)
                    && (arg == name || arg.starts_with(&format!("{name}=")))
            });
        if let Some((name, letter)) = valued {
            let value = match arg.strip_prefix(&format!("{name}=")) {
                Some(value) => value.to_owned(),
                None => args
                    .next()
                    .ok_or_else(|| format!("option {name} without its value"))?
                    .to_string(),
            };
            values.push((letter, value));
            continue;
        }
        if arg.starts_with("--") {
            return Err(format!("option {arg} is not one airlock reads"));
        }
        for (at, letter) in arg[1..].char_indices() {
            if with_value.contains(letter) {
                let rest = &arg[1 + at + letter.len_utf8()..];
                let value = if rest.is_empty() {
                    args.next()
                        .ok_or_else(|| format!("option -{letter} without its value"))?
                        .to_string()
                } else {
                    rest.to_owned()
                };
                values.push((letter, value));
                break;
            } else if flags.contains(letter) {
                set.push(letter);
            } else if letter == 'Z' {
                // The default SELinux context: an image has no labels.
            } else {
                return Err(format!("option -{letter} is not one airlock reads"));
            }
        }
    }
    Ok((set, values, operands))
}

fn value(values: &[(char, String)], flag: char) -> Option<String> {
    values
        .iter()
        .rev()
        .find(|(f, _)| *f == flag)
        .map(|(_, v)| v.clone())
}

fn mkdir(args: &[&str]) -> Result<Op, String> {
    let (_, values, paths) = options(args, "pv", "m")?;
    let mode = value(&values, 'm').map(|m| m.parse()).transpose()?;
    Ok(Op::Mkdir {
        paths,
        mode,
        owner: None,
        group: None,
        existing: false,
    })
}

fn install(args: &[&str]) -> Result<Op, String> {
    let (flags, values, operands) = options(args, "dDvpc", "mog")?;
    let mode = value(&values, 'm').map(|m| m.parse()).transpose()?;
    let owner = value(&values, 'o');
    let group = value(&values, 'g');
    if flags.contains(&'d') {
        return Ok(Op::Mkdir {
            paths: operands,
            mode: Some(mode.unwrap_or(Mode::Octal(0o755))),
            owner,
            group,
            existing: true,
        });
    }
    match &operands[..] {
        [from, to] => Ok(Op::Copy {
            from: from.clone(),
            to: to.clone(),
            preserve: false,
            recursive: false,
            mode: Some(mode.unwrap_or(Mode::Octal(0o755))),
            owner,
            group,
        }),
        _ => Err("install with other than one source and one destination".to_owned()),
    }
}

fn chown(program: &str, args: &[&str]) -> Result<Op, String> {
    let (flags, mut operands) = split(args, "RhfvH", "")?;
    if operands.len() < 2 {
        return Err(format!("{program} without an owner and a path"));
    }
    let spec = operands.remove(0);
    let (owner, group, login_group) = if program == "chgrp" {
        (None, Some(spec), false)
    } else {
        match spec.split_once([':', '.']) {
            Some((owner, group)) => (
                (!owner.is_empty()).then(|| owner.to_owned()),
                (!group.is_empty()).then(|| group.to_owned()),
                !owner.is_empty() && group.is_empty(),
            ),
            None => (Some(spec), None, false),
        }
    };
    Ok(Op::Chown {
        paths: operands,
        owner,
        group,
        login_group,
        recursive: flags.contains(&'R'),
        no_follow: flags.contains(&'h'),
    })
}

fn chmod(args: &[&str]) -> Result<Op, String> {
    // A symbolic mode such as `-w` looks like an option: take the first
    // word that is not -R/-v/-f as the mode.
    let mut recursive = false;
    let mut rest = Vec::new();
    for arg in args {
        match *arg {
            "-R" | "--recursive" => recursive = true,
            "-v" | "-f" | "-c" | "--" => {}
            other => rest.push(other.to_owned()),
        }
    }
    if rest.len() < 2 {
        return Err("chmod without a mode and a path".to_owned());
    }
    let mode = rest.remove(0).parse()?;
    Ok(Op::Chmod {
        paths: rest,
        mode,
        recursive,
    })
}

fn ln(args: &[&str]) -> Result<Op, String> {
    let (flags, operands) = split(args, "sfnTvr", "")?;
    if flags.contains(&'r') {
        return Err("ln -r (a link relative to its target) is not read".to_owned());
    }
    let [target, link] = &operands[..] else {
        return Err("ln with other than one target and one link".to_owned());
    };
    let symbolic = flags.contains(&'s');
    if !symbolic {
        check_path(target)?;
    }
    Ok(Op::Link {
        target: target.clone(),
        link: link.clone(),
        symbolic,
        force: flags.contains(&'f'),
        no_dereference: flags.iter().any(|f| matches!(f, 'n' | 'T')),
    })
}

fn cp(args: &[&str]) -> Result<Op, String> {
    let args: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| !a.starts_with("--preserve") && *a != "--remove-destination")
        .collect();
    let (flags, operands) = split(&args, "apPrRdfv", "")?;
    let [from, to] = &operands[..] else {
        return Err("cp with other than one source and one destination".to_owned());
    };
    check_path(from)?;
    Ok(Op::Copy {
        from: from.clone(),
        to: to.clone(),
        preserve: flags.iter().any(|f| matches!(f, 'a' | 'p')),
        recursive: flags.iter().any(|f| matches!(f, 'a' | 'r' | 'R')),
        mode: None,
        owner: None,
        group: None,
    })
}

/// A path a step may change: absolute, without globs.
fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("{path:?} is not an absolute path"));
    }
    if path.contains(['*', '?', '[']) {
        return Err(format!(
            "{path} is a pattern, whose matches airlock does not expand"
        ));
    }
    Ok(())
}

/// `PROGRAM … > PATH`: what it writes, when airlock knows exactly.
fn written(command: &Command, program: &str, args: &[&str]) -> Result<Op, String> {
    let [path] = &command.writes[..] else {
        return Err(format!(
            "writes {} through redirections",
            command.writes.join(", ")
        ));
    };
    check_path(path)?;
    let append = command.append;
    let bytes = match (program, args) {
        (":" | "true", []) => Vec::new(),
        ("echo", _) => echo(args)?,
        ("printf", [format, rest @ ..]) => printf(format, rest)?,
        ("cat", []) | ("cat", ["-"]) => match &command.stdin {
            Some(text) => text.clone().into_bytes(),
            None => return Err("cat with no here-document reads nothing known".to_owned()),
        },
        ("cat", files) => {
            for file in files {
                check_path(file)?;
            }
            return Ok(Op::Concatenate {
                from: files.iter().map(|f| (*f).to_owned()).collect(),
                edits: Vec::new(),
                path: path.clone(),
                append,
            });
        }
        ("sed", args) => {
            let (edits, from) = sed::parse(args)?;
            for file in &from {
                check_path(file)?;
            }
            return Ok(Op::Concatenate {
                from,
                edits,
                path: path.clone(),
                append,
            });
        }
        _ => {
            return Err(format!(
                "writes what `{program}` prints into {path}, and airlock does not run it"
            ));
        }
    };
    Ok(Op::Write {
        path: path.clone(),
        bytes,
        append,
    })
}

#[cfg(test)]
mod tests;
