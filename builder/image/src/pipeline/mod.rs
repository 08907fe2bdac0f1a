//! `airlock build`: from a locked recipe whose inputs are in the store to
//! an image folder. The folder's name carries a digest of every input, the
//! build happens in a temporary folder beside it that is renamed into place
//! only when everything was written, and a folder that exists is a cache
//! hit.

use std::fs;
use std::path::{Path, PathBuf};

use airlock_deb::Limits;
use airlock_format::names::{cmdline, image as names};
use airlock_recipe::{Lock, Recipe, Sha256};
use airlock_store::Store;
use sha2::Digest;

mod artifacts;

use crate::BuildError;
use crate::configure::{self, files::Added};
use crate::extract::{self, Package};

pub use airlock_format::report::{
    Artifact, FILE as REPORT, Report, SCHEMA as REPORT_SCHEMA, Verity,
};
/// The merged recipe, as the JSON its canonical digest is taken over
/// (`sha256(airlock_format::names::domain::RECIPE + bytes)`).
pub const RECIPE_JSON: &str = names::RECIPE;
/// The lock, as its digest is taken over.
pub const LOCK_TOML: &str = names::LOCK;

/// What a build needs.
#[derive(Debug)]
pub struct Input<'a> {
    /// The merged recipe.
    pub recipe: &'a Recipe,
    /// The folder its relative host paths are relative to.
    pub base_dir: &'a Path,
    /// Its canonical digest.
    pub recipe_digest: Sha256,
    /// The lock.
    pub lock: &'a Lock,
    /// The digest of the lock's canonical text.
    pub lock_digest: Sha256,
    /// The locked packages in lock order, each a verified store entry.
    pub packages: Vec<Package>,
    /// The locked models: (name, the verified store entry).
    pub models: Vec<(String, PathBuf)>,
    /// The locked components: (name, the verified store entry).
    pub components: Vec<(String, PathBuf)>,
    /// A folder holding `sources/files.json` (a bundle's, for a rebuild):
    /// the `[files]` trees are read from that record instead of from
    /// `base_dir`.
    pub recorded_files: Option<&'a Path>,
    /// airlock's version (part of the inputs).
    pub airlock_version: &'a str,
    /// sha256 of the airlock binary building it: part of the cache key
    /// (a changed builder never reuses an image folder), never of the
    /// image's bytes.
    pub builder_digest: &'a str,
}

/// The file in an image folder that says who built it.
pub const BUILT: &str = names::BUILT;

/// What an image folder is reused for: the inputs and the exact builder.
pub fn cache_key(inputs: &Sha256, builder_digest: &str) -> String {
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"airlock-cache-key-v1\n");
    hasher.update(format!("inputs {inputs}\nbuilder {builder_digest}\n"));
    hex::encode(hasher.finalize())
}

/// The outcome of [`build`].
#[derive(Debug)]
pub struct Outcome {
    /// The image folder.
    pub dir: PathBuf,
    /// Whether it already existed.
    pub cached: bool,
    /// The report.
    pub report_json: String,
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
    let what = what.into();
    move |source| BuildError::Io { what, source }
}

/// Reads the recipe's `[files]` into `blobs`: its trees from the build
/// host (or, for a rebuild, from the recorded copy), then its inline files.
fn added_files(input: &Input<'_>, blobs: &Store) -> Result<Vec<Added>, BuildError> {
    let trees = &input.recipe.files.tree;
    let mut added = Vec::new();
    match input.recorded_files {
        Some(dir) => {
            added = crate::sources::read(dir, blobs)?;
            if added.is_empty() && !trees.is_empty() {
                return Err(BuildError::Config {
                    what: "[files] tree".to_owned(),
                    message: format!(
                        "the recipe adds [files] trees, but {} has no {}",
                        dir.display(),
                        crate::sources::FILES_JSON
                    ),
                });
            }
        }
        None => {
            for tree in trees {
                let source = input.base_dir.join(tree.source.as_str());
                added.extend(configure::files::read_host_tree(
                    &source,
                    tree.target.as_str(),
                    blobs,
                )?);
            }
        }
    }
    for (path, file) in &input.recipe.files.inline {
        added.push(configure::files::inline(path.as_str(), file));
    }
    Ok(added)
}

/// The digest of every input: airlock's version, the recipe, the lock, and
/// the recipe's files as read (paths, kinds, modes, content digests).
pub fn inputs_digest(input: &Input<'_>, added: &[Added]) -> Sha256 {
    let mut hasher = sha2::Sha256::new();
    hasher.update(airlock_format::names::domain::BUILD_INPUTS);
    hasher.update(format!("airlock {}\n", input.airlock_version));
    hasher.update(format!("recipe {}\n", input.recipe_digest));
    hasher.update(format!("lock {}\n", input.lock_digest));
    for file in added {
        let detail = match &file.node.kind {
            airlock_tree::Kind::File(content) => format!("file {}", content.sha256()),
            airlock_tree::Kind::Symlink(target) => format!("symlink {target}"),
            airlock_tree::Kind::Directory => "directory".to_owned(),
            _ => "other".to_owned(),
        };
        hasher.update(format!(
            "added {} {:o} {:?} {detail}\n",
            file.path, file.node.mode, file.owner
        ));
    }
    Sha256(hasher.finalize().into())
}

/// 32 bytes derived from the inputs digest for one purpose.
pub(crate) fn derived(inputs: &Sha256, what: &str) -> [u8; 32] {
    let mut hasher = sha2::Sha256::new();
    hasher.update(format!("airlock-{what}\n{inputs}\n"));
    hasher.finalize().into()
}

/// The 16 bytes of a version 4 (random-format) UUID from derived bytes.
pub(crate) fn uuid_bytes(bytes: &[u8; 32]) -> [u8; 16] {
    let mut b: [u8; 16] = bytes[..16].try_into().expect("16 bytes");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    b
}

/// A version 4 (random-format) UUID from derived bytes, as text.
pub(crate) fn uuid_of(bytes: &[u8; 32]) -> String {
    let hex = hex::encode(uuid_bytes(bytes));
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Builds the image into `images/<name>/<version>-<digest>` below `output`.
pub fn build(
    input: &Input<'_>,
    output: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Outcome, BuildError> {
    let parent = output.join(input.recipe.image.name.as_str());
    let created = !parent.exists();
    fs::create_dir_all(&parent).map_err(io(parent.display().to_string()))?;
    let result = build_in(input, &parent, progress);
    if result.is_err() && created {
        // The first build of this name failed (a full disk, a bad package):
        // no empty folder is left for it. Not empty means another build
        // is using it, and it stays.
        let _ = fs::remove_dir(&parent);
    }
    result
}

/// [`build`] into the name's folder `parent`, which exists: the stages in
/// order, each its own function.
fn build_in(
    input: &Input<'_>,
    parent: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Outcome, BuildError> {
    let recipe = input.recipe;
    let (work, stale) = airlock_store::workdir::claim(parent, ".build-")
        .map_err(io(parent.display().to_string()))?;
    if stale > 0 {
        progress(&format!(
            "removed {stale} temporary folder(s) that killed builds left in {}",
            parent.display()
        ));
    }
    let blobs = Store::open_scratch(work.path().join("blobs"))?;
    let added = added_files(input, &blobs)?;
    let inputs = inputs_digest(input, &added);
    let name = format!("{}-{}", recipe.image.version, &inputs.to_hex()[..12]);
    let final_dir = parent.join(&name);
    let key = cache_key(&inputs, input.builder_digest);
    if final_dir.join(REPORT).is_file() && has_key(&final_dir, &key) {
        let report_json = fs::read_to_string(final_dir.join(REPORT))
            .map_err(io(final_dir.display().to_string()))?;
        return Ok(Outcome {
            dir: final_dir,
            cached: true,
            report_json,
        });
    }
    let out = work.path().join("image");
    fs::create_dir(&out).map_err(io(out.display().to_string()))?;

    let assembled = assemble(input, &blobs, &added, progress)?;
    let emitted = artifacts::emit(&artifacts::Stage {
        recipe,
        tree: &assembled.tree,
        blobs: &blobs,
        kernels: &assembled.configured.kernels,
        inputs: &inputs,
        out: &out,
        work: work.path(),
        progress,
    })?;
    // After the artifacts: the SPDX 3 SBOM names them, with their hashes,
    // as the image's distribution form.
    progress("writing the SBOMs");
    let hashed = crate::sbom::hash_artifacts(&out)?;
    write_documents(input, &out, &assembled, &blobs, &added, &inputs, &hashed)?;
    let report = report(input, &inputs, emitted, assembled, &hashed)?;
    let report_json = report.to_json();
    let report_path = out.join(REPORT);
    fs::write(&report_path, &report_json).map_err(io(report_path.display().to_string()))?;
    let built = airlock_format::report::Built {
        schema: airlock_format::report::BUILT_SCHEMA,
        cache_key: key.clone(),
        airlock_sha256: input.builder_digest.to_owned(),
    };
    let built_path = out.join(BUILT);
    fs::write(&built_path, built.to_json()).map_err(io(built_path.display().to_string()))?;
    publish(&out, &final_dir, &key, work.path())?;
    drop(work);
    Ok(Outcome {
        dir: final_dir,
        cached: false,
        report_json,
    })
}

/// Whether the image folder `dir` was built by this builder from these
/// inputs (a folder from another airlock binary, or from before cache keys,
/// has another key or none).
fn has_key(dir: &Path, key: &str) -> bool {
    fs::read(dir.join(BUILT))
        .ok()
        .and_then(|bytes| airlock_format::report::Built::parse(&bytes))
        .is_some_and(|built| built.cache_key == key)
}

/// Renames the finished folder `out` into place. A folder already there
/// with the same key is another build's of the same inputs by the same
/// builder (the same bytes) and stays; one with another key is moved into
/// `work` first (and removed with it).
fn publish(out: &Path, final_dir: &Path, key: &str, work: &Path) -> Result<(), BuildError> {
    if final_dir.exists() && !has_key(final_dir, key) {
        let stale = work.join("replaced");
        fs::rename(final_dir, &stale).map_err(io(final_dir.display().to_string()))?;
    }
    match fs::rename(out, final_dir) {
        Ok(()) => Ok(()),
        Err(_) if has_key(final_dir, key) => Ok(()),
        Err(source) => Err(io(final_dir.display().to_string())(source)),
    }
}

/// The image's tree, configured, with its models, checked for privilege.
struct Assembled {
    tree: airlock_tree::Tree,
    configured: configure::Configured,
    privileges: Vec<airlock_format::report::Privileged>,
}

/// Stage 1: the packages unpacked into the tree model, configured natively
/// (no package script runs), the models put in place, and every privileged
/// path checked against the recipe and inventoried.
fn assemble(
    input: &Input<'_>,
    blobs: &Store,
    added: &[Added],
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Assembled, BuildError> {
    let recipe = input.recipe;
    progress(&format!("unpacking {} packages", input.packages.len()));
    let limits = Limits {
        max_total: recipe.packages.max_unpacked_bytes(),
        ..Limits::default()
    };
    let unpacked = extract::unpack(&input.packages, blobs, &limits)?;
    let allowed_devices: std::collections::BTreeSet<String> = recipe
        .packages
        .allow_device_nodes
        .iter()
        .map(|path| path.as_str().trim_start_matches('/').to_owned())
        .collect();
    let mut tree = extract::into_tree(&unpacked, &allowed_devices)?;
    progress("configuring");
    let configured = configure::configure(&mut tree, blobs, &unpacked, recipe, added)?;
    install_pinned(input, &mut tree, blobs)?;
    crate::privilege::check_tree(&tree, &allowed_devices)?;
    let privileges = crate::privilege::inventory(&tree)?;
    Ok(Assembled {
        tree,
        configured,
        privileges,
    })
}

/// Stage 3: the SBOMs, the merged recipe and the lock, beside the
/// artifacts, and the record of the files the recipe's trees added.
fn write_documents(
    input: &Input<'_>,
    out: &Path,
    assembled: &Assembled,
    blobs: &Store,
    added: &[Added],
    inputs: &Sha256,
    hashed: &[crate::sbom::Hashed],
) -> Result<(), BuildError> {
    let documents = crate::sbom::generate(&crate::sbom::Input {
        recipe: input.recipe,
        lock: input.lock,
        tree: &assembled.tree,
        blobs,
        debs: &input.packages,
        models: &input.models,
        components: &input.components,
        artifacts: hashed,
        added,
        privileges: &assembled.privileges,
        inputs: &inputs.to_hex(),
        airlock_version: input.airlock_version,
    })?;
    let recipe_json = serde_json::to_vec(input.recipe).expect("a recipe serializes");
    for (name, bytes) in [
        (crate::sbom::CYCLONEDX, documents.cyclonedx.as_bytes()),
        (crate::sbom::SPDX, documents.spdx.as_bytes()),
        (crate::sbom::SPDX3, documents.spdx3.as_bytes()),
        (RECIPE_JSON, &recipe_json[..]),
        (LOCK_TOML, input.lock.to_toml().as_bytes()),
    ] {
        let path = out.join(name);
        fs::write(&path, bytes).map_err(io(path.display().to_string()))?;
    }
    crate::sources::write(out, added, blobs)
}

/// Stage 4: the build report, over the artifacts as written (hashed once,
/// for it and the SBOMs).
fn report(
    input: &Input<'_>,
    inputs: &Sha256,
    emitted: artifacts::Emitted,
    assembled: Assembled,
    hashed: &[crate::sbom::Hashed],
) -> Result<Report, BuildError> {
    let recipe = input.recipe;
    let cmdline = emitted
        .verity
        .as_ref()
        .filter(|_| emitted.kernel.is_some())
        .map(|verity| kernel_cmdline(recipe, verity));
    let artifacts = hashed
        .iter()
        .map(|a| Artifact {
            path: a.name.clone(),
            size: a.size,
            sha256: a.sha256.clone(),
        })
        .collect();
    Ok(Report {
        schema: REPORT_SCHEMA,
        name: recipe.image.name.to_string(),
        version: recipe.image.version,
        epoch: recipe.image.epoch,
        inputs: inputs.to_hex(),
        recipe: input.recipe_digest.to_hex(),
        lock: input.lock_digest.to_hex(),
        airlock: input.airlock_version.to_owned(),
        packages: input.packages.len() as u64,
        artifacts,
        verity: emitted.verity,
        kernel: emitted.kernel,
        cmdline,
        ostree_commit: emitted.ostree.as_ref().map(|(c, _)| c.clone()),
        ostree_branch: emitted.ostree.map(|(_, b)| b),
        notes: assembled.configured.notes,
        privileges: assembled.privileges,
        first_boot: assembled.configured.first_boot,
        disk: emitted.disk,
    })
}

/// The command line to boot the image with: the recipe's words, audit from
/// the start when the recipe audits, a read-only root, and the dm-verity
/// parameters the initrd reads.
pub(super) fn kernel_cmdline(recipe: &Recipe, verity: &Verity) -> String {
    let mut words: Vec<String> = recipe.kernel.cmdline.clone();
    if recipe.audit.is_some() {
        // Audit every process from the start, with room for a burst
        // before auditd runs.
        words.extend(["audit=1".to_owned(), "audit_backlog_limit=8192".to_owned()]);
    }
    words.extend([
        "ro".to_owned(),
        "systemd.firstboot=off".to_owned(),
        format!("{}={}", cmdline::ROOTHASH, verity.root_hash),
        format!("{}={}", cmdline::SALT, verity.salt),
        format!("{}={}", cmdline::BLOCKS, verity.data_blocks),
    ]);
    words.join(" ")
}

/// Puts each `[[models]]` and `[[components]]` file at its destination,
/// read-only (0444, or 0555 for an executable component; root),
/// hardlinked from the store into the build's blob area where the file
/// system allows (never read into memory).
fn install_pinned(
    input: &Input<'_>,
    tree: &mut airlock_tree::Tree,
    blobs: &Store,
) -> Result<(), BuildError> {
    for pinned in input.recipe.pinned() {
        let what = || format!("{} {}", pinned.section(), pinned.name);
        let locked =
            input
                .lock
                .pinned(pinned.kind, pinned.name)
                .ok_or_else(|| BuildError::Config {
                    what: what(),
                    message: "not in the lock; run `airlock lock --update`".to_owned(),
                })?;
        let sources = if pinned.kind == "model" {
            &input.models
        } else {
            &input.components
        };
        let source = sources
            .iter()
            .find(|(name, _)| name == pinned.name)
            .map(|(_, path)| path)
            .ok_or_else(|| BuildError::Config {
                what: what(),
                message: "not in the store; run `airlock fetch`".to_owned(),
            })?;
        let target = blobs.path(&locked.sha256);
        if !target.exists() {
            if let Some(dir) = target.parent() {
                fs::create_dir_all(dir).map_err(io(dir.display().to_string()))?;
            }
            if fs::hard_link(source, &target).is_err() {
                fs::copy(source, &target).map_err(io(target.display().to_string()))?;
            }
        }
        let node = airlock_tree::Node::new(
            airlock_tree::Kind::File(airlock_tree::Content::Stored {
                sha256: locked.sha256,
                size: locked.size,
            }),
            pinned.mode,
        );
        tree.put(pinned.destination.as_str().trim_start_matches('/'), node)
            .map_err(|source| BuildError::Tree {
                package: what(),
                source,
            })?;
    }
    Ok(())
}
