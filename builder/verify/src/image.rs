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
    /// Every privileged path, as the tar's own headers say.
    pub privileges: BTreeMap<String, Privilege>,
}

/// What makes one path privileged, read from its tar header and PAX
/// records (never from what the SBOM or the report claims).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Privilege {
    /// Sorted: `capabilities`, `device`, `setgid`, `setuid`.
    pub kinds: Vec<&'static str>,
    /// Permission bits.
    pub mode: u32,
    /// `c 1,1` or `b 8,0` for a device node.
    pub device: Option<String>,
}

/// The PAX record tar writers use for a file's capabilities.
const CAPABILITY_RECORD: &str = "SCHILY.xattr.security.capability";

fn privilege_of<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Option<Privilege>, String> {
    let header = entry.header();
    let mode = header.mode().map_err(|e| e.to_string())?;
    let kind = header.entry_type();
    let mut privilege = Privilege {
        mode,
        ..Privilege::default()
    };
    if kind.is_character_special() || kind.is_block_special() {
        let major = header.device_major().ok().flatten().unwrap_or(0);
        let minor = header.device_minor().ok().flatten().unwrap_or(0);
        let letter = if kind.is_block_special() { 'b' } else { 'c' };
        privilege.device = Some(format!("{letter} {major},{minor}"));
        privilege.kinds.push("device");
    }
    if kind.is_file() {
        if mode & 0o4000 != 0 {
            privilege.kinds.push("setuid");
        }
        if mode & 0o2000 != 0 {
            privilege.kinds.push("setgid");
        }
    }
    if let Some(extensions) = entry.pax_extensions().map_err(|e| e.to_string())? {
        for extension in extensions {
            let extension = extension.map_err(|e| e.to_string())?;
            if extension.key() == Ok(CAPABILITY_RECORD) {
                privilege.kinds.push("capabilities");
            }
        }
    }
    privilege.kinds.sort_unstable();
    Ok((!privilege.kinds.is_empty()).then_some(privilege))
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
        if let Some(privilege) = privilege_of(&mut entry).map_err(|e| format!("{path}: {e}"))? {
            contents.privileges.insert(path.clone(), privilege);
        }
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
