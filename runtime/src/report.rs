//! What a run looks like from outside: statuses, stage reports, approvals, and the
//! `--format json` shape.

use crate::audit::AuditEntry;
use crate::clock::{human_duration, rfc3339};
use crate::guardrails::Finding;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::fmt;

pbc_compiler::str_enum! { @serde
    /// A stage's status.
    StageStatus {
        Pending = "pending",
        Running = "running",
        Passed = "passed",
        Skipped = "skipped",
        Blocked = "blocked",
        WaitingApproval = "waiting-approval",
        Failed = "failed",
        RolledBack = "rolled-back",
        Rejected = "rejected",
        Expired = "expired",
        Refused = "refused",
        Interrupted = "interrupted",
    }
}

pbc_compiler::str_enum! { @serde
    /// A run's status (`running` while a process executes it).
    RunStatus {
        Running = "running",
        Succeeded = "succeeded",
        WaitingApproval = "waiting-approval",
        Blocked = "blocked",
        Failed = "failed",
        RolledBack = "rolled-back",
        Rejected = "rejected",
        Expired = "expired",
        Refused = "refused",
        Stopped = "stopped",
    }
}

impl RunStatus {
    /// Exit 0 for `succeeded` and `waiting-approval`, 1 otherwise.
    pub fn exit_code(self) -> u8 {
        match self {
            RunStatus::Succeeded | RunStatus::WaitingApproval => 0,
            _ => 1,
        }
    }

    /// Nothing more will happen to the run (a rollback may still be due on `resume`).
    pub fn is_final(self) -> bool {
        !matches!(self, RunStatus::Running | RunStatus::WaitingApproval)
    }
}

pbc_compiler::str_enum! { @serde
    /// Why a decision is asked for.
    ApprovalKind {
        /// `spec.risk: medium`: once, before the first stage.
        PlaybookRisk = "playbook-risk",
        /// A `risk: medium` stage, before it runs.
        StageRisk = "stage-risk",
        /// A manual or conditional gate (for an action, also its medium risk).
        Gate = "gate",
        /// An action was in flight when pbc died: run it again, or stop.
        Interrupted = "interrupted",
        /// A policy decided `require-approval` for the stage.
        Policy = "policy",
    }
}

pbc_compiler::str_enum! { @serde
    ApprovalStatus {
        Pending = "pending",
        Approved = "approved",
        Rejected = "rejected",
        Expired = "expired",
        Cancelled = "cancelled",
    }
}

/// An approver: a role (members from the agents file the run froze) or a person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApproverRef {
    Role(String),
    User(String),
}

impl fmt::Display for ApproverRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApproverRef::Role(r) => write!(f, "role {r}"),
            ApproverRef::User(u) => write!(f, "{u}"),
        }
    }
}

/// One escalation level of a gate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    pub after_secs: u64,
    pub approvers: Vec<ApproverRef>,
    pub notify: Vec<String>,
}

/// A decision asked of a person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Approval {
    /// 8 characters.
    pub id: String,
    pub run: String,
    /// `None` for the playbook's medium-risk approval.
    pub stage: Option<String>,
    pub kind: ApprovalKind,
    pub status: ApprovalStatus,
    /// Who may decide now (escalation levels add to it). Empty: anyone but the requester.
    pub approvers: Vec<ApproverRef>,
    pub escalation: Vec<Level>,
    /// Escalation levels opened so far.
    pub level: u32,
    /// What a person needs to decide.
    pub message: String,
    pub opened_at: i64,
    /// When the SLA (or the current escalation level) passes.
    pub deadline: Option<i64>,
    pub decided_by: Option<String>,
    pub decided_role: Option<String>,
    pub decided_at: Option<i64>,
    pub reason: Option<String>,
    /// Distinct people who must approve (`min-approvals`, 1 by default).
    pub min_approvals: u32,
    /// Who approved so far, in order, when more than one approval is needed.
    pub approved_by: Vec<String>,
}

/// A rejection remembered for a playbook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub playbook: String,
    pub run: String,
    pub stage: Option<String>,
    pub by: String,
    pub reason: String,
    pub at: i64,
}

impl Rejection {
    pub fn describe(&self, now: i64) -> String {
        format!(
            "rejected {} ago ({}) by {} in run {}{}: {}",
            human_duration(now - self.at),
            rfc3339(self.at),
            self.by,
            self.run,
            self.stage
                .as_ref()
                .map(|s| format!(" at stage {s}"))
                .unwrap_or_default(),
            self.reason
        )
    }
}

/// One stage of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageReport {
    pub name: String,
    pub status: StageStatus,
    /// Guardrails that triggered, in order, each once.
    pub guardrails_triggered: Vec<String>,
    /// Where they matched (no matched text).
    pub findings: Vec<Finding>,
    /// The stage's gate (the latest decision asked), if it has one.
    pub approval_id: Option<String>,
    /// The validated output (matches of triggered guardrails redacted).
    pub output: Option<Value>,
    /// Why it failed, was refused or blocked.
    pub error: Option<String>,
    pub attempts: u32,
    /// The policy decision that settled the stage (`{"name", "decision", "reasons"}`): a
    /// deny if one denied, else the latest.
    pub policy: Option<Value>,
}

impl StageReport {
    /// True if the stage asked a person (the code-review example's `approval_needed`).
    pub fn approval_needed(&self) -> bool {
        self.approval_id.is_some()
    }
}

/// A run as `pbc run`, `resume` and the library report it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunReport {
    pub run: String,
    pub playbook: String,
    pub status: RunStatus,
    pub requester: String,
    pub started: i64,
    /// In `spec.stages` order.
    pub stages: Vec<StageReport>,
    /// Decisions still open.
    pub pending: Vec<Approval>,
    /// Earlier rejections of the same playbook, newest first.
    pub previous_rejections: Vec<Rejection>,
    /// The runbook of refused stages (risk high), as printed.
    pub runbook: Option<String>,
    /// Why the run ended as it did.
    pub message: Option<String>,
    /// When the report was made.
    pub now: i64,
}

impl RunReport {
    pub fn stage(&self, name: &str) -> Option<&StageReport> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// Every guardrail triggered in the run.
    pub fn guardrails_triggered(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for s in &self.stages {
            for g in &s.guardrails_triggered {
                if !v.contains(g) {
                    v.push(g.clone());
                }
            }
        }
        v
    }

    /// The `--format json` object.
    pub fn to_json(&self) -> Value {
        let mut stages = serde_json::Map::new();
        for s in &self.stages {
            let mut one = json!({
                "status": s.status.as_str(),
                "guardrails_triggered": s.guardrails_triggered,
                "approval_id": s.approval_id,
                "output": s.output,
            });
            if let Some(p) = &s.policy {
                one["policy"] = p.clone();
            }
            stages.insert(s.name.clone(), one);
        }
        json!({"run": self.run, "status": self.status.as_str(), "stages": stages})
    }

    /// The human form.
    pub fn to_human(&self) -> String {
        let mut out = format!("run {}  {}  {}\n", self.run, self.playbook, self.status);
        let w = self.stages.iter().map(|s| s.name.len()).max().unwrap_or(0);
        for s in &self.stages {
            let mut line = format!("  {:<w$}  {}", s.name, s.status);
            if let Some(id) = &s.approval_id
                && s.status == StageStatus::WaitingApproval
            {
                line.push_str(&format!("  (approval {id})"));
            }
            if !s.guardrails_triggered.is_empty() {
                line.push_str(&format!(
                    "  guardrails: {}",
                    s.findings
                        .iter()
                        .map(Finding::describe)
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
            if let Some(e) = &s.error
                && s.status != StageStatus::Passed
            {
                line.push_str(&format!(
                    "\n  {:<w$}    {}",
                    "",
                    e.replace('\n', &format!("\n  {:<w$}    ", ""))
                ));
            }
            out.push_str(&line);
            out.push('\n');
        }
        if let Some(m) = &self.message {
            out.push_str(&format!("{m}\n"));
        }
        for a in &self.pending {
            out.push('\n');
            out.push_str(&a.message);
            out.push('\n');
            out.push_str(&format!(
                "  approve: pbc approve {} --as EMAIL\n  reject:  pbc reject {} --as EMAIL --reason TEXT\n  then:    pbc resume {}\n",
                a.id, a.id, self.run
            ));
        }
        if let Some(r) = &self.runbook {
            out.push('\n');
            out.push_str(r);
        }
        out
    }
}

/// A line of `pbc runs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    pub run: String,
    pub playbook: String,
    pub status: RunStatus,
    /// The approval the run waits on (`ID (stage)`), if any.
    pub waiting_on: Option<String>,
    pub started: i64,
    /// Milliseconds until the gate's current deadline, if it has one.
    pub sla_left_ms: Option<i64>,
}

impl RunSummary {
    /// One entry of `pbc runs --format json` and `GET /v1/runs`:
    /// `{"run", "playbook", "status", "waiting_on", "started"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "run": self.run,
            "playbook": self.playbook,
            "status": self.status.as_str(),
            "waiting_on": self.waiting_on,
            "started": crate::clock::rfc3339(self.started),
        })
    }
}

/// The outcome of `approve` / `reject`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub approval: String,
    pub run: String,
    pub stage: Option<String>,
    pub status: ApprovalStatus,
    pub by: String,
    /// The role through which `by` was allowed (`None`: named as a user).
    pub role: Option<String>,
    /// Distinct approvers the gate needs (`min-approvals`).
    pub min_approvals: u32,
    /// Who approved so far, `by` included, when the gate needs more than one.
    pub approved_by: Vec<String>,
}

/// A run's audit entries.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditLog {
    pub entries: Vec<AuditEntry>,
}

impl AuditLog {
    /// The control tags the entries carry, each once, in first-seen order.
    pub fn compliance_tags(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for e in &self.entries {
            for t in &e.compliance {
                if !v.contains(t) {
                    v.push(t.clone());
                }
            }
        }
        v
    }

    pub fn events(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.event.as_str()).collect()
    }
}

/// Options of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// Who triggered the run; they cannot approve its gates.
    pub requester: String,
    pub allow_unenforced_guardrails: bool,
}

impl RunOptions {
    pub fn requested_by(who: &str) -> Self {
        RunOptions {
            requester: who.to_string(),
            allow_unenforced_guardrails: false,
        }
    }
}
