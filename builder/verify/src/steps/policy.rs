//! Step 7: the host's policy, against what steps 3 to 6 proved: the image's
//! own tar headers (privileges), its dpkg database (packages), the
//! CycloneDX SBOM (licenses) and the verified recipe.json (firewall and
//! audit). Returns the rules applied, in the order they were checked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::image::Privilege;
use crate::manifest::{Manifest, paths};
use crate::policy::{self, Policy};
use crate::read::read_listed;
use crate::{Rejection, VerifyError};

/// The largest recipe.json read.
const MAX_RECIPE: u64 = 16 << 20;

pub(crate) fn check(
    bundle: &Path,
    manifest: &Manifest,
    policy: &Policy,
    privileges: &BTreeMap<String, Privilege>,
    installed: &BTreeMap<String, String>,
    cyclonedx: &Value,
) -> Result<Vec<String>, VerifyError> {
    let mut applied = Vec::new();
    check_privileges(policy, privileges, &mut applied)?;
    if !policy.denied_packages.is_empty() {
        if let Some((package, version)) = policy
            .denied_packages
            .iter()
            .find_map(|p| installed.get_key_value(p))
        {
            return Err(Rejection::PolicyDeniedPackage {
                package: package.clone(),
                version: version.clone(),
            }
            .into());
        }
        applied.push("denied_packages".to_owned());
    }
    if !policy.allowed_licenses.is_empty() {
        check_licenses(policy, cyclonedx)?;
        applied.push("allowed_licenses".to_owned());
    }
    if policy.require_default_deny_firewall || policy.require_audit {
        let bytes = read_listed(bundle, manifest, paths::RECIPE, MAX_RECIPE)?;
        let recipe: Value =
            serde_json::from_slice(&bytes).map_err(|e| Rejection::PolicyRecipeUnreadable {
                reason: e.to_string(),
            })?;
        if policy.require_default_deny_firewall {
            check_firewall(&recipe, installed)?;
            applied.push("require_default_deny_firewall".to_owned());
        }
        if policy.require_audit {
            check_audit(&recipe, installed)?;
            applied.push("require_audit".to_owned());
        }
    }
    Ok(applied)
}

/// The privilege rules, against the image's own tar headers.
fn check_privileges(
    policy: &Policy,
    privileges: &BTreeMap<String, Privilege>,
    applied: &mut Vec<String>,
) -> Result<(), Rejection> {
    if let Some(allowed) = &policy.allowed_setuid {
        let allowed: BTreeSet<&str> = allowed.iter().map(String::as_str).collect();
        for (path, privilege) in privileges {
            let setid = privilege
                .kinds
                .iter()
                .any(|k| *k == "setuid" || *k == "setgid");
            if setid && !allowed.contains(path.as_str()) {
                return Err(Rejection::PolicySetuid {
                    path: path.clone(),
                    mode: format!("{:04o}", privilege.mode),
                });
            }
        }
        applied.push("allowed_setuid".to_owned());
    }
    if policy.deny_file_capabilities {
        if let Some((path, _)) = privileges
            .iter()
            .find(|(_, p)| p.kinds.contains(&"capabilities"))
        {
            return Err(Rejection::PolicyFileCapability { path: path.clone() });
        }
        applied.push("deny_file_capabilities".to_owned());
    }
    if policy.deny_device_nodes {
        if let Some((path, privilege)) = privileges.iter().find(|(_, p)| p.device.is_some()) {
            return Err(Rejection::PolicyDeviceNode {
                path: path.clone(),
                device: privilege.device.clone().unwrap_or_default(),
            });
        }
        applied.push("deny_device_nodes".to_owned());
    }
    Ok(())
}

/// Every component but plain files is under an allowed license.
fn check_licenses(policy: &Policy, cyclonedx: &Value) -> Result<(), Rejection> {
    let allowed: BTreeSet<String> = policy.allowed_licenses.iter().cloned().collect();
    let components = cyclonedx["components"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    for component in components.iter().filter(|c| c["type"] != "file") {
        let name = component["name"].as_str().unwrap_or("?").to_owned();
        let Some(expression) = component["licenses"][0]["expression"].as_str() else {
            if policy.allow_unknown_licenses {
                continue;
            }
            return Err(Rejection::PolicyUnknownLicense { component: name });
        };
        match policy::expression_allowed(expression, &allowed) {
            Some(true) => {}
            Some(false) => {
                return Err(Rejection::PolicyLicense {
                    component: name,
                    expression: expression.to_owned(),
                });
            }
            None => {
                return Err(Rejection::PolicyLicenseUnreadable {
                    component: name,
                    expression: expression.to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// `require_default_deny_firewall`: every chain drops, and nftables is
/// there to load the rules.
fn check_firewall(recipe: &Value, installed: &BTreeMap<String, String>) -> Result<(), Rejection> {
    let firewall = &recipe["firewall"];
    if firewall.is_null() {
        return Err(Rejection::PolicyNoFirewall);
    }
    for chain in ["input", "output", "forward"] {
        if firewall[chain] != "drop" {
            return Err(Rejection::PolicyFirewallChain {
                chain: chain.to_owned(),
                expected: "drop".to_owned(),
                actual: firewall[chain].to_string(),
            });
        }
    }
    if !installed.contains_key("nftables") {
        return Err(Rejection::PolicyNotInstalled {
            rule: "require_default_deny_firewall".to_owned(),
            package: "nftables".to_owned(),
        });
    }
    Ok(())
}

/// `require_audit`: auditd is installed and the recipe has audit rules (its
/// own, or the agent's).
fn check_audit(recipe: &Value, installed: &BTreeMap<String, String>) -> Result<(), Rejection> {
    if !installed.contains_key("auditd") {
        return Err(Rejection::PolicyNotInstalled {
            rule: "require_audit".to_owned(),
            package: "auditd".to_owned(),
        });
    }
    let audit = &recipe["audit"];
    if audit.is_null() {
        return Err(Rejection::PolicyNoAudit);
    }
    let has_rules = audit["rules"].as_array().is_some_and(|r| !r.is_empty())
        || (audit["agent_rules"] == true && !recipe["agent"].is_null());
    if !has_rules {
        return Err(Rejection::PolicyNoAuditRules);
    }
    Ok(())
}
