//! Step 2: rollback and freeze. The version must be newer than the one
//! the host recorded, and `expires` later than the latest time the host
//! has seen (its clock, or the state's record, whichever is later).

use std::path::Path;

use crate::manifest::Manifest;
use crate::{Rejection, VerifyError, io, state, time};

/// Returns the latest time known, which the consumer records.
pub(crate) fn check(
    manifest: &Manifest,
    state_dir: Option<&Path>,
    now: u64,
) -> Result<u64, VerifyError> {
    let record = match state_dir {
        Some(dir) => state::read(dir, &manifest.name).map_err(io(dir.display()))?,
        None => None,
    };
    if let Some(record) = &record
        && manifest.version <= record.version
    {
        return Err(Rejection::Rollback {
            name: manifest.name.clone(),
            version: manifest.version,
            recorded: record.version,
        }
        .into());
    }
    let seen = now.max(record.as_ref().map_or(0, |r| r.seen));
    let expires = time::parse(&manifest.expires).expect("checked by Manifest::parse");
    if expires <= seen {
        return Err(Rejection::Expired {
            expires: manifest.expires.clone(),
            seen: time::format(seen),
        }
        .into());
    }
    Ok(seen)
}
