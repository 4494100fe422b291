//! The state store: its tables in one SQLite file, `STATE/state.db`, or in a PostgreSQL
//! database a cluster shares ([`Backend`], [`crate::db`]), written in transactions.
//!
//! Tables (see `docs/runtime.md`): `runs`, `stages`, `approvals`, `rejections`,
//! `rate_events`, `action_history` (each executed action stage's params, for policies'
//! history aggregates), `policy_decisions` (every policy decision, for reports and latency
//! figures), `rollback_steps` (each undo step started, so that none runs twice),
//! `outbox` (notifications waiting for delivery: [`crate::delivery`]), `run_sinks` and
//! `sink_cursor` (the audit sinks a run writes to, and how far each file is written),
//! `audit` (every audit entry's hash; the line itself until it is in the file, or always
//! on PostgreSQL),
//! `schedule_fires` (the schedule fires `pbc serve` started, one run each) and `meta`
//! (schema version, audit file length).
//!
//! A state change and its audit entry commit together. On SQLite the entry goes to
//! `STATE/audit.jsonl` right after ([`Store::flush_audit`]); after a crash the next command
//! writes what is missing, so no entry is lost and none is written twice. On PostgreSQL the
//! `audit` table is the log ([`Store::log_in_store`]): pods that share the database share no
//! directory, so every entry keeps its line there and the chain is one across processes.
//! [`Store::log_reader`] reads the log, wherever it is.

use crate::audit::{self, AuditEntry, GENESIS};
use crate::db::{Conn, DbError, OptionalExtension, TxGuard, params};
use crate::{Error, Result};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY,
  playbook TEXT NOT NULL,
  status TEXT NOT NULL,
  requester TEXT NOT NULL,
  input TEXT NOT NULL,
  frozen TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  stop_requested TEXT,
  message TEXT,
  rollback_done INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS stages (
  run TEXT NOT NULL,
  name TEXT NOT NULL,
  idx INTEGER NOT NULL,
  status TEXT NOT NULL,
  output TEXT,
  guardrails TEXT NOT NULL DEFAULT '[]',
  findings TEXT NOT NULL DEFAULT '[]',
  error TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  approval_id TEXT,
  risk_approved INTEGER NOT NULL DEFAULT 0,
  gate_approved INTEGER NOT NULL DEFAULT 0,
  started_at INTEGER,
  finished_at INTEGER,
  PRIMARY KEY (run, name)
);
CREATE TABLE IF NOT EXISTS approvals (
  id TEXT PRIMARY KEY,
  run TEXT NOT NULL,
  stage TEXT,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  approvers TEXT NOT NULL,
  escalation TEXT NOT NULL DEFAULT '[]',
  level INTEGER NOT NULL DEFAULT 0,
  message TEXT NOT NULL,
  opened_at INTEGER NOT NULL,
  deadline INTEGER,
  decided_by TEXT,
  decided_role TEXT,
  decided_at INTEGER,
  reason TEXT
);
CREATE TABLE IF NOT EXISTS rejections (
  playbook TEXT NOT NULL,
  run TEXT NOT NULL,
  stage TEXT,
  by TEXT NOT NULL,
  reason TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rollback_steps (
  run TEXT NOT NULL,
  stage TEXT NOT NULL,
  status TEXT NOT NULL,
  PRIMARY KEY (run, stage)
);
CREATE TABLE IF NOT EXISTS rate_events (action TEXT NOT NULL, run TEXT NOT NULL, stage TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS action_history (
  run TEXT NOT NULL,
  stage TEXT NOT NULL,
  action TEXT NOT NULL,
  at INTEGER NOT NULL,
  params TEXT NOT NULL,
  PRIMARY KEY (run, stage)
);
CREATE INDEX IF NOT EXISTS action_history_at ON action_history(action, at);
CREATE TABLE IF NOT EXISTS policy_decisions (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  run TEXT NOT NULL,
  stage TEXT NOT NULL,
  policy TEXT NOT NULL,
  kind TEXT NOT NULL,
  decision TEXT NOT NULL,
  reasons TEXT NOT NULL,
  elapsed_us INTEGER NOT NULL,
  risk TEXT NOT NULL DEFAULT 'low',
  at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY,
  hash TEXT NOT NULL,
  line TEXT
);
"#;

/// Where the state store's tables live.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// `STATE/state.db` (the embedded default).
    #[default]
    Sqlite,
    /// A PostgreSQL database shared by every process of a cluster: `postgres://…`, the
    /// password from `PBC_STATE_PASSWORD`.
    Postgres(String),
}

impl Backend {
    /// The backend a `state:` setting or `PBC_STATE_URL` names: empty or `sqlite` is the
    /// embedded store, `postgres://` / `postgresql://` a PostgreSQL database.
    pub fn parse(s: &str) -> Result<Backend> {
        let s = s.trim();
        if s.is_empty() || s == "sqlite" {
            return Ok(Backend::Sqlite);
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Backend::Postgres(s.to_string()));
        }
        Err(Error::Usage(
            "the state store must be `sqlite` or a `postgres://` URL".into(),
        ))
    }

    /// `PBC_STATE_URL`, when set and not empty.
    pub fn from_env() -> Result<Option<Backend>> {
        match std::env::var("PBC_STATE_URL") {
            Ok(v) if !v.trim().is_empty() => Backend::parse(&v).map(Some),
            _ => Ok(None),
        }
    }
}

/// The state directory's files.
#[derive(Debug)]
pub struct Store {
    pub dir: PathBuf,
    /// Where the tables are (the processes a run's parallel stages start use the same).
    pub backend: Backend,
    /// The schema version the store had when opened, and has now.
    pub migrated: crate::db::migrate::Migrated,
    conn: Conn,
    /// Whether this process has warned that the audit file was changed outside pbc.
    warned: bool,
}

/// A transaction on the store.
pub struct Tx<'a> {
    tx: TxGuard<'a>,
    /// The audit entries appended, logged once the transaction commits.
    appended: std::cell::RefCell<Vec<Appended>>,
}

/// What the log says of an audit entry: ids, the event and who, never its details (they may
/// hold a run's data).
struct Appended {
    seq: u64,
    run: Option<String>,
    stage: Option<String>,
    event: String,
    actor: String,
}

impl Appended {
    /// A `tracing` event (target `pbc::audit`); nothing unless a subscriber is installed
    /// (`pbc serve` installs one).
    fn log(&self) {
        tracing::info!(
            target: "pbc::audit",
            seq = self.seq,
            run = self.run.as_deref().unwrap_or(""),
            stage = self.stage.as_deref().unwrap_or(""),
            event = %self.event,
            actor = %self.actor,
            "{}",
            self.event
        );
    }
}

fn db(e: DbError) -> Error {
    Error::Store(e.to_string())
}

impl Store {
    /// Opens (creating) `DIR/state.db`.
    pub fn open(dir: &Path) -> Result<Store> {
        Store::open_with(dir, &Backend::Sqlite)
    }

    /// Opens the state directory (creating it) with its tables in `backend`, migrated to
    /// the latest schema ([`crate::db::migrate`]).
    pub fn open_with(dir: &Path, backend: &Backend) -> Result<Store> {
        if dir.exists() && !dir.is_dir() {
            return Err(Error::Usage(format!(
                "{}: the state directory is not a directory",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Usage(format!(
                "{}: cannot create the state directory: {e}",
                dir.display()
            ))
        })?;
        crate::statedir::check_writable(dir)?;
        let conn = match backend {
            Backend::Sqlite => {
                let c =
                    rusqlite::Connection::open(dir.join("state.db")).map_err(|e| db(e.into()))?;
                c.busy_timeout(std::time::Duration::from_secs(30))
                    .map_err(|e| db(e.into()))?;
                c.execute_batch(
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;",
                )
                .map_err(|e| db(e.into()))?;
                Conn::sqlite(c)
            }
            Backend::Postgres(url) => Conn::postgres(url).map_err(db)?,
        };
        let migrated = crate::db::migrate::migrate(&conn).map_err(|e| match e {
            crate::db::migrate::MigrateError::Newer(_) => {
                Error::Usage(format!("{}: {e}", dir.display()))
            }
            crate::db::migrate::MigrateError::Db(e) => db(e),
        })?;
        Ok(Store {
            dir: dir.to_path_buf(),
            backend: backend.clone(),
            migrated,
            conn,
            warned: false,
        })
    }

    /// Which SQL the store speaks.
    pub fn dialect(&self) -> crate::db::Dialect {
        self.conn.dialect()
    }

    /// `STATE/audit.jsonl`.
    pub fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    /// Whether the audit log is the store's `audit` table (PostgreSQL, shared by every
    /// process of a cluster) rather than `STATE/audit.jsonl` (SQLite).
    pub fn log_in_store(&self) -> bool {
        self.conn.dialect() == crate::db::Dialect::Postgres
    }

    /// Where the log is, for messages.
    pub fn log_name(&self) -> String {
        if self.log_in_store() {
            "the state store's audit table".to_string()
        } else {
            self.audit_path().display().to_string()
        }
    }

    /// The audit log from byte `start` (an entry's first byte), at most `max` bytes of it
    /// (one line a entry, each ending in a newline, as in `STATE/audit.jsonl`). On SQLite,
    /// the file; on PostgreSQL, the table's lines in order, `start` counted in the same
    /// bytes (the lines' UTF-8 lengths, each plus its newline).
    pub fn log_reader(&self, start: u64, max: u64) -> Result<Box<dyn std::io::BufRead>> {
        use std::io::{Read, Seek, SeekFrom};
        if !self.log_in_store() {
            let path = self.audit_path();
            if !path.exists() {
                return Ok(Box::new(std::io::empty()));
            }
            let mut f = crate::files::open_regular(&path, "the audit log")?;
            f.seek(SeekFrom::Start(start))
                .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
            return Ok(Box::new(std::io::BufReader::new(f.take(max))));
        }
        // The running end of each line, computed by the server: only the lines after
        // `start` cross the connection, and no more than `max` bytes of them are kept.
        let mut st = self
            .conn
            .prepare(
                "SELECT line, e FROM (SELECT seq, line, SUM(octet_length(line) + 1) OVER (ORDER BY seq) AS e FROM audit) s WHERE e > ?1 ORDER BY seq",
            )
            .map_err(db)?;
        let rows: Vec<(Option<String>, i64)> = st
            .query_map(params![start as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db)?
            .collect::<std::result::Result<_, _>>()
            .map_err(db)?;
        let mut out = Vec::new();
        for (line, _) in rows {
            let Some(line) = line else {
                return Err(Error::Store(
                    "an audit entry in the state store has no line (written to a local audit.jsonl by an earlier pbc); the log cannot be read from the store".to_string(),
                ));
            };
            if (out.len() + line.len() + 1) as u64 > max {
                break;
            }
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        Ok(Box::new(std::io::Cursor::new(out)))
    }

    /// The whole audit log as text (bounded: `max` bytes).
    pub fn log_text(&self, max: u64) -> Result<String> {
        let mut s = String::new();
        self.log_reader(0, max)?
            .read_to_string(&mut s)
            .map_err(|e| Error::Io(format!("{}: {e}", self.log_name())))?;
        Ok(s)
    }

    /// Runs `f` in an immediate (write-locked) transaction, then writes pending audit entries.
    /// The change is committed even when the audit file was changed outside pbc: its entries
    /// then stay in the store (warned about once; `pbc audit verify` reports the tampering).
    pub fn tx<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let out = {
            let t = self.conn.begin(true).map_err(db)?;
            let tx = Tx {
                tx: t,
                appended: Default::default(),
            };
            let out = f(&tx)?;
            let appended = tx.appended.take();
            tx.tx.commit().map_err(db)?;
            for a in &appended {
                a.log();
            }
            out
        };
        // The change is committed: whatever happens to the file now is a warning, never the
        // command's failure. Its entries wait in the store until a command can write them.
        if let Err(e) = self.flush_audit() {
            self.warn_unwritten(&e);
        }
        Ok(out)
    }

    /// Warns (once per process) that audit entries stay in the store: the file was changed
    /// outside pbc, or it cannot be written.
    pub fn warn_unwritten(&mut self, e: &Error) {
        if self.warned {
            return;
        }
        self.warned = true;
        match e {
            Error::Tampered(m) => eprintln!("warning: {m}"),
            e => eprintln!(
                "warning: the change is recorded in the state store, but its audit entries could not be appended to {}: {e}; they wait in the state store, and the next pbc command that can write the file appends them (`pbc audit verify` counts them meanwhile)",
                self.audit_path().display()
            ),
        }
    }

    /// A read-only view (no audit writes).
    pub fn read<T>(&self, f: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        f(&self.conn)
    }

    /// Writes audit entries committed to the store but not yet in the file. Refuses (leaving
    /// them in the store) when the file is not the length pbc last wrote.
    pub fn flush_audit(&mut self) -> Result<()> {
        if self.log_in_store() {
            return Ok(()); // the table is the log
        }
        let path = self.audit_path();
        let t = self.conn.begin(true).map_err(db)?;
        let pending: Vec<(i64, String)> = {
            let mut st = t
                .prepare("SELECT seq, line FROM audit WHERE line IS NOT NULL ORDER BY seq")
                .map_err(db)?;
            st.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(db)?
                .collect::<std::result::Result<_, _>>()
                .map_err(db)?
        };
        if pending.is_empty() {
            return Ok(());
        }
        let mut expected: u64 = meta_get(&t, "audit_bytes")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
        for (seq, line) in pending {
            let len = file
                .metadata()
                .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?
                .len();
            let with_nl = format!("{line}\n");
            if len == expected + with_nl.len() as u64 && file_ends_with(&path, with_nl.as_bytes()) {
                // Written before a crash, not yet marked.
            } else if len == expected {
                if let Err(e) = file
                    .write_all(with_nl.as_bytes())
                    .and_then(|_| file.sync_data())
                {
                    // Disk full, an I/O error: cut what was half-written, keep the entries
                    // written so far marked, and leave the rest waiting in the store.
                    let _ = file.set_len(expected);
                    t.commit().map_err(db)?;
                    return Err(Error::Io(format!("{}: {e}", path.display())));
                }
            } else {
                return Err(Error::Tampered(format!(
                    "{} is {len} bytes, but pbc last wrote {expected}: it was changed outside pbc, so audit entry #{seq} stays in the state store; run `pbc audit verify`",
                    path.display()
                )));
            }
            expected += with_nl.len() as u64;
            t.execute("UPDATE audit SET line = NULL WHERE seq = ?1", params![seq])
                .map_err(db)?;
            meta_set(&t, "audit_bytes", &expected.to_string())?;
        }
        t.commit().map_err(db)?;
        Ok(())
    }

    /// Every recorded audit hash, in order (entry `i + 1` at `i`), and the number not yet in
    /// the file.
    pub fn audit_hashes(&self) -> Result<(Vec<String>, usize)> {
        let mut st = self
            .conn
            .prepare("SELECT hash, line IS NOT NULL FROM audit ORDER BY seq")
            .map_err(db)?;
        let rows: Vec<(String, bool)> = st
            .query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db)?
            .collect::<std::result::Result<_, _>>()
            .map_err(db)?;
        let pending = rows.iter().filter(|(_, p)| *p).count();
        Ok((rows.into_iter().map(|(h, _)| h).collect(), pending))
    }

    /// One consistent view of the chain's state in the store, read in one snapshot (another
    /// process may append or flush entries meanwhile): every recorded hash in order, the
    /// entries not yet in the file (seq and line), and how many bytes of the file pbc wrote
    /// and marked (the file's first entries, `hashes.len() - pending.len()` of them).
    pub fn audit_snapshot(&self) -> Result<AuditSnapshot> {
        let read = |c: &Conn| -> Result<AuditSnapshot> {
            let mut st = c
                .prepare("SELECT seq, hash, line FROM audit ORDER BY seq")
                .map_err(db)?;
            let rows: Vec<(i64, String, Option<String>)> = st
                .query_map(params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(db)?
                .collect::<std::result::Result<_, _>>()
                .map_err(db)?;
            let bytes = if c.dialect() == crate::db::Dialect::Postgres {
                0 // no file: every line is in the table
            } else {
                meta_get(c, "audit_bytes")?
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            let mut snap = AuditSnapshot {
                hashes: Vec::with_capacity(rows.len()),
                pending: Vec::new(),
                bytes,
            };
            for (seq, hash, line) in rows {
                snap.hashes.push(hash);
                if let Some(l) = line {
                    snap.pending.push((seq.max(0) as u64, l));
                }
            }
            Ok(snap)
        };
        if self.conn.is_autocommit() {
            // A read transaction: both statements see the same snapshot (WAL).
            let t = self.conn.begin(false).map_err(db)?;
            let snap = read(&t)?;
            t.commit().map_err(db)?;
            Ok(snap)
        } else {
            read(&self.conn)
        }
    }

    /// Entries recorded but not yet in the file: seq and line, in order.
    pub fn pending_audit_lines(&self) -> Result<Vec<(u64, String)>> {
        let mut st = self
            .conn
            .prepare("SELECT seq, line FROM audit WHERE line IS NOT NULL ORDER BY seq")
            .map_err(db)?;
        st.query_map(params![], |r| Ok((r.get::<i64>(0)? as u64, r.get(1)?)))
            .map_err(db)?
            .collect::<std::result::Result<_, _>>()
            .map_err(db)
    }

    /// The head: entry count and last hash.
    pub fn audit_head(&self) -> Result<(u64, String)> {
        let r: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db)?;
        Ok(r.map(|(s, h)| (s as u64, h))
            .unwrap_or((0, GENESIS.to_string())))
    }
}

fn file_ends_with(path: &Path, tail: &[u8]) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    if f.seek(SeekFrom::End(-(tail.len() as i64))).is_err() {
        return false;
    }
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).is_ok() && buf == tail
}

fn meta_get(c: &Conn, key: &str) -> Result<Option<String>> {
    c.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
        r.get(0)
    })
    .optional()
    .map_err(db)
}

fn meta_set(c: &Conn, key: &str, value: &str) -> Result<()> {
    c.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map(|_| ())
    .map_err(db)
}

impl Tx<'_> {
    pub fn conn(&self) -> &Conn {
        &self.tx
    }

    pub fn meta_get(&self, key: &str) -> Result<Option<String>> {
        meta_get(&self.tx, key)
    }

    pub fn meta_set(&self, key: &str, value: &str) -> Result<()> {
        meta_set(&self.tx, key, value)
    }

    /// Appends an audit entry (chained to the last recorded one). Returns its seq.
    pub fn audit(&self, e: AuditEntry) -> Result<u64> {
        self.audit_sealed(e).map(|(seq, _)| seq)
    }

    /// Appends an audit entry; returns its seq and hash (the idempotency id of what it
    /// causes, such as a notification).
    pub fn audit_sealed(&self, mut e: AuditEntry) -> Result<(u64, String)> {
        let last: Option<(i64, String)> = self
            .tx
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db)?;
        let (seq, prev) = match last {
            Some((s, h)) => (s as u64 + 1, h),
            None => (1, GENESIS.to_string()),
        };
        e.seq = seq;
        e.prev = prev;
        let (line, hash) = audit::seal(&e);
        self.appended.borrow_mut().push(Appended {
            seq,
            run: e.run.clone(),
            stage: e.stage.clone(),
            event: e.event.clone(),
            actor: e.actor.clone(),
        });
        self.tx
            .execute(
                "INSERT INTO audit(seq, hash, line) VALUES (?1, ?2, ?3)",
                params![seq as i64, hash, line],
            )
            .map_err(db)?;
        if self.tx.conn().dialect() == crate::db::Dialect::Postgres {
            // The table is the log: its length (what audit sinks copy up to) grows with
            // the entry, in the same transaction.
            let bytes: u64 = meta_get(&self.tx, "audit_bytes")?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            meta_set(
                &self.tx,
                "audit_bytes",
                &(bytes + line.len() as u64 + 1).to_string(),
            )?;
        }
        Ok((seq, hash))
    }
}

/// The chain's state in the store at one instant ([`Store::audit_snapshot`]).
#[derive(Clone, Debug, Default)]
pub struct AuditSnapshot {
    pub hashes: Vec<String>,
    pub pending: Vec<(u64, String)>,
    /// Bytes of the audit file pbc wrote and marked.
    pub bytes: u64,
}

/// JSON column helpers.
pub fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

pub fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::Store(format!("corrupt state: {e}")))
}

pub fn opt_json(s: Option<String>) -> Option<Value> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}
