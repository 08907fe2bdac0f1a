//! Step 1: the detached OpenPGP signatures over the exact bytes of
//! manifest.json, by at least the threshold of distinct pinned approvers;
//! only then is the manifest parsed.

use std::path::Path;

use crate::manifest::{MANIFEST, MAX_MANIFEST, Manifest, SIGNATURES};
use crate::read::read_bounded;
use crate::signatures::{self, Approvals};
use crate::{Rejection, Trust, VerifyError, io};

/// A manifest whose signatures counted.
pub(crate) struct Signed {
    pub manifest: Manifest,
    pub approvals: Approvals,
}

pub(crate) fn check(bundle: &Path, trust: &Trust, now: u64) -> Result<Signed, VerifyError> {
    let manifest_bytes = read_or(bundle, MANIFEST, MAX_MANIFEST, Rejection::NoManifest)?;
    let signature_bytes = read_or(
        bundle,
        SIGNATURES,
        signatures::MAX_SIGNATURES_FILE,
        Rejection::Unsigned,
    )?;
    let sigs = signatures::read_signatures(&signature_bytes).map_err(|e| match e {
        signatures::SignatureFileError::Malformed(reason) => Rejection::BadSignatureFile { reason },
        signatures::SignatureFileError::ExtraData { offset, what } => {
            Rejection::SignatureFileExtraData { offset, what }
        }
    })?;
    let clock = std::time::UNIX_EPOCH + std::time::Duration::from_secs(now);
    let approvals = signatures::check(
        &manifest_bytes,
        &sigs,
        &trust.release,
        trust.threshold,
        clock,
    )?;
    let manifest = Manifest::parse(&manifest_bytes).map_err(|e| Rejection::MalformedManifest {
        reason: e.to_string(),
    })?;
    Ok(Signed {
        manifest,
        approvals,
    })
}

/// The bundle's file `name`, or `missing` when there is none.
fn read_or(
    bundle: &Path,
    name: &str,
    limit: u64,
    missing: Rejection,
) -> Result<Vec<u8>, VerifyError> {
    let path = bundle.join(name);
    match read_bounded(&path, limit) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(missing.into()),
        Err(e) => Err(io(path.display())(e)),
    }
}
