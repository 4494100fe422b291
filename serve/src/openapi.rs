//! The OpenAPI 3.1 document of the HTTP API. Paths come from the handlers' `#[utoipa::path]`
//! annotations, registered by the router itself (`crate::routes`), so a route cannot exist
//! undocumented; the bodies are described by the types below, whose enumerations are the
//! runtime's own spellings. `schemas/pbc-serve-openapi.json` is this document, committed;
//! a test keeps the two equal and the serve tests validate every answer against it.

use pbc_runtime::{ApprovalStatus, RunStatus, StageStatus};
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

/// A string schema with fixed spellings.
fn spellings(names: &[&str], description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names.iter().copied()))
        .description(Some(description))
        .into()
}

macro_rules! spelled {
    ($doc:ident, $names:expr, $description:literal) => {
        #[doc = $description]
        pub struct $doc;
        impl PartialSchema for $doc {
            fn schema() -> RefOr<Schema> {
                spellings($names, $description)
            }
        }
        impl ToSchema for $doc {}
    };
}

spelled!(RunStatusName, RunStatus::NAMES, "A run's status.");
spelled!(StageStatusName, StageStatus::NAMES, "A stage's status.");
spelled!(
    PolicyDecisionName,
    &["allow", "deny", "require-approval"],
    "What a policy decided."
);
spelled!(
    ApprovalStatusName,
    ApprovalStatus::NAMES,
    "An approval's status."
);

/// Any JSON object: a playbook's trigger input.
pub struct Input;
impl PartialSchema for Input {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "the trigger input, checked against the playbook's input schema",
            ))
            .into()
    }
}
impl ToSchema for Input {}

/// Every error answer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// A stable code: `unauthorized`, `forbidden`, `not-found`, `invalid-input`,
    /// `already-decided`, `expired`, `kill-switch-engaged`, `body-too-large`, ...
    pub code: String,
    pub message: String,
    /// With `invalid-input`: each problem of the input.
    #[serde(default)]
    pub details: Option<Vec<InputProblem>>,
}

/// One problem of an input (`invalid-input`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InputProblem {
    /// A JSON pointer into the input.
    pub path: String,
    pub reason: String,
    /// The playbook whose input schema refused it.
    pub playbook: String,
}

/// `POST /v1/events/{event}`: the runs started (none when no playbook is triggered by it).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventRuns {
    pub runs: Vec<String>,
}

/// `POST /v1/runs`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// `metadata.name` of a served playbook.
    pub playbook: String,
    #[serde(default)]
    #[schema(value_type = Option<Input>)]
    pub input: Option<serde_json::Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunCreated {
    pub run: String,
}

/// A run in a list (`pbc runs --format json`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunSummary {
    pub run: String,
    pub playbook: String,
    #[schema(value_type = RunStatusName)]
    pub status: String,
    /// The stage waiting for a decision.
    pub waiting_on: Option<String>,
    /// RFC 3339.
    pub started: String,
}

/// The kill switch (the latch no run starts through).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KillSwitch {
    pub engaged: bool,
    pub by: Option<String>,
    /// RFC 3339.
    pub at: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunList {
    pub runs: Vec<RunSummary>,
    pub kill_switch: KillSwitch,
}

/// One stage of a run.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageReport {
    #[schema(value_type = StageStatusName)]
    pub status: String,
    pub guardrails_triggered: Vec<String>,
    pub approval_id: Option<String>,
    /// What the stage's executor answered (null before it ran).
    pub output: serde_json::Value,
    /// The policy decision that settled the stage (absent when no policy is bound).
    #[serde(default)]
    pub policy: Option<StagePolicy>,
}

/// A policy's decision on a stage.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StagePolicy {
    /// The policy's name in `.pbc.yaml`.
    pub name: String,
    #[schema(value_type = PolicyDecisionName)]
    pub decision: String,
    /// A deny's reasons (an allow's warnings).
    pub reasons: Vec<String>,
}

/// A run (`pbc run --format json`): stages by name.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunReport {
    pub run: String,
    #[schema(value_type = RunStatusName)]
    pub status: String,
    pub stages: BTreeMap<String, StageReport>,
}

/// The runs a stop ended.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Stopped {
    pub stopped: Vec<String>,
}

/// The kill switch after a request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KillSwitchAnswer {
    pub kill_switch: KillSwitch,
    /// `POST`: the runs it stopped.
    #[serde(default)]
    pub stopped: Option<Vec<String>>,
    /// `DELETE`: who had engaged it (none: it was not engaged).
    #[serde(default)]
    pub was_engaged_by: Option<String>,
}

/// An approver: a role or a person.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum Approver {
    Role(String),
    User(String),
}

/// A pending approval the caller may decide.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PendingApproval {
    pub id: String,
    pub run: String,
    pub playbook: String,
    /// None: the playbook's own (medium-risk) approval.
    pub stage: Option<String>,
    pub approvers: Vec<Approver>,
    pub requested_by: String,
    /// RFC 3339; none without an SLA.
    pub deadline: Option<String>,
    /// The escalation level (0 before the first).
    pub level: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalList {
    pub approvals: Vec<PendingApproval>,
}

/// `POST /v1/approvals/{id}/reject`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    pub reason: String,
}

/// A decision taken.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionAnswer {
    pub approval: String,
    pub run: String,
    pub stage: Option<String>,
    #[schema(value_type = ApprovalStatusName)]
    pub status: String,
    pub by: String,
    /// The role through which the caller decided (none: named as a person).
    pub role: Option<String>,
    /// For a gate that needs several distinct approvers (`min-approvals`): how many.
    #[serde(default)]
    pub min_approvals: Option<u32>,
    /// For such a gate: who approved so far, the caller included. The status stays
    /// `pending` until there are `min_approvals` of them.
    #[serde(default)]
    pub approved_by: Option<Vec<String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub status: String,
}

/// What `POST /v1/slack/interactions` answers Slack (the outcome also replaces the message).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackAnswer {
    /// Whether the approval was decided.
    pub decided: bool,
    /// The outcome, as posted to the interaction's response_url.
    pub text: String,
}

/// Bearer tokens and signed events.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "a token whose sha256 is in `serve.tokens` or `serve.tokens-file`, \
                         or a JWT from the issuer `serve.oidc` names",
                    ))
                    .build(),
            ),
        );
        c.add_security_scheme(
            "event-signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Hub-Signature-256",
                "`sha256=HEX`, the HMAC-SHA256 of the body with the secret from \
                 `serve.event-secret-env`",
            ))),
        );
        c.add_security_scheme(
            "slack-signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Slack-Signature",
                "`v0=HEX`, the HMAC-SHA256 of `v0:{X-Slack-Request-Timestamp}:{body}` with the \
                 secret from `serve.slack.signing-secret-env`",
            ))),
        );
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "pbc_session",
                "the web page's session, set by `POST /ui/login` (HttpOnly, SameSite=Strict); \
                 every form also carries the session's CSRF token",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pbc serve",
        description = "The runtime as a service: events and runs, approvals (also from Slack \
                       and the web page), the kill switch, health and metrics. Errors answer `{\"error\": {\"code\", \"message\"}}`."
    ),
    modifiers(&Security),
    tags(
        (name = "runs", description = "Starting, reading and stopping runs"),
        (name = "approvals", description = "Deciding gates"),
        (name = "operations", description = "Kill switch, health, metrics"),
        (name = "web page", description = "The server-rendered approval page (HTML, no JavaScript)")
    )
)]
pub struct Doc;

/// The document, as committed in `schemas/pbc-serve-openapi.json` (pretty JSON, a final
/// newline).
pub fn document() -> String {
    let (_, doc) = crate::routes().split_for_parts();
    let mut s = doc.to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}
