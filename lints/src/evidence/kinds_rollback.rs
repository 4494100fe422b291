//! The rollback evidence kinds: `rollback-on-failure` (an `on-failure` other than `none`;
//! with `revert-to-previous`, an undo step on every action that can run),
//! `failure-notification` (a channel told of failures) and `revert-to-previous`.

use super::EvidenceKind;
use super::eval::Ctx;
use crate::facts::{Gate, PlaybookFacts, StageFacts};
use pbc_compiler::model::OnFailure;
use pbc_compiler::span::Span;

/// Evaluates one of this file's kinds (the caller dispatches only these); `spec` is where
/// a missing `spec.rollback` is reported.
pub(super) fn eval(
    c: &mut Ctx<'_>,
    kind: EvidenceKind,
    pb: &PlaybookFacts,
    stages: &[&StageFacts],
    spec: Span,
) {
    match kind {
    EvidenceKind::RollbackOnFailure => match &pb.on_failure {
        Some(f) if f.value == OnFailure::RevertToPrevious => {
            c.found(|| format!("`on-failure: {}`", f.value), Some(f.span));
            undo_steps(c, pb, stages);
        }
        Some(f) if f.value != OnFailure::DoNothing => {
            c.found(|| format!("`on-failure: {}`", f.value), Some(f.span))
        }
        Some(f) => c.missing(
            "a rollback on failure (`on-failure` is `none`)",
            f.span,
            "set `on-failure: revert-to-previous` (or `notify-only`)",
        ),
        None => c.missing(
            "a rollback on failure (`spec.rollback.on-failure`)",
            pb.rollback_key.unwrap_or(spec),
            "add `rollback: {on-failure: revert-to-previous, notification: [CHANNEL]}` under `spec`",
        ),
    },
    EvidenceKind::FailureNotification => {
        if pb.rollback_notification.is_empty() {
            c.missing(
                "a failure notification (`spec.rollback.notification`)",
                pb.rollback_key.unwrap_or(spec),
                "add `notification: [CHANNEL]` under `spec.rollback`",
            );
        }
        for n in &pb.rollback_notification {
            c.found(|| format!("failures notify `{}`", n.value), Some(n.span));
        }
    }
    EvidenceKind::RevertToPrevious => {
        match &pb.on_failure {
            Some(f) if f.value == OnFailure::RevertToPrevious => {
                c.found(|| "`on-failure: revert-to-previous`", Some(f.span))
            }
            Some(f) => c.missing(
                format!("`on-failure: revert-to-previous` (it is `{}`)", f.value),
                f.span,
                "set `on-failure: revert-to-previous`",
            ),
            None => c.missing(
                "`spec.rollback.on-failure: revert-to-previous`",
                pb.rollback_key.unwrap_or(spec),
                "add `rollback: {on-failure: revert-to-previous}` under `spec`",
            ),
        }
        undo_steps(c, pb, stages);
    }
        _ => {}
    }
}

/// `revert-to-previous` undoes only what has an undo step: every `action:` stage that can
/// run (one refused by `risk: high` changes nothing) has a `rollback` step.
fn undo_steps(c: &mut Ctx<'_>, pb: &PlaybookFacts, stages: &[&StageFacts]) {
    for s in stages
        .iter()
        .filter(|s| s.is_action() && !matches!(s.gate(pb), Gate::Refused))
    {
        match s.rollback_step {
            Some(span) => c.found(|| format!("{} has a `rollback` step", s.describe()), Some(span)),
            None => c.missing(
                format!("a `rollback` step on {} (it changes state; `revert-to-previous` cannot undo it without one)", s.describe()),
                s.name_span,
                format!(
                    "add `rollback: {{action: LAYER:FUNCTION, params: …}}` to stage `{}`",
                    s.name
                ),
            ),
        }
    }
}
