//! The account commands of maintainer scripts (`adduser`, `addgroup`,
//! `useradd`, `groupadd`, `usermod`, `gpasswd -a`) read as data, with
//! every option they take: what each would do, for `Accounts` to do.

use std::collections::{BTreeMap, BTreeSet};

use super::super::scripts::Command;

/// What an account command in a maintainer script does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Make a group (kept if it exists).
    Group {
        /// Its name.
        name: String,
        /// A fixed gid.
        gid: Option<u32>,
        /// A system group (a dynamic id below 1000).
        system: bool,
    },
    /// Make a user (kept if it exists).
    User(NewUser),
    /// Add a user to a group.
    Member {
        /// The user.
        user: String,
        /// The group.
        group: String,
    },
    /// Change a user.
    Modify {
        /// The user.
        user: String,
        /// A new shell.
        shell: Option<String>,
        /// A new home (not moved).
        home: Option<String>,
        /// A new GECOS.
        gecos: Option<String>,
        /// A new primary group.
        group: Option<String>,
        /// Supplementary groups to add to.
        groups: Vec<String>,
    },
    /// Nothing to do in an image (locking an account that is locked).
    Nothing,
}

/// A user a script makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    /// Its name.
    pub name: String,
    /// A fixed uid.
    pub uid: Option<u32>,
    /// A system user.
    pub system: bool,
    /// Its primary group.
    pub group: Primary,
    /// Supplementary groups.
    pub groups: Vec<String>,
    /// Its home.
    pub home: String,
    /// Whether the home is made (when missing).
    pub create_home: bool,
    /// Its shell.
    pub shell: String,
    /// GECOS.
    pub gecos: String,
}

/// A new user's primary group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Primary {
    /// A group of the user's name, made with the user's id when free.
    Own,
    /// An existing group, by name.
    Named(String),
    /// An existing group, by id.
    Id(u32),
}

/// Options and operands of one command line, with the options' values.
struct Line<'a> {
    flags: BTreeSet<&'a str>,
    values: BTreeMap<&'a str, &'a str>,
    operands: Vec<&'a str>,
}

/// Splits `args` by a table of options: `with_value` take one (as the next
/// word or after `=`; short ones also attached, `-gfoo`), `flags` none.
/// Anything else starting with `-` is an error.
fn options<'a>(
    args: &'a [String],
    with_value: &[&'a str],
    flags: &[&'a str],
) -> Result<Line<'a>, String> {
    let mut line = Line {
        flags: BTreeSet::new(),
        values: BTreeMap::new(),
        operands: Vec::new(),
    };
    let mut words = args.iter().map(String::as_str);
    let mut only_operands = false;
    while let Some(word) = words.next() {
        if only_operands || !word.starts_with('-') || word == "-" {
            line.operands.push(word);
            continue;
        }
        if word == "--" {
            only_operands = true;
            continue;
        }
        if let Some(&flag) = flags.iter().find(|f| **f == word) {
            line.flags.insert(flag);
            continue;
        }
        let (name, attached) = match word.split_once('=') {
            Some((name, value)) if word.starts_with("--") => (name, Some(value)),
            _ => match with_value
                .iter()
                .find(|o| !o.starts_with("--") && word.len() > 2 && word.starts_with(*o))
            {
                Some(short) => (*short, Some(&word[2..])),
                None => (word, None),
            },
        };
        let Some(&option) = with_value.iter().find(|o| **o == name) else {
            return Err(format!("option {word} is not one airlock knows"));
        };
        let value = match attached {
            Some(value) => value,
            None => words
                .next()
                .ok_or_else(|| format!("option {word} needs a value"))?,
        };
        line.values.insert(option, value);
    }
    Ok(line)
}

impl Line<'_> {
    fn flag(&self, names: &[&str]) -> bool {
        names.iter().any(|n| self.flags.contains(n))
    }

    fn value(&self, names: &[&str]) -> Option<String> {
        names
            .iter()
            .find_map(|n| self.values.get(n))
            .map(|v| (*v).to_owned())
    }

    /// A comma-separated list (`-G a,b`); empty when not given.
    fn list(&self, names: &[&str]) -> Vec<String> {
        self.value(names)
            .map(|list| {
                list.split(',')
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn id(&self, names: &[&str]) -> Result<Option<u32>, String> {
        self.value(names)
            .map(|id| id.parse().map_err(|_| format!("{id:?} is not an id")))
            .transpose()
    }
}

/// The account commands airlock does natively.
pub const COMMANDS: &[&str] = &[
    "adduser", "addgroup", "useradd", "groupadd", "usermod", "gpasswd",
];

/// Reads an account command: `None` if `command` is not one of
/// [`COMMANDS`], `Err` if it is one airlock cannot read exactly.
pub fn parse(command: &Command) -> Option<Result<Op, String>> {
    let program = command.name().rsplit('/').next()?;
    if !COMMANDS.contains(&program) {
        return None;
    }
    if command.expands {
        return Some(Err(
            "a word's value is not known without running the script".to_owned(),
        ));
    }
    let args = &command.words[1..];
    Some(match program {
        "adduser" | "addgroup" => adduser(program == "addgroup", args),
        "useradd" => useradd(args),
        "groupadd" => groupadd(args),
        "usermod" => usermod(args),
        _ => gpasswd(args),
    })
}

/// Debian's adduser and addgroup (adduser 3.13x): a system user, a group,
/// a user added to a group, or a regular user.
fn adduser(addgroup: bool, args: &[String]) -> Result<Op, String> {
    let line = options(
        args,
        &[
            "--home",
            "--shell",
            "--ingroup",
            "--gecos",
            "--comment",
            "--uid",
            "--gid",
            "--firstuid",
            "--lastuid",
            "--firstgid",
            "--lastgid",
            "--conf",
            "-c",
        ],
        &[
            "--system",
            "--group",
            "--quiet",
            "-q",
            "--disabled-password",
            "--disabled-login",
            "--no-create-home",
            "--force-badname",
            "--allow-badname",
            "--allow-all-names",
            "--debug",
            "--verbose",
            "--add-extra-groups",
            "--add_extra_groups",
            "--encrypt-home",
        ],
    )?;
    let system = line.flag(&["--system"]);
    let group_only = addgroup || (line.flag(&["--group"]) && !system);
    if group_only {
        let [name] = line.operands[..] else {
            return Err("expected one group name".to_owned());
        };
        return Ok(Op::Group {
            name: name.to_owned(),
            gid: line.id(&["--gid"])?,
            system,
        });
    }
    match line.operands[..] {
        [user, group] if !system => Ok(Op::Member {
            user: user.to_owned(),
            group: group.to_owned(),
        }),
        [name] => {
            let group = if line.flag(&["--group"]) {
                Primary::Own
            } else if let Some(group) = line.value(&["--ingroup"]) {
                Primary::Named(group)
            } else if let Some(gid) = line.id(&["--gid"])? {
                Primary::Id(gid)
            } else if system {
                Primary::Named("nogroup".to_owned())
            } else {
                Primary::Own
            };
            let home = line.value(&["--home"]);
            Ok(Op::User(NewUser {
                name: name.to_owned(),
                uid: line.id(&["--uid"])?,
                system,
                group,
                groups: Vec::new(),
                create_home: !line.flag(&["--no-create-home"])
                    && home.as_deref() != Some("/nonexistent")
                    && (home.is_some() || !system),
                home: home.unwrap_or_else(|| {
                    if system {
                        "/nonexistent".to_owned()
                    } else {
                        format!("/home/{name}")
                    }
                }),
                shell: line.value(&["--shell"]).unwrap_or_else(|| {
                    if system {
                        "/usr/sbin/nologin"
                    } else {
                        "/bin/bash"
                    }
                    .to_owned()
                }),
                gecos: line
                    .value(&["--gecos", "--comment", "-c"])
                    .unwrap_or_default(),
            }))
        }
        _ => Err("expected a user name (and a group)".to_owned()),
    }
}

/// shadow's useradd, with /etc/login.defs's USERGROUPS_ENAB yes and
/// /etc/default/useradd's SHELL=/bin/sh as Debian ships them.
fn useradd(args: &[String]) -> Result<Op, String> {
    let line = options(
        args,
        &[
            "-d",
            "--home-dir",
            "-s",
            "--shell",
            "-g",
            "--gid",
            "-G",
            "--groups",
            "-c",
            "--comment",
            "-u",
            "--uid",
            "-K",
            "--key",
            "-p",
            "--password",
        ],
        &[
            "-r",
            "--system",
            "-m",
            "--create-home",
            "-M",
            "--no-create-home",
            "-U",
            "--user-group",
            "-N",
            "--no-user-group",
            "-o",
            "--non-unique",
            "-l",
            "--no-log-init",
        ],
    )?;
    if let Some(password) = line.value(&["-p", "--password"])
        && !matches!(password.as_str(), "*" | "!" | "")
    {
        return Err("a password set by a package is refused".to_owned());
    }
    let [name] = line.operands[..] else {
        return Err("expected one user name".to_owned());
    };
    let group = match line.value(&["-g", "--gid"]) {
        Some(group) => match group.parse() {
            Ok(gid) => Primary::Id(gid),
            Err(_) => Primary::Named(group),
        },
        None if line.flag(&["-N", "--no-user-group"]) => Primary::Named("users".to_owned()),
        None => Primary::Own,
    };
    Ok(Op::User(NewUser {
        name: name.to_owned(),
        uid: line.id(&["-u", "--uid"])?,
        system: line.flag(&["-r", "--system"]),
        group,
        groups: line.list(&["-G", "--groups"]),
        home: line
            .value(&["-d", "--home-dir"])
            .unwrap_or_else(|| format!("/home/{name}")),
        create_home: line.flag(&["-m", "--create-home"]),
        shell: line
            .value(&["-s", "--shell"])
            .unwrap_or_else(|| "/bin/sh".to_owned()),
        gecos: line.value(&["-c", "--comment"]).unwrap_or_default(),
    }))
}

fn groupadd(args: &[String]) -> Result<Op, String> {
    let line = options(
        args,
        &["-g", "--gid", "-K", "--key"],
        &["-r", "--system", "-f", "--force", "-o", "--non-unique"],
    )?;
    let [name] = line.operands[..] else {
        return Err("expected one group name".to_owned());
    };
    Ok(Op::Group {
        name: name.to_owned(),
        gid: line.id(&["-g", "--gid"])?,
        system: line.flag(&["-r", "--system"]),
    })
}

fn usermod(args: &[String]) -> Result<Op, String> {
    let line = options(
        args,
        &[
            "-s",
            "--shell",
            "-d",
            "--home",
            "-c",
            "--comment",
            "-g",
            "--gid",
            "-G",
            "--groups",
        ],
        &["-a", "--append", "-L", "--lock", "-aG"],
    )?;
    let [user] = line.operands[..] else {
        return Err("expected one user name".to_owned());
    };
    let mut groups: Vec<String> = line.list(&["-G", "--groups"]);
    if line.flag(&["-aG"]) {
        // `-aG LIST` reads as the flag and LIST as an operand.
        return Err("write -a -G LIST".to_owned());
    }
    if !groups.is_empty() && !line.flag(&["-a", "--append"]) {
        return Err("usermod -G without -a replaces the user's groups".to_owned());
    }
    let op = Op::Modify {
        user: user.to_owned(),
        shell: line.value(&["-s", "--shell"]),
        home: line.value(&["-d", "--home"]),
        gecos: line.value(&["-c", "--comment"]),
        group: line.value(&["-g", "--gid"]),
        groups: std::mem::take(&mut groups),
    };
    Ok(match op {
        Op::Modify {
            shell: None,
            home: None,
            gecos: None,
            group: None,
            ref groups,
            ..
        } if groups.is_empty() => Op::Nothing,
        op => op,
    })
}

/// `gpasswd -a USER GROUP`.
fn gpasswd(args: &[String]) -> Result<Op, String> {
    match args {
        [flag, user, group] if flag == "-a" || flag == "--add" => Ok(Op::Member {
            user: user.clone(),
            group: group.clone(),
        }),
        _ => Err("only gpasswd -a USER GROUP is read".to_owned()),
    }
}
