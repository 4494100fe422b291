//! The kill switch: `pbc runs stop RUN` stops a run before its next step (a process
//! executing it kills its running executor); `pbc runs stop --all` stops every unfinished run
//! and engages the latch: while it is engaged no run starts and none resumes, until
//! `pbc runs stop --release`. Engaging and releasing are audited with who. The latch lives in
//! the state store's `meta` table (`kill_switch`: `{"by", "at"}`), so every process sharing
//! the state sees it.

use super::{Runtime, lock_run};
use crate::audit::AuditEntry;
use crate::clock::rfc3339;
use crate::db::{Conn, OptionalExtension, params};
use crate::report::RunStatus;
use crate::store::Tx;
use crate::{Error, Result};
use serde_json::{Value, json};

const KEY: &str = "kill_switch";

/// The latch as `pbc runs --format json` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KillSwitch {
    pub engaged: bool,
    /// Who engaged it.
    pub by: Option<String>,
    /// When (milliseconds since the epoch).
    pub at: Option<i64>,
}

impl KillSwitch {
    /// `{"engaged", "by", "at"}` (`at` in RFC 3339).
    pub fn to_json(&self) -> Value {
        json!({"engaged": self.engaged, "by": self.by, "at": self.at.map(rfc3339)})
    }

    /// Reads the latch: engaged while the key is set (even if its value does not parse:
    /// fail closed).
    pub(crate) fn read(c: &Conn) -> Result<KillSwitch> {
        let v: Option<String> = c
            .query_row("SELECT value FROM meta WHERE key = ?1", params![KEY], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| Error::Store(e.to_string()))?;
        Ok(match v {
            None => KillSwitch::default(),
            Some(text) => {
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                KillSwitch {
                    engaged: true,
                    by: Some(
                        v.get("by")
                            .and_then(Value::as_str)
                            .unwrap_or("unknown")
                            .to_string(),
                    ),
                    at: v.get("at").and_then(Value::as_i64),
                }
            }
        })
    }

    /// The refusal a command meets while the latch is engaged.
    pub(crate) fn refusal(&self, what: &str) -> Error {
        Error::Refused(format!(
            "the kill switch is engaged (by {}{}): {what} is refused until `pbc runs stop --release`",
            self.by.as_deref().unwrap_or("unknown"),
            self.at
                .map(|t| format!(" at {}", rfc3339(t)))
                .unwrap_or_default()
        ))
    }

    /// Refuses `what` in `tx` when the latch is engaged (checked inside the transaction that
    /// starts a run, so a run cannot slip in while `stop --all` engages it).
    pub(crate) fn refuse_if_engaged(tx: &Tx<'_>, what: &str) -> Result<()> {
        let k = KillSwitch::read(tx.conn())?;
        if k.engaged {
            return Err(k.refusal(what));
        }
        Ok(())
    }
}

fn global_entry(now: i64, event: &str, who: &str) -> AuditEntry {
    AuditEntry {
        seq: 0,
        time: rfc3339(now),
        run: None,
        stage: None,
        event: event.into(),
        actor: who.into(),
        compliance: Vec::new(),
        details: json!({"scope": "all"}),
        prev: String::new(),
        hash: String::new(),
    }
}

impl Runtime {
    /// The kill switch's latch.
    pub fn kill_switch(&self) -> Result<KillSwitch> {
        self.store.read(KillSwitch::read)
    }

    /// Refuses `what` (`run`, `resume`) while the latch is engaged.
    pub(crate) fn check_kill_switch(&self, what: &str) -> Result<()> {
        let k = self.kill_switch()?;
        if k.engaged {
            return Err(k.refusal(what));
        }
        Ok(())
    }

    /// Engages the latch (audited `kill-switch-engaged` with who). Returns false when it was
    /// engaged already (then nothing is recorded).
    pub(crate) fn engage_kill_switch(&mut self, who: &str) -> Result<bool> {
        let now = self.now();
        let e = global_entry(now, "kill-switch-engaged", who);
        let value = json!({"by": who, "at": now}).to_string();
        self.commit(|tx| {
            if KillSwitch::read(tx.conn())?.engaged {
                return Ok(false);
            }
            tx.meta_set(KEY, &value)?;
            tx.audit(e)?;
            Ok(true)
        })
    }

    /// `pbc runs stop --release`: releases the latch (audited `kill-switch-released` with
    /// who). Returns who had engaged it, or `None` when it was not engaged.
    pub fn release_kill_switch(&mut self, who: &str) -> Result<Option<String>> {
        let now = self.now();
        let e = global_entry(now, "kill-switch-released", who);
        self.commit(|tx| {
            let k = KillSwitch::read(tx.conn())?;
            if !k.engaged {
                return Ok(None);
            }
            tx.conn()
                .execute("DELETE FROM meta WHERE key = ?1", params![KEY])
                .map_err(|e| Error::Store(e.to_string()))?;
            tx.audit(e)?;
            Ok(k.by)
        })
    }

    /// The kill switch: stops `run` (or every unfinished run) before its next step; a
    /// process executing it kills its running executor. Stopping every run also engages the
    /// latch ([`KillSwitch`]): no run starts or resumes until [`Self::release_kill_switch`].
    pub fn stop(&mut self, run: Option<&str>, who: &str) -> Result<Vec<String>> {
        if run.is_none() {
            // First, so that a run starting meanwhile is either refused or found below.
            self.engage_kill_switch(who)?;
        }
        self.apply_deadlines()?;
        let ids: Vec<String> = match run {
            Some(r) => vec![self.load_run(r)?.id],
            None => self.store.read(|c| {
                let mut st = c
                    .prepare("SELECT id FROM runs WHERE status IN ('running', 'waiting-approval') ORDER BY created_at")
                    .map_err(|e| Error::Store(e.to_string()))?;
                st.query_map(params![], |r| r.get(0))
                    .map_err(|e| Error::Store(e.to_string()))?
                    .collect::<std::result::Result<Vec<String>, _>>()
                    .map_err(|e| Error::Store(e.to_string()))
            })?,
        };
        let mut stopped = Vec::new();
        for id in ids {
            let mut live = self.load_live(&id)?;
            if live.run.status.is_final() {
                continue;
            }
            let now = self.now();
            let e = self.entry(
                &live,
                None,
                "kill-switch",
                who,
                json!({"scope": if run.is_some() { "run" } else { "all" }}),
            );
            let rid = id.clone();
            let who_s = who.to_string();
            self.commit(|tx| {
                tx.conn()
                    .execute(
                        "UPDATE runs SET stop_requested = ?2, updated_at = ?3 WHERE id = ?1",
                        params![rid, who_s, now],
                    )
                    .map_err(|e| Error::Store(e.to_string()))?;
                tx.audit(e)?;
                Ok(())
            })?;
            // Nobody executes it: stop it now. Otherwise its process does, before its next step.
            if let Some(_lock) = lock_run(&self.store.dir, &id)? {
                live.run.stop_requested = Some(who.to_string());
                self.end_run(
                    &mut live,
                    RunStatus::Stopped,
                    &format!("stopped by {who} (kill switch)"),
                )?;
            }
            stopped.push(id);
        }
        Ok(stopped)
    }

    pub(super) fn stop_requested(&self, id: &str) -> bool {
        self.store
            .read(|c| {
                c.query_row(
                    "SELECT stop_requested FROM runs WHERE id = ?1",
                    params![id],
                    |r| r.get::<Option<String>>(0),
                )
                .map_err(|e| Error::Store(e.to_string()))
            })
            .ok()
            .flatten()
            .is_some()
    }
}
