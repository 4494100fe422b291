//! `pbc runner rollback`: the exit handler's on-failure path (`spec.rollback:
//! revert-to-previous`).
//!
//! The undo step of each stage the workflow completed runs in this pod, latest first, with the
//! engine of `pbc run` (the same executor, params interpolated from the stage's own run, each
//! step at most once). Which stages completed is read from the state store the stage pods
//! wrote: a PostgreSQL store shared by the pods (`state:` in `.pbc.yaml`). With a store of the
//! pod's own (an `emptyDir`), nothing tells this pod what ran: it fails closed, listing the
//! steps for a person.

use super::{Place, load, parse_json};
use crate::cli::Global;
use crate::run::fail;
use pbc_runtime::{Error, Runtime};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::ExitCode;

/// What the exit handler's rollback task was given.
pub struct Ended<'a> {
    pub playbook: &'a str,
    pub workflow: &'a str,
    pub uid: &'a str,
    /// `{{workflow.status}}`.
    pub status: &'a str,
    /// `{{workflow.failures}}` (JSON).
    pub failures: &'a str,
    /// The undo steps (JSON), latest stage first: what a person is told to undo when this
    /// pod cannot.
    pub steps: &'a str,
}

/// Exit 0: every completed stage's undo step ran (or there was none); 3: an undo step failed,
/// was not run again, or the pod cannot tell what completed.
pub fn main(g: &Global, place: &Place, e: &Ended<'_>) -> ExitCode {
    if e.status == "Succeeded" {
        return ExitCode::SUCCESS;
    }
    match run(g, place, e) {
        Ok(code) => code,
        Err(err) => fail(&err),
    }
}

fn run(g: &Global, place: &Place, e: &Ended<'_>) -> Result<ExitCode, Error> {
    let c = load(g, place, e.playbook)?;
    // A gate after an agent's output that rejected or expired: its task passed, the stage
    // did not complete (`pbc run` says `rejected` or `expired`, and undoes nothing).
    let failures = parse_json(e.failures, "--failures")?;
    if !failures.is_array() {
        return Err(Error::Usage(
            "--failures: expected the JSON list {{workflow.failures}}".into(),
        ));
    }
    let not_completed: BTreeSet<String> = super::notify::failed_nodes(e.failures)
        .into_iter()
        .filter_map(|(node, _)| node.strip_suffix("-approval-check").map(String::from))
        .collect();
    let mut rt = Runtime::open(&place.out.join("state"))?;
    if !rt.log_in_store() || e.uid.is_empty() {
        eprintln!(
            "error: playbook {} workflow {} ended {}; its undo steps were not run: this pod's state store is its own, so nothing tells it which stages completed (configure a shared PostgreSQL `state:` in .pbc.yaml). Undo by hand, for each stage that completed, latest first:\n{}",
            e.playbook, e.workflow, e.status, e.steps
        );
        return Ok(ExitCode::from(3));
    }
    let mark = rt.audit_text(super::AUDIT_READ_MAX)?.len();
    let r = rt.rollback_workflow(c.name(), e.workflow, e.uid, &not_completed);
    crate::notifications::deliver(&mut rt);
    let r = r?;
    // This pod's log: the entries the undo steps wrote.
    let text = rt.audit_text(super::AUDIT_READ_MAX)?;
    let touched: BTreeSet<&str> = r.touched.iter().map(String::as_str).collect();
    for line in text.get(mark..).unwrap_or_default().lines() {
        let ours = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|v| v.get("run").and_then(Value::as_str).map(String::from))
            .is_some_and(|run| touched.contains(run.as_str()));
        if ours {
            println!("{line}");
        }
    }
    eprintln!(
        "playbook {} workflow {} ended {}: {} stage run(s) found; rolled back: {}",
        e.playbook,
        e.workflow,
        e.status,
        r.runs,
        if r.undone.is_empty() {
            "none".to_string()
        } else {
            r.undone.join(", ")
        }
    );
    if r.failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("error: undo steps that did not run:");
    for f in &r.failed {
        eprintln!("  {f}");
    }
    Ok(ExitCode::from(3))
}
