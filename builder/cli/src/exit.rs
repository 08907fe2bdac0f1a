//! Exit codes, documented in the README and `airlock --help`.

use std::process::ExitCode;

/// How `airlock` exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: success.
    Ok,
    /// 1: a verification or build failure: a signature, digest or size that
    /// does not match, an unsatisfiable request, a stale lock, missing inputs
    /// offline.
    Failure,
    /// 2: usage or I/O error: bad arguments, an invalid recipe, an unreadable
    /// file, an unreachable mirror.
    Usage,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(match exit {
            Exit::Ok => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
        })
    }
}

/// Marks an error as a verification failure (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

/// The exit code for an error: 1 when anything in its chain is a
/// verification failure, 2 otherwise.
pub fn classify(error: &anyhow::Error) -> Exit {
    let failure = error.chain().any(|cause| {
        cause.is::<Failure>()
            || cause
                .downcast_ref::<airlock_fetch::FetchError>()
                .is_some_and(airlock_fetch::FetchError::is_verification_failure)
            || cause
                .downcast_ref::<airlock_store::StoreError>()
                .is_some_and(airlock_store::StoreError::is_mismatch)
            || cause
                .downcast_ref::<airlock_image::BuildError>()
                .is_some_and(|e| match e {
                    airlock_image::BuildError::Io { .. } => false,
                    // The store's I/O (a full disk) is I/O; a mismatch is not.
                    airlock_image::BuildError::Store(store) => store.is_mismatch(),
                    _ => true,
                })
            || matches!(
                cause.downcast_ref::<airlock_recipe::LockError>(),
                Some(airlock_recipe::LockError::Stale { .. })
            )
    });
    if failure { Exit::Failure } else { Exit::Usage }
}
