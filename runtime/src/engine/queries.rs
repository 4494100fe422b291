//! What the engine shows: a run's report (with the runbook of the stages it refused), the list
//! of runs and what each waits on, a playbook's earlier rejections, a run's audit entries,
//! and the audit log's verification.

use super::{RunRow, RunScope, Runtime, approvers_of, interpolate};
use crate::audit::{self, Verification};
use crate::clock::rfc3339;
use crate::db::params;
use crate::load::{Compiled, thaw};
use crate::report::{
    Approval, ApprovalStatus, AuditLog, Rejection, RunReport, RunStatus, RunSummary, StageReport,
    StageStatus,
};
use crate::{Error, Result};
use pbc_compiler::model::{OnFailure, Risk};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

/// The runbook of refused stages: what a person would do by hand.
fn runbook(c: &Compiled, run: &RunRow, stages: &[usize]) -> String {
    let pb = &c.playbook;
    let mut out = format!(
        "RUNBOOK: {} (run {}) was not executed: {}\nDo these steps by hand if they must happen:\n",
        pb.name(),
        run.id,
        if pb.spec.risk() == Risk::High {
            "the playbook is `risk: high`"
        } else {
            "these stages are `risk: high`"
        }
    );
    let mut roots = BTreeMap::new();
    roots.insert("input".to_string(), run.input.clone());
    roots.insert("playbook".to_string(), json!({"name": pb.name()}));
    roots.insert(
        "execution".to_string(),
        json!({"id": run.id, "start-time": rfc3339(run.created_at)}),
    );
    for (n, &i) in stages.iter().enumerate() {
        let s = &pb.spec.stages[i];
        let mut scope_roots = roots.clone();
        scope_roots.insert("stage".to_string(), json!({"name": s.name.value}));
        let scope = RunScope { roots: scope_roots };
        let what = match (s.agent(), s.action()) {
            (Some(a), _) => format!("agent {}", a.value),
            (_, Some(a)) => format!("action {}", a.value),
            _ => "?".into(),
        };
        out.push_str(&format!("  {}. {} — {what}\n", n + 1, s.name.value));
        if let Some(p) = &s.prompt {
            out.push_str(&format!("     prompt: {}\n", p.value.trim()));
        }
        if let Some(p) = &s.params {
            let v = interpolate(&p.to_json(), &scope);
            out.push_str(&format!(
                "     params: {}\n",
                serde_json::to_string(&v).unwrap_or_default()
            ));
        }
        let approvers = approvers_of(s.approvers.as_ref());
        if !approvers.is_empty() {
            out.push_str(&format!(
                "     approvers: {}\n",
                approvers
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        match &s.rollback {
            Some(rb) => {
                let v = rb
                    .params
                    .as_ref()
                    .map(|p| interpolate(&p.to_json(), &scope));
                out.push_str(&format!(
                    "     rollback: {}{}\n",
                    rb.action.value,
                    v.map(|v| format!(" {}", serde_json::to_string(&v).unwrap_or_default()))
                        .unwrap_or_default()
                ));
            }
            None => out.push_str("     rollback: none declared\n"),
        }
    }
    out
}

impl Runtime {
    /// The run's current report.
    pub fn report(&self, id: &str) -> Result<RunReport> {
        let run = self.load_run(id)?;
        let stages = self.load_stages(id)?;
        let approvals = self.load_approvals("run = ?1", id)?;
        let c = thaw(&run.frozen.playbook)?;
        let previous: Vec<Rejection> = self
            .rejections(&run.playbook)?
            .into_iter()
            .filter(|r| r.run != run.id && r.at <= run.created_at)
            .collect();
        let refused: Vec<usize> = stages
            .iter()
            .filter(|s| {
                s.status == StageStatus::Refused
                    && s.error
                        .as_deref()
                        .is_some_and(|e| e.starts_with("risk high"))
            })
            .map(|s| s.idx)
            .collect();
        let runbook = (!refused.is_empty()).then(|| runbook(&c, &run, &refused));
        let mut policies = self.stage_policies(id)?;
        Ok(RunReport {
            run: run.id.clone(),
            playbook: run.playbook.clone(),
            status: run.status,
            requester: run.requester.clone(),
            started: run.created_at,
            stages: stages
                .into_iter()
                .map(|s| StageReport {
                    policy: policies.remove(&s.name),
                    name: s.name,
                    status: s.status,
                    guardrails_triggered: s.guardrails,
                    findings: s.findings,
                    approval_id: s.approval_id,
                    output: s.output,
                    error: s.error,
                    attempts: s.attempts,
                })
                .collect(),
            pending: approvals
                .into_iter()
                .filter(|a| a.status == ApprovalStatus::Pending)
                .collect(),
            previous_rejections: previous,
            runbook,
            message: run.message,
            now: self.now(),
        })
    }

    /// Every run, newest first.
    pub fn runs(&mut self) -> Result<Vec<RunSummary>> {
        self.apply_deadlines()?;
        let rows: Vec<(String, String, String, i64)> = self.store.read(|c| {
            let mut st = c
                .prepare("SELECT id, playbook, status, created_at FROM runs ORDER BY created_at DESC, rowid DESC")
                .map_err(|e| Error::Store(e.to_string()))?;
            st.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(|e| Error::Store(e.to_string()))?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::Store(e.to_string()))
        })?;
        let now = self.now();
        let mut out = Vec::new();
        for (id, pb, status, created) in rows {
            let pending: Vec<Approval> = self
                .load_approvals("run = ?1", &id)?
                .into_iter()
                .filter(|a| a.status == ApprovalStatus::Pending)
                .collect();
            let first = pending.first();
            let status = RunStatus::parse(&status).unwrap_or(RunStatus::Failed);
            let mut waiting_on = first.map(|a| match &a.stage {
                Some(s) => format!("{} ({s})", a.id),
                None => format!("{} (playbook)", a.id),
            });
            if waiting_on.is_none() && status == RunStatus::WaitingApproval {
                // No person is asked: a stage waits for its rate limit's window.
                waiting_on = self
                    .load_stages(&id)?
                    .into_iter()
                    .find(|s| {
                        s.status == StageStatus::Pending
                            && s.error
                                .as_deref()
                                .is_some_and(|e| e.starts_with("rate limit"))
                    })
                    .map(|s| format!("rate limit ({})", s.name));
            }
            if matches!(
                status,
                RunStatus::Failed | RunStatus::Rejected | RunStatus::Expired | RunStatus::Blocked
            ) {
                // Ended by a decision or a deadline outside `resume`: its on-failure path
                // (which may execute undo steps) waits for `pbc resume`.
                let run = self.load_run(&id)?;
                if !run.rollback_done
                    && thaw(&run.frozen.playbook).is_ok_and(|c| {
                        c.playbook
                            .spec
                            .rollback
                            .as_ref()
                            .is_some_and(|r| r.on_failure.value != OnFailure::DoNothing)
                    })
                {
                    waiting_on = Some("on-failure path (pbc resume)".into());
                }
            }
            out.push(RunSummary {
                run: id,
                playbook: pb,
                status,
                waiting_on,
                started: created,
                sla_left_ms: first.and_then(|a| a.deadline).map(|d| d - now),
            });
        }
        Ok(out)
    }

    /// Earlier rejections of a playbook, newest first.
    pub fn rejections(&self, playbook: &str) -> Result<Vec<Rejection>> {
        self.store.read(|c| {
            let mut st = c
                .prepare("SELECT playbook, run, stage, \"by\", reason, at FROM rejections WHERE playbook = ?1 ORDER BY at DESC, rowid DESC")
                .map_err(|e| Error::Store(e.to_string()))?;
            st.query_map(params![playbook], |r| {
                Ok(Rejection {
                    playbook: r.get(0)?,
                    run: r.get(1)?,
                    stage: r.get(2)?,
                    by: r.get(3)?,
                    reason: r.get(4)?,
                    at: r.get(5)?,
                })
            })
            .map_err(|e| Error::Store(e.to_string()))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Store(e.to_string()))
        })
    }

    /// The audit log's lines (the file's, or the table's on PostgreSQL), at most `max` bytes.
    pub fn audit_text(&self, max: u64) -> Result<String> {
        self.store.log_text(max)
    }

    /// Whether the audit log is the state store's table (PostgreSQL) rather than a file.
    pub fn log_in_store(&self) -> bool {
        self.store.log_in_store()
    }

    /// The run's audit entries (from the log file plus entries not yet written to it).
    pub fn audit_log(&self, run: &str) -> Result<AuditLog> {
        let entries = audit::read_entries(&mut self.store.log_reader(0, u64::MAX)?)
            .map_err(|e| Error::Io(format!("{}: {e}", self.store.log_name())))?;
        let entries = entries
            .into_iter()
            .filter(|e| e.run.as_deref() == Some(run))
            .collect();
        Ok(AuditLog { entries })
    }

    /// Verifies an audit log: the state's own (`None`), or another file (chain only, unless
    /// it is the state's log).
    pub fn verify_audit(&mut self, file: Option<&Path>) -> Result<Verification> {
        if file.is_none() && self.store.log_in_store() {
            // The table is the log: its lines against its hashes, then the decisions.
            let (hashes, _) = self.store.audit_hashes()?;
            let mut reader = self.store.log_reader(0, u64::MAX)?;
            let mut v = audit::verify_reader(&mut reader, Some(&hashes))
                .map_err(|e| Error::Io(format!("{}: {e}", self.store.log_name())))?;
            if v.problem.is_none() {
                match crate::chain::entries(&self.store)? {
                    Ok(entries) => v.mismatches = crate::chain::cross_check(&self.store, &entries)?,
                    Err(why) => v.mismatches.push(why),
                }
            }
            return Ok(v);
        }
        let own = self.store.audit_path();
        let path = file.map(Path::to_path_buf).unwrap_or_else(|| own.clone());
        let is_own =
            std::fs::canonicalize(&path).ok() == std::fs::canonicalize(&own).ok() || file.is_none();
        let file = if is_own && !path.exists() {
            None
        } else {
            Some(crate::files::open_regular(&path, "the audit log")?)
        };
        let mut reader: Box<dyn std::io::BufRead> = match file {
            Some(f) => Box::new(std::io::BufReader::new(f)),
            None => Box::new(std::io::empty()),
        };
        let read = |e: std::io::Error| Error::Usage(format!("{}: {e}", path.display()));
        if is_own {
            let (hashes, pending) = self.store.audit_hashes()?;
            let written = &hashes[..hashes.len() - pending];
            let mut v = audit::verify_reader(&mut reader, Some(written)).map_err(read)?;
            v.waiting = pending;
            if v.problem.is_none() {
                match crate::chain::entries(&self.store)? {
                    Ok(entries) => v.mismatches = crate::chain::cross_check(&self.store, &entries)?,
                    Err(why) => v.mismatches.push(why),
                }
            }
            Ok(v)
        } else {
            audit::verify_reader(&mut reader, None).map_err(read)
        }
    }
}
