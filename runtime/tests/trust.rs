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
