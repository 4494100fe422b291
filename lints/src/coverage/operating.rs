//! Operating evidence (`pbc coverage --audit LOG [--since T]`): whether the controls the
//! playbooks claim actually operated in a period, read from the verified audit log. A
//! playbook that declares a gate is design evidence; a log in which that gate was decided
//! by named people is operating evidence, what an auditor samples for a period.
//!
//! Each audit entry carries the control tags of its playbook and stage; an entry counts for
//! every control its tags name. For a claimed control, in the period:
//! - runs: the runs with entries for it;
//! - approvals decided: `approval-granted` / `approval-rejected` by a person (not `pbc`);
//! - expired: `approval-expired`, and whether any expired approval was granted after it
//!   (it never should be: expiry denies);
//! - policy decisions: `policy-decision` entries.
//!
//! A control operated when a claiming playbook ran in the period and, if its evidence rule
//! rests on a person's decision (a gate), at least one approval was decided by a person,
//! and no expired approval was later granted.

use super::{ControlReport, CoverageReport};
use crate::Compliance;
use crate::tags::{Resolved, resolve};
use std::collections::{BTreeMap, BTreeSet};

/// One audit entry, as the coverage report needs it.
#[derive(Clone, Debug)]
pub struct LogEvent {
    /// RFC 3339.
    pub time: String,
    pub event: String,
    pub actor: String,
    pub run: Option<String>,
    /// The control tags the entry carries, as written.
    pub tags: Vec<String>,
    /// `details.approval`, for approval events.
    pub approval: Option<String>,
}

/// What the log shows of one control.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Operating {
    pub runs: usize,
    pub approvals_decided: usize,
    /// The people who decided, sorted.
    pub deciders: Vec<String>,
    pub expired: usize,
    /// Expired approvals granted afterwards (must be 0).
    pub granted_after_expiry: usize,
    pub policy_decisions: usize,
    pub operated: bool,
    /// Why not, when it did not operate.
    pub why_not: Option<String>,
}

/// The log read and the period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatingReport {
    /// The log, as given.
    pub source: String,
    /// RFC 3339, or none: the whole log.
    pub since: Option<String>,
    /// Entries in the period.
    pub entries: usize,
    /// By canonical control tag (`SOC2-CC6.3`), for the controls claimed in the report.
    pub controls: BTreeMap<String, Operating>,
}

/// Evidence kinds that rest on a person's decision at a gate.
const GATE_KINDS: &[&str] = &[
    "human-gate",
    "production-action-gates",
    "role-approvers",
    "gate-sla",
];

fn needs_gate(c: &ControlReport) -> bool {
    c.rule
        .as_ref()
        .is_some_and(|r| r.requires.iter().any(|k| GATE_KINDS.contains(k)))
}

/// Assesses every claimed control of `report` against `events` (already restricted to the
/// period) and records the result in the report.
pub fn attach(
    report: &mut CoverageReport,
    comp: &Compliance,
    events: &[LogEvent],
    source: String,
    since: Option<String>,
) {
    // Tallies by canonical tag.
    #[derive(Default)]
    struct Tally {
        runs: BTreeSet<String>,
        decided: usize,
        deciders: BTreeSet<String>,
        expired: BTreeSet<String>,
        granted: Vec<(String, String)>,
        policy: usize,
    }
    let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
    let mut canonical: BTreeMap<&str, Option<String>> = BTreeMap::new();
    for e in events {
        let mut seen = BTreeSet::new();
        for t in &e.tags {
            let tag = canonical
                .entry(t.as_str())
                .or_insert_with(|| match resolve(&comp.catalogs, t) {
                    Resolved::Control { catalog, control } => Some(catalog.tag(&control.id)),
                    _ => None,
                })
                .clone();
            let Some(tag) = tag else { continue };
            if !seen.insert(tag.clone()) {
                continue;
            }
            let x = tally.entry(tag).or_default();
            if let Some(r) = &e.run {
                x.runs.insert(r.clone());
            }
            match e.event.as_str() {
                "approval-granted" | "approval-rejected" if e.actor != "pbc" => {
                    x.decided += 1;
                    x.deciders.insert(e.actor.clone());
                    if e.event == "approval-granted"
                        && let Some(a) = &e.approval
                    {
                        x.granted.push((a.clone(), e.time.clone()));
                    }
                }
                "approval-expired" => {
                    if let Some(a) = &e.approval {
                        x.expired.insert(a.clone());
                    }
                }
                "policy-decision" => x.policy += 1,
                _ => {}
            }
        }
    }
    let mut controls = BTreeMap::new();
    for env in &report.environments {
        for f in &env.frameworks {
            for c in f.controls.iter().filter(|c| !c.claims.is_empty()) {
                if controls.contains_key(&c.tag) {
                    continue;
                }
                let t = tally.remove(&c.tag).unwrap_or_default();
                let granted_after_expiry = t
                    .granted
                    .iter()
                    .filter(|(a, _)| t.expired.contains(a))
                    .count();
                let why_not = if t.runs.is_empty() {
                    Some("no run of a claiming playbook in the period".to_string())
                } else if needs_gate(c) && t.decided == 0 {
                    Some("no approval was decided by a person in the period".to_string())
                } else if granted_after_expiry > 0 {
                    Some(format!(
                        "{granted_after_expiry} approval(s) granted after they expired"
                    ))
                } else {
                    None
                };
                let op = Operating {
                    runs: t.runs.len(),
                    approvals_decided: t.decided,
                    deciders: t.deciders.into_iter().collect(),
                    expired: t.expired.len(),
                    granted_after_expiry,
                    policy_decisions: t.policy,
                    operated: why_not.is_none(),
                    why_not,
                };
                controls.insert(c.tag.clone(), op);
            }
        }
    }
    report.operating = Some(OperatingReport {
        source,
        since,
        entries: events.len(),
        controls,
    });
}

/// The Markdown section.
pub(crate) fn markdown(out: &mut String, o: &OperatingReport) {
    use std::fmt::Write as _;
    let md = |s: &str| s.replace('|', "\\|").replace(['\n', '\r'], " ");
    let _ = writeln!(
        out,
        "## Operating evidence\n\nFrom the verified audit log `{}`{}: {} entries. A control operated when a claiming playbook ran and, if its rule rests on a gate, a person decided at least one approval; an expired approval never counts as granted.\n",
        md(&o.source),
        o.since
            .as_ref()
            .map(|s| format!(", since {}", md(s)))
            .unwrap_or_default(),
        o.entries
    );
    if o.controls.is_empty() {
        out.push_str("No claimed control.\n\n");
        return;
    }
    out.push_str("| Control | Runs | Approvals decided | By | Expired | Policy decisions | Operated |\n| --- | ---: | ---: | --- | ---: | ---: | --- |\n");
    for (tag, op) in &o.controls {
        let verdict = match &op.why_not {
            None => "yes".to_string(),
            Some(w) => format!("**no**: {}", md(w)),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} | {} |",
            md(tag),
            op.runs,
            op.approvals_decided,
            op.deciders
                .iter()
                .map(|d| md(d))
                .collect::<Vec<_>>()
                .join(", "),
            op.expired,
            op.policy_decisions,
            verdict
        );
    }
    out.push('\n');
}

/// The JSON object.
pub(crate) fn json(o: &OperatingReport) -> serde_json::Value {
    use serde_json::json;
    json!({
        "source": o.source,
        "since": o.since,
        "entries": o.entries,
        "controls": o.controls.iter().map(|(tag, op)| json!({
            "tag": tag,
            "runs": op.runs,
            "approvals_decided": op.approvals_decided,
            "deciders": op.deciders,
            "expired": op.expired,
            "granted_after_expiry": op.granted_after_expiry,
            "policy_decisions": op.policy_decisions,
            "operated": op.operated,
            "why_not": op.why_not,
        })).collect::<Vec<_>>(),
    })
}
