//! Audit sinks: a run whose playbook names sinks in `spec.audit.log-to` has its audit
//! entries copied there. This version delivers the `file` kind: each entry's line, exactly as
//! in `STATE/audit.jsonl` (hash-chained, so a sink can be verified against the log), appended
//! to the sink's file.
//!
//! A run registers its sinks' files when it starts (`run_sinks`, in the run's first
//! transaction). Each file has a cursor (`sink_cursor`: the last entry copied and its end
//! offset in the log), set to the log's head when the file is first registered. The
//! deliverer reads the log from the lowest cursor, checks each line against the hash the
//! state store recorded for it (a line changed outside pbc is never copied), appends the
//! lines of each file's runs, then moves the cursors. A crash between the append and the
//! cursor's move copies those lines again on the next command: at least once, each line
//! carrying its `seq` and `hash`.

use crate::store::{Store, Tx};
use crate::{Error, Result};
use pbc_compiler::config::SinkDef;
use rusqlite::{OptionalExtension, params};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS run_sinks (
  run TEXT NOT NULL,
  sink TEXT NOT NULL,
  path TEXT NOT NULL,
  PRIMARY KEY (run, path)
);
CREATE TABLE IF NOT EXISTS sink_cursor (
  path TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  offset INTEGER NOT NULL,
  last_error TEXT
);
"#;

fn db(e: rusqlite::Error) -> Error {
    Error::Store(e.to_string())
}

/// The most of the log one call reads.
const MAX_READ: u64 = 16 * 1024 * 1024;

/// Registers the sinks `log_to` names for run `run` (in the run's first transaction).
/// Names the configuration does not define are skipped (`pbc check` refuses them).
pub(crate) fn register(
    tx: &Tx<'_>,
    run: &str,
    log_to: &[String],
    sinks: &BTreeMap<String, SinkDef>,
) -> Result<()> {
    for name in log_to {
        let Some(SinkDef::File(path)) = sinks.get(name) else {
            continue;
        };
        let path = path.display().to_string();
        tx.conn()
            .execute(
                "INSERT OR IGNORE INTO run_sinks(run, sink, path) VALUES (?1, ?2, ?3)",
                params![run, name, path],
            )
            .map_err(db)?;
        // A new file starts at the log's head: what was written before is no run's of it.
        let head: i64 = tx
            .conn()
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM audit WHERE line IS NULL",
                [],
                |r| r.get(0),
            )
            .map_err(db)?;
        let bytes: i64 = tx
            .meta_get("audit_bytes")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        tx.conn()
            .execute(
                "INSERT OR IGNORE INTO sink_cursor(path, seq, offset) VALUES (?1, ?2, ?3)",
                params![path, head, bytes],
            )
            .map_err(db)?;
    }
    Ok(())
}

/// What [`deliver`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkSummary {
    /// Lines appended, over all files.
    pub lines: usize,
    /// Files that could not be written (the cursor stays; the next command tries again).
    pub errors: Vec<String>,
}

/// Copies the log's new lines to the sink files of their runs.
pub(crate) fn deliver(store: &mut Store) -> Result<SinkSummary> {
    let mut summary = SinkSummary::default();
    let (cursors, runs_of, written) = store.read(|c| {
        let mut st = c
            .prepare("SELECT path, seq, offset FROM sink_cursor")
            .map_err(db)?;
        let cursors: Vec<(String, i64, i64)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db)?
            .collect::<std::result::Result<_, _>>()
            .map_err(db)?;
        let mut st = c.prepare("SELECT path, run FROM run_sinks").map_err(db)?;
        let mut runs_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for row in st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(db)?
        {
            let (path, run) = row.map_err(db)?;
            runs_of.entry(path).or_default().insert(run);
        }
        let written: i64 = c
            .query_row(
                "SELECT value FROM meta WHERE key = 'audit_bytes'",
                [],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map_err(db)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok((cursors, runs_of, written))
    })?;
    let Some(start) = cursors
        .iter()
        .filter(|(_, _, off)| *off < written)
        .map(|(_, _, off)| *off)
        .min()
    else {
        return Ok(summary);
    };
    let log = store.audit_path();
    let mut f = crate::files::open_regular(&log, "the audit log")?;
    f.seek(SeekFrom::Start(start as u64))
        .map_err(|e| Error::Io(format!("{}: {e}", log.display())))?;
    let len = ((written - start) as u64).min(MAX_READ);
    let mut reader = std::io::BufReader::new(f.take(len));
    // Per file: the lines to append and the cursor after them.
    let mut out: BTreeMap<&str, (Vec<u8>, i64, i64)> = BTreeMap::new();
    let mut offset = start;
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| Error::Io(format!("{}: {e}", log.display())))?;
        if n == 0 || !line.ends_with('\n') {
            break; // the end, or a line cut by the read budget: the next call reads it
        }
        let end = offset + n as i64;
        let text = line.trim_end_matches('\n');
        let Ok(entry) = serde_json::from_str::<crate::audit::AuditEntry>(text) else {
            summary.errors.push(format!(
                "{}: an unreadable line at byte {offset}",
                log.display()
            ));
            break;
        };
        // Only a line that is exactly what pbc recorded is copied.
        let (sealed, hash) = crate::audit::seal(&entry);
        let recorded: Option<String> = store.read(|c| {
            c.query_row(
                "SELECT hash FROM audit WHERE seq = ?1",
                params![entry.seq as i64],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)
        })?;
        if sealed != text || recorded.as_deref() != Some(hash.as_str()) {
            summary.errors.push(format!(
                "{}: entry #{} is not the one the state recorded; audit sinks wait until `pbc audit verify` passes",
                log.display(),
                entry.seq
            ));
            break;
        }
        for (path, seq, off) in &cursors {
            if *off > offset || entry.seq as i64 <= *seq {
                continue;
            }
            let slot = out
                .entry(path.as_str())
                .or_insert_with(|| (Vec::new(), *seq, *off));
            let ours = entry
                .run
                .as_ref()
                .is_some_and(|r| runs_of.get(path).is_some_and(|s| s.contains(r)));
            if ours {
                slot.0.extend_from_slice(line.as_bytes());
            }
            slot.1 = entry.seq as i64;
            slot.2 = end;
        }
        offset = end;
    }
    for (path, (bytes, seq, off)) in out {
        let p = PathBuf::from(path);
        let wrote = if bytes.is_empty() {
            Ok(())
        } else {
            append(&p, &bytes)
        };
        match wrote {
            Ok(()) => {
                summary.lines += bytes.iter().filter(|b| **b == b'\n').count();
                store.tx(|tx| {
                    tx.conn()
                        .execute(
                            "UPDATE sink_cursor SET seq = ?2, offset = ?3, last_error = NULL WHERE path = ?1",
                            params![path, seq, off],
                        )
                        .map(|_| ())
                        .map_err(db)
                })?;
            }
            Err(e) => {
                store.tx(|tx| {
                    tx.conn()
                        .execute(
                            "UPDATE sink_cursor SET last_error = ?2 WHERE path = ?1",
                            params![path, e],
                        )
                        .map(|_| ())
                        .map_err(db)
                })?;
                summary.errors.push(e);
            }
        }
    }
    Ok(summary)
}

fn append(path: &std::path::Path, bytes: &[u8]) -> std::result::Result<(), String> {
    let shown = path.display();
    if let Ok(m) = std::fs::metadata(path)
        && !m.is_file()
    {
        return Err(format!(
            "audit sink {shown}: not a regular file ({})",
            pbc_compiler::fs::file_type_name(m.file_type())
        ));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("audit sink {shown}: {e}"))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_data()
        })
        .map_err(|e| format!("audit sink {shown}: {e}"))
}
