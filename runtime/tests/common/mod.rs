//! Shared setup: a copy of `testdata/seeds/code-review-agent` in a temporary directory with
//! a `.pbc.yaml` defining its non-built-in guardrails, channels and audit sinks, and an agents
//! file whose `glm-5` is the command agent `fixtures/review.py`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub const PBC_YAML: &str = r#"guardrails:
  owasp-basic-check:
    patterns: ['\beval\s*\(', 'innerHTML\s*=']
  owasp-top-10:
    patterns: ['(?i)select\s+\*\s+from\s+\w+\s+where\s+.*\+']
  cwe-top-25:
    patterns: ['\bstrcpy\s*\(', '\bgets\s*\(']
  gdpr-compliance:
    patterns: ['(?i)\bdate of birth\b']
  sox-compliance:
    patterns: ['(?i)\boff-the-books\b']
notifications:
  security-file:
    file: notifications.jsonl
"#;

/// The channels (other than the on-pending one) and audit sinks the seed names: a name the
/// configuration does not define is a check error.
pub const SEED_NAMES_YAML: &str = r#"  slack-security: {file: rollback-notifications.jsonl}
  email-ciso: {file: rollback-notifications.jsonl}
  slack-eng-ops: {file: alerts.jsonl}
audit-sinks:
  langfuse: {file: audit-sink.jsonl}
  cloudtrail: {file: audit-sink.jsonl}
  s3: {file: audit-sink.jsonl}
"#;

/// [`PBC_YAML`] with the on-pending channel under the seed's name, and the seed's other
/// channels and sinks.
pub fn seed_pbc_yaml() -> String {
    format!(
        "{}{SEED_NAMES_YAML}",
        PBC_YAML.replace("security-file", "slack-security-channel")
    )
}

pub struct Seed {
    pub dir: tempfile::TempDir,
}

impl Seed {
    pub fn new() -> Seed {
        let dir = tempfile::tempdir().unwrap();
        let src = repo().join("testdata/seeds/code-review-agent");
        for e in std::fs::read_dir(&src).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
        // The playbook's on-pending channel, routed to a file.
        std::fs::write(dir.path().join(".pbc.yaml"), seed_pbc_yaml()).unwrap();
        std::fs::write(
            dir.path().join("agents.yaml"),
            format!(
                "agents:\n  glm-5: {{command: [python3, {}], timeout: 20s}}\nroles:\n  security-team: [ann@example.com]\n  compliance-team: [carol@example.com]\n  tech-lead: [tom@example.com]\n",
                fixture("review.py").display()
            ),
        )
        .unwrap();
        Seed { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn playbook(&self) -> PathBuf {
        self.path("code-review-agent.yaml")
    }

    pub fn state(&self) -> PathBuf {
        self.path("state")
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

/// A webhook on loopback that answers 200 to every POST and records its JSON body before
/// answering, so a notification is in `seen()` when the call that sent it returns.
pub struct Hook {
    pub url: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Hook {
    pub fn start() -> Hook {
        use std::io::{BufRead, BufReader, Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
                    .unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let mut len = 0usize;
                loop {
                    line.clear();
                    if r.read_line(&mut line).is_err() || line.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                if r.read_exact(&mut body).is_err() {
                    continue;
                }
                if let Ok(v) = serde_json::from_slice(&body) {
                    seen2.lock().unwrap().push(v);
                }
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Hook { url, seen }
    }

    /// Every notification received so far.
    pub fn seen(&self) -> Vec<serde_json::Value> {
        self.seen.lock().unwrap().clone()
    }

    /// Their `event` fields.
    pub fn events(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|v| v["event"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

/// A loopback URL nothing listens on (a port bound, then released).
pub fn closed_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}/hook")
}
