//! `/ui`: the web page where people decide approvals and follow runs. Server-rendered HTML
//! ([`pages`]), no JavaScript; a strict Content-Security-Policy on every answer; sign-in with a
//! token at `/ui/login` ([`session`]); every form carries the session's CSRF token, checked on
//! every POST before anything else. Decisions go through the same engine call and rules as
//! `POST /v1/approvals/{id}/approve|reject`.

pub mod pages;
pub mod session;

use crate::App;
use crate::api::{engine, failed, too_many, user_of};
use crate::approvals::{decide_as, reason_of};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::Markup;
use pages::{Pending, Viewer};
use pbc_runtime::Error;
use session::{COOKIE, LOGIN_COOKIE, Session, same_secret, set_cookie};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The Content-Security-Policy of every `/ui` answer: nothing but the page's own style
/// sheet, forms posting to the server itself, no framing.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers every `/ui` answer carries.
fn secured(mut r: Response) -> Response {
    let h = r.headers_mut();
    for (k, v) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    r
}

fn page(status: StatusCode, m: Markup) -> Response {
    secured(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            m.into_string(),
        )
            .into_response(),
    )
}

fn redirect(to: &str, cookies: &[String]) -> Response {
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response();
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    secured(r)
}

/// To the sign-in page, coming back to `back` afterwards.
fn to_login(back: &str) -> Response {
    let q = serde_urlencoded::to_string([("next", back)]).unwrap_or_default();
    redirect(&format!("/ui/login?{q}"), &[])
}

/// A path inside the web page (where sign-in may return to); anything else is `/ui`.
fn inside(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/ui")
                && !n.starts_with("/ui/login")
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/-_".contains(&b)) =>
        {
            n.to_string()
        }
        _ => "/ui".into(),
    }
}

fn form(body: Result<Bytes, BytesRejection>) -> HashMap<String, String> {
    body.ok()
        .and_then(|b| serde_urlencoded::from_bytes(&b).ok())
        .unwrap_or_default()
}

fn viewer(s: &Session) -> Viewer<'_> {
    Viewer {
        user: &s.user,
        csrf: &s.csrf,
    }
}

fn internal(s: Option<&Session>, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "the web page failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::problem(
            s.map(viewer).as_ref(),
            "Something went wrong",
            "internal error (logged by the server)",
        ),
    )
}

/// The session of a POST whose form repeats its CSRF token; else the answer refusing it.
fn checked(
    app: &App,
    headers: &HeaderMap,
    f: &HashMap<String, String>,
) -> Result<Session, Box<Response>> {
    let Some(s) = app.sessions.of(headers) else {
        return Err(Box::new(redirect("/ui/login", &[])));
    };
    let sent = f.get("csrf").map(String::as_str).unwrap_or("");
    if !same_secret(sent, &s.csrf) {
        tracing::warn!(user = %s.user, "a form with a wrong CSRF token was refused");
        return Err(Box::new(page(
            StatusCode::FORBIDDEN,
            pages::problem(
                Some(&viewer(&s)),
                "Refused",
                "This form is not one the server gave you (its CSRF token is wrong or stale). Nothing was changed.",
            ),
        )));
    }
    Ok(s)
}

#[utoipa::path(get, path = "/ui", tag = "web page",
    summary = "The approvals the signed-in person may decide, and the runs",
    security(("session" = [])),
    responses(
        (status = 200, description = "the page", content_type = "text/html", body = String),
        (status = 303, description = "not signed in: to /ui/login"),
        (status = 500, description = "internal error (logged by the server)", content_type = "text/html", body = String)
    )
)]
pub async fn home(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(s) = app.sessions.of(&headers) else {
        return to_login("/ui");
    };
    let who = s.user.clone();
    let r = engine(&app, move |rt| {
        let open = rt
            .open_approvals(Some(&who))
            .map_err(crate::api::ApiError::engine)?;
        let mut runs = rt.runs().map_err(crate::api::ApiError::engine)?;
        runs.truncate(100);
        Ok((open, runs))
    })
    .await;
    match r {
        Ok((open, runs)) => {
            let pending: Vec<Pending> = open
                .iter()
                .map(|o| Pending {
                    approval: &o.approval,
                    playbook: &o.playbook,
                    requested_by: &o.requested_by,
                })
                .collect();
            page(StatusCode::OK, pages::home(&viewer(&s), &pending, &runs))
        }
        Err(e) => internal(Some(&s), e.message()),
    }
}

#[utoipa::path(get, path = "/ui/login", tag = "web page",
    summary = "The sign-in form",
    params(("next" = Option<String>, Query, description = "the /ui page to return to")),
    responses((status = 200, description = "the page", content_type = "text/html", body = String))
)]
pub async fn login_form(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    login_page(
        &app,
        StatusCode::OK,
        q.get("next").map(String::as_str),
        None,
    )
}

fn login_page(app: &App, status: StatusCode, next: Option<&str>, error: Option<&str>) -> Response {
    let nonce = session::random_token();
    let mut r = page(status, pages::login(&nonce, &inside(next), error));
    let c = set_cookie(LOGIN_COOKIE, &nonce, "/ui/login", 600, app.https);
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// Who `token` signs in, and for how long: [`session::LIFETIME`], or until an OIDC JWT
/// expires if that is sooner.
fn identity(app: &App, token: &str) -> Result<(String, Duration), String> {
    if let Some(oidc) = &app.oidc
        && crate::oidc::looks_like_jwt(token)
    {
        let now = app.clock.now_ms();
        let (user, exp) = oidc.user_until(token, now)?;
        let left = exp
            .saturating_add(crate::oidc::LEEWAY_SECONDS)
            .saturating_sub(now.div_euclid(1000))
            .max(0);
        let left = Duration::from_secs(u64::try_from(left).unwrap_or(0));
        return Ok((user, left.min(session::LIFETIME)));
    }
    user_of(app, token).map(|u| (u, session::LIFETIME))
}

#[utoipa::path(post, path = "/ui/login", tag = "web page",
    summary = "Signs in with a token: sets the session cookie",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`csrf`, `token`, `next`"),
    responses(
        (status = 303, description = "signed in: to the page asked for"),
        (status = 401, description = "the token authenticates nobody", content_type = "text/html", body = String),
        (status = 403, description = "the form's nonce does not match its cookie", content_type = "text/html", body = String),
        (status = 429, description = "too many failed authentications from this address", content_type = "text/html", body = String)
    )
)]
pub async fn login(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let f = form(body);
    let next = f.get("next").map(String::as_str);
    if app.failures.blocked(peer.ip()) {
        let e = too_many(peer);
        return login_page(&app, StatusCode::TOO_MANY_REQUESTS, next, Some(e.message()));
    }
    let nonce = session::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    let sent = f.get("csrf").map(String::as_str).unwrap_or("");
    if !same_secret(sent, &nonce) {
        return login_page(
            &app,
            StatusCode::FORBIDDEN,
            next,
            Some("The sign-in form expired or was not served here; try again."),
        );
    }
    let token = f.get("token").map(|t| t.trim()).unwrap_or("");
    let (user, lasts) = match identity(&app, token) {
        Ok(u) => u,
        Err(why) => {
            failed(&app, peer, &why);
            return login_page(
                &app,
                StatusCode::UNAUTHORIZED,
                next,
                Some("That token signs nobody in."),
            );
        }
    };
    let Some(id) = app.sessions.open(&user, lasts) else {
        return internal(None, "no random session id could be made");
    };
    tracing::info!(user = %user, peer = %peer.ip(), "{user} signed in to the web page");
    redirect(
        &inside(next),
        &[
            set_cookie(COOKIE, &id, "/ui", lasts.as_secs(), app.https),
            set_cookie(LOGIN_COOKIE, "", "/ui/login", 0, app.https),
        ],
    )
}

#[utoipa::path(post, path = "/ui/logout", tag = "web page",
    summary = "Signs out",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`csrf`"),
    security(("session" = [])),
    responses(
        (status = 303, description = "signed out: to /ui/login"),
        (status = 403, description = "a wrong CSRF token", content_type = "text/html", body = String),
        (status = 500, description = "internal error (logged by the server)", content_type = "text/html", body = String)
    )
)]
pub async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(r) = checked(&app, &headers, &form(body)) {
        return *r;
    }
    app.sessions.close(&headers);
    redirect("/ui/login", &[set_cookie(COOKIE, "", "/ui", 0, app.https)])
}

/// The approval page, with an error (and its status) when a decision was refused.
async fn approval_answer(
    app: &Arc<App>,
    s: &Session,
    id: String,
    refused: Option<(StatusCode, String)>,
) -> Response {
    let who = s.user.clone();
    let r = engine(app, move |rt| {
        let a = match rt.approval_state(&id) {
            Ok(a) => a,
            Err(Error::Usage(_)) => return Ok(None),
            Err(e) => return Err(crate::api::ApiError::engine(e)),
        };
        let report = rt.report(&a.run).map_err(crate::api::ApiError::engine)?;
        let may = rt
            .open_approvals(Some(&who))
            .map_err(crate::api::ApiError::engine)?
            .iter()
            .any(|o| o.approval.id == a.id);
        Ok(Some((a, report.playbook, report.requester, may)))
    })
    .await;
    match r {
        Ok(Some((a, playbook, requested_by, may))) => {
            let p = Pending {
                approval: &a,
                playbook: &playbook,
                requested_by: &requested_by,
            };
            let (status, error) = match &refused {
                Some((st, m)) => (*st, Some(m.as_str())),
                None => (StatusCode::OK, None),
            };
            page(status, pages::approval(&viewer(s), &p, may, error))
        }
        Ok(None) => page(
            StatusCode::NOT_FOUND,
            pages::problem(Some(&viewer(s)), "Not found", "No such approval."),
        ),
        Err(e) => internal(Some(s), e.message()),
    }
}

#[utoipa::path(get, path = "/ui/approvals/{id}", tag = "web page",
    summary = "An approval: what is asked, and the forms to decide it",
    params(("id" = String, Path, description = "the approval id")),
    security(("session" = [])),
    responses(
        (status = 200, description = "the page", content_type = "text/html", body = String),
        (status = 303, description = "not signed in: to /ui/login"),
        (status = 404, description = "no such approval", content_type = "text/html", body = String),
        (status = 500, description = "internal error (logged by the server)", content_type = "text/html", body = String)
    )
)]
pub async fn approval(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(s) = app.sessions.of(&headers) else {
        return to_login(&format!("/ui/approvals/{id}"));
    };
    approval_answer(&app, &s, id, None).await
}

async fn decide_form(
    app: Arc<App>,
    headers: HeaderMap,
    id: String,
    body: Result<Bytes, BytesRejection>,
    reject: bool,
) -> Response {
    let f = form(body);
    let s = match checked(&app, &headers, &f) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let reason = if reject {
        match reason_of(f.get("reason").map(String::as_str)) {
            Ok(r) => Some(r),
            Err(e) => {
                return approval_answer(&app, &s, id, Some((e.status(), e.message().into()))).await;
            }
        }
    } else {
        None
    };
    match decide_as(&app, s.user.clone(), id.clone(), reason).await {
        Ok(v) => {
            let run = v["run"].as_str().unwrap_or_default();
            redirect(&format!("/ui/runs/{run}"), &[])
        }
        Err(e) => approval_answer(&app, &s, id, Some((e.status(), e.message().into()))).await,
    }
}

#[utoipa::path(post, path = "/ui/approvals/{id}/approve", tag = "web page",
    summary = "Approves (the form of the approval page)",
    params(("id" = String, Path, description = "the approval id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`csrf`"),
    security(("session" = [])),
    responses(
        (status = 303, description = "decided: to the run's page"),
        (status = 403, description = "a wrong CSRF token, or a person who may not decide", content_type = "text/html", body = String),
        (status = 404, description = "no such approval", content_type = "text/html", body = String),
        (status = 409, description = "already decided or expired", content_type = "text/html", body = String),
        (status = 500, description = "internal error (logged by the server)", content_type = "text/html", body = String)
    )
)]
pub async fn approve(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    decide_form(app, headers, id, body, false).await
}

#[utoipa::path(post, path = "/ui/approvals/{id}/reject", tag = "web page",
    summary = "Rejects with a reason (the form of the approval page)",
    params(("id" = String, Path, description = "the approval id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`csrf`, `reason`"),
    security(("session" = [])),
    responses(
        (status = 303, description = "decided: to the run's page"),
        (status = 400, description = "no reason", content_type = "text/html", body = String),
        (status = 403, description = "a wrong CSRF token, or a person who may not decide", content_type = "text/html", body = String),
        (status = 404, description = "no such approval", content_type = "text/html", body = String),
        (status = 409, description = "already decided or expired", content_type = "text/html", body = String),
        (status = 500, description = "internal error (logged by the server)", content_type = "text/html", body = String)
    )
)]
pub async fn reject(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    decide_form(app, headers, id, body, true).await
}

#[utoipa::path(get, path = "/ui/runs/{id}", tag = "web page",
    summary = "A run: its stages and audit trail",
    params(("id" = String, Path, description = "the run id")),
    security(("session" = [])),
    responses(
        (status = 200, description = "the page", content_type = "text/html", body = String),
        (status = 303, description = "not signed in: to /ui/login"),
        (status = 404, description = "no such run", content_type = "text/html", body = String),
        (status = 500, description = "internal error (logged by the server)", content_type = "text/html", body = String)
    )
)]
pub async fn run(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(s) = app.sessions.of(&headers) else {
        return to_login(&format!("/ui/runs/{id}"));
    };
    let r = engine(&app, move |rt| match rt.report(&id) {
        Ok(r) => {
            let audit = rt
                .audit_log(&id)
                .map_err(crate::api::ApiError::engine)?
                .entries;
            Ok(Some((r, audit)))
        }
        Err(Error::Usage(_)) => Ok(None),
        Err(e) => Err(crate::api::ApiError::engine(e)),
    })
    .await;
    match r {
        Ok(Some((report, audit))) => page(StatusCode::OK, pages::run(&viewer(&s), &report, &audit)),
        Ok(None) => page(
            StatusCode::NOT_FOUND,
            pages::problem(Some(&viewer(&s)), "Not found", "No such run."),
        ),
        Err(e) => internal(Some(&s), e.message()),
    }
}

#[utoipa::path(get, path = "/ui/style.css", tag = "web page",
    summary = "The page's style sheet",
    responses((status = 200, description = "CSS", content_type = "text/css", body = String))
)]
pub async fn style() -> Response {
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::CSS,
    )
        .into_response();
    r = secured(r);
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("max-age=3600"));
    r
}
