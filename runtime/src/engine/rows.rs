//! The rows the engine keeps in the state store: a run (with what it froze at its start), its
//! stages, approvals, rejections and undo steps; loading them, saving them, and the audit
//! entry that goes with a change.

use super::{Runtime, run_guards};
use crate::agents::Agents;
use crate::audit::AuditEntry;
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::db::{OptionalExtension, params};
use crate::guardrails::{Finding, Redactor};
use crate::load::{Compiled, Frozen, thaw};
use crate::report::{Approval, ApprovalKind, ApprovalStatus, RunStatus, StageStatus};
use crate::store::{Tx, from_json, opt_json, to_json};
use crate::{Error, Result, audit};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a run keeps besides its input.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct FrozenRun {
    pub(super) playbook: Frozen,
    pub(super) agents: Agents,
    pub(super) allow_unenforced: bool,
    pub(super) only_stage: Option<String>,
    /// One stage of an Argo workflow (`pbc runner`): the workflow's suspends decide its gates.
    #[serde(default)]
    pub(super) workflow: bool,
    /// The workflow's uid (`{{workflow.uid}}`): the exit handler's on-failure path finds the
    /// stage runs of its own workflow by it, never those of an earlier one of the same name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) workflow_uid: Option<String>,
}

/// A run as the store keeps it.
#[derive(Clone, Debug)]
pub(super) struct RunRow {
    pub(super) id: String,
    pub(super) playbook: String,
    pub(super) status: RunStatus,
    pub(super) requester: String,
    pub(super) input: Value,
    pub(super) frozen: FrozenRun,
    pub(super) created_at: i64,
    pub(super) stop_requested: Option<String>,
    pub(super) message: Option<String>,
    pub(super) rollback_done: bool,
}

/// A stage of a run as the store keeps it.
#[derive(Clone, Debug)]
pub(super) struct StageRow {
    pub(super) name: String,
    pub(super) idx: usize,
    pub(super) status: StageStatus,
    pub(super) output: Option<Value>,
    pub(super) guardrails: Vec<String>,
    pub(super) findings: Vec<Finding>,
    pub(super) error: Option<String>,
    pub(super) attempts: u32,
    pub(super) approval_id: Option<String>,
    pub(super) risk_approved: bool,
    pub(super) gate_approved: bool,
    pub(super) started_at: Option<i64>,
    pub(super) finished_at: Option<i64>,
}

/// A run loaded for executing: its row, its thawed playbook, its executors and role map,
/// its stages, and the redactor of its guardrails.
pub(super) struct Live {
    pub(super) run: RunRow,
    pub(super) c: Compiled,
    pub(super) agents: Agents,
    pub(super) stages: Vec<StageRow>,
    pub(super) redactor: Redactor,
}

/// A rejection, remembered for the playbook (later runs show it).
pub(super) struct RejectionRow {
    pub(super) playbook: String,
    pub(super) run: String,
    pub(super) stage: Option<String>,
    pub(super) by: String,
    pub(super) reason: String,
    pub(super) at: i64,
}

/// `n` random hex digits (run and approval ids).
pub(super) fn random_hex(n: usize) -> String {
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

impl Runtime {
    pub(super) fn load_run(&self, id: &str) -> Result<RunRow> {
        self.store.read(|c| {
            let row = c
                .query_row(
                    "SELECT id, playbook, status, requester, input, frozen, created_at, stop_requested, message, rollback_done FROM runs WHERE id = ?1",
                    params![id],
                    |r| {
                        Ok((
                            r.get::<String>(0)?,
                            r.get::<String>(1)?,
                            r.get::<String>(2)?,
                            r.get::<String>(3)?,
                            r.get::<String>(4)?,
                            r.get::<String>(5)?,
                            r.get::<i64>(6)?,
                            r.get::<Option<String>>(7)?,
                            r.get::<Option<String>>(8)?,
                            r.get::<i64>(9)?,
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

    pub(super) fn load_stages(&self, id: &str) -> Result<Vec<StageRow>> {
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
                        idx: r.get::<i64>(1)? as usize,
                        status: StageStatus::parse(&r.get::<String>(2)?)
                            .unwrap_or(StageStatus::Failed),
                        output: opt_json(r.get(3)?),
                        guardrails: serde_json::from_str(&r.get::<String>(4)?)
                            .unwrap_or_default(),
                        findings: serde_json::from_str(&r.get::<String>(5)?)
                            .unwrap_or_default(),
                        error: r.get(6)?,
                        attempts: r.get::<i64>(7)? as u32,
                        approval_id: r.get(8)?,
                        risk_approved: r.get::<i64>(9)? != 0,
                        gate_approved: r.get::<i64>(10)? != 0,
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

    pub(super) fn load_approvals(&self, where_: &str, arg: &str) -> Result<Vec<Approval>> {
        self.store.read(|c| {
            let sql = format!(
                "SELECT id, run, stage, kind, status, approvers, escalation, level, message, opened_at, deadline, decided_by, decided_role, decided_at, reason, min_approvals FROM approvals WHERE {where_} ORDER BY opened_at, id"
            );
            let mut st = c.prepare(&sql).map_err(|e| Error::Store(e.to_string()))?;
            let rows = st
                .query_map(params![arg], |r| {
                    Ok(Approval {
                        id: r.get(0)?,
                        run: r.get(1)?,
                        stage: r.get(2)?,
                        kind: ApprovalKind::parse(&r.get::<String>(3)?)
                            .unwrap_or(ApprovalKind::Gate),
                        status: ApprovalStatus::parse(&r.get::<String>(4)?)
                            .unwrap_or(ApprovalStatus::Cancelled),
                        approvers: serde_json::from_str(&r.get::<String>(5)?)
                            .unwrap_or_default(),
                        escalation: serde_json::from_str(&r.get::<String>(6)?)
                            .unwrap_or_default(),
                        level: r.get::<i64>(7)? as u32,
                        message: r.get(8)?,
                        opened_at: r.get(9)?,
                        deadline: r.get(10)?,
                        decided_by: r.get(11)?,
                        decided_role: r.get(12)?,
                        decided_at: r.get(13)?,
                        reason: r.get(14)?,
                        min_approvals: u32::try_from(r.get::<i64>(15)?.max(1)).unwrap_or(1),
                        approved_by: Vec::new(),
                    })
                })
                .map_err(|e| Error::Store(e.to_string()))?
                .collect::<std::result::Result<Vec<Approval>, _>>()
                .map_err(|e| Error::Store(e.to_string()))?;
            let mut rows = rows;
            for a in rows.iter_mut().filter(|a| a.min_approvals > 1) {
                a.approved_by = super::votes::voters(c, &a.id)?;
            }
            Ok(rows)
        })
    }

    pub(super) fn approval(&self, id: &str) -> Result<Approval> {
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

    pub(super) fn load_live(&self, id: &str) -> Result<Live> {
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

    pub(super) fn entry(
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

    pub(super) fn save_stage(tx: &Tx<'_>, run: &str, s: &StageRow) -> Result<()> {
        tx.conn()
            .execute(
                "INSERT INTO stages(run, name, idx, status, output, guardrails, findings, error, attempts, approval_id, risk_approved, gate_approved, started_at, finished_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) ON CONFLICT(run, name) DO UPDATE SET idx = excluded.idx, status = excluded.status, output = excluded.output, guardrails = excluded.guardrails, findings = excluded.findings, error = excluded.error, attempts = excluded.attempts, approval_id = excluded.approval_id, risk_approved = excluded.risk_approved, gate_approved = excluded.gate_approved, started_at = excluded.started_at, finished_at = excluded.finished_at",
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

    pub(super) fn save_run_status(
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

    pub(super) fn save_approval(tx: &Tx<'_>, a: &Approval) -> Result<()> {
        tx.conn()
            .execute(
                "INSERT INTO approvals(id, run, stage, kind, status, approvers, escalation, level, message, opened_at, deadline, decided_by, decided_role, decided_at, reason, min_approvals) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) ON CONFLICT(id) DO UPDATE SET min_approvals = excluded.min_approvals, run = excluded.run, stage = excluded.stage, kind = excluded.kind, status = excluded.status, approvers = excluded.approvers, escalation = excluded.escalation, level = excluded.level, message = excluded.message, opened_at = excluded.opened_at, deadline = excluded.deadline, decided_by = excluded.decided_by, decided_role = excluded.decided_role, decided_at = excluded.decided_at, reason = excluded.reason",
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
                    a.reason,
                    i64::from(a.min_approvals)
                ],
            )
            .map(|_| ())
            .map_err(|e| Error::Store(e.to_string()))
    }

    /// The state of a stage's undo step in a run (`running`, `done`, `failed`,
    /// `interrupted`), if it was ever started.
    pub(super) fn rollback_step(&self, run: &str, stage: &str) -> Result<Option<String>> {
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

    pub(super) fn save_rollback_step(
        tx: &Tx<'_>,
        run: &str,
        stage: &str,
        status: &str,
    ) -> Result<()> {
        tx.conn()
            .execute(
                "INSERT INTO rollback_steps(run, stage, status) VALUES (?1, ?2, ?3) ON CONFLICT(run, stage) DO UPDATE SET status = excluded.status",
                params![run, stage, status],
            )
            .map(|_| ())
            .map_err(|e| Error::Store(e.to_string()))
    }

    pub(super) fn save_rejection(tx: &Tx<'_>, r: &RejectionRow) -> Result<()> {
        tx.conn()
            .execute(
                "INSERT INTO rejections(playbook, run, stage, \"by\", reason, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![r.playbook, r.run, r.stage, r.by, r.reason, r.at],
            )
            .map(|_| ())
            .map_err(|e| Error::Store(e.to_string()))
    }

    /// Saves a stage with one audit entry.
    pub(super) fn record(
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
}
