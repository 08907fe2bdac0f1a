//! The build report, `build-report.json` in every image folder: written by
//! `airlock build`, read by `airlock export` (which checks the folder
//! against it and carries it into the bundle) and `airlock boot`.
//!
//! Versioned by `schema`; reading refuses unknown fields, and every field
//! must be present (`null` where the image has no such thing), so a report
//! from another version fails by name instead of reading as zeros.

use serde::{Deserialize, Deserializer, Serialize};

/// The report's format version.
pub const SCHEMA: u32 = 1;
/// Its file name in the image folder.
pub const FILE: &str = crate::names::image::REPORT;

/// The build report. Deterministic: no times, no paths of the build host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Format version ([`SCHEMA`]).
    pub schema: u32,
    /// Image name.
    pub name: String,
    /// Release number.
    pub version: u64,
    /// SOURCE_DATE_EPOCH.
    pub epoch: u64,
    /// The inputs digest (the folder name's suffix is its start).
    pub inputs: String,
    /// The recipe's canonical digest.
    pub recipe: String,
    /// The lock's digest.
    pub lock: String,
    /// airlock's version.
    pub airlock: String,
    /// How many packages.
    pub packages: u64,
    /// Artifacts, by path.
    pub artifacts: Vec<Artifact>,
    /// dm-verity, when the EROFS root was built.
    #[serde(deserialize_with = "present")]
    pub verity: Option<Verity>,
    /// The kernel's version, when the image has one.
    #[serde(deserialize_with = "present")]
    pub kernel: Option<String>,
    /// The kernel command line to boot the image with.
    #[serde(deserialize_with = "present")]
    pub cmdline: Option<String>,
    /// The ostree commit, when built.
    #[serde(deserialize_with = "present")]
    pub ostree_commit: Option<String>,
    /// The ostree branch.
    #[serde(deserialize_with = "present")]
    pub ostree_branch: Option<String>,
    /// What native configuration could not do or did not understand.
    pub notes: Vec<String>,
    /// Every setuid and setgid file, file capability and device node, by
    /// path: what a reviewer reads first.
    pub privileges: Vec<Privileged>,
    /// The per-host state the image makes when it first boots (never
    /// baked into it), by name.
    pub first_boot: Vec<FirstBoot>,
    /// The disk image, when the recipe asks for one (absent otherwise, so
    /// reports from before the disk format read and write as they were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<Disk>,
}

/// The GPT disk image and the unified kernel image on its EFI system
/// partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    /// The disk image (raw; its empty partitions are holes).
    pub image: Artifact,
    /// The unified kernel image, unsigned, as the disk holds it.
    pub uki: Artifact,
    /// systemd-boot, unsigned, as the disk holds it.
    pub boot_loader: Artifact,
    /// The kernel command line inside the UKI: the only one the kernel
    /// gets when the disk boots.
    pub cmdline: String,
    /// The disk's GUID.
    pub guid: String,
    /// Its partitions, in table order.
    pub partitions: Vec<Partition>,
}

/// One partition of the disk image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// Its GPT name.
    pub label: String,
    /// Its type GUID (Discoverable Partitions Specification).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its own GUID.
    pub guid: String,
    /// Where it starts, in bytes.
    pub offset: u64,
    /// Its size in bytes.
    pub size: u64,
}

/// One thing the image makes at first boot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirstBoot {
    /// Its name, as the recipe's `[services] first_boot` turns it off.
    pub name: String,
    /// The unit that makes it.
    pub unit: String,
    /// The units it runs before.
    pub before: Vec<String>,
    /// What it makes, and where.
    pub makes: String,
}

/// An `Option` field that must be in the text, as a value or `null`
/// (serde would otherwise read a missing one as `None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

/// One artifact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// Path relative to the image folder.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256.
    pub sha256: String,
}

/// The dm-verity parameters of the root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verity {
    /// Root hash.
    pub root_hash: String,
    /// Salt.
    pub salt: String,
    /// Data blocks (4096 bytes each).
    pub data_blocks: u64,
    /// Data and hash block size.
    pub block_size: u32,
    /// Hash algorithm.
    pub algorithm: String,
}

/// One privileged path of the image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Privileged {
    /// The absolute path.
    pub path: String,
    /// What makes it privileged, sorted: `setuid`, `setgid`,
    /// `capabilities`, `device`.
    pub kinds: Vec<String>,
    /// Its mode, in octal (`4755`).
    pub mode: String,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Its file capabilities in setcap's text form (`cap_net_raw=ep`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<String>,
    /// A device node's type and numbers (`c 1,1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The packages that shipped it (`airlock` for the recipe's own files).
    pub packages: Vec<String>,
}

impl Privileged {
    /// One line for people: `/usr/bin/ping: capabilities cap_net_raw=ep
    /// (0755 0:0, iputils-ping)`.
    pub fn describe(&self) -> String {
        let mut what = self.kinds.join("+");
        if let Some(caps) = &self.capabilities {
            what.push_str(&format!(" {caps}"));
        }
        if let Some(device) = &self.device {
            what.push_str(&format!(" {device}"));
        }
        format!(
            "{}: {what} ({} {}:{}, {})",
            self.path,
            self.mode,
            self.uid,
            self.gid,
            self.packages.join(", ")
        )
    }
}

/// Why a report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Not a report of this format: bad JSON, a field missing, unknown or
    /// of the wrong type.
    #[error("{0}")]
    Malformed(String),
    /// A report of another format version.
    #[error("schema {found}, but this airlock reads schema {SCHEMA}")]
    Schema {
        /// The version found.
        found: u32,
    },
}

impl Report {
    /// Reads a report.
    pub fn parse(bytes: &[u8]) -> Result<Report, ReportError> {
        let report: Report =
            serde_json::from_slice(bytes).map_err(|e| ReportError::Malformed(e.to_string()))?;
        if report.schema != SCHEMA {
            return Err(ReportError::Schema {
                found: report.schema,
            });
        }
        Ok(report)
    }

    /// The report's bytes: pretty JSON in field order, and a newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a report serializes");
        text.push('\n');
        text
    }

    /// The artifact at `path`, if the image has it.
    pub fn artifact(&self, path: &str) -> Option<&Artifact> {
        self.artifacts.iter().find(|a| a.path == path)
    }

    /// The file at `path` that a bundle carries: an artifact, or one of
    /// the disk image's parts (the unsigned UKI and systemd-boot).
    pub fn bundled(&self, path: &str) -> Option<&Artifact> {
        self.artifact(path).or_else(|| {
            let disk = self.disk.as_ref()?;
            [&disk.uki, &disk.boot_loader]
                .into_iter()
                .find(|a| a.path == path)
        })
    }
}

/// `.airlock-build.json` in an image folder: who built it. Not an artifact
/// and not part of the report, so the image's bytes depend on the inputs
/// alone; the cache key makes a changed builder build again, and export
/// carries the binary's digest into the provenance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Built {
    /// Format version ([`BUILT_SCHEMA`]).
    pub schema: u32,
    /// sha256 over the inputs digest and the builder's digest.
    pub cache_key: String,
    /// sha256 of the airlock binary that built the folder.
    pub airlock_sha256: String,
}

/// [`Built`]'s format version.
pub const BUILT_SCHEMA: u32 = 1;

impl Built {
    /// Reads one; `None` when it is not a [`Built`] of this version.
    pub fn parse(bytes: &[u8]) -> Option<Built> {
        serde_json::from_slice::<Built>(bytes)
            .ok()
            .filter(|b| b.schema == BUILT_SCHEMA)
    }

    /// Its bytes: pretty JSON and a newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("serializes");
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            schema: SCHEMA,
            name: "node".into(),
            version: 3,
            epoch: 1_700_000_000,
            inputs: "a".repeat(64),
            recipe: "b".repeat(64),
            lock: "c".repeat(64),
            airlock: "0.1.0".into(),
            packages: 2,
            artifacts: vec![Artifact {
                path: "rootfs.tar.zst".into(),
                size: 10,
                sha256: "d".repeat(64),
            }],
            verity: None,
            kernel: Some("6.1.0-test".into()),
            cmdline: None,
            ostree_commit: None,
            ostree_branch: None,
            notes: vec![],
            privileges: vec![Privileged {
                path: "/usr/bin/ping".into(),
                kinds: vec!["capabilities".into()],
                mode: "0755".into(),
                uid: 0,
                gid: 0,
                capabilities: Some("cap_net_raw=ep".into()),
                device: None,
                packages: vec!["iputils-ping".into()],
            }],
            first_boot: vec![FirstBoot {
                name: "ssh-host-keys".into(),
                unit: "airlock-ssh-host-keys.service".into(),
                before: vec!["ssh.service".into()],
                makes: "keys".into(),
            }],
            disk: Some(Disk {
                image: Artifact {
                    path: "disk.raw".into(),
                    size: 1 << 30,
                    sha256: "cd".repeat(32),
                },
                uki: Artifact {
                    path: "uki.efi".into(),
                    size: 1 << 24,
                    sha256: "ef".repeat(32),
                },
                boot_loader: Artifact {
                    path: "systemd-bootx64.efi".into(),
                    size: 1 << 17,
                    sha256: "ab".repeat(32),
                },
                cmdline: "ro airlock.root=PARTUUID=x".into(),
                guid: "0".repeat(36),
                partitions: vec![Partition {
                    label: "esp".into(),
                    kind: "c12a7328-f81f-11d2-ba4b-00a0c93ec93b".into(),
                    guid: "1".repeat(36),
                    offset: 1 << 20,
                    size: 1 << 28,
                }],
            }),
        }
    }

    #[test]
    fn a_report_reads_back_as_written() {
        let text = report().to_json();
        assert_eq!(Report::parse(text.as_bytes()).unwrap(), report());
        assert!(text.ends_with("}\n"));
        assert!(
            text.contains("\"verity\": null"),
            "absent things are written as null"
        );
    }

    #[test]
    fn missing_unknown_and_foreign_fields_are_refused() {
        let text = report().to_json();
        let without = text.replace("  \"cmdline\": null,\n", "");
        assert_ne!(without, text);
        let error = Report::parse(without.as_bytes()).unwrap_err().to_string();
        assert!(error.contains("missing field `cmdline`"), "{error}");
        let extra = text.replacen("{\n", "{\n  \"surprise\": 1,\n", 1);
        let error = Report::parse(extra.as_bytes()).unwrap_err().to_string();
        assert!(error.contains("unknown field `surprise`"), "{error}");
        let newer = text.replace("\"schema\": 1,", "\"schema\": 2,");
        assert!(matches!(
            Report::parse(newer.as_bytes()),
            Err(ReportError::Schema { found: 2 })
        ));
        let typo = text.replace("\"version\": 3", "\"version\": \"3\"");
        assert!(Report::parse(typo.as_bytes()).is_err());
    }
}
