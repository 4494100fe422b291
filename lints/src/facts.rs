//! The facts evidence rules look at, extracted from one resolved Playbook.
//!
//! Evidence rules never read YAML or the model directly: they read these facts, each with the
//! span it came from (for "evidence at file:line" and for pointing at where missing evidence
//! goes). They are built from the typed model ([`pbc_compiler::model::Playbook`]); a value the
//! model rejected is simply absent here (the model reports it).

use pbc_compiler::model::{self, Executor, Playbook, Stage};
use pbc_compiler::span::Span;

pub use pbc_compiler::model::{Approval, Duration, Risk, Spanned};

/// Whether an approver is a role or a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApproverKind {
    Role,
    User,
}

/// One entry of an `approvers` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approver {
    pub kind: ApproverKind,
    pub name: String,
    pub span: Span,
}

/// One branch of a conditional gate (`if` … `then`, or the closing `else`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Branch {
    /// `then: manual` / `else: manual`.
    pub manual: bool,
    /// The closing `else` branch.
    pub is_else: bool,
    pub approvers: Vec<Approver>,
    /// The branch's own `min-approvals`.
    pub min_approvals: Option<Spanned<u32>>,
    pub span: Span,
}

/// What a stage runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageKind {
    Agent(Spanned<String>),
    /// `LAYER:FUNCTION`, as text.
    Action(Spanned<String>),
    Unknown,
}

/// The facts of one stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageFacts {
    pub name: String,
    /// The span of the name value (or of the stage's first key when it has none).
    pub name_span: Span,
    /// The span of the whole stage item.
    pub span: Span,
    pub kind: StageKind,
    pub approval: Approval,
    pub approval_span: Option<Span>,
    pub approvers: Vec<Approver>,
    pub branches: Vec<Branch>,
    pub risk: Option<Spanned<Risk>>,
    pub sla: Option<Spanned<Duration>>,
    /// `notification.on-pending` channels.
    pub on_pending: Vec<Spanned<String>>,
    /// `audit-log: required`, with its span.
    pub audit_log: Option<Spanned<model::AuditLog>>,
    /// The `rollback` key of the stage's undo step.
    pub rollback_step: Option<Span>,
    /// Stage-level compliance tags.
    pub tags: Vec<Spanned<String>>,
    /// The stage's `policy`.
    pub policy: Option<Spanned<String>>,
    /// The stage's own `guardrails` (not the organisation's always-on ones).
    pub guardrails: Vec<Spanned<String>>,
    /// `timeout`.
    pub timeout: Option<Spanned<Duration>>,
    /// `output-schema`.
    pub output_schema: Option<Spanned<String>>,
    /// `min-approvals` of the stage (a conditional gate's branches may set their own).
    pub min_approvals: Option<Spanned<u32>>,
    /// The `after` of each `escalation` level.
    pub escalation: Vec<Span>,
}

/// A monitoring alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub condition: Spanned<String>,
    pub notify: Vec<Spanned<String>>,
    pub span: Span,
}

/// The facts of one Playbook in one environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaybookFacts {
    pub name: String,
    pub name_span: Span,
    /// The document's span.
    pub span: Span,
    /// The environment the document was resolved for (`None` outside `overlays/`).
    pub environment: Option<String>,
    /// True when the environment is one of the configured production environments.
    pub production: bool,
    /// Playbook-level compliance tags (`metadata.compliance`).
    pub tags: Vec<Spanned<String>>,
    /// The `spec` key (where missing playbook-level fields go).
    pub spec_key: Option<Span>,
    pub risk: Option<Spanned<Risk>>,
    /// `spec.approvers`.
    pub approvers: Vec<Approver>,
    pub stages_key: Option<Span>,
    pub stages: Vec<StageFacts>,
    /// The `spec.audit` key.
    pub audit_key: Option<Span>,
    pub audit_sinks: Vec<Spanned<String>>,
    /// The `log-to` key.
    pub audit_log_to_key: Option<Span>,
    pub retention: Option<Spanned<Duration>>,
    /// The `spec.rollback` key.
    pub rollback_key: Option<Span>,
    pub on_failure: Option<Spanned<model::OnFailure>>,
    pub rollback_notification: Vec<Spanned<String>>,
    /// The `spec.monitoring` key.
    pub monitoring_key: Option<Span>,
    pub alerts: Vec<Alert>,
    /// The input schema (`spec.input-schema` or the trigger's `input-schema`).
    pub input_schema: Option<Spanned<String>>,
    /// The `spec.trigger` key.
    pub trigger_key: Option<Span>,
    /// The `spec.rate-limits` key.
    pub rate_limits_key: Option<Span>,
    /// `spec.rate-limits`: each limited action (`LAYER:FUNCTION`) and its value.
    pub rate_limits: Vec<(String, Spanned<String>)>,
}

fn approvers_of(list: Option<&Spanned<Vec<model::Approver>>>) -> Vec<Approver> {
    list.map(|l| l.value.as_slice())
        .unwrap_or(&[])
        .iter()
        .map(|a| Approver {
            kind: if a.is_user() {
                ApproverKind::User
            } else {
                ApproverKind::Role
            },
            name: a.name().value.clone(),
            span: a.span(),
        })
        .collect()
}

fn stage_facts(st: &Stage) -> StageFacts {
    let kind = match &st.executor {
        Some(Executor::Agent(a)) => StageKind::Agent(a.clone()),
        Some(Executor::Action(a)) => StageKind::Action(a.as_ref().map(|r| r.to_string())),
        None => StageKind::Unknown,
    };
    StageFacts {
        name: st.name.value.clone(),
        name_span: st.name.span,
        span: st.span,
        kind,
        approval: st.approval(),
        approval_span: st.approval.as_ref().map(|a| a.span),
        approvers: approvers_of(st.approvers.as_ref()),
        branches: st
            .conditions
            .iter()
            .map(|c| Branch {
                manual: c.then.value == model::Gate::Manual,
                is_else: c.is_else(),
                approvers: approvers_of(c.approvers.as_ref()),
                min_approvals: c.min_approvals.clone(),
                span: c.span,
            })
            .collect(),
        risk: st.risk.clone(),
        sla: st.sla.clone(),
        on_pending: st
            .notification
            .as_ref()
            .map(|n| n.on_pending.clone())
            .unwrap_or_default(),
        audit_log: st.audit_log.clone(),
        rollback_step: st
            .rollback
            .as_ref()
            .map(|r| st.keys.get("rollback").unwrap_or(r.span)),
        tags: st.compliance.clone(),
        policy: st.policy.clone(),
        guardrails: st.guardrails.clone(),
        timeout: st.timeout.clone(),
        output_schema: st.output_schema.clone(),
        min_approvals: st.min_approvals.clone(),
        escalation: st.escalation.iter().map(|e| e.after.span).collect(),
    }
}

impl PlaybookFacts {
    /// Extracts the facts of a Playbook resolved for `environment`. `production` says whether
    /// `environment` is a production one (the caller knows the configuration).
    pub fn from_model(pb: &Playbook, environment: Option<&str>, production: bool) -> PlaybookFacts {
        let spec = &pb.spec;
        PlaybookFacts {
            name: pb.name().to_string(),
            name_span: pb.metadata.name.span,
            span: pb.span,
            environment: environment.map(str::to_string),
            production,
            tags: pb.metadata.compliance.clone(),
            spec_key: pb.keys.get("spec"),
            risk: spec.risk.clone(),
            approvers: approvers_of(spec.approvers.as_ref()),
            stages_key: spec.keys.get("stages"),
            stages: spec.stages.iter().map(stage_facts).collect(),
            audit_key: spec.keys.get("audit"),
            audit_sinks: spec
                .audit
                .as_ref()
                .map(|a| a.log_to.clone())
                .unwrap_or_default(),
            audit_log_to_key: spec.audit.as_ref().and_then(|a| a.keys.get("log-to")),
            retention: spec.audit.as_ref().and_then(|a| a.retention.clone()),
            rollback_key: spec.keys.get("rollback"),
            on_failure: spec.rollback.as_ref().map(|r| r.on_failure.clone()),
            rollback_notification: spec
                .rollback
                .as_ref()
                .map(|r| r.notification.clone())
                .unwrap_or_default(),
            monitoring_key: spec.keys.get("monitoring"),
            alerts: spec
                .monitoring
                .as_ref()
                .map(|m| {
                    m.alerts
                        .iter()
                        .map(|a| Alert {
                            condition: a.condition.text.clone(),
                            notify: a.notify.clone(),
                            span: a.span,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            input_schema: spec.input_schema().cloned(),
            trigger_key: spec.keys.get("trigger"),
            rate_limits_key: spec.keys.get("rate-limits"),
            rate_limits: spec
                .rate_limits
                .iter()
                .map(|r| (r.action.value.to_string(), r.value.clone()))
                .collect(),
        }
    }

    /// The risk a stage runs at: its own, else the playbook's, else `low`.
    pub fn effective_risk(&self, stage: &StageFacts) -> Risk {
        stage
            .risk
            .as_ref()
            .or(self.risk.as_ref())
            .map(|r| r.value)
            .unwrap_or(Risk::Low)
    }

    /// Where a missing playbook-level field goes: the `spec` key, else the document start.
    pub fn spec_anchor(&self) -> Span {
        self.spec_key
            .unwrap_or(Span::point(self.span.file, self.span.start))
    }
}

/// How a stage is gated by people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate<'a> {
    /// No person decides (auto, or a conditional without a manual branch).
    None,
    /// A person decides; the approvers who can (empty = the gate names nobody, or a manual
    /// branch has no approvers).
    People {
        approvers: Vec<&'a Approver>,
        /// True if every manual branch (or the manual gate) names approvers.
        complete: bool,
        /// True for a conditional gate (it may resolve to `auto`).
        conditional: bool,
        /// True when the gate exists because of `risk: medium`, not `approval`.
        by_risk: bool,
    },
    /// The stage never runs: its effective risk is `high`.
    Refused,
}

impl StageFacts {
    /// The stage's gate: `manual`; `conditional` with at least one manual
    /// branch (a manual branch without approvers uses the stage's); `risk: medium` (one
    /// approval from the stage's approvers); `risk: high` refuses the stage.
    pub fn gate<'a>(&'a self, pb: &PlaybookFacts) -> Gate<'a> {
        let risk = pb.effective_risk(self);
        if risk == Risk::High {
            return Gate::Refused;
        }
        match self.approval {
            Approval::Manual => Gate::People {
                approvers: self.approvers.iter().collect(),
                complete: !self.approvers.is_empty(),
                conditional: false,
                by_risk: false,
            },
            Approval::Conditional => {
                let manual: Vec<&Branch> = self.branches.iter().filter(|b| b.manual).collect();
                if manual.is_empty() {
                    return self.risk_gate(risk);
                }
                let mut approvers: Vec<&Approver> = Vec::new();
                let mut complete = true;
                for b in manual {
                    let list: Vec<&Approver> = if b.approvers.is_empty() {
                        self.approvers.iter().collect()
                    } else {
                        b.approvers.iter().collect()
                    };
                    complete &= !list.is_empty();
                    for a in list {
                        if !approvers
                            .iter()
                            .any(|x| x.name == a.name && x.kind == a.kind)
                        {
                            approvers.push(a);
                        }
                    }
                }
                Gate::People {
                    approvers,
                    complete,
                    conditional: true,
                    by_risk: false,
                }
            }
            Approval::Auto => self.risk_gate(risk),
        }
    }

    fn risk_gate(&self, risk: Risk) -> Gate<'_> {
        if risk == Risk::Medium {
            Gate::People {
                approvers: self.approvers.iter().collect(),
                complete: !self.approvers.is_empty(),
                conditional: false,
                by_risk: true,
            }
        } else {
            Gate::None
        }
    }

    /// True for a conditional gate that can let the stage run without a person: a branch
    /// says `auto`, or no `else` branch catches the values no condition matches.
    pub fn passes_without_person(&self) -> bool {
        self.approval == Approval::Conditional
            && (self.branches.iter().any(|b| !b.manual) || !self.branches.iter().any(|b| b.is_else))
    }

    /// True for an `action:` stage.
    pub fn is_action(&self) -> bool {
        matches!(self.kind, StageKind::Action(_))
    }

    /// `audit-log: required`.
    pub fn audit_log_required(&self) -> bool {
        self.audit_log
            .as_ref()
            .is_some_and(|a| a.value == model::AuditLog::Required)
    }

    /// A short description: ``stage `deploy` (action `k8s:apply`)``.
    pub fn describe(&self) -> String {
        match &self.kind {
            StageKind::Action(a) => format!("action stage `{}` (`{}`)", self.name, a.value),
            StageKind::Agent(_) => format!("agent stage `{}`", self.name),
            StageKind::Unknown => format!("stage `{}`", self.name),
        }
    }
}
