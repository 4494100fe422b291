//! Trust in the local runtime: a gate without approvers accepts nobody, and `risk: medium`
//! means one approval (the playbook's before its first stage, a stage's own before it runs);
//! the kill switch latches; the trigger input is validated before anything runs.

use pbc_runtime::{
    Agents, ApprovalKind, Error, LoadOptions, RunOptions, RunStatus, Runtime, StageStatus, load,
};
use serde_json::json;
use std::path::Path;

/// A playbook `pb.yaml` in a fresh directory with a fixture agent `bot` whose output for
/// every stage is `{"ok": true}`.
struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new(playbook: &str, config: Option<&str>) -> Dir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pb.yaml"), playbook).unwrap();
        if let Some(c) = config {
            std::fs::write(dir.path().join(".pbc.yaml"), c).unwrap();
        }
        std::fs::create_dir(dir.path().join("recorded")).unwrap();
        for s in ["plan", "apply", "report"] {
            std::fs::write(
                dir.path().join(format!("recorded/{s}.json")),
                r#"{"ok": true}"#,
            )
            .unwrap();
        }
        std::fs::write(
            dir.path().join("agents.yaml"),
            "agents:\n  bot: {fixture: recorded/}\n",
        )
        .unwrap();
        Dir { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn load(&self) -> pbc_runtime::Result<pbc_runtime::Compiled> {
        load(&self.path().join("pb.yaml"), &LoadOptions::default())
    }

    fn agents(&self) -> Agents {
        Agents::from_file(&self.path().join("agents.yaml")).unwrap()
    }

    fn runtime(&self) -> Runtime {
        Runtime::open(&self.path().join("st")).unwrap()
    }
}

fn alice() -> RunOptions {
    RunOptions::requested_by("alice@example.com")
}

const MEDIUM_PLAYBOOK: &str = r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: medium}
spec:
  trigger: ev
  risk: medium
  approvers: [{user: ann@example.com}]
  stages:
    - name: plan
      agent: bot
      prompt: Plan.
    - name: apply
      agent: bot
      prompt: Apply.
"#;

#[test]
fn a_medium_playbook_asks_one_approval_from_its_approvers_before_its_first_stage() {
    let d = Dir::new(MEDIUM_PLAYBOOK, None);
    let c = d.load().unwrap();
    let mut rt = d.runtime();
    let r = rt.run(&c, &d.agents(), json!({}), &alice()).unwrap();
    assert_eq!(r.status, RunStatus::WaitingApproval);
    assert_eq!(r.pending.len(), 1);
    let a = &r.pending[0];
    assert_eq!(a.kind, ApprovalKind::PlaybookRisk);
    assert_eq!(a.stage, None);
    assert_eq!(r.stage("plan").unwrap().status, StageStatus::Pending);
    // A stranger may not grant it.
    let e = rt.approve(&a.id, "random@example.com").unwrap_err();
    assert!(matches!(e, Error::Refused(_)), "{e:?}");
    rt.approve(&a.id, "ann@example.com").unwrap();
    // One approval, then the stages (which do not declare `risk: medium` themselves) run.
    let r = rt.resume(&r.run, None).unwrap();
    assert_eq!(r.status, RunStatus::Succeeded, "{:?}", r.message);
    assert!(r.pending.is_empty());
    assert_eq!(r.stage("plan").unwrap().status, StageStatus::Passed);
    assert_eq!(r.stage("apply").unwrap().status, StageStatus::Passed);
}

#[test]
fn a_medium_stage_asks_its_own_approvers_once() {
    let d = Dir::new(
        r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: medium-stage}
spec:
  trigger: ev
  stages:
    - name: plan
      agent: bot
      prompt: Plan.
    - name: apply
      agent: bot
      prompt: Apply.
      risk: medium
      approvers: [{user: bob@example.com}]
"#,
        None,
    );
    let c = d.load().unwrap();
    let mut rt = d.runtime();
    let r = rt.run(&c, &d.agents(), json!({}), &alice()).unwrap();
    assert_eq!(r.status, RunStatus::WaitingApproval);
    assert_eq!(r.stage("plan").unwrap().status, StageStatus::Passed);
    let id = r.stage("apply").unwrap().approval_id.clone().unwrap();
    assert_eq!(r.pending.len(), 1);
    assert_eq!(r.pending[0].kind, ApprovalKind::StageRisk);
    assert!(matches!(
        rt.approve(&id, "random@example.com"),
        Err(Error::Refused(_))
    ));
    rt.approve(&id, "bob@example.com").unwrap();
    let r = rt.resume(&r.run, None).unwrap();
    assert_eq!(r.status, RunStatus::Succeeded, "{:?}", r.message);
}

#[test]
fn a_gate_without_approvers_accepts_nobody_and_says_why() {
    // Only `auto` branches, so the checker asks for no approvers; a condition that cannot be
    // evaluated (the input has no `score`) fails safe to a person, and the gate names nobody.
    let d = Dir::new(
        r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: unowned}
spec:
  trigger: ev
  stages:
    - name: plan
      agent: bot
      prompt: Plan.
      approval: conditional
      conditions:
        - if: input.score > 5
          then: auto
        - else: auto
"#,
        None,
    );
    let c = d.load().unwrap();
    let mut rt = d.runtime();
    let r = rt.run(&c, &d.agents(), json!({}), &alice()).unwrap();
    assert_eq!(r.status, RunStatus::WaitingApproval, "{:?}", r.message);
    assert_eq!(r.pending.len(), 1);
    assert!(r.pending[0].approvers.is_empty());
    let id = r.pending[0].id.clone();
    for who in ["random@example.com", "ann@example.com"] {
        match rt.approve(&id, who) {
            Err(Error::Refused(m)) => {
                assert!(m.contains("names no approvers"), "{m}");
                assert!(m.contains("accepts nobody"), "{m}");
            }
            other => panic!("{who} approved a gate without approvers: {other:?}"),
        }
    }
    let r = rt.resume(&r.run, None).unwrap();
    assert_eq!(r.status, RunStatus::WaitingApproval);
    // Rejecting only ends the run; anyone but the requester may.
    rt.reject(&id, "random@example.com", "nobody owns this")
        .unwrap();
    assert_eq!(rt.report(&r.run).unwrap().status, RunStatus::Rejected);
}

const TWO_STAGES: &str = r#"apiVersion: agenticops/v1
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
      approvers: [{user: bob@example.com}]
"#;

/// The audit entries of the state's log that belong to no run (the latch's).
fn global_entries(dir: &Path) -> Vec<pbc_runtime::AuditEntry> {
    std::fs::read_to_string(dir.join("st/audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<pbc_runtime::AuditEntry>(l).unwrap())
        .filter(|e| e.run.is_none())
        .collect()
}

#[test]
fn the_kill_switch_latches_until_released() {
    let d = Dir::new(TWO_STAGES, None);
    let c = d.load().unwrap();
    let mut rt = d.runtime();
    let waiting = rt.run(&c, &d.agents(), json!({}), &alice()).unwrap();
    assert_eq!(waiting.status, RunStatus::WaitingApproval);
    assert!(!rt.kill_switch().unwrap().engaged);

    let stopped = rt.stop(None, "ops@example.com").unwrap();
    assert_eq!(stopped, vec![waiting.run.clone()]);
    // A run waiting at a gate ends `stopped`.
    assert_eq!(rt.report(&waiting.run).unwrap().status, RunStatus::Stopped);
    let k = rt.kill_switch().unwrap();
    assert!(k.engaged);
    assert_eq!(k.by.as_deref(), Some("ops@example.com"));
    assert!(k.at.is_some());
    assert_eq!(k.to_json()["engaged"], true);

    // A run started after the stop is refused and runs nothing.
    match rt.run(&c, &d.agents(), json!({}), &alice()) {
        Err(Error::Refused(m)) => assert!(m.contains("kill switch is engaged"), "{m}"),
        other => panic!("a run started while the kill switch is engaged: {other:?}"),
    }
    assert_eq!(rt.runs().unwrap().len(), 1);
    // From another process's view of the state too.
    let mut other = d.runtime();
    assert!(matches!(
        other.run(&c, &d.agents(), json!({}), &alice()),
        Err(Error::Refused(_))
    ));
    assert!(matches!(
        other.resume(&waiting.run, None),
        Err(Error::Refused(_))
    ));
    assert_eq!(other.runs().unwrap().len(), 1);

    // Released: runs start again; both ends are audited with who.
    assert_eq!(
        rt.release_kill_switch("lead@example.com")
            .unwrap()
            .as_deref(),
        Some("ops@example.com")
    );
    assert!(!rt.kill_switch().unwrap().engaged);
    assert_eq!(rt.release_kill_switch("lead@example.com").unwrap(), None);
    let r = rt.run(&c, &d.agents(), json!({}), &alice()).unwrap();
    assert_eq!(r.status, RunStatus::WaitingApproval);
    let latch: Vec<(String, String)> = global_entries(d.path())
        .into_iter()
        .map(|e| (e.event, e.actor))
        .collect();
    assert_eq!(
        latch,
        [
            (
                "kill-switch-engaged".to_string(),
                "ops@example.com".to_string()
            ),
            (
                "kill-switch-released".to_string(),
                "lead@example.com".to_string()
            ),
        ]
    );
    assert!(rt.verify_audit(None).unwrap().ok());
}

#[test]
fn stopping_one_run_does_not_latch() {
    let d = Dir::new(TWO_STAGES, None);
    let c = d.load().unwrap();
    let mut rt = d.runtime();
    let r = rt.run(&c, &d.agents(), json!({}), &alice()).unwrap();
    rt.stop(Some(&r.run), "ops@example.com").unwrap();
    assert_eq!(rt.report(&r.run).unwrap().status, RunStatus::Stopped);
    assert!(!rt.kill_switch().unwrap().engaged);
    rt.run(&c, &d.agents(), json!({}), &alice()).unwrap();
}

const WITH_INPUT_SCHEMA: &str = r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: typed}
spec:
  trigger:
    event: ev
    input-schema: pr.schema.json
  stages:
    - name: plan
      agent: bot
      prompt: Plan ${input.pr}.
      when: input.mode == 'fast'
"#;

const PR_SCHEMA: &str = r#"{
  "type": "object",
  "required": ["pr", "repo"],
  "properties": {
    "pr": {"type": "integer"},
    "repo": {"type": "string"},
    "mode": {"type": "string", "default": "fast"}
  }
}"#;

#[test]
fn an_invalid_input_refuses_the_run_with_path_and_reason() {
    let d = Dir::new(WITH_INPUT_SCHEMA, None);
    std::fs::write(d.path().join("pr.schema.json"), PR_SCHEMA).unwrap();
    let c = d.load().unwrap();
    // The function `pbc serve` shares: every problem, with its path.
    let mut bad = json!({"pr": "seven"});
    let problems = pbc_runtime::input::validate(&c, &mut bad).unwrap();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert!(paths.contains(&"/pr"), "{problems:?}");
    assert!(paths.contains(&"/"), "{problems:?}");
    assert!(
        problems.iter().any(|p| p.reason.contains("repo")),
        "{problems:?}"
    );
    let mut rt = d.runtime();
    match rt.run(&c, &d.agents(), json!({"pr": "seven"}), &alice()) {
        Err(e @ Error::Refused(_)) => {
            let m = e.to_string();
            assert!(m.contains("input/pr: "), "{m}");
            assert!(m.contains("pr.schema.json"), "{m}");
            assert_eq!(e.exit_code(), 1);
        }
        other => panic!("an invalid input was run: {other:?}"),
    }
    assert!(rt.runs().unwrap().is_empty(), "nothing may be recorded");
}

#[test]
fn a_valid_input_gets_the_schema_defaults() {
    let d = Dir::new(WITH_INPUT_SCHEMA, None);
    std::fs::write(d.path().join("pr.schema.json"), PR_SCHEMA).unwrap();
    let c = d.load().unwrap();
    let mut rt = d.runtime();
    // `mode` is absent: its default `fast` makes the `when` hold.
    let r = rt
        .run(&c, &d.agents(), json!({"pr": 7, "repo": "x"}), &alice())
        .unwrap();
    assert_eq!(r.status, RunStatus::Succeeded, "{:?}", r.message);
    assert_eq!(r.stage("plan").unwrap().status, StageStatus::Passed);
    let r = rt
        .run(
            &c,
            &d.agents(),
            json!({"pr": 7, "repo": "x", "mode": "slow"}),
            &alice(),
        )
        .unwrap();
    assert_eq!(r.stage("plan").unwrap().status, StageStatus::Skipped);
}
