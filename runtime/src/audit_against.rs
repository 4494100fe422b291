//! `pbc audit verify --against SINK`: the sink's copy of the audit trail read back and
//! compared with the local log, entry by entry.
//!
//! A local log edited and then re-chained (every hash after the edit recomputed, the state
//! store's hashes rewritten to match) passes `pbc audit verify` on its own; it cannot also
//! rewrite what was already delivered. Each copied line is compared with the local line of
//! the same entry number: the first that differs is named. The chain heads each batch
//! carried (the hash of the log's entry just before and just after it) are looked up in the
//! local log too, which also catches an edit to an entry of another run (one the sink never
//! received). The sink's own lines are checked against their hashes, so a sink edited on its
//! side is reported as such.

use crate::audit::{AuditEntry, GENESIS, seal};
use crate::db::{OptionalExtension, params};
use crate::delivery::Settings;
use crate::store::Store;
use crate::{Error, Result};
use pbc_compiler::config::SinkDef;
use std::collections::BTreeMap;

/// What the comparison found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Comparison {
    pub sink: String,
    pub kind: String,
    /// Entries the sink holds (duplicates counted once).
    pub entries: usize,
    /// Batches (objects) read back, for sinks that store them.
    pub batches: usize,
    /// The first entry whose local line differs from the sink's copy (or is missing).
    pub first_difference: Option<u64>,
    /// Every problem, the first difference first.
    pub problems: Vec<String>,
}

impl Comparison {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The copy a sink holds: its lines, and the chain heads its batches carried.
struct Copy {
    text: String,
    heads: Vec<(String, String)>,
    batches: usize,
}

fn db(e: crate::db::DbError) -> Error {
    Error::Store(e.to_string())
}

/// The definition of sink `name` as runs froze it (the newest), with its delivery settings.
fn sink_def(store: &Store, name: &str) -> Result<(SinkDef, Settings)> {
    let remote: Option<(String, String)> = store.read(|c| {
        c.query_row(
            "SELECT def, settings FROM sink_remote WHERE name = ?1 ORDER BY rowid DESC LIMIT 1",
            params![name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db)
    })?;
    if let Some((def, settings)) = remote {
        let def =
            serde_json::from_str(&def).map_err(|e| Error::Store(format!("sink `{name}`: {e}")))?;
        return Ok((def, serde_json::from_str(&settings).unwrap_or_default()));
    }
    let file: Option<String> = store.read(|c| {
        c.query_row(
            "SELECT path FROM run_sinks WHERE sink = ?1 AND path NOT IN (SELECT path FROM sink_remote) ORDER BY rowid DESC LIMIT 1",
            params![name],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)
    })?;
    match file {
        Some(p) => Ok((SinkDef::File(p.into()), Settings::default())),
        None => Err(Error::Usage(format!(
            "no run in this state store wrote to an audit sink named `{name}` (`pbc audit sinks` lists them)"
        ))),
    }
}

fn read_copy(name: &str, def: &SinkDef, settings: &Settings) -> Result<Copy> {
    match def {
        SinkDef::File(p) => {
            let text = crate::files::open_regular(p, "the audit sink").and_then(|mut f| {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut f, &mut s)
                    .map_err(|e| Error::Io(format!("{}: {e}", p.display())))?;
                Ok(s)
            })?;
            Ok(Copy {
                text,
                heads: Vec::new(),
                batches: 0,
            })
        }
        SinkDef::S3(s) => {
            let objects = crate::delivery::s3::read_back(s, settings)
                .map_err(|e| Error::Io(format!("audit sink `{name}`: {e}")))?;
            let mut text = String::new();
            let mut heads = Vec::new();
            for o in &objects {
                text.push_str(&o.text);
                if !o.text.ends_with('\n') && !o.text.is_empty() {
                    text.push('\n');
                }
                for h in [&o.chain_before, &o.chain_after].into_iter().flatten() {
                    heads.push((o.key.clone(), h.clone()));
                }
            }
            Ok(Copy {
                text,
                heads,
                batches: objects.len(),
            })
        }
        other => Err(Error::Usage(format!(
            "audit sink `{name}` is a `{}` sink, which pbc cannot read back; `--against` reads `file` and `s3` sinks",
            other.kind()
        ))),
    }
}

/// The runs of this state store that wrote to sink `name`.
fn runs_of(store: &Store, name: &str) -> Result<std::collections::BTreeSet<String>> {
    store.read(|c| {
        let mut st = c
            .prepare("SELECT run FROM run_sinks WHERE sink = ?1")
            .map_err(db)?;
        st.query_map(params![name], |r| r.get::<String>(0))
            .map_err(db)?
            .collect::<std::result::Result<_, _>>()
            .map_err(db)
    })
}

/// Keeps what this state store's runs wrote: a bucket prefix or a file may be shared by
/// several installations, whose entries are not this log's.
fn ours(copy: Copy, runs: &std::collections::BTreeSet<String>) -> Copy {
    let mut text = String::new();
    for l in copy.text.lines() {
        let run = serde_json::from_str::<AuditEntry>(l)
            .ok()
            .and_then(|e| e.run);
        if run.is_none_or(|r| runs.contains(&r)) {
            text.push_str(l);
            text.push('\n');
        }
    }
    let heads = copy
        .heads
        .into_iter()
        .filter(|(key, _)| runs.iter().any(|r| key.contains(&format!("/{r}/"))))
        .collect();
    Copy {
        text,
        heads,
        batches: copy.batches,
    }
}

/// Compares sink `name`'s copy with the local log.
pub(crate) fn against(store: &Store, name: &str) -> Result<Comparison> {
    let (def, settings) = sink_def(store, name)?;
    let copy = ours(read_copy(name, &def, &settings)?, &runs_of(store, name)?);
    let local_text = store.log_text(u64::MAX)?;
    Ok(compare(name, def.kind(), &copy, &local_text))
}

fn compare(name: &str, kind: &str, copy: &Copy, local_text: &str) -> Comparison {
    let mut problems: Vec<(u64, String)> = Vec::new();
    let mut local: BTreeMap<u64, &str> = BTreeMap::new();
    let mut local_hashes: BTreeMap<&str, u64> = BTreeMap::new();
    local_hashes.insert(GENESIS, 0);
    for l in local_text.lines() {
        if let Ok(e) = serde_json::from_str::<AuditEntry>(l) {
            local.entry(e.seq).or_insert(l);
            if let Some(h) = l.rsplit("\"hash\":\"").next().and_then(|r| r.get(..64)) {
                local_hashes.insert(h, e.seq);
            }
        }
    }
    let mut remote: BTreeMap<u64, &str> = BTreeMap::new();
    for (i, l) in copy.text.lines().enumerate() {
        let Ok(e) = serde_json::from_str::<AuditEntry>(l) else {
            problems.push((
                0,
                format!("the sink's line {} is not an audit entry", i + 1),
            ));
            continue;
        };
        let (sealed, hash) = seal(&e);
        if sealed != l || hash != e.hash {
            problems.push((
                e.seq,
                format!(
                    "the sink's copy of entry #{} does not match its own hash: it was edited in the sink",
                    e.seq
                ),
            ));
            continue;
        }
        match remote.get(&e.seq) {
            Some(prev) if *prev != l => problems.push((
                e.seq,
                format!("the sink holds two different copies of entry #{}", e.seq),
            )),
            _ => {
                remote.insert(e.seq, l);
            }
        }
    }
    for (seq, line) in &remote {
        match local.get(seq) {
            None => problems.push((
                *seq,
                format!(
                    "entry #{seq} is in the sink but not in the local log: the local log was cut or entries were removed"
                ),
            )),
            Some(l) if l != line => {
                let field = |s: &str| {
                    serde_json::from_str::<AuditEntry>(s)
                        .map(|e| (e.event, e.hash))
                        .unwrap_or_default()
                };
                let (ev, lh) = field(l);
                let (_, rh) = field(line);
                problems.push((
                    *seq,
                    format!(
                        "entry #{seq} ({ev}) differs from the sink's copy (local hash {}…, sink hash {}…): the local log was edited and re-chained from entry #{seq} on",
                        &lh.get(..12).unwrap_or(""),
                        &rh.get(..12).unwrap_or("")
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    for (batch, head) in &copy.heads {
        if !local_hashes.contains_key(head.as_str()) {
            problems.push((
                u64::MAX,
                format!(
                    "batch {batch} recorded the chain head {}…, which no entry of the local log has: the log before it was rewritten",
                    head.get(..12).unwrap_or("")
                ),
            ));
        }
    }
    problems.sort_by_key(|(s, _)| *s);
    let first_difference = problems
        .iter()
        .map(|(s, _)| *s)
        .find(|s| *s != 0 && *s != u64::MAX);
    Comparison {
        sink: name.to_string(),
        kind: kind.to_string(),
        entries: remote.len(),
        batches: copy.batches,
        first_difference,
        problems: problems.into_iter().map(|(_, p)| p).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn log(n: u64, edit: Option<u64>) -> String {
        let mut prev = GENESIS.to_string();
        let mut text = String::new();
        for seq in 1..=n {
            let v = if Some(seq) == edit { 99 } else { seq };
            let (line, hash) = seal(&AuditEntry {
                seq,
                time: "2026-01-01T00:00:00.000Z".into(),
                run: Some("r-1".into()),
                stage: None,
                event: "e".into(),
                actor: "pbc".into(),
                compliance: vec![],
                details: json!({"n": v}),
                prev: prev.clone(),
                hash: String::new(),
            });
            text.push_str(&line);
            text.push('\n');
            prev = hash;
        }
        text
    }

    #[test]
    fn a_rechained_edit_is_named_at_its_first_entry() {
        let sink = log(5, None);
        let copy = Copy {
            text: sink.clone(),
            heads: Vec::new(),
            batches: 1,
        };
        assert!(compare("s", "file", &copy, &sink).ok());
        let edited = log(5, Some(3));
        let c = compare("s", "file", &copy, &edited);
        assert_eq!(c.first_difference, Some(3));
        assert!(c.problems[0].starts_with("entry #3 (e) differs"), "{c:?}");
        let cut: String = sink.lines().take(2).map(|l| format!("{l}\n")).collect();
        let c = compare("s", "file", &copy, &cut);
        assert_eq!(c.first_difference, Some(3));
        let forged = sink.replace("{\"n\":2}", "{\"n\":7}");
        let c = compare(
            "s",
            "file",
            &Copy {
                text: forged,
                heads: Vec::new(),
                batches: 1,
            },
            &sink,
        );
        assert!(c.problems[0].contains("edited in the sink"), "{c:?}");
    }
}
