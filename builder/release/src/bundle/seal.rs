//! Sealing a bundle whose files are in place: the provenance signed by the
//! builder key over the artifacts, the README, and the canonical manifest
//! listing every file (which the approvers then sign).

use std::fs;
use std::path::{Path, PathBuf};

use airlock_format::report::Report;
use airlock_recipe::Lock;
use airlock_verify::manifest::{
    self, DEFAULT_CHUNK, FileEntry, MANIFEST, Manifest, Ostree, Previous, Sboms, paths,
};

use super::copy::describe;
use super::plan::Planned;
use super::{ExportOptions, invalid};
use crate::provenance::{self, Subject};
use crate::{ReleaseError, io};

/// Writes provenance.dsse.json, README.txt and manifest.json into
/// `staging`, whose other files `files` describes; returns the manifest and
/// its bytes.
pub(super) fn seal(
    staging: &Path,
    report: &Report,
    lock: &Lock,
    options: &ExportOptions<'_>,
    mut files: Vec<FileEntry>,
    previous: Option<Previous>,
) -> Result<(Manifest, Vec<u8>), ReleaseError> {
    let (subjects, ostree) = subjects(report, &files);
    let built = fs::read(options.image.join(airlock_format::names::image::BUILT))
        .ok()
        .and_then(|bytes| airlock_format::report::Built::parse(&bytes));
    // The SBOMs are what the build wrote about its output: byproducts.
    let byproducts: Vec<provenance::Subject> = [paths::CYCLONEDX, paths::SPDX, paths::SPDX3]
        .into_iter()
        .filter_map(|path| {
            let file = files.iter().find(|f| f.path == path)?;
            Some(provenance::Subject {
                name: path.to_owned(),
                sha256: file.sha256.clone(),
            })
        })
        .collect();
    let statement = provenance::statement(
        report,
        lock,
        &subjects,
        &byproducts,
        built.as_ref().map(|b| b.airlock_sha256.as_str()),
    );
    let envelope = provenance::envelope(&statement, options.builder);
    fs::write(staging.join(paths::PROVENANCE), &envelope).map_err(io(paths::PROVENANCE))?;
    let readme = readme(report, options, &files);
    fs::write(staging.join("README.txt"), readme.as_bytes()).map_err(io("README.txt"))?;
    for path in [paths::PROVENANCE, "README.txt"] {
        files.push(describe(
            staging,
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
            spdx3: files
                .iter()
                .find(|f| f.path == paths::SPDX3)
                .map(|f| f.sha256.clone()),
        },
        provenance: digest_of(paths::PROVENANCE),
        verity: report.verity.clone(),
        cmdline: report.cmdline.clone(),
        ostree,
        previous,
        files,
    };
    let bytes = manifest.to_canonical();
    // The manifest must read back as what the verifier will accept.
    Manifest::parse(&bytes).map_err(|e| invalid(format!("internal: {e}")))?;
    fs::write(staging.join(MANIFEST), &bytes).map_err(io(MANIFEST))?;
    Ok((manifest, bytes))
}

/// The provenance's subjects: every artifact (not the ostree repository's
/// objects) and the ostree commit, which the manifest also records.
fn subjects(report: &Report, files: &[FileEntry]) -> (Vec<Subject>, Option<Ostree>) {
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
    (subjects, ostree)
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
sbom.spdx3.json        SPDX 3.0 SBOM (JSON-LD, with the AI profile for models)
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
