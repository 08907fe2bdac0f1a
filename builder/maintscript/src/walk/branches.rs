//! Branch points the walk cannot decide.

use super::*;

impl<'a> Walker<'a> {
    /// A branch point the walk cannot decide: every way is walked as
    /// conditional, and what they assign is merged (a variable the ways
    /// disagree on is no longer known).
    pub(super) fn branches(&mut self, ways: &[Branch<'_>]) -> Flow {
        let start = self.scope.clone();
        let mut ended = None;
        let mut failed = Vec::new();
        let mut continuing: Vec<(Scope<'a>, Status)> = Vec::new();
        self.maybe += 1;
        for way in ways {
            self.scope = start.clone();
            let flow = match way {
                Branch::List(list) => self.list(list),
                Branch::Elses(elses) => self.elses(elses),
                Branch::Pipeline(pipeline) => self.pipeline(pipeline),
                Branch::Nothing => Flow::Next(Status::Unknown),
            };
            match flow {
                Flow::Next(status) => continuing.push((self.scope.clone(), status)),
                Flow::Break | Flow::Continue => {
                    continuing.push((self.scope.clone(), Status::Unknown));
                }
                Flow::Exit | Flow::Return(_) => {
                    ended.get_or_insert(flow);
                }
                Flow::Fail(line) => failed.push(line),
            }
        }
        self.maybe -= 1;
        // A way that fails the script is not one a built image took: every
        // package of it is configured. What the other ways do is then not
        // conditional on it; the build report says what was assumed.
        if continuing.is_empty() && ended.is_none() {
            if let Some(&line) = failed.first() {
                return Flow::Fail(line);
            }
        } else {
            for line in failed {
                self.out.assumed.push(line);
            }
        }
        if ended.is_some() {
            self.may_have_ended = true;
        }
        let Some(((first, status), rest)) = continuing.split_first() else {
            self.scope = start;
            return ended.unwrap_or(Flow::Next(Status::Unknown));
        };
        let mut merged = first.clone();
        let mut status = *status;
        for (scope, other) in rest {
            if *other != status {
                status = Status::Unknown;
            }
            let names: Vec<String> = merged
                .vars
                .keys()
                .chain(scope.vars.keys())
                .cloned()
                .collect();
            for name in names {
                let (a, b) = (merged.vars.get(&name), scope.vars.get(&name));
                if a != b {
                    merged.vars.insert(name, None);
                }
            }
            if merged.positional != scope.positional {
                let n = merged.positional.len().max(scope.positional.len());
                merged.positional = vec![None; n];
            }
        }
        self.scope = merged;
        Flow::Next(status)
    }
}
