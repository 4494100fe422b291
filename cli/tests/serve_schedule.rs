//! `pbc serve` against the real binary: schedule triggers under the test clock (a fire
//! starts exactly one run, requester `schedule`), missed fires across restarts (`skip` and
//! `run-once`), SIGHUP reload (a run in flight keeps its playbook; a broken edit keeps the
//! old set), and the HTTPS listener.

mod serve_common;

use serve_common::{Server, approvals, pbc, project};
use std::path::Path;

/// 2026-06-01 11:59:30 in Europe/Berlin (CEST, UTC+2), in unix milliseconds.
const BEFORE_NOON: i64 = 1_780_307_970_000;
/// 12:00:00 that day in Berlin: when `0 12 * * *` fires.
const NOON: i64 = BEFORE_NOON + 30_000;
const DAY: i64 = 86_400_000;

const NIGHTLY: &str = r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: nightly}
spec:
  trigger: {schedule: "0 12 * * *", timezone: Europe/Berlin}
  stages:
    - name: report
      agent: bot
      prompt: "summarize the day"
"#;

/// The serve project with a scheduled playbook `nightly.yaml` (agent `bot` replays
/// `recorded/report.json`), served as ROOT `.`.
fn scheduled_project() -> tempfile::TempDir {
    let d = project("1h", "1h");
    let p = d.path();
    std::fs::write(p.join("nightly.yaml"), NIGHTLY).unwrap();
    std::fs::create_dir(p.join("recorded")).unwrap();
    std::fs::write(p.join("recorded/report.json"), r#"{"ok": true}"#).unwrap();
    let agents = std::fs::read_to_string(p.join("agents.yaml")).unwrap();
    std::fs::write(
        p.join("agents.yaml"),
        format!("{agents}agents:\n  bot: {{fixture: recorded/}}\n"),
    )
    .unwrap();
    d
}

/// Sets the test clock (written whole, then renamed: the server never reads half a file).
fn set_clock(dir: &Path, ms: i64) {
    let tmp = dir.join("clock.ms.tmp");
    std::fs::write(&tmp, ms.to_string()).unwrap();
    std::fs::rename(&tmp, dir.join("clock.ms")).unwrap();
}

fn start(dir: &Path) -> Server {
    Server::start_with(
        dir,
        ".",
        &[],
        &[("PBC_TEST_CLOCK_FILE", &dir.join("clock.ms"))],
    )
}

fn db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        dir.join("st/state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap()
}

/// Waits until the server has looked for due fires up to `ms` (the time it records after
/// each look).
fn looked_up_to(s: &Server, dir: &Path, ms: i64) {
    for _ in 0..600 {
        let seen: Option<String> = db(dir)
            .query_row(
                "SELECT value FROM meta WHERE key = 'schedule:last-seen'",
                [],
                |r| r.get(0),
            )
            .ok();
        if seen.and_then(|v| v.parse::<i64>().ok()) == Some(ms) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the server never looked up to {ms}:\n{}", s.log());
}

/// The runs in the store: (id, playbook, requester).
fn runs(dir: &Path) -> Vec<(String, String, String)> {
    let c = db(dir);
    let mut st = c
        .prepare("SELECT id, playbook, requester FROM runs ORDER BY created_at")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// The recorded fires: (playbook, due, run).
fn fires(dir: &Path) -> Vec<(String, i64, String)> {
    let c = db(dir);
    let mut st = c
        .prepare("SELECT playbook, due_ms, run FROM schedule_fires ORDER BY due_ms")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

#[test]
fn a_cron_trigger_fires_once_at_its_time_in_its_zone() {
    let d = scheduled_project();
    let p = d.path();
    set_clock(p, BEFORE_NOON);
    let s = start(p);
    looked_up_to(&s, p, BEFORE_NOON);
    assert!(runs(p).is_empty(), "{:?}", runs(p));
    assert!(!s.log().contains("missed"), "{}", s.log());
    assert!(
        s.log().contains("schedule: nightly runs at `0 12 * * *` (Europe/Berlin), next due 2026-06-01T10:00:00.000Z"),
        "{}",
        s.log()
    );

    set_clock(p, NOON + 5_000);
    looked_up_to(&s, p, NOON + 5_000);
    let r = runs(p);
    assert_eq!(r.len(), 1, "{r:?}\n{}", s.log());
    let (run, playbook, requester) = &r[0];
    assert_eq!(
        (playbook.as_str(), requester.as_str()),
        ("nightly", "schedule")
    );
    assert_eq!(fires(p), [("nightly".to_string(), NOON, run.clone())]);
    let v = s.wait_status(run, "succeeded");
    assert_eq!(v["stages"]["report"]["status"], "passed");

    // More looks, later the same minute and the same day: no other run.
    set_clock(p, NOON + 35_000);
    looked_up_to(&s, p, NOON + 35_000);
    set_clock(p, NOON + 3_600_000);
    looked_up_to(&s, p, NOON + 3_600_000);
    assert_eq!(runs(p).len(), 1, "{}", s.log());
    // The next day's noon is the next run.
    set_clock(p, NOON + DAY + 1_000);
    looked_up_to(&s, p, NOON + DAY + 1_000);
    assert_eq!(runs(p).len(), 2, "{}", s.log());
    assert_eq!(fires(p)[1].1, NOON + DAY);
    // The audit log records when the run was due.
    drop(s);
    let audit = std::fs::read_to_string(p.join("st/audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"scheduled_for\":\"2026-06-01T10:00:00.000Z\""),
        "{audit}"
    );
}

#[test]
fn missed_fires_are_skipped_or_run_once_across_restarts() {
    let d = scheduled_project();
    let p = d.path();
    // A brand-new state store missed nothing.
    set_clock(p, NOON - 3_600_000);
    let s = start(p);
    looked_up_to(&s, p, NOON - 3_600_000);
    assert_eq!(s.terminate().code(), Some(0));

    // Down over three noons; `skip` (the default) starts nothing and says so.
    let back = NOON + 2 * DAY + 1_800_000;
    set_clock(p, back);
    let s = start(p);
    looked_up_to(&s, p, back);
    let log = s.log();
    assert!(
        log.contains("nightly missed 3 fire(s) while no server ran (the last due 2026-06-03T10:00:00.000Z); skipped"),
        "{log}"
    );
    assert!(runs(p).is_empty(), "{:?}", runs(p));
    assert_eq!(s.terminate().code(), Some(0));

    // Restarted a minute later: nothing more was missed.
    set_clock(p, back + 60_000);
    let s = start(p);
    looked_up_to(&s, p, back + 60_000);
    assert!(!s.log().contains("missed"), "{}", s.log());
    assert_eq!(s.terminate().code(), Some(0));

    // `run-once`: down over two more noons, one run for the last of them.
    let cfg = std::fs::read_to_string(p.join(".pbc.yaml")).unwrap();
    std::fs::write(
        p.join(".pbc.yaml"),
        format!("{cfg}  missed-schedules: run-once\n"),
    )
    .unwrap();
    let later = back + 2 * DAY;
    set_clock(p, later);
    let s = start(p);
    looked_up_to(&s, p, later);
    assert!(
        s.log().contains("nightly missed 2 fire(s) while no server ran; running it once for the last, due 2026-06-05T10:00:00.000Z"),
        "{}",
        s.log()
    );
    let r = runs(p);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].2, "schedule");
    assert_eq!(
        fires(p),
        [("nightly".to_string(), NOON + 4 * DAY, r[0].0.clone())]
    );
    s.wait_status(&r[0].0, "succeeded");
    assert_eq!(s.terminate().code(), Some(0));

    // Restarted: the run-once fire is recorded, nothing runs again.
    let s = start(p);
    looked_up_to(&s, p, later);
    assert_eq!(runs(p).len(), 1);
    drop(s);
    let o = pbc(p, &["audit", "verify", "--state", "st"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[cfg(unix)]
#[test]
fn sighup_reloads_and_a_run_in_flight_keeps_its_playbook() {
    let d = project("1h", "1h");
    let p = d.path();
    let s = Server::start(p, "deploy.yaml");
    let (code, v) = s.event("release", r#"{"version": "1"}"#, None);
    assert_eq!(code, 202, "{v}");
    let old = v["runs"][0].as_str().unwrap().to_string();
    s.wait_status(&old, "waiting-approval");

    // The stage is renamed; SIGHUP.
    let file = p.join("deploy.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("name: apply", "name: apply-v2")).unwrap();
    s.hup();
    s.wait_log("reloaded: serving 1 playbook(s) (deploy)", 1);

    // The run in flight finishes as its playbook said.
    let gate = approvals(p)[0].0.clone();
    let (code, v) = s.post(&format!("/v1/approvals/{gate}/approve"), "sam-token", "");
    assert_eq!(code, 200, "{v}");
    let v = s.wait_status(&old, "succeeded");
    let stages: Vec<&String> = v["stages"].as_object().unwrap().keys().collect();
    assert_eq!(stages, ["apply"]);

    // A new run uses the new playbook.
    let new_run = |s: &Server| {
        let (code, v) = s.post(
            "/v1/runs",
            "ann-token",
            r#"{"playbook": "deploy", "input": {"version": "2"}}"#,
        );
        assert_eq!(code, 201, "{v}");
        let id = v["run"].as_str().unwrap().to_string();
        let v = s.wait_status(&id, "waiting-approval");
        v["stages"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(new_run(&s), ["apply-v2"]);

    // A broken edit: the diagnostics are logged, the set loaded before still serves.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("sla: 1h", "sla: soon")).unwrap();
    s.hup();
    let log = s.wait_log("reload refused", 1);
    assert!(log.contains("`soon` is not a duration"), "{log}");
    assert!(
        log.contains("still serving the 1 playbook(s) loaded before"),
        "{log}"
    );
    assert_eq!(new_run(&s), ["apply-v2"]);
    let (code, _) = s.call("GET", "/healthz", None, &[], None);
    assert_eq!(code, 200);
    assert_eq!(s.terminate().code(), Some(0));
}

/// A certificate authority and a certificate for 127.0.0.1 signed by it, in `dir/tls`:
/// returns the authority's PEM.
fn pki(dir: &Path) -> String {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "pbc serve test authority");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::create_dir_all(dir.join("tls")).unwrap();
    std::fs::write(dir.join("tls/server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("tls/server.key"), key.serialize_pem()).unwrap();
    ca_cert.pem()
}

/// GET `url` trusting only `ca`: (status, body), or the error.
fn https_get(url: &str, ca: &str) -> Result<(u16, String), String> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let ca = Certificate::from_pem(ca.as_bytes()).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::new_with_certs(&[ca]))
                .build(),
        )
        .build()
        .into();
    let mut resp = agent.get(url).call().map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    Ok((status, resp.body_mut().read_to_string().unwrap_or_default()))
}

#[test]
fn serves_https_with_the_configured_certificate() {
    let d = project("1h", "1h");
    let p = d.path();
    let ca = pki(p);
    let cfg = std::fs::read_to_string(p.join(".pbc.yaml")).unwrap();
    std::fs::write(
        p.join(".pbc.yaml"),
        format!("{cfg}  tls: {{cert: tls/server.pem, key: tls/server.key}}\n"),
    )
    .unwrap();
    let s = Server::start(p, "deploy.yaml");
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);
    let (code, body) = https_get(&format!("{}/healthz", s.url), &ca).unwrap();
    assert_eq!(code, 200, "{body}");
    // Authenticated calls work over TLS too (the handlers see the peer address).
    let (code, body) = {
        use ureq::tls::{Certificate, RootCerts, TlsConfig};
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .tls_config(
                TlsConfig::builder()
                    .root_certs(RootCerts::new_with_certs(&[Certificate::from_pem(
                        ca.as_bytes(),
                    )
                    .unwrap()]))
                    .build(),
            )
            .build()
            .into();
        let mut r = agent
            .get(&format!("{}/v1/runs", s.url))
            .header("Authorization", "Bearer ann-token")
            .call()
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    assert_eq!(code, 200, "{body}");
    // Plain HTTP to the TLS port gets no answer.
    let plain = s.url.replace("https://", "http://");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into();
    assert!(agent.get(&format!("{plain}/healthz")).call().is_err());
    // A client that does not trust the authority is refused.
    let other = {
        use rcgen::{CertificateParams, KeyPair};
        let k = KeyPair::generate().unwrap();
        CertificateParams::new(vec!["other".to_string()])
            .unwrap()
            .self_signed(&k)
            .unwrap()
            .pem()
    };
    assert!(https_get(&format!("{}/healthz", s.url), &other).is_err());
    assert_eq!(s.terminate().code(), Some(0));
}

#[test]
fn tls_flags_override_and_bad_files_refuse_to_start() {
    let d = project("1h", "1h");
    let p = d.path();
    let ca = pki(p);
    // The flags alone (nothing in the configuration).
    let s = Server::start_with(
        p,
        "deploy.yaml",
        &[
            "--tls-cert",
            "tls/server.pem",
            "--tls-key",
            "tls/server.key",
        ],
        &[],
    );
    assert!(s.url.starts_with("https://"), "{}", s.url);
    let (code, _) = https_get(&format!("{}/healthz", s.url), &ca).unwrap();
    assert_eq!(code, 200);
    drop(s);

    // A key that is not one, a missing certificate, a flag alone: exit 2 before listening.
    std::fs::write(p.join("tls/bad.key"), "not a key\n").unwrap();
    for (args, says) in [
        (
            vec!["--tls-cert", "tls/server.pem", "--tls-key", "tls/bad.key"],
            "no PEM private key",
        ),
        (
            vec![
                "--tls-cert",
                "tls/missing.pem",
                "--tls-key",
                "tls/server.key",
            ],
            "tls/missing.pem",
        ),
        (vec!["--tls-cert", "tls/server.pem"], "--tls-key"),
    ] {
        let mut all = vec![
            "serve",
            "deploy.yaml",
            "--listen",
            "127.0.0.1:0",
            "--state",
            "st",
        ];
        all.extend(args.iter().copied());
        let o = pbc(p, &all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("listening on"), "{err}");
    }
}

#[test]
fn one_scheduled_run_at_a_time() {
    let d = scheduled_project();
    let p = d.path();
    std::fs::write(
        p.join("nightly.yaml"),
        format!("{NIGHTLY}      approval: manual\n      approvers: [{{role: sre}}]\n"),
    )
    .unwrap();
    set_clock(p, BEFORE_NOON);
    let s = start(p);
    looked_up_to(&s, p, BEFORE_NOON);
    set_clock(p, NOON + 5_000);
    looked_up_to(&s, p, NOON + 5_000);
    let first = runs(p)[0].0.clone();
    s.wait_status(&first, "waiting-approval");

    // The next noon, the run still waits at its gate: the fire starts nothing.
    set_clock(p, NOON + DAY + 5_000);
    looked_up_to(&s, p, NOON + DAY + 5_000);
    assert_eq!(runs(p).len(), 1);
    assert!(
        s.log().contains(&format!(
            "nightly due 2026-06-02T10:00:00.000Z started nothing: its scheduled run {first} is still waiting-approval"
        )),
        "{}",
        s.log()
    );

    // Decided, it finishes; the noon after starts the next run.
    let gate = approvals(p)[0].0.clone();
    let (code, v) = s.post(&format!("/v1/approvals/{gate}/approve"), "sam-token", "");
    assert_eq!(code, 200, "{v}");
    s.wait_status(&first, "succeeded");
    set_clock(p, NOON + 2 * DAY + 5_000);
    looked_up_to(&s, p, NOON + 2 * DAY + 5_000);
    assert_eq!(runs(p).len(), 2, "{}", s.log());
    assert_eq!(fires(p).len(), 2);
}

#[test]
fn gate_deadlines_follow_the_test_clock() {
    let d = project("1h", "1h");
    let p = d.path();
    set_clock(p, NOON);
    let s = Server::start_with(
        p,
        "deploy.yaml",
        &[],
        &[("PBC_TEST_CLOCK_FILE", &p.join("clock.ms"))],
    );
    let (code, v) = s.event("release", r#"{"version": "1"}"#, None);
    assert_eq!(code, 202, "{v}");
    let run = v["runs"][0].as_str().unwrap().to_string();
    s.wait_status(&run, "waiting-approval");
    let a = approvals(p);
    assert_eq!(
        a[0].3,
        Some(NOON + 3_600_000),
        "the SLA counts from the test clock"
    );

    // An hour and a minute later (by the test clock): escalated, with no request made.
    let wait = |status: &str, level: i64| {
        for _ in 0..600 {
            if let Some((_, st, l, _)) = approvals(p).first()
                && st == status
                && *l == level
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "never {status} at level {level}: {:?}\n{}",
            approvals(p),
            s.log()
        );
    };
    set_clock(p, NOON + 3_660_000);
    wait("pending", 1);
    set_clock(p, NOON + 2 * 3_600_000 + 60_000);
    wait("expired", 1);
    s.wait_status(&run, "expired");
}
