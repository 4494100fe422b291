//! A harness that executes an emitted Argo `WorkflowTemplate` without a cluster: it follows
//! the `pbc-main` DAG (tasks in order, `depends` on bare task names, `when` evaluated as
//! expr-lang does for the subset the emitter writes, parameters and output parameters),
//! answers each suspend with the decision the test supplies (none: the suspend expires, as
//! Argo resumes it, with no value), retries a failed container per its `retryStrategy`,
//! stops scheduling after a failure (`failFast`), then runs the `onExit` handler with
//! `workflow.status` and `workflow.failures`.
//!
//! Each container is a pod: its command is the `pbc` under test (the image's entrypoint),
//! run as a non-root user when the test runs as root, with the emitted ConfigMaps mounted
//! as the projected volume says ([`mount_config_maps`]: each item's key written at its path)
//! as the directory `PBC_RUNNER_DIR`, its `env` (a `secretKeyRef` read from the test's
//! secrets), and a fresh directory per pod as its `emptyDir` (the paths under `/tmp/pbc`
//! the templates read are read from there).

#![allow(dead_code)]

pub mod expr;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the templates mount the output volume.
const OUT_MOUNT: &str = "/tmp/pbc";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Succeeded,
    Failed,
    /// `when` was false.
    Skipped,
    /// Not run: a dependency did not succeed, or the DAG failed first.
    Omitted,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub template: String,
    pub phase: Phase,
    pub outputs: BTreeMap<String, String>,
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The arguments the container got.
    pub args: Vec<String>,
}

#[derive(Debug)]
pub struct Execution {
    pub status: String,
    pub nodes: BTreeMap<String, Node>,
    /// The exit handler's nodes.
    pub exit: BTreeMap<String, Node>,
    /// The exit handler's nodes when it ran again ([`Harness::exit_runs`]).
    pub exit_again: Vec<BTreeMap<String, Node>>,
    /// Task names in the order they were decided.
    pub order: Vec<String>,
}

/// Writes the ConfigMaps the workflow template's volume `pbc-config` projects into `dir`,
/// each item's key at its path, as the kubelet does. Panics on anything else.
pub fn mount_config_maps(docs: &[Value], wt: &Value, dir: &Path) {
    let volume = wt["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "pbc-config")
        .expect("the volume pbc-config");
    let sources = volume["projected"]["sources"]
        .as_array()
        .expect("a projected volume");
    assert!(!sources.is_empty());
    for src in sources {
        let name = src["configMap"]["name"].as_str().unwrap();
        let cm = docs
            .iter()
            .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("ConfigMap {name} is not emitted"));
        let data = cm["data"].as_object().unwrap();
        for item in src["configMap"]["items"].as_array().unwrap() {
            let key = item["key"].as_str().unwrap();
            let path = item["path"].as_str().unwrap();
            assert!(
                !path.starts_with('/') && !path.split('/').any(|p| p == ".." || p.is_empty()),
                "item path {path}"
            );
            let text = data[key]
                .as_str()
                .unwrap_or_else(|| panic!("no key {key} in {name}"));
            let to = dir.join(path);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            assert!(!to.exists(), "two items at {path}");
            std::fs::write(&to, text).unwrap();
        }
    }
}

/// The `{{workflow.uid}}` a harness gives its workflows unless told otherwise.
pub const WORKFLOW_UID: &str = "5d0c7a52-0f4e-4f6b-9a57-conformance";

pub struct Harness {
    pub pbc: PathBuf,
    /// The ConfigMap's files.
    pub mount: PathBuf,
    /// Where the pods' directories go.
    pub work: PathBuf,
    /// Per suspend task: the value supplied (absent: the suspend expires).
    pub decisions: BTreeMap<String, String>,
    /// Per suspend task: the signed approval statement supplied as its output `approval`
    /// (`argo node set … --output-parameter approval=…`).
    pub approvals: BTreeMap<String, String>,
    pub workflow_name: String,
    /// How many times the exit handler runs (a controller that restarts may run it again):
    /// the later runs are [`Execution::exit_again`].
    pub exit_runs: usize,
    /// `{{workflow.uid}}`.
    pub workflow_uid: String,
    /// The Secrets' values, by (secret, key).
    pub secrets: BTreeMap<(String, String), String>,
    pods: std::cell::Cell<usize>,
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Opens a directory to everyone (the pods may run as another user).
pub fn open_up(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = if p.is_dir() { 0o777 } else { 0o644 };
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            open_up(&e.unwrap().path());
        }
    }
}

impl Harness {
    pub fn new(pbc: PathBuf, mount: PathBuf, work: PathBuf) -> Harness {
        Harness {
            pbc,
            mount,
            work,
            decisions: BTreeMap::new(),
            approvals: BTreeMap::new(),
            workflow_name: "wf-conformance".into(),
            exit_runs: 1,
            workflow_uid: WORKFLOW_UID.into(),
            secrets: BTreeMap::new(),
            pods: std::cell::Cell::new(0),
        }
    }

    /// Runs the workflow template with the trigger payload `input`.
    pub fn execute(&self, wt: &Value, input: &Value) -> Execution {
        let spec = &wt["spec"];
        let templates: BTreeMap<String, Value> = spec["templates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["name"].as_str().unwrap().to_string(), t.clone()))
            .collect();
        let mut globals = BTreeMap::new();
        globals.insert("workflow.name".to_string(), self.workflow_name.clone());
        globals.insert("workflow.uid".to_string(), self.workflow_uid.clone());
        globals.insert("workflow.parameters.input".to_string(), input.to_string());
        let entry = spec["entrypoint"].as_str().unwrap();
        let (nodes, order) = self.dag(&templates, &templates[entry], &globals);
        let failed: Vec<Value> = order
            .iter()
            .filter(|n| nodes[*n].phase == Phase::Failed)
            .map(|n| {
                let node = &nodes[n];
                serde_json::json!({
                    "displayName": n,
                    "message": format!("Error (exit code {})", node.exit_code.unwrap_or(-1)),
                    "templateName": node.template,
                    "phase": "Failed",
                })
            })
            .collect();
        let status = if failed.is_empty() {
            "Succeeded"
        } else {
            "Failed"
        };
        globals.insert("workflow.status".into(), status.into());
        globals.insert("workflow.failures".into(), Value::Array(failed).to_string());
        let mut exits = (0..self.exit_runs.max(1)).map(|_| match spec["onExit"].as_str() {
            Some(t) => self.dag(&templates, &templates[t], &globals).0,
            None => BTreeMap::new(),
        });
        let exit = exits.next().unwrap_or_default();
        let exit_again: Vec<_> = exits.collect();
        Execution {
            status: status.into(),
            nodes,
            exit,
            exit_again,
            order,
        }
    }

    fn dag(
        &self,
        templates: &BTreeMap<String, Value>,
        t: &Value,
        globals: &BTreeMap<String, String>,
    ) -> (BTreeMap<String, Node>, Vec<String>) {
        let tasks = t["dag"]["tasks"].as_array().expect("a DAG template");
        let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
        let mut order = Vec::new();
        let mut failed = false;
        loop {
            let mut progressed = false;
            for task in tasks {
                let name = task["name"].as_str().unwrap().to_string();
                if nodes.contains_key(&name) {
                    continue;
                }
                let deps: Vec<String> = task["depends"]
                    .as_str()
                    .map(|d| d.split("&&").map(|x| x.trim().to_string()).collect())
                    .unwrap_or_default();
                for d in &deps {
                    assert!(
                        d.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                        "depends beyond bare names: {d}"
                    );
                }
                if deps.iter().any(|d| !nodes.contains_key(d)) {
                    continue;
                }
                progressed = true;
                let template = task["template"].as_str().unwrap().to_string();
                let ok = deps
                    .iter()
                    .all(|d| matches!(nodes[d].phase, Phase::Succeeded | Phase::Skipped));
                let skip = |phase| Node {
                    template: template.clone(),
                    phase,
                    outputs: BTreeMap::new(),
                    exit_code: None,
                    stdout: String::new(),
                    stderr: String::new(),
                    args: Vec::new(),
                };
                let node = if !ok || failed {
                    skip(Phase::Omitted)
                } else if let Some(w) = task["when"].as_str()
                    && !self.when(w, &nodes, globals)
                {
                    skip(Phase::Skipped)
                } else {
                    let mut args = BTreeMap::new();
                    for p in task["arguments"]["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                    {
                        let v = subst(p["value"].as_str().unwrap(), &nodes, globals, None);
                        args.insert(p["name"].as_str().unwrap().to_string(), v);
                    }
                    self.run(&name, &templates[&template], &args, &nodes, globals)
                };
                if node.phase == Phase::Failed {
                    failed = true;
                }
                order.push(name.clone());
                nodes.insert(name, node);
            }
            if !progressed {
                break;
            }
        }
        assert_eq!(
            nodes.len(),
            tasks.len(),
            "tasks left waiting: a cycle or a bad depends"
        );
        (nodes, order)
    }

    fn when(
        &self,
        w: &str,
        nodes: &BTreeMap<String, Node>,
        globals: &BTreeMap<String, String>,
    ) -> bool {
        let s = subst(w, nodes, globals, None);
        match s.as_str() {
            "true" => return true,
            "false" => return false,
            _ => {}
        }
        // govaluate on substituted text: the emitter writes `A != B` / `A == B` only.
        if let Some((a, b)) = s.split_once("!=") {
            return a.trim() != b.trim();
        }
        if let Some((a, b)) = s.split_once("==") {
            return a.trim() == b.trim();
        }
        panic!("when: not in the subset: {w}")
    }

    fn run(
        &self,
        name: &str,
        t: &Value,
        args: &BTreeMap<String, String>,
        nodes: &BTreeMap<String, Node>,
        globals: &BTreeMap<String, String>,
    ) -> Node {
        let tname = t["name"].as_str().unwrap().to_string();
        let mut inputs = BTreeMap::new();
        for p in t["inputs"]["parameters"].as_array().into_iter().flatten() {
            let n = p["name"].as_str().unwrap();
            let v = args
                .get(n)
                .cloned()
                .or_else(|| p["default"].as_str().map(String::from))
                .unwrap_or_else(|| panic!("{name}: input `{n}` has no value"));
            inputs.insert(n.to_string(), v);
        }
        if t.get("suspend").is_some() {
            let decision = match self.decisions.get(name) {
                Some(d) => d.clone(),
                None => {
                    assert!(
                        t["suspend"]["duration"].is_string(),
                        "{name}: no decision supplied and no duration: the workflow would wait forever"
                    );
                    String::new()
                }
            };
            let mut outputs = BTreeMap::new();
            outputs.insert("decision".to_string(), decision);
            if let Some(a) = self.approvals.get(name) {
                outputs.insert("approval".to_string(), a.clone());
            }
            return Node {
                template: tname,
                phase: Phase::Succeeded,
                outputs,
                exit_code: None,
                stdout: String::new(),
                stderr: String::new(),
                args: Vec::new(),
            };
        }
        if t.get("dag").is_some() {
            panic!("{name}: nested DAGs are not in the subset");
        }
        let c = t
            .get("container")
            .unwrap_or_else(|| panic!("{name}: not a container"));
        assert!(
            c.get("command").is_none(),
            "{name}: the image's entrypoint is pbc"
        );
        let cargs: Vec<String> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| subst(a.as_str().unwrap(), nodes, globals, Some(&inputs)))
            .collect();
        let limit: u32 = t["retryStrategy"]["limit"]
            .as_str()
            .map(|l| l.parse().unwrap())
            .unwrap_or(0);
        let mut attempt = 0;
        loop {
            let n = self.pod(&tname, t, &cargs);
            if n.phase == Phase::Succeeded || attempt >= limit {
                return n;
            }
            attempt += 1;
        }
    }

    fn pod(&self, tname: &str, t: &Value, args: &[String]) -> Node {
        let k = self.pods.get();
        self.pods.set(k + 1);
        let out = self.work.join(format!("pod-{k}"));
        std::fs::create_dir_all(&out).unwrap();
        open_up(&out);
        let mut cmd = if is_root() {
            // The image runs as a non-root user (65534).
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&self.pbc);
            c
        } else {
            Command::new(&self.pbc)
        };
        cmd.args(args).env_clear();
        for e in t["container"]["env"].as_array().into_iter().flatten() {
            let name = e["name"].as_str().unwrap();
            if let Some(v) = e["value"].as_str() {
                cmd.env(name, v);
                continue;
            }
            let r = &e["valueFrom"]["secretKeyRef"];
            let key = (
                r["name"].as_str().unwrap().to_string(),
                r["key"].as_str().unwrap().to_string(),
            );
            let v = self.secrets.get(&key).unwrap_or_else(|| {
                panic!("{tname}: secret {key:?} missing: the pod would not start")
            });
            cmd.env(name, v);
        }
        let o = cmd
            .env("PATH", "/usr/bin:/bin")
            .env("PBC_RUNNER_DIR", &self.mount)
            .env("PBC_RUNNER_OUT", &out)
            .current_dir(&out)
            .output()
            .expect("the pod's command starts");
        let mut outputs = BTreeMap::new();
        for p in t["outputs"]["parameters"].as_array().into_iter().flatten() {
            let n = p["name"].as_str().unwrap().to_string();
            let path = p["valueFrom"]["path"].as_str().unwrap();
            let rel = path
                .strip_prefix(OUT_MOUNT)
                .and_then(|r| r.strip_prefix('/'))
                .unwrap_or_else(|| panic!("{tname}: output outside {OUT_MOUNT}: {path}"));
            let v = std::fs::read_to_string(out.join(rel))
                .ok()
                .or_else(|| p["valueFrom"]["default"].as_str().map(String::from))
                .unwrap_or_else(|| panic!("{tname}: output {n} missing and no default"));
            outputs.insert(n, v);
        }
        Node {
            template: tname.into(),
            phase: if o.status.success() {
                Phase::Succeeded
            } else {
                Phase::Failed
            },
            outputs,
            exit_code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            args: args.to_vec(),
        }
    }
}

/// Replaces each `{{…}}` once, left to right (a replacement is not scanned again).
fn subst(
    s: &str,
    nodes: &BTreeMap<String, Node>,
    globals: &BTreeMap<String, String>,
    inputs: Option<&BTreeMap<String, String>>,
) -> String {
    let lookup = |task: &str, param: &str| -> String {
        let n = nodes
            .get(task)
            .unwrap_or_else(|| panic!("a reference to task `{task}`, not decided yet"));
        n.outputs.get(param).cloned().unwrap_or_default()
    };
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let j = rest[i..].find("}}").map(|j| i + j).expect("an unclosed {{");
        let inner = &rest[i + 2..j];
        let v = if let Some(e) = inner.strip_prefix('=') {
            expr::eval(e, &lookup).text()
        } else if let Some(p) = inner.strip_prefix("inputs.parameters.") {
            inputs
                .and_then(|m| m.get(p))
                .cloned()
                .unwrap_or_else(|| panic!("unresolved {inner}"))
        } else if let Some(t) = inner.strip_prefix("tasks.") {
            let (task, p) = t.split_once(".outputs.parameters.").expect("a task output");
            lookup(task, p)
        } else {
            globals
                .get(inner)
                .cloned()
                .unwrap_or_else(|| panic!("unresolved {{{{{inner}}}}}"))
        };
        out.push_str(&v);
        rest = &rest[j + 2..];
    }
    out.push_str(rest);
    out
}
