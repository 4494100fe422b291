//! `serve:` in `.pbc.yaml`: the settings of `pbc serve`: its public address (notifications
//! link to approval pages there), who may call it (sha256 hashes of bearer tokens, inline or in
//! a file), the env var holding the event signing secret, the agents file, the largest body
//! accepted, the number of worker threads, what a start does with schedule fires missed while
//! the server was down, the certificate and key of its TLS listener, and where its state
//! store's tables are (`state`: SQLite, or a PostgreSQL URL shared by a cluster).

pub use super::serve_identity::{ServeOidc, ServeSlack};
use super::serve_identity::{read_oidc, read_slack};
use super::{bad, unknown_key};
use crate::diag::Diagnostic;
use crate::yaml::{Node, ScalarKind};
use std::path::{Path, PathBuf};

/// The default `max-body-bytes`: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1 << 20;

/// One bearer token: the person it authenticates and the sha256 (hex) of the token.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenHash {
    pub user: String,
    /// 64 lower-case hex digits.
    pub sha256: String,
}

/// `serve:`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServeSettings {
    /// Where people reach `pbc serve` (`https://pbc.example.com`), without a trailing `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// `tokens: [{user, sha256}]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<TokenHash>,
    /// `tokens-file`: a YAML or JSON list of `{user, sha256}` (relative to the configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_file: Option<PathBuf>,
    /// `event-secret-env`: the environment variable holding the HMAC secret of events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_secret_env: Option<String>,
    /// `agents`: the agents file (relative to the configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<PathBuf>,
    /// `max-body-bytes` (default [`DEFAULT_MAX_BODY_BYTES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    /// `workers`: runs driven at once, and independent stages of one run stepped at once
    /// (default: the number of CPUs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
    /// `missed-schedules`: what a start does with the schedule fires due while no server ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed_schedules: Option<MissedSchedules>,
    /// `tls: {cert, key}`: serve HTTPS with this certificate chain and key (PEM files,
    /// relative to the configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServeTls>,
    /// `oidc`: bearer JWTs verified against a JWKS file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<ServeOidc>,
    /// `slack`: Approve / Reject buttons in Slack messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<ServeSlack>,
    /// `state`: `sqlite` (the default: `STATE/state.db`) or a `postgres://` URL without a
    /// password (it comes from `PBC_STATE_PASSWORD`); `PBC_STATE_URL` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// `signing-key`: the Ed25519 private key (PKCS#8 PEM, relative to the configuration)
    /// with which the server signs the approvals of the people it authenticated, as a
    /// delegate trusted in `approvals.delegates`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<PathBuf>,
}

/// `serve.missed-schedules`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MissedSchedules {
    /// Missed fires start nothing (the start logs how many there were).
    #[default]
    Skip,
    /// A playbook that missed fires runs once (one run, however many it missed).
    RunOnce,
}

impl MissedSchedules {
    pub fn as_str(self) -> &'static str {
        match self {
            MissedSchedules::Skip => "skip",
            MissedSchedules::RunOnce => "run-once",
        }
    }
}

/// `serve.tls`: the PEM files of the HTTPS listener.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServeTls {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl ServeSettings {
    /// The page where a person decides approval `id`, when a public URL is configured.
    pub fn approval_url(&self, id: &str) -> Option<String> {
        self.public_url
            .as_ref()
            .map(|u| format!("{u}/ui/approvals/{id}"))
    }
}

const KEYS: &[&str] = &[
    "public-url",
    "tokens",
    "tokens-file",
    "event-secret-env",
    "agents",
    "max-body-bytes",
    "workers",
    "missed-schedules",
    "tls",
    "oidc",
    "slack",
    "state",
    "signing-key",
];

/// `state` (top level, or `serve.state`): `sqlite`, or a `postgres://` / `postgresql://` URL
/// that names no password.
pub(crate) fn read_state(e: &crate::yaml::Entry, diags: &mut Vec<Diagnostic>) -> Option<String> {
    let v = e.value.as_str().map(str::trim).unwrap_or_default();
    let url = v
        .strip_prefix("postgres://")
        .or_else(|| v.strip_prefix("postgresql://"));
    match url {
        _ if v == "sqlite" => Some(v.to_string()),
        // `user:password@` or `?password=`: a secret in the configuration.
        Some(rest) if has_password(rest) => {
            diags.push(
                bad(e.value.span, "`state` must not hold a password".into()).with_help(
                    "give the URL without it (`postgres://pbc@db:5432/pbc`) and the password in the environment variable PBC_STATE_PASSWORD"
                        .to_string(),
                ),
            );
            None
        }
        Some(_) => Some(v.to_string()),
        None => {
            diags.push(
                bad(
                    e.value.span,
                    "`state` must be `sqlite` or a `postgres://` URL".into(),
                )
                .with_help(
                    "`sqlite` keeps the tables in STATE/state.db; `postgres://user@host:port/db` shares them across a cluster (docs/state.md)"
                        .to_string(),
                ),
            );
            None
        }
    }
}

/// Whether a URL (after its scheme) names a password.
fn has_password(rest: &str) -> bool {
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let user = authority.rsplit_once('@').map(|(u, _)| u);
    user.is_some_and(|u| u.contains(':'))
        || rest
            .split_once('?')
            .is_some_and(|(_, q)| q.split('&').any(|kv| kv.trim().starts_with("password=")))
}

/// Whether `s` is a sha256 in hex (64 hex digits).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `s` names an environment variable (`[A-Za-z_][A-Za-z0-9_]*`).
fn is_env_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Reads a list of `{user, sha256}` (the `tokens:` key, or a tokens file's document).
pub fn read_tokens(v: &Node, diags: &mut Vec<Diagnostic>) -> Vec<TokenHash> {
    let mut out = Vec::new();
    let Some(items) = v.as_seq() else {
        diags.push(bad(
            v.span,
            format!(
                "`tokens` must be a list of `{{user, sha256}}`, found {}",
                v.type_name()
            ),
        ));
        return out;
    };
    for item in items {
        let Some(entries) = item.as_map() else {
            diags.push(bad(
                item.span,
                format!(
                    "a token must be a mapping `{{user, sha256}}`, found {}",
                    item.type_name()
                ),
            ));
            continue;
        };
        let (mut user, mut sha) = (None, None);
        for e in entries {
            match e.key_str() {
                "user" => match e.value.as_str().map(str::trim) {
                    Some(u) if !u.is_empty() => user = Some(u.to_string()),
                    _ => diags.push(bad(
                        e.value.span,
                        "`user` must be a non-empty string".into(),
                    )),
                },
                "sha256" => match e.value.as_str().map(str::trim) {
                    Some(h) if is_sha256_hex(h) => sha = Some(h.to_ascii_lowercase()),
                    _ => diags.push(
                        bad(
                            e.value.span,
                            "`sha256` must be the sha256 of the token, 64 hex digits".into(),
                        )
                        .with_help(
                            "store only the hash: `printf %s \"$TOKEN\" | sha256sum`".to_string(),
                        ),
                    ),
                },
                other => diags.push(unknown_key(e.key.span, other, &["user", "sha256"])),
            }
        }
        match (user, sha) {
            (Some(user), Some(sha256)) => out.push(TokenHash { user, sha256 }),
            (None, _) => diags.push(bad(item.span, "a token needs `user`".into())),
            (_, None) => diags.push(bad(item.span, "a token needs `sha256`".into())),
        }
    }
    out
}

fn path_value(root: &Path, e: &crate::yaml::Entry, diags: &mut Vec<Diagnostic>) -> Option<PathBuf> {
    match e.value.as_str().map(str::trim) {
        Some(p) if !p.is_empty() => Some(root.join(p)),
        _ => {
            diags.push(bad(
                e.value.span,
                format!("`{}` must be a file path", e.key_str()),
            ));
            None
        }
    }
}

fn positive(e: &crate::yaml::Entry, max: u64, diags: &mut Vec<Diagnostic>) -> Option<u64> {
    let n = e
        .value
        .as_scalar()
        .filter(|s| s.kind == ScalarKind::Int)
        .and_then(|s| s.text.parse::<u64>().ok())
        .filter(|n| (1..=max).contains(n));
    if n.is_none() {
        diags.push(bad(
            e.value.span,
            format!("`{}` must be a whole number from 1 to {max}", e.key_str()),
        ));
    }
    n
}

/// `tls: {cert: PATH, key: PATH}`: both, nothing else.
fn read_tls(e: &crate::yaml::Entry, root: &Path, diags: &mut Vec<Diagnostic>) -> Option<ServeTls> {
    let Some(entries) = e.value.as_map() else {
        diags.push(
            bad(
                e.value.span,
                format!(
                    "`serve.tls` must be a mapping `{{cert, key}}`, found {}",
                    e.value.type_name()
                ),
            )
            .with_help("write `tls: {cert: server.pem, key: server.key}`".to_string()),
        );
        return None;
    };
    let (mut cert, mut key) = (None, None);
    for t in entries {
        match t.key_str() {
            "cert" => cert = path_value(root, t, diags),
            "key" => key = path_value(root, t, diags),
            other => diags.push(unknown_key(t.key.span, other, &["cert", "key"])),
        }
    }
    match (cert, key) {
        (Some(cert), Some(key)) => Some(ServeTls { cert, key }),
        (c, k) => {
            if c.is_none() && !entries.iter().any(|t| t.key_str() == "cert") {
                diags.push(
                    bad(e.value.span, "`serve.tls` needs `cert`".into())
                        .with_help("`cert` is the PEM certificate chain, leaf first".to_string()),
                );
            }
            if k.is_none() && !entries.iter().any(|t| t.key_str() == "key") {
                diags.push(
                    bad(e.value.span, "`serve.tls` needs `key`".into())
                        .with_help("`key` is the PEM private key".to_string()),
                );
            }
            None
        }
    }
}

pub(super) fn read(v: &Node, root: &Path, diags: &mut Vec<Diagnostic>) -> ServeSettings {
    let mut out = ServeSettings::default();
    let Some(entries) = v.as_map() else {
        diags.push(bad(
            v.span,
            format!("`serve` must be a mapping, found {}", v.type_name()),
        ));
        return out;
    };
    for e in entries {
        match e.key_str() {
            "public-url" => match e.value.as_str().map(str::trim) {
                Some(u)
                    if (u.starts_with("https://") || u.starts_with("http://"))
                        && !u.contains(char::is_whitespace) =>
                {
                    out.public_url = Some(u.trim_end_matches('/').to_string())
                }
                _ => diags.push(bad(
                    e.value.span,
                    "`public-url` must be an https:// (or http://) URL".into(),
                )),
            },
            "tokens" => out.tokens = read_tokens(&e.value, diags),
            "tokens-file" => out.tokens_file = path_value(root, e, diags),
            "agents" => out.agents = path_value(root, e, diags),
            "signing-key" => out.signing_key = path_value(root, e, diags),
            "event-secret-env" => match e.value.as_str().map(str::trim) {
                Some(n) if is_env_name(n) => out.event_secret_env = Some(n.to_string()),
                _ => diags.push(
                    bad(
                        e.value.span,
                        "`event-secret-env` must name an environment variable".into(),
                    )
                    .with_help(
                        "name the variable that holds the secret (`PBC_EVENT_SECRET`), never the secret itself"
                            .to_string(),
                    ),
                ),
            },
            "max-body-bytes" => out.max_body_bytes = positive(e, 1 << 30, diags),
            "workers" => out.workers = positive(e, 256, diags).map(|n| n as u32),
            "missed-schedules" => match e.value.as_str().map(str::trim) {
                Some("skip") => out.missed_schedules = Some(MissedSchedules::Skip),
                Some("run-once") => out.missed_schedules = Some(MissedSchedules::RunOnce),
                _ => diags.push(
                    bad(
                        e.value.span,
                        "`missed-schedules` must be `skip` or `run-once`".into(),
                    )
                    .with_help(
                        "`skip` starts nothing for fires missed while no server ran; `run-once` runs each such playbook once"
                            .to_string(),
                    ),
                ),
            },
            "tls" => out.tls = read_tls(e, root, diags),
            "oidc" => out.oidc = read_oidc(e, root, diags),
            "slack" => out.slack = read_slack(e, diags),
            "state" => out.state = read_state(e, diags),
            other => diags.push(unknown_key(e.key.span, other, KEYS)),
        }
    }
    out
}
