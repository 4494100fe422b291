//! Audit sinks end to end through the `pbc` binary, to real receivers on loopback started by
//! the test (`tests/delivery/sinks.py`): S3 (moto's server, a bucket with Object Lock), an
//! OTLP/HTTP collector decoding the protobuf with opentelemetry-proto, a CloudTrail Lake
//! `PutAuditEvents` endpoint that recomputes the SigV4 signature with botocore, and an RFC
//! 5424 syslog listener over TLS. Then `kill -9` during a delivery, a re-chained local log
//! caught by `pbc audit verify --against` the S3 sink, and `pbc audit export`.
//!
//! Needs python3 with moto, boto3 and opentelemetry-proto (`.ci/run` installs
//! tests/delivery/requirements.txt into `.venv`): under CI a missing one fails the tests;
//! elsewhere they say so and pass.
#![cfg(unix)]

mod loopback;

use loopback::{pki, python, root, wait_until};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const ACCESS_KEY: &str = "AKIDPBCTEST";
const SECRET_KEY: &str = "pbc-test-secret";
const OTLP_AUTH: &str = "Basic cGstbGYtdGVzdDpzay1sZi10ZXN0";
const CHANNEL: &str = "arn:aws:cloudtrail:eu-west-1:123456789012:channel/pbc-test";

struct Receivers {
    child: Child,
    dir: PathBuf,
    http: u16,
    s3: u16,
    syslog: u16,
}

impl Receivers {
    fn start(dir: &Path, tls: Option<(&Path, &Path)>) -> Option<Receivers> {
        let py = python("moto, boto3, opentelemetry.proto")?;
        let rx = dir.join("rx");
        std::fs::create_dir_all(&rx).unwrap();
        let mut cmd = Command::new(py);
        cmd.arg(root().join("tests/delivery/sinks.py"))
            .arg("--dir")
            .arg(&rx)
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .args(["--otlp-auth", OTLP_AUTH]);
        if let Some((cert, key)) = tls {
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ports: Value = serde_json::from_str(&line).expect("the receivers print their ports");
        let port = |k: &str| ports[k].as_u64().unwrap() as u16;
        Some(Receivers {
            http: port("http"),
            s3: port("s3"),
            syslog: port("syslog"),
            child,
            dir: rx,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http)
    }

    fn lines(&self, file: &str) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join(file))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn s3_objects(&self) -> Vec<Value> {
        let body = ureq::get(&self.url("/inspect/s3"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        v["objects"].as_array().cloned().unwrap_or_default()
    }

    fn flag(&self, name: &str, on: bool) {
        let p = self.dir.join(name);
        if on {
            std::fs::write(p, "").unwrap();
        } else {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for Receivers {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.dir.join("hang"));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PLAYBOOK: &str = r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: release}
spec:
  trigger: deploy
  audit: {log-to: [SINKS], retention: 400d}
  stages:
    - name: prepare
      action: k8s:get
    - name: release
      action: deploy:release
      risk: medium
      approval: manual
      approvers: [{role: sre}]
"#;

const AGENTS: &str = r#"actions:
  "k8s:get": {command: [python3, -c, "import json,sys; json.load(sys.stdin); print('{}')"]}
  "deploy:release": {command: [python3, -c, "import json,sys; json.load(sys.stdin); print('{}')"]}
"#;

struct Project {
    dir: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
}

impl Project {
    fn new(sinks: &str, log_to: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(
            p.join(".pbc.yaml"),
            format!("roles:\n  sre: [sam@example.com]\naudit-sinks:\n{sinks}"),
        )
        .unwrap();
        std::fs::write(p.join("release.yaml"), PLAYBOOK.replace("SINKS", log_to)).unwrap();
        std::fs::write(p.join("agents.yaml"), AGENTS).unwrap();
        std::fs::write(p.join("in.json"), "{}").unwrap();
        let env = vec![
            ("PBC_T_AK", ACCESS_KEY.to_string()),
            ("PBC_T_SK", SECRET_KEY.to_string()),
            (
                "PBC_T_OTLP",
                format!("Authorization={}", OTLP_AUTH.replace(' ', "%20")),
            ),
        ];
        Project { dir, env }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pbc"));
        c.current_dir(self.path())
            .args(args)
            .env("PBC_STATE_DIR", self.path().join("state"))
            .env_remove("HTTPS_PROXY")
            .env_remove("HTTP_PROXY")
            .env_remove("ALL_PROXY")
            .env_remove("https_proxy")
            .env_remove("http_proxy")
            .env_remove("all_proxy");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    fn pbc(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    const RUN: &[&'static str] = &[
        "run",
        "release.yaml",
        "--input",
        "in.json",
        "--agents",
        "agents.yaml",
        "--as",
        "alice@example.com",
        "--format",
        "json",
    ];

    /// Runs to the gate, approves and resumes to the end: the run id.
    fn run_and_approve(&self) -> String {
        let out = self.pbc(Self::RUN);
        let v: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("pbc run: {out:?}"));
        assert_eq!(v["status"], "waiting-approval", "{v}");
        let approval = v["stages"]["release"]["approval_id"].as_str().unwrap();
        let out = self.pbc(&["approve", approval, "--as", "sam@example.com"]);
        assert!(out.status.success(), "{out:?}");
        let run = v["run"].as_str().unwrap().to_string();
        let out = self.pbc(&["resume", &run, "--format", "json"]);
        let v: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("pbc resume: {out:?}"));
        assert_eq!(v["status"], "succeeded", "{v}");
        run
    }

    /// The local log's lines of one run, by entry number.
    fn run_lines(&self, run: &str) -> BTreeMap<u64, String> {
        std::fs::read_to_string(self.path().join("state/audit.jsonl"))
            .unwrap()
            .lines()
            .filter_map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (v["run"] == run).then(|| (v["seq"].as_u64().unwrap(), l.to_string()))
            })
            .collect()
    }

    fn sinks(&self) -> Vec<Value> {
        let out = self.pbc(&["audit", "sinks", "--format", "json"]);
        assert!(out.status.success(), "{out:?}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["sinks"].as_array().cloned().unwrap()
    }
}

fn seq_of(line: &str) -> u64 {
    serde_json::from_str::<Value>(line).unwrap()["seq"]
        .as_u64()
        .unwrap()
}

fn s3_sink(rx: &Receivers) -> String {
    format!(
        "  vault: {{s3: {{bucket: trail, prefix: audit/, endpoint: \"http://127.0.0.1:{}\", path-style: true, object-lock: true, access-key-id-env: PBC_T_AK, secret-access-key-env: PBC_T_SK}}}}\n",
        rx.s3
    )
}

#[test]
fn s3_otlp_cloudtrail_and_syslog_receive_every_entry_of_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki(tmp.path(), "pbc sink test authority");
    let Some(rx) = Receivers::start(tmp.path(), Some((&cert, &key))) else {
        return;
    };
    let sinks = format!(
        "{s3}  otel: {{otlp: {{endpoint: \"{otlp}\", headers-env: PBC_T_OTLP, service-name: pbc-test}}}}\n  lake: {{cloudtrail: {{channel-arn: \"{CHANNEL}\", endpoint: \"{ct}\", access-key-id-env: PBC_T_AK, secret-access-key-env: PBC_T_SK}}}}\n  siem: {{syslog: {{host: 127.0.0.1, port: {sys}, tls: true, hostname: pbc-host}}}}\n",
        s3 = s3_sink(&rx),
        otlp = rx.url(""),
        ct = rx.url(""),
        sys = rx.syslog,
    );
    let p = Project::new(&sinks, "vault, otel, lake, siem");
    std::fs::write(
        p.path().join(".pbc.yaml"),
        format!(
            "tls: {{ca-file: \"{}\"}}\n{}",
            ca.display(),
            std::fs::read_to_string(p.path().join(".pbc.yaml")).unwrap()
        ),
    )
    .unwrap();
    let run = p.run_and_approve();
    let local = p.run_lines(&run);
    assert!(local.len() >= 8, "{local:#?}");
    let want: Vec<&String> = local.values().collect();

    // S3: JSON Lines objects keyed by date and run, the log's lines byte for byte, each
    // under Object Lock COMPLIANCE until the playbook's retention has passed.
    let objects = rx.s3_objects();
    assert!(!objects.is_empty());
    let mut got: BTreeMap<u64, String> = BTreeMap::new();
    for o in &objects {
        let k = o["key"].as_str().unwrap();
        assert!(
            k.starts_with("audit/") && k.contains(&format!("/{run}/")) && k.ends_with(".jsonl"),
            "{k}"
        );
        assert_eq!(o["lock_mode"], "COMPLIANCE", "{o:#}");
        let until = o["retain_until"].as_str().unwrap();
        assert!(
            until.starts_with("2027-") || until.starts_with("2028-"),
            "{until}"
        );
        assert_eq!(o["metadata"]["pbc-chain-after"].as_str().unwrap().len(), 64);
        assert_eq!(
            o["metadata"]["pbc-chain-before"].as_str().unwrap().len(),
            64
        );
        for l in o["body"].as_str().unwrap().lines() {
            got.insert(seq_of(l), l.to_string());
        }
    }
    assert_eq!(got, local, "the bucket holds the run's lines");

    // OTLP: one trace for the run, the run's span and a child span per stage, the gate's
    // decision as a span event, every entry a log record whose body is its line.
    let otlp = rx.lines("otlp.jsonl");
    assert!(otlp.iter().all(|r| r["ok"] == true), "{otlp:#?}");
    let spans: Vec<&Value> = otlp
        .iter()
        .flat_map(|r| r["spans"].as_array().unwrap())
        .collect();
    let logs: Vec<&Value> = otlp
        .iter()
        .flat_map(|r| r["logs"].as_array().unwrap())
        .collect();
    let trace = spans[0]["trace_id"].clone();
    assert!(spans.iter().all(|s| s["trace_id"] == trace));
    assert!(logs.iter().all(|l| l["trace_id"] == trace));
    let root_span = spans
        .iter()
        .find(|s| s["parent"] == "")
        .expect("a root span for the run");
    for stage in ["prepare", "release"] {
        let s = spans
            .iter()
            .find(|s| s["attributes"]["pbc.stage"] == stage)
            .unwrap_or_else(|| panic!("a span for {stage}: {spans:#?}"));
        assert_eq!(s["parent"], root_span["span_id"]);
        assert_eq!(s["name"], format!("stage {stage}"));
    }
    let events: Vec<&str> = spans
        .iter()
        .flat_map(|s| s["events"].as_array().unwrap())
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(events.contains(&"approval-granted"), "{events:?}");
    let bodies: BTreeMap<u64, String> = logs
        .iter()
        .map(|l| {
            let b = l["body"].as_str().unwrap().to_string();
            (seq_of(&b), b)
        })
        .collect();
    assert_eq!(bodies, local, "every entry is a log record");
    assert_eq!(otlp[0]["resource"]["service.name"], "pbc-test");

    // CloudTrail Lake: signed requests (botocore verified them), one event per entry, its id
    // the entry's hash.
    let ct = rx.lines("cloudtrail.jsonl");
    assert!(ct.iter().all(|r| r["ok"] == true), "{ct:#?}");
    let ids: Vec<String> = ct
        .iter()
        .flat_map(|r| r["events"].as_array().unwrap())
        .map(|e| {
            assert_eq!(e["data"]["recipientAccountId"], "123456789012");
            e["id"].as_str().unwrap().to_string()
        })
        .collect();
    let hashes: Vec<String> = want
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["hash"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, hashes);

    // Syslog over TLS: RFC 5424, facility log audit, the line as the message.
    let sys = rx.lines("syslog.jsonl");
    assert!(sys.iter().all(|r| r["ok"] == true), "{sys:#?}");
    let msgs: Vec<&str> = sys.iter().map(|r| r["msg"].as_str().unwrap()).collect();
    assert_eq!(msgs, want.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(sys[0]["facility"], 13);
    assert_eq!(sys[0]["hostname"], "pbc-host");
    assert_eq!(sys[0]["sd_id"], "pbc@32473");
    assert_eq!(sys[0]["sd"]["seq"], seq_of(msgs[0]).to_string());

    // Each sink is caught up, without errors; no secret reached the state or the output.
    let st = p.sinks();
    assert_eq!(st.len(), 4, "{st:#?}");
    for s in &st {
        assert_eq!(s["last_error"], Value::Null, "{s:#}");
        assert!(s["batches"].as_i64().unwrap() >= 1, "{s:#}");
    }
    let out = p.pbc(&["audit", "verify", "--against", "vault"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("match the local log"), "{text}");
    for f in ["state/state.db", "state/audit.jsonl"] {
        let bytes = std::fs::read(p.path().join(f)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(SECRET_KEY) && !text.contains("cGstbGYt"),
            "{f}"
        );
    }
}

#[test]
fn kill_9_during_sink_delivery_then_every_entry_arrives_and_duplicates_share_an_id() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(rx) = Receivers::start(tmp.path(), None) else {
        return;
    };
    let sinks = format!(
        "  lake: {{cloudtrail: {{channel-arn: \"{CHANNEL}\", endpoint: \"{}\", access-key-id-env: PBC_T_AK, secret-access-key-env: PBC_T_SK}}}}\n",
        rx.url("")
    );
    let p = Project::new(&sinks, "lake");
    rx.flag("hang", true);
    let mut child = p
        .cmd(Project::RUN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the first batch to arrive", || {
        !rx.lines("cloudtrail.jsonl").is_empty()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    rx.flag("hang", false);
    let first = rx.lines("cloudtrail.jsonl");
    assert_eq!(first.len(), 1);

    // The next command delivers it all again: at least once.
    let out = p.pbc(&["runs"]);
    assert!(out.status.success(), "{out:?}");
    let all = rx.lines("cloudtrail.jsonl");
    assert_eq!(all.len(), 2, "{all:#?}");
    let ids = |r: &Value| -> Vec<String> {
        r["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (a, b) = (ids(&all[0]), ids(&all[1]));
    assert!(
        b.starts_with(&a),
        "the retried batch repeats the same ids: {a:?} {b:?}"
    );
    let run = {
        let v: Value =
            serde_json::from_slice(&p.pbc(&["runs", "--format", "json"]).stdout).unwrap();
        v["runs"][0]["run"].as_str().unwrap().to_string()
    };
    let local = p.run_lines(&run);
    let hashes: Vec<String> = local
        .values()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["hash"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(b, hashes, "every entry arrived");
    let st = p.sinks();
    assert_eq!(st[0]["lag"], 0, "{st:#?}");
}

/// Edits entry `seq`'s details, then recomputes every hash after it and rewrites the state
/// store's hashes, as someone with write access to the state directory could.
fn rechain(state: &Path, seq: u64) {
    use sha2::{Digest, Sha256};
    let log = state.join("audit.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let db = rusqlite::Connection::open(state.join("state.db")).unwrap();
    let mut prev = String::new();
    let mut out = String::new();
    for l in text.lines() {
        let mut v: Value = serde_json::from_str(l).unwrap();
        let n = v["seq"].as_u64().unwrap();
        if n < seq {
            prev = v["hash"].as_str().unwrap().to_string();
            out.push_str(l);
            out.push('\n');
            continue;
        }
        if n == seq {
            v["details"]["note"] = Value::from("nothing to see");
        }
        v["prev"] = Value::from(prev.clone());
        let o = v.as_object_mut().unwrap();
        o.remove("hash");
        let body = serde_json::to_string(&v).unwrap();
        let hash: String = Sha256::digest(body.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        out.push_str(&format!(
            "{},\"hash\":\"{hash}\"}}\n",
            &body[..body.len() - 1]
        ));
        db.execute(
            "UPDATE audit SET hash = ?1 WHERE seq = ?2",
            rusqlite::params![hash, n as i64],
        )
        .unwrap();
        prev = hash;
    }
    db.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'audit_bytes'",
        rusqlite::params![out.len().to_string()],
    )
    .unwrap();
    std::fs::write(&log, out).unwrap();
}

#[test]
fn a_local_log_edited_and_rechained_is_caught_against_the_s3_sink() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(rx) = Receivers::start(tmp.path(), None) else {
        return;
    };
    let p = Project::new(&s3_sink(&rx), "vault");
    let run = p.run_and_approve();
    let out = p.pbc(&["audit", "verify", "--against", "vault"]);
    assert!(out.status.success(), "{out:?}");

    let local = p.run_lines(&run);
    let target = *local.keys().nth(3).unwrap();
    rechain(&p.path().join("state"), target);
    let out = p.pbc(&["audit", "verify", "--against", "vault"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "error: entry #{target} of the local log is not what audit sink `vault` received"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("entry #{target} (")) && text.contains("edited and re-chained"),
        "{text}"
    );

    // Without the sink, the re-chained log looks intact to the chain alone.
    let out = p.pbc(&["audit", "verify", "state/audit.jsonl"]);
    let chain_only = String::from_utf8_lossy(&out.stdout);
    assert!(chain_only.starts_with("ok:"), "{chain_only}");

    // A name no run wrote to is a usage error.
    let out = p.pbc(&["audit", "verify", "--against", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn audit_export_writes_jsonl_csv_otlp_json_and_cloudtrail_and_a_failing_sink_shows_its_error() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(_rx) = Receivers::start(tmp.path(), None) else {
        return;
    };
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = Project::new(
        &format!("  siem: {{syslog: {{host: 127.0.0.1, port: {closed}, timeout: 2s}}}}\n"),
        "siem",
    );
    let run = p.run_and_approve();
    let local = p.run_lines(&run);

    // The sink's port is closed: its lag and last error are visible, and the run went on.
    let st = p.sinks();
    assert_eq!(st[0]["name"], "siem");
    assert_eq!(st[0]["kind"], "syslog");
    assert!(st[0]["lag"].as_i64().unwrap() > 0, "{st:#?}");
    let err = st[0]["last_error"].as_str().unwrap();
    assert!(err.contains(&format!("127.0.0.1:{closed}")), "{err}");

    let export = |format: &str| -> String {
        let out = p.pbc(&["audit", "export", "--run", &run, "--format", format]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let jsonl = export("jsonl");
    assert_eq!(
        jsonl.lines().map(String::from).collect::<Vec<_>>(),
        local.values().cloned().collect::<Vec<_>>()
    );
    let csv = export("csv");
    assert_eq!(csv.lines().count(), local.len() + 1);
    assert!(csv.starts_with("seq,time,run,stage,event,actor,compliance,details,prev,hash\n"));
    let ct = export("cloudtrail");
    for l in ct.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["eventSource"], "pbc");
        assert_eq!(v["version"], "1.0");
    }
    // OTLP JSON, parsed by the protobuf library's own JSON mapping.
    let otlp = export("otlp-json");
    let f = tmp.path().join("otlp.jsonl");
    std::fs::write(&f, &otlp).unwrap();
    let check = r#"
import sys
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
lines = open(sys.argv[1]).read().splitlines()
t = json_format.Parse(lines[0], ExportTraceServiceRequest())
l = json_format.Parse(lines[1], ExportLogsServiceRequest())
spans = [s for r in t.resource_spans for ss in r.scope_spans for s in ss.spans]
logs = [x for r in l.resource_logs for sl in r.scope_logs for x in sl.log_records]
assert len({s.trace_id for s in spans}) == 1, spans
print(len(spans), len(logs))
"#;
    let out = Command::new(python("moto, boto3, opentelemetry.proto").unwrap())
        .args(["-c", check])
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("3 {}", local.len())
    );

    let out = p.pbc(&["audit", "export", "--since", "yesterday", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = p.pbc(&[
        "audit",
        "export",
        "--since",
        "2000-01-01",
        "--format",
        "jsonl",
    ]);
    assert!(out.status.success());
    assert!(out.stdout.len() >= jsonl.len());
}
