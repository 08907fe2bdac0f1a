//! What goes into a bundle, from where: the image's artifacts (and its
//! ostree repository), the recipe, lock, report and SBOMs, with
//! `--with-sources` the exact .debs and models, and with `--previous` the
//! change report and an ostree static delta.

use std::fs;
use std::path::{Path, PathBuf};

use airlock_format::report::Report;
use airlock_recipe::Lock;
use airlock_store::Store;
use airlock_verify::manifest::{MANIFEST, Manifest, Previous, paths};
use sha2::Digest;

use super::{files_below, invalid};
use crate::{ReleaseError, io};

/// A file of the bundle to be: where its bytes come from.
pub(super) struct Planned {
    pub path: String,
    pub source: PathBuf,
    /// Split into chunk files.
    pub split: bool,
}

impl Planned {
    fn whole(path: impl Into<String>, source: PathBuf) -> Planned {
        Planned {
            path: path.into(),
            source,
            split: false,
        }
    }
}

/// The image folder's files: artifacts (split when larger than
/// `split_at`), the ostree repository, and the documents beside them.
pub(super) fn image(
    report: &Report,
    image: &Path,
    split_at: Option<u64>,
) -> Result<Vec<Planned>, ReleaseError> {
    let mut planned = Vec::new();
    for artifact in &report.artifacts {
        planned.push(Planned {
            path: paths::artifact(&artifact.path),
            source: image.join(&artifact.path),
            split: split_at.is_some_and(|limit| artifact.size > limit),
        });
    }
    planned.extend(disk_parts(report, image, split_at)?);
    let ostree_dir = image.join(airlock_format::names::image::OSTREE);
    if ostree_dir.is_dir() {
        for file in files_below(&ostree_dir)? {
            planned.push(Planned::whole(
                format!("{}/{file}", paths::OSTREE_REPO),
                ostree_dir.join(&file),
            ));
        }
    }
    for name in [
        paths::RECIPE,
        paths::LOCK,
        paths::REPORT,
        paths::CYCLONEDX,
        paths::SPDX,
    ] {
        planned.push(Planned::whole(name, image.join(name)));
    }
    // Images built before the SPDX 3 SBOM have none.
    if image.join(paths::SPDX3).is_file() {
        planned.push(Planned::whole(paths::SPDX3, image.join(paths::SPDX3)));
    }
    Ok(planned)
}

/// The disk image's parts besides its root and hash tree (never the disk
/// image itself, which is mostly empty space): the unsigned UKI and
/// systemd-boot, and when `airlock sign-boot` has run, the signed pair and
/// the db certificate, each signed file checked to be its unsigned self
/// plus a signature before it is bundled.
fn disk_parts(
    report: &Report,
    image: &Path,
    split_at: Option<u64>,
) -> Result<Vec<Planned>, ReleaseError> {
    use airlock_format::names::{bundle as bundle_names, image as names};
    let Some(disk) = &report.disk else {
        return Ok(Vec::new());
    };
    let mut planned = Vec::new();
    for part in [&disk.uki, &disk.boot_loader] {
        let source = image.join(&part.path);
        let sha256 = super::hash_file(&source)?;
        if sha256 != part.sha256 {
            return Err(invalid(format!(
                "{} is not the file the build report describes (sha256 {sha256}, the report says {})",
                source.display(),
                part.sha256
            )));
        }
        planned.push(Planned {
            path: paths::artifact(&part.path),
            source,
            split: split_at.is_some_and(|limit| part.size > limit),
        });
    }
    let signed_dir = image.join(names::SECURE_BOOT);
    if !signed_dir.is_dir() {
        return Ok(planned);
    }
    for part in [&disk.uki, &disk.boot_loader] {
        let signed = signed_dir.join(&part.path);
        let unsigned = image.join(&part.path);
        let open = |path: &Path| {
            let file = fs::File::open(path).map_err(io(path.display()))?;
            let len = file.metadata().map_err(io(path.display()))?.len();
            Ok::<_, ReleaseError>((file, len))
        };
        let ((signed_file, signed_len), (unsigned_file, unsigned_len)) =
            (open(&signed)?, open(&unsigned)?);
        airlock_disk::authenticode::check_signed(
            std::io::BufReader::new(signed_file),
            signed_len,
            std::io::BufReader::new(unsigned_file),
            unsigned_len,
        )
        .map_err(|e| {
            invalid(format!(
                "{} is not {} with a Secure Boot signature added: {e}",
                signed.display(),
                unsigned.display()
            ))
        })?;
        planned.push(Planned {
            path: format!("{}/{}", bundle_names::SECURE_BOOT, part.path),
            source: signed,
            split: split_at.is_some_and(|limit| signed_len > limit),
        });
    }
    planned.push(Planned::whole(
        format!("{}/{}", bundle_names::SECURE_BOOT, bundle_names::DB_CERT),
        signed_dir.join(names::DB_CERT),
    ));
    Ok(planned)
}

/// `--with-sources`: the exact .debs, models and components from the store, and the
/// image folder's record of the files its recipe's trees added.
pub(super) fn sources(
    image: &Path,
    lock: &Lock,
    store: &Store,
    split_at: Option<u64>,
) -> Result<Vec<Planned>, ReleaseError> {
    let mut planned = Vec::new();
    let recorded = image.join("sources");
    if recorded.is_dir() {
        for file in files_below(&recorded)? {
            planned.push(Planned::whole(
                format!("sources/{file}"),
                recorded.join(&file),
            ));
        }
    }
    for package in &lock.packages {
        let source = store.path(&package.sha256);
        if !source.is_file() {
            return Err(invalid(format!(
                "--with-sources: {} ({}) is not in the store {}; run `airlock fetch`",
                package.name,
                package.sha256,
                store.root().display()
            )));
        }
        planned.push(Planned::whole(
            format!("sources/debs/{}", package.file_name()),
            source,
        ));
    }
    let pinned = (lock.models.iter().map(|m| ("model", "models", m))).chain(
        lock.components
            .iter()
            .map(|c| ("component", "components", c)),
    );
    for (kind, folder, file) in pinned {
        let source = store.path(&file.sha256);
        if !source.is_file() {
            return Err(invalid(format!(
                "--with-sources: {kind} {} is not in the store; run `airlock fetch`",
                file.name
            )));
        }
        planned.push(Planned {
            path: format!("sources/{folder}/{}", file.name),
            source,
            split: split_at.is_some_and(|limit| file.size > limit),
        });
    }
    Ok(planned)
}

/// `--previous OLD`: the change report (written into `work`) and, when
/// both have ostree commits, a static delta; and the manifest's record of
/// the previous release.
pub(super) fn previous(
    old: &Path,
    image: &Path,
    report: &Report,
    work: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(Previous, Vec<Planned>), ReleaseError> {
    let old_bytes = fs::read(old.join(MANIFEST)).map_err(io(old.join(MANIFEST).display()))?;
    let old_manifest =
        Manifest::parse(&old_bytes).map_err(|e| invalid(format!("{}: {e}", old.display())))?;
    if old_manifest.name != report.name {
        return Err(invalid(format!(
            "--previous is a bundle of {}, not of {}",
            old_manifest.name, report.name
        )));
    }
    if old_manifest.version >= report.version {
        return Err(invalid(format!(
            "--previous has version {}, not older than this image's {}",
            old_manifest.version, report.version
        )));
    }
    let change = crate::diff::diff(
        &crate::diff::Release::open(old)?,
        &crate::diff::Release::open(image)?,
    )?;
    let mut json = serde_json::to_vec_pretty(&change).expect("a diff serializes");
    json.push(b'\n');
    fs::write(work.join("changes.json"), json).map_err(io("changes.json"))?;
    fs::write(work.join("changes.txt"), change.to_text()).map_err(io("changes.txt"))?;
    let mut planned: Vec<Planned> = ["changes.json", "changes.txt"]
        .into_iter()
        .map(|name| Planned::whole(name, work.join(name)))
        .collect();
    let old_commit = old_manifest.ostree.as_ref().map(|o| o.commit.clone());
    if let (Some(from), Some(to)) = (&old_commit, &report.ostree_commit) {
        progress("writing the ostree static delta");
        let delta = work.join("delta");
        static_delta(
            &old.join(paths::OSTREE_REPO),
            &image.join(airlock_format::names::image::OSTREE),
            from,
            to,
            &delta,
            work,
        )?;
        planned.push(Planned::whole(format!("delta/{from}-{to}.delta"), delta));
    }
    let previous = Previous {
        version: old_manifest.version,
        manifest: hex::encode(sha2::Sha256::digest(&old_bytes)),
        ostree_commit: old_commit,
    };
    Ok((previous, planned))
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
