//! The run engine: schedules stages in graph order, decides `when` and gates with the
//! checker's lowered conditions, runs executors and guardrails, asks people, records every
//! step in the state store and the audit log.

use crate::agents::Agents;
use crate::audit::{self, Verification};
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::guardrails::Redactor;
use crate::load::{Compiled, thaw};
use crate::report::*;
use crate::store::{Store, to_json};
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
mod notices;
mod rollback;
mod rows;
mod scope;
mod stage;
mod step;
use decisions::{Closing, closing_message};
use gates::{GateNeed, approvers_of, describe_approvers};
pub use killswitch::KillSwitch;
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

/// A run lock: held while a process executes a run; released by the OS if it dies.
struct RunLock {
    _file: std::fs::File,
}

fn lock_run(dir: &Path, id: &str) -> Result<Option<RunLock>> {
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

    fn start(
        &mut self,
        c: &Compiled,
        agents: &Agents,
        mut input: Value,
        opts: &RunOptions,
        only: Option<String>,
    ) -> Result<RunReport> {
        self.check_kill_switch("starting a run")?;
        // The input schema's defaults filled in, or the run refused before anything exists.
        crate::input::check(c, &mut input)?;
        // The role map the run freezes: `.pbc.yaml` `roles:` over the agents file's.
        let agents = &agents.with_config_roles(&c.frozen.config.roles);
        self.apply_deadlines()?;
        // Every executor the run may need must exist (high-risk stages never run).
        let pb = &c.playbook;
        let mut missing = Vec::new();
        for s in &pb.spec.stages {
            if s.risk(&pb.spec) == Risk::High || only.as_ref().is_some_and(|o| *o != s.name.value) {
                continue;
            }
            if let Some(a) = s.agent()
                && !agents.agents.contains_key(&a.value)
            {
                missing.push(format!("agent `{}` (stage {})", a.value, s.name.value));
            }
            if let Some(a) = s.action()
                && !agents.actions.contains_key(&a.value.to_string())
            {
                missing.push(format!("action `{}` (stage {})", a.value, s.name.value));
            }
        }
        if !missing.is_empty() && pb.spec.risk() != Risk::High {
            return Err(Error::Usage(format!(
                "the agents file{} has no executor for {}",
                agents
                    .source
                    .as_ref()
                    .map(|p| format!(" {}", p.display()))
                    .unwrap_or_default(),
                missing.join(", ")
            )));
        }
        let id = loop {
            let id = format!("run-{}", random_hex(8));
            if self.load_run(&id).is_err() {
                break id;
            }
        };
        let now = self.now();
        let frozen = FrozenRun {
            playbook: c.frozen.clone(),
            agents: agents.clone(),
            allow_unenforced: opts.allow_unenforced_guardrails,
            only_stage: only.clone(),
        };
        let run = RunRow {
            id: id.clone(),
            playbook: c.name().to_string(),
            status: RunStatus::Running,
            requester: opts.requester.clone(),
            input: input.clone(),
            frozen: frozen.clone(),
            created_at: now,
            stop_requested: None,
            message: None,
            rollback_done: false,
        };
        let stages: Vec<StageRow> = pb
            .spec
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| StageRow {
                name: s.name.value.clone(),
                idx: i,
                status: match &only {
                    Some(o) if *o != s.name.value => StageStatus::Skipped,
                    _ => StageStatus::Pending,
                },
                output: None,
                guardrails: Vec::new(),
                findings: Vec::new(),
                error: None,
                attempts: 0,
                approval_id: None,
                risk_approved: false,
                gate_approved: false,
                started_at: None,
                finished_at: None,
            })
            .collect();
        let live = Live {
            redactor: Redactor::new(run_guards(c)),
            run,
            c: thaw(&c.frozen)?,
            agents: agents.clone(),
            stages,
        };
        let previous = self.rejections(c.name())?;
        let mut details = json!({
            "source": c.frozen.source,
            "requester": opts.requester,
            "input_sha256": audit::sha256_hex(to_json(&input).as_bytes()),
            "agents": agents.source.as_ref().map(|p| p.display().to_string()),
            "allow_unenforced_guardrails": opts.allow_unenforced_guardrails,
        });
        if let Some(o) = &only {
            details["only_stage"] = json!(o);
        }
        if !previous.is_empty() {
            details["previous_rejections"] = json!(previous.len());
        }
        let e = self.entry(&live, None, "run-started", &opts.requester, details);
        let rows = live.stages.clone();
        self.commit(|tx| {
            KillSwitch::refuse_if_engaged(tx, "starting a run")?;
            tx.conn()
                .execute(
                    "INSERT INTO runs(id, playbook, status, requester, input, frozen, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                    params![id, live.run.playbook, RunStatus::Running.as_str(), opts.requester, to_json(&input), to_json(&frozen), now],
                )
                .map_err(|e| Error::Store(e.to_string()))?;
            for s in &rows {
                Self::save_stage(tx, &id, s)?;
            }
            tx.audit(e)?;
            Ok(())
        })?;
        self.drive(&id, None)?;
        self.report(&id)
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

    // ---------------------------------------------------------------- driving

    fn drive(&mut self, id: &str, replace_agents: Option<&Agents>) -> Result<()> {
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
                    GateNeed { approvers, why },
                    None,
                )?;
            }
        }
        Ok(())
    }

    /// Ends the run: cancels open decisions, blocks stages that will never start, records.
    /// The on-failure path runs later, in `drive`.
    fn end_run(&mut self, live: &mut Live, status: RunStatus, message: &str) -> Result<()> {
        self.end_run_with(live, status, message, None)
    }

    /// [`Self::end_run`], committing `closing` (the decision or expiry that ends the run) in
    /// the same transaction: a crash in between must not leave a decided gate in a run that
    /// still waits.
    fn end_run_with(
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
                    "high-risk or unenforceable stages were refused; see the runbook"
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
