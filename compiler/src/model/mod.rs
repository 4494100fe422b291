//! The typed Playbook model, built from the spanned YAML tree.
//!
//! [`from_document`] reads one document. Every wrong shape is a `PB2xxx` diagnostic at the
//! culprit's exact span; the model is still returned when it is usable, so later passes can
//! report more. Every user value is [`Spanned`] with the span of its value node, and every
//! mapping keeps the spans of its keys ([`Keys`]), so the type, graph, compliance and target
//! passes can point at exact places. Open maps (`params`, `labels`, `annotations`,
//! `langfuse.metadata`, `rollout`, `promotion`) are kept as [`Node`]s; expressions (`if`,
//! `when`, alert `condition`, metric `target`) are kept unparsed as [`ExprText`].
//!
//! Decisions where the format is silent (also in the `pbc explain` texts):
//! - durations are strings `<whole number><s|m|h|d>` greater than zero; a bare number, a
//!   combination (`1h30m`), a fraction or ISO 8601 is an error suggesting the right spelling;
//! - cron: see [`cron`]; `@annually`/`@midnight` are refused with a fix to `@yearly`/`@daily`;
//! - `approvers` (and `sla`, `escalation`) on a stage that has no gate (approval `auto` and no
//!   `medium` risk) is a warning, not an error;
//! - a condition's `else` may carry `approvers` like an `if` branch;
//! - `kind: Playbook` with an `apiVersion` of a dotted Kubernetes API group (`agenticops.io/v1`,
//!   the form pbc's `crd` target emits) is not an agenticops/v1 document: no diagnostic;
//! - `risk: medium` (of the playbook, or a stage's own) with no approvers is an error here.

mod build;
mod codes;
pub mod cron;
pub mod names;
pub mod scalar;
pub mod values;

use crate::diag::Diagnostic;
use crate::span::{SourceMap, Span};
use crate::yaml::Node;
use std::fmt;

pub use codes::*;
pub use cron::CronSchedule;
pub use values::{ActionRef, Duration, RateUnit};

/// The guardrails every runtime knows.
pub const BUILTIN_GUARDRAILS: &[&str] = &[
    "no-secrets-in-code",
    "pii-detection",
    "prompt-injection-detection",
];

/// The only `apiVersion` of the format.
pub const API_VERSION: &str = "agenticops/v1";

/// Settings from the configuration that change what the model accepts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelOptions {
    /// Guardrail names the configuration defines, besides [`BUILTIN_GUARDRAILS`].
    pub extra_guardrails: Vec<String>,
    /// Policy names the configuration defines.
    pub policies: Vec<String>,
    /// Notification channel names the configuration defines (`notifications:`).
    pub channels: Vec<String>,
    /// Audit sink names the configuration defines (`audit-sinks:`).
    pub audit_sinks: Vec<String>,
}

impl ModelOptions {
    /// The names a configuration defines.
    pub fn from_config(cfg: &crate::config::Config) -> ModelOptions {
        ModelOptions {
            extra_guardrails: cfg.guardrails.clone(),
            policies: cfg.policies.clone(),
            channels: cfg.notifications.keys().cloned().collect(),
            audit_sinks: cfg.audit_sinks.keys().cloned().collect(),
        }
    }
}

/// A value with the span of its node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Spanned<U> {
        Spanned {
            value: f(self.value),
            span: self.span,
        }
    }

    pub fn as_ref(&self) -> Spanned<&T> {
        Spanned {
            value: &self.value,
            span: self.span,
        }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Display> fmt::Display for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

/// The spans of the keys of a mapping, in source order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keys(pub Vec<(String, Span)>);

impl Keys {
    /// The span of `key`, if the mapping has it.
    pub fn get(&self, key: &str) -> Option<Span> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, s)| *s)
    }
}

/// An enum of fixed spellings: `as_str`, `parse`, `NAMES` and `Display`. With `@serde` in
/// front it also (de)serializes as its spellings (the runtime's statuses use that).
#[macro_export]
macro_rules! str_enum {
    (@serde $(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $s:literal),* $(,)? }) => {
        $crate::str_enum!(@def [#[derive(::serde::Serialize, ::serde::Deserialize)]]
            $(#[$m])* $name { $($(#[$vm])* #[serde(rename = $s)] $var = $s),* });
    };
    (@def [$($extra:tt)*] $(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        $($extra)*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $var),* }
        impl $name {
            /// The spellings, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($s),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$var),)* _ => None }
            }
        }
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $s:literal),* $(,)? }) => {
        $crate::str_enum!(@def [] $(#[$m])* $name { $($(#[$vm])* $var = $s),* });
    };
}

str_enum! {
    /// A stage's `approval`.
    Approval { Auto = "auto", Manual = "manual", Conditional = "conditional" }
}
str_enum! {
    /// The outcome of a condition branch (`then`, `else`).
    Gate { Auto = "auto", Manual = "manual" }
}
str_enum! {
    /// `risk` of a playbook or stage; ordered.
    Risk { Low = "low", Medium = "medium", High = "high" }
}
str_enum! {
    /// A stage's `audit-log`.
    AuditLog { Required = "required", Optional = "optional" }
}
str_enum! {
    /// `spec.rollback.on-failure`.
    OnFailure {
        RevertToPrevious = "revert-to-previous",
        NotifyOnly = "notify-only",
        /// `none`
        DoNothing = "none",
    }
}
str_enum! {
    /// `spec.rollout.strategy`.
    RolloutStrategy { Canary = "canary", BlueGreen = "blue-green" }
}

/// An expression kept as written (parsed by the expression pass), with its node so that
/// positions inside it can be mapped back to the source ([`crate::yaml::value_span`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ExprText {
    pub text: Spanned<String>,
    pub node: Node,
}

/// A parsed `agenticops/v1` Playbook.
#[derive(Clone, Debug, PartialEq)]
pub struct Playbook {
    pub api_version: Spanned<String>,
    pub kind: Spanned<String>,
    pub metadata: Metadata,
    pub spec: Spec,
    /// The document's root mapping.
    pub span: Span,
    pub keys: Keys,
}

/// A schema file a playbook names: where in the document, the reference, and the stage
/// (`None`: the input schema).
#[derive(Clone, Debug)]
pub struct SchemaRef<'a> {
    pub at: Vec<crate::yaml::PathSeg>,
    pub reference: &'a Spanned<String>,
    pub stage: Option<usize>,
}

impl Playbook {
    /// Every schema file the playbook names: each stage's `output-schema`, then the input
    /// schema (`spec.input-schema` or `spec.trigger.input-schema`).
    pub fn schema_refs(&self) -> Vec<SchemaRef<'_>> {
        use crate::yaml::PathSeg;
        let mut out = Vec::new();
        for (i, s) in self.spec.stages.iter().enumerate() {
            if let Some(os) = &s.output_schema {
                out.push(SchemaRef {
                    at: vec![
                        PathSeg::Key("spec"),
                        PathSeg::Key("stages"),
                        PathSeg::Index(i),
                        PathSeg::Key("output-schema"),
                    ],
                    reference: os,
                    stage: Some(i),
                });
            }
        }
        if let Some(is) = self.spec.input_schema() {
            let at = if self.spec.input_schema.is_some() {
                vec![PathSeg::Key("spec"), PathSeg::Key("input-schema")]
            } else {
                vec![
                    PathSeg::Key("spec"),
                    PathSeg::Key("trigger"),
                    PathSeg::Key("input-schema"),
                ]
            };
            out.push(SchemaRef {
                at,
                reference: is,
                stage: None,
            });
        }
        out
    }

    /// The playbook's name (empty if it was missing, which was reported).
    pub fn name(&self) -> &str {
        &self.metadata.name.value
    }

    /// The stage with this name.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.spec.stages.iter().find(|s| s.name.value == name)
    }
}

/// `metadata`.
#[derive(Clone, Debug, PartialEq)]
pub struct Metadata {
    /// Empty, spanning the `metadata` key, if missing (reported).
    pub name: Spanned<String>,
    pub namespace: Option<Spanned<String>>,
    /// Open map, kept as written.
    pub labels: Option<Node>,
    /// Open map, kept as written.
    pub annotations: Option<Node>,
    pub description: Option<Spanned<String>>,
    /// Control tags (checked by the compliance pass).
    pub compliance: Vec<Spanned<String>>,
    pub tags: Vec<Spanned<String>>,
    pub span: Span,
    pub keys: Keys,
}

/// A parsed cron schedule: the text as written and its meaning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    pub text: String,
    pub schedule: CronSchedule,
}

/// `spec.trigger`.
#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    /// `trigger: event-name`
    Event { event: Spanned<String> },
    /// `trigger: {event, input-schema}`
    EventWithSchema {
        event: Spanned<String>,
        input_schema: Option<Spanned<String>>,
    },
    /// `trigger: {schedule, timezone}`
    Schedule {
        cron: Spanned<Cron>,
        timezone: Option<Spanned<chrono_tz::Tz>>,
    },
}

impl Trigger {
    /// The event name, for event triggers.
    pub fn event(&self) -> Option<&Spanned<String>> {
        match self {
            Trigger::Event { event } | Trigger::EventWithSchema { event, .. } => Some(event),
            Trigger::Schedule { .. } => None,
        }
    }
}

/// `spec`.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// `None` if missing or unusable (reported).
    pub trigger: Option<Spanned<Trigger>>,
    /// `spec.input-schema` (see [`Spec::input_schema`] for either place).
    pub input_schema: Option<Spanned<String>>,
    pub risk: Option<Spanned<Risk>>,
    /// `None` if absent or invalid (reported); `Some([])` for an empty list.
    pub approvers: Option<Spanned<Vec<Approver>>>,
    pub stages: Vec<Stage>,
    pub rollback: Option<Rollback>,
    pub audit: Option<Audit>,
    pub monitoring: Option<Monitoring>,
    pub rate_limits: Vec<RateLimit>,
    /// Open (shape-checked) map, kept as written.
    pub rollout: Option<Node>,
    /// Open (shape-checked) map, kept as written.
    pub promotion: Option<Node>,
    pub span: Span,
    pub keys: Keys,
}

impl Spec {
    /// The input schema, from `trigger.input-schema` or `spec.input-schema`.
    pub fn input_schema(&self) -> Option<&Spanned<String>> {
        if let Some(Spanned {
            value:
                Trigger::EventWithSchema {
                    input_schema: Some(s),
                    ..
                },
            ..
        }) = &self.trigger
        {
            return Some(s);
        }
        self.input_schema.as_ref()
    }

    /// The playbook's risk (`low` by default).
    pub fn risk(&self) -> Risk {
        self.risk.as_ref().map(|r| r.value).unwrap_or(Risk::Low)
    }
}

/// Who approves: a role, or a user (an e-mail address).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Approver {
    Role(Spanned<String>),
    User(Spanned<String>),
}

impl Approver {
    /// The role or the user's address.
    pub fn name(&self) -> &Spanned<String> {
        match self {
            Approver::Role(n) | Approver::User(n) => n,
        }
    }

    pub fn span(&self) -> Span {
        self.name().span
    }

    pub fn is_user(&self) -> bool {
        matches!(self, Approver::User(_))
    }
}

/// What a stage runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Executor {
    /// `agent: MODEL`
    Agent(Spanned<String>),
    /// `action: LAYER:FUNCTION`
    Action(Spanned<ActionRef>),
}

/// One item of `conditions`: an `if` branch, or the closing `else` (`test` is `None`).
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub test: Option<ExprText>,
    /// `then:` of an `if` branch, or the value of `else:`.
    pub then: Spanned<Gate>,
    /// `None` if absent or invalid (reported); `Some([])` for an empty list.
    pub approvers: Option<Spanned<Vec<Approver>>>,
    /// `min-approvals` of this branch, if given (else the stage's).
    pub min_approvals: Option<Spanned<u32>>,
    pub span: Span,
    pub keys: Keys,
}

impl Condition {
    pub fn is_else(&self) -> bool {
        self.test.is_none()
    }
}

/// One level of `escalation`.
#[derive(Clone, Debug, PartialEq)]
pub struct Escalation {
    pub after: Spanned<Duration>,
    /// `None` if absent or invalid (reported); `Some([])` for an empty list.
    pub approvers: Option<Spanned<Vec<Approver>>>,
    pub notify: Vec<Spanned<String>>,
    pub span: Span,
    pub keys: Keys,
}

/// A stage's `notification`: channels per event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Notification {
    pub on_pending: Vec<Spanned<String>>,
    pub on_approved: Vec<Spanned<String>>,
    pub on_rejected: Vec<Spanned<String>>,
    pub on_expired: Vec<Spanned<String>>,
    pub on_failure: Vec<Spanned<String>>,
    pub span: Span,
    pub keys: Keys,
}

/// `spec.rollback`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rollback {
    pub on_failure: Spanned<OnFailure>,
    pub notification: Vec<Spanned<String>>,
    pub span: Span,
    pub keys: Keys,
}

/// A stage's `rollback`: the undo step.
#[derive(Clone, Debug, PartialEq)]
pub struct StageRollback {
    pub action: Spanned<ActionRef>,
    /// Open map, kept as written.
    pub params: Option<Node>,
    pub span: Span,
    pub keys: Keys,
}

/// `spec.audit`.
#[derive(Clone, Debug, PartialEq)]
pub struct Audit {
    pub log_to: Vec<Spanned<String>>,
    pub retention: Option<Spanned<Duration>>,
    pub span: Span,
    pub keys: Keys,
}

/// `spec.monitoring`.
#[derive(Clone, Debug, PartialEq)]
pub struct Monitoring {
    pub metrics: Vec<Metric>,
    pub alerts: Vec<Alert>,
    pub span: Span,
    pub keys: Keys,
}

/// A monitoring metric: `{name, target}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub name: Spanned<String>,
    pub target: ExprText,
    pub span: Span,
}

/// A monitoring alert: `{condition, notify}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub condition: ExprText,
    pub notify: Vec<Spanned<String>>,
    pub span: Span,
}

/// One entry of `spec.rate-limits`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// The key.
    pub action: Spanned<ActionRef>,
    pub count: u64,
    pub per: RateUnit,
    /// The value as written.
    pub value: Spanned<String>,
}

/// A stage's `langfuse`.
#[derive(Clone, Debug, PartialEq)]
pub struct Langfuse {
    pub trace_id: Option<Spanned<String>>,
    pub tags: Vec<Spanned<String>>,
    /// Open map, kept as written.
    pub metadata: Option<Node>,
    pub span: Span,
    pub keys: Keys,
}

/// One stage.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    /// Empty, spanning the stage's first key, if missing (reported).
    pub name: Spanned<String>,
    /// Position in `spec.stages`.
    pub index: usize,
    /// `None` if neither or both were given (reported).
    pub executor: Option<Executor>,
    /// Open map, kept as written.
    pub params: Option<Node>,
    pub prompt: Option<Spanned<String>>,
    pub lora: Option<Spanned<String>>,
    pub rag_source: Option<Spanned<String>>,
    pub guardrails: Vec<Spanned<String>>,
    pub policy: Option<Spanned<String>>,
    /// As written; see [`Stage::approval`] for the default.
    pub approval: Option<Spanned<Approval>>,
    /// `None` if absent or invalid (reported); `Some([])` for an empty list.
    pub approvers: Option<Spanned<Vec<Approver>>>,
    /// `min-approvals`: distinct people who must approve the gate; see
    /// [`Stage::min_approvals`] for the default.
    pub min_approvals: Option<Spanned<u32>>,
    pub conditions: Vec<Condition>,
    pub escalation: Vec<Escalation>,
    pub sla: Option<Spanned<Duration>>,
    pub timeout: Option<Spanned<Duration>>,
    pub retries: Option<Spanned<u32>>,
    pub notification: Option<Notification>,
    /// A path relative to the file of its span.
    pub output_schema: Option<Spanned<String>>,
    pub context: Vec<Spanned<String>>,
    /// `None`: not given (the stage needs the one before it); `Some([])`: a root.
    pub needs: Option<Spanned<Vec<Spanned<String>>>>,
    pub when: Option<ExprText>,
    pub risk: Option<Spanned<Risk>>,
    pub compliance: Vec<Spanned<String>>,
    pub audit_log: Option<Spanned<AuditLog>>,
    pub rollback: Option<StageRollback>,
    pub langfuse: Option<Langfuse>,
    /// The stage's mapping.
    pub span: Span,
    pub keys: Keys,
}

impl Stage {
    /// Distinct people who must approve this stage's gate: `min-approvals`, 1 by default.
    /// `branch` (an index into `conditions`) takes that branch's own value when it has one.
    pub fn min_approvals(&self, branch: Option<usize>) -> u32 {
        branch
            .and_then(|k| self.conditions.get(k))
            .and_then(|c| c.min_approvals.as_ref())
            .or(self.min_approvals.as_ref())
            .map_or(1, |m| m.value.max(1))
    }

    /// The approval mode (`auto` by default).
    pub fn approval(&self) -> Approval {
        self.approval
            .as_ref()
            .map(|a| a.value)
            .unwrap_or(Approval::Auto)
    }

    pub fn agent(&self) -> Option<&Spanned<String>> {
        match &self.executor {
            Some(Executor::Agent(a)) => Some(a),
            _ => None,
        }
    }

    pub fn action(&self) -> Option<&Spanned<ActionRef>> {
        match &self.executor {
            Some(Executor::Action(a)) => Some(a),
            _ => None,
        }
    }

    /// The stage's risk: its own, else the playbook's.
    pub fn risk(&self, spec: &Spec) -> Risk {
        self.risk
            .as_ref()
            .map(|r| r.value)
            .unwrap_or_else(|| spec.risk())
    }
}

/// Reads one document as a Playbook.
///
/// Returns `None`, without diagnostics, when the document is not an `agenticops/v1`
/// Playbook at all (no `kind: Playbook`, another API group), and `None` with a diagnostic
/// when it claims to be one but is unusable (an `agenticops/v1` document of another kind).
/// Otherwise returns the model, with a diagnostic for every wrong shape; placeholders stand
/// in for missing required values (an empty name, no trigger).
pub fn from_document(
    root: &Node,
    sources: &SourceMap,
    opts: &ModelOptions,
    diags: &mut Vec<Diagnostic>,
) -> Option<Playbook> {
    let pb = build::Builder::new(sources, opts, diags).playbook(root)?;
    names::check(&pb, opts, diags);
    Some(pb)
}
