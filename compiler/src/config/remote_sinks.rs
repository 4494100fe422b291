//! Reading the remote audit-sink kinds of `audit-sinks:` (`s3`, `otlp`, `cloudtrail`,
//! `syslog`): each kind's keys, defaults and what it needs.

use super::channels::Reader;
use super::sinks::{AwsCredentialsEnv, CloudTrailSink, OtlpSink, S3Sink, SyslogSink};
use crate::yaml::{Node, ScalarKind};

impl Reader<'_> {
    fn flag(&mut self, v: &Node, key: &str) -> Option<bool> {
        match v.as_scalar() {
            Some(s) if s.kind == ScalarKind::Bool => Some(s.text == "true"),
            _ => {
                self.err(v.span, format!("`{key}` must be true or false"));
                None
            }
        }
    }

    fn port(&mut self, v: &Node) -> Option<u16> {
        match v.as_scalar() {
            Some(s) if s.kind == ScalarKind::Int => match s.text.parse::<u16>() {
                Ok(p) if p > 0 => Some(p),
                _ => {
                    self.err(v.span, "`port` must be 1 to 65535".into());
                    None
                }
            },
            _ => {
                self.err(v.span, "`port` must be an integer".into());
                None
            }
        }
    }

    /// A key the three AWS kinds share; false when `key` is none of them.
    fn aws_key(&mut self, c: &mut AwsCredentialsEnv, key: &str, v: &Node) -> bool {
        let slot = match key {
            "access-key-id-env" => &mut c.access_key_id_env,
            "secret-access-key-env" => &mut c.secret_access_key_env,
            "session-token-env" => &mut c.session_token_env,
            _ => return false,
        };
        if let Some(s) = self.env_name(v, key) {
            *slot = s;
        }
        true
    }

    fn missing(&mut self, v: &Node, kind: &str, name: &str, what: &[(&str, bool)]) {
        let missing: Vec<String> = what
            .iter()
            .filter(|(_, m)| *m)
            .map(|(k, _)| format!("`{k}`"))
            .collect();
        if self.ok && !missing.is_empty() {
            self.err(
                v.span,
                format!("{kind} sink `{name}` needs {}", missing.join(", ")),
            );
        }
    }

    pub(super) fn s3(&mut self, name: &str, v: &Node) -> Option<S3Sink> {
        const KEYS: &[&str] = &[
            "bucket",
            "prefix",
            "region",
            "endpoint",
            "path-style",
            "object-lock",
            "access-key-id-env",
            "secret-access-key-env",
            "session-token-env",
            "timeout",
        ];
        let m = self.map("s3", v)?;
        let mut d = S3Sink {
            bucket: String::new(),
            prefix: "pbc-audit/".into(),
            region: "us-east-1".into(),
            endpoint: None,
            path_style: false,
            object_lock: false,
            credentials: AwsCredentialsEnv::default(),
            timeout: 30,
        };
        for x in m {
            let k = x.key_str();
            if self.aws_key(&mut d.credentials, k, &x.value) {
                continue;
            }
            match k {
                "bucket" => d.bucket = self.string(&x.value, "bucket").unwrap_or_default(),
                "prefix" => match x.value.as_str() {
                    Some(p) if !p.contains(char::is_whitespace) && !p.starts_with('/') => {
                        d.prefix = p.to_string()
                    }
                    _ => self.err(
                        x.value.span,
                        "`prefix` must be a key prefix without spaces, not starting with `/`"
                            .into(),
                    ),
                },
                "region" => d.region = self.string(&x.value, "region").unwrap_or(d.region),
                "endpoint" => d.endpoint = self.url(&x.value, "endpoint"),
                "path-style" => d.path_style = self.flag(&x.value, k).unwrap_or(false),
                "object-lock" => d.object_lock = self.flag(&x.value, k).unwrap_or(false),
                "timeout" => d.timeout = self.seconds(&x.value, k).unwrap_or(d.timeout),
                other => self.unknown(x.key.span, other, KEYS),
            }
        }
        self.missing(v, "s3", name, &[("bucket", d.bucket.is_empty())]);
        Some(d)
    }

    pub(super) fn otlp(&mut self, name: &str, v: &Node) -> Option<OtlpSink> {
        const KEYS: &[&str] = &["endpoint", "headers-env", "service-name", "timeout"];
        let m = self.map("otlp", v)?;
        let mut d = OtlpSink {
            endpoint: String::new(),
            headers_env: None,
            service_name: "pbc".into(),
            logs: true,
            timeout: 10,
        };
        for x in m {
            match x.key_str() {
                "endpoint" => d.endpoint = self.url(&x.value, "endpoint").unwrap_or_default(),
                "headers-env" => d.headers_env = self.env_name(&x.value, "headers-env"),
                "service-name" => {
                    d.service_name = self
                        .string(&x.value, "service-name")
                        .unwrap_or(d.service_name)
                }
                "logs" => d.logs = self.flag(&x.value, "logs").unwrap_or(true),
                "timeout" => d.timeout = self.seconds(&x.value, "timeout").unwrap_or(d.timeout),
                other => self.unknown(x.key.span, other, KEYS),
            }
        }
        self.missing(v, "otlp", name, &[("endpoint", d.endpoint.is_empty())]);
        Some(d)
    }

    pub(super) fn cloudtrail(&mut self, name: &str, v: &Node) -> Option<CloudTrailSink> {
        const KEYS: &[&str] = &[
            "channel-arn",
            "region",
            "endpoint",
            "account",
            "access-key-id-env",
            "secret-access-key-env",
            "session-token-env",
            "timeout",
        ];
        let m = self.map("cloudtrail", v)?;
        let mut d = CloudTrailSink {
            channel_arn: String::new(),
            region: String::new(),
            endpoint: None,
            account: String::new(),
            credentials: AwsCredentialsEnv::default(),
            timeout: 10,
        };
        for x in m {
            let k = x.key_str();
            if self.aws_key(&mut d.credentials, k, &x.value) {
                continue;
            }
            match k {
                "channel-arn" => {
                    let Some(arn) = self.string(&x.value, k) else {
                        continue;
                    };
                    // arn:PARTITION:cloudtrail:REGION:ACCOUNT:channel/ID
                    let parts: Vec<&str> = arn.split(':').collect();
                    if parts.len() == 6
                        && parts[0] == "arn"
                        && parts[2] == "cloudtrail"
                        && parts[5].starts_with("channel/")
                    {
                        if d.region.is_empty() {
                            d.region = parts[3].to_string();
                        }
                        if d.account.is_empty() {
                            d.account = parts[4].to_string();
                        }
                        d.channel_arn = arn;
                    } else {
                        self.err(
                            x.value.span,
                            "`channel-arn` must be a CloudTrail Lake channel ARN, `arn:aws:cloudtrail:REGION:ACCOUNT:channel/ID`".into(),
                        );
                    }
                }
                "region" => d.region = self.string(&x.value, k).unwrap_or(d.region),
                "account" => d.account = self.string(&x.value, k).unwrap_or(d.account),
                "endpoint" => d.endpoint = self.url(&x.value, k),
                "timeout" => d.timeout = self.seconds(&x.value, k).unwrap_or(d.timeout),
                other => self.unknown(x.key.span, other, KEYS),
            }
        }
        self.missing(
            v,
            "cloudtrail",
            name,
            &[("channel-arn", d.channel_arn.is_empty())],
        );
        Some(d)
    }

    pub(super) fn syslog(&mut self, name: &str, v: &Node) -> Option<SyslogSink> {
        const KEYS: &[&str] = &["host", "port", "tls", "app-name", "hostname", "timeout"];
        let m = self.map("syslog", v)?;
        let mut port = None;
        let mut d = SyslogSink {
            host: String::new(),
            port: 0,
            tls: false,
            app_name: "pbc".into(),
            hostname: None,
            timeout: 10,
        };
        for x in m {
            let k = x.key_str();
            match k {
                "host" => d.host = self.string(&x.value, k).unwrap_or_default(),
                "port" => port = self.port(&x.value),
                "tls" => d.tls = self.flag(&x.value, k).unwrap_or(false),
                "app-name" => match self.string(&x.value, k) {
                    // RFC 5424 APP-NAME: 1*48PRINTUSASCII
                    Some(a) if a.len() <= 48 && a.bytes().all(|b| (33..=126).contains(&b)) => {
                        d.app_name = a
                    }
                    Some(_) => self.err(
                        x.value.span,
                        "`app-name` must be at most 48 printable ASCII characters, no spaces"
                            .into(),
                    ),
                    None => {}
                },
                "hostname" => d.hostname = self.string(&x.value, k),
                "timeout" => d.timeout = self.seconds(&x.value, k).unwrap_or(d.timeout),
                other => self.unknown(x.key.span, other, KEYS),
            }
        }
        self.missing(v, "syslog", name, &[("host", d.host.is_empty())]);
        d.port = port.unwrap_or(if d.tls { 6514 } else { 601 });
        Some(d)
    }
}
