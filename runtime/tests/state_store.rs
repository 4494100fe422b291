//! The state store's suite on both backends: SQLite (`STATE/state.db`) and PostgreSQL, a real
//! server on loopback. `PBC_TEST_POSTGRES_URL` names a role there that may create databases
//! (`postgres://user@127.0.0.1:PORT/DB`, the password in `PBC_STATE_PASSWORD`); each test
//! makes a database of its own and drops it after. Under CI (`.ci/run` starts the server) a
//! missing URL fails the tests; elsewhere they run on SQLite alone and say so.
//!
//! Concurrent writers here are runtimes on their own connections, on threads; the
//! process-level cases (two `pbc run` processes, `kill -9`) are `cli/tests/state_postgres.rs`.

mod common;

use pbc_runtime::{
    Agents, Error, LoadOptions, RunOptions, RunStatus, Runtime, StateBackend, load, migrate_state,
};
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A database of its own on the test server, dropped with it.
struct PgDb {
    admin: String,
    name: String,
    url: String,
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut c) = connect(&self.admin) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn connect(url: &str) -> Result<postgres::Client, postgres::Error> {
    let mut cfg: postgres::Config = url.parse()?;
    if let Ok(pw) = std::env::var("PBC_STATE_PASSWORD") {
        cfg.password(pw);
    }
    cfg.connect(postgres::NoTls)
}

/// `url` with its database replaced by `db`.
fn with_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let rest = base.split_once("://").map(|(_, r)| r).unwrap_or(base);
    let authority = rest.split('/').next().unwrap_or(rest);
    let scheme = base.split("://").next().unwrap_or("postgres");
    format!("{scheme}://{authority}/{db}{query}")
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh database, or None (with a note) when no server is configured outside CI.
fn fresh_pg() -> Option<PgDb> {
    let admin = match std::env::var("PBC_TEST_POSTGRES_URL") {
        Ok(u) if !u.trim().is_empty() => u,
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "PBC_TEST_POSTGRES_URL is required under CI (.ci/run starts PostgreSQL)"
            );
            eprintln!("PostgreSQL not tested: set PBC_TEST_POSTGRES_URL (docs/state.md)");
            return None;
        }
    };
    let name = format!(
        "pbc_t_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let mut c = connect(&admin).expect("the PostgreSQL test server");
    c.batch_execute(&format!(
        "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'"
    ))
    .unwrap();
    let url = with_db(&admin, &name);
    Some(PgDb { admin, name, url })
}

/// Runs `f` on SQLite, then on a fresh PostgreSQL database.
fn on_both(f: impl Fn(&str, &StateBackend)) {
    f("sqlite", &StateBackend::Sqlite);
    if let Some(db) = fresh_pg() {
        f("postgres", &StateBackend::Postgres(db.url.clone()));
    }
}

fn setup(dir: &Path, playbook: &str) -> (pbc_runtime::Compiled, Agents) {
    std::fs::write(dir.join("pb.yaml"), playbook).unwrap();
    let c = load(&dir.join("pb.yaml"), &LoadOptions::default()).unwrap();
    std::fs::write(
        dir.join("agents.yaml"),
        format!(
            "actions:\n  \"k8s:scale\": {{command: [python3, {}], timeout: 20s}}\nroles:\n  sre: [a@example.com, b@example.com, c@example.com, d@example.com]\n",
            common::fixture("action.py").display()
        ),
    )
    .unwrap();
    (c, Agents::from_file(&dir.join("agents.yaml")).unwrap())
}

const GATED: &str = "apiVersion: agenticops/v1
kind: Playbook
metadata: {name: gated}
spec:
  trigger: ev
  stages:
    - name: scale
      action: k8s:scale
      approval: manual
      approvers: [{role: sre}]
";

const LIMITED: &str = "apiVersion: agenticops/v1
kind: Playbook
metadata: {name: limited}
spec:
  trigger: ev
  rate-limits:
    \"k8s:scale\": \"2 per hour\"
  stages:
    - name: scale
      action: k8s:scale
";

/// The tables every backend has after migrating (docs/state.md lists them).
const TABLES: [&str; 17] = [
    "action_history",
    "approval_votes",
    "approvals",
    "audit",
    "meta",
    "outbox",
    "policy_decisions",
    "rate_events",
    "rejections",
    "rollback_steps",
    "run_retention",
    "run_sinks",
    "runs",
    "schedule_fires",
    "sink_cursor",
    "sink_remote",
    "stages",
];

fn tables(dir: &Path, backend: &StateBackend) -> Vec<String> {
    let mut out: Vec<String> = match backend {
        StateBackend::Sqlite => {
            let c = rusqlite::Connection::open(dir.join("state.db")).unwrap();
            let mut st = c
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
                .unwrap();
            st.query_map([], |r| r.get(0))
                .unwrap()
                .map(|r| r.unwrap())
                .collect()
        }
        StateBackend::Postgres(url) => connect(url)
            .unwrap()
            .query(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect(),
    };
    out.sort();
    out
}

fn set_schema(dir: &Path, backend: &StateBackend, v: &str) {
    let sql = format!("UPDATE meta SET value = '{v}' WHERE key = 'schema'");
    match backend {
        StateBackend::Sqlite => {
            rusqlite::Connection::open(dir.join("state.db"))
                .unwrap()
                .execute_batch(&sql)
                .unwrap();
        }
        StateBackend::Postgres(url) => connect(url).unwrap().batch_execute(&sql).unwrap(),
    }
}

#[test]
fn migrations_create_the_schema_from_empty_and_rerun_as_a_no_op() {
    on_both(|name, backend| {
        let dir = tempfile::tempdir().unwrap();
        let st = dir.path().join("st");
        let m = migrate_state(&st, backend).unwrap();
        assert_eq!((m.from, m.to), (0, 2), "{name}");
        assert_eq!(tables(&st, backend), TABLES, "{name}");
        let again = migrate_state(&st, backend).unwrap();
        assert_eq!((again.from, again.to), (2, 2), "{name}");
        assert_eq!(tables(&st, backend), TABLES, "{name}");
        // A store a newer pbc wrote is refused, not written with an older schema.
        set_schema(&st, backend, "99");
        let e = Runtime::open_with(&st, backend).unwrap_err();
        assert!(
            e.to_string().contains("newer pbc (schema 99)"),
            "{name}: {e}"
        );
    });
}

#[test]
fn concurrent_approvals_are_decided_exactly_once() {
    on_both(|name, backend| {
        let dir = tempfile::tempdir().unwrap();
        let st = dir.path().join("st");
        let (c, agents) = setup(dir.path(), GATED);
        let mut rt = Runtime::open_with(&st, backend).unwrap();
        let r = rt
            .run(&c, &agents, json!({}), &RunOptions::requested_by("alice"))
            .unwrap();
        assert_eq!(r.status, RunStatus::WaitingApproval, "{name}");
        let gate = r.pending[0].id.clone();
        let who = [
            "a@example.com",
            "b@example.com",
            "c@example.com",
            "d@example.com",
        ];
        let outcomes: Vec<Result<(), Error>> = std::thread::scope(|s| {
            let hs: Vec<_> = who
                .iter()
                .map(|w| {
                    let (st, gate) = (&st, &gate);
                    s.spawn(move || {
                        let mut rt = Runtime::open_with(st, backend)?;
                        rt.approve(gate, w).map(|_| ())
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(won, 1, "{name}: {outcomes:?}");
        for o in outcomes.iter().filter_map(|o| o.as_ref().err()) {
            assert!(
                matches!(o, Error::Refused(m) if m.contains("already approved")),
                "{name}: {o}"
            );
        }
        let r = rt.resume(&r.run, None).unwrap();
        assert_eq!(r.status, RunStatus::Succeeded, "{name}");
        let log = rt.audit_log(&r.run).unwrap();
        let granted = log
            .entries
            .iter()
            .filter(|e| e.event == "approval-granted")
            .count();
        assert_eq!(granted, 1, "{name}");
        let v = rt.verify_audit(None).unwrap();
        assert!(v.ok(), "{name}: {v:?}");
    });
}

#[test]
fn a_rate_limit_is_counted_once_across_concurrent_writers_and_the_chain_stays_one() {
    on_both(|name, backend| {
        let dir = tempfile::tempdir().unwrap();
        let st = dir.path().join("st");
        let (c, agents) = setup(dir.path(), LIMITED);
        Runtime::open_with(&st, backend).unwrap();
        let statuses: Vec<RunStatus> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..5)
                .map(|_| {
                    let (st, c, agents) = (&st, &c, &agents);
                    s.spawn(move || {
                        let mut rt = Runtime::open_with(st, backend).unwrap();
                        rt.run(c, agents, json!({}), &RunOptions::requested_by("alice"))
                            .unwrap()
                            .status
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ok = statuses
            .iter()
            .filter(|s| **s == RunStatus::Succeeded)
            .count();
        let failed = statuses.iter().filter(|s| **s == RunStatus::Failed).count();
        assert_eq!((ok, failed), (2, 3), "{name}: {statuses:?}");
        let mut rt = Runtime::open_with(&st, backend).unwrap();
        let v = rt.verify_audit(None).unwrap();
        assert!(v.ok(), "{name}: {v:?}");
        assert_eq!(v.waiting, 0, "{name}");
        assert_eq!(Some(v.entries), v.recorded, "{name}");
        // Five runs' entries in one chain: each run's entries are all there.
        let runs = rt.runs().unwrap();
        assert_eq!(runs.len(), 5, "{name}");
        for r in &runs {
            let log = rt.audit_log(&r.run).unwrap();
            assert!(
                log.entries.iter().any(|e| e.event == "run-started"),
                "{name}: {}",
                r.run
            );
        }
    });
}

const NOTIFIED: &str = "apiVersion: agenticops/v1
kind: Playbook
metadata: {name: notified}
spec:
  trigger: ev
  stages:
    - name: scale
      action: k8s:scale
      approval: manual
      approvers: [{role: sre}]
      notification:
        on-pending: [ops-log]
";

/// One history through the engine's queries: a rejection, an approval, a notification in
/// the outbox, the kill switch, every report. What each query answers, without times.
fn history(dir: &Path, backend: &StateBackend) -> Vec<String> {
    let st = dir.join("st");
    std::fs::write(
        dir.join(".pbc.yaml"),
        "notifications:\n  ops-log: {file: notes.jsonl}\n",
    )
    .unwrap();
    let (c, agents) = setup(dir, NOTIFIED);
    let mut rt = Runtime::open_with(&st, backend).unwrap();
    let opts = RunOptions::requested_by("alice");
    let first = rt.run(&c, &agents, json!({}), &opts).unwrap();
    rt.reject(&first.pending[0].id, "a@example.com", "not now")
        .unwrap();
    let second = rt.run(&c, &agents, json!({}), &opts).unwrap();
    assert_eq!(second.previous_rejections.len(), 1);
    rt.approve(&second.pending[0].id, "b@example.com").unwrap();
    let done = rt.resume(&second.run, None).unwrap();
    rt.deliver(std::time::Duration::from_secs(5)).unwrap();
    let mut out = vec![
        format!("first: {:?}, second: {:?}", first.status, done.status),
        format!(
            "{:?}",
            rt.rejections("notified")
                .unwrap()
                .iter()
                .map(|r| (&r.by, &r.reason))
                .collect::<Vec<_>>()
        ),
        format!(
            "runs: {:?}",
            rt.runs()
                .unwrap()
                .iter()
                .map(|r| &r.status)
                .collect::<Vec<_>>()
        ),
        format!("approvals: {:?}", rt.approval_counts().unwrap()),
        format!(
            "stages: {:?}",
            // Labels and counts: the buckets hold real elapsed times, which differ between
            // two runs of the same history (each bucket list is checked to be cumulative).
            rt.stage_durations()
                .unwrap()
                .iter()
                .map(|h| {
                    assert!(h.buckets.windows(2).all(|w| w[0] <= w[1]), "{h:?}");
                    assert!(h.buckets.last().is_none_or(|l| *l <= h.count), "{h:?}");
                    (&h.labels, h.count)
                })
                .collect::<Vec<_>>()
        ),
        format!(
            "decisions: {:?}",
            rt.approval_latencies()
                .unwrap()
                .iter()
                .map(|h| (&h.labels, h.count))
                .collect::<Vec<_>>()
        ),
        format!("guardrails: {:?}", rt.guardrail_triggers().unwrap()),
        format!("policies: {:?}", rt.policy_stats().unwrap()),
    ];
    let status = rt.notifications_status().unwrap();
    out.push(format!(
        "outbox: {} pending, {} sent, {} failed {:?}",
        status.pending,
        status.sent,
        status.failed,
        status
            .deliveries
            .iter()
            .map(|r| (&r.event, &r.status))
            .collect::<Vec<_>>()
    ));
    rt.stop(None, "ops@example.com").unwrap();
    out.push(format!(
        "kill switch: {}",
        rt.kill_switch().unwrap().engaged
    ));
    out.push(format!(
        "released by: {:?}",
        rt.release_kill_switch("ops@example.com").unwrap().is_some()
    ));
    let v = rt.verify_audit(None).unwrap();
    assert!(v.ok(), "{v:?}");
    out
}

#[test]
fn the_engines_queries_answer_alike_on_both_backends() {
    let answers = std::sync::Mutex::new(Vec::new());
    on_both(|name, backend| {
        let dir = tempfile::tempdir().unwrap();
        answers
            .lock()
            .unwrap()
            .push((name.to_string(), history(dir.path(), backend)));
    });
    let answers = answers.into_inner().unwrap();
    let (_, sqlite) = &answers[0];
    assert_eq!(sqlite[0], "first: WaitingApproval, second: Succeeded");
    for (name, a) in &answers[1..] {
        assert_eq!(a, sqlite, "{name} answers otherwise than sqlite");
    }
}
