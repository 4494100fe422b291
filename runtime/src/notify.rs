//! Notification channels from configuration: `stdout` (printed on standard error, so that
//! `--format json` stays parseable), `file` (JSON lines) and `webhook` (POST JSON with
//! retries and a timeout, over `http://` or `https://`: [`crate::tls`]). A failing channel
//! is reported to the caller, which logs it; it never blocks a run.

use pbc_compiler::config::ChannelDef;
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Sends one notification. Err: why it could not be delivered.
pub fn send(
    channel: &str,
    def: Option<&ChannelDef>,
    payload: &Value,
    ca_file: Option<&Path>,
) -> Result<(), String> {
    let Some(def) = def else {
        return Err(format!(
            "channel `{channel}` is not configured (add it under `notifications:` in .pbc.yaml)"
        ));
    };
    let body = serde_json::to_string(payload).unwrap_or_default();
    match def {
        ChannelDef::Stdout => {
            let msg = payload
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or(&body);
            eprintln!("[{channel}] {msg}");
            Ok(())
        }
        ChannelDef::File(p) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .and_then(|mut f| f.write_all(format!("{body}\n").as_bytes()))
            .map_err(|e| format!("{}: {e}", p.display())),
        ChannelDef::Webhook {
            url,
            timeout,
            retries,
        } => {
            let agent = crate::tls::agent(Duration::from_secs((*timeout).max(1)), ca_file)?;
            let mut last = String::new();
            for attempt in 0..=*retries {
                if attempt > 0 {
                    std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
                }
                match agent
                    .post(url.as_str())
                    .header("Content-Type", "application/json")
                    .send(body.as_str())
                {
                    Ok(r) if r.status().is_success() => return Ok(()),
                    Ok(r) => last = format!("{url} answered {}", r.status()),
                    Err(e) => last = crate::tls::describe(url, &e),
                }
            }
            Err(format!("{last} (after {} attempts)", retries + 1))
        }
    }
}
