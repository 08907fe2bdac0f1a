//! /etc/passwd, group, shadow and gshadow, made natively and
//! deterministically, in this order:
//!
//! 1. base-passwd's master files (`usr/share/base-passwd/*.master`), as
//!    `update-passwd` installs them, in their order;
//! 2. every `sysusers.d` file of the image (`usr/lib/sysusers.d`, then
//!    `etc/sysusers.d` overriding by file name), files in name order, lines
//!    in order: `u`, `g` and `m` lines; `r` is ignored;
//! 3. what the maintainer scripts' `adduser`, `addgroup`, `useradd`,
//!    `groupadd`, `usermod` and `gpasswd -a` would do, read as data (see
//!    `scripts`), package by package in name order, preinst before
//!    postinst. A command under a condition the walk cannot decide is done
//!    all the same: the conditions scripts put around these commands are
//!    whether the account exists already, and an existing account is kept.
//!    A home adduser would make is made (mode 0755, owned by the user)
//!    unless a package ships it;
//! 4. the recipe's `[[users]]`.
//!
//! An account that already exists is kept. A dynamic system id is the
//! highest id below 1000 that is free as a uid and as a gid (what
//! systemd-sysusers does), so the same image always gets the same ids; a
//! dynamic regular user gets the lowest free id from 1000. No account can
//! log in with a password: shadow's field is what each maker writes
//! (base-passwd's `*`, systemd-sysusers' `!*`, useradd's and groupadd's
//! `!`; `*` for the recipe's users), and the last change date is the
//! recipe's epoch.

use std::collections::{BTreeMap, BTreeSet};

use airlock_recipe::User;
use airlock_store::Store;
use airlock_tree::Tree;

use super::scripts::Command;

mod steps;
use super::{generated, put, read_file};
use crate::BuildError;
pub use steps::{COMMANDS, NewUser, Op, Primary, parse};

/// One user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// GECOS.
    pub gecos: String,
    /// Home.
    pub home: String,
    /// Shell.
    pub shell: String,
    /// shadow's password field ([`LOCKED_BY_TOOLS`] and its kin).
    pub password: &'static str,
}

/// One group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Name.
    pub name: String,
    /// gid.
    pub gid: u32,
    /// Supplementary members, in the order they were added.
    pub members: Vec<String>,
    /// gshadow's password field.
    pub password: &'static str,
}

/// Every account and group, in file order.
#[derive(Clone, Debug, Default)]
pub struct Accounts {
    /// Users.
    pub users: Vec<Account>,
    /// Groups.
    pub groups: Vec<Group>,
}

/// shadow's and gshadow's password field as each maker of accounts
/// writes it: none can log in with a password. base-passwd's master
/// files say `*` (no password matches).
const FROM_BASE_PASSWD: &str = "*";
/// systemd-sysusers writes `!*`: locked, and no password matches.
const FROM_SYSUSERS: &str = "!*";
/// useradd and groupadd (which adduser and addgroup run) write `!`:
/// locked.
const LOCKED_BY_TOOLS: &str = "!";
/// The recipe's `[[users]]` get `*`: no password matches, and the account
/// is not locked, so sshd takes their keys even without PAM.
const FROM_RECIPE: &str = "*";

const SYSTEM_MAX: u32 = 999;
const REGULAR_MIN: u32 = 1000;
const REGULAR_MAX: u32 = 59999;

impl Accounts {
    /// A user's uid.
    pub fn uid(&self, name: &str) -> Option<u32> {
        self.users.iter().find(|u| u.name == name).map(|u| u.uid)
    }

    /// A group's gid.
    pub fn gid(&self, name: &str) -> Option<u32> {
        self.groups.iter().find(|g| g.name == name).map(|g| g.gid)
    }

    fn used_ids(&self) -> BTreeSet<u32> {
        self.users
            .iter()
            .map(|u| u.uid)
            .chain(self.groups.iter().map(|g| g.gid))
            .collect()
    }

    fn free_system_id(&self) -> Option<u32> {
        let used = self.used_ids();
        (1..=SYSTEM_MAX).rev().find(|id| !used.contains(id))
    }

    fn free_regular_id(&self) -> Option<u32> {
        let used = self.used_ids();
        (REGULAR_MIN..=REGULAR_MAX).find(|id| !used.contains(id))
    }

    fn add_group(
        &mut self,
        name: &str,
        gid: Option<u32>,
        password: &'static str,
    ) -> Result<u32, String> {
        if let Some(gid) = self.gid(name) {
            return Ok(gid);
        }
        let gid = match gid {
            Some(gid) => gid,
            None => self
                .free_system_id()
                .ok_or_else(|| format!("no free system gid for group {name}"))?,
        };
        self.groups.push(Group {
            name: name.to_owned(),
            gid,
            members: Vec::new(),
            password,
        });
        Ok(gid)
    }

    fn add_member(&mut self, user: &str, group: &str) -> Result<(), String> {
        let group = self
            .groups
            .iter_mut()
            .find(|g| g.name == group)
            .ok_or_else(|| format!("user {user}: group {group} does not exist"))?;
        if !group.members.iter().any(|m| m == user) {
            group.members.push(user.to_owned());
        }
        Ok(())
    }

    /// Reads base-passwd's master files.
    fn base_passwd(&mut self, passwd: &str, group: &str) -> Result<(), String> {
        for line in group.lines().filter(|l| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.split(':').collect();
            let [name, _, gid, members] = fields[..] else {
                return Err(format!("group.master: bad line {line:?}"));
            };
            self.groups.push(Group {
                name: name.to_owned(),
                gid: gid
                    .parse()
                    .map_err(|_| format!("group.master: bad gid in {line:?}"))?,
                members: members
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect(),
                password: FROM_BASE_PASSWD,
            });
        }
        for line in passwd.lines().filter(|l| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.split(':').collect();
            let [name, _, uid, gid, gecos, home, shell] = fields[..] else {
                return Err(format!("passwd.master: bad line {line:?}"));
            };
            let number = |text: &str| {
                text.parse::<u32>()
                    .map_err(|_| format!("passwd.master: bad id in {line:?}"))
            };
            self.users.push(Account {
                name: name.to_owned(),
                uid: number(uid)?,
                gid: number(gid)?,
                gecos: gecos.to_owned(),
                home: home.to_owned(),
                shell: shell.to_owned(),
                password: FROM_BASE_PASSWD,
            });
        }
        Ok(())
    }

    /// Applies one sysusers.d file.
    fn sysusers(&mut self, file: &str, text: &str) -> Result<(), String> {
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = sysusers_words(line);
            let at = || format!("{file}:{}", number + 1);
            let field = |i: usize| words.get(i).map(String::as_str).filter(|w| *w != "-");
            let kind = words[0].trim_end_matches('!');
            let name = field(1).ok_or_else(|| format!("{}: missing name", at()))?;
            match kind {
                "g" => {
                    let gid = field(2).and_then(|id| id.parse().ok());
                    self.add_group(name, gid, FROM_SYSUSERS)
                        .map_err(|e| format!("{}: {e}", at()))?;
                }
                "u" => {
                    if self.uid(name).is_some() {
                        continue;
                    }
                    let (uid, group) = match field(2) {
                        Some(id) => match id.split_once(':') {
                            Some((uid, group)) => (uid.parse().ok(), Some(group)),
                            None => (id.parse().ok(), None),
                        },
                        None => (None, None),
                    };
                    let uid = match uid {
                        Some(uid) => uid,
                        None => self
                            .free_system_id()
                            .ok_or_else(|| format!("{}: no free system uid", at()))?,
                    };
                    let gid = match group {
                        Some(group) => match group.parse::<u32>() {
                            Ok(gid) => gid,
                            Err(_) => self
                                .gid(group)
                                .ok_or_else(|| format!("{}: no group {group}", at()))?,
                        },
                        None => match self.gid(name) {
                            Some(gid) => gid,
                            None => {
                                let free = !self.groups.iter().any(|g| g.gid == uid);
                                self.add_group(name, free.then_some(uid), FROM_SYSUSERS)
                                    .map_err(|e| format!("{}: {e}", at()))?
                            }
                        },
                    };
                    self.users.push(Account {
                        name: name.to_owned(),
                        uid,
                        gid,
                        gecos: field(3).unwrap_or_default().to_owned(),
                        home: field(4).unwrap_or("/").to_owned(),
                        shell: field(5).unwrap_or("/usr/sbin/nologin").to_owned(),
                        password: FROM_SYSUSERS,
                    });
                }
                "m" => {
                    let group = field(2).ok_or_else(|| format!("{}: missing group", at()))?;
                    self.add_group(group, None, FROM_SYSUSERS)
                        .map_err(|e| format!("{}: {e}", at()))?;
                    self.add_member(name, group)
                        .map_err(|e| format!("{}: {e}", at()))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Adds a recipe user.
    fn recipe_user(&mut self, user: &User) -> Result<(), String> {
        let name = user.name.as_str();
        if self.uid(name).is_some() {
            return Err(format!("[[users]] {name}: the image already has this user"));
        }
        if let Some(uid) = user.uid
            && self.users.iter().any(|u| u.uid == uid)
        {
            return Err(format!("[[users]] {name}: uid {uid} is taken"));
        }
        let new = NewUser {
            name: name.to_owned(),
            uid: user.uid,
            system: user.system,
            group: user
                .group
                .as_ref()
                .map_or(Primary::Own, |g| Primary::Named(g.to_string())),
            groups: user.groups.iter().map(|g| g.to_string()).collect(),
            home: match &user.home {
                Some(home) => home.to_string(),
                None if user.system => "/nonexistent".to_owned(),
                None => format!("/home/{name}"),
            },
            // `configure` makes a regular user's home itself.
            create_home: false,
            shell: user
                .shell
                .as_ref()
                .map_or("/usr/sbin/nologin".to_owned(), |s| s.to_string()),
            gecos: user.comment.clone(),
        };
        self.new_user(&new, FROM_RECIPE)
            .map(drop)
            .map_err(|e| format!("[[users]] {name}: {e}"))
    }

    /// The four files' contents: passwd, group, shadow, gshadow.
    pub fn render(&self, epoch: u64) -> [String; 4] {
        let days = epoch / 86_400;
        let mut passwd = String::new();
        let mut shadow = String::new();
        for u in &self.users {
            passwd += &format!(
                "{}:x:{}:{}:{}:{}:{}\n",
                u.name, u.uid, u.gid, u.gecos, u.home, u.shell
            );
            shadow += &format!("{}:{}:{days}:0:99999:7:::\n", u.name, u.password);
        }
        let mut group = String::new();
        let mut gshadow = String::new();
        for g in &self.groups {
            let members = g.members.join(",");
            group += &format!("{}:x:{}:{members}\n", g.name, g.gid);
            gshadow += &format!("{}:{}::{members}\n", g.name, g.password);
        }
        [passwd, group, shadow, gshadow]
    }
}

/// Splits a sysusers.d line into words; double quotes group words.
fn sysusers_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' | '\t' if !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// Makes every account and writes the four files.
pub fn configure(
    tree: &mut Tree,
    blobs: &Store,
    scripts: &BTreeMap<String, Vec<Command>>,
    users: &[User],
    epoch: u64,
) -> Result<Accounts, BuildError> {
    let fail = |message: String| BuildError::Config {
        what: "accounts".to_owned(),
        message,
    };
    let mut accounts = Accounts::default();
    let text = |path: &str| {
        read_file(tree, blobs, path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    };
    if let (Some(passwd), Some(group)) = (
        text("usr/share/base-passwd/passwd.master"),
        text("usr/share/base-passwd/group.master"),
    ) {
        accounts.base_passwd(&passwd, &group).map_err(fail)?;
    } else {
        accounts.users.push(Account {
            name: "root".to_owned(),
            uid: 0,
            gid: 0,
            gecos: "root".to_owned(),
            home: "/root".to_owned(),
            shell: "/bin/sh".to_owned(),
            password: FROM_BASE_PASSWD,
        });
        accounts.groups.push(Group {
            name: "root".to_owned(),
            gid: 0,
            members: Vec::new(),
            password: FROM_BASE_PASSWD,
        });
    }
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for dir in ["usr/lib/sysusers.d", "etc/sysusers.d"] {
        let Some((dir, _)) = tree.lookup(dir) else {
            continue;
        };
        for (name, _) in tree.children(&dir) {
            if name.ends_with(".conf") {
                files.insert(name.to_owned(), format!("{dir}/{name}"));
            }
        }
    }
    // The sysusers.d files a script applies (systemd's postinst runs
    // `systemd-sysusers basic.conf systemd-journal.conf …`), before the
    // scripts' own accounts, as dpkg configures systemd before the
    // packages that need its users; the others only after, as
    // systemd-sysusers.service would at boot (dbus' messagebus is made by
    // its postinst's adduser, with its home /nonexistent).
    let named = sysusers_named(scripts);
    let sysusers = |accounts: &mut Accounts, named_ones: bool| -> Result<(), BuildError> {
        for (name, path) in &files {
            let is_named = named.as_ref().is_none_or(|n| n.contains(name));
            if is_named != named_ones {
                continue;
            }
            if let Some(text) = text(path) {
                accounts.sysusers(name, &text).map_err(fail)?;
            }
        }
        Ok(())
    };
    sysusers(&mut accounts, true)?;
    // Accounts first, in package order (which gives the dynamic ids),
    // then memberships and changes: dpkg configures a package that adds
    // a user to another's group after that package (postgresql-common's
    // `adduser postgres ssl-cert`), and the scripts' order here is by name.
    let steps: Vec<_> = super::scripts::steps(scripts, parse).collect();
    let makes = |op: &steps::Op| matches!(op, steps::Op::Group { .. } | steps::Op::User(_));
    let mut homes = Vec::new();
    for (package, command, op) in steps
        .iter()
        .filter(|(_, _, op)| makes(op))
        .chain(steps.iter().filter(|(_, _, op)| !makes(op)))
    {
        homes.extend(
            accounts
                .apply(op)
                .map_err(|message| command.error(package, message))?,
        );
    }
    sysusers(&mut accounts, false)?;
    for user in users {
        accounts.recipe_user(user).map_err(fail)?;
    }
    let [passwd, group, shadow, gshadow] = accounts.render(epoch);
    let shadow_gid = accounts.gid("shadow").unwrap_or(0);
    put(tree, "etc/passwd", generated(passwd, 0o644))?;
    put(tree, "etc/group", generated(group, 0o644))?;
    for (path, text) in [("etc/shadow", shadow), ("etc/gshadow", gshadow)] {
        let mut node = generated(text, 0o640);
        node.gid = shadow_gid;
        put(tree, path, node)?;
    }
    make_homes(tree, users, &accounts, homes)?;
    Ok(accounts)
}

/// The sysusers.d files the scripts' `systemd-sysusers` calls name; None
/// when one names none (it applies them all).
fn sysusers_named(scripts: &BTreeMap<String, Vec<Command>>) -> Option<BTreeSet<String>> {
    let mut named = BTreeSet::new();
    for command in scripts.values().flatten() {
        if command.name().rsplit('/').next() != Some("systemd-sysusers") {
            continue;
        }
        let files: Vec<&String> = command.words[1..]
            .iter()
            .filter(|word| !word.starts_with('-'))
            .collect();
        if files.is_empty() {
            return None;
        }
        named.extend(files.into_iter().cloned());
    }
    Some(named)
}

/// Makes the homes: those a script's adduser makes (unless a package
/// ships them), a regular recipe user's, and a system user's when it
/// needs one for its authorized keys, which go in HOME/.ssh.
fn make_homes(
    tree: &mut Tree,
    users: &[User],
    accounts: &Accounts,
    homes: Vec<(String, u32, u32)>,
) -> Result<(), BuildError> {
    // A home a script's adduser makes, unless a package ships it.
    for (home, uid, gid) in homes {
        let path = home.trim_start_matches('/');
        if !path.is_empty() && tree.lookup(path).is_none() {
            let mut node = airlock_tree::Node::new(airlock_tree::Kind::Directory, 0o755);
            node.uid = uid;
            node.gid = gid;
            put(tree, path, node)?;
        }
    }
    for user in users {
        let account = accounts
            .users
            .iter()
            .find(|a| a.name == user.name.as_str())
            .expect("added above");
        let home = account.home.trim_start_matches('/');
        let owned = |kind, mode| {
            let mut node = airlock_tree::Node::new(kind, mode);
            node.uid = account.uid;
            node.gid = account.gid;
            node
        };
        // A regular user's home is made (or made theirs); a system user's
        // only when it needs one for its keys and none is there.
        let wants_home =
            !user.system || (!user.authorized_keys.is_empty() && tree.lookup(home).is_none());
        if wants_home && account.home != "/nonexistent" {
            put(tree, home, owned(airlock_tree::Kind::Directory, 0o750))?;
        }
        if !user.authorized_keys.is_empty() {
            // What sshd's StrictModes accepts: the user owns .ssh (0700)
            // and the file (0600).
            put(
                tree,
                &format!("{home}/.ssh"),
                owned(airlock_tree::Kind::Directory, 0o700),
            )?;
            let keys: String = user
                .authorized_keys
                .iter()
                .map(|key| format!("{}\n", key.trim()))
                .collect();
            put(
                tree,
                &format!("{home}/.ssh/authorized_keys"),
                owned(
                    airlock_tree::Kind::File(airlock_tree::Content::Inline(keys.into_bytes())),
                    0o600,
                ),
            )?;
        }
    }
    Ok(())
}

impl Accounts {
    /// [`Accounts::apply`] for other modules' tests.
    #[cfg(test)]
    pub(crate) fn apply_for_tests(&mut self, op: &Op) {
        self.apply(op).unwrap();
    }

    /// Does one account command; returns the home to make, if any, as
    /// (path, uid, gid).
    fn apply(&mut self, op: &Op) -> Result<Option<(String, u32, u32)>, String> {
        match op {
            Op::Group { name, gid, system } => {
                if self.gid(name).is_none() {
                    let gid = match gid {
                        Some(gid) => Some(*gid),
                        None if *system => None,
                        None => Some(
                            self.free_regular_id()
                                .ok_or_else(|| format!("no free gid for group {name}"))?,
                        ),
                    };
                    self.add_group(name, gid, LOCKED_BY_TOOLS)?;
                }
                Ok(None)
            }
            Op::User(user) => self.new_user(user, LOCKED_BY_TOOLS),
            Op::Member { user, group } => {
                if self.uid(user).is_none() {
                    return Err(format!("user {user} does not exist"));
                }
                self.add_member(user, group).map(|()| None)
            }
            Op::Modify {
                user,
                shell,
                home,
                gecos,
                group,
                groups,
            } => {
                let gid = match group {
                    Some(group) => Some(match group.parse::<u32>() {
                        Ok(gid) => gid,
                        Err(_) => self
                            .gid(group)
                            .ok_or_else(|| format!("group {group} does not exist"))?,
                    }),
                    None => None,
                };
                let account = self
                    .users
                    .iter_mut()
                    .find(|a| a.name == *user)
                    .ok_or_else(|| format!("user {user} does not exist"))?;
                if let Some(shell) = shell {
                    account.shell.clone_from(shell);
                }
                if let Some(home) = home {
                    account.home.clone_from(home);
                }
                if let Some(gecos) = gecos {
                    account.gecos.clone_from(gecos);
                }
                if let Some(gid) = gid {
                    account.gid = gid;
                }
                for group in groups {
                    self.add_member(user, group)?;
                }
                Ok(None)
            }
            Op::Nothing => Ok(None),
        }
    }

    fn new_user(
        &mut self,
        user: &NewUser,
        password: &'static str,
    ) -> Result<Option<(String, u32, u32)>, String> {
        let name = user.name.as_str();
        if self.uid(name).is_some() {
            return Ok(None);
        }
        let uid = match user.uid {
            Some(uid) => uid,
            None if user.system => self
                .free_system_id()
                .ok_or_else(|| format!("no free system uid for {name}"))?,
            None => self
                .free_regular_id()
                .ok_or_else(|| format!("no free uid for {name}"))?,
        };
        let gid = match &user.group {
            Primary::Own => match self.gid(name) {
                Some(gid) => gid,
                None => {
                    let free = !self.groups.iter().any(|g| g.gid == uid);
                    self.add_group(name, free.then_some(uid), password)?
                }
            },
            Primary::Named(group) => self
                .gid(group)
                .ok_or_else(|| format!("user {name}: group {group} does not exist"))?,
            Primary::Id(gid) => *gid,
        };
        self.users.push(Account {
            name: name.to_owned(),
            uid,
            gid,
            gecos: user.gecos.clone(),
            home: user.home.clone(),
            shell: user.shell.clone(),
            password,
        });
        for group in &user.groups {
            self.add_member(name, group)?;
        }
        Ok(user.create_home.then(|| (user.home.clone(), uid, gid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysusers_ids_are_dynamic_downward_and_stable() {
        let mut accounts = Accounts::default();
        accounts
            .base_passwd(
                "root:*:0:0:root:/root:/bin/bash\n",
                "root:*:0:\nshadow:*:42:\n",
            )
            .unwrap();
        accounts
            .sysusers(
                "a.conf",
                "g systemd-journal - -\nu systemd-network - \"systemd Network Management\"\nu _apt 42:65534 - /nonexistent /usr/sbin/nologin\nm systemd-network systemd-journal\n",
            )
            .unwrap();
        let [passwd, group, shadow, _] = accounts.render(86_400 * 3);
        assert_eq!(
            passwd,
            "root:x:0:0:root:/root:/bin/bash\nsystemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n"
        );
        assert_eq!(
            group,
            "root:x:0:\nshadow:x:42:\nsystemd-journal:x:999:systemd-network\nsystemd-network:x:998:\n"
        );
        assert!(shadow.starts_with("root:*:3:0:99999:7:::\n"));
    }

    #[test]
    fn recipe_users_get_their_own_group_and_supplementary_ones() {
        let mut accounts = Accounts::default();
        accounts
            .base_passwd("root:*:0:0:root:/root:/bin/bash\n", "root:*:0:\n")
            .unwrap();
        let user: User = toml::from_str("name = \"agent\"\ngroups = [\"root\"]").unwrap();
        accounts.recipe_user(&user).unwrap();
        assert_eq!(accounts.uid("agent"), Some(999));
        assert_eq!(accounts.gid("agent"), Some(999));
        assert_eq!(accounts.groups[0].members, ["agent"]);
        let error = accounts.recipe_user(&user).unwrap_err();
        assert!(error.contains("already has this user"), "{error}");
        let bad: User = toml::from_str("name = \"x\"\ngroup = \"nope\"").unwrap();
        assert!(accounts.recipe_user(&bad).unwrap_err().contains("nope"));
    }

    fn ops(script: &str) -> Vec<Result<Op, String>> {
        super::super::scripts::postinst(script)
            .iter()
            .filter_map(parse)
            .collect()
    }

    #[test]
    fn the_account_commands_of_real_scripts_are_read() {
        let ops = ops(
            "adduser --quiet --system --group --no-create-home --home /run/sshd \\\n  --shell /usr/sbin/nologin sshd\naddgroup --quiet --system input\nadduser --system --quiet --home /var/lib/chrony --gecos 'Chrony daemon' --ingroup _chrony _chrony\ngroupadd -r -g 42 fixed\nuseradd --system -d /var/lib/x -s /bin/false -G a,b -c 'X user' x\nusermod -a -G input sshd\nadduser sshd input\ngroupadd --system \"$(cat /g)\"\nadduser --frobnicate y\n",
        );
        let user = |op: &Result<Op, String>| match op {
            Ok(Op::User(user)) => user.clone(),
            other => panic!("not a user: {other:?}"),
        };
        let sshd = user(&ops[0]);
        assert_eq!(
            (
                sshd.system,
                &sshd.group,
                sshd.home.as_str(),
                sshd.create_home
            ),
            (true, &Primary::Own, "/run/sshd", false)
        );
        assert_eq!(sshd.shell, "/usr/sbin/nologin");
        assert_eq!(
            ops[1],
            Ok(Op::Group {
                name: "input".to_owned(),
                gid: None,
                system: true
            })
        );
        let chrony = user(&ops[2]);
        assert_eq!(chrony.gecos, "Chrony daemon");
        assert_eq!(chrony.group, Primary::Named("_chrony".to_owned()));
        assert!(chrony.create_home);
        assert_eq!(
            ops[3],
            Ok(Op::Group {
                name: "fixed".to_owned(),
                gid: Some(42),
                system: true
            })
        );
        let x = user(&ops[4]);
        assert_eq!(
            (x.shell.as_str(), x.groups.len(), x.create_home),
            ("/bin/false", 2, false)
        );
        assert!(matches!(&ops[5], Ok(Op::Modify { groups, .. }) if groups == &["input"]));
        assert!(
            matches!(&ops[6], Ok(Op::Member { user, group }) if user == "sshd" && group == "input")
        );
        assert!(ops[7].as_ref().unwrap_err().contains("not known"));
        assert!(ops[8].as_ref().unwrap_err().contains("--frobnicate"));
    }

    #[test]
    fn script_accounts_are_made_once_with_stable_ids() {
        let mut accounts = Accounts::default();
        accounts
            .base_passwd(
                "root:*:0:0:root:/root:/bin/bash\n",
                "root:*:0:\nnogroup:*:65534:\n",
            )
            .unwrap();
        for op in ops(
            "adduser --system --group --home /run/sshd --no-create-home sshd\nadduser --system --group sshd\nadduser --system --home /var/lib/d d\nusermod -s /bin/sh sshd\n",
        ) {
            accounts.apply(&op.unwrap()).unwrap();
        }
        let [passwd, group, ..] = accounts.render(0);
        assert_eq!(
            passwd,
            "root:x:0:0:root:/root:/bin/bash\nsshd:x:999:999::/run/sshd:/bin/sh\nd:x:998:65534::/var/lib/d:/usr/sbin/nologin\n"
        );
        assert_eq!(group, "root:x:0:\nnogroup:x:65534:\nsshd:x:999:\n");
        let error = accounts
            .apply(&Op::Member {
                user: "nobody".to_owned(),
                group: "root".to_owned(),
            })
            .unwrap_err();
        assert!(error.contains("nobody"), "{error}");
    }

    #[test]
    fn sysusers_files_a_script_names_come_first_and_the_rest_after_the_scripts() {
        use airlock_tree::{Content, Kind, Node};
        let dir = tempfile::tempdir().unwrap();
        let blobs = Store::open_scratch(dir.path()).unwrap();
        let mut tree = Tree::merged_usr();
        let file = |text: &str| Node::new(Kind::File(Content::Inline(text.into())), 0o644);
        tree.put(
            "usr/share/base-passwd/passwd.master",
            file("root:*:0:0:root:/root:/bin/bash\n"),
        )
        .unwrap();
        tree.put(
            "usr/share/base-passwd/group.master",
            file("root:*:0:\nshadow:*:42:\n"),
        )
        .unwrap();
        tree.put(
            "usr/lib/sysusers.d/basic.conf",
            file("g systemd-journal - -\n"),
        )
        .unwrap();
        tree.put(
            "usr/lib/sysusers.d/dbus.conf",
            file("u messagebus - \"System Message Bus\"\n"),
        )
        .unwrap();
        let scripts = BTreeMap::from([
            (
                "dbus".to_owned(),
                crate::configure::scripts::postinst(
                    "adduser --system --home /nonexistent --no-create-home --group messagebus\n",
                ),
            ),
            (
                "systemd".to_owned(),
                crate::configure::scripts::postinst("systemd-sysusers basic.conf\n"),
            ),
        ]);
        let accounts = configure(&mut tree, &blobs, &scripts, &[], 0).unwrap();
        let [passwd, _, shadow, gshadow] = accounts.render(0);
        assert!(
            passwd.contains("messagebus:x:998:998::/nonexistent:/usr/sbin/nologin\n"),
            "the postinst's adduser made messagebus, not dbus.conf: {passwd}"
        );
        assert!(
            shadow.contains("root:*:0:") && shadow.contains("messagebus:!:0:"),
            "{shadow}"
        );
        assert!(
            gshadow.contains("systemd-journal:!*::") && gshadow.contains("messagebus:!::"),
            "{gshadow}"
        );
    }
}
