//! What the `mcp` executor's tests share (`mcp.rs`, `mcp_lock.rs`): a directory with the
//! node-maintenance playbook, a fake cluster's state and an agents file whose `k8s:*` actions
//! are the tools of tests/mcp/fake_cluster.py (the official Python SDK), and `pbc` run there.
#![allow(dead_code)]

use crate::loopback::{python, root};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const CLUSTER: &str = r#"{"nodes": [
  {"name": "node-7", "ready": true, "schedulable": true,
   "pods": [{"name": "web-1"}, {"name": "web-2"}, {"name": "fluentd-x", "daemonset": true}]},
  {"name": "node-8", "ready": true, "schedulable": true, "pods": []},
  {"name": "node-9", "ready": true, "schedulable": true, "pods": [{"name": "db-0", "pdb": true}]}
]}"#;

/// A directory with the node-maintenance playbook, a fake cluster and an agents file whose
/// `k8s:*` actions are the fake cluster's tools.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub python: PathBuf,
}

pub fn server_script() -> PathBuf {
    root().join("tests/mcp/fake_cluster.py")
}

impl Lab {
    pub fn new() -> Option<Lab> {
        let python = python("mcp")?;
        let dir = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(root().join("testdata/seeds/node-maintenance")).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
        std::fs::write(dir.path().join("cluster.json"), CLUSTER).unwrap();
        std::fs::write(dir.path().join("empty.json"), "{}").unwrap();
        std::fs::write(
            dir.path().join(".pbc.yaml"),
            "roles:\n  sre-team: [sam@example.com]\n",
        )
        .unwrap();
        let lab = Lab { dir, python };
        lab.agents_stdio("");
        Some(lab)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The agents file: `k8s:*` over stdio, with `extra` lines under `actions:`.
    pub fn agents_stdio(&self, extra: &str) {
        let text = format!(
            "actions:\n  \"k8s:*\":\n    mcp: {{command: [{}, {}, cluster.json]}}\n    timeout: 2m\n{extra}",
            json!(self.python.display().to_string()),
            json!(server_script().display().to_string()),
        );
        std::fs::write(self.path().join("agents.yaml"), text).unwrap();
    }

    pub fn pbc(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pbc"));
        c.args(args)
            .args(["--state", "st"])
            .current_dir(self.path())
            .env_remove("PBC_STATE_DIR")
            .env("FAKE_CLUSTER_SECRET", "s3cr3t-token-value");
        c
    }

    pub fn run(&self, playbook: &str, input: &str) -> Output {
        self.pbc(&run_args(playbook, input))
    }

    pub fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.path().join("st/audit.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The requests the fake cluster received: (method, tool).
    pub fn calls(&self) -> Vec<(String, Option<String>)> {
        std::fs::read_to_string(self.path().join("cluster.json.calls"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (
                    v["method"].as_str().unwrap().to_string(),
                    v["tool"].as_str().map(str::to_string),
                )
            })
            .collect()
    }

    pub fn tool_calls(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|(m, t)| (m == "tools/call").then_some(t).flatten())
            .collect()
    }

    pub fn cluster(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.path().join("cluster.json")).unwrap())
            .unwrap()
    }

    pub fn verify(&self) {
        let o = self.pbc(&["audit", "verify"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }

    /// A playbook of one action stage, written to `NAME.yaml`.
    pub fn one_stage(&self, name: &str, action: &str, params: &str, extra: &str) {
        let pb = format!(
            "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: {name}\n  description: one MCP tool call\nspec:\n  trigger: manual\n  stages:\n    - name: call\n      action: {action}\n      risk: low\n      params: {params}\n{extra}"
        );
        std::fs::write(self.path().join(format!("{name}.yaml")), pb).unwrap();
    }
}

pub fn run_args<'a>(playbook: &'a str, input: &'a str) -> Vec<&'a str> {
    // One-stage playbooks take no input: `{}`.
    let input = if input.is_empty() {
        "empty.json"
    } else {
        input
    };
    vec![
        "run",
        playbook,
        "--input",
        input,
        "--agents",
        "agents.yaml",
        "--as",
        "ops@example.com",
        "--format",
        "json",
    ]
}

pub fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

pub fn stage_events<'a>(audit: &'a [Value], event: &str) -> Vec<&'a Value> {
    audit.iter().filter(|e| e["event"] == event).collect()
}
