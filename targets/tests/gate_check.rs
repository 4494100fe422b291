//! The Argo gate check script on its own: it passes on exactly `approve`.

use std::process::Command;

fn run(mode: &str, decision: Option<&str>) -> (i32, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pbc-gate-check.sh");
    let out = std::env::temp_dir().join(format!(
        "pbc-gate-outcome-{}-{mode}-{}",
        std::process::id(),
        decision.map(|d| d.len()).unwrap_or(99)
    ));
    let _ = std::fs::remove_file(&out);
    let mut c = Command::new("sh");
    c.arg(script)
        .env_clear()
        .env("PBC_MODE", mode)
        .env("PBC_GATE", "deploy-approval")
        .env("PBC_OUTCOME_FILE", &out);
    if let Some(d) = decision {
        c.env("PBC_DECISION", d);
    }
    let status = c.output().expect("sh runs").status.code().unwrap_or(-1);
    let outcome = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    (status, outcome)
}

#[test]
fn final_mode_passes_on_exactly_approve() {
    assert_eq!(run("final", Some("approve")), (0, "approve".into()));
    assert_eq!(run("final", Some("reject")).0, 1);
    assert_eq!(run("final", Some("")).0, 2);
    assert_eq!(run("final", None).0, 2);
    assert_eq!(run("final", Some("expired")).0, 2);
    for other in [
        "Approve",
        "approve ",
        " approve",
        "approved",
        "yes",
        "true",
        "approve\n",
        "{{tasks.x.outputs.parameters.decision}}",
    ] {
        assert_ne!(run("final", Some(other)).0, 0, "{other:?} must not pass");
    }
}

#[test]
fn level_mode_tells_expiry_from_rejection() {
    assert_eq!(run("level", Some("approve")), (0, "approve".into()));
    assert_eq!(run("level", Some("")), (0, "expired".into()));
    assert_eq!(run("level", None), (0, "expired".into()));
    assert_eq!(run("level", Some("reject")).0, 1);
    assert_ne!(run("level", Some("APPROVE")).0, 0);
}

#[test]
fn refuse_and_unknown_modes_fail() {
    assert_eq!(run("refuse", Some("approve")).0, 4);
    assert_ne!(run("bogus", Some("approve")).0, 0);
}
