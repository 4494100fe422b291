//! Deadlines: a question whose SLA passed escalates to its next level (more approvers,
//! notified), and after the last level expires, ending its run. Applied when a run starts
//! or resumes, before a decision, `runs` and `stop`; expiry never approves.

use super::{Closing, Runtime, closing_message};
use crate::clock::rfc3339;
use crate::report::{Approval, ApprovalStatus};
use crate::{Error, Result};
use serde_json::json;

impl Runtime {
    /// Applies every gate deadline that has passed: opens escalation levels (adding their
    /// approvers, notifying), and after the last level ends the gate `expired` and the run
    /// with it. Expiry never approves.
    pub fn apply_deadlines(&mut self) -> Result<()> {
        let now = self.now();
        // One deadline at a time, earliest first, re-read each time: an expiry ends its run
        // and cancels the run's other questions, which then neither escalate nor expire.
        loop {
            let mut due: Vec<Approval> = self
                .load_approvals(
                    "status = 'pending' AND deadline IS NOT NULL AND deadline <= ?1",
                    &now.to_string(),
                )?
                .into_iter()
                // The parameter is bound as text; compare numerically here too.
                .filter(|a| a.deadline.is_some_and(|d| d <= now))
                .collect();
            due.sort_by(|x, y| (x.deadline, &x.id).cmp(&(y.deadline, &y.id)));
            let Some(mut a) = due.into_iter().next() else {
                break;
            };
            let mut live = self.load_live(&a.run)?;
            let Some(d) = a.deadline else { break };
            if (a.level as usize) < a.escalation.len() {
                let lvl = a.escalation[a.level as usize].clone();
                a.level += 1;
                for ap in &lvl.approvers {
                    if !a.approvers.contains(ap) {
                        a.approvers.push(ap.clone());
                    }
                }
                a.deadline = Some(d + (lvl.after_secs as i64) * 1000);
                let e = self.entry(&live, a.stage.as_deref(), "approval-escalated", "pbc", json!({"approval": a.id, "level": a.level, "approvers": a.approvers.iter().map(ToString::to_string).collect::<Vec<_>>(), "deadline": a.deadline.map(rfc3339)}));
                let msg = format!(
                    "approval {} escalated to level {} (SLA passed): now also {}\n{}",
                    a.id,
                    a.level,
                    lvl.approvers
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    a.message
                );
                self.queue_notice(
                    &live,
                    a.stage.as_deref(),
                    "escalation",
                    lvl.notify.clone(),
                    &msg,
                    json!({"approval": a.id, "level": a.level}),
                );
                let ap = a.clone();
                match self.commit(|tx| {
                    crate::decide::claim_escalation(tx, &ap)?;
                    Self::save_approval(tx, &ap)?;
                    tx.audit(e)?;
                    Ok(())
                }) {
                    // Another process decided or escalated it meanwhile: look again.
                    Err(Error::Refused(_)) => continue,
                    r => r?,
                }
            } else {
                a.status = ApprovalStatus::Expired;
                a.decided_at = Some(now);
                let e = self.entry(
                    &live,
                    a.stage.as_deref(),
                    "approval-expired",
                    "pbc",
                    json!({"approval": a.id, "level": a.level}),
                );
                let stage_model = a.stage.as_deref().and_then(|s| live.c.playbook.stage(s));
                let chans: Vec<String> = stage_model
                    .and_then(|s| s.notification.as_ref())
                    .map(|n| n.on_expired.iter().map(|c| c.value.clone()).collect())
                    .unwrap_or_default();
                self.queue_notice(
                    &live,
                    a.stage.as_deref(),
                    "on-expired",
                    chans,
                    &closing_message(&a),
                    json!({"approval": a.id}),
                );
                let closing = Closing {
                    approval: a.clone(),
                    entries: vec![e],
                    rejection: None,
                };
                match self.close_run(&mut live, closing) {
                    // Decided by another process meanwhile: look again.
                    Err(Error::Refused(_)) => continue,
                    r => r?,
                }
            }
        }
        Ok(())
    }
}
