//! `begin_remembered`: the runs an idempotent request starts and the answer remembered for
//! its key are one transaction, so a crash (or any failure) between them cannot leave runs
//! that a replay would start again.

mod common;

use pbc_runtime::{Agents, LoadOptions, RunOptions, Runtime, load};
use serde_json::json;

const PLAYBOOK: &str = "apiVersion: agenticops/v1
kind: Playbook
metadata: {name: NAME}
spec:
  trigger: release
  stages:
    - name: apply
      action: k8s:apply
";

fn setup() -> (tempfile::TempDir, Vec<pbc_runtime::Compiled>, Agents) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut cs = Vec::new();
    for name in ["one", "two"] {
        let p = d.join(format!("{name}.yaml"));
        std::fs::write(&p, PLAYBOOK.replace("NAME", name)).unwrap();
        cs.push(load(&p, &LoadOptions::default()).unwrap());
    }
    std::fs::write(
        d.join("agents.yaml"),
        format!(
            "actions:\n  \"k8s:apply\": {{command: [python3, {}]}}\n",
            common::fixture("action.py").display()
        ),
    )
    .unwrap();
    let agents = Agents::from_file(&d.join("agents.yaml")).unwrap();
    (dir, cs, agents)
}

fn run_count(dir: &std::path::Path) -> i64 {
    let c = rusqlite::Connection::open(dir.join("st/state.db")).unwrap();
    c.query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_key_starts_its_runs_once_and_answers_them_again() {
    let (dir, cs, agents) = setup();
    let mut rt = Runtime::open(&dir.path().join("st")).unwrap();
    let starts: Vec<_> = cs.iter().map(|c| (c, json!({}))).collect();
    let opts = RunOptions::requested_by("event:release");
    let first = rt
        .begin_remembered(&starts, &agents, &opts, Some("event:release:k1"))
        .unwrap();
    assert!(!first.replayed);
    assert_eq!(first.runs.len(), 2);
    assert_ne!(first.runs[0], first.runs[1]);
    let again = rt
        .begin_remembered(&starts, &agents, &opts, Some("event:release:k1"))
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.runs, first.runs);
    assert_eq!(run_count(dir.path()), 2);
    // The remembered answer is what the first request answered.
    assert_eq!(
        rt.remembered("event:release:k1").unwrap().as_deref(),
        Some(json!({"runs": first.runs}).to_string().as_str())
    );
    // Another key starts new runs; no key remembers nothing.
    let other = rt
        .begin_remembered(&starts, &agents, &opts, Some("event:release:k2"))
        .unwrap();
    assert!(!other.replayed);
    rt.begin_remembered(&starts[..1], &agents, &opts, None)
        .unwrap();
    assert_eq!(run_count(dir.path()), 5);
}

#[test]
fn when_remembering_fails_no_run_exists() {
    let (dir, cs, agents) = setup();
    let mut rt = Runtime::open(&dir.path().join("st")).unwrap();
    // The store refuses to remember an idempotency key, as if the process died there.
    let c = rusqlite::Connection::open(dir.path().join("st/state.db")).unwrap();
    c.execute_batch(
        "CREATE TRIGGER no_memo BEFORE INSERT ON meta WHEN NEW.key LIKE 'idempotency:%' \
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
    )
    .unwrap();
    let starts: Vec<_> = cs.iter().map(|c| (c, json!({}))).collect();
    let opts = RunOptions::requested_by("event:release");
    let r = rt.begin_remembered(&starts, &agents, &opts, Some("event:release:k1"));
    assert!(r.is_err(), "{r:?}");
    assert_eq!(
        run_count(dir.path()),
        0,
        "runs outlived their remembered answer"
    );
    // Nothing half-written in the audit log either.
    let entries: i64 = c
        .query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))
        .unwrap();
    assert_eq!(entries, 0);
}
