//! The HTTP API: every handler authenticates, then calls the engine on a blocking thread
//! (one `Runtime`, one store connection, per call). Errors are `{"error": {"code",
//! "message"}}`.

use crate::App;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use pbc_runtime::{Error, RunOptions, Runtime};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", what)
    }

    /// The usual answer to an engine error.
    pub(crate) fn engine(e: Error) -> Self {
        match e {
            Error::Usage(m) => ApiError::new(StatusCode::BAD_REQUEST, "bad-request", m),
            Error::Invalid(lines) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-playbook",
                lines.join("\n"),
            ),
            Error::Refused(m) => ApiError::new(StatusCode::CONFLICT, "refused", m),
            Error::Busy(m) => ApiError::new(StatusCode::CONFLICT, "busy", m),
            other => {
                tracing::error!(error = %other, "engine error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error (logged by the server)",
                )
            }
        }
    }
}

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut err = json!({"code": self.code, "message": self.message});
        if let Some(d) = self.details {
            err["details"] = d;
        }
        (self.status, Json(json!({"error": err}))).into_response()
    }
}

pub(crate) type Answer = Result<(StatusCode, Json<Value>), ApiError>;

pub(crate) fn ok(status: StatusCode, v: Value) -> Answer {
    Ok((status, Json(v)))
}

/// Runs `f` with a fresh `Runtime` on a blocking thread.
pub(crate) async fn engine<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&mut Runtime) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        let mut rt = app.runtime().map_err(ApiError::engine)?;
        f(&mut rt)
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "a request's task failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    })?
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn unauthorized(app: &App, peer: SocketAddr, why: &str) -> ApiError {
    app.failures.record(peer.ip());
    app.metrics.auth_failures.inc();
    tracing::warn!(peer = %peer.ip(), reason = why, "authentication failed from {}: {why}", peer.ip());
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "authentication required: `Authorization: Bearer TOKEN`",
    )
}

pub(crate) fn too_many(peer: SocketAddr) -> ApiError {
    tracing::warn!(
        peer = %peer.ip(),
        "{} is refused: too many failed authentications",
        peer.ip()
    );
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-failures",
        "too many failed authentications from this address; try again later",
    )
}

/// The person a bearer token authenticates.
pub(crate) fn who(app: &App, headers: &HeaderMap, peer: SocketAddr) -> Result<String, ApiError> {
    if app.failures.blocked(peer.ip()) {
        return Err(too_many(peer));
    }
    let Some(token) = bearer(headers) else {
        return Err(unauthorized(app, peer, "no bearer token"));
    };
    user_of(app, token).map_err(|why| unauthorized(app, peer, &why))
}

/// The person `token` authenticates: an OIDC JWT (with `serve.oidc`), else a configured
/// token's hash; or why not (logged, never shown to the caller).
pub(crate) fn user_of(app: &App, token: &str) -> Result<String, String> {
    if let Some(oidc) = &app.oidc
        && crate::oidc::looks_like_jwt(token)
    {
        return oidc.user(token, app.clock.now_ms());
    }
    crate::auth::user_of_token(&app.tokens, token).ok_or_else(|| "unknown token".to_string())
}

/// Counts and logs a failed authentication that did not come with a bearer token (the web
/// page's sign-in, a Slack signature).
pub(crate) fn failed(app: &App, peer: SocketAddr, why: &str) {
    app.failures.record(peer.ip());
    app.metrics.auth_failures.inc();
    tracing::warn!(peer = %peer.ip(), reason = why, "authentication failed from {}: {why}", peer.ip());
}

pub(crate) fn body_of(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "the request body is larger than serve.max-body-bytes",
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad-body", r.body_text())
        }
    })
}

pub(crate) fn json_of(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-json",
            format!("the body is not JSON: {e}"),
        )
    })
}

fn kill_switch_refusal(rt: &Runtime) -> Result<(), ApiError> {
    let k = rt.kill_switch().map_err(ApiError::engine)?;
    if k.engaged {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "kill-switch-engaged",
            format!(
                "the kill switch is engaged (by {}): no run starts until it is released",
                k.by.as_deref().unwrap_or("?")
            ),
        ));
    }
    Ok(())
}

/// Checks `input` against each playbook's input schema; 400 `invalid-input` with every
/// problem when one does not match.
fn validate_all(playbooks: &[Arc<pbc_runtime::Compiled>], input: &Value) -> Result<(), ApiError> {
    let mut details = Vec::new();
    for c in playbooks {
        let mut i = input.clone();
        let problems = pbc_runtime::input::validate(c, &mut i).map_err(ApiError::engine)?;
        for p in problems {
            details.push(json!({"path": p.path, "reason": p.reason, "playbook": c.name()}));
        }
    }
    if details.is_empty() {
        return Ok(());
    }
    let mut e = ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid-input",
        "the input does not match the playbook's input schema; nothing was started",
    );
    e.details = Some(Value::Array(details));
    Err(e)
}

/// Starts a run of each playbook (the input already validated) in one transaction, with the
/// answer remembered for the idempotency key if there is one; returns their ids (or, when the
/// key was remembered meanwhile, the first request's).
fn begin_all(
    rt: &mut Runtime,
    app: &App,
    playbooks: &[Arc<pbc_runtime::Compiled>],
    input: &Value,
    requester: &str,
    key: Option<&str>,
) -> Result<pbc_runtime::Begun, ApiError> {
    let opts = RunOptions::requested_by(requester);
    let starts: Vec<(&pbc_runtime::Compiled, Value)> = playbooks
        .iter()
        .map(|c| (c.as_ref(), input.clone()))
        .collect();
    let begun = rt
        .begin_remembered(&starts, &app.agents, &opts, key)
        .map_err(|e| match e {
            Error::Refused(m) => ApiError::new(StatusCode::CONFLICT, "kill-switch-engaged", m),
            e => ApiError::engine(e),
        })?;
    if !begun.replayed {
        for (id, c) in begun.runs.iter().zip(playbooks) {
            tracing::info!(run = %id, playbook = c.name(), user = requester, "run {id} of {} started by {requester}", c.name());
            app.metrics.runs_started.inc();
        }
    }
    Ok(begun)
}

/// `POST /v1/events/{event}`.
#[utoipa::path(post, path = "/v1/events/{event}", tag = "runs",
    summary = "Starts every playbook triggered by the event",
    params(
        ("event" = String, Path, description = "the event name (`trigger.event`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "a replay answers as the first request")
    ),
    request_body(content = crate::openapi::Input, content_type = "application/json"),
    security(("event-signature" = []), ("bearer" = [])),
    responses(
        (status = 202, description = "the runs started", body = crate::openapi::EventRuns),
        (status = 400, description = "bad request", body = crate::openapi::ErrorBody),
        (status = 401, description = "not authenticated", body = crate::openapi::ErrorBody),
        (status = 409, description = "conflict: already decided, expired, or the kill switch is engaged", body = crate::openapi::ErrorBody),
        (status = 413, description = "the body is larger than serve.max-body-bytes", body = crate::openapi::ErrorBody),
        (status = 429, description = "too many failed authentications from this address", body = crate::openapi::ErrorBody),
        (status = 500, description = "internal error (logged by the server)", body = crate::openapi::ErrorBody)
    )
)]
pub async fn event(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(event): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    if app.failures.blocked(peer.ip()) {
        return Err(too_many(peer));
    }
    let body = body_of(body)?;
    let requester = match headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
    {
        Some(sig) => match &app.event_secret {
            Some(secret) if crate::auth::signature_ok(secret, &body, sig) => {
                format!("event:{event}")
            }
            Some(_) => return Err(unauthorized(&app, peer, "bad event signature")),
            None => {
                return Err(unauthorized(
                    &app,
                    peer,
                    "signed event, but no event secret is configured",
                ));
            }
        },
        None => who(&app, &headers, peer)?,
    };
    let input = json_of(&body)?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| format!("event:{event}:{k}"));
    let matching: Vec<_> = app
        .playbooks()
        .iter()
        .filter(|c| {
            c.playbook
                .spec
                .trigger
                .as_ref()
                .and_then(|t| t.value.event())
                .is_some_and(|e| e.value == event)
        })
        .cloned()
        .collect();
    // One idempotent request at a time, so that a replay racing the first answers as it.
    let _guard = match key {
        Some(_) => Some(app.idempotency.lock().await),
        None => None,
    };
    let app2 = app.clone();
    let (ids, replayed) = engine(&app, move |rt| {
        if let Some(k) = &key
            && let Some(first) = rt.remembered(k).map_err(ApiError::engine)?
        {
            let v: Value = serde_json::from_str(&first).unwrap_or(json!({"runs": []}));
            return Ok((v, true));
        }
        if matching.is_empty() {
            let answer = json!({"runs": []});
            if let Some(k) = &key {
                rt.remember(k, &answer.to_string())
                    .map_err(ApiError::engine)?;
            }
            return Ok((answer, false));
        }
        kill_switch_refusal(rt)?;
        validate_all(&matching, &input)?;
        // The runs and the remembered answer in one transaction.
        let begun = begin_all(rt, &app2, &matching, &input, &requester, key.as_deref())?;
        Ok((json!({"runs": begun.runs}), begun.replayed))
    })
    .await?;
    if !replayed && let Some(list) = ids["runs"].as_array() {
        for id in list.iter().filter_map(Value::as_str) {
            app.drive(id.to_string());
        }
    }
    ok(StatusCode::ACCEPTED, ids)
}

/// `POST /v1/runs` `{"playbook", "input"}`.
#[utoipa::path(post, path = "/v1/runs", tag = "runs",
    summary = "Starts a run of a playbook",
    request_body(content = crate::openapi::StartRun, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "the run started", body = crate::openapi::RunCreated),
        (status = 400, description = "bad request", body = crate::openapi::ErrorBody),
        (status = 401, description = "not authenticated", body = crate::openapi::ErrorBody),
        (status = 404, description = "no such run or approval", body = crate::openapi::ErrorBody),
        (status = 409, description = "conflict: already decided, expired, or the kill switch is engaged", body = crate::openapi::ErrorBody),
        (status = 413, description = "the body is larger than serve.max-body-bytes", body = crate::openapi::ErrorBody),
        (status = 429, description = "too many failed authentications from this address", body = crate::openapi::ErrorBody),
        (status = 500, description = "internal error (logged by the server)", body = crate::openapi::ErrorBody)
    )
)]
pub async fn start_run(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let who = who(&app, &headers, peer)?;
    let body = json_of(&body_of(body)?)?;
    let Some(name) = body.get("playbook").and_then(Value::as_str) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "the body must be {\"playbook\": NAME, \"input\": {...}}",
        ));
    };
    let served = app.playbooks();
    let Some(c) = served.iter().find(|c| c.name() == name).cloned() else {
        let names: Vec<&str> = served.iter().map(|c| c.name()).collect();
        return Err(ApiError::not_found(format!(
            "no playbook `{name}` is served (served: {})",
            names.join(", ")
        )));
    };
    let input = body.get("input").cloned().unwrap_or(json!({}));
    let app2 = app.clone();
    let ids = engine(&app, move |rt| {
        kill_switch_refusal(rt)?;
        validate_all(std::slice::from_ref(&c), &input)?;
        begin_all(rt, &app2, std::slice::from_ref(&c), &input, &who, None)
    })
    .await?;
    let id = ids.runs.into_iter().next().unwrap_or_default();
    app.drive(id.clone());
    ok(StatusCode::CREATED, json!({"run": id}))
}

/// `GET /v1/runs`: the shape of `pbc runs --format json`.
#[utoipa::path(get, path = "/v1/runs", tag = "runs",
    summary = "Every run, newest first, and the kill switch",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the runs", body = crate::openapi::RunList),
        (status = 401, description = "not authenticated", body = crate::openapi::ErrorBody),
        (status = 429, description = "too many failed authentications from this address", body = crate::openapi::ErrorBody),
        (status = 500, description = "internal error (logged by the server)", body = crate::openapi::ErrorBody)
    )
)]
pub async fn list_runs(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Answer {
    who(&app, &headers, peer)?;
    let v = engine(&app, |rt| {
        let runs = rt.runs().map_err(ApiError::engine)?;
        let k = rt.kill_switch().map_err(ApiError::engine)?;
        let runs: Vec<Value> = runs.iter().map(|r| r.to_json()).collect();
        Ok(json!({"runs": runs, "kill_switch": k.to_json()}))
    })
    .await?;
    ok(StatusCode::OK, v)
}

/// `GET /v1/runs/{id}`: the shape of `pbc run --format json`.
#[utoipa::path(get, path = "/v1/runs/{id}", tag = "runs",
    summary = "A run and its stages",
    params(("id" = String, Path, description = "the run id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the run", body = crate::openapi::RunReport),
        (status = 401, description = "not authenticated", body = crate::openapi::ErrorBody),
        (status = 404, description = "no such run or approval", body = crate::openapi::ErrorBody),
        (status = 429, description = "too many failed authentications from this address", body = crate::openapi::ErrorBody),
        (status = 500, description = "internal error (logged by the server)", body = crate::openapi::ErrorBody)
    )
)]
pub async fn get_run(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    who(&app, &headers, peer)?;
    let v = engine(&app, move |rt| match rt.report(&id) {
        Ok(r) => Ok(r.to_json()),
        Err(Error::Usage(_)) => Err(ApiError::not_found(format!("no run `{id}`"))),
        Err(e) => Err(ApiError::engine(e)),
    })
    .await?;
    ok(StatusCode::OK, v)
}

/// `POST /v1/runs/{id}/stop`.
#[utoipa::path(post, path = "/v1/runs/{id}/stop", tag = "runs",
    summary = "Stops a run",
    params(("id" = String, Path, description = "the run id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the runs stopped", body = crate::openapi::Stopped),
        (status = 401, description = "not authenticated", body = crate::openapi::ErrorBody),
        (status = 404, description = "no such run or approval", body = crate::openapi::ErrorBody),
        (status = 409, description = "conflict: already decided, expired, or the kill switch is engaged", body = crate::openapi::ErrorBody),
        (status = 429, description = "too many failed authentications from this address", body = crate::openapi::ErrorBody),
        (status = 500, description = "internal error (logged by the server)", body = crate::openapi::ErrorBody)
    )
)]
pub async fn stop_run(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let who = who(&app, &headers, peer)?;
    let v = engine(&app, move |rt| {
        if let Err(Error::Usage(_)) = rt.report(&id) {
            return Err(ApiError::not_found(format!("no run `{id}`")));
        }
        let stopped = rt.stop(Some(&id), &who).map_err(ApiError::engine)?;
        tracing::info!(run = %id, user = %who, "run {id} stopped by {who}");
        Ok(json!({"stopped": stopped}))
    })
    .await?;
    ok(StatusCode::OK, v)
}

/// `GET|POST|DELETE /v1/kill-switch`.
#[utoipa::path(get, path = "/v1/kill-switch", tag = "operations",
    summary = "The kill switch",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the kill switch", body = crate::openapi::KillSwitchAnswer),
        (status = 401, description = "not authenticated", body = crate::openapi::ErrorBody),
        (status = 429, description = "too many failed authentications from this address", body = crate::openapi::ErrorBody),
        (status = 500, description = "internal error (logged by the server)", body = crate::openapi::ErrorBody)
    )
)]
pub async fn kill_switch_get(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Answer {
    who(&app, &headers, peer)?;
    let v = engine(&app, |rt| {
        Ok(json!({"kill_switch": rt.kill_switch().map_err(ApiError::engine)?.to_json()}))
    })
    .await?;
    ok(StatusCode::OK, v)
}

#[utoipa::path(post, path = "/v1/kill-switch", tag = "operations",
    summary = "Engages the kill switch: stops every run, starts none",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "engaged", body = crate::openapi::KillSwitchAnswer),
        (status = 401, description = "not authenticated", body = crate::openapi::ErrorBody),
        (status = 409, description = "conflict: already decided, expired, or the kill switch is engaged", body = crate::openapi::ErrorBody),
        (status = 429, description = "too many failed authentications from this address", body = crate::openapi::ErrorBody),
        (status = 500, description = "internal error (logged by the server)", body = crate::openapi::ErrorBody)
    )
)]
pub async fn kill_switch_engage(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Answer {
    let who = who(&app, &headers, peer)?;
    let v = engine(&app, move |rt| {
        let stopped = rt.stop(None, &who).map_err(ApiError::engine)?;
        tracing::warn!(user = %who, "kill switch engaged by {who}");
        Ok(json!({"kill_switch": rt.kill_switch().map_err(ApiError::engine)?.to_json(), "stopped": stopped}))
    })
    .await?;
    ok(StatusCode::OK, v)
}

#[utoipa::path(delete, path = "/v1/kill-switch", tag = "operations",
    summary = "Releases the kill switch",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "released", body = crate::openapi::KillSwitchAnswer),
        (status = 401, description = "not authenticated", body = crate::openapi::ErrorBody),
        (status = 409, description = "conflict: already decided, expired, or the kill switch is engaged", body = crate::openapi::ErrorBody),
        (status = 429, description = "too many failed authentications from this address", body = crate::openapi::ErrorBody),
        (status = 500, description = "internal error (logged by the server)", body = crate::openapi::ErrorBody)
    )
)]
pub async fn kill_switch_release(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Answer {
    let who = who(&app, &headers, peer)?;
    let v = engine(&app, move |rt| {
        let was = rt.release_kill_switch(&who).map_err(ApiError::engine)?;
        tracing::warn!(user = %who, "kill switch released by {who}");
        Ok(json!({"kill_switch": rt.kill_switch().map_err(ApiError::engine)?.to_json(), "was_engaged_by": was}))
    })
    .await?;
    ok(StatusCode::OK, v)
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    summary = "Liveness",
    responses((status = 200, description = "the server answers", body = crate::openapi::Health))
)]
pub async fn healthz() -> Answer {
    ok(StatusCode::OK, json!({"status": "ok"}))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}
