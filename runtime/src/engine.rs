//! The run engine: schedules stages in graph order, decides `when` and gates with the
//! checker's lowered conditions, runs executors and guardrails, asks people, records every
//! step in the state store and the audit log.

use crate::agents::{Agents, ExecutorSpec, same_person};
use crate::audit::{self, AuditEntry, Verification};
use crate::clock::{Clock, SystemClock, human_duration, rfc3339};
use crate::eval::{self, Scope};
use crate::exec::{self, ChatCall, ExecError};
use crate::guardrails::{Finding, Guard, Redactor, redact_value};
use crate::load::{Compiled, Frozen, RuntimeConfig, thaw};
use crate::report::*;
use crate::store::{Store, Tx, from_json, opt_json, to_json};
use crate::{Error, Result};
use pbc_compiler::config::RateLimitMode;
use pbc_compiler::model::{Approval as Mode, Approver, Gate, OnFailure, Risk, Stage};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod delivery;
mod killswitch;
pub use killswitch::KillSwitch;

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

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// What a run keeps besides its input.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct FrozenRun {
    playbook: Frozen,
    agents: Agents,
    allow_unenforced: bool,
    only_stage: Option<String>,
}

#[derive(Clone, Debug)]
struct RunRow {
    id: String,
    playbook: String,
    status: RunStatus,
    requester: String,
    input: Value,
    frozen: FrozenRun,
    created_at: i64,
    stop_requested: Option<String>,
    message: Option<String>,
    rollback_done: bool,
}

#[derive(Clone, Debug)]
struct StageRow {
    name: String,
    idx: usize,
    status: StageStatus,
    output: Option<Value>,
    guardrails: Vec<String>,
    findings: Vec<Finding>,
    error: Option<String>,
    attempts: u32,
    approval_id: Option<String>,
    risk_approved: bool,
    gate_approved: bool,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

struct Live {
    run: RunRow,
    c: Compiled,
    agents: Agents,
    stages: Vec<StageRow>,
    redactor: Redactor,
}

/// A notification asked for by a state change, with the configuration of its run; it is
/// written into the outbox by the transaction that commits the change.
struct Notice {
    notice: crate::delivery::Notice,
    config: RuntimeConfig,
}

/// A decision or expiry that ends the run, committed with the run's end.
struct Closing {
    approval: Approval,
    entries: Vec<AuditEntry>,
    rejection: Option<RejectionRow>,
}

struct RejectionRow {
    playbook: String,
    run: String,
    stage: Option<String>,
    by: String,
    reason: String,
    at: i64,
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

fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n.div_ceil(2)];
    if getrandom::fill(&mut buf).is_err() {
        let t = SystemClock.now_ms().to_le_bytes();
        let h = audit::sha256_hex(&[&t[..], &std::process::id().to_le_bytes()].concat());
        return h.chars().take(n).collect();
    }
    buf.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .chars()
        .take(n)
        .collect()
}

fn approvers_of(list: Option<&pbc_compiler::model::Spanned<Vec<Approver>>>) -> Vec<ApproverRef> {
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

fn excerpt(v: &Value, max: usize) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    if s.chars().count() <= max {
        s
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// Values refs read: outputs by stem and stage name, `input`, and the interpolation
/// built-ins.
struct RunScope {
    roots: BTreeMap<String, Value>,
}

impl Scope for RunScope {
    fn root(&self, name: &str) -> Option<&Value> {
        self.roots.get(name)
    }
}

/// How a gate came out.
struct GateNeed {
    approvers: Vec<ApproverRef>,
    why: String,
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

    /// Commits one state change with its audit entries and the notifications queued for it
    /// (written into the outbox in the same transaction; [`Runtime::deliver`] sends them).
    fn commit<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let notices = std::mem::take(&mut self.notices);
        let now = self.now();
        self.store.tx(|tx| {
            let v = f(tx)?;
            for n in &notices {
                crate::delivery::enqueue(tx, &n.notice, &n.config, now)?;
            }
            crate::delivery::resolve_decided(tx, now)?;
            Ok(v)
        })
    }

    // ---------------------------------------------------------------- loading rows

    fn load_run(&self, id: &str) -> Result<RunRow> {
        self.store.read(|c| {
            let row = c
                .query_row(
                    "SELECT id, playbook, status, requester, input, frozen, created_at, stop_requested, message, rollback_done FROM runs WHERE id = ?1",
                    params![id],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, i64>(6)?,
                            r.get::<_, Option<String>>(7)?,
                            r.get::<_, Option<String>>(8)?,
                            r.get::<_, i64>(9)?,
                        ))
                    },
                )
                .optional()
                .map_err(|e| Error::Store(e.to_string()))?;
            let Some(r) = row else {
                return Err(Error::Usage(format!("no run `{id}` in {}", self.store.dir.display())));
            };
            Ok(RunRow {
                id: r.0,
                playbook: r.1,
                status: RunStatus::parse(&r.2).unwrap_or(RunStatus::Failed),
                requester: r.3,
                input: from_json(&r.4)?,
                frozen: from_json(&r.5)?,
                created_at: r.6,
                stop_requested: r.7,
                message: r.8,
                rollback_done: r.9 != 0,
            })
        })
    }

    fn load_stages(&self, id: &str) -> Result<Vec<StageRow>> {
        self.store.read(|c| {
            let mut st = c
                .prepare(
                    "SELECT name, idx, status, output, guardrails, findings, error, attempts, approval_id, risk_approved, gate_approved, started_at, finished_at FROM stages WHERE run = ?1 ORDER BY idx",
                )
                .map_err(|e| Error::Store(e.to_string()))?;
            let rows = st
                .query_map(params![id], |r| {
                    Ok(StageRow {
                        name: r.get(0)?,
                        idx: r.get::<_, i64>(1)? as usize,
                        status: StageStatus::parse(&r.get::<_, String>(2)?)
                            .unwrap_or(StageStatus::Failed),
                        output: opt_json(r.get(3)?),
                        guardrails: serde_json::from_str(&r.get::<_, String>(4)?)
                            .unwrap_or_default(),
                        findings: serde_json::from_str(&r.get::<_, String>(5)?)
                            .unwrap_or_default(),
                        error: r.get(6)?,
                        attempts: r.get::<_, i64>(7)? as u32,
                        approval_id: r.get(8)?,
                        risk_approved: r.get::<_, i64>(9)? != 0,
                        gate_approved: r.get::<_, i64>(10)? != 0,
                        started_at: r.get(11)?,
                        finished_at: r.get(12)?,
                    })
                })
                .map_err(|e| Error::Store(e.to_string()))?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::Store(e.to_string()))?;
            Ok(rows)
        })
    }

    fn load_approvals(&self, where_: &str, arg: &str) -> Result<Vec<Approval>> {
        self.store.read(|c| {
            let sql = format!(
                "SELECT id, run, stage, kind, status, approvers, escalation, level, message, opened_at, deadline, decided_by, decided_role, decided_at, reason FROM approvals WHERE {where_} ORDER BY opened_at, id"
            );
            let mut st = c.prepare(&sql).map_err(|e| Error::Store(e.to_string()))?;
            let rows = st
                .query_map(params![arg], |r| {
                    Ok(Approval {
                        id: r.get(0)?,
                        run: r.get(1)?,
                        stage: r.get(2)?,
                        kind: ApprovalKind::parse(&r.get::<_, String>(3)?)
                            .unwrap_or(ApprovalKind::Gate),
                        status: ApprovalStatus::parse(&r.get::<_, String>(4)?)
                            .unwrap_or(ApprovalStatus::Cancelled),
                        approvers: serde_json::from_str(&r.get::<_, String>(5)?)
                            .unwrap_or_default(),
                        escalation: serde_json::from_str(&r.get::<_, String>(6)?)
                            .unwrap_or_default(),
                        level: r.get::<_, i64>(7)? as u32,
                        message: r.get(8)?,
                        opened_at: r.get(9)?,
                        deadline: r.get(10)?,
                        decided_by: r.get(11)?,
                        decided_role: r.get(12)?,
                        decided_at: r.get(13)?,
                        reason: r.get(14)?,
                    })
                })
                .map_err(|e| Error::Store(e.to_string()))?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::Store(e.to_string()))?;
            Ok(rows)
        })
    }

    fn approval(&self, id: &str) -> Result<Approval> {
        self.load_approvals("id = ?1", id)?
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::Usage(format!(
                    "no approval `{id}` in {}",
                    self.store.dir.display()
                ))
            })
    }

    fn load_live(&self, id: &str) -> Result<Live> {
        let run = self.load_run(id)?;
        let c = thaw(&run.frozen.playbook)?;
        let stages = self.load_stages(id)?;
        let agents = run.frozen.agents.clone();
        let redactor = Redactor::new(run_guards(&c));
        Ok(Live {
            run,
            c,
            agents,
            stages,
            redactor,
        })
    }

    // ---------------------------------------------------------------- writing rows

    fn entry(
        &self,
        live: &Live,
        stage: Option<&str>,
        event: &str,
        actor: &str,
        details: Value,
    ) -> AuditEntry {
        let mut compliance: Vec<String> = live
            .c
            .playbook
            .metadata
            .compliance
            .iter()
            .map(|t| t.value.clone())
            .collect();
        if let Some(s) = stage.and_then(|s| live.c.playbook.stage(s)) {
            for t in &s.compliance {
                if !compliance.contains(&t.value) {
                    compliance.push(t.value.clone());
                }
            }
        }
        AuditEntry {
            seq: 0,
            time: rfc3339(self.now()),
            run: Some(live.run.id.clone()),
            stage: stage.map(String::from),
            event: event.to_string(),
            actor: actor.to_string(),
            compliance,
            details,
            prev: String::new(),
            hash: String::new(),
        }
    }

    fn save_stage(tx: &Tx<'_>, run: &str, s: &StageRow) -> Result<()> {
        tx.conn()
            .execute(
                "INSERT OR REPLACE INTO stages(run, name, idx, status, output, guardrails, findings, error, attempts, approval_id, risk_approved, gate_approved, started_at, finished_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    run,
                    s.name,
                    s.idx as i64,
                    s.status.as_str(),
                    s.output.as_ref().map(to_json),
                    to_json(&s.guardrails),
                    to_json(&s.findings),
                    s.error,
                    s.attempts as i64,
                    s.approval_id,
                    s.risk_approved as i64,
                    s.gate_approved as i64,
                    s.started_at,
                    s.finished_at
                ],
            )
            .map(|_| ())
            .map_err(|e| Error::Store(e.to_string()))
    }

    fn save_run_status(
        tx: &Tx<'_>,
        id: &str,
        status: RunStatus,
        message: Option<&str>,
        now: i64,
    ) -> Result<()> {
        tx.conn()
            .execute(
                "UPDATE runs SET status = ?2, message = COALESCE(?3, message), updated_at = ?4 WHERE id = ?1",
                params![id, status.as_str(), message, now],
            )
            .map(|_| ())
            .map_err(|e| Error::Store(e.to_string()))
    }

    fn save_approval(tx: &Tx<'_>, a: &Approval) -> Result<()> {
        tx.conn()
            .execute(
                "INSERT OR REPLACE INTO approvals(id, run, stage, kind, status, approvers, escalation, level, message, opened_at, deadline, decided_by, decided_role, decided_at, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    a.id,
                    a.run,
                    a.stage,
                    a.kind.as_str(),
                    a.status.as_str(),
                    to_json(&a.approvers),
                    to_json(&a.escalation),
                    a.level as i64,
                    a.message,
                    a.opened_at,
                    a.deadline,
                    a.decided_by,
                    a.decided_role,
                    a.decided_at,
                    a.reason
                ],
            )
            .map(|_| ())
            .map_err(|e| Error::Store(e.to_string()))
    }

    /// The state of a stage's undo step in a run (`running`, `done`, `failed`,
    /// `interrupted`), if it was ever started.
    fn rollback_step(&self, run: &str, stage: &str) -> Result<Option<String>> {
        self.store.read(|c| {
            c.query_row(
                "SELECT status FROM rollback_steps WHERE run = ?1 AND stage = ?2",
                params![run, stage],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| Error::Store(e.to_string()))
        })
    }

    fn save_rollback_step(tx: &Tx<'_>, run: &str, stage: &str, status: &str) -> Result<()> {
        tx.conn()
            .execute(
                "INSERT OR REPLACE INTO rollback_steps(run, stage, status) VALUES (?1, ?2, ?3)",
                params![run, stage, status],
            )
            .map(|_| ())
            .map_err(|e| Error::Store(e.to_string()))
    }

    /// Saves a stage with one audit entry.
    fn record(
        &mut self,
        live: &Live,
        i: usize,
        event: &str,
        actor: &str,
        details: Value,
    ) -> Result<()> {
        let e = self.entry(live, Some(&live.stages[i].name), event, actor, details);
        let row = live.stages[i].clone();
        let run = live.run.id.clone();
        self.commit(|tx| {
            Self::save_stage(tx, &run, &row)?;
            tx.audit(e)?;
            Ok(())
        })
    }

    fn queue_notice(
        &mut self,
        live: &Live,
        stage: Option<&str>,
        event: &str,
        channels: Vec<String>,
        message: &str,
        extra: Value,
    ) {
        if channels.is_empty() {
            return;
        }
        let mut details = serde_json::Map::new();
        if let Value::Object(x) = extra {
            for (k, v) in x {
                details.insert(k, live.redactor.value(&v));
            }
        }
        let pb = &live.c.playbook;
        let risk = match stage.and_then(|s| pb.stage(s)) {
            Some(s) => s.risk(&pb.spec),
            None => pb.spec.risk(),
        };
        let compliance = self.entry(live, stage, "", "", Value::Null).compliance;
        self.notices.push(Notice {
            notice: crate::delivery::Notice {
                run: live.run.id.clone(),
                playbook: live.run.playbook.clone(),
                stage: stage.map(String::from),
                event: event.to_string(),
                channels,
                message: live.redactor.text(message),
                details,
                risk: risk.as_str().to_string(),
                compliance,
            },
            config: live.c.frozen.config.clone(),
        });
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

    // ---------------------------------------------------------------- decisions

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

    fn decide(&mut self, id: &str, who: &str, reject: Option<&str>) -> Result<Decision> {
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
            None => {
                a.status = ApprovalStatus::Approved;
                let e = self.entry(
                    &live,
                    a.stage.as_deref(),
                    "approval-granted",
                    who,
                    json!({"approval": id, "kind": a.kind.as_str(), "role": role}),
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
        })
    }

    /// The kill switch: stops `run` (or every unfinished run) before its next step; a
    /// process executing it kills its running executor. Stopping every run also engages the
    /// latch ([`KillSwitch`]): no run starts or resumes until [`Self::release_kill_switch`].
    pub fn stop(&mut self, run: Option<&str>, who: &str) -> Result<Vec<String>> {
        if run.is_none() {
            // First, so that a run starting meanwhile is either refused or found below.
            self.engage_kill_switch(who)?;
        }
        self.apply_deadlines()?;
        let ids: Vec<String> = match run {
            Some(r) => vec![self.load_run(r)?.id],
            None => self.store.read(|c| {
                let mut st = c
                    .prepare("SELECT id FROM runs WHERE status IN ('running', 'waiting-approval') ORDER BY created_at")
                    .map_err(|e| Error::Store(e.to_string()))?;
                st.query_map([], |r| r.get(0))
                    .map_err(|e| Error::Store(e.to_string()))?
                    .collect::<std::result::Result<Vec<String>, _>>()
                    .map_err(|e| Error::Store(e.to_string()))
            })?,
        };
        let mut stopped = Vec::new();
        for id in ids {
            let mut live = self.load_live(&id)?;
            if live.run.status.is_final() {
                continue;
            }
            let now = self.now();
            let e = self.entry(
                &live,
                None,
                "kill-switch",
                who,
                json!({"scope": if run.is_some() { "run" } else { "all" }}),
            );
            let rid = id.clone();
            let who_s = who.to_string();
            self.commit(|tx| {
                tx.conn()
                    .execute(
                        "UPDATE runs SET stop_requested = ?2, updated_at = ?3 WHERE id = ?1",
                        params![rid, who_s, now],
                    )
                    .map_err(|e| Error::Store(e.to_string()))?;
                tx.audit(e)?;
                Ok(())
            })?;
            // Nobody executes it: stop it now. Otherwise its process does, before its next step.
            if let Some(_lock) = lock_run(&self.store.dir, &id)? {
                live.run.stop_requested = Some(who.to_string());
                self.end_run(
                    &mut live,
                    RunStatus::Stopped,
                    &format!("stopped by {who} (kill switch)"),
                )?;
            }
            stopped.push(id);
        }
        Ok(stopped)
    }

    // ---------------------------------------------------------------- deadlines

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

    // ---------------------------------------------------------------- driving

    fn stop_requested(&self, id: &str) -> bool {
        self.store
            .read(|c| {
                c.query_row(
                    "SELECT stop_requested FROM runs WHERE id = ?1",
                    params![id],
                    |r| r.get::<_, Option<String>>(0),
                )
                .map_err(|e| Error::Store(e.to_string()))
            })
            .ok()
            .flatten()
            .is_some()
    }

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

    /// The playbook's own risk. Returns false when the run cannot go on now.
    fn playbook_gate(&mut self, live: &mut Live) -> Result<bool> {
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
        if risk != Risk::Medium {
            return Ok(true);
        }
        let approvals = self.load_approvals("run = ?1 AND kind = 'playbook-risk'", &live.run.id)?;
        match approvals.last().map(|a| a.status) {
            Some(ApprovalStatus::Approved) => {
                let Some(a) = approvals.last() else {
                    return Ok(false);
                };
                if let Err(m) = crate::chain::confirm_granted(&self.store, a)? {
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
                    },
                    None,
                )?;
                Ok(false)
            }
        }
    }

    /// One step of stage `i`. Returns true if something changed.
    fn step(&mut self, live: &mut Live, i: usize) -> Result<bool> {
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
                        if let Err(m) = crate::chain::confirm_granted(&self.store, &a)? {
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
                    ApprovalKind::Interrupted => {
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
        if own_medium && !live.stages[i].risk_approved {
            if is_action && let Some(mut need) = self.gate_need(live, i) {
                // The action's manual gate is that same decision.
                need.why = format!("{}; the stage is `risk: medium`", need.why);
                self.open_approval(live, Some(i), ApprovalKind::Gate, need, None)?;
                return Ok(true);
            }
            let need = GateNeed {
                approvers: approvers_of(stage.approvers.as_ref()),
                why: "the stage is `risk: medium`: one approval before it runs".into(),
            };
            self.open_approval(live, Some(i), ApprovalKind::StageRisk, need, None)?;
            return Ok(true);
        }
        // an action's gate sits before it acts
        if is_action
            && !live.stages[i].gate_approved
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
        self.execute(live, i, &guards)?;
        let _ = name;
        Ok(true)
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

    /// The values a condition, `when` or interpolation of stage `i` may read.
    fn scope(&self, live: &Live, i: usize, with_self: bool) -> RunScope {
        let pb = &live.c.playbook;
        let mut roots: BTreeMap<String, Value> = BTreeMap::new();
        roots.insert("input".into(), live.run.input.clone());
        roots.insert("playbook".into(), json!({"name": pb.name()}));
        roots.insert(
            "stage".into(),
            json!({"name": pb.spec.stages[i].name.value}),
        );
        roots.insert(
            "execution".into(),
            json!({"id": live.run.id, "start-time": rfc3339(live.run.created_at)}),
        );
        let visible = |j: usize| {
            let s = &live.stages[j];
            (s.status == StageStatus::Passed
                && (live.c.analysis.graph.before(j, i) || live.run.frozen.only_stage.is_some()))
                || (with_self && j == i)
        };
        for (j, s) in live.stages.iter().enumerate() {
            if let (true, Some(o)) = (visible(j), &s.output) {
                roots.insert(s.name.clone(), o.clone());
            }
        }
        for o in &live.c.analysis.outputs {
            if let (Some(stem), true, Some(out)) =
                (&o.stem, visible(o.stage), &live.stages[o.stage].output)
            {
                roots.insert(stem.clone(), out.clone());
            }
        }
        if let Some(aid) = &live.stages[i].approval_id
            && let Ok(a) = self.approval(aid)
            && a.status == ApprovalStatus::Approved
        {
            roots.insert(
                "approver".into(),
                json!({"email": a.decided_by, "role": a.decided_role}),
            );
        }
        RunScope { roots }
    }

    /// The manual gate a stage needs now, if any (conditional gates fail safe).
    fn gate_need(&self, live: &Live, i: usize) -> Option<GateNeed> {
        let stage = &live.c.playbook.spec.stages[i];
        let stage_approvers = approvers_of(stage.approvers.as_ref());
        match stage.approval() {
            Mode::Auto => None,
            Mode::Manual => Some(GateNeed {
                approvers: stage_approvers,
                why: "`approval: manual`".into(),
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
                                return Some(GateNeed { approvers, why });
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

    fn open_approval(
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
    fn open_approval_after(
        &mut self,
        live: &mut Live,
        stage: Option<usize>,
        kind: ApprovalKind,
        need: GateNeed,
        proposed: Option<&Value>,
        before: Option<AuditEntry>,
    ) -> Result<()> {
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
        };
        let sname = model.as_ref().map(|s| s.name.value.clone());
        let e = self.entry(
            live,
            sname.as_deref(),
            "approval-requested",
            "pbc",
            json!({
                "approval": id,
                "kind": kind.as_str(),
                "why": need.why,
                "approvers": need.approvers.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "deadline": deadline.map(rfc3339),
            }),
        );
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

    /// Runs the stage's executor and guardrails, validates the output, then its gate.
    fn execute(&mut self, live: &mut Live, i: usize, guards: &[Guard]) -> Result<()> {
        let stage = live.c.playbook.spec.stages[i].clone();
        let name = stage.name.value.clone();
        // A gate or risk the store says was approved must have its decision in the chain.
        for (flag, what, kinds) in [
            (live.stages[i].gate_approved, "gate", &["gate"][..]),
            (
                live.stages[i].risk_approved,
                "risk",
                &["gate", "stage-risk"][..],
            ),
        ] {
            if flag
                && let Err(m) =
                    crate::chain::confirm_stage(&self.store, &live.run.id, &name, what, kinds)?
            {
                return self.stage_failed(live, i, &m);
            }
        }
        let scope = self.scope(live, i, false);
        let params = stage
            .params
            .as_ref()
            .map(|p| interpolate(&p.to_json(), &scope))
            .unwrap_or_else(|| json!({}));
        let prompt = stage
            .prompt
            .as_ref()
            .map(|p| match interpolate(&json!(p.value), &scope) {
                Value::String(s) => s,
                v => v.to_string(),
            });
        let context = self.context(live, i);
        // input guardrails
        let mut findings = Vec::new();
        for g in guards {
            let input = live.run.input.clone();
            for (root, data) in [
                ("input", &input),
                ("context", &context),
                ("params", &params),
            ] {
                match g.check(&name, root, data) {
                    Ok(f) => findings.extend(f),
                    Err(e) => {
                        let msg = live.redactor.text(&e);
                        return self.stage_failed(live, i, &msg);
                    }
                }
            }
        }
        if !findings.is_empty() {
            return self.block(live, i, findings, None, "input");
        }
        let request = json!({
            "playbook": live.c.playbook.name(),
            "stage": name,
            "input": live.run.input,
            "context": context,
            "params": params,
            "prompt": prompt,
        });
        let spec = match (stage.agent(), stage.action()) {
            (Some(a), _) => live.agents.agents.get(&a.value).cloned(),
            (_, Some(a)) => live.agents.actions.get(&a.value.to_string()).cloned(),
            _ => None,
        };
        let Some(spec) = spec else {
            let msg = format!(
                "no executor for `{}` in the agents file",
                stage
                    .agent()
                    .map(|a| a.value.clone())
                    .or(stage.action().map(|a| a.value.to_string()))
                    .unwrap_or_default()
            );
            return self.stage_failed(live, i, &msg);
        };
        let timeout = match (
            stage.timeout.as_ref().map(|t| t.value.as_std()),
            spec.timeout(),
        ) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => DEFAULT_TIMEOUT,
        };
        let tries = stage.retries.as_ref().map(|r| r.value).unwrap_or(0) + 1;
        let mut last_err = String::new();
        for attempt in 0..tries {
            if self.stop_requested(&live.run.id) {
                let who = self
                    .load_run(&live.run.id)?
                    .stop_requested
                    .unwrap_or_default();
                if attempt > 0 {
                    // Between two attempts: the stage failed and is not tried again.
                    live.stages[i].status = StageStatus::Failed;
                    live.stages[i].error = Some(format!(
                        "stopped by {who} (kill switch) after attempt {attempt}: {last_err}"
                    ));
                    live.stages[i].finished_at = Some(self.now());
                    self.record(live, i, "stage-stopped", &who, json!({"attempts": attempt}))?;
                }
                return self.end_run(
                    live,
                    RunStatus::Stopped,
                    &format!("stopped by {who} (kill switch)"),
                );
            }
            live.stages[i].status = StageStatus::Running;
            live.stages[i].attempts += 1;
            live.stages[i].started_at = Some(self.now());
            // The start, and for an action its rate-limit event, in one transaction.
            let e = self.entry(live, Some(&name), "stage-started", "pbc", json!({"executor": spec.kind(), "attempt": attempt + 1, "params": live.redactor.value(&params)}));
            let action = stage.action().map(|a| a.value.to_string());
            let (row, rid, sname, now) = (
                live.stages[i].clone(),
                live.run.id.clone(),
                name.clone(),
                self.now(),
            );
            self.commit(|tx| {
                Self::save_stage(tx, &rid, &row)?;
                if let Some(action) = action {
                    tx.conn()
                        .execute("INSERT INTO rate_events(action, run, stage, at) VALUES (?1, ?2, ?3, ?4)", params![action, rid, sname, now])
                        .map_err(|e| Error::Store(e.to_string()))?;
                }
                tx.audit(e)?;
                Ok(())
            })?;
            let result = self.invoke(
                &spec,
                &request,
                prompt.as_deref().unwrap_or(""),
                &name,
                timeout,
                live,
            );
            let out = match result {
                Err(ExecError::Stopped) => {
                    let who = self
                        .load_run(&live.run.id)?
                        .stop_requested
                        .unwrap_or_default();
                    live.stages[i].status = StageStatus::Failed;
                    live.stages[i].error = Some(format!(
                        "stopped by {who} (kill switch) while running; its executor was killed"
                    ));
                    self.record(live, i, "stage-stopped", &who, json!({}))?;
                    return self.end_run(
                        live,
                        RunStatus::Stopped,
                        &format!("stopped by {who} (kill switch)"),
                    );
                }
                Err(e) => {
                    last_err = live.redactor.text(&e.to_string());
                    self.record(
                        live,
                        i,
                        "stage-attempt-failed",
                        "pbc",
                        json!({"attempt": attempt + 1, "error": last_err}),
                    )?;
                    continue;
                }
                Ok(v) => v,
            };
            // The output is validated before anything reads it (guardrails included).
            if let Some((file, v)) = live.c.validators.get(i).and_then(Option::as_ref) {
                let errors: Vec<String> = v
                    .iter_errors(&out)
                    .take(20)
                    .map(|e| {
                        let at = e.instance_path().to_string();
                        format!("{}: {e}", if at.is_empty() { "/".to_string() } else { at })
                    })
                    .collect();
                if !errors.is_empty() {
                    last_err = live.redactor.text(&format!(
                        "the output does not match {file}:\n{}",
                        errors.join("\n")
                    ));
                    self.record(
                        live,
                        i,
                        "stage-attempt-failed",
                        "pbc",
                        json!({"attempt": attempt + 1, "error": last_err}),
                    )?;
                    continue;
                }
            }
            let mut findings = Vec::new();
            for g in guards {
                match g.check(&name, "output", &out) {
                    Ok(f) => findings.extend(f),
                    Err(e) => {
                        let msg = live.redactor.text(&e);
                        return self.stage_failed(live, i, &msg);
                    }
                }
            }
            // What is stored, logged and printed: secrets redacted whatever guardrails the
            // stage lists (the executor's own output goes nowhere else).
            let secrets = Redactor::secrets();
            if !findings.is_empty() {
                let redacted = secrets.value(&redact_value(&out, "output", &findings));
                return self.block(live, i, findings, Some(redacted), "output");
            }
            let out = secrets.value(&out);
            live.stages[i].output = Some(out.clone());
            live.stages[i].error = None;
            let mut details = json!({"attempt": attempt + 1});
            if stage.audit_log.as_ref().map(|a| a.value)
                == Some(pbc_compiler::model::AuditLog::Required)
            {
                details["input"] = live.redactor.value(&request);
                details["output"] = live.redactor.value(&out);
            } else {
                details["output_sha256"] = json!(audit::sha256_hex(to_json(&out).as_bytes()));
            }
            // An agent's gate sits after its output.
            if stage.agent().is_some()
                && !live.stages[i].gate_approved
                && let Some(need) = self.gate_need(live, i)
            {
                live.stages[i].status = StageStatus::WaitingApproval;
                let e = self.entry(live, Some(&name), "stage-output", "pbc", details);
                let o = live.redactor.value(&out);
                return self.open_approval_after(
                    live,
                    Some(i),
                    ApprovalKind::Gate,
                    need,
                    Some(&o),
                    Some(e),
                );
            }
            live.stages[i].status = StageStatus::Passed;
            live.stages[i].finished_at = Some(self.now());
            return self.record(live, i, "stage-passed", "pbc", details);
        }
        live.stages[i].status = StageStatus::Failed;
        live.stages[i].error = Some(last_err.clone());
        live.stages[i].finished_at = Some(self.now());
        self.record(
            live,
            i,
            "stage-failed",
            "pbc",
            json!({"error": last_err, "attempts": tries}),
        )?;
        let chans: Vec<String> = stage
            .notification
            .as_ref()
            .map(|n| n.on_failure.iter().map(|c| c.value.clone()).collect())
            .unwrap_or_default();
        self.queue_notice(
            live,
            Some(&name),
            "on-failure",
            chans,
            &format!("stage {name} failed: {last_err}"),
            json!({}),
        );
        self.fail(
            live,
            i,
            RunStatus::Failed,
            &format!("stage `{name}` failed"),
        )
    }

    fn invoke(
        &self,
        spec: &ExecutorSpec,
        request: &Value,
        prompt: &str,
        stage: &str,
        timeout: Duration,
        live: &Live,
    ) -> std::result::Result<Value, ExecError> {
        let run = live.run.id.as_str();
        if let Some(cmd) = &spec.command {
            let stop = || self.stop_requested(run);
            return exec::run_json_command(cmd, spec.cwd.as_deref(), request, timeout, &stop);
        }
        if let Some(dir) = &spec.fixture {
            return exec::fixture(dir, stage);
        }
        if let Some(h) = &spec.http {
            let call = ChatCall {
                url: &h.url,
                model: &h.model,
                system_prompt: spec.system_prompt.as_deref(),
                prompt,
                request,
                timeout,
                api_key: h.api_key_env.as_ref().and_then(|v| std::env::var(v).ok()),
                ca_file: live.c.frozen.config.tls_ca_file.as_deref(),
            };
            return exec::http_chat(&call);
        }
        Err(ExecError::Other("the executor has no kind".into()))
    }

    /// `context`: each entry mapped to that (passed) stage's output.
    fn context(&self, live: &Live, i: usize) -> Value {
        let pb = &live.c.playbook;
        let mut m = serde_json::Map::new();
        for c in &pb.spec.stages[i].context {
            let v = c.value.as_str();
            let stem = pbc_compiler::sema::stem(v);
            let by_file = pb.spec.stages.iter().position(|x| {
                x.output_schema.as_ref().is_some_and(|o| {
                    o.value == v
                        || o.value.rsplit('/').next() == Some(v)
                        || pbc_compiler::sema::stem(&o.value) == stem
                })
            });
            let j = by_file.or_else(|| pb.spec.stages.iter().position(|x| x.name.value == v));
            let out = j
                .and_then(|j| live.stages.get(j))
                .filter(|s| s.status == StageStatus::Passed)
                .and_then(|s| s.output.clone())
                .unwrap_or(Value::Null);
            m.insert(v.to_string(), out);
        }
        Value::Object(m)
    }

    fn block(
        &mut self,
        live: &mut Live,
        i: usize,
        findings: Vec<Finding>,
        redacted: Option<Value>,
        where_: &str,
    ) -> Result<()> {
        let mut names: Vec<String> = Vec::new();
        for f in &findings {
            if !names.contains(&f.guardrail) {
                names.push(f.guardrail.clone());
            }
        }
        let desc: Vec<String> = findings.iter().map(Finding::describe).collect();
        live.stages[i].status = StageStatus::Blocked;
        live.stages[i].guardrails = names.clone();
        live.stages[i].findings = findings.clone();
        live.stages[i].output = redacted;
        live.stages[i].error = Some(format!(
            "blocked by guardrail(s) on its {where_}: {}",
            desc.join("; ")
        ));
        live.stages[i].finished_at = Some(self.now());
        self.record(
            live,
            i,
            "guardrail-triggered",
            "pbc",
            json!({"guardrails": names, "where": where_, "findings": findings}),
        )?;
        let name = live.stages[i].name.clone();
        let chans: Vec<String> = live.c.playbook.spec.stages[i]
            .notification
            .as_ref()
            .map(|n| n.on_failure.iter().map(|c| c.value.clone()).collect())
            .unwrap_or_default();
        self.queue_notice(
            live,
            Some(&name),
            "on-failure",
            chans,
            &format!("stage {name} blocked by {}", names.join(", ")),
            json!({"findings": desc}),
        );
        self.fail(
            live,
            i,
            RunStatus::Blocked,
            &format!("stage `{name}` was blocked by {}", names.join(", ")),
        )
    }

    /// A stage ended the run unsuccessfully.
    /// Fails stage `i` with `msg` (already redacted), records it, and ends the run as failed.
    fn stage_failed(&mut self, live: &mut Live, i: usize, msg: &str) -> Result<()> {
        live.stages[i].status = StageStatus::Failed;
        live.stages[i].error = Some(msg.to_string());
        self.record(live, i, "stage-failed", "pbc", json!({"error": msg}))?;
        self.fail(live, i, RunStatus::Failed, msg)
    }

    fn fail(&mut self, live: &mut Live, _i: usize, status: RunStatus, message: &str) -> Result<()> {
        self.end_run(live, status, message)
    }

    /// Records a rejection or an expiry (`closing`). When no process executes the run, the
    /// run ends with it, in the same transaction. When one does (it holds the run's lock), only
    /// the decision is recorded: that process ends the run before its next step
    /// ([`Self::end_by_decision`]), so that it never goes on with a run that has ended.
    fn close_run(&mut self, live: &mut Live, closing: Closing) -> Result<()> {
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
    fn end_by_decision(&mut self, live: &mut Live, a: &Approval) -> Result<()> {
        let (status, msg) = self.decided_stage(live, a);
        self.end_run(live, status, &msg)
    }

    fn save_rejection(tx: &Tx<'_>, r: &RejectionRow) -> Result<()> {
        tx.conn()
            .execute(
                "INSERT INTO rejections(playbook, run, stage, by, reason, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![r.playbook, r.run, r.stage, r.by, r.reason, r.at],
            )
            .map(|_| ())
            .map_err(|e| Error::Store(e.to_string()))
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

    /// The on-failure path (`spec.rollback`), once per run, on `resume` or at the end of the
    /// executing command.
    fn on_failure(&mut self, live: &mut Live) -> Result<()> {
        if live.run.rollback_done
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
                let Some(rb) = pb.spec.stages[i].rollback.clone() else {
                    continue;
                };
                let action = rb.action.value.to_string();
                let scope = self.scope(live, i, true);
                let params = rb
                    .params
                    .as_ref()
                    .map(|p| interpolate(&p.to_json(), &scope))
                    .unwrap_or_else(|| json!({}));
                let name = live.stages[i].name.clone();
                // An undo step is an action: it never runs twice silently. One that was
                // started before (pbc died while it ran, or it failed) is not run again.
                if let Some(before) = self.rollback_step(&live.run.id, &name)? {
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
                    self.commit(|tx| {
                        Self::save_rollback_step(tx, &rid, &sname, "interrupted")?;
                        tx.audit(e)?;
                        Ok(())
                    })?;
                    failed_undo.push(format!("{name}: {msg}"));
                    continue;
                }
                {
                    let e = self.entry(
                        live,
                        Some(&name),
                        "rollback-started",
                        "pbc",
                        json!({"action": action, "params": live.redactor.value(&params)}),
                    );
                    let (rid, sname) = (live.run.id.clone(), name.clone());
                    self.commit(|tx| {
                        Self::save_rollback_step(tx, &rid, &sname, "running")?;
                        tx.audit(e)?;
                        Ok(())
                    })?;
                }
                let request = json!({"playbook": pb.name(), "stage": name, "input": live.run.input, "context": {}, "params": params, "prompt": null, "rollback": true});
                let result = match live.agents.actions.get(&action).cloned() {
                    Some(spec) => self.invoke(
                        &spec,
                        &request,
                        "",
                        &format!("{name}.rollback"),
                        spec.timeout().unwrap_or(DEFAULT_TIMEOUT),
                        live,
                    ),
                    None => Err(ExecError::Other(format!(
                        "no executor for rollback action `{action}`"
                    ))),
                };
                let (event, step, details) = match &result {
                    Ok(_) => {
                        live.stages[i].status = StageStatus::RolledBack;
                        (
                            "stage-rolled-back",
                            "done",
                            json!({"action": action, "params": live.redactor.value(&params)}),
                        )
                    }
                    Err(e) => {
                        let msg = live.redactor.text(&e.to_string());
                        failed_undo.push(format!("{name}: {msg}"));
                        (
                            "rollback-failed",
                            "failed",
                            json!({"action": action, "error": msg}),
                        )
                    }
                };
                if result.is_ok() {
                    undone.push(name.clone());
                }
                let e = self.entry(live, Some(&name), event, "pbc", details);
                let (row, rid) = (live.stages[i].clone(), live.run.id.clone());
                self.commit(|tx| {
                    Self::save_stage(tx, &rid, &row)?;
                    Self::save_rollback_step(tx, &rid, &row.name, step)?;
                    tx.audit(e)?;
                    Ok(())
                })?;
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

/// Why a rejected or expired approval ended its run.
fn closing_message(a: &Approval) -> String {
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

fn unreachable_text() -> String {
    "start the playbook".into()
}

/// Guardrails for the run's redactor: every enforceable guardrail the playbook names, and the
/// always-on ones.
fn run_guards(c: &Compiled) -> Vec<Guard> {
    let defs = &c.frozen.config.guardrail_defs;
    let mut names: Vec<String> = c.frozen.config.always_on.clone();
    for s in &c.playbook.spec.stages {
        for g in &s.guardrails {
            if !names.contains(&g.value) {
                names.push(g.value.clone());
            }
        }
    }
    names
        .iter()
        .filter_map(|n| Guard::resolve(n, defs))
        .collect()
}

/// A stage's guardrails (its own, then the always-on ones) and those it cannot enforce.
fn stage_guards(c: &Compiled, s: &Stage) -> (Vec<Guard>, Vec<String>) {
    let defs = &c.frozen.config.guardrail_defs;
    let mut names: Vec<String> = s.guardrails.iter().map(|g| g.value.clone()).collect();
    for a in &c.frozen.config.always_on {
        if !names.contains(a) {
            names.push(a.clone());
        }
    }
    let mut guards = Vec::new();
    let mut missing = Vec::new();
    for n in names {
        match Guard::resolve(&n, defs) {
            Some(g) => guards.push(g),
            None => missing.push(n),
        }
    }
    (guards, missing)
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

fn describe_approvers(approvers: &[ApproverRef], agents: &Agents) -> String {
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

/// Replaces `${…}` in every string of `v`. A string that is exactly one interpolation takes
/// the value itself (a number stays a number); otherwise values are spliced in as text. An
/// absent value is null (alone) or empty text.
pub(crate) fn interpolate(v: &Value, scope: &dyn Scope) -> Value {
    use pbc_compiler::expr::interp::{Segment, scan};
    match v {
        Value::String(s) if s.contains("${") => {
            let (segs, _) = scan(s);
            let lookup = |seg: &pbc_compiler::expr::interp::Interpolation| -> Option<Value> {
                let (e, errs) = seg.parse();
                let e = e.filter(|_| errs.is_empty())?;
                let pbc_compiler::expr::ExprKind::Ref { segments } = &e.kind else {
                    return None;
                };
                let path: Vec<String> = segments.iter().map(|(n, _)| n.clone()).collect();
                eval::lookup(scope, &path).cloned()
            };
            if let [Segment::Interpolation(one)] = segs.as_slice() {
                return lookup(one).unwrap_or(Value::Null);
            }
            let mut out = String::new();
            for seg in &segs {
                match seg {
                    Segment::Literal { text, .. } => out.push_str(text),
                    Segment::Interpolation(i) => match lookup(i) {
                        Some(Value::String(x)) => out.push_str(&x),
                        Some(Value::Null) | None => {}
                        Some(x) => out.push_str(&x.to_string()),
                    },
                }
            }
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| interpolate(x, scope)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), interpolate(x, scope)))
                .collect(),
        ),
        x => x.clone(),
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
