//! The controls a playbook declares: each gate, approver list, SLA, escalation level,
//! guardrail, policy, rate limit, audit sink, rollback and `risk: high`, with where it is
//! written. `pbc enforcement` prints them against the table; `pbc check` reports those a
//! target in `targets.emit` cannot enforce ([`super::check`]).

use super::Construct;
use crate::model::{Approval, Approver, OnFailure, Playbook, Risk};
use crate::sema::stage_has_gate;
use crate::span::Span;

/// One control as written in a playbook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declared {
    pub construct: Construct,
    /// The stage it belongs to (`None`: the whole playbook).
    pub stage: Option<String>,
    /// What is declared, in the playbook's words (`approval: manual`, `sla: 4h`).
    pub what: String,
    /// Where it is written (after overlays, the patch that wrote it).
    pub span: Span,
}

/// Every control `pb` declares, in file order: the playbook's own (approvers, rate limits,
/// audit sinks, rollback), then each stage's.
pub fn declared(pb: &Playbook) -> Vec<Declared> {
    let mut out = Vec::new();
    let mut add = |construct, stage: Option<&str>, what: String, span| {
        out.push(Declared {
            construct,
            stage: stage.map(String::from),
            what,
            span,
        })
    };
    let spec = &pb.spec;
    if let Some(a) = spec.approvers.as_ref().filter(|a| !a.value.is_empty()) {
        add(
            Construct::Approvers,
            None,
            format!("approvers: {}", names(&a.value)),
            a.span,
        );
    }
    for r in &spec.rate_limits {
        add(
            Construct::RateLimit,
            None,
            format!("rate-limits: {}: {}", r.action.value, r.value.value),
            r.value.span,
        );
    }
    if let Some(a) = &spec.audit {
        for s in &a.log_to {
            add(
                Construct::AuditSink,
                None,
                format!("audit.log-to: {}", s.value),
                s.span,
            );
        }
    }
    // Undo steps run only with `revert-to-previous` (`notify-only` and `none` undo nothing:
    // their notification is the exit handler's or the engine's, not a rollback).
    let reverts = spec
        .rollback
        .as_ref()
        .is_some_and(|r| r.on_failure.value == OnFailure::RevertToPrevious);
    if let Some(r) = spec.rollback.as_ref().filter(|_| reverts) {
        add(
            Construct::Rollback,
            None,
            format!("rollback.on-failure: {}", r.on_failure.value),
            r.on_failure.span,
        );
    }
    for s in &spec.stages {
        let stage = Some(s.name.value.as_str());
        if stage_has_gate(pb, s) {
            let (what, span) = match (&s.approval, s.approval()) {
                (Some(a), mode) if mode != Approval::Auto => {
                    (format!("approval: {}", mode.as_str()), a.span)
                }
                _ => (
                    "risk: medium".to_string(),
                    s.risk.as_ref().map_or(s.span, |r| r.span),
                ),
            };
            add(Construct::Gate, stage, what, span);
        }
        if let Some(a) = s.approvers.as_ref().filter(|a| !a.value.is_empty()) {
            add(
                Construct::Approvers,
                stage,
                format!("approvers: {}", names(&a.value)),
                a.span,
            );
        }
        if let Some(m) = s.min_approvals.as_ref().filter(|m| m.value > 1) {
            add(
                Construct::MinApprovals,
                stage,
                format!("min-approvals: {}", m.value),
                m.span,
            );
        }
        for c in &s.conditions {
            if let Some(m) = c.min_approvals.as_ref().filter(|m| m.value > 1) {
                add(
                    Construct::MinApprovals,
                    stage,
                    format!("conditions[].min-approvals: {}", m.value),
                    m.span,
                );
            }
            if let Some(a) = c.approvers.as_ref().filter(|a| !a.value.is_empty()) {
                add(
                    Construct::Approvers,
                    stage,
                    format!("conditions[].approvers: {}", names(&a.value)),
                    a.span,
                );
            }
        }
        if let Some(sla) = &s.sla {
            add(
                Construct::Sla,
                stage,
                format!("sla: {}", sla.value),
                sla.span,
            );
        }
        for (n, e) in s.escalation.iter().enumerate() {
            add(
                Construct::Escalation,
                stage,
                format!("escalation level {} (after {})", n + 1, e.after.value),
                e.span,
            );
        }
        for g in &s.guardrails {
            add(
                Construct::Guardrail,
                stage,
                format!("guardrail: {}", g.value),
                g.span,
            );
        }
        if let Some(p) = &s.policy {
            add(
                Construct::Policy,
                stage,
                format!("policy: {}", p.value),
                p.span,
            );
        }
        if let Some(rb) = s.rollback.as_ref().filter(|_| reverts) {
            add(
                Construct::Rollback,
                stage,
                format!("rollback: {}", rb.action.value),
                rb.span,
            );
        }
        if s.risk(spec) == Risk::High {
            let span = s
                .risk
                .as_ref()
                .or(spec.risk.as_ref())
                .map_or(s.span, |r| r.span);
            add(Construct::Risk, stage, "risk: high".into(), span);
        }
    }
    out
}

/// Approvers as written, comma-separated.
fn names(list: &[Approver]) -> String {
    list.iter()
        .map(|a| a.name().value.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
