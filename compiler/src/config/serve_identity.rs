//! `serve.oidc` and `serve.slack` in `.pbc.yaml`: identities `pbc serve` accepts besides its
//! bearer tokens. `oidc` verifies JWTs against the keys of a JWKS file; `slack` verifies
//! the signature of Slack's interaction requests and maps Slack users to pbc users.

use super::{bad, unknown_key};
use crate::diag::Diagnostic;
use crate::yaml::Entry;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The claim that names the user when `user-claim` is absent.
pub const DEFAULT_USER_CLAIM: &str = "email";

/// `serve.oidc: {issuer, audience, jwks-file, user-claim}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServeOidc {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// An `aud` every token must carry.
    pub audience: String,
    /// The JSON Web Key Set with the issuer's public keys (relative to the configuration).
    pub jwks_file: PathBuf,
    /// The claim holding the user (default [`DEFAULT_USER_CLAIM`]).
    pub user_claim: String,
}

/// `serve.slack: {signing-secret-env, users}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServeSlack {
    /// The environment variable holding the Slack app's signing secret.
    pub signing_secret_env: String,
    /// Slack user id (`U0123ABCD`) → pbc user (the name roles and gates use).
    pub users: BTreeMap<String, String>,
}

fn text(e: &Entry, what: &str, diags: &mut Vec<Diagnostic>) -> Option<String> {
    match e.value.as_str().map(str::trim) {
        Some(s) if !s.is_empty() && !s.contains(char::is_whitespace) => Some(s.to_string()),
        _ => {
            diags.push(bad(
                e.value.span,
                format!("`{}` must be {what}", e.key_str()),
            ));
            None
        }
    }
}

fn mapping<'a>(e: &'a Entry, shape: &str, diags: &mut Vec<Diagnostic>) -> Option<&'a [Entry]> {
    let m = e.value.as_map();
    if m.is_none() {
        diags.push(bad(
            e.value.span,
            format!(
                "`serve.{}` must be a mapping `{shape}`, found {}",
                e.key_str(),
                e.value.type_name()
            ),
        ));
    }
    m
}

/// `oidc: {issuer, audience, jwks-file, user-claim}`.
pub(super) fn read_oidc(e: &Entry, root: &Path, diags: &mut Vec<Diagnostic>) -> Option<ServeOidc> {
    const KEYS: &[&str] = &["issuer", "audience", "jwks-file", "user-claim"];
    let entries = mapping(e, "{issuer, audience, jwks-file, user-claim}", diags)?;
    let (mut issuer, mut audience, mut jwks, mut claim) = (None, None, None, None);
    for t in entries {
        match t.key_str() {
            "issuer" => issuer = text(t, "the issuer's identifier (the tokens' `iss`)", diags),
            "audience" => audience = text(t, "the audience the tokens name (`aud`)", diags),
            "jwks-file" => jwks = text(t, "a file path", diags).map(|p| root.join(p)),
            "user-claim" => claim = text(t, "the name of a claim (`email`, `sub`)", diags),
            other => diags.push(unknown_key(t.key.span, other, KEYS)),
        }
    }
    let mut missing = |present: bool, key: &str, help: &str| {
        if !present && !entries.iter().any(|t| t.key_str() == key) {
            diags.push(
                bad(e.value.span, format!("`serve.oidc` needs `{key}`"))
                    .with_help(help.to_string()),
            );
        }
    };
    missing(
        issuer.is_some(),
        "issuer",
        "the `iss` of the tokens, such as `https://login.example.com`",
    );
    missing(
        audience.is_some(),
        "audience",
        "the `aud` the tokens are issued for (the client id)",
    );
    missing(
        jwks.is_some(),
        "jwks-file",
        "a JSON Web Key Set file holding the issuer's public keys",
    );
    Some(ServeOidc {
        issuer: issuer?,
        audience: audience?,
        jwks_file: jwks?,
        user_claim: claim.unwrap_or_else(|| DEFAULT_USER_CLAIM.to_string()),
    })
}

fn is_env_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// `slack: {signing-secret-env, users: {SLACK_USER_ID: USER}}`.
pub(super) fn read_slack(e: &Entry, diags: &mut Vec<Diagnostic>) -> Option<ServeSlack> {
    const KEYS: &[&str] = &["signing-secret-env", "users"];
    let entries = mapping(e, "{signing-secret-env, users}", diags)?;
    let mut out = ServeSlack::default();
    let mut secret = None;
    for t in entries {
        match t.key_str() {
            "signing-secret-env" => match t.value.as_str().map(str::trim) {
                Some(n) if is_env_name(n) => secret = Some(n.to_string()),
                _ => diags.push(
                    bad(
                        t.value.span,
                        "`signing-secret-env` must name an environment variable".into(),
                    )
                    .with_help(
                        "name the variable that holds the Slack app's signing secret, never the secret itself"
                            .to_string(),
                    ),
                ),
            },
            "users" => {
                let Some(users) = t.value.as_map() else {
                    diags.push(bad(
                        t.value.span,
                        format!(
                            "`users` must map Slack user ids to pbc users, found {}",
                            t.value.type_name()
                        ),
                    ));
                    continue;
                };
                for u in users {
                    match u.value.as_str().map(str::trim) {
                        Some(p) if !p.is_empty() => {
                            out.users.insert(u.key_str().to_string(), p.to_string());
                        }
                        _ => diags.push(bad(
                            u.value.span,
                            format!("Slack user `{}` must map to a pbc user", u.key_str()),
                        )),
                    }
                }
            }
            "signing-secret" => diags.push(
                bad(
                    t.key.span,
                    "`signing-secret` would put a secret in the configuration file".into(),
                )
                .with_help(
                    "secrets come only from environment variables: write `signing-secret-env: VARIABLE_NAME`"
                        .to_string(),
                ),
            ),
            other => diags.push(unknown_key(t.key.span, other, KEYS)),
        }
    }
    match secret {
        Some(s) => out.signing_secret_env = s,
        None => {
            if !entries
                .iter()
                .any(|t| t.key_str().starts_with("signing-secret"))
            {
                diags.push(
                    bad(e.value.span, "`serve.slack` needs `signing-secret-env`".into())
                        .with_help(
                            "the variable holding the signing secret of the Slack app (Basic Information page)"
                                .to_string(),
                        ),
                );
            }
            return None;
        }
    }
    Some(out)
}
