//! Shared setup: a copy of `testdata/seeds/code-review-agent` in a temporary directory with
//! a `.pbc.yaml` defining its non-built-in guardrails and an agents file whose `glm-5` is
//! the command agent `fixtures/review.py`.
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
        let pbc = PBC_YAML.replace("security-file", "slack-security-channel");
        std::fs::write(dir.path().join(".pbc.yaml"), pbc).unwrap();
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
