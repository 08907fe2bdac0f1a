//! systemd unit enablement, as `systemctl enable` would leave the links.
//!
//! Which units are enabled, in order (a later step overrides an earlier):
//! 1. what each package's postinst declares it enables on installation
//!    (`deb-systemd-helper enable UNIT`, as debhelper writes it, and
//!    `systemctl enable UNIT`), read as text: Debian enables units in
//!    maintainer scripts and does not apply the vendor presets, so neither
//!    does airlock;
//! 2. preset files the image carries in /etc/systemd/system-preset (for
//!    example from the recipe's files): `enable`/`disable` PATTERN, first
//!    match wins, for every unit with an [Install] section;
//! 3. the recipe's `[services]`: enable, then disable, then mask.
//!
//! Enabling follows the unit's [Install] section: WantedBy= and RequiredBy=
//! links in /etc/systemd/system/TARGET.wants|requires, Alias= links, Also=
//! units, and DefaultInstance= for templates.

use std::collections::{BTreeMap, BTreeSet};

use airlock_recipe::Services;
use airlock_store::Store;
use airlock_tree::Tree;

use super::scripts::Command;
use super::{put, read_file, symlink};
use crate::BuildError;

const UNIT_DIRS: &[&str] = &["etc/systemd/system", "usr/lib/systemd/system"];
const SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".target",
    ".timer",
    ".path",
    ".mount",
    ".automount",
    ".swap",
    ".slice",
    ".scope",
];

fn is_unit(word: &str) -> bool {
    !word.starts_with('-')
        && SUFFIXES
            .iter()
            .any(|s| word.ends_with(s) && word.len() > s.len())
}

/// The [Install] section of a unit file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Install {
    /// WantedBy=.
    pub wanted_by: Vec<String>,
    /// RequiredBy=.
    pub required_by: Vec<String>,
    /// Alias=.
    pub alias: Vec<String>,
    /// Also=.
    pub also: Vec<String>,
    /// DefaultInstance=.
    pub default_instance: Option<String>,
}

impl Install {
    /// The links `systemctl enable` makes for unit `name` (its file at
    /// `file`) in `dir` (/etc/systemd/system or /etc/systemd/user):
    /// WantedBy=, RequiredBy= and Alias=.
    fn link(&self, links: &mut BTreeMap<String, String>, dir: &str, name: &str, file: &str) {
        for target in &self.wanted_by {
            links.insert(format!("{dir}/{target}.wants/{name}"), file.to_owned());
        }
        for target in &self.required_by {
            links.insert(format!("{dir}/{target}.requires/{name}"), file.to_owned());
        }
        for alias in &self.alias {
            links.insert(format!("{dir}/{alias}"), file.to_owned());
        }
    }

    fn is_empty(&self) -> bool {
        self.wanted_by.is_empty()
            && self.required_by.is_empty()
            && self.alias.is_empty()
            && self.also.is_empty()
    }
}

/// Parses a unit file's [Install] section (an empty value resets a list).
pub fn parse_install(text: &str) -> Install {
    let mut install = Install::default();
    let mut in_install = false;
    for line in text.replace("\\\n", " ").lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_install = line == "[Install]";
            continue;
        }
        if !in_install || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let list = match key.trim() {
            "WantedBy" => &mut install.wanted_by,
            "RequiredBy" => &mut install.required_by,
            "Alias" => &mut install.alias,
            "Also" => &mut install.also,
            "DefaultInstance" => {
                install.default_instance = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
                continue;
            }
            _ => continue,
        };
        if value.trim().is_empty() {
            list.clear();
        }
        list.extend(value.split_whitespace().map(str::to_owned));
    }
    install
}

/// `foo@bar.service` → (`foo@.service`, Some(`bar`)); `foo@.service` →
/// (`foo@.service`, None with template); plain units map to themselves.
fn split_instance(unit: &str) -> (String, Option<String>) {
    match unit.split_once('@') {
        Some((prefix, rest)) => {
            let dot = rest.rfind('.').unwrap_or(rest.len());
            let (instance, suffix) = rest.split_at(dot);
            (
                format!("{prefix}@{suffix}"),
                Some(instance.to_owned()).filter(|i| !i.is_empty()),
            )
        }
        None => (unit.to_owned(), None),
    }
}

/// Glob match with `*` and `?` (what preset patterns use).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

struct Units<'a> {
    tree: &'a Tree,
    blobs: &'a Store,
    /// System units, or the user units every user's manager starts
    /// (`deb-systemd-helper --user enable`, links in /etc/systemd/user).
    user: bool,
}

impl Units<'_> {
    fn dirs(&self) -> &'static [&'static str] {
        if self.user {
            &["etc/systemd/user", "usr/lib/systemd/user"]
        } else {
            UNIT_DIRS
        }
    }

    /// The unit file for `name` (a template's file for an instance): the
    /// path its links point at, as deb-systemd-helper writes it, and the
    /// [Install] section.
    fn find(&self, name: &str) -> Option<(String, Install)> {
        let (template, _) = split_instance(name);
        for file in [name, template.as_str()] {
            for dir in self.dirs() {
                let path = format!("{dir}/{file}");
                if let Some(bytes) = read_file(self.tree, self.blobs, &path) {
                    let text = String::from_utf8_lossy(&bytes);
                    let shown = match (self.user, dir.starts_with("etc")) {
                        (_, true) | (true, false) => format!("/{dir}/{file}"),
                        (false, false) => format!("/lib/systemd/system/{file}"),
                    };
                    return Some((shown, parse_install(&text)));
                }
            }
        }
        None
    }

    /// Every unit file name with an [Install] section, sorted.
    fn installable(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for dir in self.dirs() {
            let Some((dir, _)) = self.tree.lookup(dir) else {
                continue;
            };
            for (name, _) in self.tree.children(&dir) {
                if is_unit(name)
                    && self
                        .find(name)
                        .is_some_and(|(_, install)| !install.is_empty())
                {
                    names.insert(name.to_owned());
                }
            }
        }
        names
    }
}

/// What postinst scripts declare they enable on a first installation,
/// sorted and deduplicated. debhelper's snippet for units installed with
/// `--no-enable` also calls `deb-systemd-helper enable`, but only behind
/// `deb-systemd-helper debian-installed UNIT` (true only when the unit was
/// installed before), so a unit named that way is not enabled. `user`:
/// the user units (`deb-systemd-helper --user enable`) instead of the
/// system's.
pub fn declared(scripts: &BTreeMap<String, Vec<Command>>, user: bool) -> BTreeSet<String> {
    let mut enabled = BTreeSet::new();
    let mut not_on_first_install = BTreeSet::new();
    for commands in scripts.values() {
        // Expansions elsewhere in the command (`--root="$DPKG_ROOT"`) do not
        // matter; a unit name that needs one is skipped.
        for command in commands {
            let words = &command.words;
            let Some(start) = words.iter().position(|w| {
                matches!(
                    w.rsplit('/').next(),
                    Some("deb-systemd-helper" | "systemctl")
                )
            }) else {
                continue;
            };
            if words[start..].iter().any(|w| w == "--user") != user {
                continue;
            }
            let units = |verb: &str| -> Vec<String> {
                words[start..]
                    .iter()
                    .position(|w| w == verb)
                    .map(|at| {
                        words[start + at + 1..]
                            .iter()
                            .filter(|w| is_unit(w) && !w.contains(['$', '`']))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default()
            };
            enabled.extend(units("enable"));
            not_on_first_install.extend(units("debian-installed"));
        }
    }
    enabled.retain(|unit| !not_on_first_install.contains(unit));
    enabled
}

/// Enables, disables and masks units; returns notes.
pub fn configure(
    tree: &mut Tree,
    blobs: &Store,
    scripts: &BTreeMap<String, Vec<Command>>,
    services: &Services,
) -> Result<Vec<String>, BuildError> {
    let mut notes = Vec::new();
    let mut enabled = declared(scripts, false);
    let units = Units {
        tree,
        blobs,
        user: false,
    };
    // Presets from /etc.
    let mut presets: Vec<(bool, String)> = Vec::new();
    if let Some((dir, _)) = tree.lookup("etc/systemd/system-preset") {
        for (name, _) in tree.children(&dir) {
            if !name.ends_with(".preset") {
                continue;
            }
            let text = read_file(tree, blobs, &format!("{dir}/{name}")).unwrap_or_default();
            for line in String::from_utf8_lossy(&text).lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                match words[..] {
                    ["enable", pattern, ..] => presets.push((true, pattern.to_owned())),
                    ["disable", pattern, ..] => presets.push((false, pattern.to_owned())),
                    _ => {}
                }
            }
        }
    }
    if !presets.is_empty() {
        for unit in units.installable() {
            if let Some((enable, _)) = presets.iter().find(|(_, p)| glob(p, &unit)) {
                if *enable {
                    enabled.insert(unit);
                } else {
                    enabled.remove(&unit);
                }
            }
        }
    }
    for unit in &services.enable {
        if units.find(unit).is_none() {
            return Err(BuildError::Config {
                what: "[services] enable".to_owned(),
                message: format!("{unit}: no such unit in the image"),
            });
        }
        enabled.insert(unit.clone());
    }
    for unit in services.disable.iter().chain(&services.mask) {
        enabled.remove(unit);
    }
    // Links, computed first, then written (Also= may add units).
    let mut links: BTreeMap<String, String> = BTreeMap::new();
    let mut queue: Vec<String> = enabled.into_iter().collect();
    let mut done = BTreeSet::new();
    while let Some(unit) = queue.pop() {
        if !done.insert(unit.clone()) {
            continue;
        }
        let Some((file, install)) = units.find(&unit) else {
            notes.push(format!("{unit}: enabled by a package but not in the image"));
            continue;
        };
        let (template, instance) = split_instance(&unit);
        let name = if template != unit || unit.contains("@.") {
            match instance.or(install.default_instance.clone()) {
                Some(instance) => template.replacen("@.", &format!("@{instance}."), 1),
                None => {
                    notes.push(format!("{unit}: a template without an instance"));
                    continue;
                }
            }
        } else {
            unit.clone()
        };
        install.link(&mut links, "etc/systemd/system", &name, &file);
        queue.extend(install.also.iter().cloned());
    }
    for unit in &services.mask {
        links.insert(format!("etc/systemd/system/{unit}"), "/dev/null".to_owned());
    }
    let user = Units {
        tree,
        blobs,
        user: true,
    };
    let enabled = declared(scripts, true);
    links.extend(user_links(&user, &enabled, &mut notes));
    for (link, target) in links {
        put(tree, &link, symlink(&target))?;
    }
    Ok(notes)
}

/// The links `deb-systemd-helper --user enable` leaves for each unit in
/// /etc/systemd/user (every user's manager reads them): WantedBy=,
/// RequiredBy= and Alias= as for a system unit.
fn user_links(
    units: &Units,
    enabled: &BTreeSet<String>,
    notes: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let mut links = BTreeMap::new();
    for unit in enabled {
        let Some((file, install)) = units.find(unit) else {
            notes.push(format!(
                "{unit}: a user unit enabled by a package but not in the image"
            ));
            continue;
        };
        install.link(&mut links, "etc/systemd/user", unit, &file);
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_sections_and_instances() {
        let install = parse_install(
            "[Unit]\nWantedBy=nope\n[Install]\nWantedBy=getty.target\nDefaultInstance=tty1\nAlias=a.service b.service\n",
        );
        assert_eq!(install.wanted_by, ["getty.target"]);
        assert_eq!(install.alias, ["a.service", "b.service"]);
        assert_eq!(install.default_instance.as_deref(), Some("tty1"));
        assert_eq!(
            split_instance("getty@tty1.service"),
            ("getty@.service".to_owned(), Some("tty1".to_owned()))
        );
        assert!(glob("systemd-journal-*", "systemd-journal-remote.service"));
        assert!(!glob("*.timer", "x.service"));
    }

    #[test]
    fn units_installed_with_no_enable_are_not_enabled() {
        let mut scripts = BTreeMap::new();
        scripts.insert(
            "nftables".to_owned(),
            super::super::scripts::postinst(
                "if [ \"$1\" = \"configure\" ] ; then\n\tif deb-systemd-helper debian-installed 'nftables.service'; then\n\t\tif deb-systemd-helper --quiet was-enabled 'nftables.service'; then\n\t\t\tdeb-systemd-helper enable 'nftables.service' >/dev/null || true\n\t\tfi\n\tfi\n\tdeb-systemd-helper update-state 'nftables.service' >/dev/null || true\nfi\n",
            ),
        );
        assert!(declared(&scripts, false).is_empty());
    }

    #[test]
    fn declared_units_come_from_literal_enable_commands() {
        let mut scripts = BTreeMap::new();
        scripts.insert(
            "x".to_owned(),
            super::super::scripts::postinst(
                "if deb-systemd-helper --quiet was-enabled 'a.timer'; then\n  deb-systemd-helper enable 'a.timer' >/dev/null || true\nfi\nsystemctl ${DPKG_ROOT:+--root=$DPKG_ROOT} enable b.service\nsystemctl enable getty@tty1.service || true\n",
            ),
        );
        assert_eq!(
            declared(&scripts, false).into_iter().collect::<Vec<_>>(),
            ["a.timer", "b.service", "getty@tty1.service"]
        );
    }

    #[test]
    fn user_units_are_enabled_for_every_user_and_system_units_stay_apart() {
        use airlock_tree::{Content, Kind, Node};
        let mut tree = Tree::merged_usr();
        let unit = |text: &str| Node::new(Kind::File(Content::Inline(text.into())), 0o644);
        tree.put(
            "usr/lib/systemd/user/gpg-agent.socket",
            unit(
                "[Socket]\nListenStream=%t/gnupg/S.gpg-agent\n[Install]\nWantedBy=sockets.target\n",
            ),
        )
        .unwrap();
        tree.put(
            "usr/lib/systemd/system/ssh.service",
            unit("[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n"),
        )
        .unwrap();
        let mut scripts = BTreeMap::new();
        scripts.insert(
            "gpg-agent".to_owned(),
            super::super::scripts::postinst(
                "if deb-systemd-helper --quiet --user was-enabled 'gpg-agent.socket' ; then\n\tdeb-systemd-helper --user enable 'gpg-agent.socket' >/dev/null || true\nfi\n",
            ),
        );
        scripts.insert(
            "openssh-server".to_owned(),
            super::super::scripts::postinst("deb-systemd-helper enable 'ssh.service'\n"),
        );
        assert_eq!(
            declared(&scripts, true).into_iter().collect::<Vec<_>>(),
            ["gpg-agent.socket"]
        );
        assert_eq!(
            declared(&scripts, false).into_iter().collect::<Vec<_>>(),
            ["ssh.service"]
        );
        let dir = tempfile::tempdir().unwrap();
        let blobs = Store::open_scratch(dir.path().join("blobs")).unwrap();
        let notes = configure(&mut tree, &blobs, &scripts, &Services::default()).unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        let link = |path: &str| tree.get(path).map(|n| n.kind.clone());
        assert_eq!(
            link("etc/systemd/user/sockets.target.wants/gpg-agent.socket"),
            Some(Kind::Symlink(
                "/usr/lib/systemd/user/gpg-agent.socket".into()
            ))
        );
        assert_eq!(
            link("etc/systemd/system/multi-user.target.wants/ssh.service"),
            Some(Kind::Symlink("/lib/systemd/system/ssh.service".into()))
        );
        assert_eq!(
            link("etc/systemd/system/sshd.service"),
            Some(Kind::Symlink("/lib/systemd/system/ssh.service".into())),
            "Alias="
        );
        assert!(link("etc/systemd/system/sockets.target.wants/gpg-agent.socket").is_none());
    }
}
