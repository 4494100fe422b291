//! The verified audit chain as the authority on decisions.
//!
//! The state store says what an approval's status is; the audit chain says who decided it.
//! Someone who can write `state.db` can set an approval to `approved` in one SQL statement;
//! forging the matching `approval-granted` entry means rewriting the chain consistently in
//! both the store and the log. So before a run acts on a decision, the decision must be in
//! the verified chain (the log checked against the hashes the store recorded, plus the
//! entries still waiting in the store, each sealed and chained), or the run stops. `pbc audit
//! verify` cross-checks the store's decisions, approval flags and run statuses against the
//! chain ([`cross_check`]).

use crate::audit::{self, AuditEntry, GENESIS};
use crate::db::params;
use crate::report::{Approval, ApprovalStatus, RunStatus};
use crate::store::Store;
use crate::{Error, Result};
use serde_json::Value;

/// Every entry of the verified chain: the file's (verified against the store's hashes) and
/// those still waiting in the store. Err: why the chain cannot be trusted.
pub(crate) fn entries(store: &Store) -> Result<std::result::Result<Vec<AuditEntry>, String>> {
    let path = store.audit_path();
    // One snapshot of the store's side: other processes (a server's workers, the CLI) may
    // append and flush entries while this reads, so the hashes, the waiting entries and the
    // file's length pbc wrote are read together, and of the file only those bytes are read
    // (the file only grows at its end; a line being appended is not read half-written).
    let snap = store.audit_snapshot()?;
    let bytes = snap.bytes;
    // Read line by line, bounded (the log is never held whole): once to verify, once for
    // the entries.
    let open = || -> Result<Box<dyn std::io::BufRead>> {
        if !path.exists() {
            return Ok(Box::new(std::io::empty()));
        }
        let f = crate::files::open_regular(&path, "the audit log")?;
        Ok(Box::new(std::io::BufReader::new(std::io::Read::take(
            f, bytes,
        ))))
    };
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    let hashes = snap.hashes;
    let pending = snap.pending.len();
    let written = hashes.len().saturating_sub(pending);
    let v = match audit::verify_reader(&mut open()?, Some(&hashes[..written])) {
        Ok(v) => v,
        Err(e) => return Ok(Err(io(e))),
    };
    if let Some(p) = &v.problem
        && p.line <= written
    {
        return Ok(Err(format!(
            "the audit log does not verify (entry #{}, line {}: {})",
            p.seq, p.line, p.message
        )));
    }
    let mut out = match audit::read_entries(&mut open()?) {
        Ok(entries) => entries,
        Err(e) => return Ok(Err(io(e))),
    };
    if out.len() < written {
        return Ok(Err(format!(
            "the audit log holds {} entries, but the state store recorded {written} as written",
            out.len()
        )));
    }
    out.truncate(written);
    let mut prev = hashes
        .get(written.wrapping_sub(1))
        .filter(|_| written > 0)
        .cloned()
        .unwrap_or_else(|| GENESIS.to_string());
    for (seq, line) in snap.pending {
        let Ok(e) = serde_json::from_str::<AuditEntry>(&line) else {
            return Ok(Err(format!(
                "audit entry #{seq} waiting in the state store is not an entry"
            )));
        };
        let (sealed, hash) = audit::seal(&e);
        let recorded = hashes.get((seq as usize).wrapping_sub(1));
        if sealed != line || recorded != Some(&hash) || e.seq != seq || e.prev != prev {
            return Ok(Err(format!(
                "audit entry #{seq} waiting in the state store does not match its recorded hash or does not chain"
            )));
        }
        prev = hash;
        out.push(e);
    }
    Ok(Ok(out))
}

fn about<'a>(e: &'a AuditEntry, event: &str, approval: &str) -> Option<&'a AuditEntry> {
    (e.event == event && e.details.get("approval").and_then(Value::as_str) == Some(approval))
        .then_some(e)
}

/// One approval of a gate in the chain: who, and the signed statement its entry carries.
pub(crate) type Vote = (String, Option<String>);

/// Whether `a` (approved in the store) was granted, by the person the store names, in the
/// verified chain; for a gate that needs several people, also that the chain has an
/// approval of it by as many distinct people. Err: a message for the run's error.
/// Ok: each approval, in order: who, and the signed statement its entry carries, if any.
pub(crate) fn confirm_granted(
    store: &Store,
    a: &Approval,
) -> Result<std::result::Result<Vec<Vote>, String>> {
    let entries = match entries(store)? {
        Ok(e) => e,
        Err(why) => {
            return Ok(Err(format!(
                "approval {} cannot be confirmed: {why}; nothing was run (see `pbc audit verify`)",
                a.id
            )));
        }
    };
    let mine = |e: &&AuditEntry, event: &str| {
        about(e, event, &a.id).is_some() && e.run.as_deref() == Some(a.run.as_str())
    };
    let granted = entries
        .iter()
        .find(|e| mine(e, "approval-granted") && Some(e.actor.as_str()) == a.decided_by.as_deref());
    let Some(g) = granted else {
        return Ok(Err(format!(
            "approval {} is `approved` in the state store, but the verified audit chain has no approval-granted entry for it{}: the state was changed outside pbc; nothing was run (see `pbc audit verify`)",
            a.id,
            a.decided_by
                .as_deref()
                .map(|b| format!(" by {b}"))
                .unwrap_or_default()
        )));
    };
    let statement = |e: &AuditEntry| {
        e.details
            .get("statement")
            .and_then(Value::as_str)
            .map(String::from)
    };
    let mut votes: Vec<Vote> = Vec::new();
    if a.min_approvals > 1 {
        for e in entries.iter().filter(|e| mine(e, "approval-recorded")) {
            if !votes
                .iter()
                .any(|(w, _)| crate::agents::same_person(w, &e.actor))
            {
                votes.push((e.actor.clone(), statement(e)));
            }
        }
    }
    if !votes
        .iter()
        .any(|(w, _)| crate::agents::same_person(w, &g.actor))
    {
        votes.push((g.actor.clone(), statement(g)));
    }
    if (votes.len() as u32) < a.min_approvals {
        return Ok(Err(format!(
            "approval {} needs {} distinct approvers, and the verified audit chain has {} ({}): the state was changed outside pbc; nothing was run (see `pbc audit verify`)",
            a.id,
            a.min_approvals,
            votes.len(),
            votes
                .iter()
                .map(|(w, _)| w.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(Ok(votes))
}

/// Whether the chain has a granted approval of one of `kinds` for stage `stage` of run `run`
/// (a stage whose gate or risk the store says was approved). Err: a message.
pub(crate) fn confirm_stage(
    store: &Store,
    run: &str,
    stage: &str,
    what: &str,
    kinds: &[&str],
) -> Result<std::result::Result<(), String>> {
    let entries = match entries(store)? {
        Ok(e) => e,
        Err(why) => {
            return Ok(Err(format!(
                "the {what} of stage {stage} cannot be confirmed: {why}; nothing was run (see `pbc audit verify`)"
            )));
        }
    };
    let ok = entries.iter().any(|e| {
        e.event == "approval-granted"
            && e.run.as_deref() == Some(run)
            && e.stage.as_deref() == Some(stage)
            && e.details
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| kinds.contains(&k))
    });
    Ok(if ok {
        Ok(())
    } else {
        Err(format!(
            "the state store says the {what} of stage {stage} was approved, but the verified audit chain has no approval-granted entry for it: the state was changed outside pbc; nothing was run (see `pbc audit verify`)"
        ))
    })
}

fn store_err(e: crate::db::DbError) -> Error {
    Error::Store(e.to_string())
}

/// What in the store disagrees with the chain: decisions, the stages' approval flags, run
/// statuses. Empty when they agree.
pub(crate) fn cross_check(store: &Store, entries: &[AuditEntry]) -> Result<Vec<String>> {
    type ApprovalRow = (String, String, String, Option<String>);
    let (approvals, flags, runs) = store.read(|c| {
        let approvals: Vec<ApprovalRow> = c
            .prepare("SELECT id, run, status, decided_by FROM approvals ORDER BY opened_at, id")
            .map_err(store_err)?
            .query_map(params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .map_err(store_err)?
            .collect::<std::result::Result<_, _>>()
            .map_err(store_err)?;
        let flags: Vec<(String, String, bool, bool)> = c
            .prepare("SELECT run, name, gate_approved, risk_approved FROM stages WHERE gate_approved != 0 OR risk_approved != 0 ORDER BY run, idx")
            .map_err(store_err)?
            .query_map(params![], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<i64>(2)? != 0, r.get::<i64>(3)? != 0))
            })
            .map_err(store_err)?
            .collect::<std::result::Result<_, _>>()
            .map_err(store_err)?;
        let runs: Vec<(String, String)> = c
            .prepare("SELECT id, status FROM runs ORDER BY created_at, id")
            .map_err(store_err)?
            .query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(store_err)?
            .collect::<std::result::Result<_, _>>()
            .map_err(store_err)?;
        Ok((approvals, flags, runs))
    })?;
    let mut out = Vec::new();
    for (id, run, status, by) in &approvals {
        if !entries
            .iter()
            .any(|e| about(e, "approval-requested", id).is_some())
        {
            out.push(format!(
                "approval {id} (run {run}) is in the state store, but the audit chain never recorded it being asked"
            ));
            continue;
        }
        let decided: Vec<&AuditEntry> = entries
            .iter()
            .filter(|e| {
                ["approval-granted", "approval-rejected", "approval-expired"]
                    .iter()
                    .any(|ev| about(e, ev, id).is_some())
            })
            .collect();
        let want = match ApprovalStatus::parse(status) {
            Some(ApprovalStatus::Approved) => Some("approval-granted"),
            Some(ApprovalStatus::Rejected) => Some("approval-rejected"),
            Some(ApprovalStatus::Expired) => Some("approval-expired"),
            Some(ApprovalStatus::Pending | ApprovalStatus::Cancelled) => None,
            None => {
                out.push(format!(
                    "approval {id} (run {run}) has status `{status}` in the state store, which pbc never writes"
                ));
                continue;
            }
        };
        let by_ok = |e: &AuditEntry| {
            e.event == "approval-expired" || Some(e.actor.as_str()) == by.as_deref()
        };
        match (want, decided.as_slice()) {
            (None, []) => {}
            (Some(w), [e]) if e.event == w && by_ok(e) => {}
            (None, [e, ..]) => out.push(format!(
                "approval {id} (run {run}) is `{status}` in the state store, but the audit chain records {} by {} at {}",
                e.event, e.actor, e.time
            )),
            (Some(_), []) => out.push(format!(
                "approval {id} (run {run}) is `{status}`{} in the state store, but the audit chain records no decision for it",
                by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default()
            )),
            (Some(_), [e]) => out.push(format!(
                "approval {id} (run {run}) is `{status}`{} in the state store, but the audit chain records {} by {} at {}",
                by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default(),
                e.event,
                e.actor,
                e.time
            )),
            (Some(_), many) => out.push(format!(
                "approval {id} (run {run}) was decided {} times in the audit chain",
                many.len()
            )),
        }
    }
    for (run, stage, gate, risk) in &flags {
        let granted = |kinds: &[&str]| {
            entries.iter().any(|e| {
                e.event == "approval-granted"
                    && e.run.as_deref() == Some(run.as_str())
                    && e.stage.as_deref() == Some(stage.as_str())
                    && e.details
                        .get("kind")
                        .and_then(Value::as_str)
                        .is_some_and(|k| kinds.contains(&k))
            })
        };
        if *gate && !granted(&["gate"]) {
            out.push(format!(
                "stage {stage} of run {run} has its gate approved in the state store, but the audit chain records no such approval"
            ));
        }
        if *risk && !granted(&["gate", "stage-risk"]) {
            out.push(format!(
                "stage {stage} of run {run} has its risk approved in the state store, but the audit chain records no such approval"
            ));
        }
    }
    for (run, status) in &runs {
        if !entries
            .iter()
            .any(|e| e.event == "run-started" && e.run.as_deref() == Some(run.as_str()))
        {
            out.push(format!(
                "run {run} is in the state store, but the audit chain never recorded it starting"
            ));
            continue;
        }
        let ended: Option<String> = entries
            .iter()
            .filter(|e| {
                e.run.as_deref() == Some(run.as_str())
                    && (e.event == "run-ended" || e.event == "on-failure-done")
            })
            .filter_map(|e| e.details.get("status").and_then(Value::as_str))
            .next_back()
            .map(String::from);
        let final_ = RunStatus::parse(status).is_some_and(RunStatus::is_final);
        match ended {
            Some(e) if !final_ => out.push(format!(
                "run {run} is `{status}` in the state store, but the audit chain records it ended `{e}`"
            )),
            Some(e) if e != *status => out.push(format!(
                "run {run} is `{status}` in the state store, but the audit chain records it ended `{e}`"
            )),
            None if final_ => out.push(format!(
                "run {run} is `{status}` in the state store, but the audit chain never recorded it ending"
            )),
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(i: u64) -> AuditEntry {
        AuditEntry {
            seq: 0,
            time: "2027-01-01T00:00:00.000Z".into(),
            run: Some("run-1".into()),
            stage: None,
            event: "run-started".into(),
            actor: "pbc".into(),
            compliance: Vec::new(),
            details: json!({"i": i}),
            prev: String::new(),
            hash: String::new(),
        }
    }

    /// Another process appending and flushing entries while the chain is read (a server's
    /// workers deciding approvals at once) never makes a sound chain look broken: the
    /// store's side is read in one snapshot and the file only up to what pbc marked.
    #[test]
    fn the_chain_reads_sound_while_another_writer_appends_and_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = Store::open(dir.path()).unwrap();
        writer.tx(|t| t.audit(entry(0)).map(|_| ())).unwrap();
        let path = dir.path().to_path_buf();
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let done = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicU64::new(0));
        let (stop, counted) = (done.clone(), reads.clone());
        let reader = std::thread::spawn(move || -> std::result::Result<(), String> {
            let store = Store::open(&path).unwrap();
            loop {
                entries(&store).unwrap()?;
                counted.fetch_add(1, Ordering::SeqCst);
                if stop.load(Ordering::SeqCst) {
                    return Ok(());
                }
            }
        });
        for i in 1..400 {
            if i == 200 {
                // Half way, wait for the reader (opening a store takes a while on a loaded
                // machine), so that reads overlap the rest of the writes.
                while reads.load(Ordering::SeqCst) == 0 && !reader.is_finished() {
                    std::thread::yield_now();
                }
            }
            // Two entries per transaction; each commit flushes what waits.
            writer
                .tx(|t| {
                    t.audit(entry(i))?;
                    t.audit(entry(i)).map(|_| ())
                })
                .unwrap();
        }
        done.store(true, Ordering::SeqCst);
        reader.join().unwrap().unwrap_or_else(|why| panic!("{why}"));
        assert!(reads.load(Ordering::SeqCst) > 0);
        assert_eq!(entries(&writer).unwrap().unwrap().len(), 799);
    }
}
