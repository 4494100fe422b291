//! The runtime commands' trust and hardening through the `pbc` binary: the kill switch's
//! latch, the trigger input checked against its schema, read-only commands that create
//! nothing, `-q`, infos counted as infos, a missing agents file named, roles in `.pbc.yaml`,
//! and bounded reads (`/dev/zero`, a FIFO, an oversized file) that end promptly with a clear
//! error. Every command runs under a watchdog that fails the test instead of hanging it.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A hang guard, not a timing: a command that has not ended by then is killed and fails.
const HANG: Duration = Duration::from_secs(20);

fn pbc_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pbc"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("PBC_STATE_DIR")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(HANG) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            #[cfg(unix)]
            // SAFETY: kill(2) on the child we started.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
            panic!("pbc {args:?} did not end within {HANG:?}: it hangs");
        }
    }
}

fn pbc(dir: &Path, args: &[&str]) -> Output {
    pbc_env(dir, args, &[])
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

const PLAYBOOK: &str = r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: two}
spec:
  trigger: ev
  stages:
    - name: plan
      agent: bot
      prompt: Plan.
    - name: apply
      agent: bot
      prompt: Apply.
      approval: manual
      approvers: [{role: security-team}]
"#;

/// A directory with `pb.yaml`, a fixture agent `bot` (`agents.yaml`) and `in.json`.
fn setup(playbook: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    std::fs::write(dir.join("pb.yaml"), playbook).unwrap();
    std::fs::create_dir(dir.join("recorded")).unwrap();
    for s in ["plan", "apply"] {
        std::fs::write(dir.join(format!("recorded/{s}.json")), r#"{"ok": true}"#).unwrap();
    }
    std::fs::write(
        dir.join("agents.yaml"),
        "agents:\n  bot: {fixture: recorded/}\n",
    )
    .unwrap();
    std::fs::write(dir.join("in.json"), "{}").unwrap();
    d
}

fn run_json(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        "pb.yaml",
        "--input",
        "in.json",
        "--agents",
        "agents.yaml",
        "--state",
        "st",
        "--as",
        "alice@example.com",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    pbc(dir, &args)
}

fn run_count(dir: &Path) -> usize {
    let o = pbc(dir, &["runs", "--state", "st", "--format", "json"]);
    json_of(&o)["runs"].as_array().unwrap().len()
}

// ------------------------------------------------------------------ the kill switch

#[test]
fn the_kill_switch_latches_run_and_resume_until_released() {
    let d = setup(PLAYBOOK);
    let dir = d.path();
    std::fs::write(
        dir.join(".pbc.yaml"),
        "roles:\n  security-team: [ann@example.com]\n",
    )
    .unwrap();
    let o = run_json(dir, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let waiting = json_of(&o)["run"].as_str().unwrap().to_string();
    let runs = json_of(&pbc(dir, &["runs", "--state", "st", "--format", "json"]));
    assert_eq!(runs["kill_switch"]["engaged"], false, "{runs}");

    let o = pbc(
        dir,
        &[
            "runs",
            "stop",
            "--all",
            "--as",
            "ops@example.com",
            "--state",
            "st",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        out(&o).contains("kill switch engaged by ops@example.com"),
        "{}",
        out(&o)
    );
    let runs = json_of(&pbc(dir, &["runs", "--state", "st", "--format", "json"]));
    let k = &runs["kill_switch"];
    assert_eq!(k["engaged"], true, "{runs}");
    assert_eq!(k["by"], "ops@example.com");
    assert!(k["at"].as_str().unwrap().ends_with('Z'), "{k}");
    assert_eq!(runs["runs"][0]["status"], "stopped");
    let human = pbc(dir, &["runs", "--state", "st"]);
    assert!(out(&human).contains("kill switch engaged by ops@example.com"));

    // Started after the stop: refused (exit 1), nothing recorded or run.
    let o = run_json(dir, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("kill switch is engaged"), "{}", err(&o));
    assert!(o.stdout.is_empty());
    assert_eq!(run_count(dir), 1);
    let o = pbc(dir, &["resume", &waiting, "--state", "st"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("--release"), "{}", err(&o));

    let o = pbc(
        dir,
        &[
            "runs",
            "stop",
            "--release",
            "--as",
            "lead@example.com",
            "--state",
            "st",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        out(&o).contains("released by lead@example.com"),
        "{}",
        out(&o)
    );
    let o = run_json(dir, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let log = std::fs::read_to_string(dir.join("st/audit.jsonl")).unwrap();
    let latch: Vec<(String, String)> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"].as_str().unwrap().starts_with("kill-switch-"))
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        latch,
        [
            ("kill-switch-engaged".into(), "ops@example.com".into()),
            ("kill-switch-released".into(), "lead@example.com".into())
        ]
    );
    let o = pbc(dir, &["audit", "verify", "--state", "st"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
}

// ------------------------------------------------------------------ the trigger input

#[test]
fn an_invalid_input_refuses_the_run_with_each_problem() {
    let d = setup(&PLAYBOOK.replace(
        "  trigger: ev\n",
        "  trigger: {event: ev, input-schema: in.schema.json}\n",
    ));
    let dir = d.path();
    std::fs::write(
        dir.join("in.schema.json"),
        r#"{"type": "object", "required": ["pr"], "properties": {"pr": {"type": "integer"}, "title": {"type": "string"}}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("in.json"), r#"{"title": 3}"#).unwrap();
    let o = run_json(dir, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let e = err(&o);
    assert!(
        e.contains("does not match the playbook's input schema (in.schema.json)"),
        "{e}"
    );
    assert!(e.contains("input/title: "), "{e}");
    assert!(e.contains("input: ") && e.contains("\"pr\""), "{e}");
    assert!(o.stdout.is_empty());
    assert_eq!(run_count(dir), 0, "nothing may run");
}

// ------------------------------------------------------------------ read-only commands

#[test]
fn read_only_commands_create_no_state() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let o = pbc(dir, &["audit", "verify", "--state", "nosuch"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(
        err(&o).contains("nosuch: no such state directory"),
        "{}",
        err(&o)
    );
    assert!(!dir.join("nosuch").exists());
    let o = pbc(dir, &["runs", "--state", "nosuch"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o).trim(), "no runs");
    let o = pbc(dir, &["runs", "--state", "nosuch", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let v = json_of(&o);
    assert_eq!(v["runs"], Value::Array(vec![]));
    assert_eq!(v["kill_switch"]["engaged"], false);
    // The default state directory, through the environment and not at all.
    let o = pbc_env(dir, &["runs"], &[("PBC_STATE_DIR", "envstate")]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let o = pbc(dir, &["runs"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let o = pbc(dir, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    // An empty directory is not a state either, and stays empty.
    std::fs::create_dir(dir.join("empty")).unwrap();
    let o = pbc(dir, &["audit", "verify", "--state", "empty"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    let o = pbc(dir, &["runs", "--state", "empty"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(std::fs::read_dir(dir.join("empty")).unwrap().count(), 0);
    let left: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        left,
        vec![dir.join("empty")],
        "read-only commands created files"
    );
}

// ------------------------------------------------------------------ output of `pbc run`

#[test]
fn run_counts_infos_as_infos() {
    // An output nothing reads is an info (PB4006), not a warning.
    let d = setup(
        r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: report}
spec:
  trigger: ev
  stages:
    - name: plan
      agent: bot
      prompt: Plan.
      output-schema: plan.schema.json
    - name: apply
      agent: bot
      prompt: Apply.
"#,
    );
    let dir = d.path();
    std::fs::write(
        dir.join("plan.schema.json"),
        r#"{"type": "object", "properties": {"ok": {"type": "boolean"}}}"#,
    )
    .unwrap();
    let check = pbc(dir, &["check", "pb.yaml"]);
    assert!(out(&check).contains("PB4006"), "{}", out(&check));
    let o = run_json(dir, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let e = err(&o);
    assert!(e.contains("note: 1 info(s) in the playbook"), "{e}");
    assert!(!e.contains("warning"), "{e}");
}

#[test]
fn quiet_run_prints_only_the_result() {
    let d = setup(PLAYBOOK);
    let dir = d.path();
    std::fs::write(
        dir.join(".pbc.yaml"),
        "roles:\n  security-team: [ann@example.com]\n",
    )
    .unwrap();
    // A rejected earlier run: `pbc run` notes it, unless quiet.
    let o = run_json(dir, &[]);
    let id = json_of(&o)["stages"]["apply"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = pbc(
        dir,
        &[
            "reject",
            &id,
            "--as",
            "ann@example.com",
            "--reason",
            "no",
            "--state",
            "st",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let loud = run_json(dir, &[]);
    assert!(err(&loud).contains("was rejected"), "{}", err(&loud));

    let o = run_json(dir, &["-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(err(&o), "", "-q prints nothing on stderr");
    assert_eq!(json_of(&o)["status"], "waiting-approval");

    let mut args = vec![
        "-q",
        "run",
        "pb.yaml",
        "--input",
        "in.json",
        "--agents",
        "agents.yaml",
    ];
    args.extend(["--state", "st", "--as", "alice@example.com"]);
    let o = pbc(dir, &args);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(err(&o), "");
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out(&o));
    assert!(lines[0].starts_with("run run-") && lines[0].ends_with("waiting-approval"));
    assert!(lines[1].starts_with("  approval ") && lines[1].ends_with("(apply)"));
}

#[test]
fn a_missing_agents_file_is_named() {
    let d = setup(PLAYBOOK);
    let dir = d.path();
    let o = pbc(
        dir,
        &[
            "run",
            "pb.yaml",
            "--input",
            "in.json",
            "--agents",
            "nosuch.yaml",
            "--state",
            "st",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains("nosuch.yaml: the agents file does not exist"),
        "{}",
        err(&o)
    );
}

// ------------------------------------------------------------------ roles

#[test]
fn roles_come_from_the_configuration_and_win_over_the_agents_file() {
    let d = setup(PLAYBOOK);
    let dir = d.path();
    std::fs::write(
        dir.join(".pbc.yaml"),
        "roles:\n  security-team: [ann@example.com]\n",
    )
    .unwrap();
    // Only the configuration: no warning, and ann decides.
    let o = run_json(dir, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(!err(&o).contains("deprecated"), "{}", err(&o));
    let id = json_of(&o)["stages"]["apply"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = pbc(
        dir,
        &["approve", &id, "--as", "ann@example.com", "--state", "st"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        out(&o).contains("as a member of security-team"),
        "{}",
        out(&o)
    );

    // The agents file's `roles:` (deprecated) names someone else for the same role, and
    // another role: a warning, once; the configuration wins for security-team.
    std::fs::write(
        dir.join("agents.yaml"),
        "agents:\n  bot: {fixture: recorded/}\nroles:\n  security-team: [mallory@example.com]\n  ops: [olga@example.com]\n",
    )
    .unwrap();
    let o = run_json(dir, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let e = err(&o);
    assert_eq!(e.matches("deprecated").count(), 1, "{e}");
    assert!(
        e.contains("both define security-team, and .pbc.yaml wins"),
        "{e}"
    );
    let id = json_of(&o)["stages"]["apply"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = pbc(
        dir,
        &[
            "approve",
            &id,
            "--as",
            "mallory@example.com",
            "--state",
            "st",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    // The run froze its role map: changing the configuration now changes nothing.
    std::fs::write(
        dir.join(".pbc.yaml"),
        "roles:\n  security-team: [mallory@example.com]\n",
    )
    .unwrap();
    let o = pbc(
        dir,
        &[
            "approve",
            &id,
            "--as",
            "mallory@example.com",
            "--state",
            "st",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let o = pbc(
        dir,
        &["approve", &id, "--as", "ann@example.com", "--state", "st"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
}

#[test]
fn the_agents_file_roles_still_work() {
    let d = setup(PLAYBOOK);
    let dir = d.path();
    std::fs::write(
        dir.join("agents.yaml"),
        "agents:\n  bot: {fixture: recorded/}\nroles:\n  security-team: [ann@example.com]\n",
    )
    .unwrap();
    let o = run_json(dir, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        err(&o).contains("warning: `roles:` in the agents file"),
        "{}",
        err(&o)
    );
    let id = json_of(&o)["stages"]["apply"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = pbc(
        dir,
        &["approve", &id, "--as", "ann@example.com", "--state", "st"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
}

// ------------------------------------------------------------------ bounded reads

#[cfg(unix)]
fn mkfifo(p: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo(3) with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[cfg(unix)]
#[test]
fn devices_and_fifos_are_refused_promptly() {
    let d = setup(PLAYBOOK);
    let dir = d.path();
    mkfifo(&dir.join("pipe"));
    let fifo = dir.join("pipe").display().to_string();
    for (path, kind) in [
        ("/dev/zero", "a character device"),
        (fifo.as_str(), "a named pipe (FIFO)"),
    ] {
        let o = pbc(
            dir,
            &[
                "run",
                "pb.yaml",
                "--input",
                path,
                "--agents",
                "agents.yaml",
                "--state",
                "st",
            ],
        );
        assert_eq!(o.status.code(), Some(2), "{}", err(&o));
        let e = err(&o);
        assert!(
            e.contains(&format!("{path}: cannot read the input: it is {kind}")),
            "{e}"
        );
        let o = pbc(
            dir,
            &[
                "run", "pb.yaml", "--input", "in.json", "--agents", path, "--state", "st",
            ],
        );
        assert_eq!(o.status.code(), Some(2), "{}", err(&o));
        let e = err(&o);
        assert!(
            e.contains(&format!(
                "{path}: cannot read the agents file: it is {kind}"
            )),
            "{e}"
        );
        let o = pbc(dir, &["audit", "verify", path, "--state", "nostate"]);
        assert_eq!(o.status.code(), Some(2), "{}", out(&o));
        let e = err(&o);
        assert!(
            e.contains(&format!("{path}: cannot read the audit log: it is {kind}")),
            "{e}"
        );
        // Against a state store too.
        let o = pbc(dir, &["audit", "verify", path, "--state", "st"]);
        assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    }
    // A fixture agent's recorded output: the stage fails, the run ends.
    std::fs::remove_file(dir.join("recorded/plan.json")).unwrap();
    mkfifo(&dir.join("recorded/plan.json"));
    let o = run_json(dir, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let v = json_of(&o);
    assert_eq!(v["stages"]["plan"]["status"], "failed", "{v}");
    let shown = pbc(
        dir,
        &["resume", v["run"].as_str().unwrap(), "--state", "st"],
    );
    assert!(
        out(&shown).contains("it is a named pipe (FIFO)"),
        "{}",
        out(&shown)
    );
    // `--config` and the playbook go through the same reader.
    let o = pbc(
        dir,
        &[
            "run",
            &fifo,
            "--input",
            "in.json",
            "--agents",
            "agents.yaml",
            "--state",
            "st",
        ],
    );
    assert_ne!(o.status.code(), Some(0), "{}", err(&o));
    assert!(err(&o).contains("a named pipe (FIFO)"), "{}", err(&o));
    let o = pbc(
        dir,
        &[
            "--config", &fifo, "run", "pb.yaml", "--input", "in.json", "--state", "st",
        ],
    );
    assert_ne!(o.status.code(), Some(0), "{}", err(&o));
    assert!(err(&o).contains("a named pipe (FIFO)"), "{}", err(&o));
}

#[test]
fn oversized_files_are_refused_without_being_read() {
    let d = setup(PLAYBOOK);
    let dir = d.path();
    // 17 MiB (sparse): over the 16 MiB limit for inputs and agents files.
    let big = std::fs::File::create(dir.join("big.json")).unwrap();
    big.set_len(17 * 1024 * 1024).unwrap();
    let o = pbc(
        dir,
        &[
            "run",
            "pb.yaml",
            "--input",
            "big.json",
            "--agents",
            "agents.yaml",
            "--state",
            "st",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains("over the limit of 16777216 bytes"),
        "{}",
        err(&o)
    );
    let o = pbc(
        dir,
        &[
            "run", "pb.yaml", "--input", "in.json", "--agents", "big.json", "--state", "st",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("the agents file is"), "{}", err(&o));
    // An audit log of one endless line: a problem at line 1, found without reading it all.
    let big = std::fs::File::create(dir.join("audit.jsonl")).unwrap();
    big.set_len(80 * 1024 * 1024).unwrap();
    let o = pbc(
        dir,
        &["audit", "verify", "audit.jsonl", "--state", "nostate"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(out(&o).contains("line 1 is longer than"), "{}", out(&o));
}
