//! The SPDX 2.3 document.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::licenses::{Notice, Refs};
use super::{
    ComponentFacts, Deb, Facts, ModelFacts, PRIVILEGE_PROPERTY, derived_uuid, privileges_of,
    spdx2_party, timestamp,
};

fn notice(notice: &Notice) -> &str {
    match notice {
        Notice::Text(text) => text,
        Notice::NoneFound => "NONE",
        Notice::Unknown => "NOASSERTION",
    }
}

/// SPDX 2.3 annotations for the privileged paths of one package.
fn annotations(facts: &Facts<'_>, package: Option<&str>) -> Vec<Value> {
    let input = facts.input;
    privileges_of(input, package)
        .into_iter()
        .map(|line| {
            json!({
                "annotationDate": timestamp(input.recipe.image.epoch),
                "annotationType": "OTHER",
                "annotator": format!("Tool: airlock-{}", input.airlock_version),
                "comment": format!("{PRIVILEGE_PROPERTY} {line}"),
            })
        })
        .collect()
}

pub(super) fn spdx_id(kind: &str, index: usize, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("SPDXRef-{kind}-{index}-{clean}")
}

fn checksums(sha256: &str, sha512: Option<&String>) -> Value {
    let mut sums = vec![json!({"algorithm": "SHA256", "checksumValue": sha256})];
    if let Some(sha512) = sha512.filter(|s| !s.is_empty()) {
        sums.push(json!({"algorithm": "SHA512", "checksumValue": sha512}));
    }
    json!(sums)
}

/// One Debian package.
fn deb(facts: &Facts<'_>, id: &str, deb: &Deb) -> Value {
    let license = deb.license.as_deref().unwrap_or("NOASSERTION");
    let mut package = json!({
        "SPDXID": id,
        "name": deb.name,
        "versionInfo": deb.version,
        "packageFileName": deb.file_name,
        "supplier": deb.supplier.as_ref().map_or("NOASSERTION".to_owned(), spdx2_party),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "LIBRARY",
        "checksums": checksums(&deb.sha256, Some(&deb.sha512)),
        "sourceInfo": format!("built from Debian source package {} {}", deb.source, deb.source_version),
        "licenseConcluded": license,
        "licenseDeclared": license,
        "copyrightText": notice(&deb.notice),
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": deb.purl,
        }],
    });
    if let Some(distribution) = &facts.distribution {
        package["originator"] = json!(spdx2_party(distribution));
    }
    let annotations = annotations(facts, Some(&deb.name));
    if !annotations.is_empty() {
        package["annotations"] = json!(annotations);
    }
    package
}

/// One model.
fn model(id: &str, facts: &ModelFacts<'_>) -> Value {
    let model = facts.model;
    let card = &model.card;
    let mut package = json!({
        "SPDXID": id,
        "name": model.name.as_str(),
        "downloadLocation": model.url.as_ref().map_or("NOASSERTION".to_owned(), |u| u.as_str().to_owned()),
        "filesAnalyzed": false,
        "primaryPackagePurpose": "OTHER",
        "supplier": card.supplier.as_ref().map_or("NOASSERTION".to_owned(), spdx2_party),
        "checksums": checksums(&model.sha256.to_hex(), facts.sha512.as_ref()),
        "licenseConcluded": model.license,
        "licenseDeclared": model.license,
        "copyrightText": if card.copyright.is_empty() { "NOASSERTION" } else { &card.copyright },
        "description": card.description,
        "comment": format!("machine-learning model installed at {}", model.destination.as_str()),
    });
    if !card.version.is_empty() {
        package["versionInfo"] = json!(card.version);
    }
    if let Some(name) = model.destination.as_str().rsplit('/').next() {
        package["packageFileName"] = json!(name);
    }
    package
}

/// One `[[components]]` file: an application package.
fn component(id: &str, pinned: &ComponentFacts<'_>) -> Value {
    let component = pinned.component;
    let mut package = json!({
        "SPDXID": id,
        "name": component.name.as_str(),
        "versionInfo": component.version,
        "downloadLocation": component.url.as_ref().map_or("NOASSERTION".to_owned(), |u| u.as_str().to_owned()),
        "filesAnalyzed": false,
        "primaryPackagePurpose": "APPLICATION",
        "supplier": pinned.supplier.map_or("NOASSERTION".to_owned(), spdx2_party),
        "checksums": checksums(&component.sha256.to_hex(), pinned.sha512.as_ref()),
        "licenseConcluded": component.license,
        "licenseDeclared": component.license,
        "copyrightText": component.copyright.as_deref().unwrap_or("NOASSERTION"),
        "comment": format!("installed at {}", component.destination.as_str()),
    });
    if let Some(source) = &component.source {
        package["sourceInfo"] = json!(format!("built from {source}"));
    }
    if let Some(name) = component.destination.as_str().rsplit('/').next() {
        package["packageFileName"] = json!(name);
    }
    package
}

/// One file the recipe added.
fn file(id: &str, path: &str, sha256: &str, sha1: &str) -> Value {
    json!({
        "SPDXID": id,
        "fileName": format!(".{path}"),
        "checksums": [
            {"algorithm": "SHA1", "checksumValue": sha1},
            {"algorithm": "SHA256", "checksumValue": sha256},
        ],
        "licenseConcluded": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "comment": "added by the recipe",
    })
}

/// The licenses that are not SPDX identifiers, as extracted licensing
/// information.
fn extracted(refs: &Refs) -> Vec<Value> {
    refs.iter()
        .map(|(id, license)| json!({"licenseId": id, "name": license.name, "extractedText": license.text}))
        .collect()
}

/// The image's own package.
fn image(facts: &Facts<'_>) -> Value {
    let image = &facts.input.recipe.image;
    let license = image.license.as_deref().unwrap_or("NOASSERTION");
    let mut package = json!({
        "SPDXID": "SPDXRef-Image",
        "name": image.name.as_str(),
        "versionInfo": image.version.to_string(),
        "supplier": image.supplier.as_ref().map_or("NOASSERTION".to_owned(), spdx2_party),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "OPERATING-SYSTEM",
        "licenseConcluded": license,
        "licenseDeclared": license,
        "copyrightText": image.copyright.as_deref().unwrap_or("NOASSERTION"),
    });
    let own = annotations(facts, None);
    if !own.is_empty() {
        package["annotations"] = json!(own);
    }
    package
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({"spdxElementId": from, "relationshipType": kind, "relatedSpdxElement": to})
}

/// The whole document.
pub(super) fn document(facts: &Facts<'_>) -> Value {
    let input = facts.input;
    let recipe = input.recipe;
    let mut packages = vec![image(facts)];
    let mut relationships = vec![relationship(
        "SPDXRef-DOCUMENT",
        "DESCRIBES",
        "SPDXRef-Image",
    )];
    let ids: BTreeMap<&str, String> = facts
        .debs
        .iter()
        .enumerate()
        .map(|(index, d)| (d.name.as_str(), spdx_id("deb", index, &d.name)))
        .collect();
    for deb_facts in &facts.debs {
        let id = &ids[deb_facts.name.as_str()];
        packages.push(deb(facts, id, deb_facts));
        relationships.push(relationship("SPDXRef-Image", "CONTAINS", id));
    }
    // Each package's dependencies among the installed ones.
    for deb_facts in &facts.debs {
        for target in deb_facts
            .depends
            .iter()
            .filter_map(|name| ids.get(name.as_str()))
        {
            relationships.push(relationship(
                &ids[deb_facts.name.as_str()],
                "DEPENDS_ON",
                target,
            ));
        }
    }
    for (index, model_facts) in facts.models.iter().enumerate() {
        let id = spdx_id("model", index, model_facts.model.name.as_str());
        packages.push(model(&id, model_facts));
        relationships.push(relationship("SPDXRef-Image", "CONTAINS", &id));
    }
    for (index, pinned) in facts.components.iter().enumerate() {
        let id = spdx_id("component", index, pinned.component.name.as_str());
        packages.push(component(&id, pinned));
        relationships.push(relationship("SPDXRef-Image", "CONTAINS", &id));
    }
    // SPDX forbids CONTAINS from a package whose files were not analyzed,
    // so the recipe's files are related with OTHER and say what they are.
    let mut files = Vec::new();
    for (index, (path, sha256, sha1)) in facts.files.iter().enumerate() {
        let id = spdx_id("file", index, path.trim_start_matches('/'));
        files.push(file(&id, path, sha256, sha1));
        let mut other = relationship("SPDXRef-Image", "OTHER", &id);
        other["comment"] = json!("a file the recipe added to the image");
        relationships.push(other);
    }
    let mut creators = Vec::new();
    if let Some(supplier) = &recipe.image.supplier {
        creators.push(spdx2_party(supplier));
    }
    creators.push(format!("Tool: airlock-{}", input.airlock_version));
    let mut document = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}-{}", recipe.image.name.as_str(), recipe.image.version),
        "documentNamespace": format!("urn:uuid:{}", derived_uuid(input.inputs, "spdx")),
        "creationInfo": {
            "created": timestamp(recipe.image.epoch),
            "creators": creators,
            "comment": "SBOM type: build. Written by airlock from the lock, the built tree and the recipe.",
        },
        "packages": packages,
        "files": files,
        "relationships": relationships,
    });
    let extracted = extracted(&facts.refs);
    if !extracted.is_empty() {
        document["hasExtractedLicensingInfos"] = json!(extracted);
    }
    document
}
