//! `manifest.json`: what a bundle holds, in canonical JSON (RFC 8785 for
//! the values airlock writes: objects with sorted keys, no whitespace,
//! integers and strings only), so the signed bytes depend only on the
//! content.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// The manifest's file name in a bundle.
pub const MANIFEST: &str = airlock_format::names::bundle::MANIFEST;
/// The detached OpenPGP signatures over [`MANIFEST`].
pub const SIGNATURES: &str = airlock_format::names::bundle::SIGNATURES;
/// The manifest format this airlock writes and reads.
pub const MANIFEST_SCHEMA: u32 = 1;
/// The largest manifest the verifier reads.
pub const MAX_MANIFEST: u64 = 64 << 20;
/// Chunk size for chunk digests when files are not split.
pub const DEFAULT_CHUNK: u64 = 64 << 20;

/// Bundle paths with a fixed meaning (`airlock_format::names::bundle`).
pub mod paths {
    pub use airlock_format::names::bundle::{
        CYCLONEDX, LOCK, OSTREE_REPO, PROVENANCE, RECIPE, REPORT, ROOTFS_TAR, SPDX, SPDX3,
        artifact, is_subject,
    };
}

/// The manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_SCHEMA`].
    pub schema: u32,
    /// Image name.
    pub name: String,
    /// Release number; a host accepts only greater ones.
    pub version: u64,
    /// SOURCE_DATE_EPOCH of the build.
    pub epoch: u64,
    /// After this time (RFC 3339 UTC) hosts refuse the bundle.
    pub expires: String,
    /// The airlock that built the image.
    pub airlock: String,
    /// The build's inputs digest.
    pub inputs: String,
    /// The recipe's canonical digest.
    pub recipe: String,
    /// sha256 of lock.toml.
    pub lock: String,
    /// sha256 of the SBOMs.
    pub sbom: Sboms,
    /// sha256 of provenance.dsse.json.
    pub provenance: String,
    /// dm-verity parameters of root.erofs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verity: Option<Verity>,
    /// The kernel command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    /// The ostree commit in artifacts/ostree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ostree: Option<Ostree>,
    /// The release this bundle carries a delta from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Previous>,
    /// Every file of the bundle but the manifest and its signatures, by path.
    pub files: Vec<FileEntry>,
}

/// The SBOMs' digests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sboms {
    /// sha256 of sbom.cdx.json.
    pub cyclonedx: String,
    /// sha256 of sbom.spdx.json.
    pub spdx: String,
    /// sha256 of sbom.spdx3.json (bundles from before SPDX 3 have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spdx3: Option<String>,
}

/// dm-verity parameters: the build report's, carried as they are.
pub use airlock_format::report::Verity;

/// An ostree commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ostree {
    /// Commit checksum.
    pub commit: String,
    /// Branch.
    pub branch: String,
}

/// The previous release a delta starts from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Previous {
    /// Its version.
    pub version: u64,
    /// sha256 of its manifest.json.
    pub manifest: String,
    /// Its ostree commit, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ostree_commit: Option<String>,
}

/// One file of the bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path relative to the bundle, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the whole file.
    pub sha256: String,
    /// Chunk size, when the file has chunk digests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_size: Option<u64>,
    /// sha256 of each chunk, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<String>,
    /// Whether the chunks are separate files, `PATH.000`, `PATH.001`, ...
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub split: bool,
}

impl FileEntry {
    /// The byte range of each chunk (or of the whole file).
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        match self.chunk_size {
            Some(size) if size > 0 && !self.chunks.is_empty() => (0..self.chunks.len() as u64)
                .map(|i| (i * size, size.min(self.size - i * size)))
                .collect(),
            _ => vec![(0, self.size)],
        }
    }

    /// The file name of chunk `index` when split.
    pub fn chunk_path(&self, index: usize) -> String {
        chunk_path(&self.path, index)
    }
}

/// `PATH.000`, `PATH.001`, ...
pub fn chunk_path(path: &str, index: usize) -> String {
    format!("{path}.{index:03}")
}

/// What is wrong with a manifest's structure.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("manifest.json: {0}")]
pub struct Malformed(pub String);

impl Manifest {
    /// Parses and checks the structure: format version, paths that stay in
    /// the bundle, digests, chunk lists that add up.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, Malformed> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| Malformed(e.to_string()))?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), Malformed> {
        let bad = |message: String| Err(Malformed(message));
        if self.schema != MANIFEST_SCHEMA {
            return bad(format!(
                "format {} is not supported (expected {MANIFEST_SCHEMA})",
                self.schema
            ));
        }
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return bad(format!("bad image name {:?}", self.name));
        }
        if crate::time::parse(&self.expires).is_none() {
            return bad(format!(
                "`expires` {:?} is not an RFC 3339 UTC time",
                self.expires
            ));
        }
        for (what, digest) in [
            ("recipe", &self.recipe),
            ("lock", &self.lock),
            ("inputs", &self.inputs),
            ("provenance", &self.provenance),
            ("sbom.cyclonedx", &self.sbom.cyclonedx),
            ("sbom.spdx", &self.sbom.spdx),
        ]
        .into_iter()
        .chain(self.sbom.spdx3.as_ref().map(|d| ("sbom.spdx3", d)))
        {
            if !is_sha256(digest) {
                return bad(format!("{what}: {digest:?} is not a sha256"));
            }
        }
        let mut seen = BTreeSet::new();
        let mut physical = BTreeSet::new();
        for file in &self.files {
            check_path(&file.path).map_err(Malformed)?;
            if !seen.insert(file.path.as_str()) {
                return bad(format!("{} is listed twice", file.path));
            }
            if !is_sha256(&file.sha256) {
                return bad(format!("{}: {:?} is not a sha256", file.path, file.sha256));
            }
            match file.chunk_size {
                None if file.chunks.is_empty() && !file.split => {}
                Some(size) if size > 0 => {
                    let expected = file.size.div_ceil(size).max(1);
                    if file.chunks.len() as u64 != expected {
                        return bad(format!(
                            "{}: {} chunk digests for {} bytes in chunks of {size} (expected {expected})",
                            file.path,
                            file.chunks.len(),
                            file.size
                        ));
                    }
                    if let Some(digest) = file.chunks.iter().find(|d| !is_sha256(d)) {
                        return bad(format!("{}: chunk {digest:?} is not a sha256", file.path));
                    }
                }
                _ => return bad(format!("{}: inconsistent chunk list", file.path)),
            }
            if file.split {
                for index in 0..file.chunks.len() {
                    physical.insert(file.chunk_path(index));
                }
            } else {
                physical.insert(file.path.clone());
            }
        }
        for name in [MANIFEST, SIGNATURES] {
            if physical.contains(name) {
                return bad(format!("{name} cannot be listed in itself"));
            }
        }
        if physical.len() != self.physical_files().len() {
            return bad("a chunk file name collides with another file".to_owned());
        }
        Ok(())
    }

    /// The file with this bundle path.
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Every physical file: whole files and chunk files.
    pub fn physical_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        for file in &self.files {
            if file.split {
                out.extend((0..file.chunks.len()).map(|i| file.chunk_path(i)));
            } else {
                out.push(file.path.clone());
            }
        }
        out
    }

    /// The canonical bytes.
    pub fn to_canonical(&self) -> Vec<u8> {
        airlock_format::canonical::of(self).expect("a manifest serializes")
    }
}

/// A lowercase hex sha256.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A bundle path: relative, `/`-separated, no empty, `.` or `..` parts, no
/// control characters or backslashes.
pub fn check_path(path: &str) -> Result<(), String> {
    let ok = !path.is_empty()
        && path.len() <= 1024
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && !path.chars().any(|c| c.is_control() || c == '\\');
    if ok {
        Ok(())
    } else {
        Err(format!("{path:?} is not a path inside the bundle"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            schema: 1,
            name: "node".into(),
            version: 3,
            epoch: 1_700_000_000,
            expires: "2030-01-01T00:00:00Z".into(),
            airlock: "0.1.0".into(),
            inputs: "a".repeat(64),
            recipe: "b".repeat(64),
            lock: "c".repeat(64),
            sbom: Sboms {
                cyclonedx: "d".repeat(64),
                spdx: "e".repeat(64),
                spdx3: Some("9".repeat(64)),
            },
            provenance: "f".repeat(64),
            verity: None,
            cmdline: None,
            ostree: None,
            previous: None,
            files: vec![
                FileEntry {
                    path: "artifacts/root.erofs".into(),
                    size: 10,
                    sha256: "1".repeat(64),
                    chunk_size: Some(4),
                    chunks: vec!["2".repeat(64), "3".repeat(64), "4".repeat(64)],
                    split: true,
                },
                FileEntry {
                    path: "README.txt".into(),
                    size: 1,
                    sha256: "5".repeat(64),
                    chunk_size: None,
                    chunks: vec![],
                    split: false,
                },
            ],
        }
    }

    #[test]
    fn canonical_bytes_round_trip_and_sort_keys() {
        let manifest = sample();
        let bytes = manifest.to_canonical();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"airlock":"0.1.0","epoch":1700000000,"expires":"#),
            "{text}"
        );
        assert!(!text.contains(' ') && !text.contains('\n'));
        assert_eq!(Manifest::parse(&bytes).unwrap(), manifest);
        assert_eq!(manifest.files[0].ranges(), vec![(0, 4), (4, 4), (8, 2)]);
        assert_eq!(
            manifest.physical_files(),
            vec![
                "artifacts/root.erofs.000",
                "artifacts/root.erofs.001",
                "artifacts/root.erofs.002",
                "README.txt"
            ]
        );
    }

    #[test]
    fn structural_errors_are_named() {
        type Change = fn(&mut Manifest);
        let cases: Vec<(Change, &str)> = vec![
            (|m| m.schema = 2, "format 2"),
            (
                |m| m.files[1].path = "../etc/passwd".into(),
                "not a path inside",
            ),
            (
                |m| m.files[1].path = "/etc/passwd".into(),
                "not a path inside",
            ),
            (|m| m.files[1].path = "a//b".into(), "not a path inside"),
            (
                |m| m.files[1].path = "artifacts/root.erofs".into(),
                "listed twice",
            ),
            (
                |m| m.files[1].path = "manifest.json".into(),
                "cannot be listed",
            ),
            (|m| m.files[1].sha256 = "XYZ".into(), "not a sha256"),
            (
                |m| {
                    m.files[0].chunks.pop();
                },
                "chunk digests",
            ),
            (|m| m.files[0].chunk_size = Some(0), "inconsistent"),
            (
                |m| m.files[1].path = "artifacts/root.erofs.001".into(),
                "collides",
            ),
            (|m| m.expires = "tomorrow".into(), "RFC 3339"),
            (|m| m.name = "a/b".into(), "bad image name"),
        ];
        for (change, expected) in cases {
            let mut manifest = sample();
            change(&mut manifest);
            let error = Manifest::parse(&manifest.to_canonical()).unwrap_err();
            assert!(error.0.contains(expected), "{error} (expected {expected})");
        }
        let error = Manifest::parse(br#"{"schema":1,"extra":true}"#).unwrap_err();
        assert!(
            error.0.contains("unknown field") || error.0.contains("missing field"),
            "{error}"
        );
    }
}
