//! One step of a stage: takes up the decision it waits on, then decides what it does now
//! (`when`, high risk refused, guardrails it cannot enforce, a medium-risk approval, an
//! action's gate, the action's rate limit, its policies) before executing it.

use super::{GateNeed, Live, Runtime, approvers_of, stage_guards};
use crate::clock::human_duration;
use crate::db::params;
use crate::eval;
use crate::report::{ApprovalKind, ApprovalStatus, RunStatus, StageStatus};
use crate::{Error, Result};
use pbc_compiler::config::RateLimitMode;
use pbc_compiler::model::Risk;
use serde_json::json;

impl Runtime {
    /// One step of stage `i`. Returns true if something changed.
    pub(super) fn step(&mut self, live: &mut Live, i: usize) -> Result<bool> {
        let stage = live.c.playbook.spec.stages[i].clone();
        let name = stage.name.value.clone();
        match live.stages[i].status {
            StageStatus::WaitingApproval | StageStatus::Interrupted => {
                let Some(aid) = live.stages[i].approval_id.clone() else {
                    return Ok(false);
                };
                let a = self.approval(&aid)?;
                match a.status {
                    ApprovalStatus::Approved => {
                        // The decision must be in the verified audit chain, not only in
                        // the store.
                        let signed = match crate::chain::confirm_granted(&self.store, &a)? {
                            Ok(s) => s,
                            Err(m) => {
                                self.stage_failed(live, i, &m)?;
                                return Ok(true);
                            }
                        };
                        if let Err(m) = self.confirm_signature(live, &a, &signed) {
                            self.stage_failed(live, i, &m)?;
                            return Ok(true);
                        }
                    }
                    ApprovalStatus::Rejected | ApprovalStatus::Expired => {
                        self.end_by_decision(live, &a)?;
                        return Ok(true);
                    }
                    _ => return Ok(false),
                }
                match a.kind {
                    ApprovalKind::StageRisk => {
                        live.stages[i].risk_approved = true;
                        live.stages[i].status = StageStatus::Pending;
                    }
                    ApprovalKind::Interrupted | ApprovalKind::Policy => {
                        live.stages[i].status = StageStatus::Pending;
                    }
                    _ if stage.action().is_some() => {
                        live.stages[i].gate_approved = true;
                        live.stages[i].risk_approved = true;
                        live.stages[i].status = StageStatus::Pending;
                    }
                    _ => {
                        live.stages[i].gate_approved = true;
                        live.stages[i].status = StageStatus::Passed;
                        live.stages[i].finished_at = Some(self.now());
                        self.record(
                            live,
                            i,
                            "stage-passed",
                            a.decided_by.as_deref().unwrap_or("pbc"),
                            json!({"approval": aid}),
                        )?;
                        return Ok(true);
                    }
                }
                self.record(
                    live,
                    i,
                    "stage-approved",
                    a.decided_by.as_deref().unwrap_or("pbc"),
                    json!({"approval": aid, "kind": a.kind.as_str()}),
                )?;
                return Ok(true);
            }
            StageStatus::Pending => {}
            _ => return Ok(false),
        }
        // when
        if let Some(l) = live.c.analysis.whens.get(i).and_then(Option::as_ref) {
            let scope = self.scope(live, i, false);
            if !eval::when_holds(l, &scope) {
                live.stages[i].status = StageStatus::Skipped;
                let text = stage
                    .when
                    .as_ref()
                    .map(|w| w.text.value.clone())
                    .unwrap_or_default();
                self.record(live, i, "stage-skipped", "pbc", json!({"when": text}))?;
                return Ok(true);
            }
        }
        let risk = stage.risk(&live.c.playbook.spec);
        if risk == Risk::High {
            live.stages[i].status = StageStatus::Refused;
            live.stages[i].error = Some(
                "risk high: pbc never executes a high-risk stage; its runbook is printed instead"
                    .into(),
            );
            self.record(
                live,
                i,
                "stage-refused",
                "pbc",
                json!({"reason": "risk high"}),
            )?;
            return Ok(true);
        }
        // guardrails the runtime can enforce
        let (guards, unenforced) = stage_guards(&live.c, &stage);
        if !unenforced.is_empty() {
            if !live.run.frozen.allow_unenforced {
                live.stages[i].status = StageStatus::Refused;
                live.stages[i].error = Some(format!(
                    "cannot enforce guardrail(s) {}: neither built in nor defined with `patterns` or `command` under `guardrails:` in .pbc.yaml (run with --allow-unenforced-guardrails to run without them)",
                    unenforced.join(", ")
                ));
                self.record(
                    live,
                    i,
                    "stage-refused",
                    "pbc",
                    json!({"unenforced_guardrails": unenforced}),
                )?;
                return Ok(true);
            }
            if live.stages[i].attempts == 0
                && !live.stages[i].risk_approved
                && !live.stages[i].gate_approved
            {
                self.record(
                    live,
                    i,
                    "guardrails-unenforced",
                    &live.run.requester.clone(),
                    json!({"guardrails": unenforced}),
                )?;
            }
        }
        let is_action = stage.action().is_some();
        // medium risk (the stage's own, not inherited: a medium playbook is asked once, before
        // its first stage): one approval before it runs
        let own_medium = stage.risk.as_ref().is_some_and(|r| r.value == Risk::Medium);
        // In a workflow, the suspends before the stage's task asked (`<stage>-risk-approval`,
        // `<stage>-approval`): the task runs only once they passed their check.
        let asked = live.run.frozen.workflow;
        if own_medium && !live.stages[i].risk_approved && !asked {
            if is_action && let Some(mut need) = self.gate_need(live, i) {
                // The action's manual gate is that same decision.
                need.why = format!("{}; the stage is `risk: medium`", need.why);
                self.open_approval(live, Some(i), ApprovalKind::Gate, need, None)?;
                return Ok(true);
            }
            let need = GateNeed {
                approvers: approvers_of(stage.approvers.as_ref()),
                why: "the stage is `risk: medium`: one approval before it runs".into(),
                min: 1,
            };
            self.open_approval(live, Some(i), ApprovalKind::StageRisk, need, None)?;
            return Ok(true);
        }
        // an action's gate sits before it acts
        if is_action
            && !live.stages[i].gate_approved
            && !asked
            && let Some(need) = self.gate_need(live, i)
        {
            self.open_approval(live, Some(i), ApprovalKind::Gate, need, None)?;
            return Ok(true);
        }
        // rate limits (counted per action across runs)
        if is_action && let Some(msg) = self.rate_limited(live, i)? {
            match live.c.frozen.config.on_rate_limit {
                RateLimitMode::Fail => {
                    live.stages[i].status = StageStatus::Failed;
                    live.stages[i].error = Some(msg.clone());
                    self.record(live, i, "rate-limited", "pbc", json!({"message": msg}))?;
                    self.fail(live, i, RunStatus::Failed, &msg)?;
                    return Ok(true);
                }
                RateLimitMode::Wait => {
                    if live.stages[i].error.as_deref() != Some(msg.as_str()) {
                        live.stages[i].error = Some(msg.clone());
                        self.record(
                            live,
                            i,
                            "rate-limited",
                            "pbc",
                            json!({"message": msg, "mode": "wait"}),
                        )?;
                    }
                    return Ok(false);
                }
            }
        }
        // policies, once the gate is decided: just before it executes
        if !self.enforce_policies(live, i)? {
            return Ok(true);
        }
        self.execute(live, i, &guards)?;
        let _ = name;
        Ok(true)
    }

    /// The stage's action's rate limit: how many runs, in how many milliseconds.
    pub(super) fn rate_limit(&self, live: &Live, i: usize) -> Option<(u64, i64)> {
        let stage = &live.c.playbook.spec.stages[i];
        let action = stage.action().map(|a| a.value.to_string())?;
        let rl = live
            .c
            .playbook
            .spec
            .rate_limits
            .iter()
            .find(|r| r.action.value.to_string() == action)?;
        Some((rl.count, (rl.per.seconds() as i64) * 1000))
    }

    fn rate_limited(&mut self, live: &Live, i: usize) -> Result<Option<String>> {
        let stage = &live.c.playbook.spec.stages[i];
        let Some(action) = stage.action().map(|a| a.value.to_string()) else {
            return Ok(None);
        };
        let Some(rl) = live
            .c
            .playbook
            .spec
            .rate_limits
            .iter()
            .find(|r| r.action.value.to_string() == action)
        else {
            return Ok(None);
        };
        let window_ms = (rl.per.seconds() as i64) * 1000;
        let since = self.now() - window_ms;
        let n: i64 = self.store.read(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM rate_events WHERE action = ?1 AND at > ?2",
                params![action, since],
                |r| r.get(0),
            )
            .map_err(|e| Error::Store(e.to_string()))
        })?;
        if (n as u64) < rl.count {
            return Ok(None);
        }
        Ok(Some(format!(
            "rate limit: `{action}` ran {n} time(s) in the last {} (limit \"{}\")",
            human_duration(window_ms),
            rl.value.value
        )))
    }
}
