//! `airlock build`: from a locked recipe whose inputs are in the store to
//! an image folder. The folder's name carries a digest of every input, the
//! build happens in a temporary folder beside it that is renamed into place
//! only when everything was written, and a folder that exists is a cache
//! hit.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use airlock_deb::Limits;
use airlock_format::names::{cmdline, image as names};
use airlock_recipe::{Format, Lock, Recipe, Sha256};
use airlock_store::Store;
use sha2::Digest;

use crate::BuildError;
use crate::configure::{self, files::Added};
use crate::emit::{self, initrd};
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
    /// airlock's version (part of the inputs).
    pub airlock_version: &'a str,
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

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
    let what = what.into();
    move |source| BuildError::Io { what, source }
}

/// Reads the recipe's `[files]` into `blobs`.
fn added_files(input: &Input<'_>, blobs: &Store) -> Result<Vec<Added>, BuildError> {
    let mut added = Vec::new();
    for tree in &input.recipe.files.tree {
        let source = input.base_dir.join(tree.source.as_str());
        added.extend(configure::files::read_host_tree(
            &source,
            tree.target.as_str(),
            blobs,
        )?);
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

/// A version 4 (random-format) UUID from derived bytes.
pub(crate) fn uuid_of(bytes: &[u8; 32]) -> String {
    let mut b: [u8; 16] = bytes[..16].try_into().expect("16 bytes");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex::encode(b);
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

/// [`build`] into the name's folder `parent`, which exists.
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
    if final_dir.join(REPORT).is_file() {
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

    progress(&format!("unpacking {} packages", input.packages.len()));
    let limits = Limits {
        max_total: recipe.packages.max_unpacked_bytes(),
        ..Limits::default()
    };
    let unpacked = extract::unpack(&input.packages, &blobs, &limits)?;
    let allowed_devices: std::collections::BTreeSet<String> = recipe
        .packages
        .allow_device_nodes
        .iter()
        .map(|path| path.as_str().trim_start_matches('/').to_owned())
        .collect();
    let mut tree = extract::into_tree(&unpacked, &allowed_devices)?;
    progress("configuring");
    let configured = configure::configure(&mut tree, &blobs, &unpacked, recipe, &added)?;
    install_models(input, &mut tree, &blobs)?;
    crate::privilege::check_tree(&tree, &allowed_devices)?;
    let privileges = crate::privilege::inventory(&tree)?;
    progress("writing the SBOMs");
    let (cyclonedx, spdx) = crate::sbom::generate(&crate::sbom::Input {
        recipe,
        lock: input.lock,
        tree: &tree,
        blobs: &blobs,
        added: &added,
        privileges: &privileges,
        inputs: &inputs.to_hex(),
        airlock_version: input.airlock_version,
    })?;
    let recipe_json = serde_json::to_vec(recipe).expect("a recipe serializes");
    for (name, bytes) in [
        (crate::sbom::CYCLONEDX, cyclonedx.as_bytes()),
        (crate::sbom::SPDX, spdx.as_bytes()),
        (RECIPE_JSON, &recipe_json[..]),
        (LOCK_TOML, input.lock.to_toml().as_bytes()),
    ] {
        let path = out.join(name);
        fs::write(&path, bytes).map_err(io(path.display().to_string()))?;
    }
    let formats = &recipe.output.formats;
    let level = recipe.output.zstd_level;
    let epoch = recipe.image.epoch;

    let tar_job = || -> Result<(), BuildError> {
        if formats.contains(&Format::Tar) {
            let path = out.join(names::ROOTFS_TAR);
            let file = File::create(&path).map_err(io(path.display().to_string()))?;
            crate::tar::write_tar_zst(&tree, &blobs, epoch, level, BufWriter::new(file))?;
        }
        Ok(())
    };
    type Images = (Option<Verity>, Option<(String, String)>, Option<String>);
    let image_job = || -> Result<Images, BuildError> {
        let wants_erofs = formats.contains(&Format::Erofs);
        let wants_ostree = formats.contains(&Format::Ostree);
        if !wants_erofs && !wants_ostree {
            return Ok((None, None, None));
        }
        progress("staging the tree for mkfs.erofs and ostree");
        let staging = work.path().join("staging");
        fs::create_dir(&staging).map_err(io(staging.display().to_string()))?;
        staging_permissions(&staging)?;
        crate::emit::staging::stage(&tree, &blobs, &staging)?;
        // The EROFS root (then its hash tree, kernel and initrd) and the
        // ostree commit both only read the staging tree: in parallel.
        let erofs_job = || -> Result<(Option<Verity>, Option<String>), BuildError> {
            let mut verity = None;
            let mut kernel = None;
            if wants_erofs {
                progress("writing the EROFS root and its dm-verity tree");
                let erofs = out.join(names::EROFS);
                emit::erofs(
                    &staging,
                    &erofs,
                    epoch,
                    &uuid_of(&derived(&inputs, "erofs-uuid")),
                )?;
                let salt = derived(&inputs, "verity-salt").to_vec();
                let size = fs::metadata(&erofs)
                    .map_err(io(erofs.display().to_string()))?
                    .len();
                let hash_path = out.join(names::VERITY);
                let mut hash_file = BufWriter::new(
                    File::create(&hash_path).map_err(io(hash_path.display().to_string()))?,
                );
                let mut data =
                    BufReader::new(File::open(&erofs).map_err(io(erofs.display().to_string()))?);
                let params = airlock_verity::Params {
                    data_block_size: 4096,
                    hash_block_size: 4096,
                    salt: salt.clone(),
                    uuid: None,
                };
                let tree = airlock_verity::build(&mut data, size, &params, &mut hash_file)
                    .map_err(|e| BuildError::Config {
                        what: "dm-verity".to_owned(),
                        message: e.to_string(),
                    })?;
                hash_file
                    .flush()
                    .map_err(io(hash_path.display().to_string()))?;
                verity = Some(Verity {
                    root_hash: hex::encode(tree.root_hash),
                    salt: hex::encode(&salt),
                    data_blocks: tree.data_blocks,
                    block_size: 4096,
                    algorithm: "sha256".to_owned(),
                });
            }
            if wants_erofs && !configured.kernels.is_empty() {
                progress("writing the kernel and initrd");
                let found = initrd::find_kernel(&tree, &configured.kernels)?;
                let modules = &configured.kernels[0].1;
                let vmlinuz = match tree.get(&found.vmlinuz).map(|n| &n.kind) {
                    Some(airlock_tree::Kind::File(content)) => content.clone(),
                    _ => unreachable!("find_kernel checked it is a file"),
                };
                let source = match &vmlinuz {
                    airlock_tree::Content::Stored { sha256, .. } => blobs.path(sha256),
                    airlock_tree::Content::Inline(_) => {
                        return Err(BuildError::Config {
                            what: "[kernel]".to_owned(),
                            message: "the kernel is not a package's file".to_owned(),
                        });
                    }
                };
                let target = out.join(names::KERNEL);
                fs::copy(&source, &target).map_err(io(target.display().to_string()))?;
                {
                    use std::os::unix::fs::PermissionsExt;
                    fs::set_permissions(&target, fs::Permissions::from_mode(0o644))
                        .map_err(io(target.display().to_string()))?;
                }
                let initrd_path = out.join(names::INITRD);
                let file =
                    File::create(&initrd_path).map_err(io(initrd_path.display().to_string()))?;
                initrd::write_initrd(
                    &tree,
                    &blobs,
                    &found,
                    modules,
                    &recipe.kernel.initrd_modules,
                    epoch,
                    level,
                    BufWriter::new(file),
                )?;
                kernel = Some(found.version);
            }
            Ok((verity, kernel))
        };
        let ostree_job = || -> Result<Option<(String, String)>, BuildError> {
            let mut ostree = None;
            if wants_ostree {
                progress("committing to ostree");
                let branch = format!("airlock/{}", recipe.image.name);
                let commit = emit::ostree(
                    &staging,
                    &out.join("ostree"),
                    &branch,
                    &format!("{} {}", recipe.image.name, recipe.image.version),
                    recipe.image.version,
                    epoch,
                )?;
                ostree = Some((commit, branch));
            }
            Ok(ostree)
        };
        let (erofs_result, ostree_result) = rayon::join(erofs_job, ostree_job);
        let (verity, kernel) = erofs_result?;
        let ostree = ostree_result?;
        Ok((verity, ostree, kernel))
    };
    if formats.contains(&Format::Tar) {
        progress("writing rootfs.tar.zst");
    }
    let (tar_result, image_result) = rayon::join(tar_job, image_job);
    tar_result?;
    let (verity, ostree, kernel) = image_result?;

    let cmdline = verity.as_ref().filter(|_| kernel.is_some()).map(|v| {
        let mut words: Vec<String> = recipe.kernel.cmdline.clone();
        if recipe.audit.is_some() {
            // Audit every process from the start, with room for a burst
            // before auditd runs.
            words.extend(["audit=1".to_owned(), "audit_backlog_limit=8192".to_owned()]);
        }
        words.extend([
            "ro".to_owned(),
            "systemd.firstboot=off".to_owned(),
            format!("{}={}", cmdline::ROOTHASH, v.root_hash),
            format!("{}={}", cmdline::SALT, v.salt),
            format!("{}={}", cmdline::BLOCKS, v.data_blocks),
        ]);
        words.join(" ")
    });
    let mut artifacts = Vec::new();
    for name in names::ARTIFACTS {
        let path = out.join(name);
        if path.is_file() {
            let (sha256, size) = airlock_store::hash_file(&path)?;
            artifacts.push(Artifact {
                path: name.to_owned(),
                size,
                sha256: sha256.to_hex(),
            });
        }
    }
    let report = Report {
        schema: REPORT_SCHEMA,
        name: recipe.image.name.to_string(),
        version: recipe.image.version,
        epoch,
        inputs: inputs.to_hex(),
        recipe: input.recipe_digest.to_hex(),
        lock: input.lock_digest.to_hex(),
        airlock: input.airlock_version.to_owned(),
        packages: input.packages.len() as u64,
        artifacts,
        verity,
        kernel,
        cmdline,
        ostree_commit: ostree.as_ref().map(|(c, _)| c.clone()),
        ostree_branch: ostree.map(|(_, b)| b),
        notes: configured.notes,
        privileges,
    };
    let report_json = report.to_json();
    let report_path = out.join(REPORT);
    fs::write(&report_path, &report_json).map_err(io(report_path.display().to_string()))?;
    // Into place: the image folder appears whole or not at all.
    match fs::rename(&out, &final_dir) {
        Ok(()) => {}
        // Another build of the same inputs finished first: same bytes.
        Err(_) if final_dir.join(REPORT).is_file() => {}
        Err(source) => return Err(io(final_dir.display().to_string())(source)),
    }
    drop(work);
    Ok(Outcome {
        dir: final_dir,
        cached: false,
        report_json,
    })
}

/// Puts each `[[models]]` file at its destination, read-only (0444, root),
/// hardlinked from the store into the build's blob area where the file
/// system allows (never read into memory).
fn install_models(
    input: &Input<'_>,
    tree: &mut airlock_tree::Tree,
    blobs: &Store,
) -> Result<(), BuildError> {
    for model in &input.recipe.models {
        let locked = input
            .lock
            .models
            .iter()
            .find(|m| m.name == model.name.as_str())
            .ok_or_else(|| BuildError::Config {
                what: format!("[[models]] {}", model.name),
                message: "not in the lock; run `airlock lock --update`".to_owned(),
            })?;
        let source = input
            .models
            .iter()
            .find(|(name, _)| name == model.name.as_str())
            .map(|(_, path)| path)
            .ok_or_else(|| BuildError::Config {
                what: format!("[[models]] {}", model.name),
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
            0o444,
        );
        tree.put(model.destination.as_str().trim_start_matches('/'), node)
            .map_err(|source| BuildError::Tree {
                package: format!("[[models]] {}", model.name),
                source,
            })?;
    }
    Ok(())
}

/// The staging root must be 0755 whatever the umask.
fn staging_permissions(staging: &Path) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(staging, fs::Permissions::from_mode(0o755))
        .map_err(io(staging.display().to_string()))
}
