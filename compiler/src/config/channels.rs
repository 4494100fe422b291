//! `notifications:` in `.pbc.yaml`: the channels playbooks name in `notification.on-*`,
//! `escalation[].notify` and `rollback.notification`.
//!
//! Kinds: `stdout`, `file`, `webhook` (pbc's JSON, signed with HMAC-SHA256), `slack`
//! (incoming webhook or bot token), `pagerduty` (Events API v2) and `email` (SMTP). Secrets —
//! tokens, passwords, URLs that hold a key — are never written in the file: config names the
//! environment variable that holds each one, read when a notification is delivered.

use super::{bad, duration, unknown_key};
use crate::diag::Diagnostic;
use crate::span::Span;
use crate::yaml::{Node, ScalarKind};
use std::path::{Path, PathBuf};

/// A notification channel. Serialized (a run freezes its configuration into the state store)
/// with the kind as the key: `{"webhook": {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelDef {
    /// Print on standard error.
    Stdout,
    /// Append JSON lines to a file (absolute, or relative to the configuration file).
    File(PathBuf),
    /// POST pbc's JSON to a URL, signed when `secret-env` is set.
    Webhook(WebhookDef),
    /// A Slack message (Block Kit).
    Slack(SlackDef),
    /// PagerDuty Events API v2.
    Pagerduty(PagerDutyDef),
    /// Email over SMTP.
    Email(EmailDef),
}

impl ChannelDef {
    /// The kind's name as written in the configuration.
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelDef::Stdout => "stdout",
            ChannelDef::File(_) => "file",
            ChannelDef::Webhook(_) => "webhook",
            ChannelDef::Slack(_) => "slack",
            ChannelDef::Pagerduty(_) => "pagerduty",
            ChannelDef::Email(_) => "email",
        }
    }

    /// Attempts after the first before a delivery is given up (`failed`).
    pub fn retries(&self) -> u32 {
        match self {
            ChannelDef::Stdout | ChannelDef::File(_) => 2,
            ChannelDef::Webhook(w) => w.retries,
            ChannelDef::Slack(s) => s.retries,
            ChannelDef::Pagerduty(p) => p.retries,
            ChannelDef::Email(e) => e.retries,
        }
    }
}

/// `webhook: {url, secret-env, timeout, retries}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct WebhookDef {
    /// The URL (`url`), unless it holds a key and comes from the environment (`url-env`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// The environment variable holding the HMAC secret; without it the POST is unsigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// Seconds per attempt.
    pub timeout: u64,
    /// Attempts after the first.
    pub retries: u32,
}

/// `slack: {webhook-url-env}` or `slack: {token-env, channel}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SlackDef {
    /// The environment variable holding an incoming-webhook URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url_env: Option<String>,
    /// The environment variable holding a bot token (`chat.postMessage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// The channel a bot token posts to (`#security` or an id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The Web API's base URL (default `https://slack.com/api`).
    pub api_url: String,
    pub timeout: u64,
    pub retries: u32,
}

/// `pagerduty: {routing-key-env, api-url, source}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PagerDutyDef {
    /// The environment variable holding the integration's routing key.
    pub routing_key_env: String,
    /// The Events API's base URL (default `https://events.pagerduty.com`; the EU service is
    /// `https://events.eu.pagerduty.com`).
    pub api_url: String,
    /// The event's `source` (default `pbc`).
    pub source: String,
    pub timeout: u64,
    pub retries: u32,
}

/// How an SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or network.
    None,
}

/// `email: {host, port, tls, from, to, username-env, password-env}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EmailDef {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub from: String,
    pub to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    pub timeout: u64,
    pub retries: u32,
}

/// The kinds, as the help lists them.
pub const KINDS: &[&str] = &["stdout", "file", "webhook", "slack", "pagerduty", "email"];

const SHAPES: &str = "`{stdout: true}`, `{file: PATH}`, `{webhook: {url, secret-env}}`, `{slack: {webhook-url-env}}`, `{pagerduty: {routing-key-env}}` or `{email: {host, from, to}}`";

/// Reads `notifications:`.
pub(super) fn read(
    root: &Path,
    v: &Node,
    diags: &mut Vec<Diagnostic>,
) -> Vec<(String, ChannelDef)> {
    let Some(entries) = v.as_map() else {
        diags.push(bad(
            v.span,
            format!(
                "`notifications` must be a mapping of channel names, found {}",
                v.type_name()
            ),
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries {
        let name = e.key_str().to_string();
        let Some(fields) = e.value.as_map().filter(|f| f.len() == 1) else {
            diags.push(bad(
                e.value.span,
                format!("channel `{name}` must be one of {SHAPES}"),
            ));
            continue;
        };
        let f = &fields[0];
        let mut r = Reader { diags, ok: true };
        let def = match f.key_str() {
            "stdout" => Some(ChannelDef::Stdout),
            "file" => match f.value.as_str() {
                Some(p) if !p.trim().is_empty() => Some(ChannelDef::File(root.join(p))),
                _ => {
                    r.diags
                        .push(bad(f.value.span, "`file` must be a path".into()));
                    None
                }
            },
            "webhook" => r.webhook(&name, &f.value).map(ChannelDef::Webhook),
            "slack" => r.slack(&name, &f.value).map(ChannelDef::Slack),
            "pagerduty" => r.pagerduty(&name, &f.value).map(ChannelDef::Pagerduty),
            "email" => r.email(&name, &f.value).map(ChannelDef::Email),
            other => {
                r.diags.push(unknown_key(f.key.span, other, KINDS));
                None
            }
        };
        if let Some(def) = def.filter(|_| r.ok) {
            out.push((name, def));
        }
    }
    out
}

/// Reads one channel's mapping, noting whether anything was wrong.
pub(super) struct Reader<'d> {
    pub(super) diags: &'d mut Vec<Diagnostic>,
    pub(super) ok: bool,
}

/// The secrets a channel must not hold inline, and the key that names their variable.
const INLINE_SECRETS: &[(&str, &str)] = &[
    ("secret", "secret-env"),
    ("token", "token-env"),
    ("webhook-url", "webhook-url-env"),
    ("routing-key", "routing-key-env"),
    ("integration-key", "routing-key-env"),
    ("password", "password-env"),
    ("username", "username-env"),
    ("access-key-id", "access-key-id-env"),
    ("secret-access-key", "secret-access-key-env"),
    ("session-token", "session-token-env"),
    ("headers", "headers-env"),
];

impl Reader<'_> {
    pub(super) fn err(&mut self, span: Span, msg: String) {
        self.ok = false;
        self.diags.push(bad(span, msg));
    }

    pub(super) fn map<'n>(&mut self, kind: &str, v: &'n Node) -> Option<&'n [crate::yaml::Entry]> {
        match v.as_map() {
            Some(m) => Some(m),
            None => {
                self.err(
                    v.span,
                    format!("`{kind}` must be a mapping, found {}", v.type_name()),
                );
                None
            }
        }
    }

    pub(super) fn unknown(&mut self, span: Span, key: &str, known: &[&str]) {
        self.ok = false;
        if let Some((_, env)) = INLINE_SECRETS.iter().find(|(k, _)| *k == key) {
            self.diags.push(
                bad(
                    span,
                    format!("`{key}` would put a secret in the configuration file"),
                )
                .with_help(format!(
                    "secrets come only from environment variables: write `{env}: VARIABLE_NAME` and set that variable where pbc runs"
                )),
            );
            return;
        }
        self.diags.push(unknown_key(span, key, known));
    }

    pub(super) fn string(&mut self, v: &Node, key: &str) -> Option<String> {
        match v.as_scalar() {
            Some(s) if s.kind == ScalarKind::Str && !s.text.trim().is_empty() => {
                Some(s.text.trim().to_string())
            }
            _ => {
                self.err(v.span, format!("`{key}` must be a non-empty string"));
                None
            }
        }
    }

    pub(super) fn env_name(&mut self, v: &Node, key: &str) -> Option<String> {
        let s = self.string(v, key)?;
        let valid = s
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if valid {
            Some(s)
        } else {
            self.err(
                v.span,
                format!(
                    "`{key}` names an environment variable (letters, digits, `_`), found `{s}`"
                ),
            );
            None
        }
    }

    pub(super) fn url(&mut self, v: &Node, key: &str) -> Option<String> {
        let s = self.string(v, key)?;
        if (s.starts_with("https://") || s.starts_with("http://"))
            && !s.contains(char::is_whitespace)
        {
            Some(s.trim_end_matches('/').to_string())
        } else {
            self.err(
                v.span,
                format!("`{key}` must be an https:// (or http://) URL"),
            );
            None
        }
    }

    pub(super) fn seconds(&mut self, v: &Node, key: &str) -> Option<u64> {
        let before = self.diags.len();
        let d = duration(v, key, self.diags);
        if self.diags.len() > before {
            self.ok = false;
        }
        d.map(|d| d.seconds.max(1))
    }

    pub(super) fn retries(&mut self, v: &Node) -> Option<u32> {
        match v.as_scalar() {
            Some(s) if s.kind == ScalarKind::Int => match s.text.parse::<u32>() {
                Ok(n) if n <= 20 => Some(n),
                _ => {
                    self.err(v.span, "`retries` must be 0 to 20".into());
                    None
                }
            },
            _ => {
                self.err(v.span, "`retries` must be an integer".into());
                None
            }
        }
    }

    fn webhook(&mut self, name: &str, v: &Node) -> Option<WebhookDef> {
        const KEYS: &[&str] = &["url", "url-env", "secret-env", "timeout", "retries"];
        let m = self.map("webhook", v)?;
        let mut d = WebhookDef {
            url: None,
            url_env: None,
            secret_env: None,
            timeout: 5,
            retries: 2,
        };
        for x in m {
            match x.key_str() {
                "url" => d.url = self.url(&x.value, "url"),
                "url-env" => d.url_env = self.env_name(&x.value, "url-env"),
                "secret-env" => d.secret_env = self.env_name(&x.value, "secret-env"),
                "timeout" => d.timeout = self.seconds(&x.value, "timeout").unwrap_or(d.timeout),
                "retries" => d.retries = self.retries(&x.value).unwrap_or(d.retries),
                other => self.unknown(x.key.span, other, KEYS),
            }
        }
        match (&d.url, &d.url_env) {
            (Some(_), Some(_)) => self.err(
                v.span,
                format!("webhook channel `{name}` has both `url` and `url-env`: keep one"),
            ),
            (None, None) if self.ok => self.err(
                v.span,
                format!(
                    "webhook channel `{name}` needs a `url` (or `url-env` when the URL holds a key)"
                ),
            ),
            _ => {}
        }
        Some(d)
    }

    fn slack(&mut self, name: &str, v: &Node) -> Option<SlackDef> {
        const KEYS: &[&str] = &[
            "webhook-url-env",
            "token-env",
            "channel",
            "api-url",
            "timeout",
            "retries",
        ];
        let m = self.map("slack", v)?;
        let mut d = SlackDef {
            webhook_url_env: None,
            token_env: None,
            channel: None,
            api_url: "https://slack.com/api".into(),
            timeout: 10,
            retries: 5,
        };
        for x in m {
            match x.key_str() {
                "webhook-url-env" => d.webhook_url_env = self.env_name(&x.value, "webhook-url-env"),
                "token-env" => d.token_env = self.env_name(&x.value, "token-env"),
                "channel" => d.channel = self.string(&x.value, "channel"),
                "api-url" => d.api_url = self.url(&x.value, "api-url").unwrap_or(d.api_url),
                "timeout" => d.timeout = self.seconds(&x.value, "timeout").unwrap_or(d.timeout),
                "retries" => d.retries = self.retries(&x.value).unwrap_or(d.retries),
                // A webhook URL holds its key: it comes from the environment.
                "webhook-url" | "url" => self.unknown(x.key.span, "webhook-url", KEYS),
                other => self.unknown(x.key.span, other, KEYS),
            }
        }
        if !self.ok {
            return Some(d);
        }
        match (&d.webhook_url_env, &d.token_env, &d.channel) {
            (Some(_), None, _) => {}
            (None, Some(_), Some(_)) => {}
            (None, Some(_), None) => self.err(
                v.span,
                format!("slack channel `{name}` posts with a bot token, so it needs `channel` (`#name` or an id)"),
            ),
            (Some(_), Some(_), _) => self.err(
                v.span,
                format!("slack channel `{name}` has both `webhook-url-env` and `token-env`: keep one"),
            ),
            (None, None, _) => self.err(
                v.span,
                format!("slack channel `{name}` needs `webhook-url-env` (an incoming webhook) or `token-env` and `channel` (a bot token)"),
            ),
        }
        Some(d)
    }

    fn pagerduty(&mut self, name: &str, v: &Node) -> Option<PagerDutyDef> {
        const KEYS: &[&str] = &["routing-key-env", "api-url", "source", "timeout", "retries"];
        let m = self.map("pagerduty", v)?;
        let mut key = None;
        let mut d = PagerDutyDef {
            routing_key_env: String::new(),
            api_url: "https://events.pagerduty.com".into(),
            source: "pbc".into(),
            timeout: 10,
            retries: 5,
        };
        for x in m {
            match x.key_str() {
                "routing-key-env" => key = self.env_name(&x.value, "routing-key-env"),
                "api-url" => d.api_url = self.url(&x.value, "api-url").unwrap_or(d.api_url),
                "source" => d.source = self.string(&x.value, "source").unwrap_or(d.source),
                "timeout" => d.timeout = self.seconds(&x.value, "timeout").unwrap_or(d.timeout),
                "retries" => d.retries = self.retries(&x.value).unwrap_or(d.retries),
                other => self.unknown(x.key.span, other, KEYS),
            }
        }
        match key {
            Some(k) => d.routing_key_env = k,
            None if self.ok => self.err(
                v.span,
                format!("pagerduty channel `{name}` needs `routing-key-env` (the variable holding the integration's routing key)"),
            ),
            None => {}
        }
        Some(d)
    }

    fn email(&mut self, name: &str, v: &Node) -> Option<EmailDef> {
        const KEYS: &[&str] = &[
            "host",
            "port",
            "tls",
            "from",
            "to",
            "username-env",
            "password-env",
            "timeout",
            "retries",
        ];
        let m = self.map("email", v)?;
        let (mut host, mut port, mut from, mut to) = (None, None, None, Vec::new());
        let mut d = EmailDef {
            host: String::new(),
            port: 0,
            tls: SmtpTls::Starttls,
            from: String::new(),
            to: Vec::new(),
            username_env: None,
            password_env: None,
            timeout: 10,
            retries: 5,
        };
        for x in m {
            match x.key_str() {
                "host" => host = self.string(&x.value, "host"),
                "port" => match x.value.as_scalar() {
                    Some(s) if s.kind == ScalarKind::Int => match s.text.parse::<u16>() {
                        Ok(p) if p > 0 => port = Some(p),
                        _ => self.err(x.value.span, "`port` must be 1 to 65535".into()),
                    },
                    _ => self.err(x.value.span, "`port` must be an integer".into()),
                },
                "tls" => match x.value.as_str() {
                    Some("starttls") => d.tls = SmtpTls::Starttls,
                    Some("tls") => d.tls = SmtpTls::Tls,
                    Some("none") => d.tls = SmtpTls::None,
                    _ => self.err(
                        x.value.span,
                        "`tls` must be `starttls` (default), `tls` or `none`".into(),
                    ),
                },
                "from" => from = self.address(&x.value, "from"),
                "to" => to = self.addresses(&x.value),
                "username-env" => d.username_env = self.env_name(&x.value, "username-env"),
                "password-env" => d.password_env = self.env_name(&x.value, "password-env"),
                "timeout" => d.timeout = self.seconds(&x.value, "timeout").unwrap_or(d.timeout),
                "retries" => d.retries = self.retries(&x.value).unwrap_or(d.retries),
                other => self.unknown(x.key.span, other, KEYS),
            }
        }
        if !self.ok {
            return Some(d);
        }
        let missing: Vec<&str> = [
            ("host", host.is_none()),
            ("from", from.is_none()),
            ("to", to.is_empty()),
        ]
        .iter()
        .filter(|(_, m)| *m)
        .map(|(k, _)| *k)
        .collect();
        if !missing.is_empty() {
            self.err(
                v.span,
                format!(
                    "email channel `{name}` needs {}",
                    missing
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            return Some(d);
        }
        if d.username_env.is_some() != d.password_env.is_some() {
            self.err(
                v.span,
                format!("email channel `{name}` needs both `username-env` and `password-env`, or neither"),
            );
        }
        d.host = host.unwrap_or_default();
        d.from = from.unwrap_or_default();
        d.to = to;
        d.port = port.unwrap_or(match d.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        });
        Some(d)
    }

    fn address(&mut self, v: &Node, key: &str) -> Option<String> {
        let s = self.string(v, key)?;
        // `Name <user@host>` or `user@host`; the mailer parses it fully when it sends.
        let addr = s
            .rsplit_once('<')
            .map(|(_, a)| a.trim_end_matches('>'))
            .unwrap_or(&s);
        if addr.contains('@') && !addr.contains(char::is_whitespace) {
            Some(s)
        } else {
            self.err(
                v.span,
                format!("`{key}` must be an email address, found `{s}`"),
            );
            None
        }
    }

    fn addresses(&mut self, v: &Node) -> Vec<String> {
        if v.as_scalar().is_some() {
            return self.address(v, "to").into_iter().collect();
        }
        let Some(items) = v.as_seq() else {
            self.err(
                v.span,
                "`to` must be an address or a list of addresses".into(),
            );
            return Vec::new();
        };
        items.iter().filter_map(|i| self.address(i, "to")).collect()
    }
}
