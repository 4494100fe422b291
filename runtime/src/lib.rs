//! pbc-runtime: runs `agenticops/v1` playbooks locally with the semantics the Argo and
//! LangGraph targets have.
//!
//! ```no_run
//! use pbc_runtime::{Agents, LoadOptions, RunOptions, Runtime, StageStatus, load};
//! # fn main() -> pbc_runtime::Result<()> {
//! let playbook = load(std::path::Path::new("code-review-agent.yaml"), &LoadOptions::default())?;
//! let agents = Agents::from_file(std::path::Path::new("agents.yaml")).map_err(pbc_runtime::Error::Usage)?;
//! let mut rt = Runtime::open(std::path::Path::new(".pbc/state"))?;
//! let input = serde_json::json!({"files_changed": 5, "lines_added": 200});
//! let run = rt.run(&playbook, &agents, input, &RunOptions::requested_by("alice@example.com"))?;
//! assert_eq!(run.stage("code-analysis").map(|s| s.status), Some(StageStatus::Passed));
//! let gate = run.stage("security-review").and_then(|s| s.approval_id.clone());
//! # let _ = gate;
//! # Ok(()) }
//! ```

pub mod agents;
pub mod approval_sig;
pub mod audit;
mod audit_against;
pub mod audit_export;
mod chain;
pub mod clock;
pub mod db;
mod decide;
pub mod delivery;
mod engine;
pub mod eval;
pub mod exec;
pub mod files;
pub mod guardrails;
pub mod input;
pub mod load;
pub mod mcp;
pub mod redact;
mod report;
mod statedir;
pub mod store;
pub mod tls;

pub use agents::{Agents, ExecutorSpec};
pub use audit::{AuditEntry, Verification};
pub use audit_against::Comparison;
pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{
    ApprovalCounts, Begun, Fired, HISTOGRAM_BOUNDS_SECS, Histogram, KillSwitch, Latency,
    OpenApproval, PolicyStats, Runtime, SCHEDULE_REQUESTER, WorkflowRollback, WorkflowTask,
    default_state_dir, migrate_state, state_store_exists,
};
pub use load::{Compiled, LoadOptions, load, load_all};
pub use report::{
    Approval, ApprovalKind, ApprovalStatus, ApproverRef, AuditLog, Decision, Rejection, RunOptions,
    RunReport, RunStatus, RunSummary, StageReport, StageStatus,
};
pub use store::Backend as StateBackend;

/// What can go wrong in the runtime.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Bad usage: a missing file, an unknown id, a bad agents file (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The playbook has errors (rendered diagnostics; exit 1).
    #[error("the playbook has errors:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// The command was understood and refused: a person who may not approve, a decision
    /// after expiry (exit 1).
    #[error("{0}")]
    Refused(String),
    /// Another pbc process is executing the run.
    #[error("{0}")]
    Busy(String),
    /// The audit log was changed outside pbc.
    #[error("{0}")]
    Tampered(String),
    #[error("state store: {0}")]
    Store(String),
    #[error("{0}")]
    Io(String),
}

impl Error {
    /// The exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Invalid(_) | Error::Refused(_) | Error::Tampered(_) => 1,
            _ => 2,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
