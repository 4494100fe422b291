//! A batch of audit entries for a remote sink, and where each kind sends it.
//!
//! Every batch carries the chain's head before it (the hash of the log's entry just before
//! the batch's first, or 64 zeros) and after it (the hash of the log's entry the sink's
//! cursor moves to), so that the sink holds evidence of the local chain at each delivery:
//! `pbc audit verify --against SINK` compares them with the local log.

use super::{SendError, Settings};
use crate::audit::AuditEntry;
use crate::db::params;
use pbc_compiler::config::SinkDef;
use std::collections::BTreeMap;

/// One delivery to one remote sink.
pub(crate) struct Batch<'a> {
    /// The sink's name.
    pub sink: &'a str,
    /// The lines (as in the log, without newline) and their entries, in log order.
    pub lines: &'a [(String, AuditEntry)],
    pub chain_before: &'a str,
    pub chain_after: &'a str,
    /// `audit.retention` in seconds, by run (runs without one are absent).
    pub retention: &'a BTreeMap<String, u64>,
    /// Ms since the epoch.
    pub now: i64,
}

impl Batch<'_> {
    /// The batch's idempotency id: the same entries give the same id.
    pub fn id(&self) -> String {
        let first = self
            .lines
            .first()
            .map(|(_, e)| e.hash.as_str())
            .unwrap_or("");
        let last = self
            .lines
            .last()
            .map(|(_, e)| e.hash.as_str())
            .unwrap_or("");
        crate::audit::sha256_hex(format!("{first}.{last}").as_bytes())[..32].to_string()
    }
}

/// Sends a batch to a remote sink.
pub(crate) fn send(def: &SinkDef, b: &Batch<'_>, settings: &Settings) -> Result<(), SendError> {
    match def {
        SinkDef::File(_) => Ok(()),
        SinkDef::Syslog(s) => super::syslog::send(s, b, settings),
        SinkDef::S3(s) => super::s3::send(s, b, settings),
        SinkDef::Otlp(o) => super::otlp::send(o, b, settings),
        SinkDef::Cloudtrail(c) => super::cloudtrail::send(c, b, settings),
    }
}

/// An audit sink's delivery state, for `pbc audit sinks`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SinkStatus {
    pub name: String,
    pub kind: String,
    /// The file, or the remote sink's key (`KIND:NAME:DIGEST`).
    pub target: String,
    /// The last log entry the sink's cursor passed.
    pub delivered_seq: i64,
    /// Log entries after the cursor (of any run: the sink receives its runs' among them).
    pub lag: i64,
    pub last_error: Option<String>,
    /// Failed attempts since the last success (remote sinks).
    pub attempts: i64,
    /// Batches delivered (remote sinks).
    pub batches: i64,
}

/// Every registered sink's state.
pub fn status(store: &crate::store::Store) -> crate::Result<Vec<SinkStatus>> {
    use super::sinks::db;
    store.read(|c| {
        let head: i64 = c
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM audit", params![], |r| r.get(0))
            .map_err(db)?;
        let mut st = c
            .prepare(
                "SELECT c.path, c.seq, c.last_error, r.name, r.def, COALESCE(r.attempts, 0), COALESCE(r.batches, 0),
                        (SELECT MIN(s.sink) FROM run_sinks s WHERE s.path = c.path)
                 FROM sink_cursor c LEFT JOIN sink_remote r ON r.path = c.path ORDER BY c.path",
            )
            .map_err(db)?;
        let rows = st
            .query_map(params![], |r| {
                let path: String = r.get(0)?;
                let seq: i64 = r.get(1)?;
                let remote_name: Option<String> = r.get(3)?;
                let def: Option<String> = r.get(4)?;
                let kind = def
                    .and_then(|d| serde_json::from_str::<SinkDef>(&d).ok())
                    .map(|d| d.kind().to_string())
                    .unwrap_or_else(|| "file".into());
                let name = remote_name
                    .or(r.get::<Option<String>>(7)?)
                    .unwrap_or_default();
                Ok(SinkStatus {
                    name,
                    kind,
                    target: path,
                    delivered_seq: seq,
                    lag: (head - seq).max(0),
                    last_error: r.get(2)?,
                    attempts: r.get(5)?,
                    batches: r.get(6)?,
                })
            })
            .map_err(db)?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(rows)
    })
}

/// Escapes a value for an RFC 5424 structured-data parameter (`"`, `\` and `]`).
pub(super) fn sd_escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for ch in v.chars() {
        if matches!(ch, '"' | '\\' | ']') {
            s.push('\\');
        }
        s.push(ch);
    }
    s
}
