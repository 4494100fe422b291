//! The on-failure path: a rejected gate and an expired gate stop the
//! run and trigger it like a failing stage; `revert-to-previous` undoes the completed actions
//! newest first, `notify-only` only notifies, `none` does nothing. Real action processes
//! (`fixtures/action.py`, which logs to `actions.log`), a loopback webhook, time injected
//! with `ManualClock`.

mod common;

use common::Hook;
use pbc_runtime::{
    Agents, Compiled, LoadOptions, ManualClock, RunOptions, RunStatus, Runtime, StageStatus, load,
};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Two actions with undo steps, then a manual gate (SLA 10 minutes) before a third.
fn playbook(on_failure: Option<&str>) -> String {
    let rollback = on_failure
        .map(|m| format!("  rollback: {{on-failure: {m}, notification: [hook]}}\n"))
        .unwrap_or_default();
    format!(
        r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {{name: rel}}
spec:
  trigger: ev
  stages:
    - name: migrate
      action: db:migrate
      params: {{id: "${{input.id}}"}}
      rollback: {{action: db:undo, params: {{id: "${{input.id}}"}}}}
    - name: scale
      action: k8s:scale
      params: {{replicas: 5}}
      rollback: {{action: k8s:scale, params: {{replicas: 2}}}}
    - name: release
      action: deploy:release
      params: {{fail: "${{input.fail}}"}}
      approval: manual
      approvers: [{{role: sre}}]
      sla: 10m
      notification:
        on-pending: [hook]
        on-approved: [hook]
        on-rejected: [hook]
        on-expired: [hook]
        on-failure: [hook]
{rollback}"#
    )
}

struct Setup {
    dir: tempfile::TempDir,
    hook: Hook,
    c: Compiled,
    agents: Agents,
    clock: Arc<ManualClock>,
    rt: Runtime,
}

fn setup(on_failure: Option<&str>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let hook = Hook::start();
    std::fs::write(
        dir.path().join(".pbc.yaml"),
        format!(
            "notifications:\n  hook: {{webhook: {{url: \"{}\", timeout: 10s, retries: 0}}}}\n",
            hook.url
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("rel.yaml"), playbook(on_failure)).unwrap();
    let c = load(&dir.path().join("rel.yaml"), &LoadOptions::default()).unwrap();
    let action = common::fixture("action.py");
    let mut text = String::from("actions:\n");
    for a in ["db:migrate", "db:undo", "k8s:scale", "deploy:release"] {
        text.push_str(&format!(
            "  \"{a}\": {{command: [python3, \"{}\"], timeout: 20s}}\n",
            action.display()
        ));
    }
    text.push_str("roles:\n  sre: [sam@example.com]\n");
    std::fs::write(dir.path().join("agents.yaml"), text).unwrap();
    let agents = Agents::from_file(&dir.path().join("agents.yaml")).unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let rt = Runtime::open(&dir.path().join("st"))
        .unwrap()
        .with_clock(clock.clone());
    Setup {
        dir,
        hook,
        c,
        agents,
        clock,
        rt,
    }
}

impl Setup {
    /// Starts a run; returns it waiting at `release`'s gate, with that gate's approval id.
    fn run_to_gate(&mut self, input: Value) -> (String, String) {
        let r = self
            .rt
            .run(
                &self.c,
                &self.agents,
                input,
                &RunOptions::requested_by("alice"),
            )
            .unwrap();
        assert_eq!(r.status, RunStatus::WaitingApproval, "{:?}", r.message);
        assert_eq!(r.stage("migrate").unwrap().status, StageStatus::Passed);
        assert_eq!(r.stage("scale").unwrap().status, StageStatus::Passed);
        let id = r.stage("release").unwrap().approval_id.clone().unwrap();
        (r.run, id)
    }

    fn actions(&self) -> Vec<String> {
        actions(self.dir.path())
    }

    fn events(&self, run: &str) -> Vec<String> {
        self.rt
            .audit_log(run)
            .unwrap()
            .events()
            .into_iter()
            .map(String::from)
            .collect()
    }

    fn entry(&self, run: &str, event: &str) -> pbc_runtime::AuditEntry {
        let log = self.rt.audit_log(run).unwrap();
        let mut found = log.entries.into_iter().filter(|e| e.event == event);
        let e = found.next().unwrap_or_else(|| panic!("no {event}"));
        assert!(found.next().is_none(), "{event} twice");
        e
    }

    fn verify(&mut self) {
        let v = self.rt.verify_audit(None).unwrap();
        assert!(v.ok(), "{:?}", v.problem);
    }

    /// Delivers the outbox (as every CLI command does when it ends); what the webhook got.
    fn delivered(&mut self) -> Vec<Value> {
        self.rt
            .deliver(pbc_runtime::delivery::DEFAULT_WAIT)
            .unwrap();
        self.hook.seen()
    }

    fn delivered_events(&mut self) -> Vec<String> {
        self.delivered()
            .iter()
            .map(|v| v["event"].as_str().unwrap_or("").to_string())
            .collect()
    }

    fn rollback_note(&mut self) -> Value {
        self.delivered()
            .into_iter()
            .find(|v| v["event"] == "rollback")
            .expect("no rollback notification")
    }
}

fn actions(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("actions.log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

const DONE: [&str; 2] = [r#"migrate {"id": "m7"}"#, r#"scale {"replicas": 5}"#];
const UNDONE: [&str; 2] = [
    r#"scale rollback {"replicas": 2}"#,
    r#"migrate rollback {"id": "m7"}"#,
];

#[test]
fn a_rejected_gate_stops_the_run_and_rolls_back_on_resume() {
    let mut s = setup(Some("revert-to-previous"));
    let (run, id) = s.run_to_gate(json!({"id": "m7", "fail": false}));
    let d = s.rt.reject(&id, "sam@example.com", "not today").unwrap();
    assert_eq!(d.run, run);
    // The decision stops the run at once; undoing executes actions, which only `resume` does.
    let r = s.rt.report(&run).unwrap();
    assert_eq!(r.status, RunStatus::Rejected);
    assert_eq!(r.stage("release").unwrap().status, StageStatus::Rejected);
    assert_eq!(s.actions(), DONE);
    let r = s.rt.resume(&run, None).unwrap();
    assert_eq!(r.status, RunStatus::Rejected, "the status keeps the cause");
    let msg = r.message.clone().unwrap();
    assert!(msg.contains("rejected by sam@example.com") && msg.contains("not today"));
    assert!(msg.contains("rolled back scale, migrate"), "{msg}");
    assert_eq!(r.stage("scale").unwrap().status, StageStatus::RolledBack);
    assert_eq!(r.stage("migrate").unwrap().status, StageStatus::RolledBack);
    assert_eq!(s.actions(), [&DONE[..], &UNDONE[..]].concat());
    assert_eq!(
        s.delivered_events(),
        ["on-pending", "on-rejected", "rollback"],
        "{:?}",
        s.hook.seen()
    );
    let on_rejected = &s.delivered()[1];
    assert_eq!(on_rejected["by"], "sam@example.com");
    assert_eq!(on_rejected["reason"], "not today");
    let note = s.rollback_note();
    assert_eq!(note["mode"], "revert-to-previous");
    assert_eq!(note["rolled_back"], json!(["scale", "migrate"]));
    let ev = s.events(&run);
    let tail: Vec<&str> = ev
        .iter()
        .map(String::as_str)
        .filter(|e| !e.starts_with("notification-"))
        .skip_while(|e| *e != "approval-rejected")
        .collect();
    assert_eq!(
        tail,
        [
            "approval-rejected",
            "run-ended",
            "rollback-started",
            "stage-rolled-back",
            "rollback-started",
            "stage-rolled-back",
            "on-failure-done"
        ]
    );
    assert_eq!(
        s.entry(&run, "on-failure-done").details["rolled_back"],
        json!(["scale", "migrate"])
    );
    // Once only.
    s.rt.resume(&run, None).unwrap();
    assert_eq!(s.actions().len(), 4);
    s.verify();
}

#[test]
fn an_expired_gate_stops_the_run_and_rolls_back_on_resume() {
    let mut s = setup(Some("revert-to-previous"));
    let (run, id) = s.run_to_gate(json!({"id": "m7", "fail": false}));
    s.clock.advance(Duration::from_secs(10 * 60 + 1));
    // Any command applies the deadline first.
    let runs = s.rt.runs().unwrap();
    assert_eq!(runs[0].status, RunStatus::Expired);
    assert_eq!(
        runs[0].waiting_on.as_deref(),
        Some("on-failure path (pbc resume)")
    );
    let r = s.rt.report(&run).unwrap();
    assert_eq!(r.stage("release").unwrap().status, StageStatus::Expired);
    assert!(r.pending.is_empty());
    assert!(matches!(
        s.rt.approve(&id, "sam@example.com"),
        Err(pbc_runtime::Error::Refused(_))
    ));
    assert_eq!(s.actions(), DONE, "expiry never approves");
    let r = s.rt.resume(&run, None).unwrap();
    assert_eq!(r.status, RunStatus::Expired);
    assert_eq!(s.rt.runs().unwrap()[0].waiting_on, None);
    assert_eq!(r.stage("scale").unwrap().status, StageStatus::RolledBack);
    assert_eq!(r.stage("migrate").unwrap().status, StageStatus::RolledBack);
    assert_eq!(s.actions(), [&DONE[..], &UNDONE[..]].concat());
    assert_eq!(
        s.delivered_events(),
        ["on-pending", "on-expired", "rollback"]
    );
    assert_eq!(
        s.rollback_note()["rolled_back"],
        json!(["scale", "migrate"])
    );
    let ended = s.entry(&run, "run-ended");
    assert_eq!(ended.details["status"], "expired");
    s.verify();
}

#[test]
fn notify_only_notifies_and_undoes_nothing() {
    let mut s = setup(Some("notify-only"));
    let (run, id) = s.run_to_gate(json!({"id": "m7", "fail": true}));
    s.rt.approve(&id, "sam@example.com").unwrap();
    let r = s.rt.resume(&run, None).unwrap();
    assert_eq!(r.status, RunStatus::Failed);
    assert_eq!(r.stage("release").unwrap().status, StageStatus::Failed);
    assert_eq!(r.stage("scale").unwrap().status, StageStatus::Passed);
    assert_eq!(r.stage("migrate").unwrap().status, StageStatus::Passed);
    assert_eq!(
        s.actions(),
        [&DONE[..], &[r#"release {"fail": true}"#]].concat()
    );
    assert_eq!(
        s.delivered_events(),
        ["on-pending", "on-approved", "on-failure", "rollback"]
    );
    let note = s.rollback_note();
    assert_eq!(note["mode"], "notify-only");
    assert_eq!(note["rolled_back"], json!([]));
    assert!(
        note["message"].as_str().unwrap().contains("failed"),
        "{note}"
    );
    assert_eq!(
        s.entry(&run, "on-failure-done").details["mode"],
        "notify-only"
    );
    assert!(!s.events(&run).iter().any(|e| e == "stage-rolled-back"));
    s.verify();
}

#[test]
fn none_does_nothing_and_neither_does_a_playbook_without_rollback() {
    for mode in [Some("none"), None] {
        let mut s = setup(mode);
        let (run, id) = s.run_to_gate(json!({"id": "m7", "fail": true}));
        s.rt.approve(&id, "sam@example.com").unwrap();
        let r = s.rt.resume(&run, None).unwrap();
        assert_eq!(r.status, RunStatus::Failed, "{mode:?}");
        assert_eq!(r.stage("scale").unwrap().status, StageStatus::Passed);
        assert_eq!(
            s.actions(),
            [&DONE[..], &[r#"release {"fail": true}"#]].concat()
        );
        // The stage's own on-failure channel still hears of the failure; no rollback note.
        assert_eq!(
            s.delivered_events(),
            ["on-pending", "on-approved", "on-failure"],
            "{mode:?}"
        );
        assert_eq!(s.entry(&run, "on-failure-done").details["mode"], "none");
        assert!(!s.events(&run).iter().any(|e| e == "stage-rolled-back"));
        s.verify();
    }
}
