//! `slack`: a Block Kit message — a header (what happened, where), the message, the facts
//! (playbook, run, stage, risk, approvers, deadline) and, when `serve.public-url` is set and
//! the message asks for a decision, Approve / Reject buttons (`pbc serve` receives them at
//! `/v1/slack/interactions`; a rejection's reason comes from the input box above them) and a
//! button to the approval's page. Sent to an incoming webhook (`webhook-url-env`) or with a
//! bot token to `chat.postMessage` (`token-env`, `channel`; the Web API answers 200 with
//! `{"ok": false, "error"}` when it refuses).

use super::message::{facts, title};
use super::{SendError, Settings, http, secret};
use pbc_compiler::config::SlackDef;
use serde_json::{Value, json};

/// Slack's mrkdwn needs `&`, `<` and `>` escaped.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// The message: `{text, blocks}` (the text is the notification's fallback).
pub fn render(p: &Value) -> Value {
    let head = title(p);
    let msg = p.get("message").and_then(Value::as_str).unwrap_or("");
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cut(&head, 150), "emoji": false}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&esc(msg), 3000)}}),
    ];
    let fields: Vec<Value> = facts(p)
        .into_iter()
        .take(10)
        .map(|(k, v)| json!({"type": "mrkdwn", "text": cut(&format!("*{k}*\n{}", esc(&v)), 2000)}))
        .collect();
    if !fields.is_empty() {
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    let asks = matches!(
        p.get("event").and_then(Value::as_str),
        Some("on-pending" | "escalation")
    );
    if let Some(url) = p.get("approval_url").and_then(Value::as_str)
        && asks
    {
        let mut elements = Vec::new();
        if let Some(approval) = p.get("approval").and_then(Value::as_str) {
            blocks.push(
                json!({"type": "input", "block_id": "pbc-reason", "optional": true,
                "label": {"type": "plain_text", "text": "Reason (needed to reject)"},
                "element": {"type": "plain_text_input", "action_id": "pbc-reason"}}),
            );
            elements.push(json!({"type": "button", "text": {"type": "plain_text", "text": "Approve"}, "style": "primary", "action_id": "pbc-approve", "value": approval}));
            elements.push(json!({"type": "button", "text": {"type": "plain_text", "text": "Reject"}, "style": "danger", "action_id": "pbc-reject", "value": approval}));
        }
        elements.push(json!({"type": "button", "text": {"type": "plain_text", "text": "Review"}, "url": url, "action_id": "pbc-review"}));
        blocks.push(json!({"type": "actions", "block_id": "pbc-decide", "elements": elements}));
    }
    let id = p.get("id").and_then(Value::as_str).unwrap_or("");
    blocks.push(json!({"type": "context", "elements": [
        {"type": "mrkdwn", "text": format!("pbc · notification `{}`", cut(id, 16))}
    ]}));
    json!({"text": cut(&format!("{head}: {msg}"), 3000), "blocks": blocks})
}

pub(super) fn send(s: &SlackDef, payload: &Value, settings: &Settings) -> Result<(), SendError> {
    let mut body = render(payload);
    if let Some(var) = &s.webhook_url_env {
        let url = secret(var, "the Slack incoming webhook's URL")?;
        let shown = http::shown(&url, true);
        let r = http::post(&url, &shown, &[], &body.to_string(), s.timeout, settings)?;
        return http::outcome(&shown, &r);
    }
    let (Some(var), Some(channel)) = (&s.token_env, &s.channel) else {
        return Err(SendError::permanent(
            "the Slack channel has neither `webhook-url-env` nor `token-env` and `channel`",
        ));
    };
    let token = secret(var, "the Slack bot token")?;
    body["channel"] = json!(channel);
    let url = format!("{}/chat.postMessage", s.api_url);
    let auth = [("Authorization", format!("Bearer {token}"))];
    let r = http::post(&url, &url, &auth, &body.to_string(), s.timeout, settings)?;
    http::outcome(&url, &r)?;
    let answer: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    if answer.get("ok").and_then(Value::as_bool) == Some(true) {
        return Ok(());
    }
    let err = answer
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("no `ok` in the answer")
        .to_string();
    let msg = format!("{url} refused the message: {err}");
    // Rate limits and Slack's own trouble pass; a bad token or channel does not.
    match err.as_str() {
        "ratelimited"
        | "service_unavailable"
        | "fatal_error"
        | "internal_error"
        | "request_timeout" => Err(SendError::retry(msg)),
        _ => Err(SendError::permanent(msg)),
    }
}
