//! `airlock build RECIPE`: the pure build, from the lock and the store to
//! images/NAME/VERSION-DIGEST/.

use std::path::PathBuf;

use airlock_image::pipeline::{self, Input};
use anyhow::Context;
use sha2::Digest;

use crate::commands::fetch::ensure_inputs;
use crate::exit::Exit;
use crate::shared::{self, MirrorArgs, StoreArgs, say};

/// Build the image a recipe and its lock describe.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recipe (NAME.toml); its lock is NAME.lock.
    pub(crate) recipe: PathBuf,
    /// Where image folders go.
    #[arg(long, short = 'o', default_value = "images", value_name = "DIR")]
    pub(crate) output: PathBuf,
    /// Use no network: every input must already be in the store.
    #[arg(long)]
    pub(crate) offline: bool,
    /// Parallel downloads, for inputs missing from the store.
    #[arg(long, short = 'j', default_value_t = 8)]
    pub(crate) jobs: usize,
    /// Print the build report (JSON) on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) mirror: MirrorArgs,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

impl Args {
    pub fn run(self) -> anyhow::Result<Exit> {
        let outcome = self.build()?;
        if self.json {
            #[allow(clippy::print_stdout)]
            {
                print!("{}", outcome.report_json);
            }
        }
        Ok(Exit::Ok)
    }

    /// Builds (or finds up to date) the image; its folder and report.
    pub(crate) fn build(&self) -> anyhow::Result<pipeline::Outcome> {
        let started = std::time::Instant::now();
        let recipe = shared::load_recipe(&self.recipe)?;
        let lock_path = shared::lock_path(&self.recipe);
        let locked = shared::read_lock(&lock_path)?.check(&lock_path, recipe)?;
        let store = self.store.open()?;
        let _guard = store.lock_shared()?;
        ensure_inputs(&locked, &store, self.offline, self.jobs, &self.mirror)?;
        let lock_digest =
            airlock_recipe::Sha256(sha2::Sha256::digest(locked.lock().to_toml().as_bytes()).into());
        let (packages, models, components) = shared::store_inputs(locked.lock(), &store);
        let loaded = locked.recipe();
        let input = Input {
            recipe: &loaded.recipe,
            base_dir: &loaded.base_dir,
            recipe_digest: loaded.digest,
            lock: locked.lock(),
            lock_digest,
            packages,
            models,
            components,
            recorded_files: None,
            airlock_version: env!("CARGO_PKG_VERSION"),
            builder_digest: &crate::shared::self_digest()?,
        };
        let progress = |step: &str| {
            say(&format!(
                "{:6.1} s  {step}",
                started.elapsed().as_secs_f64()
            ))
        };
        let outcome = pipeline::build(&input, &self.output, &progress)
            .with_context(|| format!("building {}", self.recipe.display()))?;
        if outcome.cached {
            say(&format!(
                "{}: up to date (same inputs), nothing to do",
                outcome.dir.display()
            ));
        } else {
            say(&format!(
                "{}: built in {:.1} s",
                outcome.dir.display(),
                started.elapsed().as_secs_f64()
            ));
        }
        Ok(outcome)
    }
}
