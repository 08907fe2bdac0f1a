//! Lines as systemd's `read_line` splits them: a line ends at `\n`, `\r`
//! or NUL, or a run of them in which no kind repeats and nothing follows a
//! NUL (`\r\n`, `\n\r`, `\r\n\0` are each one end; `\n\n` is two); the
//! last line needs no end.

const LF: u8 = 1;
const CR: u8 = 2;
const NUL: u8 = 4;

/// The longest line systemd reads (`LONG_LINE_MAX`): a longer one ends
/// the file for the reader.
pub const MAX_LINE: usize = 1 << 20;

/// Splits `bytes` into lines; `Err(lines so far)` when one is longer than
/// [`MAX_LINE`].
pub fn split(bytes: &[u8]) -> Result<Vec<&[u8]>, Vec<&[u8]>> {
    let mut lines = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let mut end = None;
        let mut seen = 0u8;
        while i < bytes.len() {
            let kind = match bytes[i] {
                b'\n' => LF,
                b'\r' => CR,
                0 => NUL,
                _ => 0,
            };
            if seen & NUL != 0 || (kind == 0 && seen != 0) || (kind != 0 && seen & kind != 0) {
                break;
            }
            if kind != 0 {
                end.get_or_insert(i);
                seen |= kind;
            }
            i += 1;
        }
        let line = &bytes[start..end.unwrap_or(i)];
        if line.len() > MAX_LINE {
            return Err(lines);
        }
        lines.push(line);
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_are_systemds() {
        let lines = split(b"a\r\nb\n\nc\rd\n\re\0\nf").unwrap();
        assert_eq!(lines, [&b"a"[..], b"b", b"", b"c", b"d", b"e", b"", b"f"]);
        assert_eq!(split(b"x\n").unwrap(), [&b"x"[..]]);
        assert!(split(b"").unwrap().is_empty());
    }
}
