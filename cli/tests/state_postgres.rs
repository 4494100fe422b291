//! The PostgreSQL state store through the `pbc` binary: real processes sharing one database
//! on a loopback server (`PBC_TEST_POSTGRES_URL`, a role that may create databases; the
//! password in `PBC_STATE_PASSWORD`). Two `pbc run` processes at once count one rate limit;
//! a `pbc run` killed with `kill -9` mid-stage resumes; `pbc audit verify` passes after
//! concurrent writers; three `pbc runner` pods with directories of their own share one rate
//! limit and one audit chain (no pod keeps a log file); `pbc state migrate` creates the
//! schema and re-runs as a no-op. Each
//! test makes a database of its own. Under CI (`.ci/run` starts the server) a missing URL
//! fails; elsewhere the tests say so and pass. Linux only (`kill -9` and named pipes).
#![cfg(target_os = "linux")]

mod pg_common;

use pg_common::{Db, connect, fresh_db};

use serde_json::Value;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A hang guard, not a timing.
const HANG: Duration = Duration::from_secs(60);

fn step_py() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/step.py")
}

const PLAYBOOK: &str = r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: scale}
spec:
  trigger: ev
  rate-limits:
    "k8s:scale": "3 per hour"
  stages:
    - name: analyse
      agent: planner
    - name: up
      action: k8s:scale
      needs: [analyse]
    - name: again
      action: k8s:scale
      needs: [up]
"#;

/// A directory with the playbook, the agents file, the input, `step.py`'s control directory
/// and a state directory `st` whose tables are in `db`.
struct Lab {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    ctl: PathBuf,
    db: Db,
}

impl Lab {
    fn new() -> Option<Lab> {
        let db = fresh_db()?;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let ctl = dir.join("ctl");
        std::fs::create_dir(&ctl).unwrap();
        let step = step_py();
        let step = step.display();
        std::fs::write(dir.join("scale.yaml"), PLAYBOOK).unwrap();
        std::fs::write(
            dir.join("agents.yaml"),
            format!(
                "agents:\n  planner: {{command: [python3, \"{step}\", agent], timeout: 120s}}\nactions:\n  \"k8s:scale\": {{command: [python3, \"{step}\", action], timeout: 120s}}\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.join("in.json"), "{}").unwrap();
        Some(Lab {
            _tmp: tmp,
            dir,
            ctl,
            db,
        })
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pbc"));
        c.args(args)
            .arg("--state")
            .arg("st")
            .current_dir(&self.dir)
            .env_remove("PBC_STATE_DIR")
            .env("PBC_STATE_URL", &self.db.url)
            .env("PBC_TEST_CTL", &self.ctl)
            .stdin(Stdio::null());
        c
    }

    fn pbc(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn spawn_run(&self) -> Child {
        self.cmd(&[
            "run",
            "scale.yaml",
            "--input",
            "in.json",
            "--agents",
            "agents.yaml",
            "--as",
            "alice",
            "--format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    }

    fn verify(&self, after: &str) {
        let o = self.pbc(&["audit", "verify"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "audit verify after {after}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.ctl.join(name))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    fn block(&self, point: &str) {
        let fifo = self.ctl.join(format!("fifo-{point}"));
        assert!(
            Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        std::fs::write(self.ctl.join(format!("block-{point}")), "").unwrap();
    }

    fn wait_at(&self, point: &str, child: &mut Child) {
        let start = Instant::now();
        while !self.ctl.join(format!("at-{point}")).exists() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "pbc ended before {point}"
            );
            assert!(start.elapsed() < HANG, "never reached {point}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until nothing reads `point`'s pipe: the executor died with its runner.
    fn wait_executor_gone(&self, point: &str) {
        let fifo = self.ctl.join(format!("fifo-{point}"));
        let start = Instant::now();
        loop {
            let open = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo);
            if matches!(&open, Err(e) if e.raw_os_error() == Some(libc::ENXIO)) {
                return;
            }
            assert!(start.elapsed() < HANG, "the executor outlived its runner");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[test]
fn two_concurrent_runs_share_one_rate_limit_and_one_audit_chain() {
    let Some(lab) = Lab::new() else { return };
    let (a, b) = (lab.spawn_run(), lab.spawn_run());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let (va, vb) = (json_of(&a), json_of(&b));
    let mut statuses = vec![
        va["status"].as_str().unwrap().to_string(),
        vb["status"].as_str().unwrap().to_string(),
    ];
    statuses.sort();
    // Four scale actions asked for, three allowed per hour across both processes.
    assert_eq!(statuses, ["failed", "succeeded"], "{va}\n{vb}");
    let effects = lab.lines("effects.log");
    assert_eq!(effects.len(), 3, "{effects:?}");
    let failed = if va["status"] == "failed" { &va } else { &vb };
    assert_eq!(failed["stages"]["again"]["status"], "failed", "{failed}");
    // The log is the database's table: `pbc audit export` reads it.
    assert!(!lab.dir.join("st/audit.jsonl").exists());
    let log = String::from_utf8(lab.pbc(&["audit", "export", "--format", "jsonl"]).stdout).unwrap();
    let limited: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "rate-limited")
        .collect();
    assert_eq!(limited.len(), 1, "{log}");
    assert_eq!(limited[0]["run"], failed["run"]);
    let events: i64 = connect(&lab.db.url)
        .query_one("SELECT COUNT(*) FROM rate_events", &[])
        .unwrap()
        .get(0);
    assert_eq!(events, 3);
    // No state.db: the tables are in PostgreSQL.
    assert!(!lab.dir.join("st/state.db").exists());
    lab.verify("two concurrent runs");
}

#[test]
fn a_run_killed_mid_stage_resumes_from_the_shared_store() {
    let Some(lab) = Lab::new() else { return };
    lab.block("analyse");
    let mut runner = lab.spawn_run();
    lab.wait_at("analyse", &mut runner);
    runner.kill().unwrap(); // SIGKILL
    let status = runner.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    lab.wait_executor_gone("analyse");
    lab.verify("kill -9 during analyse");
    let runs = json_of(&lab.pbc(&["runs", "--format", "json"]));
    let run = runs["runs"][0]["run"].as_str().unwrap().to_string();
    let o = lab.pbc(&["resume", &run, "--format", "json"]);
    let v = json_of(&o);
    assert_eq!(
        (o.status.code(), &v["status"]),
        (Some(0), &Value::from("succeeded")),
        "{v}"
    );
    // The agent ran again; each action once.
    assert_eq!(lab.lines("agents.log"), ["analyse", "analyse"]);
    assert_eq!(lab.lines("effects.log").len(), 2);
    lab.verify("resume");
}

#[test]
fn state_migrate_creates_the_schema_and_reruns_as_a_no_op() {
    let Some(lab) = Lab::new() else { return };
    let first = lab.pbc(&["state", "migrate"]);
    assert_eq!(first.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&first.stdout),
        "the PostgreSQL state store: migrated schema 0 -> 2\n"
    );
    let again = lab.pbc(&["state", "migrate"]);
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        "the PostgreSQL state store: schema 2 (up to date)\n"
    );
    let tables: i64 = connect(&lab.db.url)
        .query_one(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 17);
}

const POD_PLAYBOOK: &str = r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: scale}
spec:
  trigger: ev
  audit: {log-to: [trail]}
  rate-limits:
    "k8s:scale": "2 per hour"
  stages:
    - name: up
      action: k8s:scale
"#;

/// Three `pbc runner run` processes, each a pod with a directory of its own (the ConfigMap
/// shared, the state and outputs not), on one PostgreSQL database: the rate limit is
/// counted across them, the audit chain is one, a fourth directory verifies and exports it,
/// and each pod's log shows its own run only.
#[test]
fn runner_pods_with_their_own_directories_share_one_rate_limit_and_one_audit_chain() {
    let Some(db) = fresh_db() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let etc = root.join("etc");
    std::fs::create_dir(&etc).unwrap();
    std::fs::write(etc.join("playbook.yaml"), POD_PLAYBOOK).unwrap();
    std::fs::write(
        etc.join("agents.yaml"),
        "actions:\n  \"k8s:scale\": {command: [python3, -c, \"import json,sys; json.load(sys.stdin); print('{}')\"]}\n",
    )
    .unwrap();
    let trail = root.join("trail.jsonl");
    std::fs::write(
        etc.join("pbc.yaml"),
        format!("audit-sinks:\n  trail: {{file: {}}}\n", trail.display()),
    )
    .unwrap();
    let pod = |n: usize| {
        Command::new(env!("CARGO_BIN_EXE_pbc"))
            .args(["runner", "run", "--playbook", "scale", "--stage", "up"])
            .args(["--workflow", &format!("scale-{n}"), "--input", "{}"])
            .arg("--dir")
            .arg(&etc)
            .arg("--out")
            .arg(root.join(format!("pod{n}")))
            .env_remove("PBC_STATE_DIR")
            .env("PBC_STATE_URL", &db.url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let pods: Vec<Child> = (0..3).map(pod).collect();
    let outs: Vec<Output> = pods
        .into_iter()
        .map(|p| p.wait_with_output().unwrap())
        .collect();
    let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
    let passed = codes.iter().filter(|c| **c == Some(0)).count();
    let failed = codes.iter().filter(|c| **c == Some(1)).count();
    let dump = || {
        outs.iter()
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    // Two allowed per hour, across the three pods.
    assert_eq!((passed, failed), (2, 1), "{codes:?}\n{}", dump());
    // Each pod's log (stdout) is its own run's entries; the refused pod's has the refusal.
    let mut runs = Vec::new();
    for o in &outs {
        let entries: Vec<Value> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let run = entries[0]["run"].as_str().unwrap().to_string();
        assert!(
            entries.iter().all(|e| e["run"] == run.as_str()),
            "{}",
            dump()
        );
        let limited = entries.iter().any(|e| e["event"] == "rate-limited");
        assert_eq!(limited, o.status.code() == Some(1), "{}", dump());
        runs.push(run);
    }
    // No pod keeps a log of its own: the chain is the database's.
    for n in 0..3 {
        assert!(!root.join(format!("pod{n}/state/audit.jsonl")).exists());
    }
    // A fourth directory (a pod that ran nothing) sees one verified chain with every run.
    let elsewhere = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pbc"))
            .args(args)
            .arg("--state")
            .arg(root.join("other"))
            .env_remove("PBC_STATE_DIR")
            .env("PBC_STATE_URL", &db.url)
            .output()
            .unwrap()
    };
    let v = elsewhere(&["audit", "verify"]);
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    let export = elsewhere(&["audit", "export", "--format", "jsonl"]);
    assert_eq!(export.status.code(), Some(0));
    let exported: Vec<Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for run in &runs {
        assert!(
            exported
                .iter()
                .any(|e| e["run"] == run.as_str() && e["event"] == "run-started"),
            "{run} not in the shared log"
        );
    }
    let seqs: Vec<u64> = exported
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "one chain"
    );
    // The file sink the playbook logs to received every run's entries from the pods.
    let copy = std::fs::read_to_string(&trail).unwrap_or_default();
    for run in &runs {
        assert!(
            copy.contains(&format!("\"run\":\"{run}\"")),
            "{run} not in {copy}"
        );
    }
}
