//! Reading maintainer scripts as text (never running them): the simple
//! commands they contain, as words. Only a few commands are looked for
//! (`deb-systemd-helper enable`, `systemctl enable`, `update-alternatives
//! --install`, `addgroup --system`); a command whose words use shell
//! expansion (`$`, backquotes) is reported as not understood.

/// One simple command from a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// Its words, quotes removed.
    pub words: Vec<String>,
    /// Whether any word needs the shell to expand it.
    pub expands: bool,
}

/// Splits a shell script into simple commands: lines joined at a trailing
/// backslash, comments dropped, split at `;`, `|`, `&&`, `||` and keywords
/// such as `then` and `do`, words unquoted.
pub fn commands(script: &str) -> Vec<Command> {
    let joined = script.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let mut words = Vec::new();
        let mut expands = false;
        let mut word = String::new();
        let mut in_word = false;
        let mut quote: Option<char> = None;
        let mut chars = line.chars().peekable();
        let flush = |words: &mut Vec<String>,
                     word: &mut String,
                     in_word: &mut bool,
                     expands: &mut bool,
                     out: &mut Vec<Command>,
                     end: bool| {
            if *in_word {
                words.push(std::mem::take(word));
                *in_word = false;
            }
            if end && !words.is_empty() {
                let taken = std::mem::take(words);
                // Keywords that start a command list.
                let start = taken
                    .iter()
                    .position(|w| !matches!(w.as_str(), "then" | "do" | "else" | "!" | "{"))
                    .unwrap_or(taken.len());
                let words = taken[start..].to_vec();
                if !words.is_empty() {
                    out.push(Command {
                        words,
                        expands: *expands,
                    });
                }
                *expands = false;
            }
        };
        while let Some(c) = chars.next() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some('\''), c) => word.push(c),
                (Some(_), c) => {
                    if c == '$' || c == '`' {
                        expands = true;
                    }
                    word.push(c);
                }
                (None, '\'' | '"') => {
                    quote = Some(c);
                    in_word = true;
                }
                (None, '#') if !in_word => break,
                (None, ' ' | '\t') => flush(
                    &mut words,
                    &mut word,
                    &mut in_word,
                    &mut expands,
                    &mut out,
                    false,
                ),
                (None, ';' | '|' | '&' | '(' | ')') => {
                    while chars.peek().is_some_and(|n| matches!(n, '|' | '&' | ';')) {
                        chars.next();
                    }
                    flush(
                        &mut words,
                        &mut word,
                        &mut in_word,
                        &mut expands,
                        &mut out,
                        true,
                    );
                }
                (None, c) => {
                    if c == '$' || c == '`' {
                        expands = true;
                    }
                    word.push(c);
                    in_word = true;
                }
            }
        }
        flush(
            &mut words,
            &mut word,
            &mut in_word,
            &mut expands,
            &mut out,
            true,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_joins_and_unquotes() {
        let script = "#!/bin/sh\nif true; then\n\tupdate-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\\n\t  --slave '/usr/bin/nawk' nawk \"/usr/bin/mawk\" # comment\nfi\nadduser --home $HOME x || true\n";
        let commands = commands(script);
        let words: Vec<Vec<&str>> = commands
            .iter()
            .map(|c| c.words.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(
            words,
            vec![
                vec!["if", "true"],
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
                vec!["fi"],
                vec!["adduser", "--home", "$HOME", "x"],
                vec!["true"],
            ]
        );
        assert!(!commands[1].expands);
        assert!(commands[3].expands);
    }
}
