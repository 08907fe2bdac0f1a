//! The CycloneDX 1.6 document.

use serde_json::{Value, json};

use super::licenses::{FREE_FORM, Notice, Refs};
use super::{
    ComponentFacts, Deb, Facts, ModelFacts, PRIVILEGE_PROPERTY, derived_uuid, privileges_of,
    timestamp,
};
use airlock_recipe::Party;

/// A party as an organizational entity (CycloneDX's supplier).
fn entity(party: &Party) -> Value {
    let mut entity = json!({"name": party.name});
    if let Some(url) = &party.url {
        entity["url"] = json!([url]);
    }
    if let Some(email) = &party.email {
        entity["contact"] = json!([{"email": email}]);
    }
    entity
}

fn property(name: &str, value: impl Into<Value>) -> Value {
    json!({"name": name, "value": value.into()})
}

/// One Debian package as a component, with its privileged paths.
fn deb(facts: &Facts<'_>, deb: &Deb) -> Value {
    let mut properties = vec![
        property("airlock:source", deb.source.as_str()),
        property("airlock:source-version", deb.source_version.as_str()),
        property("airlock:file-name", deb.file_name.as_str()),
    ];
    if let Some(distribution) = &facts.distribution {
        properties.push(property("airlock:originator", distribution.name.as_str()));
    }
    for line in privileges_of(facts.input, Some(&deb.name)) {
        properties.push(property(PRIVILEGE_PROPERTY, line));
    }
    let mut component = json!({
        "type": "library",
        "bom-ref": deb.purl,
        "name": deb.name,
        "version": deb.version,
        "purl": deb.purl,
        "hashes": hashes(&deb.sha256, Some(&deb.sha512)),
        "properties": properties,
    });
    if let Some(supplier) = &deb.supplier {
        component["supplier"] = entity(supplier);
    }
    if let Some(license) = &deb.license {
        component["licenses"] = licenses(license, &facts.refs);
    }
    if let Notice::Text(text) = &deb.notice {
        component["copyright"] = json!(text);
    }
    component
}

/// A package's licenses: its SPDX expression, or for a free-form
/// copyright file the license by name, which is no expression a policy can
/// evaluate (`allow_unknown_licenses` decides, as it always has for such
/// packages).
fn licenses(license: &str, refs: &Refs) -> Value {
    match refs.get(license) {
        Some(text) if license.starts_with(FREE_FORM) => {
            json!([{"license": {"name": text.name, "acknowledgement": "declared"}}])
        }
        _ => json!([{ "expression": license, "acknowledgement": "declared" }]),
    }
}

fn hashes(sha256: &str, sha512: Option<&String>) -> Value {
    let mut hashes = vec![json!({"alg": "SHA-256", "content": sha256})];
    if let Some(sha512) = sha512.filter(|s| !s.is_empty()) {
        hashes.push(json!({"alg": "SHA-512", "content": sha512}));
    }
    json!(hashes)
}

/// The model card: modelParameters, considerations, and what CycloneDX
/// has no field for as properties (its energy figures need the energy
/// provider, which a card does not know).
fn model_card(card: &airlock_recipe::ModelCard) -> Value {
    let mut model_card = json!({});
    let mut parameters = json!({});
    if !card.architecture.is_empty() {
        parameters["architectureFamily"] = json!(card.architecture);
    }
    if !card.task.is_empty() {
        parameters["task"] = json!(card.task);
    }
    if parameters != json!({}) {
        model_card["modelParameters"] = parameters;
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
    let mut properties = Vec::new();
    for kind in &card.type_of_model {
        properties.push(property("airlock:type-of-model", kind.as_str()));
    }
    for domain in &card.domain {
        properties.push(property("airlock:domain", domain.as_str()));
    }
    if !card.training.is_empty() {
        properties.push(property("airlock:training", card.training.as_str()));
    }
    for (name, value) in [
        ("airlock:training-energy-kwh", card.training_energy_kwh),
        ("airlock:inference-energy-kwh", card.inference_energy_kwh),
    ] {
        if let Some(value) = value {
            properties.push(property(name, value.to_string()));
        }
    }
    if let Some(sensitive) = card.sensitive_personal_information {
        properties.push(property(
            "airlock:sensitive-personal-information",
            if sensitive { "yes" } else { "no" },
        ));
    }
    if let Some(risk) = card.safety_risk {
        properties.push(property("airlock:safety-risk", super::spdx3::risk(risk)));
    }
    if !properties.is_empty() {
        model_card["properties"] = json!(properties);
    }
    model_card
}

/// One model as a machine-learning-model component with its model card.
fn model(facts: &ModelFacts<'_>) -> (String, Value) {
    let model = facts.model;
    let card = &model.card;
    let bom_ref = format!("model:{}", model.name.as_str());
    let mut properties = vec![property("airlock:path", model.destination.as_str())];
    if let Some(size) = facts.size {
        properties.push(property("airlock:size", size.to_string()));
    }
    for (name, value) in [
        ("airlock:format", &card.format),
        ("airlock:parameters", &card.parameters),
        ("airlock:quantization", &card.quantization),
    ] {
        if !value.is_empty() {
            properties.push(property(name, value.as_str()));
        }
    }
    let mut component = json!({
        "type": "machine-learning-model",
        "bom-ref": bom_ref,
        "name": model.name.as_str(),
        "hashes": hashes(&model.sha256.to_hex(), facts.sha512.as_ref()),
        "licenses": [{"expression": model.license, "acknowledgement": "declared"}],
        "properties": properties,
    });
    if !card.version.is_empty() {
        component["version"] = json!(card.version);
    }
    if let Some(supplier) = &card.supplier {
        component["supplier"] = entity(supplier);
    }
    if !card.copyright.is_empty() {
        component["copyright"] = json!(card.copyright);
    }
    if !card.description.is_empty() {
        component["description"] = json!(card.description);
    }
    let model_card = model_card(card);
    if model_card != json!({}) {
        component["modelCard"] = model_card;
    }
    (bom_ref, component)
}

/// One `[[components]]` file as an application component, found in the
/// image at its `airlock:path`.
fn component(pinned: &ComponentFacts<'_>) -> (String, Value) {
    let component = pinned.component;
    let bom_ref = format!("component:{}", component.name.as_str());
    let mut properties = vec![property("airlock:path", component.destination.as_str())];
    if let Some(size) = pinned.size {
        properties.push(property("airlock:size", size.to_string()));
    }
    let mut value = json!({
        "type": "application",
        "bom-ref": bom_ref,
        "name": component.name.as_str(),
        "version": component.version,
        "hashes": hashes(&component.sha256.to_hex(), pinned.sha512.as_ref()),
        "licenses": [{"expression": component.license, "acknowledgement": "declared"}],
        "properties": properties,
    });
    if let Some(supplier) = pinned.supplier {
        value["supplier"] = entity(supplier);
    }
    if let Some(copyright) = &component.copyright {
        value["copyright"] = json!(copyright);
    }
    if let Some(source) = &component.source {
        value["externalReferences"] = json!([{"type": "vcs", "url": source}]);
    }
    (bom_ref, value)
}

/// The image's own component.
fn image(facts: &Facts<'_>) -> Value {
    let image = &facts.input.recipe.image;
    let mut component = json!({
        "type": "operating-system",
        "bom-ref": "image",
        "name": image.name.as_str(),
        "version": image.version.to_string(),
    });
    if let Some(supplier) = &image.supplier {
        component["supplier"] = entity(supplier);
    }
    if let Some(license) = &image.license {
        component["licenses"] = json!([{"expression": license, "acknowledgement": "declared"}]);
    }
    if let Some(copyright) = &image.copyright {
        component["copyright"] = json!(copyright);
    }
    let own: Vec<Value> = privileges_of(facts.input, None)
        .into_iter()
        .map(|line| property(PRIVILEGE_PROPERTY, line))
        .collect();
    if !own.is_empty() {
        component["properties"] = json!(own);
    }
    component
}

/// The whole document.
pub(super) fn document(facts: &Facts<'_>) -> Value {
    let input = facts.input;
    let recipe = input.recipe;
    let mut components = Vec::new();
    let mut refs = Vec::new();
    let mut dependencies = Vec::new();
    let (mut complete, mut incomplete) = (vec![json!("image")], Vec::new());
    let purl_of = |name: &String| {
        facts
            .debs
            .iter()
            .find(|d| &d.name == name)
            .map(|d| d.purl.clone())
    };
    for deb_facts in &facts.debs {
        refs.push(deb_facts.purl.clone());
        components.push(deb(facts, deb_facts));
        let on: Vec<String> = deb_facts.depends.iter().filter_map(purl_of).collect();
        dependencies.push(json!({"ref": deb_facts.purl, "dependsOn": on}));
        if deb_facts.complete {
            &mut complete
        } else {
            &mut incomplete
        }
        .push(json!(deb_facts.purl));
    }
    for model_facts in &facts.models {
        let (bom_ref, component) = model(model_facts);
        refs.push(bom_ref);
        components.push(component);
    }
    for pinned in &facts.components {
        let (bom_ref, value) = component(pinned);
        refs.push(bom_ref);
        components.push(value);
    }
    for (path, sha256, _) in &facts.files {
        let bom_ref = format!("file:{path}");
        components.push(json!({
            "type": "file",
            "bom-ref": bom_ref,
            "name": path,
            "hashes": [{"alg": "SHA-256", "content": sha256}],
        }));
        refs.push(bom_ref);
    }
    dependencies.insert(0, json!({"ref": "image", "dependsOn": refs}));
    let mut compositions = vec![json!({"aggregate": "complete", "dependencies": complete})];
    if !incomplete.is_empty() {
        compositions.push(json!({"aggregate": "incomplete", "dependencies": incomplete}));
    }
    let mut metadata = json!({
        "timestamp": timestamp(recipe.image.epoch),
        "lifecycles": [{"phase": "build"}],
        "tools": {"components": [{
            "type": "application",
            "name": "airlock",
            "version": input.airlock_version,
        }]},
        "component": image(facts),
    });
    if let Some(supplier) = &recipe.image.supplier {
        metadata["supplier"] = entity(supplier);
    }
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", derived_uuid(input.inputs, "cyclonedx")),
        "version": 1,
        "metadata": metadata,
        "components": components,
        "dependencies": dependencies,
        "compositions": compositions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_form_copyright_file_is_a_named_license_not_an_expression() {
        let mut refs = Refs::new();
        let read = crate::sbom::licenses::read("x", Some(b"Copyright 2020 X\n"), &mut refs);
        let id = read.license.unwrap();
        let named = licenses(&id, &refs);
        assert_eq!(named[0]["expression"], Value::Null);
        assert_eq!(named[0]["license"]["name"], json!(refs[&id].name));
        let dep5 = licenses("GPL-2.0-or-later", &refs);
        assert_eq!(dep5[0]["expression"], "GPL-2.0-or-later");
    }

    /// The example model (recipes/agent-node.toml) as a CycloneDX
    /// component with its model card.
    #[test]
    fn the_example_models_model_card() {
        let recipe = super::super::tests::example_recipe();
        let facts = super::super::tests::example_model(&recipe);
        let (bom_ref, component) = model(&facts);
        assert_eq!(bom_ref, "model:example-agent-model");
        expect_test::expect_file!["../../tests/snapshots/example-model.cdx.json"]
            .assert_eq(&super::super::pretty(&component));
    }

    /// A pinned component (airlock's host tool) as an application with its
    /// version, digests, image path and the image's supplier: what verify
    /// matches against the image.
    #[test]
    fn a_component_is_an_application_at_its_path() {
        let recipe = super::super::tests::example_recipe();
        let host_tool = super::super::tests::example_component();
        let supplier = super::super::tests::example_supplier(&recipe);
        let facts = super::super::tests::example_component_facts(&host_tool, &supplier);
        let (bom_ref, value) = component(&facts);
        assert_eq!(bom_ref, "component:airlock-host");
        expect_test::expect_file!["../../tests/snapshots/example-component.cdx.json"]
            .assert_eq(&super::super::pretty(&value));
    }
}
