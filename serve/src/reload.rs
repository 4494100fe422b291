//! SIGHUP: the server loads the tree again (the same ROOT and `--env`, the same
//! configuration file) and checks it. With check errors it keeps serving the playbooks it
//! had and logs the diagnostics; otherwise the new set serves every new run, event and
//! schedule fire. A run in flight keeps the playbook it started with: each run executes the
//! copy frozen into the state store when it was created.
//!
//! What is read once at start stays: the listen address, TLS, tokens, the event secret, the
//! agents file and the other `serve:` settings.

use crate::App;
use crate::setup::{self, Options};
use std::sync::Arc;

/// Reloads on every SIGHUP. `hup` is registered before the server says it listens, so a
/// SIGHUP never finds the default action (ending the process).
#[cfg(unix)]
pub(crate) async fn watch(app: Arc<App>, o: Options, mut hup: tokio::signal::unix::Signal) {
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the playbooks");
        let opts = o.clone();
        match tokio::task::spawn_blocking(move || setup::playbooks(&opts)).await {
            Ok(Ok(list)) => {
                let names: Vec<&str> = list.iter().map(|c| c.name()).collect();
                tracing::info!(
                    "reloaded: serving {} playbook(s) ({})",
                    names.len(),
                    names.join(", ")
                );
                app.set_playbooks(list);
                let a = app.clone();
                let _ = tokio::task::spawn_blocking(move || crate::schedule::announce(&a)).await;
            }
            Ok(Err(e)) => {
                let kept = app.playbooks().len();
                match e {
                    pbc_runtime::Error::Invalid(lines) => {
                        tracing::warn!(
                            "reload refused: the playbooks have errors; still serving the {kept} playbook(s) loaded before"
                        );
                        for l in lines {
                            tracing::error!("{l}");
                        }
                    }
                    e => tracing::warn!(
                        "reload refused: {e}; still serving the {kept} playbook(s) loaded before"
                    ),
                }
            }
            Err(e) => tracing::error!("reloading: {e}"),
        }
    }
}

/// The SIGHUP stream, registered now (`None` where there are no signals, or registering
/// failed, which is said).
#[cfg(unix)]
pub(crate) fn register() -> Option<tokio::signal::unix::Signal> {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("SIGHUP cannot reload the playbooks: {e}");
            None
        }
    }
}
