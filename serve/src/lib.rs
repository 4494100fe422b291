//! `pbc serve`: the runtime as an HTTP service. The same engine and state store as the CLI
//! (`pbc_runtime::Runtime`), called on blocking threads, one `Runtime` (one store connection)
//! per task. A request that starts a run answers with its id; the run is driven in the
//! background. Every second, gate deadlines are applied (SLA escalation and expiry), due
//! notifications are delivered and due schedule fires start their runs (`schedule`).
//! SIGHUP reloads the playbooks (`reload`); `serve.tls` serves HTTPS (`tls`).

mod api;
mod approvals;
pub mod auth;
mod crontime;
pub mod log;
mod metrics;
pub mod oidc;
pub mod openapi;
#[cfg(unix)]
mod reload;
mod schedule;
pub mod setup;
pub mod slack;
pub mod testclock;
pub mod tls;
pub mod ui;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use pbc_compiler::config::TokenHash;
use pbc_runtime::{Agents, Clock, Compiled, Runtime};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use setup::Options;

/// What every handler shares.
pub struct App {
    pub(crate) state_dir: PathBuf,
    pub(crate) state_backend: pbc_runtime::StateBackend,
    /// The playbooks served; SIGHUP swaps the set ([`App::playbooks`] reads it).
    playbooks: RwLock<Arc<Vec<Arc<Compiled>>>>,
    /// The system clock, or the test clock (`testclock`).
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) agents: Agents,
    pub(crate) tokens: Vec<TokenHash>,
    /// `serve.oidc`: JWTs accepted besides the tokens.
    pub(crate) oidc: Option<oidc::Oidc>,
    /// `serve.slack`: Slack's buttons.
    pub(crate) slack: Option<slack::Slack>,
    /// The web page's sessions.
    pub(crate) sessions: ui::session::Sessions,
    /// Served over TLS: cookies are `Secure`.
    pub(crate) https: bool,
    pub(crate) event_secret: Option<Vec<u8>>,
    pub(crate) failures: auth::Failures,
    pub(crate) metrics: metrics::Metrics,
    /// Serializes requests carrying an `Idempotency-Key`.
    pub(crate) idempotency: tokio::sync::Mutex<()>,
    /// Runs driven at once.
    pub(crate) workers: Arc<tokio::sync::Semaphore>,
    /// A run's independent stages stepped at once (`serve.workers`).
    pub(crate) parallelism: usize,
    /// `serve.signing-key`: approvals decided here are signed statements, signed as a
    /// delegate for the person authenticated.
    pub(crate) signing_key: Option<Arc<pbc_runtime::approval_sig::SigningKey>>,
}

impl App {
    /// The playbooks served now (a run keeps the one it started with).
    pub(crate) fn playbooks(&self) -> Arc<Vec<Arc<Compiled>>> {
        match self.playbooks.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Serves `list` from now on.
    pub(crate) fn set_playbooks(&self, list: Vec<Arc<Compiled>>) {
        let list = Arc::new(list);
        match self.playbooks.write() {
            Ok(mut p) => *p = list,
            Err(poisoned) => *poisoned.into_inner() = list,
        }
    }

    /// The engine over the state store, on the server's clock.
    pub(crate) fn runtime(&self) -> Result<Runtime, pbc_runtime::Error> {
        Ok(Runtime::open_with(&self.state_dir, &self.state_backend)?
            .with_clock(self.clock.clone())
            .with_parallelism(self.parallelism))
    }

    /// Drives run `id` in the background, as far as it goes.
    pub(crate) fn drive(self: &Arc<Self>, id: String) {
        let app = self.clone();
        tokio::spawn(async move {
            let Ok(_permit) = app.workers.clone().acquire_owned().await else {
                return;
            };
            let app2 = app.clone();
            let app3 = app.clone();
            let r = tokio::task::spawn_blocking(move || {
                let mut rt = app3.runtime()?;
                let r = rt.drive_run(&id);
                deliver(&mut rt, Duration::from_millis(200));
                r
            })
            .await;
            match r {
                Ok(Ok(report)) => {
                    if report.status.is_final() {
                        app2.metrics.finished(report.status.as_str());
                    }
                    tracing::info!(run = %report.run, status = %report.status, "run {} is {}", report.run, report.status);
                }
                // Another process executes it: it goes on there.
                Ok(Err(pbc_runtime::Error::Busy(m))) => tracing::info!("{m}"),
                Ok(Err(e)) => tracing::error!(error = %e, "driving a run"),
                Err(e) => tracing::error!(error = %e, "driving a run"),
            }
        });
    }
}

fn deliver(rt: &mut Runtime, wait: Duration) {
    match rt.deliver(wait) {
        Ok(s) if s.failed > 0 => tracing::warn!(
            failed = s.failed,
            "{} notification(s) failed (`pbc notifications` lists them)",
            s.failed
        ),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "delivering notifications"),
    }
}

/// Every endpoint with its documentation (`openapi::document`).
pub(crate) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::with_openapi(openapi::Doc::openapi())
        .routes(routes!(api::healthz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(api::event))
        .routes(routes!(api::start_run, api::list_runs))
        .routes(routes!(api::get_run))
        .routes(routes!(api::stop_run))
        .routes(routes!(approvals::list_approvals))
        .routes(routes!(approvals::approve))
        .routes(routes!(approvals::reject))
        .routes(routes!(slack::interactions))
        .routes(routes!(ui::home))
        .routes(routes!(ui::login_form, ui::login))
        .routes(routes!(ui::logout))
        .routes(routes!(ui::approval))
        .routes(routes!(ui::approve))
        .routes(routes!(ui::reject))
        .routes(routes!(ui::run))
        .routes(routes!(ui::style))
        .routes(routes!(
            api::kill_switch_get,
            api::kill_switch_engage,
            api::kill_switch_release
        ))
}

fn router(app: Arc<App>, max_body: usize) -> Router {
    let (router, _) = routes().split_for_parts();
    router
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(app)
}

/// Every second: deadlines (escalation, expiry), then due notifications.
async fn tick(app: Arc<App>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let a = app.clone();
        let r = tokio::task::spawn_blocking(move || {
            let mut rt = a.runtime()?;
            let r = rt.apply_deadlines();
            deliver(&mut rt, Duration::from_millis(300));
            r
        })
        .await;
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "applying deadlines"),
            Err(e) => tracing::error!(error = %e, "applying deadlines"),
        }
    }
}

/// Continues every unfinished run, as `pbc resume` does.
fn resume_all(app: &App) -> Result<Vec<String>, pbc_runtime::Error> {
    let mut rt = app.runtime()?;
    let ids: Vec<String> = rt
        .runs()?
        .into_iter()
        .filter(|r| !r.status.is_final())
        .map(|r| r.run)
        .collect();
    for id in &ids {
        match rt.resume(id, None) {
            Ok(r) => {
                tracing::info!(run = %id, status = %r.status, "resumed run {id}: {}", r.status)
            }
            Err(e) => tracing::warn!(run = %id, error = %e, "run {id} not resumed"),
        }
    }
    deliver(&mut rt, Duration::from_millis(500));
    Ok(ids)
}

/// Waits for SIGTERM or SIGINT. The handlers are registered when this is called, not when
/// the future is first polled: the server says it listens only after, so a signal sent
/// the moment it does is never lost to the default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            let recv = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = recv(term) => {},
                _ = recv(int) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down");
    }
}

/// Loads, resumes, listens until SIGTERM or SIGINT. `Err` carries the exit code's reason:
/// `Invalid` (check errors, exit 1) or a usage/IO problem (exit 2).
pub fn serve(o: &Options) -> Result<(), pbc_runtime::Error> {
    let loaded = setup::load(o)?;
    log::init(o.log_format);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let workers = loaded
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    // A bad certificate or key refuses to start, before anything listens.
    let tls = loaded.tls.as_ref().map(tls::server_config).transpose()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(workers + 16)
        .build()
        .map_err(|e| pbc_runtime::Error::Io(format!("cannot start the server: {e}")))?;
    // The store opens (and is created) before listening: a bad state directory refuses to start.
    drop(Runtime::open_with(
        &loaded.state_dir,
        &loaded.state_backend,
    )?);
    let names: Vec<String> = loaded
        .playbooks
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let app = Arc::new(App {
        state_dir: loaded.state_dir.clone(),
        state_backend: loaded.state_backend.clone(),
        playbooks: RwLock::new(Arc::new(loaded.playbooks)),
        clock: testclock::from_env(),
        agents: loaded.agents,
        tokens: loaded.tokens,
        oidc: loaded.oidc,
        slack: loaded.slack,
        sessions: ui::session::Sessions::default(),
        https: tls.is_some(),
        event_secret: loaded.event_secret,
        failures: auth::Failures::default(),
        metrics: metrics::Metrics::default(),
        idempotency: tokio::sync::Mutex::new(()),
        workers: Arc::new(tokio::sync::Semaphore::new(workers.max(1))),
        parallelism: workers.max(1),
        signing_key: loaded.signing_key,
    });
    let max_body = loaded.max_body_bytes;
    let missed = loaded.missed_schedules;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&o.listen)
            .await
            .map_err(|e| {
                pbc_runtime::Error::Usage(format!("cannot listen on {}: {e}", o.listen))
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| pbc_runtime::Error::Io(e.to_string()))?;
        // Registered before the server says it listens: from then on SIGHUP reloads.
        #[cfg(unix)]
        let hup = reload::register();
        let a = app.clone();
        match tokio::task::spawn_blocking(move || resume_all(&a)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "resuming runs"),
            Err(e) => tracing::error!(error = %e, "resuming runs"),
        }
        let a = app.clone();
        let _ = tokio::task::spawn_blocking(move || schedule::announce(&a)).await;
        let a = app.clone();
        let cursor = match tokio::task::spawn_blocking(move || schedule::catch_up(&a, missed)).await
        {
            Ok(Ok((cursor, ids))) => {
                for id in ids {
                    app.drive(id);
                }
                cursor
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "looking for missed schedule fires");
                app.clock.now_ms()
            }
            Err(e) => {
                tracing::error!(error = %e, "looking for missed schedule fires");
                app.clock.now_ms()
            }
        };
        tracing::info!(
            playbooks = %names.join(","),
            state = %app.state_dir.display(),
            "serving {} playbook(s) ({}), state {}",
            names.len(),
            names.join(", "),
            app.state_dir.display()
        );
        let mut tasks = vec![
            tokio::spawn(tick(app.clone())),
            tokio::spawn(schedule::run(app.clone(), cursor)),
        ];
        #[cfg(unix)]
        if let Some(hup) = hup {
            tasks.push(tokio::spawn(reload::watch(app.clone(), o.clone(), hup)));
        }
        let service = router(app, max_body).into_make_service_with_connect_info::<SocketAddr>();
        let shutdown = shutdown_signal();
        let r = match tls {
            Some(cfg) => {
                use axum::serve::ListenerExt;
                let listener = tls::TlsListener::new(listener, cfg)
                    .map_err(|e| pbc_runtime::Error::Io(e.to_string()))?;
                tracing::info!(addr = %addr, "listening on https://{addr}");
                // `tap_io` gives the connection's peer address to the handlers.
                axum::serve(listener.tap_io(|_| {}), service)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            None => {
                tracing::info!(addr = %addr, "listening on http://{addr}");
                axum::serve(listener, service)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        }
        .map_err(|e| pbc_runtime::Error::Io(format!("the server stopped: {e}")));
        for t in tasks {
            t.abort();
        }
        r
    })?;
    // Dropping the runtime waits for runs being driven to reach their next resting point.
    drop(rt);
    Ok(())
}
