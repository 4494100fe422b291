//! Conformance of the `argo` target: emitted WorkflowTemplates executed without a cluster
//! (`argo_harness`: the DAG, `when`, parameters, suspends answered, retries, the exit
//! handler), each container running the `pbc` under test as `pbc runner …` as a non-root
//! user, against `pbc run` on the same playbook, input, agents and decisions: the stage
//! statuses, the outputs and the stages' audit entries are equal.

mod argo_harness;
mod pg_common;
#[path = "argo_conformance/rollback.rs"]
mod rollback;
#[path = "argo_conformance/signed.rs"]
mod signed;
mod signing;

use argo_harness::{Execution, Harness, Phase, open_up};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn pbc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(args)
        .current_dir(dir)
        .env_remove("PBC_STATE_DIR")
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// YAML text to JSON through pbc's own loader (every document).
fn yaml(text: &str) -> Vec<Value> {
    let loader = pbc_compiler::load::Loader::new(
        std::sync::Arc::new(pbc_compiler::fs::MemFs::new()),
        "",
        Default::default(),
    );
    let l = loader.load_text(PathBuf::from("argo.yaml"), text.to_string());
    assert!(l.diags.iter().all(|d| !d.is_error()));
    l.docs.iter().map(|d| d.root.to_json()).collect()
}

/// A playbook project: a directory with `.pbc.yaml`, the agents file and the playbook.
struct Case {
    dir: tempfile::TempDir,
    playbook: String,
    /// Per stage with a gate: (who decides in `pbc run`, `approve` or `reject`).
    decisions: BTreeMap<String, (String, String)>,
    input: Value,
    /// The database the workflow's pods share (`state:` in `.pbc.yaml`), if any.
    db: Option<pg_common::Db>,
}

/// The events a stage's own execution records (its gates are the workflow's suspends; a
/// stage that cannot run because one it needs was refused is an omitted task, which records
/// nothing, where `pbc run` records `stage-blocked`; a stage whose `when` is false is a
/// skipped task, whose pod never runs, where `pbc run` records `stage-skipped`: both are
/// in Argo's node statuses, not in the audit trail).
const EXECUTION_EVENTS: &[&str] = &[
    "stage-started",
    "stage-passed",
    "stage-failed",
    "stage-attempt-failed",
    "stage-refused",
    "guardrail-triggered",
    "guardrails-unenforced",
    "policy-decision",
    "policy-violation",
    "stage-output-withheld",
    "rate-limited",
    "rollback-started",
    "stage-rolled-back",
    "rollback-failed",
];

/// `(stage, event, details)` of the execution events, in order, ids of approvals and
/// evaluation times left out.
/// An agent whose gate follows it records `stage-output` and, once approved, a
/// `stage-passed` naming the approval; in a workflow the suspend follows the task, whose
/// `stage-passed` carries what `stage-output` carries: the two read as one.
/// `d` with each execution id (a run's `run-XXXXXXXX`, the harness's workflow uid) written
/// `<execution>` (`${execution.id}` is the run's id in `pbc run` and the workflow's uid in a
/// workflow), and recorded outputs' paths relative to the playbook's directory.
fn without_execution_ids(d: &mut Value) {
    let uid = argo_harness::WORKFLOW_UID;
    let mut stack = vec![d];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => {
                let mut out = s.replace(uid, "<execution>");
                while let Some(at) = out.find("run-").filter(|&at| {
                    out.get(at + 4..at + 12)
                        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                }) {
                    out.replace_range(at..at + 12, "<execution>");
                }
                // A recorded output's path: the case's directory locally, the ConfigMap's
                // mount in a pod.
                if let Some(at) = out.find("/recorded/") {
                    let from = out[..at].rfind(' ').map_or(0, |b| b + 1);
                    out.replace_range(from..at + 1, "");
                }
                *s = out;
            }
            Value::Array(a) => stack.extend(a.iter_mut()),
            Value::Object(m) => stack.extend(m.values_mut()),
            _ => {}
        }
    }
}

fn stage_entries(lines: &str) -> Vec<(String, String, Value)> {
    lines
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter_map(|e| {
            let mut event = e["event"].as_str().unwrap_or("").to_string();
            let mut d = e["details"].clone();
            if let Some(m) = d.as_object_mut() {
                // How long a policy took is not part of what it decided.
                m.remove("evaluation_ms");
                let approval = m.remove("approval").is_some();
                if approval && event == "stage-passed" && m.is_empty() {
                    return None;
                }
            }
            if event == "stage-output" {
                event = "stage-passed".into();
            }
            without_execution_ids(&mut d);
            EXECUTION_EVENTS
                .contains(&event.as_str())
                .then(|| (e["stage"].as_str().unwrap_or("").to_string(), event, d))
        })
        .collect()
}

struct Outcome {
    statuses: BTreeMap<String, String>,
    outputs: BTreeMap<String, Value>,
    /// Per stage, in order (stages that do not need each other may run in either order).
    entries: BTreeMap<String, Vec<(String, Value)>>,
}

fn by_stage(list: Vec<(String, String, Value)>) -> BTreeMap<String, Vec<(String, Value)>> {
    let mut m: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    for (stage, event, details) in list {
        m.entry(stage).or_default().push((event, details));
    }
    m
}

/// `pbc run`, each gate decided as the case says, resumed until the run ends.
fn local(case: &Case) -> Outcome {
    let d = case.dir.path();
    std::fs::write(d.join("input.json"), case.input.to_string()).unwrap();
    let json = |o: Output| -> Value {
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)))
    };
    let mut r = json(pbc(
        d,
        &[
            "run",
            &case.playbook,
            "--input",
            "input.json",
            "--agents",
            "agents.yaml",
            "--state",
            "st",
            "--as",
            "requester@example.com",
            "--format",
            "json",
        ],
    ));
    let id = r["run"].as_str().unwrap().to_string();
    for _ in 0..10 {
        let pending: Vec<(String, String)> = r["stages"]
            .as_object()
            .unwrap()
            .iter()
            .filter_map(|(s, v)| {
                let a = v["approval_id"].as_str()?;
                (v["status"] == "waiting-approval").then(|| (s.clone(), a.to_string()))
            })
            .collect();
        if pending.is_empty() {
            break;
        }
        for (stage, aid) in pending {
            let (who, what) = &case.decisions[&stage];
            let o = if what == "approve" {
                pbc(d, &["approve", &aid, "--as", who, "--state", "st"])
            } else {
                pbc(
                    d,
                    &[
                        "reject", &aid, "--as", who, "--reason", "no", "--state", "st",
                    ],
                )
            };
            ok(&o);
        }
        r = json(pbc(
            d,
            &["resume", &id, "--state", "st", "--format", "json"],
        ));
    }
    let mut statuses = BTreeMap::new();
    let mut outputs = BTreeMap::new();
    for (s, v) in r["stages"].as_object().unwrap() {
        statuses.insert(s.clone(), v["status"].as_str().unwrap().to_string());
        if v["status"] == "passed" {
            outputs.insert(s.clone(), v["output"].clone());
        }
    }
    let audit = std::fs::read_to_string(d.join("st/audit.jsonl")).unwrap();
    Outcome {
        statuses,
        outputs,
        entries: by_stage(stage_entries(&audit)),
    }
}

/// The emitted workflow, executed by the harness with the same decisions.
fn workflow(case: &Case) -> (Outcome, Execution) {
    let d = case.dir.path();
    let docs = yaml(&ok(&pbc(d, &["build", &case.playbook, "--target", "argo"])));
    let wt = docs
        .iter()
        .find(|d| d["kind"] == "WorkflowTemplate")
        .expect("a WorkflowTemplate")
        .clone();
    // The emitted ConfigMaps, mounted as the template's volume says: nothing else of the
    // project reaches the pods.
    let root = tempfile::tempdir().unwrap();
    let mount = root.path().join("mount");
    argo_harness::mount_config_maps(&docs, &wt, &mount);
    let work = root.path().join("pods");
    std::fs::create_dir_all(&work).unwrap();
    open_up(root.path());
    let mut h = Harness::new(PathBuf::from(env!("CARGO_BIN_EXE_pbc")), mount, work);
    for (stage, (_, what)) in &case.decisions {
        h.decisions
            .insert(format!("{stage}-approval"), what.clone());
    }
    // The state store's password, from the Secret the pods' env names.
    for t in wt["spec"]["templates"].as_array().unwrap() {
        for e in t["container"]["env"].as_array().into_iter().flatten() {
            let r = &e["valueFrom"]["secretKeyRef"];
            if e["name"] == "PBC_STATE_PASSWORD" {
                h.secrets.insert(
                    (
                        r["name"].as_str().unwrap().to_string(),
                        r["key"].as_str().unwrap().to_string(),
                    ),
                    std::env::var("PBC_STATE_PASSWORD").unwrap_or_default(),
                );
            }
        }
    }
    // A shared store: the exit handler runs twice (its undo steps run once).
    h.exit_runs = if case.db.is_some() { 2 } else { 1 };
    let x = h.execute(&wt, &case.input);
    let pb = &wt["metadata"]["name"];
    let mut statuses = BTreeMap::new();
    let mut outputs = BTreeMap::new();
    let mut entries = Vec::new();
    for t in wt["spec"]["templates"].as_array().unwrap() {
        if t["metadata"]["labels"]["agenticops.io/playbook"] != *pb {
            continue;
        }
        let Some(stage) = t["metadata"]["labels"]["agenticops.io/stage"].as_str() else {
            continue;
        };
        let n = &x.nodes[stage];
        // The stages before it (the task's upstream outputs), decided before it.
        let upstream: Vec<&str> = t["inputs"]["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str()?.strip_prefix("upstream-"))
            .collect();
        // The check after the stage's gate (before an action, after an agent): a rejection
        // (exit 1) or an expiry (exit 2) is the stage's status, as in `pbc run`.
        let check = x.nodes.get(&format!("{stage}-approval-check"));
        let decided = match check
            .filter(|c| c.phase == Phase::Failed)
            .and_then(|c| c.exit_code)
        {
            Some(1) => Some("rejected"),
            Some(2) => Some("expired"),
            _ => None,
        };
        let status = match n.phase {
            _ if decided.is_some() => decided.unwrap_or_default().to_string(),
            Phase::Skipped => "skipped".to_string(),
            // Omitted after a refusal or a gate's rejection or expiry: blocked, as `pbc run`
            // says; else never reached.
            Phase::Omitted
                if upstream.iter().any(|u| {
                    matches!(
                        statuses.get(*u).map(String::as_str),
                        Some("refused" | "blocked" | "rejected" | "expired" | "failed")
                    )
                }) =>
            {
                "blocked".to_string()
            }
            Phase::Omitted => "pending".to_string(),
            _ => n
                .stderr
                .lines()
                .find_map(|l| l.strip_prefix(&format!("stage {stage}: ")))
                .unwrap_or_else(|| panic!("{stage}: {}", n.stderr))
                .to_string(),
        };
        if status == "passed" {
            outputs.insert(
                stage.to_string(),
                serde_json::from_str(&n.outputs["output"]).unwrap(),
            );
        }
        statuses.insert(stage.to_string(), status);
        entries.extend(
            stage_entries(&n.stdout)
                .into_iter()
                .filter(|(s, _, _)| s == stage),
        );
    }
    // The exit handler's undo steps: a stage undone is `rolled-back`, as in `pbc run`.
    if let Some(n) = x.exit.get("rollback") {
        for (stage, event, details) in stage_entries(&n.stdout) {
            if event == "stage-rolled-back" {
                statuses.insert(stage.clone(), "rolled-back".into());
                outputs.remove(&stage);
            }
            entries.push((stage, event, details));
        }
    }
    (
        Outcome {
            statuses,
            outputs,
            entries: by_stage(entries),
        },
        x,
    )
}

fn differential(case: &Case) -> Execution {
    let want = local(case);
    let (got, x) = workflow(case);
    assert_eq!(got.statuses, want.statuses, "stage statuses");
    assert_eq!(got.outputs, want.outputs, "outputs");
    assert_eq!(got.entries, want.entries, "audit entries");
    x
}

// ------------------------------------------------------------------ the cases

fn refund(input: &str) -> Case {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("testdata/policy"), dir.path());
    let cfg = std::fs::read_to_string(dir.path().join(".pbc.yaml")).unwrap();
    std::fs::write(dir.path().join(".pbc.yaml"), format!("{cfg}{SERVE_AGENTS}")).unwrap();
    std::fs::copy(
        repo().join("testdata/policy/playbooks/process-customer-refund.yaml"),
        dir.path().join("refund.yaml"),
    )
    .unwrap();
    let input: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("testdata/policy/inputs").join(input)).unwrap(),
    )
    .unwrap();
    Case {
        dir,
        playbook: "refund.yaml".into(),
        decisions: [(
            "process-refund".to_string(),
            ("fran@example.com".to_string(), "approve".to_string()),
        )]
        .into(),
        input,
        db: None,
    }
}

#[test]
fn a_refund_within_the_limits_runs_as_pbc_run_runs_it() {
    let x = differential(&refund("refund-1000.json"));
    assert_eq!(x.status, "Succeeded");
}

#[test]
fn a_refund_over_the_limit_is_denied_by_its_policy_in_the_pod() {
    let x = differential(&refund("refund-10000.json"));
    assert_eq!(x.status, "Failed");
    assert_eq!(x.nodes["notify-customer"].phase, Phase::Omitted);
}

/// The agents file the workflow carries (`pbc run` is given it with `--agents`).
const SERVE_AGENTS: &str = "serve:\n  agents: agents.yaml\n";

const REVIEW_PBC_YAML: &str = r#"notifications:
  slack-security-channel: {stdout: true}
  slack-security: {stdout: true}
  email-ciso: {stdout: true}
  slack-eng-ops: {stdout: true}
audit-sinks:
  langfuse: {file: audit-sink.jsonl}
  cloudtrail: {file: audit-sink.jsonl}
  s3: {file: audit-sink.jsonl}
guardrails:
  owasp-basic-check: {patterns: ['\beval\s*\(']}
  owasp-top-10: {patterns: ['(?i)union\s+select']}
  cwe-top-25: {patterns: ['\bstrcpy\s*\(']}
  gdpr-compliance: {patterns: ['(?i)\bdate of birth\b']}
  sox-compliance: {patterns: ['(?i)\boff-the-books\b']}
"#;

/// The code-review seed with recorded agent outputs: guardrails, a manual gate, a
/// conditional gate reading `security-report.risk-level`, `audit-log: required`, context,
/// rollback.
fn review(risk: &str, security: &str, leak: bool) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_tree(&repo().join("testdata/seeds/code-review-agent"), d);
    std::fs::write(
        d.join(".pbc.yaml"),
        format!("{REVIEW_PBC_YAML}{SERVE_AGENTS}"),
    )
    .unwrap();
    std::fs::write(
        d.join("agents.yaml"),
        "agents:\n  glm-5: {fixture: recorded/}\nroles:\n  security-team: [ann@example.com]\n  compliance-team: [carol@example.com]\n  tech-lead: [tom@example.com]\n",
    )
    .unwrap();
    let rec = d.join("recorded");
    std::fs::create_dir_all(&rec).unwrap();
    let summary = if leak {
        "eval(user_input) in app.py"
    } else {
        "5 files reviewed"
    };
    for (stage, out) in [
        (
            "code-analysis",
            json!({"summary": summary, "files-changed": 5, "lines-added": 200, "issues": []}),
        ),
        (
            "security-review",
            json!({"risk-level": risk, "summary": "reviewed", "findings": []}),
        ),
        (
            "compliance-check",
            json!({"compliant": true, "violations": []}),
        ),
        ("final-approval", json!({"decision": "ship"})),
    ] {
        std::fs::write(rec.join(format!("{stage}.json")), out.to_string()).unwrap();
    }
    let decide = |who: &str, what: &str| (who.to_string(), what.to_string());
    Case {
        dir,
        playbook: "code-review-agent.yaml".into(),
        decisions: [
            (
                "security-review".to_string(),
                decide("ann@example.com", security),
            ),
            (
                "compliance-check".to_string(),
                decide("carol@example.com", "approve"),
            ),
            (
                "final-approval".to_string(),
                decide("tom@example.com", "approve"),
            ),
        ]
        .into(),
        input: json!({"files_changed": 5, "lines_added": 200}),
        db: None,
    }
}

#[test]
fn a_review_with_every_gate_approved() {
    let x = differential(&review("LOW", "approve", false));
    assert_eq!(x.status, "Succeeded");
    // A low risk makes the conditional gate automatic: its suspend is skipped.
    assert_eq!(x.nodes["compliance-check-approval"].phase, Phase::Skipped);
}

#[test]
fn a_high_risk_review_asks_the_conditional_gate() {
    let x = differential(&review("HIGH", "approve", false));
    assert_eq!(x.status, "Succeeded");
    assert_eq!(x.nodes["compliance-check-approval"].phase, Phase::Succeeded);
}

#[test]
fn a_rejected_review_stops_where_pbc_run_stops() {
    let x = differential(&review("LOW", "reject", false));
    assert_eq!(x.status, "Failed");
    assert_eq!(x.nodes["security-review-approval-check"].exit_code, Some(1));
    assert_eq!(x.nodes["final-approval"].phase, Phase::Omitted);
}

#[test]
fn a_guardrail_blocks_the_output_in_the_pod_as_in_pbc_run() {
    let x = differential(&review("LOW", "approve", true));
    assert_eq!(x.status, "Failed");
}

/// Triage and paging: the trigger payload read by a conditional gate (task `pbc-input`), a
/// stage's `when`, a gate with an escalation level.
fn paging(page: bool) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_tree(&repo().join("testdata/targets/gated-when"), d);
    std::fs::write(
        d.join(".pbc.yaml"),
        format!("notifications:\n  slack-incidents: {{stdout: true}}\n  pagerduty-sre: {{stdout: true}}\n{SERVE_AGENTS}"),
    )
    .unwrap();
    std::fs::write(
        d.join("agents.yaml"),
        "agents:\n  glm-5: {fixture: recorded/}\nactions:\n  pager:page: {fixture: recorded/}\n  tickets:create: {fixture: recorded/}\nroles:\n  incident-commander: [ic@example.com]\n  sre-lead: [sre@example.com]\n  support-lead: [sup@example.com]\n",
    )
    .unwrap();
    let rec = d.join("recorded");
    std::fs::create_dir_all(&rec).unwrap();
    for (stage, out) in [
        ("triage", json!({"severity": "high", "page": page})),
        ("page-oncall", json!({"paged": true})),
        ("open-ticket", json!({"ticket": "T-1"})),
        ("report", json!({"summary": "handled"})),
    ] {
        std::fs::write(rec.join(format!("{stage}.json")), out.to_string()).unwrap();
    }
    Case {
        dir,
        playbook: "gated-when.yaml".into(),
        decisions: [(
            "page-oncall".to_string(),
            ("ic@example.com".to_string(), "approve".to_string()),
        )]
        .into(),
        input: json!({"source": "synthetic"}),
        db: None,
    }
}

#[test]
fn paging_when_triage_says_so() {
    let x = differential(&paging(true));
    assert_eq!(x.status, "Succeeded");
    assert_eq!(x.nodes["pbc-input"].phase, Phase::Succeeded);
    assert_eq!(x.nodes["page-oncall-escalation-1"].phase, Phase::Skipped);
}

#[test]
fn no_page_skips_the_stage_and_its_gate() {
    let x = differential(&paging(false));
    assert_eq!(x.status, "Succeeded");
    assert_eq!(x.nodes["page-oncall"].phase, Phase::Skipped);
    assert_eq!(x.nodes["page-oncall-approval"].phase, Phase::Skipped);
}

// ------------------------------------------------------------------ the runner image's binary

/// With `PBC_TEST_STATIC=1` (`.ci/run` builds the suite with `+crt-static` for the explicit
/// target), the `pbc` the pods run is the image's static binary: its ELF has no program
/// interpreter (`PT_INTERP`), so it runs `FROM scratch`. Under `CI` the variable must be set.
#[test]
fn the_pods_run_a_static_pbc() {
    if std::env::var("PBC_TEST_STATIC").as_deref() != Ok("1") {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs the suite with the static pbc: PBC_TEST_STATIC=1 (see .ci/run)"
        );
        return;
    }
    use object::elf::{FileHeader64, PT_INTERP};
    use object::read::elf::{FileHeader, ProgramHeader};
    let data = std::fs::read(env!("CARGO_BIN_EXE_pbc")).unwrap();
    let header = FileHeader64::<object::Endianness>::parse(&*data).expect("an ELF64 file");
    let endian = header.endian().unwrap();
    let interp = header
        .program_headers(endian, &*data)
        .unwrap()
        .iter()
        .any(|p| p.p_type(endian) == PT_INTERP);
    assert!(
        !interp,
        "{} is dynamically linked",
        env!("CARGO_BIN_EXE_pbc")
    );
    // And it runs as the image's user: the conformance cases above ran every pod so.
    let x = differential(&paging(true));
    assert_eq!(x.status, "Succeeded");
}
