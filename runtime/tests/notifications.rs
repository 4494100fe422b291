//! Notifications: `on-pending`, `on-approved`, `on-rejected`, `on-failure` and the
//! rollback notification go into the outbox with the state change that causes them and reach
//! a loopback webhook when the outbox is delivered (as every CLI command does when it ends);
//! a failing channel (a webhook to a closed loopback port, or one nobody configured) is
//! retried, then logged in the audit log as failed, and never blocks the run.

mod common;

use common::Hook;
use pbc_runtime::{Agents, LoadOptions, RunOptions, RunStatus, Runtime, StageStatus, load};
use serde_json::{Value, json};

const PLAYBOOK: &str = r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: notes}
spec:
  trigger: ev
  stages:
    - name: prepare
      action: k8s:get
      params: {n: 1}
    - name: release
      action: deploy:release
      params: {fail: "${input.fail}"}
      approval: manual
      approvers: [{role: sre}]
      notification:
        on-pending: [dead, hook, ghost]
        on-approved: [dead, hook]
        on-rejected: [dead, hook]
        on-failure: [dead, hook]
  rollback: {on-failure: notify-only, notification: [dead, hook]}
"#;

struct Setup {
    dir: tempfile::TempDir,
    hook: Hook,
    dead: String,
    rt: Runtime,
    c: pbc_runtime::Compiled,
    agents: Agents,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let hook = Hook::start();
    let dead = common::closed_url();
    std::fs::write(
        dir.path().join(".pbc.yaml"),
        format!(
            "notifications:\n  hook: {{webhook: {{url: \"{}\", timeout: 10s, retries: 0}}}}\n  dead: {{webhook: {{url: \"{dead}\", timeout: 2s, retries: 1}}}}\nseverity: {{PB2024: allow}}\n",
            hook.url
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.yaml"), PLAYBOOK).unwrap();
    let c = load(&dir.path().join("notes.yaml"), &LoadOptions::default()).unwrap();
    let action = common::fixture("action.py");
    std::fs::write(
        dir.path().join("agents.yaml"),
        format!(
            "actions:\n  \"k8s:get\": {{command: [python3, \"{a}\"]}}\n  \"deploy:release\": {{command: [python3, \"{a}\"]}}\nroles:\n  sre: [sam@example.com]\n",
            a = action.display()
        ),
    )
    .unwrap();
    let agents = Agents::from_file(&dir.path().join("agents.yaml")).unwrap();
    let rt = Runtime::open(&dir.path().join("st")).unwrap();
    Setup {
        dir,
        hook,
        dead,
        rt,
        c,
        agents,
    }
}

impl Setup {
    fn start(&mut self, fail: bool) -> (String, String) {
        let r = self
            .rt
            .run(
                &self.c,
                &self.agents,
                json!({"fail": fail}),
                &RunOptions::requested_by("alice"),
            )
            .unwrap();
        assert_eq!(r.status, RunStatus::WaitingApproval);
        let id = r.stage("release").unwrap().approval_id.clone().unwrap();
        self.deliver();
        (r.run, id)
    }

    /// What a CLI command does when it ends.
    fn deliver(&mut self) {
        self.rt
            .deliver(pbc_runtime::delivery::DEFAULT_WAIT)
            .unwrap();
    }

    /// `(event, channel, on)` of the run's notification entries.
    fn notes(&self, run: &str) -> Vec<(String, String, String)> {
        self.rt
            .audit_log(run)
            .unwrap()
            .entries
            .into_iter()
            .filter(|e| e.event.starts_with("notification-"))
            .map(|e| {
                (
                    e.event.clone(),
                    e.details["channel"].as_str().unwrap_or("").to_string(),
                    e.details["on"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn errors(&self, run: &str, channel: &str) -> Vec<String> {
        self.rt
            .audit_log(run)
            .unwrap()
            .entries
            .into_iter()
            .filter(|e| e.event == "notification-failed" && e.details["channel"] == channel)
            .map(|e| e.details["error"].as_str().unwrap().to_string())
            .collect()
    }
}

fn note(event: &str, channel: &str, on: &str) -> (String, String, String) {
    (event.into(), channel.into(), on.into())
}

#[test]
fn a_failing_channel_is_logged_and_never_blocks_the_run() {
    let mut s = setup();
    let (run, id) = s.start(true);
    // The gate was asked although two of its three channels failed.
    let r = s.rt.report(&run).unwrap();
    assert_eq!(
        r.stage("release").unwrap().status,
        StageStatus::WaitingApproval
    );
    s.rt.approve(&id, "sam@example.com").unwrap();
    s.deliver();
    let r = s.rt.resume(&run, None).unwrap();
    s.deliver();
    // The run went to its end: the action ran, failed, and the on-failure path ran.
    assert_eq!(r.status, RunStatus::Failed, "{:?}", r.message);
    assert_eq!(r.stage("release").unwrap().status, StageStatus::Failed);
    let log = std::fs::read_to_string(s.dir.path().join("actions.log")).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");
    // Each notification was queued once, then delivered or given up per channel.
    let mut notes = s.notes(&run);
    notes.sort();
    let mut want = vec![
        note("notification-queued", "", "on-pending"),
        note("notification-failed", "dead", "on-pending"),
        note("notification-sent", "hook", "on-pending"),
        note("notification-failed", "ghost", "on-pending"),
        note("notification-queued", "", "on-approved"),
        note("notification-failed", "dead", "on-approved"),
        note("notification-sent", "hook", "on-approved"),
        note("notification-queued", "", "on-failure"),
        note("notification-failed", "dead", "on-failure"),
        note("notification-sent", "hook", "on-failure"),
        note("notification-queued", "", "rollback"),
        note("notification-failed", "dead", "rollback"),
        note("notification-sent", "hook", "rollback"),
    ];
    want.sort();
    assert_eq!(notes, want);
    // Why, in the log: the closed port, after its retry; the channel nobody configured
    // (which `pbc check` refuses unless its PB2024 is allowed, as here).
    let port = s
        .dead
        .trim_start_matches("http://")
        .trim_end_matches("/hook");
    for e in s.errors(&run, "dead") {
        assert!(e.contains(port) && e.contains("(after 2 attempts)"), "{e}");
    }
    let ghost = s.errors(&run, "ghost");
    assert!(ghost[0].contains("not configured"), "{ghost:?}");
    assert_eq!(
        s.hook.events(),
        ["on-pending", "on-approved", "on-failure", "rollback"]
    );
    assert!(s.rt.verify_audit(None).unwrap().ok());
}

#[test]
fn on_approved_on_rejected_and_on_failure_reach_a_loopback_webhook() {
    let mut s = setup();
    // Approved, then the action fails.
    let (run1, id1) = s.start(true);
    s.rt.approve(&id1, "sam@example.com").unwrap();
    s.rt.resume(&run1, None).unwrap();
    s.deliver();
    // Rejected.
    let (run2, id2) = s.start(false);
    s.rt.reject(&id2, "sam@example.com", "change freeze")
        .unwrap();
    s.deliver();
    let seen = s.hook.seen();
    let by_event = |run: &str, event: &str| -> Value {
        seen.iter()
            .find(|v| v["run"] == run && v["event"] == event)
            .unwrap_or_else(|| panic!("no {event} for {run}: {seen:?}"))
            .clone()
    };
    let pending = by_event(&run1, "on-pending");
    assert_eq!(pending["approval"], id1.as_str());
    assert_eq!(pending["playbook"], "notes");
    assert_eq!(pending["stage"], "release");
    assert!(
        pending["message"]
            .as_str()
            .unwrap()
            .contains(&format!("Approval {id1}")),
        "{pending}"
    );
    let approved = by_event(&run1, "on-approved");
    assert_eq!(approved["approval"], id1.as_str());
    assert_eq!(approved["by"], "sam@example.com");
    let failure = by_event(&run1, "on-failure");
    assert_eq!(failure["stage"], "release");
    let m = failure["message"].as_str().unwrap();
    assert!(
        m.contains("stage release failed") && m.contains("on purpose"),
        "{m}"
    );
    let rejected = by_event(&run2, "on-rejected");
    assert_eq!(rejected["approval"], id2.as_str());
    assert_eq!(rejected["by"], "sam@example.com");
    assert_eq!(rejected["reason"], "change freeze");
    assert!(
        rejected["message"]
            .as_str()
            .unwrap()
            .contains("change freeze")
    );
    for v in &seen {
        assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{v}");
    }
    assert!(s.rt.verify_audit(None).unwrap().ok());
}
