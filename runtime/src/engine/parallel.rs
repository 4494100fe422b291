//! Independent stages in parallel. When more than one stage is ready (pending, everything it
//! needs done) and the runtime allows it ([`Runtime::with_parallelism`], `pbc serve` gives
//! `serve.workers`), up to that many are stepped at once, each on its own thread with its own
//! store connection. Every write is still one SQLite transaction and each audit entry links
//! to the one before it inside that transaction, so the run's audit chain stays exact (its
//! order is the order of the commits). Stages whose action has a rate limit are stepped one at
//! a time (their count and their start are two transactions).

use super::{Live, Runtime};
use crate::report::StageStatus;
use crate::{Error, Result};

impl Runtime {
    /// Steps up to `parallelism` stages at once (each on its own thread). `n` is how many.
    pub fn with_parallelism(mut self, n: usize) -> Self {
        self.parallelism = n.max(1);
        self
    }

    /// The stages that could start now and may run beside each other: pending, every need
    /// passed or skipped, no rate-limited action. Empty unless more than one and the runtime
    /// allows parallel steps.
    pub(super) fn parallel_batch(&self, live: &Live) -> Vec<usize> {
        if self.parallelism < 2 || live.run.frozen.only_stage.is_some() {
            return Vec::new();
        }
        let spec = &live.c.playbook.spec;
        let graph = &live.c.analysis.graph;
        let ready: Vec<usize> = graph
            .order
            .iter()
            .copied()
            .filter(|&i| {
                live.stages[i].status == StageStatus::Pending
                    && graph.deps(i).iter().all(|d| {
                        matches!(
                            live.stages[*d].status,
                            StageStatus::Passed | StageStatus::Skipped
                        )
                    })
                    && !spec.stages[i].action().is_some_and(|a| {
                        let a = a.value.to_string();
                        spec.rate_limits
                            .iter()
                            .any(|r| r.action.value.to_string() == a)
                    })
            })
            .take(self.parallelism)
            .collect();
        if ready.len() < 2 { Vec::new() } else { ready }
    }

    /// Steps each stage of `batch` on its own thread; then the caller reloads the run.
    pub(super) fn step_parallel(&mut self, id: &str, batch: &[usize]) -> Result<()> {
        let dir = self.store.dir.clone();
        let backend = self.store.backend.clone();
        let clock = self.clock.clone();
        let results: Vec<Result<bool>> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|&i| {
                    let (dir, clock, backend) = (dir.clone(), clock.clone(), &backend);
                    s.spawn(move || -> Result<bool> {
                        let mut rt = Runtime::open_with(&dir, backend)?.with_clock(clock);
                        let mut live = rt.load_live(id)?;
                        let r = rt.step(&mut live, i);
                        // Notifications it queued after its last write go out with one more.
                        rt.commit(|_| Ok(()))?;
                        r
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Io("a stage's thread panicked".into())))
                })
                .collect()
        });
        for r in results {
            r?;
        }
        Ok(())
    }
}
