//! The SPDX 3.0.1 document (JSON-LD): a `software_Sbom` of type build whose
//! root is the image; every Debian package with its .deb as a distribution
//! artifact (SHA-256 and SHA-512, marked structured the way BSI TR-03183
//! asks), its supplier, originator, licenses and dependencies; and every
//! model as an `ai_AIPackage` filled from the recipe's model card.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::licenses::{Notice, Refs};
use super::{ComponentFacts, Facts, ModelFacts, derived_uuid, timestamp};
use airlock_recipe::{Party, PartyKind, SafetyRisk};

/// SPDX 3's JSON-LD context.
const CONTEXT: &str = "https://spdx.org/rdf/3.0.1/spdx-context.jsonld";
/// The one creation info every element shares.
const CREATION: &str = "_:creationinfo";

/// `ai_safetyRiskAssessment`'s word for a risk.
pub(super) fn risk(risk: SafetyRisk) -> &'static str {
    match risk {
        SafetyRisk::Serious => "serious",
        SafetyRisk::High => "high",
        SafetyRisk::Medium => "medium",
        SafetyRisk::Low => "low",
    }
}

/// The elements as they are added, with their ids.
struct Graph<'a> {
    base: String,
    elements: Vec<Value>,
    agents: BTreeMap<String, String>,
    licenses: BTreeMap<String, String>,
    refs: &'a Refs,
    custom: BTreeMap<String, String>,
    relationships: usize,
}

impl<'a> Graph<'a> {
    fn new(base: String, refs: &'a Refs) -> Self {
        Graph {
            base,
            elements: Vec::new(),
            agents: BTreeMap::new(),
            licenses: BTreeMap::new(),
            refs,
            custom: BTreeMap::new(),
            relationships: 0,
        }
    }

    fn id(&self, local: &str) -> String {
        format!("{}#{local}", self.base)
    }

    /// Adds an element of `kind` with `fields`; its id.
    fn add(&mut self, kind: &str, local: &str, mut fields: Value) -> String {
        let id = self.id(local);
        fields["type"] = json!(kind);
        fields["spdxId"] = json!(id);
        fields["creationInfo"] = json!(CREATION);
        self.elements.push(fields);
        id
    }

    fn relate(&mut self, from: &str, kind: &str, to: Vec<String>, completeness: Option<&str>) {
        self.relationships += 1;
        let local = format!("relationship-{}", self.relationships);
        let mut fields = json!({"from": from, "relationshipType": kind, "to": to});
        if let Some(completeness) = completeness {
            fields["completeness"] = json!(completeness);
        }
        self.add("Relationship", &local, fields);
    }

    /// A person or organization, once per distinct party.
    fn agent(&mut self, party: &Party) -> String {
        let key = format!("{:?}", party);
        if let Some(id) = self.agents.get(&key) {
            return id.clone();
        }
        let mut identifiers = Vec::new();
        if let Some(email) = &party.email {
            identifiers.push(json!({"type": "ExternalIdentifier", "externalIdentifierType": "email", "identifier": email}));
        }
        if let Some(url) = &party.url {
            identifiers.push(json!({"type": "ExternalIdentifier", "externalIdentifierType": "urlScheme", "identifier": url}));
        }
        let mut fields = json!({"name": party.name});
        if !identifiers.is_empty() {
            fields["externalIdentifier"] = json!(identifiers);
        }
        let kind = match party.kind {
            PartyKind::Organization => "Organization",
            PartyKind::Person => "Person",
        };
        let id = self.add(kind, &format!("agent-{}", self.agents.len() + 1), fields);
        self.agents.insert(key, id.clone());
        id
    }

    /// A license expression, once per distinct text, with the custom
    /// licenses it names.
    fn license(&mut self, expression: &str) -> String {
        if let Some(id) = self.licenses.get(expression) {
            return id.clone();
        }
        let mut map = Vec::new();
        for word in expression.split(|c: char| c.is_whitespace() || c == '(' || c == ')') {
            if let Some(text) = self.refs.get(word) {
                let custom = match self.custom.get(word) {
                    Some(id) => id.clone(),
                    None => {
                        let local = format!("custom-license-{}", self.custom.len() + 1);
                        let id = self.add(
                            "expandedlicensing_CustomLicense",
                            &local,
                            json!({"name": text.name, "simplelicensing_licenseText": text.text}),
                        );
                        self.custom.insert(word.to_owned(), id.clone());
                        id
                    }
                };
                map.push(json!({"type": "DictionaryEntry", "key": word, "value": custom}));
            }
        }
        let mut fields = json!({"simplelicensing_licenseExpression": expression});
        if !map.is_empty() {
            fields["simplelicensing_customIdToUri"] = json!(map);
        }
        let id = self.add(
            "simplelicensing_LicenseExpression",
            &format!("license-{}", self.licenses.len() + 1),
            fields,
        );
        self.licenses.insert(expression.to_owned(), id.clone());
        id
    }

    /// Declared and concluded license of a package.
    fn licensed(&mut self, package: &str, expression: Option<&str>) {
        if let Some(expression) = expression {
            let license = self.license(expression);
            self.relate(package, "hasDeclaredLicense", vec![license.clone()], None);
            self.relate(package, "hasConcludedLicense", vec![license], None);
        }
    }

    /// A distribution artifact (the .deb, the model's file, a component's
    /// file, the image's files): a file with its hashes; one that holds
    /// other parts in a known structure (an archive, a file system, GGUF's
    /// tensors, an executable's ELF sections and statically linked code) is
    /// "structured" in BSI TR-03183's sense, which SPDX 3 says with the
    /// additional purpose `container`.
    fn artifact(&mut self, package: &str, local: &str, name: &str, purpose: &str, hashes: Value) {
        let mut fields = json!({
            "name": name,
            "software_primaryPurpose": purpose,
            "verifiedUsing": hashes,
        });
        if ["archive", "filesystemImage", "model", "executable"].contains(&purpose) {
            fields["software_additionalPurpose"] = json!(["container"]);
        }
        let file = self.add("software_File", local, fields);
        self.relate(package, "hasDistributionArtifact", vec![file], None);
    }
}

fn hashes(sha256: &str, sha512: Option<&String>) -> Value {
    let mut out = vec![json!({"type": "Hash", "algorithm": "sha256", "hashValue": sha256})];
    if let Some(sha512) = sha512.filter(|s| !s.is_empty()) {
        out.push(json!({"type": "Hash", "algorithm": "sha512", "hashValue": sha512}));
    }
    json!(out)
}

fn copyright(notice: &Notice) -> Option<&str> {
    match notice {
        Notice::Text(text) => Some(text),
        Notice::NoneFound => Some("NONE"),
        Notice::Unknown => None,
    }
}

/// The model card's fields in the AI profile.
fn ai_fields(card: &airlock_recipe::ModelCard, fields: &mut Value) {
    let text = |fields: &mut Value, key: &str, value: &str| {
        if !value.is_empty() {
            fields[key] = json!(value);
        }
    };
    text(fields, "ai_informationAboutApplication", &card.intended_use);
    text(fields, "ai_limitation", &card.limitations);
    text(fields, "ai_informationAboutTraining", &card.training);
    if !card.type_of_model.is_empty() {
        fields["ai_typeOfModel"] = json!(card.type_of_model);
    }
    if !card.domain.is_empty() {
        fields["ai_domain"] = json!(card.domain);
    }
    let hyper: Vec<Value> = [
        ("architecture", &card.architecture),
        ("format", &card.format),
        ("parameters", &card.parameters),
        ("quantization", &card.quantization),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| json!({"type": "DictionaryEntry", "key": k, "value": v}))
    .collect();
    if !hyper.is_empty() {
        fields["ai_hyperparameter"] = json!(hyper);
    }
    let energy = |kwh: f64| json!([{"type": "ai_EnergyConsumptionDescription", "ai_energyQuantity": kwh, "ai_energyUnit": "kilowattHour"}]);
    let mut consumption = json!({"type": "ai_EnergyConsumption"});
    if let Some(kwh) = card.training_energy_kwh {
        consumption["ai_trainingEnergyConsumption"] = energy(kwh);
    }
    if let Some(kwh) = card.inference_energy_kwh {
        consumption["ai_inferenceEnergyConsumption"] = energy(kwh);
    }
    if consumption.as_object().is_some_and(|o| o.len() > 1) {
        fields["ai_energyConsumption"] = consumption;
    }
    if let Some(sensitive) = card.sensitive_personal_information {
        fields["ai_useSensitivePersonalInformation"] = json!(if sensitive { "yes" } else { "no" });
    }
    if let Some(level) = card.safety_risk {
        fields["ai_safetyRiskAssessment"] = json!(risk(level));
    }
}

/// One model as an AI package with its file.
fn model(graph: &mut Graph<'_>, index: usize, facts: &ModelFacts<'_>) -> String {
    let model = facts.model;
    let card = &model.card;
    let mut fields = json!({
        "name": model.name.as_str(),
        "software_primaryPurpose": "model",
        "software_downloadLocation": model.url.as_ref().map_or("NOASSERTION", |u| u.as_str()),
        "verifiedUsing": hashes(&model.sha256.to_hex(), facts.sha512.as_ref()),
        "comment": format!("installed at {}", model.destination.as_str()),
    });
    if !card.description.is_empty() {
        fields["description"] = json!(card.description);
    }
    if !card.version.is_empty() {
        fields["software_packageVersion"] = json!(card.version);
    }
    if !card.copyright.is_empty() {
        fields["software_copyrightText"] = json!(card.copyright);
    }
    if let Some(supplier) = &card.supplier {
        let agent = graph.agent(supplier);
        fields["suppliedBy"] = json!(agent);
        fields["originatedBy"] = json!([agent]);
    }
    ai_fields(card, &mut fields);
    let id = graph.add("ai_AIPackage", &format!("model-{index}"), fields);
    graph.licensed(&id, Some(&model.license));
    let file_name = model
        .destination
        .as_str()
        .rsplit('/')
        .next()
        .unwrap_or_default();
    graph.artifact(
        &id,
        &format!("model-{index}-file"),
        file_name,
        "model",
        hashes(&model.sha256.to_hex(), facts.sha512.as_ref()),
    );
    id
}

/// One `[[components]]` file as an application package with its file.
fn component(graph: &mut Graph<'_>, index: usize, pinned: &ComponentFacts<'_>) -> String {
    let component = pinned.component;
    let digests = || hashes(&component.sha256.to_hex(), pinned.sha512.as_ref());
    let mut fields = json!({
        "name": component.name.as_str(),
        "software_packageVersion": component.version,
        "software_primaryPurpose": "application",
        "software_downloadLocation": component.url.as_ref().map_or("NOASSERTION", |u| u.as_str()),
        "verifiedUsing": digests(),
        "comment": format!("installed at {}", component.destination.as_str()),
    });
    if let Some(copyright) = &component.copyright {
        fields["software_copyrightText"] = json!(copyright);
    }
    if let Some(source) = &component.source {
        fields["software_sourceInfo"] = json!(format!("built from {source}"));
    }
    if let Some(supplier) = pinned.supplier {
        let agent = graph.agent(supplier);
        fields["suppliedBy"] = json!(agent);
        fields["originatedBy"] = json!([agent]);
    }
    let id = graph.add("software_Package", &format!("component-{index}"), fields);
    graph.licensed(&id, Some(&component.license));
    let file_name = component
        .destination
        .as_str()
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let purpose = if component.executable {
        "executable"
    } else {
        "file"
    };
    graph.artifact(
        &id,
        &format!("component-{index}-file"),
        file_name,
        purpose,
        digests(),
    );
    id
}

/// The Debian packages, their artifacts and their dependencies; their ids.
fn debs(graph: &mut Graph<'_>, facts: &Facts<'_>) -> Vec<String> {
    let distribution = facts.distribution.as_ref().map(|d| graph.agent(d));
    let mut ids = BTreeMap::new();
    for (index, deb) in facts.debs.iter().enumerate() {
        let mut fields = json!({
            "name": deb.name,
            "software_packageVersion": deb.version,
            "software_packageUrl": deb.purl,
            "software_primaryPurpose": "library",
            "software_downloadLocation": "NOASSERTION",
            "software_sourceInfo": format!("built from Debian source package {} {}", deb.source, deb.source_version),
            "externalIdentifier": [{"type": "ExternalIdentifier", "externalIdentifierType": "packageUrl", "identifier": deb.purl}],
            "verifiedUsing": hashes(&deb.sha256, Some(&deb.sha512)),
        });
        if let Some(text) = copyright(&deb.notice) {
            fields["software_copyrightText"] = json!(text);
        }
        if let Some(supplier) = &deb.supplier {
            fields["suppliedBy"] = json!(graph.agent(supplier));
        }
        if let Some(distribution) = &distribution {
            fields["originatedBy"] = json!([distribution]);
        }
        let id = graph.add(
            "software_Package",
            &format!("deb-{index}-{}", deb.name),
            fields,
        );
        graph.licensed(&id, deb.license.as_deref());
        graph.artifact(
            &id,
            &format!("deb-{index}-file"),
            &deb.file_name,
            "archive",
            hashes(&deb.sha256, Some(&deb.sha512)),
        );
        ids.insert(deb.name.clone(), id);
    }
    for deb in &facts.debs {
        let to: Vec<String> = deb
            .depends
            .iter()
            .filter_map(|n| ids.get(n).cloned())
            .collect();
        let completeness = if deb.complete {
            "complete"
        } else {
            "incomplete"
        };
        graph.relate(&ids[&deb.name], "dependsOn", to, Some(completeness));
    }
    facts.debs.iter().map(|d| ids[&d.name].clone()).collect()
}

/// The image's own package.
fn image(graph: &mut Graph<'_>, facts: &Facts<'_>) -> String {
    let image = &facts.input.recipe.image;
    let mut fields = json!({
        "name": image.name.as_str(),
        "software_packageVersion": image.version.to_string(),
        "software_primaryPurpose": "operatingSystem",
        "software_downloadLocation": "NOASSERTION",
    });
    if !image.description.is_empty() {
        fields["description"] = json!(image.description);
    }
    if let Some(copyright) = &image.copyright {
        fields["software_copyrightText"] = json!(copyright);
    }
    if let Some(supplier) = &image.supplier {
        let agent = graph.agent(supplier);
        fields["suppliedBy"] = json!(agent);
        fields["originatedBy"] = json!([agent]);
    }
    let id = graph.add("software_Package", "image", fields);
    graph.licensed(&id, image.license.as_deref());
    for (index, artifact) in facts.artifacts.iter().enumerate() {
        graph.artifact(
            &id,
            &format!("image-file-{index}"),
            &artifact.name,
            artifact_purpose(&artifact.name),
            hashes(&artifact.sha256, Some(&artifact.sha512)),
        );
    }
    id
}

/// What an artifact of the image is, in SPDX 3's words.
fn artifact_purpose(name: &str) -> &'static str {
    use airlock_format::names::image as names;
    match name {
        n if n == names::ROOTFS_TAR => "archive",
        n if n == names::EROFS => "filesystemImage",
        n if n == names::KERNEL => "operatingSystem",
        n if n == names::INITRD => "filesystemImage",
        _ => "data",
    }
}

/// The whole document.
pub(super) fn document(facts: &Facts<'_>) -> Value {
    let input = facts.input;
    let recipe = input.recipe;
    let mut graph = Graph::new(
        format!("urn:uuid:{}", derived_uuid(input.inputs, "spdx3")),
        &facts.refs,
    );
    let tool = graph.add(
        "Tool",
        "airlock",
        json!({"name": format!("airlock {}", input.airlock_version)}),
    );
    let author = match &recipe.image.supplier {
        Some(supplier) => graph.agent(supplier),
        None => graph.add(
            "SoftwareAgent",
            "airlock-agent",
            json!({"name": format!("airlock {}", input.airlock_version)}),
        ),
    };
    let image = image(&mut graph, facts);
    let mut contained = debs(&mut graph, facts);
    for (index, model_facts) in facts.models.iter().enumerate() {
        contained.push(model(&mut graph, index, model_facts));
    }
    for (index, pinned) in facts.components.iter().enumerate() {
        contained.push(component(&mut graph, index, pinned));
    }
    graph.relate(&image, "contains", contained, Some("complete"));
    let data_license = graph.license("CC0-1.0");
    let members: Vec<String> = graph
        .elements
        .iter()
        .filter_map(|e| e["spdxId"].as_str().map(str::to_owned))
        .collect();
    let sbom = graph.add(
        "software_Sbom",
        "sbom",
        json!({"software_sbomType": ["build"], "rootElement": [image], "element": members}),
    );
    let mut all = members;
    all.push(sbom.clone());
    let name = format!("{}-{}", recipe.image.name.as_str(), recipe.image.version);
    graph.add(
        "SpdxDocument",
        "document",
        json!({
            "name": name,
            "dataLicense": data_license,
            "profileConformance": ["core", "software", "simpleLicensing", "expandedLicensing", "ai"],
            "rootElement": [sbom],
            "element": all,
        }),
    );
    let mut elements = vec![json!({
        "type": "CreationInfo",
        "@id": CREATION,
        "specVersion": "3.0.1",
        "created": timestamp(recipe.image.epoch),
        "createdBy": [author],
        "createdUsing": [tool],
    })];
    elements.extend(graph.elements);
    json!({"@context": CONTEXT, "@graph": elements})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::licenses::LicenseText;

    /// The example model (recipes/agent-node.toml) as an AI package, with
    /// its file and license: what a reviewer reads about the model.
    #[test]
    fn the_example_models_ai_package() {
        let recipe = super::super::tests::example_recipe();
        let facts = super::super::tests::example_model(&recipe);
        let refs = Refs::new();
        let mut graph = Graph::new("urn:uuid:example".to_owned(), &refs);
        model(&mut graph, 0, &facts);
        expect_test::expect_file!["../../tests/snapshots/example-model.spdx3.json"]
            .assert_eq(&super::super::pretty(&json!(graph.elements)));
    }

    /// A pinned component as an application package with its executable
    /// file, license and supplier.
    #[test]
    fn a_component_is_an_application_package() {
        let recipe = super::super::tests::example_recipe();
        let host_tool = super::super::tests::example_component();
        let supplier = super::super::tests::example_supplier(&recipe);
        let facts = super::super::tests::example_component_facts(&host_tool, &supplier);
        let refs = Refs::new();
        let mut graph = Graph::new("urn:uuid:example".to_owned(), &refs);
        component(&mut graph, 0, &facts);
        expect_test::expect_file!["../../tests/snapshots/example-component.spdx3.json"]
            .assert_eq(&super::super::pretty(&json!(graph.elements)));
    }

    #[test]
    fn license_refs_become_custom_licenses_once() {
        let mut refs = Refs::new();
        refs.insert(
            "LicenseRef-x".to_owned(),
            LicenseText {
                name: "x".to_owned(),
                text: "the x terms".to_owned(),
            },
        );
        let mut graph = Graph::new("urn:uuid:t".to_owned(), &refs);
        let a = graph.license("MIT AND LicenseRef-x");
        let b = graph.license("(LicenseRef-x OR MIT)");
        assert_eq!(a, graph.license("MIT AND LicenseRef-x"));
        assert_ne!(a, b);
        let custom: Vec<&Value> = graph
            .elements
            .iter()
            .filter(|e| e["type"] == "expandedlicensing_CustomLicense")
            .collect();
        assert_eq!(custom.len(), 1);
        assert_eq!(custom[0]["simplelicensing_licenseText"], "the x terms");
        let expression = graph
            .elements
            .iter()
            .find(|e| e["spdxId"] == b.as_str())
            .unwrap();
        assert_eq!(
            expression["simplelicensing_customIdToUri"][0]["value"],
            custom[0]["spdxId"]
        );
    }
}
