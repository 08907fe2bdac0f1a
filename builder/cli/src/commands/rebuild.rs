//! `airlock rebuild BUNDLE --check`: the far side rebuilds the image from
//! the bundle's own sources, with no network, and compares every artifact
//! with what was signed. A build or release machine that altered an
//! artifact (and re-signed it) is caught here even though every signature
//! is good.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use airlock_image::pipeline::{self, Input};
use airlock_verify::LogicalReader;
use airlock_verify::manifest::{Manifest, paths};
use anyhow::Context;
use sha2::Digest;

use crate::exit::{Exit, Failure};
use crate::shared::{StoreArgs, say};

/// Rebuild a verified bundle's image from its sources, offline, and compare.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bundle (directory or tar), exported with `--with-sources`.
    bundle: PathBuf,
    /// Compare the rebuilt artifacts with the bundle's and report; without
    /// it, write the rebuilt image folder to --output for inspection.
    #[arg(long)]
    check: bool,
    /// The host's trust directory: the bundle is verified first.
    #[arg(long, value_name = "DIR")]
    trust: PathBuf,
    /// Where the rebuilt image folder goes (without --check).
    #[arg(long, short = 'o', default_value = "rebuilt", value_name = "DIR")]
    output: PathBuf,
    /// Rebuild even when this airlock's version is not the one that built
    /// the image (the bytes will likely differ).
    #[arg(long)]
    any_version: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// One artifact that did not come out the same.
#[derive(Debug, serde::Serialize)]
struct Mismatch {
    artifact: String,
    expected: String,
    actual: String,
    /// The first paths that differ (the root file system), or the first
    /// differing offset (any other artifact).
    differs: Vec<String>,
}

impl Args {
    pub fn run(self) -> anyhow::Result<Exit> {
        let opened = crate::commands::verify::open(&self.bundle)?;
        let bundle = opened.dir.as_path();
        let verified = match crate::commands::verify::run_verify(bundle, &self.trust, None, None)? {
            Ok(verified) => verified,
            Err(rejection) => {
                return Err(
                    Failure(format!("{}: REJECTED: {rejection}", self.bundle.display())).into(),
                );
            }
        };
        say(&format!(
            "verified {} {}; rebuilding from its sources, offline",
            verified.name, verified.version
        ));
        let running = crate::shared::self_digest()?;
        let signed_builder = signed_builder(bundle)?;
        match &signed_builder {
            Some(digest) if *digest == running => say(&format!(
                "this is the airlock binary that built the image (sha256 {running})"
            )),
            Some(digest) => say(&format!(
                "the image was built by airlock sha256 {digest}; this one is {running}"
            )),
            None => say("the provenance does not name the airlock binary that built the image"),
        }
        let ours = env!("CARGO_PKG_VERSION");
        if verified.manifest.airlock != ours && !self.any_version {
            anyhow::bail!(
                "the image was built by airlock {}, this is airlock {ours}: rebuild with that version (or pass --any-version to try anyway)",
                verified.manifest.airlock
            );
        }
        let (temp, _stale) =
            airlock_store::workdir::claim(&std::env::temp_dir(), "airlock-rebuild-")
                .context("making a temporary directory")?;
        let store = match &self.store.store {
            Some(_) => self.store.open()?,
            None => airlock_store::Store::open(temp.path().join("store"))?,
        };
        let output = if self.check {
            temp.path().join("out")
        } else {
            self.output.clone()
        };
        let rebuilt = rebuild(bundle, &verified.manifest, &store, &output)?;
        if !self.check {
            say(&format!("{}: the rebuilt image folder", rebuilt.display()));
            return Ok(Exit::Ok);
        }
        let mismatches = compare(bundle, &verified.manifest, &rebuilt)?;
        if self.json {
            #[allow(clippy::print_stdout)]
            {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "schema": crate::output::SCHEMA,
                        "command": "rebuild",
                        "reproduced": mismatches.is_empty(),
                        "builder": {
                            "signed": signed_builder,
                            "running": running,
                            "same": signed_builder.as_deref() == Some(running.as_str()),
                        },
                        "mismatches": mismatches,
                    }))?
                );
            }
        }
        if mismatches.is_empty() {
            say(&format!(
                "REPRODUCED {} {}: every artifact is byte for byte what was signed",
                verified.name, verified.version
            ));
            return Ok(Exit::Ok);
        }
        for mismatch in &mismatches {
            say(&format!(
                "NOT REPRODUCED {}: the bundle has sha256 {}, the rebuild {}",
                mismatch.artifact, mismatch.expected, mismatch.actual
            ));
            for line in &mismatch.differs {
                say(&format!("  {line}"));
            }
        }
        Ok(Exit::Failure)
    }
}

/// The sha256 of the airlock binary that built the image, as the verified
/// provenance records it.
fn signed_builder(bundle: &Path) -> anyhow::Result<Option<String>> {
    use base64::Engine;
    let bytes = std::fs::read(bundle.join(paths::PROVENANCE))?;
    let envelope: airlock_verify::dsse::Envelope = serde_json::from_slice(&bytes)?;
    let payload = base64::engine::general_purpose::STANDARD.decode(&envelope.payload)?;
    let statement: serde_json::Value = serde_json::from_slice(&payload)?;
    Ok(statement["predicate"]["runDetails"]["builder"]["version"]
        [airlock_release::provenance::AIRLOCK_SHA256]
        .as_str()
        .map(str::to_owned))
}

/// The bundle paths of the sources the lock needs: every .deb, model and
/// component, each with the sha256 the lock pins.
fn needed_sources(lock: &airlock_recipe::Lock) -> Vec<(String, airlock_recipe::Sha256)> {
    lock.packages
        .iter()
        .map(|p| (format!("sources/debs/{}", p.file_name()), p.sha256))
        .chain(
            lock.models
                .iter()
                .map(|m| (format!("sources/models/{}", m.name), m.sha256)),
        )
        .chain(
            lock.components
                .iter()
                .map(|c| (format!("sources/components/{}", c.name), c.sha256)),
        )
        .collect()
}

/// The bundle's sources must be exactly what the lock needs: nothing
/// missing, nothing else.
fn check_sources(
    manifest: &Manifest,
    needed: &[(String, airlock_recipe::Sha256)],
) -> anyhow::Result<()> {
    let needed: BTreeSet<&str> = needed.iter().map(|(path, _)| path.as_str()).collect();
    let present: BTreeSet<&str> = manifest
        .files
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| {
            ["sources/debs/", "sources/models/", "sources/components/"]
                .iter()
                .any(|prefix| p.starts_with(prefix))
        })
        .collect();
    let list = |paths: Vec<&&str>| paths.iter().map(|p| **p).collect::<Vec<_>>().join(", ");
    let missing: Vec<&&str> = needed.difference(&present).collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "the bundle's sources are incomplete, missing {}: export it with --with-sources",
            list(missing)
        );
    }
    let extra: Vec<&&str> = present.difference(&needed).collect();
    if !extra.is_empty() {
        anyhow::bail!(
            "the bundle's sources hold what its lock does not name: {}",
            list(extra)
        );
    }
    Ok(())
}

/// Rebuilds into `output` from the bundle alone; returns the image folder.
fn rebuild(
    bundle: &Path,
    manifest: &Manifest,
    store: &airlock_store::Store,
    output: &Path,
) -> anyhow::Result<PathBuf> {
    let read = |name: &str| {
        std::fs::read(bundle.join(name)).with_context(|| format!("reading the bundle's {name}"))
    };
    let recipe_bytes = read(paths::RECIPE)?;
    let recipe: airlock_recipe::Recipe = serde_json::from_slice(&recipe_bytes)
        .with_context(|| format!("reading the bundle's {}", paths::RECIPE))?;
    let recipe_digest = airlock_recipe::canonical_digest(&recipe);
    if recipe_digest.to_hex() != manifest.recipe {
        anyhow::bail!(
            "{}: canonical digest {recipe_digest}, the manifest says {}",
            paths::RECIPE,
            manifest.recipe
        );
    }
    let lock_text = String::from_utf8(read(paths::LOCK)?).context("lock.toml is not UTF-8")?;
    let lock = airlock_recipe::Lock::parse(Path::new(paths::LOCK), &lock_text)?;
    let lock_digest =
        airlock_recipe::Sha256(sha2::Sha256::digest(lock.to_toml().as_bytes()).into());
    let needed = needed_sources(&lock);
    check_sources(manifest, &needed)?;
    // The sources into the store (a model may be split into chunks), each
    // checked against the lock.
    for (path, want) in &needed {
        let entry = manifest.file(path).expect("checked by check_sources");
        let mut reader = LogicalReader::open(bundle, entry)?;
        let (digest, _) = store.add_reader(path, &mut reader)?;
        if digest != *want {
            anyhow::bail!("{path}: sha256 {digest}, the lock says {want}");
        }
    }
    let (packages, models, components) = crate::shared::store_inputs(&lock, store);
    let input = Input {
        recipe: &recipe,
        base_dir: bundle,
        recipe_digest,
        lock: &lock,
        lock_digest,
        packages,
        models,
        components,
        recorded_files: Some(bundle),
        airlock_version: &manifest.airlock,
        builder_digest: &crate::shared::self_digest()?,
    };
    let started = std::time::Instant::now();
    let progress = |step: &str| {
        say(&format!(
            "{:6.1} s  {step}",
            started.elapsed().as_secs_f64()
        ))
    };
    let outcome = pipeline::build(&input, output, &progress).context("rebuilding")?;
    Ok(outcome.dir)
}

/// Every artifact of the bundle against the rebuilt folder's.
fn compare(bundle: &Path, manifest: &Manifest, rebuilt: &Path) -> anyhow::Result<Vec<Mismatch>> {
    let report = pipeline::Report::parse(&std::fs::read(rebuilt.join(pipeline::REPORT))?)?;
    let mut mismatches = Vec::new();
    // The Secure Boot signed files cannot be rebuilt (the db key is not
    // here); verification proved each is its unsigned self, which is
    // compared, plus a signature.
    let signed = |path: &str| {
        path.strip_prefix(airlock_format::names::bundle::SECURE_BOOT)
            .is_some_and(|rest| rest.starts_with('/'))
    };
    for entry in manifest
        .files
        .iter()
        .filter(|f| paths::is_subject(&f.path) && !signed(&f.path))
    {
        let name = entry.path.trim_start_matches("artifacts/");
        let actual = report
            .bundled(name)
            .map_or_else(|| "absent".to_owned(), |a| a.sha256.clone());
        if actual == entry.sha256 {
            continue;
        }
        let mut differs = Vec::new();
        let ours = rebuilt.join(name);
        if ours.is_file() {
            let signed = LogicalReader::open(bundle, entry)?;
            let file = std::fs::File::open(&ours)?;
            if entry.path == paths::ROOTFS_TAR {
                differs = airlock_image::compare::tar_differences(signed, file, 20)
                    .map_err(|e| anyhow::anyhow!("comparing {}: {e}", entry.path))?;
            } else if let Some(offset) = airlock_image::compare::first_difference(signed, file)? {
                differs.push(format!("first differing byte at offset {offset}"));
            }
        }
        mismatches.push(Mismatch {
            artifact: entry.path.clone(),
            expected: entry.sha256.clone(),
            actual,
            differs,
        });
    }
    let rebuilt_commit = report.ostree_commit;
    let signed_commit = manifest.ostree.as_ref().map(|o| o.commit.clone());
    if rebuilt_commit != signed_commit {
        mismatches.push(Mismatch {
            artifact: "ostree commit".to_owned(),
            expected: signed_commit.unwrap_or_else(|| "none".to_owned()),
            actual: rebuilt_commit.unwrap_or_else(|| "none".to_owned()),
            differs: Vec::new(),
        });
    }
    Ok(mismatches)
}
