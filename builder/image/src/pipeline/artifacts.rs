//! Stage 3 of a build: the artifacts, in parallel. The tar root and the
//! ostree commit are written from the tree itself (airlock-ostree, no root);
//! the EROFS root (then its dm-verity tree, the kernel and the initrd) is
//! written from the tree too when uncompressed (airlock-erofs, no root), or
//! made by mkfs.erofs (lz4hc) from a copy of the tree staged on disk, which
//! needs root for the owners.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use airlock_format::names::image as names;
use airlock_recipe::{ErofsCompression, Format, Recipe, Sha256};
use airlock_store::Store;
use airlock_tree::Tree;

use super::{Verity, derived, io, uuid_bytes, uuid_of};
use crate::BuildError;
use crate::configure::modules::Module;
use crate::emit::{self, initrd};

/// What the stage reads.
pub(super) struct Stage<'a> {
    pub recipe: &'a Recipe,
    pub tree: &'a Tree,
    pub blobs: &'a Store,
    /// The kernels configuration found, with their modules.
    pub kernels: &'a [(String, Vec<Module>)],
    pub inputs: &'a Sha256,
    /// The image folder being written.
    pub out: &'a Path,
    /// The build's scratch folder.
    pub work: &'a Path,
    pub progress: &'a (dyn Fn(&str) + Sync),
}

/// What the stage made, beside the files.
pub(super) struct Emitted {
    pub verity: Option<Verity>,
    /// The kernel's version, when a kernel and initrd were written.
    pub kernel: Option<String>,
    /// The ostree commit and branch.
    pub ostree: Option<(String, String)>,
    /// The disk image, when the recipe asks for one.
    pub disk: Option<airlock_format::report::Disk>,
}

impl Stage<'_> {
    fn wants(&self, format: Format) -> bool {
        self.recipe.output.formats.contains(&format)
    }
}

pub(super) fn emit(stage: &Stage<'_>) -> Result<Emitted, BuildError> {
    if stage.wants(Format::Tar) {
        (stage.progress)("writing rootfs.tar.zst");
    }
    let (tar, staged) = rayon::join(|| tar(stage), || staged(stage));
    tar?;
    staged
}

fn tar(stage: &Stage<'_>) -> Result<(), BuildError> {
    if !stage.wants(Format::Tar) {
        return Ok(());
    }
    let path = stage.out.join(names::ROOTFS_TAR);
    let file = File::create(&path).map_err(io(path.display().to_string()))?;
    crate::tar::write_tar_zst(
        stage.tree,
        stage.blobs,
        stage.recipe.image.epoch,
        stage.recipe.output.zstd_level,
        BufWriter::new(file),
    )
}

/// The formats beside the tar: EROFS (and what boots from it) from a
/// staging tree, and the ostree commit from the tree, in parallel.
fn staged(stage: &Stage<'_>) -> Result<Emitted, BuildError> {
    let (wants_erofs, wants_ostree) = (stage.wants(Format::Erofs), stage.wants(Format::Ostree));
    type Booted = (
        Option<Verity>,
        Option<String>,
        Option<airlock_format::report::Disk>,
    );
    let erofs_job = || -> Result<Booted, BuildError> {
        if !wants_erofs {
            return Ok((None, None, None));
        }
        let verity = match stage.recipe.output.erofs_compression {
            Some(ErofsCompression::None) => native_erofs(stage)?,
            Some(ErofsCompression::Lz4hc) | None => {
                (stage.progress)("staging the tree for mkfs.erofs");
                let staging = stage.work.join("staging");
                fs::create_dir(&staging).map_err(io(staging.display().to_string()))?;
                staging_permissions(&staging)?;
                emit::staging::stage(stage.tree, stage.blobs, &staging)?;
                erofs(stage, &staging)?
            }
        };
        if stage.kernels.is_empty() {
            if stage.wants(Format::Disk) {
                return Err(BuildError::Config {
                    what: "[output] disk".to_owned(),
                    message: "a disk image boots a kernel: set [kernel] package".to_owned(),
                });
            }
            return Ok((Some(verity), None, None));
        }
        let kernel = boot_files(stage)?;
        let disk = stage
            .wants(Format::Disk)
            .then(|| disk(stage, &verity, &kernel))
            .transpose()?;
        Ok((Some(verity), Some(kernel), disk))
    };
    let ostree_job = || wants_ostree.then(|| ostree(stage)).transpose();
    let (erofs_result, ostree_result) = rayon::join(erofs_job, ostree_job);
    let (verity, kernel, disk) = erofs_result?;
    Ok(Emitted {
        verity,
        kernel,
        ostree: ostree_result?,
        disk,
    })
}

/// The unified kernel image and the GPT disk around it.
fn disk(
    stage: &Stage<'_>,
    verity: &Verity,
    kernel: &str,
) -> Result<airlock_format::report::Disk, BuildError> {
    (stage.progress)("writing the unified kernel image and the disk image");
    emit::disk::write(&emit::disk::Parts {
        recipe: stage.recipe,
        tree: stage.tree,
        blobs: stage.blobs,
        out: stage.out,
        kernel,
        cmdline: &super::kernel_cmdline(stage.recipe, verity),
        root_hash: &verity.root_hash,
        inputs: stage.inputs,
    })
}

/// The uncompressed EROFS root written by airlock-erofs from the tree, and
/// its dm-verity hash tree computed from the bytes as they are written
/// (a pipe into the hasher, never a second read of the image).
fn native_erofs(stage: &Stage<'_>) -> Result<Verity, BuildError> {
    (stage.progress)("writing the EROFS root and its dm-verity tree");
    let config = |message: String| BuildError::Config {
        what: "EROFS".to_owned(),
        message,
    };
    let uuid: [u8; 16] = uuid_bytes(&derived(stage.inputs, "erofs-uuid"));
    let plan = airlock_erofs::Plan::new(
        stage.tree,
        airlock_erofs::Options {
            epoch: stage.recipe.image.epoch,
            uuid,
        },
    )
    .map_err(|e| config(e.to_string()))?;
    let size = plan.size();
    let salt = derived(stage.inputs, "verity-salt").to_vec();
    let erofs = stage.out.join(names::EROFS);
    let hash_path = stage.out.join(names::VERITY);
    let (reader, writer) = std::io::pipe().map_err(io("a pipe".to_owned()))?;
    let params = airlock_verity::Params::new(salt.clone(), None);
    let tree = std::thread::scope(|scope| -> Result<airlock_verity::Tree, BuildError> {
        let hasher = scope.spawn(|| -> Result<airlock_verity::Tree, BuildError> {
            let mut data = BufReader::with_capacity(1 << 20, reader);
            let mut hash_file = BufWriter::new(
                File::create(&hash_path).map_err(io(hash_path.display().to_string()))?,
            );
            // A pool of its own: the writer may hold every thread of the
            // global one while it waits on the pipe this thread drains.
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .map_err(|e| config(format!("a thread for dm-verity: {e}")))?;
            let tree = pool
                .install(|| airlock_verity::build(&mut data, size, &params, &mut hash_file))
                .map_err(|e| config(format!("dm-verity: {e}")))?;
            hash_file
                .flush()
                .map_err(io(hash_path.display().to_string()))?;
            Ok(tree)
        });
        // Each error says whether it was only the pipe found closed.
        let broken_pipe = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
        let written = (|| -> Result<(), (BuildError, bool)> {
            let file =
                File::create(&erofs).map_err(|e| (io(erofs.display().to_string())(e), false))?;
            let mut tee = Tee {
                file: BufWriter::with_capacity(1 << 20, file),
                pipe: BufWriter::with_capacity(1 << 20, writer),
            };
            plan.write(&|digest| stage.blobs.path(digest), &mut tee, &|_| {})
                .map_err(|e| {
                    let pipe =
                        matches!(&e, airlock_erofs::ErofsError::Io { source, .. } if broken_pipe(source));
                    (config(e.to_string()), pipe)
                })?;
            tee.flush().map_err(|e| {
                let pipe = broken_pipe(&e);
                (io(erofs.display().to_string())(e), pipe)
            })
        })();
        // The pipe's writer is closed here, so the hasher ends either way.
        // The error to report is the writer's, unless the writer only
        // found the pipe closed because the hasher had failed first.
        let hashed = hasher.join().expect("the verity hasher does not panic");
        match (written, hashed) {
            (Ok(()), hashed) => hashed,
            (Err((_, true)), Err(first)) => Err(first),
            (Err((error, _)), _) => Err(error),
        }
    })?;
    Ok(verity_record(&tree, &salt))
}

/// What the report says of a dm-verity tree.
fn verity_record(tree: &airlock_verity::Tree, salt: &[u8]) -> Verity {
    Verity {
        root_hash: hex::encode(tree.root_hash),
        salt: hex::encode(salt),
        data_blocks: tree.data_blocks,
        block_size: 4096,
        algorithm: "sha256".to_owned(),
    }
}

/// Writes to the image file and into the verity hasher's pipe.
struct Tee<F: Write, P: Write> {
    file: F,
    pipe: P,
}

impl<F: Write, P: Write> Write for Tee<F, P> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write_all(buf)?;
        self.pipe.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        self.pipe.flush()
    }
}

/// The EROFS root and its dm-verity hash tree, with a UUID and salt derived
/// from the inputs.
fn erofs(stage: &Stage<'_>, staging: &Path) -> Result<Verity, BuildError> {
    (stage.progress)("writing the EROFS root and its dm-verity tree");
    let erofs = stage.out.join(names::EROFS);
    emit::erofs(
        staging,
        &erofs,
        stage.recipe.image.epoch,
        &uuid_of(&derived(stage.inputs, "erofs-uuid")),
    )?;
    let salt = derived(stage.inputs, "verity-salt").to_vec();
    let size = fs::metadata(&erofs)
        .map_err(io(erofs.display().to_string()))?
        .len();
    let hash_path = stage.out.join(names::VERITY);
    let mut hash_file =
        BufWriter::new(File::create(&hash_path).map_err(io(hash_path.display().to_string()))?);
    let mut data = BufReader::new(File::open(&erofs).map_err(io(erofs.display().to_string()))?);
    let params = airlock_verity::Params::new(salt.clone(), None);
    let tree = airlock_verity::build(&mut data, size, &params, &mut hash_file).map_err(|e| {
        BuildError::Config {
            what: "dm-verity".to_owned(),
            message: e.to_string(),
        }
    })?;
    hash_file
        .flush()
        .map_err(io(hash_path.display().to_string()))?;
    Ok(verity_record(&tree, &salt))
}

/// The kernel (copied from its package, 0644) and the initrd; returns the
/// kernel's version.
fn boot_files(stage: &Stage<'_>) -> Result<String, BuildError> {
    (stage.progress)("writing the kernel and initrd");
    let found = initrd::find_kernel(stage.tree, stage.kernels)?;
    let modules = &stage.kernels[0].1;
    let source = match stage.tree.get(&found.vmlinuz).map(|n| &n.kind) {
        Some(airlock_tree::Kind::File(airlock_tree::Content::Stored { sha256, .. })) => {
            stage.blobs.path(sha256)
        }
        Some(airlock_tree::Kind::File(airlock_tree::Content::Inline(_))) => {
            return Err(BuildError::Config {
                what: "[kernel]".to_owned(),
                message: "the kernel is not a package's file".to_owned(),
            });
        }
        _ => unreachable!("find_kernel checked it is a file"),
    };
    let target = stage.out.join(names::KERNEL);
    fs::copy(&source, &target).map_err(io(target.display().to_string()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644))
            .map_err(io(target.display().to_string()))?;
    }
    let initrd_path = stage.out.join(names::INITRD);
    let file = File::create(&initrd_path).map_err(io(initrd_path.display().to_string()))?;
    initrd::write_initrd(
        stage.tree,
        stage.blobs,
        &found,
        modules,
        &stage.recipe.kernel.initrd_modules,
        stage.recipe.image.epoch,
        stage.recipe.output.zstd_level,
        BufWriter::new(file),
    )?;
    Ok(found.version)
}

/// The ostree commit on `airlock/NAME`, written from the tree; returns the
/// commit and the branch. Its checksum is what `ostree commit
/// --timestamp=@EPOCH --add-metadata-string=version=V --no-bindings` gives
/// for the tree staged with its owners, modes and xattrs.
fn ostree(stage: &Stage<'_>) -> Result<(String, String), BuildError> {
    (stage.progress)("committing to ostree");
    let recipe = stage.recipe;
    let info = airlock_ostree::CommitInfo {
        branch: format!("airlock/{}", recipe.image.name),
        subject: format!("{} {}", recipe.image.name, recipe.image.version),
        body: String::new(),
        metadata: [("version".to_owned(), recipe.image.version.to_string())].into(),
        timestamp: recipe.image.epoch,
    };
    let written = airlock_ostree::write(
        stage.tree,
        &|digest| stage.blobs.path(digest),
        &stage.out.join(names::OSTREE),
        &info,
        (recipe.output.ostree_deflate_level).unwrap_or(airlock_ostree::DEFAULT_LEVEL),
        &|_| {},
    )
    .map_err(|e| BuildError::Config {
        what: "ostree".to_owned(),
        message: e.to_string(),
    })?;
    Ok((written.commit, info.branch))
}

/// The staging root must be 0755 whatever the umask.
fn staging_permissions(staging: &Path) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(staging, fs::Permissions::from_mode(0o755))
        .map_err(io(staging.display().to_string()))
}
