//! The on-failure path (`spec.rollback`): once per run that failed, was blocked, rejected or
//! expired, on `resume` or at the end of the executing command. `revert-to-previous` runs the
//! undo steps of the completed stages in reverse order; an undo step never runs twice.

use super::{DEFAULT_TIMEOUT, Live, Runtime, interpolate};
use crate::db::params;
use crate::exec::ExecError;
use crate::report::{RunStatus, StageStatus};
use crate::{Error, Result};
use pbc_compiler::model::OnFailure;
use serde_json::json;

impl Runtime {
    /// The on-failure path (`spec.rollback`), once per run, on `resume` or at the end of the
    /// executing command.
    pub(super) fn on_failure(&mut self, live: &mut Live) -> Result<()> {
        // In an Argo workflow the exit handler (`pbc-exit`) owns the on-failure path.
        if live.run.rollback_done
            || live.run.frozen.workflow
            || matches!(
                live.run.status,
                RunStatus::Succeeded
                    | RunStatus::WaitingApproval
                    | RunStatus::Running
                    | RunStatus::Refused
                    | RunStatus::Stopped
            )
        {
            return Ok(());
        }
        let pb = live.c.playbook.clone();
        let mode = pb.spec.rollback.as_ref().map(|r| r.on_failure.value);
        let channels: Vec<String> = pb
            .spec
            .rollback
            .as_ref()
            .map(|r| r.notification.iter().map(|c| c.value.clone()).collect())
            .unwrap_or_default();
        let mut undone = Vec::new();
        let mut failed_undo = Vec::new();
        if mode == Some(OnFailure::RevertToPrevious) {
            // Completed stages in reverse order of completion.
            let mut done: Vec<usize> = (0..live.stages.len())
                .filter(|&i| {
                    live.stages[i].status == StageStatus::Passed
                        && pb.spec.stages[i].rollback.is_some()
                })
                .collect();
            done.sort_by_key(|&i| (live.stages[i].finished_at.unwrap_or(0), i));
            done.reverse();
            for i in done {
                let name = live.stages[i].name.clone();
                match self.undo_stage(live, i)? {
                    Ok(()) => undone.push(name),
                    Err(msg) => failed_undo.push(format!("{name}: {msg}")),
                }
            }
        }
        let mut status = live.run.status;
        let mut message = live.run.message.clone().unwrap_or_default();
        if !undone.is_empty() {
            message.push_str(&format!("; rolled back {}", undone.join(", ")));
            if status == RunStatus::Failed && failed_undo.is_empty() {
                status = RunStatus::RolledBack;
            }
        }
        if !failed_undo.is_empty() {
            message.push_str(&format!("; rollback failed for {}", failed_undo.join("; ")));
        }
        if mode.is_some() && mode != Some(OnFailure::DoNothing) {
            self.queue_notice(
                live,
                None,
                "rollback",
                channels,
                &format!(
                    "playbook {} run {} {status}: {message}",
                    pb.name(),
                    live.run.id
                ),
                json!({"rolled_back": undone, "mode": mode.map(|m| m.as_str())}),
            );
        }
        live.run.rollback_done = true;
        live.run.status = status;
        let now = self.now();
        let e = self.entry(live, None, "on-failure-done", "pbc", json!({"mode": mode.map(|m| m.as_str()).unwrap_or("none"), "rolled_back": undone, "failed": failed_undo, "status": status.as_str()}));
        let rid = live.run.id.clone();
        self.commit(|tx| {
            tx.conn()
                .execute("UPDATE runs SET rollback_done = 1, status = ?2, message = ?3, updated_at = ?4 WHERE id = ?1", params![rid, status.as_str(), message, now])
                .map_err(|e| Error::Store(e.to_string()))?;
            tx.audit(e)?;
            Ok(())
        })
    }

    /// Runs stage `i`'s undo step (`rollback:` of a completed stage), at most once: a step
    /// started before (pbc died while it ran, or it failed) is not run again. `Ok(Err(msg))`:
    /// the step failed or was not run again, with why (redacted).
    pub(super) fn undo_stage(
        &mut self,
        live: &mut Live,
        i: usize,
    ) -> Result<std::result::Result<(), String>> {
        let pb = live.c.playbook.clone();
        let Some(rb) = pb.spec.stages.get(i).and_then(|s| s.rollback.clone()) else {
            return Ok(Ok(()));
        };
        let action = rb.action.value.to_string();
        let scope = self.scope(live, i, true);
        let params = rb
            .params
            .as_ref()
            .map(|p| interpolate(&p.to_json(), &scope))
            .unwrap_or_else(|| json!({}));
        let name = live.stages[i].name.clone();
        // An undo step is an action: it never runs twice silently. Starting it is a
        // compare-and-set on its row, in the transaction that records `rollback-started`: of
        // two processes (a retried exit handler, a second `resume`), one runs it; a step
        // started before (pbc died while it ran, or it failed) is not run again.
        let started = {
            let mut details = json!({"action": action, "params": live.redactor.value(&params)});
            // An undo step on an MCP server: which tool of which server.
            if let Some(m) = live.agents.action(&action).and_then(|s| s.mcp.as_ref()) {
                details["tool"] = json!(m.tool_for(&action));
                details["server"] = json!(live.redactor.text(&m.server()));
            }
            let e = self.entry(live, Some(&name), "rollback-started", "pbc", details);
            let (rid, sname) = (live.run.id.clone(), name.clone());
            self.commit(|tx| {
                let n = tx
                    .conn()
                    .execute(
                        "INSERT INTO rollback_steps(run, stage, status) VALUES (?1, ?2, 'running') ON CONFLICT(run, stage) DO NOTHING",
                        params![rid, sname],
                    )
                    .map_err(|e| Error::Store(e.to_string()))?;
                if n == 1 {
                    tx.audit(e)?;
                }
                Ok(n == 1)
            })?
        };
        if !started {
            let before = self
                .rollback_step(&live.run.id, &name)?
                .unwrap_or_else(|| "running".to_string());
            if before == "done" {
                // Undone already (a retried exit handler): nothing to do, nothing failed.
                return Ok(Ok(()));
            }
            let msg = match before.as_str() {
                "running" => "pbc stopped while this undo step ran: it may or may not have run; it is not run again (check by hand)".to_string(),
                other => format!("this undo step already ran once ({other}); it is not run again (check by hand)"),
            };
            let e = self.entry(
                live,
                Some(&name),
                "rollback-failed",
                "pbc",
                json!({"action": action, "error": msg, "interrupted": before == "running"}),
            );
            let (rid, sname) = (live.run.id.clone(), name.clone());
            let interrupted = before == "running";
            self.commit(|tx| {
                if interrupted {
                    Self::save_rollback_step(tx, &rid, &sname, "interrupted")?;
                }
                tx.audit(e)?;
                Ok(())
            })?;
            return Ok(Err(msg));
        }
        let request = json!({"playbook": pb.name(), "stage": name, "input": live.run.input, "context": {}, "params": params, "prompt": null, "rollback": true});
        let result = match live.agents.action(&action).cloned() {
            Some(spec) => self.invoke(
                &spec,
                &request,
                "",
                Some(&action),
                &format!("{name}.rollback"),
                spec.timeout().unwrap_or(DEFAULT_TIMEOUT),
                live,
            ),
            None => Err(ExecError::Other(format!(
                "no executor for rollback action `{action}`"
            ))),
        };
        let (event, step, details, outcome) = match &result {
            Ok(_) => {
                live.stages[i].status = StageStatus::RolledBack;
                (
                    "stage-rolled-back",
                    "done",
                    json!({"action": action, "params": live.redactor.value(&params)}),
                    Ok(()),
                )
            }
            Err(e) => {
                let msg = live.redactor.text(&e.to_string());
                (
                    "rollback-failed",
                    "failed",
                    json!({"action": action, "error": msg}),
                    Err(msg),
                )
            }
        };
        let e = self.entry(live, Some(&name), event, "pbc", details);
        let (row, rid) = (live.stages[i].clone(), live.run.id.clone());
        self.commit(|tx| {
            Self::save_stage(tx, &rid, &row)?;
            Self::save_rollback_step(tx, &rid, &row.name, step)?;
            tx.audit(e)?;
            Ok(())
        })?;
        Ok(outcome)
    }
}
