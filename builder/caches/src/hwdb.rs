//! udev's hardware database, `hwdb.bin`, as systemd 252's `systemd-hwdb
//! update` writes it from the `*.hwdb` files.
//!
//! Files: those of `/etc/udev/hwdb.d` and `/lib/udev/hwdb.d` (a name in
//! the first hides the same name in the second), read in the order of
//! their names, the n-th with priority n. A record is one or more match
//! lines, then property lines (` KEY=VALUE`), ended by an empty line;
//! `#` starts a comment anywhere; a malformed record is skipped (as
//! systemd-hwdb warns and goes on). Each property goes into a trie under
//! each of its record's matches; a later value for the same key under the
//! same match replaces the earlier one.
//!
//! The file (little-endian): an 80-byte header (`KSLPHHRH`, the tool's
//! version 252, the file's size, the sizes of the header, a node (24), a
//! child entry (16) and a value entry (32), the root's offset, the nodes'
//! length, the strings' length), the nodes in post-order (each node's
//! children before it, the root last), each followed by its child entries
//! (by character) and value entries (by key: key, value and file name
//! offsets, line, priority), then the strings (a [`StrBuf`]).

use crate::strbuf::StrBuf;

/// The directories, first the one that wins.
pub const DIRS: &[&str] = &["etc/udev/hwdb.d", "lib/udev/hwdb.d"];
/// Where `systemd-hwdb --usr update` writes it.
pub const USR: &str = "lib/udev/hwdb.bin";

/// The version systemd 252 writes into the header.
const TOOL_VERSION: u64 = 252;

#[derive(Debug, Default)]
struct Node {
    prefix: usize,
    /// Sorted by character.
    children: Vec<(u8, usize)>,
    /// Sorted by key.
    values: Vec<Value>,
}

#[derive(Clone, Copy, Debug)]
struct Value {
    key: usize,
    value: usize,
    file: usize,
    line: u32,
    priority: u16,
}

/// One input file: its path as systemd-hwdb names it in the database
/// (`/usr/lib/udev/hwdb.d/20-OUI.hwdb`, through the image's links) and its
/// bytes.
#[derive(Debug)]
pub struct File {
    /// The path recorded with each of its values.
    pub path: String,
    /// Its contents.
    pub bytes: Vec<u8>,
}

struct Trie {
    strings: StrBuf,
    nodes: Vec<Node>,
}

/// The database for `files`, already chosen from [`DIRS`] and sorted by
/// name; None when there is none (systemd-hwdb then removes hwdb.bin).
pub fn build(files: &[File]) -> Option<Vec<u8>> {
    if files.is_empty() {
        return None;
    }
    let mut trie = Trie {
        strings: StrBuf::new(),
        nodes: vec![Node::default()],
    };
    for (index, file) in files.iter().enumerate() {
        let priority = u16::try_from(index + 1).unwrap_or(u16::MAX);
        trie.import(file, priority);
    }
    Some(trie.store())
}

impl Trie {
    fn import(&mut self, file: &File, priority: u16) {
        #[derive(PartialEq)]
        enum State {
            None,
            Match,
            Data,
        }
        // A line too long ends the file; what came before it stays.
        let lines = crate::lines::split(&file.bytes).unwrap_or_else(|lines| lines);
        let mut state = State::None;
        let mut matches: Vec<Vec<u8>> = Vec::new();
        for (index, line) in lines.into_iter().enumerate() {
            let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
            if line.first() == Some(&b'#') {
                continue;
            }
            let line = &line[..line.iter().position(|&b| b == b'#').unwrap_or(line.len())];
            let end = line
                .iter()
                .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
                .map_or(0, |i| i + 1);
            let line = &line[..end];
            let indented = line.first() == Some(&b' ');
            match state {
                State::None if line.is_empty() || indented => {}
                State::None => {
                    state = State::Match;
                    matches = vec![line.to_vec()];
                }
                State::Match | State::Data if line.is_empty() => state = State::None,
                State::Match if !indented => matches.push(line.to_vec()),
                State::Data if !indented => state = State::None,
                State::Match | State::Data => {
                    state = State::Data;
                    self.property(&matches, line, &file.path, priority, number);
                }
            }
        }
    }

    fn property(
        &mut self,
        matches: &[Vec<u8>],
        line: &[u8],
        file: &str,
        priority: u16,
        number: u32,
    ) {
        let Some(equals) = line.iter().position(|&b| b == b'=') else {
            return;
        };
        let (mut key, value) = (&line[..equals], &line[equals + 1..]);
        let blank = |b: u8| b == b' ' || b == b'\t';
        while key.len() >= 2 && blank(key[0]) && blank(key[1]) {
            key = &key[1..];
        }
        if key.len() <= 1 {
            return;
        }
        for search in matches {
            self.insert(search, key, value, file, priority, number);
        }
    }

    fn insert(
        &mut self,
        search: &[u8],
        key: &[u8],
        value: &[u8],
        file: &str,
        priority: u16,
        line: u32,
    ) {
        let at = |i: usize| search.get(i).copied().unwrap_or(0);
        let mut node = 0;
        let mut i = 0;
        loop {
            let prefix = self.strings.get(self.nodes[node].prefix).to_vec();
            let mut p = 0;
            while p < prefix.len() {
                let c = prefix[p];
                if c == at(i + p) {
                    p += 1;
                    continue;
                }
                // Split: a child takes this node's place below the
                // common part, under the character where they differ.
                let old = std::mem::take(&mut self.nodes[node]);
                let child = self.nodes.len();
                self.nodes.push(Node {
                    prefix: old.prefix + p + 1,
                    children: old.children,
                    values: old.values,
                });
                self.nodes[node].prefix = self.strings.add(&prefix[..p]);
                self.nodes[node].children = vec![(c, child)];
                break;
            }
            i += p;
            let c = at(i);
            if c == 0 {
                self.add_value(node, key, value, file, priority, line);
                return;
            }
            let found = self.nodes[node]
                .children
                .binary_search_by_key(&c, |(k, _)| *k);
            match found {
                Ok(index) => {
                    node = self.nodes[node].children[index].1;
                    i += 1;
                }
                Err(index) => {
                    let prefix = self.strings.add(search.get(i + 1..).unwrap_or_default());
                    let child = self.nodes.len();
                    self.nodes.push(Node {
                        prefix,
                        ..Node::default()
                    });
                    self.nodes[node].children.insert(index, (c, child));
                    self.add_value(child, key, value, file, priority, line);
                    return;
                }
            }
        }
    }

    fn add_value(
        &mut self,
        node: usize,
        key: &[u8],
        value: &[u8],
        file: &str,
        priority: u16,
        line: u32,
    ) {
        let key = self.strings.add(key);
        let value = self.strings.add(value);
        let file = self.strings.add(file.as_bytes());
        let strings = &self.strings;
        let values = &mut self.nodes[node].values;
        match values.binary_search_by(|v| strings.get(v.key).cmp(strings.get(key))) {
            Ok(index) => {
                let existing = &mut values[index];
                existing.value = value;
                existing.file = file;
                existing.priority = priority;
                existing.line = line;
            }
            Err(index) => values.insert(
                index,
                Value {
                    key,
                    value,
                    file,
                    line,
                    priority,
                },
            ),
        }
    }

    fn store(&self) -> Vec<u8> {
        let nodes_size: usize = self
            .nodes
            .iter()
            .map(|n| 24 + 16 * n.children.len() + 32 * n.values.len())
            .sum();
        let strings_at = (80 + nodes_size) as u64;
        let mut out = vec![0u8; 80];
        let root = self.store_node(0, strings_at, &mut out);
        let nodes_len = out.len() as u64 - 80;
        out.extend_from_slice(self.strings.bytes());
        let mut header = b"KSLPHHRH".to_vec();
        for field in [
            TOOL_VERSION,
            out.len() as u64,
            80,
            24,
            16,
            32,
            root,
            nodes_len,
            self.strings.bytes().len() as u64,
        ] {
            header.extend_from_slice(&field.to_le_bytes());
        }
        out[..80].copy_from_slice(&header);
        out
    }

    /// Writes `node` after its children; returns its offset. The trie is
    /// as deep as the longest match, so the recursion is bounded by it.
    fn store_node(&self, node: usize, strings_at: u64, out: &mut Vec<u8>) -> u64 {
        let n = &self.nodes[node];
        let children: Vec<(u8, u64)> = n
            .children
            .iter()
            .map(|&(c, child)| (c, self.store_node(child, strings_at, out)))
            .collect();
        let offset = out.len() as u64;
        out.extend_from_slice(&(strings_at + n.prefix as u64).to_le_bytes());
        out.push(n.children.len() as u8);
        out.extend_from_slice(&[0; 7]);
        out.extend_from_slice(&(n.values.len() as u64).to_le_bytes());
        for (c, child) in children {
            out.push(c);
            out.extend_from_slice(&[0; 7]);
            out.extend_from_slice(&child.to_le_bytes());
        }
        for v in &n.values {
            for field in [v.key, v.value, v.file] {
                out.extend_from_slice(&(strings_at + field as u64).to_le_bytes());
            }
            out.extend_from_slice(&v.line.to_le_bytes());
            out.extend_from_slice(&v.priority.to_le_bytes());
            out.extend_from_slice(&[0; 2]);
        }
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// systemd-hwdb 252's own output for these two files (an override in
    /// /etc, a split, a comment after a value) is 543 bytes, the root at
    /// 0x188, 0x160 bytes of nodes and 0x6f of strings; the first value of
    /// ID_A stays in the strings though replaced.
    #[test]
    fn records_split_the_trie_and_a_later_value_replaces() {
        let files = [
            File {
                path: "/usr/lib/udev/hwdb.d/20-a.hwdb".to_owned(),
                bytes: b"# comment\nusb:v1234*\n ID_A=1\n  ID_B=two # trailing\n\nusb:v12ab*\nusb:v1235p*\n ID_A=3\n".to_vec(),
            },
            File {
                path: "/etc/udev/hwdb.d/30-b.hwdb".to_owned(),
                bytes: b"usb:v1234*\n ID_A=override\n".to_vec(),
            },
        ];
        let db = build(&files).unwrap();
        let field = |i: usize| u64::from_le_bytes(db[8 + 8 * i..16 + 8 * i].try_into().unwrap());
        assert_eq!(&db[..8], b"KSLPHHRH");
        assert_eq!(
            (field(0), field(1), field(6), field(7), field(8)),
            (252, 543, 0x188, 0x160, 0x6f)
        );
        let strings = &db[0x1b0..];
        let expected: &[&[u8]] = &[
            b"",
            b"sb:v1234*",
            b" ID_A",
            b"1",
            b"/usr/lib/udev/hwdb.d/20-a.hwdb",
            b" ID_B",
            b"two",
            b"sb:v12",
            b"b*",
            b"3",
            b"p*",
            b"override",
            b"/etc/udev/hwdb.d/30-b.hwdb",
        ];
        let mut joined = Vec::new();
        for s in expected {
            joined.extend_from_slice(s);
            joined.push(0);
        }
        assert_eq!(strings, joined.as_slice());
        assert_eq!(build(&[]), None);
    }
}
