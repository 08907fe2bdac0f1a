//! Step 6: the SBOMs against the image. The manifest names the SBOMs it
//! lists; they are CycloneDX 1.6, SPDX 2.3 and (in bundles since SPDX 3)
//! SPDX 3.0.1, and list the same packages (and SPDX 3 the same model
//! digests); the image's own dpkg database (read from the tar root as a
//! stream) holds exactly those packages at those versions; every model's
//! and component's file in the image has the SBOM's sha256 (SPDX 3 agreeing
//! on those digests too); and the privilege inventory
//! names exactly the image's privileged paths.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::image::{self, Contents, Privilege};
use crate::manifest::{Manifest, paths};
use crate::read::{LogicalReader, listed, read_listed};
use crate::{Rejection, VerifyError};

/// The largest SBOM read.
const MAX_SBOM: u64 = 256 << 20;

/// What step 5 proved, for the policy step.
pub(crate) struct Checked {
    /// Packages matched.
    pub packages: usize,
    /// Models matched.
    pub models: usize,
    /// What the image holds.
    pub contents: Contents,
    /// The CycloneDX SBOM, whose licenses the policy reads.
    pub cyclonedx: Value,
}

/// A file the SBOM pins in the image, a model or a component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pinned {
    Model,
    Component,
}

impl Pinned {
    fn word(self) -> &'static str {
        match self {
            Pinned::Model => "model",
            Pinned::Component => "component",
        }
    }
}

/// The models and components the SBOM names: kind, name and sha256, by
/// image path.
type Models = BTreeMap<String, (Pinned, String, String)>;

pub(crate) fn check(bundle: &Path, manifest: &Manifest) -> Result<Checked, VerifyError> {
    let cyclonedx = read_sbom(bundle, manifest, paths::CYCLONEDX, &manifest.sbom.cyclonedx)?;
    let spdx = read_sbom(bundle, manifest, paths::SPDX, &manifest.sbom.spdx)?;
    check_format(paths::CYCLONEDX, "CycloneDX 1.6", &cyclonedx, |d| {
        format!(
            "{} {}",
            d["bomFormat"].as_str().unwrap_or("?"),
            d["specVersion"].as_str().unwrap_or("?")
        )
    })?;
    check_format(paths::SPDX, "SPDX-2.3", &spdx, |d| {
        d["spdxVersion"].as_str().unwrap_or("?").to_owned()
    })?;
    let (packages, models) = cyclonedx_index(&cyclonedx);
    agree(paths::SPDX, &packages, &spdx_packages(&spdx))?;
    if let Some(named) = &manifest.sbom.spdx3 {
        let spdx3 = read_sbom(bundle, manifest, paths::SPDX3, named)?;
        check_format(paths::SPDX3, "SPDX-3.0.1", &spdx3, spdx3_version)?;
        let (spdx3_packages, spdx3_models) = spdx3_index(&spdx3);
        agree(paths::SPDX3, &packages, &spdx3_packages)?;
        let by_name: BTreeMap<String, String> = models
            .values()
            .map(|(kind, name, digest)| (format!("{} {name}", kind.word()), digest.clone()))
            .collect();
        agree(paths::SPDX3, &by_name, &spdx3_models)?;
    }
    let Some(tar) = manifest.file(paths::ROOTFS_TAR) else {
        return Err(Rejection::SbomNoImage {
            path: paths::ROOTFS_TAR.to_owned(),
        }
        .into());
    };
    let wanted: BTreeSet<String> = models.keys().cloned().collect();
    let contents = image::scan(LogicalReader::open(bundle, tar)?, &wanted)
        .map_err(|reason| Rejection::ImageUnreadable { reason })?;
    match_packages(&packages, &contents.packages)?;
    match_models(&models, &contents.files)?;
    check_inventory(&cyclonedx, &contents.privileges)?;
    Ok(Checked {
        packages: packages.len(),
        models: models.values().filter(|m| m.0 == Pinned::Model).count(),
        contents,
        cyclonedx,
    })
}

/// The SBOM at `path`, which must be the file the manifest names.
fn read_sbom(
    bundle: &Path,
    manifest: &Manifest,
    path: &str,
    named: &str,
) -> Result<Value, VerifyError> {
    let actual = &listed(manifest, path)?.sha256;
    if actual != named {
        return Err(Rejection::SbomDigest {
            path: path.to_owned(),
            expected: named.to_owned(),
            actual: actual.clone(),
        }
        .into());
    }
    let bytes = read_listed(bundle, manifest, path, MAX_SBOM)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Rejection::SbomNotJson {
            path: path.to_owned(),
            reason: e.to_string(),
        }
        .into()
    })
}

fn check_format(
    path: &str,
    expected: &str,
    document: &Value,
    says: impl Fn(&Value) -> String,
) -> Result<(), Rejection> {
    let actual = says(document);
    if actual == expected {
        Ok(())
    } else {
        Err(Rejection::SbomFormat {
            path: path.to_owned(),
            expected: expected.to_owned(),
            actual,
        })
    }
}

/// The CycloneDX SBOM's Debian packages (name → version), and its models
/// and components (applications with an `airlock:path`).
fn cyclonedx_index(cyclonedx: &Value) -> (BTreeMap<String, String>, Models) {
    let mut packages = BTreeMap::new();
    let mut models = BTreeMap::new();
    for component in array(&cyclonedx["components"]) {
        let text = |key: &str| component[key].as_str().unwrap_or("").to_owned();
        if text("purl").starts_with("pkg:deb/") {
            packages.insert(text("name"), text("version"));
        } else if ["machine-learning-model", "application"].contains(&text("type").as_str()) {
            let kind = if text("type") == "application" {
                Pinned::Component
            } else {
                Pinned::Model
            };
            let found = |list: &str, key: &str, is: &str, value: &str| {
                array(&component[list])
                    .iter()
                    .find(|p| p[key] == is)
                    .and_then(|p| p[value].as_str())
                    .unwrap_or("")
                    .to_owned()
            };
            let path = found("properties", "name", "airlock:path", "value");
            if kind == Pinned::Component && path.is_empty() {
                continue;
            }
            let digest = found("hashes", "alg", "SHA-256", "content");
            models.insert(path, (kind, text("name"), digest));
        }
    }
    (packages, models)
}

/// The SPDX SBOM's Debian packages: those with a `pkg:deb/` locator.
fn spdx_packages(spdx: &Value) -> BTreeMap<String, String> {
    array(&spdx["packages"])
        .iter()
        .filter(|package| {
            array(&package["externalRefs"]).iter().any(|r| {
                r["referenceLocator"]
                    .as_str()
                    .is_some_and(|l| l.starts_with("pkg:deb/"))
            })
        })
        .map(|package| {
            let text = |key: &str| package[key].as_str().unwrap_or("").to_owned();
            (text("name"), text("versionInfo"))
        })
        .collect()
}

/// What an SPDX 3 document says it is: `SPDX-` and its creation info's
/// specVersion, when its context is SPDX 3's.
fn spdx3_version(document: &Value) -> String {
    let context = document["@context"].as_str().unwrap_or("?");
    if !context.starts_with("https://spdx.org/rdf/3.") {
        return format!("JSON-LD with context {context}");
    }
    let version = array(&document["@graph"])
        .iter()
        .find(|e| e["type"] == "CreationInfo")
        .and_then(|e| e["specVersion"].as_str())
        .unwrap_or("?");
    format!("SPDX-{version}")
}

/// The SPDX 3 SBOM's Debian packages (those with a `pkg:deb/` package
/// URL: name → version), models (`model NAME` → sha256) and components
/// (applications: `component NAME` → sha256).
fn spdx3_index(document: &Value) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut packages = BTreeMap::new();
    let mut models = BTreeMap::new();
    for element in array(&document["@graph"]) {
        let text = |key: &str| element[key].as_str().unwrap_or("").to_owned();
        if element["type"] == "software_Package"
            && text("software_packageUrl").starts_with("pkg:deb/")
        {
            packages.insert(text("name"), text("software_packageVersion"));
        } else if element["type"] == "ai_AIPackage"
            || (element["type"] == "software_Package"
                && element["software_primaryPurpose"] == "application")
        {
            let digest = array(&element["verifiedUsing"])
                .iter()
                .find(|h| h["algorithm"] == "sha256")
                .and_then(|h| h["hashValue"].as_str())
                .unwrap_or("");
            let kind = if element["type"] == "ai_AIPackage" {
                "model"
            } else {
                "component"
            };
            models.insert(format!("{kind} {}", text("name")), digest.to_owned());
        }
    }
    (packages, models)
}

fn agree(
    path: &str,
    cyclonedx: &BTreeMap<String, String>,
    spdx: &BTreeMap<String, String>,
) -> Result<(), Rejection> {
    let names: BTreeSet<&String> = cyclonedx.keys().chain(spdx.keys()).collect();
    match names
        .into_iter()
        .find(|n| cyclonedx.get(*n) != spdx.get(*n))
    {
        Some(package) => Err(Rejection::SbomsDisagree {
            path: path.to_owned(),
            package: package.clone(),
            cyclonedx: cyclonedx.get(package).cloned(),
            spdx: spdx.get(package).cloned(),
        }),
        None => Ok(()),
    }
}

/// The image's dpkg database against the SBOM: the same packages at the
/// same versions.
fn match_packages(
    stated: &BTreeMap<String, String>,
    installed: &BTreeMap<String, String>,
) -> Result<(), Rejection> {
    for (package, version) in installed {
        match stated.get(package) {
            None => {
                return Err(Rejection::SbomPackageUnlisted {
                    package: package.clone(),
                    version: version.clone(),
                });
            }
            Some(claimed) if claimed != version => {
                return Err(Rejection::SbomPackageVersion {
                    package: package.clone(),
                    expected: claimed.clone(),
                    actual: version.clone(),
                });
            }
            Some(_) => {}
        }
    }
    match stated.iter().find(|(n, _)| !installed.contains_key(*n)) {
        Some((package, version)) => Err(Rejection::SbomPackageAbsent {
            package: package.clone(),
            version: version.clone(),
        }),
        None => Ok(()),
    }
}

fn match_models(models: &Models, files: &BTreeMap<String, String>) -> Result<(), Rejection> {
    for (path, (kind, name, digest)) in models {
        let (name, path) = (name.clone(), path.clone());
        match (files.get(&path), kind) {
            (None, Pinned::Model) => return Err(Rejection::SbomModelMissing { model: name, path }),
            (None, Pinned::Component) => {
                return Err(Rejection::SbomComponentMissing {
                    component: name,
                    path,
                });
            }
            (Some(actual), _) if actual != digest => {
                let (expected, actual) = (digest.clone(), actual.clone());
                return Err(match kind {
                    Pinned::Model => Rejection::SbomModelDigest {
                        model: name,
                        path,
                        expected,
                        actual,
                    },
                    Pinned::Component => Rejection::SbomComponentDigest {
                        component: name,
                        path,
                        expected,
                        actual,
                    },
                });
            }
            (Some(_), _) => {}
        }
    }
    Ok(())
}

/// The SBOM's privilege inventory (`airlock:privilege` properties, one
/// `PATH: KINDS …` line each) must name exactly the image's privileged
/// paths with the same kinds: a setuid file or capability the SBOM hides
/// is a lie about the image.
fn check_inventory(
    cyclonedx: &Value,
    actual: &BTreeMap<String, Privilege>,
) -> Result<(), Rejection> {
    let stated: BTreeMap<String, String> = sbom_privileges(cyclonedx)?
        .into_iter()
        .map(|(path, line)| {
            let rest = line.split_once(": ").map_or("", |(_, rest)| rest);
            let kinds = rest.split([' ', '(']).next().unwrap_or("").to_owned();
            (path, kinds)
        })
        .collect();
    for (path, privilege) in actual {
        let kinds = privilege.kinds.join("+");
        match stated.get(path) {
            None => {
                return Err(Rejection::SbomPrivilegeUnlisted {
                    path: path.clone(),
                    kinds,
                });
            }
            Some(claimed) if *claimed != kinds => {
                return Err(Rejection::SbomPrivilegeKinds {
                    path: path.clone(),
                    expected: claimed.clone(),
                    actual: kinds,
                });
            }
            Some(_) => {}
        }
    }
    match stated.iter().find(|(p, _)| !actual.contains_key(*p)) {
        Some((path, kinds)) => Err(Rejection::SbomPrivilegeAbsent {
            path: path.clone(),
            kinds: kinds.clone(),
        }),
        None => Ok(()),
    }
}

/// The SBOM property that carries one privileged path.
pub use airlock_format::sbom::PRIVILEGE_PROPERTY;

/// A CycloneDX SBOM's privilege inventory: every `airlock:privilege`
/// property (of any component, and of the image's own), path → its line
/// (`PATH: KINDS … (MODE UID:GID, PACKAGES)`).
pub fn sbom_privileges(cyclonedx: &Value) -> Result<BTreeMap<String, String>, Rejection> {
    let components = array(&cyclonedx["components"])
        .iter()
        .chain(std::iter::once(&cyclonedx["metadata"]["component"]));
    let mut out = BTreeMap::new();
    for property in components.flat_map(|c| array(&c["properties"])) {
        if property["name"] != PRIVILEGE_PROPERTY {
            continue;
        }
        let line = property["value"].as_str().unwrap_or("");
        let Some((path, _)) = line.split_once(": ") else {
            return Err(Rejection::SbomPrivilegeUnreadable {
                line: line.to_owned(),
            });
        };
        out.insert(path.to_owned(), line.to_owned());
    }
    Ok(out)
}

fn array(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}
