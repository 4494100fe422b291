//! Policies through the `pbc` binary: `pbc check` reports a policy name no configuration
//! defines, a Rego module that does not compile and a Cedar policy that fails validation
//! against its schema, each at its exact line; `pbc run` enforces a policy.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn pbc(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(args)
        .current_dir(workspace())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn findings(json: &str) -> Vec<(String, String, String, u64)> {
    let v: Value = serde_json::from_str(json).unwrap();
    v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_string(),
                d["severity"].as_str().unwrap().to_string(),
                d["file"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn check_reports_policy_problems_at_their_lines() {
    let (code, out, err) = pbc(&["check", "testdata/policy-bad", "--format", "json"]);
    assert_eq!(code, 1, "{out}{err}");
    let f = findings(&out);
    let has = |c: &str, file: &str, line: u64| {
        f.iter()
            .any(|(fc, sev, ff, fl)| fc == c && sev == "error" && ff == file && *fl == line)
    };
    assert!(
        has("PB2016", "testdata/policy-bad/refund.yaml", 13),
        "{f:?}"
    );
    assert!(has("PB6011", "testdata/policy-bad/broken.rego", 6), "{f:?}");
    assert!(
        has("PB6013", "testdata/policy-bad/invalid.cedar", 4),
        "{f:?}"
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    let cedar = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "PB6013")
        .unwrap();
    assert!(
        cedar["message"]
            .as_str()
            .unwrap()
            .contains("has_human_aproval"),
        "{cedar}"
    );
    // The secondary label names the policy's entry in the configuration.
    assert_eq!(cedar["labels"][0]["file"], "testdata/policy-bad/.pbc.yaml");
}

#[test]
fn the_examples_check_clean() {
    let (code, out, err) = pbc(&["check", "testdata/policy/playbooks"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn run_refuses_a_stage_its_policy_denies() {
    let state = tempfile::tempdir().unwrap();
    let s = state.path().to_str().unwrap();
    let (code, out, err) = pbc(&[
        "run",
        "testdata/policy/playbooks/instant-refund.yaml",
        "--input",
        "testdata/policy/inputs/refund-10000.json",
        "--agents",
        "testdata/policy/agents.yaml",
        "--state",
        s,
        "--format",
        "json",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "refused");
    assert_eq!(v["stages"]["refund"]["status"], "refused");
    assert_eq!(
        v["stages"]["refund"]["policy"]["name"],
        "financial-transaction-limit"
    );
    assert_eq!(v["stages"]["refund"]["policy"]["decision"], "deny");
    let audit = std::fs::read_to_string(state.path().join("audit.jsonl")).unwrap();
    assert!(audit.contains("\"policy-violation\""), "{audit}");
}

#[test]
fn policy_test_passes_and_fails_as_it_should() {
    let (code, out, err) = pbc(&["policy", "test", "testdata/policy"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("PASS  testdata/policy/tests/refund_limits.yaml: financial-transaction-limit: the sixth $1,000 refund of a day is denied"),
        "{out}"
    );
    assert!(
        out.contains("data.agent.data_protection_test.test_pii_to_an_unapproved_vendor_is_denied"),
        "{out}"
    );
    assert!(out.ends_with("PASS: 13/13\n"), "{out}");
    let (code, out, err) = pbc(&["policy", "test", "testdata/policy-failing"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("FAIL  testdata/policy-failing/limits_test.yaml: limits: a $10,000 refund is allowed (wrong on purpose)\n      expected allow, got"),
        "{out}"
    );
    assert!(out.ends_with("FAIL: 1/2\n"), "{out}");
}

#[test]
fn policy_eval_prints_the_decision() {
    let (code, out, err) = pbc(&[
        "--config",
        "testdata/policy/.pbc.yaml",
        "policy",
        "eval",
        "financial-transaction-limit",
        "--input",
        "testdata/policy/inputs/policy-input-refund.json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["policy"], "financial-transaction-limit");
    assert_eq!(v["decision"], "deny");
    assert_eq!(
        v["reasons"][0],
        "financial-transaction-limit: amount 10000 is over amount_max 1000"
    );
    let (code, _, err) = pbc(&[
        "--config",
        "testdata/policy/.pbc.yaml",
        "policy",
        "eval",
        "nope",
        "--input",
        "testdata/policy/inputs/policy-input-refund.json",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no configured policy is named `nope`"),
        "{err}"
    );
}

#[test]
fn a_static_rule_reports_at_the_line_of_an_overlay_patched_value() {
    let (code, out, err) = pbc(&[
        "check",
        "testdata/example/playbooks/overlays/dev",
        "--policy",
        "testdata/policy-static",
        "--format",
        "json",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let deny: Vec<&Value> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "PB6020")
        .collect();
    assert_eq!(deny.len(), 1, "{out}");
    let d = deny[0];
    assert_eq!(
        d["file"],
        "testdata/example/playbooks/overlays/dev/code-review-agent-patch.yaml"
    );
    assert_eq!(d["line"], 15);
    assert_eq!(d["message"], "stage code-analysis must retry at least once");
    assert_eq!(d["labels"][0]["file"], "testdata/policy-static/stages.rego");
    assert_eq!(d["labels"][0]["line"], 5);
    // The conftest-style warning, at the playbook's `kind`.
    assert!(
        v["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["code"] == "PB6021" && d["severity"] == "warning"),
        "{out}"
    );
    // The base alone has no stage without retries.
    let (code, out, _) = pbc(&[
        "check",
        "testdata/example/playbooks/overlays/production",
        "--policy",
        "testdata/policy-static",
        "--format",
        "json",
    ]);
    assert!(!out.contains("PB6020"), "{out}");
    assert_eq!(code, 0, "{out}");
}

/// `pbc coverage` counts the action stages a policy checks, per playbook and over the tree,
/// naming each uncovered stage at its line; `always-on-policies` covers every action stage.
#[test]
fn coverage_counts_action_stages_a_policy_checks() {
    let d = tempfile::tempdir().unwrap();
    let pb = "apiVersion: agenticops/v1
kind: Playbook
metadata: {name: mixed}
spec:
  trigger: ticket
  stages:
    - name: triage
      agent: triager
    - name: refund
      action: payments:refund
      policy: limits
    - name: notify
      action: email:send
    - name: close
      action: tickets:close
";
    std::fs::write(d.path().join("mixed.yaml"), pb).unwrap();
    let limits = "policies:\n  limits:\n    rules:\n      - {resource: 'payments:*', param: amount, constraints: {amount_max: 100}}\n";
    std::fs::write(d.path().join(".pbc.yaml"), limits).unwrap();
    let coverage = |dir: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_pbc"))
            .args(["coverage", ".", "--format", "json"])
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["environments"][0]["policies"].clone()
    };
    let p = coverage(d.path());
    assert_eq!(p["action_stages"], 3, "{p}");
    assert_eq!(p["with_policy"], 1, "{p}");
    assert!(
        (p["ratio"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9,
        "{p}"
    );
    let uncovered: Vec<(String, u64)> = p["playbooks"][0]["uncovered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["stage"].as_str().unwrap().to_string(),
                u["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        uncovered,
        vec![("notify".to_string(), 12), ("close".to_string(), 14)]
    );
    std::fs::write(
        d.path().join(".pbc.yaml"),
        format!("{limits}always-on-policies: [limits]\n"),
    )
    .unwrap();
    let p = coverage(d.path());
    assert_eq!(p["with_policy"], 3, "{p}");
    assert_eq!(p["ratio"], 1.0, "{p}");
    assert_eq!(p["always_on"], serde_json::json!(["limits"]), "{p}");
}
