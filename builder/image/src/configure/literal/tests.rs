use std::collections::BTreeMap;

use airlock_store::Store;
use airlock_tree::{Content, Kind, Node, Tree};

use super::*;
use crate::configure::accounts::{self, Accounts};
use crate::configure::scripts::postinst;

fn parsed(line: &str) -> Result<Op, String> {
    let commands = postinst(&format!("#!/bin/sh\n{line}\n"));
    assert_eq!(commands.len(), 1, "{line}: {commands:?}");
    parse(&commands[0]).expect("a file-system step")
}

#[test]
fn the_programs_options_are_read_exactly() {
    assert_eq!(
        parsed("mkdir -p -m 0700 /var/lib/x /var/log/x").unwrap(),
        Op::Mkdir {
            paths: vec!["/var/lib/x".into(), "/var/log/x".into()],
            mode: Some(Mode::Octal(0o700)),
            owner: None,
            group: None,
            existing: false,
        }
    );
    assert_eq!(
        parsed("install -d -m 2750 -o _chrony -g adm /var/log/chrony").unwrap(),
        Op::Mkdir {
            paths: vec!["/var/log/chrony".into()],
            mode: Some(Mode::Octal(0o2750)),
            owner: Some("_chrony".into()),
            group: Some("adm".into()),
            existing: true,
        }
    );
    assert_eq!(
        parsed("chown -R redis:redis /var/lib/redis").unwrap(),
        Op::Chown {
            paths: vec!["/var/lib/redis".into()],
            owner: Some("redis".into()),
            group: Some("redis".into()),
            login_group: false,
            recursive: true,
            no_follow: false,
        }
    );
    assert!(matches!(
        parsed("chown statd: /var/lib/nfs/sm").unwrap(),
        Op::Chown { owner: Some(o), group: None, login_group: true, .. } if o == "statd"
    ));
    assert!(matches!(
        parsed("chgrp adm /var/log/x").unwrap(),
        Op::Chown { owner: None, group: Some(g), .. } if g == "adm"
    ));
    assert!(matches!(
        parsed("chmod -R g-w /var/lib/x").unwrap(),
        Op::Chmod {
            recursive: true,
            ..
        }
    ));
    assert!(matches!(
        parsed("ln -sf ../run/x /etc/x").unwrap(),
        Op::Link {
            symbolic: true,
            force: true,
            ..
        }
    ));
    assert_eq!(
        parsed("echo 'hello world' > /etc/motd.tail").unwrap(),
        Op::Write {
            path: "/etc/motd.tail".into(),
            bytes: b"hello world\n".to_vec(),
            append: false,
        }
    );
    assert_eq!(
        parsed("printf '%s=%d\\n' a 1 b 2 >> /etc/x.conf").unwrap(),
        Op::Write {
            path: "/etc/x.conf".into(),
            bytes: b"a=1\nb=2\n".to_vec(),
            append: true,
        }
    );
    assert!(matches!(
        parsed("cat > /etc/x.conf <<EOF\nkey = value\nEOF").unwrap(),
        Op::Write { bytes, .. } if bytes == b"key = value\n"
    ));
    assert!(matches!(
        parsed(": > /var/log/x.log").unwrap(),
        Op::Write { bytes, append: false, .. } if bytes.is_empty()
    ));
}

#[test]
fn what_is_not_exact_is_refused_with_the_reason() {
    for (line, why) in [
        ("mkdir -p \"$(cat /etc/dir)\"", "not known"),
        ("mkdir --context=x /var/x", "--context=x"),
        ("chmod 644 /etc/*.conf", "not known"),
        ("rm -f '/etc/*.conf'", "pattern"),
        ("ln -s /a", "one target and one link"),
        ("mkdir var/x", "not an absolute path"),
        ("sed -n p /etc/a > /etc/b", "sed option -n"),
        ("awk 1 /etc/a > /etc/b", "airlock does not run it"),
        ("echo '\\033' > /etc/b", "dash and bash"),
        ("cat > /etc/x <<EOF\n$HOSTNAME\nEOF", "not known"),
        ("chmod u+q /etc/x", "neither octal nor symbolic"),
        ("[ -e /nothing ] || touch /etc/x", ""),
        ("touch --no-dereference --reference=/bin/dash /bin/sh", ""),
    ] {
        let commands = postinst(&format!("#!/bin/sh\n{line}\n"));
        let command = commands.last().unwrap();
        match parse(command).unwrap() {
            Err(message) => assert!(message.contains(why), "{line}: {message}"),
            Ok(op) if why.is_empty() => assert!(matches!(op, Op::Touch(_)), "{line}"),
            Ok(op) => panic!("{line}: read as {op:?}"),
        }
    }
    // Setting timestamps only is no step, under any condition.
    let commands = postinst("#!/bin/sh\nif grep -q x /etc/y; then\n  touch -h -r /a /bin/sh\nfi\n");
    assert_eq!(
        parse(commands.last().unwrap()),
        Some(Ok(Op::Touch(Vec::new())))
    );
    // A step under a condition the walk cannot decide is not guessed.
    let commands = postinst("#!/bin/sh\nif grep -q x /etc/y; then\n  mkdir /etc/z\nfi\n");
    let error = parse(commands.last().unwrap()).unwrap().unwrap_err();
    assert!(error.contains("condition"), "{error}");
    assert!(parse(&postinst("adduser x\n")[0]).is_none());
}

fn file(bytes: &[u8], mode: u32) -> Node {
    Node::new(Kind::File(Content::Inline(bytes.to_vec())), mode)
}

fn bytes(tree: &Tree, path: &str) -> Vec<u8> {
    match &tree.lookup(path).unwrap().1.kind {
        Kind::File(Content::Inline(bytes)) => bytes.clone(),
        other => panic!("{path} is {other:?}"),
    }
}

fn configured(tree: &mut Tree, script: &str) -> Result<usize, crate::BuildError> {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Store::open_scratch(dir.path().join("blobs")).unwrap();
    let mut accounts = Accounts::default();
    for line in [
        "adduser --system --group redis\n",
        "addgroup --system adm\n",
    ] {
        for op in postinst(line).iter().filter_map(accounts::parse) {
            accounts.apply_for_tests(&op.unwrap());
        }
    }
    let scripts = BTreeMap::from([("p".to_owned(), postinst(script))]);
    configure(tree, &blobs, &scripts, &accounts, &[])
}

#[test]
fn steps_change_the_tree_as_the_programs_would() {
    let mut tree = Tree::merged_usr();
    tree.put("usr/share/p/p.conf", file(b"a = 1\n", 0o600))
        .unwrap();
    tree.put("var/lib/redis", Node::new(Kind::Directory, 0o755))
        .unwrap();
    tree.put("var/lib/redis/dump", file(b"", 0o644)).unwrap();
    tree.put("etc/p/old", file(b"old\n", 0o644)).unwrap();
    let script = "#!/bin/sh\nset -e\n\
        mkdir -p -m 0750 /var/lib/p/cache\n\
        install -d -o redis -g adm -m 2750 /var/log/redis\n\
        chown -R redis: /var/lib/redis\n\
        chmod g-rx,o-rx /var/lib/redis\n\
        cp /usr/share/p/p.conf /etc/p/p.conf\n\
        echo 'b = 2' >> /etc/p/p.conf\n\
        ln -s /etc/p/p.conf /etc/p.conf\n\
        ln -s /etc/p/other /etc/p.conf\n\
        mv /etc/p/old /etc/p/new\n\
        touch /var/log/p.log\n\
        rm -f /etc/p/missing /etc/p/new\n\
        mkdir -p /run/p\n\
        cat /etc/p/p.conf > /etc/p/copy\n\
        sed -e 's/^a = .*/a = 3/' /etc/p/p.conf > /etc/p/edited\n\
        install --mode 640 -g adm /dev/null /etc/p/local\n";
    let done = configured(&mut tree, script).unwrap();
    assert_eq!(done, 14, "the step on /run is not done");
    assert_eq!(bytes(&tree, "etc/p/edited"), b"a = 3\nb = 2\n");
    let local = tree.get("etc/p/local").unwrap();
    assert_eq!((local.mode, local.gid), (0o640, 998));
    assert_eq!(bytes(&tree, "etc/p/local"), b"");
    let dir = tree.get("var/lib/p/cache").unwrap();
    assert_eq!((dir.mode, dir.uid), (0o750, 0));
    assert_eq!(tree.get("var/lib/p").unwrap().mode, 0o755);
    let log = tree.get("var/log/redis").unwrap();
    assert_eq!((log.mode, log.uid, log.gid), (0o2750, 999, 998));
    let redis = tree.get("var/lib/redis").unwrap();
    assert_eq!(
        (redis.mode, redis.uid, redis.gid),
        (0o700, 999, 999),
        "`redis:` is redis and its login group"
    );
    assert_eq!(tree.get("var/lib/redis/dump").unwrap().uid, 999);
    let conf = tree.get("etc/p/p.conf").unwrap();
    assert_eq!(conf.mode, 0o600, "cp keeps the mode less the umask");
    assert_eq!(bytes(&tree, "etc/p/p.conf"), b"a = 1\nb = 2\n");
    assert_eq!(
        tree.get("etc/p.conf").unwrap().kind,
        Kind::Symlink("/etc/p/p.conf".into()),
        "ln without -f leaves the first link"
    );
    assert!(tree.get("etc/p/old").is_none() && tree.get("etc/p/new").is_none());
    assert_eq!(tree.get("var/log/p.log").unwrap().mode, 0o644);
    assert!(tree.get("run/p").is_none());
    assert_eq!(bytes(&tree, "etc/p/copy"), b"a = 1\nb = 2\n");
}

#[test]
fn the_scripts_umask_gives_new_files_their_mode() {
    // libpam-modules' postinst: /etc/security/opasswd is 0600.
    let mut tree = Tree::merged_usr();
    let script = "#!/bin/sh
set -e
        if ! [ -f /etc/security/opasswd ]; then
        	umask 066
        	touch /etc/security/opasswd
        	umask 022
        fi
        touch /etc/security/after
        (umask 077; mkdir -p /var/lib/p)
        mkdir /var/lib/q
";
    configured(&mut tree, script).unwrap();
    assert_eq!(tree.get("etc/security/opasswd").unwrap().mode, 0o600);
    assert_eq!(tree.get("etc/security/after").unwrap().mode, 0o644);
    assert_eq!(tree.get("var/lib/p").unwrap().mode, 0o700);
    assert_eq!(
        tree.get("var/lib/q").unwrap().mode,
        0o755,
        "a subshell's umask ends with it"
    );
    // An umask under a condition the walk cannot decide leaves the mask
    // of every later step unknown: they are refused, not guessed.
    let commands = postinst(
        "#!/bin/sh
if grep -q x /etc/y; then
  umask 077
fi
touch /etc/z
",
    );
    let error = parse(commands.last().unwrap()).unwrap().unwrap_err();
    assert!(error.contains("file-creation mask"), "{error}");
}

#[test]
fn an_unknown_owner_fails_the_build_naming_the_step() {
    let mut tree = Tree::merged_usr();
    tree.put("var/lib/x", Node::new(Kind::Directory, 0o755))
        .unwrap();
    let error = configured(&mut tree, "#!/bin/sh\nchown nobody-here /var/lib/x\n").unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("postinst line 2")
            && message.contains("chown nobody-here /var/lib/x")
            && message.contains("no user nobody-here"),
        "{message}"
    );
}

#[test]
fn paths_airlock_or_the_recipe_writes_are_left_to_them() {
    let mut tree = Tree::merged_usr();
    tree.put("etc/passwd", file(b"root:x:0:0::/root:/bin/sh\n", 0o644))
        .unwrap();
    let done = configured(
        &mut tree,
        "#!/bin/sh\necho 'x:x:1:1::/:/bin/sh' >> /etc/passwd\n",
    )
    .unwrap();
    assert_eq!(done, 0);
    assert_eq!(bytes(&tree, "etc/passwd"), b"root:x:0:0::/root:/bin/sh\n");
}

#[test]
fn links_are_followed_as_the_programs_follow_them() {
    let mut tree = Tree::merged_usr();
    tree.put("etc/real.conf", file(b"old\n", 0o640)).unwrap();
    tree.put(
        "etc/link.conf",
        Node::new(Kind::Symlink("real.conf".into()), 0o777),
    )
    .unwrap();
    tree.put(
        "etc/mtab",
        Node::new(Kind::Symlink("../proc/self/mounts".into()), 0o777),
    )
    .unwrap();
    tree.put("usr/share/p/new.conf", file(b"new\n", 0o644))
        .unwrap();
    // cp writes through the link; the link stays.
    configured(
        &mut tree,
        "#!/bin/sh\ncp /usr/share/p/new.conf /etc/link.conf\n",
    )
    .unwrap();
    assert_eq!(bytes(&tree, "etc/real.conf"), b"new\n");
    assert_eq!(
        tree.get("etc/real.conf").unwrap().mode,
        0o640,
        "cp keeps the mode"
    );
    assert!(matches!(
        tree.get("etc/link.conf").unwrap().kind,
        Kind::Symlink(_)
    ));
    // mv replaces the link itself.
    configured(
        &mut tree,
        "#!/bin/sh\nmv /usr/share/p/new.conf /etc/link.conf\n",
    )
    .unwrap();
    assert!(matches!(
        tree.get("etc/link.conf").unwrap().kind,
        Kind::File(_)
    ));
    // A link to what the image does not have is not written through.
    let error = configured(&mut tree, "#!/bin/sh\necho x > /etc/mtab\n").unwrap_err();
    assert!(error.to_string().contains("not in the image"), "{error}");
    assert!(matches!(
        tree.get("etc/mtab").unwrap().kind,
        Kind::Symlink(_)
    ));
}
