//! `airlock diff OLD NEW`: what changed between two releases, for review.

use std::path::PathBuf;

use airlock_release::diff::{Release, diff};

use crate::exit::Exit;

/// Show what changed between two releases (image folders or bundles).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The old release.
    old: PathBuf,
    /// The new release.
    new: PathBuf,
    /// Print JSON on stdout instead of text.
    #[arg(long)]
    json: bool,
}

impl Args {
    pub fn run(self) -> anyhow::Result<Exit> {
        let change = diff(&Release::open(&self.old)?, &Release::open(&self.new)?)?;
        #[allow(clippy::print_stdout)]
        if self.json {
            let value = serde_json::json!({
                "schema": crate::output::SCHEMA,
                "command": "diff",
                "diff": change,
            });
            println!("{}", serde_json::to_string_pretty(&value)?);
        } else {
            print!("{}", change.to_text());
        }
        Ok(Exit::Ok)
    }
}
