//! `airlock diff OLD NEW`: what a reviewer at the boundary reads. First
//! privilege (setuid and setgid files, file capabilities and device nodes
//! gained, lost or changed, from the SBOM's inventory); then packages
//! added, removed, upgraded and downgraded (from the locks); files the
//! recipe added (from the SBOMs); models, firewall, audit and agent
//! (from the recipes).

use std::collections::BTreeMap;
use std::path::Path;

use airlock_recipe::Lock;
use airlock_verify::manifest::paths;
use serde::Serialize;
use serde_json::Value;

use crate::{ReleaseError, io};

/// One side of a diff: an image folder or a bundle (directory).
#[derive(Debug)]
pub struct Release {
    name: String,
    version: u64,
    lock: Lock,
    recipe: Value,
    /// Files the recipe added: path → sha256.
    files: BTreeMap<String, String>,
    /// The privilege inventory: path → its line.
    privileges: BTreeMap<String, String>,
}

impl Release {
    /// Reads an image folder or a bundle directory.
    pub fn open(path: &Path) -> Result<Release, ReleaseError> {
        let read = |name: &str| -> Result<Vec<u8>, ReleaseError> {
            std::fs::read(path.join(name)).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => ReleaseError::Invalid(format!(
                    "{}: not an image folder or bundle (no {name})",
                    path.display()
                )),
                _ => io(path.join(name).display())(e),
            })
        };
        let json = |name: &str| -> Result<Value, ReleaseError> {
            serde_json::from_slice(&read(name)?)
                .map_err(|e| ReleaseError::Invalid(format!("{}: {e}", path.join(name).display())))
        };
        let lock_bytes = read(paths::LOCK)?;
        let lock = Lock::parse(
            &path.join(paths::LOCK),
            &String::from_utf8_lossy(&lock_bytes),
        )
        .map_err(|e| ReleaseError::Invalid(e.to_string()))?;
        let recipe = json(paths::RECIPE)?;
        let sbom = json(paths::CYCLONEDX)?;
        let mut files = BTreeMap::new();
        for component in sbom["components"].as_array().into_iter().flatten() {
            if component["type"] == "file" {
                let digest = component["hashes"][0]["content"].as_str().unwrap_or("");
                files.insert(
                    component["name"].as_str().unwrap_or("").to_owned(),
                    digest.to_owned(),
                );
            }
        }
        Ok(Release {
            name: recipe["image"]["name"].as_str().unwrap_or("").to_owned(),
            version: recipe["image"]["version"].as_u64().unwrap_or(0),
            lock,
            recipe,
            files,
            privileges: airlock_verify::sbom_privileges(&sbom).map_err(|e| {
                ReleaseError::Invalid(format!("{}: {e}", path.join(paths::CYCLONEDX).display()))
            })?,
        })
    }
}

/// A name and version.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Package {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
}

/// A version change.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Change {
    /// Name.
    pub name: String,
    /// Old version.
    pub from: String,
    /// New version.
    pub to: String,
}

/// Package changes.
#[derive(Debug, Default, Serialize)]
pub struct Packages {
    /// New packages.
    pub added: Vec<Package>,
    /// Gone packages.
    pub removed: Vec<Package>,
    /// Newer versions.
    pub upgraded: Vec<Change>,
    /// Older versions (suspicious: say so).
    pub downgraded: Vec<Change>,
    /// Same version, different .deb (a rebuild under the same version).
    pub rebuilt: Vec<Change>,
}

/// File changes.
#[derive(Debug, Default, Serialize)]
pub struct Files {
    /// New.
    pub added: Vec<String>,
    /// Gone.
    pub removed: Vec<String>,
    /// Different content.
    pub changed: Vec<String>,
}

impl Files {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// One line each: `+` added, `-` removed, `~` changed.
    fn lines(&self) -> String {
        let marked = |mark: char, items: &[String]| -> String {
            items.iter().map(|x| format!("  {mark} {x}\n")).collect()
        };
        marked('+', &self.added) + &marked('-', &self.removed) + &marked('~', &self.changed)
    }
}

/// One setting that changed, by its dotted path in the recipe.
#[derive(Debug, Serialize, PartialEq)]
pub struct Setting {
    /// Where (`firewall.output`, `firewall.allow[+]`, ...).
    pub key: String,
    /// Before (null when added).
    pub old: Value,
    /// After (null when removed).
    pub new: Value,
}

/// The diff.
#[derive(Debug, Serialize)]
pub struct Diff {
    /// Old image and version.
    pub old: String,
    /// New image and version.
    pub new: String,
    /// Privilege gained, lost or changed: what to read first.
    pub privileges: Files,
    /// Packages.
    pub packages: Packages,
    /// Files the recipe added.
    pub files: Files,
    /// Models.
    pub models: Vec<Setting>,
    /// Components (`[[components]]`: airlock's host tool, for one).
    pub components: Vec<Setting>,
    /// Firewall.
    pub firewall: Vec<Setting>,
    /// Audit.
    pub audit: Vec<Setting>,
    /// Agent.
    pub agent: Vec<Setting>,
}

/// Compares two releases.
pub fn diff(old: &Release, new: &Release) -> Result<Diff, ReleaseError> {
    let mut packages = Packages::default();
    let old_packages: BTreeMap<&str, _> = old
        .lock
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p))
        .collect();
    let new_packages: BTreeMap<&str, _> = new
        .lock
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p))
        .collect();
    for (name, p) in &new_packages {
        match old_packages.get(name) {
            None => packages.added.push(Package {
                name: (*name).to_owned(),
                version: p.version.clone(),
            }),
            Some(o) => {
                let change = || Change {
                    name: (*name).to_owned(),
                    from: o.version.clone(),
                    to: p.version.clone(),
                };
                let parse = |v: &str| v.parse::<debversion::Version>().ok();
                match (parse(&o.version), parse(&p.version)) {
                    (Some(a), Some(b)) if b > a => packages.upgraded.push(change()),
                    (Some(a), Some(b)) if b < a => packages.downgraded.push(change()),
                    _ if o.version != p.version => packages.upgraded.push(change()),
                    _ if o.sha256 != p.sha256 => packages.rebuilt.push(change()),
                    _ => {}
                }
            }
        }
    }
    for (name, p) in &old_packages {
        if !new_packages.contains_key(name) {
            packages.removed.push(Package {
                name: (*name).to_owned(),
                version: p.version.clone(),
            });
        }
    }
    let mut files = Files::default();
    for (path, digest) in &new.files {
        match old.files.get(path) {
            None => files.added.push(path.clone()),
            Some(d) if d != digest => files.changed.push(path.clone()),
            Some(_) => {}
        }
    }
    files.removed = old
        .files
        .keys()
        .filter(|p| !new.files.contains_key(*p))
        .cloned()
        .collect();
    let mut gained = Files::default();
    for (path, line) in &new.privileges {
        match old.privileges.get(path) {
            None => gained.added.push(line.clone()),
            Some(before) if before != line => {
                gained.changed.push(format!(
                    "{before} -> {}",
                    line.split_once(": ")
                        .map_or(line.as_str(), |(_, rest)| rest)
                ));
            }
            Some(_) => {}
        }
    }
    gained.removed = old
        .privileges
        .iter()
        .filter(|(path, _)| !new.privileges.contains_key(*path))
        .map(|(_, line)| line.clone())
        .collect();
    let section = |key: &str| {
        let mut out = Vec::new();
        compare(key, &old.recipe[key], &new.recipe[key], &mut out);
        out
    };
    Ok(Diff {
        old: format!("{} {}", old.name, old.version),
        new: format!("{} {}", new.name, new.version),
        privileges: gained,
        packages,
        files,
        models: section("models"),
        components: section("components"),
        firewall: section("firewall"),
        audit: section("audit"),
        agent: section("agent"),
    })
}

/// Differences between two JSON values: objects key by key, arrays as
/// multisets of items (`key[+]` added, `key[-]` removed).
fn compare(key: &str, old: &Value, new: &Value, out: &mut Vec<Setting>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                compare(
                    &format!("{key}.{k}"),
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for item in a.iter().filter(|i| !b.contains(i)) {
                out.push(Setting {
                    key: format!("{key}[-]"),
                    old: item.clone(),
                    new: Value::Null,
                });
            }
            for item in b.iter().filter(|i| !a.contains(i)) {
                out.push(Setting {
                    key: format!("{key}[+]"),
                    old: Value::Null,
                    new: item.clone(),
                });
            }
        }
        (a, b) if a != b => out.push(Setting {
            key: key.to_owned(),
            old: a.clone(),
            new: b.clone(),
        }),
        _ => {}
    }
}

impl Diff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        let p = &self.packages;
        self.privileges.is_empty()
            && p.added.is_empty()
            && p.removed.is_empty()
            && p.upgraded.is_empty()
            && p.downgraded.is_empty()
            && p.rebuilt.is_empty()
            && self.files.is_empty()
            && self.models.is_empty()
            && self.components.is_empty()
            && self.firewall.is_empty()
            && self.audit.is_empty()
            && self.agent.is_empty()
    }

    /// The human form.
    pub fn to_text(&self) -> String {
        let mut t = format!("{} -> {}\n", self.old, self.new);
        let g = &self.privileges;
        if g.is_empty() {
            t += "\nprivilege (setuid, setgid, capabilities, devices): no change\n";
        } else {
            t += &format!(
                "\nPRIVILEGE (setuid, setgid, capabilities, devices): {} gained, {} dropped, {} changed\n",
                g.added.len(),
                g.removed.len(),
                g.changed.len()
            );
            t += &g.lines();
        }
        let p = &self.packages;
        t += &format!(
            "\npackages: {} added, {} removed, {} upgraded, {} downgraded, {} rebuilt\n",
            p.added.len(),
            p.removed.len(),
            p.upgraded.len(),
            p.downgraded.len(),
            p.rebuilt.len()
        );
        for x in &p.added {
            t += &format!("  + {} {}\n", x.name, x.version);
        }
        for x in &p.removed {
            t += &format!("  - {} {}\n", x.name, x.version);
        }
        for x in &p.upgraded {
            t += &format!("  ^ {} {} -> {}\n", x.name, x.from, x.to);
        }
        for x in &p.downgraded {
            t += &format!("  v {} {} -> {}   (DOWNGRADE)\n", x.name, x.from, x.to);
        }
        for x in &p.rebuilt {
            t += &format!("  ! {} {}   (same version, different .deb)\n", x.name, x.to);
        }
        let f = &self.files;
        t += &format!(
            "\nfiles added by the recipe: {} added, {} removed, {} changed\n",
            f.added.len(),
            f.removed.len(),
            f.changed.len()
        );
        t += &f.lines();
        for (title, settings) in [
            ("models", &self.models),
            ("components", &self.components),
            ("firewall", &self.firewall),
            ("audit", &self.audit),
            ("agent", &self.agent),
        ] {
            if settings.is_empty() {
                t += &format!("\n{title}: no change\n");
                continue;
            }
            t += &format!("\n{title}: {} change(s)\n", settings.len());
            for s in settings {
                t += &match (&s.old, &s.new) {
                    (Value::Null, new) => format!("  + {}: {new}\n", s.key),
                    (old, Value::Null) => format!("  - {}: {old}\n", s.key),
                    (old, new) => format!("  ~ {}: {old} -> {new}\n", s.key),
                };
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_compare_objects_by_key_and_lists_as_sets() {
        let mut out = Vec::new();
        compare(
            "firewall",
            &json!({"output": "drop", "allow": [{"port": 53}, {"port": 443}]}),
            &json!({"output": "accept", "allow": [{"port": 443}, {"port": 8080}]}),
            &mut out,
        );
        let keys: Vec<&str> = out.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(
            keys,
            ["firewall.allow[-]", "firewall.allow[+]", "firewall.output"]
        );
        assert_eq!(out[0].old, json!({"port": 53}));
        assert_eq!(out[2].new, json!("accept"));
    }

    #[test]
    fn privilege_gained_is_shown_first() {
        let sbom = |lines: &[&str]| {
            json!({
                "metadata": {"component": {"properties": []}},
                "components": [{"properties": lines.iter().map(|l| json!({"name": airlock_verify::PRIVILEGE_PROPERTY, "value": l})).collect::<Vec<_>>()}],
            })
        };
        let release = |lines: &[&str]| {
            Release {
            name: "x".to_owned(),
            version: 1,
            lock: Lock::parse(
                Path::new("x.lock"),
                &format!(
                    "version = 1\nrecipe = \"{}\"\n[archive]\narchitecture = \"amd64\"\ncomponents = [\"main\"]\nsuites = []\n",
                    "0".repeat(64)
                ),
            )
            .unwrap(),
            recipe: json!({}),
            files: BTreeMap::new(),
            privileges: airlock_verify::sbom_privileges(&sbom(lines)).unwrap(),
        }
        };
        let old = release(&[
            "/usr/bin/su: setuid (4755 0:0, util-linux)",
            "/usr/bin/mount: setuid (4755 0:0, mount)",
        ]);
        let new = release(&[
            "/usr/bin/su: setuid (4755 0:0, util-linux)",
            "/usr/bin/ping: capabilities cap_net_raw=ep (0755 0:0, iputils-ping)",
            "/usr/bin/mount: setuid+setgid (6755 0:0, mount)",
        ]);
        let d = diff(&old, &new).unwrap();
        assert!(!d.is_empty());
        assert_eq!(
            d.privileges.added,
            ["/usr/bin/ping: capabilities cap_net_raw=ep (0755 0:0, iputils-ping)"]
        );
        assert_eq!(
            d.privileges.changed,
            ["/usr/bin/mount: setuid (4755 0:0, mount) -> setuid+setgid (6755 0:0, mount)"]
        );
        let text = d.to_text();
        let first_section = text.lines().nth(2).unwrap();
        assert!(first_section.starts_with("PRIVILEGE"), "{text}");
        assert!(diff(&old, &old).unwrap().is_empty());
    }
}
