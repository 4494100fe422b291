//! The approvals endpoints: the pending approvals a caller may decide, and deciding one.
//! Who may decide is the engine's rule (the gate's users and its roles' members, never the
//! requester); an approval no longer pending is 409 whoever asks.

use crate::App;
use crate::api::{Answer, ApiError, body_of, engine, json_of, ok, who};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use pbc_runtime::approval_sig;
use pbc_runtime::{ApprovalStatus, Error};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

/// `GET /v1/approvals`: those the caller may decide.
#[utoipa::path(get, path = "/v1/approvals", tag = "approvals",
    summary = "The pending approvals the caller may decide",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the approvals", body = crate::openapi::ApprovalList),
        (status = 401, description = "not authenticated", body = crate::openapi::ErrorBody),
        (status = 429, description = "too many failed authentications from this address", body = crate::openapi::ErrorBody),
        (status = 500, description = "internal error (logged by the server)", body = crate::openapi::ErrorBody)
    )
)]
pub async fn list_approvals(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Answer {
    let who = who(&app, &headers, peer)?;
    let v = engine(&app, move |rt| {
        let open = rt.open_approvals(Some(&who)).map_err(ApiError::engine)?;
        let list: Vec<Value> = open
            .iter()
            .map(|o| {
                json!({
                    "id": o.approval.id,
                    "run": o.approval.run,
                    "playbook": o.playbook,
                    "stage": o.approval.stage,
                    "approvers": o.approval.approvers,
                    "requested_by": o.requested_by,
                    "deadline": o.approval.deadline.map(pbc_runtime::clock::rfc3339),
                    "level": o.approval.level,
                })
            })
            .collect();
        Ok(json!({"approvals": list}))
    })
    .await?;
    ok(StatusCode::OK, v)
}

fn not_pending(id: &str, s: ApprovalStatus) -> ApiError {
    let code = match s {
        ApprovalStatus::Expired => "expired",
        _ => "already-decided",
    };
    ApiError::new(
        StatusCode::CONFLICT,
        code,
        format!("approval {id} is {s}: nothing to decide"),
    )
}

/// The reason of a rejection: non-empty, trimmed; else 400 `reason-required`.
pub(crate) fn reason_of(r: Option<&str>) -> Result<String, ApiError> {
    match r.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => Ok(r.to_string()),
        None => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "reason-required",
            "a rejection needs a reason",
        )),
    }
}

/// Decides approval `id` as `who` (a rejection with `reason`), by the engine's rules: 404
/// for no such approval, 409 when it is no longer pending, 403 when `who` may not decide.
/// The run goes on in the background. The API, the web page and Slack all decide here.
pub(crate) async fn decide_as(
    app: &Arc<App>,
    who: String,
    id: String,
    reason: Option<String>,
) -> Result<Value, ApiError> {
    let key = app.signing_key.clone();
    let (v, run) = engine(app, move |rt| {
        let a = match rt.approval_state(&id) {
            Ok(a) => a,
            Err(Error::Usage(_)) => return Err(ApiError::not_found(format!("no approval `{id}`"))),
            Err(e) => return Err(ApiError::engine(e)),
        };
        if a.status != ApprovalStatus::Pending {
            return Err(not_pending(&id, a.status));
        }
        let d = match (&reason, &key) {
            // Signed as a delegate for the person this server authenticated.
            (None, Some(k)) => rt
                .approval_statement(&id, &who, approval_sig::DEFAULT_VALIDITY_SECS)
                .and_then(|st| rt.approve_signed(&id, &who, &st.sign(k))),
            (None, None) => rt.approve(&id, &who),
            (Some(r), _) => rt.reject(&id, &who, r),
        };
        match d {
            Ok(d) => {
                tracing::info!(approval = %id, run = %d.run, stage = d.stage.as_deref().unwrap_or(""), user = %who, status = %d.status, "approval {id} {} by {who}", d.status);
                let mut v = json!({"approval": id, "run": d.run, "stage": d.stage, "status": d.status.as_str(), "by": d.by, "role": d.role});
                if d.min_approvals > 1 {
                    v["min_approvals"] = json!(d.min_approvals);
                    v["approved_by"] = json!(d.approved_by);
                }
                Ok((v, d.run))
            }
            Err(Error::Refused(m)) => {
                // Decided meanwhile (409), or this caller may not decide (403).
                let now = rt.approval_state(&id).map_err(ApiError::engine)?;
                if now.status != ApprovalStatus::Pending {
                    return Err(not_pending(&id, now.status));
                }
                // One of several approvals, given twice by one person (409).
                if reason.is_none()
                    && now
                        .approved_by
                        .iter()
                        .any(|v| pbc_runtime::agents::same_person(v, &who))
                {
                    return Err(ApiError::new(StatusCode::CONFLICT, "already-approved", m));
                }
                tracing::warn!(approval = %id, user = %who, "{who} may not decide approval {id}");
                Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", m))
            }
            Err(e) => Err(ApiError::engine(e)),
        }
    })
    .await?;
    app.drive(run);
    Ok(v)
}

/// `POST /v1/approvals/{id}/approve` and `/reject` (`reason` for a rejection).
async fn decide(
    app: Arc<App>,
    peer: SocketAddr,
    id: String,
    headers: HeaderMap,
    reason: Option<String>,
) -> Answer {
    let who = who(&app, &headers, peer)?;
    let v = decide_as(&app, who, id, reason).await?;
    ok(StatusCode::OK, v)
}

#[utoipa::path(post, path = "/v1/approvals/{id}/approve", tag = "approvals",
    summary = "Approves",
    params(("id" = String, Path, description = "the approval id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "decided", body = crate::openapi::DecisionAnswer),
        (status = 401, description = "not authenticated", body = crate::openapi::ErrorBody),
        (status = 403, description = "the caller may not decide it", body = crate::openapi::ErrorBody),
        (status = 404, description = "no such run or approval", body = crate::openapi::ErrorBody),
        (status = 409, description = "conflict: already decided, expired, or the kill switch is engaged", body = crate::openapi::ErrorBody),
        (status = 429, description = "too many failed authentications from this address", body = crate::openapi::ErrorBody),
        (status = 500, description = "internal error (logged by the server)", body = crate::openapi::ErrorBody)
    )
)]
pub async fn approve(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    decide(app, peer, id, headers, None).await
}

#[utoipa::path(post, path = "/v1/approvals/{id}/reject", tag = "approvals",
    summary = "Rejects, with a reason",
    params(("id" = String, Path, description = "the approval id")),
    request_body(content = crate::openapi::RejectBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "decided", body = crate::openapi::DecisionAnswer),
        (status = 400, description = "bad request", body = crate::openapi::ErrorBody),
        (status = 401, description = "not authenticated", body = crate::openapi::ErrorBody),
        (status = 403, description = "the caller may not decide it", body = crate::openapi::ErrorBody),
        (status = 404, description = "no such run or approval", body = crate::openapi::ErrorBody),
        (status = 409, description = "conflict: already decided, expired, or the kill switch is engaged", body = crate::openapi::ErrorBody),
        (status = 413, description = "the body is larger than serve.max-body-bytes", body = crate::openapi::ErrorBody),
        (status = 429, description = "too many failed authentications from this address", body = crate::openapi::ErrorBody),
        (status = 500, description = "internal error (logged by the server)", body = crate::openapi::ErrorBody)
    )
)]
pub async fn reject(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    // Authenticate before reading what the body says.
    who(&app, &headers, peer)?;
    let body = json_of(&body_of(body)?)?;
    let reason = reason_of(body.get("reason").and_then(Value::as_str)).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "reason-required",
            "a rejection needs {\"reason\": TEXT}",
        )
    })?;
    decide(app, peer, id, headers, Some(reason)).await
}
