//! Package relationship fields: Depends, Pre-Depends, Conflicts, Breaks,
//! Provides (Debian policy 7.1).

use std::fmt;

use debversion::Version;

/// A version comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `<<`
    Less,
    /// `<=` (and the obsolete `<`)
    LessOrEqual,
    /// `=`
    Equal,
    /// `>=` (and the obsolete `>`)
    GreaterOrEqual,
    /// `>>`
    Greater,
}

impl Op {
    /// Whether `version op bound` holds.
    pub fn holds(self, version: &Version, bound: &Version) -> bool {
        let ordering = version.cmp(bound);
        match self {
            Op::Less => ordering.is_lt(),
            Op::LessOrEqual => ordering.is_le(),
            Op::Equal => ordering.is_eq(),
            Op::GreaterOrEqual => ordering.is_ge(),
            Op::Greater => ordering.is_gt(),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Less => "<<",
            Op::LessOrEqual => "<=",
            Op::Equal => "=",
            Op::GreaterOrEqual => ">=",
            Op::Greater => ">>",
        })
    }
}

/// A version constraint: `(>= 1.2)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Constraint {
    /// The comparison.
    pub op: Op,
    /// The version compared with.
    pub version: Version,
}

impl Constraint {
    /// Whether `version` satisfies the constraint.
    pub fn matches(&self, version: &Version) -> bool {
        self.op.holds(version, &self.version)
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op, self.version)
    }
}

/// One relation: `name[:arch] [(op version)]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Relation {
    /// Package (or virtual package) name.
    pub name: String,
    /// Architecture qualifier (`any`, `native`, or an architecture).
    pub arch_qualifier: Option<String>,
    /// Version constraint.
    pub constraint: Option<Constraint>,
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(arch) = &self.arch_qualifier {
            write!(f, ":{arch}")?;
        }
        if let Some(constraint) = &self.constraint {
            write!(f, " ({constraint})")?;
        }
        Ok(())
    }
}

/// Alternatives: `a | b | c`; any one satisfies it.
pub type Alternatives = Vec<Relation>;

/// Why a relation field could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid relation {text:?}: {reason}")]
pub struct RelationError {
    /// The offending part.
    pub text: String,
    /// What is wrong.
    pub reason: String,
}

/// Parses a comma-separated list of alternatives (Depends and friends).
/// Architecture restrictions `[...]` and build profiles `<...>` only occur in
/// source packages; they are rejected here.
pub fn parse_relations(text: &str) -> Result<Vec<Alternatives>, RelationError> {
    let mut all = Vec::new();
    for group in text.split(',') {
        let group = group.trim();
        if group.is_empty() {
            // Trailing commas occur in real archives; empty groups say nothing.
            continue;
        }
        let alternatives = group
            .split('|')
            .map(parse_relation)
            .collect::<Result<Vec<_>, _>>()?;
        all.push(alternatives);
    }
    Ok(all)
}

/// Package names as dpkg accepts them in relations. Policy asks for two
/// characters at least; dpkg parses one, and so do we.
fn is_relation_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

/// Parses one relation, `name[:arch] [(op version)]`.
pub fn parse_relation(text: &str) -> Result<Relation, RelationError> {
    let error = |reason: &str| RelationError {
        text: text.trim().chars().take(120).collect(),
        reason: reason.to_owned(),
    };
    let text = text.trim();
    let (head, constraint) = match text.find('(') {
        Some(open) => {
            let close = text.rfind(')').ok_or_else(|| error("missing `)`"))?;
            if close < open || !text[close + 1..].trim().is_empty() {
                return Err(error("text after the version constraint"));
            }
            (&text[..open], Some(&text[open + 1..close]))
        }
        None => (text, None),
    };
    let head = head.trim();
    let (name, arch_qualifier) = match head.split_once(':') {
        Some((name, arch)) => (name, Some(arch.to_owned())),
        None => (head, None),
    };
    if !is_relation_name(name) {
        return Err(error("expected a package name of [a-z0-9][a-z0-9+.-]*"));
    }
    if let Some(arch) = &arch_qualifier
        && (arch.is_empty() || !arch.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        return Err(error("invalid architecture qualifier"));
    }
    let constraint = constraint
        .map(|inner| {
            let inner = inner.trim();
            let (op, rest) = [
                ("<<", Op::Less),
                ("<=", Op::LessOrEqual),
                (">=", Op::GreaterOrEqual),
                (">>", Op::Greater),
                ("=", Op::Equal),
                ("<", Op::LessOrEqual),
                (">", Op::GreaterOrEqual),
            ]
            .into_iter()
            .find_map(|(symbol, op)| inner.strip_prefix(symbol).map(|rest| (op, rest)))
            .ok_or_else(|| error("expected one of <<, <=, =, >=, >> in the constraint"))?;
            let version = rest
                .trim()
                .parse::<Version>()
                .map_err(|_| error("invalid version in the constraint"))?;
            Ok(Constraint { op, version })
        })
        .transpose()?;
    Ok(Relation {
        name: name.to_owned(),
        arch_qualifier,
        constraint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_depends_lines() {
        let parsed = parse_relations(
            "libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, python3:any, perl (<< 5.37~),",
        )
        .unwrap();
        let shown: Vec<Vec<String>> = parsed
            .iter()
            .map(|alts| alts.iter().map(ToString::to_string).collect())
            .collect();
        assert_eq!(
            shown,
            [
                vec!["libc6 (>= 2.34)".to_owned()],
                vec!["debconf (>= 0.5)".to_owned(), "debconf-2.0".to_owned()],
                vec!["python3:any".to_owned()],
                vec!["perl (<< 5.37~)".to_owned()],
            ]
        );
    }

    #[test]
    fn obsolete_operators_mean_or_equal() {
        let relation = parse_relation("a (< 2)").unwrap();
        assert_eq!(relation.constraint.unwrap().op, Op::LessOrEqual);
        let relation = parse_relation("a (>2)").unwrap();
        assert_eq!(relation.constraint.unwrap().op, Op::GreaterOrEqual);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "A",
            "a (>= )",
            "a (~ 1)",
            "a (>= 1",
            "a (>= 1) x",
            "a [amd64]",
            "a:",
        ] {
            assert!(parse_relation(bad).is_err(), "{bad:?}");
        }
        let error = parse_relation("a (~ 1)").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid relation \"a (~ 1)\": expected one of <<, <=, =, >=, >> in the constraint"
        );
    }

    /// Our comparison agrees with dpkg's on the cases policy 5.6.12 cares about.
    #[test]
    fn version_order_matches_dpkg_semantics() {
        let ordered = [
            "1.0~rc1",
            "1.0",
            "1.0-1",
            "1.0-1+b1",
            "1.0+dfsg-1",
            "1.0.1",
            "1.1~",
            "1.1",
            "1:0.1",
        ];
        for pair in ordered.windows(2) {
            let a: Version = pair[0].parse().unwrap();
            let b: Version = pair[1].parse().unwrap();
            assert!(a < b, "{a} < {b}");
        }
        let a: Version = "0:1.0".parse().unwrap();
        let b: Version = "1.0".parse().unwrap();
        assert_eq!(a, b);
    }
}
