//! Dependency resolution with resolvo, a CDCL SAT solver.
//!
//! The Debian model maps onto resolvo like this:
//! - each package name is a resolvo name with (after merging suites) one
//!   candidate;
//! - a Depends/Pre-Depends group `a | b (>= 2) | v` becomes one requirement:
//!   the union, in order, of "a", "b (>= 2)", and "providers of v" (one
//!   version set per real package that provides `v`, matching versioned
//!   Provides against the constraint as policy 7.5 says);
//! - Conflicts and Breaks become resolvo constraints ("if x is installed it
//!   must not match"), on the named package and on every other package that
//!   provides that name; a package never conflicts with itself;
//! - excluded packages are root constraints that match nothing.
//!
//! The result is deterministic: names and providers are visited in sorted
//! order, and resolvo is deterministic for a deterministic provider.

use std::collections::BTreeSet;
use std::fmt;

use airlock_recipe::BaseSet;
use resolvo::utils::{Pool, VersionSet};
use resolvo::{
    Candidates, Condition, ConditionId, ConditionalRequirement, Dependencies, DependencyProvider,
    Interner, KnownDependencies, NameId, Problem, Requirement, SolvableId, Solver, SolverCache,
    StringId, UnsolvableOrCancelled, VersionSetId, VersionSetUnionId,
};

use crate::index::{CandidateId, Universe};
use crate::packages::Priority;
use crate::relation::{Alternatives, Constraint, Op, Relation};

/// What to install.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// The base set.
    pub base: BaseSet,
    /// Requested relations (each group may have alternatives).
    pub install: Vec<Alternatives>,
    /// Names that must not be installed.
    pub exclude: Vec<String>,
}

/// Why a request cannot be satisfied.
#[derive(Debug, thiserror::Error)]
#[error("cannot satisfy the package request:\n{explanation}")]
pub struct SolveError {
    /// resolvo's explanation: which package, which relation, which candidates
    /// were rejected and why.
    pub explanation: String,
}

/// Resolves `request` to a closed set of candidates, sorted by name.
pub fn resolve(universe: &Universe, request: &Request) -> Result<Vec<CandidateId>, SolveError> {
    let provider = Provider::new(universe);
    let mut requirements: Vec<ConditionalRequirement> = Vec::new();
    let excluded: BTreeSet<&str> = request.exclude.iter().map(String::as_str).collect();
    for name in base_packages(universe, request.base) {
        if !excluded.contains(name) {
            let relation = Relation {
                name: name.to_owned(),
                arch_qualifier: None,
                constraint: None,
            };
            requirements.push(provider.requirement(&[relation]).into());
        }
    }
    for group in &request.install {
        requirements.push(provider.requirement(group).into());
    }
    let constraints: Vec<VersionSetId> = excluded
        .iter()
        .map(|name| {
            let name = provider.pool.intern_package_name(*name);
            provider.pool.intern_version_set(name, Spec::Nothing)
        })
        .collect();

    let problem = Problem::new()
        .requirements(requirements)
        .constraints(constraints);
    let mut solver = Solver::new(provider);
    match solver.solve(problem) {
        Ok(solvables) => {
            let mut ids: Vec<CandidateId> = solvables
                .into_iter()
                .map(|s| solver.provider().pool.resolve_solvable(s).record.0)
                .collect();
            ids.sort_by(|a, b| {
                universe
                    .candidate(*a)
                    .package
                    .name
                    .cmp(&universe.candidate(*b).package.name)
            });
            ids.dedup();
            Ok(ids)
        }
        Err(UnsolvableOrCancelled::Unsolvable(conflict)) => {
            let mut explanation = conflict.display_user_friendly(&solver).to_string();
            let dead_ends = dead_ends(universe, request);
            if !dead_ends.is_empty() {
                explanation.push_str("relations that no candidate satisfies:\n");
                for line in dead_ends {
                    explanation.push_str(&format!("  {line}\n"));
                }
            }
            Err(SolveError { explanation })
        }
        Err(UnsolvableOrCancelled::Cancelled(_)) => Err(SolveError {
            explanation: "resolution was cancelled".to_owned(),
        }),
    }
}

/// Every relation reachable from the request that nothing can satisfy, with
/// the candidates that were there and why each was rejected. resolvo explains
/// the conflict; this names the versions it did not list.
fn dead_ends(universe: &Universe, request: &Request) -> Vec<String> {
    const MAX_LINES: usize = 20;
    let describe = |relation: &Relation| -> String {
        let mut rejected = Vec::new();
        if let Some(id) = universe.get(&relation.name) {
            let package = &universe.candidate(id).package;
            rejected.push(format!(
                "{} {} (version does not match)",
                package.name, package.version_text
            ));
        }
        for (id, provided) in universe.providers(&relation.name) {
            let package = &universe.candidate(*id).package;
            rejected.push(format!(
                "{} {} (provides {provided})",
                package.name, package.version_text
            ));
        }
        if rejected.is_empty() {
            format!("{relation}: no package or provider of that name")
        } else {
            format!("{relation}: rejected {}", rejected.join(", "))
        }
    };
    let satisfiable = |relation: &Relation| {
        universe
            .get(&relation.name)
            .is_some_and(|id| Spec::Version(relation.constraint.clone()).matches(universe, id))
            || universe
                .providers(&relation.name)
                .iter()
                .any(|(_, provided)| provide_satisfies(provided, relation.constraint.as_ref()))
    };
    let mut lines = Vec::new();
    let mut seen = BTreeSet::new();
    let mut queue: Vec<(String, &[Relation])> = request
        .install
        .iter()
        .map(|group| ("the recipe".to_owned(), group.as_slice()))
        .collect();
    while let Some((who, group)) = queue.pop() {
        if lines.len() == MAX_LINES {
            break;
        }
        if !group.iter().any(&satisfiable) {
            let text = group
                .iter()
                .map(&describe)
                .collect::<Vec<_>>()
                .join("; or ");
            lines.push(format!("{who} needs {text}"));
            continue;
        }
        for relation in group {
            let mut reachable: Vec<CandidateId> =
                universe.get(&relation.name).into_iter().collect();
            reachable.extend(universe.providers(&relation.name).iter().map(|(id, _)| *id));
            for id in reachable {
                if seen.insert(id) {
                    let package = &universe.candidate(id).package;
                    let who = format!("{} {}", package.name, package.version_text);
                    for group in package.pre_depends.iter().chain(&package.depends) {
                        queue.push((who.clone(), group.as_slice()));
                    }
                }
            }
        }
    }
    lines.sort();
    lines
}

/// The names of the base set, sorted.
pub fn base_packages(universe: &Universe, base: BaseSet) -> Vec<&str> {
    let mut names: Vec<&str> = universe
        .iter()
        .filter(|(_, candidate)| {
            let package = &candidate.package;
            match base {
                BaseSet::None => false,
                BaseSet::Essential => package.essential,
                BaseSet::Minbase => {
                    package.essential
                        || package.priority == Priority::Required
                        || package.name == "apt"
                }
                BaseSet::Important => {
                    package.essential
                        || package.priority <= Priority::Important
                        || package.name == "apt"
                }
            }
        })
        .map(|(_, candidate)| candidate.package.name.as_str())
        .collect();
    names.sort_unstable();
    names
}

/// A candidate id as a resolvo record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Record(CandidateId);

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a version set matches, always about candidates of one name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Spec {
    /// The package itself, with an optional version constraint.
    Version(Option<Constraint>),
    /// Packages that provide `name`, matching the constraint if any.
    Provides(String, Option<Constraint>),
    /// The complement of the inner spec.
    Not(Box<Spec>),
    /// Nothing at all.
    Nothing,
}

impl VersionSet for Spec {
    type V = Record;
}

impl Spec {
    fn matches(&self, universe: &Universe, id: CandidateId) -> bool {
        let package = &universe.candidate(id).package;
        match self {
            Spec::Version(None) => true,
            Spec::Version(Some(constraint)) => constraint.matches(&package.version),
            Spec::Provides(name, constraint) => package.provides.iter().any(|provided| {
                provided.name == *name && provide_satisfies(provided, constraint.as_ref())
            }),
            Spec::Not(inner) => !inner.matches(universe, id),
            Spec::Nothing => false,
        }
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spec::Version(None) => f.write_str("*"),
            Spec::Version(Some(constraint)) => write!(f, "({constraint})"),
            Spec::Provides(name, None) => write!(f, "providing {name}"),
            Spec::Provides(name, Some(constraint)) => write!(f, "providing {name} ({constraint})"),
            Spec::Not(inner) => write!(f, "not {inner}"),
            Spec::Nothing => f.write_str("(excluded)"),
        }
    }
}

/// Policy 7.5: an unversioned Provides satisfies only unversioned relations;
/// a versioned one (`= v`) satisfies a constraint that `v` meets.
fn provide_satisfies(provided: &Relation, constraint: Option<&Constraint>) -> bool {
    match (constraint, &provided.constraint) {
        (None, _) => true,
        (
            Some(wanted),
            Some(Constraint {
                op: Op::Equal,
                version,
            }),
        ) => wanted.matches(version),
        (Some(_), _) => false,
    }
}

struct Provider<'u> {
    universe: &'u Universe,
    pool: Pool<Spec, String>,
    /// The resolvo solvable of each candidate.
    solvables: Vec<Option<SolvableId>>,
}

impl<'u> Provider<'u> {
    fn new(universe: &'u Universe) -> Self {
        let pool = Pool::new();
        let mut solvables = vec![None; universe.len()];
        for (id, candidate) in universe.iter() {
            let name = pool.intern_package_name(candidate.package.name.as_str());
            solvables[id] = Some(pool.intern_solvable(name, Record(id)));
        }
        Provider {
            universe,
            pool,
            solvables,
        }
    }

    fn version_set(&self, name: &str, spec: Spec) -> VersionSetId {
        let name = self.pool.intern_package_name(name);
        self.pool.intern_version_set(name, spec)
    }

    /// One requirement for an alternatives group, as the module docs say.
    fn requirement(&self, group: &[Relation]) -> Requirement {
        let mut sets: Vec<VersionSetId> = Vec::new();
        for relation in group {
            if !self.arch_qualifier_ok(relation) {
                continue;
            }
            if self.universe.get(&relation.name).is_some() {
                sets.push(
                    self.version_set(&relation.name, Spec::Version(relation.constraint.clone())),
                );
            }
            for (provider, provided) in self.providers_by_preference(&relation.name) {
                if provide_satisfies(provided, relation.constraint.as_ref()) {
                    let provider_name = &self.universe.candidate(provider).package.name;
                    let spec = Spec::Provides(relation.name.clone(), relation.constraint.clone());
                    sets.push(self.version_set(provider_name, spec));
                }
            }
        }
        let mut seen = BTreeSet::new();
        sets.retain(|set| seen.insert(*set));
        if sets.is_empty() {
            // Nothing can satisfy it: a version set with no candidates makes
            // resolvo explain that nothing was found for this name.
            let first = &group[0];
            sets.push(self.version_set(&first.name, Spec::Version(first.constraint.clone())));
        }
        match sets.as_slice() {
            [single] => Requirement::Single(*single),
            [first, rest @ ..] => Requirement::Union(
                self.pool
                    .intern_version_set_union(*first, rest.iter().copied()),
            ),
            [] => unreachable!("sets is never empty here"),
        }
    }

    /// Providers of a virtual name, the most important priority first, then by
    /// name; apt asks the user in this case, airlock picks deterministically.
    fn providers_by_preference(&self, name: &str) -> Vec<(CandidateId, &Relation)> {
        let mut providers: Vec<(CandidateId, &Relation)> = self
            .universe
            .providers(name)
            .iter()
            .map(|(id, relation)| (*id, relation))
            .collect();
        providers.sort_by_key(|(id, _)| {
            let package = &self.universe.candidate(*id).package;
            (package.priority, package.name.clone())
        });
        providers
    }

    fn arch_qualifier_ok(&self, relation: &Relation) -> bool {
        match relation.arch_qualifier.as_deref() {
            None | Some("any") | Some("native") => true,
            Some(arch) => arch == self.universe.architecture(),
        }
    }

    /// Constraints for one Conflicts/Breaks relation of package `own`.
    fn conflict_constraints(&self, own: &str, relation: &Relation, out: &mut Vec<VersionSetId>) {
        if relation.name != own && self.universe.get(&relation.name).is_some() {
            let spec = Spec::Not(Box::new(Spec::Version(relation.constraint.clone())));
            out.push(self.version_set(&relation.name, spec));
        }
        for (provider, provided) in self.universe.providers(&relation.name) {
            let provider_name = &self.universe.candidate(*provider).package.name;
            if provider_name != own && provide_satisfies(provided, relation.constraint.as_ref()) {
                let inner = Spec::Provides(relation.name.clone(), relation.constraint.clone());
                out.push(self.version_set(provider_name, Spec::Not(Box::new(inner))));
            }
        }
    }
}

impl Provider<'_> {
    fn solvable_text(&self, solvable: SolvableId) -> String {
        let record = self.pool.resolve_solvable(solvable).record;
        let package = &self.universe.candidate(record.0).package;
        format!("{} {}", package.name, package.version_text)
    }
}

impl Interner for Provider<'_> {
    type NameId = NameId;
    type SolvableId = SolvableId;

    fn display_solvable(&self, solvable: SolvableId) -> impl fmt::Display + '_ {
        self.solvable_text(solvable)
    }

    fn display_merged_solvables(&self, solvables: &[SolvableId]) -> impl fmt::Display + '_ {
        solvables
            .iter()
            .map(|s| self.solvable_text(*s))
            .collect::<Vec<_>>()
            .join(" | ")
    }

    fn display_name(&self, name: NameId) -> impl fmt::Display + '_ {
        self.pool.resolve_package_name(name).clone()
    }

    fn display_version_set(&self, version_set: VersionSetId) -> impl fmt::Display + '_ {
        self.pool.resolve_version_set(version_set).to_string()
    }

    fn display_string(&self, string_id: StringId) -> impl fmt::Display + '_ {
        self.pool.resolve_string(string_id).to_owned()
    }

    fn version_set_name(&self, version_set: VersionSetId) -> NameId {
        self.pool.resolve_version_set_package_name(version_set)
    }

    fn solvable_name(&self, solvable: SolvableId) -> NameId {
        self.pool.resolve_solvable(solvable).name
    }

    fn version_sets_in_union(
        &self,
        union: VersionSetUnionId,
    ) -> impl Iterator<Item = VersionSetId> {
        self.pool.resolve_version_set_union(union)
    }

    fn resolve_condition(&self, condition: ConditionId) -> Condition {
        self.pool.resolve_condition(condition).clone()
    }
}

impl DependencyProvider for Provider<'_> {
    async fn filter_candidates(
        &self,
        candidates: &[SolvableId],
        version_set: VersionSetId,
        inverse: bool,
    ) -> Vec<SolvableId> {
        let spec = self.pool.resolve_version_set(version_set);
        candidates
            .iter()
            .copied()
            .filter(|s| {
                spec.matches(self.universe, self.pool.resolve_solvable(*s).record.0) != inverse
            })
            .collect()
    }

    async fn get_candidates(&self, name: NameId) -> Option<Candidates> {
        let id = self.universe.get(self.pool.resolve_package_name(name))?;
        Some(Candidates {
            candidates: vec![self.solvables[id].expect("every candidate has a solvable")],
            ..Candidates::default()
        })
    }

    async fn sort_candidates(&self, _solver: &SolverCache<Self>, solvables: &mut [SolvableId]) {
        // One candidate per name; keep a stable, version-descending order anyway.
        solvables.sort_by(|a, b| {
            let a = &self
                .universe
                .candidate(self.pool.resolve_solvable(*a).record.0)
                .package
                .version;
            let b = &self
                .universe
                .candidate(self.pool.resolve_solvable(*b).record.0)
                .package
                .version;
            b.cmp(a)
        });
    }

    async fn get_dependencies(&self, solvable: SolvableId) -> Dependencies {
        let package = &self
            .universe
            .candidate(self.pool.resolve_solvable(solvable).record.0)
            .package;
        let requirements = package
            .pre_depends
            .iter()
            .chain(&package.depends)
            .map(|group| self.requirement(group).into())
            .collect();
        let mut constrains = Vec::new();
        for relation in package.conflicts.iter().chain(&package.breaks) {
            self.conflict_constraints(&package.name, relation, &mut constrains);
        }
        Dependencies::Known(KnownDependencies {
            requirements,
            constrains,
        })
    }
}

#[cfg(test)]
mod tests;
