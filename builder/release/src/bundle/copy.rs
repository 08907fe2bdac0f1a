//! Copying the planned files into the bundle (a large file split into
//! chunk files on the way), then describing each as the manifest lists it:
//! size, sha256, and the digest of every chunk.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::Path;

use airlock_verify::manifest::{self, DEFAULT_CHUNK, FileEntry};
use rayon::prelude::*;
use sha2::Digest;

use super::invalid;
use super::plan::Planned;
use crate::{ReleaseError, io};

/// The chunk size the manifest lists `plan` with: `split_at` for a split
/// file, the default hashing chunk otherwise.
fn chunk_of(plan: &Planned, split_at: Option<u64>) -> u64 {
    if plan.split {
        split_at.expect("split needs a size")
    } else {
        DEFAULT_CHUNK
    }
}

/// Copies every planned file into `staging`, in parallel.
pub(super) fn copy_all(
    planned: &[Planned],
    staging: &Path,
    split_at: Option<u64>,
) -> Result<(), ReleaseError> {
    planned
        .par_iter()
        .try_for_each(|plan| copy(plan, staging, chunk_of(plan, split_at)))
}

fn copy(plan: &Planned, staging: &Path, chunk: u64) -> Result<(), ReleaseError> {
    let target = staging.join(&plan.path);
    if let Some(dir) = target.parent() {
        fs::create_dir_all(dir).map_err(io(dir.display()))?;
    }
    if !plan.split {
        // Name both ends: a full medium is the target's problem.
        fs::copy(&plan.source, &target).map_err(io(format!(
            "copying {} to {}",
            plan.source.display(),
            target.display()
        )))?;
        return Ok(());
    }
    let size = fs::metadata(&plan.source)
        .map_err(io(plan.source.display()))?
        .len();
    let mut reader = BufReader::with_capacity(
        1 << 20,
        File::open(&plan.source).map_err(io(plan.source.display()))?,
    );
    for index in 0..size.div_ceil(chunk) {
        let part = staging.join(manifest::chunk_path(&plan.path, index as usize));
        let mut out = File::create(&part).map_err(io(part.display()))?;
        let want = chunk.min(size - index * chunk);
        let copied =
            std::io::copy(&mut (&mut reader).take(want), &mut out).map_err(io(part.display()))?;
        if copied != want {
            return Err(invalid(format!(
                "{}: changed while being copied",
                plan.source.display()
            )));
        }
    }
    Ok(())
}

/// Every planned file as the manifest lists it, hashed in parallel from the
/// bundle's copy.
pub(super) fn describe_all(
    planned: &[Planned],
    staging: &Path,
    split_at: Option<u64>,
) -> Result<Vec<FileEntry>, ReleaseError> {
    planned
        .par_iter()
        .map(|plan| describe(staging, plan, chunk_of(plan, split_at)))
        .collect()
}

pub(super) fn describe(
    staging: &Path,
    plan: &Planned,
    chunk: u64,
) -> Result<FileEntry, ReleaseError> {
    let mut entry = FileEntry {
        path: plan.path.clone(),
        size: 0,
        sha256: String::new(),
        chunk_size: None,
        chunks: Vec::new(),
        split: plan.split,
    };
    let mut whole = sha2::Sha256::new();
    let mut add = |reader: &mut dyn Read, size: u64, what: &Path| -> Result<String, ReleaseError> {
        let mut buffer = vec![0u8; 1 << 20];
        let mut part = sha2::Sha256::new();
        let mut left = size;
        while left > 0 {
            let want = buffer.len().min(left as usize);
            let n = reader
                .read(&mut buffer[..want])
                .map_err(io(what.display()))?;
            if n == 0 {
                return Err(invalid(format!(
                    "{}: shorter than expected",
                    what.display()
                )));
            }
            part.update(&buffer[..n]);
            whole.update(&buffer[..n]);
            left -= n as u64;
        }
        Ok(hex::encode(part.finalize()))
    };
    if plan.split {
        let mut index = 0;
        loop {
            let part = staging.join(manifest::chunk_path(&plan.path, index));
            let Ok(meta) = fs::metadata(&part) else { break };
            let mut file = File::open(&part).map_err(io(part.display()))?;
            entry.chunks.push(add(&mut file, meta.len(), &part)?);
            entry.size += meta.len();
            index += 1;
        }
        entry.chunk_size = Some(chunk);
    } else {
        let path = staging.join(&plan.path);
        let size = fs::metadata(&path).map_err(io(path.display()))?.len();
        let mut file =
            BufReader::with_capacity(1 << 20, File::open(&path).map_err(io(path.display()))?);
        if size > chunk {
            let mut offset = 0;
            while offset < size {
                let want = chunk.min(size - offset);
                entry.chunks.push(add(&mut file, want, &path)?);
                offset += want;
            }
            entry.chunk_size = Some(chunk);
        } else {
            add(&mut file, size, &path)?;
        }
        entry.size = size;
    }
    entry.sha256 = hex::encode(whole.finalize());
    Ok(entry)
}
