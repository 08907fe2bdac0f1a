//! `airlock fetch RECIPE`: bring every locked input into the store.

use std::path::PathBuf;

use airlock_fetch::download::{self, Options};
use airlock_fetch::http::Http;
use airlock_fetch::mirror::Mirrors;
use airlock_fetch::{FetchError, lock};

use crate::exit::Exit;
use crate::output::{FetchReport, SCHEMA, print_json};
use crate::shared::{self, MirrorArgs, StoreArgs, say};

/// Download every input the recipe's lock pins, verifying each one.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recipe (NAME.toml); its lock is NAME.lock.
    recipe: PathBuf,
    /// Use no network: fail, listing what is missing from the store.
    #[arg(long)]
    offline: bool,
    /// Parallel downloads.
    #[arg(long, short = 'j', default_value_t = 8)]
    jobs: usize,
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
        let locked = shared::read_lock(&lock_path)?.check(&lock_path, recipe)?;
        let store = self.store.open()?;
        let (items, report) =
            ensure_inputs(&locked, &store, self.offline, self.jobs, &self.mirror)?;
        say(&format!(
            "{} inputs: {} downloaded ({} bytes), {} already in {}",
            items.len(),
            report.downloaded,
            report.bytes,
            report.present,
            store.root().display()
        ));
        if self.json {
            print_json(&FetchReport {
                schema: SCHEMA,
                command: "fetch",
                inputs: items.len(),
                downloaded: report.downloaded,
                present: report.present,
                bytes: report.bytes,
            });
        }
        Ok(Exit::Ok)
    }
}

/// Brings every input `locked` pins into `store` (or, offline, fails
/// listing what is missing). Asks for a mirror only when something is.
pub fn ensure_inputs(
    locked: &airlock_recipe::LockedRecipe,
    store: &airlock_store::Store,
    offline: bool,
    jobs: usize,
    mirror: &MirrorArgs,
) -> anyhow::Result<(Vec<download::Item>, download::Report)> {
    // Whether anything is missing needs no mirror: only the digests.
    // A warm or offline fetch never asks for one.
    let suites: Vec<String> = locked
        .lock()
        .archive
        .suites
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let unresolved = Mirrors::uniform(&suites, "(no mirror needed)");
    let mut items = lock::items(locked.recipe(), locked.lock(), &unresolved);
    let missing: Vec<String> = download::missing(store, &items)
        .iter()
        .map(|item| format!("  {} sha256:{}", item.what, item.sha256))
        .collect();
    if offline && !missing.is_empty() {
        return Err(FetchError::Offline { missing }.into());
    }
    if !missing.is_empty() {
        let mirrors = mirror.resolve(locked.recipe())?;
        items = lock::items(locked.recipe(), locked.lock(), &mirrors);
    }
    let options = Options {
        jobs,
        ..Options::default()
    };
    let report = download::fetch_all(&Http::new(), store, &items, options)?;
    Ok((items, report))
}
