//! systemd's `strbuf`: a string buffer that stores a string once and
//! shares the tail of one already there when its reverse-character trie
//! leads to it. The offsets it gives depend on that exact algorithm (it
//! does not find every shared tail), so this follows it step by step.

#[derive(Debug)]
struct Node {
    offset: usize,
    len: usize,
    /// Sorted by character.
    children: Vec<(u8, usize)>,
}

/// The buffer: it starts as one NUL (the empty string, at offset 0).
#[derive(Debug)]
pub struct StrBuf {
    buf: Vec<u8>,
    nodes: Vec<Node>,
}

impl StrBuf {
    pub fn new() -> Self {
        StrBuf {
            buf: vec![0],
            nodes: vec![Node {
                offset: 0,
                len: 0,
                children: Vec::new(),
            }],
        }
    }

    /// Adds `s` (which has no NUL), returning its offset.
    pub fn add(&mut self, s: &[u8]) -> usize {
        let len = s.len();
        if len == 0 {
            return 0;
        }
        let mut node = 0;
        let mut last = 0u8;
        for depth in 0..=len {
            let n = &self.nodes[node];
            if depth == len {
                return n.offset + n.len - len;
            }
            if n.len >= len {
                let offset = n.offset + n.len - len;
                if &self.buf[offset..offset + len] == s {
                    return offset;
                }
            }
            last = s[len - 1 - depth];
            match n.children.binary_search_by_key(&last, |(c, _)| *c) {
                Ok(index) => node = n.children[index].1,
                Err(_) => break,
            }
        }
        let offset = self.buf.len();
        self.buf.extend_from_slice(s);
        self.buf.push(0);
        let child = self.nodes.len();
        self.nodes.push(Node {
            offset,
            len,
            children: Vec::new(),
        });
        let children = &mut self.nodes[node].children;
        let at = children.partition_point(|(c, _)| *c < last);
        children.insert(at, (last, child));
        offset
    }

    /// The string at `offset` (up to its NUL).
    pub fn get(&self, offset: usize) -> &[u8] {
        let rest = &self.buf[offset..];
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_the_trie_leads_to_is_shared() {
        let mut buf = StrBuf::new();
        assert_eq!(buf.add(b"sb:v1234*"), 1);
        assert_eq!(buf.add(b"1234*"), 5);
        assert_eq!(buf.add(b""), 0);
        assert_eq!(buf.add(b"x"), 11);
        assert_eq!(buf.add(b"sb:v1234*"), 1);
        assert_eq!(buf.bytes(), b"\0sb:v1234*\0x\0");
        assert_eq!(buf.get(5), b"1234*");
    }
}
