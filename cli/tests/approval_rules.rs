//! Approval rules checked statically (`pbc check`) against the role registry: unknown and
//! empty roles, gates whose approvers are too few distinct people for their
//! `min-approvals` (or only the identity that triggers the playbook), an escalation chain
//! that ends asking nobody, and a gate that can wait longer than `approvals.max-wait`. Each
//! finding sits at the approver, the `min-approvals` or the level that causes it.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn pbc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run pbc")
}

/// `(code, line, column, message)` of a finding.
type Finding = (String, u64, u64, String);

/// Each PB603x finding of `pbc check --format json`, and the exit code.
fn findings(playbook: &str, cfg: &str) -> (Option<i32>, Vec<Finding>) {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("p.yaml"), playbook).unwrap();
    std::fs::write(d.path().join(".pbc.yaml"), cfg).unwrap();
    let out = pbc(d.path(), &["check", "--format", "json", "p.yaml"]);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let mut found = Vec::new();
    for d in v["diagnostics"].as_array().expect("diagnostics") {
        let code = d["code"].as_str().unwrap_or_default();
        if code.starts_with("PB603") {
            found.push((
                code.to_string(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
                d["message"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    (out.status.code(), found)
}

const ROLES: &str = "roles:\n  sre: [ann@example.com, bob@example.com]\n  security: [cy@example.com]\n  nobody: []\n";

fn playbook(gate: &str) -> String {
    format!(
        "apiVersion: agenticops/v1
kind: Playbook
metadata:
  name: deploy
spec:
  trigger: release
  stages:
    - name: apply
      agent: bot
{gate}"
    )
}

#[test]
fn a_gate_that_follows_every_rule_passes() {
    let pb = playbook(
        "      approval: manual
      approvers: [{role: sre}]
      min-approvals: 2
      sla: 4h
      escalation:
        - after: 2h
          approvers: [{role: security}]
",
    );
    let (code, found) = findings(&pb, &format!("{ROLES}approvals:\n  max-wait: 6h\n"));
    assert_eq!(found, []);
    assert_eq!(code, Some(0));
}

#[test]
fn an_unknown_role_is_reported_at_the_approver_with_the_closest_name() {
    let pb = playbook(
        "      approval: manual
      approvers: [{role: sre}, {role: securty}]
",
    );
    let (code, found) = findings(&pb, ROLES);
    assert_eq!(code, Some(1));
    assert_eq!(found.len(), 1, "{found:?}");
    let (c, line, col, msg) = &found[0];
    assert_eq!((c.as_str(), *line, *col), ("PB6030", 11, 39), "{msg}");
    assert!(msg.contains("`securty`"), "{msg}");
    // The help names the closest role.
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("p.yaml"), &pb).unwrap();
    std::fs::write(d.path().join(".pbc.yaml"), ROLES).unwrap();
    let o = pbc(d.path(), &["check", "p.yaml"]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.contains("did you mean `security`?"), "{text}");
    // Without a role registry, roles are not checked (pbc cannot know who holds them).
    let (code, found) = findings(&pb, "");
    assert_eq!((code, found.len()), (Some(0), 0), "{found:?}");
}

#[test]
fn an_empty_role_is_reported_at_the_approver() {
    let pb = playbook(
        "      approval: manual
      approvers: [{role: nobody}]
",
    );
    let (_, found) = findings(&pb, ROLES);
    let mut codes: Vec<(&str, u64)> = found.iter().map(|f| (f.0.as_str(), f.1)).collect();
    codes.sort();
    // The role has no members, and so the gate has no approver at all.
    assert_eq!(codes, [("PB6031", 11), ("PB6032", 11)], "{found:?}");
}

#[test]
fn a_two_person_rule_needs_two_people_not_two_spellings() {
    let pb = playbook(
        "      approval: manual
      approvers: [ann@example.com, ANN@example.com]
      min-approvals: 2
",
    );
    let (code, found) = findings(&pb, ROLES);
    assert_eq!(code, Some(1));
    assert_eq!(found.len(), 1, "{found:?}");
    let (c, line, col, msg) = &found[0];
    // At the `min-approvals` value.
    assert_eq!((c.as_str(), *line, *col), ("PB6032", 12, 22), "{msg}");
    assert!(
        msg.contains(
            "needs 2 distinct approvers, but only 1 person may approve it: ann@example.com"
        ),
        "{msg}"
    );
    // An escalation level that adds a person makes two.
    let pb = playbook(
        "      approval: manual
      approvers: [ann@example.com]
      min-approvals: 2
      sla: 1h
      escalation:
        - after: 1h
          approvers: [{role: security}]
",
    );
    assert_eq!(findings(&pb, ROLES).1, []);
    // A branch's own number counts against that branch's approvers.
    let pb = playbook(
        "      approval: conditional
      approvers: [{role: sre}]
      conditions:
        - if: input.big == true
          then: manual
          approvers: [{role: security}]
          min-approvals: 2
        - else: manual
",
    );
    let found = findings(&pb, ROLES).1;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].0.as_str(), found[0].1), ("PB6032", 16));
}

#[test]
fn the_trigger_identity_never_counts_as_an_approver() {
    let pb = playbook(
        "      approval: manual
      approvers: [{user: \"event:release\"}]
",
    );
    let (code, found) = findings(&pb, ROLES);
    assert_eq!(code, Some(1));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].0.as_str(), found[0].1), ("PB6032", 11));
    assert!(
        found[0]
            .3
            .contains("the identity that triggers the playbook"),
        "{found:?}"
    );
}

#[test]
fn the_last_escalation_level_must_ask_someone() {
    let pb = playbook(
        "      approval: manual
      approvers: [{role: sre}]
      sla: 1h
      escalation:
        - after: 1h
          approvers: [{role: security}]
        - after: 2h
          notify: [pager]
",
    );
    let cfg = format!("{ROLES}notifications:\n  pager: {{stdout: true}}\n");
    let found = findings(&pb, &cfg).1;
    assert_eq!(found.len(), 1, "{found:?}");
    let (c, line, col, _) = &found[0];
    // At the last level's `after`.
    assert_eq!((c.as_str(), *line, *col), ("PB6033", 16, 11));
}

#[test]
fn a_gate_may_not_wait_longer_than_max_wait() {
    let pb = playbook(
        "      approval: manual
      approvers: [{role: sre}]
      sla: 4h
      escalation:
        - after: 4h
          approvers: [{role: security}]
        - after: 1d
          approvers: [ciso@example.com]
",
    );
    let found = findings(&pb, &format!("{ROLES}approvals:\n  max-wait: 12h\n")).1;
    assert_eq!(found.len(), 1, "{found:?}");
    let (c, line, col, msg) = &found[0];
    // At the `after` that passes the bound.
    assert_eq!((c.as_str(), *line, *col), ("PB6034", 16, 18), "{msg}");
    assert!(msg.contains("can wait 32h"), "{msg}");
    assert!(msg.contains("(12h)"), "{msg}");
    // Within the bound: nothing.
    let found = findings(&pb, &format!("{ROLES}approvals:\n  max-wait: 2d\n")).1;
    assert_eq!(found, []);
    // A bad value is a configuration error.
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("p.yaml"), &pb).unwrap();
    std::fs::write(d.path().join(".pbc.yaml"), "approvals:\n  max-wait: soon\n").unwrap();
    let o = pbc(d.path(), &["check", "p.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("approvals.max-wait"), "{text}");
}

#[test]
fn every_rule_has_its_explanation() {
    let d = tempfile::tempdir().unwrap();
    for code in ["PB6030", "PB6031", "PB6032", "PB6033", "PB6034"] {
        let o = pbc(d.path(), &["explain", code]);
        assert_eq!(o.status.code(), Some(0), "{code}");
        assert!(String::from_utf8_lossy(&o.stdout).contains("Fix"), "{code}");
    }
}

/// The human and JSON renderings of a two-person rule with one person (PB6032).
#[test]
fn too_few_approvers_renders_with_its_span_and_help() {
    let d = tempfile::tempdir().unwrap();
    let pb = playbook(
        "      approval: manual
      approvers: [{role: security}]
      min-approvals: 2
",
    );
    std::fs::write(d.path().join("p.yaml"), pb).unwrap();
    std::fs::write(d.path().join(".pbc.yaml"), ROLES).unwrap();
    let human = pbc(d.path(), &["check", "p.yaml"]);
    assert_eq!(human.status.code(), Some(1));
    insta::assert_snapshot!("pb6032_human", String::from_utf8_lossy(&human.stdout));
    let json = pbc(d.path(), &["check", "--format", "json", "p.yaml"]);
    insta::assert_snapshot!("pb6032_json", String::from_utf8_lossy(&json.stdout));
}
