//! The image's SBOMs: CycloneDX 1.6 and SPDX 2.3, JSON, from the lock and
//! the finished tree. Deterministic: the serial number and document
//! namespace derive from the inputs digest, the timestamps are the epoch,
//! every list is in lock or path order.
//!
//! No maintained Rust crate models CycloneDX 1.6 (with `modelCard`) and
//! SPDX 2.3 together, so the documents are written with `serde_json`; the
//! tests validate them against the official schemas with the reference
//! validators (cyclonedx-python-lib, spdx-tools).

use std::collections::BTreeMap;

use airlock_recipe::{Lock, Recipe};
use airlock_store::Store;
use airlock_tree::{Kind, Tree};
use serde_json::{Value, json};

use crate::BuildError;
use crate::configure::files::Added;

/// The CycloneDX document's file name.
pub const CYCLONEDX: &str = airlock_format::names::image::CYCLONEDX;
/// The SPDX document's file name.
pub const SPDX: &str = airlock_format::names::image::SPDX;

/// What the SBOMs describe.
#[derive(Debug)]
pub struct Input<'a> {
    /// The merged recipe.
    pub recipe: &'a Recipe,
    /// The lock.
    pub lock: &'a Lock,
    /// The finished tree.
    pub tree: &'a Tree,
    /// Where its file contents are.
    pub blobs: &'a Store,
    /// The files the recipe added.
    pub added: &'a [Added],
    /// The privilege inventory (setuid, capabilities, devices).
    pub privileges: &'a [crate::privilege::Privileged],
    /// The inputs digest (hex).
    pub inputs: &'a str,
    /// airlock's version.
    pub airlock_version: &'a str,
}

/// One Debian package as both SBOMs state it.
struct Deb {
    name: String,
    version: String,
    purl: String,
    sha256: String,
    source: String,
    source_version: String,
    /// SPDX expression, when the copyright file is machine-readable.
    license: Option<String>,
}

/// Both documents, as pretty JSON text.
pub fn generate(input: &Input<'_>) -> Result<(String, String), BuildError> {
    let mut refs = BTreeMap::new();
    let mut debs = Vec::new();
    for package in &input.lock.packages {
        let codename = input
            .lock
            .archive
            .suites
            .iter()
            .find(|s| s.name == package.suite)
            .map_or(package.suite.as_str(), |s| s.codename.as_str());
        let license = match copyright(input, &package.name)? {
            Some(text) => debian_licenses(&text).map(|names| expression(&names, &mut refs)),
            None => None,
        };
        debs.push(Deb {
            name: package.name.clone(),
            version: package.version.clone(),
            purl: format!(
                "pkg:deb/debian/{}@{}?arch={}&distro={}",
                package.name,
                percent(&package.version),
                package.architecture,
                percent(codename)
            ),
            sha256: package.sha256.to_hex(),
            source: package.source.clone(),
            source_version: package.source_version.clone(),
            license,
        });
    }
    let mut files = Vec::new();
    for added in input.added {
        if let Kind::File(content) = &added.node.kind {
            let bytes = crate::configure::read_content(input.blobs, content)?;
            let sha1 = hex::encode(<sha1::Sha1 as sha2::Digest>::digest(&bytes));
            files.push((format!("/{}", added.path), content.sha256().to_hex(), sha1));
        }
    }
    files.sort();
    files.dedup_by(|a, b| a.0 == b.0);
    Ok((
        cyclonedx(input, &debs, &files),
        spdx(input, &debs, &files, &refs),
    ))
}

fn copyright(input: &Input<'_>, package: &str) -> Result<Option<Vec<u8>>, BuildError> {
    let path = format!("usr/share/doc/{package}/copyright");
    match input.tree.lookup(&path) {
        Some((_, node)) => match &node.kind {
            Kind::File(content) if content.size() <= 4 << 20 => {
                Ok(Some(crate::configure::read_content(input.blobs, content)?))
            }
            _ => Ok(None),
        },
        None => Ok(None),
    }
}

/// The `License:` short names of a machine-readable (DEP-5) copyright
/// file's `Files:` paragraphs, in order of first appearance; None when the
/// file is not machine-readable.
pub fn debian_licenses(text: &[u8]) -> Option<Vec<String>> {
    let text = String::from_utf8_lossy(text);
    let mut paragraphs = text.split("\n\n").filter(|p| !p.trim().is_empty());
    let header = paragraphs.next()?;
    let is_dep5 = header.lines().any(|line| {
        line.split_once(':').is_some_and(|(k, v)| {
            k.eq_ignore_ascii_case("Format") && v.contains("copyright-format")
        })
    });
    if !is_dep5 {
        return None;
    }
    let mut names: Vec<String> = Vec::new();
    for paragraph in std::iter::once(header).chain(paragraphs) {
        let field = |name: &str| {
            paragraph.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
        };
        if field("Files").is_none() {
            continue;
        }
        if let Some(license) = field("License").filter(|l| !l.is_empty())
            && !names.contains(&license)
        {
            names.push(license);
        }
    }
    (!names.is_empty()).then_some(names)
}

/// Debian short names that are SPDX identifiers under another spelling.
const SPDX_NAMES: &[(&str, &str)] = &[
    ("apache-2", "Apache-2.0"),
    ("apache-2.0", "Apache-2.0"),
    ("artistic", "Artistic-1.0-Perl"),
    ("artistic-1.0", "Artistic-1.0"),
    ("artistic-2.0", "Artistic-2.0"),
    ("bsd-2-clause", "BSD-2-Clause"),
    ("bsd-3-clause", "BSD-3-Clause"),
    ("bsd-4-clause", "BSD-4-Clause"),
    ("bsl-1.0", "BSL-1.0"),
    ("cc0", "CC0-1.0"),
    ("cc0-1.0", "CC0-1.0"),
    ("expat", "MIT"),
    ("mit", "MIT"),
    ("isc", "ISC"),
    ("zlib", "Zlib"),
    ("x11", "X11"),
    ("curl", "curl"),
    ("ftl", "FTL"),
    ("openssl", "OpenSSL"),
    ("mpl-1.1", "MPL-1.1"),
    ("mpl-2.0", "MPL-2.0"),
    ("psf-2", "PSF-2.0"),
    ("python-2.0", "Python-2.0"),
    ("unicode-dfs-2016", "Unicode-DFS-2016"),
    ("gpl-1", "GPL-1.0-only"),
    ("gpl-1+", "GPL-1.0-or-later"),
    ("gpl-2", "GPL-2.0-only"),
    ("gpl-2+", "GPL-2.0-or-later"),
    ("gpl-3", "GPL-3.0-only"),
    ("gpl-3+", "GPL-3.0-or-later"),
    ("lgpl-2", "LGPL-2.0-only"),
    ("lgpl-2+", "LGPL-2.0-or-later"),
    ("lgpl-2.1", "LGPL-2.1-only"),
    ("lgpl-2.1+", "LGPL-2.1-or-later"),
    ("lgpl-3", "LGPL-3.0-only"),
    ("lgpl-3+", "LGPL-3.0-or-later"),
    ("agpl-3", "AGPL-3.0-only"),
    ("agpl-3+", "AGPL-3.0-or-later"),
    ("gfdl-1.2", "GFDL-1.2-only"),
    ("gfdl-1.2+", "GFDL-1.2-or-later"),
    ("gfdl-1.3", "GFDL-1.3-only"),
    ("gfdl-1.3+", "GFDL-1.3-or-later"),
];

/// One Debian license term as an SPDX id or a LicenseRef (recorded in
/// `refs` with the Debian name).
fn term(name: &str, refs: &mut BTreeMap<String, String>) -> String {
    let lower = name.to_ascii_lowercase();
    if let Some((_, id)) = SPDX_NAMES.iter().find(|(debian, _)| *debian == lower) {
        return (*id).to_owned();
    }
    let mut id = String::from("LicenseRef-");
    for c in name.chars() {
        id.push(if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
            c
        } else {
            '-'
        });
    }
    refs.insert(id.clone(), name.to_owned());
    id
}

/// An SPDX expression for a package's Debian license lines: each line's
/// `or`/`and` kept, lines joined with AND; a term with `with` (an
/// exception in Debian's free form) becomes one LicenseRef.
pub fn expression(lines: &[String], refs: &mut BTreeMap<String, String>) -> String {
    let mut parts = Vec::new();
    for line in lines {
        let mut out: Vec<String> = Vec::new();
        let mut current: Vec<&str> = Vec::new();
        let flush = |current: &mut Vec<&str>,
                     out: &mut Vec<String>,
                     refs: &mut BTreeMap<String, String>| {
            if !current.is_empty() {
                out.push(term(&current.join(" "), refs));
                current.clear();
            }
        };
        for word in line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
        {
            match word.to_ascii_lowercase().as_str() {
                "or" | "and" => {
                    flush(&mut current, &mut out, refs);
                    if !out.is_empty() && !out.last().is_some_and(|t| t == "OR" || t == "AND") {
                        out.push(word.to_ascii_uppercase());
                    }
                }
                _ => current.push(word),
            }
        }
        flush(&mut current, &mut out, refs);
        if out.last().is_some_and(|t| t == "OR" || t == "AND") {
            out.pop();
        }
        if out.is_empty() {
            continue;
        }
        let text = out.join(" ");
        parts.push(if out.len() > 1 && lines.len() > 1 {
            format!("({text})")
        } else {
            text
        });
    }
    parts.dedup();
    parts.join(" AND ")
}

/// Percent-encodes a purl component.
fn percent(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn derived_uuid(inputs: &str, what: &str) -> String {
    let inputs: airlock_recipe::Sha256 = inputs.parse().expect("the inputs digest is hex");
    crate::pipeline::uuid_of(&crate::pipeline::derived(&inputs, what))
}

fn timestamp(epoch: u64) -> String {
    airlock_format::time::format(epoch)
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("JSON serializes");
    text.push('\n');
    text
}

/// One Debian package as a CycloneDX component, with its privileged paths.
fn cyclonedx_deb(input: &Input<'_>, deb: &Deb) -> Value {
    let mut component = json!({
        "type": "library",
        "bom-ref": deb.purl,
        "name": deb.name,
        "version": deb.version,
        "purl": deb.purl,
        "hashes": [{"alg": "SHA-256", "content": deb.sha256}],
        "properties": [
            {"name": "airlock:source", "value": deb.source},
            {"name": "airlock:source-version", "value": deb.source_version},
        ],
    });
    if let Some(license) = &deb.license {
        component["licenses"] = json!([{ "expression": license }]);
    }
    for line in privileges_of(input, Some(&deb.name)) {
        component["properties"]
            .as_array_mut()
            .expect("an array")
            .push(json!({"name": PRIVILEGE_PROPERTY, "value": line}));
    }
    component
}

/// One model as a CycloneDX machine-learning-model component with its
/// model card; returns its bom-ref too.
fn cyclonedx_model(input: &Input<'_>, model: &airlock_recipe::Model) -> (String, Value) {
    let locked = input
        .lock
        .models
        .iter()
        .find(|m| m.name == model.name.as_str());
    let card = &model.card;
    let bom_ref = format!("model:{}", model.name.as_str());
    let mut properties = vec![json!({"name": "airlock:path", "value": model.destination.as_str()})];
    if let Some(locked) = locked {
        properties.push(json!({"name": "airlock:size", "value": locked.size.to_string()}));
    }
    for (name, value) in [
        ("airlock:format", &card.format),
        ("airlock:parameters", &card.parameters),
        ("airlock:quantization", &card.quantization),
    ] {
        if !value.is_empty() {
            properties.push(json!({"name": name, "value": value}));
        }
    }
    let mut model_card = json!({});
    if !card.architecture.is_empty() {
        model_card["modelParameters"] = json!({"architectureFamily": card.architecture});
    }
    let mut considerations = json!({});
    if !card.intended_use.is_empty() {
        considerations["useCases"] = json!([card.intended_use]);
    }
    if !card.limitations.is_empty() {
        considerations["technicalLimitations"] = json!([card.limitations]);
    }
    if considerations != json!({}) {
        model_card["considerations"] = considerations;
    }
    let mut component = json!({
        "type": "machine-learning-model",
        "bom-ref": bom_ref,
        "name": model.name.as_str(),
        "hashes": [{"alg": "SHA-256", "content": model.sha256.to_hex()}],
        "licenses": [{"expression": model.license}],
        "properties": properties,
    });
    if !card.description.is_empty() {
        component["description"] = json!(card.description);
    }
    if model_card != json!({}) {
        component["modelCard"] = model_card;
    }
    (bom_ref, component)
}

fn cyclonedx(input: &Input<'_>, debs: &[Deb], files: &[(String, String, String)]) -> String {
    let recipe = input.recipe;
    let mut components = Vec::new();
    let mut refs = Vec::new();
    for deb in debs {
        refs.push(deb.purl.clone());
        components.push(cyclonedx_deb(input, deb));
    }
    for model in &recipe.models {
        let (bom_ref, component) = cyclonedx_model(input, model);
        refs.push(bom_ref);
        components.push(component);
    }
    for (path, sha256, _) in files {
        let bom_ref = format!("file:{path}");
        components.push(json!({
            "type": "file",
            "bom-ref": bom_ref,
            "name": path,
            "hashes": [{"alg": "SHA-256", "content": sha256}],
        }));
        refs.push(bom_ref);
    }
    let mut image_component = json!({
        "type": "operating-system",
        "bom-ref": "image",
        "name": recipe.image.name.as_str(),
        "version": recipe.image.version.to_string(),
    });
    let own: Vec<Value> = privileges_of(input, None)
        .into_iter()
        .map(|line| json!({"name": PRIVILEGE_PROPERTY, "value": line}))
        .collect();
    if !own.is_empty() {
        image_component["properties"] = json!(own);
    }
    let document = json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", derived_uuid(input.inputs, "cyclonedx")),
        "version": 1,
        "metadata": {
            "timestamp": timestamp(recipe.image.epoch),
            "tools": {"components": [{
                "type": "application",
                "name": "airlock",
                "version": input.airlock_version,
            }]},
            "component": image_component,
        },
        "components": components,
        "dependencies": [{"ref": "image", "dependsOn": refs}],
    });
    pretty(&document)
}

/// The property (CycloneDX) and annotation prefix (SPDX) that carries one
/// privileged path, which the verifier and `airlock diff` read back.
pub use airlock_format::sbom::PRIVILEGE_PROPERTY;

/// The privileged paths `package` shipped (`None`: those no package
/// shipped, which belong to the image itself), one line each.
fn privileges_of(input: &Input<'_>, package: Option<&str>) -> Vec<String> {
    input
        .privileges
        .iter()
        .filter(|entry| match package {
            Some(name) => entry.packages.iter().any(|p| p == name),
            None => entry.packages.iter().all(|p| p == "airlock"),
        })
        .map(crate::privilege::Privileged::describe)
        .collect()
}

/// SPDX 2.3 annotations for the privileged paths of one package.
fn spdx_annotations(input: &Input<'_>, package: Option<&str>) -> Vec<Value> {
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

fn spdx_id(kind: &str, index: usize, name: &str) -> String {
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

/// One Debian package as an SPDX package.
fn spdx_deb(input: &Input<'_>, id: &str, deb: &Deb) -> Value {
    let annotations = spdx_annotations(input, Some(&deb.name));
    let mut package = json!({
        "SPDXID": id,
        "name": deb.name,
        "versionInfo": deb.version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "LIBRARY",
        "checksums": [{"algorithm": "SHA256", "checksumValue": deb.sha256}],
        "sourceInfo": format!("built from Debian source package {} {}", deb.source, deb.source_version),
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": deb.license.as_deref().unwrap_or("NOASSERTION"),
        "copyrightText": "NOASSERTION",
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": deb.purl,
        }],
    });
    if !annotations.is_empty() {
        package["annotations"] = json!(annotations);
    }
    package
}

/// One model as an SPDX package.
fn spdx_model(id: &str, model: &airlock_recipe::Model) -> Value {
    json!({
        "SPDXID": id,
        "name": model.name.as_str(),
        "downloadLocation": model.url.as_ref().map_or("NOASSERTION".to_owned(), |u| u.as_str().to_owned()),
        "filesAnalyzed": false,
        "primaryPackagePurpose": "OTHER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": model.sha256.to_hex()}],
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": model.license,
        "copyrightText": "NOASSERTION",
        "description": model.card.description,
        "comment": format!("machine-learning model installed at {}", model.destination.as_str()),
    })
}

/// One file the recipe added, as an SPDX file.
fn spdx_file(id: &str, path: &str, sha256: &str, sha1: &str) -> Value {
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

/// The Debian license names that are not SPDX identifiers, as extracted
/// licensing information.
fn spdx_extracted(refs: &BTreeMap<String, String>) -> Vec<Value> {
    refs
    .iter()
    .map(|(id, name)| {
        json!({
            "licenseId": id,
            "name": name,
            "extractedText": format!(
                "The Debian license short name \"{name}\"; its text is in the package's /usr/share/doc/PACKAGE/copyright file in the image."
            ),
        })
    })
    .collect()
}

fn spdx(
    input: &Input<'_>,
    debs: &[Deb],
    files: &[(String, String, String)],
    refs: &BTreeMap<String, String>,
) -> String {
    let recipe = input.recipe;
    let mut packages = vec![json!({
        "SPDXID": "SPDXRef-Image",
        "name": recipe.image.name.as_str(),
        "versionInfo": recipe.image.version.to_string(),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "OPERATING-SYSTEM",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
    })];
    let own = spdx_annotations(input, None);
    if !own.is_empty() {
        packages[0]["annotations"] = json!(own);
    }
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Image",
    })];
    // Packages are CONTAINed in the image. SPDX forbids CONTAINS from a
    // package whose files were not analyzed, so the recipe's files are
    // related with OTHER and say what they are.
    let mut contains = |id: &str| {
        let file = id.starts_with("SPDXRef-file-");
        let mut relationship = json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": if file { "OTHER" } else { "CONTAINS" },
            "relatedSpdxElement": id,
        });
        if file {
            relationship["comment"] = json!("a file the recipe added to the image");
        }
        relationships.push(relationship);
    };
    for (index, deb) in debs.iter().enumerate() {
        let id = spdx_id("deb", index, &deb.name);
        packages.push(spdx_deb(input, &id, deb));
        contains(&id);
    }
    for (index, model) in recipe.models.iter().enumerate() {
        let id = spdx_id("model", index, model.name.as_str());
        packages.push(spdx_model(&id, model));
        contains(&id);
    }
    let mut spdx_files = Vec::new();
    for (index, (path, sha256, sha1)) in files.iter().enumerate() {
        let id = spdx_id("file", index, path.trim_start_matches('/'));
        spdx_files.push(spdx_file(&id, path, sha256, sha1));
        contains(&id);
    }
    let extracted = spdx_extracted(refs);
    let mut document = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}-{}", recipe.image.name.as_str(), recipe.image.version),
        "documentNamespace": format!("urn:uuid:{}", derived_uuid(input.inputs, "spdx")),
        "creationInfo": {
            "created": timestamp(recipe.image.epoch),
            "creators": [format!("Tool: airlock-{}", input.airlock_version)],
        },
        "packages": packages,
        "files": spdx_files,
        "relationships": relationships,
    });
    if !extracted.is_empty() {
        document["hasExtractedLicensingInfos"] = json!(extracted);
    }
    pretty(&document)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep5_licenses_become_spdx_expressions() {
        let text = b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: x\n\nFiles: *\nCopyright: 2020 A\nLicense: GPL-2+\n text\n\nFiles: lib/*\nCopyright: 2020 B\nLicense: Expat or Artistic\n\nFiles: debian/*\nLicense: GPL-2+\n\nLicense: GPL-2+\n full text\n";
        let names = debian_licenses(text).unwrap();
        assert_eq!(names, vec!["GPL-2+", "Expat or Artistic"]);
        let mut refs = BTreeMap::new();
        assert_eq!(
            expression(&names, &mut refs),
            "GPL-2.0-or-later AND (MIT OR Artistic-1.0-Perl)"
        );
        assert!(refs.is_empty());
        let names = vec!["GPL-3+ with OpenSSL exception".to_owned()];
        assert_eq!(
            expression(&names, &mut refs),
            "LicenseRef-GPL-3--with-OpenSSL-exception"
        );
        assert_eq!(refs.len(), 1);
        assert_eq!(
            debian_licenses(b"This package was debianized by ...\n\nGPL\n"),
            None
        );
    }

    #[test]
    fn purl_parts_are_percent_encoded_and_ids_derived() {
        assert_eq!(percent("1:2.3+dfsg-1~b1"), "1%3A2.3%2Bdfsg-1~b1");
        assert_eq!(timestamp(1_700_000_000), "2023-11-14T22:13:20Z");
        let a = derived_uuid(&"a".repeat(64), "cyclonedx");
        assert_eq!(a, derived_uuid(&"a".repeat(64), "cyclonedx"));
        assert_ne!(a, derived_uuid(&"b".repeat(64), "cyclonedx"));
        assert_eq!(&a[14..15], "4");
    }
}
