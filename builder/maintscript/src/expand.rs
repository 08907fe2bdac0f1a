//! Word expansion as far as it can be known without running anything:
//! quotes removed, known parameters substituted, unquoted results split
//! into fields. Anything else (a command substitution, arithmetic, a tilde,
//! a glob, an unknown parameter) makes the word [`Arg::Unknown`].

use std::collections::BTreeMap;

mod substitution;

use brush_parser::word::{
    Parameter, ParameterExpr, ParameterTestType, SpecialParameter, WordPiece,
};

/// One word after expansion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    /// Its value.
    Known(String),
    /// A word whose value depends on something the walk does not know; the
    /// text as written.
    Unknown(String),
}

impl Arg {
    /// The value, if known.
    pub fn known(&self) -> Option<&str> {
        match self {
            Arg::Known(value) => Some(value),
            Arg::Unknown(_) => None,
        }
    }
}

/// What a variable holds: a value, or not known.
pub type Value = Option<String>;

/// The variables and positional parameters a word is expanded with.
#[derive(Clone, Debug, Default)]
pub struct Scope<'a> {
    /// Variables the script assigned, and what dpkg sets.
    pub vars: BTreeMap<String, Value>,
    /// $1, $2, …
    pub positional: Vec<Value>,
    /// How many scratch files `$(mktemp)` has named (shared by the
    /// script's subshells).
    pub scratch: std::rc::Rc<std::cell::Cell<u32>>,
    /// The paths this script has diverted (`dpkg-divert --add`) so far:
    /// until it does, on a fresh install no diversion exists.
    pub diverted: std::rc::Rc<std::cell::RefCell<std::collections::BTreeSet<String>>>,
    /// The image, for the substitutions that only look at it
    /// (`readlink`) and for globs.
    pub image: Option<Images<'a>>,
    /// The working directory (dpkg runs a script in `/`; `cd` changes
    /// it); None once it is not known.
    pub cwd: Option<String>,
    /// The file-creation mask (dpkg runs a script with 022; `umask`
    /// changes it); None once it is not known.
    pub umask: Option<u32>,
    /// The directories the commands recorded so far name paths in (the
    /// empty string: a command with a word not known, which may name any):
    /// a glob in one of them is not known, for the command may have made
    /// or removed what it would match (fail2ban's `touch $LOG` before
    /// `chown … ${LOG}*`).
    pub touched: std::rc::Rc<std::cell::RefCell<std::collections::BTreeSet<String>>>,
    /// Whether this is a helper script the package runs (an unassigned
    /// variable is then not known: the caller may have exported it).
    pub inherits: bool,
}

/// The image a scope's substitutions look at.
#[derive(Clone, Copy)]
pub struct Images<'a>(pub &'a dyn crate::Image);

impl std::fmt::Debug for Images<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Images")
    }
}

/// The path a `dpkg-divert` command is about, and whether it adds a
/// diversion: its one operand (the options that take a value skipped).
pub fn diversion(words: &[&str]) -> Option<(String, bool)> {
    let (&"dpkg-divert", rest) = words.split_first()? else {
        return None;
    };
    let mut operands = Vec::new();
    let mut add = false;
    let mut rest = rest.iter();
    while let Some(word) = rest.next() {
        match *word {
            "--package" | "--divert" | "--admindir" | "--instdir" | "--root" => {
                rest.next();
            }
            "--add" => add = true,
            w if w.starts_with('-') => {}
            w => operands.push(w),
        }
    }
    match operands[..] {
        [path] => Some((path.to_owned(), add)),
        _ => None,
    }
}

/// Where the scratch files `$(mktemp)` names are: in the image's /tmp,
/// which the caller empties of them once every script's steps are done.
pub const SCRATCH: &str = "/tmp/airlock-mktemp.";

/// One stretch of an expanded word: its text and whether it was quoted
/// (quoted text is not split into fields or globbed).
struct Piece {
    text: String,
    quoted: bool,
}

impl Scope<'_> {
    fn parameter(&self, parameter: &Parameter) -> Value {
        match parameter {
            Parameter::Positional(0) => None,
            Parameter::Positional(n) => self
                .positional
                .get(*n as usize - 1)
                .cloned()
                .unwrap_or(Some(String::new())),
            Parameter::Special(SpecialParameter::PositionalParameterCount) => {
                Some(self.positional.len().to_string())
            }
            // `$*`, and `$@` other than as the whole of "$@" (see fields).
            Parameter::Special(SpecialParameter::AllPositionalParameters { .. }) => self
                .positional
                .iter()
                .cloned()
                .collect::<Option<Vec<String>>>()
                .map(|all| all.join(" ")),
            Parameter::Special(_) => None,
            // A variable the script never assigned is unset: the walk is of
            // a script run in an image build's clean environment, where
            // dpkg sets only its own variables.
            // In a helper script the package runs, what it did not assign
            // may come from the caller's environment: not known.
            Parameter::Named(name) => match self.vars.get(name) {
                Some(value) => value.clone(),
                None if self.inherits => None,
                None => Some(String::new()),
            },
            _ => None,
        }
    }

    /// A default or alternative value in `${…}`, expanded as a word of its
    /// own (no globbing: it is not split).
    fn literal(&self, text: Option<&String>) -> Value {
        let text = text.map_or("", String::as_str);
        if text.contains(['~', '*', '?', '[']) {
            return None;
        }
        self.single(text).known().map(str::to_owned)
    }

    fn parameter_expression(&self, expression: &ParameterExpr) -> Value {
        let present = |value: &Value, test: &ParameterTestType| match (value, test) {
            (None, _) => None,
            (Some(v), ParameterTestType::UnsetOrNull) => Some(!v.is_empty()),
            // The walk does not tell unset from empty.
            (Some(v), ParameterTestType::Unset) => (!v.is_empty()).then_some(true),
        };
        match expression {
            ParameterExpr::Parameter {
                parameter,
                indirect: false,
            } => self.parameter(parameter),
            ParameterExpr::UseDefaultValues {
                parameter,
                indirect: false,
                test_type,
                default_value,
            } => {
                let value = self.parameter(parameter);
                match present(&value, test_type)? {
                    true => value,
                    false => self.literal(default_value.as_ref()),
                }
            }
            ParameterExpr::UseAlternativeValue {
                parameter,
                indirect: false,
                test_type,
                alternative_value,
            } => {
                let value = self.parameter(parameter);
                match present(&value, test_type)? {
                    true => self.literal(alternative_value.as_ref()),
                    false => Some(String::new()),
                }
            }
            ParameterExpr::RemoveSmallestPrefixPattern {
                parameter,
                indirect: false,
                pattern,
            } => self.remove(parameter, pattern.as_ref(), true, false),
            ParameterExpr::RemoveLargestPrefixPattern {
                parameter,
                indirect: false,
                pattern,
            } => self.remove(parameter, pattern.as_ref(), true, true),
            ParameterExpr::RemoveSmallestSuffixPattern {
                parameter,
                indirect: false,
                pattern,
            } => self.remove(parameter, pattern.as_ref(), false, false),
            ParameterExpr::RemoveLargestSuffixPattern {
                parameter,
                indirect: false,
                pattern,
            } => self.remove(parameter, pattern.as_ref(), false, true),
            _ => None,
        }
    }

    /// `${VAR#PAT}`, `${VAR##PAT}`, `${VAR%PAT}`, `${VAR%%PAT}`: the value
    /// without the shortest or longest prefix or suffix PAT matches
    /// (`${DPKG_MAINTSCRIPT_PACKAGE##*-}` is postgresql-15's version).
    fn remove(
        &self,
        parameter: &Parameter,
        pattern: Option<&String>,
        prefix: bool,
        largest: bool,
    ) -> Value {
        let value = self.parameter(parameter)?;
        let parsed = Self::parse(pattern.map_or("", String::as_str))?;
        let mut pieces = Vec::new();
        self.pieces(&parsed, false, &mut pieces)?;
        let pattern: Vec<(String, bool)> = pieces.into_iter().map(|p| (p.text, p.quoted)).collect();
        let mut bounds: Vec<usize> = value.char_indices().map(|(i, _)| i).collect();
        bounds.push(value.len());
        // The shortest prefix ends first; the shortest suffix starts last.
        if largest == prefix {
            bounds.reverse();
        }
        for at in bounds {
            let (head, tail) = value.split_at(at);
            if prefix && matches(head, &pattern) {
                return Some(tail.to_owned());
            }
            if !prefix && matches(tail, &pattern) {
                return Some(head.to_owned());
            }
        }
        Some(value)
    }

    fn pieces(&self, pieces: &[WordPiece], quoted: bool, out: &mut Vec<Piece>) -> Option<()> {
        for piece in pieces {
            match piece {
                WordPiece::Text(text) => out.push(Piece {
                    text: text.clone(),
                    quoted,
                }),
                WordPiece::SingleQuotedText(text) | WordPiece::AnsiCQuotedText(text) => {
                    out.push(Piece {
                        text: text.clone(),
                        quoted: true,
                    });
                }
                WordPiece::EscapeSequence(text) => out.push(Piece {
                    text: text.strip_prefix('\\').unwrap_or(text).to_owned(),
                    quoted: true,
                }),
                WordPiece::DoubleQuotedSequence(inner)
                | WordPiece::GettextDoubleQuotedSequence(inner) => {
                    let inner: Vec<WordPiece> = inner.iter().map(|p| p.piece.clone()).collect();
                    // An empty "" is still a word.
                    out.push(Piece {
                        text: String::new(),
                        quoted: true,
                    });
                    self.pieces(&inner, true, out)?;
                }
                WordPiece::ParameterExpansion(expression) => out.push(Piece {
                    text: self.parameter_expression(expression)?,
                    quoted,
                }),
                WordPiece::CommandSubstitution(command)
                | WordPiece::BackquotedCommandSubstitution(command) => out.push(Piece {
                    text: self.substitution(command)?,
                    quoted,
                }),
                WordPiece::TildeExpansion(_) | WordPiece::ArithmeticExpression(_) => return None,
            }
        }
        Some(())
    }

    fn parse(word: &str) -> Option<Vec<WordPiece>> {
        let pieces = brush_parser::word::parse(word, &crate::walk::options()).ok()?;
        Some(pieces.into_iter().map(|p| p.piece).collect())
    }

    /// The word as fields, the way a command's arguments are expanded.
    pub fn fields(&self, word: &str) -> Vec<Arg> {
        let unknown = || vec![Arg::Unknown(word.to_owned())];
        let Some(parsed) = Self::parse(word) else {
            return unknown();
        };
        // "$@": each positional parameter, one field each.
        if let [WordPiece::DoubleQuotedSequence(inner)] = parsed.as_slice()
            && let [only] = inner.as_slice()
            && let WordPiece::ParameterExpansion(ParameterExpr::Parameter {
                parameter:
                    Parameter::Special(SpecialParameter::AllPositionalParameters { concatenate: false }),
                indirect: false,
            }) = &only.piece
        {
            return self
                .positional
                .iter()
                .map(|value| value.clone().map_or_else(unknown_one(word), Arg::Known))
                .collect();
        }
        let mut pieces = Vec::new();
        if self.pieces(&parsed, false, &mut pieces).is_none() {
            return unknown();
        }
        if pieces.iter().any(|p| !p.quoted && is_glob(&p.text)) {
            return self.glob(&pieces).unwrap_or_else(unknown);
        }
        let mut fields = Vec::new();
        let mut current: Option<String> = None;
        for piece in pieces {
            if piece.quoted {
                current
                    .get_or_insert_with(String::new)
                    .push_str(&piece.text);
                continue;
            }
            for (i, part) in piece.text.split([' ', '\t', '\n']).enumerate() {
                if i > 0
                    && let Some(done) = current.take()
                {
                    fields.push(Arg::Known(done));
                }
                if !part.is_empty() {
                    current.get_or_insert_with(String::new).push_str(part);
                }
            }
        }
        fields.extend(current.map(Arg::Known));
        fields
    }

    /// A word with an unquoted pattern, expanded as the shell does against
    /// the image: the names in its directory that match, sorted, or the
    /// word itself when none does. Only the last part of the path may be a
    /// pattern, and a word whose unquoted text has spaces is not read
    /// (None: not known).
    fn glob(&self, pieces: &[Piece]) -> Option<Vec<Arg>> {
        let image = self.image?;
        let chars: Vec<(char, bool)> = pieces
            .iter()
            .flat_map(|p| p.text.chars().map(move |c| (c, p.quoted)))
            .collect();
        let special = |(c, quoted): &(char, bool)| !quoted && matches!(c, '*' | '?' | '[');
        if chars.iter().any(|(c, quoted)| !quoted && c.is_whitespace()) {
            return None;
        }
        let split = chars
            .iter()
            .rposition(|(c, _)| *c == '/')
            .map_or(0, |i| i + 1);
        let (dir, name) = chars.split_at(split);
        if dir.iter().any(special) {
            return None;
        }
        let dir: String = dir.iter().map(|(c, _)| c).collect();
        let listed = match dir.trim_end_matches('/') {
            "" if dir.is_empty() => self.cwd.clone()?,
            "" => "/".to_owned(),
            parent => crate::condition::absolute(self.cwd.as_deref(), parent)?,
        };
        let canonical = |dir: &str| image.0.canonical(dir).unwrap_or_else(|| dir.to_owned());
        let here = canonical(&listed);
        if self
            .touched
            .borrow()
            .iter()
            .any(|dir| dir.is_empty() || *dir == listed || canonical(dir) == here)
        {
            return None;
        }
        let pattern: Vec<(String, bool)> = name.iter().map(|(c, q)| (c.to_string(), *q)).collect();
        let hidden = name.first().is_some_and(|(c, _)| *c == '.');
        let mut found: Vec<String> = image
            .0
            .list(&listed)?
            .into_iter()
            .filter(|n| (hidden || !n.starts_with('.')) && matches(n, &pattern))
            .map(|n| format!("{dir}{n}"))
            .collect();
        found.sort();
        if found.is_empty() {
            found.push(chars.iter().map(|(c, _)| c).collect());
        }
        Some(found.into_iter().map(Arg::Known).collect())
    }

    /// The word as one value, the way an assignment or a `case` subject is
    /// expanded (no field splitting, no globbing).
    pub fn single(&self, word: &str) -> Arg {
        let Some(parsed) = Self::parse(word) else {
            return Arg::Unknown(word.to_owned());
        };
        let mut pieces = Vec::new();
        match self.pieces(&parsed, true, &mut pieces) {
            Some(()) => Arg::Known(pieces.into_iter().map(|p| p.text).collect()),
            None => Arg::Unknown(word.to_owned()),
        }
    }

    /// A `case` pattern: its pieces, with which of them are quoted (quoted
    /// text matches literally).
    pub fn pattern(&self, word: &str) -> Option<Vec<(String, bool)>> {
        let parsed = Self::parse(word)?;
        let mut pieces = Vec::new();
        self.pieces(&parsed, false, &mut pieces)?;
        Some(pieces.into_iter().map(|p| (p.text, p.quoted)).collect())
    }
}

fn unknown_one(word: &str) -> impl Fn() -> Arg + '_ {
    move || Arg::Unknown(word.to_owned())
}

/// Whether unquoted text would be a pathname pattern.
fn is_glob(text: &str) -> bool {
    text.contains(['*', '?']) || text.find('[').is_some_and(|i| text[i + 1..].contains(']'))
}

/// Whether `value` matches a `case` pattern (`*`, `?`, `[…]` in the
/// unquoted pieces).
pub fn matches(value: &str, pattern: &[(String, bool)]) -> bool {
    // Tokens: Some(c) a literal char, None a star, and classes.
    let mut tokens = Vec::new();
    for (text, quoted) in pattern {
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' if !quoted => tokens.push(Token::Star),
                '?' if !quoted => tokens.push(Token::Any),
                '[' if !quoted => {
                    let mut class = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == ']' && !class.is_empty() {
                            closed = true;
                            break;
                        }
                        class.push(c);
                    }
                    if closed {
                        tokens.push(Token::Class(class));
                    } else {
                        tokens.push(Token::Char('['));
                        tokens.extend(class.chars().map(Token::Char));
                    }
                }
                c => tokens.push(Token::Char(c)),
            }
        }
    }
    let value: Vec<char> = value.chars().collect();
    glob(&tokens, &value)
}

#[derive(Debug)]
enum Token {
    Char(char),
    Any,
    Star,
    Class(String),
}

fn in_class(class: &str, c: char) -> bool {
    let (negated, class) = match class.strip_prefix(['!', '^']) {
        Some(rest) => (true, rest),
        None => (false, class),
    };
    let chars: Vec<char> = class.chars().collect();
    let mut found = false;
    let mut i = 0;
    while i < chars.len() {
        if i + 2 < chars.len() && chars[i + 1] == '-' {
            found |= (chars[i]..=chars[i + 2]).contains(&c);
            i += 3;
        } else {
            found |= chars[i] == c;
            i += 1;
        }
    }
    found != negated
}

fn glob(tokens: &[Token], value: &[char]) -> bool {
    // Iterative matching with one backtrack point per star.
    let (mut t, mut v) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while v < value.len() {
        match tokens.get(t) {
            Some(Token::Star) => {
                star = Some((t, v));
                t += 1;
                continue;
            }
            Some(Token::Any) => {
                t += 1;
                v += 1;
                continue;
            }
            Some(Token::Char(c)) if *c == value[v] => {
                t += 1;
                v += 1;
                continue;
            }
            Some(Token::Class(class)) if in_class(class, value[v]) => {
                t += 1;
                v += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((star_t, star_v)) => {
                t = star_t + 1;
                v = star_v + 1;
                star = Some((star_t, star_v + 1));
            }
            None => return false,
        }
    }
    tokens[t..].iter().all(|token| matches!(token, Token::Star))
}
