//! `pbc coverage --audit`: operating evidence from a real audit log written by `pbc run`,
//! `pbc approve` and `pbc resume`. A control whose gate a person decided operated; a control
//! whose gate nobody decided did not; a period with no run shows nothing operated; a log
//! whose chain does not verify is refused.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pbc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("PBC_STATE_DIR")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("run pbc")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Two playbooks: `release` claims SOC2-CC6.3 on its gated stage; `change` claims
/// ISO27001-8.32 on its own.
fn project() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    for (name, tag) in [("release", "SOC2-CC6.3"), ("change", "ISO27001-8.32")] {
        std::fs::write(
            p.join(format!("{name}.yaml")),
            format!(
                "apiVersion: agenticops/v1
kind: Playbook
metadata:
  name: {name}
spec:
  trigger: ev
  stages:
    - name: apply
      agent: bot
      prompt: Apply.
      approval: manual
      approvers: [{{role: sre}}]
      audit-log: required
      compliance: [{tag}]
"
            ),
        )
        .unwrap();
    }
    std::fs::create_dir(p.join("rec")).unwrap();
    std::fs::write(p.join("rec/apply.json"), "{\"ok\": true}").unwrap();
    std::fs::write(p.join("agents.yaml"), "agents:\n  bot: {fixture: rec/}\n").unwrap();
    std::fs::write(p.join(".pbc.yaml"), "roles:\n  sre: [ann@example.com]\n").unwrap();
    std::fs::write(p.join("in.json"), "{}").unwrap();
    d
}

fn start(p: &Path, playbook: &str) -> (String, String) {
    let v = json_of(&pbc(
        p,
        &[
            "run",
            playbook,
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
    ));
    (
        v["run"].as_str().unwrap().to_string(),
        v["stages"]["apply"]["approval_id"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

fn operating(v: &Value, tag: &str) -> Value {
    v["operating"]["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["tag"] == tag)
        .unwrap_or_else(|| panic!("{tag} in {v}"))
        .clone()
}

fn schema_valid(v: &Value) {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("schemas/coverage.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema");
    let errors: Vec<String> = validator.iter_errors(v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn a_control_whose_gate_nobody_decided_did_not_operate() {
    let d = project();
    let p = d.path();
    let (run, id) = start(p, "release.yaml");
    let o = pbc(
        p,
        &["approve", &id, "--as", "ann@example.com", "--state", "st"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(pbc(p, &["resume", &run, "--state", "st"]).status.success());
    // `change` runs, but its gate is never decided.
    start(p, "change.yaml");

    let o = pbc(
        p,
        &[
            "coverage",
            "release.yaml",
            "change.yaml",
            "--audit",
            "st",
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json_of(&o);
    schema_valid(&v);
    assert_eq!(v["operating"]["source"], "st");
    let cc63 = operating(&v, "SOC2-CC6.3");
    assert_eq!(cc63["operated"], true, "{cc63}");
    assert_eq!(cc63["runs"], 1);
    assert_eq!(cc63["approvals_decided"], 1);
    assert_eq!(cc63["deciders"], serde_json::json!(["ann@example.com"]));
    let iso = operating(&v, "ISO27001-8.32");
    assert_eq!(iso["operated"], false, "{iso}");
    assert_eq!(iso["runs"], 1);
    assert_eq!(
        iso["why_not"],
        "no approval was decided by a person in the period"
    );

    // Markdown: the table says so.
    let md = String::from_utf8_lossy(
        &pbc(
            p,
            &["coverage", "release.yaml", "change.yaml", "--audit", "st"],
        )
        .stdout,
    )
    .into_owned();
    assert!(md.contains("## Operating evidence"), "{md}");
    assert!(
        md.contains("| `SOC2-CC6.3` | 1 | 1 | ann@example.com | 0 | 0 | yes |"),
        "{md}"
    );
    assert!(
        md.contains("| `ISO27001-8.32` | 1 | 0 |  | 0 | 0 | **no**: no approval was decided by a person in the period |"),
        "{md}"
    );

    // A period after the runs: nothing operated.
    let v = json_of(&pbc(
        p,
        &[
            "coverage",
            "release.yaml",
            "--audit",
            "st/audit.jsonl",
            "--since",
            "2999-01-01",
            "--format",
            "json",
        ],
    ));
    assert_eq!(v["operating"]["since"], "2999-01-01T00:00:00Z");
    assert_eq!(v["operating"]["entries"], 0);
    assert_eq!(operating(&v, "SOC2-CC6.3")["operated"], false);
}

#[test]
fn a_log_that_does_not_verify_is_no_evidence() {
    let d = project();
    let p = d.path();
    let (_, id) = start(p, "release.yaml");
    assert!(
        pbc(
            p,
            &["approve", &id, "--as", "ann@example.com", "--state", "st"]
        )
        .status
        .success()
    );
    // Someone rewrites who approved.
    let log = std::fs::read_to_string(p.join("st/audit.jsonl")).unwrap();
    std::fs::write(
        p.join("st/audit.jsonl"),
        log.replace(
            "\"actor\":\"ann@example.com\"",
            "\"actor\":\"eve@example.com\"",
        ),
    )
    .unwrap();
    let o = pbc(p, &["coverage", "release.yaml", "--audit", "st"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("does not verify"), "{}", text(&o));
    assert!(o.stdout.is_empty());
    // A bad --since is a usage error.
    let o = pbc(
        p,
        &[
            "coverage",
            "release.yaml",
            "--audit",
            "st",
            "--since",
            "last week",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // --since without --audit: clap refuses.
    let o = pbc(p, &["coverage", "release.yaml", "--since", "2026-01-01"]);
    assert_eq!(o.status.code(), Some(2));
}
