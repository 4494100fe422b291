//! `webhook`: pbc's notification JSON, POSTed as is. With `secret-env` the request is signed:
//! `X-Pbc-Timestamp: UNIX_SECONDS` and `X-Pbc-Signature-256: sha256=HEX`, the HMAC-SHA256 of
//! `TIMESTAMP + "." + BODY` under the secret (a receiver recomputes it and refuses an old
//! timestamp, so a captured request cannot be replayed later). `X-Pbc-Delivery` and
//! `Idempotency-Key` carry the notification's id: a receiver that sees an id twice (delivery
//! is at least once) keeps the first.

use super::http;
use super::{OutboxRow, SendError, Settings, secret};
use hmac::{KeyInit, Mac};
use pbc_compiler::config::WebhookDef;
use serde_json::Value;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// `sha256=HEX` of `timestamp.body` under `secret`.
pub fn signature(secret: &[u8], timestamp: &str, body: &str) -> String {
    // HMAC accepts a key of any length, so this never fails.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let bytes = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256=");
    for b in bytes.iter() {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

pub(super) fn send(
    w: &WebhookDef,
    r: &OutboxRow,
    payload: &Value,
    settings: &Settings,
) -> Result<(), SendError> {
    let (url, from_env) = match (&w.url, &w.url_env) {
        (Some(u), _) => (u.clone(), false),
        (None, Some(var)) => (secret(var, "the webhook's URL")?, true),
        (None, None) => return Err(SendError::permanent("the webhook has no URL")),
    };
    let shown = http::shown(&url, from_env);
    let body = payload.to_string();
    let mut headers = vec![
        ("X-Pbc-Delivery", r.id.clone()),
        ("Idempotency-Key", r.id.clone()),
        ("X-Pbc-Event", r.event.clone()),
    ];
    if let Some(var) = &w.secret_env {
        let key = secret(var, "the webhook's signing secret")?;
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            .to_string();
        headers.push(("X-Pbc-Signature-256", signature(key.as_bytes(), &ts, &body)));
        headers.push(("X-Pbc-Timestamp", ts));
    }
    let resp = http::post(&url, &shown, &headers, &body, w.timeout, settings)?;
    http::outcome(&shown, &resp)
}
