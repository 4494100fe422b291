//! `pbc runner gate` in the workflows: the decision check, and signed approvals (a
//! statement from a listed approver, bound to the run, the stage and the playbook's hash;
//! several distinct ones for a `min-approvals` gate).

use super::argo_harness::{Execution, Harness, Phase};
use super::*;

// ------------------------------------------------------------------ the gate check

/// `pbc runner gate`: (exit code, outcome written).
fn gate(mode: &str, decision: Option<&str>) -> (i32, String) {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec![
        "runner",
        "gate",
        "--gate",
        "deploy-approval",
        "--mode",
        mode,
    ];
    if let Some(d) = decision {
        args.extend(["--decision", d]);
    }
    let o = Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(&args)
        .env("PBC_RUNNER_OUT", out.path())
        .output()
        .unwrap();
    let outcome = std::fs::read_to_string(out.path().join("outcome")).unwrap_or_default();
    (o.status.code().unwrap_or(-1), outcome)
}

#[test]
fn the_gate_check_passes_on_exactly_approve() {
    assert_eq!(gate("final", Some("approve")), (0, "approve".into()));
    assert_eq!(gate("final", Some("reject")), (1, "rejected".into()));
    assert_eq!(gate("final", Some("")), (2, "expired".into()));
    assert_eq!(gate("final", None), (2, "expired".into()));
    for other in [
        "Approve",
        "approve ",
        " approve",
        "approved",
        "yes",
        "true",
        "approve\n",
    ] {
        assert_eq!(gate("final", Some(other)).0, 3, "{other:?} must not pass");
    }
    // One escalation level: no decision opens the next level.
    assert_eq!(gate("level", Some("approve")), (0, "approve".into()));
    assert_eq!(gate("level", None), (0, "expired".into()));
    assert_eq!(gate("level", Some("reject")).0, 1);
    assert_eq!(gate("level", Some("APPROVE")).0, 3);
    assert_eq!(gate("refuse", Some("approve")), (4, "refused".into()));
    assert_eq!(gate("sideways", Some("approve")).0, 5);
}

// ------------------------------------------------------------------ signed approvals

/// The paging case with `approvals.require-signature` and the keys of the incident
/// commander (key 1), the support lead (key 2, not an approver of the gate) and the
/// workflow itself (key 3, the run's requester).
fn signed_paging() -> Case {
    let c = paging(true);
    let cfg = format!(
        "{SERVE_AGENTS}notifications:\n  slack-incidents: {{stdout: true}}\n  pagerduty-sre: {{stdout: true}}\napprovals:\n  require-signature: true\n  keys:\n    ic@example.com: \"{}\"\n    sup@example.com: \"{}\"\n    \"argo:workflow/wf-conformance\": \"{}\"\n",
        signing::public(&signing::key(1)),
        signing::public(&signing::key(2)),
        signing::public(&signing::key(3)),
    );
    std::fs::write(c.dir.path().join(".pbc.yaml"), cfg).unwrap();
    c
}

/// The workflow of `case` with the gate `page-oncall-approval` approved and `approval`
/// supplied as its output parameter.
fn signed_workflow(case: &Case, approval: Option<String>) -> Execution {
    let d = case.dir.path();
    let docs = yaml(&ok(&pbc(d, &["build", &case.playbook, "--target", "argo"])));
    let wt = docs
        .iter()
        .find(|d| d["kind"] == "WorkflowTemplate")
        .expect("a WorkflowTemplate")
        .clone();
    let root = tempfile::tempdir().unwrap();
    let mount = root.path().join("mount");
    argo_harness::mount_config_maps(&docs, &wt, &mount);
    let work = root.path().join("pods");
    std::fs::create_dir_all(&work).unwrap();
    open_up(root.path());
    let mut h = Harness::new(PathBuf::from(env!("CARGO_BIN_EXE_pbc")), mount, work);
    h.decisions
        .insert("page-oncall-approval".into(), "approve".into());
    if let Some(a) = approval {
        h.approvals.insert("page-oncall-approval".into(), a);
    }
    h.execute(&wt, &case.input)
}

/// The statement of the gate, as `f` changes it, signed with key `seed`.
fn paging_statement(case: &Case, seed: u8, f: impl FnOnce(&mut signing::St)) -> String {
    let mut st = signing::St {
        run: "wf-conformance".into(),
        stage: "page-oncall".into(),
        approver: "ic@example.com".into(),
        sha: signing::built_sha(case.dir.path(), &case.playbook),
        issued: signing::at(-60),
        expires: signing::at(3600),
    };
    f(&mut st);
    signing::sign(&signing::key(seed), &st)
}

/// The workflow failed at the gate's check with `reason` named, before the action ran.
fn refused_at_the_gate(x: &Execution, reason: &str) {
    assert_eq!(x.status, "Failed");
    let check = &x.nodes["page-oncall-approval-decision"];
    assert_eq!(check.exit_code, Some(6), "{}", check.stderr);
    assert!(
        check.stderr.contains(&format!("({reason})")),
        "{reason}: {}",
        check.stderr
    );
    assert_eq!(x.nodes["page-oncall"].phase, Phase::Omitted);
}

#[test]
fn a_signed_approval_passes_the_gate_in_the_runner() {
    let c = signed_paging();
    let x = signed_workflow(&c, Some(paging_statement(&c, 1, |_| {})));
    assert_eq!(
        x.status, "Succeeded",
        "{:?}",
        x.nodes["page-oncall-approval-decision"].stderr
    );
    assert_eq!(x.nodes["page-oncall"].phase, Phase::Succeeded);
    assert!(
        x.nodes["page-oncall-approval-check"]
            .stdout
            .contains("signed by ic@example.com")
    );
}

#[test]
fn the_runner_refuses_an_approval_without_a_valid_statement() {
    let c = signed_paging();
    refused_at_the_gate(&signed_workflow(&c, None), "missing");
    // Signed with another key than the approver's.
    refused_at_the_gate(
        &signed_workflow(&c, Some(paging_statement(&c, 9, |_| {}))),
        "forged-signature",
    );
    // A person with a key who is not among the gate's approvers.
    refused_at_the_gate(
        &signed_workflow(
            &c,
            Some(paging_statement(&c, 2, |s| {
                s.approver = "sup@example.com".into()
            })),
        ),
        "not-an-approver",
    );
    // The run's requester (the workflow).
    refused_at_the_gate(
        &signed_workflow(
            &c,
            Some(paging_statement(&c, 3, |s| {
                s.approver = "argo:workflow/wf-conformance".into()
            })),
        ),
        "requester",
    );
    // Signed for another version of the playbook.
    refused_at_the_gate(
        &signed_workflow(
            &c,
            Some(paging_statement(&c, 1, |s| s.sha = "0".repeat(64))),
        ),
        "content-hash-mismatch",
    );
    refused_at_the_gate(
        &signed_workflow(
            &c,
            Some(paging_statement(&c, 1, |s| {
                s.issued = signing::at(-7200);
                s.expires = signing::at(-3600);
            })),
        ),
        "expired",
    );
    // A statement of another run (workflow), replayed.
    refused_at_the_gate(
        &signed_workflow(
            &c,
            Some(paging_statement(&c, 1, |s| s.run = "wf-yesterday".into())),
        ),
        "other-run",
    );
}

// ------------------------------------------------------------------ min-approvals

/// The paging case whose gate needs two distinct incident commanders (ic, key 1; ic2,
/// key 4), with or without `require-signature`.
fn two_person_paging(require: bool) -> Case {
    let c = if require {
        signed_paging()
    } else {
        paging(true)
    };
    let d = c.dir.path();
    let pb = d.join(&c.playbook);
    let text = std::fs::read_to_string(&pb).unwrap();
    let two = text.replacen(
        "        - role: incident-commander\n",
        "        - role: incident-commander\n      min-approvals: 2\n",
        1,
    );
    assert_ne!(two, text);
    std::fs::write(&pb, two).unwrap();
    let agents = std::fs::read_to_string(d.join("agents.yaml")).unwrap();
    std::fs::write(
        d.join("agents.yaml"),
        agents.replace(
            "incident-commander: [ic@example.com]",
            "incident-commander: [ic@example.com, ic2@example.com]",
        ),
    )
    .unwrap();
    let cfg = std::fs::read_to_string(d.join(".pbc.yaml")).unwrap();
    let cfg = if require {
        cfg.replace(
            "  keys:\n",
            &format!(
                "  keys:\n    ic2@example.com: \"{}\"\n",
                signing::public(&signing::key(4))
            ),
        )
    } else {
        format!(
            "{cfg}approvals:\n  keys:\n    ic@example.com: \"{}\"\n    ic2@example.com: \"{}\"\n",
            signing::public(&signing::key(1)),
            signing::public(&signing::key(4))
        )
    };
    std::fs::write(d.join(".pbc.yaml"), cfg).unwrap();
    c
}

#[test]
fn a_two_person_gate_needs_two_distinct_signed_statements_in_the_runner() {
    for require in [true, false] {
        let c = two_person_paging(require);
        let ic = paging_statement(&c, 1, |_| {});
        let ic2 = paging_statement(&c, 4, |s| s.approver = "ic2@example.com".into());
        // Resuming the suspend alone proves nobody, signatures required or not.
        refused_at_the_gate(&signed_workflow(&c, None), "missing");
        // One person, once or twice: too few.
        refused_at_the_gate(&signed_workflow(&c, Some(ic.clone())), "too-few-approvers");
        refused_at_the_gate(
            &signed_workflow(&c, Some(format!("{ic} {ic}"))),
            "too-few-approvers",
        );
        // Two distinct approvers: the action runs.
        let x = signed_workflow(&c, Some(format!("{ic}, {ic2}")));
        assert_eq!(
            x.status, "Succeeded",
            "require-signature {require}: {:?}",
            x.nodes["page-oncall-approval-decision"].stderr
        );
        assert_eq!(x.nodes["page-oncall"].phase, Phase::Succeeded);
    }
}
