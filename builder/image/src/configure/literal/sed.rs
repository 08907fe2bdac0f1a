//! `sed [-e] 's/RE/REPL/[g]'… FILE > PATH`: a template edited into a file
//! (postgresql-common's createcluster.conf). Only substitutions are read,
//! with POSIX basic regular expressions of this subset: literal text, `.`,
//! `*`, `^` at the start, `$` at the end, bracket expressions (with
//! `[:class:]`), `\(…\)` groups, `\{m,n\}` and escaped characters; and
//! replacements with `&`, `\1`…`\9` and escaped characters. Anything else
//! (addresses, other commands, flags but `g`, GNU's extensions) is refused,
//! never guessed. (The engine matches leftmost-first where POSIX asks for
//! leftmost-longest; without alternation, which basic expressions do not
//! have, the two agree but for patterns with adjacent repetitions of
//! overlapping text.)

use regex::Regex;

/// One `s` command.
#[derive(Clone, Debug)]
pub struct Substitution {
    regex: Regex,
    replacement: String,
    global: bool,
}

impl PartialEq for Substitution {
    fn eq(&self, other: &Self) -> bool {
        self.regex.as_str() == other.regex.as_str()
            && self.replacement == other.replacement
            && self.global == other.global
    }
}

impl Eq for Substitution {}

/// A `sed` command line: its substitutions and the files it reads.
pub fn parse(args: &[&str]) -> Result<(Vec<Substitution>, Vec<String>), String> {
    let mut scripts = Vec::new();
    let mut files = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match *arg {
            "-e" | "--expression" => {
                scripts.push(*rest.next().ok_or("sed -e with no script")?);
            }
            option if option.starts_with('-') => {
                return Err(format!("sed option {option} is not one airlock reads"));
            }
            word if scripts.is_empty() => scripts.push(word),
            file => files.push(file.to_owned()),
        }
    }
    if scripts.is_empty() || files.is_empty() {
        return Err("sed with no script or no file".to_owned());
    }
    let mut out = Vec::new();
    for script in scripts {
        for command in script.split(';').map(str::trim).filter(|c| !c.is_empty()) {
            out.push(substitution(command)?);
        }
    }
    Ok((out, files))
}

fn substitution(command: &str) -> Result<Substitution, String> {
    let refuse = || format!("sed `{command}`: only s/RE/REPL/ and s/RE/REPL/g are read");
    let rest = command.strip_prefix('s').ok_or_else(refuse)?;
    let delimiter = rest
        .chars()
        .next()
        .filter(|c| !c.is_alphanumeric() && *c != '\\' && *c != '\n')
        .ok_or_else(refuse)?;
    let parts = split(&rest[delimiter.len_utf8()..], delimiter).ok_or_else(refuse)?;
    let [pattern, replacement, flags] = &parts[..] else {
        return Err(refuse());
    };
    let global = match flags.as_str() {
        "" => false,
        "g" => true,
        _ => return Err(refuse()),
    };
    let regex = Regex::new(&translate(pattern).ok_or_else(refuse)?).map_err(|_| refuse())?;
    let replacement = translate_replacement(replacement).ok_or_else(refuse)?;
    Ok(Substitution {
        regex,
        replacement,
        global,
    })
}

/// The three parts of `RE/REPL/FLAGS` (an escaped delimiter is the
/// delimiter itself).
fn split(text: &str, delimiter: char) -> Option<Vec<String>> {
    let mut parts = vec![String::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let next = chars.next()?;
            if next != delimiter {
                parts.last_mut()?.push('\\');
            }
            parts.last_mut()?.push(next);
        } else if c == delimiter && parts.len() < 3 {
            parts.push(String::new());
        } else {
            parts.last_mut()?.push(c);
        }
    }
    (parts.len() == 3).then_some(parts)
}

/// A basic regular expression as the regex crate writes it.
fn translate(pattern: &str) -> Option<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let next = *chars.get(i + 1)?;
                match next {
                    '(' | ')' | '{' | '}' => out.push(next),
                    '.' | '*' | '[' | ']' | '\\' | '/' | '^' | '$' | '&' => {
                        out.push_str(&regex::escape(&next.to_string()));
                    }
                    'n' => out.push_str("\\n"),
                    _ => return None,
                }
                i += 2;
                continue;
            }
            '[' => {
                let end = bracket_end(&chars, i)?;
                out.push('[');
                for &b in &chars[i + 1..end] {
                    // A backslash is literal in POSIX brackets.
                    if b == '\\' || b == '&' || b == '~' {
                        out.push('\\');
                    }
                    out.push(b);
                }
                out.push(']');
                i = end + 1;
                continue;
            }
            '*' if i == 0 || out.ends_with('(') => out.push_str("\\*"),
            '^' if i == 0 => out.push('^'),
            '$' if i == chars.len() - 1 => out.push('$'),
            '.' | '*' => out.push(c),
            other => out.push_str(&regex::escape(&other.to_string())),
        }
        i += 1;
    }
    Some(out)
}

/// Where the bracket expression opened at `start` closes.
fn bracket_end(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if chars.get(i) == Some(&'^') {
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        i += 1;
    }
    while i < chars.len() {
        match chars[i] {
            '[' if matches!(chars.get(i + 1), Some(':' | '.' | '=')) => {
                let close = chars.get(i + 1).copied()?;
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == close && chars[i + 1] == ']') {
                    i += 1;
                }
                i += 2;
            }
            ']' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn translate_replacement(replacement: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = replacement.chars();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("${0}"),
            '$' => out.push_str("$$"),
            '\\' => match chars.next()? {
                digit @ '0'..='9' => out.push_str(&format!("${{{digit}}}")),
                'n' => out.push('\n'),
                '$' => out.push_str("$$"),
                other if !other.is_alphanumeric() => out.push(other),
                _ => return None,
            },
            other => out.push(other),
        }
    }
    Some(out)
}

/// `text` with every substitution applied to each line, as sed does.
pub fn apply(substitutions: &[Substitution], text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (mut body, newline) = match line.strip_suffix('\n') {
            Some(body) => (body.to_owned(), "\n"),
            None => (line.to_owned(), ""),
        };
        for s in substitutions {
            body = if s.global {
                s.regex
                    .replace_all(&body, s.replacement.as_str())
                    .into_owned()
            } else {
                s.regex.replace(&body, s.replacement.as_str()).into_owned()
            };
        }
        out.push_str(&body);
        out.push_str(newline);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sed(script: &str, text: &str) -> Result<String, String> {
        let (subs, _) = parse(&["-e", script, "/in"])?;
        Ok(apply(&subs, text))
    }

    #[test]
    fn substitutions_follow_posix_basic_expressions() {
        let conf = "# comment\nssl = off\nport = 5432\nno newline";
        assert_eq!(
            sed("s/^ssl =.*/ssl = on/", conf).unwrap(),
            "# comment\nssl = on\nport = 5432\nno newline"
        );
        assert_eq!(
            sed(r"s/\(p[a-z]*\) = \([0-9]*\)/\2=\1/", conf).unwrap(),
            "# comment\nssl = off\n5432=port\nno newline"
        );
        assert_eq!(sed("s/o/0/g", "foo\n").unwrap(), "f00\n");
        assert_eq!(sed("s/o/0/", "foo\n").unwrap(), "f0o\n");
        assert_eq!(sed("s|a+b|[&]|", "a+b a\n").unwrap(), "[a+b] a\n");
        assert_eq!(sed(r"s/^[[:blank:]]*//", "  \tx\n").unwrap(), "x\n");
        assert_eq!(sed(r"s/a\{2\}/b/", "aaa\n").unwrap(), "ba\n");
        assert_eq!(sed("s/x$/y/", "x$x\n").unwrap(), "x$y\n");
        for refused in ["0,/a/ s/a/b/", "s/a/b/p", "y/ab/cd/", "s/a\\+/b/", "/x/d"] {
            assert!(sed(refused, "a\n").is_err(), "{refused}");
        }
        assert!(parse(&["-i", "s/a/b/", "/f"]).is_err());
    }
}
