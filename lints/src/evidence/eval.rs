//! Evaluating one rule over a playbook's facts: for a claim at playbook or stage level,
//! each evidence kind the rule requires is looked for, and the result lists what was found
//! and what is missing, each with the span it refers to.

use super::*;
use pbc_compiler::enforcement::{mechanism_in, unenforced_in};

/// Evaluates every requirement of a rule.
pub fn evaluate(
    rule: &EvidenceRule,
    pb: &PlaybookFacts,
    scope: Scope,
    settings: &Settings,
) -> Outcome {
    evaluate_with(rule, pb, scope, settings, true)
}

/// [`evaluate`] without describing the evidence found ([`Outcome::found`] stays empty):
/// what `check` needs.
pub fn evaluate_missing(
    rule: &EvidenceRule,
    pb: &PlaybookFacts,
    scope: Scope,
    settings: &Settings,
) -> Outcome {
    evaluate_with(rule, pb, scope, settings, false)
}

fn evaluate_with(
    rule: &EvidenceRule,
    pb: &PlaybookFacts,
    scope: Scope,
    settings: &Settings,
    describe: bool,
) -> Outcome {
    let mut out = Outcome::default();
    for k in &rule.requires {
        let before = out.missing.len();
        let relied = eval_kind(*k, pb, scope, settings, describe, &mut out);
        if out.missing.len() == before
            && let Some(at) = relied
        {
            enforced_where_run(*k, at, settings, &mut out);
        }
    }
    // A rule that requires `audit-sink` says so once: `audit-log`'s own sink item is the same.
    if rule.requires.contains(&EvidenceKind::AuditSink) {
        out.missing
            .retain(|m| !(m.kind == EvidenceKind::AuditLog && m.what.starts_with(SINK_FOR_LOG)));
    }
    out
}

/// What `audit-log` misses without a configured sink.
const SINK_FOR_LOG: &str =
    "a configured audit sink that receives the `audit-log: required` records";

/// Evidence holds only when the targets the playbook is deployed through enforce the
/// constructs it rests on (the enforcement table, config `targets.emit`).
fn enforced_where_run(kind: EvidenceKind, at: Span, settings: &Settings, out: &mut Outcome) {
    for c in kind.constructs() {
        let gaps = unenforced_in(*c, &settings.targets, settings.deployment);
        if gaps.is_empty() {
            continue;
        }
        out.missing.push(Missing {
            kind,
            what: format!(
                "`{}` enforced by every target in `targets.emit` (not by {})",
                c.name(),
                target_list(&gaps)
            ),
            at,
            hint: enforcing_hint(*c, settings.deployment),
            supply: None,
        });
    }
}

fn target_list(ts: &[Target]) -> String {
    ts.iter()
        .map(|t| format!("`{}`", t.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What to do about a construct a deployment target does not enforce.
fn enforcing_hint(c: Construct, d: pbc_compiler::enforcement::Deployment) -> String {
    let enforcing: Vec<Target> = pbc_compiler::enforcement::TARGETS
        .iter()
        .copied()
        .filter(|t| t.executes() && mechanism_in(c, *t, d).is_some())
        .collect();
    if enforcing.is_empty() {
        return format!("no target enforces `{}` yet: do not rely on it", c.name());
    }
    format!(
        "list in `targets.emit` (.pbc.yaml) only the targets you deploy through; these enforce `{}`: {}",
        c.name(),
        target_list(&enforcing)
    )
}

pub(super) struct Ctx<'a> {
    kind: EvidenceKind,
    out: &'a mut Outcome,
    /// The first piece of evidence found at a place in the playbook: what the evidence rests
    /// on (notes such as "not required" rest on nothing).
    relied: Option<Span>,
    /// Whether to describe the evidence found (coverage reports do; `check` needs only
    /// what is missing).
    describe: bool,
}

impl Ctx<'_> {
    pub(super) fn found<S: Into<String>>(&mut self, what: impl FnOnce() -> S, span: Option<Span>) {
        if self.relied.is_none() {
            self.relied = span;
        }
        if !self.describe {
            return;
        }
        self.out.found.push(Found {
            kind: self.kind,
            what: what().into(),
            span,
        });
    }
    pub(super) fn missing(&mut self, what: impl Into<String>, at: Span, hint: impl Into<String>) {
        self.out.missing.push(Missing {
            kind: self.kind,
            what: what.into(),
            at,
            hint: hint.into(),
            supply: None,
        });
    }

    /// The edit that supplies the missing piece just recorded.
    pub(super) fn supply(&mut self, s: Supply) {
        if let Some(m) = self.out.missing.last_mut() {
            m.supply = Some(s);
        }
    }
}

/// The stages a scope covers.
fn stages_in(pb: &PlaybookFacts, scope: Scope) -> Vec<&StageFacts> {
    match scope {
        Scope::Playbook => pb.stages.iter().collect(),
        Scope::Stage(i) => pb.stages.get(i).into_iter().collect(),
    }
}

pub(super) fn has_people_gate(g: &Gate<'_>) -> bool {
    matches!(g, Gate::People { .. })
}

fn approver_list(g: &Gate<'_>) -> String {
    match g {
        Gate::People { approvers, .. } => approvers
            .iter()
            .map(|a| match a.kind {
                ApproverKind::Role => format!("role `{}`", a.name),
                ApproverKind::User => format!("`{}`", a.name),
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

/// The playbook-level gate of a `medium`-risk playbook (`spec.approvers`), if it names people.
fn playbook_gate(pb: &PlaybookFacts) -> Option<Span> {
    let Some(r) = &pb.risk else {
        return None;
    };
    let (risk, span) = (r.value, r.span);
    if risk == Risk::Medium && !pb.approvers.is_empty() {
        Some(span)
    } else {
        None
    }
}

/// How to get an audit sink: name a defined one, or define one first.
fn audit_sink_hint(defined: &[String]) -> String {
    if defined.is_empty() {
        return "define a sink under `audit-sinks:` in .pbc.yaml (e.g. `trail: {file: .pbc/audit/trail.jsonl}`) and name it in `spec.audit.log-to`".into();
    }
    format!(
        "name in `spec.audit.log-to` a sink that `audit-sinks:` in .pbc.yaml defines: {}",
        pbc_compiler::diag::one_of(defined)
    )
}

fn eval_kind(
    kind: EvidenceKind,
    pb: &PlaybookFacts,
    scope: Scope,
    settings: &Settings,
    describe: bool,
    out: &mut Outcome,
) -> Option<Span> {
    let mut c = Ctx {
        kind,
        out,
        relied: None,
        describe,
    };
    eval_into(&mut c, kind, pb, scope, settings);
    c.relied
}

fn eval_into(
    c: &mut Ctx<'_>,
    kind: EvidenceKind,
    pb: &PlaybookFacts,
    scope: Scope,
    settings: &Settings,
) {
    let stages = stages_in(pb, scope);
    let spec = pb.spec_anchor();
    match kind {
        EvidenceKind::AuditSink => {
            // Only a sink the configuration defines receives anything.
            let configured: Vec<_> = pb
                .audit_sinks
                .iter()
                .filter(|s| settings.audit_sinks.contains(&s.value))
                .collect();
            if configured.is_empty() {
                let at = pb.audit_log_to_key.or(pb.audit_key).unwrap_or(spec);
                let what = if pb.audit_sinks.is_empty() {
                    "an audit sink (`spec.audit.log-to`)"
                } else {
                    "a configured audit sink (`spec.audit.log-to` names none that `audit-sinks:` defines)"
                };
                c.missing(what, at, audit_sink_hint(&settings.audit_sinks));
            }
            for s in configured {
                c.found(|| format!("audit sink `{}`", s.value), Some(s.span));
            }
        }
        EvidenceKind::AuditLog => {
            let gated: Vec<&StageFacts> = match scope {
                Scope::Playbook => stages
                    .iter()
                    .copied()
                    .filter(|s| has_people_gate(&s.gate(pb)))
                    .collect(),
                Scope::Stage(_) => stages.clone(),
            };
            for s in &gated {
                match &s.audit_log {
                    Some(a) if a.value == AuditLog::Required => c.found(
                        || format!("`audit-log: required` on stage `{}`", s.name),
                        Some(a.span),
                    ),
                    other => {
                        c.missing(
                            format!("`audit-log: required` on stage `{}`", s.name),
                            other.as_ref().map(|a| a.span).unwrap_or(s.name_span),
                            format!("set `audit-log: required` on stage `{}`", s.name),
                        );
                        c.supply(match other {
                            Some(a) => Supply::AuditLogValue(a.span),
                            None => Supply::AuditLogKey(s.name_span),
                        });
                    }
                }
            }
            if scope == Scope::Playbook {
                let any: Vec<&StageFacts> = stages
                    .iter()
                    .copied()
                    .filter(|s| s.audit_log_required())
                    .collect();
                if any.is_empty() && gated.is_empty() {
                    c.missing(
                        "a stage with `audit-log: required`",
                        pb.stages_key.unwrap_or(spec),
                        "set `audit-log: required` on the stages whose decisions or effects must be on record",
                    );
                } else if gated.is_empty() {
                    for s in any {
                        if let Some(a) = &s.audit_log {
                            c.found(
                                || format!("`audit-log: required` on stage `{}`", s.name),
                                Some(a.span),
                            );
                        }
                    }
                }
            }
            // The records go somewhere only through a sink the configuration defines.
            if !pb
                .audit_sinks
                .iter()
                .any(|s| settings.audit_sinks.contains(&s.value))
            {
                c.missing(
                    format!("{SINK_FOR_LOG} (`spec.audit.log-to`)"),
                    pb.audit_log_to_key.or(pb.audit_key).unwrap_or(spec),
                    audit_sink_hint(&settings.audit_sinks),
                );
            }
        }
        EvidenceKind::AuditRetention => match &pb.retention {
            None => c.missing(
                "an audit retention (`spec.audit.retention`)",
                pb.audit_key.unwrap_or(spec),
                match settings.min_audit_retention {
                    Some(m) => format!("add `retention: {m}` (or longer) under `spec.audit`"),
                    None => "add `retention: DURATION` (e.g. `365d`) under `spec.audit`".into(),
                },
            ),
            Some(r) => match settings.min_audit_retention {
                Some(min) if r.value < min => c.missing(
                    format!("a retention of at least {min} (it is {})", r.value),
                    r.span,
                    format!("raise the retention to at least `{min}`, the organisation's minimum"),
                ),
                Some(min) => c.found(
                    || format!("audit retention {} (minimum {min})", r.value),
                    Some(r.span),
                ),
                None => c.found(|| format!("audit retention {}", r.value), Some(r.span)),
            },
        },
        EvidenceKind::HumanGate => {
            let mut any = false;
            for s in &stages {
                let g = s.gate(pb);
                if let Gate::People { complete: true, .. } = g {
                    any = true;
                    c.found(
                        || {
                            format!(
                                "gate on stage `{}` approved by {}",
                                s.name,
                                approver_list(&g)
                            )
                        },
                        Some(s.approval_span.unwrap_or(s.name_span)),
                    );
                }
            }
            if scope == Scope::Playbook
                && let Some(span) = playbook_gate(pb)
            {
                any = true;
                c.found(
                    || "approval of the `medium`-risk playbook by `spec.approvers`",
                    Some(span),
                );
            }
            if !any {
                let (what, at) = match scope {
                    Scope::Stage(_) => (
                        format!(
                            "a gate with named approvers on stage `{}`",
                            stages.first().map(|s| s.name.as_str()).unwrap_or("")
                        ),
                        // At the stage's `approval` when it says `auto` (an overlay may have
                        // set it), else at its name.
                        stages
                            .first()
                            .map(|s| s.approval_span.unwrap_or(s.name_span))
                            .unwrap_or(spec),
                    ),
                    Scope::Playbook => (
                        "a gate with named approvers on some stage".to_string(),
                        pb.stages_key.unwrap_or(spec),
                    ),
                };
                c.missing(
                    what,
                    at,
                    "add `approval: manual` (or `conditional`) with `approvers:` to the stage whose outcome a person must sign off",
                );
            }
        }
        EvidenceKind::ProductionActionGates => {
            if !pb.production {
                let note = match &pb.environment {
                    Some(e) => format!("not required: `{e}` is not a production environment"),
                    None => "not assessed: no environment (not under `overlays/<env>`)".to_string(),
                };
                c.found(|| note, None);
                return;
            }
            let env = pb.environment.as_deref().unwrap_or("");
            let mut actions = 0;
            for s in stages.iter().filter(|s| s.is_action()) {
                actions += 1;
                match s.gate(pb) {
                    Gate::Refused => c.found(
                        || format!("{} is `high` risk: refused, never executed", s.describe()),
                        Some(s.name_span),
                    ),
                    g @ Gate::People { complete: true, .. } if s.passes_without_person() => {
                        conditional_gate(c, s, &g, env, settings)
                    }
                    g @ Gate::People { complete: true, .. } => c.found(
                        || format!("{} gated, approved by {}", s.describe(), approver_list(&g)),
                        Some(s.approval_span.unwrap_or(s.name_span)),
                    ),
                    _ => {
                        if let Some(span) = playbook_gate(pb) {
                            c.found(
                                || {
                                    format!(
                                        "{} runs after the playbook's approval by `spec.approvers`",
                                        s.describe()
                                    )
                                },
                                Some(span),
                            );
                        } else {
                            c.missing(
                                format!(
                                    "a gate with named approvers before {} in production environment `{env}`",
                                    s.describe()
                                ),
                                s.approval_span.unwrap_or(s.name_span),
                                format!(
                                    "give stage `{}` `approval: manual` and `approvers:` (in the `{env}` overlay or the base)",
                                    s.name
                                ),
                            );
                        }
                    }
                }
            }
            if actions == 0 {
                c.found(
                    || format!("no `action:` stage to gate in production environment `{env}`"),
                    None,
                );
            }
        }
        EvidenceKind::RoleApprovers => {
            let mut gates = 0;
            for s in &stages {
                let g = s.gate(pb);
                let Gate::People { approvers, .. } = &g else {
                    continue;
                };
                gates += 1;
                if approvers.is_empty() {
                    c.missing(
                        format!(
                            "approvers on the gate of stage `{}` (it names nobody)",
                            s.name
                        ),
                        s.approval_span.unwrap_or(s.name_span),
                        format!("add `approvers: [{{role: ROLE}}]` to stage `{}`", s.name),
                    );
                } else if let Some(role) = approvers.iter().find(|a| a.kind == ApproverKind::Role) {
                    c.found(
                        || format!("stage `{}` is approved by role `{}`", s.name, role.name),
                        Some(role.span),
                    );
                } else {
                    c.missing(
                        format!("an approver role on the gate of stage `{}`", s.name),
                        s.approval_span.unwrap_or(s.name_span),
                        format!(
                            "name a role (`- role: ROLE`) among the approvers of stage `{}`, not only people",
                            s.name
                        ),
                    );
                }
            }
            if gates == 0 {
                let (what, at) = match scope {
                    Scope::Stage(_) => (
                        format!(
                            "a gate with approver roles on stage `{}`",
                            stages.first().map(|s| s.name.as_str()).unwrap_or("")
                        ),
                        // At the stage's `approval` when it says `auto` (an overlay may have
                        // set it), else at its name.
                        stages
                            .first()
                            .map(|s| s.approval_span.unwrap_or(s.name_span))
                            .unwrap_or(spec),
                    ),
                    Scope::Playbook => (
                        "a gate with approver roles".to_string(),
                        pb.stages_key.unwrap_or(spec),
                    ),
                };
                c.missing(
                    what,
                    at,
                    "add `approval: manual` with `approvers: [{role: ROLE}]` where access is granted or used",
                );
            }
        }
        EvidenceKind::GateSla => {
            let mut gates = 0;
            for s in &stages {
                if !has_people_gate(&s.gate(pb)) {
                    continue;
                }
                gates += 1;
                match &s.sla {
                    Some(sla) => c.found(
                        || format!("stage `{}` has SLA {}", s.name, sla.value),
                        Some(sla.span),
                    ),
                    None => c.missing(
                        format!("an `sla` on the gate of stage `{}`", s.name),
                        s.approval_span.unwrap_or(s.name_span),
                        format!("set `sla:` (e.g. `4h`) on stage `{}`", s.name),
                    ),
                }
                match s.on_pending.first() {
                    Some(ch) => c.found(
                        || format!("stage `{}` notifies `{}` when pending", s.name, ch.value),
                        Some(ch.span),
                    ),
                    None => c.missing(
                        format!("an `on-pending` notification on stage `{}`", s.name),
                        s.approval_span.unwrap_or(s.name_span),
                        format!(
                            "add `notification: {{on-pending: [CHANNEL]}}` to stage `{}`",
                            s.name
                        ),
                    ),
                }
            }
            if gates == 0 {
                c.found(|| "no human gate waits for a decision", None);
            }
        }
        k @ (EvidenceKind::RollbackOnFailure
        | EvidenceKind::FailureNotification
        | EvidenceKind::RevertToPrevious) => super::kinds_rollback::eval(c, k, pb, &stages, spec),
        k @ (EvidenceKind::MonitoringAlerts | EvidenceKind::SecurityAlerts) => {
            super::kinds_monitoring::eval(c, k, pb, spec)
        }
        k @ (EvidenceKind::RateLimits
        | EvidenceKind::StageTimeouts
        | EvidenceKind::OutputSchemas
        | EvidenceKind::InputSchema
        | EvidenceKind::StageGuardrails
        | EvidenceKind::ActionPolicies
        | EvidenceKind::GateEscalation
        | EvidenceKind::TwoPersonApproval) => {
            super::kinds_ops::eval(c, k, pb, scope, &stages, settings)
        }
    }
}

/// A conditional gate before an action in production: its conditions can let the action
/// through without a person on a value computed during the run (an agent's output), so it
/// counts only when a policy, enforced where the playbook runs, checks the action's params
/// before it executes.
fn conditional_gate(c: &mut Ctx<'_>, s: &StageFacts, g: &Gate<'_>, env: &str, settings: &Settings) {
    let policy = s
        .policy
        .as_ref()
        .map(|p| (p.value.clone(), Some(p.span)))
        .or_else(|| {
            settings
                .always_on_policies
                .first()
                .map(|p| (p.clone(), None))
        });
    let gate_at = s.approval_span.unwrap_or(s.name_span);
    match policy {
        Some((name, span)) if unenforced_in(Construct::Policy, &settings.targets, settings.deployment).is_empty() => c
            .found(
                || {
                    format!(
                        "{} gated conditionally (approved by {}); policy `{name}` checks its params before it runs",
                        s.describe(),
                        approver_list(g)
                    )
                },
                span.or(Some(gate_at)),
            ),
        _ => c.missing(
            format!(
                "a gate that always asks a person before {} in production environment `{env}`, or a policy bounding its params: its conditional gate lets it through without a person when no manual branch holds",
                s.describe()
            ),
            gate_at,
            format!(
                "make stage `{}` `approval: manual` in the `{env}` overlay, or give it a `policy:` that bounds its params (enforced by every target in `targets.emit`)",
                s.name
            ),
        ),
    }
}
