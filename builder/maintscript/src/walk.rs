//! The walk: a script's syntax tree followed the way dpkg's run of it would
//! go on a fresh install, as far as that can be decided without running
//! anything (see the crate's documentation for what is decided and how).

use std::collections::BTreeMap;

use brush_parser::ParserOptions;
use brush_parser::ast::{
    self, AndOr, Command, CommandPrefixOrSuffixItem, CompoundCommand, CompoundList,
    IoFileRedirectKind, IoFileRedirectTarget, IoRedirect, SourceLocation,
};

use crate::condition::{self, Status};
use crate::expand::{Arg, Scope, Value, matches};
use crate::{DPKG_UMASK, Image, Invocation, Phase, Unreadable, Walk};

mod branches;
mod builtins;

/// The parser's settings: POSIX sh and bash syntax, no extended globs
/// (dpkg runs scripts with /bin/sh or bash, neither with extglob on).
pub fn options() -> ParserOptions {
    ParserOptions {
        enable_extended_globbing: false,
        ..ParserOptions::default()
    }
}

/// The most iterations a `for` loop over known words is unrolled to, and
/// the deepest function calls are followed.
const MAX_UNROLL: usize = 256;
const MAX_DEPTH: usize = 32;

/// How a command list ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    /// It ran to its end with this status.
    Next(Status),
    /// `exit`: the script ends.
    Exit,
    /// `exit N` with N not 0, at this line: the script fails, and dpkg
    /// with it.
    Fail(usize),
    /// `return`: the function ends, with this status.
    Return(Status),
    /// `break` and `continue` in a loop.
    Break,
    Continue,
}

/// One way a branch point can go.
enum Branch<'a> {
    List(&'a CompoundList),
    Elses(&'a [ast::ElseClause]),
    Pipeline(&'a ast::Pipeline),
    Nothing,
}

pub struct Walker<'a> {
    image: &'a dyn Image,
    scope: Scope<'a>,
    /// Functions defined so far, with the line of the `.` that sourced
    /// their definition (None: the script's own).
    functions: BTreeMap<String, (ast::FunctionBody, Option<usize>)>,
    /// How many undecided conditions the walk is inside.
    maybe: usize,
    /// Whether the script may already have ended (an `exit` or `return`
    /// under an undecided condition): everything after is conditional.
    may_have_ended: bool,
    depth: usize,
    line: usize,
    /// While a file the script sources is walked: the line of the `.`.
    sourced: Option<usize>,
    out: Walk,
}

fn line_of(node: &dyn SourceLocation) -> Option<usize> {
    node.location().map(|span| span.start.line)
}

impl<'a> Walker<'a> {
    pub fn new(image: &'a dyn Image, phase: Phase, package: &str) -> Self {
        let mut vars = BTreeMap::new();
        for (name, value) in [
            ("DPKG_MAINTSCRIPT_PACKAGE", package),
            ("DPKG_MAINTSCRIPT_NAME", phase.script()),
            ("DPKG_ROOT", ""),
            ("DPKG_ADMINDIR", "/var/lib/dpkg"),
        ] {
            vars.insert(name.to_owned(), Some(value.to_owned()));
        }
        let positional = phase
            .arguments()
            .iter()
            .map(|a| Some((*a).to_owned()))
            .collect();
        Walker {
            image,
            scope: Scope {
                vars,
                positional,
                scratch: Default::default(),
                diverted: Default::default(),
                image: Some(crate::expand::Images(image)),
                cwd: Some("/".to_owned()),
                umask: Some(DPKG_UMASK),
                touched: Default::default(),
                inherits: false,
            },
            functions: BTreeMap::new(),
            maybe: 0,
            may_have_ended: false,
            depth: 0,
            line: 1,
            sourced: None,
            out: Walk::default(),
        }
    }

    pub fn program(mut self, program: &ast::Program) -> Walk {
        for command in &program.complete_commands {
            match self.list(command) {
                Flow::Exit => break,
                Flow::Fail(line) => {
                    self.out.unreadable.push(Unreadable {
                        line,
                        text: "exit".to_owned(),
                        why: "the script fails here on a fresh install, and dpkg would not \
                              configure the package"
                            .to_owned(),
                    });
                    break;
                }
                _ => {}
            }
        }
        self.out
    }

    fn unreadable(&mut self, line: Option<usize>, text: String, why: &str) {
        self.out.unreadable.push(Unreadable {
            line: self.sourced.or(line).unwrap_or(self.line),
            text,
            why: why.to_owned(),
        });
    }

    fn list(&mut self, list: &CompoundList) -> Flow {
        let mut flow = Flow::Next(Status::True);
        for ast::CompoundListItem(and_or, _) in &list.0 {
            flow = self.and_or(and_or);
            if !matches!(flow, Flow::Next(_)) {
                return flow;
            }
        }
        flow
    }

    fn and_or(&mut self, list: &ast::AndOrList) -> Flow {
        let mut flow = self.pipeline(&list.first);
        for next in &list.additional {
            let Flow::Next(status) = flow else {
                return flow;
            };
            let (pipeline, runs_on) = match next {
                AndOr::And(p) => (p, Status::True),
                AndOr::Or(p) => (p, Status::False),
            };
            flow = match status {
                Status::Unknown => self.branches(&[Branch::Pipeline(pipeline), Branch::Nothing]),
                s if s == runs_on => self.pipeline(pipeline),
                s => Flow::Next(s),
            };
        }
        flow
    }

    fn pipeline(&mut self, pipeline: &ast::Pipeline) -> Flow {
        if let Some(line) = line_of(pipeline) {
            self.line = line;
        }
        // Each part of a longer pipeline runs in a subshell: what it
        // assigns is lost.
        let saved = (pipeline.seq.len() > 1).then(|| self.scope.clone());
        let mut flow = Flow::Next(Status::True);
        for command in &pipeline.seq {
            flow = self.command(command);
            if saved.is_some() && matches!(flow, Flow::Exit | Flow::Fail(_)) {
                flow = Flow::Next(Status::Unknown);
            }
        }
        if let Some(saved) = saved {
            self.scope = saved;
        }
        match flow {
            Flow::Next(status) if pipeline.bang => Flow::Next(status.not()),
            flow => flow,
        }
    }

    fn command(&mut self, command: &Command) -> Flow {
        match command {
            Command::Simple(simple) => self.simple(simple),
            Command::Compound(compound, redirects) => {
                if let Some(redirects) = redirects {
                    let writes = redirects
                        .0
                        .iter()
                        .filter_map(|r| self.written(r))
                        .collect::<Vec<_>>();
                    if !writes.is_empty() {
                        self.unreadable(
                            line_of(compound),
                            command.to_string(),
                            "the output of a compound command is redirected into a file",
                        );
                    }
                }
                self.compound(compound)
            }
            Command::Function(definition) => {
                self.functions.insert(
                    definition.fname.value.clone(),
                    (definition.body.clone(), self.sourced),
                );
                Flow::Next(Status::True)
            }
            // `[[ … ]]`: bash's test; nothing runs, its result is not
            // decided here.
            Command::ExtendedTest(..) => Flow::Next(Status::Unknown),
        }
    }

    /// The file a redirection writes into, if any (not /dev/null).
    fn written(&self, redirect: &IoRedirect) -> Option<Arg> {
        let target = match redirect {
            IoRedirect::File(
                _,
                IoFileRedirectKind::Write
                | IoFileRedirectKind::Append
                | IoFileRedirectKind::Clobber
                | IoFileRedirectKind::ReadAndWrite,
                IoFileRedirectTarget::Filename(word),
            ) => self.scope.single(&word.value),
            IoRedirect::OutputAndError(word, _) => self.scope.single(&word.value),
            _ => return None,
        };
        (target.known() != Some("/dev/null")).then_some(target)
    }

    fn compound(&mut self, compound: &CompoundCommand) -> Flow {
        let line = line_of(compound);
        match compound {
            CompoundCommand::BraceGroup(group) => self.list(&group.list),
            CompoundCommand::Subshell(subshell) => {
                let saved = self.scope.clone();
                let flow = self.list(&subshell.list);
                self.scope = saved;
                match flow {
                    Flow::Next(status) => Flow::Next(status),
                    _ => Flow::Next(Status::Unknown),
                }
            }
            CompoundCommand::IfClause(clause) => {
                self.if_clause(&clause.condition, &clause.then, clause.elses.as_deref())
            }
            CompoundCommand::CaseClause(clause) => self.case(clause),
            CompoundCommand::ForClause(clause) => self.for_clause(clause),
            CompoundCommand::WhileClause(ast::WhileOrUntilClauseCommand(condition, body, _)) => {
                self.while_clause(condition, &body.list, Status::True)
            }
            CompoundCommand::UntilClause(ast::WhileOrUntilClauseCommand(condition, body, _)) => {
                self.while_clause(condition, &body.list, Status::False)
            }
            CompoundCommand::Arithmetic(_)
            | CompoundCommand::ArithmeticForClause(_)
            | CompoundCommand::Coprocess(_) => {
                self.unreadable(
                    line,
                    compound.to_string(),
                    "arithmetic and coprocesses are not followed",
                );
                Flow::Next(Status::Unknown)
            }
        }
    }

    fn if_clause(
        &mut self,
        condition: &CompoundList,
        then: &CompoundList,
        elses: Option<&[ast::ElseClause]>,
    ) -> Flow {
        let Flow::Next(status) = self.list(condition) else {
            return self.list(condition);
        };
        let elses = elses.unwrap_or(&[]);
        match status {
            Status::True => self.list(then),
            Status::False => self.elses(elses),
            Status::Unknown => self.branches(&[Branch::List(then), Branch::Elses(elses)]),
        }
    }

    fn elses(&mut self, elses: &[ast::ElseClause]) -> Flow {
        match elses.split_first() {
            None => Flow::Next(Status::True),
            Some((first, rest)) => match &first.condition {
                None => self.list(&first.body),
                Some(condition) => self.if_clause(condition, &first.body, Some(rest)),
            },
        }
    }

    fn case(&mut self, clause: &ast::CaseClauseCommand) -> Flow {
        let subject = self.scope.single(&clause.value.value);
        let mut undecided = Vec::new();
        for item in &clause.cases {
            let mut hit = Status::False;
            for pattern in &item.patterns {
                let pattern = self.scope.pattern(&pattern.value);
                let status = match (&subject, pattern) {
                    (Arg::Known(value), Some(pattern)) => {
                        Status::from_bool(matches(value, &pattern))
                    }
                    _ => Status::Unknown,
                };
                if status == Status::True {
                    hit = Status::True;
                    break;
                }
                if status == Status::Unknown {
                    hit = Status::Unknown;
                }
            }
            match hit {
                Status::False => {}
                Status::True if undecided.is_empty() => {
                    return match &item.cmd {
                        Some(list) => self.list(list),
                        None => Flow::Next(Status::True),
                    };
                }
                _ => {
                    undecided.push(item.cmd.as_ref().map_or(Branch::Nothing, Branch::List));
                    if hit == Status::True {
                        // This one matches if none before it did: the walk
                        // goes no further.
                        return self.branches(&undecided);
                    }
                }
            }
        }
        if undecided.is_empty() {
            return Flow::Next(Status::True);
        }
        undecided.push(Branch::Nothing);
        self.branches(&undecided)
    }

    fn for_clause(&mut self, clause: &ast::ForClauseCommand) -> Flow {
        let values: Vec<Arg> = match &clause.values {
            Some(words) => words
                .iter()
                .flat_map(|w| self.scope.fields(&w.value))
                .collect(),
            None => self
                .scope
                .positional
                .iter()
                .map(|v| {
                    v.clone()
                        .map_or_else(|| Arg::Unknown("$@".into()), Arg::Known)
                })
                .collect(),
        };
        let known: Option<Vec<String>> = values
            .iter()
            .map(|a| a.known().map(str::to_owned))
            .collect();
        let name = clause.variable_name.clone();
        match known {
            Some(values) if values.len() <= MAX_UNROLL => {
                let mut flow = Flow::Next(Status::True);
                for value in values {
                    self.scope.vars.insert(name.clone(), Some(value));
                    flow = self.list(&clause.body.list);
                    match flow {
                        Flow::Break => return Flow::Next(Status::True),
                        Flow::Exit | Flow::Fail(_) | Flow::Return(_) => return flow,
                        _ => {}
                    }
                }
                match flow {
                    Flow::Continue => Flow::Next(Status::True),
                    flow => flow,
                }
            }
            _ => {
                // Not known how many times, or with what: the body once,
                // as a branch that may or may not run.
                self.scope.vars.insert(name.clone(), None);
                let flow = self.branches(&[Branch::List(&clause.body.list), Branch::Nothing]);
                self.scope.vars.insert(name, None);
                flow
            }
        }
    }

    fn while_clause(
        &mut self,
        condition: &CompoundList,
        body: &CompoundList,
        runs_on: Status,
    ) -> Flow {
        let Flow::Next(status) = self.list(condition) else {
            return Flow::Next(Status::Unknown);
        };
        if status != Status::Unknown && status != runs_on {
            return Flow::Next(Status::True);
        }
        // Once, as a branch: what the loop reads each time round (`read`,
        // a counter) is not known.
        let flow = self.branches(&[Branch::List(body), Branch::Nothing]);
        match flow {
            Flow::Break | Flow::Continue => Flow::Next(Status::True),
            flow => flow,
        }
    }

    fn simple(&mut self, command: &ast::SimpleCommand) -> Flow {
        let line = line_of(command);
        if let Some(line) = line {
            self.line = line;
        }
        let mut words: Vec<Arg> = Vec::new();
        let mut raw: Vec<&str> = Vec::new();
        let mut assignments: Vec<(String, Arg)> = Vec::new();
        let mut io = Io::default();
        // The prefix holds assignments and redirections, the suffix the
        // arguments (and redirections); the name comes between them.
        let prefix = command
            .prefix
            .iter()
            .flat_map(|p| p.0.iter())
            .map(|i| (false, i));
        let suffix = command
            .suffix
            .iter()
            .flat_map(|s| s.0.iter())
            .map(|i| (true, i));
        for (in_suffix, item) in prefix.chain(suffix) {
            match item {
                CommandPrefixOrSuffixItem::Word(word) => {
                    raw.push(&word.value);
                    words.extend(self.scope.fields(&word.value));
                }
                CommandPrefixOrSuffixItem::AssignmentWord(assignment, word) => {
                    if !in_suffix {
                        // `a=1 b=$a`: each assignment sees the ones before.
                        let mut scope = self.scope.clone();
                        for (name, value) in &assignments {
                            scope
                                .vars
                                .insert(name.clone(), value.known().map(str::to_owned));
                        }
                        let value = match &assignment.value {
                            ast::AssignmentValue::Scalar(value) => scope.single(&value.value),
                            ast::AssignmentValue::Array(_) => Arg::Unknown(word.value.clone()),
                        };
                        if let ast::AssignmentName::VariableName(name) = &assignment.name {
                            assignments.push((name.clone(), value));
                        }
                    } else {
                        // After the command name it is an argument
                        // (`export A=b`, `local x=1`).
                        raw.push(&word.value);
                        words.extend(self.scope.fields(&word.value));
                    }
                }
                CommandPrefixOrSuffixItem::IoRedirect(redirect) => match redirect {
                    IoRedirect::HereDocument(_, doc) => {
                        let text = &doc.doc.value;
                        io.stdin = Some(
                            if !doc.requires_expansion || !text.contains(['$', '`', '\\']) {
                                Arg::Known(text.clone())
                            } else {
                                Arg::Unknown(text.clone())
                            },
                        );
                    }
                    IoRedirect::HereString(_, word) => {
                        io.stdin = Some(self.scope.single(&word.value));
                    }
                    IoRedirect::File(_, _, IoFileRedirectTarget::ProcessSubstitution(..)) => {
                        self.unreadable(line, command.to_string(), "process substitution");
                        return Flow::Next(Status::Unknown);
                    }
                    redirect => {
                        io.append |=
                            matches!(redirect, IoRedirect::File(_, IoFileRedirectKind::Append, _));
                        io.writes.extend(self.written(redirect));
                    }
                },
                CommandPrefixOrSuffixItem::ProcessSubstitution(..) => {
                    self.unreadable(line, command.to_string(), "process substitution");
                    return Flow::Next(Status::Unknown);
                }
            }
        }
        if let Some(name) = &command.word_or_name {
            let mut name_fields = self.scope.fields(&name.value);
            name_fields.extend(words);
            words = name_fields;
            raw.insert(0, &name.value);
        }
        if words.is_empty() {
            // Only assignments (and redirections).
            for (name, value) in assignments {
                self.scope
                    .vars
                    .insert(name, value.known().map(str::to_owned));
            }
            if !io.writes.is_empty() {
                self.record(line, command.to_string(), vec![Arg::Known(":".into())], io);
            }
            // `x=$(cmd)` has the substitution's status.
            return Flow::Next(Status::Unknown);
        }
        self.dispatch(line, command, words, &raw, io)
    }

    fn record(&mut self, line: Option<usize>, text: String, words: Vec<Arg>, io: Io) {
        if let Some(known) = words.iter().map(Arg::known).collect::<Option<Vec<_>>>()
            && let Some((path, true)) = crate::expand::diversion(&known)
        {
            self.scope.diverted.borrow_mut().insert(path);
        }
        // chown, chgrp and chmod change what a name is, never which names
        // a directory holds: the globs after them still read the image
        // (bind9's `chgrp bind /etc/bind/rndc.key` before
        // `chgrp bind /etc/bind/named.conf*`).
        let metadata_only = words
            .first()
            .and_then(Arg::known)
            .is_some_and(|program| METADATA_ONLY.contains(&program));
        if metadata_only {
            self.touch(&[], &io.writes);
        } else {
            self.touch(&words, &io.writes);
        }
        self.out.invocations.push(Invocation {
            line: self.sourced.or(line).unwrap_or(self.line),
            text,
            words,
            writes: io.writes,
            append: io.append,
            stdin: io.stdin,
            conditional: self.maybe > 0 || self.may_have_ended,
            umask: self.scope.umask,
        });
    }

    fn known(words: &[Arg]) -> Option<Vec<&str>> {
        words.iter().map(Arg::known).collect()
    }

    fn dispatch(
        &mut self,
        line: Option<usize>,
        command: &ast::SimpleCommand,
        words: Vec<Arg>,
        raw: &[&str],
        mut io: Io,
    ) -> Flow {
        let text = command.to_string();
        let Some(name) = words[0].known().map(str::to_owned) else {
            self.record(line, text, words, io);
            return Flow::Next(Status::Unknown);
        };
        let args = &words[1..];
        match name.as_str() {
            "exit" => {
                return match args.first().map(Arg::known) {
                    Some(Some(n)) if n.parse::<u8>().is_ok_and(|n| n != 0) => {
                        Flow::Fail(self.sourced.or(line).unwrap_or(self.line))
                    }
                    _ => Flow::Exit,
                };
            }
            "return" => {
                // `return N`; without N, the last status, which the walk
                // does not keep.
                let status = match args.first().map(Arg::known) {
                    Some(Some("0")) => Status::True,
                    Some(Some(n)) if n.parse::<u8>().is_ok() => Status::False,
                    _ => Status::Unknown,
                };
                return Flow::Return(status);
            }
            "break" => return Flow::Break,
            "continue" => return Flow::Continue,
            ":" | "true" if io.writes.is_empty() => return Flow::Next(Status::True),
            "false" => return Flow::Next(Status::False),
            _ if let Some(flow) = self.builtin(line, &text, &name, &words, raw, &io.writes) => {
                return flow;
            }
            "command" | "which" | "type" | "hash" => {
                match self.lookup(line, command, &name, &words, raw, io) {
                    Ok(flow) => return flow,
                    Err(back) => io = back,
                }
            }
            _ => {}
        }
        if let Some((body, origin)) = self.functions.get(&name).cloned() {
            // A library's function runs at the line of the script's call.
            let saved = match origin {
                Some(_) => self
                    .sourced
                    .replace(self.sourced.or(line).unwrap_or(self.line)),
                None => self.sourced,
            };
            let flow = self.call(line, text, &body, args);
            self.sourced = saved;
            return flow;
        }
        if io.writes.is_empty()
            && let Some(flow) = self.run(line, &text, &name, args)
        {
            return flow;
        }
        self.record(line, text, words, io);
        Flow::Next(self.fresh_status())
    }
}

/// A simple command's redirections.
#[derive(Default)]
pub(super) struct Io {
    /// The files it writes into.
    writes: Vec<Arg>,
    /// Whether a write appends (`>>`).
    append: bool,
    /// A here-document or here-string on its standard input.
    stdin: Option<Arg>,
}

pub(crate) fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The programs that change only the owner, group or mode of names that
/// exist.
const METADATA_ONLY: &[&str] = &["chown", "chgrp", "chmod"];
