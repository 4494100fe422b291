//! Crash safety and the kill switch through the `pbc` binary, with
//! real processes, files, named pipes and a loopback webhook.
//!
//! The crash matrix `kill -9`s `pbc run`, `pbc resume` or `pbc reject` at each step of a
//! four-stage playbook (an agent, an agent behind a manual gate, an action, an agent), then
//! resumes to the right end state; `pbc audit verify` passes after every crash and every
//! command. The executors (`runtime/tests/fixtures/step.py`) stop at a point the test
//! chooses by blocking on a named pipe, and say so with a marker file, so the test kills the
//! runner exactly there; the webhook holds a notification unanswered for the same purpose.
//! Nothing waits on the clock: polls wait for a file or a process, with a deadline that only
//! turns a hang into a failure. Linux only: that an executor dies with its runner rests on
//! `PR_SET_PDEATHSIG`.
#![cfg(target_os = "linux")]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How long a wait for an event may take before the test fails (a hang guard, not a timing).
const HANG: Duration = Duration::from_secs(60);

fn step_py() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/step.py")
}

/// Reads one HTTP request; returns its JSON body.
fn read_request(s: &TcpStream) -> Option<Value> {
    s.set_read_timeout(Some(HANG)).ok()?;
    let mut r = BufReader::new(s.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut len = 0usize;
    loop {
        line.clear();
        r.read_line(&mut line).ok()?;
        if line.trim().is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

/// A webhook on loopback. It records every notification before answering 200, so a
/// notification is in `seen` when the pbc command that sent it returns. `hold(EVENT)` makes it
/// keep the next notification of that event unanswered and hand it (with its connection) to
/// the test: pbc is then blocked in that notification, after the state change it announces.
struct Hook {
    url: String,
    seen: Arc<Mutex<Vec<Value>>>,
    hold: Arc<Mutex<Option<String>>>,
    held: mpsc::Receiver<(Value, TcpStream)>,
}

impl Hook {
    fn start() -> Hook {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hold: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let (tx, held) = mpsc::channel();
        let (seen2, hold2) = (seen.clone(), hold.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let Some(v) = read_request(&s) else { continue };
                let event = v["event"].as_str().unwrap_or_default().to_string();
                let mut h = hold2.lock().unwrap();
                if h.as_deref() == Some(event.as_str()) {
                    *h = None;
                    let _ = tx.send((v, s));
                    continue;
                }
                drop(h);
                seen2.lock().unwrap().push(v);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Hook {
            url,
            seen,
            hold,
            held,
        }
    }

    fn hold(&self, event: &str) {
        *self.hold.lock().unwrap() = Some(event.to_string());
    }

    /// The held notification and its open connection (drop it to let go).
    fn held(&self) -> (Value, TcpStream) {
        self.held
            .recv_timeout(HANG)
            .expect("pbc never sent the notification")
    }

    fn events(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|v| v["event"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

const PLAYBOOK: &str = r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: release}
spec:
  trigger: release
  stages:
    - name: analyse
      agent: planner
    - name: review
      agent: planner
      approval: manual
      approvers: [{role: sre}]
      notification:
        on-pending: [hook]
        on-approved: [hook]
        on-rejected: [hook]
    - name: apply
      action: db:migrate
      params: {version: "${input.version}"}
      guardrails: [change-check]
      # Who decides whether to run it again after a crash (a gate without approvers accepts
      # nobody).
      approvers: [{role: sre}]
    - name: report
      agent: planner
"#;

/// The action's side effect, as `step.py` logs it.
const EFFECT: &str = r#"apply {"version": "v2"}"#;

/// A directory with the playbook, its configuration, the agents file, the input, the
/// control directory of `step.py` and a state directory `st`.
struct Lab {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    ctl: PathBuf,
    hook: Hook,
}

impl Lab {
    fn new() -> Lab {
        Lab::with(PLAYBOOK)
    }

    fn with(playbook: &str) -> Lab {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let ctl = dir.join("ctl");
        std::fs::create_dir(&ctl).unwrap();
        let hook = Hook::start();
        let step = step_py();
        let step = step.display();
        std::fs::write(dir.join("release.yaml"), playbook).unwrap();
        std::fs::write(
            dir.join(".pbc.yaml"),
            format!(
                "guardrails:\n  change-check: {{command: [python3, \"{step}\", guard]}}\nnotifications:\n  hook: {{webhook: {{url: \"{}\", timeout: 60s, retries: 0}}}}\n",
                hook.url
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("agents.yaml"),
            format!(
                "agents:\n  planner: {{command: [python3, \"{step}\", agent], timeout: 120s}}\nactions:\n  \"db:migrate\": {{command: [python3, \"{step}\", action], timeout: 120s}}\n  \"db:undo\": {{command: [python3, \"{step}\", action], timeout: 120s}}\n  \"k8s:scale\": {{command: [python3, \"{step}\", action], timeout: 120s}}\nroles:\n  sre: [sam@example.com]\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.join("in.json"), r#"{"version": "v2"}"#).unwrap();
        Lab {
            _tmp: tmp,
            dir,
            ctl,
            hook,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pbc"));
        c.args(args)
            .arg("--state")
            .arg("st")
            .current_dir(&self.dir)
            .env_remove("PBC_STATE_DIR")
            .env("PBC_TEST_CTL", &self.ctl)
            .stdin(Stdio::null());
        c
    }

    fn pbc(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn run_args() -> Vec<&'static str> {
        vec![
            "run",
            "release.yaml",
            "--input",
            "in.json",
            "--agents",
            "agents.yaml",
            "--as",
            "alice@example.com",
            "--format",
            "json",
        ]
    }

    fn spawn_run(&self) -> Child {
        self.spawn(&Self::run_args())
    }

    /// `pbc run` to the `review` gate: the run id and the gate's approval id.
    fn run_to_gate(&self) -> (String, String) {
        let o = self.pbc(&Self::run_args());
        let v = json_of(&o);
        assert_eq!(v["status"], "waiting-approval", "{v}");
        assert_eq!(v["stages"]["review"]["status"], "waiting-approval");
        (
            v["run"].as_str().unwrap().to_string(),
            v["stages"]["review"]["approval_id"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    }

    /// Makes `step.py` stop at `point`.
    fn block(&self, point: &str) {
        let fifo = self.ctl.join(format!("fifo-{point}"));
        let s = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(s.success());
        std::fs::write(self.ctl.join(format!("block-{point}")), "").unwrap();
    }

    /// Waits until the executor (run by `child`) stops at `point`; returns its pid.
    fn wait_at(&self, point: &str, child: &mut Child) -> u32 {
        let marker = self.ctl.join(format!("at-{point}"));
        let start = Instant::now();
        loop {
            if let Ok(pid) = std::fs::read_to_string(&marker) {
                return pid.trim().parse().unwrap();
            }
            if let Some(status) = child.try_wait().unwrap() {
                let mut out = String::new();
                let mut err = String::new();
                child.stdout.take().unwrap().read_to_string(&mut out).ok();
                child.stderr.take().unwrap().read_to_string(&mut err).ok();
                panic!("pbc ended ({status}) before reaching {point}:\n{out}\n{err}");
            }
            assert!(start.elapsed() < HANG, "never reached {point}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Lets the executor stopped at `point` go on.
    fn release(&self, point: &str) {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(self.ctl.join(format!("fifo-{point}")))
            .unwrap();
        drop(f);
    }

    /// Waits until nothing holds `point`'s pipe open for reading: the executor stopped there
    /// is gone (it died with its runner), so it can never go on to act unseen.
    fn wait_executor_gone(&self, point: &str) {
        let fifo = self.ctl.join(format!("fifo-{point}"));
        let start = Instant::now();
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo)
            {
                Err(e) if e.raw_os_error() == Some(libc::ENXIO) => return,
                Err(e) => panic!("{}: {e}", fifo.display()),
                // A reader is still there. Its SIGKILL is already pending (the kernel sends
                // it when the runner exits), so closing this end cannot let it go on.
                Ok(_) => {}
            }
            assert!(
                start.elapsed() < HANG,
                "the executor stopped at {point} outlived its runner"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill9(&self, mut child: Child) {
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    }

    fn verify(&self, after: &str) {
        let o = self.pbc(&["audit", "verify"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "audit verify after {after}: {}{}",
            stdout(&o),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn run_id(&self) -> String {
        let v = json_of(&self.pbc(&["runs", "--format", "json"]));
        v["runs"][0]["run"].as_str().unwrap().to_string()
    }

    /// `pbc resume RUN --format json`: exit code and report.
    fn resume(&self, run: &str) -> (i32, Value) {
        let o = self.pbc(&["resume", run, "--format", "json"]);
        (o.status.code().unwrap(), json_of(&o))
    }

    fn approve(&self, id: &str, who: &str) -> i32 {
        self.pbc(&["approve", id, "--as", who])
            .status
            .code()
            .unwrap()
    }

    fn reject(&self, id: &str, who: &str, reason: &str) -> i32 {
        self.pbc(&["reject", id, "--as", who, "--reason", reason])
            .status
            .code()
            .unwrap()
    }

    /// Lines of a file in the control directory (none if it does not exist).
    fn lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.ctl.join(name))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("st/audit.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// How many audit entries of `stage` have `event`.
    fn count(&self, stage: &str, event: &str) -> usize {
        self.audit()
            .iter()
            .filter(|e| e["stage"] == stage && e["event"] == event)
            .count()
    }

    /// Approves the `review` gate and resumes to the end: `succeeded`, the action done once.
    fn approve_review_and_finish(&self, run: &str, review: &str) {
        assert_eq!(self.approve(review, "sam@example.com"), 0);
        self.verify("approve");
        self.finish(run);
    }

    /// Resumes to `succeeded`; the action's side effect happened exactly once.
    fn finish(&self, run: &str) {
        let (code, v) = self.resume(run);
        assert_eq!((code, &v["status"]), (0, &Value::from("succeeded")), "{v}");
        for s in ["analyse", "review", "apply", "report"] {
            assert_eq!(v["stages"][s]["status"], "passed", "{s}: {v}");
        }
        assert_eq!(self.lines("effects.log"), [EFFECT]);
        self.verify("the last resume");
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            stdout(o),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

// ------------------------------------------------------------------ the crash matrix

#[test]
fn crash_1_while_an_agent_runs_it_runs_again() {
    let lab = Lab::new();
    lab.block("analyse");
    let mut runner = lab.spawn_run();
    lab.wait_at("analyse", &mut runner);
    lab.kill9(runner);
    lab.wait_executor_gone("analyse");
    lab.verify("kill -9 during analyse");
    let run = lab.run_id();
    let (code, v) = lab.resume(&run);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["status"], "waiting-approval", "{v}");
    assert_eq!(v["stages"]["analyse"]["status"], "passed");
    assert_eq!(v["stages"]["review"]["status"], "waiting-approval");
    // The agent ran again; the second run completed.
    assert_eq!(lab.lines("agents.log"), ["analyse", "analyse", "review"]);
    assert_eq!(lab.count("analyse", "stage-restarted"), 1);
    assert_eq!(lab.count("analyse", "stage-started"), 2);
    lab.verify("resume");
    let review = v["stages"]["review"]["approval_id"].as_str().unwrap();
    lab.approve_review_and_finish(&run, review);
    assert_eq!(lab.hook.events(), ["on-pending", "on-approved"]);
}

#[test]
fn crash_2_while_waiting_for_approval_the_question_survives() {
    let lab = Lab::new();
    // pbc has recorded the gate and is telling the webhook about it.
    lab.hook.hold("on-pending");
    let runner = lab.spawn_run();
    let (note, conn) = lab.hook.held();
    lab.kill9(runner);
    drop(conn);
    lab.verify("kill -9 while notifying on-pending");
    let asked = note["approval"].as_str().unwrap().to_string();
    let run = lab.run_id();
    let (code, v) = lab.resume(&run);
    assert_eq!((code, &v["status"]), (0, &Value::from("waiting-approval")));
    assert_eq!(v["stages"]["review"]["status"], "waiting-approval");
    // The same question, asked once; the agent's output was kept, not produced again.
    assert_eq!(v["stages"]["review"]["approval_id"], asked.as_str());
    assert_eq!(lab.count("review", "approval-requested"), 1);
    assert_eq!(lab.lines("agents.log"), ["analyse", "review"]);
    assert_eq!(lab.approve(&asked, "alice@example.com"), 1, "four eyes");
    lab.verify("a refused approval");
    lab.approve_review_and_finish(&run, &asked);
}

#[test]
fn crash_3_before_the_action_it_runs_once_on_resume() {
    let lab = Lab::new();
    let (run, review) = lab.run_to_gate();
    assert_eq!(lab.approve(&review, "sam@example.com"), 0);
    // `apply` is ready; its input guardrail runs before the executor starts.
    lab.block("guard-apply");
    let mut runner = lab.spawn(&["resume", &run, "--format", "json"]);
    lab.wait_at("guard-apply", &mut runner);
    lab.kill9(runner);
    lab.wait_executor_gone("guard-apply");
    lab.verify("kill -9 before the action");
    assert_eq!(lab.count("apply", "stage-started"), 0);
    assert!(lab.lines("effects.log").is_empty());
    lab.finish(&run);
    assert_eq!(lab.count("apply", "stage-started"), 1);
    assert_eq!(lab.count("apply", "stage-restarted"), 0);
}

#[test]
fn crash_4_during_the_action_it_is_interrupted_and_asks_a_person() {
    let lab = Lab::new();
    let (run, review) = lab.run_to_gate();
    assert_eq!(lab.approve(&review, "sam@example.com"), 0);
    lab.block("apply");
    let mut runner = lab.spawn(&["resume", &run, "--format", "json"]);
    lab.wait_at("apply", &mut runner);
    lab.kill9(runner);
    // The action died with its runner before its side effect.
    lab.wait_executor_gone("apply");
    lab.verify("kill -9 during the action");
    assert!(lab.lines("effects.log").is_empty());
    let (code, v) = lab.resume(&run);
    assert_eq!((code, &v["status"]), (0, &Value::from("waiting-approval")));
    assert_eq!(v["stages"]["apply"]["status"], "interrupted", "{v}");
    assert_eq!(v["stages"]["report"]["status"], "pending");
    let asked = v["stages"]["apply"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(asked, review);
    lab.verify("resume");
    // Resuming again without a decision never runs it.
    let (_, v) = lab.resume(&run);
    assert_eq!(v["stages"]["apply"]["status"], "interrupted");
    assert_eq!(v["stages"]["apply"]["approval_id"], asked.as_str());
    assert!(lab.lines("effects.log").is_empty());
    assert_eq!(lab.count("apply", "approval-requested"), 1);
    // Decided by a person who may decide (not the requester).
    assert_eq!(lab.approve(&asked, "alice@example.com"), 1);
    assert_eq!(lab.approve(&asked, "sam@example.com"), 0);
    lab.verify("approve");
    lab.finish(&run);
    assert_eq!(lab.count("apply", "stage-started"), 2);
    let approved: Vec<Value> = lab
        .audit()
        .into_iter()
        .filter(|e| e["stage"] == "apply" && e["event"] == "approval-granted")
        .collect();
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0]["details"]["kind"], "interrupted");
    assert_eq!(approved[0]["actor"], "sam@example.com");
}

#[test]
fn crash_5_after_the_side_effect_before_pbc_recorded_it_a_person_stops_it() {
    let lab = Lab::new();
    let (run, review) = lab.run_to_gate();
    assert_eq!(lab.approve(&review, "sam@example.com"), 0);
    lab.block("apply-after");
    let mut runner = lab.spawn(&["resume", &run, "--format", "json"]);
    lab.wait_at("apply-after", &mut runner);
    lab.kill9(runner);
    lab.wait_executor_gone("apply-after");
    lab.verify("kill -9 after the side effect");
    // The action did act, but pbc never heard back: it cannot know.
    assert_eq!(lab.lines("effects.log"), [EFFECT]);
    let (code, v) = lab.resume(&run);
    assert_eq!((code, &v["status"]), (0, &Value::from("waiting-approval")));
    assert_eq!(v["stages"]["apply"]["status"], "interrupted");
    let asked = v["stages"]["apply"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        lab.lines("effects.log"),
        [EFFECT],
        "never run again silently"
    );
    // The person sees it already ran, and stops the run.
    assert_eq!(
        lab.reject(
            &asked,
            "sam@example.com",
            "it already ran (checked the schema)"
        ),
        0
    );
    lab.verify("reject");
    let (code, v) = lab.resume(&run);
    assert_eq!((code, &v["status"]), (1, &Value::from("rejected")), "{v}");
    assert_eq!(v["stages"]["apply"]["status"], "rejected");
    assert_eq!(v["stages"]["report"]["status"], "blocked");
    assert_eq!(lab.lines("effects.log"), [EFFECT]);
    assert_eq!(lab.lines("agents.log"), ["analyse", "review"]);
    lab.verify("the last resume");
}

#[test]
fn crash_6_after_the_action_the_next_agent_runs_again_and_the_action_does_not() {
    let lab = Lab::new();
    let (run, review) = lab.run_to_gate();
    assert_eq!(lab.approve(&review, "sam@example.com"), 0);
    lab.block("report");
    let mut runner = lab.spawn(&["resume", &run, "--format", "json"]);
    lab.wait_at("report", &mut runner);
    lab.kill9(runner);
    lab.wait_executor_gone("report");
    lab.verify("kill -9 after the action");
    assert_eq!(lab.lines("effects.log"), [EFFECT]);
    assert_eq!(lab.count("apply", "stage-passed"), 1);
    lab.finish(&run);
    assert_eq!(
        lab.lines("agents.log"),
        ["analyse", "review", "report", "report"]
    );
    assert_eq!(lab.count("apply", "stage-started"), 1);
    assert_eq!(lab.count("report", "stage-restarted"), 1);
}

#[test]
fn crash_7_while_a_rejection_is_announced_the_run_still_ends_rejected() {
    let lab = Lab::new();
    let (run, review) = lab.run_to_gate();
    // `pbc reject` has recorded the decision and is telling the webhook.
    lab.hook.hold("on-rejected");
    let decider = lab.spawn(&[
        "reject",
        &review,
        "--as",
        "sam@example.com",
        "--reason",
        "not this week",
    ]);
    let (note, conn) = lab.hook.held();
    assert_eq!(note["approval"], review.as_str());
    lab.kill9(decider);
    drop(conn);
    lab.verify("kill -9 of pbc reject");
    let v = json_of(&lab.pbc(&["runs", "--format", "json"]));
    assert_eq!(v["runs"][0]["status"], "rejected", "{v}");
    let (code, v) = lab.resume(&run);
    assert_eq!((code, &v["status"]), (1, &Value::from("rejected")), "{v}");
    assert_eq!(v["stages"]["review"]["status"], "rejected");
    assert_eq!(v["stages"]["apply"]["status"], "blocked");
    assert_eq!(v["stages"]["report"]["status"], "blocked");
    assert!(lab.lines("effects.log").is_empty());
    assert_eq!(
        lab.approve(&review, "sam@example.com"),
        1,
        "already decided"
    );
    assert_eq!(lab.count("review", "approval-rejected"), 1);
    lab.verify("the last resume");
}

#[test]
fn crash_8_during_the_action_then_the_kill_switch_instead_of_resume() {
    let lab = Lab::new();
    let (run, review) = lab.run_to_gate();
    assert_eq!(lab.approve(&review, "sam@example.com"), 0);
    lab.block("apply");
    let mut runner = lab.spawn(&["resume", &run, "--format", "json"]);
    lab.wait_at("apply", &mut runner);
    lab.kill9(runner);
    lab.wait_executor_gone("apply");
    let o = lab.pbc(&["runs", "stop", &run, "--as", "ops@example.com"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    lab.verify("runs stop");
    let (code, v) = lab.resume(&run);
    assert_eq!((code, &v["status"]), (1, &Value::from("stopped")), "{v}");
    // Nobody knows whether it ran: it says so, and nothing runs it again.
    assert_eq!(v["stages"]["apply"]["status"], "interrupted", "{v}");
    assert_eq!(v["stages"]["report"]["status"], "blocked");
    assert!(lab.lines("effects.log").is_empty());
    let stop: Vec<Value> = lab
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "kill-switch")
        .collect();
    assert_eq!(stop.len(), 1);
    assert_eq!(stop[0]["actor"], "ops@example.com");
    lab.verify("the last resume");
}

/// Two actions with undo steps, then one that fails: the run rolls back, newest first.
const UNDO: &str = r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: release}
spec:
  trigger: release
  stages:
    - name: migrate
      action: db:migrate
      params: {version: "${input.version}"}
      rollback: {action: db:undo, params: {version: "${input.version}"}}
    - name: scale
      action: k8s:scale
      params: {replicas: 5}
      rollback: {action: k8s:scale, params: {replicas: 2}}
    - name: verify
      action: db:migrate
      params: {fail: true}
  rollback: {on-failure: revert-to-previous, notification: [hook]}
"#;

#[test]
fn crash_9_during_an_undo_step_it_is_not_run_again() {
    let lab = Lab::with(UNDO);
    // `scale`'s undo has acted; pbc dies before it hears back.
    lab.block("scale-rollback-after");
    let mut runner = lab.spawn_run();
    lab.wait_at("scale-rollback-after", &mut runner);
    lab.kill9(runner);
    lab.wait_executor_gone("scale-rollback-after");
    lab.verify("kill -9 during an undo step");
    let done = [
        r#"migrate {"version": "v2"}"#,
        r#"scale {"replicas": 5}"#,
        r#"verify {"fail": true}"#,
        r#"scale rollback {"replicas": 2}"#,
    ];
    assert_eq!(lab.lines("effects.log"), done);
    let run = lab.run_id();
    let (code, v) = lab.resume(&run);
    assert_eq!((code, &v["status"]), (1, &Value::from("failed")), "{v}");
    // The undo in flight is reported, not repeated; the older one runs.
    assert_eq!(v["stages"]["scale"]["status"], "passed");
    assert_eq!(v["stages"]["migrate"]["status"], "rolled-back");
    assert_eq!(v["stages"]["verify"]["status"], "failed");
    assert_eq!(
        lab.lines("effects.log"),
        [&done[..], &[r#"migrate rollback {"version": "v2"}"#]].concat()
    );
    let failed: Vec<Value> = lab
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "rollback-failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["stage"], "scale");
    assert_eq!(failed[0]["details"]["interrupted"], true);
    assert_eq!(lab.count("scale", "rollback-started"), 1);
    let note = lab
        .hook
        .seen
        .lock()
        .unwrap()
        .iter()
        .find(|n| n["event"] == "rollback")
        .cloned()
        .expect("the rollback notification");
    let m = note["message"].as_str().unwrap();
    assert!(
        m.contains("rollback failed for scale") && m.contains("may or may not have run"),
        "{m}"
    );
    // Nothing more on the next resume.
    let (_, v) = lab.resume(&run);
    assert_eq!(v["status"], "failed");
    assert_eq!(lab.lines("effects.log").len(), 5);
    lab.verify("the last resume");
}

// ------------------------------------------------------------------ the kill switch

#[test]
fn the_kill_switch_stops_one_run_and_records_who_pulled_it() {
    let lab = Lab::new();
    // B waits at its gate; nobody executes it.
    let (run_b, review_b) = lab.run_to_gate();
    // A is executing: its first agent is in flight.
    lab.block("analyse");
    let mut a = lab.spawn_run();
    lab.wait_at("analyse", &mut a);
    let run_a = {
        let v = json_of(&lab.pbc(&["runs", "--format", "json"]));
        let ids: Vec<String> = v["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["run"].as_str().unwrap().to_string())
            .collect();
        ids.into_iter().find(|r| *r != run_b).unwrap()
    };
    let o = lab.pbc(&["runs", "stop", &run_a, "--as", "sre@example.com"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains(&run_a) && !stdout(&o).contains(&run_b));
    // A's process kills the executor and ends the run.
    let out = a.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out);
    assert_eq!(v["status"], "stopped");
    assert_eq!(v["stages"]["analyse"]["status"], "failed");
    assert_eq!(v["stages"]["review"]["status"], "blocked");
    lab.wait_executor_gone("analyse");
    assert!(lab.lines("released.log").is_empty());
    lab.verify("runs stop RUN");
    // B is untouched.
    let v = json_of(&lab.pbc(&["runs", "--format", "json"]));
    let b = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run"] == run_b.as_str())
        .unwrap()
        .clone();
    assert_eq!(b["status"], "waiting-approval");
    // Between two steps: B's process is past its gate, in `apply`'s input guardrail, when
    // the brake is pulled; the action never starts.
    assert_eq!(lab.approve(&review_b, "sam@example.com"), 0);
    lab.block("guard-apply");
    let mut b = lab.spawn(&["resume", &run_b, "--format", "json"]);
    lab.wait_at("guard-apply", &mut b);
    let o = lab.pbc(&["runs", "stop", &run_b, "--as", "lee@example.com"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    lab.release("guard-apply");
    let out = b.wait_with_output().unwrap();
    let v = json_of(&out);
    assert_eq!(v["status"], "stopped", "{v}");
    assert_eq!(v["stages"]["apply"]["status"], "blocked");
    assert_eq!(lab.count("apply", "stage-started"), 0);
    assert!(lab.lines("effects.log").is_empty());
    // C waits at its gate: stopped at once; its question is closed.
    let (run_c, review_c) = lab.run_to_gate();
    let o = lab.pbc(&["runs", "stop", &run_c, "--as", "ops@example.com"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(lab.approve(&review_c, "sam@example.com"), 1);
    let (code, v) = lab.resume(&run_c);
    assert_eq!((code, &v["status"]), (1, &Value::from("stopped")));
    // Who pulled it, for which run.
    let stops: Vec<(String, String, String)> = lab
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "kill-switch")
        .map(|e| {
            (
                e["run"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
                e["details"]["scope"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        stops,
        [
            (run_a.clone(), "sre@example.com".into(), "run".into()),
            (run_b.clone(), "lee@example.com".into(), "run".into()),
            (run_c.clone(), "ops@example.com".into(), "run".into()),
        ]
    );
    let ended: Vec<Value> = lab
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "run-ended" && e["details"]["status"] == "stopped")
        .collect();
    assert_eq!(ended.len(), 3);
    for e in &ended {
        assert!(
            e["details"]["message"]
                .as_str()
                .unwrap()
                .contains("(kill switch)")
        );
    }
    lab.verify("the kill switch");
}

#[test]
fn the_kill_switch_for_all_runs_stops_every_unfinished_run() {
    let lab = Lab::new();
    // A finished run is left alone.
    let (done, review) = lab.run_to_gate();
    assert_eq!(lab.reject(&review, "sam@example.com", "no"), 0);
    // One waits for a person, one is executing.
    let (waiting, _) = lab.run_to_gate();
    lab.block("analyse");
    let mut a = lab.spawn_run();
    lab.wait_at("analyse", &mut a);
    let o = lab.pbc(&["runs", "stop", "--all", "--as", "sre@example.com"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(!stdout(&o).contains(&done), "{}", stdout(&o));
    let out = a.wait_with_output().unwrap();
    let v = json_of(&out);
    assert_eq!(v["status"], "stopped");
    let executing = v["run"].as_str().unwrap().to_string();
    assert_eq!(v["stages"]["analyse"]["status"], "failed");
    lab.wait_executor_gone("analyse");
    let runs = json_of(&lab.pbc(&["runs", "--format", "json"]));
    let status = |id: &str| {
        runs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["run"] == id)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status(&done), "rejected");
    assert_eq!(status(&waiting), "stopped");
    assert_eq!(status(&executing), "stopped");
    let mut stops: Vec<(String, String, String)> = lab
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "kill-switch")
        .map(|e| {
            (
                e["run"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
                e["details"]["scope"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    stops.sort();
    let mut want = vec![
        (waiting, "sre@example.com".to_string(), "all".to_string()),
        (executing, "sre@example.com".into(), "all".into()),
    ];
    want.sort();
    assert_eq!(stops, want);
    lab.verify("runs stop --all");
}

// ------------------------------------------------------------------ decisions while a run executes

/// A gate and, independent of it, a stage that runs while the gate waits.
const PARALLEL: &str = r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: release}
spec:
  trigger: release
  stages:
    - name: review
      agent: planner
      needs: []
      approval: manual
      approvers: [{role: sre}]
    - name: build
      agent: planner
      needs: []
    - name: ship
      agent: planner
      needs: [build]
"#;

#[test]
fn a_rejection_while_the_run_executes_another_stage_ends_it_before_its_next_step() {
    let lab = Lab::with(PARALLEL);
    lab.block("build");
    let mut runner = lab.spawn_run();
    lab.wait_at("build", &mut runner);
    // `review` waits for a person while `build` runs in the runner.
    let run = lab.run_id();
    let a = lab.audit();
    let asked = a
        .iter()
        .find(|e| e["stage"] == "review" && e["event"] == "approval-requested")
        .unwrap()["details"]["approval"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(lab.reject(&asked, "sam@example.com", "wrong branch"), 0);
    lab.verify("reject");
    lab.release("build");
    let out = runner.wait_with_output().unwrap();
    let v = json_of(&out);
    assert_eq!(v["status"], "rejected", "{v}");
    assert_eq!(v["stages"]["review"]["status"], "rejected");
    assert_eq!(v["stages"]["build"]["status"], "passed");
    assert_eq!(v["stages"]["ship"]["status"], "blocked");
    assert_eq!(
        lab.lines("agents.log"),
        ["review", "build"],
        "ship never ran"
    );
    let ended: Vec<Value> = lab
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "run-ended")
        .collect();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0]["details"]["status"], "rejected");
    let (code, v) = lab.resume(&run);
    assert_eq!((code, &v["status"]), (1, &Value::from("rejected")));
    lab.verify("the last resume");
}
