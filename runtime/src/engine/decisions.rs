//! Decisions on approvals: who may decide (the gate's users and its roles' members, never
//! the requester), recording an approval or a rejection, and how a rejection or an expiry
//! ends its run, in this process or in the one executing the run.

use super::{Live, RejectionRow, Runtime, describe_approvers, lock_run};
use crate::agents::{Agents, same_person};
use crate::audit::AuditEntry;
use crate::report::{Approval, ApprovalStatus, ApproverRef, Decision, RunStatus, StageStatus};
use crate::{Error, Result};
use pbc_compiler::model::Stage;
use serde_json::json;

/// A decision or expiry that ends the run, committed with the run's end.
pub(super) struct Closing {
    pub(super) approval: Approval,
    pub(super) entries: Vec<AuditEntry>,
    pub(super) rejection: Option<RejectionRow>,
}

/// Why a rejected or expired approval ended its run.
pub(super) fn closing_message(a: &Approval) -> String {
    match a.status {
        ApprovalStatus::Expired => format!(
            "approval {} expired after its SLA and {} escalation level(s); the run stops",
            a.id,
            a.escalation.len()
        ),
        _ => format!(
            "rejected by {}{}: {}",
            a.decided_by.as_deref().unwrap_or("?"),
            a.stage
                .as_ref()
                .map(|s| format!(" at {s}"))
                .unwrap_or_default(),
            a.reason.as_deref().unwrap_or("")
        ),
    }
}

/// Whether `who` may decide: named as a user, or a member of a named role (from the frozen
/// agents file). `Some(role)` names the role (`None` inside: named as a user). An empty list
/// approves nobody; it may be rejected by anyone (but the requester, refused before), which
/// only ends the run, as the kill switch does.
fn allowed(
    approvers: &[ApproverRef],
    agents: &Agents,
    who: &str,
    reject: bool,
) -> Option<Option<String>> {
    if approvers.is_empty() {
        return reject.then_some(None);
    }
    for a in approvers {
        if let ApproverRef::User(u) = a
            && same_person(u, who)
        {
            return Some(None);
        }
    }
    for a in approvers {
        if let ApproverRef::Role(r) = a
            && agents
                .roles
                .get(r)
                .is_some_and(|m| m.iter().any(|x| same_person(x, who)))
        {
            return Some(Some(r.clone()));
        }
    }
    None
}

impl Runtime {
    pub(super) fn decide(
        &mut self,
        id: &str,
        who: &str,
        reject: Option<&str>,
        statement: Option<&str>,
    ) -> Result<Decision> {
        self.apply_deadlines()?;
        let mut a = self.approval(id)?;
        if a.status != ApprovalStatus::Pending {
            return Err(Error::Refused(crate::decide::already_decided(
                id,
                a.status,
                a.decided_by.as_deref(),
                a.decided_at,
            )));
        }
        let live = self.load_live(&a.run)?;
        if same_person(who, &live.run.requester) {
            return Err(Error::Refused(format!(
                "{who} triggered run {} and cannot decide its gates (four-eyes rule)",
                live.run.id
            )));
        }
        let role = match allowed(&a.approvers, &live.agents, who, reject.is_some()) {
            Some(r) => r,
            None if a.approvers.is_empty() => {
                let e = self.entry(
                    &live,
                    a.stage.as_deref(),
                    "decision-refused",
                    who,
                    json!({"approval": id, "allowed": []}),
                );
                self.commit(|tx| tx.audit(e).map(|_| ()))?;
                return Err(Error::Refused(format!(
                    "{who} may not approve {id}: its gate names no approvers, and a gate without approvers accepts nobody. Name approvers in the playbook (`approvers:`) and start a new run; `pbc reject {id}` or `pbc runs stop {}` ends this one",
                    live.run.id
                )));
            }
            None => {
                let e = self.entry(&live, a.stage.as_deref(), "decision-refused", who, json!({"approval": id, "allowed": a.approvers.iter().map(ToString::to_string).collect::<Vec<_>>()}));
                self.commit(|tx| tx.audit(e).map(|_| ()))?;
                return Err(Error::Refused(format!(
                    "{who} may not decide approval {id}: allowed are {} (roles as in the role map frozen with run {})",
                    describe_approvers(&a.approvers, &live.agents),
                    live.run.id
                )));
            }
        };
        if reject.is_none()
            && let Err(r) = self.check_statement(&live, &a, who, statement)
        {
            let e = self.entry(
                &live,
                a.stage.as_deref(),
                "decision-refused",
                who,
                json!({"approval": id, "signature": r.code()}),
            );
            self.commit(|tx| tx.audit(e).map(|_| ()))?;
            return Err(Error::Refused(format!("{who} may not approve {id}: {r}")));
        }
        let now = self.now();
        a.decided_by = Some(who.to_string());
        a.decided_role = role.clone();
        a.decided_at = Some(now);
        let stage_channels = |s: Option<&Stage>,
                              f: fn(
            &pbc_compiler::model::Notification,
        ) -> &Vec<pbc_compiler::model::Spanned<String>>|
         -> Vec<String> {
            s.and_then(|s| s.notification.as_ref())
                .map(|n| f(n).iter().map(|c| c.value.clone()).collect())
                .unwrap_or_default()
        };
        let stage_model = a
            .stage
            .as_deref()
            .and_then(|s| live.c.playbook.stage(s))
            .cloned();
        let stage_model = stage_model.as_ref();
        match reject {
            None if a.min_approvals > 1 => {
                // One of several approvals: the one that reaches `min-approvals` decides.
                let needed = a.min_approvals;
                let so_far = a.approved_by.len() as u32;
                if so_far + 1 >= needed {
                    self.queue_notice(
                        &live,
                        a.stage.as_deref(),
                        "on-approved",
                        stage_channels(stage_model, |n| &n.on_approved),
                        &format!(
                            "{} approved {} ({}), with {}",
                            who,
                            id,
                            a.stage.as_deref().unwrap_or("playbook"),
                            a.approved_by.join(", ")
                        ),
                        json!({"approval": id, "by": who}),
                    );
                }
                // Decided (status, who, when) only by the vote that makes the number.
                a.decided_by = None;
                a.decided_role = None;
                a.decided_at = None;
                self.vote(&live, &mut a, who, role.as_deref(), statement)?;
            }
            None => {
                a.status = ApprovalStatus::Approved;
                let e = self.entry(
                    &live,
                    a.stage.as_deref(),
                    "approval-granted",
                    who,
                    match statement {
                        Some(st) => json!({"approval": id, "kind": a.kind.as_str(), "role": role, "statement": st.trim()}),
                        None => json!({"approval": id, "kind": a.kind.as_str(), "role": role}),
                    },
                );
                let ap = a.clone();
                self.queue_notice(
                    &live,
                    a.stage.as_deref(),
                    "on-approved",
                    stage_channels(stage_model, |n| &n.on_approved),
                    &format!(
                        "{who} approved {} ({})",
                        id,
                        a.stage.as_deref().unwrap_or("playbook")
                    ),
                    json!({"approval": id, "by": who}),
                );
                self.commit(|tx| {
                    crate::decide::claim(tx, &ap)?;
                    Self::save_approval(tx, &ap)?;
                    tx.audit(e)?;
                    Ok(())
                })?;
            }
            Some(reason) => {
                a.status = ApprovalStatus::Rejected;
                let reason = live.redactor.text(reason);
                let reason = reason.as_str();
                a.reason = Some(reason.to_string());
                let mut live = live;
                let e = self.entry(&live, a.stage.as_deref(), "approval-rejected", who, json!({"approval": id, "kind": a.kind.as_str(), "reason": live.redactor.text(reason), "role": role}));
                self.queue_notice(
                    &live,
                    a.stage.as_deref(),
                    "on-rejected",
                    stage_channels(stage_model, |n| &n.on_rejected),
                    &closing_message(&a),
                    json!({"approval": id, "by": who, "reason": reason}),
                );
                let closing = Closing {
                    approval: a.clone(),
                    entries: vec![e],
                    rejection: Some(RejectionRow {
                        playbook: live.run.playbook.clone(),
                        run: live.run.id.clone(),
                        stage: a.stage.clone(),
                        by: who.to_string(),
                        reason: reason.to_string(),
                        at: now,
                    }),
                };
                self.close_run(&mut live, closing)?;
            }
        }
        Ok(Decision {
            approval: id.to_string(),
            run: a.run.clone(),
            stage: a.stage.clone(),
            status: a.status,
            by: who.to_string(),
            role,
            min_approvals: a.min_approvals,
            approved_by: a.approved_by.clone(),
        })
    }

    /// Records a rejection or an expiry (`closing`). When no process executes the run, the
    /// run ends with it, in the same transaction. When one does (it holds the run's lock), only
    /// the decision is recorded: that process ends the run before its next step
    /// ([`Self::end_by_decision`]), so that it never goes on with a run that has ended.
    pub(super) fn close_run(&mut self, live: &mut Live, closing: Closing) -> Result<()> {
        let Some(_lock) = lock_run(&self.store.dir, &live.run.id)? else {
            return self.commit(|tx| {
                crate::decide::claim(tx, &closing.approval)?;
                Self::save_approval(tx, &closing.approval)?;
                for e in closing.entries {
                    tx.audit(e)?;
                }
                if let Some(r) = &closing.rejection {
                    Self::save_rejection(tx, r)?;
                }
                Ok(())
            });
        };
        let (status, msg) = self.decided_stage(live, &closing.approval);
        let id = closing.approval.id.clone();
        match self.end_run_with(live, status, &msg, Some(closing)) {
            Err(Error::Refused(m)) => {
                // Another process decided first. If it could not end the run (this process
                // held the lock), end it here as that decision asks.
                let a = self.approval(&id)?;
                let mut fresh = self.load_live(&live.run.id)?;
                if matches!(a.status, ApprovalStatus::Rejected | ApprovalStatus::Expired)
                    && !fresh.run.status.is_final()
                {
                    self.end_by_decision(&mut fresh, &a)?;
                }
                *live = fresh;
                Err(Error::Refused(m))
            }
            r => r,
        }
    }

    /// Marks the stage of a rejected or expired approval; the run status and message.
    fn decided_stage(&self, live: &mut Live, a: &Approval) -> (RunStatus, String) {
        let msg = closing_message(a);
        let (run_status, stage_status, error) = match a.status {
            ApprovalStatus::Expired => (RunStatus::Expired, StageStatus::Expired, msg.clone()),
            _ => (
                RunStatus::Rejected,
                StageStatus::Rejected,
                format!(
                    "rejected by {}: {}",
                    a.decided_by.as_deref().unwrap_or("?"),
                    a.reason.as_deref().unwrap_or("")
                ),
            ),
        };
        if let Some(i) = a
            .stage
            .as_ref()
            .and_then(|s| live.stages.iter().position(|x| x.name == *s))
        {
            live.stages[i].status = stage_status;
            live.stages[i].error = Some(error);
            live.stages[i].finished_at = Some(a.decided_at.unwrap_or_else(|| self.now()));
        }
        (run_status, msg)
    }

    /// In the process executing the run: a question it waits on was rejected or expired
    /// (recorded by another process meanwhile). Ends the run.
    pub(super) fn end_by_decision(&mut self, live: &mut Live, a: &Approval) -> Result<()> {
        let (status, msg) = self.decided_stage(live, a);
        self.end_run(live, status, &msg)
    }
}

/// An open question, with what a person deciding it needs to know about its run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenApproval {
    pub approval: Approval,
    pub playbook: String,
    /// Who triggered the run (who may never decide it).
    pub requested_by: String,
}

impl Runtime {
    /// The pending approvals (deadlines applied first), oldest first; with `who`, only those
    /// `who` may decide (approve, or for a gate naming no approvers, reject), never the
    /// requester's own.
    pub fn open_approvals(&mut self, who: Option<&str>) -> Result<Vec<OpenApproval>> {
        self.apply_deadlines()?;
        let mut out = Vec::new();
        for a in self.load_approvals("status = ?1", ApprovalStatus::Pending.as_str())? {
            let live = self.load_live(&a.run)?;
            if let Some(who) = who
                && (same_person(who, &live.run.requester)
                    || allowed(&a.approvers, &live.agents, who, true).is_none()
                    || a.approved_by.iter().any(|v| same_person(v, who)))
            {
                continue;
            }
            out.push(OpenApproval {
                approval: a,
                playbook: live.run.playbook.clone(),
                requested_by: live.run.requester.clone(),
            });
        }
        Ok(out)
    }

    /// One approval as the store has it now (deadlines applied first).
    pub fn approval_state(&mut self, id: &str) -> Result<Approval> {
        self.apply_deadlines()?;
        self.approval(id)
    }
}
