//! The documentation and the example recipes stay true: every TOML example in
//! docs/recipe.md parses, and every committed recipe loads, validates and
//! matches its committed lock.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn every_recipe_example_in_the_docs_parses() {
    let text = std::fs::read_to_string(workspace().join("docs/recipe.md")).unwrap();
    let mut blocks = 0;
    for (index, block) in text.split("```toml\n").skip(1).enumerate() {
        let block = block.split("```").next().unwrap();
        if block.starts_with("version = 1") {
            continue; // the lock file example, with elided digests
        }
        if let Err(error) = airlock_recipe::parse_single(Path::new("docs/recipe.md"), block) {
            panic!("example {index} in docs/recipe.md does not parse: {error}\n{block}");
        }
        blocks += 1;
    }
    assert!(blocks >= 14, "found only {blocks} examples");
}

#[test]
fn every_committed_recipe_loads_and_matches_its_lock() {
    let mut recipes = 0;
    for entry in std::fs::read_dir(workspace().join("recipes")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let loaded = airlock_recipe::load(&path, &mut |p: &Path| std::fs::read_to_string(p))
            .unwrap_or_else(|e| panic!("{e}"));
        let lock_path = path.with_extension("lock");
        let lock_text = std::fs::read_to_string(&lock_path)
            .unwrap_or_else(|e| panic!("{}: {e} (run `airlock lock`)", lock_path.display()));
        let lock = airlock_recipe::Lock::parse(&lock_path, &lock_text).unwrap();
        // a lock we write reads back identically
        assert_eq!(
            lock.to_toml(),
            lock_text,
            "{} is not in canonical form",
            lock_path.display()
        );
        lock.check(&lock_path, loaded)
            .unwrap_or_else(|e| panic!("{e}"));
        recipes += 1;
    }
    assert!(recipes >= 1);
}
