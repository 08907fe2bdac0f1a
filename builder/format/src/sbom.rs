//! Names airlock gives its own SBOM properties (CycloneDX component
//! properties, SPDX annotations), written by the builder and read by the
//! verifier and `airlock diff`.

/// A component's privileged path: `PATH: WHAT (MODE UID:GID, PACKAGE)`.
pub const PRIVILEGE_PROPERTY: &str = "airlock:privilege";
