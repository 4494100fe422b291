//! Audit sinks: a run whose playbook names sinks in `spec.audit.log-to` has its audit
//! entries copied there: each entry's line exactly as in `STATE/audit.jsonl` (hash-chained,
//! so a sink can be verified against the log) appended to a `file` sink, or sent in batches
//! to a remote sink ([`super::batch`]: `s3`, `otlp`, `cloudtrail`, `syslog`).
//!
//! A run registers its sinks when it starts (`run_sinks`, in the run's first transaction; a
//! remote sink's definition is frozen in `sink_remote` under a key naming its kind, name and
//! a digest of its definition). Each sink has a cursor (`sink_cursor`: the last entry copied
//! and its end offset in the log), set to the log's head when the sink is first registered.
//! The deliverer reads the log from the lowest cursor, checks each line against the hash the
//! state store recorded for it (a line changed outside pbc is never copied), writes the lines
//! of each sink's runs, then moves the cursors. This is the outbox of audit sinks: a crash
//! between the write and the cursor's move sends those lines again on the next command, at
//! least once, each line carrying its `seq` and `hash` (its idempotency id). A remote sink
//! that fails waits an exponential back-off, keeps its last error (`pbc audit sinks`), and is
//! never given up.

use super::batch::{self, Batch};
use crate::db::{OptionalExtension, params};
use crate::store::{Store, Tx};
use crate::{Error, Result};
use pbc_compiler::config::SinkDef;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
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
CREATE TABLE IF NOT EXISTS sink_remote (
  path TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  def TEXT NOT NULL,
  settings TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL DEFAULT 0,
  batches INTEGER NOT NULL DEFAULT 0,
  last_sent_at INTEGER
);
CREATE TABLE IF NOT EXISTS run_retention (
  run TEXT PRIMARY KEY,
  seconds INTEGER NOT NULL
);
"#;

pub(super) fn db(e: crate::db::DbError) -> Error {
    Error::Store(e.to_string())
}

/// The most of the log one call reads.
const MAX_READ: u64 = 16 * 1024 * 1024;

/// The most entries in one batch to a remote sink (CloudTrail Lake takes 100 a request).
pub(super) const MAX_BATCH: usize = 100;

/// The most batches one call sends to each remote sink.
const MAX_ROUNDS: usize = 50;

/// The key of a remote sink's cursor: kind, name and a digest of its definition, so that a
/// changed definition starts its own cursor.
pub(crate) fn remote_key(name: &str, def: &SinkDef) -> String {
    let json = serde_json::to_string(def).unwrap_or_default();
    let digest = crate::audit::sha256_hex(json.as_bytes());
    format!("{}:{name}:{}", def.kind(), &digest[..12])
}

/// Registers the sinks `log_to` names for run `run` (in the run's first transaction), and
/// the run's `audit.retention` (seconds) for sinks that lock objects. Names the
/// configuration does not define are skipped (`pbc check` refuses them).
pub(crate) fn register(
    tx: &Tx<'_>,
    run: &str,
    log_to: &[String],
    sinks: &BTreeMap<String, SinkDef>,
    retention: Option<u64>,
    settings: &super::Settings,
) -> Result<()> {
    if let Some(secs) = retention.filter(|_| !log_to.is_empty()) {
        tx.conn()
            .execute(
                "INSERT INTO run_retention(run, seconds) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![run, secs as i64],
            )
            .map_err(db)?;
    }
    for name in log_to {
        let Some(def) = sinks.get(name) else {
            continue;
        };
        let path = match def {
            SinkDef::File(path) => path.display().to_string(),
            remote => {
                let key = remote_key(name, remote);
                tx.conn()
                    .execute(
                        "INSERT INTO sink_remote(path, name, def, settings) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                        params![
                            key,
                            name,
                            serde_json::to_string(remote).unwrap_or_default(),
                            serde_json::to_string(settings).unwrap_or_default()
                        ],
                    )
                    .map_err(db)?;
                key
            }
        };
        tx.conn()
            .execute(
                "INSERT INTO run_sinks(run, sink, path) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![run, name, path],
            )
            .map_err(db)?;
        // A new sink starts at the log's head: what was written before is no run's of it.
        let head: i64 = tx
            .conn()
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM audit WHERE line IS NULL",
                params![],
                |r| r.get(0),
            )
            .map_err(db)?;
        let bytes: i64 = tx
            .meta_get("audit_bytes")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        tx.conn()
            .execute(
                "INSERT INTO sink_cursor(path, seq, \"offset\") VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![path, head, bytes],
            )
            .map_err(db)?;
    }
    Ok(())
}

/// What [`deliver`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkSummary {
    /// Lines written, over all sinks.
    pub lines: usize,
    /// Sinks that could not be written (the cursor stays; the next command tries again).
    pub errors: Vec<String>,
}

/// A sink's cursor as the deliverer sees it.
struct Cursor {
    path: String,
    seq: i64,
    offset: i64,
    /// A remote sink's frozen definition and settings.
    remote: Option<(String, SinkDef, super::Settings)>,
}

/// What one sink gets from one read of the log.
#[derive(Default)]
struct Slot {
    /// The sink's runs' lines (without newline) and entries.
    lines: Vec<(String, crate::audit::AuditEntry)>,
    /// The cursor after them.
    seq: i64,
    offset: i64,
    /// The hash of the last entry read (the chain's head after the batch).
    after: String,
    /// A remote batch is full: the cursor stops at its last line.
    full: bool,
}

/// Copies the log's new lines to the sinks of their runs (`now`: ms since the epoch, for
/// remote sinks' back-off).
pub(crate) fn deliver(store: &mut Store, now: i64) -> Result<SinkSummary> {
    let mut summary = SinkSummary::default();
    let mut seen_errors = BTreeSet::new();
    for _ in 0..MAX_ROUNDS {
        let more = deliver_round(store, now, &mut summary)?;
        if !more {
            break;
        }
    }
    summary.errors.retain(|e| seen_errors.insert(e.clone()));
    Ok(summary)
}

/// One read of the log and one write per sink; true when a remote batch was full and sent
/// (more may wait).
fn deliver_round(store: &mut Store, now: i64, summary: &mut SinkSummary) -> Result<bool> {
    let (cursors, runs_of, written) = store.read(|c| {
        let mut st = c
            .prepare(
                "SELECT c.path, c.seq, c.\"offset\", r.name, r.def, r.settings, r.next_at FROM sink_cursor c LEFT JOIN sink_remote r ON r.path = c.path",
            )
            .map_err(db)?;
        type Row = (
            String,
            i64,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
        );
        let rows: Vec<Row> = st
            .query_map(params![], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .map_err(db)?
            .collect::<std::result::Result<_, _>>()
            .map_err(db)?;
        let mut cursors = Vec::new();
        for (path, seq, offset, name, def, settings, next_at) in rows {
            let remote = match (name, def) {
                (Some(name), Some(def)) => {
                    if next_at.unwrap_or(0) > now {
                        continue; // waiting out a back-off
                    }
                    let Ok(def) = serde_json::from_str::<SinkDef>(&def) else {
                        continue;
                    };
                    let settings = settings
                        .and_then(|s| serde_json::from_str(&s).ok())
                        .unwrap_or_default();
                    Some((name, def, settings))
                }
                _ => None,
            };
            cursors.push(Cursor {
                path,
                seq,
                offset,
                remote,
            });
        }
        let mut st = c.prepare("SELECT path, run FROM run_sinks").map_err(db)?;
        let mut runs_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for row in st
            .query_map(params![], |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?)))
            .map_err(db)?
        {
            let (path, run) = row.map_err(db)?;
            runs_of.entry(path).or_default().insert(run);
        }
        let written: i64 = c
            .query_row(
                "SELECT value FROM meta WHERE key = 'audit_bytes'",
                params![],
                |r| r.get::<String>(0),
            )
            .optional()
            .map_err(db)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok((cursors, runs_of, written))
    })?;
    let Some(start) = cursors
        .iter()
        .filter(|c| c.offset < written)
        .map(|c| c.offset)
        .min()
    else {
        return Ok(false);
    };
    let log = store.log_name();
    let len = ((written - start) as u64).min(MAX_READ);
    let mut reader = store.log_reader(start as u64, len)?;
    let mut out: BTreeMap<usize, Slot> = BTreeMap::new();
    let mut offset = start;
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| Error::Io(format!("{log}: {e}")))?;
        if n == 0 || !line.ends_with('\n') {
            break; // the end, or a line cut by the read budget: the next call reads it
        }
        let end = offset + n as i64;
        let text = line.trim_end_matches('\n');
        let Ok(entry) = serde_json::from_str::<crate::audit::AuditEntry>(text) else {
            summary
                .errors
                .push(format!("{}: an unreadable line at byte {offset}", log));
            break;
        };
        // Only a line that is exactly what pbc recorded is copied.
        let (sealed, hash) = crate::audit::seal(&entry);
        let recorded = recorded_hash(store, entry.seq as i64)?;
        if sealed != text || recorded.as_deref() != Some(hash.as_str()) {
            summary.errors.push(format!(
                "{}: entry #{} is not the one the state recorded; audit sinks wait until `pbc audit verify` passes",
                log,
                entry.seq
            ));
            break;
        }
        for (i, c) in cursors.iter().enumerate() {
            if c.offset > offset || entry.seq as i64 <= c.seq {
                continue;
            }
            let slot = out.entry(i).or_insert_with(|| Slot {
                seq: c.seq,
                offset: c.offset,
                ..Slot::default()
            });
            if slot.full {
                continue;
            }
            let ours = entry
                .run
                .as_ref()
                .is_some_and(|r| runs_of.get(&c.path).is_some_and(|s| s.contains(r)));
            if ours {
                slot.lines.push((text.to_string(), entry.clone()));
            }
            slot.seq = entry.seq as i64;
            slot.offset = end;
            slot.after = hash.clone();
            if c.remote.is_some() && slot.lines.len() >= MAX_BATCH {
                slot.full = true;
            }
        }
        offset = end;
    }
    let mut more = false;
    for (i, slot) in out {
        let c = &cursors[i];
        let wrote = match &c.remote {
            _ if slot.lines.is_empty() => Ok(()),
            None => {
                let mut bytes = Vec::new();
                for (l, _) in &slot.lines {
                    bytes.extend_from_slice(l.as_bytes());
                    bytes.push(b'\n');
                }
                append(&PathBuf::from(&c.path), &bytes)
            }
            Some((name, def, settings)) => {
                let before = if c.seq == 0 {
                    crate::audit::GENESIS.to_string()
                } else {
                    recorded_hash(store, c.seq)?.unwrap_or_default()
                };
                let retention = retention_of(store, &slot.lines)?;
                let b = Batch {
                    sink: name,
                    lines: &slot.lines,
                    chain_before: &before,
                    chain_after: &slot.after,
                    retention: &retention,
                    now,
                };
                batch::send(def, &b, settings)
                    .map_err(|e| format!("audit sink `{name}` ({}): {}", def.kind(), e.message))
            }
        };
        match wrote {
            Ok(()) => {
                summary.lines += slot.lines.len();
                more |= slot.full;
                store.tx(|tx| {
                    tx.conn()
                        .execute(
                            "UPDATE sink_cursor SET seq = ?2, \"offset\" = ?3, last_error = NULL WHERE path = ?1",
                            params![c.path, slot.seq, slot.offset],
                        )
                        .map_err(db)?;
                    if c.remote.is_some() && !slot.lines.is_empty() {
                        tx.conn()
                            .execute(
                                "UPDATE sink_remote SET attempts = 0, next_at = 0, batches = batches + 1, last_sent_at = ?2 WHERE path = ?1",
                                params![c.path, now],
                            )
                            .map_err(db)?;
                    }
                    Ok(())
                })?;
            }
            Err(e) => {
                store.tx(|tx| {
                    tx.conn()
                        .execute(
                            "UPDATE sink_cursor SET last_error = ?2 WHERE path = ?1",
                            params![c.path, e],
                        )
                        .map_err(db)?;
                    tx.conn()
                        .execute(
                            "UPDATE sink_remote SET attempts = attempts + 1, next_at = ?2 + CASE WHEN attempts >= 14 THEN 3600000 ELSE 250 * (1 << CAST(attempts AS INTEGER)) END WHERE path = ?1",
                            params![c.path, now],
                        )
                        .map_err(db)?;
                    Ok(())
                })?;
                summary.errors.push(e);
            }
        }
    }
    Ok(more)
}

fn recorded_hash(store: &Store, seq: i64) -> Result<Option<String>> {
    store.read(|c| {
        c.query_row("SELECT hash FROM audit WHERE seq = ?1", params![seq], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db)
    })
}

/// The `audit.retention` (seconds) of the runs in a batch.
fn retention_of(
    store: &Store,
    lines: &[(String, crate::audit::AuditEntry)],
) -> Result<BTreeMap<String, u64>> {
    let runs: BTreeSet<&str> = lines.iter().filter_map(|(_, e)| e.run.as_deref()).collect();
    store.read(|c| {
        let mut out = BTreeMap::new();
        for run in runs {
            let secs: Option<i64> = c
                .query_row(
                    "SELECT seconds FROM run_retention WHERE run = ?1",
                    params![run],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?;
            if let Some(s) = secs {
                out.insert(run.to_string(), s.max(0) as u64);
            }
        }
        Ok(out)
    })
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
