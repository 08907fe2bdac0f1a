//! Prints the walk of maintainer scripts: `cargo run -p airlock-maintscript
//! --example walk -- ROOT SCRIPT...`, where ROOT is an unpacked image whose
//! files the scripts' tests look at and each SCRIPT is named
//! `PACKAGE.preinst` or `PACKAGE.postinst`.

use std::path::{Path, PathBuf};

use airlock_maintscript::{Image, Kind, Phase, Stat, walk};

struct Root(PathBuf);

impl Image for Root {
    fn stat(&self, path: &str) -> Option<Stat> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(self.0.join(path.trim_start_matches('/'))).ok()?;
        let kind = if meta.is_file() {
            Kind::File
        } else if meta.is_dir() {
            Kind::Dir
        } else {
            Kind::Other
        };
        Some(Stat {
            kind,
            mode: meta.permissions().mode() & 0o7777,
            size: meta.len(),
        })
    }

    fn is_symlink(&self, path: &str) -> bool {
        std::fs::symlink_metadata(self.0.join(path.trim_start_matches('/')))
            .is_ok_and(|m| m.file_type().is_symlink())
    }

    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.0.join(path.trim_start_matches('/'))).ok()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((root, scripts)) = args.split_first() else {
        eprintln!("usage: walk ROOT SCRIPT...");
        std::process::exit(2);
    };
    let root = Root(PathBuf::from(root));
    for script in scripts {
        let name = Path::new(script).file_name().unwrap().to_string_lossy();
        let (package, phase) = match name.rsplit_once('.') {
            Some((package, "preinst")) => (package.to_owned(), Phase::Preinst),
            Some((package, "postinst")) => (package.to_owned(), Phase::Postinst),
            _ => continue,
        };
        let text = std::fs::read_to_string(script).unwrap();
        #[allow(clippy::print_stdout)]
        {
            println!("== {name}");
            match walk(&text, phase, &package, &root) {
                Ok(walk) => {
                    for i in &walk.invocations {
                        let words: Vec<&str> =
                            i.words.iter().map(|w| w.known().unwrap_or("?")).collect();
                        let maybe = if i.conditional { " (maybe)" } else { "" };
                        println!("  {:>4} {}{maybe}", i.line, words.join(" "));
                    }
                    for u in &walk.unreadable {
                        println!("  {:>4} UNREADABLE {}: {}", u.line, u.why, u.text);
                    }
                }
                Err(e) => println!("  ERROR {e}"),
            }
        }
    }
}
