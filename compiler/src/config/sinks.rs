//! `audit-sinks:`: the audit sinks a playbook's `spec.audit.log-to` may name.
//!
//! `audit-sinks: {NAME: {KIND: ...}}` with the kinds `file: PATH` (JSON lines, relative to
//! the configuration file like a `file` notification channel), `s3` (JSON Lines objects in a
//! bucket, optionally under Object Lock), `otlp` (OpenTelemetry over HTTP, protobuf),
//! `cloudtrail` (CloudTrail Lake `PutAuditEvents`) and `syslog` (RFC 5424 over TCP, TLS
//! optional). Credentials are never written in the file: config names the environment
//! variables that hold them, read when a batch is delivered. A remote sink has no
//! `retries`: an audit trail is never given up, a failing sink is retried with a back-off.

use super::channels::Reader;
use super::{Config, bad, unknown_key};
use crate::diag::Diagnostic;
use crate::yaml::Node;
use std::path::PathBuf;

/// An audit sink. Serialized (a run freezes its configuration) with the kind as the key.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkDef {
    /// Append the audit trail as JSON lines to a file (absolute, or relative to the
    /// configuration file).
    File(PathBuf),
    /// JSON Lines objects in an S3 bucket (or an S3-compatible store).
    S3(S3Sink),
    /// OTLP/HTTP (protobuf): a run is a trace, audit entries are log records.
    Otlp(OtlpSink),
    /// CloudTrail Lake `PutAuditEvents` on a channel.
    Cloudtrail(CloudTrailSink),
    /// RFC 5424 syslog over TCP (octet counting), TLS optional.
    Syslog(SyslogSink),
}

impl SinkDef {
    /// The kind's name as written in the configuration.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkDef::File(_) => "file",
            SinkDef::S3(_) => "s3",
            SinkDef::Otlp(_) => "otlp",
            SinkDef::Cloudtrail(_) => "cloudtrail",
            SinkDef::Syslog(_) => "syslog",
        }
    }
}

/// Where AWS-style credentials come from: the variables holding them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AwsCredentialsEnv {
    /// Default `AWS_ACCESS_KEY_ID`.
    pub access_key_id_env: String,
    /// Default `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key_env: String,
    /// Default `AWS_SESSION_TOKEN` (used when set).
    pub session_token_env: String,
}

impl Default for AwsCredentialsEnv {
    fn default() -> Self {
        AwsCredentialsEnv {
            access_key_id_env: "AWS_ACCESS_KEY_ID".into(),
            secret_access_key_env: "AWS_SECRET_ACCESS_KEY".into(),
            session_token_env: "AWS_SESSION_TOKEN".into(),
        }
    }
}

/// `s3: {bucket, prefix, region, endpoint, path-style, object-lock, ...-env}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct S3Sink {
    pub bucket: String,
    /// Key prefix (default `pbc-audit/`).
    pub prefix: String,
    pub region: String,
    /// An S3-compatible store's base URL (default: AWS in `region`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `https://ENDPOINT/BUCKET/KEY` instead of `https://BUCKET.ENDPOINT/KEY`.
    pub path_style: bool,
    /// Write each object under Object Lock `COMPLIANCE` until the playbook's
    /// `audit.retention` has passed.
    pub object_lock: bool,
    pub credentials: AwsCredentialsEnv,
    /// Seconds per attempt.
    pub timeout: u64,
}

/// `otlp: {endpoint, headers-env, service-name}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OtlpSink {
    /// The collector's base URL; traces go to `ENDPOINT/v1/traces`, logs to `ENDPOINT/v1/logs`.
    pub endpoint: String,
    /// The variable holding extra headers, `key=value,key2=value2` (as
    /// `OTEL_EXPORTER_OTLP_HEADERS`): an `Authorization` for Langfuse and hosted collectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers_env: Option<String>,
    /// The resource's `service.name` (default `pbc`).
    pub service_name: String,
    /// Send the entries as log records too (default true; Langfuse takes traces only).
    #[serde(default = "yes")]
    pub logs: bool,
    /// Seconds per attempt.
    pub timeout: u64,
}

fn yes() -> bool {
    true
}

/// `cloudtrail: {channel-arn, region, endpoint, ...-env}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CloudTrailSink {
    pub channel_arn: String,
    pub region: String,
    /// Default `https://cloudtrail-data.REGION.amazonaws.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The account the events are recorded for (`recipientAccountId`; default: the one in
    /// the channel's ARN).
    pub account: String,
    pub credentials: AwsCredentialsEnv,
    /// Seconds per attempt.
    pub timeout: u64,
}

/// `syslog: {host, port, tls, app-name, hostname}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SyslogSink {
    pub host: String,
    /// Default 6514 with TLS, 601 without.
    pub port: u16,
    pub tls: bool,
    /// APP-NAME (default `pbc`).
    pub app_name: String,
    /// HOSTNAME (default: this machine's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Seconds per attempt.
    pub timeout: u64,
}

/// The sink kinds.
pub const SINK_KINDS: &[&str] = &["file", "s3", "otlp", "cloudtrail", "syslog"];

/// Kept for callers of the older interface: every kind the format names is delivered.
pub const UNDELIVERED_SINK_KINDS: &[&str] = &[];

const SHAPES: &str = "`{file: PATH}`, `{s3: {bucket}}`, `{otlp: {endpoint}}`, `{cloudtrail: {channel-arn}}` or `{syslog: {host}}`";

impl Config {
    /// `audit-sinks:`, a mapping of sink names to one kind each.
    pub(super) fn read_audit_sinks(&mut self, v: &Node, diags: &mut Vec<Diagnostic>) {
        let Some(entries) = v.as_map() else {
            diags.push(bad(
                v.span,
                format!(
                    "`audit-sinks` must be a mapping of sink names, found {}",
                    v.type_name()
                ),
            ));
            return;
        };
        for e in entries {
            let name = e.key_str().to_string();
            let Some(fields) = e.value.as_map().filter(|f| f.len() == 1) else {
                diags.push(bad(
                    e.value.span,
                    format!("audit sink `{name}` must be one of {SHAPES}, one kind"),
                ));
                continue;
            };
            let f = &fields[0];
            let mut r = Reader { diags, ok: true };
            let def = match f.key_str() {
                "file" => match f.value.as_str() {
                    Some(p) if !p.trim().is_empty() => Some(SinkDef::File(self.root.join(p))),
                    _ => {
                        r.err(f.value.span, "`file` must be a path".into());
                        None
                    }
                },
                "s3" => r.s3(&name, &f.value).map(SinkDef::S3),
                "otlp" => r.otlp(&name, &f.value).map(SinkDef::Otlp),
                "cloudtrail" => r.cloudtrail(&name, &f.value).map(SinkDef::Cloudtrail),
                "syslog" => r.syslog(&name, &f.value).map(SinkDef::Syslog),
                other => {
                    r.ok = false;
                    r.diags.push(unknown_key(f.key.span, other, SINK_KINDS));
                    None
                }
            };
            if let Some(def) = def.filter(|_| r.ok) {
                self.audit_sinks.insert(name, def);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::OsFs;
    use crate::load::Loader;
    use std::sync::Arc;

    /// Applies a configuration text; returns it and `(code, text under the span, message)`.
    fn apply(text: &str) -> (Config, Vec<(&'static str, String, String)>) {
        let loader = Loader::new(Arc::new(OsFs), "", Default::default());
        let l = loader.load_text("c.yaml", text);
        let mut diags = l.diags.clone();
        let mut cfg = Config {
            root: PathBuf::from("/etc/pbc"),
            ..Config::default()
        };
        cfg.apply(&l.docs[0].root, &mut diags);
        let f = loader.sources.get(l.docs[0].root.span.file);
        let out = diags
            .iter()
            .map(|d| {
                let under = f.as_ref().map(|f| f.slice(d.span).to_string());
                (d.code.id, under.unwrap_or_default(), d.message.clone())
            })
            .collect();
        (cfg, out)
    }

    #[test]
    fn file_sinks_resolve_against_the_config_directory() {
        let (cfg, d) = apply(
            "audit-sinks:\n  local: {file: .pbc/audit.jsonl}\n  abs: {file: /var/log/a.jsonl}\n",
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            cfg.audit_sinks.get("local"),
            Some(&SinkDef::File(PathBuf::from("/etc/pbc/.pbc/audit.jsonl")))
        );
        assert_eq!(
            cfg.audit_sinks.get("abs"),
            Some(&SinkDef::File(PathBuf::from("/var/log/a.jsonl")))
        );
    }

    #[test]
    fn sink_defs_round_trip_through_json() {
        let def = SinkDef::File(PathBuf::from("/a/b.jsonl"));
        let json = serde_json::to_string(&def).unwrap_or_default();
        assert_eq!(json, r#"{"file":"/a/b.jsonl"}"#);
        assert_eq!(serde_json::from_str::<SinkDef>(&json).ok(), Some(def));
    }

    #[test]
    fn remote_kinds_read_with_their_defaults() {
        let (cfg, d) = apply(concat!(
            "audit-sinks:\n",
            "  a: {s3: {bucket: b, endpoint: 'http://127.0.0.1:9000/', path-style: true, object-lock: true}}\n",
            "  o: {otlp: {endpoint: 'http://127.0.0.1:4318', headers-env: OTLP_HEADERS}}\n",
            "  c: {cloudtrail: {channel-arn: 'arn:aws:cloudtrail:eu-west-1:123456789012:channel/abc'}}\n",
            "  s: {syslog: {host: 127.0.0.1, tls: true}}\n",
        ));
        assert!(d.is_empty(), "{d:?}");
        let Some(SinkDef::S3(s3)) = cfg.audit_sinks.get("a") else {
            panic!("{:?}", cfg.audit_sinks)
        };
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(s3.path_style && s3.object_lock);
        assert_eq!(s3.prefix, "pbc-audit/");
        assert_eq!(
            s3.credentials.secret_access_key_env,
            "AWS_SECRET_ACCESS_KEY"
        );
        let Some(SinkDef::Cloudtrail(c)) = cfg.audit_sinks.get("c") else {
            panic!()
        };
        assert_eq!(
            (c.region.as_str(), c.account.as_str()),
            ("eu-west-1", "123456789012")
        );
        let Some(SinkDef::Syslog(s)) = cfg.audit_sinks.get("s") else {
            panic!()
        };
        assert_eq!(s.port, 6514);
        let Some(SinkDef::Otlp(o)) = cfg.audit_sinks.get("o") else {
            panic!()
        };
        assert_eq!(o.headers_env.as_deref(), Some("OTLP_HEADERS"));
        for def in cfg.audit_sinks.values() {
            let json = serde_json::to_string(def).unwrap_or_default();
            assert_eq!(
                serde_json::from_str::<SinkDef>(&json).ok().as_ref(),
                Some(def)
            );
        }
    }

    #[test]
    fn remote_kinds_refuse_inline_secrets_and_missing_keys() {
        for (text, under, msg) in [
            (
                "audit-sinks:\n  a: {s3: {bucket: b, secret-access-key: x}}\n",
                "secret-access-key",
                "`secret-access-key` would put a secret in the configuration file",
            ),
            (
                "audit-sinks:\n  a: {s3: {prefix: x/}}\n",
                "{prefix: x/}",
                "s3 sink `a` needs `bucket`",
            ),
            (
                "audit-sinks:\n  a: {syslog: {host: h, port: 0}}\n",
                "0",
                "`port` must be 1 to 65535",
            ),
            (
                "audit-sinks:\n  a: {cloudtrail: {channel-arn: 'arn:aws:s3:::b'}}\n",
                "'arn:aws:s3:::b'",
                "`channel-arn` must be a CloudTrail Lake channel ARN, `arn:aws:cloudtrail:REGION:ACCOUNT:channel/ID`",
            ),
            (
                "audit-sinks:\n  a: {otlp: {endpoint: localhost:4318}}\n",
                "localhost:4318",
                "`endpoint` must be an https:// (or http://) URL",
            ),
        ] {
            let (cfg, d) = apply(text);
            assert!(cfg.audit_sinks.is_empty(), "{text}");
            assert_eq!(d.len(), 1, "{text}: {d:?}");
            assert_eq!((d[0].1.as_str(), d[0].2.as_str()), (under, msg), "{text}");
        }
    }

    #[test]
    fn unknown_kinds_are_unknown_keys_with_a_guess() {
        let loader = Loader::new(Arc::new(OsFs), "", Default::default());
        let l = loader.load_text("c.yaml", "audit-sinks:\n  trail: {fiel: a.jsonl}\n");
        let mut diags = Vec::new();
        let mut cfg = Config::default();
        cfg.apply(&l.docs[0].root, &mut diags);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].code.id, "PB0020");
        assert_eq!(diags[0].message, "unknown configuration key `fiel`");
        let help = diags[0].help.clone().unwrap_or_default();
        assert!(help.starts_with("did you mean `file`?"), "{help}");
        assert!(cfg.audit_sinks.is_empty());
    }

    #[test]
    fn wrong_shapes_are_bad_values() {
        for (text, under) in [
            ("audit-sinks: [a]\n", "[a]"),
            ("audit-sinks:\n  a: b.jsonl\n", "b.jsonl"),
            ("audit-sinks:\n  a: {}\n", "{}"),
            (
                "audit-sinks:\n  a: {file: x, stdout: true}\n",
                "{file: x, stdout: true}",
            ),
            ("audit-sinks:\n  a: {file: [x]}\n", "[x]"),
            ("audit-sinks:\n  a: {file: ''}\n", "''"),
        ] {
            let (cfg, d) = apply(text);
            assert!(cfg.audit_sinks.is_empty(), "{text}");
            assert_eq!(d.len(), 1, "{text}: {d:?}");
            assert_eq!((d[0].0, d[0].1.as_str()), ("PB0021", under), "{text}");
        }
    }
}
