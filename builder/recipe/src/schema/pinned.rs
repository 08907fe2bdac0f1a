//! Files the recipe pins by digest besides the packages: `[[components]]`,
//! and the view fetching, locking and installing share of them and the
//! models.

use serde::{Deserialize, Serialize};

use super::{Party, Recipe};
use crate::values::*;
use airlock_format::Sha256;

/// `[[components]]`: a file other than model weights that the image
/// carries, pinned by digest like every input and listed in the SBOMs as an
/// application with its version: airlock's host tool, for one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// Short name (unique among models and components).
    pub name: ImageName,
    /// Its version, as its supplier numbers it.
    pub version: String,
    /// sha256 of the file.
    pub sha256: Sha256,
    /// A file on the build host (relative to the recipe).
    pub path: Option<HostPath>,
    /// A URL, fetched only by `airlock fetch`.
    pub url: Option<Url>,
    /// Where the file lands in the image (read-only).
    pub destination: ImagePath,
    /// Whether it is a program (mode 0555 rather than 0444).
    #[serde(default)]
    pub executable: bool,
    /// SPDX license expression.
    pub license: String,
    /// Who supplies it; absent: the image's supplier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supplier: Option<Party>,
    /// Where its source is (a repository, a release: an http or https
    /// URL), for the SBOMs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Url>,
    /// Its copyright notice, for the SBOMs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copyright: Option<String>,
}

impl Component {
    /// Its mode in the image.
    pub fn mode(&self) -> u32 {
        if self.executable { 0o555 } else { 0o444 }
    }
}

/// A file the recipe pins by digest, a model or a component, as fetching,
/// locking and installing see it.
#[derive(Clone, Copy, Debug)]
pub struct Pinned<'r> {
    /// `model` or `component`.
    pub kind: &'static str,
    /// Its name.
    pub name: &'r str,
    /// sha256 of the file.
    pub sha256: Sha256,
    /// A file on the build host.
    pub path: Option<&'r HostPath>,
    /// A URL.
    pub url: Option<&'r Url>,
    /// Where it lands in the image.
    pub destination: &'r ImagePath,
    /// Its mode there.
    pub mode: u32,
}

impl Pinned<'_> {
    /// The recipe's section that names it, for messages.
    pub fn section(&self) -> &'static str {
        if self.kind == "model" {
            "[[models]]"
        } else {
            "[[components]]"
        }
    }
}

impl Recipe {
    /// Every file pinned by digest: the models, then the components.
    pub fn pinned(&self) -> impl Iterator<Item = Pinned<'_>> {
        let models = self.models.iter().map(|m| Pinned {
            kind: "model",
            name: m.name.as_str(),
            sha256: m.sha256,
            path: m.path.as_ref(),
            url: m.url.as_ref(),
            destination: &m.destination,
            mode: 0o444,
        });
        let components = self.components.iter().map(|c| Pinned {
            kind: "component",
            name: c.name.as_str(),
            sha256: c.sha256,
            path: c.path.as_ref(),
            url: c.url.as_ref(),
            destination: &c.destination,
            mode: c.mode(),
        });
        models.chain(components)
    }
}
