//! Recipe errors that point at file:line:column.

use std::fmt;
use std::path::PathBuf;

/// A place in a recipe file, 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, as the caller named it.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `text`.
    pub fn at(file: PathBuf, text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = &text[..floor_char_boundary(text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location { file, line, column }
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Everything that can be wrong with a recipe.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// The file could not be read.
    #[error("{}: cannot read recipe: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Syntax, type, unknown key or invalid value, at a known place.
    #[error("{location}: {message}")]
    Invalid {
        /// Where.
        location: Location,
        /// What was wrong and what was expected.
        message: String,
    },
    /// An invalid value whose place in the file is not known (for instance a
    /// check across keys after includes were merged).
    #[error("{}: {message}", file.display())]
    Semantic {
        /// The recipe.
        file: PathBuf,
        /// What was wrong and what was expected.
        message: String,
    },
    /// A file includes itself, directly or through others.
    #[error("{location}: include loop: {}", chain.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" -> "))]
    IncludeLoop {
        /// The include entry that closes the loop.
        location: Location,
        /// The files in the loop, in order, ending with the repeated one.
        chain: Vec<PathBuf>,
    },
    /// Includes nest deeper, or read more files, than a recipe may: paths
    /// that never repeat (`a/x.toml` including `a/a/x.toml`, or a folder
    /// symlinked into itself) would otherwise recurse without end.
    #[error(
        "{location}: includes nest {depth} deep and read {files} files; at most {} deep and {} files",
        crate::load::MAX_INCLUDE_DEPTH,
        crate::load::MAX_INCLUDED_FILES
    )]
    IncludeLimit {
        /// The include entry that went over.
        location: Location,
        /// How deep it was.
        depth: usize,
        /// Files read so far.
        files: usize,
    },
}
