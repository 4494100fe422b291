//! The local channels: `stdout` (printed on standard error, so that `--format json` stays
//! parseable) and `file` (one JSON line per notification).

use super::SendError;
use serde_json::Value;
use std::io::Write;
use std::path::Path;

pub(super) fn stdout(channel: &str, payload: &Value) -> Result<(), SendError> {
    let msg = payload
        .get("message")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| payload.to_string());
    eprintln!("[{channel}] {msg}");
    Ok(())
}

pub(super) fn file(path: &Path, payload: &Value) -> Result<(), SendError> {
    let shown = path.display();
    // A FIFO or a device named by the configuration would block or swallow the line.
    if let Ok(m) = std::fs::metadata(path)
        && !m.is_file()
    {
        return Err(SendError::permanent(format!(
            "{shown}: not a regular file ({})",
            pbc_compiler::fs::file_type_name(m.file_type())
        )));
    }
    let line = format!("{payload}\n");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|e| SendError::retry(format!("{shown}: {e}")))
}
