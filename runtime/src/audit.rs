//! The audit log: JSON Lines, each entry hash-chained to the one before.
//!
//! An entry is one JSON object, its fields in this order:
//! `{"seq", "time", "run", "stage", "event", "actor", "compliance", "details", "prev", "hash"}`.
//! `hash` is the SHA-256 (hex) of the line's bytes up to `,"hash"` with a closing `}`, that
//! is, of the entry without its hash; `prev` is the previous entry's hash (64 zeros for the
//! first). Anyone can check an entry with standard tools:
//! `sed 's/,"hash":"[0-9a-f]*"}$/}/' | sha256sum`.
//!
//! The state store records every entry's hash ([`crate::store`]), written in the same
//! transaction as the state change it describes; the file catches up right after. So
//! `verify` catches an edited, removed, reordered or inserted line, a cut tail and lines
//! appended behind pbc's back, and names the first bad one.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    pub run: Option<String>,
    pub stage: Option<String>,
    /// `run-started`, `stage-started`, `stage-passed`, `guardrail-triggered`,
    /// `approval-requested`, `approval-granted`, `approval-rejected`, …
    pub event: String,
    /// Who: the requester, an approver, or `pbc` for the runtime's own decisions.
    pub actor: String,
    /// The playbook's control tags plus the stage's.
    pub compliance: Vec<String>,
    pub details: Value,
    pub prev: String,
    #[serde(default)]
    pub hash: String,
}

/// SHA-256 in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in d.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The entry's line (without newline) and its hash. `e.hash` is ignored.
pub fn seal(e: &AuditEntry) -> (String, String) {
    let body = serde_json::json!({
        "seq": e.seq,
        "time": e.time,
        "run": e.run,
        "stage": e.stage,
        "event": e.event,
        "actor": e.actor,
        "compliance": e.compliance,
        "details": e.details,
        "prev": e.prev,
    });
    let body = serde_json::to_string(&body).unwrap_or_default();
    let hash = sha256_hex(body.as_bytes());
    let line = format!(
        "{},\"hash\":\"{hash}\"}}",
        body.strip_suffix('}').unwrap_or(&body)
    );
    (line, hash)
}

/// Splits a line into the bytes its hash covers and the declared hash.
fn unseal(line: &str) -> Option<(String, &str)> {
    const SUFFIX_LEN: usize = ",\"hash\":\"".len() + 64 + "\"}".len();
    let cut = line.len().checked_sub(SUFFIX_LEN)?;
    let suffix = line.get(cut..)?;
    let hash = suffix.strip_prefix(",\"hash\":\"")?.strip_suffix("\"}")?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((format!("{}}}", line.get(..cut)?), hash))
}

/// The first problem `verify` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the log (one past the end for a cut tail).
    pub line: usize,
    /// The entry number that belongs there.
    pub seq: u64,
    pub message: String,
}

/// The result of verifying a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// Lines read.
    pub entries: usize,
    /// Entries the state store recorded (`None` when verified without a store).
    pub recorded: Option<usize>,
    pub problem: Option<Problem>,
    /// Where the state store disagrees with an intact chain (a decision, an approval flag or
    /// a run status the chain does not record); only when verified with the store.
    pub mismatches: Vec<String>,
    /// Entries the state store recorded that are not in the file yet (it could not be
    /// written); they are appended by the next command that can write it.
    pub waiting: usize,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.problem.is_none() && self.mismatches.is_empty()
    }
}

/// Verifies log text against the hashes the state store recorded (`recorded[i]` is entry
/// `i + 1`'s hash), or, without a store, the chain alone.
pub fn verify(text: &str, recorded: Option<&[String]>) -> Verification {
    let mut r = text.as_bytes();
    verify_reader(&mut r, recorded).unwrap_or_else(|e| Verification {
        entries: 0,
        recorded: recorded.map(<[String]>::len),
        problem: Some(Problem {
            line: 1,
            seq: 1,
            message: e.to_string(),
        }),
        mismatches: Vec::new(),
        waiting: 0,
    })
}

/// [`verify`] over a reader, line by line: the log is never held whole, and a line longer
/// than [`crate::files::MAX_AUDIT_LINE_BYTES`] is a problem (no entry pbc writes is that long).
pub fn verify_reader(
    r: &mut impl std::io::BufRead,
    recorded: Option<&[String]>,
) -> std::io::Result<Verification> {
    use crate::files::{LineRead, MAX_AUDIT_LINE_BYTES, read_line_bounded};
    let mut prev = GENESIS.to_string();
    let mut n = 0usize;
    let mut buf = Vec::new();
    let bad = |n: usize, line: usize, message: String| Verification {
        entries: n,
        recorded: recorded.map(<[String]>::len),
        problem: Some(Problem {
            line,
            seq: line as u64,
            message,
        }),
        mismatches: Vec::new(),
        waiting: 0,
    };
    while let Some(how) = read_line_bounded(r, &mut buf, MAX_AUDIT_LINE_BYTES)? {
        n += 1;
        let ln = n;
        let expect = ln as u64;
        match how {
            LineRead::Complete => {}
            LineRead::Unterminated => {
                return Ok(bad(
                    n,
                    ln,
                    format!(
                        "line {ln} is incomplete (no newline): the log was cut inside an entry"
                    ),
                ));
            }
            LineRead::TooLong => {
                return Ok(bad(
                    n,
                    ln,
                    format!(
                        "line {ln} is longer than {MAX_AUDIT_LINE_BYTES} bytes: it is not an audit entry pbc wrote"
                    ),
                ));
            }
        }
        let Ok(line) = std::str::from_utf8(&buf) else {
            return Ok(bad(
                n,
                ln,
                format!("line {ln} is not valid UTF-8: it was edited or inserted"),
            ));
        };
        let Some((body, declared)) = unseal(line) else {
            return Ok(bad(
                n,
                ln,
                format!(
                    "line {ln} is not an audit entry (no trailing \"hash\" field): it was edited or inserted"
                ),
            ));
        };
        let actual = sha256_hex(body.as_bytes());
        if actual != declared {
            return Ok(bad(
                n,
                ln,
                format!("entry at line {ln} was edited: its hash does not match its content"),
            ));
        }
        let Ok(v) = serde_json::from_str::<Value>(&body) else {
            return Ok(bad(n, ln, format!("line {ln} is not valid JSON")));
        };
        let seq = v.get("seq").and_then(Value::as_u64).unwrap_or(0);
        if let Some(rec) = recorded {
            match rec.get(ln - 1) {
                Some(h) if *h == actual && seq == expect => {}
                Some(_) => {
                    let why = match rec.iter().position(|x| *x == actual) {
                        Some(k) => format!(
                            "it holds entry #{} where entry #{expect} belongs: entries were removed or reordered before it",
                            k + 1
                        ),
                        None => "the state recorded a different entry here: it was inserted or rewritten".to_string(),
                    };
                    return Ok(bad(
                        n,
                        ln,
                        format!("entry at line {ln} is not entry #{expect}: {why}"),
                    ));
                }
                None => {
                    return Ok(bad(
                        n,
                        ln,
                        format!(
                            "entry at line {ln} was never recorded by the state (which holds {} entries): it was appended behind pbc's back",
                            rec.len()
                        ),
                    ));
                }
            }
        }
        if seq != expect {
            return Ok(bad(
                n,
                ln,
                format!(
                    "entry at line {ln} is #{seq}, expected #{expect}: entries were removed, reordered or inserted before it"
                ),
            ));
        }
        if v.get("prev").and_then(Value::as_str) != Some(prev.as_str()) {
            return Ok(bad(
                n,
                ln,
                format!("entry at line {ln} does not chain to the entry before it"),
            ));
        }
        prev = actual;
    }
    if let Some(rec) = recorded
        && rec.len() > n
    {
        return Ok(Verification {
            entries: n,
            recorded: Some(rec.len()),
            problem: Some(Problem {
                line: n + 1,
                seq: n as u64 + 1,
                message: format!(
                    "the log ends after entry #{n} but the state recorded {} entries: the tail from entry #{} on was cut",
                    rec.len(),
                    n + 1
                ),
            }),
            mismatches: Vec::new(),
            waiting: 0,
        });
    }
    Ok(Verification {
        entries: n,
        recorded: recorded.map(<[String]>::len),
        problem: None,
        mismatches: Vec::new(),
        waiting: 0,
    })
}

/// The entries of a log file, read line by line (lines that do not parse, or are longer
/// than [`crate::files::MAX_AUDIT_LINE_BYTES`], are skipped).
pub fn read_entries(r: &mut impl std::io::BufRead) -> std::io::Result<Vec<AuditEntry>> {
    use crate::files::{LineRead, MAX_AUDIT_LINE_BYTES, read_line_bounded};
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while let Some(how) = read_line_bounded(r, &mut buf, MAX_AUDIT_LINE_BYTES)? {
        if how == LineRead::TooLong {
            // Skip the rest of the line.
            let mut rest = Vec::new();
            while read_line_bounded(r, &mut rest, MAX_AUDIT_LINE_BYTES)? == Some(LineRead::TooLong)
            {
            }
            continue;
        }
        if let Ok(e) = serde_json::from_slice::<AuditEntry>(&buf) {
            out.push(e);
        }
    }
    Ok(out)
}

/// Parses the entries of a log (lines that do not parse are skipped).
pub fn parse_entries(text: &str) -> Vec<AuditEntry> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<AuditEntry>(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn log(n: u64) -> (String, Vec<String>) {
        let mut prev = GENESIS.to_string();
        let mut text = String::new();
        let mut hashes = Vec::new();
        for seq in 1..=n {
            let (line, hash) = seal(&AuditEntry {
                seq,
                time: "2026-01-01T00:00:00.000Z".into(),
                run: Some("r-1".into()),
                stage: None,
                event: "e".into(),
                actor: "pbc".into(),
                compliance: vec![],
                details: json!({"n": seq}),
                prev: prev.clone(),
                hash: String::new(),
            });
            text.push_str(&line);
            text.push('\n');
            prev = hash.clone();
            hashes.push(hash);
        }
        (text, hashes)
    }

    #[test]
    fn intact_and_chain_only() {
        let (t, h) = log(4);
        assert!(verify(&t, Some(&h)).ok());
        assert!(verify(&t, None).ok());
        assert_eq!(parse_entries(&t).len(), 4);
        let e = &parse_entries(&t)[1];
        assert_eq!(e.prev, h[0]);
    }

    #[test]
    fn each_tampering_is_named() {
        let (t, h) = log(5);
        let lines: Vec<&str> = t.lines().collect();
        let join = |v: Vec<&str>| v.join("\n") + "\n";
        let edited = t.replace("{\"n\":3}", "{\"n\":4}");
        let p = verify(&edited, Some(&h)).problem.unwrap();
        assert_eq!(p.line, 3, "{}", p.message);
        let removed = join(vec![lines[0], lines[1], lines[3], lines[4]]);
        assert_eq!(verify(&removed, Some(&h)).problem.unwrap().line, 3);
        assert_eq!(verify(&removed, None).problem.unwrap().line, 3);
        let reordered = join(vec![lines[0], lines[2], lines[1], lines[3], lines[4]]);
        assert_eq!(verify(&reordered, Some(&h)).problem.unwrap().line, 2);
        let (forged, _) = log(2);
        let inserted = join(vec![
            lines[0],
            lines[1],
            forged.lines().nth(1).unwrap(),
            lines[2],
        ]);
        assert_eq!(verify(&inserted, Some(&h)).problem.unwrap().line, 3);
        let cut = join(vec![lines[0], lines[1], lines[2]]);
        let p = verify(&cut, Some(&h)).problem.unwrap();
        assert_eq!((p.line, p.seq), (4, 4));
        assert!(verify(&cut, None).ok());
    }
}
