//! The runtime commands through the `pbc` binary, with real processes and files: the
//! code-review flow with `--format json`, a high-risk playbook's runbook, the http executor
//! against a loopback server, and audit tampering in five ways. Crash safety and the kill
//! switch are in `runtime_crash.rs`.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(name: &str) -> PathBuf {
    repo().join("runtime/tests/fixtures").join(name)
}

fn pbc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(args)
        .current_dir(dir)
        .env_remove("PBC_STATE_DIR")
        .env("ACTION_LOG", dir.join("actions.log"))
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            stdout(o),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

const PBC_YAML: &str = r#"guardrails:
  owasp-basic-check: {patterns: ['\beval\s*\(']}
  owasp-top-10: {patterns: ['(?i)union\s+select']}
  cwe-top-25: {patterns: ['\bstrcpy\s*\(']}
  gdpr-compliance: {patterns: ['(?i)\bdate of birth\b']}
  sox-compliance: {patterns: ['(?i)\boff-the-books\b']}
notifications:
  slack-security-channel: {file: notifications.jsonl}
  slack-security: {file: notifications.jsonl}
  email-ciso: {file: notifications.jsonl}
  slack-eng-ops: {file: notifications.jsonl}
audit-sinks:
  langfuse: {file: audit-sink.jsonl}
  cloudtrail: {file: audit-sink.jsonl}
  s3: {file: audit-sink.jsonl}
"#;

fn seed_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(repo().join("testdata/seeds/code-review-agent")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.path().join(".pbc.yaml"), PBC_YAML).unwrap();
    std::fs::write(
        dir.path().join("agents.yaml"),
        format!(
            "agents:\n  glm-5: {{command: [python3, {}]}}\nroles:\n  security-team: [ann@example.com]\n  compliance-team: [carol@example.com]\n  tech-lead: [tom@example.com]\n",
            fixture("review.py").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pr.json"),
        r#"{"files_changed": 5, "lines_added": 200, "risk_level": "LOW"}"#,
    )
    .unwrap();
    dir
}

#[test]
fn code_review_flow_with_json_output() {
    let d = seed_dir();
    let dir = d.path();
    let o = pbc(
        dir,
        &[
            "run",
            "code-review-agent.yaml",
            "--input",
            "pr.json",
            "--agents",
            "agents.yaml",
            "--state",
            "st",
            "--as",
            "alice@example.com",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json_of(&o);
    let obj = v.as_object().unwrap();
    assert_eq!(obj.keys().collect::<Vec<_>>(), ["run", "status", "stages"]);
    assert_eq!(v["status"], "waiting-approval");
    let run = v["run"].as_str().unwrap().to_string();
    let ca = v["stages"]["code-analysis"].as_object().unwrap();
    assert_eq!(
        ca.keys().collect::<Vec<_>>(),
        ["status", "guardrails_triggered", "approval_id", "output"]
    );
    assert_eq!(ca["status"], "passed");
    assert_eq!(ca["approval_id"], Value::Null);
    assert_eq!(ca["guardrails_triggered"], json!([]));
    assert_eq!(v["stages"]["compliance-check"]["status"], "pending");
    let id = v["stages"]["security-review"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 8);
    // The requester and a stranger are refused; exit 1.
    for who in ["alice@example.com", "eve@example.com"] {
        let o = pbc(dir, &["approve", &id, "--as", who, "--state", "st"]);
        assert_eq!(o.status.code(), Some(1), "{who}");
    }
    let o = pbc(
        dir,
        &["approve", &id, "--as", "ann@example.com", "--state", "st"],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout(&o).contains("security-team"));
    // runs: waiting on nothing pending now? The approval is decided; resume executes.
    let o = pbc(dir, &["resume", &run, "--state", "st", "--format", "json"]);
    let v = json_of(&o);
    assert_eq!(v["stages"]["compliance-check"]["status"], "passed");
    assert_eq!(v["stages"]["final-approval"]["status"], "waiting-approval");
    let o = pbc(dir, &["runs", "--state", "st", "--format", "json"]);
    let runs = json_of(&o);
    assert_eq!(runs["runs"][0]["run"], json!(run));
    assert_eq!(runs["runs"][0]["status"], "waiting-approval");
    assert!(
        runs["runs"][0]["waiting_on"]
            .as_str()
            .unwrap()
            .contains("final-approval")
    );
    assert_eq!(
        runs["runs"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["run", "playbook", "status", "waiting_on", "started"]
    );
    let human = stdout(&pbc(dir, &["runs", "--state", "st"]));
    assert!(
        human.contains("SLA LEFT") && human.contains("1h 59m"),
        "{human}"
    );
    let fid = v["stages"]["final-approval"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        pbc(
            dir,
            &["approve", &fid, "--as", "tom@example.com", "--state", "st"]
        )
        .status
        .code(),
        Some(0)
    );
    let o = pbc(dir, &["resume", &run, "--state", "st"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("succeeded"), "{}", stdout(&o));
    let o = pbc(dir, &["audit", "verify", "--state", "st"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // PBC_STATE_DIR is honoured.
    let o = Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(["runs", "--format", "json"])
        .current_dir(dir)
        .env("PBC_STATE_DIR", dir.join("st"))
        .output()
        .unwrap();
    assert_eq!(json_of(&o)["runs"][0]["status"], "succeeded");
}

#[test]
fn a_rejection_is_shown_when_the_playbook_fires_again() {
    let d = seed_dir();
    let dir = d.path();
    let args = [
        "run",
        "code-review-agent.yaml",
        "--input",
        "pr.json",
        "--state",
        "st",
        "--as",
        "alice@example.com",
        "--format",
        "json",
    ];
    let v = json_of(&pbc(dir, &args));
    let id = v["stages"]["security-review"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = pbc(
        dir,
        &[
            "reject",
            &id,
            "--as",
            "ann@example.com",
            "--reason",
            "too risky on a Friday",
            "--state",
            "st",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    let o = pbc(
        dir,
        &[
            "resume",
            v["run"].as_str().unwrap(),
            "--state",
            "st",
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json_of(&o)["status"], "rejected");
    let o = pbc(dir, &args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("too risky on a Friday") && err.contains("ann@example.com"),
        "{err}"
    );
}

#[test]
fn a_high_risk_playbook_is_refused_with_its_runbook() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    std::fs::write(
        dir.join("restart.yaml"),
        r#"apiVersion: agenticops/v1
kind: Playbook
metadata:
  name: restart-database
spec:
  trigger: db-degraded
  risk: high
  stages:
    - name: failover
      action: db:failover
      params:
        cluster: "${input.cluster}"
        reason: "${playbook.name}"
      rollback:
        action: db:failback
        params:
          cluster: "${input.cluster}"
    - name: announce
      action: notify:send_message
      params:
        message: "failover of ${input.cluster} done"
"#,
    )
    .unwrap();
    std::fs::write(dir.join("in.json"), r#"{"cluster": "pg-main"}"#).unwrap();
    let o = pbc(
        dir,
        &[
            "run",
            "restart.yaml",
            "--input",
            "in.json",
            "--state",
            "st",
            "--as",
            "alice",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = stdout(&o);
    assert!(out.contains("refused"), "{out}");
    assert!(out.contains("RUNBOOK"), "{out}");
    assert!(out.contains("db:failover"), "{out}");
    assert!(out.contains(r#""cluster":"pg-main""#), "{out}");
    assert!(out.contains("rollback: db:failback"), "{out}");
    assert!(out.contains("failover of pg-main done"), "{out}");
    assert!(!dir.join("actions.log").exists(), "nothing executed");
    let o = pbc(
        dir,
        &[
            "run",
            "restart.yaml",
            "--input",
            "in.json",
            "--state",
            "st",
            "--format",
            "json",
        ],
    );
    let v = json_of(&o);
    assert_eq!(v["status"], "refused");
    assert_eq!(v["stages"]["failover"]["status"], "refused");
    assert!(String::from_utf8_lossy(&o.stderr).contains("RUNBOOK"));
}

/// An OpenAI-compatible server on loopback that answers one request and hands it back.
fn chat_server(answer: Value) -> (String, std::thread::JoinHandle<Value>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/chat/completions", l.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut len = 0usize;
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with("POST /v1/chat/completions"), "{line}");
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
        let resp = json!({"id": "x", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": answer.to_string()}, "finish_reason": "stop"}]});
        let text = resp.to_string();
        write!(s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len()).unwrap();
        s.flush().unwrap();
        serde_json::from_slice(&body).unwrap()
    });
    (url, h)
}

#[test]
fn the_http_executor_talks_to_a_loopback_server() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    std::fs::write(
        dir.join("triage.yaml"),
        r#"apiVersion: agenticops/v1
kind: Playbook
metadata:
  name: triage
spec:
  trigger: alert
  stages:
    - name: classify
      agent: gpt-x
      prompt: "Classify the alert ${input.alert}."
      output-schema: verdict.json
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("verdict.json"),
        r#"{"type": "object", "properties": {"severity": {"enum": ["low", "high"]}}, "required": ["severity"]}"#,
    )
    .unwrap();
    let (url, server) = chat_server(json!({"severity": "high"}));
    std::fs::write(
        dir.join("agents.yaml"),
        format!("agents:\n  gpt-x: {{http: {{url: \"{url}\", model: gpt-x}}, system-prompt: \"You triage alerts.\", timeout: 10s}}\n"),
    )
    .unwrap();
    std::fs::write(dir.join("in.json"), r#"{"alert": "disk full"}"#).unwrap();
    let o = pbc(
        dir,
        &[
            "run",
            "triage.yaml",
            "--input",
            "in.json",
            "--state",
            "st",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json_of(&o);
    assert_eq!(
        v["stages"]["classify"]["output"],
        json!({"severity": "high"})
    );
    let req = server.join().unwrap();
    assert_eq!(req["model"], "gpt-x");
    assert_eq!(req["response_format"], json!({"type": "json_object"}));
    assert_eq!(
        req["messages"][0],
        json!({"role": "system", "content": "You triage alerts."})
    );
    let user = req["messages"][1]["content"].as_str().unwrap();
    assert!(
        user.starts_with("Classify the alert disk full.\n\n{"),
        "{user}"
    );
    let payload: Value = serde_json::from_str(user.split_once("\n\n").unwrap().1).unwrap();
    assert_eq!(payload["stage"], "classify");
    assert_eq!(payload["input"], json!({"alert": "disk full"}));
}

/// A finished run's state directory, to tamper with copies of.
fn finished_state() -> tempfile::TempDir {
    let d = seed_dir();
    let dir = d.path();
    std::fs::write(dir.join("pr.json"), r#"{"mode": "invalid"}"#).unwrap();
    pbc(
        dir,
        &[
            "run",
            "code-review-agent.yaml",
            "--input",
            "pr.json",
            "--state",
            "st",
            "--as",
            "alice",
        ],
    );
    pbc(
        dir,
        &[
            "run",
            "code-review-agent.yaml",
            "--input",
            "pr.json",
            "--state",
            "st",
            "--as",
            "alice",
        ],
    );
    d
}

fn copy_state(from: &Path) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, d.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    d
}

#[test]
fn audit_tampering_is_detected_in_each_of_five_ways() {
    let d = finished_state();
    let st = d.path().join("st");
    let o = pbc(d.path(), &["audit", "verify", "--state", "st"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let text = std::fs::read_to_string(st.join("audit.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 8, "{}", lines.len());
    let join = |v: Vec<&str>| v.join("\n") + "\n";
    let edited_line = lines[3]
        .replace("\"actor\":\"pbc\"", "\"actor\":\"bob\"")
        .replace("\"actor\":\"alice\"", "\"actor\":\"bob\"");
    assert_ne!(edited_line, lines[3]);
    // A forged line chained properly to line 4, inserted after it.
    let forged = {
        let prev: Value = serde_json::from_str(lines[3]).unwrap();
        let e = pbc_runtime::AuditEntry {
            seq: 5,
            time: "2026-01-01T00:00:00.000Z".into(),
            run: None,
            stage: None,
            event: "approval-granted".into(),
            actor: "mallory@example.com".into(),
            compliance: vec![],
            details: json!({}),
            prev: prev["hash"].as_str().unwrap().into(),
            hash: String::new(),
        };
        pbc_runtime::audit::seal(&e).0
    };
    let mut cases: Vec<(&str, String, usize)> = vec![
        (
            "edited",
            join([&lines[..3], &[edited_line.as_str()], &lines[4..]].concat()),
            4,
        ),
        ("removed", join([&lines[..2], &lines[3..]].concat()), 3),
        (
            "reordered",
            join([&lines[..4], &[lines[5], lines[4]], &lines[6..]].concat()),
            5,
        ),
        (
            "inserted",
            join([&lines[..4], &[forged.as_str()], &lines[4..]].concat()),
            5,
        ),
    ];
    let cut = lines.len() - 2;
    cases.push(("truncated", join(lines[..cut].to_vec()), cut + 1));
    for (what, tampered, line) in cases {
        let copy = copy_state(&st);
        std::fs::write(copy.path().join("audit.jsonl"), tampered).unwrap();
        let o = pbc(
            d.path(),
            &["audit", "verify", "--state", copy.path().to_str().unwrap()],
        );
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(1), "{what}: {out}");
        assert!(
            out.contains(&format!("(line {line})")),
            "{what}: expected line {line}: {out}"
        );
    }
    // An explicit FILE is verified against the state when it is the state's log.
    let o = pbc(
        d.path(),
        &["audit", "verify", "st/audit.jsonl", "--state", "st"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn deciding_or_resuming_without_a_state_store_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("no-state-here");
    let st = state.to_str().unwrap();
    for args in [
        vec![
            "approve",
            "abcd1234",
            "--as",
            "sam@example.com",
            "--state",
            st,
        ],
        vec![
            "reject",
            "abcd1234",
            "--as",
            "sam@example.com",
            "--reason",
            "no",
            "--state",
            st,
        ],
        vec!["resume", "run-abcd1234", "--state", st],
    ] {
        let out = pbc(dir.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no state store here"), "{args:?}: {err}");
        assert!(!state.exists(), "{args:?} created the state directory");
    }
}
