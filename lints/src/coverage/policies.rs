//! Policy coverage: of the action stages of each playbook, how many a policy is evaluated
//! before (a stage's `policy:`, or any `always-on-policies:` in `.pbc.yaml`), per playbook
//! and over the environment's tree, with where each uncovered stage is written.

use super::{Location, location};
use crate::facts::{PlaybookFacts, StageKind};
use pbc_compiler::span::SourceMap;

/// An action stage no policy checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uncovered {
    pub stage: String,
    pub location: Option<Location>,
}

/// One playbook's policy coverage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaybookPolicies {
    pub playbook: String,
    pub action_stages: usize,
    pub with_policy: usize,
    pub uncovered: Vec<Uncovered>,
}

/// The policy coverage of an environment's tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyCoverage {
    pub action_stages: usize,
    pub with_policy: usize,
    /// `always-on-policies:` (each covers every action stage).
    pub always_on: Vec<String>,
    /// Per playbook, sorted by name.
    pub playbooks: Vec<PlaybookPolicies>,
}

impl PolicyCoverage {
    /// with_policy / action_stages; 1 when there is no action stage.
    pub fn ratio(&self) -> f64 {
        ratio(self.with_policy, self.action_stages)
    }
}

impl PlaybookPolicies {
    /// with_policy / action_stages; 1 when there is no action stage.
    pub fn ratio(&self) -> f64 {
        ratio(self.with_policy, self.action_stages)
    }
}

fn ratio(n: usize, of: usize) -> f64 {
    if of == 0 { 1.0 } else { n as f64 / of as f64 }
}

/// A ratio as a percentage with one decimal, for people (`87.5%`).
pub fn percent(r: f64) -> String {
    format!("{:.1}%", r * 100.0)
}

/// Computes the coverage of `facts`; `always_on` names the always-on policies.
pub(super) fn policy_coverage(
    facts: &[PlaybookFacts],
    always_on: &[String],
    sources: &SourceMap,
) -> PolicyCoverage {
    let mut out = PolicyCoverage {
        always_on: always_on.to_vec(),
        ..Default::default()
    };
    for pb in facts {
        let mut p = PlaybookPolicies {
            playbook: pb.name.clone(),
            action_stages: 0,
            with_policy: 0,
            uncovered: Vec::new(),
        };
        for s in pb
            .stages
            .iter()
            .filter(|s| matches!(s.kind, StageKind::Action(_)))
        {
            p.action_stages += 1;
            if s.policy.is_some() || !always_on.is_empty() {
                p.with_policy += 1;
            } else {
                p.uncovered.push(Uncovered {
                    stage: s.name.clone(),
                    location: location(sources, Some(s.name_span)),
                });
            }
        }
        out.action_stages += p.action_stages;
        out.with_policy += p.with_policy;
        out.playbooks.push(p);
    }
    out.playbooks.sort_by(|a, b| a.playbook.cmp(&b.playbook));
    out
}
