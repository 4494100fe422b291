//! A run's life after its creation (`create.rs`): driving it under its lock (recovering what a crash left in flight, stepping stages in
//! graph order until nothing moves), settling its status, and ending it.

use super::{Closing, GateNeed, Live, Runtime, approvers_of};
use crate::agents::Agents;
use crate::db::params;
use crate::load::Compiled;
use crate::report::{Approval, ApprovalKind, RunOptions, RunReport, RunStatus, StageStatus};
use crate::store::to_json;
use crate::{Error, Result};
use serde_json::{Value, json};
use std::path::Path;

/// A run lock: held while a process executes a run; released by the OS if it dies.
pub(super) struct RunLock {
    _file: std::fs::File,
}

pub(super) fn lock_run(dir: &Path, id: &str) -> Result<Option<RunLock>> {
    let locks = dir.join("locks");
    std::fs::create_dir_all(&locks).map_err(|e| Error::Io(format!("{}: {e}", locks.display())))?;
    let p = locks.join(format!("{id}.lock"));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(|e| Error::Io(format!("{}: {e}", p.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock(2) on a file descriptor we own.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 {
            return Ok(None);
        }
    }
    Ok(Some(RunLock { _file: f }))
}

impl Runtime {
    pub(super) fn start(
        &mut self,
        c: &Compiled,
        agents: &Agents,
        input: Value,
        opts: &RunOptions,
        only: Option<String>,
    ) -> Result<RunReport> {
        let id = self.create(c, agents, input, opts, only)?;
        self.drive(&id, None)?;
        self.report(&id)
    }

    pub(super) fn drive(&mut self, id: &str, replace_agents: Option<&Agents>) -> Result<()> {
        let Some(_lock) = lock_run(&self.store.dir, id)? else {
            return Err(Error::Busy(format!(
                "run {id} is being executed by another pbc process"
            )));
        };
        let mut live = self.load_live(id)?;
        if let Some(a) = replace_agents {
            let mut a = a.clone();
            a.roles = live.agents.roles.clone();
            live.agents = a.clone();
            live.run.frozen.agents = a;
            let e = self.entry(&live, None, "agents-replaced", "pbc", json!({"agents": live.agents.source.as_ref().map(|p| p.display().to_string()), "roles": "kept from the run"}));
            let fr = to_json(&live.run.frozen);
            let rid = id.to_string();
            self.commit(|tx| {
                tx.conn()
                    .execute(
                        "UPDATE runs SET frozen = ?2 WHERE id = ?1",
                        params![rid, fr],
                    )
                    .map_err(|e| Error::Store(e.to_string()))?;
                tx.audit(e)?;
                Ok(())
            })?;
        }
        self.recover(&mut live)?;
        if live.run.status.is_final() {
            if !live.run.rollback_done {
                self.on_failure(&mut live)?;
            }
            return Ok(());
        }
        if live.run.status != RunStatus::Running {
            let now = self.now();
            let rid = id.to_string();
            self.commit(|tx| Self::save_run_status(tx, &rid, RunStatus::Running, None, now))?;
            live.run.status = RunStatus::Running;
        }
        loop {
            if self.stop_requested(id) {
                let who = self.load_run(id)?.stop_requested.unwrap_or_default();
                self.end_run(
                    &mut live,
                    RunStatus::Stopped,
                    &format!("stopped by {who} (kill switch)"),
                )?;
                break;
            }
            if !self.playbook_gate(&mut live)? || live.run.status.is_final() {
                break;
            }
            let batch = self.parallel_batch(&live);
            if !batch.is_empty() {
                let before: Vec<StageStatus> =
                    batch.iter().map(|&i| live.stages[i].status).collect();
                self.step_parallel(id, &batch)?;
                live = self.load_live(id)?;
                // Moved: look again; else the one-at-a-time pass below decides.
                if batch
                    .iter()
                    .zip(&before)
                    .any(|(&i, b)| live.stages[i].status != *b)
                {
                    continue;
                }
            }
            let mut progressed = false;
            let order = live.c.analysis.graph.order.clone();
            for i in order {
                let st = live.stages[i].status;
                if !matches!(
                    st,
                    StageStatus::Pending | StageStatus::WaitingApproval | StageStatus::Interrupted
                ) {
                    continue;
                }
                if st == StageStatus::Pending && live.run.frozen.only_stage.is_none() {
                    let deps = live.c.analysis.graph.deps(i);
                    if let Some(d) = deps.iter().find(|d| {
                        matches!(
                            live.stages[**d].status,
                            StageStatus::Refused | StageStatus::Blocked
                        )
                    }) {
                        let dn = live.stages[*d].name.clone();
                        live.stages[i].status = StageStatus::Blocked;
                        live.stages[i].error = Some(format!("needs `{dn}`, which did not run"));
                        self.record(&live, i, "stage-blocked", "pbc", json!({"needs": dn}))?;
                        progressed = true;
                        break;
                    }
                    if !deps.iter().all(|d| {
                        matches!(
                            live.stages[*d].status,
                            StageStatus::Passed | StageStatus::Skipped
                        )
                    }) {
                        continue;
                    }
                }
                if self.step(&mut live, i)? {
                    progressed = true;
                    break;
                }
            }
            if live.run.status.is_final() || !progressed {
                break;
            }
        }
        if !live.run.status.is_final() {
            self.settle(&mut live)?;
        }
        if live.run.status.is_final() && !live.run.rollback_done {
            self.on_failure(&mut live)?;
        }
        Ok(())
    }

    /// After a crash: an agent stage in flight runs again; an action in flight becomes
    /// `interrupted` and waits for a person.
    fn recover(&mut self, live: &mut Live) -> Result<()> {
        for i in 0..live.stages.len() {
            if live.stages[i].status != StageStatus::Running {
                continue;
            }
            let stage = &live.c.playbook.spec.stages[i];
            if stage.action().is_none() {
                live.stages[i].status = StageStatus::Pending;
                live.stages[i].error = Some("interrupted while running; ran again".into());
                self.record(
                    live,
                    i,
                    "stage-restarted",
                    "pbc",
                    json!({"reason": "the agent was in flight when pbc stopped"}),
                )?;
            } else {
                live.stages[i].status = StageStatus::Interrupted;
                let mut approvers = approvers_of(stage.approvers.as_ref());
                for c in &stage.conditions {
                    for a in approvers_of(c.approvers.as_ref()) {
                        if !approvers.contains(&a) {
                            approvers.push(a);
                        }
                    }
                }
                if approvers.is_empty() {
                    approvers = approvers_of(live.c.playbook.spec.approvers.as_ref());
                }
                let why = format!(
                    "the action `{}` was in flight when pbc stopped: it may or may not have run. Approve to run it again, reject to stop the run.",
                    stage
                        .action()
                        .map(|a| a.value.to_string())
                        .unwrap_or_default()
                );
                live.stages[i].error = Some(why.clone());
                self.open_approval(
                    live,
                    Some(i),
                    ApprovalKind::Interrupted,
                    GateNeed {
                        approvers,
                        why,
                        min: 1,
                    },
                    None,
                )?;
            }
        }
        Ok(())
    }

    /// The run's status when no stage can move.
    fn settle(&mut self, live: &mut Live) -> Result<()> {
        let st: Vec<StageStatus> = live.stages.iter().map(|s| s.status).collect();
        let pending_pb = !self
            .load_approvals(
                "run = ?1 AND status = 'pending' AND stage IS NULL",
                &live.run.id,
            )?
            .is_empty();
        let status = if pending_pb
            || st
                .iter()
                .any(|s| matches!(s, StageStatus::WaitingApproval | StageStatus::Interrupted))
        {
            RunStatus::WaitingApproval
        } else if st.contains(&StageStatus::Refused) {
            RunStatus::Refused
        } else if st
            .iter()
            .all(|s| matches!(s, StageStatus::Passed | StageStatus::Skipped))
        {
            RunStatus::Succeeded
        } else if st.contains(&StageStatus::Pending) {
            // Only rate-limit waits leave stages pending.
            RunStatus::WaitingApproval
        } else {
            RunStatus::Blocked
        };
        if status == RunStatus::Refused || status == RunStatus::Succeeded {
            let msg = match status {
                RunStatus::Refused => {
                    if live.stages.iter().any(|s| {
                        s.error
                            .as_deref()
                            .is_some_and(|e| e.starts_with("refused by policy"))
                    }) {
                        "stages were refused (by a policy, high risk, or unenforceable guardrails); see each stage's error"
                    } else {
                        "high-risk or unenforceable stages were refused; see the runbook"
                    }
                }
                _ => "every stage passed or was skipped",
            };
            // Stages still pending behind refused ones are blocked by end_run's sweep.
            return self.end_run(live, status, msg).and_then(|_| {
                live.run.rollback_done = true;
                let rid = live.run.id.clone();
                self.commit(|tx| {
                    tx.conn()
                        .execute(
                            "UPDATE runs SET rollback_done = 1 WHERE id = ?1",
                            params![rid],
                        )
                        .map(|_| ())
                        .map_err(|e| Error::Store(e.to_string()))
                })
            });
        }
        if live.run.status != status {
            live.run.status = status;
            let now = self.now();
            let rid = live.run.id.clone();
            let e = self.entry(
                live,
                None,
                "run-waiting",
                "pbc",
                json!({"status": status.as_str()}),
            );
            self.commit(|tx| {
                Self::save_run_status(tx, &rid, status, None, now)?;
                tx.audit(e)?;
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Ends the run: cancels open decisions, blocks stages that will never start, records.
    /// The on-failure path runs later, in `drive`.
    pub(super) fn end_run(
        &mut self,
        live: &mut Live,
        status: RunStatus,
        message: &str,
    ) -> Result<()> {
        self.end_run_with(live, status, message, None)
    }

    /// [`Self::end_run`], committing `closing` (the decision or expiry that ends the run) in
    /// the same transaction: a crash in between must not leave a decided gate in a run that
    /// still waits.
    pub(super) fn end_run_with(
        &mut self,
        live: &mut Live,
        status: RunStatus,
        message: &str,
        closing: Option<Closing>,
    ) -> Result<()> {
        let now = self.now();
        let decided = closing.as_ref().map(|c| c.approval.id.clone());
        let open: Vec<Approval> = self
            .load_approvals("run = ?1 AND status = 'pending'", &live.run.id)?
            .into_iter()
            .filter(|a| Some(&a.id) != decided.as_ref())
            .collect();
        for i in 0..live.stages.len() {
            match live.stages[i].status {
                StageStatus::Pending | StageStatus::WaitingApproval => {
                    live.stages[i].status = StageStatus::Blocked;
                    if live.stages[i].error.is_none()
                        || live.stages[i].error.as_deref()
                            == Some("interrupted while running; ran again")
                    {
                        live.stages[i].error = Some(format!("not run: the run ended {status}"));
                    }
                }
                // Its process died while it ran (the kill switch found nobody executing the
                // run): nobody knows whether it finished. It stays `interrupted`, its
                // question cancelled with the run, and is never run again.
                StageStatus::Running => {
                    live.stages[i].status = StageStatus::Interrupted;
                    live.stages[i].error = Some(format!(
                        "in flight when its pbc process died; it may or may not have run; the run then ended {status}"
                    ));
                }
                _ => {}
            }
        }
        live.run.status = status;
        let message = live.redactor.text(message);
        let message = message.as_str();
        live.run.message = Some(message.to_string());
        let e = self.entry(
            live,
            None,
            "run-ended",
            "pbc",
            json!({"status": status.as_str(), "message": live.redactor.text(message)}),
        );
        let rows = live.stages.clone();
        let rid = live.run.id.clone();
        let msg = message.to_string();
        self.commit(|tx| {
            if let Some(c) = closing {
                crate::decide::claim(tx, &c.approval)?;
                Self::save_approval(tx, &c.approval)?;
                for e in c.entries {
                    tx.audit(e)?;
                }
                if let Some(r) = &c.rejection {
                    Self::save_rejection(tx, r)?;
                }
            }
            for a in open {
                crate::decide::cancel(tx, &a.id, now)?;
            }
            for r in &rows {
                Self::save_stage(tx, &rid, r)?;
            }
            Self::save_run_status(tx, &rid, status, Some(&msg), now)?;
            tx.audit(e)?;
            Ok(())
        })?;
        // Rollback executes actions: it runs in `drive` (run, resume), never in approve/reject.
        Ok(())
    }
}
