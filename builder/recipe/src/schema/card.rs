//! What the SBOMs say about who supplies the image and its models, and the
//! model card: `[image] supplier`, `[models.card]`. Every key added after
//! the first release is left out of the recipe's canonical JSON when it is
//! unset, so older recipes keep their digests.

use serde::{Deserialize, Serialize};

/// A supplier or author: a person or an organization, with the contact a
/// compliance checker asks for (BSI TR-03183 wants an email or a URL).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    /// The name.
    pub name: String,
    /// A person or an organization (the default).
    #[serde(default)]
    pub kind: PartyKind,
    /// A contact address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// A web address (http or https).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Party {
    /// What is wrong with it, if anything.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() || self.name.contains(['<', '>', '(', ')', '\n']) {
            problems.push(format!(
                "name {:?} must be non-empty, one line, without <>()",
                self.name
            ));
        }
        if let Some(email) = &self.email
            && (email.split('@').count() != 2
                || email.starts_with('@')
                || email.ends_with('@')
                || email.contains(|c: char| c.is_whitespace() || "<>()".contains(c)))
        {
            problems.push(format!("email {email:?} is not an address"));
        }
        if let Some(url) = &self.url
            && (!(url.starts_with("https://") || url.starts_with("http://"))
                || url.contains(char::is_whitespace))
        {
            problems.push(format!("url {url:?} must be an http(s) address"));
        }
        problems
    }
}

/// Whether a [`Party`] is a person or an organization.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartyKind {
    /// An organization.
    #[default]
    Organization,
    /// A person.
    Person,
}

/// The risk a model's safety assessment found (SPDX 3's
/// `ai_safetyRiskAssessment`, after the EU AI Act's tiers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SafetyRisk {
    /// Serious.
    Serious,
    /// High.
    High,
    /// Medium.
    Medium,
    /// Low.
    Low,
}

/// Model-card fields: the CycloneDX modelCard and SPDX 3's AI profile.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelCard {
    /// What the model is.
    pub description: String,
    /// Model architecture family (e.g. "llama").
    pub architecture: String,
    /// File format (e.g. "gguf").
    pub format: String,
    /// Parameter count, as text (e.g. "7B").
    pub parameters: String,
    /// Quantization (e.g. "Q4_K_M").
    pub quantization: String,
    /// Intended use.
    pub intended_use: String,
    /// Known limitations.
    pub limitations: String,
    /// The model's own version (the SBOMs' component version).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Who supplies the weights.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supplier: Option<Party>,
    /// The weights' copyright notice.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub copyright: String,
    /// Types of model (e.g. "transformer", "supervised").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub type_of_model: Vec<String>,
    /// Domains it is meant for (e.g. "text generation").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub domain: Vec<String>,
    /// The task it performs (CycloneDX's `modelParameters.task`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub task: String,
    /// How it was trained: data, method.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub training: String,
    /// Energy spent training it, in kilowatt-hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training_energy_kwh: Option<f64>,
    /// Energy spent per inference run, in kilowatt-hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference_energy_kwh: Option<f64>,
    /// Whether it was trained on or processes sensitive personal data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensitive_personal_information: Option<bool>,
    /// The risk its safety assessment found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety_risk: Option<SafetyRisk>,
}

impl ModelCard {
    /// What is wrong with it, if anything.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(supplier) = &self.supplier {
            problems.extend(
                supplier
                    .problems()
                    .into_iter()
                    .map(|p| format!("supplier {p}")),
            );
        }
        for (key, value) in [
            ("training_energy_kwh", self.training_energy_kwh),
            ("inference_energy_kwh", self.inference_energy_kwh),
        ] {
            if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
                problems.push(format!("{key} must be a number of at least 0"));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parties_and_cards_name_what_is_wrong() {
        let party = |name: &str, email: Option<&str>, url: Option<&str>| Party {
            name: name.to_owned(),
            kind: PartyKind::Person,
            email: email.map(str::to_owned),
            url: url.map(str::to_owned),
        };
        assert!(
            party("Ada", Some("ada@example.org"), Some("https://x.example"))
                .problems()
                .is_empty()
        );
        assert_eq!(party("", None, None).problems().len(), 1);
        assert_eq!(party("A <b>", None, None).problems().len(), 1);
        assert_eq!(party("A", Some("no-at"), None).problems().len(), 1);
        assert_eq!(party("A", Some("a@b@c"), None).problems().len(), 1);
        assert_eq!(party("A", None, Some("ftp://x")).problems().len(), 1);
        let card = ModelCard {
            training_energy_kwh: Some(-1.0),
            inference_energy_kwh: Some(f64::NAN),
            ..ModelCard::default()
        };
        assert_eq!(card.problems().len(), 2);
        assert!(ModelCard::default().problems().is_empty());
    }
}
