//! The host's policy (`--policy FILE`, TOML): what a bundle must satisfy
//! beyond being authentic.

use std::collections::BTreeSet;

use serde::Deserialize;

/// A policy. Every rule is optional; an empty policy allows everything.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// SPDX license ids a package may carry. Empty: any.
    pub allowed_licenses: Vec<String>,
    /// Whether a package whose license is unknown (no machine-readable
    /// copyright file) is allowed when `allowed_licenses` is set.
    pub allow_unknown_licenses: bool,
    /// Packages that must not be in the image.
    pub denied_packages: Vec<String>,
    /// The image's firewall must drop by default (input, output, forward)
    /// and nftables must be installed.
    pub require_default_deny_firewall: bool,
    /// auditd must be installed and the recipe must have audit rules.
    pub require_audit: bool,
    /// When set, the only setuid or setgid files the image may have
    /// (absolute paths). Unset: any.
    pub allowed_setuid: Option<Vec<String>>,
    /// No file may carry capabilities.
    pub deny_file_capabilities: bool,
    /// No device node may be in the image.
    pub deny_device_nodes: bool,
}

impl Policy {
    /// Parses a policy file's text.
    pub fn parse(text: &str) -> Result<Policy, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The policy file at `path`, or the default policy when there is
    /// none; a file that cannot be read or parsed is a setup error that
    /// names it.
    pub fn read(path: Option<&std::path::Path>) -> Result<Policy, crate::VerifyError> {
        let Some(path) = path else {
            return Ok(Policy::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| crate::VerifyError::Setup(format!("reading {}: {e}", path.display())))?;
        Policy::parse(&text)
            .map_err(|e| crate::VerifyError::Setup(format!("{}: {e}", path.display())))
    }
}

/// Whether an SPDX license expression is satisfied by `allowed`: `OR` needs
/// one side, `AND` both, `X WITH Y` needs X (or the whole `X WITH Y`).
/// Returns None when the expression cannot be parsed.
pub fn expression_allowed(expression: &str, allowed: &BTreeSet<String>) -> Option<bool> {
    let spaced = expression.replace('(', " ( ").replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut parser = Parser {
        tokens: &tokens,
        at: 0,
        allowed,
    };
    let result = parser.or()?;
    (parser.at == tokens.len()).then_some(result)
}

struct Parser<'a> {
    tokens: &'a [&'a str],
    at: usize,
    allowed: &'a BTreeSet<String>,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.tokens.get(self.at).copied()
    }

    fn or(&mut self) -> Option<bool> {
        let mut value = self.and()?;
        while self.peek().is_some_and(|t| t.eq_ignore_ascii_case("OR")) {
            self.at += 1;
            value |= self.and()?;
        }
        Some(value)
    }

    fn and(&mut self) -> Option<bool> {
        let mut value = self.atom()?;
        while self.peek().is_some_and(|t| t.eq_ignore_ascii_case("AND")) {
            self.at += 1;
            value &= self.atom()?;
        }
        Some(value)
    }

    fn atom(&mut self) -> Option<bool> {
        let token = self.peek()?;
        self.at += 1;
        if token == "(" {
            let value = self.or()?;
            (self.peek()? == ")").then_some(())?;
            self.at += 1;
            return Some(value);
        }
        if [")", "AND", "OR", "WITH"]
            .iter()
            .any(|k| token.eq_ignore_ascii_case(k))
        {
            return None;
        }
        let mut value = self.allowed.contains(token);
        if self.peek().is_some_and(|t| t.eq_ignore_ascii_case("WITH")) {
            self.at += 1;
            let exception = self.peek()?;
            self.at += 1;
            value |= self.allowed.contains(&format!("{token} WITH {exception}"));
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_file_is_read_or_named_in_the_error() {
        assert_eq!(Policy::read(None).unwrap(), Policy::default());
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("policy.toml");
        let error = Policy::read(Some(&missing)).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("reading {}: ", missing.display())),
            "{error}"
        );
        std::fs::write(&missing, "require_audit = \"yes\"\n").unwrap();
        let error = Policy::read(Some(&missing)).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("{}: ", missing.display())),
            "{error}"
        );
        std::fs::write(&missing, "require_audit = true\n").unwrap();
        assert!(Policy::read(Some(&missing)).unwrap().require_audit);
    }

    #[test]
    fn expressions() {
        let allowed: BTreeSet<String> =
            ["MIT", "GPL-2.0-or-later", "Apache-2.0 WITH LLVM-exception"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let cases = [
            ("MIT", Some(true)),
            ("BSD-3-Clause", Some(false)),
            ("MIT AND BSD-3-Clause", Some(false)),
            ("MIT OR BSD-3-Clause", Some(true)),
            ("(BSD-3-Clause OR GPL-2.0-or-later) AND MIT", Some(true)),
            ("GPL-2.0-or-later WITH GCC-exception-3.1", Some(true)),
            ("Apache-2.0 WITH LLVM-exception", Some(true)),
            ("Apache-2.0", Some(false)),
            ("MIT AND", None),
            ("(MIT", None),
            ("MIT MIT", None),
        ];
        for (expression, expected) in cases {
            assert_eq!(
                expression_allowed(expression, &allowed),
                expected,
                "{expression}"
            );
        }
    }

    #[test]
    fn unknown_policy_keys_are_errors() {
        assert!(Policy::parse("denied_packages = [\"telnet\"]\n").is_ok());
        let error = Policy::parse("deny_packages = [\"telnet\"]\n").unwrap_err();
        assert!(error.contains("unknown field"), "{error}");
    }
}
