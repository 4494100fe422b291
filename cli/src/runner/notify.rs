//! `pbc runner notify` and `exit-notify`: notifications through the channels the mounted
//! configuration defines (`notifications:` in `pbc.yaml`), sent at once. A channel the
//! configuration does not define, or a delivery that fails, is reported on standard error and
//! does not fail the task (a notification never decides a run).

use super::{Place, config};
use crate::cli::Global;
use serde_json::{Value, json};
use std::process::ExitCode;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Sends `payload` to each channel; a line per channel on standard error or output.
fn send(g: &Global, place: &Place, channels: &[String], payload: &Value) {
    if channels.is_empty() {
        return;
    }
    let start = place.dir.clone();
    let cfg = match pbc_runtime::load::load_config(&start, config(g, place).as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("warning: the configuration: {e}; nothing was sent");
            return;
        }
    };
    for ch in channels {
        let Some(def) = cfg.notifications.get(ch) else {
            eprintln!("warning: no channel `{ch}` in the configuration; not sent");
            continue;
        };
        match pbc_runtime::delivery::send_now(
            ch,
            def,
            payload,
            cfg.tls_ca_file.as_deref(),
            cfg.serve.public_url.as_deref(),
        ) {
            Ok(()) => println!(
                "sent `{}` to `{ch}`",
                payload["event"].as_str().unwrap_or("")
            ),
            Err(e) => eprintln!("warning: `{ch}` ({}): {e}", def.kind()),
        }
    }
}

fn list(text: &str) -> Vec<String> {
    serde_json::from_str::<Vec<String>>(text).unwrap_or_default()
}

fn payload(
    playbook: &str,
    workflow: &str,
    stage: Option<&str>,
    event: &str,
    message: String,
) -> Value {
    let now = now_ms();
    json!({
        "id": format!("{workflow}-{}-{event}-{now}", stage.unwrap_or("run")),
        "event": event,
        "run": workflow,
        "playbook": playbook,
        "stage": stage,
        "message": message,
        "time": pbc_runtime::clock::rfc3339(now),
    })
}

/// A gate's `pending`, `escalated` or `approved` notification.
#[allow(clippy::too_many_arguments)]
pub fn gate_event(
    g: &Global,
    place: &Place,
    playbook: &str,
    workflow: &str,
    stage: &str,
    event: &str,
    channels: &str,
    approvers: &str,
) -> ExitCode {
    let stage = (!stage.is_empty()).then_some(stage);
    let mut p = payload(
        playbook,
        workflow,
        stage,
        event,
        format!(
            "playbook {playbook} workflow {workflow}: {} {event}",
            stage
                .map(|s| format!("stage {s}"))
                .unwrap_or_else(|| "the playbook's approval".into())
        ),
    );
    p["approvers"] = serde_json::from_str(approvers).unwrap_or(Value::Array(Vec::new()));
    send(g, place, &list(channels), &p);
    ExitCode::SUCCESS
}

/// What the failed nodes say: per failed task name, its exit code (when the message has one).
pub(super) fn failed_nodes(failures: &str) -> Vec<(String, Option<i64>)> {
    let nodes: Vec<Value> = serde_json::from_str(failures).unwrap_or_default();
    nodes
        .iter()
        .filter_map(|n| {
            let name = n["displayName"].as_str()?.to_string();
            let code = n["message"].as_str().and_then(|m| {
                let rest = m.split("exit code ").nth(1)?;
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            });
            Some((name, code))
        })
        .collect()
}

/// The exit handler's notifications: rejected and expired gates, failed stages, rollback.
pub fn exit(
    g: &Global,
    place: &Place,
    playbook: &str,
    workflow: &str,
    status: &str,
    failures: &str,
    channels: &str,
) -> ExitCode {
    if status == "Succeeded" {
        return ExitCode::SUCCESS;
    }
    let table: Value = serde_json::from_str(channels).unwrap_or(Value::Null);
    let failed = failed_nodes(failures);
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    if let Some(gates) = table["gates"].as_object() {
        for (stage, ch) in gates {
            for (node, code) in &failed {
                let of_gate = node.strip_suffix("-approval-check") == Some(stage.as_str());
                let (event, key) = match code {
                    Some(1) if of_gate => ("rejected", "on-rejected"),
                    Some(2) if of_gate => ("expired", "on-expired"),
                    _ => continue,
                };
                let p = payload(
                    playbook,
                    workflow,
                    Some(stage),
                    event,
                    format!(
                        "playbook {playbook} workflow {workflow}: the gate of stage {stage} was {event}"
                    ),
                );
                send(g, place, &names(&ch[key]), &p);
            }
        }
    }
    if let Some(stages) = table["stages"].as_object() {
        for (stage, ch) in stages {
            if failed.iter().any(|(n, _)| n == stage) {
                let p = payload(
                    playbook,
                    workflow,
                    Some(stage),
                    "failed",
                    format!("playbook {playbook} workflow {workflow}: stage {stage} failed"),
                );
                send(g, place, &names(&ch["on-failure"]), &p);
            }
        }
    }
    let p = payload(
        playbook,
        workflow,
        None,
        "rollback",
        format!("playbook {playbook} workflow {workflow} {status}"),
    );
    send(g, place, &names(&table["rollback"]), &p);
    ExitCode::SUCCESS
}
