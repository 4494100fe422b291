//! pbc's notification JSON (`schemas/pbc-notification-v1.schema.json`): what a webhook
//! receives as is, and what the Slack, PagerDuty and email renderings are made from.

use super::Notice;
use crate::clock::rfc3339;
use crate::db::{OptionalExtension, params};
use crate::report::ApproverRef;
use crate::store::Tx;
use crate::{Error, Result};
use serde_json::{Value, json};

/// The JSON of notification `id` for `n`. An approval's approvers, deadline, level and page
/// come from the approval as the same transaction wrote it.
pub(super) fn payload(
    tx: &Tx<'_>,
    n: &Notice,
    id: &str,
    time: &str,
    public_url: Option<&str>,
) -> Result<Value> {
    let mut p = json!({
        "id": id,
        "event": n.event,
        "run": n.run,
        "playbook": n.playbook,
        "stage": n.stage,
        "message": n.message,
        "time": time,
        "risk": n.risk,
    });
    let Some(o) = p.as_object_mut() else {
        return Ok(p);
    };
    for (k, v) in &n.details {
        o.insert(k.clone(), v.clone());
    }
    if let Some(approval) = n.details.get("approval").and_then(Value::as_str) {
        let row: Option<(String, String, Option<i64>, i64)> = tx
            .conn()
            .query_row(
                "SELECT kind, approvers, deadline, level FROM approvals WHERE id = ?1",
                params![approval],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(|e| Error::Store(e.to_string()))?;
        if let Some((kind, approvers, deadline, level)) = row {
            let approvers: Vec<ApproverRef> = serde_json::from_str(&approvers).unwrap_or_default();
            o.insert("kind".into(), json!(kind));
            o.insert(
                "approvers".into(),
                json!(approvers.iter().map(|a| a.to_string()).collect::<Vec<_>>()),
            );
            o.insert("deadline".into(), json!(deadline.map(rfc3339)));
            o.entry("level").or_insert(json!(level));
        }
        if let Some(u) = public_url {
            o.insert(
                "approval_url".into(),
                json!(format!("{u}/ui/approvals/{approval}")),
            );
        }
    }
    Ok(p)
}

/// A one-line title for renderings: "Approval needed: deploy in release-pipeline".
pub(super) fn title(p: &Value) -> String {
    let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
    let (stage, playbook) = (s("stage"), s("playbook"));
    let what = if stage.is_empty() {
        playbook.to_string()
    } else {
        format!("{stage} in {playbook}")
    };
    let head = match s("event") {
        "on-pending" => "Approval needed",
        "on-approved" => "Approved",
        "on-rejected" => "Rejected",
        "on-expired" => "Approval expired",
        "on-failure" => "Stage failed",
        "escalation" => "Approval escalated",
        "rollback" => "Run ended",
        "resolve" => "Approval closed",
        other => other,
    };
    format!("{head}: {what}")
}

/// `(label, value)` facts shown by Slack and email: playbook, run, stage, risk, approvers,
/// deadline (those present).
pub(super) fn facts(p: &Value) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let s = |k: &str| p.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    for (label, key) in [
        ("Playbook", "playbook"),
        ("Run", "run"),
        ("Stage", "stage"),
        ("Risk", "risk"),
    ] {
        if let Some(v) = s(key) {
            out.push((label, v.to_string()));
        }
    }
    if let Some(a) = p.get("approvers").and_then(Value::as_array) {
        let names: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
        if !names.is_empty() {
            out.push(("Approvers", names.join(", ")));
        }
    }
    if let Some(d) = s("deadline") {
        out.push(("Deadline", d.to_string()));
    }
    if let Some(a) = s("approval") {
        out.push(("Approval", a.to_string()));
    }
    out
}
