//! The package universe: several suites' Packages indexes merged into one
//! candidate per package name, the highest version winning (as apt picks its
//! candidate version with default pins).

use std::collections::BTreeMap;

use crate::packages::BinaryPackage;
use crate::relation::Relation;

/// One candidate package and the suite it came from.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The package.
    pub package: BinaryPackage,
    /// The suite, as the recipe names it.
    pub suite: String,
}

/// Index of a candidate in a [`Universe`].
pub type CandidateId = usize;

/// Every installable candidate for one architecture.
#[derive(Debug, Default)]
pub struct Universe {
    architecture: String,
    candidates: Vec<Candidate>,
    by_name: BTreeMap<String, CandidateId>,
    /// virtual name -> (provider, the Provides relation), in name order.
    providers: BTreeMap<String, Vec<(CandidateId, Relation)>>,
}

impl Universe {
    /// An empty universe for `architecture`.
    pub fn new(architecture: &str) -> Self {
        Universe {
            architecture: architecture.to_owned(),
            ..Universe::default()
        }
    }

    /// The architecture.
    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    /// Adds a package from `suite`. Packages for other architectures are
    /// ignored; of two versions of one name the higher stays, and of two
    /// equal versions the one added first (the earlier suite in the recipe).
    pub fn add(&mut self, package: BinaryPackage, suite: &str) {
        if package.architecture != self.architecture && package.architecture != "all" {
            return;
        }
        let candidate = Candidate {
            package,
            suite: suite.to_owned(),
        };
        match self.by_name.get(&candidate.package.name) {
            Some(&existing) => {
                if candidate.package.version > self.candidates[existing].package.version {
                    self.candidates[existing] = candidate;
                }
            }
            None => {
                self.by_name
                    .insert(candidate.package.name.clone(), self.candidates.len());
                self.candidates.push(candidate);
            }
        }
    }

    /// Builds the Provides index; call after the last [`Universe::add`].
    pub fn finish(&mut self) {
        self.providers.clear();
        for &id in self.by_name.values() {
            for provided in &self.candidates[id].package.provides {
                self.providers
                    .entry(provided.name.clone())
                    .or_default()
                    .push((id, provided.clone()));
            }
        }
    }

    /// The candidate with this name.
    pub fn get(&self, name: &str) -> Option<CandidateId> {
        self.by_name.get(name).copied()
    }

    /// A candidate by id.
    pub fn candidate(&self, id: CandidateId) -> &Candidate {
        &self.candidates[id]
    }

    /// Real packages providing `name`, in package-name order.
    pub fn providers(&self, name: &str) -> &[(CandidateId, Relation)] {
        self.providers.get(name).map_or(&[], Vec::as_slice)
    }

    /// Every candidate, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (CandidateId, &Candidate)> {
        self.by_name.values().map(|&id| (id, &self.candidates[id]))
    }

    /// How many candidates there are.
    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }
}
