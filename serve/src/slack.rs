//! Slack's Approve / Reject buttons (`serve.slack`). Slack POSTs each button press to
//! `/v1/slack/interactions`, signed with the app's signing secret: `X-Slack-Signature:
//! v0=HEX`, the HMAC-SHA256 of `v0:{X-Slack-Request-Timestamp}:{body}`. A request whose
//! timestamp is more than [`MAX_AGE_SECONDS`] from the server's clock, whose signature does
//! not verify, or that was received before (its signature is remembered in the state
//! store) is refused and changes nothing. The Slack user is mapped to a pbc user by
//! `serve.slack.users`; the decision is the API's (`approvals::decide_as`), and the outcome
//! replaces the message through the interaction's `response_url`.

use crate::App;
use crate::api::{Answer, ApiError, body_of, engine, failed, ok, too_many};
use crate::approvals::{decide_as, reason_of};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use hmac::{KeyInit, Mac};
use pbc_compiler::config::ServeSlack;
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How far a request's timestamp may be from the server's clock.
pub const MAX_AGE_SECONDS: i64 = 300;

/// The signing secret and the user map.
pub struct Slack {
    secret: Vec<u8>,
    users: BTreeMap<String, String>,
}

impl Slack {
    /// `None` (with a warning) when the secret's variable is not set.
    pub fn load(cfg: &ServeSlack, warnings: &mut Vec<String>) -> Option<Slack> {
        match std::env::var(&cfg.signing_secret_env) {
            Ok(s) if !s.is_empty() => Some(Slack {
                secret: s.into_bytes(),
                users: cfg.users.clone(),
            }),
            _ => {
                warnings.push(format!(
                    "serve.slack.signing-secret-env names `{}`, which is not set: Slack's buttons are refused",
                    cfg.signing_secret_env
                ));
                None
            }
        }
    }
}

/// Whether `sig` (`v0=HEX`) signs `v0:{ts}:{body}` with `secret`.
pub fn signature_ok(secret: &[u8], ts: &str, body: &[u8], sig: &str) -> bool {
    let Some(hexsig) = sig.trim().strip_prefix("v0=") else {
        return false;
    };
    let Some(sig) = unhex(hexsig) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(format!("v0:{ts}:").as_bytes());
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

fn refused(app: &App, peer: SocketAddr, why: &str) -> ApiError {
    failed(app, peer, why);
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "the request is not signed by Slack (X-Slack-Signature), or its timestamp is stale",
    )
}

/// Where the outcome may be posted: https, or http to this machine (tests).
fn response_url_ok(u: &str) -> bool {
    u.starts_with("https://")
        || ["http://127.0.0.1:", "http://[::1]:", "http://localhost:"]
            .iter()
            .any(|p| u.starts_with(p))
}

/// Posts `msg` to the interaction's `response_url` (in the background; logged on failure).
fn respond(url: String, msg: Value) {
    if !response_url_ok(&url) {
        tracing::warn!("a Slack response_url that is neither https nor loopback was not used");
        return;
    }
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        match agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(msg.to_string())
        {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(
                status = r.status().as_u16(),
                "Slack refused the outcome message"
            ),
            Err(e) => tracing::warn!(error = %e, "the outcome could not be posted to Slack"),
        }
    });
}

/// The reason typed in the message's input box (`pbc-reason`), if any.
fn typed_reason(payload: &Value) -> Option<&str> {
    payload["state"]["values"]
        .as_object()?
        .values()
        .find_map(|b| b.get("pbc-reason"))
        .and_then(|e| e["value"].as_str())
}

#[utoipa::path(post, path = "/v1/slack/interactions", tag = "approvals",
    summary = "Slack's Approve / Reject buttons (block_actions), signed by Slack",
    params(
        ("X-Slack-Request-Timestamp" = String, Header, description = "unix seconds"),
        ("X-Slack-Signature" = String, Header, description = "`v0=` HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret")
    ),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`payload`: the interaction's JSON"),
    security(("slack-signature" = [])),
    responses(
        (status = 200, description = "handled; the outcome replaces the message through its response_url", body = crate::openapi::SlackAnswer),
        (status = 400, description = "not a Slack interaction pbc understands", body = crate::openapi::ErrorBody),
        (status = 401, description = "a bad signature or a stale timestamp", body = crate::openapi::ErrorBody),
        (status = 404, description = "serve.slack is not configured", body = crate::openapi::ErrorBody),
        (status = 409, description = "a replayed request", body = crate::openapi::ErrorBody),
        (status = 413, description = "the body is larger than serve.max-body-bytes", body = crate::openapi::ErrorBody),
        (status = 429, description = "too many failed authentications from this address", body = crate::openapi::ErrorBody),
        (status = 500, description = "internal error (logged by the server)", body = crate::openapi::ErrorBody)
    )
)]
pub async fn interactions(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    if app.failures.blocked(peer.ip()) {
        return Err(too_many(peer));
    }
    let Some(slack) = &app.slack else {
        return Err(ApiError::not_found(
            "Slack interactions are not configured (serve.slack)",
        ));
    };
    let body = body_of(body)?;
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (ts, sig) = (
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
    );
    let Ok(t) = ts.parse::<i64>() else {
        return Err(refused(&app, peer, "Slack interaction without a timestamp"));
    };
    if (app.clock.now_ms().div_euclid(1000) - t).abs() > MAX_AGE_SECONDS {
        return Err(refused(
            &app,
            peer,
            "Slack interaction with a stale timestamp",
        ));
    }
    if !signature_ok(&slack.secret, ts, &body, sig) {
        return Err(refused(&app, peer, "bad Slack signature"));
    }
    // A request is handled once: its signature is remembered (a replay is refused).
    let key = format!("slack:{}", sig.trim());
    {
        let _guard = app.idempotency.lock().await;
        let k = key.clone();
        let seen = engine(&app, move |rt| {
            if rt.remembered(&k).map_err(ApiError::engine)?.is_some() {
                return Ok(true);
            }
            rt.remember(&k, "{}").map_err(ApiError::engine)?;
            Ok(false)
        })
        .await?;
        if seen {
            tracing::warn!(peer = %peer.ip(), "a replayed Slack interaction was refused");
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "replayed",
                "this Slack request was received before",
            ));
        }
    }
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let bad = |m: &str| ApiError::new(StatusCode::BAD_REQUEST, "bad-request", m.to_string());
    let payload: Value = form
        .get("payload")
        .and_then(|p| serde_json::from_str(p).ok())
        .ok_or_else(|| bad("the body must be `payload=JSON` (a Slack interaction)"))?;
    if payload["type"] != "block_actions" {
        return Err(bad("only block_actions interactions are handled"));
    }
    let action = payload["actions"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|x| matches!(x["action_id"].as_str(), Some("pbc-approve" | "pbc-reject")))
        })
        .ok_or_else(|| bad("no pbc-approve or pbc-reject action"))?;
    let reject = action["action_id"] == "pbc-reject";
    let approval = action["value"]
        .as_str()
        .ok_or_else(|| bad("the action names no approval"))?
        .to_string();
    let slack_user = payload["user"]["id"].as_str().unwrap_or("").to_string();
    let response_url = payload["response_url"].as_str().map(String::from);
    let outcome = match slack.users.get(&slack_user) {
        None => {
            tracing::warn!(approval = %approval, "Slack user {slack_user} is not mapped to a pbc user (serve.slack.users)");
            Err(format!(
                "Your Slack user ({slack_user}) is not known to pbc: ask for it to be added to serve.slack.users. Nothing was decided."
            ))
        }
        Some(who) => {
            let reason = if reject {
                reason_of(typed_reason(&payload)).map(Some)
            } else {
                Ok(None)
            };
            match reason {
                Err(_) => Err("A rejection needs a reason: type it in the box, then press Reject. Nothing was decided.".to_string()),
                Ok(reason) => match decide_as(&app, who.clone(), approval.clone(), reason.clone()).await {
                    Ok(d) => Ok(match reason {
                        Some(r) => format!("Rejected by {who} (<@{slack_user}>): {r}. Run {}.", d["run"].as_str().unwrap_or("")),
                        None => format!("Approved by {who} (<@{slack_user}>). Run {} goes on.", d["run"].as_str().unwrap_or("")),
                    }),
                    Err(e) => Err(format!("Not decided: {}", e.message())),
                },
            }
        }
    };
    let (decided, text) = match outcome {
        Ok(t) => (true, t),
        Err(t) => (false, t),
    };
    if let Some(url) = response_url {
        let msg = if decided {
            json!({"replace_original": true, "text": text,
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]})
        } else {
            json!({"replace_original": false, "response_type": "ephemeral", "text": text})
        };
        respond(url, msg);
    }
    ok(StatusCode::OK, json!({"decided": decided, "text": text}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], ts: &str, body: &str) -> String {
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("v0:{ts}:{body}").as_bytes());
        let b = mac.finalize().into_bytes();
        format!(
            "v0={}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        )
    }

    #[test]
    fn the_signature_covers_timestamp_and_body() {
        let s = sign(b"k", "1700000000", "payload=x");
        assert!(signature_ok(b"k", "1700000000", b"payload=x", &s));
        assert!(!signature_ok(b"k", "1700000001", b"payload=x", &s));
        assert!(!signature_ok(b"k", "1700000000", b"payload=y", &s));
        assert!(!signature_ok(b"other", "1700000000", b"payload=x", &s));
        assert!(!signature_ok(b"k", "1700000000", b"payload=x", "v1=00"));
    }

    #[test]
    fn outcomes_go_to_https_or_loopback_only() {
        assert!(response_url_ok("https://hooks.slack.com/actions/T/1/x"));
        assert!(response_url_ok("http://127.0.0.1:9/x"));
        assert!(!response_url_ok("http://example.com/x"));
        assert!(!response_url_ok("file:///etc/passwd"));
    }

    #[test]
    fn the_reason_is_read_from_the_input_box() {
        let p = json!({"state": {"values": {"pbc-reason": {"pbc-reason": {"type": "plain_text_input", "value": "too risky"}}}}});
        assert_eq!(typed_reason(&p), Some("too risky"));
        assert_eq!(typed_reason(&json!({})), None);
    }
}
