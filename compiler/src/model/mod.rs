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
pub mod cron;
pub mod names;
pub mod scalar;
pub mod values;

use crate::declare_codes;
use crate::diag::Diagnostic;
use crate::span::{SourceMap, Span};
use crate::yaml::Node;
use std::fmt;

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

declare_codes! {
    /// A mapping has a key that the Playbook format does not define at that place.
    ///
    /// Every mapping of an `agenticops/v1` Playbook has a fixed set of fields,
    /// except the open maps `params`, `metadata.labels`, `metadata.annotations`,
    /// `langfuse.metadata`, `rollout` and `promotion`. A misspelt field would otherwise be
    /// silently ignored, so it is an error. The help names the closest field and lists the
    /// valid ones; the fix renames the key.
    ///
    /// ```yaml
    /// - name: review
    ///   agent: glm-5
    ///   aproval: manual     # did you mean `approval`?
    /// ```
    PB2001 UNKNOWN_FIELD "unknown-field" Error "a field the Playbook format does not define";
    /// A value has the wrong YAML type: a mapping where a list is expected, a number where a
    /// string is expected, and so on.
    ///
    /// pbc reads YAML 1.2: `retries: "2"` is a string and `name: 123` an integer. Write the
    /// value in the expected form; quote strings that look like numbers or booleans, and write
    /// a single list item as a list (`guardrails: [pii-detection]`).
    ///
    /// ```yaml
    /// guardrails: pii-detection    # expected a list of guardrail names, found a string
    /// ```
    PB2002 WRONG_TYPE "wrong-type" Error "a value of the wrong type";
    /// A required field is missing.
    ///
    /// Required: `apiVersion`, `kind`, `metadata.name`, `spec.trigger`, `spec.stages` (at
    /// least one), a stage's `name`, a condition's `then`, a spec `rollback`'s `on-failure`, a
    /// stage `rollback`'s `action`, an escalation level's `after`, a metric's `name` and
    /// `target`, an alert's `condition`, and an `sla` wherever `escalation` is given (its first
    /// level opens when the SLA passes). The diagnostic points at the key of the mapping that
    /// lacks the field (for a list item, at its first key; for the document, at its start).
    ///
    /// ```yaml
    /// metadata:          # `metadata` has no `name`
    ///   description: x
    /// ```
    PB2003 MISSING_FIELD "missing-field" Error "a required field is missing";
    /// A value is not one of the allowed words.
    ///
    /// `approval` is `auto`, `manual` or `conditional`; a condition's `then`/`else` is `auto`
    /// or `manual`; `risk` is `low`, `medium` or `high`; `audit-log` is `required` or
    /// `optional`; `rollback.on-failure` is `revert-to-previous`, `notify-only` or `none`;
    /// `rollout.strategy` is `canary` or `blue-green`. Values are case-sensitive.
    ///
    /// ```yaml
    /// approval: manuel     # expected `auto`, `manual` or `conditional`
    /// ```
    PB2004 INVALID_ENUM "invalid-enum" Error "a value that is not one of the allowed words";
    /// A duration is not written as `<whole number><unit>`.
    ///
    /// Durations (`sla`, `timeout`, `escalation[].after`, `audit.retention`,
    /// `rollout.steps[].pause`) are strings of a positive whole number and one unit: `30s`,
    /// `10m`, `4h`, `2d`. A bare number is refused (seconds or minutes?), and so are combined
    /// units (`1h30m`: write `90m`), fractions (`1.5h`), upper-case units and ISO 8601
    /// (`PT4H`); the help gives the accepted spelling. The longest duration is what Go's
    /// `time.Duration` holds (about 292 years).
    ///
    /// ```yaml
    /// sla: 3600       # write `1h`
    /// ```
    PB2005 INVALID_DURATION "invalid-duration" Error "a duration that is not `30s`, `10m`, `4h` or `2d`";
    /// A schedule trigger's cron expression is not one Argo accepts.
    ///
    /// `schedule` is five fields, `minute hour day-of-month month day-of-week`, read like
    /// robfig/cron's standard parser (which Argo CronWorkflows use): numbers, `*`, `?`, ranges
    /// `a-b`, steps `*/n` and `a-b/n`, lists `a,b`, month names `JAN`-`DEC` and day names
    /// `SUN`-`SAT`. Day-of-week is 0-6 (Sunday is 0; 7 is refused). The descriptors
    /// `@hourly`, `@daily`, `@weekly`, `@monthly` and `@yearly` stand alone; `@annually` and
    /// `@midnight` are refused in favour of `@yearly` and `@daily`, `@every` is refused, and
    /// the time zone goes into `timezone:`, not a `CRON_TZ=` prefix. Quartz extensions (a
    /// seconds field, `L`, `W`, `#`) do not exist here. The diagnostic points at the field.
    ///
    /// ```yaml
    /// trigger:
    ///   schedule: "0 25 * * *"     # `25` is out of range for the hour field (0-23)
    /// ```
    PB2006 INVALID_CRON "invalid-cron" Error "a cron schedule Argo would not accept";
    /// `trigger.timezone` is not an IANA time zone name.
    ///
    /// Use a name of the IANA time zone database, such as `Europe/Berlin`, `America/New_York`
    /// or `UTC`; names are case-sensitive. Abbreviations like `CEST` or `PST` are not zones.
    ///
    /// ```yaml
    /// timezone: Europe/Belin     # did you mean `Europe/Berlin`?
    /// ```
    PB2007 UNKNOWN_TIMEZONE "unknown-timezone" Error "a time zone that is not in the IANA database";
    /// A name is not a DNS-1123 label.
    ///
    /// `metadata.name`, `metadata.namespace` and stage names become Kubernetes object names,
    /// label values and Argo template names, so they must be DNS-1123 labels: at most 63
    /// characters, lower-case letters, digits and `-`, starting and ending with a letter or a
    /// digit. The fix suggests the normalized name (lower-cased, other characters turned into
    /// `-`).
    ///
    /// ```yaml
    /// - name: Code_Review     # write `code-review`
    /// ```
    PB2008 INVALID_NAME "invalid-name" Error "a name that is not a DNS-1123 label";
    /// A stage has both `agent` and `action`, or neither.
    ///
    /// A stage is either an agent step (`agent: MODEL`, which produces an output) or an
    /// action (`action: LAYER:FUNCTION`, which changes something); exactly one of the two.
    ///
    /// ```yaml
    /// - name: deploy
    ///   agent: glm-5
    ///   action: k8s:apply     # remove one of the two
    /// ```
    PB2009 AGENT_OR_ACTION "agent-or-action" Error "a stage needs exactly one of `agent` and `action`";
    /// An action reference is not `LAYER:FUNCTION`.
    ///
    /// `action`, a stage rollback's `action` and the keys of `spec.rate-limits` name an
    /// action as a layer, a colon and a function: `k8s:scale_deployment`. Each part starts
    /// with a letter or digit and holds letters, digits, `_`, `-` and `.`.
    ///
    /// ```yaml
    /// action: notify      # write e.g. `notify:send_message`
    /// ```
    PB2010 INVALID_ACTION_REF "invalid-action-ref" Error "an action that is not `LAYER:FUNCTION`";
    /// Two stages (or two metrics) have the same name.
    ///
    /// Stage names identify stages in `needs`, `context`, expressions, overlays (stages merge
    /// by name) and every target; metric names are what alert conditions read. Each must be
    /// unique within its playbook. The secondary label shows the first definition.
    ///
    /// ```yaml
    /// - name: review
    ///   agent: glm-5
    /// - name: review      # duplicate stage name
    ///   agent: glm-5
    /// ```
    PB2011 DUPLICATE_NAME "duplicate-name" Error "a stage or metric name used twice";
    /// A gate that needs a human has nobody to ask.
    ///
    /// An `approval: manual` stage needs `approvers` (at least one). In a `conditional`
    /// stage, a branch that resolves to `manual` uses its own `approvers`, else the stage's;
    /// with neither it is an error. A `risk: medium` stage, and a playbook with `spec.risk:
    /// medium`, need approvers too. Approvers are `{role: R}`, `{user: EMAIL}`
    /// or a bare string (a role, or a user if it holds `@`).
    ///
    /// ```yaml
    /// - name: deploy
    ///   action: k8s:apply
    ///   approval: manual    # no approvers
    /// ```
    PB2012 MISSING_APPROVERS "missing-approvers" Error "a manual gate without approvers";
    /// A gate field on a stage that has no gate.
    ///
    /// `approvers`, `sla` and `escalation` only matter when a stage waits for a person:
    /// `approval: manual` or `conditional`, or `risk: medium`. On a stage with `approval:
    /// auto` (the default) and no medium risk they have no effect, which usually means the
    /// `approval` line was forgotten.
    ///
    /// ```yaml
    /// - name: deploy
    ///   agent: glm-5
    ///   approvers: [sre-team]    # no effect: approval is `auto`
    /// ```
    PB2013 UNUSED_GATE_FIELD "unused-gate-field" Warning "a gate field on a stage without a gate";
    /// The `conditions` of a conditional gate are malformed.
    ///
    /// `approval: conditional` needs `conditions`: a list of `{if: EXPR, then: manual|auto,
    /// approvers: [...]}` items ending with exactly one `{else: manual|auto}`. The `else` is
    /// required (no gate may have an undefined outcome) and must be last (nothing after it
    /// could ever be reached). An item is either an `if` or the `else`. `conditions` on a stage
    /// whose approval is not `conditional` are never read, so they are an error too.
    ///
    /// ```yaml
    /// approval: conditional
    /// conditions:
    ///   - if: report.risk >= HIGH
    ///     then: manual
    ///   # missing: - else: auto
    /// ```
    PB2014 INVALID_CONDITIONS "invalid-conditions" Error "malformed conditions of a conditional gate";
    /// A stage names a guardrail that is neither built in nor defined in the configuration.
    ///
    /// Built in: `no-secrets-in-code`, `pii-detection`, `prompt-injection-detection`. Others
    /// can be defined under `guardrails:` in `.pbc.yaml`. An unknown guardrail is a warning
    /// here; the runtime refuses to run a stage whose guardrails it cannot enforce unless
    /// `--allow-unenforced-guardrails` is given.
    ///
    /// ```yaml
    /// guardrails: [owasp-top-10]    # not built in
    /// ```
    PB2015 UNKNOWN_GUARDRAIL "unknown-guardrail" Warning "a guardrail that is not built in or configured";
    /// A stage's `policy` (or `always-on-policies` in `.pbc.yaml`) names a policy that the
    /// configuration does not define.
    ///
    /// A policy is evaluated before the stage runs; a name that defines nothing would let the
    /// stage run unchecked, so it is an error. Define the policy under `policies:` in
    /// `.pbc.yaml` (Rego, Cedar or declarative rules), or fix the name.
    ///
    /// ```yaml
    /// policy: prod-change-policy    # no configured policy has this name
    /// ```
    PB2016 UNKNOWN_POLICY "unknown-policy" Error "a policy the configuration does not define";
    /// A rate limit is not `"N per second|minute|hour|day"`.
    ///
    /// `spec.rate-limits` maps `LAYER:FUNCTION` to a string of a positive whole number, the
    /// word `per` and a singular unit: `"10 per hour"`.
    ///
    /// ```yaml
    /// rate-limits:
    ///   "k8s:scale_deployment": 10/hour     # write "10 per hour"
    /// ```
    PB2017 INVALID_RATE_LIMIT "invalid-rate-limit" Error "a rate limit that is not `N per UNIT`";
    /// A value has the right type but is not acceptable: an empty name, a negative
    /// `retries`, a `user` approver that is not an e-mail address, a metric name that an
    /// expression could not refer to.
    ///
    /// ```yaml
    /// retries: -1    # must be 0 or more
    /// ```
    PB2018 INVALID_VALUE "invalid-value" Error "a value outside what the field accepts";
    /// A `kind: Playbook` document has the wrong `apiVersion`.
    ///
    /// Playbooks are `apiVersion: agenticops/v1`. (A dotted API group such as
    /// `agenticops.io/v1` is a Kubernetes custom resource, as pbc's `crd` target emits, and is
    /// not checked as a Playbook.)
    ///
    /// ```yaml
    /// apiVersion: agenticops/v2    # write agenticops/v1
    /// kind: Playbook
    /// ```
    PB2019 INVALID_API_VERSION "invalid-api-version" Error "a Playbook whose apiVersion is not agenticops/v1";
    /// An `apiVersion: agenticops/v1` document whose `kind` is not `Playbook`.
    ///
    /// `agenticops/v1` defines one kind, `Playbook` (case-sensitive).
    ///
    /// ```yaml
    /// apiVersion: agenticops/v1
    /// kind: PlayBook    # write Playbook
    /// ```
    PB2020 UNKNOWN_KIND "unknown-kind" Error "an agenticops/v1 document of a kind other than Playbook";
    /// A label or annotation that Kubernetes would refuse.
    ///
    /// `metadata.labels` and `metadata.annotations` are carried into Kubernetes objects.
    /// Keys are `[prefix/]name` (prefix a DNS subdomain, name 1-63 alphanumerics, `-`, `_`,
    /// `.`); label values are empty or like a key's name; all values are strings.
    ///
    /// ```yaml
    /// labels:
    ///   Team Name: security     # spaces are not allowed in keys
    /// ```
    PB2021 INVALID_LABEL "invalid-label" Error "a label or annotation Kubernetes would refuse";
    /// Two fields that exclude each other are both given.
    ///
    /// A trigger is an `event` or a `schedule`, not both; an approver is a `role` or a
    /// `user`; the input schema is given once, in `trigger.input-schema` or in
    /// `spec.input-schema`.
    ///
    /// ```yaml
    /// trigger:
    ///   event: pr-opened
    ///   schedule: "0 3 * * *"    # one or the other
    /// ```
    PB2022 CONFLICTING_FIELDS "conflicting-fields" Error "fields that exclude each other";
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

impl Playbook {
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
