//! `pbc agents tools --lock` against a real MCP server (tests/mcp/fake_cluster.py, the
//! official Python SDK, over stdio), and `pbc check --lock` finding unknown tools and params
//! that do not match a tool's input schema, offline.

mod loopback;
mod mcp_lab;

use mcp_lab::{Lab, text};
use serde_json::{Value, json};
use std::process::Command;

#[test]
fn a_lock_file_lets_check_find_unknown_tools_and_bad_params_offline() {
    let Some(lab) = Lab::new() else { return };
    let o = Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args([
            "agents",
            "tools",
            "--agents",
            "agents.yaml",
            "--lock",
            "agents.lock.json",
        ])
        .current_dir(lab.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("drain_node"), "{}", text(&o));
    let lock: Value = serde_json::from_str(
        &std::fs::read_to_string(lab.path().join("agents.lock.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        lock["actions"]["k8s:*"]["tools"]["drain_node"]["required"],
        json!(["node", "grace_seconds"])
    );
    let listed = lab.calls().len();
    let check = |file: &str| {
        Command::new(env!("CARGO_BIN_EXE_pbc"))
            .args([
                "check",
                file,
                "--lock",
                "agents.lock.json",
                "--agents",
                "agents.yaml",
            ])
            .current_dir(lab.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let o = check("node-maintenance.yaml");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    lab.one_stage(
        "bad-params",
        "k8s:drain_node",
        r#"{grace_seconds: "soon", ignore_daemonsets: true}"#,
        "",
    );
    let o = check("bad-params.yaml");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("PB8002"), "{out}");
    assert!(out.contains("\"node\" is a required property"), "{out}");
    assert!(out.contains("/grace_seconds"), "{out}");
    lab.one_stage("no-tool", "k8s:reboot_node", "{node: node-7}", "");
    let o = check("no-tool.yaml");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("PB8001"), "{out}");
    assert!(
        out.contains("tool `reboot_node`, which the server"),
        "{out}"
    );
    // Offline: no server was started by `pbc check`.
    assert_eq!(lab.calls().len(), listed);
    let o = Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(["explain", "PB8002"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
