//! `pbc runner gate`: the check after a gate's suspend. It passes on exactly `approve`, so
//! that a rejected gate and an expired suspend (Argo resumes it as Succeeded, the decision
//! unset) never let the run go on.
//!
//! Modes: `final` (exit 0 on `approve`; 1 rejected, 2 expired, 3 anything else); `level` (one
//! escalation level: `approve` → outcome `approve`; empty → outcome `expired`, exit 0, the
//! next level opens; `reject` → 1; else 3); `refuse` (a `risk: high` stage: the runbook
//! printed, exit 4). The outcome is written to `OUT/outcome`.
//!
//! An `approve` is also checked against the signed statements supplied with it (the suspend's
//! output `approval`, docs/approvals.md): when the mounted configuration sets
//! `approvals.require-signature`, or whenever one is supplied, each must verify (key, run,
//! stage, decision, playbook hash, validity, approvers, not the requester); otherwise the
//! outcome is `invalid` and the exit code 6, with the reason.

use super::{Place, agents, load};
use crate::cli::Global;
use pbc_runtime::ApproverRef;
use pbc_runtime::approval_sig::{self, Expect, Keys, Rejected};
use std::path::Path;
use std::process::ExitCode;

fn outcome(out: &Path, what: &str) {
    // The exit code decides; a missing outcome file reads as the default `""`.
    if std::fs::create_dir_all(out).is_ok() {
        let _ = std::fs::write(out.join("outcome"), what);
    }
}

/// What a signed approval is checked against.
pub struct Signed<'a> {
    pub playbook: &'a str,
    pub workflow: &'a str,
    pub stage: &'a str,
    /// The statements (whitespace or comma separated).
    pub approval: &'a str,
    /// The gate's approvers (JSON).
    pub approvers: &'a str,
}

/// Checks the statements of an `approve`. Ok(None): nothing required or supplied.
fn verify(g: &Global, place: &Place, s: &Signed<'_>) -> Result<Option<String>, String> {
    let tokens = approval_sig::split_tokens(s.approval);
    if s.playbook.is_empty() {
        // A check without its playbook (written by an older pbc): only what it was given.
        return if tokens.is_empty() {
            Ok(None)
        } else {
            Err("a signed approval was supplied, but the check does not name its playbook".into())
        };
    }
    let c = load(g, place, s.playbook).map_err(|e| e.to_string())?;
    let cfg = &c.frozen.config.approvals;
    // `min-approvals`: distinct people, each proven by a signed statement (resuming a
    // suspend is one action by one account, which counts nobody). A conditional gate asks
    // the most any of its branches asks.
    let min = c
        .playbook
        .stage(s.stage)
        .map(|st| {
            (0..st.conditions.len())
                .map(|k| st.min_approvals(Some(k)))
                .chain([st.min_approvals(None)])
                .max()
                .unwrap_or(1)
        })
        .unwrap_or(1);
    if !cfg.require_signature && tokens.is_empty() {
        if min > 1 {
            return Err(format!(
                "stage {} needs {min} distinct approvers (min-approvals): resume the suspend with {min} signed statements (`pbc approve --sign` by each approver; several statements separated by commas) (missing)",
                s.stage
            ));
        }
        return Ok(None);
    }
    let approvers: Vec<ApproverRef> = serde_json::from_str(s.approvers)
        .map_err(|e| format!("--approvers: not a list of approvers: {e}"))?;
    let roles = agents(place)
        .map_err(|e| e.to_string())?
        .with_config_roles(&c.frozen.config.roles)
        .roles;
    let requester = format!("argo:workflow/{}", s.workflow);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let x = Expect {
        run: s.workflow,
        stage: s.stage,
        decision: "approve",
        playbook_sha256: &c.frozen.resolved_sha256,
        requester: &requester,
        approvers: &approvers,
        roles: &roles,
        min_approvals: min as usize,
        now,
    };
    match approval_sig::verify_all(&tokens, &Keys::from_settings(cfg), &x) {
        Ok(v) => Ok(Some(
            v.iter()
                .map(|v| v.statement.approver.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        )),
        Err(r) => Err(reason(&r)),
    }
}

fn reason(r: &Rejected) -> String {
    format!("{} ({})", r, r.code())
}

/// Runs the check; the exit code is the task's.
pub fn check(
    g: &Global,
    place: &Place,
    gate: &str,
    mode: &str,
    decision: &str,
    runbook: &str,
    signed: &Signed<'_>,
) -> ExitCode {
    let out = &place.out;
    let (mut what, mut code, mut msg) = match (mode, decision) {
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
    if what == "approve" {
        match verify(g, place, signed) {
            Ok(None) => {}
            Ok(Some(by)) => msg = format!("{gate}: approved (signed by {by})"),
            Err(r) => {
                (what, code) = ("invalid", 6);
                msg = format!("{gate}: the approval is not accepted: {r}");
            }
        }
    }
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
