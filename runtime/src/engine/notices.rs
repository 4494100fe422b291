//! Notifications and the commit that sends them: a state change is committed with its audit
//! entries, then the notices queued for it are sent to their channels (and each sending is
//! audited); a failed commit drops them.

use super::{Live, Runtime};
use crate::Result;
use crate::audit::AuditEntry;
use crate::clock::rfc3339;
use crate::store::Tx;
use pbc_compiler::config::ChannelDef;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub(super) struct Notice {
    run: String,
    stage: Option<String>,
    event: String,
    channels: Vec<String>,
    payload: Value,
    defs: BTreeMap<String, ChannelDef>,
    /// `tls.ca-file` of the run's configuration.
    ca_file: Option<std::path::PathBuf>,
    compliance: Vec<String>,
}

impl Runtime {
    /// Commits one state change with its audit entries, then sends the notifications queued
    /// for it (none if it failed).
    pub(super) fn commit<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        match self.store.tx(f) {
            Ok(v) => {
                self.send_notices();
                Ok(v)
            }
            Err(e) => {
                self.notices.clear();
                Err(e)
            }
        }
    }

    pub(super) fn queue_notice(
        &mut self,
        live: &Live,
        stage: Option<&str>,
        event: &str,
        channels: Vec<String>,
        message: &str,
        extra: Value,
    ) {
        if channels.is_empty() {
            return;
        }
        let mut payload = json!({
            "event": event,
            "run": live.run.id,
            "playbook": live.run.playbook,
            "stage": stage,
            "message": live.redactor.text(message),
            "time": rfc3339(self.now()),
        });
        if let (Some(o), Value::Object(x)) = (payload.as_object_mut(), extra) {
            for (k, v) in x {
                o.insert(k, live.redactor.value(&v));
            }
        }
        let compliance = self.entry(live, stage, "", "", Value::Null).compliance;
        self.notices.push(Notice {
            run: live.run.id.clone(),
            stage: stage.map(String::from),
            event: event.to_string(),
            channels,
            payload,
            defs: live.c.frozen.config.notifications.clone(),
            ca_file: live.c.frozen.config.tls_ca_file.clone(),
            compliance,
        });
    }

    fn send_notices(&mut self) {
        let notices = std::mem::take(&mut self.notices);
        for n in notices {
            for ch in &n.channels {
                let r = crate::notify::send(ch, n.defs.get(ch), &n.payload, n.ca_file.as_deref());
                let (event, details) = match &r {
                    Ok(()) => ("notification-sent", json!({"channel": ch, "on": n.event})),
                    Err(e) => (
                        "notification-failed",
                        json!({"channel": ch, "on": n.event, "error": e}),
                    ),
                };
                let e = AuditEntry {
                    seq: 0,
                    time: rfc3339(self.now()),
                    run: Some(n.run.clone()),
                    stage: n.stage.clone(),
                    event: event.into(),
                    actor: "pbc".into(),
                    compliance: n.compliance.clone(),
                    details,
                    prev: String::new(),
                    hash: String::new(),
                };
                if let Err(err) = self.store.tx(|tx| tx.audit(e).map(|_| ())) {
                    eprintln!("warning: could not record a notification: {err}");
                }
            }
        }
    }
}
