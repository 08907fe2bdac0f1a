//! The builtins the walk interprets instead of recording (variables,
//! `set`, `shift`, tests, sourcing, `eval`, `dpkg --compare-versions`,
//! `read`), and how it follows functions and sourced libraries.

use super::*;

/// `path` (absolute) with `.`, `..` and repeated slashes resolved
/// lexically; None if it climbs above `/`.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

impl Walker<'_> {
    /// Interprets `name` when it is one of these builtins: the flow it
    /// leads to, or None to go on (a function call, or a recorded command).
    pub(super) fn builtin(
        &mut self,
        line: Option<usize>,
        text: &str,
        name: &str,
        words: &[Arg],
        raw: &[&str],
        writes: &[Arg],
    ) -> Option<Flow> {
        let args = &words[1..];
        match name {
            "set" => {
                if let Some(position) = raw.iter().position(|w| *w == "--") {
                    self.scope.positional = words[position..]
                        .iter()
                        .skip(1)
                        .map(|a| a.known().map(str::to_owned))
                        .collect();
                }
                return Some(Flow::Next(Status::True));
            }
            "shift" => {
                let n = args
                    .first()
                    .and_then(Arg::known)
                    .map_or(Some(1), |n| n.parse::<usize>().ok());
                match n {
                    Some(n) => {
                        let n = n.min(self.scope.positional.len());
                        self.scope.positional.drain(..n);
                    }
                    None => self.scope.positional = vec![None; self.scope.positional.len()],
                }
                return Some(Flow::Next(Status::True));
            }
            "export" | "local" | "readonly" | "declare" | "typeset" => {
                for word in &raw[1..] {
                    if let Some((var, value)) = word.split_once('=')
                        && is_name(var)
                    {
                        let value = self.scope.single(value).known().map(str::to_owned);
                        self.scope.vars.insert(var.to_owned(), value);
                    } else if is_name(word) && name == "local" {
                        self.scope
                            .vars
                            .insert((*word).to_owned(), Some(String::new()));
                    }
                }
                return Some(Flow::Next(Status::True));
            }
            "unset" => {
                for var in Self::known(args).unwrap_or_default() {
                    if is_name(var) {
                        self.scope.vars.insert(var.to_owned(), Some(String::new()));
                    }
                }
                return Some(Flow::Next(Status::True));
            }
            "[" | "test" => {
                let status = match Self::known(args) {
                    Some(mut args) => {
                        if name == "[" {
                            if args.last() != Some(&"]") {
                                return Some(Flow::Next(Status::Unknown));
                            }
                            args.pop();
                        }
                        condition::test(self.image, self.scope.cwd.as_deref(), &args)
                    }
                    None => Status::Unknown,
                };
                if writes.is_empty() {
                    return Some(Flow::Next(status));
                }
            }
            "." | "source"
                if args
                    .first()
                    .and_then(Arg::known)
                    .is_some_and(|path| !path.ends_with("/confmodule")) =>
            {
                let path = args[0].known().expect("known").to_owned();
                if let Some(flow) = self.source(line, text, &path) {
                    return Some(flow);
                }
            }
            "cd" => return Some(Flow::Next(self.cd(args))),
            "umask" => return Some(Flow::Next(self.umask(args))),
            "eval" => {
                self.unreadable(
                    line,
                    text.to_owned(),
                    "eval runs text the walk cannot read as a script",
                );
                return Some(Flow::Next(Status::Unknown));
            }
            "dpkg" if args.first().and_then(Arg::known) == Some("--compare-versions") => {
                let status = Self::known(&args[1..])
                    .map_or(Status::Unknown, |a| condition::compare_versions(&a));
                return Some(Flow::Next(status));
            }
            "db_get" | "db_set" | "db_metaget" | "db_reset" | "db_fget" => self.debconf(name, args),
            "read" => {
                for var in Self::known(args).unwrap_or_default() {
                    if is_name(var) {
                        self.scope.vars.insert(var.to_owned(), None);
                    }
                }
            }
            _ => {}
        }
        None
    }

    /// Records what a command may change, for the globs after it: the
    /// directories of its paths, or everything when a word is not known.
    pub(super) fn touch(&self, words: &[Arg], writes: &[Arg]) {
        let mut touched = self.scope.touched.borrow_mut();
        for arg in words.iter().chain(writes) {
            let path = arg
                .known()
                .and_then(|word| condition::absolute(self.scope.cwd.as_deref(), word));
            let dir = match &path {
                Some(path) => match path.rsplit_once('/') {
                    Some(("", _)) | None => "/",
                    Some((dir, _)) => dir,
                },
                None => "",
            };
            touched.insert(dir.to_owned());
        }
    }

    /// `umask [MODE]`: an octal MODE sets the mask for what follows (a
    /// subshell's ends with it); under a condition the walk could not
    /// decide, or with a MODE it does not read (symbolic, not known), the
    /// mask is no longer known. Without MODE it only prints.
    fn umask(&mut self, args: &[Arg]) -> Status {
        let Some(args) = Self::known(args) else {
            self.scope.umask = None;
            return Status::Unknown;
        };
        match args[..] {
            [] | ["-S"] | ["-p"] => Status::True,
            [mode]
                if (1..=4).contains(&mode.len())
                    && mode.bytes().all(|b| (b'0'..=b'7').contains(&b))
                    && self.maybe == 0
                    && !self.may_have_ended =>
            {
                self.scope.umask = u32::from_str_radix(mode, 8).ok();
                Status::True
            }
            _ => {
                self.scope.umask = None;
                Status::Unknown
            }
        }
    }

    /// `cd DIR`: the new working directory when DIR is known and the
    /// image has it (a subshell's `cd` ends with the subshell); else the
    /// directory is no longer known.
    fn cd(&mut self, args: &[Arg]) -> Status {
        let dir = match Self::known(args).as_deref() {
            Some([dir]) if !dir.starts_with('-') => {
                condition::absolute(self.scope.cwd.as_deref(), dir).and_then(|dir| normalize(&dir))
            }
            _ => None,
        };
        let is_dir = |dir: &str| {
            self.image
                .stat(dir)
                .is_some_and(|stat| stat.kind == crate::Kind::Dir)
        };
        match dir {
            Some(dir) if is_dir(&dir) => {
                self.scope.cwd = Some(dir);
                Status::True
            }
            _ => {
                self.scope.cwd = None;
                Status::Unknown
            }
        }
    }

    /// The status of the command just recorded, where a fresh install
    /// decides it: `dpkg-statoverride --list PATH` fails (no override
    /// exists yet) unless this script added one for PATH before,
    /// `dpkg-query -S PATH` succeeds when a package's file list has PATH,
    /// and `setcap`, `invoke-rc.d` and `update-rc.d` succeed.
    pub(super) fn fresh_status(&self) -> Status {
        let Some((last, before)) = self.out.invocations.split_last() else {
            return Status::Unknown;
        };
        let words = last.known_words().unwrap_or_default();
        // airlock grants a `setcap`'s capabilities itself, and a build
        // whose setcap it cannot apply fails: in a built image it
        // succeeded (iputils-ping's `if setcap …; then chmod u-s …`).
        if let ["setcap", _, ..] = words.as_slice() {
            return Status::True;
        }
        // Neither starts nor links anything in a built image (no service
        // runs while it is built; systemd starts units from their own
        // files): they succeed, as on a host whose services are units.
        if let ["invoke-rc.d" | "update-rc.d", ..] = words.as_slice() {
            return Status::True;
        }
        match words.as_slice() {
            ["cmp", "-s", a, b] | ["cmp", "--silent" | "--quiet", a, b] => return self.cmp(a, b),
            ["md5sum", args @ ..] if args.contains(&"-c") || args.contains(&"--check") => {
                return self.md5_check(args, last.stdin.as_ref());
            }
            _ => {}
        }
        if let ["dpkg-query", "-S" | "--search", path] = words.as_slice()
            && path.starts_with('/')
            && !path.contains(['*', '?', '[', '\\'])
        {
            return match self.image.shipped(path) {
                Some(shipped) => Status::from_bool(shipped),
                None => Status::Unknown,
            };
        }
        let ["dpkg-statoverride", args @ ..] = words.as_slice() else {
            return Status::Unknown;
        };
        let [.., "--list", path] = args else {
            return Status::Unknown;
        };
        let added = before.iter().any(|earlier| {
            earlier.name() == Some("dpkg-statoverride")
                && earlier
                    .known_words()
                    .is_none_or(|words| words.contains(&"--add") && words.last() == Some(path))
        });
        if added {
            Status::Unknown
        } else {
            Status::False
        }
    }

    /// `cmp -s A B`: fails when either file is missing, else succeeds when
    /// their bytes (as the image has them) are the same.
    fn cmp(&self, a: &str, b: &str) -> Status {
        let path = |p: &str| condition::absolute(self.scope.cwd.as_deref(), p);
        let (Some(a), Some(b)) = (path(a), path(b)) else {
            return Status::Unknown;
        };
        if self.image.stat(&a).is_none() || self.image.stat(&b).is_none() {
            return Status::False;
        }
        match (self.image.read(&a), self.image.read(&b)) {
            (Some(a), Some(b)) => Status::from_bool(a == b),
            _ => Status::Unknown,
        }
    }

    /// `md5sum [--status] [--ignore-missing] -c` of a here-document of
    /// `HASH  PATH` lines: succeeds when every file the image has matches
    /// (a missing one fails, unless `--ignore-missing`).
    fn md5_check(&self, args: &[&str], stdin: Option<&Arg>) -> Status {
        use md5::Digest;
        let options = [
            "-c",
            "--check",
            "--status",
            "--quiet",
            "--ignore-missing",
            "--strict",
        ];
        let (Some(list), true) = (
            stdin.and_then(Arg::known),
            args.iter().all(|a| options.contains(a)),
        ) else {
            return Status::Unknown;
        };
        let ignore_missing = args.contains(&"--ignore-missing");
        let mut checked = 0;
        for line in list.lines().filter(|l| !l.trim().is_empty()) {
            let Some((hash, path)) = line.split_once("  ") else {
                return Status::Unknown;
            };
            let Some(path) = condition::absolute(self.scope.cwd.as_deref(), path) else {
                return Status::Unknown;
            };
            if self.image.stat(&path).is_none() {
                if ignore_missing {
                    continue;
                }
                return Status::False;
            }
            let Some(text) = self.image.read(&path) else {
                return Status::Unknown;
            };
            if hex::encode(md5::Md5::digest(text.as_bytes())) != hash.to_ascii_lowercase() {
                return Status::False;
            }
            checked += 1;
        }
        // With every file missing, md5sum reports nothing checked: a
        // failure.
        Status::from_bool(checked > 0)
    }

    /// debconf: with the noninteractive frontend every question has the
    /// value it starts with; `db_get` puts it in $RET and `db_set` changes
    /// it (the commands are still recorded).
    fn debconf(&mut self, name: &str, args: &[Arg]) {
        match name {
            "db_get" => {
                let value = args.first().and_then(Arg::known).and_then(|question| {
                    match self.out.debconf.get(question) {
                        Some(set) => set.clone(),
                        None => self.image.debconf(question),
                    }
                });
                self.scope.vars.insert("RET".to_owned(), value);
            }
            "db_set" => {
                if let Some(question) = args.first().and_then(Arg::known) {
                    let value = args
                        .get(1..)
                        .and_then(Self::known)
                        .map(|rest| rest.join(" "))
                        .filter(|_| self.maybe == 0 && !self.may_have_ended);
                    self.out.debconf.insert(question.to_owned(), value);
                }
            }
            "db_metaget" | "db_reset" | "db_fget" => {
                self.scope.vars.insert("RET".to_owned(), None);
                if name == "db_reset"
                    && let Some(question) = args.first().and_then(Arg::known)
                {
                    self.out.debconf.insert(question.to_owned(), None);
                }
            }
            _ => {}
        }
    }

    /// Walks a shell library the script sources (`. /usr/share/dpkg/sh/
    /// dpkg-error.sh`), in the script's own scope, its steps at the line of
    /// the `.`; None (recorded as a command) when the image has no such
    /// file.
    pub(super) fn source(&mut self, line: Option<usize>, text: &str, path: &str) -> Option<Flow> {
        let library = self.image.read(path)?;
        if self.depth >= MAX_DEPTH {
            self.unreadable(line, text.to_owned(), "files source each other too deeply");
            return Some(Flow::Next(Status::Unknown));
        }
        let program = match crate::parse(&library) {
            Ok(program) => program,
            Err(message) => {
                self.unreadable(line, text.to_owned(), &format!("{path}: {message}"));
                return Some(Flow::Next(Status::Unknown));
            }
        };
        let saved = self
            .sourced
            .replace(self.sourced.or(line).unwrap_or(self.line));
        self.depth += 1;
        let mut flow = Flow::Next(Status::True);
        for command in &program.complete_commands {
            flow = self.list(command);
            if !matches!(flow, Flow::Next(_)) {
                break;
            }
        }
        self.depth -= 1;
        self.sourced = saved;
        Some(match flow {
            Flow::Return(status) => Flow::Next(status),
            flow => flow,
        })
    }

    /// `command -v NAME`, `which NAME`, `type NAME`, `hash NAME`: whether
    /// the image (or the script) has NAME; `command NAME ARGS` runs NAME.
    /// Gives the redirections back when it is none of these.
    pub(super) fn lookup(
        &mut self,
        line: Option<usize>,
        command: &ast::SimpleCommand,
        name: &str,
        words: &[Arg],
        raw: &[&str],
        io: Io,
    ) -> Result<Flow, Io> {
        let args = &words[1..];
        let lookup = match (name, Self::known(args).as_deref()) {
            ("command", Some(["-v" | "-V", rest @ ..])) => Some(rest.to_vec()),
            ("which", Some(rest)) => Some(
                rest.iter()
                    .copied()
                    .filter(|w| !w.starts_with('-'))
                    .collect(),
            ),
            ("type" | "hash", Some(rest)) => Some(rest.to_vec()),
            _ => None,
        };
        match lookup {
            Some(names) => {
                let status = names
                    .iter()
                    .all(|n| condition::found(self.image, n, self.functions.contains_key(*n)));
                Ok(Flow::Next(Status::from_bool(status && !names.is_empty())))
            }
            None if name == "command"
                && args
                    .first()
                    .and_then(Arg::known)
                    .is_some_and(|a| !a.starts_with('-')) =>
            {
                Ok(self.dispatch(line, command, args.to_vec(), &raw[1..], io))
            }
            None => Err(io),
        }
    }

    /// A shell script of the image the package runs by its path, outside
    /// the command directories (`/usr/share/mysql-common/configure-symlinks
    /// install …`): walked in a shell of its own, with the call's
    /// arguments, its steps at the line of the call. None (recorded as a
    /// command) for anything else, commands on the PATH included: airlock
    /// reads those by name.
    pub(super) fn run(
        &mut self,
        line: Option<usize>,
        text: &str,
        name: &str,
        args: &[Arg],
    ) -> Option<Flow> {
        // runit-helper's links are for runit, which no image boots with:
        // airlock reads the call by name.
        const BY_NAME: &[&str] = &["runit-helper"];
        if !name.starts_with('/')
            || condition::on_path(name)
            || name
                .rsplit('/')
                .next()
                .is_some_and(|n| BY_NAME.contains(&n))
        {
            return None;
        }
        let script = self.image.read(name)?;
        let shebang = script.lines().next().unwrap_or_default();
        let shell = shebang
            .strip_prefix("#!")
            .map(str::trim_start)
            .and_then(|rest| rest.split_whitespace().next());
        if !matches!(
            shell,
            Some("/bin/sh" | "/bin/bash" | "/usr/bin/sh" | "/usr/bin/bash")
        ) {
            return None;
        }
        if self.depth >= MAX_DEPTH {
            self.unreadable(line, text.to_owned(), "scripts run each other too deeply");
            return Some(Flow::Next(Status::Unknown));
        }
        let program = match crate::parse(&script) {
            Ok(program) => program,
            Err(message) => {
                self.unreadable(line, text.to_owned(), &format!("{name}: {message}"));
                return Some(Flow::Next(Status::Unknown));
            }
        };
        let mut vars = BTreeMap::new();
        for var in [
            "DPKG_MAINTSCRIPT_PACKAGE",
            "DPKG_MAINTSCRIPT_NAME",
            "DPKG_ROOT",
            "DPKG_ADMINDIR",
        ] {
            if let Some(value) = self.scope.vars.get(var) {
                vars.insert(var.to_owned(), value.clone());
            }
        }
        let child = Scope {
            vars,
            positional: args.iter().map(|a| a.known().map(str::to_owned)).collect(),
            inherits: true,
            ..self.scope.clone()
        };
        let saved = (
            std::mem::replace(&mut self.scope, child),
            std::mem::take(&mut self.functions),
            self.may_have_ended,
            self.sourced
                .replace(self.sourced.or(line).unwrap_or(self.line)),
        );
        self.depth += 1;
        for command in &program.complete_commands {
            if !matches!(self.list(command), Flow::Next(_)) {
                break;
            }
        }
        self.depth -= 1;
        (
            self.scope,
            self.functions,
            self.may_have_ended,
            self.sourced,
        ) = saved;
        // Its exit status is not kept.
        Some(Flow::Next(Status::Unknown))
    }

    pub(super) fn call(
        &mut self,
        line: Option<usize>,
        text: String,
        body: &ast::FunctionBody,
        args: &[Arg],
    ) -> Flow {
        if self.depth >= MAX_DEPTH {
            self.unreadable(line, text, "functions call each other too deeply to follow");
            return Flow::Next(Status::Unknown);
        }
        let positional = args
            .iter()
            .map(|a| a.known().map(str::to_owned))
            .collect::<Vec<Value>>();
        let saved = std::mem::replace(&mut self.scope.positional, positional);
        self.depth += 1;
        let flow = self.compound(&body.0);
        self.depth -= 1;
        self.scope.positional = saved;
        match flow {
            Flow::Return(status) => Flow::Next(status),
            flow => flow,
        }
    }
}
