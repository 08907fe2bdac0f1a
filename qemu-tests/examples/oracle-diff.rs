//! Compares two kept trees (`AIRLOCK_ORACLE_KEEP=DIR` on an oracle run)
//! again without building anything, and prints every difference the
//! allow-list does not take, then each reason with its count:
//!
//! ```text
//! cargo run -p qemu-tests --example oracle-diff -- RECIPE AIRLOCK.tar.zst MMDEBSTRAP.tar
//! ```
//!
//! Exit status 0 when every difference is allowed and no entry is stale.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use qemu_tests::oracle::{AllowList, Root, check, compare};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [recipe, ours, theirs] = args.as_slice() else {
        eprintln!("usage: oracle-diff RECIPE AIRLOCK.tar.zst MMDEBSTRAP.tar");
        return ExitCode::from(2);
    };
    let open = |path: &str| {
        Root::open(Path::new(path)).unwrap_or_else(|e| {
            eprintln!("oracle-diff: {path}: {e}");
            std::process::exit(2)
        })
    };
    let differences = compare(&open(ours), &open(theirs));
    let mut out = std::io::stdout().lock();
    let (text, code) = match check(recipe, &differences, &AllowList::load()) {
        Ok(allowed) => (
            allowed
                .iter()
                .map(|(reason, found)| format!("{:5} × {reason}\n", found.len()))
                .collect::<String>(),
            ExitCode::SUCCESS,
        ),
        Err(error) => (format!("{error}\n"), ExitCode::FAILURE),
    };
    if out.write_all(text.as_bytes()).is_err() {
        return ExitCode::from(2);
    }
    code
}
