//! The enforcement map (`pbc enforcement`) and the check it backs: with `targets.emit`, a
//! control a listed target does not enforce is an error (PB6005) for that target only.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pbc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("PBC_STATE_URL")
        .output()
        .expect("run pbc")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A deployment with a gate (approvers, SLA) and a rate limit.
const PLAYBOOK: &str = "apiVersion: agenticops/v1
kind: Playbook
metadata:
  name: deploy
spec:
  trigger: manual
  rate-limits:
    \"deploy:apply\": \"3 per hour\"
  stages:
    - name: plan
      agent: planner
    - name: apply
      action: deploy:apply
      approval: manual
      approvers: [ann@example.com]
      sla: 4h
";

/// A directory with the playbook and this `.pbc.yaml`.
fn tree(cfg: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("p.yaml"), PLAYBOOK).unwrap();
    std::fs::write(d.path().join(".pbc.yaml"), cfg).unwrap();
    d
}

/// `(line, message)` of each PB6005 finding of `pbc check --format json`.
fn unenforced(cfg: &str) -> (Option<i32>, Vec<(u64, String)>) {
    let d = tree(cfg);
    let out = pbc(d.path(), &["check", "--format", "json", "p.yaml"]);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let mut found = Vec::new();
    for d in v["diagnostics"].as_array().expect("diagnostics") {
        if d["code"] == "PB6005" {
            found.push((
                d["line"].as_u64().expect("a line"),
                d["message"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    (out.status.code(), found)
}

/// An Ed25519 public key (any 32 bytes, base64).
const KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

#[test]
fn without_targets_emit_nothing_is_claimed_or_reported() {
    let (code, found) = unenforced("");
    assert_eq!(code, Some(0));
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn langgraph_cannot_enforce_the_gate_s_approvers_sla_or_the_rate_limit() {
    let (code, found) = unenforced("targets:\n  emit: [local, langgraph]\n");
    assert_eq!(code, Some(1));
    let lines: Vec<u64> = found.iter().map(|(l, _)| *l).collect();
    // The rate limit's value, the approvers, the SLA; not the gate (an interrupt).
    assert_eq!(lines, [8, 15, 16], "{found:?}");
    for (_, m) in &found {
        assert!(m.contains("`langgraph`"), "{m}");
        assert!(!m.contains("`local`"), "{m}");
    }
    assert!(
        found[2].1.starts_with("`sla: 4h` of stage `apply`"),
        "{found:?}"
    );
}

#[test]
fn argo_is_an_error_for_what_only_configuration_lets_it_enforce() {
    // Argo enforces the gate and its SLA; not the approvers (no signed approvals) nor the
    // rate limit (no shared store).
    let (code, found) = unenforced("targets:\n  emit: [local, argo]\n");
    assert_eq!(code, Some(1));
    let lines: Vec<u64> = found.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [8, 15], "{found:?}");
    assert!(found.iter().all(|(_, m)| m.contains("`argo`")));
    // A shared PostgreSQL store and signed approvals: the runner enforces both.
    let cfg = format!(
        "state: postgres://pbc@db.example:5432/pbc\napprovals:\n  require-signature: true\n  keys:\n    ann@example.com: \"{KEY}\"\ntargets:\n  emit: [local, argo]\n"
    );
    let (code, found) = unenforced(&cfg);
    assert_eq!((code, found), (Some(0), vec![]));
}

#[test]
fn the_help_says_what_lets_argo_enforce_it() {
    let d = tree("targets:\n  emit: [argo]\n");
    let out = pbc(d.path(), &["check", "--format", "json", "p.yaml"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let helps: Vec<&str> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["help"].as_str())
        .collect();
    assert_eq!(helps.len(), 2, "{helps:?}");
    assert!(
        helps[0].ends_with("with a shared PostgreSQL `state:`"),
        "{helps:?}"
    );
    assert!(
        helps[1].ends_with("`approvals.require-signature: true`"),
        "{helps:?}"
    );
}

#[test]
fn pb6005_is_explained() {
    let out = pbc(&repo(), &["explain", "PB6005"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("targets.emit"));
}

#[test]
fn the_map_of_one_target_reads_the_configuration() {
    let d = tree(&format!(
        "state: postgres://pbc@db.example:5432/pbc\napprovals:\n  require-signature: true\n  keys:\n    ann@example.com: \"{KEY}\"\n"
    ));
    let out = pbc(
        d.path(),
        &[
            "enforcement",
            "--target",
            "argo",
            "--format",
            "json",
            "p.yaml",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["targets"], serde_json::json!(["argo"]));
    let controls = v["playbooks"][0]["controls"].as_array().unwrap();
    let kinds: Vec<&str> = controls
        .iter()
        .map(|c| c["construct"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["rate-limit", "gate", "approvers", "sla"]);
    assert!(
        controls.iter().all(|c| c["enforced"]["argo"].is_string()),
        "{controls:?}"
    );
    // Without the configuration, the runner enforces neither.
    std::fs::write(d.path().join(".pbc.yaml"), "").unwrap();
    let out = pbc(
        d.path(),
        &[
            "enforcement",
            "--target",
            "argo",
            "--format",
            "json",
            "p.yaml",
        ],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let nulls: Vec<&str> = v["playbooks"][0]["controls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["enforced"]["argo"].is_null())
        .map(|c| c["construct"].as_str().unwrap())
        .collect();
    assert_eq!(nulls, ["rate-limit", "approvers"]);
}

#[test]
fn an_unknown_target_is_a_usage_error() {
    let d = tree("");
    let out = pbc(
        d.path(),
        &["enforcement", "--target", "kubernetes", "p.yaml"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown target `kubernetes`") && err.contains("langgraph"),
        "{err}"
    );
}

#[test]
fn the_map_of_the_example() {
    let root = repo();
    for (format, name) in [("markdown", "example_markdown"), ("json", "example_json")] {
        let out = pbc(
            &root,
            &["enforcement", "--format", format, "testdata/example"],
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        insta::assert_snapshot!(name, String::from_utf8_lossy(&out.stdout));
    }
}

/// `pbc build --target T` judges T's artifacts by what T enforces: another target of
/// `targets.emit` that cannot enforce a control does not stop T's build.
#[test]
fn building_one_target_fails_only_on_what_that_target_cannot_enforce() {
    // Signed approvals and a shared store: Argo enforces everything the playbook declares.
    let cfg = format!(
        "state: postgres://pbc@db.example:5432/pbc\napprovals:\n  require-signature: true\n  keys:\n    ann@example.com: \"{KEY}\"\ntargets:\n  emit: [local, argo, langgraph]\n"
    );
    let d = tree(&cfg);
    let argo = pbc(
        d.path(),
        &["build", "p.yaml", "--target", "argo", "-o", "out"],
    );
    assert_eq!(
        argo.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&argo.stderr)
    );
    assert!(d.path().join("out").is_dir());
    let lg = pbc(
        d.path(),
        &["build", "p.yaml", "--target", "langgraph", "-o", "lg"],
    );
    assert_eq!(lg.status.code(), Some(1));
    let err = String::from_utf8_lossy(&lg.stderr);
    assert!(err.contains("PB6005"), "{err}");
    assert!(err.contains("not enforced by `langgraph`"), "{err}");
    // `pbc check` reports the LangGraph gaps whatever is built.
    let (code, found) = unenforced(&cfg);
    assert_eq!(code, Some(1));
    assert!(
        found.iter().all(|(_, m)| m.contains("`langgraph`")),
        "{found:?}"
    );
}

/// A `file` audit sink or channel the playbook uses cannot be written by the Argo runner
/// (read-only root filesystem, configuration read-only at /etc/pbc): a warning at the name
/// in the playbook, with a label at the `file` in `.pbc.yaml`; `severity: {PB6006: deny}`
/// makes it an error. `pbc run` is not concerned.
#[test]
fn a_file_output_warns_when_building_the_argo_target() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::write(
        p.join("p.yaml"),
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: deploy\nspec:\n  trigger: manual\n  audit:\n    log-to: [trail, lake]\n  stages:\n    - name: apply\n      agent: planner\n      approval: manual\n      approvers: [ann@example.com]\n      notification:\n        on-pending: [ops]\n",
    )
    .unwrap();
    let cfg = "audit-sinks:\n  trail: {file: .pbc/trail.jsonl}\n  lake: {s3: {bucket: audit}}\nnotifications:\n  ops: {file: /var/log/ops.jsonl}\n  unused: {file: x.jsonl}\n";
    std::fs::write(p.join(".pbc.yaml"), cfg).unwrap();
    let o = pbc(p, &["build", "p.yaml", "--target", "argo", "-o", "out"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("PB6006").count(), 2, "{err}");
    assert!(err.contains("audit sink `trail` writes a file"), "{err}");
    assert!(
        err.contains("notification channel `ops` writes a file"),
        "{err}"
    );
    assert!(
        !err.contains("`lake`") && !err.contains("`unused`"),
        "{err}"
    );
    assert!(err.contains("p.yaml:8:14"), "{err}");
    insta::assert_snapshot!("pb6006_human", err);
    // Denied: the build fails.
    std::fs::write(
        p.join(".pbc.yaml"),
        format!("{cfg}severity:\n  PB6006: deny\n"),
    )
    .unwrap();
    let o = pbc(p, &["build", "p.yaml", "--target", "argo", "-o", "out2"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The other targets are not concerned.
    let o = pbc(p, &["build", "p.yaml", "--target", "langgraph", "-o", "lg"]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("PB6006"));
}
