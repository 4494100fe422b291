//! `pbc runner gate`: the check after a gate's suspend. It passes on exactly `approve`, so
//! that a rejected gate and an expired suspend (Argo resumes it as Succeeded, the decision
//! unset) never let the run go on.
//!
//! Modes: `final` (exit 0 on `approve`; 1 rejected, 2 expired, 3 anything else); `level` (one
//! escalation level: `approve` → outcome `approve`; empty → outcome `expired`, exit 0, the
//! next level opens; `reject` → 1; else 3); `refuse` (a `risk: high` stage: the runbook
//! printed, exit 4). The outcome is written to `OUT/outcome`.

use std::path::Path;
use std::process::ExitCode;

fn outcome(out: &Path, what: &str) {
    // The exit code decides; a missing outcome file reads as the default `""`.
    if std::fs::create_dir_all(out).is_ok() {
        let _ = std::fs::write(out.join("outcome"), what);
    }
}

/// Runs the check; the exit code is the task's.
pub fn check(out: &Path, gate: &str, mode: &str, decision: &str, runbook: &str) -> ExitCode {
    let (what, code, msg) = match (mode, decision) {
        ("refuse", _) => (
            "refused",
            4,
            format!("{gate}: refused (risk: high); nothing was executed. Runbook:\n{runbook}"),
        ),
        ("level" | "final", "approve") => ("approve", 0, format!("{gate}: approved")),
        ("level" | "final", "reject") => ("rejected", 1, format!("{gate}: rejected")),
        ("level", "") => (
            "expired",
            0,
            format!("{gate}: no decision before the deadline"),
        ),
        ("final", "" | "expired") => ("expired", 2, format!("{gate}: expired without approval")),
        ("level" | "final", d) => ("invalid", 3, format!("{gate}: not a decision: {d}")),
        (m, _) => ("", 5, format!("{gate}: unknown mode: {m}")),
    };
    if !what.is_empty() {
        outcome(out, what);
    }
    if code == 0 {
        println!("{msg}");
    } else {
        eprintln!("{msg}");
    }
    ExitCode::from(code)
}
