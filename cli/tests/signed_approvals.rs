//! Signed approvals with the local runtime, through the `pbc` binary: `pbc keygen`,
//! `pbc approve --sign` and `--statement` (each refusal names its reason and leaves the
//! approval pending), and `pbc resume` verifying the statement again before the run goes
//! past the gate.

mod signing;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn pbc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(args)
        .current_dir(dir)
        .env_remove("PBC_STATE_DIR")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const PLAYBOOK: &str = "apiVersion: agenticops/v1
kind: Playbook
metadata:
  name: release
spec:
  trigger: release-requested
  stages:
    - name: build
      agent: m
      prompt: Build it.
    - name: deploy
      agent: m
      prompt: Deploy it.
      approval: manual
      approvers:
        - role: release-managers
";

/// A project whose configuration requires signatures, with the keys of ann (key 1, a release
/// manager), bob (key 2, not one) and req (key 3, who triggers the run).
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("release.yaml"), PLAYBOOK).unwrap();
    std::fs::write(
        d.join(".pbc.yaml"),
        format!(
            "roles:\n  release-managers: [ann@example.com]\napprovals:\n  require-signature: true\n  keys:\n    ann@example.com: \"{}\"\n    bob@example.com: \"{}\"\n    req@example.com: \"{}\"\n",
            signing::public(&signing::key(1)),
            signing::public(&signing::key(2)),
            signing::public(&signing::key(3)),
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("agents.yaml"),
        "agents:\n  m: {fixture: recorded/}\n",
    )
    .unwrap();
    std::fs::write(d.join("input.json"), "{}").unwrap();
    std::fs::create_dir_all(d.join("recorded")).unwrap();
    for s in ["build", "deploy"] {
        std::fs::write(d.join(format!("recorded/{s}.json")), "{\"ok\": true}").unwrap();
    }
    dir
}

/// Starts a run as req@example.com; (run id, the deploy gate's approval id).
fn start(d: &Path) -> (String, String) {
    let o = pbc(
        d,
        &[
            "run",
            "release.yaml",
            "--input",
            "input.json",
            "--agents",
            "agents.yaml",
            "--state",
            "st",
            "--as",
            "req@example.com",
            "--format",
            "json",
        ],
    );
    let v: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert_eq!(v["stages"]["deploy"]["status"], "waiting-approval", "{v}");
    (
        v["run"].as_str().unwrap().to_string(),
        v["stages"]["deploy"]["approval_id"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

fn resume(d: &Path, run: &str) -> Value {
    let o = pbc(d, &["resume", run, "--state", "st", "--format", "json"]);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
}

fn write_key(d: &Path, name: &str, seed: u8) -> String {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let pem = signing::key(seed)
        .to_pkcs8_pem(pkcs8::LineEnding::LF)
        .unwrap();
    std::fs::write(d.join(name), pem.as_bytes()).unwrap();
    name.to_string()
}

#[test]
fn an_approval_signed_with_the_approvers_key_passes() {
    let dir = project();
    let d = dir.path();
    let (run, id) = start(d);
    let key = write_key(d, "ann.pem", 1);
    let o = pbc(
        d,
        &[
            "approve",
            &id,
            "--as",
            "ann@example.com",
            "--sign",
            &key,
            "--state",
            "st",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    // It signed the hash `pbc build` gives the resolved playbook.
    let sha = signing::built_sha(d, "release.yaml");
    assert!(
        text(&o).contains(&format!("playbook sha256 {sha}")),
        "{}",
        text(&o)
    );
    let r = resume(d, &run);
    assert_eq!(r["status"], "succeeded", "{r}");
    // The statement is kept in the approval's audit entry.
    let audit = std::fs::read_to_string(d.join("st/audit.jsonl")).unwrap();
    let granted: Value = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["event"] == "approval-granted")
        .unwrap();
    assert!(
        granted["details"]["statement"]
            .as_str()
            .unwrap()
            .contains('.')
    );
}

#[test]
fn without_a_signature_the_approval_is_refused() {
    let dir = project();
    let d = dir.path();
    let (_, id) = start(d);
    let o = pbc(
        d,
        &["approve", &id, "--as", "ann@example.com", "--state", "st"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("no signed approval statement"),
        "{}",
        text(&o)
    );
}

#[test]
fn each_bad_statement_is_refused_with_its_reason() {
    let dir = project();
    let d = dir.path();
    let (run, id) = start(d);
    let base = signing::St {
        run: run.clone(),
        stage: "deploy".into(),
        approver: "ann@example.com".into(),
        sha: signing::built_sha(d, "release.yaml"),
        issued: signing::at(-60),
        expires: signing::at(3600),
    };
    let with = |f: fn(&mut signing::St)| {
        let mut s = base.clone();
        f(&mut s);
        s
    };
    // Given as ann's approval (ann may decide the gate), whoever the statement names.
    let cases: Vec<(&str, u8, signing::St)> = vec![
        ("forged-signature", 9, base.clone()),
        (
            "not-an-approver",
            2,
            with(|s| s.approver = "bob@example.com".into()),
        ),
        (
            "requester",
            3,
            with(|s| s.approver = "req@example.com".into()),
        ),
        ("content-hash-mismatch", 1, with(|s| s.sha = "0".repeat(64))),
        (
            "expired",
            1,
            with(|s| {
                s.issued = signing::at(-7200);
                s.expires = signing::at(-3600);
            }),
        ),
        ("other-run", 1, with(|s| s.run = "an-earlier-run".into())),
        ("other-stage", 1, with(|s| s.stage = "build".into())),
    ];
    for (reason, seed, st) in cases {
        let token = signing::sign(&signing::key(seed), &st);
        let o = pbc(
            d,
            &[
                "approve",
                &id,
                "--as",
                "ann@example.com",
                "--statement",
                &token,
                "--state",
                "st",
            ],
        );
        assert_eq!(o.status.code(), Some(1), "{reason}: {}", text(&o));
        let e = String::from_utf8_lossy(&o.stderr);
        let named = match reason {
            "forged-signature" => "does not verify",
            "not-an-approver" => "bob@example.com may not approve this gate",
            "requester" => "req@example.com triggered the run",
            "content-hash-mismatch" => "another version of the playbook",
            "expired" => "expired at",
            "other-run" => "is for run an-earlier-run",
            _ => "is for stage `build`",
        };
        assert!(e.contains(named), "{reason}: {e}");
    }
    // Still pending: the valid statement passes.
    let token = signing::sign(&signing::key(1), &base);
    let o = pbc(
        d,
        &[
            "approve",
            &id,
            "--as",
            "ann@example.com",
            "--statement",
            &token,
            "--state",
            "st",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(resume(d, &run)["status"], "succeeded");
}

#[test]
fn resume_fails_the_stage_when_the_statement_expired_meanwhile() {
    let dir = project();
    let d = dir.path();
    let (run, id) = start(d);
    let key = write_key(d, "ann.pem", 1);
    let o = pbc(
        d,
        &[
            "approve",
            &id,
            "--as",
            "ann@example.com",
            "--sign",
            &key,
            "--valid-for",
            "1s",
            "--state",
            "st",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    // Past its expiry (whole seconds), with no deadline to wait for.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let r = resume(d, &run);
    assert_eq!(r["stages"]["deploy"]["status"], "failed", "{r}");
    let shown = text(&pbc(d, &["resume", &run, "--state", "st"]));
    assert!(shown.contains("(expired)"), "{shown}");
}

#[test]
fn keygen_writes_a_private_key_only_its_owner_reads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = pbc(d, &["keygen", "--out", "me.pem"]);
    assert!(o.status.success(), "{}", text(&o));
    let public = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let pem = std::fs::read_to_string(d.join("me.pem")).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(!text(&o).contains(pem.lines().nth(1).unwrap()));
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    let k = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).unwrap();
    assert_eq!(signing::public(&k), public);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("me.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
    }
    // Never overwritten.
    assert!(!pbc(d, &["keygen", "--out", "me.pem"]).status.success());
}

/// A two-person gate with signatures required: each approval carries its own statement,
/// and `pbc resume` checks every one again (the first expired meanwhile: the stage fails).
#[test]
fn a_two_person_gate_checks_each_persons_statement_on_resume() {
    for expire_first in [false, true] {
        let dir = project();
        let d = dir.path();
        let pb = std::fs::read_to_string(d.join("release.yaml")).unwrap();
        std::fs::write(
            d.join("release.yaml"),
            format!("{pb}      min-approvals: 2\n"),
        )
        .unwrap();
        let cfg = std::fs::read_to_string(d.join(".pbc.yaml")).unwrap();
        std::fs::write(
            d.join(".pbc.yaml"),
            cfg.replace(
                "release-managers: [ann@example.com]",
                "release-managers: [ann@example.com, bob@example.com]",
            ),
        )
        .unwrap();
        let (run, id) = start(d);
        let valid = if expire_first { "1s" } else { "1h" };
        for (who, key, seed, valid) in [
            ("ann@example.com", "ann.pem", 1, valid),
            ("bob@example.com", "bob.pem", 2, "1h"),
        ] {
            let key = write_key(d, key, seed);
            let o = pbc(
                d,
                &[
                    "approve",
                    &id,
                    "--as",
                    who,
                    "--sign",
                    &key,
                    "--valid-for",
                    valid,
                    "--state",
                    "st",
                ],
            );
            assert!(o.status.success(), "{}", text(&o));
        }
        if expire_first {
            std::thread::sleep(std::time::Duration::from_millis(2100));
        }
        let r = resume(d, &run);
        let want = if expire_first { "failed" } else { "passed" };
        assert_eq!(r["stages"]["deploy"]["status"], want, "{r}");
    }
}
