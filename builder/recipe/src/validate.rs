//! The merged recipe's own checks: required keys, and rules across keys
//! and sections that no single section can check by itself.

use crate::Recipe;

impl Recipe {
    /// What the SBOMs would state wrongly: the image's supplier and the
    /// models' cards.
    fn sbom_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(supplier) = &self.image.supplier {
            problems.extend(
                supplier
                    .problems()
                    .into_iter()
                    .map(|p| format!("[image] supplier: {p}")),
            );
        }
        for component in &self.components {
            if let Some(supplier) = &component.supplier {
                problems.extend(
                    supplier
                        .problems()
                        .into_iter()
                        .map(|p| format!("[[components]] {} supplier: {p}", component.name)),
                );
            }
        }
        for model in &self.models {
            problems.extend(
                model
                    .card
                    .problems()
                    .into_iter()
                    .map(|p| format!("[[models]] {} card: {p}", model.name)),
            );
        }
        problems
    }

    /// The models' and components' own rules: unique names and
    /// destinations, one source each, a one-word version.
    fn pinned_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        push_duplicates(
            &mut problems,
            "[[models]] and [[components]] name",
            self.models
                .iter()
                .map(|m| m.name.as_str())
                .chain(self.components.iter().map(|c| c.name.as_str())),
        );
        push_duplicates(
            &mut problems,
            "[[models]] and [[components]] destination",
            self.models
                .iter()
                .map(|m| m.destination.as_str())
                .chain(self.components.iter().map(|c| c.destination.as_str())),
        );
        for model in &self.models {
            if model.path.is_some() == model.url.is_some() {
                problems.push(format!(
                    "[[models]] {}: give exactly one of `path` (a file on the build host) or `url`",
                    model.name
                ));
            }
        }
        for component in &self.components {
            if component.path.is_some() == component.url.is_some() {
                problems.push(format!(
                    "[[components]] {}: give exactly one of `path` (a file on the build host) or `url`",
                    component.name
                ));
            }
            if component.version.trim().is_empty()
                || component.version.contains(char::is_whitespace)
            {
                problems.push(format!(
                    "[[components]] {}: version {:?} must be one word (the SBOMs list it)",
                    component.name, component.version
                ));
            }
        }
        problems
    }

    /// Checks what only the merged recipe can tell: required keys and rules
    /// across keys. Returns every problem, not just the first.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.schema.0 != 1 {
            problems.push("missing `schema = 1`".to_owned());
        }
        if self.image.name.as_str().is_empty() {
            problems.push("missing [image] name".to_owned());
        }
        if self.image.version == 0 {
            problems.push("[image] version must be a release number of at least 1".to_owned());
        }
        if self.image.epoch == 0 {
            problems.push(
                "missing [image] epoch: the SOURCE_DATE_EPOCH of every timestamp, in seconds"
                    .to_owned(),
            );
        }
        if self.archive.suites.is_empty() {
            problems.push("[archive] suites must name at least one suite".to_owned());
        }
        if self.archive.keyring.is_none() {
            problems.push(
                "missing [archive] keyring: the OpenPGP keyring that signs the suites".to_owned(),
            );
        }
        push_duplicates(
            &mut problems,
            "[archive] suites",
            self.archive.suites.iter(),
        );
        push_duplicates(
            &mut problems,
            "[[users]] name",
            self.users.iter().map(|u| u.name.as_str()),
        );
        problems.extend(self.sbom_problems());
        problems.extend(self.pinned_problems());
        for user in &self.users {
            for (n, key) in user.authorized_keys.iter().enumerate() {
                if let Err(why) = crate::schema::check_authorized_key(key) {
                    problems.push(format!(
                        "[[users]] {} authorized_keys[{n}]: {why}",
                        user.name
                    ));
                }
            }
            if !user.authorized_keys.is_empty()
                && user
                    .home
                    .as_ref()
                    .map_or(user.system, |h| h.as_str() == "/nonexistent")
            {
                problems.push(format!(
                    "[[users]] {}: authorized_keys need a home; give `home`",
                    user.name
                ));
            }
        }
        for (package, reason) in &self.packages.acknowledge {
            if reason.trim().is_empty() {
                problems.push(format!(
                    "[packages] acknowledge {package}: give the reason its unhandled \
                     maintainer-script steps do not matter for this image"
                ));
            }
        }
        for name in self.services.first_boot.keys() {
            if !crate::FIRST_BOOT.contains(&name.as_str()) {
                problems.push(format!(
                    "[services] first_boot {name:?}: not one airlock makes; known: {}",
                    crate::FIRST_BOOT.join(", ")
                ));
            }
        }
        self.validate_agent(&mut problems);
        self.validate_firewall_and_audit(&mut problems);
        let signers = self.signing.signers.len() as u32;
        if signers > 0 && (self.signing.threshold == 0 || self.signing.threshold > signers) {
            problems.push(format!(
                "[signing] threshold = {} must be between 1 and the number of signers ({signers})",
                self.signing.threshold
            ));
        }
        push_duplicates(
            &mut problems,
            "[signing] signers fingerprint",
            self.signing.signers.iter().map(|s| s.fingerprint.as_str()),
        );
        self.validate_anchors(&mut problems);
        self.validate_disk(&mut problems);
        if !(1..=19).contains(&self.output.zstd_level) {
            problems.push(format!(
                "[output] zstd_level = {} must be between 1 and 19",
                self.output.zstd_level
            ));
        }
        if let Some(level) = self.output.ostree_deflate_level
            && level > 9
        {
            problems.push(format!(
                "[output] ostree_deflate_level = {level} must be between 0 and 9"
            ));
        }
        problems
    }

    /// `[signing]` with certificates: the image's trust anchors are whole
    /// (every signer's certificate and at least one builder key) and each
    /// can be a file name.
    fn validate_anchors(&self, problems: &mut Vec<String>) {
        let signing = &self.signing;
        if !signing.anchors() {
            return;
        }
        if signing.signers.is_empty() {
            problems.push(
                "[signing] builders: the image's trust anchors need signers with their certificates"
                    .to_owned(),
            );
        }
        for signer in signing.signers.iter().filter(|s| s.certificate.is_none()) {
            problems.push(format!(
                "[signing] signers {}: the other signers give a certificate, so must this one: \
                 give certificate_file",
                signer.name
            ));
        }
        if signing.builders.is_empty() {
            problems.push(
                "[signing] the signers' certificates make the image's trust anchors, which \
                 need the builders' public keys too: give builders = [{ name, key_file }]"
                    .to_owned(),
            );
        }
        for builder in signing.builders.iter().filter(|b| b.key.is_none()) {
            problems.push(format!(
                "[signing] builders {}: give key_file",
                builder.name
            ));
        }
        let names = signing
            .signers
            .iter()
            .map(|s| ("signers", &s.name))
            .chain(signing.builders.iter().map(|b| ("builders", &b.name)));
        for (list, name) in names {
            let fits = !name.is_empty()
                && name.len() <= 64
                && !name.starts_with('.')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !fits {
                problems.push(format!(
                    "[signing] {list} name {name:?} names a file in the image: use 1 to 64 of \
                     A-Z a-z 0-9 . _ -, not starting with \".\""
                ));
            }
        }
        push_duplicates(
            problems,
            "[signing] signers name",
            signing.signers.iter().map(|s| s.name.as_str()),
        );
        push_duplicates(
            problems,
            "[signing] builders name",
            signing.builders.iter().map(|b| b.name.as_str()),
        );
    }

    /// The disk format: built from the EROFS root and a kernel, with sizes
    /// its partitions can hold.
    fn validate_disk(&self, problems: &mut Vec<String>) {
        let wants = self.output.formats.contains(&crate::Format::Disk);
        if !wants {
            if self.disk.is_some() {
                problems.push("[disk] is set but [output] formats has no \"disk\"".to_owned());
            }
            return;
        }
        if !self.output.formats.contains(&crate::Format::Erofs) {
            problems
                .push("[output] formats: \"disk\" holds the EROFS root: add \"erofs\"".to_owned());
        }
        if self.kernel.package.is_none() {
            problems
                .push("[output] formats: \"disk\" boots a kernel: set [kernel] package".to_owned());
        }
        let disk = self.disk.clone().unwrap_or_default();
        if !(34..=4096).contains(&disk.esp_mib) {
            problems.push(format!(
                "[disk] esp_mib = {} must be between 34 (FAT32's least) and 4096",
                disk.esp_mib
            ));
        }
        if !(16..=1 << 24).contains(&disk.var_mib) {
            problems.push(format!(
                "[disk] var_mib = {} must be between 16 and 16777216",
                disk.var_mib
            ));
        }
        if disk.root_mib.is_some_and(|m| !(1..=1 << 24).contains(&m)) {
            problems.push("[disk] root_mib must be between 1 and 16777216".to_owned());
        }
        for unit in &disk.health {
            if !unit_name(unit) {
                problems.push(format!(
                    "[disk] health: {unit:?} is not a unit name (letters, digits and : - _ . @ \\, ending in .service, .socket, .target, .mount, .path or .timer)"
                ));
            }
        }
        if !disk.health.is_empty() && !disk.slot_b {
            problems.push(
                "[disk] health decides whether an update into slot B booted good: it needs slot_b = true"
                    .to_owned(),
            );
        }
    }

    /// The agent's own rules, and what it needs beside it (its user made by
    /// airlock, a firewall, audit).
    fn validate_agent(&self, problems: &mut Vec<String>) {
        if let Some(agent) = &self.agent {
            agent.validate(problems);
            if self.users.iter().any(|u| u.name == agent.user) {
                problems.push(format!(
                    "[agent] user {}: airlock makes the agent's user; remove it from [[users]]",
                    agent.user
                ));
            }
            if self.firewall.is_none() {
                problems.push(
                "[agent] needs a [firewall] section: the agent's egress allow-list is enforced by nftables as well as by systemd (an empty [firewall] drops everything else)".to_owned(),
            );
            }
            if self.audit.is_none() {
                problems.push(
                "[agent] needs an [audit] section: what the agent runs and connects to is audited (an empty [audit] adds the built-in agent rules)".to_owned(),
            );
            }
        }
    }

    /// Firewall rule comments and ports, and audit rule lines.
    fn validate_firewall_and_audit(&self, problems: &mut Vec<String>) {
        if let Some(firewall) = &self.firewall {
            for (i, rule) in firewall.allow.iter().enumerate() {
                let comment = &rule.comment;
                if comment.len() > 128
                    || comment
                        .chars()
                        .any(|c| c.is_control() || c == '"' || c == '\\')
                {
                    problems.push(format!(
                    "[[firewall.allow]] #{}: comment must be at most 128 bytes without quotes, backslashes or control characters",
                    i + 1
                ));
                }
                if rule.port == Some(0) {
                    problems.push(format!(
                        "[[firewall.allow]] #{}: port 0 is not a port",
                        i + 1
                    ));
                }
            }
        }
        if let Some(audit) = &self.audit {
            for rule in &audit.rules {
                if rule.trim().is_empty() || rule.contains(['\n', '\r', '\0']) {
                    problems.push(format!(
                        "[audit] rules: {rule:?} must be one non-empty auditctl line"
                    ));
                }
            }
        }
    }
}

fn push_duplicates<'a>(
    problems: &mut Vec<String>,
    what: &str,
    items: impl Iterator<Item = impl AsRef<str> + 'a>,
) {
    let mut seen = std::collections::BTreeSet::new();
    for item in items {
        let item = item.as_ref().to_owned();
        if !seen.insert(item.clone()) {
            problems.push(format!("{what} {item:?} appears twice"));
        }
    }
}

/// A systemd unit name as `[disk] health` may give it: the characters
/// systemd allows, one of the suffixes a unit that can be active has.
pub fn unit_name(name: &str) -> bool {
    let suffixed = [
        ".service", ".socket", ".target", ".mount", ".path", ".timer",
    ]
    .iter()
    .any(|s| name.len() > s.len() && name.ends_with(s));
    suffixed
        && name.len() <= 255
        && !name.starts_with(['-', '.'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.@\\".contains(&b))
}

#[cfg(test)]
mod unit_names {
    #[test]
    fn health_units_are_plain_unit_names() {
        for good in [
            "agent.service",
            "nftables.service",
            "getty@tty1.service",
            "x-y_z.target",
        ] {
            assert!(super::unit_name(good), "{good}");
        }
        for bad in [
            ".service",
            "agent",
            "agent.conf",
            "a b.service",
            "a\nExecStart=/bin/sh.service",
            "-x.service",
            "agent.service;reboot",
        ] {
            assert!(!super::unit_name(bad), "{bad:?}");
        }
    }
}
