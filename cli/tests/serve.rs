//! `pbc serve` through the real binary on 127.0.0.1:0, over HTTP: signed events and their
//! idempotency, who may decide an approval, SLA escalation and expiry with no request typed,
//! body limits, metrics, failed authentications, a `kill -9` and a restart, and refusing to
//! start on check errors.

mod serve_common;

use serde_json::{Value, json};
use serve_common::{Server, approvals, pbc, project};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn runs_in_store(s: &Server) -> usize {
    let (code, v) = s.get("/v1/runs", "ann-token");
    assert_eq!(code, 200, "{v}");
    v["runs"].as_array().map_or(0, Vec::len)
}

fn one_run(v: &Value) -> String {
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "{v}");
    runs[0].as_str().unwrap().to_string()
}

#[test]
fn events_approvals_and_the_api() {
    let d = project("1h", "1h");
    let s = Server::start(d.path(), "deploy.yaml");
    let (code, v) = s.call("GET", "/healthz", None, &[], None);
    assert_eq!((code, v["status"].as_str()), (200, Some("ok")));

    // A signed event starts a run; the poster (a signature) is the requester.
    let body = r#"{"version": "1.2.3"}"#;
    let (code, v) = s.event("release", body, Some("delivery-1"));
    assert_eq!(code, 202, "{v}");
    let first = one_run(&v);
    // The same Idempotency-Key answers as the first time and starts nothing.
    let (code, again) = s.event("release", body, Some("delivery-1"));
    assert_eq!((code, &again), (202, &v));
    assert_eq!(runs_in_store(&s), 1);

    // A bad or missing signature, a wrong token: 401, nothing started.
    let h = [("X-Hub-Signature-256", "sha256=00ff")];
    let (code, v) = s.call("POST", "/v1/events/release", None, &h, Some(body));
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{v}"
    );
    let forged = serve_common::sign(r#"{"version": "6.6.6"}"#);
    let h = [("X-Hub-Signature-256", forged.as_str())];
    let (code, _) = s.call("POST", "/v1/events/release", None, &h, Some(body));
    assert_eq!(code, 401);
    let (code, _) = s.call("POST", "/v1/events/release", None, &[], Some(body));
    assert_eq!(code, 401);
    let (code, _) = s.post("/v1/events/release", "not-a-token", body);
    assert_eq!(code, 401);
    assert_eq!(runs_in_store(&s), 1);

    // Invalid input: 400 with every problem, nothing started. No playbook: [].
    let (code, v) = s.event("release", r#"{"version": 3}"#, None);
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["error"]["code"], "invalid-input");
    assert_eq!(v["error"]["details"][0]["path"], "/version");
    assert!(v["error"]["details"][0]["reason"].is_string());
    let (code, v) = s.event("nobody-listens", "{}", None);
    assert_eq!((code, v), (202, json!({"runs": []})));
    assert_eq!(runs_in_store(&s), 1);

    // The run waits at its gate; sam (role sre) may decide it, bob may not.
    s.wait_status(&first, "waiting-approval");
    let (code, v) = s.get("/v1/approvals", "sam-token");
    assert_eq!(code, 200);
    let a = &v["approvals"][0];
    assert_eq!(a["run"], first.as_str());
    assert_eq!(a["playbook"], "deploy");
    assert_eq!(a["stage"], "apply");
    assert_eq!(a["requested_by"], "event:release");
    assert_eq!(a["level"], 0);
    assert!(a["deadline"].is_string());
    assert_eq!(a["approvers"], json!([{"role": "sre"}]));
    // bob (authenticated by the tokens file) may decide nothing.
    let (code, v) = s.get("/v1/approvals", "bob-token");
    assert_eq!((code, v), (200, json!({"approvals": []})));

    // A run ann starts: ann (the requester) and bob (a stranger) get 403, nothing changes.
    let (code, v) = s.post(
        "/v1/runs",
        "ann-token",
        r#"{"playbook": "deploy", "input": {"version": "2.0.0"}}"#,
    );
    assert_eq!(code, 201, "{v}");
    let mine = v["run"].as_str().unwrap().to_string();
    let before = s.wait_status(&mine, "waiting-approval");
    let gate = before["stages"]["apply"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, v) = s.get("/v1/approvals", "ann-token");
    assert_eq!(v, json!({"approvals": []}), "the requester is not asked");
    for who in ["ann-token", "bob-token"] {
        let (code, v) = s.post(&format!("/v1/approvals/{gate}/approve"), who, "");
        assert_eq!(
            (code, v["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{v}"
        );
        let (code, _) = s.post(
            &format!("/v1/approvals/{gate}/reject"),
            who,
            r#"{"reason": "no"}"#,
        );
        assert_eq!(code, 403);
    }
    let (_, after) = s.get(&format!("/v1/runs/{mine}"), "ann-token");
    assert_eq!(after, before);
    assert!(!d.path().join("actions.log").exists());

    // sam approves: the run finishes; a second decision is 409.
    let (code, v) = s.post(&format!("/v1/approvals/{gate}/approve"), "sam-token", "");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "approved");
    let done = s.wait_status(&mine, "succeeded");
    assert_eq!(done["stages"]["apply"]["status"], "passed");
    let (code, v) = s.post(&format!("/v1/approvals/{gate}/approve"), "sam-token", "");
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (409, Some("already-decided"))
    );
    let (code, _) = s.post(
        &format!("/v1/approvals/{gate}/reject"),
        "lee-token",
        r#"{"reason": "late"}"#,
    );
    assert_eq!(code, 409);
    let (code, _) = s.post("/v1/approvals/nosuchid/approve", "sam-token", "");
    assert_eq!(code, 404);

    // A rejection needs a reason, and ends the run.
    let (_, v) = s.get("/v1/approvals", "sam-token");
    let g1 = v["approvals"][0]["id"].as_str().unwrap().to_string();
    let (code, _) = s.post(&format!("/v1/approvals/{g1}/reject"), "sam-token", "{}");
    assert_eq!(code, 400);
    let (code, _) = s.post(
        &format!("/v1/approvals/{g1}/reject"),
        "sam-token",
        r#"{"reason": "not this release"}"#,
    );
    assert_eq!(code, 200);
    s.wait_status(&first, "rejected");

    // 413 for a body over serve.max-body-bytes; 404 for an unknown run or playbook.
    let huge = format!(r#"{{"version": "{}"}}"#, "x".repeat(10_000));
    let (code, v) = s.event("release", &huge, None);
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (413, Some("body-too-large"))
    );
    let (code, _) = s.get("/v1/runs/run-nope", "ann-token");
    assert_eq!(code, 404);
    let (code, _) = s.post("/v1/runs", "ann-token", r#"{"playbook": "nope"}"#);
    assert_eq!(code, 404);

    // The kill switch latches: events are refused with 409 until it is released.
    let (code, v) = s.post("/v1/kill-switch", "lee-token", "");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["kill_switch"]["engaged"], true);
    assert_eq!(v["kill_switch"]["by"], "lee@example.com");
    let (code, v) = s.event("release", body, None);
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (409, Some("kill-switch-engaged"))
    );
    let (code, v) = s.call("DELETE", "/v1/kill-switch", Some("lee-token"), &[], None);
    assert_eq!(
        (code, v["kill_switch"]["engaged"].as_bool()),
        (200, Some(false))
    );

    // The CLI sees the runs the server started.
    let o = pbc(d.path(), &["runs", "--format", "json", "--state", "st"]);
    let cli: Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> = cli["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["run"].as_str())
        .collect();
    assert!(
        ids.contains(&first.as_str()) && ids.contains(&mine.as_str()),
        "{cli}"
    );

    // Metrics.
    let (code, v) = s.call("GET", "/metrics", None, &[], None);
    assert_eq!(code, 200);
    let text = v["text"].as_str().unwrap();
    // Prometheus's own parser reads it, and finds the families.
    if let Some(families) = prometheus_families(text) {
        for f in [
            "pbc_runs_started",
            "pbc_runs_finished",
            "pbc_runs",
            "pbc_approvals_pending",
            "pbc_sla_expired",
            "pbc_sla_escalations",
            "pbc_notifications_failed",
            "pbc_auth_failures",
        ] {
            assert!(
                families.iter().any(|x| x == f),
                "{f} not parsed: {families:?}"
            );
        }
    }
    for series in [
        "pbc_runs_started_total 2",
        "pbc_runs_finished_total{status=\"succeeded\"} 1",
        "pbc_runs{status=\"succeeded\"} 1",
        "pbc_runs{status=\"rejected\"} 1",
        "pbc_approvals_pending 0",
        "pbc_sla_expired 0",
        "pbc_sla_escalations 0",
        "pbc_notifications_failed 0",
        "# TYPE pbc_auth_failures_total counter",
    ] {
        assert!(text.contains(series), "{series} missing:\n{text}");
    }

    // Too many failed authentications from one address: 429, even with a good token.
    for _ in 0..12 {
        s.post("/v1/runs", "wrong", "{}");
    }
    let (code, v) = s.get("/v1/runs", "ann-token");
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (429, Some("too-many-failures"))
    );
    let log = s.log();
    assert!(
        log.contains("authentication failed from 127.0.0.1"),
        "{log}"
    );
    assert!(
        !log.contains("wrong") && !log.contains("ann-token"),
        "tokens are never logged:\n{log}"
    );
    assert!(
        !log.contains(serve_common::SECRET) && !log.contains("sha256="),
        "neither the event secret nor signatures are logged:\n{log}"
    );
    // The log is JSON: every line an object with a time, a level and a message; the engine's
    // audit events carry the run and stage ids; the server's carry the user.
    let lines = s.log_json();
    for l in &lines {
        for k in ["timestamp", "level", "message", "target"] {
            assert!(l.get(k).is_some(), "{k} missing from a log line: {l}");
        }
    }
    assert!(
        lines.iter().any(|l| l["target"] == "pbc::audit"
            && l["run"] == mine
            && l["stage"] == "apply"
            && l["event"] == "approval-granted"
            && l["actor"] == "sam@example.com"),
        "no audit event with run and stage ids:\n{log}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["run"] == first && l["user"] == "event:release"),
        "the run's start names its requester:\n{log}"
    );
    // The input ({"version": ...}) is data, never logged.
    assert!(!log.contains("\"version\""), "{log}");

    // SIGTERM: a graceful end.
    let status = s.terminate();
    assert!(status.success(), "{status:?}");
}

/// The metric family names `prometheus_client`'s text parser finds in `text` (python3 with
/// prometheus_client: the repository's `.venv`, `PBC_TEST_PYTHON` or `python3`; required under
/// CI, where `.ci/run` installs it).
fn prometheus_families(text: &str) -> Option<Vec<String>> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cands = vec![root.join(".venv/bin/python3")];
    if let Some(p) = std::env::var_os("PBC_TEST_PYTHON") {
        cands.push(p.into());
    }
    cands.push("python3".into());
    let script = "import sys, json\nfrom prometheus_client.parser import text_string_to_metric_families\nprint(json.dumps([f.name for f in text_string_to_metric_families(sys.stdin.read())]))\n";
    for py in cands {
        let has = Command::new(&py)
            .args(["-c", "import prometheus_client"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !has {
            continue;
        }
        let mut child = Command::new(&py)
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "the Prometheus parser refused /metrics: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        return Some(serde_json::from_slice(&out.stdout).unwrap());
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "python3 with prometheus_client is required under CI (.ci/run installs tests/serve/requirements.txt)"
    );
    eprintln!("skipped the Prometheus parser: no python3 with prometheus_client");
    None
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Polls the store (which applies no deadline) until the first approval is `(status,
/// level)`; returns when that was seen.
fn seen(dir: &std::path::Path, status: &str, level: i64) -> (i64, Option<i64>) {
    for _ in 0..400 {
        let a = approvals(dir);
        if let Some((_, s, l, deadline)) = a.first()
            && s == status
            && *l == level
        {
            return (now_ms(), *deadline);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "approval never became {status} at level {level}: {:?}",
        approvals(dir)
    );
}

#[test]
fn an_sla_escalates_then_expires_with_no_request() {
    let d = project("2s", "2s");
    let s = Server::start(d.path(), "deploy.yaml");
    let (code, v) = s.event("release", r#"{"version": "1"}"#, None);
    assert_eq!(code, 202, "{v}");
    let run = one_run(&v);
    // No request is made from here until the expiry: the server's own loop acts.
    let (_, first_deadline) = seen(d.path(), "pending", 0);
    let first_deadline = first_deadline.expect("an SLA deadline");
    let (at, second_deadline) = seen(d.path(), "pending", 1);
    assert!(
        at - first_deadline < 3_500,
        "escalated {} ms after the deadline",
        at - first_deadline
    );
    let second_deadline = second_deadline.expect("the escalation level's deadline");
    let (at, _) = seen(d.path(), "expired", 1);
    assert!(
        at - second_deadline < 3_500,
        "expired {} ms after the deadline",
        at - second_deadline
    );
    let v = s.wait_status(&run, "expired");
    assert_eq!(v["stages"]["apply"]["status"], "expired");
    let (_, v) = s.post(
        &format!("/v1/approvals/{}/approve", approvals(d.path())[0].0),
        "lee-token",
        "",
    );
    assert_eq!(v["error"]["code"], "expired");
    let (_, m) = s.call("GET", "/metrics", None, &[], None);
    let text = m["text"].as_str().unwrap();
    assert!(text.contains("pbc_sla_expired 1"), "{text}");
    assert!(text.contains("pbc_sla_escalations 1"), "{text}");
}

#[test]
fn kill_minus_9_then_restart_keeps_every_answer() {
    let d = project("1h", "1h");
    // ROOT `.`, a plain directory: its playbook files are served (agents.yaml is skipped).
    let s = Server::start(d.path(), ".");
    let (_, v) = s.event("release", r#"{"version": "1"}"#, Some("k-1"));
    let done = one_run(&v);
    s.wait_status(&done, "waiting-approval");
    let (_, v) = s.get("/v1/approvals", "sam-token");
    let gate = v["approvals"][0]["id"].as_str().unwrap().to_string();
    let (code, _) = s.post(&format!("/v1/approvals/{gate}/approve"), "sam-token", "");
    assert_eq!(code, 200);
    s.wait_status(&done, "succeeded");
    let (code, v) = s.event("release", r#"{"version": "2"}"#, Some("k-2"));
    assert_eq!(code, 202);
    let waiting = one_run(&v);
    let (code, v) = s.post(
        "/v1/runs",
        "ann-token",
        r#"{"playbook": "deploy", "input": {"version": "3"}}"#,
    );
    assert_eq!(code, 201);
    let started = v["run"].as_str().unwrap().to_string();
    s.kill9();

    let s = Server::start(d.path(), ".");
    s.wait_status(&done, "succeeded");
    s.wait_status(&waiting, "waiting-approval");
    s.wait_status(&started, "waiting-approval");
    // The idempotency answer survived: a replay starts nothing.
    let (code, v) = s.event("release", r#"{"version": "2"}"#, Some("k-2"));
    assert_eq!((code, one_run(&v)), (202, waiting.clone()));
    assert_eq!(runs_in_store(&s), 3);
    let (_, v) = s.get("/v1/approvals", "sam-token");
    assert_eq!(v["approvals"].as_array().map(Vec::len), Some(2), "{v}");
    let text = std::fs::read_to_string(d.path().join("actions.log")).unwrap();
    assert_eq!(
        text.lines().count(),
        1,
        "the approved action ran once: {text}"
    );
    drop(s);
    let o = pbc(d.path(), &["audit", "verify", "--state", "st"]);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn refuses_to_start_on_check_errors_or_several_environments() {
    let d = project("1h", "1h");
    let p = d.path().join("deploy.yaml");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.replace("sla: 1h", "sla: soon")).unwrap();
    let o = pbc(
        d.path(),
        &["serve", "deploy.yaml", "--listen", "127.0.0.1:0"],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("`soon` is not a duration"), "{err}");
    assert!(!err.contains("listening on"), "{err}");

    let root = tempfile::tempdir().unwrap();
    for env in ["staging", "production"] {
        std::fs::create_dir_all(root.path().join("overlays").join(env)).unwrap();
    }
    let o = pbc(
        root.path(),
        &["serve", ".", "--listen", "127.0.0.1:0", "--state", "st"],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--env"), "{err}");
}

/// The answer check is not vacuous: bodies, statuses and paths the document does not
/// describe are refused.
#[test]
fn the_openapi_check_refuses_what_the_document_does_not_say() {
    use serve_common::openapi::check;
    let refused = |m: &'static str, p: &'static str, s: u16, body: &'static str| {
        std::panic::catch_unwind(|| check(m, p, s, "application/json", body)).is_err()
    };
    // Accepted: documented shapes.
    check(
        "GET",
        "/healthz",
        200,
        "application/json",
        r#"{"status": "ok"}"#,
    );
    check(
        "POST",
        "/v1/runs",
        201,
        "application/json",
        r#"{"run": "r-1"}"#,
    );
    check(
        "GET",
        "/v1/runs/abc",
        404,
        "application/json",
        r#"{"error": {"code": "not-found", "message": "no run"}}"#,
    );
    // Refused: a missing field, an extra field, a status out of the run statuses, an
    // undocumented status code, an undocumented method.
    assert!(refused("POST", "/v1/runs", 201, r#"{}"#));
    assert!(refused(
        "POST",
        "/v1/runs",
        201,
        r#"{"run": "r", "extra": 1}"#
    ));
    assert!(refused(
        "GET",
        "/v1/runs/abc",
        200,
        r#"{"run": "abc", "status": "exploded", "stages": {}}"#
    ));
    assert!(refused("GET", "/healthz", 418, r#"{"status": "ok"}"#));
    assert!(refused("PUT", "/v1/runs", 200, r#"{}"#));
    assert!(refused("GET", "/nowhere", 200, r#"{}"#));
}

/// Stage durations, approval latency, guardrail triggers by name and policy figures are in
/// `/metrics`, read from the state store.
#[test]
fn metrics_hold_durations_latencies_guardrail_triggers_and_policies() {
    let dir = project("1h", "30m");
    let d = dir.path();
    // A second playbook with a guardrail defined in config, which its input trips.
    std::fs::write(
        d.join("scan.yaml"),
        r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: scan}
spec:
  trigger: scan
  stages:
    - name: check
      action: k8s:apply
      guardrails: [no-check-output]
"#,
    )
    .unwrap();
    // A third whose refunds a declarative policy limits.
    std::fs::write(
        d.join("refund.yaml"),
        r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: refund}
spec:
  trigger: refund
  stages:
    - name: pay
      action: payments:refund
      policy: refund-limit
      params: {amount: "${input.amount}"}
"#,
    )
    .unwrap();
    let agents = std::fs::read_to_string(d.join("agents.yaml")).unwrap();
    let refund = agents.replace("\"k8s:apply\"", "\"payments:refund\"");
    std::fs::write(
        d.join("agents.yaml"),
        format!("{agents}{}", refund.trim_start_matches("actions:\n")),
    )
    .unwrap();
    let cfg = std::fs::read_to_string(d.join(".pbc.yaml")).unwrap();
    std::fs::write(
        d.join(".pbc.yaml"),
        format!(
            "guardrails:\n  no-check-output: {{patterns: ['(?i)\\bforbidden\\b']}}\npolicies:\n  refund-limit:\n    rules:\n      - {{resource: 'payments:*', param: amount, constraints: {{amount_max: 100}}}}\n{cfg}"
        ),
    )
    .unwrap();
    let s = Server::start(d, ".");
    // deploy: approved by sam after its gate opened.
    let (code, v) = s.event("release", r#"{"version": "1.0"}"#, None);
    assert_eq!(code, 202, "{v}");
    let run = one_run(&v);
    let v = s.wait_status(&run, "waiting-approval");
    let approval = v["stages"]["apply"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, v) = s.post(
        &format!("/v1/approvals/{approval}/approve"),
        "sam-token",
        "{}",
    );
    assert_eq!(code, 200, "{v}");
    s.wait_status(&run, "succeeded");
    // scan: the guardrail blocks it.
    let (code, v) = s.event("scan", r#"{"note": "a forbidden word"}"#, None);
    assert_eq!(code, 202, "{v}");
    let scan = one_run(&v);
    let v = s.wait_status(&scan, "blocked");
    assert_eq!(
        v["stages"]["check"]["guardrails_triggered"],
        json!(["no-check-output"])
    );

    // refund: one allowed under the limit, one refused over it.
    for (amount, want) in [(50, "succeeded"), (500, "refused")] {
        let (code, v) = s.event("refund", &format!(r#"{{"amount": {amount}}}"#), None);
        assert_eq!(code, 202, "{v}");
        s.wait_status(&one_run(&v), want);
    }

    let (code, v) = s.call("GET", "/metrics", None, &[], None);
    assert_eq!(code, 200);
    let text = v["text"].as_str().unwrap();
    if let Some(families) = prometheus_families(text) {
        for f in [
            "pbc_stage_duration_seconds",
            "pbc_approval_latency_seconds",
            "pbc_guardrail_triggers",
            "pbc_policy_evaluations",
            "pbc_policy_compliance_ratio",
            "pbc_policy_violations",
            "pbc_policy_violations_by_risk",
            "pbc_policy_evaluation_seconds",
        ] {
            assert!(
                families.iter().any(|x| x == f),
                "{f} not parsed: {families:?}"
            );
        }
    }
    for series in [
        "# TYPE pbc_stage_duration_seconds histogram",
        "pbc_stage_duration_seconds_count{playbook=\"deploy\",stage=\"apply\"} 1",
        "pbc_stage_duration_seconds_bucket{playbook=\"deploy\",stage=\"apply\",le=\"+Inf\"} 1",
        "# TYPE pbc_approval_latency_seconds histogram",
        "pbc_approval_latency_seconds_count{decision=\"approved\"} 1",
        "pbc_approval_latency_seconds_bucket{decision=\"approved\",le=\"86400\"} 1",
        "pbc_guardrail_triggers_total{guardrail=\"no-check-output\"} 1",
        "pbc_policy_evaluations_total{decision=\"allow\"} 1",
        "pbc_policy_evaluations_total{decision=\"deny\"} 1",
        "pbc_policy_compliance_ratio 0.5",
        "pbc_policy_violations_total{policy=\"refund-limit\"} 1",
        "pbc_policy_violations_by_risk_total{risk=\"low\"} 1",
        "# TYPE pbc_policy_evaluation_seconds summary",
        "pbc_policy_evaluation_seconds_count 2",
    ] {
        assert!(text.contains(series), "{series} missing:\n{text}");
    }
    // Buckets are cumulative: each at least the one before.
    let counts: Vec<u64> = text
        .lines()
        .filter(|l| l.starts_with("pbc_approval_latency_seconds_bucket{decision=\"approved\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 12, "{text}");
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
}
