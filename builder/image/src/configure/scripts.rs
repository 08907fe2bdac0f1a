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

/// The state of splitting one line into commands.
#[derive(Default)]
struct Splitter {
    out: Vec<Command>,
    words: Vec<String>,
    word: String,
    in_word: bool,
    expands: bool,
}

impl Splitter {
    fn push(&mut self, c: char) {
        if c == '$' || c == '`' {
            self.expands = true;
        }
        self.word.push(c);
        self.in_word = true;
    }

    fn end_word(&mut self) {
        if self.in_word {
            self.words.push(std::mem::take(&mut self.word));
            self.in_word = false;
        }
    }

    fn end_command(&mut self) {
        self.end_word();
        let words = std::mem::take(&mut self.words);
        // Keywords that start a command list.
        let start = words
            .iter()
            .position(|w| !matches!(w.as_str(), "then" | "do" | "else" | "!" | "{"))
            .unwrap_or(words.len());
        if start < words.len() {
            self.out.push(Command {
                words: words[start..].to_vec(),
                expands: self.expands,
            });
        }
        self.expands = false;
    }
}

/// Splits a shell script into simple commands: lines joined at a trailing
/// backslash, comments dropped, split at `;`, `|`, `&&`, `||` and keywords
/// such as `then` and `do`, words unquoted.
pub fn commands(script: &str) -> Vec<Command> {
    let joined = script.replace("\\\n", " ");
    let mut split = Splitter::default();
    for line in joined.lines() {
        let mut quote: Option<char> = None;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some('\''), c) => split.word.push(c),
                (Some(_), c) => split.push(c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    split.in_word = true;
                }
                (None, '#') if !split.in_word => break,
                (None, ' ' | '\t') => split.end_word(),
                (None, ';' | '|' | '&' | '(' | ')') => {
                    while chars.peek().is_some_and(|n| matches!(n, '|' | '&' | ';')) {
                        chars.next();
                    }
                    split.end_command();
                }
                (None, c) => split.push(c),
            }
        }
        split.end_command();
    }
    split.out
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
