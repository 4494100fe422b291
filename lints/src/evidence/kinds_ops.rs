//! The operational evidence kinds: capacity (`rate-limits`, `stage-timeouts`), processing
//! integrity (`output-schemas`, `input-schema`), what checks an agent's and an action's work
//! (`stage-guardrails`, `action-policies`), and how gates hold under pressure
//! (`gate-escalation`, `two-person-approval`).
//!
//! Like the other kinds, each records the first place it found evidence; the caller then
//! checks that every target in `targets.emit` enforces the constructs the kind rests on
//! ([`EvidenceKind::constructs`]). `stage-timeouts`, `output-schemas` and `input-schema`
//! rest on no construct of the enforcement table: they are declarations.

use super::Scope;
use super::eval::{Ctx, has_people_gate};
use super::{EvidenceKind, Settings};
use crate::facts::{Approval, Gate, PlaybookFacts, StageFacts, StageKind};

/// Stages that can run: a `high`-risk stage is refused and never runs.
fn runnable<'a>(pb: &PlaybookFacts, stages: &[&'a StageFacts]) -> Vec<&'a StageFacts> {
    stages
        .iter()
        .copied()
        .filter(|s| !matches!(s.gate(pb), Gate::Refused))
        .collect()
}

/// Evaluates one of this file's kinds (the caller dispatches only these).
pub(super) fn eval(
    c: &mut Ctx<'_>,
    kind: EvidenceKind,
    pb: &PlaybookFacts,
    scope: Scope,
    stages: &[&StageFacts],
    settings: &Settings,
) {
    let spec = pb.spec_anchor();
    let run = runnable(pb, stages);
    match kind {
        EvidenceKind::RateLimits => rate_limits(c, pb, &run),
        EvidenceKind::StageTimeouts => {
            if run.is_empty() {
                c.found(|| "no stage that can run", None);
            }
            for s in &run {
                match &s.timeout {
                    Some(t) => c.found(
                        || format!("stage `{}` has timeout {}", s.name, t.value),
                        Some(t.span),
                    ),
                    None => c.missing(
                        format!("a `timeout` on stage `{}`", s.name),
                        s.name_span,
                        format!("set `timeout:` (e.g. `10m`) on stage `{}`", s.name),
                    ),
                }
            }
        }
        EvidenceKind::OutputSchemas => {
            if run.is_empty() {
                c.found(|| "no stage that can run", None);
            }
            for s in &run {
                match &s.output_schema {
                    Some(o) => c.found(
                        || format!("stage `{}` declares output schema `{}`", s.name, o.value),
                        Some(o.span),
                    ),
                    None => c.missing(
                        format!("an `output-schema` on stage `{}`", s.name),
                        s.name_span,
                        format!(
                            "set `output-schema: FILE.json` on stage `{}` (a JSON Schema its output must match)",
                            s.name
                        ),
                    ),
                }
            }
        }
        EvidenceKind::InputSchema => match &pb.input_schema {
            Some(i) => c.found(
                || format!("the trigger's input is described by `{}`", i.value),
                Some(i.span),
            ),
            None => c.missing(
                "an input schema for the trigger (`spec.trigger.input-schema` or `spec.input-schema`)",
                pb.trigger_key.unwrap_or(spec),
                "give the trigger `input-schema: FILE.json` (`trigger: {event: NAME, input-schema: FILE.json}`)",
            ),
        },
        EvidenceKind::StageGuardrails => {
            let agents: Vec<&&StageFacts> = run
                .iter()
                .filter(|s| matches!(s.kind, StageKind::Agent(_)))
                .collect();
            if agents.is_empty() {
                c.found(|| "no agent stage to guard", None);
            }
            for s in agents {
                match s.guardrails.first() {
                    Some(g) => c.found(
                        || {
                            let names: Vec<String> =
                                s.guardrails.iter().map(|g| format!("`{}`", g.value)).collect();
                            format!("agent stage `{}` is checked by {}", s.name, names.join(", "))
                        },
                        Some(g.span),
                    ),
                    None => c.missing(
                        format!("guardrails of its own on agent stage `{}`", s.name),
                        s.name_span,
                        format!(
                            "add `guardrails: [GUARDRAIL]` (e.g. `pii-detection`) to stage `{}`",
                            s.name
                        ),
                    ),
                }
            }
        }
        EvidenceKind::ActionPolicies => {
            let actions: Vec<&&StageFacts> = run.iter().filter(|s| s.is_action()).collect();
            if actions.is_empty() {
                c.found(|| "no `action:` stage to check", None);
            }
            for s in actions {
                if let Some(p) = &s.policy {
                    c.found(
                        || format!("{} is checked by policy `{}`", s.describe(), p.value),
                        Some(p.span),
                    );
                } else if let Some(p) = settings.always_on_policies.first() {
                    c.found(
                        || format!("{} is checked by always-on policy `{p}`", s.describe()),
                        Some(s.name_span),
                    );
                } else {
                    c.missing(
                        format!("a policy that checks {} before it runs", s.describe()),
                        s.name_span,
                        format!(
                            "give stage `{}` a `policy:` (defined under `policies:` in .pbc.yaml), or list one in `always-on-policies:`",
                            s.name
                        ),
                    );
                }
            }
        }
        EvidenceKind::GateEscalation => {
            let gated: Vec<&&StageFacts> =
                run.iter().filter(|s| has_people_gate(&s.gate(pb))).collect();
            if gated.is_empty() {
                no_gate(c, pb, scope, stages, "a human gate with an `escalation` level");
            }
            for s in gated {
                match s.escalation.first() {
                    Some(at) => c.found(
                        || format!("the gate of stage `{}` escalates", s.name),
                        Some(*at),
                    ),
                    None => c.missing(
                        format!("an `escalation` level on the gate of stage `{}`", s.name),
                        s.approval_span.unwrap_or(s.name_span),
                        format!(
                            "add `escalation: [{{after: DURATION, approvers: [ROLE], notify: [CHANNEL]}}]` to stage `{}` (with an `sla`)",
                            s.name
                        ),
                    ),
                }
            }
        }
        EvidenceKind::TwoPersonApproval => {
            let gated: Vec<&&StageFacts> =
                run.iter().filter(|s| has_people_gate(&s.gate(pb))).collect();
            if gated.is_empty() {
                no_gate(c, pb, scope, stages, "a human gate that needs two approvers");
            }
            for s in gated {
                two_person(c, s);
            }
        }
        _ => {}
    }
}

/// `rate-limits`: every action that can run is limited.
fn rate_limits(c: &mut Ctx<'_>, pb: &PlaybookFacts, run: &[&StageFacts]) {
    let mut actions = 0;
    for s in run {
        let StageKind::Action(a) = &s.kind else {
            continue;
        };
        actions += 1;
        match pb.rate_limits.iter().find(|(act, _)| *act == a.value) {
            Some((act, v)) => c.found(
                || format!("`{act}` is limited to {}", v.value),
                Some(v.span),
            ),
            None => c.missing(
                format!("a rate limit on `{}` ({})", a.value, s.describe()),
                pb.rate_limits_key.unwrap_or(s.name_span),
                format!(
                    "add `\"{}\": \"N per hour\"` under `spec.rate-limits`",
                    a.value
                ),
            ),
        }
    }
    if actions == 0 {
        c.found(|| "no `action:` stage to rate-limit", None);
    }
}

/// The least `min-approvals` a stage's gate asks for (1 when none is written): on a
/// conditional gate, over its manual branches (a branch without its own uses the stage's).
fn least_approvals(s: &StageFacts) -> (u32, Option<crate::facts::Spanned<u32>>) {
    let stage = s.min_approvals.clone();
    if s.approval == Approval::Conditional && s.branches.iter().any(|b| b.manual) {
        let mut least: Option<(u32, Option<crate::facts::Spanned<u32>>)> = None;
        for b in s.branches.iter().filter(|b| b.manual) {
            let m = b.min_approvals.clone().or_else(|| stage.clone());
            let n = m.as_ref().map(|m| m.value).unwrap_or(1);
            if least.as_ref().is_none_or(|(l, _)| n < *l) {
                least = Some((n, m));
            }
        }
        return least.unwrap_or((1, None));
    }
    (stage.as_ref().map(|m| m.value).unwrap_or(1), stage)
}

fn two_person(c: &mut Ctx<'_>, s: &StageFacts) {
    let (n, at) = least_approvals(s);
    if n >= 2 {
        c.found(
            || {
                format!(
                    "the gate of stage `{}` needs {n} distinct approvers",
                    s.name
                )
            },
            at.map(|m| m.span).or(s.approval_span),
        );
    } else {
        c.missing(
            format!(
                "two distinct approvers on the gate of stage `{}` (it needs {n})",
                s.name
            ),
            at.map(|m| m.span)
                .or(s.approval_span)
                .unwrap_or(s.name_span),
            format!("set `min-approvals: 2` on stage `{}` (and on each manual branch that sets its own)", s.name),
        );
    }
}

/// No human gate where the kind needs one.
fn no_gate(c: &mut Ctx<'_>, pb: &PlaybookFacts, scope: Scope, stages: &[&StageFacts], what: &str) {
    let (what, at) = match scope {
        Scope::Stage(_) => (
            format!(
                "{what} on stage `{}`",
                stages.first().map(|s| s.name.as_str()).unwrap_or("")
            ),
            stages
                .first()
                .map(|s| s.name_span)
                .unwrap_or(pb.spec_anchor()),
        ),
        Scope::Playbook => (
            format!("{what} on some stage"),
            pb.stages_key.unwrap_or(pb.spec_anchor()),
        ),
    };
    c.missing(
        what,
        at,
        "add `approval: manual` with `approvers:` to the stage a person must decide",
    );
}
