//! A mode as `chmod`, `mkdir -m` and `install -m` take it: octal (`0750`,
//! `2755`) or symbolic (`u+x`, `g-w,o=`, `a+rX`), as in POSIX chmod.

use std::str::FromStr;

/// A mode to set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every permission bit, setuid, setgid and sticky.
    Octal(u32),
    /// Clauses applied in order to the mode a file has.
    Symbolic(Vec<Clause>),
}

/// One clause of a symbolic mode: `WHO OP PERMS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clause {
    /// The bits of u, g, o it touches (0o4700 | 0o2070 | 0o1007); None for
    /// no `who`, which is `a` less the umask.
    who: Option<u32>,
    /// `+`, `-` or `=`.
    op: char,
    /// The letters `rwxXst`.
    perms: String,
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(text: &str) -> Result<Mode, String> {
        if !text.is_empty() && text.chars().all(|c| c.is_digit(8)) {
            return match u32::from_str_radix(text, 8) {
                Ok(mode) if mode <= 0o7777 => Ok(Mode::Octal(mode)),
                _ => Err(format!("mode {text} is out of range")),
            };
        }
        let bad = || format!("mode {text:?} is neither octal nor symbolic");
        let mut clauses = Vec::new();
        for part in text.split(',') {
            let at = part.find(['+', '-', '=']).ok_or_else(bad)?;
            let (who_text, rest) = part.split_at(at);
            let mut who = 0;
            for c in who_text.chars() {
                who |= match c {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    'o' => 0o1007,
                    'a' => 0o7777,
                    _ => return Err(bad()),
                };
            }
            // `u+x-w`: several operations after one `who`.
            let mut ops = rest;
            while let Some(op) = ops.chars().next() {
                let perms_end = ops[1..].find(['+', '-', '=']).map_or(ops.len(), |i| i + 1);
                let perms = &ops[1..perms_end];
                if !perms.chars().all(|c| "rwxXst".contains(c)) {
                    return Err(bad());
                }
                clauses.push(Clause {
                    who: (!who_text.is_empty()).then_some(who),
                    op,
                    perms: perms.to_owned(),
                });
                ops = &ops[perms_end..];
            }
        }
        Ok(Mode::Symbolic(clauses))
    }
}

impl Mode {
    /// The mode a file whose mode is `old` gets (`directory`: for `X`;
    /// `umask`: the script's, which a clause without `ugoa` respects).
    pub fn apply(&self, old: u32, directory: bool, umask: u32) -> u32 {
        let clauses = match self {
            Mode::Octal(mode) => return *mode,
            Mode::Symbolic(clauses) => clauses,
        };
        let mut mode = old & 0o7777;
        for clause in clauses {
            let who = clause.who.unwrap_or(0o7777 & !umask);
            let mut bits = 0;
            for perm in clause.perms.chars() {
                bits |= match perm {
                    'r' => 0o444,
                    'w' => 0o222,
                    'x' => 0o111,
                    'X' if directory || mode & 0o111 != 0 => 0o111,
                    'X' => 0,
                    's' => 0o6000,
                    't' => 0o1000,
                    _ => unreachable!("checked when read"),
                };
            }
            let bits = bits & who;
            mode = match clause.op {
                '+' => mode | bits,
                '-' => mode & !bits,
                _ => {
                    // `=`: the `who` classes' bits become exactly `bits`
                    // (a directory keeps setuid and setgid, as GNU chmod
                    // does).
                    let mut cleared = clause.who.unwrap_or(0o7777);
                    if directory {
                        cleared &= !0o6000;
                    }
                    (mode & !cleared) | bits
                }
            };
        }
        mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(mode: &str, old: u32, directory: bool) -> u32 {
        mode.parse::<Mode>().unwrap().apply(old, directory, 0o022)
    }

    #[test]
    fn octal_and_symbolic_modes_are_chmods() {
        assert_eq!(apply("0750", 0o644, false), 0o750);
        assert_eq!(apply("2755", 0o644, true), 0o2755);
        assert_eq!(apply("u+x", 0o644, false), 0o744);
        assert_eq!(apply("g-w,o=", 0o664, false), 0o640);
        assert_eq!(apply("a+rX", 0o600, false), 0o644);
        assert_eq!(apply("a+rX", 0o700, true), 0o755);
        assert_eq!(apply("+x", 0o644, false), 0o755, "umask keeps o-w");
        assert_eq!(apply("u+s", 0o755, false), 0o4755);
        assert_eq!(apply("g+s", 0o755, true), 0o2755);
        assert_eq!(apply("o+t", 0o777, true), 0o1777);
        assert_eq!(apply("u=rw,go=r", 0o4777, false), 0o644);
        assert_eq!(apply("u=rwx,go=rx", 0o2777, true), 0o2755);
        assert_eq!(apply("u+x-w", 0o644, false), 0o544);
        for bad in ["", "9", "77777", "u+q", "z+r", "rw"] {
            assert!(bad.parse::<Mode>().is_err(), "{bad}");
        }
    }
}
