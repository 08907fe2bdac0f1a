//! What the verifier reads from inside the image: the dpkg database and the
//! model files, streamed out of rootfs.tar.zst (whose chunks were already
//! verified), never unpacked to disk.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

/// What was found in the image.
#[derive(Debug, Default)]
pub struct Contents {
    /// Installed packages: name → version.
    pub packages: BTreeMap<String, String>,
    /// sha256 of each wanted file that exists.
    pub files: BTreeMap<String, String>,
}

/// The largest dpkg status file read.
const MAX_STATUS: u64 = 64 << 20;

/// Reads the dpkg status and hashes `wanted` (absolute image paths) from a
/// zstd-compressed tar stream.
pub fn scan(reader: impl Read, wanted: &BTreeSet<String>) -> Result<Contents, String> {
    let decoder = zstd::stream::read::Decoder::new(reader).map_err(|e| e.to_string())?;
    let mut archive = tar::Archive::new(decoder);
    let mut contents = Contents::default();
    let mut status = None;
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| format!("rootfs.tar.zst: {e}"))?;
        let raw = entry
            .path()
            .map_err(|e| e.to_string())?
            .display()
            .to_string();
        let path = format!("/{}", raw.trim_start_matches("./").trim_start_matches('/'));
        if !entry.header().entry_type().is_file() {
            continue;
        }
        if path == "/var/lib/dpkg/status" {
            if entry.size() > MAX_STATUS {
                return Err("the dpkg status file is too large".to_owned());
            }
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(|e| format!("/var/lib/dpkg/status: {e}"))?;
            status = Some(text);
        } else if wanted.contains(&path) {
            let (digest, _) =
                crate::sha256_reader(&mut entry, &|_| {}).map_err(|e| format!("{path}: {e}"))?;
            contents.files.insert(path, digest);
        }
    }
    let status = status.ok_or("the image has no /var/lib/dpkg/status")?;
    contents.packages = installed(&status);
    Ok(contents)
}

/// Installed packages in a dpkg status file: name → version.
pub fn installed(status: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for paragraph in status.split("\n\n") {
        let mut name = None;
        let mut version = None;
        let mut state = None;
        for line in paragraph.lines() {
            if let Some((key, value)) = line.split_once(':') {
                match key {
                    "Package" => name = Some(value.trim()),
                    "Version" => version = Some(value.trim()),
                    "Status" => state = Some(value.trim()),
                    _ => {}
                }
            }
        }
        if let (Some(name), Some(version), Some(state)) = (name, version, state)
            && state.ends_with(" installed")
        {
            out.insert(name.to_owned(), version.to_owned());
        }
    }
    out
}
