//! The outbox table: one row per (notification, channel), written in the transaction of the
//! audit entry that causes it, and claimed, sent and marked by the deliverer.
//!
//! A row is `pending` until a channel accepts it (`sent`) or its attempts are used up
//! (`failed`; `pbc notifications retry` makes it pending again). A deliverer claims a row
//! by writing its process id in it; a claim whose process is gone (killed mid-delivery) is
//! taken over, so after `kill -9` the next command delivers what was pending.

use crate::db::{OptionalExtension, params};
use crate::store::{Store, Tx};
use crate::{Error, Result};

pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS outbox (
  id TEXT NOT NULL,
  channel TEXT NOT NULL,
  action TEXT NOT NULL,
  run TEXT,
  stage TEXT,
  event TEXT NOT NULL,
  approval TEXT,
  payload TEXT NOT NULL,
  def TEXT NOT NULL,
  settings TEXT NOT NULL,
  compliance TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  next_at INTEGER NOT NULL,
  claimed_by INTEGER,
  claimed_at INTEGER,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  sent_at INTEGER,
  PRIMARY KEY (id, channel, action)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(status, next_at);
CREATE INDEX IF NOT EXISTS outbox_approval ON outbox(approval);
"#;

fn db(e: crate::db::DbError) -> Error {
    Error::Store(e.to_string())
}

/// One delivery: a notification to one channel.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OutboxRow {
    /// The idempotency id: the hash of the audit entry that queued it.
    pub id: String,
    pub channel: String,
    /// `notify`, or for PagerDuty `trigger` / `resolve`.
    pub action: String,
    pub run: Option<String>,
    pub stage: Option<String>,
    /// What happened (`on-pending`, `escalation`, …).
    pub event: String,
    pub approval: Option<String>,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub max_attempts: u32,
    /// When the next attempt is due (ms since the epoch).
    pub next_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// A row as the deliverer needs it.
pub(crate) struct Claimed {
    pub row: OutboxRow,
    pub payload: String,
    pub def: String,
    pub settings: String,
    pub compliance: String,
}

/// What to insert.
pub(crate) struct NewRow<'a> {
    pub id: &'a str,
    pub channel: &'a str,
    pub action: &'a str,
    pub run: Option<&'a str>,
    pub stage: Option<&'a str>,
    pub event: &'a str,
    pub approval: Option<&'a str>,
    pub payload: &'a str,
    pub def: &'a str,
    pub settings: &'a str,
    pub compliance: &'a str,
    pub max_attempts: u32,
    pub now: i64,
}

pub(crate) fn insert(tx: &Tx<'_>, r: &NewRow<'_>) -> Result<()> {
    tx.conn()
        .execute(
            "INSERT INTO outbox(id, channel, action, run, stage, event, approval, payload, def, settings, compliance, status, attempts, max_attempts, next_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'pending', 0, ?12, ?13, ?13) ON CONFLICT DO NOTHING",
            params![
                r.id,
                r.channel,
                r.action,
                r.run,
                r.stage,
                r.event,
                r.approval,
                r.payload,
                r.def,
                r.settings,
                r.compliance,
                r.max_attempts,
                r.now
            ],
        )
        .map(|_| ())
        .map_err(db)
}

/// A PagerDuty trigger whose approval is no longer pending and that has no `resolve` yet.
pub(crate) struct Trigger {
    pub id: String,
    pub channel: String,
    pub approval: String,
    pub payload: String,
    pub def: String,
    pub settings: String,
    pub compliance: String,
    pub max_attempts: u32,
}

pub(crate) fn unresolved_triggers(tx: &Tx<'_>) -> Result<Vec<Trigger>> {
    let mut st = tx
        .conn()
        .prepare(
            "SELECT o.id, o.channel, o.approval, o.payload, o.def, o.settings, o.compliance, o.max_attempts FROM outbox o JOIN approvals a ON a.id = o.approval
             WHERE o.action = 'trigger' AND a.status != 'pending'
             AND NOT EXISTS (SELECT 1 FROM outbox r WHERE r.action = 'resolve' AND r.approval = o.approval AND r.channel = o.channel)",
        )
        .map_err(db)?;
    st.query_map(params![], |r| {
        Ok(Trigger {
            id: r.get(0)?,
            channel: r.get(1)?,
            approval: r.get(2)?,
            payload: r.get(3)?,
            def: r.get(4)?,
            settings: r.get(5)?,
            compliance: r.get(6)?,
            max_attempts: r.get(7)?,
        })
    })
    .map_err(db)?
    .collect::<std::result::Result<_, _>>()
    .map_err(db)
}

/// The approval's status, when a row names one.
pub(crate) fn approval_status(tx: &Tx<'_>, id: &str) -> Result<Option<String>> {
    tx.conn()
        .query_row(
            "SELECT status FROM approvals WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)
}

const COLUMNS: &str = "id, channel, action, run, stage, event, approval, status, attempts, max_attempts, next_at, last_error, created_at, sent_at";

fn row(r: &crate::db::Row) -> std::result::Result<OutboxRow, crate::db::DbError> {
    Ok(OutboxRow {
        id: r.get(0)?,
        channel: r.get(1)?,
        action: r.get(2)?,
        run: r.get(3)?,
        stage: r.get(4)?,
        event: r.get(5)?,
        approval: r.get(6)?,
        status: r.get(7)?,
        attempts: r.get(8)?,
        max_attempts: r.get(9)?,
        next_at: r.get(10)?,
        last_error: r.get(11)?,
        created_at: r.get(12)?,
        sent_at: r.get(13)?,
    })
}

/// Rows by status (`None`: all), oldest first, at most `limit`.
pub(crate) fn list(store: &Store, status: Option<&str>, limit: usize) -> Result<Vec<OutboxRow>> {
    store.read(|c| {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE CAST(?1 AS TEXT) IS NULL OR status = ?1 ORDER BY created_at, rowid LIMIT ?2"
        );
        let mut st = c.prepare(&sql).map_err(db)?;
        st.query_map(params![status, limit as i64], row)
            .map_err(db)?
            .collect::<std::result::Result<_, _>>()
            .map_err(db)
    })
}

/// Counts by status.
pub(crate) fn counts(store: &Store) -> Result<(u64, u64, u64)> {
    store.read(|c| {
        let n = |s: &str| -> Result<u64> {
            c.query_row(
                "SELECT COUNT(*) FROM outbox WHERE status = ?1",
                params![s],
                |r| r.get::<i64>(0),
            )
            .map(|n| n as u64)
            .map_err(db)
        };
        Ok((n("pending")?, n("sent")?, n("failed")?))
    })
}

/// Whether the process that claimed a row still runs.
fn alive(pid: i64) -> bool {
    if pid == i64::from(std::process::id()) {
        return true;
    }
    #[cfg(unix)]
    {
        let Ok(p) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: kill with signal 0 sends nothing; it only asks whether the process exists.
        let r = unsafe { libc::kill(p, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// A claim older than this is taken over whatever its process (a hung deliverer).
const STALE_CLAIM_MS: i64 = 10 * 60 * 1000;

/// Claims up to `limit` due rows for this process (compare-and-set on the claim, in one
/// transaction), oldest first.
pub(crate) fn claim_due(store: &mut Store, now: i64, limit: usize) -> Result<Vec<Claimed>> {
    let me = i64::from(std::process::id());
    store.tx(|tx| {
        // (id, channel, action, claimed_by, claimed_at)
        type Candidate = (String, String, String, Option<i64>, Option<i64>);
        let cands: Vec<Candidate> = {
            let mut st = tx
                .conn()
                .prepare(
                    "SELECT id, channel, action, claimed_by, claimed_at FROM outbox WHERE status = 'pending' AND next_at <= ?1 ORDER BY created_at, rowid LIMIT ?2",
                )
                .map_err(db)?;
            st.query_map(params![now, (limit * 4) as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .map_err(db)?
            .collect::<std::result::Result<_, _>>()
            .map_err(db)?
        };
        let mut out = Vec::new();
        for (id, channel, action, by, at) in cands {
            if out.len() >= limit {
                break;
            }
            let free = match (by, at) {
                (None, _) => true,
                (Some(p), at) => {
                    p != me && (!alive(p) || at.is_none_or(|a| now - a > STALE_CLAIM_MS))
                }
            };
            if !free {
                continue;
            }
            let n = tx
                .conn()
                .execute(
                    "UPDATE outbox SET claimed_by = ?1, claimed_at = ?2 WHERE id = ?3 AND channel = ?4 AND action = ?5 AND status = 'pending' AND claimed_by IS NOT DISTINCT FROM ?6",
                    params![me, now, id, channel, action, by],
                )
                .map_err(db)?;
            if n != 1 {
                continue;
            }
            let c = tx
                .conn()
                .query_row(
                    &format!("SELECT {COLUMNS}, payload, def, settings, compliance FROM outbox WHERE id = ?1 AND channel = ?2 AND action = ?3"),
                    params![id, channel, action],
                    |r| {
                        Ok(Claimed {
                            row: row(r)?,
                            payload: r.get(14)?,
                            def: r.get(15)?,
                            settings: r.get(16)?,
                            compliance: r.get(17)?,
                        })
                    },
                )
                .map_err(db)?;
            out.push(c);
        }
        Ok(out)
    })
}

/// Marks a claimed row sent.
pub(crate) fn mark_sent(tx: &Tx<'_>, r: &OutboxRow, now: i64) -> Result<()> {
    tx.conn()
        .execute(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?1, claimed_by = NULL, claimed_at = NULL, last_error = NULL WHERE id = ?2 AND channel = ?3 AND action = ?4",
            params![now, r.id, r.channel, r.action],
        )
        .map(|_| ())
        .map_err(db)
}

/// Records a failed attempt: the row waits `backoff` for the next, or fails for good.
pub(crate) fn mark_attempt_failed(
    tx: &Tx<'_>,
    r: &OutboxRow,
    error: &str,
    next_at: i64,
    give_up: bool,
) -> Result<()> {
    tx.conn()
        .execute(
            "UPDATE outbox SET status = ?1, attempts = attempts + 1, next_at = ?2, last_error = ?3, claimed_by = NULL, claimed_at = NULL WHERE id = ?4 AND channel = ?5 AND action = ?6",
            params![
                if give_up { "failed" } else { "pending" },
                next_at,
                error,
                r.id,
                r.channel,
                r.action
            ],
        )
        .map(|_| ())
        .map_err(db)
}

/// Makes failed rows pending again (`pbc notifications retry`); returns how many.
pub(crate) fn retry_failed(store: &mut Store, now: i64) -> Result<usize> {
    store.tx(|tx| {
        tx.conn()
            .execute(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_at = ?1, claimed_by = NULL, claimed_at = NULL WHERE status = 'failed'",
                params![now],
            )
            .map_err(db)
    })
}

/// The earliest due time of a pending row, if any.
pub(crate) fn next_due(store: &Store) -> Result<Option<i64>> {
    store.read(|c| {
        c.query_row(
            "SELECT MIN(next_at) FROM outbox WHERE status = 'pending'",
            params![],
            |r| r.get::<Option<i64>>(0),
        )
        .map_err(db)
    })
}
