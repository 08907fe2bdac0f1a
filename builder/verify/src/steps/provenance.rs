//! Step 4: the provenance. A DSSE envelope signed by a pinned builder key,
//! holding an in-toto v1 statement with a SLSA v1 predicate, whose subjects
//! are exactly the bundle's artifacts (and its ostree commit) with their
//! digests, and whose recipe and lock digests are the manifest's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::dsse::{self, BuilderKey, OpenError, Statement};
use crate::manifest::{Manifest, paths};
use crate::read::{listed, read_listed};
use crate::{Rejection, VerifyError};

/// The largest provenance read.
const MAX_PROVENANCE: u64 = 64 << 20;

/// Returns the name of the builder key that signed it.
pub(crate) fn check(
    bundle: &Path,
    manifest: &Manifest,
    builders: &[BuilderKey],
) -> Result<String, VerifyError> {
    let listed = &listed(manifest, paths::PROVENANCE)?.sha256;
    if *listed != manifest.provenance {
        return Err(Rejection::ProvenanceDigest {
            expected: manifest.provenance.clone(),
            actual: listed.clone(),
        }
        .into());
    }
    let bytes = read_listed(bundle, manifest, paths::PROVENANCE, MAX_PROVENANCE)?;
    let (statement, builder) = open(&bytes, builders)?;
    check_subjects(manifest, &statement)?;
    check_inputs(manifest, &statement)?;
    Ok(builder)
}

fn open(bytes: &[u8], builders: &[BuilderKey]) -> Result<(Statement, String), Rejection> {
    let (payload, builder) = dsse::open(bytes, builders).map_err(|e| match e {
        OpenError::Malformed(reason) => Rejection::ProvenanceEnvelope { reason },
        OpenError::PayloadType(actual) => Rejection::ProvenancePayloadType {
            expected: dsse::IN_TOTO.to_owned(),
            actual,
        },
        OpenError::Untrusted(signed_by) => Rejection::ProvenanceSignature { signed_by },
    })?;
    let statement: Statement =
        serde_json::from_slice(&payload).map_err(|e| Rejection::ProvenanceStatement {
            reason: e.to_string(),
        })?;
    for (field, expected, actual) in [
        ("_type", dsse::STATEMENT_V1, &statement.statement_type),
        (
            "predicateType",
            dsse::SLSA_PROVENANCE_V1,
            &statement.predicate_type,
        ),
    ] {
        if actual != expected {
            return Err(Rejection::ProvenanceType {
                field: field.to_owned(),
                expected: expected.to_owned(),
                actual: actual.clone(),
            });
        }
    }
    Ok((statement, builder))
}

/// The subjects are exactly the artifacts (and the ostree commit).
fn check_subjects(manifest: &Manifest, statement: &Statement) -> Result<(), Rejection> {
    let mut expected: BTreeMap<String, String> = manifest
        .files
        .iter()
        .filter(|f| paths::is_subject(&f.path))
        .map(|f| (f.path.clone(), f.sha256.clone()))
        .collect();
    if let Some(ostree) = &manifest.ostree {
        expected.insert(format!("ostree:{}", ostree.branch), ostree.commit.clone());
    }
    let mut seen = BTreeSet::new();
    for subject in &statement.subject {
        let digest = subject.digest.get("sha256").cloned().unwrap_or_default();
        let Some(want) = expected.get(&subject.name) else {
            return Err(Rejection::ProvenanceSubjectUnknown {
                name: subject.name.clone(),
            });
        };
        if *want != digest {
            return Err(Rejection::ProvenanceSubjectDigest {
                name: subject.name.clone(),
                expected: digest,
                actual: want.clone(),
            });
        }
        seen.insert(subject.name.as_str());
    }
    match expected.keys().find(|k| !seen.contains(k.as_str())) {
        Some(missing) => Err(Rejection::ProvenanceSubjectMissing {
            name: missing.clone(),
        }),
        None => Ok(()),
    }
}

/// The recipe and lock it was built from are the manifest's, and the
/// SBOMs it names as byproducts are the bundle's (provenance from before
/// byproducts names none, and the manifest's signatures cover the SBOMs
/// either way; whether the manifest's `sbom` digests are those files is
/// step 6's).
fn check_inputs(manifest: &Manifest, statement: &Statement) -> Result<(), Rejection> {
    if let Some(byproducts) = statement.predicate["runDetails"]["byproducts"].as_array() {
        for path in [paths::CYCLONEDX, paths::SPDX, paths::SPDX3] {
            let want = manifest.file(path).map(|f| f.sha256.as_str());
            let got = byproducts
                .iter()
                .find(|b| b["name"] == path)
                .and_then(|b| b["digest"]["sha256"].as_str());
            if got != want {
                return Err(Rejection::ProvenanceInput {
                    input: path.to_owned(),
                    expected: want.unwrap_or("none").to_owned(),
                    actual: got.unwrap_or("none").to_owned(),
                });
            }
        }
    }
    let external = &statement.predicate["buildDefinition"]["externalParameters"];
    for (input, want) in [("recipe", &manifest.recipe), ("lock", &manifest.lock)] {
        let got = external[input]["digest"]["sha256"].as_str().unwrap_or("");
        if got != want {
            return Err(Rejection::ProvenanceInput {
                input: input.to_owned(),
                expected: want.clone(),
                actual: got.to_owned(),
            });
        }
    }
    Ok(())
}
