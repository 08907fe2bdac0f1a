//! What differs between two builds of an image: the first differing offset
//! of two files, and the first differing paths of two root file systems
//! (as tar streams), by content, kind, mode, owner or link target: the top
//! level of what diffoscope would show.

use std::collections::BTreeMap;
use std::io::Read;

use sha2::Digest;

/// The offset of the first byte where `a` and `b` differ (one ending
/// before the other counts), or `None` when they are equal.
pub fn first_difference(mut a: impl Read, mut b: impl Read) -> std::io::Result<Option<u64>> {
    let (mut x, mut y) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let mut offset = 0u64;
    loop {
        let n = fill(&mut a, &mut x)?;
        let m = fill(&mut b, &mut y)?;
        if let Some(i) = x[..n.min(m)]
            .iter()
            .zip(&y[..n.min(m)])
            .position(|(p, q)| p != q)
        {
            return Ok(Some(offset + i as u64));
        }
        if n != m {
            return Ok(Some(offset + n.min(m) as u64));
        }
        if n == 0 {
            return Ok(None);
        }
        offset += n as u64;
    }
}

/// Reads until `buffer` is full or the input ends.
fn fill(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buffer.len() {
        match reader.read(&mut buffer[done..])? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

/// One path of a root file system, as its tar entry says.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Summary {
    kind: String,
    mode: u32,
    owner: (u64, u64),
    /// sha256 of a regular file's bytes.
    sha256: Option<String>,
    link: Option<String>,
}

/// Every entry of a zstd-compressed tar, by path.
fn summarize(reader: impl Read) -> Result<BTreeMap<String, Summary>, String> {
    let decoder = zstd::stream::read::Decoder::new(reader).map_err(|e| e.to_string())?;
    let mut archive = tar::Archive::new(decoder);
    let mut out = BTreeMap::new();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let header = entry.header();
        let kind = format!("{:?}", header.entry_type());
        let mode = header.mode().map_err(|e| e.to_string())?;
        let owner = (
            header.uid().map_err(|e| e.to_string())?,
            header.gid().map_err(|e| e.to_string())?,
        );
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let sha256 = if entry.header().entry_type().is_file() {
            let mut hasher = sha2::Sha256::new();
            let mut buffer = vec![0u8; 1 << 16];
            loop {
                let n = entry
                    .read(&mut buffer)
                    .map_err(|e| format!("{path}: {e}"))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buffer[..n]);
            }
            Some(hex::encode(hasher.finalize()))
        } else {
            None
        };
        out.insert(
            path,
            Summary {
                kind,
                mode,
                owner,
                sha256,
                link,
            },
        );
    }
    Ok(out)
}

/// The first `limit` paths whose entries differ between the `expected`
/// and the `actual` root file system, each with what differs.
pub fn tar_differences(
    expected: impl Read,
    actual: impl Read,
    limit: usize,
) -> Result<Vec<String>, String> {
    let (a, b) = (summarize(expected)?, summarize(actual)?);
    let mut paths: Vec<&String> = a.keys().chain(b.keys()).collect();
    paths.sort();
    paths.dedup();
    let mut out = Vec::new();
    for path in paths {
        if out.len() == limit {
            break;
        }
        let line = match (a.get(path), b.get(path)) {
            (Some(_), None) => format!("/{path}: only in the signed image"),
            (None, Some(_)) => format!("/{path}: only in the rebuild"),
            (Some(x), Some(y)) if x == y => continue,
            (Some(x), Some(y)) => format!("/{path}: {}", what_differs(x, y)),
            (None, None) => unreachable!("a path of one of them"),
        };
        out.push(line);
    }
    Ok(out)
}

fn what_differs(x: &Summary, y: &Summary) -> String {
    let mut parts = Vec::new();
    if x.kind != y.kind {
        parts.push(format!("kind {} vs {}", x.kind, y.kind));
    }
    if x.sha256 != y.sha256 {
        parts.push(format!(
            "content sha256 {} vs {}",
            x.sha256.as_deref().unwrap_or("-"),
            y.sha256.as_deref().unwrap_or("-")
        ));
    }
    if x.mode != y.mode {
        parts.push(format!("mode {:04o} vs {:04o}", x.mode, y.mode));
    }
    if x.owner != y.owner {
        parts.push(format!(
            "owner {}:{} vs {}:{}",
            x.owner.0, x.owner.1, y.owner.0, y.owner.1
        ));
    }
    if x.link != y.link {
        parts.push(format!(
            "link target {} vs {}",
            x.link.as_deref().unwrap_or("-"),
            y.link.as_deref().unwrap_or("-")
        ));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_differing_offset_is_found_across_buffers() {
        let a = vec![7u8; 200_000];
        let mut b = a.clone();
        assert_eq!(first_difference(&a[..], &b[..]).unwrap(), None);
        b[131_073] = 8;
        assert_eq!(first_difference(&a[..], &b[..]).unwrap(), Some(131_073));
        assert_eq!(first_difference(&a[..], &a[..10]).unwrap(), Some(10));
    }

    fn tar(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, mode, data) in entries {
            let mut header = tar::Header::new_ustar();
            header.set_mode(*mode);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_size(data.len() as u64);
            builder.append_data(&mut header, path, *data).unwrap();
        }
        zstd::encode_all(&builder.into_inner().unwrap()[..], 3).unwrap()
    }

    #[test]
    fn differing_paths_name_content_mode_and_presence() {
        let signed = tar(&[
            ("etc/motd", 0o644, b"hi"),
            ("usr/bin/x", 0o755, b"x"),
            ("gone", 0o644, b""),
        ]);
        let rebuilt = tar(&[
            ("etc/motd", 0o644, b"ho"),
            ("usr/bin/x", 0o4755, b"x"),
            ("new", 0o644, b""),
        ]);
        let lines = tar_differences(&signed[..], &rebuilt[..], 10).unwrap();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(
            lines[0].starts_with("/etc/motd: content sha256 "),
            "{lines:?}"
        );
        assert_eq!(lines[1], "/gone: only in the signed image");
        assert_eq!(lines[2], "/new: only in the rebuild");
        assert_eq!(lines[3], "/usr/bin/x: mode 0755 vs 4755");
        assert_eq!(
            tar_differences(&signed[..], &signed[..], 10).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            tar_differences(&signed[..], &rebuilt[..], 1).unwrap().len(),
            1
        );
    }
}
