//! Approval gates: when a run or a stage must ask a person (the playbook's and a stage's
//! risk, `approval: manual`, conditional gates that fail safe to manual), and opening the
//! question with its SLA, escalation levels and the message the approvers read.

use super::{Live, Runtime, interpolate, random_hex};
use crate::Result;
use crate::agents::Agents;
use crate::audit::AuditEntry;
use crate::clock::{human_duration, rfc3339};
use crate::eval;
use crate::report::{
    Approval, ApprovalKind, ApprovalStatus, ApproverRef, Level, RunStatus, StageStatus,
};
use pbc_compiler::model::{Approval as Mode, Approver, Gate, Risk};
use serde_json::{Value, json};

/// How a gate came out.
pub(super) struct GateNeed {
    pub(super) approvers: Vec<ApproverRef>,
    pub(super) why: String,
    /// Distinct people who must approve (`min-approvals`).
    pub(super) min: u32,
}

/// The most approvals any manual branch of a stage asks (a conditional gate that fails
/// safe to manual asks the strictest).
fn strictest_min(stage: &pbc_compiler::model::Stage) -> u32 {
    (0..stage.conditions.len())
        .map(|k| stage.min_approvals(Some(k)))
        .chain([stage.min_approvals(None)])
        .max()
        .unwrap_or(1)
}

/// The approvers a playbook, stage, condition or escalation level names.
pub(super) fn approvers_of(
    list: Option<&pbc_compiler::model::Spanned<Vec<Approver>>>,
) -> Vec<ApproverRef> {
    list.map(|l| {
        l.value
            .iter()
            .map(|a| match a {
                Approver::Role(r) => ApproverRef::Role(r.value.clone()),
                Approver::User(u) => ApproverRef::User(u.value.clone()),
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Approvers as a person reads them: users, and roles with their members in the run's role
/// map.
pub(super) fn describe_approvers(approvers: &[ApproverRef], agents: &Agents) -> String {
    if approvers.is_empty() {
        return "nobody (the gate names no approvers)".into();
    }
    approvers
        .iter()
        .map(|a| match a {
            ApproverRef::User(u) => u.clone(),
            ApproverRef::Role(r) => match agents.roles.get(r) {
                Some(m) if !m.is_empty() => format!("role {r} ({})", m.join(", ")),
                _ => format!("role {r} (no members in the role map)"),
            },
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `v` as JSON, cut after `max` characters.
fn excerpt(v: &Value, max: usize) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    if s.chars().count() <= max {
        s
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

fn unreachable_text() -> String {
    "start the playbook".into()
}

impl Runtime {
    /// The playbook's own risk. Returns false when the run cannot go on now.
    pub(super) fn playbook_gate(&mut self, live: &mut Live) -> Result<bool> {
        let risk = live.c.playbook.spec.risk();
        if risk == Risk::High {
            let all: Vec<usize> = (0..live.stages.len()).collect();
            for i in all {
                if live.stages[i].status == StageStatus::Pending {
                    live.stages[i].status = StageStatus::Refused;
                    live.stages[i].error = Some("risk high: the playbook is high-risk; pbc never executes it and prints its runbook instead".into());
                    self.record(
                        live,
                        i,
                        "stage-refused",
                        "pbc",
                        json!({"reason": "risk high (playbook)"}),
                    )?;
                }
            }
            return Ok(true);
        }
        // In a workflow, the suspend `pbc-playbook-approval` asked before the first stage.
        if risk != Risk::Medium || live.run.frozen.workflow {
            return Ok(true);
        }
        let approvals = self.load_approvals("run = ?1 AND kind = 'playbook-risk'", &live.run.id)?;
        match approvals.last().map(|a| a.status) {
            Some(ApprovalStatus::Approved) => {
                let Some(a) = approvals.last() else {
                    return Ok(false);
                };
                let signed = match crate::chain::confirm_granted(&self.store, a)? {
                    Ok(s) => s,
                    Err(m) => {
                        self.end_run(live, RunStatus::Failed, &m)?;
                        return Ok(false);
                    }
                };
                if let Err(m) = self.confirm_signature(live, a, &signed) {
                    self.end_run(live, RunStatus::Failed, &m)?;
                    return Ok(false);
                }
                Ok(true)
            }
            Some(ApprovalStatus::Pending) => Ok(false),
            Some(ApprovalStatus::Rejected | ApprovalStatus::Expired) => {
                if let Some(a) = approvals.last() {
                    self.end_by_decision(live, a)?;
                }
                Ok(false)
            }
            Some(_) => Ok(false),
            None => {
                let approvers = approvers_of(live.c.playbook.spec.approvers.as_ref());
                self.open_approval(
                    live,
                    None,
                    ApprovalKind::PlaybookRisk,
                    GateNeed {
                        approvers,
                        why: "the playbook is `risk: medium`: one approval before its first stage"
                            .into(),
                        min: 1,
                    },
                    None,
                )?;
                Ok(false)
            }
        }
    }

    /// The manual gate a stage needs now, if any (conditional gates fail safe).
    pub(super) fn gate_need(&self, live: &Live, i: usize) -> Option<GateNeed> {
        let stage = &live.c.playbook.spec.stages[i];
        let stage_approvers = approvers_of(stage.approvers.as_ref());
        match stage.approval() {
            Mode::Auto => None,
            Mode::Manual => Some(GateNeed {
                approvers: stage_approvers,
                why: "`approval: manual`".into(),
                min: stage.min_approvals(None),
            }),
            Mode::Conditional => {
                let scope = self.scope(live, i, stage.agent().is_some());
                for (k, c) in stage.conditions.iter().enumerate() {
                    let branch = approvers_of(c.approvers.as_ref());
                    let approvers = if branch.is_empty() {
                        stage_approvers.clone()
                    } else {
                        branch
                    };
                    let Some(test) = &c.test else {
                        return (c.then.value == Gate::Manual).then(|| GateNeed {
                            approvers,
                            why: "the `else` branch of `conditions` says manual".into(),
                            min: stage.min_approvals(Some(k)),
                        });
                    };
                    let text = test.text.value.clone();
                    let Some(l) = live
                        .c
                        .analysis
                        .conditions
                        .get(i)
                        .and_then(|v| v.get(k))
                        .and_then(Option::as_ref)
                    else {
                        return Some(GateNeed {
                            approvers,
                            why: format!("condition `{text}` could not be evaluated (fail safe)"),
                            min: strictest_min(stage),
                        });
                    };
                    let valid = eval::all_valid(l, &scope);
                    match c.then.value {
                        Gate::Manual => {
                            if eval::gate_manual(l, &scope) {
                                let why = if valid {
                                    format!("condition `{text}` holds")
                                } else {
                                    format!(
                                        "condition `{text}` could not be evaluated (a value it reads is absent or of the wrong type): fail safe to manual"
                                    )
                                };
                                let min = if valid {
                                    stage.min_approvals(Some(k))
                                } else {
                                    strictest_min(stage)
                                };
                                return Some(GateNeed {
                                    approvers,
                                    why,
                                    min,
                                });
                            }
                        }
                        Gate::Auto => {
                            if !valid {
                                let mut all = stage_approvers.clone();
                                for c2 in &stage.conditions {
                                    for a in approvers_of(c2.approvers.as_ref()) {
                                        if !all.contains(&a) {
                                            all.push(a);
                                        }
                                    }
                                }
                                return Some(GateNeed {
                                    approvers: all,
                                    why: format!(
                                        "condition `{text}` could not be evaluated (a value it reads is absent or of the wrong type): fail safe to manual"
                                    ),
                                    min: strictest_min(stage),
                                });
                            }
                            if eval::when_holds(l, &scope) {
                                return None;
                            }
                        }
                    }
                }
                None
            }
        }
    }

    pub(super) fn open_approval(
        &mut self,
        live: &mut Live,
        stage: Option<usize>,
        kind: ApprovalKind,
        need: GateNeed,
        proposed: Option<&Value>,
    ) -> Result<()> {
        self.open_approval_after(live, stage, kind, need, proposed, None)
    }

    /// [`Self::open_approval`], recording `before` (the agent's output) in the same
    /// transaction: a stage never waits for a person without a question asked.
    pub(super) fn open_approval_after(
        &mut self,
        live: &mut Live,
        stage: Option<usize>,
        kind: ApprovalKind,
        need: GateNeed,
        proposed: Option<&Value>,
        before: Option<AuditEntry>,
    ) -> Result<()> {
        if live.run.frozen.workflow {
            // In an Argo workflow only its suspends ask people; a question it has no suspend
            // for (a policy's `require-approval`) fails closed.
            let msg = format!(
                "{}: the Argo workflow has no suspend for this question, so the stage does not run",
                need.why
            );
            return match stage {
                Some(i) => self.stage_failed(live, i, &msg),
                None => self.end_run(live, RunStatus::Failed, &msg),
            };
        }
        let now = self.now();
        let id = loop {
            let id = random_hex(8);
            if self.approval(&id).is_err() {
                break id;
            }
        };
        let model = stage.map(|i| live.c.playbook.spec.stages[i].clone());
        let sla = model
            .as_ref()
            .and_then(|s| s.sla.as_ref().map(|d| d.value.seconds))
            .or(live.c.frozen.config.default_sla_secs);
        let escalation: Vec<Level> = model
            .as_ref()
            .map(|s| {
                s.escalation
                    .iter()
                    .map(|e| Level {
                        after_secs: e.after.value.seconds,
                        approvers: approvers_of(e.approvers.as_ref()),
                        notify: e.notify.iter().map(|n| n.value.clone()).collect(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let deadline = sla.map(|s| now + (s as i64) * 1000);
        let message = self.approval_message(live, &id, stage, kind, &need, proposed, deadline, sla);
        let a = Approval {
            id: id.clone(),
            run: live.run.id.clone(),
            stage: model.as_ref().map(|s| s.name.value.clone()),
            kind,
            status: ApprovalStatus::Pending,
            approvers: need.approvers.clone(),
            escalation,
            level: 0,
            message: message.clone(),
            opened_at: now,
            deadline,
            decided_by: None,
            decided_role: None,
            decided_at: None,
            reason: None,
            min_approvals: need.min.max(1),
            approved_by: Vec::new(),
        };
        let sname = model.as_ref().map(|s| s.name.value.clone());
        let mut details = json!({
            "approval": id,
            "kind": kind.as_str(),
            "why": need.why,
            "approvers": need.approvers.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "deadline": deadline.map(rfc3339),
        });
        if need.min > 1 {
            details["min_approvals"] = json!(need.min);
        }
        let e = self.entry(live, sname.as_deref(), "approval-requested", "pbc", details);
        let chans: Vec<String> = model
            .as_ref()
            .and_then(|s| s.notification.as_ref())
            .map(|n| n.on_pending.iter().map(|c| c.value.clone()).collect())
            .unwrap_or_default();
        self.queue_notice(
            live,
            sname.as_deref(),
            "on-pending",
            chans,
            &message,
            json!({"approval": id}),
        );
        if let Some(i) = stage {
            if kind != ApprovalKind::Interrupted {
                live.stages[i].status = StageStatus::WaitingApproval;
            }
            live.stages[i].approval_id = Some(id.clone());
        }
        let row = stage.map(|i| live.stages[i].clone());
        let rid = live.run.id.clone();
        self.commit(|tx| {
            Self::save_approval(tx, &a)?;
            if let Some(r) = &row {
                Self::save_stage(tx, &rid, r)?;
            }
            if let Some(b) = before {
                tx.audit(b)?;
            }
            tx.audit(e)?;
            Ok(())
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn approval_message(
        &self,
        live: &Live,
        id: &str,
        stage: Option<usize>,
        kind: ApprovalKind,
        need: &GateNeed,
        proposed: Option<&Value>,
        deadline: Option<i64>,
        sla: Option<u64>,
    ) -> String {
        let pb = &live.c.playbook;
        let mut m = format!(
            "Approval {id}: playbook {} (run {}, triggered by {})\n",
            pb.name(),
            live.run.id,
            live.run.requester
        );
        match stage.map(|i| &pb.spec.stages[i]) {
            Some(s) => {
                let what = match (s.agent(), s.action()) {
                    (Some(a), _) => format!("agent {}", a.value),
                    (_, Some(a)) => format!("action {}", a.value),
                    _ => String::new(),
                };
                m.push_str(&format!("  stage:     {} ({what})\n", s.name.value));
                let i = s.index;
                let params = s
                    .params
                    .as_ref()
                    .map(|p| interpolate(&p.to_json(), &self.scope(live, i, true)));
                let proposal = match kind {
                    ApprovalKind::PlaybookRisk => unreachable_text(),
                    ApprovalKind::Interrupted => format!(
                        "run again: {what}{}",
                        params
                            .as_ref()
                            .map(|p| format!(" with {}", excerpt(&live.redactor.value(p), 400)))
                            .unwrap_or_default()
                    ),
                    _ if s.action().is_some() => format!(
                        "run {what}{}",
                        params
                            .as_ref()
                            .map(|p| format!(" with {}", excerpt(&live.redactor.value(p), 400)))
                            .unwrap_or_default()
                    ),
                    ApprovalKind::StageRisk => format!("run the {what}"),
                    ApprovalKind::Policy => format!(
                        "run the {what}{}",
                        params
                            .as_ref()
                            .map(|p| format!(" with {}", excerpt(&live.redactor.value(p), 400)))
                            .unwrap_or_default()
                    ),
                    _ => match proposed {
                        Some(o) => format!("accept the agent's output {}", excerpt(o, 400)),
                        None => "accept the agent's output".into(),
                    },
                };
                m.push_str(&format!("  proposed:  {proposal}\n"));
                let rb = match &s.rollback {
                    Some(r) => format!(
                        "{}{}",
                        r.action.value,
                        r.params
                            .as_ref()
                            .map(|p| format!(
                                " with {}",
                                excerpt(
                                    &live.redactor.value(&interpolate(
                                        &p.to_json(),
                                        &self.scope(live, i, true)
                                    )),
                                    300
                                )
                            ))
                            .unwrap_or_default()
                    ),
                    None => "none declared for this stage".into(),
                };
                let onf = pb
                    .spec
                    .rollback
                    .as_ref()
                    .map(|r| r.on_failure.value.as_str())
                    .unwrap_or("none");
                m.push_str(&format!(
                    "  rollback:  {rb}; on failure the playbook does `{onf}`\n"
                ));
            }
            None => {
                m.push_str(&format!(
                    "  proposed:  start the playbook ({} stages: {})\n",
                    pb.spec.stages.len(),
                    pb.spec
                        .stages
                        .iter()
                        .map(|s| s.name.value.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        m.push_str(&format!(
            "  input:     {}\n",
            excerpt(&live.redactor.value(&live.run.input), 400)
        ));
        m.push_str(&format!("  why:       {}\n", need.why));
        m.push_str(&format!(
            "  approvers: {} (not {}, who triggered the run)\n",
            describe_approvers(&need.approvers, &live.agents),
            live.run.requester
        ));
        if need.min > 1 {
            m.push_str(&format!(
                "  needs:     {} distinct approvers (min-approvals)\n",
                need.min
            ));
        }
        match (deadline, sla) {
            (Some(d), Some(s)) => m.push_str(&format!(
                "  deadline:  {} (SLA {})\n",
                rfc3339(d),
                human_duration(s as i64 * 1000)
            )),
            _ => m.push_str("  deadline:  none (no SLA)\n"),
        }
        m
    }
}
