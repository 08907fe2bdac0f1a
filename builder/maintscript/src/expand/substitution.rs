//! Command substitutions whose output is known without running anything.

use super::*;

impl Scope<'_> {
    /// `echo WORDS | cut -d C -f N`: the N-th field of the echoed line
    /// (the whole line when it has no C), as dh_nginx's scripts split
    /// `FROM:TO` pairs; and `ls -ln PATH | awk '{print $3}'` (or `$4`):
    /// the numeric owner (group) of PATH itself, from the image, as
    /// bind9's postinst asks who owns its rndc key. Any other pipeline is
    /// not known.
    fn pipeline(&self, left: &str, right: &str) -> Option<String> {
        if right.starts_with('|') || right.contains('|') {
            return None;
        }
        if let Some(owner) = self.listed_owner(left, right) {
            return owner;
        }
        let words = |text: &str| -> Option<Vec<String>> {
            text.split_whitespace()
                .map(|word| self.single(word).known().map(str::to_owned))
                .collect()
        };
        let (left, right) = (words(left)?, words(right)?);
        let left: Vec<&str> = left.iter().map(String::as_str).collect();
        let ["echo", echoed @ ..] = left.as_slice() else {
            return None;
        };
        let line = echoed.join(" ");
        let mut args = right.iter().map(String::as_str);
        if args.next() != Some("cut") {
            return None;
        }
        let (mut delimiter, mut field) = (None, None);
        while let Some(arg) = args.next() {
            let value = |flag: &str| -> Option<String> {
                match arg.strip_prefix(flag) {
                    Some("") => None,
                    Some(rest) => Some(rest.to_owned()),
                    None => None,
                }
            };
            if arg == "-d" {
                delimiter = Some(args.next()?.to_owned());
            } else if arg == "-f" {
                field = Some(args.next()?.parse::<usize>().ok()?);
            } else if let Some(d) = value("-d") {
                delimiter = Some(d);
            } else if let Some(f) = value("-f") {
                field = Some(f.parse::<usize>().ok()?);
            } else {
                return None;
            }
        }
        let delimiter = delimiter.filter(|d| d.chars().count() == 1)?;
        let field = field.filter(|&f| f > 0)?;
        if !line.contains(&delimiter) {
            return Some(line);
        }
        Some(
            line.split(&delimiter)
                .nth(field - 1)
                .unwrap_or("")
                .to_owned(),
        )
    }

    /// `ls -ln PATH | awk '{print $3}'` (`$4` for the group): Some when
    /// the pipeline has that shape, with the id when the image says.
    fn listed_owner(&self, left: &str, right: &str) -> Option<Option<String>> {
        let program = right.trim().strip_prefix("awk")?.trim();
        let program = program.strip_prefix('\'')?.strip_suffix('\'')?;
        let program = program.trim().strip_prefix('{')?.strip_suffix('}')?;
        let field = match program.split_whitespace().collect::<Vec<_>>()[..] {
            ["print", "$3"] => 0,
            ["print", "$4"] => 1,
            _ => return None,
        };
        let words: Vec<&str> = left.split_whitespace().collect();
        let ["ls", flags, path] = words[..] else {
            return None;
        };
        let flags = flags.strip_prefix('-')?;
        if flags.chars().any(|c| !matches!(c, 'l' | 'n')) || !flags.contains('n') {
            return None;
        }
        let path = self.single(path).known()?.to_owned();
        if !path.starts_with('/') {
            return Some(None);
        }
        let Some(image) = self.image else {
            return Some(None);
        };
        let (uid, gid) = match image.0.owner(&path) {
            Some(ids) => ids,
            None => return Some(None),
        };
        Some(Some([uid, gid][field].to_string()))
    }

    /// The output of a command substitution whose value is known without
    /// running anything: `dpkg-divert --truename PATH`, `dirname PATH`,
    /// `basename PATH`, and `mktemp` (below). Each word may be quoted and
    /// hold variables.
    pub(super) fn substitution(&self, command: &str) -> Option<String> {
        if let Some((left, right)) = command.split_once('|') {
            return self.pipeline(left, right);
        }
        let words: Vec<String> = command
            .split_whitespace()
            .map(|word| self.single(word).known().map(str::to_owned))
            .collect::<Option<_>>()?;
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        match words[..] {
            ["dirname", path] if !path.is_empty() => Some(match path.trim_end_matches('/') {
                "" => "/".to_owned(),
                trimmed => match trimmed.rsplit_once('/') {
                    Some(("", _)) => "/".to_owned(),
                    Some((parent, _)) => parent.trim_end_matches('/').to_owned(),
                    None => ".".to_owned(),
                },
            }),
            ["basename", path] if !path.is_empty() => {
                let trimmed = path.trim_end_matches('/');
                Some(if trimmed.is_empty() {
                    "/".to_owned()
                } else {
                    trimmed.rsplit('/').next().unwrap_or(trimmed).to_owned()
                })
            }
            // On a fresh install no diversion exists until the script
            // makes one: no package diverts the path, which is its own
            // true name.
            ["dpkg-divert", "--listpackage", path] if !self.diverted.borrow().contains(path) => {
                Some(String::new())
            }
            ["dpkg-divert", "--truename", path]
                if path.starts_with('/') && !self.diverted.borrow().contains(path) =>
            {
                Some(path.to_owned())
            }
            ["dpkg-divert", ..] => None,
            // `seq [FIRST [INCREMENT]] LAST`, small and integral.
            ["seq", ref numbers @ ..] if (1..=3).contains(&numbers.len()) => {
                let numbers: Vec<i64> = numbers
                    .iter()
                    .map(|n| n.parse().ok())
                    .collect::<Option<_>>()?;
                let (first, step, last) = match numbers[..] {
                    [last] => (1, 1, last),
                    [first, last] => (first, 1, last),
                    [first, step, last] => (first, step, last),
                    _ => return None,
                };
                if step == 0 || (last - first) / step > 1024 {
                    return None;
                }
                let mut out = Vec::new();
                let mut n = first;
                while (step > 0 && n <= last) || (step < 0 && n >= last) {
                    out.push(n.to_string());
                    n += step;
                }
                Some(out.join("\n"))
            }
            // What a link points to, or the path with every link
            // resolved: only looks at the image (as unpacked).
            ["readlink", path] if path.starts_with('/') => {
                let image = self.image?.0;
                if image.is_symlink(path) {
                    image.readlink(path)
                } else {
                    Some(String::new())
                }
            }
            ["readlink", "-f" | "-e" | "-m", path] if path.starts_with('/') => {
                self.image?.0.canonical(path)
            }
            _ => self.mktemp(command),
        }
    }

    /// `$(mktemp)`, `$(mktemp -d)`, `$(mktemp [-t|--tmpdir|-p /tmp]
    /// NAME.XXXXXX)`: a fresh
    /// scratch path of its own, `/tmp/airlock-mktemp.PACKAGE.N` (the caller
    /// makes the file or directory when it does the script's steps, and
    /// removes it after). The script's own steps on it (a copy into it, an
    /// edit) are then steps on a known path.
    fn mktemp(&self, command: &str) -> Option<String> {
        let words: Vec<&str> = command.split_whitespace().collect();
        let (&"mktemp", args) = words.split_first()? else {
            return None;
        };
        let mut directory = false;
        let mut template = false;
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            match *arg {
                "-d" | "--directory" => directory = true,
                "-q" | "--quiet" | "-t" | "--tmpdir" | "--tmpdir=/tmp" => {}
                "-p" => {
                    if rest.next() != Some(&"/tmp") {
                        return None;
                    }
                }
                name if !template
                    && !name.starts_with('-')
                    && !name.contains('/')
                    && name.contains("XXX") =>
                {
                    template = true;
                }
                _ => return None,
            }
        }
        let package = self
            .vars
            .get("DPKG_MAINTSCRIPT_PACKAGE")
            .cloned()
            .flatten()
            .unwrap_or_default();
        let n = self.scratch.get() + 1;
        self.scratch.set(n);
        let suffix = if directory { ".d" } else { "" };
        Some(format!("{SCRATCH}{package}.{n}{suffix}"))
    }
}
