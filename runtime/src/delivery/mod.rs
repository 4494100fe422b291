//! Delivery: what a playbook declares it notifies reaches its channels, at least once, and a
//! crash loses none of it.
//!
//! 1. [`enqueue`] writes a notification into the outbox inside the transaction of the state
//!    change that causes it, with an audit entry (`notification-queued`) whose hash is the
//!    notification's idempotency id (PagerDuty's `dedup_key` is the approval id instead).
//! 2. [`deliver`] claims due rows, sends each to its channel ([`local`], [`webhook`],
//!    [`slack`], [`pagerduty`], [`email`]), and records the outcome (`notification-sent`, or
//!    after the last attempt `notification-failed`) with the row's new state. Failed attempts
//!    wait an exponential back-off; a failing channel never blocks a run: the CLI delivers at
//!    the end of each command, and what is still due waits for the next one.
//!
//! 3. [`sinks`] copies each run's audit entries to the audit sinks its playbook's
//!    `audit.log-to` names: appended to `file` sinks, sent in batches ([`batch`]) to `s3`,
//!    `otlp`, `cloudtrail` and `syslog` sinks, through a cursor per sink in the state store.
//!
//! Secrets (tokens, passwords, URLs holding a key) are read from the environment at the
//! moment of sending and appear in no row, audit entry or error message.

pub(crate) mod batch;
pub(crate) mod cloudtrail;
mod email;
mod http;
mod local;
mod message;
pub(crate) mod otlp;
pub(crate) mod outbox;
mod pagerduty;
pub(crate) mod s3;
mod sigv4;
pub(crate) mod sinks;
mod slack;
mod syslog;
mod webhook;

pub use batch::{SinkStatus, status as sink_status};
pub use outbox::OutboxRow;

use crate::audit::AuditEntry;
use crate::clock::{Clock, rfc3339};
use crate::load::RuntimeConfig;
use crate::store::{Store, Tx};
use crate::{Error, Result};
use pbc_compiler::config::ChannelDef;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A notification the engine asks for, before it has an id.
#[derive(Clone, Debug)]
pub(crate) struct Notice {
    pub run: String,
    pub playbook: String,
    pub stage: Option<String>,
    /// `on-pending`, `on-approved`, `on-rejected`, `on-expired`, `on-failure`,
    /// `escalation`, `rollback`.
    pub event: String,
    pub channels: Vec<String>,
    /// Already redacted.
    pub message: String,
    /// Per-event fields (`approval`, `by`, `reason`, `level`, …), already redacted.
    pub details: serde_json::Map<String, Value>,
    /// The stage's risk, else the playbook's.
    pub risk: String,
    pub compliance: Vec<String>,
}

/// Where a delivery's non-secret settings come from: the run's frozen configuration.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Settings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
}

/// Why one attempt failed; a permanent failure (a request the service rejects as invalid)
/// is not retried.
#[derive(Debug)]
pub(crate) struct SendError {
    pub message: String,
    pub permanent: bool,
}

impl SendError {
    pub fn retry(message: impl Into<String>) -> Self {
        SendError {
            message: message.into(),
            permanent: false,
        }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        SendError {
            message: message.into(),
            permanent: true,
        }
    }
}

fn entry(
    time: String,
    run: Option<String>,
    stage: Option<String>,
    event: &str,
    compliance: Vec<String>,
    details: Value,
) -> AuditEntry {
    AuditEntry {
        seq: 0,
        time,
        run,
        stage,
        event: event.into(),
        actor: "pbc".into(),
        compliance,
        details,
        prev: String::new(),
        hash: String::new(),
    }
}

/// Writes `n` into the outbox, in the caller's transaction. A channel the configuration
/// does not define (`pbc check` refuses such playbooks; a run frozen before its channel was
/// removed can still name one) is recorded as failed at once.
pub(crate) fn enqueue(tx: &Tx<'_>, n: &Notice, cfg: &RuntimeConfig, now: i64) -> Result<()> {
    if n.channels.is_empty() {
        return Ok(());
    }
    let time = rfc3339(now);
    let (_, id) = tx.audit_sealed(entry(
        time.clone(),
        Some(n.run.clone()),
        n.stage.clone(),
        "notification-queued",
        n.compliance.clone(),
        json!({"on": n.event, "channels": n.channels}),
    ))?;
    let approval = n
        .details
        .get("approval")
        .and_then(Value::as_str)
        .map(String::from);
    let payload = message::payload(tx, n, &id, &time, cfg.public_url.as_deref())?;
    let payload_text = serde_json::to_string(&payload).unwrap_or_default();
    let settings = serde_json::to_string(&Settings {
        ca_file: cfg.tls_ca_file.clone(),
        public_url: cfg.public_url.clone(),
    })
    .unwrap_or_default();
    let compliance = serde_json::to_string(&n.compliance).unwrap_or_default();
    for ch in &n.channels {
        let Some(def) = cfg.notifications.get(ch) else {
            tx.audit(entry(
                time.clone(),
                Some(n.run.clone()),
                n.stage.clone(),
                "notification-failed",
                n.compliance.clone(),
                json!({"channel": ch, "on": n.event, "id": id, "error": format!("channel `{ch}` is not configured (add it under `notifications:` in .pbc.yaml)")}),
            ))?;
            continue;
        };
        let action = match def {
            ChannelDef::Pagerduty(_) => pagerduty::action(&n.event, approval.is_some()),
            _ => "notify",
        };
        outbox::insert(
            tx,
            &outbox::NewRow {
                id: &id,
                channel: ch,
                action,
                run: Some(&n.run),
                stage: n.stage.as_deref(),
                event: &n.event,
                approval: approval.as_deref(),
                payload: &payload_text,
                def: &serde_json::to_string(def).unwrap_or_default(),
                settings: &settings,
                compliance: &compliance,
                max_attempts: def.retries() + 1,
                now,
            },
        )?;
    }
    Ok(())
}

/// Queues a PagerDuty `resolve` for every triggered approval that was decided, expired or
/// cancelled since. Called in the transaction of every state change, so that the incident
/// closes whichever way the approval ended.
pub(crate) fn resolve_decided(tx: &Tx<'_>, now: i64) -> Result<()> {
    for t in outbox::unresolved_triggers(tx)? {
        let status = outbox::approval_status(tx, &t.approval)?.unwrap_or_default();
        let mut p: Value = serde_json::from_str(&t.payload).unwrap_or(Value::Null);
        if let Some(o) = p.as_object_mut() {
            o.insert("approval_status".into(), json!(status));
        }
        outbox::insert(
            tx,
            &outbox::NewRow {
                id: &t.id,
                channel: &t.channel,
                action: "resolve",
                run: p.get("run").and_then(Value::as_str),
                stage: p.get("stage").and_then(Value::as_str),
                event: "resolve",
                approval: Some(&t.approval),
                payload: &serde_json::to_string(&p).unwrap_or_default(),
                def: &t.def,
                settings: &t.settings,
                compliance: &t.compliance,
                max_attempts: t.max_attempts,
                now,
            },
        )?;
    }
    Ok(())
}

/// What one [`deliver`] call did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliverySummary {
    pub sent: usize,
    /// Given up after their last attempt (or rejected as invalid).
    pub failed: usize,
    /// Still waiting for a later attempt.
    pub pending: usize,
    /// Audit entries written to audit sinks.
    pub sink_lines: usize,
    /// Why an audit sink could not be written (it is tried again by the next call).
    pub sink_errors: Vec<String>,
}

/// The longest a command waits for back-offs to pass before it leaves the rest to the next
/// command.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// The most deliveries one call attempts (a backlog is worked off over several commands).
const MAX_PER_CALL: usize = 1000;

/// The wait before attempt `attempts + 1`: 250 ms doubling, at most an hour.
fn backoff_ms(attempts: u32) -> i64 {
    let exp = attempts.saturating_sub(1).min(20);
    (250i64 << exp).min(3_600_000)
}

/// Delivers every due notification, waiting at most `wait` in all for back-offs to pass.
pub fn deliver(store: &mut Store, clock: &dyn Clock, wait: Duration) -> Result<DeliverySummary> {
    let started = Instant::now();
    let mut summary = DeliverySummary::default();
    let mut attempted = 0;
    loop {
        let now = clock.now_ms();
        let rows = outbox::claim_due(store, now, 16)?;
        if rows.is_empty() {
            let Some(due) = outbox::next_due(store)? else {
                break;
            };
            let left = wait.saturating_sub(started.elapsed());
            let until = Duration::from_millis(due.saturating_sub(now).max(0) as u64);
            if until > left || until.is_zero() {
                break;
            }
            std::thread::sleep(until + Duration::from_millis(5));
            continue;
        }
        for c in rows {
            attempted += 1;
            deliver_one(store, clock, c, &mut summary)?;
        }
        if attempted >= MAX_PER_CALL {
            break;
        }
    }
    summary.pending = outbox::counts(store)?.0 as usize;
    // The audit entries the notifications' outcomes added go to the sinks too.
    let sinks = sinks::deliver(store, clock.now_ms())?;
    summary.sink_lines = sinks.lines;
    summary.sink_errors = sinks.errors;
    Ok(summary)
}

fn deliver_one(
    store: &mut Store,
    clock: &dyn Clock,
    c: outbox::Claimed,
    summary: &mut DeliverySummary,
) -> Result<()> {
    let r = &c.row;
    let result = match serde_json::from_str::<ChannelDef>(&c.def) {
        Ok(def) => {
            let payload: Value = serde_json::from_str(&c.payload).unwrap_or(Value::Null);
            let settings: Settings = serde_json::from_str(&c.settings).unwrap_or_default();
            send(&def, r, &payload, &settings)
        }
        Err(e) => Err(SendError::permanent(format!(
            "the channel's stored definition is unreadable ({e})"
        ))),
    };
    let now = clock.now_ms();
    let compliance: Vec<String> = serde_json::from_str(&c.compliance).unwrap_or_default();
    let attempts = r.attempts + 1;
    store.tx(|tx| match &result {
        Ok(()) => {
            outbox::mark_sent(tx, r, now)?;
            let mut d = json!({"channel": r.channel, "on": r.event, "id": r.id, "attempts": attempts});
            if r.action != "notify" {
                d["action"] = json!(r.action);
            }
            tx.audit(entry(
                rfc3339(now),
                r.run.clone(),
                r.stage.clone(),
                "notification-sent",
                compliance.clone(),
                d,
            ))
            .map(|_| ())
        }
        Err(e) => {
            let give_up = e.permanent || attempts >= r.max_attempts;
            let msg = if attempts > 1 {
                format!("{} (after {attempts} attempts)", e.message)
            } else {
                e.message.clone()
            };
            outbox::mark_attempt_failed(tx, r, &msg, now + backoff_ms(attempts), give_up)?;
            if give_up {
                tx.audit(entry(
                    rfc3339(now),
                    r.run.clone(),
                    r.stage.clone(),
                    "notification-failed",
                    compliance.clone(),
                    json!({"channel": r.channel, "on": r.event, "id": r.id, "attempts": attempts, "error": msg}),
                ))?;
            }
            Ok(())
        }
    })?;
    match &result {
        Ok(()) => summary.sent += 1,
        Err(e) if e.permanent || attempts >= r.max_attempts => summary.failed += 1,
        Err(_) => {}
    }
    Ok(())
}

fn send(
    def: &ChannelDef,
    r: &OutboxRow,
    payload: &Value,
    settings: &Settings,
) -> std::result::Result<(), SendError> {
    match def {
        ChannelDef::Stdout => local::stdout(&r.channel, payload),
        ChannelDef::File(p) => local::file(p, payload),
        ChannelDef::Webhook(w) => webhook::send(w, r, payload, settings),
        ChannelDef::Slack(s) => slack::send(s, payload, settings),
        ChannelDef::Pagerduty(p) => pagerduty::send(p, r, payload, settings),
        ChannelDef::Email(e) => email::send(e, r, payload, settings),
    }
}

/// Sends `payload` to one channel now, outside the outbox (`pbc notifications test`, and
/// tests of a channel's wire format). Err: why it was not delivered.
pub fn send_now(
    channel: &str,
    def: &ChannelDef,
    payload: &Value,
    ca_file: Option<&std::path::Path>,
    public_url: Option<&str>,
) -> std::result::Result<(), String> {
    let id = payload
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("test")
        .to_string();
    let event = payload
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or("test")
        .to_string();
    let row = OutboxRow {
        id,
        channel: channel.to_string(),
        action: match def {
            ChannelDef::Pagerduty(_) => "trigger".into(),
            _ => "notify".into(),
        },
        run: None,
        stage: None,
        event,
        approval: None,
        status: "pending".into(),
        attempts: 0,
        max_attempts: 1,
        next_at: 0,
        last_error: None,
        created_at: 0,
        sent_at: None,
    };
    let settings = Settings {
        ca_file: ca_file.map(std::path::Path::to_path_buf),
        public_url: public_url.map(String::from),
    };
    send(def, &row, payload, &settings).map_err(|e| e.message)
}

/// Pending, sent and failed deliveries, for `pbc notifications status`.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct OutboxStatus {
    pub pending: u64,
    pub sent: u64,
    pub failed: u64,
    /// Pending and failed rows, oldest first (at most 200).
    pub deliveries: Vec<OutboxRow>,
}

/// The outbox at a glance.
pub fn status(store: &Store) -> Result<OutboxStatus> {
    let (pending, sent, failed) = outbox::counts(store)?;
    let mut deliveries = outbox::list(store, Some("failed"), 100)?;
    deliveries.extend(outbox::list(store, Some("pending"), 100)?);
    deliveries.sort_by_key(|r| r.created_at);
    Ok(OutboxStatus {
        pending,
        sent,
        failed,
        deliveries,
    })
}

/// Makes every failed delivery pending again; returns how many.
pub fn retry_failed(store: &mut Store, clock: &dyn Clock) -> Result<usize> {
    outbox::retry_failed(store, clock.now_ms())
}

/// The variable a secret comes from, read now; the error names the variable and where
/// config names it, never a value.
pub(crate) fn secret(var: &str, what: &str) -> std::result::Result<String, SendError> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(SendError::retry(format!(
            "the environment variable `{var}` ({what}) is not set where pbc runs"
        ))),
    }
}

impl From<Error> for SendError {
    fn from(e: Error) -> Self {
        SendError::retry(e.to_string())
    }
}
