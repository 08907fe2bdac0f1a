//! The journal's message catalog, `/var/lib/systemd/catalog/database`, as
//! systemd 252's `journalctl --update-catalog` writes it from the
//! `*.catalog` files.
//!
//! Files: those of `/usr/local/lib/systemd/catalog` and
//! `/usr/lib/systemd/catalog` (a name in the first hides the same name in
//! the second), read in the order of their names. An entry starts at a
//! line `-- ID [LANG]` (32 hex digits) after an empty line or at the start;
//! its language is LANG or the file's (`systemd.de.catalog`); its text is
//! every following line, runs of empty lines kept as one, lines starting
//! with `#` or `;` dropped. A second entry for the same ID and language
//! puts its header lines before the first's and replaces its body when it
//! has one.
//!
//! The file: `RHHHKSLP`, two zero flag words, the header's size (40), the
//! count and the item size (56), all little-endian; the items (the ID's 16
//! bytes, the language NUL-padded to 32, the text's offset) sorted by ID
//! and language; then the texts in a [`StrBuf`], in the order first seen.

use crate::Error;
use crate::strbuf::StrBuf;

/// The directories, first the one that wins.
pub const DIRS: &[&str] = &["usr/local/lib/systemd/catalog", "usr/lib/systemd/catalog"];
/// Where the database goes.
pub const DATABASE: &str = "var/lib/systemd/catalog/database";

type Key = ([u8; 16], String);

/// The database for `files` (name, bytes), already chosen from [`DIRS`]
/// and sorted by name; None when there is no entry at all (journalctl then
/// writes nothing).
pub fn build(files: &[(String, Vec<u8>)]) -> Result<Option<Vec<u8>>, Error> {
    let mut entries: Vec<(Key, Vec<u8>)> = Vec::new();
    for (name, bytes) in files {
        import(name, bytes, &mut entries)?;
    }
    if entries.is_empty() {
        return Ok(None);
    }
    let mut strings = StrBuf::new();
    let mut items: Vec<(&Key, usize)> = entries
        .iter()
        .map(|(key, text)| (key, strings.add(text)))
        .collect();
    items.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = b"RHHHKSLP".to_vec();
    out.extend_from_slice(&[0; 8]);
    for value in [40u64, items.len() as u64, 56] {
        out.extend_from_slice(&value.to_le_bytes());
    }
    for ((id, language), offset) in items {
        out.extend_from_slice(id);
        let mut padded = [0u8; 32];
        padded[..language.len()].copy_from_slice(language.as_bytes());
        out.extend_from_slice(&padded);
        out.extend_from_slice(&(offset as u64).to_le_bytes());
    }
    out.extend_from_slice(strings.bytes());
    Ok(Some(out))
}

/// The language a file's name gives (`systemd.be@latin.catalog`).
fn file_language(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".catalog")?;
    let bytes = stem.as_bytes();
    let mut b = bytes.len().checked_sub(1)?;
    while b > 0 && !matches!(bytes[b], b'.' | b'/') && bytes.len() - b < 32 {
        b -= 1;
    }
    (bytes[b] == b'.' && bytes.len() > b + 1).then(|| &stem[b + 1..])
}

fn import(name: &str, bytes: &[u8], entries: &mut Vec<(Key, Vec<u8>)>) -> Result<(), Error> {
    let fail = |message: &str| Error::Input {
        file: name.to_owned(),
        message: message.to_owned(),
    };
    let lines = crate::lines::split(bytes).map_err(|_| fail("a line longer than 1 MiB"))?;
    let default = file_language(name).unwrap_or("");
    let mut current: Option<(Key, Vec<u8>)> = None;
    let mut empty = true;
    for line in lines {
        if line.is_empty() {
            empty = true;
            continue;
        }
        if matches!(line[0], b'#' | b';') {
            continue;
        }
        if empty && let Some((id, language)) = header(line) {
            let language = language.map_err(|m| fail(&m))?;
            if let Some(done) = current.take() {
                finish(done, entries).map_err(&fail)?;
            }
            let language = language.unwrap_or(default).to_owned();
            current = Some(((id, language), Vec::new()));
            empty = false;
            continue;
        }
        let Some((_, text)) = current.as_mut() else {
            return Err(fail("text before the first `-- ID` line"));
        };
        if empty {
            text.push(b'\n');
        }
        text.extend_from_slice(line);
        text.push(b'\n');
        empty = false;
    }
    if let Some(done) = current {
        finish(done, entries).map_err(&fail)?;
    }
    Ok(())
}

/// A `-- ID [LANG]` line: the ID and the language it names (an error
/// when it is shorter than 2 or longer than 31).
/// A header's ID, and its language (None: the file's) or why it is wrong.
type Header<'a> = ([u8; 16], Result<Option<&'a str>, String>);

fn header(line: &[u8]) -> Option<Header<'_>> {
    if line.len() < 35 || !line.starts_with(b"-- ") || (line.len() > 35 && line[35] != b' ') {
        return None;
    }
    let hex = &line[3..35];
    let mut id = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        id[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    if line.len() <= 35 {
        return Some((id, Ok(None)));
    }
    let language = std::str::from_utf8(&line[36..])
        .map(|l| l.trim_matches([' ', '\t', '\n', '\r']))
        .map_err(|_| "a language that is not UTF-8".to_owned());
    let language = language.and_then(|l| {
        if (2..=31).contains(&l.len()) {
            Ok(Some(l))
        } else {
            Err(format!("the language {l:?} is not 2 to 31 characters"))
        }
    });
    Some((id, language))
}

fn finish(
    (key, text): (Key, Vec<u8>),
    entries: &mut Vec<(Key, Vec<u8>)>,
) -> Result<(), &'static str> {
    if text.is_empty() {
        return Err("an entry with no text");
    }
    match entries.iter_mut().find(|(k, _)| *k == key) {
        Some((_, old)) => *old = combine(&text, old),
        None => entries.push((key, text)),
    }
    Ok(())
}

/// Where the header lines of an entry's text end (at its first empty
/// line).
fn body_start(text: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match text[i..].iter().position(|&b| b == b'\n') {
            Some(0) | None => return i,
            Some(end) => i += end + 1,
        }
    }
}

/// A repeated entry: the new header lines, the old ones, then the new body
/// if it has one, else the old.
fn combine(new: &[u8], old: &[u8]) -> Vec<u8> {
    let (b1, b2) = (body_start(new), body_start(old));
    let mut out = new[..b1].to_vec();
    out.extend_from_slice(&old[..b2]);
    out.extend_from_slice(if new.len() > b1 {
        &new[b1..]
    } else {
        &old[b2..]
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_come_from_the_name_or_the_header() {
        assert_eq!(file_language("systemd.be@latin.catalog"), Some("be@latin"));
        assert_eq!(file_language("systemd.catalog"), None);
        assert_eq!(file_language("x.catalog"), None);
    }

    #[test]
    fn a_repeated_entry_merges_headers_and_keeps_a_body() {
        let id = "-- 0027229ca0644181a76c4e92458afa2e";
        let one = format!("{id}\nSubject: One\n\nBody one\n");
        let two = format!("# comment\n{id}\nSubject: Two\n\n\n\nBody two\n\n");
        let files = [
            ("a.catalog".to_owned(), one.into_bytes()),
            ("b.catalog".to_owned(), two.into_bytes()),
        ];
        let db = build(&files).unwrap().unwrap();
        assert_eq!(&db[..8], b"RHHHKSLP");
        assert_eq!(u64::from_le_bytes(db[24..32].try_into().unwrap()), 1);
        let text = &db[40 + 56 + 1..db.len() - 1];
        assert_eq!(text, b"Subject: Two\nSubject: One\n\nBody two\n");
        let broken = [("c.catalog".to_owned(), b"text first\n".to_vec())];
        assert!(
            build(&broken)
                .unwrap_err()
                .to_string()
                .contains("c.catalog")
        );
        assert_eq!(build(&[]).unwrap(), None);
    }
}
