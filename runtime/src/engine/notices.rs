//! Notifications and the commit that queues them: a state change is committed with its
//! audit entries and, in the same transaction, the notifications it causes are written into
//! the outbox ([`crate::delivery`]); a failed commit drops them. Delivery happens later
//! ([`Runtime::deliver`], at the end of each command).

use super::{Live, Runtime};
use crate::Result;
use crate::load::RuntimeConfig;
use crate::store::Tx;
use serde_json::Value;

/// A notification asked for by a state change, with the configuration of its run.
pub(super) struct Notice {
    notice: crate::delivery::Notice,
    config: RuntimeConfig,
}

impl Runtime {
    /// Commits one state change with its audit entries and the notifications queued for it
    /// (written into the outbox in the same transaction).
    pub(super) fn commit<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let notices = std::mem::take(&mut self.notices);
        let now = self.now();
        self.store.tx(|tx| {
            let v = f(tx)?;
            for n in &notices {
                crate::delivery::enqueue(tx, &n.notice, &n.config, now)?;
            }
            crate::delivery::resolve_decided(tx, now)?;
            Ok(v)
        })
    }

    /// Queues a notification of `event` to `channels` for the next commit.
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
        let mut details = serde_json::Map::new();
        if let Value::Object(x) = extra {
            for (k, v) in x {
                details.insert(k, live.redactor.value(&v));
            }
        }
        let pb = &live.c.playbook;
        let risk = match stage.and_then(|s| pb.stage(s)) {
            Some(s) => s.risk(&pb.spec),
            None => pb.spec.risk(),
        };
        let compliance = self.entry(live, stage, "", "", Value::Null).compliance;
        self.notices.push(Notice {
            notice: crate::delivery::Notice {
                run: live.run.id.clone(),
                playbook: live.run.playbook.clone(),
                stage: stage.map(String::from),
                event: event.to_string(),
                channels,
                message: live.redactor.text(message),
                details,
                risk: risk.as_str().to_string(),
                compliance,
            },
            config: live.c.frozen.config.clone(),
        });
    }
}
