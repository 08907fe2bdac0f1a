//! A real dpkg database, as dpkg would leave it after installing every
//! locked package: /var/lib/dpkg/status (each package's control paragraph,
//! `Status: install ok installed`, and its conffiles with their md5sums,
//! the fields in the order dpkg writes them),
//! info/PKG.list (every path the package ships, as it ships it), and the
//! package's other control files (md5sums, conffiles, scripts: copied,
//! never run) as info/PKG.*. `dpkg --root=DIR -l` and `--verify` work on
//! an extracted image.

use std::collections::BTreeMap;

use airlock_store::Store;
use airlock_tree::{Kind, Node, Tree};
use md5::{Digest, Md5};

use super::{generated, put, read_content};
use crate::BuildError;
use crate::extract::Unpacked;

const SCRIPTS: &[&str] = &["preinst", "postinst", "prerm", "postrm", "config"];

/// The fields dpkg knows, in the order it writes them into the status
/// file (its `fieldinfos` table); every other field follows, in the
/// control file's order.
const DPKG_FIELDS: &[&str] = &[
    "Package",
    "Essential",
    "Protected",
    "Status",
    "Priority",
    "Section",
    "Installed-Size",
    "Origin",
    "Maintainer",
    "Bugs",
    "Architecture",
    "Multi-Arch",
    "Source",
    "Version",
    "Config-Version",
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
    "Conffiles",
    "Filename",
    "Size",
    "MD5sum",
    "MSDOS-Filename",
    "Description",
    "Triggers-Pending",
    "Triggers-Awaited",
];

/// Writes the database.
pub fn configure(tree: &mut Tree, blobs: &Store, packages: &[Unpacked]) -> Result<(), BuildError> {
    let mut sorted: Vec<&Unpacked> = packages.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut status = String::new();
    for package in sorted {
        let control = package
            .control_files
            .get("control")
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .ok_or_else(|| BuildError::Package {
                package: package.name.clone(),
                message: "no control file".to_owned(),
            })?;
        let field = |name: &str| {
            control.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
        };
        let multi_arch_same = field("Multi-Arch").as_deref() == Some("same");
        let architecture = field("Architecture").unwrap_or_default();
        let info_name = if multi_arch_same {
            format!("{}:{architecture}", package.name)
        } else {
            package.name.clone()
        };
        let paragraph = status_paragraph(&control, package, blobs)?;
        status.push_str(&paragraph);
        status.push('\n');
        let mut list = String::from("/.\n");
        for (entry, _) in &package.entries {
            if !entry.path.is_empty() {
                list.push('/');
                list.push_str(&entry.path);
                list.push('\n');
            }
        }
        put(
            tree,
            &format!("var/lib/dpkg/info/{info_name}.list"),
            generated(list, 0o644),
        )?;
        for (member, bytes) in &package.control_files {
            if member == "control" {
                continue;
            }
            let mode = if SCRIPTS.contains(&member.as_str()) {
                0o755
            } else {
                0o644
            };
            put(
                tree,
                &format!("var/lib/dpkg/info/{info_name}.{member}"),
                generated(bytes.clone(), mode),
            )?;
        }
    }
    put(tree, "var/lib/dpkg/status", generated(status, 0o644))?;
    put(tree, "var/lib/dpkg/info/format", generated("1\n", 0o644))?;
    for file in ["available", "diversions", "statoverride"] {
        put(
            tree,
            &format!("var/lib/dpkg/{file}"),
            generated(Vec::new(), 0o644),
        )?;
    }
    for dir in ["updates", "triggers", "alternatives", "parts"] {
        let path = format!("var/lib/dpkg/{dir}");
        if tree.lookup(&path).is_none() {
            put(tree, &path, Node::new(Kind::Directory, 0o755))?;
        }
    }
    Ok(())
}

/// The package's paragraph in dpkg's status file: its control fields with
/// their continuation lines, `Status`, and `Conffiles` with each conffile's
/// md5, in the order dpkg writes them.
fn status_paragraph(
    control: &str,
    package: &Unpacked,
    blobs: &Store,
) -> Result<String, BuildError> {
    // The control fields, each with its continuation lines.
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in control.trim_end_matches('\n').lines() {
        if line.trim().is_empty() {
            break;
        }
        match fields.last_mut() {
            Some((_, text)) if line.starts_with([' ', '\t']) => {
                text.push_str(line);
                text.push('\n');
            }
            _ => {
                let name = line.split_once(':').map_or(line, |(name, _)| name);
                fields.push((name.to_owned(), format!("{line}\n")));
            }
        }
    }
    fields.push((
        "Status".to_owned(),
        "Status: install ok installed\n".to_owned(),
    ));
    let conffiles: Vec<String> = package
        .control_files
        .get("conffiles")
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect();
    if !conffiles.is_empty() {
        let mut text = "Conffiles:\n".to_owned();
        for conffile in &conffiles {
            let relative = conffile.trim_start_matches('/');
            let content = package
                .entries
                .iter()
                .find(|(entry, _)| entry.path == relative)
                .and_then(|(_, content)| content.as_ref());
            let md5 = match content {
                Some(content) => hex::encode(Md5::digest(read_content(blobs, content)?)),
                // A conffile the package does not ship: dpkg records
                // "newconffile"; the file is absent.
                None => "newconffile".to_owned(),
            };
            text.push_str(&format!(" {conffile} {md5}\n"));
        }
        fields.push(("Conffiles".to_owned(), text));
    }
    // In the order dpkg writes them: its own fields in its order, then
    // the others as the control file has them (the sort is stable).
    fields.sort_by_key(|(name, _)| {
        DPKG_FIELDS
            .iter()
            .position(|known| known.eq_ignore_ascii_case(name))
            .unwrap_or(DPKG_FIELDS.len())
    });
    Ok(fields.into_iter().map(|(_, text)| text).collect())
}

/// The status file's package names and versions (for tests and reports).
pub fn installed(status: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for paragraph in status.split("\n\n") {
        let get = |name: &str| {
            paragraph.lines().find_map(|line| {
                line.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .map(|v| v.trim().to_owned())
            })
        };
        if let (Some(package), Some(version)) = (get("Package"), get("Version")) {
            out.insert(package, version);
        }
    }
    out
}
