//! Maintainer scripts, which come from packages and are read as data, never
//! run: the shell parser and the walk of a fresh install, the commands as
//! airlock reads them and classifies them, the `setcap` calls airlock
//! applies, and the capability texts and xattr values they produce.
#![no_main]

use std::collections::BTreeMap;

use airlock_image::capability::FileCaps;
use airlock_image::configure::{capabilities, maintscripts, scripts};
use airlock_tree::{Content, Kind, Node, Tree};
use airlock_maintscript::{Phase, Stat};
use libfuzzer_sys::fuzz_target;

/// An image with one directory and one program, for the scripts' tests.
struct Image;

impl airlock_maintscript::Image for Image {
    fn stat(&self, path: &str) -> Option<Stat> {
        let (kind, mode) = match path {
            "/etc" => (airlock_maintscript::Kind::Dir, 0o755),
            "/usr/sbin/adduser" => (airlock_maintscript::Kind::File, 0o755),
            _ => return None,
        };
        Some(Stat { kind, mode, size: 1 })
    }

    fn is_symlink(&self, _: &str) -> bool {
        false
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(caps) = FileCaps::from_xattr(data) {
        // A revision 2 value is written back byte for byte.
        if data.len() == 20 {
            assert_eq!(caps.to_xattr(), data);
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.lines().count().max(1);
    for phase in [Phase::Preinst, Phase::Postinst] {
        if let Ok(walk) = airlock_maintscript::walk(text, phase, "fuzz", &Image) {
            for invocation in &walk.invocations {
                assert!(!invocation.words.is_empty(), "an empty command from {text:?}");
                assert!(invocation.line >= 1 && invocation.line <= lines + 1, "line {} of {lines}", invocation.line);
            }
        }
    }
    if let Ok(caps) = FileCaps::parse(text) {
        assert_eq!(FileCaps::from_xattr(&caps.to_xattr()), Ok(caps));
        if !caps.is_empty() {
            assert_eq!(
                FileCaps::parse(&caps.to_string()),
                Ok(caps),
                "{text:?} as {caps}"
            );
        }
    }
    let mut tree = Tree::merged_usr();
    let file = Node::new(Kind::File(Content::Inline(b"\x7fELF".to_vec())), 0o755);
    let _ = tree.put("usr/bin/ping", file.owned_by("fuzz"));
    let Ok((commands, _)) = scripts::walk(&tree, None, "fuzz", Phase::Postinst, text) else {
        return;
    };
    for command in &commands {
        assert!(!command.words.is_empty(), "an empty command from {text:?}");
        // Every step is classified, none makes the classifier panic.
        let _ = maintscripts::classify(&tree, "fuzz", command);
    }
    let scripts: BTreeMap<String, Vec<scripts::Command>> = [("fuzz".to_owned(), commands)].into();
    if let Ok(granted) = capabilities::configure(&mut tree, &scripts) {
        for grant in granted {
            // Only files that exist are granted capabilities.
            assert!(matches!(
                tree.get(&grant.path).map(|n| &n.kind),
                Some(Kind::File(_))
            ));
        }
    }
});
