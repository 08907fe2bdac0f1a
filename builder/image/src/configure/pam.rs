//! /etc/pam.d/common-*, as `pam-auth-update --package` (libpam-runtime's
//! postinst) writes them on a fresh system: the templates in
//! /usr/share/pam/common-* filled from every profile in
//! /usr/share/pam-configs with `Default: yes`, highest Priority first.
//! Primary modules get `success=end` turned into the jump over the rest of
//! the primary block and the deny, and the first one uses its `-Initial`
//! lines; additional modules follow the fallback. Without these files every
//! PAM login fails.

use std::collections::BTreeMap;

use airlock_store::Store;
use airlock_tree::Tree;

use super::{generated, put, read_file};
use crate::BuildError;

/// One profile from /usr/share/pam-configs.
#[derive(Clone, Debug, Default)]
struct Profile {
    name: String,
    fields: BTreeMap<String, String>,
}

impl Profile {
    fn parse(name: &str, text: &str) -> Profile {
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(field) = &current {
                    let value = fields.entry(field.clone()).or_default();
                    if !value.is_empty() {
                        value.push('\n');
                    }
                    value.push_str(line.trim());
                }
            } else if let Some((key, value)) = line.split_once(':') {
                let key = key.trim().to_ascii_lowercase();
                fields.insert(key.clone(), value.trim().to_owned());
                current = Some(key);
            }
        }
        Profile {
            name: name.to_owned(),
            fields,
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .get(&key.to_ascii_lowercase())
            .map(String::as_str)
    }

    fn priority(&self) -> i64 {
        self.get("Priority")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// The lines for `kind` (Auth, Account, Session, Password), the
    /// `-Initial` ones when asked and present.
    fn lines(&self, kind: &str, initial: bool) -> Vec<String> {
        let initial_lines = initial
            .then(|| self.get(&format!("{kind}-Initial")))
            .flatten();
        initial_lines
            .or_else(|| self.get(kind))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// `[success=end default=ignore] pam_unix.so nullok` → control, module and
/// arguments, written as pam-auth-update does.
fn render(kind: &str, line: &str, jump: Option<usize>) -> String {
    let line = line.trim();
    let (control, rest) = if let Some(stripped) = line.strip_prefix('[') {
        let end = stripped.find(']').map_or(stripped.len(), |i| i + 1);
        (format!("[{}", &stripped[..end]), stripped[end..].trim())
    } else {
        let (control, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        (control.to_owned(), rest.trim())
    };
    let control = match jump {
        Some(jump) => control.replace("=end", &format!("={jump}")),
        None => control,
    };
    let (module, arguments) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    format!("{kind}\t{control}\t{module} {}", arguments.trim())
}

/// Writes the common-* files when libpam-runtime's templates are there.
pub fn configure(tree: &mut Tree, blobs: &Store) -> Result<(), BuildError> {
    let Some((templates, _)) = tree.lookup("usr/share/pam") else {
        return Ok(());
    };
    let mut profiles = Vec::new();
    if let Some((dir, _)) = tree.lookup("usr/share/pam-configs") {
        for (name, _) in tree.children(&dir) {
            let text = read_file(tree, blobs, &format!("{dir}/{name}")).unwrap_or_default();
            let profile = Profile::parse(name, &String::from_utf8_lossy(&text));
            if profile
                .get("Default")
                .is_some_and(|d| d.eq_ignore_ascii_case("yes"))
            {
                profiles.push(profile);
            }
        }
    }
    profiles.sort_by(|a, b| {
        b.priority()
            .cmp(&a.priority())
            .then_with(|| a.name.cmp(&b.name))
    });
    let files = [
        ("common-auth", "auth", "Auth", false),
        ("common-account", "account", "Account", false),
        ("common-password", "password", "Password", false),
        ("common-session", "session", "Session", false),
        ("common-session-noninteractive", "session", "Session", true),
    ];
    for (file, kind, field, noninteractive) in files {
        let Some(template) = read_file(tree, blobs, &format!("{templates}/{file}")) else {
            continue;
        };
        let chosen: Vec<&Profile> = profiles
            .iter()
            .filter(|p| {
                !(noninteractive
                    && p.get("Session-Interactive-Only")
                        .is_some_and(|v| v.eq_ignore_ascii_case("yes")))
            })
            .collect();
        let of_type = |wanted: &str| -> Vec<&Profile> {
            chosen
                .iter()
                .copied()
                .filter(|p| {
                    p.get(&format!("{field}-Type"))
                        .is_some_and(|t| t.eq_ignore_ascii_case(wanted))
                })
                .collect()
        };
        let mut primary: Vec<String> = Vec::new();
        for (i, profile) in of_type("Primary").into_iter().enumerate() {
            primary.extend(profile.lines(field, i == 0));
        }
        let count = primary.len();
        let primary: Vec<String> = if count == 0 {
            vec![format!("{kind}\t[default=1]\t\t\tpam_permit.so")]
        } else {
            primary
                .iter()
                .enumerate()
                .map(|(i, line)| render(kind, line, Some(count - i)))
                .collect()
        };
        let additional: Vec<String> = of_type("Additional")
            .into_iter()
            .flat_map(|p| p.lines(field, false))
            .map(|line| render(kind, &line, None))
            .collect();
        let mut out = String::new();
        for line in String::from_utf8_lossy(&template).lines() {
            let replacement = match line.trim() {
                l if l.starts_with('$') && l.ends_with("_primary") => Some(&primary),
                l if l.starts_with('$') && l.ends_with("_additional") => Some(&additional),
                _ => None,
            };
            match replacement {
                Some(lines) => {
                    for l in lines {
                        out.push_str(l);
                        out.push('\n');
                    }
                }
                None => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        put(tree, &format!("etc/pam.d/{file}"), generated(out, 0o644))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIX: &str = "Name: Unix authentication\nDefault: yes\nPriority: 256\nAuth-Type: Primary\nAuth:\n\t[success=end default=ignore]\tpam_unix.so nullok try_first_pass\nAuth-Initial:\n\t[success=end default=ignore]\tpam_unix.so nullok\nSession-Type: Additional\nSession:\n\trequired\tpam_unix.so\n";

    #[test]
    fn lines_are_rendered_as_pam_auth_update_writes_them() {
        let profile = Profile::parse("unix", UNIX);
        let auth = profile.lines("Auth", true);
        assert_eq!(
            render("auth", &auth[0], Some(1)),
            "auth\t[success=1 default=ignore]\tpam_unix.so nullok"
        );
        let session = profile.lines("Session", false);
        assert_eq!(
            render("session", &session[0], None),
            "session\trequired\tpam_unix.so "
        );
        assert_eq!(profile.priority(), 256);
    }
}
