//! The exit handler's undo steps (`spec.rollback: revert-to-previous`): the differential
//! against `pbc run` on the nightly-maintenance playbook, with the PostgreSQL store the pods
//! share, and without one.

use super::argo_harness::Phase;
use super::*;

/// Nightly maintenance (`action:` steps with undo steps, `on-failure: revert-to-previous`, a
/// manual gate, a conditional one, rate limits): `verify-rollout` fails (no recorded output)
/// unless `verify`. `db`: the pods share that PostgreSQL store (`state:`), whose stage runs
/// the exit handler's undo steps read; none: each pod's store is its own.
fn maintenance(verify: bool, db: Option<super::pg_common::Db>) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_tree(&repo().join("testdata/seeds/ops-actions"), d);
    let state = db
        .as_ref()
        .map(|db| format!("state: {}\n", db.url))
        .unwrap_or_default();
    std::fs::write(
        d.join(".pbc.yaml"),
        format!(
            "{state}{SERVE_AGENTS}notifications:\n  slack-sre: {{stdout: true}}\n  pagerduty-sre: {{stdout: true}}\n  slack-dba: {{stdout: true}}\naudit-sinks:\n  file: {{file: audit-sink.jsonl}}\n  cloudtrail: {{file: audit-sink.jsonl}}\nroles:\n  sre-team: [sam@example.com]\n  sre-lead: [lee@example.com]\n  dba-team: [dina@example.com]\n"
        ),
    )
    .unwrap();
    let actions = [
        "k8s:get_deployment",
        "db:estimate_migration",
        "k8s:scale_deployment",
        "db:apply_migration",
        "db:rollback_migration",
        "k8s:wait_for_ready",
        "notify:send_message",
    ];
    let mut agents = String::from("actions:\n");
    for a in actions {
        agents.push_str(&format!("  \"{a}\": {{fixture: recorded/}}\n"));
    }
    std::fs::write(d.join("agents.yaml"), agents).unwrap();
    let rec = d.join("recorded");
    std::fs::create_dir_all(&rec).unwrap();
    let mut outputs = vec![
        (
            "snapshot-deployment",
            json!({"replicas": 3, "ready-replicas": 3, "image": "orders:41", "revision": 41}),
        ),
        (
            "estimate-migration",
            json!({"affected-rows": 120, "reversible": true, "estimated-duration": "PT2M"}),
        ),
        ("scale-down", json!({"replicas": 1})),
        ("apply-migration", json!({"applied": ["0042"]})),
        ("scale-up", json!({"replicas": 3})),
        ("report", json!({"sent": true})),
        // What each undo step answers.
        ("scale-down.rollback", json!({"replicas": 3})),
        ("apply-migration.rollback", json!({"reverted": ["0042"]})),
        ("scale-up.rollback", json!({"replicas": 1})),
    ];
    if verify {
        outputs.push(("verify-rollout", json!({"ready": true})));
    }
    for (stage, out) in outputs {
        std::fs::write(rec.join(format!("{stage}.json")), out.to_string()).unwrap();
    }
    Case {
        dir,
        playbook: "nightly-maintenance.yaml".into(),
        decisions: [(
            "scale-down".to_string(),
            ("sam@example.com".to_string(), "approve".to_string()),
        )]
        .into(),
        input: json!({}),
        db,
    }
}

/// The differential on a failed maintenance: the three completed stages with undo steps are
/// undone by the exit handler, latest first, as `pbc run` undoes them; run twice (a restarted
/// controller), the exit handler runs no undo step again.
#[test]
fn a_failed_maintenance_is_rolled_back_by_the_exit_handler_as_pbc_run_rolls_it_back() {
    let Some(db) = super::pg_common::fresh_db() else {
        return;
    };
    let case = maintenance(false, Some(db));
    let x = differential(&case);
    assert_eq!(x.status, "Failed");
    let rb = &x.exit["rollback"];
    assert_eq!(rb.phase, Phase::Succeeded, "{}", rb.stderr);
    let undone: Vec<String> = stage_entries(&rb.stdout)
        .into_iter()
        .filter(|(_, e, _)| e == "stage-rolled-back")
        .map(|(s, _, _)| s)
        .collect();
    assert_eq!(undone, ["scale-up", "apply-migration", "scale-down"]);
    // Again: nothing is undone twice, and nothing failed.
    let again = &x.exit_again[0]["rollback"];
    assert_eq!(again.phase, Phase::Succeeded, "{}", again.stderr);
    assert!(
        !again.stdout.contains("rollback-started"),
        "{}",
        again.stdout
    );
    // The notification after it says the run was rolled back.
    assert_eq!(x.exit["notify"].phase, Phase::Succeeded);
}

/// A maintenance that succeeds: the exit handler's undo task is skipped.
#[test]
fn a_maintenance_that_succeeds_undoes_nothing() {
    let Some(db) = super::pg_common::fresh_db() else {
        return;
    };
    let x = differential(&maintenance(true, Some(db)));
    assert_eq!(x.status, "Succeeded");
    assert_eq!(x.exit["rollback"].phase, Phase::Skipped);
}

/// Pods with stores of their own: the exit handler cannot tell which stages completed, so its
/// undo task fails closed and lists the undo steps for a person.
#[test]
fn without_a_shared_store_the_undo_task_fails_closed() {
    let case = maintenance(false, None);
    let (_, x) = workflow(&case);
    assert_eq!(x.status, "Failed");
    let rb = &x.exit["rollback"];
    assert_eq!(rb.phase, Phase::Failed);
    assert_eq!(rb.exit_code, Some(3), "{}", rb.stderr);
    assert!(rb.stderr.contains("shared PostgreSQL"), "{}", rb.stderr);
    for step in ["db:rollback_migration", "k8s:scale_deployment"] {
        assert!(rb.stderr.contains(step), "{}", rb.stderr);
    }
    assert!(!rb.stdout.contains("stage-rolled-back"));
}
