//! deb822 control paragraphs (Packages, Release, .sources, control files).
//!
//! Streaming and bounded: a paragraph is read line by line with a cap on
//! line length, paragraph size and field count, so a hostile index cannot
//! exhaust memory.

use std::io::{BufRead, Read};

/// Bounds on what one paragraph may hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest line, in bytes.
    pub max_line: usize,
    /// Largest paragraph, in bytes.
    pub max_paragraph: usize,
    /// Most fields in one paragraph.
    pub max_fields: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 1 << 20,
            max_paragraph: 8 << 20,
            max_fields: 512,
        }
    }
}

/// Why a paragraph could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Reading failed.
    #[error("line {line}: {source}")]
    Io {
        /// 1-based line.
        line: usize,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not deb822.
    #[error("line {line}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// One paragraph: fields in file order. Names compare case-insensitively.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Paragraph {
    /// (name, value); multi-line values keep their continuation lines,
    /// each without its leading space, joined by `\n`.
    pub fields: Vec<(String, String)>,
    /// 1-based line where the paragraph starts.
    pub line: usize,
}

impl Paragraph {
    /// The value of field `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Reads paragraphs one at a time.
#[derive(Debug)]
pub struct ParagraphReader<R> {
    reader: R,
    limits: Limits,
    allow_comments: bool,
    line: usize,
    buffer: Vec<u8>,
}

impl<R: BufRead> ParagraphReader<R> {
    /// A reader with default limits; `#` comment lines are errors.
    pub fn new(reader: R) -> Self {
        ParagraphReader {
            reader,
            limits: Limits::default(),
            allow_comments: false,
            line: 0,
            buffer: Vec::new(),
        }
    }

    /// Allow `#` comment lines (apt's .sources files have them).
    pub fn allow_comments(mut self) -> Self {
        self.allow_comments = true;
        self
    }

    /// Use other limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Reads one line into `self.buffer` (without the newline); false at EOF.
    fn next_line(&mut self) -> Result<bool, ControlError> {
        self.buffer.clear();
        let limit = self.limits.max_line as u64 + 1;
        let read = Read::take(&mut self.reader, limit)
            .read_until(b'\n', &mut self.buffer)
            .map_err(|source| ControlError::Io {
                line: self.line + 1,
                source,
            })?;
        if read == 0 {
            return Ok(false);
        }
        self.line += 1;
        if self.buffer.last() == Some(&b'\n') {
            self.buffer.pop();
            if self.buffer.last() == Some(&b'\r') {
                self.buffer.pop();
            }
        } else if self.buffer.len() > self.limits.max_line {
            return Err(self.syntax(format!("line longer than {} bytes", self.limits.max_line)));
        }
        Ok(true)
    }

    fn syntax(&self, message: String) -> ControlError {
        ControlError::Syntax {
            line: self.line,
            message,
        }
    }

    /// The next paragraph, or `None` at the end.
    pub fn next_paragraph(&mut self) -> Result<Option<Paragraph>, ControlError> {
        let mut paragraph = Paragraph::default();
        let mut size = 0usize;
        while self.next_line()? {
            let text = std::str::from_utf8(&self.buffer)
                .map_err(|_| self.syntax("not UTF-8".to_owned()))?
                .to_owned();
            if self.allow_comments && text.starts_with('#') {
                continue;
            }
            if text.trim().is_empty() {
                if paragraph.fields.is_empty() {
                    continue;
                }
                return Ok(Some(paragraph));
            }
            size += text.len() + 1;
            if size > self.limits.max_paragraph {
                return Err(self.syntax(format!(
                    "paragraph larger than {} bytes",
                    self.limits.max_paragraph
                )));
            }
            if text.starts_with([' ', '\t']) {
                let Some((_, value)) = paragraph.fields.last_mut() else {
                    return Err(self.syntax("continuation line before any field".to_owned()));
                };
                let continuation = &text[1..];
                if !value.is_empty() {
                    value.push('\n');
                }
                value.push_str(continuation);
                continue;
            }
            let Some((name, value)) = text.split_once(':') else {
                return Err(self.syntax(format!(
                    "expected \"Field: value\", got {:?}",
                    truncate(&text)
                )));
            };
            let valid_name = !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
                && !name.starts_with(['#', '-']);
            if !valid_name {
                return Err(self.syntax(format!("invalid field name {:?}", truncate(name))));
            }
            if paragraph.get(name).is_some() {
                return Err(self.syntax(format!("field {name:?} appears twice in one paragraph")));
            }
            if paragraph.fields.len() == self.limits.max_fields {
                return Err(self.syntax(format!("more than {} fields", self.limits.max_fields)));
            }
            if paragraph.fields.is_empty() {
                paragraph.line = self.line;
            }
            paragraph
                .fields
                .push((name.to_owned(), value.trim().to_owned()));
        }
        Ok((!paragraph.fields.is_empty()).then_some(paragraph))
    }
}

impl<R: BufRead> Iterator for ParagraphReader<R> {
    type Item = Result<Paragraph, ControlError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_paragraph().transpose()
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Paragraph>, ControlError> {
        ParagraphReader::new(text.as_bytes()).collect()
    }

    #[test]
    fn reads_fields_and_continuations() {
        let paragraphs = parse(
            "Package: a\nDescription: short\n more\n .\n end\n\n\nPackage: b\r\nSHA256:\n x 1 f\n y 2 g\n",
        )
        .unwrap();
        assert_eq!(paragraphs.len(), 2);
        assert_eq!(paragraphs[0].get("package"), Some("a"));
        assert_eq!(
            paragraphs[0].get("Description"),
            Some("short\nmore\n.\nend")
        );
        assert_eq!(paragraphs[1].get("Package"), Some("b"));
        assert_eq!(paragraphs[1].get("SHA256"), Some("x 1 f\ny 2 g"));
        assert_eq!(paragraphs[1].line, 8);
    }

    #[test]
    fn rejects_malformed_input_with_the_line() {
        let error = parse("Package: a\nno colon here\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 2: expected \"Field: value\", got \"no colon here\""
        );
        let error = parse(" leading\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 1: continuation line before any field"
        );
        let error = parse("A: 1\na: 2\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 2: field \"a\" appears twice in one paragraph"
        );
        assert!(parse("A: \u{0}\u{ff}").is_ok());
        assert!(
            ParagraphReader::new(&b"A: \xff\n"[..])
                .next()
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn enforces_limits() {
        let limits = Limits {
            max_line: 16,
            max_paragraph: 64,
            max_fields: 2,
        };
        let read = |text: &str| {
            ParagraphReader::new(text.as_bytes())
                .with_limits(limits)
                .collect::<Result<Vec<_>, _>>()
        };
        assert!(read("A: 123456789012345678\n").is_err());
        assert!(read("A: 1\nB: 2\nC: 3\n").is_err());
        assert!(
            read("A: 1\n 2345678901\n 2345678901\n 2345678901\n 2345678901\n 2345678901\n")
                .is_err()
        );
        assert!(read("A: 1\nB: 2\n\nC: 3\n").is_ok());
    }

    #[test]
    fn comments_only_where_allowed() {
        assert!(parse("# c\nA: 1\n").is_err());
        let paragraphs: Vec<_> = ParagraphReader::new(&b"# c\nA: 1\n# inner\nB: 2\n"[..])
            .allow_comments()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(paragraphs[0].fields.len(), 2);
    }
}
