//! The run engine: schedules stages in graph order, decides `when` and gates with the
//! checker's lowered conditions, runs executors and guardrails, asks people, records every
//! step in the state store and the audit log.

use crate::agents::Agents;
use crate::audit::{self, Verification};
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::load::{Compiled, thaw};
use crate::report::*;
use crate::store::Store;
use crate::{Error, Result};
use pbc_compiler::model::{OnFailure, Risk};
use rusqlite::params;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod deadlines;
mod decisions;
mod gates;
mod killswitch;
mod lifecycle;
mod notices;
mod rollback;
mod rows;
mod scope;
mod stage;
mod step;
use decisions::{Closing, closing_message};
use gates::{GateNeed, approvers_of, describe_approvers};
pub use killswitch::KillSwitch;
use lifecycle::lock_run;
use notices::Notice;
use rows::{FrozenRun, Live, RejectionRow, RunRow, StageRow, random_hex};
use scope::{RunScope, interpolate};
use stage::{DEFAULT_TIMEOUT, run_guards, stage_guards};

/// The state directory: `--state`, else `PBC_STATE_DIR`, else `.pbc/state`.
pub fn default_state_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match std::env::var_os("PBC_STATE_DIR") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(".pbc/state"),
    }
}

/// The local runtime over one state directory.
pub struct Runtime {
    store: Store,
    clock: Arc<dyn Clock>,
    notices: Vec<Notice>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("state", &self.store.dir)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Opens the state directory (creating it) and writes any audit entries a crash left in
    /// the store.
    pub fn open(dir: &Path) -> Result<Runtime> {
        // Never hand SQLite or the log appender a FIFO or a device (they would block).
        crate::files::check_kind_if_present(dir, true, "the state directory")?;
        for f in ["state.db", "audit.jsonl"] {
            crate::files::check_kind_if_present(&dir.join(f), false, "a state file")?;
        }
        let mut store = Store::open(dir)?;
        // A tampered or unwritable log is reported (a warning here, `audit verify`); commands
        // still record in the store.
        if let Err(e) = store.flush_audit() {
            store.warn_unwritten(&e);
        }
        Ok(Runtime {
            store,
            clock: Arc::new(SystemClock),
            notices: Vec::new(),
        })
    }

    /// Uses another clock (tests: [`crate::ManualClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn state_dir(&self) -> &Path {
        &self.store.dir
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    // ---------------------------------------------------------------- public API

    /// Starts a run of `c` with `input` and drives it as far as it goes.
    pub fn run(
        &mut self,
        c: &Compiled,
        agents: &Agents,
        input: Value,
        opts: &RunOptions,
    ) -> Result<RunReport> {
        self.start(c, agents, input, opts, None)
    }

    /// Runs one stage alone with `input` as the run's input (the code-review example's `run_stage`):
    /// the other stages are skipped and the stage's `needs` are not waited for.
    pub fn run_stage(
        &mut self,
        c: &Compiled,
        agents: &Agents,
        stage: &str,
        input: Value,
        opts: &RunOptions,
    ) -> Result<StageReport> {
        if c.playbook.stage(stage).is_none() {
            return Err(Error::Usage(format!(
                "playbook `{}` has no stage `{stage}`",
                c.name()
            )));
        }
        let r = self.start(c, agents, input, opts, Some(stage.to_string()))?;
        r.stage(stage)
            .cloned()
            .ok_or_else(|| Error::Store("stage vanished".into()))
    }

    /// Continues a run: applies deadlines, recovers stages a crash left in flight, executes
    /// what approvals allow. `agents` replaces the frozen executors (the role map stays).
    pub fn resume(&mut self, id: &str, agents: Option<&Agents>) -> Result<RunReport> {
        self.check_kill_switch("resuming a run")?;
        self.apply_deadlines()?;
        self.drive(id, agents)?;
        self.report(id)
    }

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
        Ok(RunReport {
            run: run.id.clone(),
            playbook: run.playbook.clone(),
            status: run.status,
            requester: run.requester.clone(),
            started: run.created_at,
            stages: stages
                .into_iter()
                .map(|s| StageReport {
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
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
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
                .prepare("SELECT playbook, run, stage, by, reason, at FROM rejections WHERE playbook = ?1 ORDER BY at DESC, rowid DESC")
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

    /// The run's audit entries (from the log file plus entries not yet written to it).
    pub fn audit_log(&self, run: &str) -> Result<AuditLog> {
        let path = self.store.audit_path();
        let entries = match crate::files::open_regular(&path, "the audit log") {
            Ok(f) => audit::read_entries(&mut std::io::BufReader::new(f))
                .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?,
            Err(_) if !path.exists() => Vec::new(),
            Err(e) => return Err(e),
        };
        let entries = entries
            .into_iter()
            .filter(|e| e.run.as_deref() == Some(run))
            .collect();
        Ok(AuditLog { entries })
    }

    /// Verifies an audit log: the state's own (`None`), or another file (chain only, unless
    /// it is the state's log).
    pub fn verify_audit(&mut self, file: Option<&Path>) -> Result<Verification> {
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

    /// Records an approval by `who` (checked against the gate's users and its
    /// roles' members, never the requester; refused after expiry). `resume` executes.
    pub fn approve(&mut self, id: &str, who: &str) -> Result<Decision> {
        self.decide(id, who, None)
    }

    /// Records a rejection with its reason; the run ends `rejected` (and its on-failure
    /// path runs on `resume`). The rejection is remembered for the playbook.
    pub fn reject(&mut self, id: &str, who: &str, reason: &str) -> Result<Decision> {
        if reason.trim().is_empty() {
            return Err(Error::Usage(
                "a rejection needs a reason (--reason TEXT)".into(),
            ));
        }
        self.decide(id, who, Some(reason))
    }
}

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
