//! Every command the maintainer scripts would run on a fresh install,
//! accounted for. airlock runs none of them; each is one of:
//!
//! - **native**: a module of `configure` does what it would (accounts,
//!   alternatives, unit enablement, file capabilities, PAM, module
//!   indexes, the files it names);
//! - **inert**: it has no effect on a freshly built image, for a stated
//!   reason (it starts a service, which happens at boot; it acts only on an
//!   upgrade from an older version; it only asks something);
//! - **at boot**: a unit of the image does it when the host first boots
//!   (`systemd-tmpfiles-setup.service`, the empty machine-id);
//! - **unhandled**: anything else, and any command airlock cannot read
//!   exactly (a word whose value the walk does not know, an option it does
//!   not know).
//!
//! An unhandled step fails the build ([`STRICT`]), naming the package, the
//! script, the line and the command, unless the recipe's `[packages]
//! acknowledge` names the package with the reason its steps do not matter;
//! each acknowledged step is then a note of the build report that says so.
//! Nothing is skipped silently.

use std::collections::BTreeMap;

use airlock_tree::Tree;

use super::scripts::{Command, Scripts};
use super::{accounts, alternatives, diversions, literal, statoverride, ucf};
use crate::BuildError;

/// What airlock does about one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A module of airlock does it.
    Native(&'static str),
    /// It has no effect on a built image, for this reason.
    Inert(&'static str),
    /// The image does it when it first boots.
    AtBoot(&'static str),
    /// airlock does not do it, for this reason.
    Unhandled(String),
}

/// Commands that only read (the system, a file, the package database): on
/// a fresh image their answers only steer the script, whose effects are
/// walked either way.
const QUERIES: &[&str] = &[
    "[",
    "basename",
    "cmp",
    "cut",
    "diff",
    "dirname",
    "dpkg-query",
    "getent",
    "grep",
    "egrep",
    "fgrep",
    "head",
    "id",
    "ischroot",
    "ls",
    "md5sum",
    "nproc",
    "pidof",
    "pwd",
    "readlink",
    "realpath",
    "sha256sum",
    "sort",
    "stat",
    "tail",
    "test",
    "tr",
    "uname",
    "uniq",
    "getcap",
    "aa-enabled",
    "aa-status",
    "wc",
    "which",
    "whoami",
    "runlevel",
    "dpkg-architecture",
    "lsb_release",
];

/// Commands that only print or wait (when their output goes nowhere).
const OUTPUT: &[&str] = &[
    "echo", "printf", "true", "false", ":", "sleep", "logger", "cat",
];

/// Whether an unhandled step the recipe does not acknowledge fails the
/// build (else it is only a note).
pub const STRICT: bool = true;

mod gaps;
mod paths;
pub use gaps::{Gap, gaps};
use paths::file_step;
pub(crate) use paths::writer;

/// Classifies one command of `package`'s scripts, with the tree as it is
/// once every package is unpacked.
pub fn classify(tree: &Tree, package: &str, command: &Command) -> Verdict {
    let name = command.name();
    let program = name.rsplit('/').next().unwrap_or(name);
    let args: Vec<&str> = command
        .words
        .get(1..)
        .unwrap_or_default()
        .iter()
        .map(String::as_str)
        .collect();
    let first = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .copied()
        .unwrap_or("");
    if name.is_empty() {
        return Verdict::Unhandled("the command's name is not known".to_owned());
    }
    if let Some(step) = literal::parse(command) {
        return file_step(command, step);
    }
    let edits_in_place = args
        .iter()
        .any(|a| a.starts_with("-i") || a.starts_with("--in-place"));
    if OUTPUT.contains(&program)
        || QUERIES.contains(&program)
        || (program == "sed" && !edits_in_place)
    {
        return Verdict::Inert("only prints, waits or asks; it changes nothing");
    }
    if program.starts_with("db_") || (program == "." && first.ends_with("debconf/confmodule")) {
        return Verdict::Inert(
            "debconf: every question takes its default (the noninteractive frontend), and \
             what the script does with the answer is walked",
        );
    }
    if let Some(verdict) = native_step(tree, package, command, program, first, &args)
        .or_else(|| other_step(tree, program, first, &args))
        .or_else(|| shell_step(program, &args))
    {
        return verdict;
    }
    Verdict::Unhandled("a command airlock does not do natively".to_owned())
}

/// The steps a module of airlock does, by command.
fn native_step(
    tree: &Tree,
    package: &str,
    command: &Command,
    program: &str,
    first: &str,
    args: &[&str],
) -> Option<Verdict> {
    match program {
        "adduser" | "addgroup" | "useradd" | "groupadd" | "usermod" | "gpasswd" => {
            return Some(match accounts::parse(command) {
                Some(Ok(_)) => Verdict::Native("accounts"),
                Some(Err(why)) => Verdict::Unhandled(why),
                None => unreachable!("an account command"),
            });
        }
        "systemd-sysusers" => return Some(Verdict::Native("accounts (sysusers.d)")),
        "dpkg-statoverride" => {
            return Some(match statoverride::parse(command) {
                Some(Ok(statoverride::Op::List)) => Verdict::Inert("only asks"),
                Some(Ok(_)) => Verdict::Native("statoverride"),
                Some(Err(why)) => Verdict::Unhandled(why),
                None => unreachable!("a dpkg-statoverride"),
            });
        }
        "dpkg-divert" => {
            return Some(match diversions::parse(command) {
                Some(Ok(diversions::Op::Query)) => Verdict::Inert("only asks"),
                Some(Ok(diversions::Op::Remove(_))) => {
                    Verdict::Inert("on a fresh install there is no diversion to remove")
                }
                Some(Ok(op)) => match diversions::refused(tree, &op) {
                    Some(why) => Verdict::Unhandled(why),
                    None => Verdict::Native("diversions"),
                },
                Some(Err(why)) => Verdict::Unhandled(why),
                None => unreachable!("a dpkg-divert"),
            });
        }
        "update-alternatives" => return Some(update_alternatives(package, command, args)),
        "deb-systemd-helper" => {
            return Some(match first {
                "enable" => Verdict::Native("systemd (unit enablement)"),
                "unmask" | "update-state" | "debian-installed" | "was-enabled" | "is-enabled"
                | "purge" | "reenable" => Verdict::Inert(
                    "deb-systemd-helper's own state, for upgrades and purges; airlock \
                     enables from the [Install] sections",
                ),
                other => Verdict::Unhandled(format!("deb-systemd-helper {other}")),
            });
        }
        "systemctl" => {
            return Some(match first {
                "enable" => Verdict::Native("systemd (unit enablement)"),
                "daemon-reload"
                | "start"
                | "restart"
                | "try-restart"
                | "reload"
                | "reload-or-restart"
                | "try-reload-or-restart"
                | "stop"
                | "is-active"
                | "is-enabled"
                | "is-system-running"
                | "show"
                | "status"
                | "--version" => {
                    Verdict::Inert("no service runs while the image is built; units start at boot")
                }
                other => Verdict::Unhandled(format!("systemctl {other}")),
            });
        }
        "deb-systemd-invoke" | "invoke-rc.d" | "service" | "telinit" => {
            return Some(Verdict::Inert(
                "starts or reloads a service; none runs while the image is built",
            ));
        }
        "update-rc.d" => return Some(update_rc_d(tree, command, args)),
        "setcap" => return Some(Verdict::Native("capabilities")),
        "update-shells" => return Some(Verdict::Native("shells (update-shells)")),
        "add-shell" if command.script == "postinst" && !command.expands && !args.is_empty() => {
            return Some(Verdict::Native("shells (add-shell)"));
        }
        "ucf" | "ucfr" => {
            return Some(match ucf::parse(command) {
                Some(Ok(_)) => Verdict::Native("ucf (configuration from its template)"),
                Some(Err(why)) => Verdict::Unhandled(why),
                None => unreachable!("a ucf command"),
            });
        }
        "pam-auth-update" => return Some(Verdict::Native("pam (common-* from pam-configs)")),
        "update-ca-certificates" => {
            return Some(hooks(
                tree,
                "certificates (update-ca-certificates: /etc/ssl/certs, the bundle, the hash links)",
                args.windows(2).any(|w| w == ["--hooksdir", ""]),
            ));
        }
        "depmod" => return Some(Verdict::Native("modules (depmod's indexes)")),
        "ldconfig" => return Some(ldconfig(args)),
        _ => {}
    }
    None
}

/// `update-alternatives`: `--install` is native when read exactly.
fn update_alternatives(package: &str, command: &Command, args: &[&str]) -> Verdict {
    match first_flag(args) {
        Some("--install") => match alternatives::parse(package, command) {
            Some(Ok(_)) => Verdict::Native("alternatives"),
            Some(Err(why)) => Verdict::Unhandled(why),
            None => Verdict::Unhandled("not an --install".to_owned()),
        },
        Some("--remove" | "--remove-all") => {
            Verdict::Inert("on a fresh install nothing is registered under an older version's name")
        }
        Some("--query" | "--list" | "--display" | "--get-selections") => {
            Verdict::Inert("only asks")
        }
        Some("--auto") => Verdict::Inert(
            "every alternative is in automatic mode on a fresh install (or not there)",
        ),
        _ => Verdict::Unhandled("only --install and --remove are read".to_owned()),
    }
}

/// The steps left to boot or without effect on a built image, by command.
fn other_step(tree: &Tree, program: &str, first: &str, args: &[&str]) -> Option<Verdict> {
    match program {
        "systemd-tmpfiles" => {
            return Some(unit_at_boot(
                tree,
                "systemd-tmpfiles-setup.service",
                "systemd-tmpfiles-setup.service applies tmpfiles.d at every boot",
            ));
        }
        "systemd-machine-id-setup" => {
            return Some(Verdict::AtBoot(
                "the image's /etc/machine-id is empty and systemd fills it at first boot",
            ));
        }
        "dpkg-maintscript-helper" => {
            return Some(match first {
                "rm_conffile" | "mv_conffile" | "symlink_to_dir" | "dir_to_symlink"
                | "supports" => Verdict::Inert("acts only when upgrading from an older version"),
                other => Verdict::Unhandled(format!("dpkg-maintscript-helper {other}")),
            });
        }
        "update-initramfs" => {
            return Some(Verdict::Inert("airlock builds the image's initrd itself"));
        }
        "bootctl" | "kernel-install" => {
            return Some(Verdict::Inert(
                "no EFI system partition is mounted at build time: the disk format writes it (systemd-boot from systemd-boot-efi, the unified kernel image), and updates install their own entries",
            ));
        }
        "linux-update-symlinks" => {
            return Some(Verdict::Inert(
                "airlock picks the kernel and writes its boot entries itself",
            ));
        }
        "shadowconfig" if first == "on" => {
            return Some(Verdict::Inert("airlock writes shadow passwords already"));
        }
        "update-menus" | "update-mime" | "update-desktop-database" | "install-docs" => {
            return Some(Verdict::Inert(
                "a desktop or documentation index an image does not use",
            ));
        }
        "py3compile" | "pycompile" | "py3clean" | "pyclean" => {
            return Some(Verdict::Inert(
                "Python byte code: compiled at first import, kept in memory on a read-only root",
            ));
        }
        "python3" | "python3.11" | "python3.12" | "python3.13"
            if args
                .iter()
                .any(|a| a.ends_with("py_compile.py") || *a == "py_compile") =>
        {
            return Some(Verdict::Inert(
                "Python byte code: compiled at first import, kept in memory on a read-only root",
            ));
        }
        "dpkg-trigger" => {
            return Some(match args.iter().rfind(|a| !a.starts_with('-')) {
                Some(&"update-initramfs") => {
                    Verdict::Inert("airlock builds the image's initrd itself")
                }
                Some(&"nginx-reload") => Verdict::Inert(
                    "nginx-common's trigger reloads nginx; no service runs while the image is built",
                ),
                Some(&"update-ca-certificates") => hooks(
                    tree,
                    "certificates (the trigger's update-ca-certificates, with its hooks)",
                    false,
                ),
                _ => Verdict::Unhandled("a trigger whose effect airlock does not make".to_owned()),
            });
        }
        "run-parts" if args.iter().any(|a| a.starts_with("/etc/kernel/")) => {
            return Some(Verdict::Inert(
                "kernel hooks (initramfs, boot loader): airlock builds the initrd and the boot \
                 entries itself",
            ));
        }
        "journalctl" if args.contains(&"--update-catalog") => {
            return Some(Verdict::Native(
                "caches (the journal's catalog, /var/lib/systemd/catalog/database)",
            ));
        }
        "systemd-hwdb" if args.contains(&"update") => {
            return Some(Verdict::Native("caches (udev's hwdb.bin)"));
        }
        "udevadm" if args.contains(&"hwdb") && args.contains(&"--update") => {
            return Some(Verdict::Native("caches (udev's hwdb.bin)"));
        }
        "augenrules" => {
            return Some(Verdict::Native(
                "audit (/etc/audit/audit.rules merged from rules.d as augenrules merges it; \
                 auditd.service loads it at boot)",
            ));
        }
        _ => {}
    }
    None
}

/// Steps that only ask, print or set up the shell, and the host keys made
/// at first boot.
fn shell_step(program: &str, args: &[&str]) -> Option<Verdict> {
    match program {
        "perl" if args == ["-e", ""] => return Some(Verdict::Inert("only asks whether perl runs")),
        "mountpoint" => return Some(Verdict::Inert("only asks")),
        "ssh-keygen" if args.contains(&"-l") => {
            return Some(Verdict::Inert("only prints a key's fingerprint"));
        }
        "ssh-keygen"
            if args
                .iter()
                .any(|a| a.starts_with("/etc/ssh/ssh_host_") && a.ends_with("_key")) =>
        {
            return Some(Verdict::AtBoot(
                "airlock-ssh-host-keys.service makes the host keys at first boot, on /var \
                 (the recipe's [services] first_boot turns it off)",
            ));
        }
        "bash" if args.first() == Some(&"/usr/bin/mysql_install_db") => {
            return Some(Verdict::AtBoot(
                "airlock-mariadb-datadir.service makes the data directory at first boot, with \
                 mysql_install_db, on /var (the recipe's [services] first_boot turns it off)",
            ));
        }
        "pg_createcluster" if args.contains(&"main") && !args.contains(&"--start") => {
            return Some(Verdict::AtBoot(
                "airlock-postgresql-cluster.service makes the main cluster at first boot, with \
                 pg_createcluster, on /var (the recipe's [services] first_boot turns it off)",
            ));
        }
        "make-ssl-cert" if args == ["generate-default-snakeoil"] => {
            return Some(Verdict::AtBoot(
                "airlock-ssl-snakeoil.service makes the snakeoil certificate and key at first \
                 boot, on /var (the recipe's [services] first_boot turns it off)",
            ));
        }
        "rndc-confgen" if args == ["-a"] => {
            return Some(Verdict::AtBoot(
                "airlock-bind-rndc-key.service makes the rndc key at first boot, with \
                 rndc-confgen -a, in /var/lib/bind (the image's /etc/bind/rndc.key leads there; \
                 the recipe's [services] first_boot turns it off)",
            ));
        }
        "chronyd" if args == ["-p"] => {
            return Some(Verdict::Inert("only prints chronyd's configuration"));
        }
        "apparmor_parser" if args.iter().any(|a| matches!(*a, "-r" | "--replace")) => {
            return Some(Verdict::Inert(
                "loads a profile into the running kernel; apparmor.service loads every \
                 profile at boot",
            ));
        }
        "dbus-uuidgen" if args == ["--ensure"] => {
            return Some(Verdict::AtBoot(
                "D-Bus reads /etc/machine-id, which systemd fills at first boot",
            ));
        }
        "runit-helper" => {
            return Some(Verdict::Inert(
                "runit's service links: systemd is the image's init",
            ));
        }
        "trap" => {
            return Some(Verdict::Inert(
                "only sets what runs when the script exits (its clean-up of scratch files \
                 airlock does itself)",
            ));
        }
        "umask" => {
            return Some(Verdict::Inert(
                "only sets the mode of what the script makes next",
            ));
        }
        "cd" | "pushd" | "popd" => {
            return Some(Verdict::Inert(
                "only changes the directory (a later step on a relative path is a gap)",
            ));
        }
        _ => {}
    }
    None
}

/// update-ca-certificates: native, unless it runs hooks (`--hooksdir ""`
/// runs none) and the image has some (ca-certificates-java's keystore),
/// which airlock does not run.
fn hooks(tree: &Tree, native: &'static str, no_hooks: bool) -> Verdict {
    let has_hooks = tree
        .lookup("etc/ca-certificates/update.d")
        .is_some_and(|(dir, _)| !tree.children(&dir).is_empty());
    if has_hooks && !no_hooks {
        Verdict::Unhandled(
            "the hooks in /etc/ca-certificates/update.d, which airlock does not run".to_owned(),
        )
    } else {
        Verdict::Native(native)
    }
}

/// `ldconfig` on the image's root: native (the cache and the soname
/// links); one that only prints is inert; other options are not read.
fn ldconfig(args: &[&str]) -> Verdict {
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match *arg {
            "-v" | "--verbose" | "-X" => {}
            "-r" => {
                if !matches!(rest.next(), Some(&"/" | &"")) {
                    return Verdict::Unhandled("ldconfig on another root".to_owned());
                }
            }
            "-p" | "--print-cache" => return Verdict::Inert("only prints the cache"),
            other => {
                return Verdict::Unhandled(format!(
                    "ldconfig {other}: an option airlock does not read"
                ));
            }
        }
    }
    Verdict::Native("caches (ld.so.cache and the soname links ldconfig makes)")
}

/// At boot, if the image has the unit that does it.
fn unit_at_boot(tree: &Tree, unit: &str, why: &'static str) -> Verdict {
    if has_unit(tree, unit) {
        Verdict::AtBoot(why)
    } else {
        Verdict::Unhandled(format!("the image has no {unit} to do it at boot"))
    }
}

/// Whether the image has `unit`, masked or not.
fn has_unit(tree: &Tree, unit: &str) -> bool {
    ["etc/systemd/system", "usr/lib/systemd/system"]
        .iter()
        .any(|dir| {
            tree.canonical(&format!("{dir}/{unit}"))
                .is_ok_and(|path| tree.get(&path).is_some())
        })
}

fn first_flag<'a>(args: &[&'a str]) -> Option<&'a str> {
    args.iter()
        .copied()
        .find(|a| a.starts_with("--") && !matches!(*a, "--quiet" | "--force"))
}

/// `update-rc.d NAME defaults|enable|…`: the SysV links only matter for a
/// service with no unit of its own (systemd's sysv generator reads them).
fn update_rc_d(tree: &Tree, command: &Command, args: &[&str]) -> Verdict {
    match super::sysv::parse(args) {
        Ok(super::sysv::Call::Remove) => {
            Verdict::Inert("on a fresh install no script has links to remove")
        }
        Ok(super::sysv::Call::Defaults { name, .. }) if command.conditional => {
            let name = name.trim_end_matches(".sh");
            if ["service", "socket"]
                .iter()
                .any(|suffix| has_unit(tree, &format!("{name}.{suffix}")))
            {
                Verdict::Inert(
                    "SysV links for a service systemd starts from its own unit: it ignores them",
                )
            } else {
                Verdict::Unhandled(
                    "update-rc.d, for a script with no systemd unit, under a condition the walk \
                     could not decide"
                        .to_owned(),
                )
            }
        }
        Ok(super::sysv::Call::Defaults { .. }) => {
            Verdict::Native("sysv (the rc.d links update-rc.d makes without insserv)")
        }
        Err(why) => Verdict::Unhandled(why),
    }
}

/// Checks the scripts against the recipe's acknowledgements: fails on a
/// gap of a package the recipe does not acknowledge, listing every such
/// gap; returns a note for each acknowledged one.
pub fn account(
    tree: &Tree,
    scripts: &Scripts,
    installed: &[&str],
    acknowledge: &BTreeMap<airlock_recipe::PackageName, String>,
) -> Result<Vec<String>, BuildError> {
    let config = |message: String| BuildError::Config {
        what: "[packages] acknowledge".to_owned(),
        message,
    };
    for package in acknowledge.keys() {
        if !installed.contains(&package.as_str()) {
            return Err(config(format!("{package} is not in the image")));
        }
    }
    let reason = |package: &str| {
        acknowledge
            .iter()
            .find(|(name, _)| name.as_str() == package)
            .map(|(_, reason)| reason.as_str())
    };
    let gaps = gaps(tree, scripts);
    let refused: Vec<&Gap> = gaps
        .iter()
        .filter(|g| reason(&g.package).is_none())
        .collect();
    if STRICT && !refused.is_empty() {
        let mut message = format!(
            "{} maintainer-script step(s) airlock does not do natively:",
            refused.len()
        );
        for gap in &refused {
            message += &format!("\n  {gap}");
        }
        message += "\nairlock never runs a package's scripts. If these steps do not matter \
                    for this image, say why in the recipe:\n  [packages]\n  acknowledge = { ";
        let mut packages: Vec<&str> = refused.iter().map(|g| g.package.as_str()).collect();
        packages.dedup();
        message += &packages
            .iter()
            .map(|p| format!("\"{p}\" = \"why it does not matter\""))
            .collect::<Vec<_>>()
            .join(", ");
        message += " }";
        return Err(BuildError::Config {
            what: "maintainer scripts".to_owned(),
            message,
        });
    }
    let mut notes: Vec<String> = gaps
        .iter()
        .map(|gap| match reason(&gap.package) {
            Some(reason) => {
                format!("maintainer script step not done (acknowledged: {reason}): {gap}")
            }
            None => format!("maintainer script step not done: {gap}"),
        })
        .collect();
    for (package, does) in &scripts.handled {
        notes.push(format!(
            "maintainer script done by name: {package} postinst, which airlock's {does}"
        ));
    }
    for (package, places) in &scripts.assumed {
        for (script, place) in places {
            notes.push(format!(
                "maintainer script check assumed to pass: {package} {script} line {}: `{}`: {}",
                place.line, place.text, place.why
            ));
        }
    }
    for package in acknowledge.keys() {
        if !gaps.iter().any(|g| g.package == package.as_str()) {
            notes.push(format!(
                "[packages] acknowledge {package}: every step of its scripts is done or inert; \
                 the acknowledgement can go"
            ));
        }
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_maintscript::Phase;
    use airlock_tree::{Content, Kind, Node};

    fn tree() -> Tree {
        let mut tree = Tree::merged_usr();
        tree.put(
            "usr/lib/systemd/system/ssh.service",
            Node::new(Kind::File(Content::Inline(b"[Unit]\n".to_vec())), 0o644),
        )
        .unwrap();
        tree
    }

    fn walked(package: &str, postinst: &str) -> Scripts {
        let tree = tree();
        let (commands, unreadable) =
            super::super::scripts::walk(&tree, None, package, Phase::Postinst, postinst).unwrap();
        let mut scripts = Scripts::default();
        scripts.commands.insert(package.to_owned(), commands);
        if !unreadable.is_empty() {
            scripts.unreadable.insert(
                package.to_owned(),
                unreadable.into_iter().map(|u| ("postinst", u)).collect(),
            );
        }
        scripts
    }

    const POSTINST: &str = "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n  adduser --system --group --no-create-home sshd\n  deb-systemd-helper enable ssh.service\n  deb-systemd-invoke start ssh.service\n  update-rc.d ssh defaults\n  dpkg-maintscript-helper rm_conffile /etc/old -- \"$@\"\n  frobnicate --all /etc/ssh\nfi\n";

    #[test]
    fn every_step_is_native_inert_or_a_gap_by_name() {
        let tree = tree();
        let scripts = walked("openssh-server", POSTINST);
        let verdicts: Vec<Verdict> = scripts
            .iter()
            .map(|(package, command)| classify(&tree, package, command))
            .collect();
        assert!(
            matches!(verdicts[0], Verdict::Native("accounts")),
            "{verdicts:?}"
        );
        assert!(matches!(verdicts[1], Verdict::Native(_)));
        assert!(matches!(verdicts[2], Verdict::Inert(_)));
        assert!(
            matches!(verdicts[3], Verdict::Native(n) if n.starts_with("sysv")),
            "update-rc.d ssh defaults: {verdicts:?}"
        );
        assert!(matches!(verdicts[4], Verdict::Inert(_)));
        assert!(matches!(verdicts[5], Verdict::Unhandled(_)));
        let gaps = gaps(&tree, &scripts);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!(
            gaps[0].to_string(),
            "openssh-server postinst line 9: `frobnicate --all /etc/ssh`: a command airlock \
             does not do natively"
        );
    }

    /// systemd-boot's postinst (Debian bookworm): it installs the boot
    /// loader onto a mounted ESP and registers kernels; airlock writes the
    /// ESP itself, so none of it is a gap.
    const SYSTEMD_BOOT: &str = "#!/bin/sh\n\nset -e\n\nif [ \"$1\" = configure ] && [ -z \"$2\" ] && bootctl --print-esp-path > /dev/null 2>&1; then\n    bootctl install --make-machine-id-directory=auto\n\n    # register existing kernel(s)\n    for k in /boot/vmlinuz-* ; do\n        [ -f \"$k\" ] || continue\n        ver=$(basename \"$k\" | sed s/^vmlinuz-//)\n        kernel-install add \"$ver\" \"$k\"\n    done\nfi\n\nif [ \"$1\" = configure ] && [ -n \"$2\" ] && bootctl is-installed > /dev/null 2>&1; then\n    bootctl update --graceful\nfi\n";

    #[test]
    fn systemd_boots_installer_steps_are_inert_because_airlock_writes_the_esp() {
        let tree = tree();
        let scripts = walked("systemd-boot", SYSTEMD_BOOT);
        let verdicts: Vec<Verdict> = scripts
            .iter()
            .filter(|(_, c)| {
                ["bootctl", "kernel-install"]
                    .contains(&c.words.first().map(String::as_str).unwrap_or_default())
            })
            .map(|(package, command)| classify(&tree, package, command))
            .collect();
        assert!(verdicts.len() >= 2, "{verdicts:?}");
        assert!(
            verdicts
                .iter()
                .all(|v| matches!(v, Verdict::Inert(why) if why.contains("EFI system partition"))),
            "{verdicts:?}"
        );
        assert_eq!(gaps(&tree, &scripts), []);
    }

    #[test]
    fn a_scratch_file_of_unknown_content_carried_into_the_image_is_a_gap() {
        let tree = tree();
        let unknown = walked(
            "p",
            "#!/bin/sh\ntmp=$(mktemp)\nif grep -q x /etc/y; then\n  echo a > \"$tmp\"\nfi\n\
             mv -f \"$tmp\" /etc/z\nrm -f \"$tmp\"\n",
        );
        let found = gaps(&tree, &unknown);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line, 6, "{found:?}");
        assert!(
            found[0].why.contains("scratch file") && found[0].why.contains("line 4"),
            "{found:?}"
        );
        let exact = walked(
            "p",
            "#!/bin/sh\ntmp=$(mktemp)\necho a > \"$tmp\"\nmv -f \"$tmp\" /etc/z\n",
        );
        assert!(gaps(&tree, &exact).is_empty());
    }

    #[test]
    fn a_postinst_a_module_does_the_work_of_has_no_gaps() {
        let tree = tree();
        let mut scripts = walked("exim4-config", "#!/bin/sh\nfrobnicate /etc/exim4\n");
        assert_eq!(gaps(&tree, &scripts).len(), 1);
        scripts
            .handled
            .insert("exim4-config".to_owned(), super::super::exim4::DOES);
        assert!(gaps(&tree, &scripts).is_empty());
        let notes = account(&tree, &scripts, &["exim4-config"], &BTreeMap::new()).unwrap();
        assert_eq!(
            notes,
            [format!(
                "maintainer script done by name: exim4-config postinst, which airlock's {}",
                super::super::exim4::DOES
            )],
            "the report says who did its work"
        );
        let other = walked("exim4-base", "#!/bin/sh\nfrobnicate /etc/exim4\n");
        scripts.commands.extend(other.commands);
        assert_eq!(
            gaps(&tree, &scripts).len(),
            1,
            "only exim4-config's is done"
        );
    }

    #[test]
    fn a_removal_of_what_the_image_lacks_is_no_gap_even_under_a_condition() {
        let tree = tree();
        let postinst = "#!/bin/sh\nif [ \"$(cat /etc/x)\" = y ]; then\n  rm -f /etc/ld.so.nohwcap\n  rm -f /usr/lib/systemd/system/ssh.service\n  rm -f /etc/made\nfi\ntouch /etc/made\n";
        let scripts = walked("libc6", postinst);
        let gaps: Vec<usize> = gaps(&tree, &scripts).iter().map(|g| g.line).collect();
        // Line 3 removes nothing; line 4 removes a file the image has and
        // line 5 one that line 7 makes.
        assert_eq!(gaps, [4, 5]);
    }

    #[test]
    fn a_gap_fails_the_build_and_an_acknowledged_gap_is_a_note_that_says_why() {
        let tree = tree();
        let scripts = walked("openssh-server", POSTINST);
        let error = account(&tree, &scripts, &["openssh-server"], &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("1 maintainer-script step(s) airlock does not do natively")
                && error.contains(
                    "openssh-server postinst line 9: `frobnicate --all /etc/ssh`: a command \
                     airlock does not do natively"
                )
                && error.contains("acknowledge = { \"openssh-server\" = "),
            "{error}"
        );
        let acknowledge = BTreeMap::from([(
            "openssh-server".parse().unwrap(),
            "frobnication is cosmetic".to_owned(),
        )]);
        let notes = account(&tree, &scripts, &["openssh-server"], &acknowledge).unwrap();
        assert!(
            notes[0].contains("(acknowledged: frobnication is cosmetic)")
                && notes[0].contains("`frobnicate --all /etc/ssh`"),
            "{notes:?}"
        );
        // A package that is not in the image cannot be acknowledged.
        let error = account(&tree, &scripts, &["dash"], &acknowledge).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("openssh-server is not in the image")
        );
        // One whose steps are all done is told its acknowledgement can go.
        let clean = walked("dash", "#!/bin/sh\necho hi\n");
        let acknowledge = BTreeMap::from([("dash".parse().unwrap(), "why".to_owned())]);
        let notes = account(&tree, &clean, &["dash"], &acknowledge).unwrap();
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("can go"), "{notes:?}");
    }

    #[test]
    fn what_the_walk_cannot_read_or_know_is_a_gap() {
        let tree = tree();
        let scripts = walked(
            "p",
            "#!/bin/sh\neval \"$(cat /etc/x)\"\nmkdir -p \"$(cat /etc/dir)\"\nsed p /etc/a > /etc/motd.tail\nupdate-rc.d sysv-only enable 2\n\
             if grep -q x /etc/y; then\n  update-rc.d ssh defaults\nfi\n",
        );
        let gaps = gaps(&tree, &scripts);
        let whys: Vec<&str> = gaps.iter().map(|g| g.why.as_str()).collect();
        // ssh's links under a condition are no gap: ssh has a unit, and
        // systemd ignores them.
        assert_eq!(gaps.len(), 4, "{whys:?}");
        assert!(whys.iter().any(|w| w.contains("not known")), "{whys:?}");
        assert!(
            whys.iter().any(|w| w.contains("sed `p`: only s/RE/REPL/")),
            "{whys:?}"
        );
        assert!(
            whys.iter().any(|w| w.contains("update-rc.d enable")),
            "{whys:?}"
        );
    }

    #[test]
    fn a_gap_shows_the_words_as_the_walk_expanded_them() {
        let tree = tree();
        let scripts = walked(
            "login",
            "#!/bin/sh\nmake() {\n  frob \"$DPKG_ROOT$1\"\n}\nmake /etc/subuid\n",
        );
        let gaps = gaps(&tree, &scripts);
        assert_eq!(
            gaps[0].to_string(),
            "login postinst line 3: `frob \"$DPKG_ROOT$1\"` (as run: `frob /etc/subuid`): \
             a command airlock does not do natively"
        );
    }

    #[test]
    fn ca_certificates_steps_are_the_certificates_module() {
        let mut tree = tree();
        let scripts = walked(
            "ca-certificates",
            "#!/bin/sh\ncat > /etc/ca-certificates.conf <<EOF\n# header\nEOF\n(echo a | tr , '\\n') | sed -e 's/^ *//' | sort | uniq -c | sed -e 's/1/!/' >> /etc/ca-certificates.conf\nupdate-ca-certificates --hooksdir \"\"\ndpkg-trigger --no-await update-ca-certificates\nsed -i s/a/b/ /etc/other\n",
        );
        let verdicts = |tree: &Tree| -> Vec<Verdict> {
            scripts
                .iter()
                .map(|(package, command)| classify(tree, package, command))
                .collect()
        };
        let first = verdicts(&tree);
        let native = first
            .iter()
            .filter(|v| matches!(v, Verdict::Native(m) if m.starts_with("certificates")))
            .count();
        assert_eq!(native, 4, "{first:?}");
        assert!(
            matches!(first.last(), Some(Verdict::Unhandled(_))),
            "sed -i edits a file: {first:?}"
        );
        // With hooks in update.d, the trigger (which runs them) is a gap.
        tree.put(
            "etc/ca-certificates/update.d/jks-keystore",
            Node::new(Kind::File(Content::Inline(b"#!/bin/sh\n".to_vec())), 0o755),
        )
        .unwrap();
        let hooked = verdicts(&tree);
        let gaps = hooked
            .iter()
            .filter(|v| matches!(v, Verdict::Unhandled(why) if why.contains("update.d")))
            .count();
        assert_eq!(gaps, 1, "{hooked:?}");
    }

    #[test]
    fn steps_on_paths_a_module_writes_are_native() {
        let tree = tree();
        let scripts = walked(
            "base-files",
            "#!/bin/sh\n: > /var/log/wtmp\nchmod 664 /var/log/wtmp\ncp /usr/share/base-passwd/passwd.master /etc/passwd\nchmod 644 /var/log/wtmp /etc/other\n",
        );
        let verdicts: Vec<Verdict> = scripts
            .iter()
            .map(|(package, command)| classify(&tree, package, command))
            .collect();
        assert!(matches!(verdicts[0], Verdict::Native(m) if m.starts_with("defaults")));
        assert!(matches!(verdicts[1], Verdict::Native(m) if m.starts_with("defaults")));
        assert!(matches!(verdicts[2], Verdict::Native("accounts")));
        assert!(
            matches!(verdicts[3], Verdict::Unhandled(_)),
            "one path is not written"
        );
    }
}
