//! Host identity and time: /etc/hostname, /etc/localtime and /etc/timezone
//! from the recipe (UTC by default), an empty /etc/machine-id (systemd
//! makes one at first boot, so every host gets its own), and no host keys.

use airlock_recipe::Image;
use airlock_tree::Tree;

use super::{generated, put, symlink};
use crate::BuildError;

/// The image's host name: the recipe's, or the image's name.
pub fn hostname(image: &Image) -> &str {
    image.hostname.as_deref().unwrap_or(image.name.as_str())
}

/// Writes the identity files.
pub fn configure(tree: &mut Tree, image: &Image) -> Result<(), BuildError> {
    let hostname = hostname(image);
    put(
        tree,
        "etc/hostname",
        generated(format!("{hostname}\n"), 0o644),
    )?;
    let zone = image.timezone.as_deref().unwrap_or("Etc/UTC");
    let valid = !zone.is_empty()
        && zone
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && zone
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c));
    if !valid {
        return Err(BuildError::Config {
            what: "[image] timezone".to_owned(),
            message: format!("{zone:?} is not a time zone name"),
        });
    }
    let zoneinfo = format!("usr/share/zoneinfo/{zone}");
    let has_tzdata = tree.lookup("usr/share/zoneinfo").is_some();
    if has_tzdata && tree.lookup(&zoneinfo).is_none() {
        return Err(BuildError::Config {
            what: "[image] timezone".to_owned(),
            message: format!("{zone}: no such zone in the image's tzdata"),
        });
    }
    if !has_tzdata && !matches!(zone, "Etc/UTC" | "UTC") {
        return Err(BuildError::Config {
            what: "[image] timezone".to_owned(),
            message: format!("{zone} needs the tzdata package in [packages] install"),
        });
    }
    // Without tzdata the link dangles and glibc uses UTC, which is asked for.
    put(tree, "etc/localtime", symlink(&format!("/{zoneinfo}")))?;
    put(tree, "etc/timezone", generated(format!("{zone}\n"), 0o644))?;
    put(tree, "etc/machine-id", generated(Vec::new(), 0o444))?;
    tree.remove("var/lib/dbus/machine-id")
        .map_err(|source| BuildError::Tree {
            package: "airlock".to_owned(),
            source,
        })?;
    if let Some((dir, _)) = tree.lookup("etc/ssh") {
        let keys: Vec<String> = tree
            .children(&dir)
            .into_iter()
            .filter(|(name, _)| name.starts_with("ssh_host_"))
            .map(|(name, _)| format!("{dir}/{name}"))
            .collect();
        for key in keys {
            super::remove(tree, &key)?;
        }
    }
    Ok(())
}
