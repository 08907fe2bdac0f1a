//! `airlock lock RECIPE`: resolve and pin every input into RECIPE's lock.

use std::path::PathBuf;

use airlock_fetch::archive::ArchiveOptions;
use airlock_fetch::http::Http;
use airlock_recipe::Lock;
use anyhow::Context;

use crate::exit::{Exit, Failure};
use crate::output::{LockReport, SCHEMA, print_json};
use crate::shared::{self, MirrorArgs, StoreArgs, say};

/// Resolve a recipe against the archive and write NAME.lock beside it.
///
/// Without flags, an existing lock that matches the recipe is left alone,
/// and a stale one is re-resolved.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recipe (NAME.toml).
    recipe: PathBuf,
    /// Re-resolve against the archive even when the lock matches the recipe.
    #[arg(long, conflicts_with = "check")]
    update: bool,
    /// Only check that the lock matches the recipe; exit 1 if not.
    #[arg(long)]
    check: bool,
    /// Accept Release files past their Valid-Until (for a deliberate
    /// snapshot mirror; a normal mirror replaying old metadata is an attack).
    #[arg(long)]
    insecure_ignore_valid_until: bool,
    /// Print a JSON report on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    mirror: MirrorArgs,
    #[command(flatten)]
    store: StoreArgs,
}

impl Args {
    pub fn run(self) -> anyhow::Result<Exit> {
        let recipe = shared::load_recipe(&self.recipe)?;
        let lock_path = shared::lock_path(&self.recipe);
        let existing = match shared::read_lock(&lock_path) {
            _ if !lock_path.exists() => None,
            Ok(lock) => Some(lock),
            // --update replaces the lock anyway, even one this airlock
            // cannot read (an older format, a botched merge).
            Err(error) if self.update => {
                say(&format!(
                    "replacing unreadable {}: {error:#}",
                    lock_path.display()
                ));
                None
            }
            Err(error) => return Err(error),
        };
        let report = |status, lock: &Lock| LockReport {
            schema: SCHEMA,
            command: "lock",
            lock: lock_path.display().to_string(),
            status,
            recipe_sha256: recipe.digest.to_hex(),
            packages: lock.packages.len(),
            models: lock.models.len(),
        };

        if self.check {
            let lock = existing.ok_or_else(|| {
                Failure(format!(
                    "{}: no lock; run `airlock lock {}`",
                    lock_path.display(),
                    self.recipe.display()
                ))
            })?;
            let locked = lock.check(&lock_path, recipe.clone())?;
            say(&format!(
                "{}: up to date with {}",
                lock_path.display(),
                self.recipe.display()
            ));
            if self.json {
                print_json(&report("up-to-date", locked.lock()));
            }
            return Ok(Exit::Ok);
        }
        if let Some(lock) = &existing
            && lock.recipe == recipe.digest
            && !self.update
        {
            say(&format!(
                "{}: up to date (use --update to re-resolve against the archive)",
                lock_path.display()
            ));
            if self.json {
                print_json(&report("up-to-date", lock));
            }
            return Ok(Exit::Ok);
        }

        let store = self.store.open()?;
        let _store_lock = store.lock_shared()?;
        let mirrors = self.mirror.resolve(&recipe)?;
        let keyring_path = recipe.host_path(
            recipe
                .recipe
                .archive
                .keyring
                .as_ref()
                .expect("validated: keyring is set")
                .as_str(),
        );
        let keyring = std::fs::read(&keyring_path)
            .with_context(|| format!("reading the keyring {}", keyring_path.display()))?;
        let options = ArchiveOptions {
            insecure_ignore_valid_until: self.insecure_ignore_valid_until,
            now: shared::now(),
        };
        let lock = airlock_fetch::lock::lock(
            &Http::new(),
            &store,
            &mirrors,
            &recipe,
            &keyring,
            options,
            &|line| say(line),
        )?;
        let text = lock.to_toml();
        let unchanged = existing.as_ref().is_some_and(|old| old.to_toml() == text);
        if !unchanged {
            shared::write_atomically(&lock_path, &text)?;
        }
        say(&format!(
            "{} {}: {} packages, {} models",
            if unchanged { "unchanged" } else { "wrote" },
            lock_path.display(),
            lock.packages.len(),
            lock.models.len()
        ));
        if self.json {
            print_json(&report(
                if unchanged { "unchanged" } else { "written" },
                &lock,
            ));
        }
        Ok(Exit::Ok)
    }
}
