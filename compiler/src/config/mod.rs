//! The one configuration module: `.pbc.yaml`, found upward from the checked path or given
//! with `--config`. Its JSON Schema is `schemas/pbc-config.schema.json`; a test keeps the two
//! in agreement. Later features add their keys here (and there).

use crate::declare_codes;
use crate::diag::{Code, Diagnostic, Severity, did_you_mean, one_of};
use crate::fs::{FileKind, FileSystem, normalize};
use crate::load::Loader;
use crate::span::Span;
use crate::yaml::{Limits, Node, ScalarKind, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod approvals;
mod channels;
mod compliance;
mod environments;
mod people;
mod policies;
mod serve;
mod serve_identity;
mod settings;
mod suppress;

pub use approvals::{ApprovalSettings, public_key_bytes};
pub use channels::{ChannelDef, EmailDef, PagerDutyDef, SlackDef, SmtpTls, WebhookDef};
pub use compliance::{Applicability, ApplicabilityStatus};
pub use environments::EnvSettings;
pub use policies::{
    DEFAULT_POLICY_TIMEOUT_MS, Enforcement, PathRef, PolicyDef, PolicyKind, RuleDef,
};
pub use serve::{
    DEFAULT_MAX_BODY_BYTES, MissedSchedules, ServeOidc, ServeSettings, ServeSlack, ServeTls,
    TokenHash, is_sha256_hex, read_tokens,
};
pub use suppress::{allows, apply_suppressions, is_suppressed};
mod remote_sinks;
mod sinks;
pub use sinks::{
    AwsCredentialsEnv, CloudTrailSink, OtlpSink, S3Sink, SINK_KINDS, SinkDef, SyslogSink,
    UNDELIVERED_SINK_KINDS,
};

declare_codes! {
    /// A key in `.pbc.yaml` that pbc does not know.
    ///
    /// The configuration is closed: a misspelled key would otherwise be silently ignored.
    /// The help names the closest known key; `schemas/pbc-config.schema.json` lists them all.
    PB0020 CONFIG_UNKNOWN_KEY "config-unknown-key" Error "unknown key in the configuration";
    /// A value in `.pbc.yaml` has the wrong type or an invalid value.
    ///
    /// For example `severity: {PB2001: loud}` (allowed: `allow`, `warn`, `deny`) or
    /// `schema-paths: schemas` (a list is expected).
    PB0021 CONFIG_BAD_VALUE "config-bad-value" Error "invalid value in the configuration";
    /// `severity:` names a code that does not exist.
    ///
    /// Codes are `PB` followed by four digits; `pbc explain CODE` documents each one.
    PB0022 CONFIG_UNKNOWN_CODE "config-unknown-code" Warning "the configuration names an unknown code";
    /// A configuration key is written in a form that is still read but deprecated.
    ///
    /// `policies:` as a list of names defined nothing to evaluate: the names were labels.
    /// Policies are now defined by name, each as Rego, Cedar or declarative rules:
    ///
    /// ```yaml
    /// policies:
    ///   financial-transaction-limit:
    ///     rules:
    ///       - {resource: "payments:refund", param: amount, constraints: {amount_max: 1000}}
    /// ```
    ///
    /// A name from the list form is still known to the checker, but a stage bound to it is
    /// refused at run time (there is nothing to evaluate: fail closed). The fix writes
    /// `{rules: []}` for each name, a policy that allows everything, as the label did.
    PB0023 CONFIG_DEPRECATED "config-deprecated" Warning "a deprecated form in the configuration";
}

/// The file name searched for.
pub const FILE_NAME: &str = ".pbc.yaml";

/// A per-code severity override.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Suppress the finding.
    Allow,
    /// Report it as a warning.
    Warn,
    /// Report it as an error.
    Deny,
}

/// The loaded configuration (defaults when no file exists).
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from, if any.
    pub path: Option<PathBuf>,
    /// The directory relative paths in the file are resolved against.
    pub root: PathBuf,
    pub severity: BTreeMap<String, Level>,
    /// Where each `severity:` key was written (for validating codes against the registry).
    pub severity_spans: Vec<(String, Span)>,
    /// Directories searched for `output-schema`/`input-schema` files, after the file's own
    /// directory.
    pub schema_paths: Vec<PathBuf>,
    pub limits: Limits,
    /// Guardrails defined by the organisation, beyond the built-ins.
    pub guardrails: Vec<String>,
    /// Policy names defined by the organisation (with or without a definition).
    pub policies: Vec<String>,
    /// `policies:`: each policy's definition, by name.
    pub policy_defs: BTreeMap<String, PolicyDef>,
    /// `always-on-policies:`: policies applied to every action stage.
    pub always_on_policies: Vec<(String, Span)>,
    /// `check-policies:`: directories of Rego rules `pbc check` runs over each playbook.
    pub check_policies: Vec<PathRef>,
    /// Environments treated as production (compliance evidence).
    pub production_environments: Vec<String>,
    /// `environments:`: per environment, whether its overlays may weaken its base.
    pub environments: BTreeMap<String, EnvSettings>,
    /// `promotion-order:`: environments in the order changes are promoted through them; a
    /// protected environment may not weaken the one before it either.
    pub promotion_order: Vec<String>,
    /// Organisation catalogs (YAML files, same shape as the built-in ones), with the span of
    /// each entry in the configuration.
    pub catalogs: Vec<(PathBuf, Span)>,
    /// Organisation evidence rules (YAML files).
    pub evidence_rules: Vec<(PathBuf, Span)>,
    /// The organisation's minimum `audit.retention` (compliance evidence).
    pub audit_retention_minimum: Option<crate::model::Duration>,
    /// How the runtime enforces the organisation's guardrails (`guardrails:` as a mapping).
    /// A name listed without a definition is known to the checker but cannot be enforced.
    pub guardrail_defs: BTreeMap<String, GuardrailDef>,
    /// Guardrails the runtime applies to every stage (default `[prompt-injection-detection]`).
    pub always_on_guardrails: Vec<String>,
    /// Notification channels by name.
    pub notifications: BTreeMap<String, ChannelDef>,
    /// Audit sinks by name (`spec.audit.log-to` names them).
    pub audit_sinks: BTreeMap<String, SinkDef>,
    /// The SLA of a gate whose stage sets none.
    pub default_sla: Option<crate::model::Duration>,
    /// What a stage over its rate limit does.
    pub on_rate_limit: RateLimitMode,
    /// Settings of the `argo` and `crd` targets.
    pub targets: TargetSettings,
    /// `tls.ca-file`: PEM certificates trusted for https (the http executor, webhooks) on
    /// top of the system's roots, for private certificate authorities.
    pub tls_ca_file: Option<PathBuf>,
    /// Who belongs to each approver role (`roles: {security-team: [ann@example.com]}`): the
    /// one home of the role map for the runtime.
    pub roles: BTreeMap<String, Vec<String>>,
    /// `serve:`: the service's settings (its public address, for links in notifications).
    pub serve: ServeSettings,
    /// `state:`: where the runtime's tables are (`sqlite`, or a `postgres://` URL without a
    /// password), for every runtime that reads this configuration (`pbc serve`, the runner
    /// pods of the `argo` target). `PBC_STATE_URL` wins over it.
    pub state: Option<String>,
    /// `compliance.applicability`: the Statement of Applicability, in file order.
    pub applicability: Vec<Applicability>,
    /// `approvals:`: signed approval statements and the keys that verify them.
    pub approvals: ApprovalSettings,
}

/// `targets:`: what the emitted artifacts use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetSettings {
    /// The image that runs agent and action stages in Argo (`runner-image`).
    pub runner_image: String,
    /// No longer used: the Argo gate check runs `pbc runner gate` in the runner image (`check-image`, kept so that existing configurations still load).
    pub check_image: String,
    /// The API group of the CRD and the custom resources (`crd-group`).
    pub crd_group: String,
    /// `emit`: the targets the playbooks are deployed through (default all). Compliance
    /// evidence counts a construct only when each of them enforces it
    /// ([`crate::enforcement`]).
    pub emit: Vec<crate::enforcement::Target>,
    /// `emit` is written in the configuration: then a control a listed target does not
    /// enforce is an error (`crate::enforcement::check`); the default claims nothing.
    pub emit_set: bool,
}

impl Default for TargetSettings {
    fn default() -> Self {
        TargetSettings {
            runner_image: "ghcr.io/agenticops/pbc-runner:v1".into(),
            check_image: "docker.io/library/busybox:1.37.0".into(),
            crd_group: "agenticops.io".into(),
            emit: crate::enforcement::TARGETS.to_vec(),
            emit_set: false,
        }
    }
}

const TARGET_KEYS: &[&str] = &["runner-image", "check-image", "crd-group", "emit"];

/// A guardrail the organisation defines: regular expressions, or a command.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GuardrailDef {
    /// Regular expressions (Rust `regex` syntax); any match triggers the guardrail.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<String>,
    /// A command that gets `{"guardrail", "stage", "where", "data"}` as JSON on stdin and
    /// prints `{"triggered": bool, "matches": [{"path", "reason"}]}`; argv, relative to the
    /// configuration file's directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `on-rate-limit`: what a stage over its `spec.rate-limits` entry does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RateLimitMode {
    /// The stage fails with a message naming the limit (default).
    #[default]
    Fail,
    /// The run waits (status `waiting-approval`-like `pending`) until the window has room.
    Wait,
}

/// The guardrails applied to every stage unless the configuration says otherwise.
pub const DEFAULT_ALWAYS_ON: &[&str] = &["prompt-injection-detection"];

impl Default for Config {
    fn default() -> Self {
        Config {
            path: None,
            root: PathBuf::new(),
            severity: BTreeMap::new(),
            severity_spans: Vec::new(),
            schema_paths: Vec::new(),
            limits: Limits::default(),
            guardrails: Vec::new(),
            policies: Vec::new(),
            policy_defs: BTreeMap::new(),
            always_on_policies: Vec::new(),
            check_policies: Vec::new(),
            production_environments: vec!["production".into(), "prod".into()],
            environments: BTreeMap::new(),
            promotion_order: Vec::new(),
            catalogs: Vec::new(),
            evidence_rules: Vec::new(),
            audit_retention_minimum: None,
            guardrail_defs: BTreeMap::new(),
            always_on_guardrails: DEFAULT_ALWAYS_ON.iter().map(|s| s.to_string()).collect(),
            notifications: BTreeMap::new(),
            audit_sinks: BTreeMap::new(),
            default_sla: None,
            on_rate_limit: RateLimitMode::Fail,
            targets: TargetSettings::default(),
            tls_ca_file: None,
            roles: BTreeMap::new(),
            serve: ServeSettings::default(),
            state: None,
            applicability: Vec::new(),
            approvals: ApprovalSettings::default(),
        }
    }
}

/// Every top-level key the configuration accepts.
pub const KEYS: &[&str] = &[
    "severity",
    "schema-paths",
    "limits",
    "guardrails",
    "policies",
    "always-on-policies",
    "check-policies",
    "production-environments",
    "environments",
    "promotion-order",
    "catalogs",
    "evidence-rules",
    "audit-retention-minimum",
    "always-on-guardrails",
    "notifications",
    "audit-sinks",
    "default-sla",
    "on-rate-limit",
    "targets",
    "tls",
    "roles",
    "serve",
    "state",
    "compliance",
    "approvals",
];

/// The highest `limits.max-depth` accepted: walks over a document (emitters, checks) go as
/// deep as it nests, and must fit any thread's stack.
pub const MAX_DEPTH_CAP: u64 = 1000;

const LIMIT_KEYS: &[&str] = &[
    "max-file-size",
    "max-depth",
    "max-alias-nodes",
    "max-resources",
    "max-nodes",
    "max-output-bytes",
];

impl Config {
    /// Finds `.pbc.yaml` in `start` (a directory, or a file's directory) or its ancestors;
    /// when `start` is reached through a symbolic link and none is found that way, in the
    /// ancestors of the real directory (the project the files belong to).
    pub fn discover(fs: &dyn FileSystem, start: &Path) -> Option<PathBuf> {
        let abs = if start.is_absolute() {
            normalize(start)
        } else {
            normalize(&std::env::current_dir().ok()?.join(start))
        };
        let dir = match fs.metadata(&abs) {
            Ok(m) if m.kind == FileKind::Dir => abs,
            _ => abs.parent()?.to_path_buf(),
        };
        let upward = |mut dir: PathBuf| loop {
            let cand = dir.join(FILE_NAME);
            if fs.metadata(&cand).is_ok_and(|m| m.kind == FileKind::File) {
                return Some(cand);
            }
            if !dir.pop() {
                return None;
            }
        };
        if let Some(found) = upward(dir.clone()) {
            return Some(found);
        }
        let real = fs.canonicalize(&dir).ok()?;
        if real == dir { None } else { upward(real) }
    }

    /// Loads a configuration file. Problems are diagnostics in that file.
    pub fn load(
        loader: &Loader,
        path: &Path,
        diags: &mut Vec<Diagnostic>,
    ) -> Result<Config, String> {
        let loaded = loader.load(path).map_err(|e| e.to_string())?;
        diags.extend(loaded.diags.iter().cloned());
        let mut cfg = Config {
            path: Some(path.to_path_buf()),
            root: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            ..Config::default()
        };
        if let Some(doc) = loaded.docs.first() {
            cfg.apply(&doc.root, diags);
        }
        Ok(cfg)
    }

    /// Reads the keys of a configuration document.
    pub fn apply(&mut self, root: &Node, diags: &mut Vec<Diagnostic>) {
        if root.is_null() {
            return;
        }
        let Some(entries) = root.as_map() else {
            diags.push(bad(
                root.span,
                format!(
                    "the configuration must be a mapping, found {}",
                    root.type_name()
                ),
            ));
            return;
        };
        for e in entries {
            let key = e.key_str();
            let v = &e.value;
            match key {
                "severity" => self.read_severity(v, diags),
                "schema-paths" => {
                    if let Some(list) = string_list(v, "schema-paths", diags) {
                        self.schema_paths =
                            list.into_iter().map(|(s, _)| self.root.join(s)).collect();
                    }
                }
                "guardrails" => self.read_guardrails(v, diags),
                "always-on-guardrails" => {
                    if let Some(list) = string_list(v, "always-on-guardrails", diags) {
                        self.always_on_guardrails = list.into_iter().map(|(s, _)| s).collect();
                    }
                }
                "notifications" => {
                    self.notifications = channels::read(&self.root, v, diags).into_iter().collect()
                }
                "serve" => self.serve = serve::read(v, &self.root, diags),
                "state" => self.state = serve::read_state(e, diags),
                "audit-sinks" => self.read_audit_sinks(v, diags),
                "roles" => self.read_roles(v, diags),
                "approvals" => self.read_approvals(v, diags),
                "default-sla" => {
                    if let Some(d) = duration(v, "default-sla", diags) {
                        self.default_sla = Some(d);
                    }
                }
                "on-rate-limit" => match v.as_str() {
                    Some("fail") => self.on_rate_limit = RateLimitMode::Fail,
                    Some("wait") => self.on_rate_limit = RateLimitMode::Wait,
                    _ => diags.push(bad(
                        v.span,
                        "`on-rate-limit` must be `fail` or `wait`".to_string(),
                    )),
                },
                "policies" => self.read_policies(v, diags),
                "always-on-policies" => self.read_always_on_policies(v, diags),
                "check-policies" => self.read_check_policies(v, diags),
                "production-environments" => {
                    if let Some(list) = string_list(v, "production-environments", diags) {
                        self.production_environments = list.into_iter().map(|(s, _)| s).collect();
                    }
                }
                "environments" => self.read_environments(v, diags),
                "promotion-order" => self.read_promotion_order(v, diags),
                "limits" => self.read_limits(v, diags),
                "targets" => self.read_targets(v, diags),
                "compliance" => self.read_compliance(v, diags),
                "tls" => self.read_tls(v, diags),
                "catalogs" => {
                    if let Some(list) = string_list(v, "catalogs", diags) {
                        self.catalogs = list
                            .into_iter()
                            .map(|(s, sp)| (self.root.join(s), sp))
                            .collect();
                    }
                }
                "evidence-rules" => {
                    if let Some(list) = string_list(v, "evidence-rules", diags) {
                        self.evidence_rules = list
                            .into_iter()
                            .map(|(s, sp)| (self.root.join(s), sp))
                            .collect();
                    }
                }
                "audit-retention-minimum" => match v
                    .as_str()
                    .map(crate::model::values::parse_duration)
                {
                    Some(Ok(d)) => self.audit_retention_minimum = Some(d),
                    Some(Err(e)) => diags.push(bad(v.span, e.message).with_help(e.help)),
                    None => diags.push(bad(
                        v.span,
                        format!(
                            "`audit-retention-minimum` must be a duration such as `365d`, found {}",
                            v.type_name()
                        ),
                    )),
                },
                other => diags.push(unknown_key(e.key.span, other, KEYS)),
            }
        }
        self.validate_policy_names(diags);
    }

    fn read_severity(&mut self, v: &Node, diags: &mut Vec<Diagnostic>) {
        let Some(entries) = v.as_map() else {
            diags.push(bad(
                v.span,
                format!(
                    "`severity` must be a mapping of codes to `allow`, `warn` or `deny`, found {}",
                    v.type_name()
                ),
            ));
            return;
        };
        for e in entries {
            let code = e.key_str();
            self.severity_spans.push((code.to_string(), e.key.span));
            let level = match e.value.as_scalar().map(|s| s.text.as_str()) {
                Some("allow") => Level::Allow,
                Some("warn") => Level::Warn,
                Some("deny") => Level::Deny,
                _ => {
                    diags.push(bad(
                        e.value.span,
                        "a severity must be `allow`, `warn` or `deny`".to_string(),
                    ));
                    continue;
                }
            };
            self.severity.insert(code.to_string(), level);
        }
    }

    /// Reports `severity:` keys that name no known code.
    pub fn validate_codes(&self, known: &[&'static Code], diags: &mut Vec<Diagnostic>) {
        for (code, span) in &self.severity_spans {
            if known.iter().any(|c| c.id == code) {
                continue;
            }
            let mut d = Diagnostic::new(
                &CONFIG_UNKNOWN_CODE,
                *span,
                format!("`{code}` is not a pbc diagnostic code"),
            );
            d = match did_you_mean(code, known.iter().map(|c| c.id)) {
                Some(s) => {
                    d.with_help(format!("did you mean `{s}`? `pbc explain` lists the codes"))
                }
                None => d.with_help("`pbc explain` lists the codes"),
            };
            diags.push(d);
        }
    }

    /// The level configured for a code, if any.
    pub fn level(&self, code: &Code) -> Option<Level> {
        self.severity.get(code.id).copied()
    }

    /// Applies per-code severities: drops allowed findings, re-grades the others.
    pub fn apply_levels(&self, diags: &mut Vec<Diagnostic>) {
        if self.severity.is_empty() {
            return;
        }
        diags.retain_mut(|d| match self.level(d.code) {
            Some(Level::Allow) => false,
            Some(Level::Warn) => {
                d.severity = Severity::Warning;
                true
            }
            Some(Level::Deny) => {
                d.severity = Severity::Error;
                true
            }
            None => true,
        });
    }
}

/// A Kubernetes API group: a lower-case DNS subdomain with at least one dot.
pub fn is_api_group(s: &str) -> bool {
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    s.len() <= 253 && s.contains('.') && s.split('.').all(label)
}

fn bad(span: Span, msg: String) -> Diagnostic {
    Diagnostic::new(&CONFIG_BAD_VALUE, span, msg)
}

fn unknown_key(span: Span, key: &str, known: &[&str]) -> Diagnostic {
    let mut d = Diagnostic::new(
        &CONFIG_UNKNOWN_KEY,
        span,
        format!("unknown configuration key `{key}`"),
    );
    d = match did_you_mean(key, known.iter().copied()) {
        Some(s) => d.with_help(format!("did you mean `{s}`? known keys: {}", one_of(known))),
        None => d.with_help(format!("known keys: {}", one_of(known))),
    };
    d
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_string()
}

fn duration(v: &Node, key: &str, diags: &mut Vec<Diagnostic>) -> Option<crate::model::Duration> {
    let text = v
        .as_scalar()
        .filter(|s| s.kind == ScalarKind::Str)
        .map(|s| s.text.as_str());
    match text.map(crate::model::values::parse_duration) {
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => {
            diags.push(bad(v.span, format!("`{key}`: {}", e.message)).with_help(e.help));
            None
        }
        None => {
            diags.push(bad(
                v.span,
                format!("`{key}` must be a duration such as `30s`, `10m`, `4h`"),
            ));
            None
        }
    }
}

fn string_list(v: &Node, key: &str, diags: &mut Vec<Diagnostic>) -> Option<Vec<(String, Span)>> {
    let Some(items) = v.as_seq() else {
        diags.push(bad(
            v.span,
            format!("`{key}` must be a list of strings, found {}", v.type_name()),
        ));
        return None;
    };
    let mut out = Vec::new();
    for i in items {
        match i.as_scalar() {
            Some(s) if s.kind != ScalarKind::Null => out.push((s.text.as_str().to_owned(), i.span)),
            _ => diags.push(bad(
                i.span,
                format!("`{key}` items must be strings, found {}", i.type_name()),
            )),
        }
    }
    Some(out)
}
