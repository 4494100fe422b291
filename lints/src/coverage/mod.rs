//! `pbc coverage`: per control of the selected catalogs, per environment, whether the
//! playbooks claim it and whether the claim's evidence is there.
//!
//! [`coverage`] builds a [`CoverageReport`] from resolved Playbook documents; [`markdown`],
//! [`json`], [`csv`] and [`html`] render it. The output is deterministic: environments sorted
//! by name (none first), catalogs in load order, controls in catalog order, claims by file and
//! line; no timestamps; paths as the source map shows them (relative to the working
//! directory).

mod csv;
mod html;
mod json;
mod markdown;
pub mod matrix;
pub mod operating;
pub mod oscal;
mod policies;
mod provenance;
mod related;

pub use csv::render as csv;
pub use html::render as html;
pub use json::render as json;
pub use markdown::render as markdown;
pub use policies::{PlaybookPolicies, PolicyCoverage, Uncovered, percent};
pub use provenance::{CatalogVersion, Provenance, Source, source_date};
pub use related::Related;

use crate::Compliance;
use crate::catalog::{Catalog, Control};
use crate::evidence::{Scope, evaluate};
use crate::facts::PlaybookFacts;
use crate::tags::{Resolved, resolve};
use pbc_compiler::render::position;
use pbc_compiler::span::{SourceMap, Span};
use pbc_compiler::yaml::Node;
use std::collections::BTreeMap;

type Tag = crate::facts::Spanned<String>;

/// A control's coverage status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Claimed, and every claim's evidence is there.
    Covered,
    /// Claimed, and at least one claim lacks evidence its rule requires.
    ClaimedWithoutEvidence,
    /// Claimed, but no evidence rule exists for the control: never counted as covered.
    ClaimedNoRule,
    /// No playbook claims it.
    NotClaimed,
    /// Claimed, but a requirement depends on the environment and the claiming playbook is
    /// in none (not under `overlays/<env>`): neither covered nor a gap.
    NotAssessed,
    /// The Statement of Applicability excludes it (`compliance.applicability`, with a
    /// justification): not a gap.
    NotApplicable,
    /// The Statement of Applicability says something outside the playbooks meets it (with
    /// a reference): not a gap.
    SatisfiedExternally,
}

impl Status {
    /// The status as the contract spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Covered => "covered",
            Status::ClaimedWithoutEvidence => "claimed-without-evidence",
            Status::ClaimedNoRule => "claimed-no-rule",
            Status::NotClaimed => "not-claimed",
            Status::NotAssessed => "not-assessed",
            Status::NotApplicable => "not-applicable",
            Status::SatisfiedExternally => "satisfied-externally",
        }
    }

    /// For people: `claimed, no rule`.
    pub fn label(self) -> &'static str {
        match self {
            Status::Covered => "covered",
            Status::ClaimedWithoutEvidence => "claimed without evidence",
            Status::ClaimedNoRule => "claimed, no rule",
            Status::NotClaimed => "not claimed",
            Status::NotAssessed => "not assessed",
            Status::NotApplicable => "not applicable",
            Status::SatisfiedExternally => "satisfied externally",
        }
    }

    /// True for a status the report counts as a gap (claimed without evidence, claimed
    /// with no rule, not claimed).
    pub fn is_gap(self) -> bool {
        matches!(
            self,
            Status::ClaimedWithoutEvidence | Status::ClaimedNoRule | Status::NotClaimed
        )
    }
}

/// `file:line`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub file: String,
    pub line: u32,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One piece of evidence, found or missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceItem {
    /// The evidence kind (`audit-sink`).
    pub requirement: &'static str,
    /// What was found, or what is missing.
    pub text: String,
    /// Where it was found, or where it should be added.
    pub location: Option<Location>,
    /// For missing evidence: what to write there.
    pub hint: Option<String>,
}

/// One claim of a control.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub playbook: String,
    /// `None` for a playbook-level claim.
    pub stage: Option<String>,
    /// The tag as written.
    pub tag: String,
    /// The predecessor control id when the claim comes from a tag of the superseded edition
    /// (`A.14.2.1` claiming 2022 `8.25`).
    pub via: Option<String>,
    /// Where the tag is.
    pub location: Option<Location>,
    /// `None` when the control has no evidence rule.
    pub evidence_found: Option<bool>,
    pub evidence: Vec<EvidenceItem>,
    pub missing: Vec<EvidenceItem>,
    /// Why the claim could not be assessed (a requirement depends on an environment the
    /// playbook is not in).
    pub not_assessed: Option<String>,
}

/// The rule a control is judged by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    pub requires: Vec<&'static str>,
    pub rationale: String,
}

/// One control of a catalog, in one environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlReport {
    pub id: String,
    /// The canonical tag (`SOC2-CC7.1`).
    pub tag: String,
    pub name: String,
    pub group: Option<String>,
    pub status: Status,
    pub rule: Option<RuleInfo>,
    pub claims: Vec<Claim>,
    /// The Statement of Applicability's entry for the control.
    pub applicability: Option<ApplicabilityInfo>,
    /// Covered controls the crosswalk links to this one (context, never coverage).
    pub related: Vec<Related>,
}

/// What the Statement of Applicability says of a control.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplicabilityInfo {
    /// `not-applicable` or `satisfied-externally`.
    pub status: &'static str,
    pub justification: Option<String>,
    pub reference: Option<String>,
}

/// Counts per status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub controls: usize,
    pub covered: usize,
    pub claimed_without_evidence: usize,
    pub claimed_no_rule: usize,
    pub not_claimed: usize,
    pub not_assessed: usize,
    pub not_applicable: usize,
    pub satisfied_externally: usize,
}

impl Totals {
    fn add(&mut self, s: Status) {
        self.controls += 1;
        match s {
            Status::Covered => self.covered += 1,
            Status::ClaimedWithoutEvidence => self.claimed_without_evidence += 1,
            Status::ClaimedNoRule => self.claimed_no_rule += 1,
            Status::NotClaimed => self.not_claimed += 1,
            Status::NotAssessed => self.not_assessed += 1,
            Status::NotApplicable => self.not_applicable += 1,
            Status::SatisfiedExternally => self.satisfied_externally += 1,
        }
    }
}

/// One catalog in one environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameworkReport {
    pub catalog: String,
    pub framework: String,
    pub title: String,
    pub edition: String,
    pub totals: Totals,
    pub controls: Vec<ControlReport>,
}

/// A tag that names no control (a PB5001/PB5003 error); listed so that a reviewer sees what
/// the report did not count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnresolvedTag {
    pub playbook: String,
    pub stage: Option<String>,
    pub tag: String,
    pub location: Option<Location>,
}

/// One environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvironmentReport {
    /// `None`: documents outside any `overlays/<env>`.
    pub environment: Option<String>,
    pub production: bool,
    /// The playbooks reported, by name, sorted.
    pub playbooks: Vec<String>,
    pub frameworks: Vec<FrameworkReport>,
    pub unresolved: Vec<UnresolvedTag>,
    /// Action stages a policy checks.
    pub policies: PolicyCoverage,
}

impl EnvironmentReport {
    /// The environment's name for people.
    pub fn label(&self) -> &str {
        self.environment.as_deref().unwrap_or("(no environment)")
    }

    /// The marker after the name of a production environment, unless its name already says
    /// so: `prod (production)`, but `production` alone.
    pub fn production_marker(&self) -> &'static str {
        if self.production && self.environment.as_deref() != Some("production") {
            " (production)"
        } else {
            ""
        }
    }

    /// A slug for ids and file names (`production`, `none`).
    pub fn slug(&self) -> String {
        slug(self.environment.as_deref().unwrap_or("none"))
    }
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoverageReport {
    /// The catalogs reported: (id, title).
    pub catalogs: Vec<(String, String)>,
    pub environments: Vec<EnvironmentReport>,
    /// What the report was made from and by.
    pub provenance: Provenance,
    /// With `--audit`: whether the claimed controls operated, from the audit log.
    pub operating: Option<operating::OperatingReport>,
}

/// Lower-case ASCII letters, digits and `-` (for HTML ids).
pub(crate) fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn location(sources: &SourceMap, span: Option<Span>) -> Option<Location> {
    let p = position(sources, span?)?;
    Some(Location {
        file: p.file,
        line: p.line,
    })
}

/// Builds the coverage report.
///
/// `inputs`: the resolved Playbook documents of each environment (`None`: outside any
/// `overlays/<env>`); documents that are not `agenticops/v1` Playbooks are ignored, and each
/// is read through the typed model (whose diagnostics `pbc check` reports, not this). `requested`: the
/// catalog ids asked for beside the defaults (`soc2`, `iso27001-2022`); an unknown id is an
/// `Err` with a message for the user. `sources` resolves spans to `file:line`.
pub fn coverage(
    comp: &Compliance,
    sources: &SourceMap,
    inputs: &[(Option<String>, Vec<Node>)],
    requested: &[String],
) -> Result<CoverageReport, String> {
    let selected = comp.catalogs.select(requested)?;
    // Merge inputs of the same environment.
    let mut by_env: BTreeMap<Option<String>, Vec<&Node>> = BTreeMap::new();
    for (env, docs) in inputs {
        by_env
            .entry(env.clone())
            .or_default()
            .extend(docs.iter().filter(|d| pbc_compiler::check::is_playbook(d)));
    }
    // The Statement of Applicability by (catalog, control); entries naming no control are
    // diagnosed when the configuration is loaded (`Compliance::load`).
    let mut soa: BTreeMap<(String, String), ApplicabilityInfo> = BTreeMap::new();
    for a in &comp.settings.applicability {
        if let Resolved::Control { catalog, control } = resolve(&comp.catalogs, &a.control) {
            soa.insert(
                (catalog.id.clone(), control.id.clone()),
                ApplicabilityInfo {
                    status: a.status.as_str(),
                    justification: a.justification.clone(),
                    reference: a.reference.clone(),
                },
            );
        }
    }
    let environments = by_env
        .into_iter()
        .map(|(env, docs)| environment(comp, sources, env, &docs, &selected, &soa))
        .collect();
    Ok(CoverageReport {
        provenance: Provenance::of(comp, &selected),
        catalogs: selected
            .iter()
            .map(|c| (c.id.clone(), c.title.clone()))
            .collect(),
        environments,
        operating: None,
    })
}

fn environment(
    comp: &Compliance,
    sources: &SourceMap,
    env: Option<String>,
    docs: &[&Node],
    selected: &[&Catalog],
    soa: &BTreeMap<(String, String), ApplicabilityInfo>,
) -> EnvironmentReport {
    // The model of each document; its diagnostics are `pbc check`'s business, not the report's.
    let mut sink = Vec::new();
    let opts = pbc_compiler::model::ModelOptions::default();
    let facts: Vec<PlaybookFacts> = docs
        .iter()
        .filter_map(|d| pbc_compiler::model::from_document(d, sources, &opts, &mut sink))
        .map(|pb| comp.facts(&pb, env.as_deref()))
        .collect();
    // (catalog id, control id) → claims
    let mut claims: BTreeMap<(String, String), Vec<Claim>> = BTreeMap::new();
    let mut unresolved = Vec::new();
    for pb in &facts {
        let mut lists: Vec<(Scope, Option<String>, &[Tag])> =
            vec![(Scope::Playbook, None, &pb.tags)];
        for (i, s) in pb.stages.iter().enumerate() {
            lists.push((Scope::Stage(i), Some(s.name.clone()), &s.tags));
        }
        for (scope, stage, tags) in lists {
            for t in tags {
                let loc = location(sources, Some(t.span));
                let (catalog, control) = match resolve(&comp.catalogs, &t.value) {
                    Resolved::Control { catalog, control } => (catalog, control),
                    _ => {
                        unresolved.push(UnresolvedTag {
                            playbook: pb.name.clone(),
                            stage: stage.clone(),
                            tag: t.value.clone(),
                            location: loc,
                        });
                        continue;
                    }
                };
                let mut targets: Vec<(&Catalog, &Control, Option<String>)> =
                    vec![(catalog, control, None)];
                for (c, s) in comp.catalogs.successors_of(catalog, &control.id) {
                    targets.push((c, s, Some(control.id.clone())));
                }
                for (cat, ctl, via) in targets {
                    let list = claims.entry((cat.id.clone(), ctl.id.clone())).or_default();
                    if list.iter().any(|c| {
                        c.playbook == pb.name
                            && c.stage == stage
                            && c.tag == t.value
                            && c.via == via
                    }) {
                        continue; // a repeated tag (PB5004) claims once
                    }
                    let mut claim = Claim {
                        playbook: pb.name.clone(),
                        stage: stage.clone(),
                        tag: t.value.clone(),
                        via,
                        location: loc.clone(),
                        evidence_found: None,
                        evidence: Vec::new(),
                        missing: Vec::new(),
                        not_assessed: None,
                    };
                    if let Some(rule) = comp.rules.get(&cat.id, &ctl.id) {
                        let o = evaluate(rule, pb, scope, &comp.settings);
                        claim.evidence_found = Some(o.ok());
                        if pb.environment.is_none()
                            && let Some(k) = rule.requires.iter().find(|k| k.environment_scoped())
                        {
                            claim.not_assessed = Some(format!(
                                "`{}` depends on the environment, and `{}` is in none (not under `overlays/<env>`)",
                                k.name(),
                                pb.name
                            ));
                        }
                        claim.evidence = o
                            .found
                            .iter()
                            .map(|f| EvidenceItem {
                                requirement: f.kind.name(),
                                text: f.what.clone(),
                                location: location(sources, f.span),
                                hint: None,
                            })
                            .collect();
                        claim.missing = o
                            .missing
                            .iter()
                            .map(|m| EvidenceItem {
                                requirement: m.kind.name(),
                                text: m.what.clone(),
                                location: location(sources, Some(m.at)),
                                hint: Some(m.hint.clone()),
                            })
                            .collect();
                    }
                    list.push(claim);
                }
            }
        }
    }
    let mut frameworks: Vec<FrameworkReport> = selected
        .iter()
        .map(|cat| {
            let mut totals = Totals::default();
            let controls = cat
                .controls
                .iter()
                .map(|ctl| {
                    let mut list = claims
                        .remove(&(cat.id.clone(), ctl.id.clone()))
                        .unwrap_or_default();
                    list.sort_by(|a, b| {
                        (&a.location, &a.playbook, &a.stage, &a.tag, &a.via).cmp(&(
                            &b.location,
                            &b.playbook,
                            &b.stage,
                            &b.tag,
                            &b.via,
                        ))
                    });
                    let rule = comp.rules.get(&cat.id, &ctl.id);
                    let applicability = soa.get(&(cat.id.clone(), ctl.id.clone())).cloned();
                    let status = match &applicability {
                        Some(a) if a.status == "not-applicable" => Status::NotApplicable,
                        Some(_) => Status::SatisfiedExternally,
                        None if list.is_empty() => Status::NotClaimed,
                        None if rule.is_none() => Status::ClaimedNoRule,
                        None if list.iter().any(|c| c.evidence_found == Some(false)) => {
                            Status::ClaimedWithoutEvidence
                        }
                        None if list.iter().any(|c| c.not_assessed.is_some()) => {
                            Status::NotAssessed
                        }
                        None => Status::Covered,
                    };
                    totals.add(status);
                    ControlReport {
                        id: ctl.id.clone(),
                        tag: cat.tag(&ctl.id),
                        name: ctl.name.clone(),
                        group: ctl.group.clone(),
                        status,
                        rule: rule.map(|r| RuleInfo {
                            requires: r.requires.iter().map(|k| k.name()).collect(),
                            rationale: r.rationale.clone(),
                        }),
                        claims: list,
                        applicability,
                        related: Vec::new(),
                    }
                })
                .collect();
            FrameworkReport {
                catalog: cat.id.clone(),
                framework: cat.framework.clone(),
                title: cat.title.clone(),
                edition: cat.edition.clone(),
                totals,
                controls,
            }
        })
        .collect();
    related::fill(
        &mut frameworks,
        &comp.catalogs,
        crate::crosswalk::Crosswalk::builtin(),
    );
    let mut playbooks: Vec<String> = facts.iter().map(|f| f.name.clone()).collect();
    playbooks.sort();
    playbooks.dedup();
    unresolved.sort_by(|a, b| (&a.location, &a.tag).cmp(&(&b.location, &b.tag)));
    let policies = policies::policy_coverage(&facts, &comp.settings.always_on_policies, sources);
    EnvironmentReport {
        policies,
        production: comp.settings.is_production(env.as_deref()),
        environment: env,
        playbooks,
        frameworks,
        unresolved,
    }
}
