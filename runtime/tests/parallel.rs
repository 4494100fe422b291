//! Independent stages run in parallel when the runtime allows it, and the run's audit chain
//! stays exact; one at a time otherwise.

mod common;

use pbc_runtime::{Agents, LoadOptions, RunOptions, RunStatus, Runtime, load};
use serde_json::json;

const PLAYBOOK: &str = r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: fan}
spec:
  trigger: ev
  stages:
    - name: east
      action: k8s:apply
      params: {sleep: 1}
      needs: []
    - name: west
      action: k8s:apply
      params: {sleep: 1}
      needs: []
    - name: north
      action: k8s:apply
      params: {sleep: 1}
      needs: []
    - name: join
      action: k8s:apply
      needs: [east, west, north]
"#;

/// Runs the playbook with `parallelism`; returns each stage's (name, started_at,
/// finished_at) from the store.
fn run_with(parallelism: usize) -> Vec<(String, i64, i64)> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("fan.yaml"), PLAYBOOK).unwrap();
    std::fs::write(
        d.join("agents.yaml"),
        format!(
            "actions:\n  \"k8s:apply\": {{command: [python3, {}], timeout: 30s}}\n",
            common::fixture("action.py").display()
        ),
    )
    .unwrap();
    let c = load(&d.join("fan.yaml"), &LoadOptions::default()).unwrap();
    let agents = Agents::from_file(&d.join("agents.yaml")).unwrap();
    let mut rt = Runtime::open(&d.join("st"))
        .unwrap()
        .with_parallelism(parallelism);
    let r = rt
        .run(&c, &agents, json!({}), &RunOptions::requested_by("alice"))
        .unwrap();
    assert_eq!(r.status, RunStatus::Succeeded, "{r:?}");
    // Each stage ran once, and the chain verifies.
    let log = std::fs::read_to_string(d.join("actions.log")).unwrap();
    assert_eq!(log.lines().count(), 4, "{log}");
    assert!(rt.verify_audit(None).unwrap().ok());
    let audit = rt.audit_log(&r.run).unwrap();
    let started = audit
        .entries
        .iter()
        .filter(|e| e.event == "stage-started")
        .count();
    assert_eq!(started, 4);
    let conn = rusqlite::Connection::open(d.join("st/state.db")).unwrap();
    let mut st = conn
        .prepare("SELECT name, started_at, finished_at FROM stages ORDER BY idx")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn overlap(a: &(String, i64, i64), b: &(String, i64, i64)) -> bool {
    a.1 < b.2 && b.1 < a.2
}

#[test]
fn independent_stages_overlap_with_parallelism() {
    let s = run_with(3);
    let (east, west, north, join) = (&s[0], &s[1], &s[2], &s[3]);
    assert!(
        overlap(east, west) && overlap(west, north) && overlap(east, north),
        "{s:?}"
    );
    // `join` needs all three: it starts after each ended.
    for x in [east, west, north] {
        assert!(join.1 >= x.2, "{s:?}");
    }
}

#[test]
fn one_at_a_time_without_parallelism() {
    let s = run_with(1);
    for (i, a) in s.iter().enumerate() {
        for b in &s[i + 1..] {
            assert!(!overlap(a, b), "{s:?}");
        }
    }
}

#[test]
fn parallelism_is_bounded() {
    // Two at once: of the three independent stages, never all three overlap.
    let s = run_with(2);
    let (east, west, north) = (&s[0], &s[1], &s[2]);
    let all_three = overlap(east, west) && overlap(west, north) && overlap(east, north);
    assert!(!all_three, "{s:?}");
    assert!(overlap(east, west), "{s:?}");
}
