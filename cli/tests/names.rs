//! Channel and audit sink names: a name `.pbc.yaml` does not define is a `pbc check` error
//! (PB2024, PB2023), `audit-sinks:` checks each kind's settings, and `pbc
//! coverage` counts only configured sinks as evidence.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pbc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env_remove("PBC_STATE_DIR")
        .output()
        .expect("run pbc")
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pbc-names-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const CONFIG: &str = "notifications:\n  slack-security: {file: notes.jsonl}\n  pagerduty-sre: {stdout: true}\naudit-sinks:\n  cloudtrail: {file: .pbc/audit/cloudtrail.jsonl}\n";

/// Names a channel in each place a playbook can, and two audit sinks: one close to a defined
/// name, one far from every name.
const PLAYBOOK: &str = r#"apiVersion: agenticops/v1
kind: Playbook
metadata:
  name: names
spec:
  trigger: pull-request-created
  stages:
    - name: review
      agent: glm-5
      approval: manual
      approvers: [security-team]
      sla: 4h
      escalation:
        - after: 2h
          approvers: [ciso-office]
          notify: [pagerduty-sre, email-ciso]
      notification:
        on-pending: [slack-sec]
        on-expired: [slack-security]
  rollback:
    on-failure: notify-only
    notification: [slack-security]
  audit:
    log-to: [cloudtrial, nowhere]
"#;

#[test]
fn undefined_channels_and_sinks_are_errors_with_a_guess() {
    let d = tmpdir("check");
    std::fs::write(d.join(".pbc.yaml"), CONFIG).expect("write");
    std::fs::write(d.join("pb.yaml"), PLAYBOOK).expect("write");
    let out = pbc(&d, &["check", "--format", "json", "pb.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let got: Vec<(&str, &str, u64)> = v["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .map(|x| {
            (
                x["code"].as_str().unwrap_or_default(),
                x["message"].as_str().unwrap_or_default(),
                x["line"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "PB2024",
                "no notification channel `email-ciso` is configured",
                16
            ),
            (
                "PB2024",
                "no notification channel `slack-sec` is configured",
                18
            ),
            ("PB2023", "no audit sink `cloudtrial` is configured", 24),
            ("PB2023", "no audit sink `nowhere` is configured", 24),
        ]
    );
    insta::assert_snapshot!("names_json", stdout(&out));
    let human = pbc(&d, &["check", "pb.yaml"]);
    assert_eq!(human.status.code(), Some(1));
    insta::assert_snapshot!("names_human", stdout(&human));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn without_a_configuration_every_name_is_an_error() {
    let d = tmpdir("none");
    std::fs::write(d.join("pb.yaml"), PLAYBOOK).expect("write");
    let v = json(&pbc(&d, &["check", "--format", "json", "pb.yaml"]));
    let ds = v["diagnostics"].as_array().expect("diagnostics");
    assert_eq!(ds.len(), 7, "{ds:?}");
    for x in ds {
        assert_eq!(x["severity"], "error");
        let help = x["help"].as_str().unwrap_or_default();
        match x["code"].as_str() {
            Some("PB2024") => assert_eq!(
                help,
                "no channels are defined: add `notifications:` to .pbc.yaml"
            ),
            Some("PB2023") => assert_eq!(
                help,
                "no audit sinks are defined: add `audit-sinks:` to .pbc.yaml"
            ),
            other => panic!("unexpected {other:?}"),
        }
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn remote_sink_kinds_are_accepted_and_an_incomplete_one_is_a_configuration_error() {
    let d = tmpdir("kinds");
    std::fs::write(
        d.join("pb.yaml"),
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\nspec:\n  trigger: e\n  stages:\n    - {name: s, agent: m}\n  audit: {log-to: [trail]}\n",
    )
    .expect("write");
    std::fs::write(
        d.join(".pbc.yaml"),
        "audit-sinks:\n  trail: {s3: {prefix: audit/}}\n",
    )
    .expect("write");
    let out = pbc(&d, &["check", "--format", "json", "pb.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let x = &v["diagnostics"][0];
    assert_eq!(x["code"], "PB0021");
    assert_eq!(x["file"], ".pbc.yaml");
    assert_eq!(x["message"], "s3 sink `trail` needs `bucket`");
    for sink in [
        "{s3: {bucket: audit}}",
        "{otlp: {endpoint: 'http://127.0.0.1:4318'}}",
        "{cloudtrail: {channel-arn: 'arn:aws:cloudtrail:eu-west-1:123456789012:channel/x'}}",
        "{syslog: {host: siem.example.com}}",
    ] {
        std::fs::write(
            d.join(".pbc.yaml"),
            format!("audit-sinks:\n  trail: {sink}\n"),
        )
        .expect("write");
        let out = pbc(&d, &["check", "--format", "json", "pb.yaml"]);
        let v = json(&out);
        let codes: Vec<&str> = v["diagnostics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["code"].as_str())
            .filter(|c| c.starts_with("PB00") || *c == "PB2023")
            .collect();
        assert!(codes.is_empty(), "{sink}: {v:#}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn explain_documents_both_codes() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (code, says) in [("PB2023", "audit-sinks:"), ("PB2024", "notifications:")] {
        let out = pbc(here, &["explain", code]);
        assert_eq!(out.status.code(), Some(0), "{code}");
        let text = stdout(&out);
        assert!(text.contains(says), "{code}: {text}");
    }
}

/// The coverage status of SOC2 CC7.2 (monitoring alerts and an audit sink) in a one-playbook
/// tree whose `log-to` names `trail`, under the given configuration.
fn cc72(config: &str) -> (Option<i32>, String) {
    let d = tmpdir("coverage");
    std::fs::write(d.join(".pbc.yaml"), config).expect("write");
    std::fs::write(
        d.join("pb.yaml"),
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: watched\n  compliance: [SOC2-CC7.2]\nspec:\n  trigger: e\n  stages:\n    - {name: s, agent: m}\n  audit:\n    log-to: [trail]\n  monitoring:\n    metrics: [{name: guardrail-triggers, target: < 1}]\n    alerts: [{condition: guardrail-triggers > 0, notify: [ops]}]\n",
    )
    .expect("write");
    let out = pbc(&d, &["coverage", "--format", "json", "pb.yaml"]);
    let _ = std::fs::remove_dir_all(&d);
    if out.status.code() != Some(0) {
        return (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into(),
        );
    }
    let v = json(&out);
    let status = v["environments"][0]["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["catalog"] == "soc2")
        .flat_map(|f| f["controls"].as_array().into_iter().flatten())
        .find(|c| c["id"] == "CC7.2")
        .and_then(|c| c["status"].as_str())
        .unwrap_or_default()
        .to_string();
    (Some(0), status)
}

#[test]
fn coverage_counts_only_configured_sinks() {
    // The targets the tree deploys through enforce sinks (the default, every target,
    // includes LangGraph, which does not).
    let channel = "targets: {emit: [local, serve]}\nnotifications:\n  ops: {stdout: true}\n";
    // Defined: evidence.
    assert_eq!(
        cc72(&format!(
            "{channel}audit-sinks:\n  trail: {{file: audit.jsonl}}\n"
        )),
        (Some(0), "covered".to_string())
    );
    // Undefined: the report refuses the unsound input...
    let (code, err) = cc72(channel);
    assert_eq!(code, Some(1));
    assert!(err.contains("no audit sink `trail` is configured"), "{err}");
    // ...and with the finding allowed, the name is no evidence.
    assert_eq!(
        cc72(&format!("{channel}severity: {{PB2023: allow}}\n")),
        (Some(0), "claimed-without-evidence".to_string())
    );
}

#[cfg(unix)]
#[test]
fn through_a_symbolic_link_the_real_project_configuration_is_found() {
    let d = tmpdir("link");
    let project = d.join("project");
    std::fs::create_dir_all(project.join("playbooks")).expect("mkdir");
    std::fs::write(project.join(".pbc.yaml"), CONFIG).expect("write");
    std::fs::write(
        project.join("playbooks/pb.yaml"),
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\nspec:\n  trigger: e\n  stages:\n    - name: s\n      agent: m\n      notification: {on-failure: [slack-security]}\n  audit: {log-to: [cloudtrail]}\n",
    )
    .expect("write");
    std::os::unix::fs::symlink(project.join("playbooks"), d.join("link")).expect("symlink");
    let out = pbc(&d, &["check", "link/pb.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let _ = std::fs::remove_dir_all(&d);
}
