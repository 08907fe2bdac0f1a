//! The image's SBOMs: CycloneDX 1.6, SPDX 2.3 and SPDX 3.0 (JSON-LD, with
//! the AI profile), from the lock, the finished tree and the recipe. One
//! set of facts feeds all three, so they cannot disagree:
//!
//! - each Debian package's supplier is its `Maintainer` (from the image's
//!   own dpkg database), its originator the distribution (os-release's
//!   `NAME` and `HOME_URL`); its licenses and copyright notices come from
//!   its copyright file ([`licenses`]); its dependencies are its Depends
//!   and Pre-Depends resolved against the installed set ([`debian`]),
//!   marked incomplete where one did not resolve;
//! - each .deb and model file is hashed with SHA-256 (the lock's) and
//!   SHA-512 (which BSI TR-03183 asks for), streamed from the store;
//! - the image itself, its models and the SBOMs' author are what the recipe
//!   states (`[image] supplier`, `license`, `copyright`; `[models.card]`).
//!
//! Nothing is invented: an unknown value is NOASSERTION (or omitted where a
//! format has no such word). Deterministic: identifiers derive from the
//! inputs digest, timestamps are the epoch, every list is in lock or path
//! order.
//!
//! No maintained Rust crate models these three formats together, so the
//! documents are written with `serde_json`; the tests validate them with
//! the reference validators (cyclonedx-python-lib, spdx-tools) and the
//! compliance checker (ntia-conformance-checker).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use airlock_recipe::{Component, Lock, Model, Party, Recipe};
use airlock_store::Store;
use airlock_tree::{Kind, Tree};
use rayon::prelude::*;
use serde_json::Value;
use sha2::Digest;

use crate::BuildError;
use crate::configure::files::Added;
use crate::extract::Package;

mod cyclonedx;
pub mod debian;
pub mod licenses;
mod spdx2;
mod spdx3;

use licenses::{Notice, Refs};
pub use licenses::{debian_licenses, expression};

/// The CycloneDX document's file name.
pub const CYCLONEDX: &str = airlock_format::names::image::CYCLONEDX;
/// The SPDX 2.3 document's file name.
pub const SPDX: &str = airlock_format::names::image::SPDX;
/// The SPDX 3.0 document's file name.
pub const SPDX3: &str = airlock_format::names::image::SPDX3;

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
    /// The locked packages' .debs, in lock order.
    pub debs: &'a [Package],
    /// The locked models' files: (name, path).
    pub models: &'a [(String, std::path::PathBuf)],
    /// The locked components' files: (name, path).
    pub components: &'a [(String, std::path::PathBuf)],
    /// The artifacts as written, hashed (see [`hash_artifacts`]).
    pub artifacts: &'a [Hashed],
    /// The files the recipe added.
    pub added: &'a [Added],
    /// The privilege inventory (setuid, capabilities, devices).
    pub privileges: &'a [crate::privilege::Privileged],
    /// The inputs digest (hex).
    pub inputs: &'a str,
    /// airlock's version.
    pub airlock_version: &'a str,
}

/// The three documents, as pretty JSON text.
#[derive(Debug)]
pub struct Documents {
    /// CycloneDX 1.6.
    pub cyclonedx: String,
    /// SPDX 2.3.
    pub spdx: String,
    /// SPDX 3.0.1.
    pub spdx3: String,
}

/// One Debian package as the SBOMs state it.
struct Deb {
    name: String,
    version: String,
    /// The .deb's file name.
    file_name: String,
    purl: String,
    sha256: String,
    sha512: String,
    source: String,
    source_version: String,
    /// SPDX expression from the copyright file (declared and concluded).
    license: Option<String>,
    notice: Notice,
    supplier: Option<Party>,
    /// The installed packages it depends on.
    depends: Vec<String>,
    /// Whether every one of its relations resolved.
    complete: bool,
}

/// One model as the SBOMs state it.
struct ModelFacts<'a> {
    model: &'a Model,
    size: Option<u64>,
    sha512: Option<String>,
}

/// One component (`[[components]]`) as the SBOMs state it.
struct ComponentFacts<'a> {
    component: &'a Component,
    size: Option<u64>,
    sha512: Option<String>,
    /// Its own supplier, or the image's.
    supplier: Option<&'a Party>,
}

/// Everything the documents say, gathered once.
struct Facts<'a> {
    input: &'a Input<'a>,
    debs: Vec<Deb>,
    models: Vec<ModelFacts<'a>>,
    components: Vec<ComponentFacts<'a>>,
    /// Files the recipe added: (path, sha256, sha1).
    files: Vec<(String, String, String)>,
    refs: Refs,
    distribution: Option<Party>,
    /// The image's artifacts.
    artifacts: &'a [Hashed],
}

/// All three documents.
pub fn generate(input: &Input<'_>) -> Result<Documents, BuildError> {
    let facts = gather(input)?;
    Ok(Documents {
        cyclonedx: pretty(&cyclonedx::document(&facts)),
        spdx: pretty(&spdx2::document(&facts)),
        spdx3: pretty(&spdx3::document(&facts)),
    })
}

/// The components as the SBOMs state them, their files hashed (SHA-512)
/// in parallel.
fn components<'a>(input: &'a Input<'a>) -> Result<Vec<ComponentFacts<'a>>, BuildError> {
    let component_sha512: BTreeMap<&str, String> = input
        .components
        .par_iter()
        .map(|(name, path)| Ok((name.as_str(), hash_file(path)?.1)))
        .collect::<Result<_, BuildError>>()?;
    Ok(input
        .recipe
        .components
        .iter()
        .map(|component| ComponentFacts {
            component,
            size: input
                .lock
                .pinned("component", component.name.as_str())
                .map(|c| c.size),
            sha512: component_sha512.get(component.name.as_str()).cloned(),
            supplier: component
                .supplier
                .as_ref()
                .or(input.recipe.image.supplier.as_ref()),
        })
        .collect())
}

fn gather<'a>(input: &'a Input<'a>) -> Result<Facts<'a>, BuildError> {
    let status =
        tree_text(input, "var/lib/dpkg/status")?.map_or_else(BTreeMap::new, |t| debian::status(&t));
    let dependencies = debian::dependencies(&status);
    let distribution = tree_text(input, "etc/os-release")?.and_then(|t| debian::distribution(&t));
    let deb_sha512: BTreeMap<&str, String> = input
        .debs
        .par_iter()
        .map(|p| Ok((p.name.as_str(), hash_file(&p.deb)?.1)))
        .collect::<Result<_, BuildError>>()?;
    let model_sha512: BTreeMap<&str, String> = input
        .models
        .par_iter()
        .map(|(name, path)| Ok((name.as_str(), hash_file(path)?.1)))
        .collect::<Result<_, BuildError>>()?;
    let mut refs = Refs::new();
    let mut debs = Vec::new();
    for package in &input.lock.packages {
        let codename = input
            .lock
            .archive
            .suites
            .iter()
            .find(|s| s.name == package.suite)
            .map_or(package.suite.as_str(), |s| s.codename.as_str());
        let text = tree_bytes(input, &format!("usr/share/doc/{}/copyright", package.name))?;
        let licensing = licenses::read(&package.name, text.as_deref(), &mut refs);
        let (depends, complete) = dependencies
            .get(&package.name)
            .cloned()
            .unwrap_or((Vec::new(), false));
        debs.push(Deb {
            name: package.name.clone(),
            version: package.version.clone(),
            file_name: package
                .filename
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned(),
            purl: format!(
                "pkg:deb/debian/{}@{}?arch={}&distro={}",
                package.name,
                percent(&package.version),
                package.architecture,
                percent(codename)
            ),
            sha256: package.sha256.to_hex(),
            sha512: deb_sha512
                .get(package.name.as_str())
                .cloned()
                .unwrap_or_default(),
            source: package.source.clone(),
            source_version: package.source_version.clone(),
            license: licensing.license,
            notice: licensing.notice,
            supplier: status
                .get(&package.name)
                .and_then(|s| debian::maintainer(&s.maintainer)),
            depends,
            complete,
        });
    }
    let models = input
        .recipe
        .models
        .iter()
        .map(|model| ModelFacts {
            model,
            size: input
                .lock
                .models
                .iter()
                .find(|m| m.name == model.name.as_str())
                .map(|m| m.size),
            sha512: model_sha512.get(model.name.as_str()).cloned(),
        })
        .collect();
    let components = components(input)?;
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
    Ok(Facts {
        input,
        debs,
        models,
        components,
        files,
        refs,
        distribution,
        artifacts: input.artifacts,
    })
}

/// One artifact as written: its name, size, SHA-256 (the build report's)
/// and SHA-512 (the SPDX 3 SBOM's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hashed {
    /// The file's name in the image folder.
    pub name: String,
    /// Its size.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// SHA-512, hex.
    pub sha512: String,
}

/// The artifacts in `dir` (those of [`airlock_format::names::image::ARTIFACTS`]
/// the image has), in that order, each read once, in parallel.
pub fn hash_artifacts(dir: &Path) -> Result<Vec<Hashed>, BuildError> {
    airlock_format::names::image::ARTIFACTS
        .par_iter()
        .filter(|name| dir.join(name).is_file())
        .map(|name| {
            let path = dir.join(name);
            let (sha256, sha512) = hash_file(&path)?;
            let size = std::fs::metadata(&path)
                .map_err(crate::pipeline::io(path.display().to_string()))?
                .len();
            Ok(Hashed {
                name: (*name).to_owned(),
                size,
                sha256,
                sha512,
            })
        })
        .collect()
}

/// SHA-256 and SHA-512 of a file, streamed in one pass.
fn hash_file(path: &Path) -> Result<(String, String), BuildError> {
    let io = || crate::pipeline::io(path.display().to_string());
    let mut file = std::fs::File::open(path).map_err(io())?;
    let (mut sha256, mut sha512) = (sha2::Sha256::new(), sha2::Sha512::new());
    let mut buffer = vec![0; 1 << 20];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                sha256.update(&buffer[..n]);
                sha512.update(&buffer[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io()(e)),
        }
    }
    Ok((
        hex::encode(sha256.finalize()),
        hex::encode(sha512.finalize()),
    ))
}

/// A regular file of the finished tree (symlinks followed), at most 4 MiB.
fn tree_bytes(input: &Input<'_>, path: &str) -> Result<Option<Vec<u8>>, BuildError> {
    match input.tree.lookup(path) {
        Some((_, node)) => match &node.kind {
            Kind::File(content) if content.size() <= 4 << 20 => {
                Ok(Some(crate::configure::read_content(input.blobs, content)?))
            }
            _ => Ok(None),
        },
        None => Ok(None),
    }
}

fn tree_text(input: &Input<'_>, path: &str) -> Result<Option<String>, BuildError> {
    Ok(tree_bytes(input, path)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
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

/// A party as SPDX 2.3 writes a supplier or creator:
/// `Organization: NAME (EMAIL)`.
fn spdx2_party(party: &Party) -> String {
    let kind = match party.kind {
        airlock_recipe::PartyKind::Organization => "Organization",
        airlock_recipe::PartyKind::Person => "Person",
    };
    match &party.email {
        Some(email) => format!("{kind}: {} ({email})", party.name),
        None => format!("{kind}: {}", party.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent-node example recipe, whose model the snapshots show.
    pub(super) fn example_recipe() -> Recipe {
        toml::from_str(include_str!("../../../../recipes/agent-node.toml")).unwrap()
    }

    /// Its model as the SBOMs see it (a made-up SHA-512: the file is not
    /// read).
    pub(super) fn example_model(recipe: &Recipe) -> ModelFacts<'_> {
        ModelFacts {
            model: &recipe.models[0],
            size: None,
            sha512: Some("5".repeat(128)),
        }
    }

    /// A component as the SBOMs see it (made-up digests; the file is not
    /// read), supplied by `supplier`.
    pub(super) fn example_component_facts<'a>(
        component: &'a Component,
        supplier: &'a Party,
    ) -> ComponentFacts<'a> {
        ComponentFacts {
            component,
            size: Some(4096),
            sha512: Some("6".repeat(128)),
            supplier: Some(supplier),
        }
    }

    /// The image's supplier in the agent-node example.
    pub(super) fn example_supplier(recipe: &Recipe) -> Party {
        recipe
            .image
            .supplier
            .clone()
            .expect("the example names its supplier")
    }

    /// A component: airlock's host tool.
    pub(super) fn example_component() -> Component {
        toml::from_str(
            r#"
name = "airlock-host"
version = "0.1.0"
sha256 = "1111111111111111111111111111111111111111111111111111111111111111"
path = "airlock-host"
destination = "/usr/bin/airlock-host"
executable = true
license = "Apache-2.0 OR MIT"
source = "https://example.org/airlock.git"
copyright = "Copyright 2026 the airlock authors"
"#,
        )
        .unwrap()
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

    #[test]
    fn parties_are_written_the_way_spdx_2_reads_them() {
        let party = Party {
            name: "Ops".to_owned(),
            kind: airlock_recipe::PartyKind::Organization,
            email: Some("ops@example.org".to_owned()),
            url: None,
        };
        assert_eq!(spdx2_party(&party), "Organization: Ops (ops@example.org)");
        let person = Party {
            kind: airlock_recipe::PartyKind::Person,
            email: None,
            ..party
        };
        assert_eq!(spdx2_party(&person), "Person: Ops");
    }
}
