//! What `echo` and `printf` print into a file: only what every shell
//! prints the same.

/// What `echo` prints: its arguments with spaces between them. A
/// backslash is refused: dash's echo reads escapes and bash's does not, and
/// a script may run under either.
pub(super) fn echo(args: &[&str]) -> Result<Vec<u8>, String> {
    let (newline, args) = match args {
        ["-n", rest @ ..] => (false, rest),
        _ => (true, args),
    };
    if args.iter().any(|a| a.contains('\\') || a.starts_with('-')) {
        return Err(
            "echo with a backslash or an option prints differently in dash and bash".to_owned(),
        );
    }
    let mut out = args.join(" ").into_bytes();
    if newline {
        out.push(b'\n');
    }
    Ok(out)
}

/// Appends `text` with its backslash escapes read; true at `\c` (print
/// nothing more).
fn escapes(text: &str, out: &mut Vec<u8>) -> Result<bool, String> {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buffer = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('\\') => out.push(b'\\'),
            Some('a') => out.push(7),
            Some('b') => out.push(8),
            Some('f') => out.push(12),
            Some('r') => out.push(b'\r'),
            Some('v') => out.push(11),
            Some('c') => return Ok(true),
            Some('0') => {
                let mut value = 0u32;
                for _ in 0..3 {
                    match chars.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            value = value * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.push(u8::try_from(value).map_err(|_| format!("escape \\0{value:o}"))?);
            }
            other => {
                return Err(format!(
                    "the escape \\{} is not one airlock reads",
                    other.map(String::from).unwrap_or_default()
                ));
            }
        }
    }
    Ok(false)
}

/// What `printf FORMAT ARGS…` prints, for `%s`, `%d` and `%%` with the
/// format reused while arguments remain.
pub(super) fn printf(format: &str, args: &[&str]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut args = args.iter();
    loop {
        let mut used = false;
        let mut rest = format;
        while let Some(at) = rest.find('%') {
            let mut text = Vec::new();
            escapes(&rest[..at], &mut text)?;
            out.extend(text);
            let spec = rest[at + 1..].chars().next();
            match spec {
                Some('%') => out.push(b'%'),
                Some('s') => {
                    used = true;
                    out.extend_from_slice(args.next().copied().unwrap_or("").as_bytes());
                }
                Some('d') => {
                    used = true;
                    let arg = args.next().copied().unwrap_or("0");
                    let number: i64 = arg.parse().map_err(|_| format!("printf %d of {arg:?}"))?;
                    out.extend_from_slice(number.to_string().as_bytes());
                }
                _ => return Err(format!("printf format {format:?} is not one airlock reads")),
            }
            rest = &rest[at + 2..];
        }
        escapes(rest, &mut out)?;
        if !used || args.len() == 0 {
            return Ok(out);
        }
    }
}
