//! Gates that need several distinct people (`min-approvals`): each person's approval is a
//! vote, recorded once per person; the vote that reaches the number decides the approval,
//! with the same compare-and-set as a single approval ([`crate::decide::claim`]). A
//! rejection by any one of the approvers still ends the run.
//!
//! A vote is recorded, counted and (when it is the last one needed) claimed in one
//! transaction, with its audit entry: `approval-recorded` for a vote that leaves the gate
//! waiting, `approval-granted` (naming every approver) for the one that decides it.

use super::{Live, Runtime};
use crate::agents::same_person;
use crate::db::{Conn, params};
use crate::report::{Approval, ApprovalStatus};
use crate::{Error, Result};
use serde_json::json;

/// The key a person votes under: two spellings of one address are one person.
fn person(who: &str) -> String {
    who.trim().to_ascii_lowercase()
}

/// Who approved `approval` so far, in order.
pub(super) fn voters(c: &Conn, approval: &str) -> Result<Vec<String>> {
    let mut st = c
        .prepare("SELECT who FROM approval_votes WHERE approval = ?1 ORDER BY n")
        .map_err(|e| Error::Store(e.to_string()))?;
    st.query_map(params![approval], |r| r.get::<String>(0))
        .map_err(|e| Error::Store(e.to_string()))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Store(e.to_string()))
}

impl Runtime {
    /// Records `who`'s approval of `a` (pending, needing several people); the vote that makes
    /// `min_approvals` decides it (`a` becomes approved, by `who`), and only then has the
    /// caller queued the `on-approved` notification.
    pub(super) fn vote(
        &mut self,
        live: &Live,
        a: &mut Approval,
        who: &str,
        role: Option<&str>,
        statement: Option<&str>,
    ) -> Result<()> {
        let so_far = self.store.read(|c| voters(c, &a.id))?;
        if so_far.iter().any(|v| same_person(v, who)) {
            return Err(Error::Refused(format!(
                "{who} already approved {}: it needs {} distinct approvers and has {} ({}); another person must approve",
                a.id,
                a.min_approvals,
                so_far.len(),
                so_far.join(", ")
            )));
        }
        let count = so_far.len() as u32 + 1;
        let decided = count >= a.min_approvals;
        let now = self.now();
        let mut all = so_far.clone();
        all.push(who.to_string());
        let mut details = json!({
            "approval": a.id,
            "kind": a.kind.as_str(),
            "role": role,
            "count": count,
            "needed": a.min_approvals,
        });
        if decided {
            details["approvers"] = json!(all);
        }
        if let Some(st) = statement {
            details["statement"] = json!(st.trim());
        }
        let event = if decided {
            "approval-granted"
        } else {
            "approval-recorded"
        };
        let e = self.entry(live, a.stage.as_deref(), event, who, details);
        if decided {
            a.status = ApprovalStatus::Approved;
            a.decided_by = Some(who.to_string());
            a.decided_role = role.map(String::from);
            a.decided_at = Some(now);
        }
        a.approved_by = all;
        let ap = a.clone();
        let (id, key, who_s, role_s) = (
            a.id.clone(),
            person(who),
            who.to_string(),
            role.map(String::from),
        );
        self.commit(|tx| {
            // Still pending (decided, expired or cancelled meanwhile: refused, nothing kept).
            let pending = tx
                .conn()
                .execute(
                    "UPDATE approvals SET min_approvals = min_approvals WHERE id = ?1 AND status = 'pending'",
                    params![id],
                )
                .map_err(|e| Error::Store(e.to_string()))?;
            if pending != 1 {
                return crate::decide::claim(tx, &ap);
            }
            let n = tx
                .conn()
                .execute(
                    "INSERT INTO approval_votes(approval, person, who, role, n, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(approval, person) DO NOTHING",
                    params![id, key, who_s, role_s, i64::from(count), now],
                )
                .map_err(|e| Error::Store(e.to_string()))?;
            if n != 1 {
                return Err(Error::Refused(format!(
                    "{who_s} already approved {id}; another person must approve"
                )));
            }
            let recorded: i64 = tx
                .conn()
                .query_row(
                    "SELECT COUNT(*) FROM approval_votes WHERE approval = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .map_err(|e| Error::Store(e.to_string()))?;
            if recorded != i64::from(count) {
                return Err(Error::Refused(format!(
                    "another approval of {id} was recorded at the same moment; nothing was recorded for {who_s}: approve again"
                )));
            }
            if decided {
                crate::decide::claim(tx, &ap)?;
                Self::save_approval(tx, &ap)?;
            }
            tx.audit(e)?;
            Ok(())
        })?;
        Ok(())
    }
}
