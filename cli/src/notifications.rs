//! `pbc notifications`: the outbox at a glance (`status`), failed deliveries sent again
//! (`retry`), and a sample notification to one channel (`test`). Every runtime command also
//! delivers what is due when it ends ([`deliver`]).

use crate::cli::Global;
use crate::run::{fail, open};
use pbc_runtime::delivery::{DEFAULT_WAIT, OutboxRow};
use pbc_runtime::{Error, Runtime};
use std::path::PathBuf;
use std::process::ExitCode;

/// Delivers what is due at the end of a command. Never changes the command's outcome: a
/// delivery that fails is retried by later commands, and says so on standard error.
pub fn deliver(rt: &mut Runtime) {
    match rt.deliver(DEFAULT_WAIT) {
        Ok(s) if s.failed > 0 || s.pending > 0 || !s.sink_errors.is_empty() => {
            for e in &s.sink_errors {
                eprintln!("warning: {e}; the next pbc command tries again");
            }
            if s.failed == 0 && s.pending == 0 {
                return;
            }
            let mut parts = Vec::new();
            if s.failed > 0 {
                parts.push(format!("{} failed", s.failed));
            }
            if s.pending > 0 {
                parts.push(format!("{} waiting for a retry", s.pending));
            }
            eprintln!(
                "warning: notifications: {} (`pbc notifications status` shows why)",
                parts.join(", ")
            );
        }
        Ok(_) => {}
        Err(e) => eprintln!(
            "warning: notifications were not delivered now ({e}); the next pbc command tries again"
        ),
    }
}

fn row_json(r: &OutboxRow) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "channel": r.channel,
        "action": r.action,
        "event": r.event,
        "run": r.run,
        "stage": r.stage,
        "approval": r.approval,
        "status": r.status,
        "attempts": r.attempts,
        "max_attempts": r.max_attempts,
        "next_attempt": (r.status == "pending").then(|| pbc_runtime::clock::rfc3339(r.next_at)),
        "last_error": r.last_error,
        "queued": pbc_runtime::clock::rfc3339(r.created_at),
    })
}

/// `pbc notifications status`.
pub fn status(state: Option<PathBuf>, json: bool) -> ExitCode {
    let dir = pbc_runtime::default_state_dir(state.as_deref());
    if !pbc_runtime::state_store_exists(&dir) {
        // Read-only: no state, nothing queued; nothing is created.
        if json {
            println!(
                "{}",
                serde_json::json!({"pending": 0, "sent": 0, "failed": 0, "deliveries": []})
            );
        } else {
            println!("no notifications (no state store in {})", dir.display());
        }
        return ExitCode::SUCCESS;
    }
    let st = match open(state).and_then(|rt| rt.notifications_status()) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    if json {
        let v = serde_json::json!({
            "pending": st.pending,
            "sent": st.sent,
            "failed": st.failed,
            "deliveries": st.deliveries.iter().map(row_json).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    println!(
        "notifications: {} pending, {} sent, {} failed",
        st.pending, st.sent, st.failed
    );
    for r in &st.deliveries {
        let when = if r.status == "pending" {
            format!(", next attempt {}", pbc_runtime::clock::rfc3339(r.next_at))
        } else {
            String::new()
        };
        println!(
            "  {:<7} {} → {} ({}{}), attempt {}/{}{when}",
            r.status,
            r.event,
            r.channel,
            r.run.as_deref().unwrap_or("-"),
            r.stage
                .as_deref()
                .map(|s| format!(" {s}"))
                .unwrap_or_default(),
            r.attempts,
            r.max_attempts
        );
        if let Some(e) = &r.last_error {
            println!("          {e}");
        }
    }
    if st.failed > 0 {
        println!("`pbc notifications retry` sends the failed ones again");
    }
    ExitCode::SUCCESS
}

/// `pbc notifications retry`.
pub fn retry(state: Option<PathBuf>) -> ExitCode {
    let result = open(state).and_then(|mut rt| {
        let n = rt.retry_notifications()?;
        let s = rt.deliver(DEFAULT_WAIT)?;
        Ok((n, s))
    });
    match result {
        Ok((n, s)) => {
            println!(
                "{n} failed deliver{} made pending again; {} sent, {} failed, {} still pending",
                if n == 1 { "y" } else { "ies" },
                s.sent,
                s.failed,
                s.pending
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// `pbc notifications test CHANNEL`: a sample notification, sent now.
pub fn test(g: &Global, channel: &str, dir: Option<PathBuf>) -> ExitCode {
    let start = dir.unwrap_or_else(|| PathBuf::from("."));
    let cfg = match pbc_runtime::load::load_config(&start, g.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let Some(def) = cfg.notifications.get(channel) else {
        let names: Vec<String> = cfg.notifications.keys().map(|k| format!("`{k}`")).collect();
        let e = Error::Usage(if names.is_empty() {
            format!("no channel `{channel}`: the configuration defines no `notifications:`")
        } else {
            format!(
                "no channel `{channel}` in the configuration; defined: {}",
                names.join(", ")
            )
        });
        return fail(&e);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let payload = serde_json::json!({
        "id": format!("test-{now}"),
        "event": "test",
        "run": null,
        "playbook": "pbc",
        "stage": null,
        "message": format!("A test notification from pbc to channel `{channel}`."),
        "time": pbc_runtime::clock::rfc3339(now),
        "risk": "low",
    });
    match pbc_runtime::delivery::send_now(
        channel,
        def,
        &payload,
        cfg.tls_ca_file.as_deref(),
        cfg.serve.public_url.as_deref(),
    ) {
        Ok(()) => {
            println!("sent a test notification to `{channel}` ({})", def.kind());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: `{channel}` ({}): {e}", def.kind());
            ExitCode::from(1)
        }
    }
}
