//! The `cloudtrail` audit sink: CloudTrail Lake `PutAuditEvents` on a channel, signed with
//! SigV4 (service `cloudtrail-data`), at most 100 events a request.
//!
//! Each audit entry is one event: `id` and `UID` are the entry's hash (its idempotency id:
//! a batch sent again carries the same ids), `eventData` follows the integration schema
//! (`version`, `userIdentity` from the actor, `eventSource: pbc`, `eventName`, `eventTime`,
//! `recipientAccountId`) with the whole entry, its log line and the batch's chain heads
//! under `additionalEventData`, and `eventDataChecksum` is the SHA-256 of `eventData`.

use super::batch::Batch;
use super::http::request;
use super::sigv4::{self, Service};
use super::{SendError, Settings};
use crate::audit::AuditEntry;
use pbc_compiler::config::CloudTrailSink;
use serde_json::{Value, json};

/// An entry's `eventData` (the JSON object, before it is serialized into the request).
pub(crate) fn event_data(
    e: &AuditEntry,
    line: &str,
    account: &str,
    heads: Option<(&str, &str, &str)>,
) -> Value {
    let time = format!("{}Z", e.time.get(..19).unwrap_or(&e.time));
    let mut extra = json!({
        "seq": e.seq,
        "run": e.run,
        "stage": e.stage,
        "compliance": e.compliance,
        "details": e.details,
        "prev": e.prev,
        "hash": e.hash,
        "time": e.time,
        "line": line,
    });
    if let Some((before, after, batch)) = heads {
        extra["chainBefore"] = json!(before);
        extra["chainAfter"] = json!(after);
        extra["batch"] = json!(batch);
    }
    json!({
        "version": "1.0",
        "userIdentity": {"type": if e.actor == "pbc" { "pbc-runtime" } else { "pbc-user" }, "principalId": e.actor, "details": {}},
        "userAgent": concat!("pbc/", env!("CARGO_PKG_VERSION")),
        "eventSource": "pbc",
        "eventName": e.event,
        "eventTime": time,
        "UID": e.hash,
        "recipientAccountId": account,
        "additionalEventData": extra,
    })
}

/// One `auditEvents` item.
pub(crate) fn audit_event(data: &Value, id: &str) -> Value {
    let text = serde_json::to_string(data).unwrap_or_default();
    json!({
        "id": id,
        "eventData": text,
        "eventDataChecksum": crate::audit::sha256_hex(text.as_bytes()),
    })
}

fn query_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn send(
    c: &CloudTrailSink,
    b: &Batch<'_>,
    settings: &Settings,
) -> Result<(), SendError> {
    let batch = b.id();
    let events: Vec<Value> = b
        .lines
        .iter()
        .map(|(line, e)| {
            let data = event_data(
                e,
                line,
                &c.account,
                Some((b.chain_before, b.chain_after, &batch)),
            );
            audit_event(&data, &e.hash)
        })
        .collect();
    let body = serde_json::to_vec(&json!({"auditEvents": events})).unwrap_or_default();
    let endpoint = c
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("https://cloudtrail-data.{}.amazonaws.com", c.region));
    let url = format!(
        "{endpoint}/PutAuditEvents?channelArn={}",
        query_encode(&c.channel_arn)
    );
    let host = url
        .split_once("://")
        .map(|(_, r)| r.split('/').next().unwrap_or(""))
        .unwrap_or("")
        .to_string();
    let base = vec![
        ("host", host),
        ("content-type", "application/json".to_string()),
    ];
    let signed = sigv4::headers(
        &c.credentials,
        &c.region,
        Service::CloudTrailData,
        "POST",
        &url,
        &base,
        &body,
    )?;
    let headers: Vec<(String, String)> = base
        .into_iter()
        .filter(|(k, _)| *k != "host")
        .map(|(k, v)| (k.to_string(), v))
        .chain(signed)
        .collect();
    let r = request(
        "POST",
        &url,
        &headers,
        Some(&body),
        c.timeout,
        settings,
        1024 * 1024,
    )?;
    let text = String::from_utf8_lossy(&r.body).into_owned();
    let shown = format!("CloudTrail Lake channel {}", c.channel_arn);
    super::http::outcome(
        &shown,
        &super::http::Response {
            status: r.status,
            body: text.clone(),
        },
    )?;
    let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    match answer.get("failed").and_then(Value::as_array) {
        Some(failed) if !failed.is_empty() => {
            let first = &failed[0];
            Err(SendError::retry(format!(
                "{shown} refused {} of {} events (first: {} {})",
                failed.len(),
                b.lines.len(),
                first
                    .get("errorCode")
                    .and_then(Value::as_str)
                    .unwrap_or("?"),
                first
                    .get("errorMessage")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            )))
        }
        _ => Ok(()),
    }
}
