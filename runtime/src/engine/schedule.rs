//! What `pbc serve` records about schedule triggers: each fire (a playbook and the minute it
//! was due) with the run it started, under a unique key, so that a fire starts at most one
//! run however many servers share the state; and the time up to which a server has looked
//! for due fires (`schedule:last-seen`), so that the next start knows which fires it missed.
//! One scheduled run of a playbook at a time: a fire while the previous scheduled run is
//! unfinished starts nothing (the Argo target's `concurrencyPolicy: Forbid`).

use super::Runtime;
use crate::agents::Agents;
use crate::db::{OptionalExtension, params};
use crate::load::Compiled;
use crate::report::{RunOptions, RunStatus};
use crate::store::Tx;
use crate::{Error, Result};

pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS schedule_fires (
  playbook TEXT NOT NULL,
  due_ms INTEGER NOT NULL,
  run TEXT NOT NULL,
  PRIMARY KEY (playbook, due_ms)
);
"#;

/// The requester of a run a schedule started.
pub const SCHEDULE_REQUESTER: &str = "schedule";

const LAST_SEEN: &str = "schedule:last-seen";

/// What a schedule fire did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fired {
    /// It started this run.
    Started(String),
    /// It had started a run before (in this process or another).
    AlreadyFired,
    /// The playbook's previous scheduled run is not finished: nothing started.
    Busy { run: String, status: RunStatus },
}

/// The error `create` returns when the fire was claimed first by another process.
const CLAIMED: &str = "this schedule fire already started a run";

/// Claims the fire `(playbook, due_ms)` for run `run`, in the transaction that creates the
/// run. False when it was claimed before (nothing is written).
pub(super) fn claim(tx: &Tx<'_>, playbook: &str, due_ms: i64, run: &str) -> Result<bool> {
    let n = tx
        .conn()
        .execute(
            "INSERT INTO schedule_fires(playbook, due_ms, run) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![playbook, due_ms, run],
        )
        .map_err(|e| Error::Store(e.to_string()))?;
    Ok(n == 1)
}

/// The error that makes `create` roll back when the fire was claimed before.
pub(super) fn claimed() -> Error {
    Error::Busy(CLAIMED.into())
}

impl Runtime {
    /// Starts the run of schedule fire `(c, due_ms)` (requester `schedule`, input `{}`),
    /// unless that fire started a run before (here or in another process) or the playbook's
    /// previous scheduled run is unfinished. The fire and the run are committed in one
    /// transaction. Nothing is executed: [`Runtime::drive_run`] does.
    pub fn begin_scheduled(&mut self, c: &Compiled, agents: &Agents, due_ms: i64) -> Result<Fired> {
        if self.fire_run(c.name(), due_ms)?.is_some() {
            return Ok(Fired::AlreadyFired);
        }
        if let Some((run, status)) = self.unfinished_scheduled_run(c.name())? {
            return Ok(Fired::Busy { run, status });
        }
        let opts = RunOptions::requested_by(SCHEDULE_REQUESTER);
        match self.create_fired(c, agents, serde_json::json!({}), &opts, None, Some(due_ms)) {
            Ok(id) => Ok(Fired::Started(id)),
            Err(Error::Busy(m)) if m == CLAIMED => Ok(Fired::AlreadyFired),
            Err(e) => Err(e),
        }
    }

    /// The latest scheduled run of `playbook` that is not finished, with its status.
    fn unfinished_scheduled_run(&self, playbook: &str) -> Result<Option<(String, RunStatus)>> {
        let open = [RunStatus::Running, RunStatus::WaitingApproval];
        debug_assert!(open.iter().all(|s| !s.is_final()));
        let row: Option<(String, String)> = self.store.read(|c| {
            c.query_row(
                "SELECT id, status FROM runs WHERE playbook = ?1 AND requester = ?2 AND status IN (?3, ?4) ORDER BY created_at DESC LIMIT 1",
                params![
                    playbook,
                    SCHEDULE_REQUESTER,
                    open[0].as_str(),
                    open[1].as_str()
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| Error::Store(e.to_string()))
        })?;
        Ok(row.map(|(id, s)| (id, RunStatus::parse(&s).unwrap_or(RunStatus::Running))))
    }

    /// The run fire `(playbook, due_ms)` started, if it fired.
    pub fn fire_run(&self, playbook: &str, due_ms: i64) -> Result<Option<String>> {
        self.store.read(|c| {
            c.query_row(
                "SELECT run FROM schedule_fires WHERE playbook = ?1 AND due_ms = ?2",
                params![playbook, due_ms],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| Error::Store(e.to_string()))
        })
    }

    /// When the latest recorded fire of `playbook` was due.
    pub fn last_fire(&self, playbook: &str) -> Result<Option<i64>> {
        self.store.read(|c| {
            c.query_row(
                "SELECT MAX(due_ms) FROM schedule_fires WHERE playbook = ?1",
                params![playbook],
                |r| r.get(0),
            )
            .map_err(|e| Error::Store(e.to_string()))
        })
    }

    /// The time up to which a server last looked for due fires; `None` if none ever did.
    pub fn schedule_last_seen(&mut self) -> Result<Option<i64>> {
        let v = self.store.tx(|tx| tx.meta_get(LAST_SEEN))?;
        Ok(v.and_then(|v| v.parse().ok()))
    }

    /// Records that every fire due up to `ms` was looked at.
    pub fn set_schedule_last_seen(&mut self, ms: i64) -> Result<()> {
        self.store.tx(|tx| tx.meta_set(LAST_SEEN, &ms.to_string()))
    }
}
