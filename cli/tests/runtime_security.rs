//! Hostile tests of the runtime commands through the `pbc` binary, with real processes and
//! files: an approval is decided exactly once when two processes decide it at once; secrets
//! never reach the audit log, the state (outside the run's stored input) or stdout; the state
//! store cannot forge a decision; exit codes follow what was committed, and unusable state
//! directories or configuration files get messages that name the real problem.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Barrier};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn pbc_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pbc"));
    c.args(args)
        .current_dir(dir)
        .env_remove("PBC_STATE_DIR")
        .env("ACTION_LOG", dir.join("actions.log"));
    c
}

fn pbc(dir: &Path, args: &[&str]) -> Output {
    pbc_cmd(dir, args).output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", out(o), err(o)))
}

/// Audit entries of the state in `dir/st`.
fn audit(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("st/audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn count_events(entries: &[Value], events: &[&str], approval: &str) -> usize {
    entries
        .iter()
        .filter(|e| {
            events.contains(&e["event"].as_str().unwrap_or_default())
                && e["details"]["approval"] == approval
        })
        .count()
}

/// A gated action (no executor runs before a decision), its approvers ann and bob, and a
/// file notification channel. `stages` copies of the stage, none depending on another.
fn gated_dir(stages: usize) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let mut pb = String::from(
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata: {name: deploy}\nspec:\n  trigger: deploy\n  stages:\n",
    );
    for i in 0..stages {
        pb.push_str(&format!(
            "    - name: apply-{i}\n      action: db:migrate\n      params: {{version: \"${{input.version}}\"}}\n      needs: []\n      approval: manual\n      approvers: [{{user: ann@example.com}}, {{user: bob@example.com}}]\n      notification:\n        on-pending: [log]\n        on-approved: [log]\n        on-rejected: [log]\n"
        ));
    }
    std::fs::write(d.path().join("pb.yaml"), pb).unwrap();
    std::fs::write(
        d.path().join(".pbc.yaml"),
        "notifications:\n  log: {file: notes.jsonl}\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("agents.yaml"),
        format!(
            "actions:\n  \"db:migrate\": {{command: [python3, {}]}}\n",
            repo().join("runtime/tests/fixtures/action.py").display()
        ),
    )
    .unwrap();
    std::fs::write(d.path().join("in.json"), r#"{"version": "7"}"#).unwrap();
    d
}

/// Starts a run; its pending approvals' ids, in stage order.
fn start(dir: &Path) -> (String, Vec<String>) {
    let o = pbc(
        dir,
        &[
            "run",
            "pb.yaml",
            "--input",
            "in.json",
            "--agents",
            "agents.yaml",
            "--state",
            "st",
            "--as",
            "alice",
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let v = json_of(&o);
    let mut stages: Vec<(&String, &Value)> = v["stages"].as_object().unwrap().iter().collect();
    stages.sort_by_key(|(n, _)| {
        n.rsplit('-')
            .next()
            .and_then(|x| x.parse::<usize>().ok())
            .unwrap_or(0)
    });
    let ids = stages
        .iter()
        .map(|(_, s)| s["approval_id"].as_str().unwrap().to_string())
        .collect();
    (v["run"].as_str().unwrap().to_string(), ids)
}

/// Runs two commands at once (both released by one barrier); their outputs.
fn race(dir: &Path, a: Vec<String>, b: Vec<String>) -> (Output, Output) {
    let barrier = Arc::new(Barrier::new(2));
    let spawn = |args: Vec<String>| {
        let barrier = barrier.clone();
        let dir = dir.to_path_buf();
        std::thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut cmd = pbc_cmd(&dir, &args);
            barrier.wait();
            cmd.output().unwrap()
        })
    };
    let (ta, tb) = (spawn(a), spawn(b));
    (ta.join().unwrap(), tb.join().unwrap())
}

fn decide_args(id: &str, who: &str, reject: bool) -> Vec<String> {
    let mut v: Vec<String> = vec![
        if reject { "reject" } else { "approve" }.into(),
        id.into(),
        "--as".into(),
        who.into(),
        "--state".into(),
        "st".into(),
    ];
    if reject {
        v.extend(["--reason".into(), "not now".into()]);
    }
    v
}

/// One round: exactly one decider wins (exit 0), the other is refused (exit 1) naming who
/// decided and when; one decision in the audit log, one notification.
fn check_round(dir: &Path, id: &str, a: (&str, bool), b: (&str, bool)) {
    let (oa, ob) = race(dir, decide_args(id, a.0, a.1), decide_args(id, b.0, b.1));
    let codes = (oa.status.code(), ob.status.code());
    let (win, lose, winner) = match codes {
        (Some(0), Some(1)) => (&oa, &ob, a),
        (Some(1), Some(0)) => (&ob, &oa, b),
        _ => panic!(
            "approval {id}: exit codes {codes:?}, want one 0 and one 1\nA: {}{}\nB: {}{}",
            out(&oa),
            err(&oa),
            out(&ob),
            err(&ob)
        ),
    };
    let msg = err(lose);
    assert!(
        msg.contains(&format!("approval {id} was already "))
            && msg.contains(&format!("by {} at 20", winner.0)),
        "loser's message: {msg}\nwinner said: {}",
        out(win)
    );
    let entries = audit(dir);
    assert_eq!(
        count_events(&entries, &["approval-granted", "approval-rejected"], id),
        1,
        "decisions of {id} in the audit log"
    );
    let notes = std::fs::read_to_string(dir.join("notes.jsonl")).unwrap();
    let decided = notes
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|n| n["approval"] == id && n["event"] != "on-pending")
        .count();
    assert_eq!(decided, 1, "decision notifications of {id}:\n{notes}");
}

/// Two deciders of the same gate at once, one open gate per round: `a` and `b` say who
/// decides and whether they reject.
fn rounds_on_one_run(rounds: usize, a: (&'static str, bool), b: (&'static str, bool)) {
    let d = gated_dir(rounds);
    let dir = d.path();
    let (_, ids) = start(dir);
    for id in &ids {
        check_round(dir, id, a, b);
    }
    let o = pbc(dir, &["audit", "verify", "--state", "st"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
}

/// Approve against reject: a rejection ends its run, so one run per round.
fn approve_against_reject(rounds: usize) {
    let d = gated_dir(1);
    let dir = d.path();
    let mut done = Vec::new();
    for _ in 0..rounds {
        let (run, ids) = start(dir);
        check_round(
            dir,
            &ids[0],
            ("ann@example.com", false),
            ("bob@example.com", true),
        );
        done.push((run, ids[0].clone()));
    }
    // A rejection ends its run, also when the losing process held the run's lock.
    let a = audit(dir);
    let runs = json_of(&pbc(dir, &["runs", "--state", "st", "--format", "json"]));
    for (run, id) in done {
        let rejected = count_events(&a, &["approval-rejected"], &id) == 1;
        let status = runs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["run"] == run.as_str())
            .map(|r| r["status"].as_str().unwrap().to_string())
            .unwrap();
        let want = if rejected {
            "rejected"
        } else {
            "waiting-approval"
        };
        assert_eq!(status, want, "run {run}");
    }
    let o = pbc(dir, &["audit", "verify", "--state", "st"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
}

/// 50 rounds of each race, the three kinds side by side (each in its own state directory).
#[test]
fn an_approval_is_decided_once_by_concurrent_processes() {
    const ROUNDS: usize = 50;
    let two = std::thread::spawn(|| {
        rounds_on_one_run(
            ROUNDS,
            ("ann@example.com", false),
            ("bob@example.com", false),
        )
    });
    let same = std::thread::spawn(|| {
        rounds_on_one_run(
            ROUNDS,
            ("ann@example.com", false),
            ("ann@example.com", false),
        )
    });
    approve_against_reject(ROUNDS);
    two.join().unwrap();
    same.join().unwrap();
}

/// Secrets in the run's input (interpolated into an action's params) and in an agent's
/// output (as JSON fields and as values), in stages that name no secret guardrail.
const INPUT_SECRETS: &[&str] = &["S3cr3t-Input-Pw-4417", "AKIAZ7Q2R4T6Y8U0W2E4"];
const OUTPUT_SECRETS: &[&str] = &[
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "hunter2-Zq-9",
    "k3y-Alpha-Beta-77",
    "tok-123-secret-x",
    "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu",
];

fn leak_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    std::fs::write(
        dir.join("pb.yaml"),
        r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: leak}
spec:
  trigger: leak
  stages:
    - name: deploy
      action: db:migrate
      params: {password: "${input.db_password}", note: "${input.note}", target: prod}
    - name: fetch
      agent: replay
      needs: [deploy]
      audit-log: required
      approval: manual
      approvers: [{user: ann@example.com}]
      notification:
        on-pending: [log, term]
        on-approved: [log, term]
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join(".pbc.yaml"),
        "notifications:\n  log: {file: notes.jsonl}\n  term: {stdout: true}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("agents.yaml"),
        format!(
            "agents:\n  replay: {{fixture: recorded/}}\nactions:\n  \"db:migrate\": {{command: [python3, {}]}}\n",
            repo().join("runtime/tests/fixtures/action.py").display()
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.join("recorded")).unwrap();
    let out = serde_json::json!({
        "aws_secret_access_key": OUTPUT_SECRETS[0],
        "password": OUTPUT_SECRETS[1],
        "api_key": OUTPUT_SECRETS[2],
        "token": OUTPUT_SECRETS[3],
        "tls": {"private_key": format!("-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----", OUTPUT_SECRETS[4])},
        "max_tokens": 512,
        "token_count": 7,
        "summary": "fetched",
    });
    std::fs::write(dir.join("recorded/fetch.json"), out.to_string()).unwrap();
    std::fs::write(
        dir.join("in.json"),
        format!(
            r#"{{"db_password": "{}", "note": "deploy key {}"}}"#,
            INPUT_SECRETS[0], INPUT_SECRETS[1]
        ),
    )
    .unwrap();
    d
}

fn occurrences(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

#[test]
fn secrets_reach_neither_the_audit_log_nor_the_state_nor_stdout() {
    let d = leak_dir();
    let dir = d.path();
    let run = pbc(
        dir,
        &[
            "run",
            "pb.yaml",
            "--input",
            "in.json",
            "--agents",
            "agents.yaml",
            "--state",
            "st",
            "--as",
            "alice",
            "--format",
            "json",
        ],
    );
    assert_eq!(run.status.code(), Some(0), "{}", err(&run));
    let v = json_of(&run);
    assert_eq!(v["stages"]["deploy"]["status"], "passed");
    assert_eq!(v["stages"]["fetch"]["status"], "waiting-approval");
    // Look-alikes are kept; the secret fields are redacted, not dropped.
    let o = &v["stages"]["fetch"]["output"];
    assert_eq!(o["max_tokens"], 512);
    assert_eq!(o["token_count"], 7);
    assert_eq!(o["password"], "[REDACTED:no-secrets-in-code]");
    let id = v["stages"]["fetch"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let run_id = v["run"].as_str().unwrap().to_string();
    // The human report of a run waiting for a person (its message quotes input and output).
    let human = pbc(dir, &["resume", &run_id, "--state", "st"]);
    assert_eq!(human.status.code(), Some(0), "{}", err(&human));
    assert!(
        out(&human).contains("accept the agent's output"),
        "{}",
        out(&human)
    );
    let ok = pbc(
        dir,
        &["approve", &id, "--as", "ann@example.com", "--state", "st"],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", err(&ok));
    let done = pbc(
        dir,
        &["resume", &run_id, "--state", "st", "--format", "json"],
    );
    assert_eq!(json_of(&done)["status"], "succeeded", "{}", err(&done));
    // The action did get the secret (the executor's business), so the test is not vacuous.
    let actions = std::fs::read_to_string(dir.join("actions.log")).unwrap();
    assert!(actions.contains(INPUT_SECRETS[0]), "{actions}");

    let audit_text = std::fs::read_to_string(dir.join("st/audit.jsonl")).unwrap();
    let started = audit(dir)
        .into_iter()
        .find(|e| e["event"] == "stage-started")
        .unwrap();
    assert_eq!(
        started["details"]["params"]["password"],
        "[REDACTED:no-secrets-in-code]"
    );
    let notes = std::fs::read_to_string(dir.join("notes.jsonl")).unwrap();
    assert!(notes.contains("on-approved"), "{notes}");
    let texts: Vec<(&str, String)> = vec![
        ("audit.jsonl", audit_text),
        ("notes.jsonl", notes),
        ("stdout of run --format json", out(&run)),
        ("stderr of run (terminal channel)", err(&run)),
        ("stdout of resume (human)", out(&human)),
        ("stdout of approve", out(&ok)),
        ("stdout of resume --format json", out(&done)),
        ("stderr of approve (terminal channel)", err(&ok)),
    ];
    for (what, text) in &texts {
        for s in INPUT_SECRETS.iter().chain(OUTPUT_SECRETS) {
            assert!(!text.contains(s), "{s} in {what}:\n{text}");
        }
    }
    // The state keeps the run's input as given (resume needs it), and nothing else secret:
    // every occurrence of an input secret in the SQLite files is inside a copy of that
    // stored input, and no output secret occurs at all.
    let db = rusqlite::Connection::open(dir.join("st/state.db")).unwrap();
    let input: String = db
        .query_row("SELECT input FROM runs WHERE id = ?1", [&run_id], |r| {
            r.get(0)
        })
        .unwrap();
    drop(db);
    let mut bytes = Vec::new();
    for f in ["state.db", "state.db-wal"] {
        if let Ok(b) = std::fs::read(dir.join("st").join(f)) {
            bytes.extend(b);
        }
    }
    let copies = occurrences(&bytes, input.as_bytes());
    assert!(copies >= 1);
    for s in INPUT_SECRETS {
        assert_eq!(
            occurrences(&bytes, s.as_bytes()),
            copies * occurrences(input.as_bytes(), s.as_bytes()),
            "{s} in the state outside the stored input"
        );
    }
    for s in OUTPUT_SECRETS {
        assert_eq!(occurrences(&bytes, s.as_bytes()), 0, "{s} in the state");
    }
}

/// Writes `sql` into the state store, as someone with write access to the state directory.
fn forge(dir: &Path, sql: &str) {
    let db = rusqlite::Connection::open(dir.join("st/state.db")).unwrap();
    db.execute_batch(sql).unwrap();
}

#[test]
fn the_state_store_cannot_forge_a_decision() {
    let d = gated_dir(1);
    let dir = d.path();
    // An approval set to approved in the SQLite file, with no approval-granted entry.
    let (run, ids) = start(dir);
    forge(
        dir,
        &format!(
            "UPDATE approvals SET status = 'approved', decided_by = 'ann@example.com', decided_at = 1 WHERE id = '{}'",
            ids[0]
        ),
    );
    let o = pbc(dir, &["resume", &run, "--state", "st", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
    let v = json_of(&o);
    assert_eq!(v["status"], "failed");
    assert!(
        !dir.join("actions.log").exists(),
        "the action ran on a forged approval"
    );
    let human = pbc(dir, &["resume", &run, "--state", "st"]);
    assert!(
        out(&human).contains("no approval-granted entry"),
        "{}",
        out(&human)
    );
    let o = pbc(dir, &["audit", "verify", "--state", "st"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
    assert!(
        out(&o).contains(&format!(
            "approval {} (run {run}) is `approved` by ann@example.com in the state store, but the audit chain records no decision for it",
            ids[0]
        )),
        "{}",
        out(&o)
    );

    // The stage's own flags set behind pbc's back: the gate "approved", its question gone.
    let d = gated_dir(1);
    let dir = d.path();
    let (run, ids) = start(dir);
    let o = pbc(dir, &["audit", "verify", "--state", "st"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    forge(
        dir,
        &format!(
            "UPDATE stages SET gate_approved = 1, risk_approved = 1, status = 'pending', approval_id = NULL WHERE run = '{run}';
             UPDATE approvals SET status = 'cancelled' WHERE id = '{}'",
            ids[0]
        ),
    );
    let o = pbc(dir, &["resume", &run, "--state", "st", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
    assert!(
        !dir.join("actions.log").exists(),
        "the action ran on forged flags"
    );
    let o = pbc(dir, &["audit", "verify", "--state", "st"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
    assert!(
        out(&o).contains("stage apply-0 of run") && out(&o).contains("has its gate approved in the state store, but the audit chain records no such approval"),
        "{}",
        out(&o)
    );

    // A run brought back to life after the chain recorded its end.
    let d = gated_dir(1);
    let dir = d.path();
    let (run, ids) = start(dir);
    let o = pbc(
        dir,
        &[
            "reject",
            &ids[0],
            "--as",
            "bob@example.com",
            "--state",
            "st",
            "--reason",
            "no",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    forge(
        dir,
        &format!("UPDATE runs SET status = 'waiting-approval' WHERE id = '{run}'"),
    );
    let o = pbc(dir, &["audit", "verify", "--state", "st"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
    assert!(
        out(&o).contains(&format!(
            "run {run} is `waiting-approval` in the state store, but the audit chain records it ended `rejected`"
        )),
        "{}",
        out(&o)
    );
}

#[cfg(unix)]
/// Makes `path` immutable (`chattr +i`: refused even to root) until dropped; `None` when the
/// file system or the user cannot.
struct Immutable(PathBuf);

#[cfg(unix)]
impl Immutable {
    fn set(path: &Path) -> Option<Immutable> {
        let ok = Command::new("chattr")
            .arg("+i")
            .arg(path)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Immutable(path.to_path_buf()))
    }
}

#[cfg(unix)]
impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).output();
    }
}

#[cfg(unix)]
fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(unix)]
#[test]
fn a_committed_decision_succeeds_when_the_audit_file_cannot_be_written() {
    let d = gated_dir(1);
    let dir = d.path();
    let (run, ids) = start(dir);
    // An audit file that is not a file at all (a directory in its place) is refused before
    // anything is decided: nothing is committed, the approval stays pending.
    let log = dir.join("st/audit.jsonl");
    let saved = dir.join("audit.saved");
    std::fs::rename(&log, &saved).unwrap();
    std::fs::create_dir(&log).unwrap();
    let o = pbc(
        dir,
        &[
            "approve",
            &ids[0],
            "--as",
            "ann@example.com",
            "--state",
            "st",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}{}", out(&o), err(&o));
    assert!(err(&o).contains("audit.jsonl"), "{}", err(&o));
    std::fs::remove_dir(&log).unwrap();
    std::fs::rename(&saved, &log).unwrap();
    assert_eq!(count_events(&audit(dir), &["approval-granted"], &ids[0]), 0);

    // An audit file that cannot be written once the decision is committed (chattr +i,
    // refused to root too): the decision stands, with one warning.
    let lock = Immutable::set(&log);
    if lock.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "chattr +i is needed for this test in CI"
        );
        eprintln!("note: chattr +i is not available here; the immutable-file case was skipped");
        return;
    }
    let o = pbc(
        dir,
        &[
            "approve",
            &ids[0],
            "--as",
            "ann@example.com",
            "--state",
            "st",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert!(
        out(&o).contains(&format!("approved {}", ids[0])),
        "{}",
        out(&o)
    );
    let e = err(&o);
    assert!(
        e.contains("could not be appended") && e.contains("audit.jsonl"),
        "{e}"
    );
    assert_eq!(e.matches("warning:").count(), 1, "one warning: {e}");
    // The decision stands: a second approver is told who decided.
    let o = pbc(
        dir,
        &[
            "approve",
            &ids[0],
            "--as",
            "bob@example.com",
            "--state",
            "st",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("already approved by ann@example.com"),
        "{}",
        err(&o)
    );
    // audit verify says what waits.
    let o = pbc(dir, &["audit", "verify", "--state", "st"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert!(err(&o).contains("not in the file yet"), "{}", err(&o));
    // The file writable again: the next command appends what waited; the chain verifies.
    drop(lock);
    let o = pbc(dir, &["audit", "verify", "--state", "st"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert_eq!(count_events(&audit(dir), &["approval-granted"], &ids[0]), 1);
    let o = pbc(dir, &["resume", &run, "--state", "st", "--format", "json"]);
    assert_eq!(json_of(&o)["status"], "succeeded", "{}", err(&o));
}

#[cfg(unix)]
#[test]
fn unusable_state_and_configuration_are_named() {
    let d = gated_dir(1);
    let dir = d.path();
    let (_, ids) = start(dir);
    // A read-only state directory: as root only an immutable directory is read-only.
    let st = dir.join("st");
    let guard = if is_root() {
        Immutable::set(&st)
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&st, std::fs::Permissions::from_mode(0o555)).unwrap();
        Some(Immutable(PathBuf::new()))
    };
    if guard.is_some() {
        let o = pbc(
            dir,
            &[
                "approve",
                &ids[0],
                "--as",
                "ann@example.com",
                "--state",
                "st",
            ],
        );
        let e = err(&o);
        assert_eq!(o.status.code(), Some(2), "{e}");
        assert!(
            e.contains("st: the state directory is not writable") && !e.contains("unable to open"),
            "{e}"
        );
    } else {
        eprintln!("note: cannot make a directory read-only for root here; that case was skipped");
    }
    drop(guard);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&st, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // A state path that is a file.
    std::fs::write(dir.join("plain"), "x").unwrap();
    let o = pbc(dir, &["runs", "--state", "plain"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).contains("plain: the state directory is not a directory"),
        "{}",
        err(&o)
    );

    // --config that is a device or a named pipe: refused before it is opened, at once.
    let fifo = dir.join("config.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a valid, NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for (config, kind) in [
        ("/dev/zero", "a character device"),
        ("config.fifo", "a named pipe (FIFO)"),
    ] {
        for args in [
            vec![
                "--config",
                config,
                "run",
                "pb.yaml",
                "--input",
                "in.json",
                "--agents",
                "agents.yaml",
                "--state",
                "st",
            ],
            vec!["--config", config, "check", "pb.yaml"],
        ] {
            let o = pbc(dir, &args);
            let e = err(&o);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
            assert!(
                e.contains(&format!(
                    "{config}: the configuration is {kind}, not a regular file"
                )),
                "{args:?}: {e}"
            );
        }
    }
    // A playbook or an input that is a named pipe does not hang either.
    let o = pbc(dir, &["check", "config.fifo"]);
    assert_eq!(o.status.code(), Some(2), "{}{}", out(&o), err(&o));
    assert!(
        err(&o).contains("config.fifo: not a file or directory"),
        "{}",
        err(&o)
    );
    let o = pbc(
        dir,
        &["run", "config.fifo", "--input", "in.json", "--state", "st"],
    );
    assert_eq!(o.status.code(), Some(2), "{}{}", out(&o), err(&o));
    assert!(err(&o).contains("not a regular file"), "{}", err(&o));
    let o = pbc(dir, &["--config", "missing.yaml", "check", "pb.yaml"]);
    assert!(
        err(&o).contains("missing.yaml: no such configuration file"),
        "{}",
        err(&o)
    );
}
