//! Transfer bundles: `airlock export` writes one from an image folder,
//! `airlock sign` adds an approver's signature to it.
//!
//! A bundle's bytes depend only on the image, the options and the keys:
//! files are copied, not re-encoded, the manifest is canonical JSON, the
//! provenance signature uses deterministic nonces, and a tar bundle has
//! sorted entries with fixed owners, modes and times.

use std::fs::{self, File};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use airlock_format::report::Report;
use airlock_recipe::Lock;
use airlock_store::Store;
use airlock_verify::manifest::{
    self, DEFAULT_CHUNK, FileEntry, MANIFEST, Manifest, Ostree, Previous, SIGNATURES, Sboms, paths,
};
use rayon::prelude::*;
use sha2::Digest;

use crate::keys::BuilderSigner;
use crate::provenance::{self, Subject};
use crate::{ReleaseError, io};

/// Where a bundle goes.
#[derive(Debug, Clone)]
pub enum Destination {
    /// A new directory.
    Dir(PathBuf),
    /// A new tar file.
    Tar(PathBuf),
}

/// What `airlock export` was asked for.
#[derive(Debug)]
pub struct ExportOptions<'a> {
    /// The image folder.
    pub image: &'a Path,
    /// Where.
    pub destination: Destination,
    /// Split files larger than this into `PATH.000`, `PATH.001`, ...
    pub chunk_size: Option<u64>,
    /// `expires`, seconds since the epoch.
    pub expires: u64,
    /// The builder key for the provenance.
    pub builder: &'a BuilderSigner,
    /// The store, to copy the exact .debs and models into sources/.
    pub sources: Option<&'a Store>,
    /// The previous release's bundle, for a static delta and a change report.
    pub previous: Option<&'a Path>,
}

/// What was written.
#[derive(Debug)]
pub struct Exported {
    /// The bundle (directory or tar).
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// sha256 of manifest.json.
    pub manifest_sha256: String,
}

fn invalid(message: impl Into<String>) -> ReleaseError {
    ReleaseError::Invalid(message.into())
}

/// sha256 (hex) of a file, streamed.
fn hash_file(path: &Path) -> Result<String, ReleaseError> {
    airlock_store::hash_file(path)
        .map(|(digest, _)| digest.to_hex())
        .map_err(|e| invalid(e.to_string()))
}

/// Reads an image folder's report and checks that every artifact is what
/// the build wrote.
pub fn read_image(image: &Path) -> Result<(Report, Lock), ReleaseError> {
    let report_path = image.join(paths::REPORT);
    let report = Report::parse(&fs::read(&report_path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => invalid(format!(
            "{}: not an image folder (no build-report.json); build one with `airlock build`",
            image.display()
        )),
        _ => io(report_path.display())(e),
    })?)
    .map_err(|e| invalid(format!("{}: {e}", report_path.display())))?;
    report.artifacts.par_iter().try_for_each(|artifact| {
        let (name, want) = (&artifact.path, &artifact.sha256);
        manifest::check_path(name).map_err(invalid)?;
        let got = hash_file(&image.join(name))?;
        if &got != want {
            return Err(invalid(format!(
                "{}: sha256 {got}, but the build report says {want}: the image folder changed after the build",
                image.join(name).display()
            )));
        }
        Ok(())
    })?;
    let recipe =
        fs::read(image.join(paths::RECIPE)).map_err(io(image.join(paths::RECIPE).display()))?;
    let mut hasher = sha2::Sha256::new();
    hasher.update(airlock_format::names::domain::RECIPE);
    hasher.update(&recipe);
    if hex::encode(hasher.finalize()) != report.recipe {
        return Err(invalid(format!(
            "{}: not the recipe the build report names",
            image.join(paths::RECIPE).display()
        )));
    }
    let lock_path = image.join(paths::LOCK);
    let lock_text = fs::read_to_string(&lock_path).map_err(io(lock_path.display()))?;
    if hex::encode(sha2::Sha256::digest(lock_text.as_bytes())) != report.lock {
        return Err(invalid(format!(
            "{}: not the lock the build report names",
            lock_path.display()
        )));
    }
    let lock = Lock::parse(&lock_path, &lock_text).map_err(|e| invalid(e.to_string()))?;
    Ok((report, lock))
}

/// Every regular file below `dir`, relative, sorted.
fn files_below(dir: &Path) -> Result<Vec<String>, ReleaseError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        let full = dir.join(&relative);
        for entry in fs::read_dir(&full).map_err(io(full.display()))? {
            let entry = entry.map_err(io(full.display()))?;
            let path = relative.join(entry.file_name());
            let kind = entry.file_type().map_err(io(entry.path().display()))?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                out.push(
                    path.to_str()
                        .ok_or_else(|| invalid(format!("{}: not UTF-8", path.display())))?
                        .to_owned(),
                );
            } else {
                return Err(invalid(format!(
                    "{}: not a regular file",
                    dir.join(&path).display()
                )));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A file of the bundle to be: where its bytes come from.
struct Planned {
    path: String,
    source: PathBuf,
    /// Split into chunk files.
    split: bool,
}

/// Writes a bundle.
pub fn export(
    options: &ExportOptions<'_>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Exported, ReleaseError> {
    let image = options.image;
    progress("checking the image folder against its build report");
    let (report, lock) = read_image(image)?;
    if report
        .artifact(airlock_format::names::image::ROOTFS_TAR)
        .is_none()
    {
        return Err(invalid(format!(
            "{}: the image has no rootfs.tar.zst; add \"tar\" to [output] formats: \
             `airlock verify` reads the image's dpkg database and models from it to check the SBOMs",
            image.display()
        )));
    }
    let final_path = match &options.destination {
        Destination::Dir(path) | Destination::Tar(path) => path.clone(),
    };
    if fs::symlink_metadata(&final_path).is_ok() {
        return Err(invalid(format!(
            "{} exists; a bundle is written to a new path",
            final_path.display()
        )));
    }
    let parent = final_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io(parent.display()))?;
    let (work, _stale) =
        airlock_store::workdir::claim(parent, ".airlock-export-").map_err(io(parent.display()))?;
    let staging = work.path().join("bundle");
    fs::create_dir(&staging).map_err(io(staging.display()))?;

    // What goes in, from where.
    let mut planned = Vec::new();
    let split_at = options.chunk_size;
    for artifact in &report.artifacts {
        let (name, size) = (&artifact.path, artifact.size);
        planned.push(Planned {
            path: format!("artifacts/{name}"),
            source: image.join(name),
            split: split_at.is_some_and(|limit| size > limit),
        });
    }
    let ostree_dir = image.join("ostree");
    if ostree_dir.is_dir() {
        for file in files_below(&ostree_dir)? {
            planned.push(Planned {
                path: format!("artifacts/ostree/{file}"),
                source: ostree_dir.join(&file),
                split: false,
            });
        }
    }
    for name in [
        paths::RECIPE,
        paths::LOCK,
        paths::REPORT,
        paths::CYCLONEDX,
        paths::SPDX,
    ] {
        planned.push(Planned {
            path: name.to_owned(),
            source: image.join(name),
            split: false,
        });
    }
    if let Some(store) = options.sources {
        for package in &lock.packages {
            let basename = package
                .filename
                .rsplit('/')
                .next()
                .unwrap_or(&package.filename);
            let source = store.path(&package.sha256);
            if !source.is_file() {
                return Err(invalid(format!(
                    "--with-sources: {} ({}) is not in the store {}; run `airlock fetch`",
                    package.name,
                    package.sha256,
                    store.root().display()
                )));
            }
            planned.push(Planned {
                path: format!("sources/debs/{basename}"),
                source,
                split: false,
            });
        }
        for model in &lock.models {
            let source = store.path(&model.sha256);
            if !source.is_file() {
                return Err(invalid(format!(
                    "--with-sources: model {} is not in the store; run `airlock fetch`",
                    model.name
                )));
            }
            planned.push(Planned {
                path: format!("sources/models/{}", model.name),
                source,
                split: split_at.is_some_and(|limit| model.size > limit),
            });
        }
    }

    // The previous release: a static delta and the change report.
    let mut previous = None;
    if let Some(old) = options.previous {
        progress("comparing with the previous release");
        let old_bytes = fs::read(old.join(MANIFEST)).map_err(io(old.join(MANIFEST).display()))?;
        let old_manifest =
            Manifest::parse(&old_bytes).map_err(|e| invalid(format!("{}: {e}", old.display())))?;
        if old_manifest.name != report.name {
            return Err(invalid(format!(
                "--previous is a bundle of {}, not of {}",
                old_manifest.name, report.name
            )));
        }
        let new_version = report.version;
        if old_manifest.version >= new_version {
            return Err(invalid(format!(
                "--previous has version {}, not older than this image's {new_version}",
                old_manifest.version
            )));
        }
        let change = crate::diff::diff(
            &crate::diff::Release::open(old)?,
            &crate::diff::Release::open(image)?,
        )?;
        let mut json = serde_json::to_vec_pretty(&change).expect("a diff serializes");
        json.push(b'\n');
        fs::write(work.path().join("changes.json"), json).map_err(io("changes.json"))?;
        fs::write(work.path().join("changes.txt"), change.to_text()).map_err(io("changes.txt"))?;
        for name in ["changes.json", "changes.txt"] {
            planned.push(Planned {
                path: name.to_owned(),
                source: work.path().join(name),
                split: false,
            });
        }
        let old_commit = old_manifest.ostree.as_ref().map(|o| o.commit.clone());
        if let (Some(from), Some(to)) = (&old_commit, &report.ostree_commit) {
            progress("writing the ostree static delta");
            let delta = work.path().join("delta");
            static_delta(
                &old.join("artifacts/ostree"),
                &ostree_dir,
                from,
                to,
                &delta,
                work.path(),
            )?;
            planned.push(Planned {
                path: format!("delta/{from}-{to}.delta"),
                source: delta,
                split: false,
            });
        }
        previous = Some(Previous {
            version: old_manifest.version,
            manifest: hex::encode(sha2::Sha256::digest(&old_bytes)),
            ostree_commit: old_commit,
        });
    }

    // Copy, then hash in parallel.
    progress("copying files into the bundle");
    let chunk_of = |plan: &Planned| {
        if plan.split {
            split_at.expect("split needs a size")
        } else {
            DEFAULT_CHUNK
        }
    };
    planned
        .par_iter()
        .try_for_each(|plan| -> Result<(), ReleaseError> {
            let target = staging.join(&plan.path);
            if let Some(dir) = target.parent() {
                fs::create_dir_all(dir).map_err(io(dir.display()))?;
            }
            if plan.split {
                let size = fs::metadata(&plan.source)
                    .map_err(io(plan.source.display()))?
                    .len();
                let chunk = chunk_of(plan);
                let mut reader = BufReader::with_capacity(
                    1 << 20,
                    File::open(&plan.source).map_err(io(plan.source.display()))?,
                );
                for index in 0..size.div_ceil(chunk) {
                    let part = staging.join(manifest::chunk_path(&plan.path, index as usize));
                    let mut out = File::create(&part).map_err(io(part.display()))?;
                    let want = chunk.min(size - index * chunk);
                    let copied = std::io::copy(&mut (&mut reader).take(want), &mut out)
                        .map_err(io(part.display()))?;
                    if copied != want {
                        return Err(invalid(format!(
                            "{}: changed while being copied",
                            plan.source.display()
                        )));
                    }
                }
            } else {
                // Name both ends: a full medium is the target's problem.
                fs::copy(&plan.source, &target).map_err(io(format!(
                    "copying {} to {}",
                    plan.source.display(),
                    target.display()
                )))?;
            }
            Ok(())
        })?;

    // Everything but the manifest and the provenance is in place: describe it.
    let mut files: Vec<FileEntry> = planned
        .par_iter()
        .map(|plan| describe(&staging, plan, chunk_of(plan)))
        .collect::<Result<_, _>>()?;

    progress("signing the provenance with the builder key");
    let mut subjects: Vec<Subject> = files
        .iter()
        .filter(|f| paths::is_subject(&f.path))
        .map(|f| Subject {
            name: f.path.clone(),
            sha256: f.sha256.clone(),
        })
        .collect();
    let ostree = match (
        report.ostree_commit.as_deref(),
        report.ostree_branch.as_deref(),
    ) {
        (Some(commit), Some(branch)) => {
            subjects.push(Subject {
                name: format!("ostree:{branch}"),
                sha256: commit.to_owned(),
            });
            Some(Ostree {
                commit: commit.to_owned(),
                branch: branch.to_owned(),
            })
        }
        _ => None,
    };
    let statement = provenance::statement(&report, &lock, &subjects);
    let envelope = provenance::envelope(&statement, options.builder);
    fs::write(staging.join(paths::PROVENANCE), &envelope).map_err(io(paths::PROVENANCE))?;
    let readme = readme(&report, options, &files);
    fs::write(staging.join("README.txt"), readme.as_bytes()).map_err(io("README.txt"))?;
    for path in [paths::PROVENANCE, "README.txt"] {
        files.push(describe(
            &staging,
            &Planned {
                path: path.to_owned(),
                source: PathBuf::new(),
                split: false,
            },
            DEFAULT_CHUNK,
        )?);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let digest_of = |path: &str| {
        files
            .iter()
            .find(|f| f.path == path)
            .map(|f| f.sha256.clone())
            .expect("planned above")
    };
    let verity = report.verity.clone();
    let manifest = Manifest {
        schema: manifest::MANIFEST_SCHEMA,
        name: report.name.clone(),
        version: report.version,
        epoch: report.epoch,
        expires: airlock_verify::time::format(options.expires),
        airlock: report.airlock.clone(),
        inputs: report.inputs.clone(),
        recipe: report.recipe.clone(),
        lock: report.lock.clone(),
        sbom: Sboms {
            cyclonedx: digest_of(paths::CYCLONEDX),
            spdx: digest_of(paths::SPDX),
        },
        provenance: digest_of(paths::PROVENANCE),
        verity,
        cmdline: report.cmdline,
        ostree,
        previous,
        files,
    };
    let bytes = manifest.to_canonical();
    // The manifest must read back as what the verifier will accept.
    Manifest::parse(&bytes).map_err(|e| invalid(format!("internal: {e}")))?;
    fs::write(staging.join(MANIFEST), &bytes).map_err(io(MANIFEST))?;
    match &options.destination {
        Destination::Dir(path) => {
            fs::rename(&staging, path).map_err(io(path.display()))?;
        }
        Destination::Tar(path) => {
            progress("writing the tar");
            let partial = work.path().join("bundle.tar");
            write_tar(&staging, &partial, manifest.epoch)?;
            fs::rename(&partial, path).map_err(io(path.display()))?;
        }
    }
    Ok(Exported {
        path: final_path,
        manifest_sha256: hex::encode(sha2::Sha256::digest(&bytes)),
        manifest,
    })
}

fn describe(staging: &Path, plan: &Planned, chunk: u64) -> Result<FileEntry, ReleaseError> {
    let mut entry = FileEntry {
        path: plan.path.clone(),
        size: 0,
        sha256: String::new(),
        chunk_size: None,
        chunks: Vec::new(),
        split: plan.split,
    };
    let mut whole = sha2::Sha256::new();
    let mut add = |reader: &mut dyn Read, size: u64, what: &Path| -> Result<String, ReleaseError> {
        let mut buffer = vec![0u8; 1 << 20];
        let mut part = sha2::Sha256::new();
        let mut left = size;
        while left > 0 {
            let want = buffer.len().min(left as usize);
            let n = reader
                .read(&mut buffer[..want])
                .map_err(io(what.display()))?;
            if n == 0 {
                return Err(invalid(format!(
                    "{}: shorter than expected",
                    what.display()
                )));
            }
            part.update(&buffer[..n]);
            whole.update(&buffer[..n]);
            left -= n as u64;
        }
        Ok(hex::encode(part.finalize()))
    };
    if plan.split {
        let mut index = 0;
        loop {
            let part = staging.join(manifest::chunk_path(&plan.path, index));
            let Ok(meta) = fs::metadata(&part) else { break };
            let mut file = File::open(&part).map_err(io(part.display()))?;
            entry.chunks.push(add(&mut file, meta.len(), &part)?);
            entry.size += meta.len();
            index += 1;
        }
        entry.chunk_size = Some(chunk);
    } else {
        let path = staging.join(&plan.path);
        let size = fs::metadata(&path).map_err(io(path.display()))?.len();
        let mut file =
            BufReader::with_capacity(1 << 20, File::open(&path).map_err(io(path.display()))?);
        if size > chunk {
            let mut offset = 0;
            while offset < size {
                let want = chunk.min(size - offset);
                entry.chunks.push(add(&mut file, want, &path)?);
                offset += want;
            }
            entry.chunk_size = Some(chunk);
        } else {
            add(&mut file, size, &path)?;
        }
        entry.size = size;
    }
    entry.sha256 = hex::encode(whole.finalize());
    Ok(entry)
}

/// A deterministic tar of `dir`: manifest.json (and its signatures) first,
/// then every file sorted, owned by 0:0, mode 0644 (directories 0755), time
/// `epoch`.
pub fn write_tar(dir: &Path, to: &Path, epoch: u64) -> Result<(), ReleaseError> {
    let file = File::create(to).map_err(io(to.display()))?;
    let mut builder = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, file));
    let mut names = files_below(dir)?;
    names.sort_by_key(|n| (n != MANIFEST, n != SIGNATURES, n.clone()));
    let mut dirs_done = std::collections::BTreeSet::new();
    for name in names {
        let mut parent = String::new();
        for part in name
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, d)| d)
        {
            parent = if parent.is_empty() {
                (*part).to_owned()
            } else {
                format!("{parent}/{part}")
            };
            if dirs_done.insert(parent.clone()) {
                let mut header = header(epoch, 0o755, tar::EntryType::Directory, 0);
                builder
                    .append_data(&mut header, format!("{parent}/"), std::io::empty())
                    .map_err(io(to.display()))?;
            }
        }
        let path = dir.join(&name);
        let size = fs::metadata(&path).map_err(io(path.display()))?.len();
        let mut header = header(epoch, 0o644, tar::EntryType::Regular, size);
        let file = File::open(&path).map_err(io(path.display()))?;
        builder
            .append_data(&mut header, &name, BufReader::with_capacity(1 << 20, file))
            .map_err(io(to.display()))?;
    }
    let mut inner = builder.into_inner().map_err(io(to.display()))?;
    inner.flush().map_err(io(to.display()))?;
    inner.get_ref().sync_all().map_err(io(to.display()))
}

fn header(epoch: u64, mode: u32, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(epoch);
    header.set_size(size);
    header
}

/// Unpacks a tar bundle into `to` (a new, empty directory), accepting only
/// regular files and directories with bundle paths.
pub fn unpack_tar(tar_path: &Path, to: &Path) -> Result<(), ReleaseError> {
    let file = File::open(tar_path).map_err(io(tar_path.display()))?;
    airlock_verify::tarball::unpack(BufReader::with_capacity(1 << 20, file), to)
        .map_err(|e| invalid(format!("{}: {e}", tar_path.display())))
}

/// Adds an approver's signature to a bundle (directory or tar).
pub fn sign(bundle: &Path, key: &Path, password: Option<&[u8]>) -> Result<String, ReleaseError> {
    if bundle.is_dir() {
        let manifest =
            fs::read(bundle.join(MANIFEST)).map_err(io(bundle.join(MANIFEST).display()))?;
        Manifest::parse(&manifest).map_err(|e| invalid(format!("{}: {e}", bundle.display())))?;
        let existing = match fs::read(bundle.join(SIGNATURES)) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(bundle.join(SIGNATURES).display())(e)),
        };
        let (armored, fingerprint) =
            crate::keys::sign_manifest(&manifest, existing.as_deref(), key, password)?;
        // Written beside the bundle, not in it: a signer killed here must
        // not leave a file in the bundle, which the verifier would reject.
        let parent = bundle
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let (work, _stale) = airlock_store::workdir::claim(parent, ".airlock-sign-")
            .map_err(io(parent.display()))?;
        let target = bundle.join(SIGNATURES);
        let write_from = |dir: &Path| -> Result<Result<(), tempfile::PersistError>, ReleaseError> {
            let mut tmp = tempfile::Builder::new()
                .prefix(".manifest.json.asc.")
                .tempfile_in(dir)
                .map_err(io(dir.display()))?;
            tmp.write_all(&armored).map_err(io(dir.display()))?;
            // Readable like every other file of the bundle (a temporary
            // file starts at 0600, which reviewers' tools could not read).
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(fs::Permissions::from_mode(0o644))
                .map_err(io(dir.display()))?;
            tmp.as_file().sync_all().map_err(io(dir.display()))?;
            Ok(tmp.persist(&target).map(drop))
        };
        match write_from(work.path())? {
            Ok(()) => {}
            // The bundle is a mount point of its own (the medium itself):
            // write beside the signature file instead.
            Err(e) if e.error.kind() == std::io::ErrorKind::CrossesDevices => {
                write_from(bundle)?.map_err(|e| io(target.display())(e.error))?;
            }
            Err(e) => return Err(io(target.display())(e.error)),
        }
        return Ok(fingerprint);
    }
    // A tar: rewrite it with the new signatures second.
    let parent = bundle
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (work, _stale) =
        airlock_store::workdir::claim(parent, ".airlock-sign-").map_err(io(parent.display()))?;
    let unpacked = work.path().join("bundle");
    fs::create_dir(&unpacked).map_err(io(unpacked.display()))?;
    unpack_tar(bundle, &unpacked)?;
    let fingerprint = sign(&unpacked, key, password)?;
    let epoch = Manifest::parse(&fs::read(unpacked.join(MANIFEST)).map_err(io(MANIFEST))?)
        .map_err(|e| invalid(e.to_string()))?
        .epoch;
    let partial = work.path().join("bundle.tar");
    write_tar(&unpacked, &partial, epoch)?;
    fs::rename(&partial, bundle).map_err(io(bundle.display()))?;
    Ok(fingerprint)
}

/// `ostree static-delta generate` from `from` in `old_repo` to `to` in
/// `new_repo`, written to `out` as one file.
fn static_delta(
    old_repo: &Path,
    new_repo: &Path,
    from: &str,
    to: &str,
    out: &Path,
    work: &Path,
) -> Result<(), ReleaseError> {
    let repo = work.join("delta-repo");
    let run = |args: &[&std::ffi::OsStr]| -> Result<(), ReleaseError> {
        let output = std::process::Command::new("ostree")
            .args(args)
            .output()
            .map_err(|e| ReleaseError::Tool {
                tool: "ostree".to_owned(),
                message: format!("cannot run it: {e} (install ostree)"),
            })?;
        if !output.status.success() {
            return Err(ReleaseError::Tool {
                tool: format!(
                    "ostree {}",
                    args.first()
                        .map(|a| a.to_string_lossy())
                        .unwrap_or_default()
                ),
                message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(())
    };
    let repo_arg = format!("--repo={}", repo.display());
    let os = |s: &str| std::ffi::OsString::from(s);
    run(&[&os("init"), &os(&repo_arg), &os("--mode=archive")])?;
    run(&[
        &os("pull-local"),
        &os(&repo_arg),
        old_repo.as_os_str(),
        &os(from),
    ])?;
    run(&[
        &os("pull-local"),
        &os(&repo_arg),
        new_repo.as_os_str(),
        &os(to),
    ])?;
    run(&[
        &os("static-delta"),
        &os("generate"),
        &os(&repo_arg),
        &os(&format!("--from={from}")),
        &os(&format!("--to={to}")),
        &os("--inline"),
        &os(&format!("--filename={}", out.display())),
    ])
}

fn readme(report: &Report, options: &ExportOptions<'_>, files: &[FileEntry]) -> String {
    let (name, version) = (&report.name, report.version);
    let split: Vec<&FileEntry> = files.iter().filter(|f| f.split).collect();
    let mut text = format!(
        "airlock transfer bundle: {name} version {version}
==============================================

This directory is a release of the OS image \"{name}\", version {version},
built by airlock {airlock} from a recipe and a lock. It expires
{expires}; after that, hosts refuse it.

Verify it on the receiving host, offline, before anything else:

    airlock verify . --trust /etc/airlock/trust --state /var/lib/airlock --policy /etc/airlock/policy.toml

--trust is the host's own directory of pinned keys: trust.toml with
`threshold = K`, release/*.asc (the approvers' OpenPGP certificates) and
builder/*.pub (the builders' public keys). Never take keys from this bundle.
The verifier checks, in order: K signatures by distinct pinned keys over
manifest.json; that the version is newer than the one the host recorded and
that the bundle has not expired; every byte of every file (and that there is
no file the manifest does not list); the provenance; the SBOMs against the
image; the policy.

What is here
------------
manifest.json          every file with its size and sha256 (canonical JSON)
manifest.json.asc      the approvers' detached OpenPGP signatures over it
artifacts/             the image: root.erofs + root.verity (dm-verity), the
                       kernel and initrd, rootfs.tar.zst, the ostree repository
provenance.dsse.json   SLSA provenance v1 in a DSSE envelope, by the builder key
sbom.cdx.json          CycloneDX 1.6 SBOM
sbom.spdx.json         SPDX 2.3 SBOM
recipe.json, lock.toml the recipe and the lock the image was built from
build-report.json      the build's own report
",
        airlock = report.airlock,
        expires = airlock_verify::time::format(options.expires),
    );
    if options.sources.is_some() {
        text.push_str(
            "sources/               the exact .debs and models, so the image can be rebuilt\n                       and compared byte for byte without a network\n",
        );
    }
    if options.previous.is_some() {
        text.push_str(
            "changes.txt, .json    what changed since the previous release (read this first)\ndelta/                 an ostree static delta from the previous release\n                       (ostree static-delta apply-offline)\n",
        );
    }
    if !split.is_empty() {
        text.push_str("\nSplit files\n-----------\nLarge files are split for FAT32 media; airlock verifies the parts as they\nare. To join one by hand: cat FILE.000 FILE.001 ... > FILE\n");
        for file in split {
            text.push_str(&format!(
                "    {} ({} parts)\n",
                file.path,
                file.chunks.len()
            ));
        }
    }
    text.push_str(
        "\nBy hand, without airlock: gpg --verify manifest.json.asc manifest.json checks\nthe signatures; sha256sum checks each file against the manifest.\n",
    );
    text
}
