//! Runtime operations through the library: SLA expiry through escalation levels (injected
//! time, a loopback webhook), rollback of earlier actions in reverse order, rate limits (fail
//! and wait).

mod common;

use pbc_runtime::{
    Agents, ApprovalStatus, Error, LoadOptions, ManualClock, RunOptions, RunStatus, Runtime,
    StageStatus, load,
};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

fn agents(dir: &std::path::Path, actions: &[&str]) -> Agents {
    let mut text = String::from("actions:\n");
    for a in actions {
        text.push_str(&format!(
            "  \"{a}\": {{command: [python3, {}], timeout: 20s}}\n",
            common::fixture("action.py").display()
        ));
    }
    text.push_str("roles:\n  sre: [sam@example.com]\n  sre-lead: [lee@example.com]\n");
    let p = dir.join("agents.yaml");
    std::fs::write(&p, text).unwrap();
    Agents::from_file(&p).unwrap()
}

/// Accepts `n` POSTs on loopback and returns their JSON bodies.
fn webhook(n: usize) -> (String, std::thread::JoinHandle<Vec<Value>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        let mut out = Vec::new();
        for _ in 0..n {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            let mut len = 0;
            r.read_line(&mut line).unwrap();
            loop {
                line.clear();
                r.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0u8; len];
            r.read_exact(&mut body).unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .unwrap();
            out.push(serde_json::from_slice(&body).unwrap());
        }
        out
    });
    (url, h)
}

#[test]
fn an_sla_expires_through_two_escalation_levels() {
    let dir = tempfile::tempdir().unwrap();
    let (url, hook) = webhook(4);
    std::fs::write(
        dir.path().join(".pbc.yaml"),
        format!(
            "notifications:\n  hook: {{webhook: {{url: \"{url}\", timeout: 5s, retries: 0}}}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("deploy.yaml"),
        r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: deploy}
spec:
  trigger: release
  stages:
    - name: apply
      action: k8s:apply
      approval: manual
      approvers: [{role: sre}]
      sla: 30m
      escalation:
        - after: 15m
          approvers: [{role: sre-lead}]
          notify: [hook]
        - after: 15m
          approvers: [{user: cto@example.com}]
          notify: [hook]
      notification:
        on-pending: [hook]
        on-expired: [hook]
"#,
    )
    .unwrap();
    let c = load(&dir.path().join("deploy.yaml"), &LoadOptions::default()).unwrap();
    let ag = agents(dir.path(), &["k8s:apply"]);
    let clock = ManualClock::new(1_800_000_000_000);
    let mut rt = Runtime::open(&dir.path().join("st"))
        .unwrap()
        .with_clock(clock.clone());
    let r = rt
        .run(&c, &ag, json!({}), &RunOptions::requested_by("alice"))
        .unwrap();
    assert_eq!(r.status, RunStatus::WaitingApproval);
    let id = r.pending[0].id.clone();
    assert!(
        matches!(rt.approve(&id, "lee@example.com"), Err(Error::Refused(_))),
        "not yet"
    );
    clock.advance(Duration::from_secs(31 * 60));
    rt.apply_deadlines().unwrap();
    let a = rt.report(&r.run).unwrap().pending[0].clone();
    assert_eq!(a.level, 1);
    assert_eq!(a.approvers.len(), 2);
    clock.advance(Duration::from_secs(15 * 60));
    rt.apply_deadlines().unwrap();
    assert_eq!(rt.report(&r.run).unwrap().pending[0].level, 2);
    clock.advance(Duration::from_secs(15 * 60));
    let runs = rt.runs().unwrap(); // every command applies deadlines first
    assert_eq!(runs[0].status, RunStatus::Expired);
    let r = rt.report(&r.run).unwrap();
    assert_eq!(r.status, RunStatus::Expired);
    assert_eq!(r.stage("apply").unwrap().status, StageStatus::Expired);
    match rt.approve(&id, "cto@example.com") {
        Err(Error::Refused(m)) => assert!(m.contains("expired"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(
        !dir.path().join("actions.log").exists(),
        "expiry never approves"
    );
    rt.deliver(pbc_runtime::delivery::DEFAULT_WAIT).unwrap();
    let events: Vec<String> = hook
        .join()
        .unwrap()
        .iter()
        .map(|v| v["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        events,
        ["on-pending", "escalation", "escalation", "on-expired"]
    );
    assert!(rt.verify_audit(None).unwrap().ok());
}

const OPS: &str = r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: ops}
spec:
  trigger: ev
  stages:
    - name: scale-down
      action: k8s:scale
      params: {replicas: 1}
      rollback: {action: k8s:scale, params: {replicas: 3}}
    - name: migrate
      action: db:migrate
      params: {id: "${input.id}"}
      rollback: {action: db:undo, params: {id: "${input.id}"}}
    - name: verify
      action: db:check
      params: {fail: "${input.fail}"}
  rollback: {on-failure: revert-to-previous, notification: [ops-log]}
"#;

#[test]
fn a_failing_stage_rolls_back_two_earlier_actions_in_reverse_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".pbc.yaml"),
        "notifications:\n  ops-log: {file: notes.jsonl}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("ops.yaml"), OPS).unwrap();
    let c = load(&dir.path().join("ops.yaml"), &LoadOptions::default()).unwrap();
    let ag = agents(
        dir.path(),
        &["k8s:scale", "db:migrate", "db:undo", "db:check"],
    );
    // The action script logs to ./actions.log in its cwd (the agents file's directory).
    let mut rt = Runtime::open(&dir.path().join("st")).unwrap();
    let r = rt
        .run(
            &c,
            &ag,
            json!({"id": "m42", "fail": true}),
            &RunOptions::requested_by("alice"),
        )
        .unwrap();
    assert_eq!(r.status, RunStatus::RolledBack, "{:?}", r.message);
    assert_eq!(r.stage("verify").unwrap().status, StageStatus::Failed);
    assert_eq!(r.stage("migrate").unwrap().status, StageStatus::RolledBack);
    assert_eq!(
        r.stage("scale-down").unwrap().status,
        StageStatus::RolledBack
    );
    let log = std::fs::read_to_string(dir.path().join("actions.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines,
        [
            "scale-down {\"replicas\": 1}",
            "migrate {\"id\": \"m42\"}",
            "verify {\"fail\": true}",
            "migrate rollback {\"id\": \"m42\"}",
            "scale-down rollback {\"replicas\": 3}",
        ]
    );
    let events = rt.audit_log(&r.run).unwrap();
    let ev = events.events();
    let undo: Vec<&&str> = ev.iter().filter(|e| **e == "stage-rolled-back").collect();
    assert_eq!(undo.len(), 2);
    rt.deliver(pbc_runtime::delivery::DEFAULT_WAIT).unwrap();
    let notes = std::fs::read_to_string(dir.path().join("notes.jsonl")).unwrap();
    assert!(notes.contains("\"rollback\""), "{notes}");
    assert!(rt.verify_audit(None).unwrap().ok());
}

#[test]
fn a_rate_limit_is_counted_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".pbc.yaml"),
        "notifications:\n  ops-log: {file: notes.jsonl}\n",
    )
    .unwrap();
    let pb = OPS.replace(
        "  trigger: ev\n",
        "  trigger: ev\n  rate-limits:\n    \"k8s:scale\": \"1 per hour\"\n",
    );
    std::fs::write(dir.path().join("ops.yaml"), pb).unwrap();
    let c = load(&dir.path().join("ops.yaml"), &LoadOptions::default()).unwrap();
    let ag = agents(
        dir.path(),
        &["k8s:scale", "db:migrate", "db:undo", "db:check"],
    );
    let clock = ManualClock::new(1_800_000_000_000);
    let mut rt = Runtime::open(&dir.path().join("st"))
        .unwrap()
        .with_clock(clock.clone());
    let input = json!({"id": "m1", "fail": false});
    let r = rt
        .run(&c, &ag, input.clone(), &RunOptions::requested_by("alice"))
        .unwrap();
    assert_eq!(r.status, RunStatus::Succeeded);
    let r = rt
        .run(&c, &ag, input.clone(), &RunOptions::requested_by("alice"))
        .unwrap();
    assert_eq!(r.status, RunStatus::Failed);
    let e = r.stage("scale-down").unwrap().error.clone().unwrap();
    assert!(e.contains("rate limit") && e.contains("1 per hour"), "{e}");
    clock.advance(Duration::from_secs(3601));
    let r = rt
        .run(&c, &ag, input, &RunOptions::requested_by("alice"))
        .unwrap();
    assert_eq!(r.status, RunStatus::Succeeded);
    let _ = ApprovalStatus::Pending;
}

#[test]
fn a_rate_limit_with_on_rate_limit_wait_holds_the_stage_until_the_window_has_room() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".pbc.yaml"),
        "on-rate-limit: wait\nnotifications:\n  ops-log: {file: notes.jsonl}\n",
    )
    .unwrap();
    let pb = OPS.replace(
        "  trigger: ev\n",
        "  trigger: ev\n  rate-limits:\n    \"k8s:scale\": \"1 per hour\"\n",
    );
    std::fs::write(dir.path().join("ops.yaml"), pb).unwrap();
    let c = load(&dir.path().join("ops.yaml"), &LoadOptions::default()).unwrap();
    let ag = agents(
        dir.path(),
        &["k8s:scale", "db:migrate", "db:undo", "db:check"],
    );
    let clock = ManualClock::new(1_800_000_000_000);
    let mut rt = Runtime::open(&dir.path().join("st"))
        .unwrap()
        .with_clock(clock.clone());
    let input = json!({"id": "m1", "fail": false});
    let scaled = |dir: &std::path::Path| {
        std::fs::read_to_string(dir.join("actions.log"))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("scale-down "))
            .count()
    };
    let first = rt
        .run(&c, &ag, input.clone(), &RunOptions::requested_by("alice"))
        .unwrap();
    assert_eq!(first.status, RunStatus::Succeeded);
    clock.advance(Duration::from_secs(20 * 60));
    // Over the limit: the run waits instead of failing (exit 0, like a gate).
    let r = rt
        .run(&c, &ag, input, &RunOptions::requested_by("alice"))
        .unwrap();
    assert_eq!(r.status, RunStatus::WaitingApproval, "{:?}", r.message);
    assert_eq!(r.status.exit_code(), 0);
    let s = r.stage("scale-down").unwrap();
    assert_eq!(s.status, StageStatus::Pending);
    let e = s.error.clone().unwrap();
    assert!(e.contains("rate limit") && e.contains("1 per hour"), "{e}");
    assert_eq!(r.stage("migrate").unwrap().status, StageStatus::Pending);
    assert!(r.pending.is_empty(), "no person is asked");
    let summary = rt.runs().unwrap().remove(0);
    assert_eq!(summary.run, r.run);
    assert_eq!(
        summary.waiting_on.as_deref(),
        Some("rate limit (scale-down)")
    );
    assert_eq!(scaled(dir.path()), 1);
    // Still inside the window: resuming keeps it waiting, and logs the hit once.
    clock.advance(Duration::from_secs(39 * 60));
    let r2 = rt.resume(&r.run, None).unwrap();
    assert_eq!(r2.status, RunStatus::WaitingApproval);
    assert_eq!(scaled(dir.path()), 1);
    let hits: Vec<_> = rt
        .audit_log(&r.run)
        .unwrap()
        .entries
        .into_iter()
        .filter(|e| e.event == "rate-limited")
        .collect();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].details["mode"], "wait");
    // An hour after the first run's action, the window has room.
    clock.advance(Duration::from_secs(60 + 1));
    let r3 = rt.resume(&r.run, None).unwrap();
    assert_eq!(r3.status, RunStatus::Succeeded, "{:?}", r3.message);
    assert_eq!(r3.stage("scale-down").unwrap().error, None);
    assert_eq!(scaled(dir.path()), 2);
    assert!(rt.verify_audit(None).unwrap().ok());
}

#[test]
fn two_gates_past_their_sla_end_the_run_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("two.yaml"),
        r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: two}
spec:
  trigger: ev
  stages:
    - name: east
      action: k8s:apply
      needs: []
      approval: manual
      approvers: [{role: sre}]
      sla: 10m
    - name: west
      action: k8s:apply
      needs: []
      approval: manual
      approvers: [{role: sre}]
      sla: 12m
      escalation:
        - after: 5m
          approvers: [{role: sre-lead}]
"#,
    )
    .unwrap();
    let c = load(&dir.path().join("two.yaml"), &LoadOptions::default()).unwrap();
    let ag = agents(dir.path(), &["k8s:apply"]);
    let clock = ManualClock::new(1_800_000_000_000);
    let mut rt = Runtime::open(&dir.path().join("st"))
        .unwrap()
        .with_clock(clock.clone());
    let r = rt
        .run(&c, &ag, json!({}), &RunOptions::requested_by("alice"))
        .unwrap();
    assert_eq!(r.pending.len(), 2);
    // Both deadlines have passed by the time a command looks.
    clock.advance(Duration::from_secs(60 * 60));
    rt.apply_deadlines().unwrap();
    let r = rt.report(&r.run).unwrap();
    assert_eq!(r.status, RunStatus::Expired);
    let ev = rt.audit_log(&r.run).unwrap();
    let ev = ev.events();
    assert_eq!(
        ev.iter().filter(|e| **e == "run-ended").count(),
        1,
        "{ev:?}"
    );
    assert_eq!(ev.iter().filter(|e| **e == "approval-expired").count(), 1);
    assert_eq!(ev.iter().filter(|e| **e == "approval-escalated").count(), 0);
    // In time order: east's SLA (10m) passed before west's (12m): west never escalates.
    assert_eq!(r.stage("east").unwrap().status, StageStatus::Expired);
    assert_eq!(r.stage("west").unwrap().status, StageStatus::Blocked);
    assert!(r.pending.is_empty());
    assert!(rt.verify_audit(None).unwrap().ok());
}

#[test]
fn a_tampered_audit_log_is_reported_and_does_not_stop_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("one.yaml"),
        r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: one}
spec:
  trigger: ev
  stages:
    - name: apply
      action: k8s:apply
      approval: manual
      approvers: [{role: sre}]
"#,
    )
    .unwrap();
    let c = load(&dir.path().join("one.yaml"), &LoadOptions::default()).unwrap();
    let ag = agents(dir.path(), &["k8s:apply"]);
    let st = dir.path().join("st");
    let mut rt = Runtime::open(&st).unwrap();
    let r = rt
        .run(&c, &ag, json!({}), &RunOptions::requested_by("alice"))
        .unwrap();
    let id = r.pending[0].id.clone();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(st.join("audit.jsonl"))
        .unwrap();
    f.write_all(b"{\"forged\": true}\n").unwrap();
    drop(f);
    // Decisions and execution go on (their entries wait in the state store)...
    rt.approve(&id, "sam@example.com").unwrap();
    let r = rt.resume(&r.run, None).unwrap();
    assert_eq!(r.status, RunStatus::Succeeded, "{:?}", r.message);
    assert!(dir.path().join("actions.log").exists());
    // ...and the tampering is reported.
    let v = rt.verify_audit(None).unwrap();
    assert!(!v.ok());
}
