//! Walks of scripts written the way Debian's packages write them.

use airlock_maintscript::{Arg, Image, Invocation, Kind, Phase, Stat, Walk, walk};

/// An image with a few files: what the scripts' tests look at.
struct Image1;

impl Image for Image1 {
    fn stat(&self, path: &str) -> Option<Stat> {
        let (kind, mode) = match path {
            "/usr/sbin/adduser" | "/usr/bin/deb-systemd-helper" | "/usr/bin/ucf" => {
                (Kind::File, 0o755)
            }
            "/etc/ssh" | "/etc" => (Kind::Dir, 0o755),
            "/etc/ssh/sshd_config" => (Kind::File, 0o644),
            _ => return None,
        };
        Some(Stat {
            kind,
            mode,
            size: 1,
        })
    }

    fn is_symlink(&self, _: &str) -> bool {
        false
    }

    fn read(&self, path: &str) -> Option<String> {
        match path {
            "/usr/share/lib/error.sh" => {
                Some("warning() {\n  echo \"warning: $*\" >&2\n}\nLIBVAR=from-library\n".to_owned())
            }
            "/usr/share/lib/loop.sh" => Some(". /usr/share/lib/loop.sh\n".to_owned()),
            "/usr/share/lib/broken.sh" => Some("if then fi (\n".to_owned()),
            _ => None,
        }
    }
}

fn postinst(script: &str) -> Walk {
    walk(script, Phase::Postinst, "example", &Image1).unwrap()
}

/// Each invocation as its known words joined by spaces ("?" for an
/// unknown word), with "(maybe)" for a conditional one.
fn summary(walk: &Walk) -> Vec<String> {
    walk.invocations.iter().map(one).collect()
}

fn one(invocation: &Invocation) -> String {
    let words: Vec<&str> = invocation
        .words
        .iter()
        .map(|w| w.known().unwrap_or("?"))
        .collect();
    let mut text = words.join(" ");
    if invocation.conditional {
        text.push_str(" (maybe)");
    }
    text
}

#[test]
fn debhelpers_systemd_section_on_a_fresh_install() {
    let script = r#"#!/bin/sh
set -e
# Automatically added by dh_installsystemd/13.11.4
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ] ; then
	# The following line should be removed in trixie or trixie+1
	deb-systemd-helper unmask 'ssh.service' >/dev/null || true

	# was-enabled defaults to true, so new installations run enable.
	if deb-systemd-helper --quiet was-enabled 'ssh.service'; then
		deb-systemd-helper enable 'ssh.service' >/dev/null || true
	else
		deb-systemd-helper update-state 'ssh.service' >/dev/null || true
	fi
fi
# End automatically added section
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] ; then
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		if [ -n "$2" ]; then
			_dh_action=restart
		else
			_dh_action=start
		fi
		deb-systemd-invoke $_dh_action 'ssh.service' >/dev/null || true
	fi
fi
"#;
    let walk = postinst(script);
    assert_eq!(
        summary(&walk),
        [
            "deb-systemd-helper unmask ssh.service",
            "deb-systemd-helper --quiet was-enabled ssh.service",
            "deb-systemd-helper enable ssh.service (maybe)",
            "deb-systemd-helper update-state ssh.service (maybe)",
        ]
    );
    assert!(walk.unreadable.is_empty());
    assert_eq!(walk.invocations[2].line, 10);
    // /dev/null is not a file written.
    assert!(walk.invocations[0].writes.is_empty());
}

#[test]
fn case_on_the_action_takes_the_configure_branch_only() {
    let script = r#"#!/bin/sh
set -e
case "$1" in
    configure)
        adduser --system --group --home /var/lib/example \
            --no-create-home --quiet _example
        ;;
    abort-upgrade|abort-remove|abort-deconfigure)
        rm -f /etc/never
        ;;
    *)
        echo "postinst called with unknown argument \`$1'" >&2
        exit 1
        ;;
esac
ldconfig
exit 0
echo unreachable
"#;
    assert_eq!(
        summary(&postinst(script)),
        [
            "adduser --system --group --home /var/lib/example --no-create-home --quiet _example",
            "ldconfig",
        ]
    );
    let preinst = walk(script, Phase::Preinst, "example", &Image1).unwrap();
    // `install` matches no listed action: the `*)` branch exits.
    assert_eq!(
        summary(&preinst),
        ["echo postinst called with unknown argument `install'"]
    );
}

#[test]
fn variables_defaults_functions_and_loops_are_followed() {
    let script = r#"#!/bin/sh
set -e
ALT=/usr/bin/example.real
PRIORITY=${PRIORITY:-50}
update-alternatives --install /usr/bin/example example "$ALT" $PRIORITY \
    --slave /usr/share/man/man1/example.1.gz example.1.gz /usr/share/man/man1/example.real.1.gz
make_dirs() {
    for d in "$@"; do
        mkdir -p "/var/lib/$DPKG_MAINTSCRIPT_PACKAGE/$d"
    done
}
make_dirs cache "state files"
for unit in a.service b.timer; do
    deb-systemd-helper enable $unit
done
"#;
    assert_eq!(
        summary(&postinst(script)),
        [
            "update-alternatives --install /usr/bin/example example /usr/bin/example.real 50 --slave /usr/share/man/man1/example.1.gz example.1.gz /usr/share/man/man1/example.real.1.gz",
            "mkdir -p /var/lib/example/cache",
            "mkdir -p /var/lib/example/state files",
            "deb-systemd-helper enable a.service",
            "deb-systemd-helper enable b.timer",
        ]
    );
}

#[test]
fn a_fresh_install_has_no_old_version() {
    let script = r#"#!/bin/sh
if [ -z "$2" ]; then
    echo fresh
fi
if dpkg --compare-versions "$2" lt 1:9.0-1; then
    dpkg-maintscript-helper rm_conffile /etc/example/old.conf 1:9.0-1 -- "$@"
fi
if [ -n "$2" ] && dpkg --compare-versions "$2" lt-nl 2.0; then
    echo upgrade only
fi
"#;
    let walk = postinst(script);
    assert_eq!(
        summary(&walk),
        [
            "echo fresh",
            "dpkg-maintscript-helper rm_conffile /etc/example/old.conf 1:9.0-1 -- configure ",
        ]
    );
    // "$@" is the script's own two arguments.
    let words = &walk.invocations[1].words;
    assert_eq!(
        words[words.len() - 2..],
        [Arg::Known("configure".into()), Arg::Known(String::new())]
    );
}

#[test]
fn the_image_decides_file_tests_and_command_lookups() {
    let script = r#"#!/bin/sh
if [ -x /usr/bin/ucf ]; then
    ucf /usr/share/example/conf /etc/example.conf
fi
if ! command -v gone >/dev/null 2>&1; then
    echo no gone
fi
which adduser >/dev/null && adduser --system _x
[ -f /etc/ssh/sshd_config ] || cp /usr/share/openssh/sshd_config /etc/ssh/sshd_config
test -e /etc/missing && echo never
"#;
    assert_eq!(
        summary(&postinst(script)),
        [
            "ucf /usr/share/example/conf /etc/example.conf",
            "echo no gone",
            "adduser --system _x",
        ]
    );
}

#[test]
fn what_cannot_be_decided_is_conditional_and_what_cannot_be_known_is_unknown() {
    let script = r#"#!/bin/sh
set -e
if ! getent passwd _chrony >/dev/null; then
    adduser --system --quiet _chrony
    HOME_DIR=/var/lib/chrony
else
    HOME_DIR=/srv/chrony
fi
chown _chrony: "$HOME_DIR"
KEY=$(cat /etc/machine-id)
echo "$KEY" > /etc/example.key
"#;
    let walk = postinst(script);
    assert_eq!(
        summary(&walk),
        [
            "getent passwd _chrony",
            "adduser --system --quiet _chrony (maybe)",
            "chown _chrony: ?",
            "echo ?",
        ]
    );
    assert_eq!(
        walk.invocations[2].words[2],
        Arg::Unknown("\"$HOME_DIR\"".to_owned())
    );
    assert_eq!(
        walk.invocations[3].writes,
        [Arg::Known("/etc/example.key".to_owned())]
    );
}

#[test]
fn an_exit_under_an_undecided_condition_makes_the_rest_conditional() {
    let script = r#"#!/bin/sh
if [ "$(cat /etc/example.state)" = done ]; then
    exit 0
fi
ldconfig
"#;
    assert_eq!(summary(&postinst(script)), ["ldconfig (maybe)"]);
}

#[test]
fn eval_arithmetic_and_redirected_groups_are_unreadable_with_their_line() {
    let script = r#"#!/bin/sh
eval "$(cat /etc/example)"
count=$((1 + 2))
{
    echo a
} > /etc/generated
"#;
    let walk = postinst(script);
    let lines: Vec<(usize, &str)> = walk
        .unreadable
        .iter()
        .map(|u| (u.line, u.why.as_str()))
        .collect();
    assert_eq!(lines.len(), 2, "{:?}", walk.unreadable);
    assert_eq!(lines[0].0, 2);
    assert!(lines[0].1.contains("eval"));
    assert_eq!(lines[1].0, 4);
    // The arithmetic made a value that is not known, which is not an
    // error until something uses it.
    assert_eq!(summary(&walk), ["echo a"]);
}

#[test]
fn here_documents_are_the_commands_input() {
    let script = "#!/bin/sh\ncat > /etc/example.conf <<EOF\nport 22\nEOF\n";
    let walk = postinst(script);
    assert_eq!(summary(&walk), ["cat"]);
    assert_eq!(
        walk.invocations[0].stdin,
        Some(Arg::Known("port 22\n".to_owned()))
    );
    assert_eq!(
        walk.invocations[0].writes,
        [Arg::Known("/etc/example.conf".to_owned())]
    );
}

#[test]
fn a_script_that_is_not_shell_is_an_error() {
    let error = walk("if then fi (", Phase::Postinst, "example", &Image1).unwrap_err();
    assert!(error.to_string().contains("postinst"), "{error}");
}

#[test]
fn deeply_nested_scripts_are_refused_not_a_crash() {
    for depth in [100, 199, 5_000] {
        let script = format!(
            "{}true{}",
            "if true; then ".repeat(depth),
            "; fi".repeat(depth)
        );
        match walk(&script, Phase::Postinst, "example", &Image1) {
            Ok(walk) => assert!(walk.invocations.is_empty()),
            Err(error) => assert!(error.to_string().contains("nest"), "{error}"),
        }
    }
}

#[test]
fn a_truename_is_the_path_itself() {
    let script = "#!/bin/sh\nPROGRAM=$(dpkg-divert --truename /bin/ping)\nsetcap cap_net_raw+ep \"$PROGRAM\"\nX=$(uname -r)\nls \"$X\"\n";
    let walk = walk(script, Phase::Postinst, "iputils-ping", &Image1).unwrap();
    let words: Vec<Vec<Option<&str>>> = walk
        .invocations
        .iter()
        .map(|i| i.words.iter().map(|w| w.known()).collect())
        .collect();
    assert_eq!(
        words,
        [
            vec![Some("setcap"), Some("cap_net_raw+ep"), Some("/bin/ping")],
            vec![Some("ls"), None],
        ]
    );
}

#[test]
fn a_sourced_library_is_walked_in_the_scripts_scope_at_the_line_of_the_dot() {
    let walk = postinst(
        "#!/bin/sh\n. /usr/share/lib/error.sh\nwarning careful\nmkdir \"/var/$LIBVAR\"\n. /usr/share/lib/absent.sh\n. /usr/share/lib/loop.sh\n. /usr/share/lib/broken.sh\n. /usr/share/debconf/confmodule\n",
    );
    let lines: Vec<(usize, String)> = walk.invocations.iter().map(|i| (i.line, one(i))).collect();
    assert_eq!(
        lines,
        [
            (3, "echo warning: careful".to_owned()),
            (4, "mkdir /var/from-library".to_owned()),
            (5, ". /usr/share/lib/absent.sh".to_owned()),
            (8, ". /usr/share/debconf/confmodule".to_owned()),
        ]
    );
    let whys: Vec<(usize, &str)> = walk
        .unreadable
        .iter()
        .map(|u| (u.line, u.why.as_str()))
        .collect();
    assert_eq!(whys.len(), 2, "{whys:?}");
    assert_eq!(whys[0].0, 6);
    assert!(whys[0].1.contains("too deeply"), "{whys:?}");
    assert_eq!(whys[1].0, 7);
    assert!(whys[1].1.contains("broken.sh"), "{whys:?}");
}

#[test]
fn on_a_fresh_install_no_statoverride_exists_until_the_script_adds_one() {
    let script = "#!/bin/sh\nif ! dpkg-statoverride --list /usr/bin/ssh-agent >/dev/null; then\n  chgrp _ssh /usr/bin/ssh-agent\nfi\ndpkg-statoverride --add root adm 0750 /var/log/x\nif dpkg-statoverride --list /var/log/x; then\n  chmod 0750 /var/log/x\nfi\n";
    let walk = walk(script, Phase::Postinst, "p", &Image1).unwrap();
    let chgrp = &walk.invocations[1];
    assert_eq!(chgrp.name(), Some("chgrp"));
    assert!(!chgrp.conditional, "decided: no override yet");
    let chmod = walk.invocations.last().unwrap();
    assert_eq!(chmod.name(), Some("chmod"));
    assert!(
        chmod.conditional,
        "an override was added before: not decided"
    );
}

/// An image whose package has debconf questions with these values.
struct Asked;

impl Image for Asked {
    fn stat(&self, _: &str) -> Option<Stat> {
        None
    }

    fn is_symlink(&self, _: &str) -> bool {
        false
    }

    fn debconf(&self, question: &str) -> Option<String> {
        (question == "p/root-login").then(|| "true".to_owned())
    }
}

#[test]
fn debconf_questions_have_their_values_and_scratch_files_their_own_names() {
    let script = "#!/bin/sh\n. /usr/share/debconf/confmodule\ndb_get p/root-login\nroot=\"$RET\"\ndb_get p/unknown\nother=\"$RET\"\nnew=\"$(mktemp)\"\ncp /usr/share/p/conf \"$new\"\nif [ \"$root\" != true ]; then\n  sed -i s/a/b/ \"$new\"\nfi\nif [ \"$other\" != true ]; then\n  sed -i s/c/d/ \"$new\"\nfi\nucf \"$new\" /etc/p.conf\n";
    let walked = walk(script, Phase::Postinst, "p", &Asked).unwrap();
    let steps: Vec<(Vec<&str>, bool)> = walked
        .invocations
        .iter()
        .filter(|i| !i.name().is_some_and(|n| n.starts_with("db_") || n == "."))
        .map(|i| (i.known_words().unwrap_or_default(), i.conditional))
        .collect();
    let scratch = "/tmp/airlock-mktemp.p.1";
    assert_eq!(
        steps,
        vec![
            (vec!["cp", "/usr/share/p/conf", scratch], false),
            (vec!["sed", "-i", "s/c/d/", scratch], true),
            (vec!["ucf", scratch, "/etc/p.conf"], false),
        ],
        "the known default decides its branch; the unknown one does not"
    );
    // A config script's db_set is its value from then on, unless set under
    // a condition the walk cannot decide.
    let config = "#!/bin/sh\n. /usr/share/debconf/confmodule\ndb_set p/a yes\nif grep -q x /etc/p.conf; then\n  db_set p/b no\nfi\n";
    let configured = walk(config, Phase::Config, "p", &Asked).unwrap();
    assert_eq!(
        configured.debconf.into_iter().collect::<Vec<_>>(),
        vec![
            ("p/a".to_owned(), Some("yes".to_owned())),
            ("p/b".to_owned(), None)
        ]
    );
}

#[test]
fn dirname_and_basename_of_known_paths_are_known() {
    let script = "#!/bin/sh\nP=/etc/apparmor.d/local/usr.sbin.chronyd\nmkdir -p `dirname \"$P\"`\nln -s x \"/tmp/$(basename $P)\"\necho \"$(dirname /top)\" \"$(dirname rel)\" \"$(basename /a/b/)\"\nrm \"$(dirname \"$(cat /x)\")\"\n";
    let walked = walk(script, Phase::Postinst, "p", &Image1).unwrap();
    let words: Vec<Option<Vec<&str>>> = walked
        .invocations
        .iter()
        .map(Invocation::known_words)
        .collect();
    assert_eq!(
        words,
        vec![
            Some(vec!["mkdir", "-p", "/etc/apparmor.d/local"]),
            Some(vec!["ln", "-s", "x", "/tmp/usr.sbin.chronyd"]),
            Some(vec!["echo", "/", ".", "b"]),
            None,
        ]
    );
}

#[test]
fn on_a_fresh_install_no_diversion_exists_until_the_script_adds_one() {
    let script = "#!/bin/sh\nclaim() {\n  dfile=$1\n  diverter=$(dpkg-divert --listpackage $dfile)\n  truename=$(dpkg-divert --truename $dfile)\n  if [ \"$diverter\" = dash ]; then\n    return\n  fi\n  dpkg-divert --package dash --no-rename --divert $dfile.distrib --add $dfile\n  rm -f \"$truename\"\n  after=$(dpkg-divert --truename $dfile)\n  ln -sf dash \"$after\"\n}\nclaim /bin/sh\n";
    let walked = walk(script, Phase::Postinst, "dash", &Image1).unwrap();
    let steps: Vec<(Option<Vec<&str>>, bool)> = walked
        .invocations
        .iter()
        .map(|i| (i.known_words(), i.conditional))
        .collect();
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert_eq!(
        steps[0],
        (
            Some(vec![
                "dpkg-divert",
                "--package",
                "dash",
                "--no-rename",
                "--divert",
                "/bin/sh.distrib",
                "--add",
                "/bin/sh"
            ]),
            false
        )
    );
    assert_eq!(steps[1], (Some(vec!["rm", "-f", "/bin/sh"]), false));
    assert_eq!(
        steps[2].0, None,
        "after the --add the true name is not known"
    );
}

#[test]
fn assignments_on_one_line_see_the_ones_before() {
    let script = "#!/bin/sh\nf() {\n  dfile=$1 distrib=${3:-$dfile.distrib}\n  echo \"$distrib\"\n}\nf /bin/sh dash\n";
    let walked = walk(script, Phase::Postinst, "dash", &Image1).unwrap();
    assert_eq!(
        walked.invocations[0].known_words(),
        Some(vec!["echo", "/bin/sh.distrib"])
    );
}

#[test]
fn a_function_returns_its_status() {
    let script = "#!/bin/sh\nyes() {\n  return 0\n}\nno() {\n  [ -d /etc ] || return 0\n  return 1\n}\nif yes; then a; fi\nif no; then b; else c; fi\n";
    let walked = walk(script, Phase::Postinst, "p", &Image1).unwrap();
    let names: Vec<(Option<&str>, bool)> = walked
        .invocations
        .iter()
        .map(|i| (i.name(), i.conditional))
        .collect();
    assert_eq!(names, [(Some("a"), false), (Some("c"), false)]);
}

#[test]
fn a_loop_over_seq_is_unrolled() {
    let script = "#!/bin/sh\nfor i in $(seq 2 -1 0); do\n  [ -e /etc/h.$i ] && cp -f /etc/h.$i /etc/h.next\n  echo $i\ndone\n";
    let walked = walk(script, Phase::Postinst, "p", &Image1).unwrap();
    let words: Vec<Option<Vec<&str>>> = walked
        .invocations
        .iter()
        .map(Invocation::known_words)
        .collect();
    assert_eq!(
        words,
        vec![
            Some(vec!["echo", "2"]),
            Some(vec!["echo", "1"]),
            Some(vec!["echo", "0"])
        ],
        "no /etc/h.N: no copy"
    );
}

/// An image with a dpkg database directory and the biarch links, for the
/// working directory, globs and `dpkg-query -S`.
struct Database;
impl Image for Database {
    fn stat(&self, path: &str) -> Option<Stat> {
        let kind = match path {
            "/var/lib/dpkg" | "/var/lib/dpkg/info" | "/var/lib/dpkg/alternatives" | "/lib64" => {
                Kind::Dir
            }
            "/var/lib/dpkg/status" | "/var/lib/dpkg/stray" | "/etc/p.conf" => Kind::File,
            _ => return None,
        };
        Some(Stat {
            kind,
            mode: 0o755,
            size: 1,
        })
    }

    fn is_symlink(&self, _: &str) -> bool {
        false
    }

    fn list(&self, path: &str) -> Option<Vec<String>> {
        match path {
            "/var/lib/dpkg" => Some(
                ["status", "info", "alternatives", "stray", ".hidden"]
                    .map(str::to_owned)
                    .to_vec(),
            ),
            "/etc" => Some(vec!["p.conf".to_owned(), "q.txt".to_owned()]),
            "/empty" => Some(Vec::new()),
            _ => None,
        }
    }

    fn shipped(&self, path: &str) -> Option<bool> {
        Some(path == "/lib64")
    }

    fn read(&self, path: &str) -> Option<String> {
        match path {
            "/etc/p.conf" => Some("x\n".to_owned()),
            "/usr/share/p/helper" => Some(
                "#!/bin/sh\nset -e\ncase \"$1\" in\n  install)\n    update-alternatives --install /etc/x x \"$3\" 200\n    touch \"$CALLER\"\n    exit 0\n    ;;\nesac\ntouch /never\n"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

#[test]
fn cmp_and_md5sum_checks_are_decided_by_the_image() {
    let script = "#!/bin/sh\nif cmp -s /usr/share/nope /etc/p.conf; then\n  touch /a\nfi\nif ! md5sum --status --ignore-missing -c <<EOF\n401b30e3b8b5d629635a5c613cdb7919  /etc/p.conf\n00000000000000000000000000000000  /etc/missing\nEOF\nthen\n  touch /b\nfi\nif md5sum --status -c <<EOF\nffffffffffffffffffffffffffffffff  /etc/p.conf\nEOF\nthen\n  touch /c\nfi\ncmp -s /etc/p.conf /etc/p.conf && touch /d\n";
    let walked = walk(script, Phase::Postinst, "p", &Database).unwrap();
    let touched: Vec<(Vec<&str>, bool)> = walked
        .invocations
        .iter()
        .filter(|i| i.name() == Some("touch"))
        .map(|i| (i.known_words().unwrap_or_default(), i.conditional))
        .collect();
    assert_eq!(touched, vec![(vec!["touch", "/d"], false)]);
}

#[test]
fn the_working_directory_globs_and_file_lists_decide_conditions() {
    // dpkg's fixup of misplaced alternatives: in a subshell, `cd` to the
    // database and test each file it has, by name.
    let script = "#!/bin/sh\nfix() (\n  cd /var/lib/dpkg\n  for file in *; do\n    if ! [ -f \"$file\" ]; then\n      continue\n    fi\n    case \"$file\" in\n    status) continue ;;\n    esac\n    mv \"$file\" \"alternatives/$file\"\n  done\n)\nfix\n[ -f status ] && touch /root-status\nchmod 600 /etc/*.conf /empty/*\nfor dir in /lib64 /lib32; do\n  [ -e \"$dir\" ] || continue\n  if ! dpkg-query -S $dir >/dev/null 2>&1; then\n    rm -v $dir\n  fi\ndone\n";
    let walked = walk(script, Phase::Postinst, "p", &Database).unwrap();
    assert!(walked.unreadable.is_empty(), "{:?}", walked.unreadable);
    let steps: Vec<(Vec<&str>, bool)> = walked
        .invocations
        .iter()
        .filter(|i| i.name() != Some("dpkg-query"))
        .map(|i| (i.known_words().unwrap_or_default(), i.conditional))
        .collect();
    assert_eq!(
        steps,
        vec![
            // Only the one file that is neither a directory nor `status`;
            // hidden names are not globbed.
            (vec!["mv", "stray", "alternatives/stray"], false),
            // The subshell's `cd` ended with it: `status` is /status again.
            // A pattern nothing matches stays as written.
            (vec!["chmod", "600", "/etc/p.conf", "/empty/*"], false),
        ],
        "{:?}",
        walked.invocations
    );
    // /lib64 is in a file list, /lib32 is not in the image: no rm.
    assert_eq!(
        walked
            .invocations
            .iter()
            .filter(|i| i.name() == Some("dpkg-query"))
            .count(),
        1
    );
}

#[test]
fn a_working_directory_not_known_leaves_relative_tests_unknown() {
    // A glob in a directory an earlier step names is not known either: the
    // step may have made what it would match; chgrp, chown and chmod make
    // and remove nothing.
    let touched = "#!/bin/sh\nLOG=/etc/p.log\ntouch $LOG\nchgrp adm /var/lib/dpkg/status\n\
        chmod 640 ${LOG}* /var/lib/dpkg/s*\n";
    let walked = walk(touched, Phase::Postinst, "p", &Database).unwrap();
    let chmod = &walked.invocations[2];
    assert_eq!(
        chmod.words[3],
        Arg::Known("/var/lib/dpkg/status".to_owned())
    );
    assert_eq!(chmod.words[4], Arg::Known("/var/lib/dpkg/stray".to_owned()));
    assert!(chmod.words[2].known().is_none(), "{chmod:?}");
    let script = "#!/bin/sh\ncd \"$1\"\nif [ -f status ]; then\n  touch /x\nfi\nfor f in *; do\n  touch \"/y/$f\"\ndone\n";
    let walked = walk(script, Phase::Postinst, "p", &Database).unwrap();
    let touch = walked
        .invocations
        .iter()
        .find(|i| i.name() == Some("touch"))
        .expect("the touch is walked");
    assert!(touch.conditional, "{touch:?}");
    assert!(
        walked.invocations.iter().any(|i| i.known_words().is_none()),
        "the glob in an unknown directory is not known: {:?}",
        walked.invocations
    );
}

#[test]
fn prefix_and_suffix_patterns_are_removed() {
    let script = "#!/bin/sh\nP=postgresql-15\nF=/a/b/c.tar.gz\ntouch /${P##*-} /${P#*-} /${P%-*} ${F%%.*} ${F%.*} /${F##*/} /${F#\"/a\"}\n";
    let walked = walk(script, Phase::Postinst, "p", &Database).unwrap();
    assert_eq!(
        walked.invocations[0].known_words().unwrap(),
        [
            "touch",
            "/15",
            "/15",
            "/postgresql",
            "/a/b/c",
            "/a/b/c.tar",
            "/c.tar.gz",
            "//b/c.tar.gz"
        ]
    );
}

#[test]
fn a_helper_script_the_package_runs_by_path_is_walked_in_its_own_shell() {
    let script =
        "#!/bin/sh\nCALLER=/etc/mine\n/usr/share/p/helper install p /etc/p.conf\ntouch $CALLER\n";
    let walked = walk(script, Phase::Postinst, "p", &Database).unwrap();
    let steps: Vec<(usize, Option<Vec<&str>>)> = walked
        .invocations
        .iter()
        .map(|i| (i.line, i.known_words()))
        .collect();
    assert_eq!(
        steps,
        vec![
            (
                3,
                Some(vec![
                    "update-alternatives",
                    "--install",
                    "/etc/x",
                    "x",
                    "/etc/p.conf",
                    "200"
                ])
            ),
            // The helper does not see the caller's unexported variable as
            // known, and its exit ends only itself.
            (3, None),
            (4, Some(vec!["touch", "/etc/mine"])),
        ]
    );
}

#[test]
fn a_failing_exit_under_an_undecided_condition_is_taken_as_not_reached() {
    // postgresql-common's check of the postgres user: had it failed, the
    // package would not be configured.
    let script = "#!/bin/sh\nif [ \"`id -u postgres`\" -eq 0 ]; then\n  echo \"must not be root\" >&2\n  exit 1\nfi\nmkdir -p /var/lib/postgresql\n";
    let walked = walk(script, Phase::Postinst, "p", &Database).unwrap();
    let mkdir = walked
        .invocations
        .iter()
        .find(|i| i.name() == Some("mkdir"))
        .unwrap();
    assert!(!mkdir.conditional, "{mkdir:?}");
    assert_eq!(walked.assumed, [4]);
    // A plain `exit` under such a condition may end the script: what
    // follows is conditional.
    let plain = "#!/bin/sh\nif [ \"$(cat /x)\" = y ]; then\n  exit 0\nfi\nmkdir /a\n";
    let walked = walk(plain, Phase::Postinst, "p", &Database).unwrap();
    assert!(walked.invocations.last().unwrap().conditional);
    // One reached on every way fails the script: that is named.
    let fails = "#!/bin/sh\ncase \"$1\" in\n  configure) exit 2 ;;\nesac\n";
    let walked = walk(fails, Phase::Postinst, "p", &Database).unwrap();
    assert_eq!(walked.unreadable.len(), 1);
    assert_eq!(walked.unreadable[0].line, 3);
    assert!(walked.unreadable[0].why.contains("fails here"));
}

/// An image whose /etc/bind/rndc.key is a link root owns, and whose
/// /etc/bind belongs to uid 0 and gid 101.
struct Owners;

impl Image for Owners {
    fn stat(&self, path: &str) -> Option<Stat> {
        (path == "/etc/bind").then_some(Stat {
            kind: Kind::Dir,
            mode: 0o755,
            size: 0,
        })
    }

    fn is_symlink(&self, path: &str) -> bool {
        path == "/etc/bind/rndc.key"
    }

    fn owner(&self, path: &str) -> Option<(u32, u32)> {
        match path {
            "/etc/bind/rndc.key" => Some((0, 0)),
            "/etc/bind" => Some((0, 101)),
            _ => None,
        }
    }
}

#[test]
fn owners_listed_by_ls_and_awk_come_from_the_image() {
    // bind9's postinst, and the shapes that are not read.
    let script = "uid=$(ls -ln /etc/bind/rndc.key | awk '{print $3}')\n\
                  if [ \"$uid\" = \"0\" ]; then\n  chown bind /etc/bind/rndc.key\nfi\n\
                  echo \"$(ls -ln /etc/bind | awk '{ print $4 }')\"\n\
                  echo \"$(ls -ln /etc/missing | awk '{print $3}')\"\n\
                  echo \"$(ls -l /etc/bind | awk '{print $3}')\"\n\
                  echo \"$(ls -ln /etc/bind | awk '{print $5}')\"\n";
    let walk = walk(script, Phase::Postinst, "bind9", &Owners).unwrap();
    assert_eq!(
        summary(&walk),
        [
            "chown bind /etc/bind/rndc.key",
            "echo 101",
            "echo ?",
            "echo ?",
            "echo ?",
        ]
    );
}
