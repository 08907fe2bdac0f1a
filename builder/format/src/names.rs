//! The names airlock's formats fix: files in an image folder and in a
//! bundle, the kernel command-line keys the initrd reads, and the domain
//! prefixes of airlock's digests. Writers and readers take them from here,
//! so a rename cannot leave one side behind.

/// Files of an image folder (what `airlock build` writes).
pub mod image {
    /// The build report.
    pub const REPORT: &str = "build-report.json";
    /// Who built the folder: its cache key and the airlock binary's
    /// sha256 (not an artifact, never exported as one).
    pub const BUILT: &str = ".airlock-build.json";
    /// The root file system as a zstd tar.
    pub const ROOTFS_TAR: &str = "rootfs.tar.zst";
    /// The EROFS root.
    pub const EROFS: &str = "root.erofs";
    /// Its dm-verity hash tree.
    pub const VERITY: &str = "root.verity";
    /// The kernel.
    pub const KERNEL: &str = "vmlinuz";
    /// The initrd.
    pub const INITRD: &str = "initrd.img";
    /// The GPT disk image that boots through UEFI.
    pub const DISK: &str = "disk.raw";
    /// The unified kernel image on its EFI system partition, unsigned.
    pub const UKI: &str = "uki.efi";
    /// systemd-boot as the disk's EFI system partition holds it, unsigned.
    pub const BOOT_LOADER: &str = "systemd-bootx64.efi";
    /// The folder `airlock sign-boot` writes the signed systemd-boot, UKI
    /// and disk image into.
    pub const SECURE_BOOT: &str = "secure-boot";
    /// The db certificate `airlock sign-boot` signed them for, in it.
    pub const DB_CERT: &str = "db.crt";
    /// What a disk image is assembled from besides the EROFS root and its
    /// hash tree (which are artifacts): what a bundle carries of it.
    pub const DISK_PARTS: [&str; 2] = [UKI, BOOT_LOADER];
    /// The ostree repository (a folder).
    pub const OSTREE: &str = "ostree";
    /// The CycloneDX SBOM.
    pub const CYCLONEDX: &str = "sbom.cdx.json";
    /// The SPDX 2.3 SBOM.
    pub const SPDX: &str = "sbom.spdx.json";
    /// The SPDX 3.0 SBOM (JSON-LD, with the AI profile).
    pub const SPDX3: &str = "sbom.spdx3.json";
    /// The merged recipe, as the JSON its canonical digest is taken over.
    pub const RECIPE: &str = "recipe.json";
    /// The lock, as its digest is taken over.
    pub const LOCK: &str = "lock.toml";
    /// The artifacts a report lists, in the order it lists them (those the
    /// image has).
    pub const ARTIFACTS: [&str; 5] = [ROOTFS_TAR, EROFS, VERITY, KERNEL, INITRD];
    /// What booting an image needs.
    pub const BOOT: [&str; 4] = [KERNEL, INITRD, EROFS, VERITY];
}

/// Files of a transfer bundle.
pub mod bundle {
    /// The manifest.
    pub const MANIFEST: &str = "manifest.json";
    /// The approvers' signatures over it.
    pub const SIGNATURES: &str = "manifest.json.asc";
    /// The DSSE envelope with the SLSA provenance.
    pub const PROVENANCE: &str = "provenance.dsse.json";
    /// The folder the image's artifacts are in.
    pub const ARTIFACTS: &str = "artifacts";
    /// The CycloneDX SBOM.
    pub const CYCLONEDX: &str = super::image::CYCLONEDX;
    /// The SPDX 2.3 SBOM.
    pub const SPDX: &str = super::image::SPDX;
    /// The SPDX 3.0 SBOM.
    pub const SPDX3: &str = super::image::SPDX3;
    /// The merged recipe.
    pub const RECIPE: &str = super::image::RECIPE;
    /// The lock.
    pub const LOCK: &str = super::image::LOCK;
    /// The build report.
    pub const REPORT: &str = super::image::REPORT;
    /// The root file system as a tar.
    pub const ROOTFS_TAR: &str = "artifacts/rootfs.tar.zst";
    /// The ostree repository's folder.
    pub const OSTREE_REPO: &str = "artifacts/ostree";

    /// The folder of the Secure Boot signed systemd-boot and UKI, and the
    /// db certificate they were signed for (`airlock sign-boot`'s output).
    pub const SECURE_BOOT: &str = "artifacts/secure-boot";
    /// The db certificate's name in it.
    pub const DB_CERT: &str = "db.crt";

    /// The bundle path of the image folder's artifact `name`.
    pub fn artifact(name: &str) -> String {
        format!("{ARTIFACTS}/{name}")
    }

    /// Whether bundle path `path` is an artifact the provenance names as a
    /// subject: a file of `artifacts/` outside the ostree repository (whose
    /// commit is the subject instead).
    pub fn is_subject(path: &str) -> bool {
        path.strip_prefix(ARTIFACTS)
            .is_some_and(|rest| rest.starts_with('/'))
            && !path
                .strip_prefix(OSTREE_REPO)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// Kernel command-line keys: the build writes them, the initrd reads them.
pub mod cmdline {
    /// The dm-verity root hash.
    pub const ROOTHASH: &str = "airlock.roothash";
    /// The dm-verity salt.
    pub const SALT: &str = "airlock.salt";
    /// The root's data blocks.
    pub const BLOCKS: &str = "airlock.blocks";
    /// The root device (default `/dev/vda`).
    pub const ROOT: &str = "airlock.root";
    /// The hash tree's device (default `/dev/vdb`).
    pub const HASH: &str = "airlock.hash";
    /// The data disk for /var (default `/dev/vdc`).
    pub const DATA: &str = "airlock.data";
    /// In a value of ROOT or HASH: the partition with this GUID (and the
    /// partition type the key implies).
    pub const PARTUUID: &str = "PARTUUID=";
    /// In a value of DATA: the partition of this type on the root's disk.
    pub const PARTTYPE: &str = "PARTTYPE=";
}

/// The domain prefixes of airlock's digests: each digest is sha256 over
/// the prefix and then the bytes, so one kind can never pass for another.
pub mod domain {
    /// A recipe's canonical digest: over the merged recipe as JSON.
    pub const RECIPE: &[u8] = b"airlock-recipe-v1\n";
    /// An image's inputs digest (its folder name's suffix).
    pub const BUILD_INPUTS: &[u8] = b"airlock-build-inputs-v4\n";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_paths_are_image_names_under_artifacts() {
        assert_eq!(
            bundle::ROOTFS_TAR,
            format!("{}/{}", bundle::ARTIFACTS, image::ROOTFS_TAR)
        );
        for name in image::BOOT {
            assert!(image::ARTIFACTS.contains(&name));
        }
    }

    #[test]
    fn subjects_are_artifacts_outside_the_ostree_repository() {
        assert_eq!(bundle::artifact(image::EROFS), "artifacts/root.erofs");
        assert_eq!(bundle::artifact(image::ROOTFS_TAR), bundle::ROOTFS_TAR);
        assert!(bundle::is_subject("artifacts/root.erofs"));
        assert!(bundle::is_subject("artifacts/root.erofs.000"));
        assert!(!bundle::is_subject("artifacts/ostree/config"));
        assert!(bundle::is_subject("artifacts/ostreeish"));
        assert!(!bundle::is_subject("artifactsx/root.erofs"));
        assert!(!bundle::is_subject(bundle::CYCLONEDX));
    }

    #[test]
    fn digest_domains_change_only_on_purpose() {
        // A domain is part of every digest taken under it: changing the
        // inputs domain changes every image's folder name, EROFS UUID and
        // dm-verity salt, and the recipe domain every lock's recipe digest.
        // Bump the version suffix on purpose, never by a rename.
        assert_eq!(domain::RECIPE, b"airlock-recipe-v1\n");
        assert_eq!(domain::BUILD_INPUTS, b"airlock-build-inputs-v4\n");
    }
}
