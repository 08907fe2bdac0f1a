//! The recipe, schema 1. See docs/recipe.md for every key with an example.
//!
//! Every section has defaults so that a file included by another may set only
//! part of it; [`Recipe::validate`] checks what the merged recipe must have.
//! Unknown keys are rejected everywhere.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::values::*;
use airlock_format::Sha256;

mod card;
mod disk;
mod pinned;
pub use card::{ModelCard, Party, PartyKind, SafetyRisk};
pub use disk::Disk;
pub use pinned::{Component, Pinned};

/// A whole recipe after includes were merged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Recipe {
    /// Always 1.
    pub schema: SchemaVersion,
    /// Files merged into this one (consumed while loading; empty afterwards).
    #[serde(skip_serializing)]
    pub include: Vec<toml::Spanned<HostPath>>,
    /// `[image]`.
    pub image: Image,
    /// `[archive]`.
    pub archive: Archive,
    /// `[packages]`.
    pub packages: Packages,
    /// `[kernel]`.
    pub kernel: Kernel,
    /// `[[users]]`.
    pub users: Vec<User>,
    /// `[files]`.
    pub files: Files,
    /// `[services]`.
    pub services: Services,
    /// `[agent]`; absent when the image runs no agent.
    pub agent: Option<Agent>,
    /// `[[models]]`.
    pub models: Vec<Model>,
    /// `[[components]]`: other files pinned by digest (airlock's own
    /// host tool, for one); absent from the recipe's digest when empty, so
    /// recipes from before components keep theirs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
    /// `[firewall]`; absent when airlock writes no ruleset.
    pub firewall: Option<Firewall>,
    /// `[audit]`; absent when airlock configures no auditing.
    pub audit: Option<Audit>,
    /// `[output]`.
    pub output: Output,
    /// `[disk]`: the disk image's layout; absent for the defaults (and
    /// then not in the recipe's digest, so recipes from before the disk
    /// format keep theirs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<Disk>,
    /// `[signing]`.
    pub signing: Signing,
}

/// `[image]`: what the image is called and which release it is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Image {
    /// Image name, used in output paths and for rollback protection.
    pub name: ImageName,
    /// Release number; must increase with every release of this image.
    pub version: u64,
    /// SOURCE_DATE_EPOCH: every timestamp in the image.
    pub epoch: u64,
    /// Free text.
    pub description: String,
    /// /etc/hostname.
    pub hostname: Option<String>,
    /// IANA time zone for /etc/localtime; UTC when unset.
    pub timezone: Option<String>,
    /// Who supplies the image (the SBOMs' supplier of the image and
    /// their author); absent: NOASSERTION.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supplier: Option<Party>,
    /// SPDX license expression of what the recipe itself adds (its files
    /// and configuration); each package and model states its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// The copyright notice of what the recipe itself adds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copyright: Option<String>,
}

/// `[archive]`: where packages come from. The mirror is never in the recipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Archive {
    /// Suites, merged with the highest version of each package winning.
    pub suites: Vec<String>,
    /// Components of every suite.
    pub components: Vec<String>,
    /// Debian architecture.
    pub architecture: String,
    /// OpenPGP keyring that must sign every suite's InRelease.
    pub keyring: Option<HostPath>,
}

impl Default for Archive {
    fn default() -> Self {
        Archive {
            suites: Vec::new(),
            components: Vec::new(),
            architecture: "amd64".to_owned(),
            keyring: None,
        }
    }
}

impl Archive {
    /// The components, `main` when none are given.
    pub fn components_or_default(&self) -> Vec<String> {
        if self.components.is_empty() {
            vec!["main".to_owned()]
        } else {
            self.components.clone()
        }
    }
}

/// The base package set, as debootstrap and mmdebstrap name their variants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaseSet {
    /// Only what `install` names, and its dependencies.
    None,
    /// Every `Essential: yes` package.
    Essential,
    /// Essential, `Priority: required`, and apt (mmdebstrap's minbase).
    #[default]
    Minbase,
    /// minbase plus `Priority: important`.
    Important,
}

/// `[packages]`: what to install.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Packages {
    /// Base set.
    pub base: BaseSet,
    /// Requests in relation syntax.
    pub install: Vec<PackageRequest>,
    /// Packages that must never be installed.
    pub exclude: Vec<PackageName>,
    /// Device nodes a package may ship, by path (Debian policy forbids
    /// device files in packages; every other one fails the build).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_device_nodes: Vec<ImagePath>,
    /// The most one package may unpack to (default 4G), on top of the
    /// bound its own Installed-Size sets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unpacked_size: Option<ByteSize>,
    /// Maintainer-script steps airlock does not do, accepted by the
    /// recipe: package name → the reason the step does not matter for this
    /// image. Every one is a note in the build report; a step of a package
    /// not named here fails the build.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub acknowledge: BTreeMap<PackageName, String>,
}

impl Packages {
    /// The default of `max_unpacked_size`.
    pub const DEFAULT_MAX_UNPACKED: u64 = 4 << 30;

    /// `max_unpacked_size` in bytes.
    pub fn max_unpacked_bytes(&self) -> u64 {
        self.max_unpacked_size
            .as_ref()
            .map_or(Self::DEFAULT_MAX_UNPACKED, ByteSize::bytes)
    }
}

/// `[kernel]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Kernel {
    /// The kernel package (installed like any other).
    pub package: Option<PackageName>,
    /// Kernel command line words, in order.
    pub cmdline: Vec<String>,
    /// Modules the initrd loads.
    pub initrd_modules: Vec<String>,
}

/// `[[users]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Login name.
    pub name: UnixName,
    /// Fixed uid; derived deterministically when absent.
    pub uid: Option<u32>,
    /// Primary group (a group of the user's name when absent).
    pub group: Option<UnixName>,
    /// Supplementary groups.
    #[serde(default)]
    pub groups: Vec<UnixName>,
    /// Home directory.
    pub home: Option<ImagePath>,
    /// Login shell (`/usr/sbin/nologin` when absent).
    pub shell: Option<ImagePath>,
    /// GECOS field.
    #[serde(default)]
    pub comment: String,
    /// System account (uid below 1000).
    #[serde(default = "yes")]
    pub system: bool,
    /// OpenSSH public keys that may log in as this user, one per entry
    /// (`ssh-ed25519 AAAA… comment`): written to HOME/.ssh/authorized_keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorized_keys: Vec<String>,
}

/// The OpenSSH public key types an authorized key may have.
pub const SSH_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Checks one authorized key: `TYPE BASE64 [COMMENT]` on one line, the
/// type one of [`SSH_KEY_TYPES`], and the base64 a key blob of that type
/// (its first field names the type again). Key options (`from="…"`) are
/// not accepted.
pub fn check_authorized_key(key: &str) -> Result<(), String> {
    use base64::Engine;
    if key.contains(['\n', '\r', '\0']) {
        return Err("a key is one line".to_owned());
    }
    let mut words = key.split_whitespace();
    let (Some(kind), Some(blob)) = (words.next(), words.next()) else {
        return Err("expected `TYPE BASE64 [COMMENT]`".to_owned());
    };
    if !SSH_KEY_TYPES.contains(&kind) {
        return Err(format!(
            "{kind:?} is not an OpenSSH public key type (options before the key are not accepted)"
        ));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|_| "the key is not base64".to_owned())?;
    let named = bytes
        .get(..4)
        .map(|n| u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize)
        .and_then(|n| bytes.get(4..4 + n));
    if named != Some(kind.as_bytes()) {
        return Err(format!("the key's blob is not a {kind} key"));
    }
    Ok(())
}

fn yes() -> bool {
    true
}

/// `[files]`: files the recipe adds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Files {
    /// Directory trees copied into the image.
    pub tree: Vec<FileTree>,
    /// Files given inline, by image path.
    pub inline: BTreeMap<ImagePath, InlineFile>,
}

/// One directory tree from the build host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTree {
    /// Folder, relative to the recipe.
    pub source: HostPath,
    /// Where it lands in the image; the image root when absent.
    #[serde(default = "ImageDir::root")]
    pub target: ImageDir,
}

/// One inline file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InlineFile {
    /// Contents, as UTF-8 text.
    pub content: String,
    /// Permission bits (0o644 when absent).
    #[serde(default = "default_file_mode")]
    pub mode: FileMode,
    /// Owner (root when absent).
    #[serde(default = "root_name")]
    pub owner: UnixName,
    /// Group (root when absent).
    #[serde(default = "root_name")]
    pub group: UnixName,
}

fn default_file_mode() -> FileMode {
    FileMode(0o644)
}

fn root_name() -> UnixName {
    "root".parse().expect("root is a valid name")
}

/// `[services]`: systemd units beyond what [Install] sections and presets say.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Services {
    /// Units to enable.
    pub enable: Vec<String>,
    /// Units to disable.
    pub disable: Vec<String>,
    /// Units to mask.
    pub mask: Vec<String>,
    /// Per-host state airlock makes at first boot, by name
    /// ([`FIRST_BOOT`]); `false` turns one off (the recipe then provides
    /// what it would make, such as ssh host keys, another way).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub first_boot: BTreeMap<String, bool>,
}

/// The per-host state airlock can make at first boot: `ssh-host-keys`
/// (for openssh-server).
pub const FIRST_BOOT: &[&str] = &[
    "ssh-host-keys",
    "ssl-snakeoil",
    "postgresql-cluster",
    "mariadb-datadir",
    "bind-rndc-key",
];

impl Services {
    /// Whether the first-boot maker `name` is on (the default).
    pub fn first_boot_on(&self, name: &str) -> bool {
        self.first_boot.get(name).copied().unwrap_or(true)
    }
}

/// `[agent]`: the sandboxed agent runtime.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// The agent's own system user.
    pub user: UnixName,
    /// Command and arguments.
    pub command: Vec<String>,
    /// Paths the agent may read (everything else it may not see writable).
    #[serde(default)]
    pub read_only_paths: Vec<ImagePath>,
    /// Paths the agent may write.
    #[serde(default)]
    pub writable_paths: Vec<ImagePath>,
    /// Where the agent may connect to.
    #[serde(default)]
    pub egress: Vec<Egress>,
    /// MemoryMax=.
    pub memory_max: Option<ByteSize>,
    /// CPUQuota=.
    pub cpu_quota: Option<CpuQuota>,
    /// Extra SystemCallFilter= entries beyond @system-service.
    #[serde(default)]
    pub system_call_filter: Vec<String>,
    /// Environment variables.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

impl Agent {
    pub(crate) fn validate(&self, problems: &mut Vec<String>) {
        match self.command.first() {
            None => problems.push("[agent] command must name a program".to_owned()),
            Some(program) if !program.starts_with('/') => problems.push(format!(
                "[agent] command: the program {program:?} must be an absolute path in the image"
            )),
            Some(_) => {}
        }
        if self.command.iter().any(|w| w.chars().any(char::is_control)) {
            problems.push("[agent] command: no control characters in its words".to_owned());
        }
        if self.user.as_str() == "root" {
            problems.push("[agent] user must not be root".to_owned());
        }
        for path in self.read_only_paths.iter().chain(&self.writable_paths) {
            if path
                .as_str()
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '%' || c == '"' || c == '\\')
            {
                problems.push(format!(
                    "[agent] path {:?}: no whitespace, quotes, backslashes or % in sandbox paths",
                    path.as_str()
                ));
            }
        }
        for path in &self.writable_paths {
            let p = path.as_str();
            if !(p.starts_with("/var/") || p.starts_with("/run/")) {
                problems.push(format!(
                    "[agent] writable_paths {p:?}: the image's root is read-only; writable paths live under /var/ or /run/"
                ));
            }
        }
        for entry in &self.system_call_filter {
            let valid = !entry.is_empty()
                && entry
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "@_-:~".contains(c));
            if !valid {
                problems.push(format!(
                    "[agent] system_call_filter {entry:?}: expected a system call or @group name"
                ));
            }
        }
        for (key, value) in &self.environment {
            let key_ok = key
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !key_ok {
                problems.push(format!(
                    "[agent] environment: {key:?} is not a variable name"
                ));
            }
            if value.chars().any(char::is_control) {
                problems.push(format!(
                    "[agent] environment {key}: no control characters in the value"
                ));
            }
        }
        for egress in &self.egress {
            if egress.port == Some(0) {
                problems.push(format!(
                    "[agent] egress {}: port 0 is not a port",
                    egress.address
                ));
            }
        }
    }
}

/// One allowed destination.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Egress {
    /// Address or network.
    pub address: IpNetwork,
    /// Port; every port when absent.
    pub port: Option<u16>,
    /// Protocol.
    #[serde(default)]
    pub protocol: Protocol,
}

/// A transport protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

/// `[[models]]`: model weights, pinned by digest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Short name.
    pub name: ImageName,
    /// sha256 of the file.
    pub sha256: Sha256,
    /// A file on the build host (relative to the recipe).
    pub path: Option<HostPath>,
    /// A URL, fetched only by `airlock fetch`.
    pub url: Option<Url>,
    /// Where the file lands in the image (read-only).
    pub destination: ImagePath,
    /// SPDX license expression.
    pub license: String,
    /// Model-card fields for the SBOM.
    #[serde(default)]
    pub card: ModelCard,
}

/// A chain policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Drop what no rule allows.
    #[default]
    Drop,
    /// Accept everything (never the default; verify's policy may reject it).
    Accept,
}

/// `[firewall]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Firewall {
    /// Input policy.
    pub input: Policy,
    /// Output policy.
    pub output: Policy,
    /// Forward policy.
    pub forward: Policy,
    /// Allow rules.
    pub allow: Vec<FirewallRule>,
}

/// Traffic direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Incoming.
    In,
    /// Outgoing.
    Out,
}

/// One firewall allow rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallRule {
    /// Direction.
    pub direction: Direction,
    /// Protocol.
    #[serde(default)]
    pub protocol: Protocol,
    /// Port; every port when absent.
    pub port: Option<u16>,
    /// Peer address or network; any when absent.
    pub address: Option<IpNetwork>,
    /// Free text, copied into the ruleset.
    #[serde(default)]
    pub comment: String,
}

/// `[audit]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    /// auditd rules, one per entry, in auditctl syntax.
    pub rules: Vec<String>,
    /// Built-in rules for the agent user.
    pub agent_rules: bool,
    /// Prepare journald Forward Secure Sealing (the key is made at first boot).
    pub seal: bool,
    /// SystemMaxUse= for the journal.
    pub max_use: Option<ByteSize>,
    /// MaxRetentionSec= for the journal.
    pub retention: Option<TimeSpan>,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            rules: Vec::new(),
            agent_rules: true,
            seal: true,
            max_use: None,
            retention: None,
        }
    }
}

/// An artifact kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// rootfs.tar.zst.
    Tar,
    /// EROFS root with dm-verity, kernel and initrd.
    Erofs,
    /// An ostree commit.
    Ostree,
    /// A GPT disk image that boots through UEFI: an EFI system partition
    /// with systemd-boot and a unified kernel image, the EROFS root and its
    /// dm-verity tree as slot A, room for slot B, and /var.
    Disk,
}

/// `[output]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Output {
    /// Artifacts to emit.
    pub formats: Vec<Format>,
    /// zstd level for compressed artifacts.
    pub zstd_level: i32,
    /// Deflate level (0 to 9) of the ostree commit's file objects; unset
    /// is 1, fast. It never changes an object's or the commit's checksum.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ostree_deflate_level: Option<u32>,
    /// How the EROFS root is compressed; unset is lz4hc.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erofs_compression: Option<ErofsCompression>,
}

/// `[output] erofs_compression`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErofsCompression {
    /// Uncompressed, written by airlock itself from the tree: no root
    /// needed, every file's bytes in place.
    None,
    /// lz4hc, written by mkfs.erofs from a staging copy of the tree (root
    /// needed for the owners).
    Lz4hc,
}

impl Default for Output {
    fn default() -> Self {
        Output {
            formats: Vec::new(),
            zstd_level: 3,
            ostree_deflate_level: None,
            erofs_compression: None,
        }
    }
}

/// `[signing]`: who must approve a release, and (with certificates) the
/// trust anchors the image carries under `/usr/share/airlock/trust`, so the
/// running image decides who may sign its successor.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Signing {
    /// How many distinct signers are needed.
    pub threshold: u32,
    /// The expected signers.
    pub signers: Vec<Signer>,
    /// The builder keys whose provenance the image's host accepts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub builders: Vec<TrustedBuilder>,
}

impl Signing {
    /// Whether the image carries trust anchors: the signers' certificates
    /// are given.
    pub fn anchors(&self) -> bool {
        self.signers.iter().any(|s| s.certificate.is_some()) || !self.builders.is_empty()
    }
}

/// One expected release signer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signer {
    /// Who: also the certificate's file name in the image.
    pub name: String,
    /// Their key.
    pub fingerprint: Fingerprint,
    /// A file holding their armored OpenPGP certificate, relative to the
    /// recipe file that names it. Loading reads it into `certificate`, so
    /// the recipe's digest covers the certificate's bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_file: Option<HostPath>,
    /// Their armored OpenPGP certificate (public keys only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
}

/// One builder's public key (`airlock keygen --builder` writes it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedBuilder {
    /// Which builder: also the key's file name in the image.
    pub name: String,
    /// A file holding the PEM public key, relative to the recipe file that
    /// names it; loading reads it into `key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<HostPath>,
    /// The PEM public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}
