//! The `mcp` executor (docs/mcp.md) against real MCP servers written with the official
//! Python SDK (tests/mcp/fake_cluster.py: a fake cluster's tools), over stdio and over
//! streamable HTTP on loopback: the node-maintenance playbook end to end, arguments refused
//! by the tool's inputSchema before any call, a server that dies mid-call, a tool that
//! reports an error, the kill switch during a long call, and the audit entries of each call.
//! Python with `mcp` comes from `.venv` (tests/mcp/requirements.txt) or `PBC_TEST_PYTHON`;
//! under CI a missing one fails.

mod loopback;
mod mcp_lab;

use loopback::{HANG, wait_until};
use mcp_lab::{Lab, json_of, run_args, server_script, stage_events, text};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// Runs the playbook to its drain gate, approves it, resumes to the end; returns the final
/// `--format json` report.
fn maintain(lab: &Lab) -> Value {
    std::fs::write(
        lab.path().join("input.json"),
        r#"{"node": "node-7", "reason": "kernel upgrade", "grace-seconds": 45}"#,
    )
    .unwrap();
    let o = lab.run("node-maintenance.yaml", "input.json");
    let v = json_of(&o);
    assert_eq!(v["status"], "waiting-approval", "{}", text(&o));
    assert_eq!(v["stages"]["inspect-node"]["output"]["pods"], 3);
    assert_eq!(
        v["stages"]["cordon-node"]["output"],
        json!({"node": "node-7", "schedulable": false})
    );
    // The gate sits before the drain: nothing was drained yet.
    assert_eq!(lab.tool_calls(), ["get_node", "cordon_node"]);
    let run = v["run"].as_str().unwrap().to_string();
    let id = v["stages"]["drain-node"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = lab.pbc(&["approve", &id, "--as", "sam@example.com"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = lab.pbc(&["resume", &run, "--format", "json"]);
    let v = json_of(&o);
    assert_eq!(v["status"], "succeeded", "{}", text(&o));
    v
}

fn check_maintained(lab: &Lab, v: &Value) {
    assert_eq!(
        v["stages"]["drain-node"]["output"],
        json!({"node": "node-7", "evicted": ["web-1", "web-2"], "remaining": 1, "grace_seconds": 45})
    );
    // A tool without structured content: its text, parsed as JSON.
    assert_eq!(
        v["stages"]["node-events"]["output"],
        json!({"node": "node-7", "events": ["node-7 cordoned"]})
    );
    assert_eq!(v["stages"]["verify-node"]["output"]["schedulable"], true);
    assert_eq!(v["stages"]["verify-node"]["output"]["pods"], 1);
    assert_eq!(
        lab.tool_calls(),
        [
            "get_node",
            "cordon_node",
            "drain_node",
            "node_events",
            "uncordon_node",
            "get_node"
        ]
    );
    let cluster = lab.cluster();
    assert_eq!(cluster["nodes"][0]["schedulable"], true);
    assert_eq!(
        cluster["nodes"][0]["reason"],
        "node-maintenance: kernel upgrade"
    );
    // The audit log: each call's tool, server and arguments.
    let audit = lab.audit();
    let started = stage_events(&audit, "stage-started");
    assert_eq!(started.len(), 6);
    for e in &started {
        assert_eq!(e["details"]["executor"], "mcp", "{e}");
        assert!(e["details"]["server"].as_str().is_some(), "{e}");
    }
    let drain = started.iter().find(|e| e["stage"] == "drain-node").unwrap();
    assert_eq!(drain["details"]["tool"], "drain_node");
    assert_eq!(
        drain["details"]["params"],
        json!({"node": "node-7", "grace_seconds": 45, "ignore_daemonsets": true})
    );
    lab.verify();
}

#[test]
fn node_maintenance_runs_end_to_end_over_stdio() {
    let Some(lab) = Lab::new() else { return };
    let v = maintain(&lab);
    check_maintained(&lab, &v);
    let audit = lab.audit();
    let drain = stage_events(&audit, "stage-started")
        .into_iter()
        .find(|e| e["stage"] == "drain-node")
        .unwrap();
    let server = drain["details"]["server"].as_str().unwrap();
    assert!(server.ends_with("fake_cluster.py cluster.json"), "{server}");
    // tools/list was asked once per server process at most, and not again for the run's
    // later stages in the same process (each stdio call is a process of its own).
    let lists = lab
        .calls()
        .iter()
        .filter(|(m, _)| m == "tools/list")
        .count();
    assert!(lists <= 2, "{lists}");
}

/// The fake cluster over streamable HTTP on loopback; its port and process.
struct HttpServer {
    child: Child,
    url: String,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_server(lab: &Lab, token: Option<&str>) -> HttpServer {
    let port_file = lab.path().join("port");
    let mut c = Command::new(&lab.python);
    c.arg(server_script())
        .arg("cluster.json")
        .arg("--http")
        .arg(&port_file)
        .current_dir(lab.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(t) = token {
        c.env("FAKE_CLUSTER_TOKEN", t);
    }
    let child = c.spawn().unwrap();
    let mut server = HttpServer {
        child,
        url: String::new(),
    };
    wait_until("the HTTP MCP server's port", || port_file.exists());
    let port = std::fs::read_to_string(&port_file).unwrap();
    server.url = format!("http://127.0.0.1:{}/mcp", port.trim());
    let addr = format!("127.0.0.1:{}", port.trim());
    wait_until("the HTTP MCP server to listen", || {
        std::net::TcpStream::connect(&addr).is_ok()
    });
    server
}

#[test]
fn node_maintenance_runs_end_to_end_over_streamable_http() {
    let Some(lab) = Lab::new() else { return };
    let server = http_server(&lab, Some("s3cr3t-token-value"));
    // The bearer token comes from the environment (FAKE_CLUSTER_SECRET, set by Lab::command).
    std::fs::write(
        lab.path().join("agents.yaml"),
        format!(
            "actions:\n  \"k8s:*\":\n    mcp:\n      url: {}\n      headers-from-env: {{Authorization: FAKE_CLUSTER_BEARER}}\n",
            server.url
        ),
    )
    .unwrap();
    // Without the variable, the stage fails and says which.
    std::fs::write(
        lab.path().join("input.json"),
        r#"{"node": "node-7", "reason": "kernel upgrade", "grace-seconds": 45}"#,
    )
    .unwrap();
    let o = lab
        .command(&run_args("node-maintenance.yaml", "input.json"))
        .output()
        .unwrap();
    let v = json_of(&o);
    assert_eq!(v["status"], "failed", "{}", text(&o));
    let err = stage_events(&lab.audit(), "stage-failed")
        .last()
        .map(|e| e["details"]["error"].to_string())
        .unwrap();
    assert!(err.contains("FAKE_CLUSTER_BEARER"), "{err}");
    assert!(lab.tool_calls().is_empty());
    // With it: the whole playbook, in a fresh state directory.
    std::fs::remove_dir_all(lab.path().join("st")).unwrap();
    let with_token = |args: &[&str]| {
        lab.command(args)
            .env("FAKE_CLUSTER_BEARER", "Bearer s3cr3t-token-value")
            .output()
            .unwrap()
    };
    let o = with_token(&run_args("node-maintenance.yaml", "input.json"));
    let v = json_of(&o);
    assert_eq!(v["status"], "waiting-approval", "{}", text(&o));
    let run = v["run"].as_str().unwrap().to_string();
    let id = v["stages"]["drain-node"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = lab.pbc(&["approve", &id, "--as", "sam@example.com"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = with_token(&["resume", &run, "--format", "json"]);
    let v = json_of(&o);
    assert_eq!(v["status"], "succeeded", "{}", text(&o));
    check_maintained(&lab, &v);
    let audit = lab.audit();
    let started = stage_events(&audit, "stage-started");
    assert_eq!(started[0]["details"]["server"], server.url);
    // The token is never written to the audit log.
    let log = std::fs::read_to_string(lab.path().join("st/audit.jsonl")).unwrap();
    assert!(!log.contains("s3cr3t"), "the token leaked");
    // A server that dies mid-call: the stage fails at once, not at its timeout.
    lab.one_stage(
        "crash",
        "k8s:crash",
        "{message: bye}",
        "      timeout: 5m\n",
    );
    let start = Instant::now();
    let o = with_token(&run_args("crash.yaml", ""));
    assert!(start.elapsed() < HANG);
    assert_eq!(json_of(&o)["status"], "failed", "{}", text(&o));
    let audit = lab.audit();
    let err = stage_events(&audit, "stage-failed")
        .last()
        .map(|e| e["details"]["error"].as_str().unwrap().to_string())
        .unwrap();
    assert!(err.starts_with("the call of tool `crash` failed"), "{err}");
    assert!(!err.contains("rmcp::"), "{err}");
}

#[test]
fn a_failed_drain_is_rolled_back_through_the_servers_tools() {
    let Some(lab) = Lab::new() else { return };
    std::fs::write(
        lab.path().join("input.json"),
        r#"{"node": "node-9", "reason": "kernel upgrade", "grace-seconds": 5}"#,
    )
    .unwrap();
    let o = lab.run("node-maintenance.yaml", "input.json");
    let v = json_of(&o);
    assert_eq!(v["status"], "waiting-approval", "{}", text(&o));
    let run = v["run"].as_str().unwrap().to_string();
    let id = v["stages"]["drain-node"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = lab.pbc(&["approve", &id, "--as", "sam@example.com"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = lab.pbc(&["resume", &run, "--format", "json"]);
    let v = json_of(&o);
    assert_eq!(v["status"], "rolled-back", "{}", text(&o));
    assert_eq!(v["stages"]["drain-node"]["status"], "failed");
    assert_eq!(v["stages"]["cordon-node"]["status"], "rolled-back");
    // The cordon's undo step is the server's uncordon_node.
    assert_eq!(
        lab.tool_calls(),
        ["get_node", "cordon_node", "drain_node", "uncordon_node"]
    );
    assert_eq!(lab.cluster()["nodes"][2]["schedulable"], true);
    let audit = lab.audit();
    let err = stage_events(&audit, "stage-failed")[0]["details"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("PodDisruptionBudget"), "{err}");
    assert_eq!(stage_events(&audit, "stage-rolled-back").len(), 1);
    let undo = stage_events(&audit, "rollback-started");
    assert_eq!(undo.len(), 1);
    assert_eq!(undo[0]["details"]["tool"], "uncordon_node");
    assert_eq!(undo[0]["details"]["params"], json!({"node": "node-9"}));
    lab.verify();
}

#[test]
fn params_that_do_not_match_the_input_schema_are_refused_before_the_call() {
    let Some(lab) = Lab::new() else { return };
    // grace_seconds is an integer in the tool's inputSchema; `node` is required.
    lab.one_stage(
        "bad-params",
        "k8s:drain_node",
        r#"{grace_seconds: "soon", ignore_daemonsets: true}"#,
        "      retries: 2\n",
    );
    let o = lab.run("bad-params.yaml", "");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v = json_of(&o);
    assert_eq!(v["stages"]["call"]["status"], "failed");
    let audit = lab.audit();
    let failed = stage_events(&audit, "stage-failed");
    let err = failed[0]["details"]["error"].as_str().unwrap();
    assert!(
        err.contains("do not match the inputSchema of tool `drain_node` (not called)"),
        "{err}"
    );
    assert!(err.contains("\"node\" is a required property"), "{err}");
    assert!(err.contains("/grace_seconds"), "{err}");
    // Refused once, not retried; the server was asked for its tools, never to call one.
    assert_eq!(stage_events(&audit, "stage-attempt-failed").len(), 1);
    assert!(lab.calls().iter().any(|(m, _)| m == "tools/list"));
    assert_eq!(lab.tool_calls(), Vec::<String>::new());
    // A tool the server does not have is refused the same way.
    lab.one_stage("no-tool", "k8s:reboot_node", "{node: node-7}", "");
    let o = lab.run("no-tool.yaml", "");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let audit = lab.audit();
    let err = stage_events(&audit, "stage-failed").last().unwrap()["details"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("has no tool `reboot_node`"), "{err}");
    assert!(err.contains("drain_node"), "{err}");
    assert_eq!(lab.tool_calls(), Vec::<String>::new());
    lab.verify();
}

#[test]
fn a_server_that_dies_mid_call_fails_the_stage_with_its_stderr() {
    let Some(lab) = Lab::new() else { return };
    lab.one_stage("crash", "k8s:crash", r#"{message: "etcd unreachable"}"#, "");
    let start = Instant::now();
    let o = lab.run("crash.yaml", "");
    assert!(start.elapsed() < HANG);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v = json_of(&o);
    assert_eq!(v["status"], "failed");
    let audit = lab.audit();
    let err = stage_events(&audit, "stage-failed")[0]["details"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("exit status: 3"), "{err}");
    assert!(
        err.contains("fake-cluster: fatal: etcd unreachable"),
        "{err}"
    );
    assert_eq!(lab.tool_calls(), ["crash"]);
    lab.verify();
}

#[test]
fn a_tool_error_fails_the_stage_and_an_exact_action_beats_the_layer() {
    let Some(lab) = Lab::new() else { return };
    // drain_node refuses a node that is not cordoned: a result with isError.
    lab.one_stage(
        "uncordoned",
        "k8s:drain_node",
        "{node: node-8, grace_seconds: 5}",
        "",
    );
    let o = lab.run("uncordoned.yaml", "");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let audit = lab.audit();
    let err = stage_events(&audit, "stage-failed")[0]["details"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("tool `drain_node` reported an error"), "{err}");
    assert!(err.contains("node node-8 is not cordoned"), "{err}");
    // An exact key wins over `k8s:*`; a tool template maps the action to another name.
    lab.agents_stdio(&format!(
        "  \"k8s:node\":\n    mcp: {{command: [{}, {}, cluster.json], tool: \"get_{{function}}\"}}\n",
        json!(lab.python.display().to_string()),
        json!(server_script().display().to_string()),
    ));
    lab.one_stage("inspect", "k8s:node", "{node: node-8}", "");
    let o = lab.run("inspect.yaml", "");
    let v = json_of(&o);
    assert_eq!(v["status"], "succeeded", "{}", text(&o));
    assert_eq!(v["stages"]["call"]["output"]["name"], "node-8");
    assert_eq!(lab.tool_calls().last().unwrap(), "get_node");
}

#[test]
fn the_kill_switch_cancels_a_long_tool_call() {
    let Some(lab) = Lab::new() else { return };
    lab.one_stage("slow", "k8s:sleep", "{seconds: 300}", "");
    let child = lab
        .command(&run_args("slow.yaml", ""))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sleeping = lab.path().join("cluster.json.sleeping");
    wait_until("the tool call to start", || sleeping.exists());
    let pid: i32 = std::fs::read_to_string(&sleeping)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let start = Instant::now();
    let o = lab.pbc(&["runs", "stop", "--all", "--as", "sre@example.com"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed() < HANG);
    let v = json_of(&out);
    assert_eq!(v["status"], "stopped", "{}", text(&out));
    assert_eq!(v["stages"]["call"]["status"], "failed");
    // The server's process is gone (its group was killed).
    wait_until("the MCP server to be gone", || {
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    });
    let audit = lab.audit();
    assert_eq!(stage_events(&audit, "stage-stopped").len(), 1);
    let o = lab.pbc(&["runs", "stop", "--release", "--as", "sre@example.com"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    lab.verify();
}

#[test]
fn a_timeout_ends_a_long_tool_call() {
    let Some(lab) = Lab::new() else { return };
    lab.one_stage("slow", "k8s:sleep", "{seconds: 300}", "      timeout: 2s\n");
    let start = Instant::now();
    let o = lab.run("slow.yaml", "");
    assert!(start.elapsed() < HANG);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let audit = lab.audit();
    let err = stage_events(&audit, "stage-failed")[0]["details"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("timed out after 2s"), "{err}");
}
