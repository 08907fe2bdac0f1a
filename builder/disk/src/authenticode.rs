//! Checking that a signed PE image (systemd-boot or a UKI after `airlock
//! sign-boot`) is its unsigned self with an Authenticode signature added,
//! and nothing else changed: what `sbattach --remove` would show, done
//! natively and streamed, for the far side that has no sbsigntool.
//!
//! Signing changes exactly what the Authenticode hash leaves out: the
//! header's checksum, the certificate table's entry in the data
//! directories, and the end of the file, where the signature goes after
//! zero padding to an 8-byte boundary. Every other byte must be equal,
//! and the signed file must end with its certificate table.

use std::io::{self, Read};

use crate::DiskError;

/// The largest PE header read.
const MAX_HEADERS: u64 = 64 << 10;

/// Where the fields signing changes are, from the image's headers.
#[derive(Debug)]
struct Fields {
    /// Offset of the header's checksum (4 bytes).
    checksum: u64,
    /// Offset of the certificate table's data-directory entry (8 bytes).
    directory: u64,
    /// The certificate table as that entry gives it: (file offset, size).
    table: (u64, u64),
}

fn refuse(why: impl Into<String>) -> DiskError {
    DiskError::Signed(why.into())
}

fn read_fields(headers: &[u8], what: &str) -> Result<Fields, DiskError> {
    let u16_at = |at: usize| {
        headers
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or_else(|| refuse(format!("{what}: its headers end before offset {at}")))
    };
    let u32_at = |at: usize| {
        headers
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| refuse(format!("{what}: its headers end before offset {at}")))
    };
    if headers.get(..2) != Some(b"MZ") {
        return Err(refuse(format!("{what}: not a PE image")));
    }
    let pe = u32_at(0x3C)? as usize;
    if headers.get(pe..pe.saturating_add(4)) != Some(b"PE\0\0") {
        return Err(refuse(format!("{what}: no PE signature")));
    }
    let optional = pe + 4 + 20;
    if u16_at(optional)? != 0x20B {
        return Err(refuse(format!("{what}: not a PE32+ image")));
    }
    if u32_at(optional + 108)? < 5 {
        return Err(refuse(format!("{what}: it has no certificate table entry")));
    }
    let directory = optional + 112 + 4 * 8;
    Ok(Fields {
        checksum: (optional + 64) as u64,
        directory: directory as u64,
        table: (
            u64::from(u32_at(directory)?),
            u64::from(u32_at(directory + 4)?),
        ),
    })
}

/// The first bytes of a stream, up to its headers' limit.
fn head(reader: &mut impl Read, len: u64) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0; len.min(MAX_HEADERS) as usize];
    reader.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// Checks that `signed` (`signed_len` bytes) is `unsigned` (`unsigned_len`
/// bytes) with a signature added and nothing else changed; the error names
/// the first difference. Both are read once, front to back.
pub fn check_signed(
    mut signed: impl Read,
    signed_len: u64,
    mut unsigned: impl Read,
    unsigned_len: u64,
) -> Result<(), DiskError> {
    let (signed_head, unsigned_head) = (
        head(&mut signed, signed_len)?,
        head(&mut unsigned, unsigned_len)?,
    );
    let fields = read_fields(&signed_head, "the signed image")?;
    let plain = read_fields(&unsigned_head, "the unsigned image")?;
    if plain.table != (0, 0) {
        return Err(refuse("the unsigned image has a signature"));
    }
    let (table_at, table_len) = fields.table;
    if table_len == 0 {
        return Err(refuse("the signed image has no signature"));
    }
    if table_at.checked_add(table_len) != Some(signed_len) {
        return Err(refuse(format!(
            "the signed image's certificate table ({table_len} bytes at {table_at}) does not end the file ({signed_len} bytes)"
        )));
    }
    if table_at < unsigned_len || table_at - unsigned_len >= 8 || table_at % 8 != 0 {
        return Err(refuse(format!(
            "the signature starts at {table_at}, not at the unsigned image's end ({unsigned_len}) aligned to 8 bytes"
        )));
    }
    if (fields.checksum, fields.directory) != (plain.checksum, plain.directory) {
        return Err(refuse("the two images' headers differ in layout"));
    }
    let ignored = |at: u64| {
        (fields.checksum..fields.checksum + 4).contains(&at)
            || (fields.directory..fields.directory + 8).contains(&at)
    };
    let differs = |at: u64, a: &[u8], b: &[u8]| {
        (0..a.len().min(b.len()))
            .find(|&i| a[i] != b[i] && !ignored(at + i as u64))
            .map(|i| {
                refuse(format!(
                    "the signed image differs from the unsigned one at byte {}",
                    at + i as u64
                ))
            })
    };
    // The headers first (signed_head is at least as long: table_at is at
    // or past the unsigned image's end), then the rest in step.
    if let Some(error) = differs(0, &signed_head, &unsigned_head) {
        return Err(error);
    }
    let mut at = unsigned_head.len() as u64;
    let mut signed = io::BufReader::with_capacity(
        1 << 20,
        io::Cursor::new(signed_head[at as usize..].to_vec()).chain(signed),
    )
    .take(table_at - at);
    let mut unsigned = io::BufReader::with_capacity(1 << 20, unsigned);
    let (mut a, mut b) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    while at < unsigned_len {
        let n = (unsigned_len - at).min(a.len() as u64) as usize;
        signed.read_exact(&mut a[..n])?;
        unsigned.read_exact(&mut b[..n])?;
        if let Some(error) = differs(at, &a[..n], &b[..n]) {
            return Err(error);
        }
        at += n as u64;
    }
    let mut padding = Vec::new();
    signed.read_to_end(&mut padding)?;
    if padding.iter().any(|&byte| byte != 0) {
        return Err(refuse(
            "the signed image has bytes other than zero padding before its signature",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A minimal PE32+ header with room for the data directories, `len`
    /// bytes long.
    fn image(len: usize) -> Vec<u8> {
        let mut bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8 + 1).collect();
        bytes[..2].copy_from_slice(b"MZ");
        bytes[0x3C..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        bytes[0x80..0x84].copy_from_slice(b"PE\0\0");
        let optional = 0x80 + 24;
        bytes[optional..optional + 2].copy_from_slice(&0x20Bu16.to_le_bytes());
        bytes[optional + 108..optional + 112].copy_from_slice(&16u32.to_le_bytes());
        bytes[optional + 144..optional + 152].fill(0);
        bytes
    }

    /// What sbsign does: pad to 8, append the table, point at it, change
    /// the checksum.
    fn signed(unsigned: &[u8], signature: &[u8]) -> Vec<u8> {
        let mut out = unsigned.to_vec();
        out.resize(unsigned.len().next_multiple_of(8), 0);
        let at = out.len() as u32;
        out.extend_from_slice(signature);
        let optional = 0x80 + 24;
        out[optional + 144..optional + 148].copy_from_slice(&at.to_le_bytes());
        out[optional + 148..optional + 152]
            .copy_from_slice(&(signature.len() as u32).to_le_bytes());
        out[optional + 64..optional + 68].copy_from_slice(&[9, 9, 9, 9]);
        out
    }

    fn check(signed: &[u8], unsigned: &[u8]) -> Result<(), String> {
        check_signed(
            Cursor::new(signed),
            signed.len() as u64,
            Cursor::new(unsigned),
            unsigned.len() as u64,
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn a_signature_added_with_padding_is_accepted() {
        for len in [4096, 4099, 200_003] {
            let unsigned = image(len);
            check(&signed(&unsigned, &[0x30; 1234]), &unsigned).unwrap();
        }
    }

    #[test]
    fn any_other_change_is_named() {
        let unsigned = image(100_001);
        let mut changed = signed(&unsigned, &[0x30; 64]);
        changed[70_000] ^= 1;
        assert_eq!(
            check(&changed, &unsigned).unwrap_err(),
            "signed image: the signed image differs from the unsigned one at byte 70000"
        );
        let mut padded = signed(&unsigned, &[0x30; 64]);
        padded[100_002] = 1;
        assert!(
            check(&padded, &unsigned)
                .unwrap_err()
                .contains("zero padding")
        );
        let mut moved = signed(&unsigned, &[0x30; 64]);
        moved.extend_from_slice(&[0; 8]);
        assert!(
            check(&moved, &unsigned)
                .unwrap_err()
                .contains("does not end the file")
        );
        assert_eq!(
            check(&unsigned, &unsigned).unwrap_err(),
            "signed image: the signed image has no signature"
        );
        let other = image(100_009);
        assert!(
            check(&signed(&other, &[1; 8]), &unsigned)
                .unwrap_err()
                .contains("aligned")
        );
        assert!(check(b"MZ", &unsigned).unwrap_err().contains("headers end"));
    }
}
