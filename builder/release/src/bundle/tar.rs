//! The tar form of a bundle: deterministic (sorted, fixed owners, modes and
//! times, the manifest and its signatures first), and unpacked only through
//! the verifier's strict reader.

use std::fs::{self, File};
use std::io::{BufReader, Write};
use std::path::Path;

use airlock_verify::manifest::{MANIFEST, SIGNATURES};

use super::{files_below, invalid};
use crate::{ReleaseError, io};

/// A deterministic tar of `dir`: manifest.json (and its signatures) first,
/// then every file sorted, owned by 0:0, mode 0644 (directories 0755), time
/// `epoch`.
pub fn write_tar(dir: &Path, to: &Path, epoch: u64) -> Result<(), ReleaseError> {
    let file = File::create(to).map_err(io(to.display()))?;
    let mut builder = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, file));
    let mut names = files_below(dir)?;
    names.sort_by_key(|n| (n != MANIFEST, n != SIGNATURES, n.clone()));
    let mut dirs_done = std::collections::BTreeSet::new();
    for name in names {
        let mut parent = String::new();
        for part in name
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, d)| d)
        {
            parent = if parent.is_empty() {
                (*part).to_owned()
            } else {
                format!("{parent}/{part}")
            };
            if dirs_done.insert(parent.clone()) {
                let mut header = header(epoch, 0o755, tar::EntryType::Directory, 0);
                builder
                    .append_data(&mut header, format!("{parent}/"), std::io::empty())
                    .map_err(io(to.display()))?;
            }
        }
        let path = dir.join(&name);
        let size = fs::metadata(&path).map_err(io(path.display()))?.len();
        let mut header = header(epoch, 0o644, tar::EntryType::Regular, size);
        let file = File::open(&path).map_err(io(path.display()))?;
        builder
            .append_data(&mut header, &name, BufReader::with_capacity(1 << 20, file))
            .map_err(io(to.display()))?;
    }
    let mut inner = builder.into_inner().map_err(io(to.display()))?;
    inner.flush().map_err(io(to.display()))?;
    inner.get_ref().sync_all().map_err(io(to.display()))
}

fn header(epoch: u64, mode: u32, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(epoch);
    header.set_size(size);
    header
}

/// Unpacks a tar bundle into `to` (a new, empty directory), accepting only
/// regular files and directories with bundle paths.
pub fn unpack_tar(tar_path: &Path, to: &Path) -> Result<(), ReleaseError> {
    let file = File::open(tar_path).map_err(io(tar_path.display()))?;
    airlock_verify::tarball::unpack(BufReader::with_capacity(1 << 20, file), to)
        .map_err(|e| invalid(format!("{}: {e}", tar_path.display())))
}
