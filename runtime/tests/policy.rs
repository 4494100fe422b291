//! Policies enforced by the engine, with the policy-vs-playbook examples in `testdata/policy/`: the Rego
//! data-protection policy, the Cedar write-approval policy, the declarative financial limits
//! (across runs, in a rolling day), the refund playbook stopped with a `policy-violation` in
//! the audit log, and policies that error deny.

mod common;

use pbc_runtime::{
    Agents, LoadOptions, ManualClock, RunOptions, RunReport, RunStatus, Runtime, StageStatus, load,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn dir() -> PathBuf {
    common::repo().join("testdata/policy")
}

fn input(name: &str) -> Value {
    let p = dir().join("inputs").join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn agents() -> Agents {
    Agents::from_file(&dir().join("agents.yaml")).unwrap()
}

struct Env {
    _state: tempfile::TempDir,
    rt: Runtime,
    clock: Arc<ManualClock>,
}

fn env() -> Env {
    let state = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let rt = Runtime::open(state.path())
        .unwrap()
        .with_clock(clock.clone());
    Env {
        _state: state,
        rt,
        clock,
    }
}

fn run(e: &mut Env, playbook: &str, inp: Value) -> RunReport {
    let c = load(
        &dir().join("playbooks").join(playbook),
        &LoadOptions::default(),
    )
    .unwrap();
    e.rt.run(
        &c,
        &agents(),
        inp,
        &RunOptions::requested_by("rita@example.com"),
    )
    .unwrap()
}

fn policy_of(r: &RunReport, stage: &str) -> Value {
    r.to_json()["stages"][stage]["policy"].clone()
}

fn events(e: &Env, r: &RunReport) -> Vec<(String, Value)> {
    e.rt.audit_log(&r.run)
        .unwrap()
        .entries
        .into_iter()
        .map(|x| (x.event, x.details))
        .collect()
}

#[test]
fn rego_denies_pii_sent_to_an_unapproved_vendor_and_allows_other_data() {
    let mut e = env();
    let r = run(&mut e, "support-ticket.yaml", input("ticket-pii.json"));
    assert_eq!(r.status, RunStatus::Refused);
    assert_eq!(
        r.stage("send-to-vendor").unwrap().status,
        StageStatus::Refused
    );
    assert_eq!(
        policy_of(&r, "send-to-vendor"),
        json!({"name": "data-protection", "decision": "deny",
               "reasons": ["Blocked external API call to https://untrusted-api.com/v1/tickets with PII"]})
    );
    let ev = events(&e, &r);
    let decision = ev
        .iter()
        .find(|(n, _)| n == "policy-decision")
        .map(|(_, d)| d.clone())
        .unwrap();
    assert_eq!(decision["policy"], "data-protection");
    assert_eq!(decision["kind"], "rego");
    assert_eq!(decision["sha256"].as_str().unwrap().len(), 64);
    assert!(decision["evaluation_ms"].as_f64().is_some());
    assert!(ev.iter().any(|(n, _)| n == "policy-violation"));
    assert!(!ev.iter().any(|(n, _)| n == "stage-started"), "never ran");

    let r = run(&mut e, "support-ticket.yaml", input("ticket-no-pii.json"));
    assert_eq!(r.status, RunStatus::Succeeded, "{}", r.to_human());
    assert_eq!(policy_of(&r, "send-to-vendor")["decision"], "allow");
    assert!(!events(&e, &r).iter().any(|(n, _)| n == "policy-violation"));
    // An approved vendor may get PII.
    let r = run(
        &mut e,
        "support-ticket.yaml",
        json!({"endpoint": "https://api.zendesk.com/v2/tickets", "payload": {"email": "a@b.c"}}),
    );
    assert_eq!(r.status, RunStatus::Succeeded);
}

#[test]
fn cedar_forbids_a_write_without_a_human_approval_and_permits_it_after_one() {
    let mut e = env();
    let r = run(&mut e, "record-update.yaml", input("record.json"));
    assert_eq!(r.status, RunStatus::WaitingApproval, "{}", r.to_human());
    let s = r.stage("write-record").unwrap();
    assert_eq!(s.status, StageStatus::WaitingApproval);
    assert_eq!(
        policy_of(&r, "write-record"),
        json!({"name": "write-approval", "decision": "require-approval",
               "reasons": ["a write needs a human approval"]})
    );
    let pending = &r.pending[0];
    assert_eq!(pending.kind.as_str(), "policy");
    assert_eq!(pending.approvers[0].to_string(), "role dba-team");
    // The requester cannot approve; a member of the role can.
    assert!(e.rt.approve(&pending.id, "rita@example.com").is_err());
    e.rt.approve(&pending.id, "dana@example.com").unwrap();
    let r = e.rt.resume(&r.run, None).unwrap();
    assert_eq!(r.status, RunStatus::Succeeded, "{}", r.to_human());
    assert_eq!(policy_of(&r, "write-record")["decision"], "allow");
    let decisions: Vec<String> = events(&e, &r)
        .into_iter()
        .filter(|(n, _)| n == "policy-decision")
        .map(|(_, d)| d["decision"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(decisions, ["require-approval", "allow"]);
}

#[test]
fn declarative_limits_deny_a_large_refund_and_the_sixth_of_a_day_across_runs() {
    let mut e = env();
    let r = run(&mut e, "instant-refund.yaml", input("refund-10000.json"));
    assert_eq!(r.status, RunStatus::Refused);
    let p = policy_of(&r, "refund");
    assert_eq!(p["decision"], "deny");
    // Over the single limit, and so over the day's too.
    assert_eq!(
        p["reasons"][0],
        "financial-transaction-limit: amount 10000 is over amount_max 1000"
    );
    for n in 1..=5 {
        e.clock.advance(std::time::Duration::from_secs(600));
        let r = run(&mut e, "instant-refund.yaml", input("refund-1000.json"));
        assert_eq!(
            r.status,
            RunStatus::Succeeded,
            "refund {n}: {}",
            r.to_human()
        );
    }
    e.clock.advance(std::time::Duration::from_secs(600));
    let r = run(&mut e, "instant-refund.yaml", input("refund-1000.json"));
    assert_eq!(r.status, RunStatus::Refused, "the sixth");
    assert_eq!(
        policy_of(&r, "refund")["reasons"],
        json!([
            "financial-transaction-limit: amount over the last 24h for customer_id c-42 would be 6000 (5000 executed + 1000 now), over daily_aggregate_max 5000"
        ])
    );
    // Another customer has a day of their own.
    let mut other = input("refund-1000.json");
    other["customer_id"] = json!("c-7");
    assert_eq!(
        run(&mut e, "instant-refund.yaml", other).status,
        RunStatus::Succeeded
    );
    // A rolling day: once the first refunds are more than 24 hours old, there is room.
    e.clock
        .advance(std::time::Duration::from_secs(24 * 3600 - 1800));
    let r = run(&mut e, "instant-refund.yaml", input("refund-1000.json"));
    assert_eq!(r.status, RunStatus::Succeeded, "{}", r.to_human());
}

#[test]
fn the_seed_refund_playbook_is_stopped_by_the_policy_after_its_gate() {
    let mut e = env();
    let r = run(
        &mut e,
        "process-customer-refund.yaml",
        input("refund-10000.json"),
    );
    // The gate is decided first; the policy sees the approval, and still denies.
    assert_eq!(r.status, RunStatus::WaitingApproval, "{}", r.to_human());
    let gate = r
        .stage("process-refund")
        .unwrap()
        .approval_id
        .clone()
        .unwrap();
    e.rt.approve(&gate, "fran@example.com").unwrap();
    let r = e.rt.resume(&r.run, None).unwrap();
    assert_eq!(r.status, RunStatus::Refused, "{}", r.to_human());
    let s = r.stage("process-refund").unwrap();
    assert_eq!(s.status, StageStatus::Refused);
    assert!(
        s.error
            .as_deref()
            .unwrap()
            .starts_with("refused by policy `financial-transaction-limit`")
    );
    assert_eq!(
        r.stage("notify-customer").unwrap().status,
        StageStatus::Blocked
    );
    let ev = events(&e, &r);
    let violation = ev
        .iter()
        .find(|(n, _)| n == "policy-violation")
        .map(|(_, d)| d.clone())
        .unwrap();
    assert_eq!(violation["policy"], "financial-transaction-limit");
    assert_eq!(violation["decision"], "deny");
    // The earlier stages' own policies allowed them.
    assert_eq!(policy_of(&r, "validate-request")["decision"], "allow");
    assert_eq!(policy_of(&r, "check-eligibility")["decision"], "allow");
    assert!(e.rt.verify_audit(None).unwrap().ok());
}

fn scratch(config: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join(".pbc.yaml"), config).unwrap();
    for (p, text) in files {
        let path = d.path().join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    std::fs::write(
        d.path().join("pb.yaml"),
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata: {name: pb}\nspec:\n  trigger: {event: e}\n  stages:\n    - name: act\n      action: db:writeData\n      params: {table: t}\n      policy: p\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("agents.yaml"),
        format!(
            "actions:\n  \"db:writeData\": {{fixture: {}}}\n",
            dir().join("recorded").display()
        ),
    )
    .unwrap();
    d
}

fn run_scratch(d: &Path) -> RunReport {
    let state = tempfile::tempdir().unwrap();
    let mut rt = Runtime::open(state.path()).unwrap();
    let c = load(&d.join("pb.yaml"), &LoadOptions::default()).unwrap();
    let agents = Agents::from_file(&d.join("agents.yaml")).unwrap();
    rt.run(
        &c,
        &agents,
        json!({}),
        &RunOptions::requested_by("rita@example.com"),
    )
    .unwrap()
}

#[test]
fn a_policy_that_errors_or_is_undefined_denies() {
    // Rego: two values for one complete rule is an evaluation error.
    let d = scratch(
        "policies:\n  p: {rego: {files: [p.rego], query: data.p.decision}}\n",
        &[(
            "p.rego",
            "package p\n\ndecision := \"allow\" if input.kind == \"action\"\n\ndecision := \"deny\" if input.stage == \"act\"\n",
        )],
    );
    let r = run_scratch(d.path());
    assert_eq!(r.status, RunStatus::Refused);
    let p = policy_of(&r, "act");
    assert_eq!(p["decision"], "deny");
    assert!(
        p["reasons"][0]
            .as_str()
            .unwrap()
            .contains("evaluation error"),
        "{p}"
    );
    // Undefined denies.
    let d = scratch(
        "policies:\n  p: {rego: {files: [p.rego], query: data.p.decision}}\n",
        &[(
            "p.rego",
            "package p\n\ndecision := {\"decision\": \"allow\"} if input.kind == \"agent\"\n",
        )],
    );
    let r = run_scratch(d.path());
    assert_eq!(r.status, RunStatus::Refused);
    assert!(
        policy_of(&r, "act")["reasons"][0]
            .as_str()
            .unwrap()
            .contains("undefined")
    );
    // Cedar: an attribute the stage does not have is an evaluation error.
    let d = scratch(
        "policies:\n  p: {cedar: {policies: p.cedar}}\n",
        &[(
            "p.cedar",
            "permit(principal, action, resource) when { resource.owner == \"me\" };\n",
        )],
    );
    let r = run_scratch(d.path());
    assert_eq!(r.status, RunStatus::Refused);
    assert!(
        policy_of(&r, "act")["reasons"][0]
            .as_str()
            .unwrap()
            .contains("an error denies")
    );
    // A name from the deprecated list form has nothing to evaluate.
    let d = scratch("policies: [p]\n", &[]);
    let r = run_scratch(d.path());
    assert_eq!(r.status, RunStatus::Refused);
}

#[test]
fn a_policy_that_does_not_compile_refuses_the_run() {
    let d = scratch(
        "policies:\n  p: {rego: {files: [p.rego], query: data.p.decision}}\n",
        &[("p.rego", "package p\n\ndecision := if {\n")],
    );
    let err = load(&d.path().join("pb.yaml"), &LoadOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("PB6011"), "{text}");
    assert!(text.contains("p.rego:3"), "{text}");
}

#[test]
fn always_on_policies_apply_to_every_action_stage() {
    let d = scratch(
        "policies:\n  p: {rules: []}\n  cap:\n    rules:\n      - {param: table, constraints: {deny: {table: [t]}}}\nalways-on-policies: [cap]\n",
        &[],
    );
    let r = run_scratch(d.path());
    assert_eq!(r.status, RunStatus::Refused);
    assert_eq!(policy_of(&r, "act")["name"], "cap");
}

/// A policy with `check-output: true` decides again on the stage's output, before anything
/// reads it: a deny refuses the stage and the output is kept nowhere (a hash in the audit
/// log); an allowed output is kept. Declarative rules cannot check outputs.
#[test]
fn a_policy_checks_the_output_before_anything_reads_it() {
    let rego = "package p\n\ndefault decision := {\"decision\": \"allow\"}\n\ndecision := {\"decision\": \"deny\", \"reasons\": [\"the output holds an SSN\"]} if {\n\tinput.phase == \"output\"\n\tinput.output.ssn\n}\n";
    let with_output = |output: &str| {
        let d = scratch(
            "policies:\n  p: {rego: {files: [p.rego], query: data.p.decision}, check-output: true}\n",
            &[("p.rego", rego), ("recorded/act.json", output)],
        );
        std::fs::write(
            d.path().join("agents.yaml"),
            "actions:\n  \"db:writeData\": {fixture: recorded/}\n",
        )
        .unwrap();
        d
    };
    let state = tempfile::tempdir().unwrap();
    let mut rt = Runtime::open(state.path()).unwrap();
    let go = |rt: &mut Runtime, d: &Path| {
        let c = load(&d.join("pb.yaml"), &LoadOptions::default()).unwrap();
        let agents = Agents::from_file(&d.join("agents.yaml")).unwrap();
        rt.run(
            &c,
            &agents,
            json!({}),
            &RunOptions::requested_by("rita@example.com"),
        )
        .unwrap()
    };

    let d = with_output(r#"{"ok": true, "ssn": "123-45-6789"}"#);
    let r = go(&mut rt, d.path());
    assert_eq!(r.status, RunStatus::Refused);
    let j = r.to_json();
    assert_eq!(j["stages"]["act"]["status"], "refused", "{j}");
    assert_eq!(j["stages"]["act"]["output"], Value::Null, "{j}");
    assert_eq!(j["stages"]["act"]["policy"]["decision"], "deny", "{j}");
    let log = rt.audit_log(&r.run).unwrap().entries;
    let phases: Vec<(String, Value)> = log
        .iter()
        .filter(|x| x.event == "policy-decision")
        .map(|x| {
            (
                x.details["decision"].as_str().unwrap().to_string(),
                x.details["phase"].clone(),
            )
        })
        .collect();
    assert_eq!(
        phases,
        vec![
            ("allow".to_string(), json!("before")),
            ("deny".to_string(), json!("output"))
        ]
    );
    assert!(log.iter().any(|x| x.event == "policy-violation"));
    let withheld = log
        .iter()
        .find(|x| x.event == "stage-output-withheld")
        .expect("the output is withheld");
    assert_eq!(
        withheld.details["output_sha256"].as_str().unwrap().len(),
        64
    );
    let text = serde_json::to_string(&log.iter().map(|x| &x.details).collect::<Vec<_>>()).unwrap();
    assert!(!text.contains("123-45-6789"), "{text}");
    let db = std::fs::read(state.path().join("state.db")).unwrap();
    assert!(
        !db.windows(11).any(|w| w == b"123-45-6789"),
        "the withheld output is in the state"
    );

    let d = with_output(r#"{"ok": true}"#);
    let r = go(&mut rt, d.path());
    assert_eq!(r.status, RunStatus::Succeeded);
    assert_eq!(r.to_json()["stages"]["act"]["output"], json!({"ok": true}));

    // Declarative rules see params only.
    let d = scratch(
        "policies:\n  p:\n    check-output: true\n    rules: [{resource: 'db:*', constraints: {deny: {table: [x]}}}]\n",
        &[],
    );
    let err = load(&d.path().join("pb.yaml"), &LoadOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("PB0021"), "{text}");
    assert!(
        text.contains("declarative rules limit a stage's params"),
        "{text}"
    );
    assert!(text.contains(".pbc.yaml:3:5"), "{text}");
}
