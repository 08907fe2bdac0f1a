//! The .deb reader: debian-binary, control.tar.*, data.tar.*, in that order.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read};

use crate::ar::{ArError, ArReader};

/// Bounds on what one package may hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest control file (control, md5sums, conffiles, scripts…).
    pub max_control_file: u64,
    /// Most entries in data.tar.
    pub max_entries: u64,
    /// Largest single file in data.tar.
    pub max_file: u64,
    /// Largest total of data.tar's files.
    pub max_total: u64,
    /// Longest path.
    pub max_path: usize,
    /// Also bound data.tar's files by the control file's `Installed-Size`
    /// (see [`installed_size_bound`]).
    pub installed_size: bool,
}

/// What a package declaring `Installed-Size: kib` may unpack to: the
/// declared size plus a quarter plus 1 MiB. dpkg computes the field as the
/// sum of every file's size rounded up to 1 KiB (plus 1 KiB per other
/// entry), so a package built by dpkg never comes near this; the margin is
/// for packages that set the field by hand.
pub fn installed_size_bound(kib: u64) -> u64 {
    let declared = kib.saturating_mul(1024);
    declared
        .saturating_add(declared / 4)
        .saturating_add(1 << 20)
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_control_file: 16 << 20,
            max_entries: 1 << 20,
            max_file: 8 << 30,
            max_total: 64 << 30,
            max_path: 4096,
            installed_size: true,
        }
    }
}

/// A compression a member may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// None (`.tar`).
    None,
    /// gzip.
    Gzip,
    /// xz.
    Xz,
    /// zstd.
    Zstd,
}

impl Compression {
    fn of(member: &str, stem: &str) -> Option<Compression> {
        match member.strip_prefix(stem)? {
            "" => Some(Compression::None),
            ".gz" => Some(Compression::Gzip),
            ".xz" => Some(Compression::Xz),
            ".zst" => Some(Compression::Zstd),
            _ => None,
        }
    }

    fn decoder<'r>(self, reader: impl Read + 'r) -> io::Result<Box<dyn Read + 'r>> {
        Ok(match self {
            Compression::None => Box::new(reader),
            Compression::Gzip => Box::new(flate2::read::GzDecoder::new(reader)),
            Compression::Xz => Box::new(liblzma::read::XzDecoder::new(reader)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(
                BufReader::new(reader),
            )?),
        })
    }
}

/// What a data.tar entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Directory,
    /// A regular file of this size; its bytes follow in the reader.
    File {
        /// Size in bytes.
        size: u64,
    },
    /// A symbolic link, with its target exactly as written (checked by the
    /// tree when something is written through it).
    Symlink {
        /// The target.
        target: String,
    },
    /// A hard link to an earlier entry of the same package (normalized path).
    Hardlink {
        /// The earlier entry.
        target: String,
    },
    /// A character device.
    CharDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A block device.
    BlockDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
}

/// One data.tar entry, with a path that is relative, normalized (no `.`,
/// `..` or empty components) and UTF-8. The root directory itself is `""`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataEntry {
    /// Path below the image root, without a leading `/` or `./`.
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
    /// Permission bits, setuid/setgid/sticky included.
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
}

/// Why a package could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    /// The ar layer is broken.
    #[error(transparent)]
    Ar(#[from] ArError),
    /// Reading or decompressing failed.
    #[error("{member}: {source}")]
    Io {
        /// Which member.
        member: String,
        /// Why.
        source: io::Error,
    },
    /// The package's structure is wrong.
    #[error("{0}")]
    Format(String),
    /// A path that could leave the image root, or is not a path at all.
    #[error("data.tar: unsafe path {path:?}: {reason}")]
    UnsafePath {
        /// The path as written.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A bound was exceeded (a decompression bomb, or simply absurd).
    #[error("{what}: {actual} exceeds the limit of {limit}")]
    TooLarge {
        /// What was counted.
        what: String,
        /// The limit.
        limit: u64,
        /// What was seen.
        actual: u64,
    },
    /// data.tar holds more than the package's `Installed-Size` allows.
    #[error(
        "data.tar: its files total at least {actual} bytes (at {path}), but the package declares Installed-Size: {declared_kib} (KiB), which allows at most {limit} bytes"
    )]
    InstalledSizeExceeded {
        /// The control file's Installed-Size, in KiB.
        declared_kib: u64,
        /// The bound it sets.
        limit: u64,
        /// The total when the bound was crossed.
        actual: u64,
        /// The file that crossed it.
        path: String,
    },
    /// The entry callback refused an entry.
    #[error("{path}: {message}")]
    Rejected {
        /// The entry.
        path: String,
        /// Why.
        message: String,
    },
}

/// Reads a .deb: returns its control files (name → bytes: `control`,
/// `md5sums`, `conffiles`, maintainer scripts, which airlock never runs),
/// and streams every data.tar entry to `on_entry` with a reader over the
/// entry's bytes (empty for everything but files). `on_entry` may return an
/// error message to stop.
pub fn read_deb<R: Read>(
    reader: R,
    limits: &Limits,
    mut on_entry: impl FnMut(&DataEntry, &mut dyn Read) -> Result<(), String>,
) -> Result<BTreeMap<String, Vec<u8>>, DebError> {
    let mut ar = ArReader::new(reader)?;
    let format = |message: String| DebError::Format(message);

    let first = ar
        .next_member()?
        .ok_or_else(|| format("empty .deb".to_owned()))?;
    if first.name != "debian-binary" || first.size > 64 {
        return Err(format(format!(
            "expected debian-binary first, found {:?}",
            first.name
        )));
    }
    let mut version = String::new();
    ar.data()
        .read_to_string(&mut version)
        .map_err(|source| DebError::Io {
            member: first.name.clone(),
            source,
        })?;
    if !version.starts_with("2.") {
        return Err(format(format!(
            "unsupported .deb format version {:?}",
            version.trim()
        )));
    }

    let mut control_files = None;
    let mut declared_kib = None;
    let mut data_seen = false;
    while let Some(member) = ar.next_member()? {
        if member.name.starts_with('_') {
            continue; // signatures and other optional members
        }
        if let Some(compression) = Compression::of(&member.name, "control.tar") {
            if control_files.is_some() {
                return Err(format("two control.tar members".to_owned()));
            }
            control_files = Some(read_control(
                compression,
                &mut ar.data(),
                &member.name,
                limits,
            )?);
            declared_kib = installed_size(control_files.as_ref().expect("just set"))?;
        } else if let Some(compression) = Compression::of(&member.name, "data.tar") {
            if control_files.is_none() {
                return Err(format("data.tar comes before control.tar".to_owned()));
            }
            if data_seen {
                return Err(format("two data.tar members".to_owned()));
            }
            let declared = declared_kib.filter(|_| limits.installed_size);
            read_data(
                compression,
                &mut ar.data(),
                &member.name,
                limits,
                declared,
                &mut on_entry,
            )?;
            data_seen = true;
        } else {
            return Err(format(format!("unexpected member {:?}", member.name)));
        }
    }
    if !data_seen {
        return Err(format("no data.tar member".to_owned()));
    }
    let control_files = control_files.expect("data.tar was only accepted after control.tar");
    if !control_files.contains_key("control") {
        return Err(format("control.tar has no control file".to_owned()));
    }
    Ok(control_files)
}

fn read_control(
    compression: Compression,
    reader: &mut dyn Read,
    member: &str,
    limits: &Limits,
) -> Result<BTreeMap<String, Vec<u8>>, DebError> {
    let io_error = |source| DebError::Io {
        member: member.to_owned(),
        source,
    };
    let mut archive = tar::Archive::new(compression.decoder(reader).map_err(io_error)?);
    let mut files = BTreeMap::new();
    for entry in archive.entries().map_err(io_error)? {
        let mut entry = entry.map_err(io_error)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = normalize(&raw, limits)?;
        match entry.header().entry_type() {
            tar::EntryType::Directory if path.is_empty() => continue,
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            _ => {
                return Err(DebError::Format(format!(
                    "{member}: unexpected entry {raw:?}"
                )));
            }
        }
        if path.contains('/') {
            return Err(DebError::Format(format!("{member}: nested entry {raw:?}")));
        }
        let size = entry.size();
        if size > limits.max_control_file {
            return Err(DebError::TooLarge {
                what: format!("{member}: {path}"),
                limit: limits.max_control_file,
                actual: size,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        entry.read_to_end(&mut bytes).map_err(io_error)?;
        if files.insert(path.clone(), bytes).is_some() {
            return Err(DebError::Format(format!("{member}: {path} appears twice")));
        }
    }
    Ok(files)
}

/// The control file's `Installed-Size` (KiB), if it has one.
fn installed_size(control_files: &BTreeMap<String, Vec<u8>>) -> Result<Option<u64>, DebError> {
    let Some(control) = control_files.get("control") else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(control);
    for line in text.lines() {
        if line.is_empty() {
            break; // only the first paragraph
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("Installed-Size") {
            return value.trim().parse::<u64>().map(Some).map_err(|_| {
                DebError::Format(format!(
                    "control: Installed-Size {:?} is not a number",
                    value.trim()
                ))
            });
        }
    }
    Ok(None)
}

/// A link's target: present, UTF-8, not empty, no NUL, bounded.
fn link_target(target: Option<&[u8]>, raw: &str, limits: &Limits) -> Result<String, DebError> {
    let target = target.ok_or_else(|| DebError::Format(format!("{raw}: link without a target")))?;
    let target = std::str::from_utf8(target).map_err(|_| DebError::UnsafePath {
        path: raw.to_owned(),
        reason: "link target is not UTF-8",
    })?;
    if target.is_empty() || target.contains('\0') || target.len() > limits.max_path {
        return Err(DebError::UnsafePath {
            path: raw.to_owned(),
            reason: "empty or oversized link target",
        });
    }
    Ok(target.to_owned())
}

/// Adds a regular file of `size` bytes to the running `total`, refusing a
/// file over the per-file limit, a total past what the package declared
/// (with slack), and a total over the limit.
fn count_file(
    size: u64,
    total: &mut u64,
    member: &str,
    path: &str,
    limits: &Limits,
    declared_kib: Option<u64>,
) -> Result<(), DebError> {
    if size > limits.max_file {
        return Err(DebError::TooLarge {
            what: format!("{member}: {path}"),
            limit: limits.max_file,
            actual: size,
        });
    }
    *total = total.saturating_add(size);
    if let Some(declared_kib) = declared_kib
        && *total > installed_size_bound(declared_kib)
        && installed_size_bound(declared_kib) < limits.max_total
    {
        return Err(DebError::InstalledSizeExceeded {
            declared_kib,
            limit: installed_size_bound(declared_kib),
            actual: *total,
            path: path.to_owned(),
        });
    }
    if *total > limits.max_total {
        return Err(DebError::TooLarge {
            what: format!("{member}: total size"),
            limit: limits.max_total,
            actual: *total,
        });
    }
    Ok(())
}

fn read_data(
    compression: Compression,
    reader: &mut dyn Read,
    member: &str,
    limits: &Limits,
    declared_kib: Option<u64>,
    on_entry: &mut dyn FnMut(&DataEntry, &mut dyn Read) -> Result<(), String>,
) -> Result<(), DebError> {
    let io_error = |source| DebError::Io {
        member: member.to_owned(),
        source,
    };
    let mut archive = tar::Archive::new(compression.decoder(reader).map_err(io_error)?);
    let mut count = 0u64;
    let mut total = 0u64;
    for entry in archive.entries().map_err(io_error)? {
        let mut entry = entry.map_err(io_error)?;
        count += 1;
        if count > limits.max_entries {
            return Err(DebError::TooLarge {
                what: format!("{member}: entries"),
                limit: limits.max_entries,
                actual: count,
            });
        }
        let raw = std::str::from_utf8(&entry.path_bytes())
            .map_err(|_| DebError::UnsafePath {
                path: String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
                reason: "not UTF-8",
            })?
            .to_owned();
        let path = normalize(&raw, limits)?;
        let header = entry.header();
        let mode = header.mode().map_err(io_error)?;
        let uid = header.uid().map_err(io_error)?;
        let gid = header.gid().map_err(io_error)?;
        let link = || link_target(entry.link_name_bytes().as_deref(), &raw, limits);
        let device = |header: &tar::Header| -> Result<(u32, u32), DebError> {
            let major = header.device_major().map_err(io_error)?.unwrap_or(0);
            let minor = header.device_minor().map_err(io_error)?.unwrap_or(0);
            Ok((major, minor))
        };
        let kind = match header.entry_type() {
            tar::EntryType::Directory => EntryKind::Directory,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                count_file(size, &mut total, member, &path, limits, declared_kib)?;
                EntryKind::File { size }
            }
            tar::EntryType::Symlink => EntryKind::Symlink { target: link()? },
            tar::EntryType::Link => {
                let target = link()?;
                EntryKind::Hardlink {
                    target: normalize(&target, limits)?,
                }
            }
            tar::EntryType::Char => {
                let (major, minor) = device(header)?;
                EntryKind::CharDevice { major, minor }
            }
            tar::EntryType::Block => {
                let (major, minor) = device(header)?;
                EntryKind::BlockDevice { major, minor }
            }
            tar::EntryType::Fifo => EntryKind::Fifo,
            other => {
                return Err(DebError::Format(format!(
                    "{raw}: unsupported entry type {other:?}"
                )));
            }
        };
        let data_entry = DataEntry {
            path,
            kind,
            mode,
            uid,
            gid,
        };
        on_entry(&data_entry, &mut entry).map_err(|message| DebError::Rejected {
            path: data_entry.path.clone(),
            message,
        })?;
        // Whatever the callback did not read is skipped by the tar reader.
    }
    Ok(())
}

/// Normalizes a tar path: strips one leading `./`, refuses absolute paths,
/// `..`, NUL, and overlong paths; drops `.` and empty components.
fn normalize(raw: &str, limits: &Limits) -> Result<String, DebError> {
    let unsafe_path = |reason| DebError::UnsafePath {
        path: raw.chars().take(256).collect(),
        reason,
    };
    if raw.len() > limits.max_path {
        return Err(unsafe_path("longer than the path limit"));
    }
    if raw.contains('\0') {
        return Err(unsafe_path("contains NUL"));
    }
    if raw.starts_with('/') {
        return Err(unsafe_path("absolute path"));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(unsafe_path("`..` component")),
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_accepts_debian_paths_and_refuses_escapes() {
        let limits = Limits::default();
        assert_eq!(normalize("./usr/bin/x", &limits).unwrap(), "usr/bin/x");
        assert_eq!(normalize("./", &limits).unwrap(), "");
        assert_eq!(normalize("usr//lib/./x/", &limits).unwrap(), "usr/lib/x");
        for bad in ["/etc/passwd", "./../etc/passwd", "usr/../../x", "a\0b"] {
            assert!(normalize(bad, &limits).is_err(), "{bad:?}");
        }
    }
}
