//! What `pbc serve` keeps in the state store besides runs: the answer given to each
//! idempotency key (a replayed request answers as the first time, across restarts), and the
//! counts its metrics read.

use super::Runtime;
use crate::Result;
use crate::db::params;

/// Approvals at a glance, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApprovalCounts {
    pub pending: u64,
    /// Gates that expired after their SLA (and every escalation level).
    pub expired: u64,
    /// Escalation levels opened, over every gate.
    pub escalations: u64,
}

pub(super) fn idem_key(key: &str) -> String {
    format!("idempotency:{key}")
}

impl Runtime {
    /// The answer remembered for an idempotency key (scoped by the caller), if any.
    pub fn remembered(&mut self, key: &str) -> Result<Option<String>> {
        self.store.tx(|tx| tx.meta_get(&idem_key(key)))
    }

    /// Remembers the answer to an idempotency key.
    pub fn remember(&mut self, key: &str, answer: &str) -> Result<()> {
        self.store.tx(|tx| tx.meta_set(&idem_key(key), answer))
    }

    /// How many approvals are pending, expired, and how many escalation levels opened.
    pub fn approval_counts(&self) -> Result<ApprovalCounts> {
        self.store.read(|c| {
            c.query_row(
                "SELECT COUNT(CASE WHEN status = 'pending' THEN 1 END), COUNT(CASE WHEN status = 'expired' THEN 1 END), CAST(COALESCE(SUM(level), 0) AS BIGINT) FROM approvals",
                params![],
                |r| {
                    Ok(ApprovalCounts {
                        pending: r.get::<i64>(0)?.max(0) as u64,
                        expired: r.get::<i64>(1)?.max(0) as u64,
                        escalations: r.get::<i64>(2)?.max(0) as u64,
                    })
                },
            )
            .map_err(|e| crate::Error::Store(e.to_string()))
        })
    }
}
