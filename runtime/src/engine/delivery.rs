//! The engine's side of delivery: the outbox's deliverer, run at the end of each command
//! (and continuously by a long-running process), and what `pbc notifications` shows.

use super::Runtime;
use crate::Result;
use crate::delivery::{self, DeliverySummary, OutboxStatus};
use std::time::Duration;

impl Runtime {
    /// Sends every due notification in the outbox, waiting at most `wait` in all for
    /// retries' back-offs; what is still due waits for the next call.
    pub fn deliver(&mut self, wait: Duration) -> Result<DeliverySummary> {
        let now = self.now();
        // An approval decided by a path that queued nothing still closes its alert.
        self.store
            .tx(|tx| crate::delivery::resolve_decided(tx, now))?;
        delivery::deliver(&mut self.store, self.clock.as_ref(), wait)
    }

    /// Pending, sent and failed deliveries.
    pub fn notifications_status(&self) -> Result<OutboxStatus> {
        delivery::status(&self.store)
    }

    /// Makes every failed delivery pending again; returns how many.
    pub fn retry_notifications(&mut self) -> Result<usize> {
        delivery::retry_failed(&mut self.store, self.clock.as_ref())
    }

    /// Every audit sink runs have written to: its cursor, lag and last error.
    pub fn audit_sinks(&self) -> Result<Vec<crate::delivery::SinkStatus>> {
        delivery::sink_status(&self.store)
    }

    /// Reads audit sink `sink` back and compares it with the local log.
    pub fn verify_against(&self, sink: &str) -> Result<crate::Comparison> {
        crate::audit_against::against(&self.store, sink)
    }
}
