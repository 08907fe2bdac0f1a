//! Why a bundle was rejected: one variant per failure, each with the values
//! a reviewer needs (for a mismatch, `expected` is what the signed record
//! claims and `actual` what the bundle or image holds), and a stable
//! [`Rejection::kind`] code. `airlock verify --json` writes the variant's
//! fields beside its kind; docs/trust.md lists every kind.

use serde::Serialize;

/// Why a bundle was rejected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq, Serialize, strum::EnumDiscriminants)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[strum_discriminants(
    name(RejectionKind),
    derive(strum::EnumIter, strum::IntoStaticStr, Hash, PartialOrd, Ord),
    strum(serialize_all = "kebab-case")
)]
pub enum Rejection {
    // 1. The signatures over manifest.json.
    /// No manifest.json.
    #[error("the bundle has no manifest.json")]
    NoManifest,
    /// No signature at all.
    #[error("manifest.json is not signed (no manifest.json.asc, or no signature in it)")]
    Unsigned,
    /// The signature file is not OpenPGP.
    #[error("manifest.json.asc: {reason}")]
    BadSignatureFile {
        /// What the parser found.
        reason: String,
    },
    /// The signature file holds bytes that are not part of any signature
    /// (trailing data, armor headers, unsigned subpackets, an oversized
    /// packet): nothing may ride along unverified.
    #[error("manifest.json.asc: {what} at byte {offset}: only signature packets are accepted")]
    SignatureFileExtraData {
        /// Where.
        offset: usize,
        /// What.
        what: String,
    },
    /// A signature by a trusted key that does not verify: the manifest
    /// changed after signing, or the signature is damaged.
    #[error("bad signature {reason}")]
    BadSignature {
        /// Which and why.
        reason: String,
    },
    /// Not enough signatures, and one was by a pinned approver whose
    /// certificate or signing key is revoked for that signature.
    #[error("revoked approver: {reason}; {have} of {need} required signatures count")]
    RevokedSigner {
        /// Whose, which revocation and when.
        reason: String,
        /// Good trusted signatures.
        have: usize,
        /// Threshold.
        need: usize,
    },
    /// Not enough signatures, and one was by a pinned approver whose
    /// certificate or key had expired (or was not yet valid).
    #[error("expired approver: {reason}; {have} of {need} required signatures count")]
    ExpiredSigner {
        /// Whose and why.
        reason: String,
        /// Good trusted signatures.
        have: usize,
        /// Threshold.
        need: usize,
    },
    /// Not enough signatures, and one was by a key the host does not trust.
    #[error(
        "signature by untrusted key {issuer}; {have} of {need} required signatures by trusted keys"
    )]
    UntrustedSigner {
        /// The key id or fingerprint.
        issuer: String,
        /// Good trusted signatures.
        have: usize,
        /// Threshold.
        need: usize,
    },
    /// Not enough signatures, and one key signed more than once.
    #[error(
        "key {fingerprint} signed more than once and counts once; {have} of {need} required distinct keys"
    )]
    DuplicateSigner {
        /// The key.
        fingerprint: String,
        /// Distinct good signers.
        have: usize,
        /// Threshold.
        need: usize,
    },
    /// Not enough signatures.
    #[error("{have} of {need} required signatures by distinct trusted keys")]
    BelowThreshold {
        /// Distinct good signers.
        have: usize,
        /// Threshold.
        need: usize,
    },
    /// The manifest is signed but malformed.
    #[error("{reason}")]
    MalformedManifest {
        /// What is wrong with it.
        reason: String,
    },

    // 2. Rollback and freeze.
    /// Older than or equal to what the host has.
    #[error(
        "rollback: {name} version {version} is not newer than version {recorded}, which this host already accepted"
    )]
    Rollback {
        /// Image name.
        name: String,
        /// The bundle's version.
        version: u64,
        /// The recorded version.
        recorded: u64,
    },
    /// Expired relative to the latest time the host has seen.
    #[error("expired: the manifest expires {expires}, but this host has seen {seen}")]
    Expired {
        /// The manifest's expiry.
        expires: String,
        /// The latest time known.
        seen: String,
    },

    // 3. Every byte.
    /// A listed file is missing.
    #[error("{path}: missing")]
    MissingFile {
        /// Bundle path.
        path: String,
    },
    /// A file the manifest does not list.
    #[error("{path}: not listed in the manifest")]
    UnlistedFile {
        /// Bundle path.
        path: String,
    },
    /// Not a regular file.
    #[error("{path}: not a regular file")]
    NotAFile {
        /// Bundle path.
        path: String,
    },
    /// Wrong size.
    #[error("{path}: {actual} bytes, the manifest says {expected}")]
    SizeMismatch {
        /// Bundle path.
        path: String,
        /// Manifest.
        expected: u64,
        /// Found.
        actual: u64,
    },
    /// Wrong content.
    #[error("{path}: sha256 {actual}, the manifest says {expected}")]
    DigestMismatch {
        /// Bundle path (a chunk's own name when split).
        path: String,
        /// Manifest.
        expected: String,
        /// Found.
        actual: String,
    },
    /// Two chunks of a split file are in each other's place.
    #[error(
        "{path}: chunk {found_at} holds the bytes of chunk {belongs_at} (chunks swapped or renamed)"
    )]
    ChunksSwapped {
        /// The logical file.
        path: String,
        /// Where the bytes were found.
        found_at: usize,
        /// Where they belong.
        belongs_at: usize,
    },

    // 4. Provenance.
    /// The manifest's `provenance` digest is not that of the file it lists
    /// as provenance.dsse.json.
    #[error(
        "provenance: the manifest names provenance sha256 {expected}, but lists provenance.dsse.json with {actual}"
    )]
    ProvenanceDigest {
        /// The manifest's `provenance`.
        expected: String,
        /// The listed file's sha256.
        actual: String,
    },
    /// Not a DSSE envelope, or its payload is not base64.
    #[error("provenance: {reason}")]
    ProvenanceEnvelope {
        /// What is wrong.
        reason: String,
    },
    /// The envelope's payload type is not in-toto's.
    #[error("provenance: payload type {actual:?}, expected {expected:?}")]
    ProvenancePayloadType {
        /// in-toto's payload type.
        expected: String,
        /// The envelope's.
        actual: String,
    },
    /// No signature by a pinned builder key.
    #[error(
        "provenance: no signature by a pinned builder key (signed by key ids: {})",
        if signed_by.is_empty() { "none".to_owned() } else { signed_by.join(", ") }
    )]
    ProvenanceSignature {
        /// The key ids of the envelope's signatures (`?` where unnamed).
        signed_by: Vec<String>,
    },
    /// The signed payload is not an in-toto statement.
    #[error("provenance: not an in-toto statement: {reason}")]
    ProvenanceStatement {
        /// The parser's message.
        reason: String,
    },
    /// Another statement or predicate type.
    #[error("provenance: {field} is {actual:?}, expected {expected:?}")]
    ProvenanceType {
        /// `_type` or `predicateType`.
        field: String,
        /// in-toto Statement v1, or SLSA provenance v1.
        expected: String,
        /// The statement's.
        actual: String,
    },
    /// A subject that is not an artifact of this bundle.
    #[error("provenance subject {name}: not an artifact of this bundle")]
    ProvenanceSubjectUnknown {
        /// The subject's name.
        name: String,
    },
    /// A subject with another digest than the bundle's artifact.
    #[error("provenance subject {name}: sha256 {expected}, the bundle has {actual}")]
    ProvenanceSubjectDigest {
        /// The artifact.
        name: String,
        /// The provenance's sha256 (empty when it has none).
        expected: String,
        /// The bundle's.
        actual: String,
    },
    /// An artifact the provenance does not name.
    #[error("provenance subject {name}: artifact missing from the provenance's subjects")]
    ProvenanceSubjectMissing {
        /// The artifact.
        name: String,
    },
    /// The provenance was built from another recipe or lock, or names
    /// other SBOMs than the manifest.
    #[error("provenance: the {input} digest is {actual:?}, the manifest says {expected}")]
    ProvenanceInput {
        /// `recipe`, `lock`, or an SBOM's bundle path.
        input: String,
        /// The manifest's.
        expected: String,
        /// The provenance's (empty when it has none).
        actual: String,
    },

    // 5. The disk image's parts against the build report.
    /// build-report.json cannot be read.
    #[error("build-report.json: {reason}")]
    ReportUnreadable {
        /// The parser's message.
        reason: String,
    },
    /// A part of the disk image the report describes is not in the bundle.
    #[error("disk image: the report describes a disk image, but the bundle has no {path}")]
    DiskPartMissing {
        /// The bundle path.
        path: String,
    },
    /// A part of the disk image is not the one the build wrote.
    #[error("disk image: {path} has sha256 {actual}, the build report says {expected}")]
    DiskPartDigest {
        /// The bundle path.
        path: String,
        /// The report's.
        expected: String,
        /// The bundle's (verified against the manifest).
        actual: String,
    },
    /// A boot file in a bundle whose report describes no disk image.
    #[error("disk image: the bundle has {path}, but its build report describes no disk image")]
    DiskPartUnexpected {
        /// The bundle path.
        path: String,
    },
    /// A Secure Boot signed file that is not its unsigned self plus a
    /// signature.
    #[error("disk image: {path} is not {unsigned} with a signature added: {reason}")]
    DiskSignature {
        /// The signed file's bundle path.
        path: String,
        /// The unsigned file's.
        unsigned: String,
        /// The first difference.
        reason: String,
    },

    // 6. The SBOMs against the image.
    /// The manifest's SBOM digest is not that of the file it lists.
    #[error("SBOM: the manifest names {path} with sha256 {expected}, but lists it with {actual}")]
    SbomDigest {
        /// The SBOM's bundle path.
        path: String,
        /// The manifest's `sbom` entry.
        expected: String,
        /// The listed file's sha256.
        actual: String,
    },
    /// An SBOM is not JSON.
    #[error("SBOM: {path}: not JSON: {reason}")]
    SbomNotJson {
        /// The SBOM's bundle path.
        path: String,
        /// The parser's message.
        reason: String,
    },
    /// An SBOM of another format or version.
    #[error("SBOM: {path} is {actual}, expected {expected}")]
    SbomFormat {
        /// The SBOM's bundle path.
        path: String,
        /// `CycloneDX 1.6`, `SPDX-2.3` or `SPDX-3.0.1`.
        expected: String,
        /// What it says it is.
        actual: String,
    },
    /// The CycloneDX and an SPDX SBOM list a package (or a model's
    /// sha256) differently.
    #[error(
        "SBOM: the CycloneDX SBOM and {path} disagree about {package}: {} and {}",
        cyclonedx.as_deref().unwrap_or("absent"),
        spdx.as_deref().unwrap_or("absent")
    )]
    SbomsDisagree {
        /// The SPDX SBOM's bundle path (2.3 or 3.0).
        path: String,
        /// The package (or `model NAME`).
        package: String,
        /// Its version in the CycloneDX SBOM, if listed.
        cyclonedx: Option<String>,
        /// Its version in the SPDX SBOM, if listed.
        spdx: Option<String>,
    },
    /// The bundle has no tar root to check the SBOMs against.
    #[error("SBOM: the bundle has no {path}, so the SBOM cannot be checked against the image")]
    SbomNoImage {
        /// The tar root's bundle path.
        path: String,
    },
    /// The image's tar stream or its dpkg database cannot be read.
    #[error("SBOM: reading the image: {reason}")]
    ImageUnreadable {
        /// Why.
        reason: String,
    },
    /// A package in the image that the SBOM does not list.
    #[error("SBOM: the image has package {package} {version}, which the SBOM does not list")]
    SbomPackageUnlisted {
        /// The package.
        package: String,
        /// Its version in the image.
        version: String,
    },
    /// A package at another version than the SBOM says.
    #[error("SBOM: the image has {package} {actual}, the SBOM says {expected}")]
    SbomPackageVersion {
        /// The package.
        package: String,
        /// The SBOM's version.
        expected: String,
        /// The image's.
        actual: String,
    },
    /// A package the SBOM lists and the image does not have.
    #[error("SBOM: the SBOM lists package {package} {version}, which the image does not have")]
    SbomPackageAbsent {
        /// The package.
        package: String,
        /// The SBOM's version.
        version: String,
    },
    /// A model whose file is not in the image.
    #[error("SBOM: model {model}: {path} is not in the image")]
    SbomModelMissing {
        /// The model's name.
        model: String,
        /// Its path in the image.
        path: String,
    },
    /// A model whose file has another digest than the SBOM says.
    #[error("SBOM: model {model}: {path} has sha256 {actual}, the SBOM says {expected}")]
    SbomModelDigest {
        /// The model's name.
        model: String,
        /// Its path in the image.
        path: String,
        /// The SBOM's sha256.
        expected: String,
        /// The image's.
        actual: String,
    },
    /// A component (`[[components]]`) whose file is not in the image.
    #[error("SBOM: component {component}: {path} is not in the image")]
    SbomComponentMissing {
        /// The component's name.
        component: String,
        /// Its path in the image.
        path: String,
    },
    /// A component whose file has another digest than the SBOM says.
    #[error("SBOM: component {component}: {path} has sha256 {actual}, the SBOM says {expected}")]
    SbomComponentDigest {
        /// The component's name.
        component: String,
        /// Its path in the image.
        path: String,
        /// The SBOM's sha256.
        expected: String,
        /// The image's.
        actual: String,
    },
    /// A privilege inventory line that cannot be read.
    #[error("SBOM: privilege inventory: cannot read {line:?}")]
    SbomPrivilegeUnreadable {
        /// The line.
        line: String,
    },
    /// A privileged path in the image that the inventory does not list.
    #[error(
        "SBOM: the image has {kinds} {path}, which the SBOM's privilege inventory does not list"
    )]
    SbomPrivilegeUnlisted {
        /// The path.
        path: String,
        /// What the image's tar header makes it (`setuid+capabilities`).
        kinds: String,
    },
    /// A privileged path with other kinds than the inventory says.
    #[error("SBOM: {path} is {actual} in the image, the SBOM says {expected}")]
    SbomPrivilegeKinds {
        /// The path.
        path: String,
        /// The inventory's kinds.
        expected: String,
        /// The image's.
        actual: String,
    },
    /// The inventory lists a path the image does not make privileged.
    #[error("SBOM: the SBOM lists {path} as {kinds}, but the image's is not privileged")]
    SbomPrivilegeAbsent {
        /// The path.
        path: String,
        /// The inventory's kinds.
        kinds: String,
    },

    // 7. The host's policy.
    /// A setuid or setgid file the policy's `allowed_setuid` does not name.
    #[error("policy: allowed_setuid: {path} (mode {mode}) is setuid or setgid and not allowed")]
    PolicySetuid {
        /// The file.
        path: String,
        /// Its mode, octal.
        mode: String,
    },
    /// A file capability, and the policy has `deny_file_capabilities`.
    #[error("policy: deny_file_capabilities: {path} has file capabilities")]
    PolicyFileCapability {
        /// The file.
        path: String,
    },
    /// A device node, and the policy has `deny_device_nodes`.
    #[error("policy: deny_device_nodes: {path} is a device node ({device})")]
    PolicyDeviceNode {
        /// The node.
        path: String,
        /// Type and numbers.
        device: String,
    },
    /// A package the policy's `denied_packages` names.
    #[error("policy: denied_packages: the image has {package} {version}")]
    PolicyDeniedPackage {
        /// The package.
        package: String,
        /// Its version.
        version: String,
    },
    /// A component with no known license, and `allow_unknown_licenses` is
    /// off.
    #[error(
        "policy: allowed_licenses: {component} has no known license (allow_unknown_licenses is off)"
    )]
    PolicyUnknownLicense {
        /// The SBOM component.
        component: String,
    },
    /// A component under a license `allowed_licenses` does not allow.
    #[error("policy: allowed_licenses: {component} is licensed {expression}")]
    PolicyLicense {
        /// The SBOM component.
        component: String,
        /// Its SPDX license expression.
        expression: String,
    },
    /// A license expression that cannot be read.
    #[error("policy: allowed_licenses: {component}: cannot read license expression {expression:?}")]
    PolicyLicenseUnreadable {
        /// The SBOM component.
        component: String,
        /// The expression.
        expression: String,
    },
    /// recipe.json, which the firewall and audit rules read, is not JSON.
    #[error("policy: recipe.json: {reason}")]
    PolicyRecipeUnreadable {
        /// The parser's message.
        reason: String,
    },
    /// `require_default_deny_firewall`, and the recipe has no firewall.
    #[error("policy: require_default_deny_firewall: the recipe has no [firewall]")]
    PolicyNoFirewall,
    /// `require_default_deny_firewall`, and a chain does not drop.
    #[error(
        "policy: require_default_deny_firewall: the {chain} policy is {actual}, expected {expected}"
    )]
    PolicyFirewallChain {
        /// `input`, `output` or `forward`.
        chain: String,
        /// `drop`.
        expected: String,
        /// The recipe's (JSON).
        actual: String,
    },
    /// A rule needs a package the image does not have.
    #[error("policy: {rule}: {package} is not installed")]
    PolicyNotInstalled {
        /// The rule.
        rule: String,
        /// The package (nftables, auditd).
        package: String,
    },
    /// `require_audit`, and the recipe has no audit section.
    #[error("policy: require_audit: the recipe has no [audit]")]
    PolicyNoAudit,
    /// `require_audit`, and the recipe has no audit rules.
    #[error("policy: require_audit: the recipe has no audit rules")]
    PolicyNoAuditRules,
}

impl Rejection {
    /// A stable code for scripts: the variant's name in kebab case.
    pub fn kind(&self) -> &'static str {
        RejectionKind::from(self).into()
    }

    /// The rejection for `--json`: its kind, its fields, and `message`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("a rejection serializes");
        value["message"] = serde_json::Value::String(self.to_string());
        value
    }
}

impl RejectionKind {
    /// The kind's code, as [`Rejection::kind`] gives it.
    pub fn code(self) -> &'static str {
        self.into()
    }

    /// Every kind, in declaration order (the order of the checks).
    pub fn all() -> impl Iterator<Item = RejectionKind> {
        <RejectionKind as strum::IntoEnumIterator>::iter()
    }
}
