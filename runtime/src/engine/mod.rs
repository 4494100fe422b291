//! The run engine: schedules stages in graph order, decides `when` and gates with the
//! checker's lowered conditions, runs executors and guardrails, asks people, records every
//! step in the state store and the audit log.
//!
//! [`Runtime`] is opened here, and here are the entry points that start or continue a run
//! (`run`, `run_stage`, `resume`) and decide its questions (`approve`, `reject`). The rest
//! lives in rooms named by their concern:
//!
//! - `lifecycle`: starting a run, driving it under its lock, settling and ending it;
//! - `step`: one step of a stage (what it does next); `stage`: executing it (guardrails,
//!   executor, retries, output);
//! - `gates`: when to ask a person, and the question asked; `decisions`: who may decide, and
//!   how a rejection or an expiry ends a run; `deadlines`: SLA escalation and expiry;
//! - `policy`: the policies evaluated just before a stage executes (deny refuses it,
//!   `require-approval` makes it a manual gate), their input document and their audit;
//! - `rollback`: the on-failure path; `killswitch`: `stop` and the latch;
//! - `queries`: a run's report, the list of runs, rejections, the audit log and its
//!   verification;
//! - `rows`: the rows in the state store; `scope`: what conditions and interpolation read;
//!   `notices`: notifications, written into the outbox by the commit that queues them;
//!   `delivery`: the outbox's deliverer and what `pbc notifications` shows; `service`: what
//!   `pbc serve` keeps (idempotency answers) and the counts its metrics read; `schedule`:
//!   the fires of schedule triggers `pbc serve` recorded; `workflow`: one stage of an Argo
//!   workflow (`pbc runner`).

use crate::agents::Agents;
use crate::clock::{Clock, SystemClock};
use crate::load::Compiled;
use crate::report::{Decision, RunOptions, RunReport, StageReport};
use crate::store::Store;
use crate::{Error, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod create;
mod deadlines;
mod decisions;
mod delivery;
mod gates;
mod killswitch;
mod lifecycle;
mod notices;
mod parallel;
mod policy;
mod policy_output;
mod policy_stats;
mod queries;
mod rollback;
mod rows;
pub(crate) mod schedule;
mod scope;
mod service;
mod signatures;
mod stage;
mod stats;
mod step;
mod votes;
mod workflow;

pub use create::Begun;
pub use decisions::OpenApproval;
pub use killswitch::KillSwitch;
pub use policy_stats::{Latency, PolicyStats};
pub use schedule::{Fired, SCHEDULE_REQUESTER};
pub use service::ApprovalCounts;
pub use stats::{BOUNDS_SECS as HISTOGRAM_BOUNDS_SECS, Histogram};
pub use workflow::{WorkflowRollback, WorkflowTask};

// What the rooms share, for them to `use super::…`.
use decisions::{Closing, closing_message};
use gates::{GateNeed, approvers_of, describe_approvers};
use lifecycle::lock_run;
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

/// Whether a state store exists for `dir`: a PostgreSQL store (`PBC_STATE_URL`) is taken
/// to exist (opening it says otherwise); the embedded one is `DIR/state.db`.
pub fn state_store_exists(dir: &Path) -> bool {
    match crate::store::Backend::from_env() {
        Ok(Some(crate::store::Backend::Postgres(_))) | Err(_) => true,
        _ => dir.join("state.db").is_file(),
    }
}

/// `pbc state migrate`: opens the state store of `dir` (in `backend`), bringing it to the
/// newest schema; what it found and did.
pub fn migrate_state(
    dir: &Path,
    backend: &crate::store::Backend,
) -> Result<crate::db::migrate::Migrated> {
    Ok(Store::open_with(dir, backend)?.migrated)
}

/// The local runtime over one state directory.
pub struct Runtime {
    store: Store,
    clock: Arc<dyn Clock>,
    notices: Vec<Notice>,
    /// How many independent stages of a run may be stepped at once (1: one at a time).
    parallelism: usize,
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
    /// the store. The tables are in the PostgreSQL database `PBC_STATE_URL` names, when it
    /// is set; else in `DIR/state.db`.
    pub fn open(dir: &Path) -> Result<Runtime> {
        let backend = crate::store::Backend::from_env()?.unwrap_or_default();
        Runtime::open_with(dir, &backend)
    }

    /// [`Runtime::open`] with the state store's tables in `backend`.
    pub fn open_with(dir: &Path, backend: &crate::store::Backend) -> Result<Runtime> {
        // Never hand SQLite or the log appender a FIFO or a device (they would block).
        crate::files::check_kind_if_present(dir, true, "the state directory")?;
        for f in ["state.db", "audit.jsonl"] {
            crate::files::check_kind_if_present(&dir.join(f), false, "a state file")?;
        }
        let mut store = Store::open_with(dir, backend)?;
        // A tampered or unwritable log is reported (a warning here, `audit verify`); commands
        // still record in the store.
        if let Err(e) = store.flush_audit() {
            store.warn_unwritten(&e);
        }
        Ok(Runtime {
            store,
            clock: Arc::new(SystemClock),
            notices: Vec::new(),
            parallelism: 1,
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

    /// Creates a run of `c` with `input` and returns its id without executing anything (the
    /// input and the executors are checked, the run is recorded); [`Runtime::drive_run`]
    /// executes it. `pbc serve` answers with the id, then drives the run in the background.
    pub fn begin(
        &mut self,
        c: &Compiled,
        agents: &Agents,
        input: Value,
        opts: &RunOptions,
    ) -> Result<String> {
        self.create(c, agents, input, opts, None)
    }

    /// Drives a run as far as it goes (as `resume` does, deadlines applied first, without
    /// the kill-switch refusal: a latched switch stops the run at its next step instead).
    pub fn drive_run(&mut self, id: &str) -> Result<RunReport> {
        self.apply_deadlines()?;
        self.drive(id, None)?;
        self.report(id)
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

    /// Continues a run: applies deadlines, recovers stages a crash left in flight, executes
    /// what approvals allow. `agents` replaces the frozen executors (the role map stays).
    pub fn resume(&mut self, id: &str, agents: Option<&Agents>) -> Result<RunReport> {
        self.check_kill_switch("resuming a run")?;
        self.apply_deadlines()?;
        self.drive(id, agents)?;
        self.report(id)
    }

    /// Records an approval by `who` (checked against the gate's users and its
    /// roles' members, never the requester; refused after expiry). `resume` executes.
    pub fn approve(&mut self, id: &str, who: &str) -> Result<Decision> {
        self.decide(id, who, None, None)
    }

    /// Records an approval by `who` carried by a signed statement
    /// ([`crate::approval_sig`]): checked now, and again before the run goes past the gate
    /// when the run's configuration requires signatures.
    pub fn approve_signed(&mut self, id: &str, who: &str, statement: &str) -> Result<Decision> {
        self.decide(id, who, None, Some(statement))
    }

    /// Records a rejection with its reason; the run ends `rejected` (and its on-failure
    /// path runs on `resume`). The rejection is remembered for the playbook.
    pub fn reject(&mut self, id: &str, who: &str, reason: &str) -> Result<Decision> {
        if reason.trim().is_empty() {
            return Err(Error::Usage(
                "a rejection needs a reason (--reason TEXT)".into(),
            ));
        }
        self.decide(id, who, Some(reason), None)
    }
}
