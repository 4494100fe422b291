//! Two-person rules (`min-approvals`) enforced by the engine, through the `pbc` binary and
//! through `pbc serve`: a gate that needs two distinct people waits after the first
//! approval, refuses the same person twice (however the address is spelled), is decided
//! by the second, and a conditional branch asks for its own number. The audit log records
//! each approval, and the chain is what the engine confirms before going past the gate.

mod serve_common;

use serde_json::Value;
use serve_common::Server;
use std::path::Path;
use std::process::{Command, Output};

fn pbc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(args)
        .current_dir(dir)
        .env_remove("PBC_STATE_DIR")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

const PLAYBOOK: &str = r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: two-person}
spec:
  trigger: ev
  stages:
    - name: plan
      agent: bot
      prompt: Plan.
    - name: apply
      agent: bot
      prompt: Apply.
      approval: manual
      approvers: [{role: sre}]
      min-approvals: 2
    - name: finish
      agent: bot
      prompt: Finish.
      approval: conditional
      approvers: [{role: sre}]
      conditions:
        - if: input.big == true
          then: manual
          min-approvals: 3
        - else: manual
"#;

fn setup(input: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    std::fs::write(dir.join("pb.yaml"), PLAYBOOK).unwrap();
    std::fs::create_dir(dir.join("recorded")).unwrap();
    for s in ["plan", "apply", "finish"] {
        std::fs::write(dir.join(format!("recorded/{s}.json")), r#"{"ok": true}"#).unwrap();
    }
    std::fs::write(
        dir.join("agents.yaml"),
        "agents:\n  bot: {fixture: recorded/}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join(".pbc.yaml"),
        "roles:\n  sre: [ann@example.com, bob@example.com, cy@example.com]\n",
    )
    .unwrap();
    std::fs::write(dir.join("in.json"), input).unwrap();
    d
}

fn start(dir: &Path) -> (String, String) {
    let o = pbc(
        dir,
        &[
            "run",
            "pb.yaml",
            "--input",
            "in.json",
            "--agents",
            "agents.yaml",
            "--state",
            "st",
            "--as",
            "dev@example.com",
            "--format",
            "json",
        ],
    );
    let v = json_of(&o);
    assert_eq!(v["status"], "waiting-approval", "{v}");
    let id = v["stages"]["apply"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    (v["run"].as_str().unwrap().to_string(), id)
}

fn approve(dir: &Path, id: &str, who: &str) -> Output {
    pbc(dir, &["approve", id, "--as", who, "--state", "st"])
}

fn resume(dir: &Path, run: &str) -> Value {
    json_of(&pbc(
        dir,
        &["resume", run, "--state", "st", "--format", "json"],
    ))
}

fn audit(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("st/audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_two_person_gate_waits_for_a_second_distinct_approver() {
    let d = setup(r#"{"big": false}"#);
    let dir = d.path();
    let (run, id) = start(dir);

    // The first approval is recorded; the gate still waits.
    let o = approve(dir, &id, "ann@example.com");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("1 of 2 distinct approvers (ann@example.com)"),
        "{}",
        text(&o)
    );
    let v = resume(dir, &run);
    assert_eq!(v["status"], "waiting-approval", "{v}");
    assert_eq!(v["stages"]["apply"]["status"], "waiting-approval", "{v}");

    // The same person again, spelled otherwise: refused, nothing recorded.
    let o = approve(dir, &id, "ANN@example.com ");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("already approved"), "{}", text(&o));
    // The requester never counts.
    let o = approve(dir, &id, "dev@example.com");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v = resume(dir, &run);
    assert_eq!(v["stages"]["apply"]["status"], "waiting-approval", "{v}");

    // A second person decides it.
    let o = approve(dir, &id, "bob@example.com");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).starts_with("approved "), "{}", text(&o));
    let o = approve(dir, &id, "cy@example.com");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("already approved"), "{}", text(&o));

    // On to `finish`: the `else` branch asks for the stage's (default) one approval.
    let v = resume(dir, &run);
    assert_eq!(v["stages"]["apply"]["status"], "passed", "{v}");
    assert_eq!(v["stages"]["finish"]["status"], "waiting-approval", "{v}");
    let fin = v["stages"]["finish"]["approval_id"].as_str().unwrap();
    let o = approve(dir, fin, "cy@example.com");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).starts_with("approved "), "{}", text(&o));
    assert_eq!(resume(dir, &run)["status"], "succeeded");

    // The audit log: one `approval-recorded`, then `approval-granted` naming both.
    let log = audit(dir);
    let about = |ev: &str| -> Vec<&Value> {
        log.iter()
            .filter(|e| e["event"] == ev && e["details"]["approval"] == id.as_str())
            .collect()
    };
    let recorded = about("approval-recorded");
    assert_eq!(recorded.len(), 1, "{log:?}");
    assert_eq!(recorded[0]["actor"], "ann@example.com");
    assert_eq!(recorded[0]["details"]["needed"], 2);
    let granted = about("approval-granted");
    assert_eq!(granted.len(), 1, "{log:?}");
    assert_eq!(granted[0]["actor"], "bob@example.com");
    assert_eq!(
        granted[0]["details"]["approvers"],
        serde_json::json!(["ann@example.com", "bob@example.com"])
    );
    let requested = about("approval-requested");
    assert_eq!(requested[0]["details"]["min_approvals"], 2);
    let o = pbc(dir, &["audit", "verify", "st/audit.jsonl"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn a_branch_asks_for_its_own_number_and_a_rejection_by_one_ends_the_run() {
    let d = setup(r#"{"big": true}"#);
    let dir = d.path();
    let (run, id) = start(dir);
    for who in ["ann@example.com", "bob@example.com"] {
        assert_eq!(approve(dir, &id, who).status.code(), Some(0));
    }
    let v = resume(dir, &run);
    assert_eq!(v["stages"]["finish"]["status"], "waiting-approval", "{v}");
    let fin = v["stages"]["finish"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    // `input.big` holds: that branch needs three.
    for (who, left) in [("ann@example.com", 2), ("bob@example.com", 1)] {
        let o = approve(dir, &fin, who);
        assert!(
            text(&o).contains(&format!("next: {left} more approver(s)")),
            "{}",
            text(&o)
        );
    }
    // One approver rejects: the run ends rejected, whatever the others said.
    let o = pbc(
        dir,
        &[
            "reject",
            &fin,
            "--as",
            "cy@example.com",
            "--reason",
            "not now",
            "--state",
            "st",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = resume(dir, &run);
    assert_eq!(v["status"], "rejected", "{v}");
    assert_eq!(v["stages"]["finish"]["status"], "rejected", "{v}");
}

#[test]
fn serve_counts_distinct_authenticated_people() {
    let d = serve_common::project("1h", "1h");
    let dir = d.path();
    // The project's gate, as a two-person rule for role sre (sam and bob).
    let pb = std::fs::read_to_string(dir.join("deploy.yaml")).unwrap();
    std::fs::write(
        dir.join("deploy.yaml"),
        pb.replace(
            "      approvers: [{role: sre}]\n",
            "      approvers: [{role: sre}]\n      min-approvals: 2\n",
        ),
    )
    .unwrap();
    let cfg = std::fs::read_to_string(dir.join(".pbc.yaml")).unwrap();
    std::fs::write(
        dir.join(".pbc.yaml"),
        cfg.replace(
            "sre: [sam@example.com]",
            "sre: [sam@example.com, bob@example.com]",
        ),
    )
    .unwrap();
    let s = Server::start(dir, "deploy.yaml");
    let (code, v) = s.event("release", r#"{"version": "1.0.0"}"#, None);
    assert_eq!(code, 202, "{v}");
    let run = v["runs"][0].as_str().unwrap().to_string();
    let id = loop {
        let (_, v) = s.get("/v1/approvals", "sam-token");
        if let Some(a) = v["approvals"].as_array().and_then(|a| a.first()) {
            break a["id"].as_str().unwrap().to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let path = format!("/v1/approvals/{id}/approve");
    let (code, v) = s.post(&path, "sam-token", "");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "pending", "{v}");
    assert_eq!(v["min_approvals"], 2, "{v}");
    // sam has approved: the approval is no longer one sam may decide, and a second
    // approval by sam is a conflict.
    let (_, mine) = s.get("/v1/approvals", "sam-token");
    assert_eq!(mine["approvals"], serde_json::json!([]), "{mine}");
    let (code, v) = s.post(&path, "sam-token", "");
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (409, Some("already-approved")),
        "{v}"
    );
    let (code, v) = s.post(&path, "bob-token", "");
    assert_eq!((code, v["status"].as_str()), (200, Some("approved")), "{v}");
    assert_eq!(
        v["approved_by"],
        serde_json::json!(["sam@example.com", "bob@example.com"])
    );
    s.wait_status(&run, "succeeded");
}
