//! SLSA provenance v1 in an in-toto Statement v1, in a DSSE envelope signed
//! by the builder key.

use airlock_format::canonical;
use airlock_format::report::Report;
use airlock_recipe::Lock;
use airlock_verify::dsse::{self, Envelope, EnvelopeSignature};
use base64::Engine;
use serde_json::{Value, json};

use crate::keys::BuilderSigner;

/// The build type of an airlock image build.
pub const BUILD_TYPE: &str = "urn:airlock:build-type:image:v1";
/// The builder's id.
pub const BUILDER_ID: &str = "urn:airlock:builder";

/// What the statement is about.
#[derive(Debug)]
pub struct Subject {
    /// Bundle path (or `ostree:BRANCH`).
    pub name: String,
    /// sha256.
    pub sha256: String,
}

/// The key of `runDetails.builder.version` that holds the building airlock
/// binary's sha256.
pub const AIRLOCK_SHA256: &str = "airlock-sha256";

/// The statement: subjects, the recipe and lock as external parameters,
/// every locked input as a resolved dependency, the builder, its version
/// and, when the image folder says, the sha256 of the airlock binary that
/// built it; the SBOMs as byproducts.
pub fn statement(
    report: &Report,
    lock: &Lock,
    subjects: &[Subject],
    byproducts: &[Subject],
    airlock_sha256: Option<&str>,
) -> Vec<u8> {
    let codename = |suite: &str| {
        lock.archive
            .suites
            .iter()
            .find(|s| s.name == suite)
            .map_or(suite.to_owned(), |s| s.codename.clone())
    };
    let mut dependencies: Vec<Value> = lock
        .packages
        .iter()
        .map(|p| {
            json!({
                "uri": format!(
                    "pkg:deb/debian/{}@{}?arch={}&distro={}",
                    p.name, p.version.replace(':', "%3A").replace('+', "%2B"), p.architecture, codename(&p.suite)
                ),
                "name": p.filename,
                "digest": {"sha256": p.sha256.to_hex()},
            })
        })
        .collect();
    dependencies.extend(lock.models.iter().map(|m| {
        json!({
            "uri": format!("urn:airlock:model:{}", m.name),
            "name": m.name,
            "digest": {"sha256": m.sha256.to_hex()},
        })
    }));
    dependencies.extend(lock.components.iter().map(|c| {
        json!({
            "uri": format!("urn:airlock:component:{}", c.name),
            "name": c.name,
            "digest": {"sha256": c.sha256.to_hex()},
        })
    }));
    dependencies.extend(lock.archive.suites.iter().map(|s| {
        json!({
            "uri": format!("urn:airlock:debian-suite:{}", s.codename),
            "name": format!("{} InRelease ({})", s.name, s.date),
            "digest": {"sha256": s.inrelease_sha256.to_hex()},
        })
    }));
    let mut version = json!({"airlock": report.airlock});
    if let Some(digest) = airlock_sha256 {
        version[AIRLOCK_SHA256] = json!(digest);
    }
    let statement = json!({
        "_type": dsse::STATEMENT_V1,
        "subject": subjects.iter().map(|s| json!({"name": s.name, "digest": {"sha256": s.sha256}})).collect::<Vec<_>>(),
        "predicateType": dsse::SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "recipe": {"name": report.name, "digest": {"sha256": report.recipe}},
                    "lock": {"digest": {"sha256": report.lock}},
                },
                "internalParameters": {
                    "inputs": report.inputs,
                    "epoch": report.epoch,
                },
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {
                    "id": BUILDER_ID,
                    "version": version,
                },
                "metadata": {"invocationId": format!("urn:airlock:inputs:{}", report.inputs)},
                "byproducts": byproducts.iter().map(|s| json!({"name": s.name, "digest": {"sha256": s.sha256}})).collect::<Vec<_>>(),
            },
        },
    });
    canonical::to_vec(&statement)
}

/// Signs `payload` (an in-toto statement) into a DSSE envelope, as pretty
/// JSON.
pub fn envelope(payload: &[u8], signer: &BuilderSigner) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let signature = signer.sign(&dsse::pae(dsse::IN_TOTO, payload));
    let envelope = Envelope {
        payload: b64.encode(payload),
        payload_type: dsse::IN_TOTO.to_owned(),
        signatures: vec![EnvelopeSignature {
            keyid: signer.keyid.clone(),
            sig: b64.encode(signature),
        }],
    };
    let mut out = serde_json::to_vec_pretty(&envelope).expect("an envelope serializes");
    out.push(b'\n');
    out
}
