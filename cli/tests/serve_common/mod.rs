//! A `pbc serve` process for the serve tests: a playbook directory with tokens, an event
//! secret and an action executor; the real binary started on 127.0.0.1:0; HTTP through ureq.

#![allow(dead_code)]

pub mod openapi;
pub mod web;

use hmac::{KeyInit, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

pub const SECRET: &str = "event-secret-for-tests";

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn sha(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub fn sign(body: &str) -> String {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

/// A directory with `deploy.yaml` (event `release`, an input schema, one manual gate for
/// role sre with `sla`, escalating to sre-lead after `escalate`), `.pbc.yaml` (roles,
/// tokens for ann, sam and lee, bob's in `tokens.yaml`, the event secret's variable) and
/// `agents.yaml`.
pub fn project(sla: &str, escalate: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("schemas")).unwrap();
    std::fs::write(
        d.join("schemas/input.json"),
        r#"{"type": "object", "required": ["version"], "properties": {"version": {"type": "string"}}}"#,
    )
    .unwrap();
    std::fs::write(
        d.join("deploy.yaml"),
        format!(
            r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {{name: deploy}}
spec:
  trigger: {{event: release, input-schema: schemas/input.json}}
  stages:
    - name: apply
      action: k8s:apply
      approval: manual
      approvers: [{{role: sre}}]
      sla: {sla}
      escalation:
        - after: {escalate}
          approvers: [{{role: sre-lead}}]
"#
        ),
    )
    .unwrap();
    let mut cfg = String::from(
        "roles:\n  sre: [sam@example.com]\n  sre-lead: [lee@example.com]\nserve:\n  event-secret-env: PBC_TEST_EVENT_SECRET\n  agents: agents.yaml\n  max-body-bytes: 4096\n  tokens:\n",
    );
    for who in ["ann", "sam", "lee"] {
        cfg.push_str(&format!(
            "    - {{user: {who}@example.com, sha256: {}}}\n",
            sha(&format!("{who}-token"))
        ));
    }
    // bob's token comes from the tokens file.
    cfg.push_str("  tokens-file: tokens.yaml\n");
    std::fs::write(d.join(".pbc.yaml"), cfg).unwrap();
    std::fs::write(
        d.join("tokens.yaml"),
        format!(
            "- {{user: bob@example.com, sha256: {}}}\n",
            sha("bob-token")
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("agents.yaml"),
        format!(
            "actions:\n  \"k8s:apply\": {{command: [python3, {}], timeout: 20s}}\n",
            repo().join("runtime/tests/fixtures/action.py").display()
        ),
    )
    .unwrap();
    dir
}

/// A running `pbc serve`.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `pbc serve ROOT --listen 127.0.0.1:0 --state STATE` in `dir`.
    pub fn start(dir: &Path, root: &str) -> Server {
        Server::start_with(dir, root, &[], &[])
    }

    /// [`Server::start`] with more arguments and environment variables.
    pub fn start_with(dir: &Path, root: &str, args: &[&str], envs: &[(&str, &Path)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pbc"));
        cmd.args(["serve", root, "--listen", "127.0.0.1:0", "--state", "st"])
            .args(args)
            .current_dir(dir)
            .env_remove("PBC_STATE_DIR")
            .env_remove("PBC_TEST_CLOCK_FILE")
            .env("PBC_TEST_EVENT_SECRET", SECRET)
            .env("ACTION_LOG", dir.join("actions.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // The log is JSON, one object a line (`--log-format json`, the default).
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["target"] == "pbc_serve"
                    && v["addr"].is_string()
                    && let Some(url) = v["message"]
                        .as_str()
                        .and_then(|m| m.strip_prefix("listening on "))
                {
                    let _ = tx.send(url.trim().to_string());
                }
                l.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                panic!("pbc serve did not start:\n{}", log.lock().unwrap());
            }
        };
        Server { child, url, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The log's lines as JSON objects (panics on a line that is not one).
    pub fn log_json(&self) -> Vec<Value> {
        self.log()
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {l}"))
            })
            .collect()
    }

    /// Polls the server's log until it holds `needle` `times` times; returns the log.
    pub fn wait_log(&self, needle: &str, times: usize) -> String {
        for _ in 0..600 {
            let log = self.log();
            if log.matches(needle).count() >= times {
                return log;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "the log never said `{needle}` {times} time(s):\n{}",
            self.log()
        );
    }

    /// Sends SIGHUP (reload).
    #[cfg(unix)]
    pub fn hup(&self) {
        // SAFETY: kill(2) on our child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGHUP);
        }
    }

    /// A request: (status, JSON body, or `{"text": ...}` when the body is not JSON).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let url = format!("{}{path}", self.url);
        let mut auth = Vec::new();
        if let Some(t) = token {
            auth.push(("Authorization", format!("Bearer {t}")));
        }
        macro_rules! with_headers {
            ($req:expr) => {{
                let mut r = $req;
                for (k, v) in &auth {
                    r = r.header(*k, v.as_str());
                }
                for (k, v) in headers {
                    r = r.header(*k, *v);
                }
                r
            }};
        }
        let resp = match method {
            "GET" => with_headers!(agent.get(&url)).call(),
            "DELETE" => with_headers!(agent.delete(&url)).call(),
            "POST" => with_headers!(agent.post(&url).header("Content-Type", "application/json"))
                .send(body.unwrap_or("")),
            m => panic!("method {m}"),
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.log()));
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        openapi::check(method, path, status, &content_type, &text);
        let v = serde_json::from_str(&text).unwrap_or_else(|_| serde_json::json!({"text": text}));
        (status, v)
    }

    pub fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call("GET", path, Some(token), &[], None)
    }

    pub fn post(&self, path: &str, token: &str, body: &str) -> (u16, Value) {
        self.call("POST", path, Some(token), &[], Some(body))
    }

    /// A signed event.
    pub fn event(&self, event: &str, body: &str, key: Option<&str>) -> (u16, Value) {
        let sig = sign(body);
        let mut h = vec![("X-Hub-Signature-256", sig.as_str())];
        if let Some(k) = key {
            h.push(("Idempotency-Key", k));
        }
        self.call("POST", &format!("/v1/events/{event}"), None, &h, Some(body))
    }

    /// Polls `GET /v1/runs/{id}` until its status is `want` (a state the run reaches by
    /// itself, without a request changing it).
    pub fn wait_status(&self, run: &str, want: &str) -> Value {
        for _ in 0..600 {
            let (code, v) = self.get(&format!("/v1/runs/{run}"), "ann-token");
            assert_eq!(code, 200, "{v}");
            if v["status"] == want {
                return v;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("run {run} never became {want}:\n{}", self.log());
    }

    /// SIGTERM, then waits for the process to end.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        #[cfg(unix)]
        // SAFETY: kill(2) on our child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        #[cfg(not(unix))]
        let _ = self.child.kill();
        self.child.wait().unwrap()
    }

    /// `kill -9`.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `pbc ARGS` in `dir`.
pub fn pbc(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(args)
        .current_dir(dir)
        .env_remove("PBC_STATE_DIR")
        .output()
        .unwrap()
}

/// The approvals table, read straight from the state store (no deadline applied).
pub fn approvals(dir: &Path) -> Vec<(String, String, i64, Option<i64>)> {
    let c = rusqlite::Connection::open_with_flags(
        dir.join("st/state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut st = c
        .prepare("SELECT id, status, level, deadline FROM approvals ORDER BY opened_at")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}
