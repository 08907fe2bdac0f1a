//! `airlock sign`: an approver's signature added to a bundle, the signature
//! file replaced whole (never a partial file in the bundle).

use std::fs;
use std::io::Write;
use std::path::Path;

use airlock_verify::manifest::{MANIFEST, Manifest, SIGNATURES};

use super::invalid;
use super::tar::{unpack_tar, write_tar};
use crate::{ReleaseError, io};

/// Adds an approver's signature to a bundle (directory or tar).
pub fn sign(bundle: &Path, key: &Path, password: Option<&[u8]>) -> Result<String, ReleaseError> {
    if bundle.is_dir() {
        let manifest =
            fs::read(bundle.join(MANIFEST)).map_err(io(bundle.join(MANIFEST).display()))?;
        Manifest::parse(&manifest).map_err(|e| invalid(format!("{}: {e}", bundle.display())))?;
        let existing = match fs::read(bundle.join(SIGNATURES)) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(bundle.join(SIGNATURES).display())(e)),
        };
        let (armored, fingerprint) =
            crate::keys::sign_manifest(&manifest, existing.as_deref(), key, password)?;
        // Written beside the bundle, not in it: a signer killed here must
        // not leave a file in the bundle, which the verifier would reject.
        let parent = bundle
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let (work, _stale) = airlock_store::workdir::claim(parent, ".airlock-sign-")
            .map_err(io(parent.display()))?;
        let target = bundle.join(SIGNATURES);
        let write_from = |dir: &Path| -> Result<Result<(), tempfile::PersistError>, ReleaseError> {
            let mut tmp = tempfile::Builder::new()
                .prefix(".manifest.json.asc.")
                .tempfile_in(dir)
                .map_err(io(dir.display()))?;
            tmp.write_all(&armored).map_err(io(dir.display()))?;
            // Readable like every other file of the bundle (a temporary
            // file starts at 0600, which reviewers' tools could not read).
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(fs::Permissions::from_mode(0o644))
                .map_err(io(dir.display()))?;
            tmp.as_file().sync_all().map_err(io(dir.display()))?;
            Ok(tmp.persist(&target).map(drop))
        };
        match write_from(work.path())? {
            Ok(()) => {}
            // The bundle is a mount point of its own (the medium itself):
            // write beside the signature file instead.
            Err(e) if e.error.kind() == std::io::ErrorKind::CrossesDevices => {
                write_from(bundle)?.map_err(|e| io(target.display())(e.error))?;
            }
            Err(e) => return Err(io(target.display())(e.error)),
        }
        return Ok(fingerprint);
    }
    // A tar: rewrite it with the new signatures second.
    let parent = bundle
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (work, _stale) =
        airlock_store::workdir::claim(parent, ".airlock-sign-").map_err(io(parent.display()))?;
    let unpacked = work.path().join("bundle");
    fs::create_dir(&unpacked).map_err(io(unpacked.display()))?;
    unpack_tar(bundle, &unpacked)?;
    let fingerprint = sign(&unpacked, key, password)?;
    let epoch = Manifest::parse(&fs::read(unpacked.join(MANIFEST)).map_err(io(MANIFEST))?)
        .map_err(|e| invalid(e.to_string()))?
        .epoch;
    let partial = work.path().join("bundle.tar");
    write_tar(&unpacked, &partial, epoch)?;
    fs::rename(&partial, bundle).map_err(io(bundle.display()))?;
    Ok(fingerprint)
}
