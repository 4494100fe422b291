//! What evaluating a rule for a claim gives: the evidence found and the evidence missing,
//! each with the span it refers to, and for a gap one edit can close, that edit.

use super::*;

/// What a claim covers: the whole playbook, or one stage (by index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Playbook,
    Stage(usize),
}

/// One piece of evidence found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub kind: EvidenceKind,
    /// What was found (`audit sink \`langfuse\``).
    pub what: String,
    /// Where (`None` for a note such as "not a production environment").
    pub span: Option<Span>,
}

/// One piece of evidence missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    pub kind: EvidenceKind,
    /// What is missing, as a phrase (`a gate with named approvers before action stage …`).
    pub what: String,
    /// Where to add it.
    pub at: Span,
    /// What to write there.
    pub hint: String,
    /// The edit that supplies it, where one edit can.
    pub supply: Option<Supply>,
}

/// A change that supplies a missing piece of evidence by itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Supply {
    /// Write `required` over this `audit-log` value.
    AuditLogValue(Span),
    /// Add `audit-log: required` to the stage whose `name` value is here.
    AuditLogKey(Span),
}

/// The evaluation of one rule for one claim.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub found: Vec<Found>,
    pub missing: Vec<Missing>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.missing.is_empty()
    }
}
