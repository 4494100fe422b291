//! Deciding an approval exactly once.
//!
//! A decision (approve, reject, expire) is a compare-and-set inside the transaction that
//! also records its audit entry: `UPDATE approvals … WHERE id = ? AND status = 'pending'`,
//! in an exclusive write transaction. When two processes decide the same approval at once,
//! the store serializes their transactions (SQLite's write lock, waited for on the busy
//! timeout; PostgreSQL's advisory lock, [`crate::db`]); the second finds no pending row,
//! changes nothing, and is refused with who decided and when.
//! So there is one decision, one audit entry and one notification.

use crate::clock::rfc3339;
use crate::db::{OptionalExtension, params};
use crate::report::{Approval, ApprovalStatus};
use crate::store::Tx;
use crate::{Error, Result};

/// Records `a`'s decision (its status, who, as which role, when, why) if, and only if, the
/// approval is still pending in the store. Refused otherwise, saying who decided it and when.
pub(crate) fn claim(tx: &Tx<'_>, a: &Approval) -> Result<()> {
    let changed = tx
        .conn()
        .execute(
            "UPDATE approvals SET status = ?2, decided_by = ?3, decided_role = ?4, decided_at = ?5, reason = ?6 WHERE id = ?1 AND status = 'pending'",
            params![
                a.id,
                a.status.as_str(),
                a.decided_by,
                a.decided_role,
                a.decided_at,
                a.reason
            ],
        )
        .map_err(|e| Error::Store(e.to_string()))?;
    if changed == 1 {
        return Ok(());
    }
    let now: Option<(String, Option<String>, Option<i64>)> = tx
        .conn()
        .query_row(
            "SELECT status, decided_by, decided_at FROM approvals WHERE id = ?1",
            params![a.id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(|e| Error::Store(e.to_string()))?;
    let Some((status, by, at)) = now else {
        return Err(Error::Usage(format!("no approval `{}`", a.id)));
    };
    let status = ApprovalStatus::parse(&status).unwrap_or(ApprovalStatus::Cancelled);
    Err(Error::Refused(already_decided(
        &a.id,
        status,
        by.as_deref(),
        at,
    )))
}

/// "approval ID was already approved by ann@example.com at 2026-…: nothing to decide".
pub(crate) fn already_decided(
    id: &str,
    status: ApprovalStatus,
    by: Option<&str>,
    at: Option<i64>,
) -> String {
    let by = by.map(|b| format!(" by {b}")).unwrap_or_default();
    let at = at
        .map(|t| format!(" at {}", rfc3339(t)))
        .unwrap_or_default();
    let why = match status {
        ApprovalStatus::Cancelled => " (its run ended)",
        ApprovalStatus::Expired => " (its SLA passed)",
        _ => "",
    };
    format!("approval {id} was already {status}{by}{at}{why}: nothing to decide")
}

/// Opens escalation level `a.level` of `a` if the store still has it pending at the level
/// before (another process may have decided it, or escalated it, meanwhile). Refused
/// otherwise, so that the caller's transaction, and its notification, are dropped.
pub(crate) fn claim_escalation(tx: &Tx<'_>, a: &Approval) -> Result<()> {
    let changed = tx
        .conn()
        .execute(
            "UPDATE approvals SET level = ?2 WHERE id = ?1 AND status = 'pending' AND level = ?3",
            params![a.id, a.level as i64, a.level as i64 - 1],
        )
        .map_err(|e| Error::Store(e.to_string()))?;
    if changed == 1 {
        Ok(())
    } else {
        Err(Error::Refused(format!(
            "approval {} was decided or escalated by another pbc process",
            a.id
        )))
    }
}

/// Cancels an approval of a run that ended, unless it was decided meanwhile.
pub(crate) fn cancel(tx: &Tx<'_>, id: &str, at: i64) -> Result<()> {
    tx.conn()
        .execute(
            "UPDATE approvals SET status = 'cancelled', decided_at = ?2 WHERE id = ?1 AND status = 'pending'",
            params![id, at],
        )
        .map(|_| ())
        .map_err(|e| Error::Store(e.to_string()))
}
