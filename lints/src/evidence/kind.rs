//! The evidence kinds: their names in rule files, one-line meanings, and the constructs of
//! the enforcement table each rests on.

use pbc_compiler::enforcement::Construct;

/// A kind of evidence observable in a resolved playbook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EvidenceKind {
    /// `spec.audit.log-to` names at least one sink that the configuration defines
    /// (`audit-sinks:`); a name it does not define sends nothing anywhere.
    AuditSink,
    /// Playbook: every stage with a human gate has `audit-log: required`, and at least one
    /// stage has it. Stage: the stage has `audit-log: required`.
    AuditLog,
    /// `spec.audit.retention` is set, is a duration, and is at least the organisation's
    /// configured minimum.
    AuditRetention,
    /// Playbook: at least one gate with named approvers (a stage's, or `spec.approvers` of a
    /// `medium`-risk playbook). Stage: the stage has a gate with named approvers.
    HumanGate,
    /// In a production environment: a gate with named approvers before every `action:` stage
    /// (stage: before this one, if it is an action). Outside production: not required.
    ProductionActionGates,
    /// Every gate names at least one role (not only individuals), and there is a gate.
    RoleApprovers,
    /// Every human gate has an `sla` and an `on-pending` notification.
    GateSla,
    /// `spec.rollback.on-failure` is set and is not `none`.
    RollbackOnFailure,
    /// `spec.rollback.notification` names at least one channel.
    FailureNotification,
    /// `spec.rollback.on-failure: revert-to-previous`, and every `action:` stage recorded as
    /// changing state (`audit-log: required`) has a `rollback` step (stage: this action).
    RevertToPrevious,
    /// `spec.monitoring.alerts` has at least one alert, and every alert notifies someone.
    MonitoringAlerts,
    /// At least one alert watches a security-relevant signal (guardrail triggers, failure,
    /// error or violation rates, changes; [`security_signal`]) and each such alert notifies
    /// someone: a cost or latency KPI is not security monitoring.
    SecurityAlerts,
    /// Every `action:` stage that can run has an entry in `spec.rate-limits` for its action
    /// (stage: this action). Rests on the rate-limit construct.
    RateLimits,
    /// Every stage that can run declares a `timeout`. Declaration: the enforcement table has
    /// no row for timeouts (pbc's engine bounds every stage, with a default when none is
    /// written), so this kind shows the bound was decided, not that each target applies it.
    StageTimeouts,
    /// Every stage that can run declares an `output-schema`. Declaration: the enforcement
    /// table has no row for output validation (pbc's engine validates outputs against it).
    OutputSchemas,
    /// The trigger's input is described by an `input-schema`. Declaration: the enforcement
    /// table has no row for input validation (`pbc run` validates the input against it).
    InputSchema,
    /// Every agent stage that can run names guardrails of its own (`guardrails:`), beyond the
    /// organisation's always-on ones (stage: this stage). Rests on the guardrail construct.
    StageGuardrails,
    /// Every `action:` stage that can run is checked by a policy before it executes (its
    /// `policy:` or an `always-on-policies:` entry). Rests on the policy construct.
    ActionPolicies,
    /// Every human gate has at least one `escalation` level, and there is a gate. Rests on
    /// the escalation construct.
    GateEscalation,
    /// Every human gate needs at least two distinct approvers (`min-approvals` of 2 or more;
    /// on a conditional gate, for every manual branch), and there is a gate. Rests on the
    /// gate, approvers and min-approvals constructs.
    TwoPersonApproval,
}

/// Every evidence kind, in documentation order.
pub const KINDS: &[EvidenceKind] = &[
    EvidenceKind::AuditSink,
    EvidenceKind::AuditLog,
    EvidenceKind::AuditRetention,
    EvidenceKind::HumanGate,
    EvidenceKind::ProductionActionGates,
    EvidenceKind::RoleApprovers,
    EvidenceKind::GateSla,
    EvidenceKind::RollbackOnFailure,
    EvidenceKind::FailureNotification,
    EvidenceKind::RevertToPrevious,
    EvidenceKind::MonitoringAlerts,
    EvidenceKind::SecurityAlerts,
    EvidenceKind::RateLimits,
    EvidenceKind::StageTimeouts,
    EvidenceKind::OutputSchemas,
    EvidenceKind::InputSchema,
    EvidenceKind::StageGuardrails,
    EvidenceKind::ActionPolicies,
    EvidenceKind::GateEscalation,
    EvidenceKind::TwoPersonApproval,
];

/// Words in a metric's name that make an alert on it a security-relevant signal: what
/// guardrails, policies and failures report, and changes. Anything else (cost, latency,
/// tokens, quality scores) is a KPI.
pub const SECURITY_SIGNALS: &[&str] = &[
    "guardrail",
    "violation",
    "failure",
    "failed",
    "error",
    "denied",
    "deny",
    "refused",
    "blocked",
    "rejected",
    "change",
    "security",
    "incident",
    "anomal",
    "injection",
    "pii",
    "secret",
    "unauthori",
    "intrusion",
    "vulnerab",
    "exploit",
];

/// True when an alert condition (`METRIC OP VALUE`) watches a security-relevant signal: its
/// metric's name contains one of [`SECURITY_SIGNALS`].
pub fn security_signal(condition: &str) -> bool {
    let metric = condition
        .split(|c: char| c.is_whitespace() || "<>=!".contains(c))
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    SECURITY_SIGNALS.iter().any(|w| metric.contains(w))
}

impl EvidenceKind {
    /// The name used in rule files and reports.
    pub fn name(self) -> &'static str {
        match self {
            EvidenceKind::AuditSink => "audit-sink",
            EvidenceKind::AuditLog => "audit-log",
            EvidenceKind::AuditRetention => "audit-retention",
            EvidenceKind::HumanGate => "human-gate",
            EvidenceKind::ProductionActionGates => "production-action-gates",
            EvidenceKind::RoleApprovers => "role-approvers",
            EvidenceKind::GateSla => "gate-sla",
            EvidenceKind::RollbackOnFailure => "rollback-on-failure",
            EvidenceKind::FailureNotification => "failure-notification",
            EvidenceKind::RevertToPrevious => "revert-to-previous",
            EvidenceKind::MonitoringAlerts => "monitoring-alerts",
            EvidenceKind::SecurityAlerts => "security-alerts",
            EvidenceKind::RateLimits => "rate-limits",
            EvidenceKind::StageTimeouts => "stage-timeouts",
            EvidenceKind::OutputSchemas => "output-schemas",
            EvidenceKind::InputSchema => "input-schema",
            EvidenceKind::StageGuardrails => "stage-guardrails",
            EvidenceKind::ActionPolicies => "action-policies",
            EvidenceKind::GateEscalation => "gate-escalation",
            EvidenceKind::TwoPersonApproval => "two-person-approval",
        }
    }

    /// The kind with this name.
    pub fn parse(s: &str) -> Option<EvidenceKind> {
        KINDS.iter().copied().find(|k| k.name() == s)
    }

    /// What the kind requires, in one line.
    pub fn describe(self) -> &'static str {
        match self {
            EvidenceKind::AuditSink => {
                "`spec.audit.log-to` names at least one audit sink that `audit-sinks:` in .pbc.yaml defines"
            }
            EvidenceKind::AuditLog => {
                "every stage with a human gate has `audit-log: required` (a stage claim: that stage)"
            }
            EvidenceKind::AuditRetention => {
                "`spec.audit.retention` is set and at least the organisation's minimum"
            }
            EvidenceKind::HumanGate => "a gate with named approvers (a stage claim: on that stage)",
            EvidenceKind::ProductionActionGates => {
                "in a production environment, a gate with named approvers before every `action:` stage"
            }
            EvidenceKind::RoleApprovers => "every gate names at least one approver role",
            EvidenceKind::GateSla => {
                "every human gate has an `sla` and an `on-pending` notification"
            }
            EvidenceKind::RollbackOnFailure => "`spec.rollback.on-failure` is set and not `none`",
            EvidenceKind::FailureNotification => {
                "`spec.rollback.notification` names at least one channel"
            }
            EvidenceKind::RevertToPrevious => {
                "`on-failure: revert-to-previous` and a `rollback` step on every audited `action:` stage"
            }
            EvidenceKind::MonitoringAlerts => {
                "`spec.monitoring.alerts` has at least one alert, each with `notify`"
            }
            EvidenceKind::SecurityAlerts => {
                "an alert on a security-relevant signal (guardrail triggers, failure or violation rates, changes), each with `notify`"
            }
            EvidenceKind::RateLimits => {
                "every `action:` stage that can run has a `spec.rate-limits` entry for its action"
            }
            EvidenceKind::StageTimeouts => {
                "every stage that can run declares a `timeout` (declaration: no enforcement-table row)"
            }
            EvidenceKind::OutputSchemas => {
                "every stage that can run declares an `output-schema` (declaration: no enforcement-table row)"
            }
            EvidenceKind::InputSchema => {
                "the trigger's input has an `input-schema` (declaration: no enforcement-table row)"
            }
            EvidenceKind::StageGuardrails => {
                "every agent stage that can run names guardrails of its own (`guardrails:`)"
            }
            EvidenceKind::ActionPolicies => {
                "every `action:` stage that can run is checked by a `policy:` or an always-on policy"
            }
            EvidenceKind::GateEscalation => "every human gate has an `escalation` level",
            EvidenceKind::TwoPersonApproval => {
                "every human gate needs at least two distinct approvers (`min-approvals: 2` or more)"
            }
        }
    }

    /// True for a requirement that depends on the environment (a playbook in none cannot
    /// be assessed against it).
    pub fn environment_scoped(self) -> bool {
        self == EvidenceKind::ProductionActionGates
    }

    /// The constructs that must be enforced where the playbook runs for this evidence to
    /// hold ([`pbc_compiler::enforcement`]).
    pub fn constructs(self) -> &'static [Construct] {
        match self {
            EvidenceKind::AuditSink | EvidenceKind::AuditLog | EvidenceKind::AuditRetention => {
                &[Construct::AuditSink]
            }
            EvidenceKind::HumanGate | EvidenceKind::ProductionActionGates => {
                &[Construct::Gate, Construct::Approvers]
            }
            EvidenceKind::RoleApprovers => &[Construct::Approvers],
            EvidenceKind::GateSla => &[Construct::Sla],
            EvidenceKind::RollbackOnFailure | EvidenceKind::RevertToPrevious => {
                &[Construct::Rollback]
            }
            EvidenceKind::RateLimits => &[Construct::RateLimit],
            EvidenceKind::StageGuardrails => &[Construct::Guardrail],
            EvidenceKind::ActionPolicies => &[Construct::Policy],
            EvidenceKind::GateEscalation => &[Construct::Escalation],
            EvidenceKind::TwoPersonApproval => &[
                Construct::Gate,
                Construct::Approvers,
                Construct::MinApprovals,
            ],
            EvidenceKind::FailureNotification
            | EvidenceKind::MonitoringAlerts
            | EvidenceKind::SecurityAlerts
            | EvidenceKind::StageTimeouts
            | EvidenceKind::OutputSchemas
            | EvidenceKind::InputSchema => &[],
        }
    }
}
