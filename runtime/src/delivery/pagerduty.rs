//! `pagerduty`: Events API v2 (`POST {api-url}/v2/enqueue`). A gate that asks (`on-pending`,
//! `escalation`) triggers an alert whose `dedup_key` is the approval id, so its escalations
//! update the same incident; when the approval is decided, expires or is cancelled, a
//! `resolve` with that key closes it. Other events (a failed stage, a run's rollback)
//! trigger an alert keyed by the notification id. Severity follows the risk: `high` is
//! `critical`, `medium` `error`, `low` `warning`.

use super::{OutboxRow, SendError, Settings, http, secret};
use pbc_compiler::config::PagerDutyDef;
use serde_json::{Value, json};

/// The row's action for an event: decisions about an approval resolve, the rest trigger.
pub(super) fn action(event: &str, has_approval: bool) -> &'static str {
    match event {
        "on-approved" | "on-rejected" | "on-expired" if has_approval => "resolve",
        _ => "trigger",
    }
}

fn severity(risk: &str, event: &str) -> &'static str {
    match (risk, event) {
        ("high", _) => "critical",
        (_, "on-failure" | "rollback") => "error",
        ("medium", _) => "error",
        _ => "warning",
    }
}

/// The Events v2 body for a row.
pub fn body(routing_key: &str, source: &str, action: &str, id: &str, p: &Value) -> Value {
    let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
    let dedup = match p.get("approval").and_then(Value::as_str) {
        Some(a) => a.to_string(),
        None => id.to_string(),
    };
    if action == "resolve" {
        return json!({"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup});
    }
    let summary: String = format!("{}: {}", super::message::title(p), s("message"))
        .chars()
        .take(1024)
        .collect();
    let mut details = p.clone();
    if let Some(o) = details.as_object_mut() {
        o.remove("message");
    }
    let mut b = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup,
        "client": "pbc",
        "payload": {
            "summary": summary,
            "source": source,
            "severity": severity(s("risk"), s("event")),
            "timestamp": s("time"),
            "component": s("playbook"),
            "group": s("run"),
            "class": s("event"),
            "custom_details": details,
        },
    });
    if let Some(url) = p.get("approval_url").and_then(Value::as_str) {
        b["links"] = json!([{"href": url, "text": "Review the approval"}]);
        b["client_url"] = json!(url);
    }
    b
}

pub(super) fn send(
    d: &PagerDutyDef,
    r: &OutboxRow,
    payload: &Value,
    settings: &Settings,
) -> Result<(), SendError> {
    let key = secret(&d.routing_key_env, "the PagerDuty routing key")?;
    let url = format!("{}/v2/enqueue", d.api_url);
    let b = body(&key, &d.source, &r.action, &r.id, payload);
    let resp = http::post(&url, &url, &[], &b.to_string(), d.timeout, settings)?;
    http::outcome(&url, &resp)
}
