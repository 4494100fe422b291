//! `policies:` (policies as code: Rego, Cedar or declarative rules, by name),
//! `always-on-policies:` and `check-policies:` in `.pbc.yaml`.
//!
//! This module reads the configuration only: the files a policy names are read, compiled
//! and checked by the policy crate (`pbc-policy`), which reports their problems at the line
//! of the policy file.

use super::*;
use crate::yaml::Entry;
use serde::{Deserialize, Serialize};

/// A policy the configuration defines.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyDef {
    pub name: String,
    /// The policy's key in `.pbc.yaml`.
    pub span: Span,
    pub kind: PolicyKind,
    /// The longest one evaluation may take (`timeout`, default one second); past it the
    /// policy denies.
    pub timeout_ms: u64,
    /// `check-output: true`: evaluated again on the stage's output, before anything reads
    /// it (Rego and Cedar policies).
    pub check_output: bool,
}

/// A path in the configuration, resolved against its directory, with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct PathRef {
    pub path: PathBuf,
    pub span: Span,
}

/// What a policy is written in.
#[derive(Clone, Debug, PartialEq)]
pub enum PolicyKind {
    /// Rego modules (evaluated with an embedded interpreter), data documents merged under
    /// `data`, and the query whose value is the decision.
    Rego {
        files: Vec<PathRef>,
        data: Vec<PathRef>,
        query: String,
        query_span: Span,
    },
    /// A Cedar policy set, the schema it is validated against, and entities.
    Cedar {
        policies: PathRef,
        schema: Option<PathRef>,
        entities: Option<PathRef>,
    },
    /// Declarative limits and lists.
    Rules(Vec<RuleDef>),
    /// A name from the older list form: known to the checker, with nothing to evaluate (a
    /// stage bound to it is refused: fail closed).
    Undefined,
}

impl PolicyKind {
    /// `rego`, `cedar`, `rules` or `undefined`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PolicyKind::Rego { .. } => "rego",
            PolicyKind::Cedar { .. } => "cedar",
            PolicyKind::Rules(_) => "rules",
            PolicyKind::Undefined => "undefined",
        }
    }
}

/// What a declarative rule does when its constraint is not met.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Enforcement {
    #[default]
    Deny,
    RequireApproval,
    /// Allowed, with the reason logged.
    Warn,
}

/// One declarative rule (`schemas/policy-rules.schema.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleDef {
    /// A name for reasons and logs (default `rule N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The stages it applies to: an action `LAYER:FUNCTION` (a trailing `*` matches any
    /// suffix), `agent:NAME`, or every stage the policy is bound to when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The param holding the amount (`amount_max`, `daily_aggregate_max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// The largest amount one stage may carry (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_max: Option<f64>,
    /// The largest total over a rolling 24 hours of executed stages of the same action,
    /// this one included (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_aggregate_max: Option<f64>,
    /// The aggregate is per value of this param (a customer, an account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
    /// Params whose value must be one of these.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allow: BTreeMap<String, Vec<serde_json::Value>>,
    /// Params whose value must not be one of these.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deny: BTreeMap<String, Vec<serde_json::Value>>,
    #[serde(default)]
    pub enforcement: Enforcement,
    /// Who may approve (`require-approval`): role names, or people (with an `@`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
}

/// The default evaluation time limit.
pub const DEFAULT_POLICY_TIMEOUT_MS: u64 = 1000;

const POLICY_KEYS: &[&str] = &[
    "rego",
    "cedar",
    "rules",
    "timeout",
    "check-output",
    "description",
];
const REGO_KEYS: &[&str] = &["files", "data", "query"];
const CEDAR_KEYS: &[&str] = &["policies", "schema", "entities"];
const RULE_KEYS: &[&str] = &[
    "id",
    "resource",
    "param",
    "constraints",
    "enforcement",
    "approvers",
];
const CONSTRAINT_KEYS: &[&str] = &[
    "amount_max",
    "daily_aggregate_max",
    "group-by",
    "allow",
    "deny",
];

impl Config {
    /// `policies:`: a mapping of names to definitions, or (deprecated) a list of names.
    pub(super) fn read_policies(&mut self, v: &Node, diags: &mut Vec<Diagnostic>) {
        if let Some(items) = v.as_seq() {
            let Some(list) = string_list(v, "policies", diags) else {
                return;
            };
            let mut d = Diagnostic::new(
                &CONFIG_DEPRECATED,
                v.span,
                "`policies:` as a list of names is deprecated: a listed name defines nothing to evaluate, so a stage bound to it is refused",
            )
            .with_help(
                "define each policy: `NAME: {rego: {files, query}}`, `{cedar: {policies, schema}}` or `{rules: [...]}`; the fix writes `{rules: []}` (allows everything) for each name",
            );
            if !items.is_empty() {
                let text = list
                    .iter()
                    .map(|(n, _)| format!("{}: {{rules: []}}", flow_key(n)))
                    .collect::<Vec<_>>()
                    .join(", ");
                d = d.with_fix(
                    "define each listed policy as an empty rule set",
                    vec![crate::diag::Edit {
                        span: v.span,
                        text: format!("{{{text}}}"),
                    }],
                );
            }
            diags.push(d);
            for (name, span) in list {
                self.policies.push(name.clone());
                self.policy_defs.insert(
                    name.clone(),
                    PolicyDef {
                        name,
                        span,
                        kind: PolicyKind::Undefined,
                        timeout_ms: DEFAULT_POLICY_TIMEOUT_MS,
                        check_output: false,
                    },
                );
            }
            return;
        }
        let Some(entries) = v.as_map() else {
            diags.push(bad(
                v.span,
                format!(
                    "`policies` must be a mapping of names to definitions (`rego`, `cedar` or `rules`), found {}",
                    v.type_name()
                ),
            ));
            return;
        };
        for e in entries {
            let name = e.key_str().to_string();
            if let Some(def) = self.read_policy(&name, e, diags) {
                self.policies.push(name.clone());
                self.policy_defs.insert(name, def);
            } else {
                // Known to the checker all the same (one error, not one per stage).
                self.policies.push(name);
            }
        }
    }

    fn read_policy(&self, name: &str, e: &Entry, diags: &mut Vec<Diagnostic>) -> Option<PolicyDef> {
        let Some(fields) = e.value.as_map() else {
            diags.push(bad(
                e.value.span,
                format!("policy `{name}` must be a mapping with one of `rego`, `cedar`, `rules`"),
            ));
            return None;
        };
        let mut kind = None;
        let mut kinds = 0;
        let mut timeout_ms = DEFAULT_POLICY_TIMEOUT_MS;
        let mut check_output = None;
        for f in fields {
            match f.key_str() {
                "rego" => {
                    kinds += 1;
                    kind = self.read_rego(name, &f.value, diags);
                }
                "cedar" => {
                    kinds += 1;
                    kind = self.read_cedar(name, &f.value, diags);
                }
                "rules" => {
                    kinds += 1;
                    kind = read_rules(&f.value, diags).map(PolicyKind::Rules);
                }
                "timeout" => {
                    if let Some(d) = duration(&f.value, "timeout", diags) {
                        timeout_ms = d.seconds.saturating_mul(1000).max(1);
                    }
                }
                "check-output" => match f.value.as_scalar() {
                    Some(sc) if sc.kind == ScalarKind::Bool => {
                        check_output = Some((sc.text.eq_ignore_ascii_case("true"), f.key.span));
                    }
                    _ => diags.push(bad(
                        f.value.span,
                        "`check-output` must be `true` or `false`".into(),
                    )),
                },
                "description" => {
                    if f.value.as_str().is_none() {
                        diags.push(bad(f.value.span, "`description` must be a string".into()));
                    }
                }
                other => diags.push(unknown_key(f.key.span, other, POLICY_KEYS)),
            }
        }
        if kinds != 1 {
            diags.push(bad(
                e.key.span,
                format!(
                    "policy `{name}` needs exactly one of `rego`, `cedar` and `rules`, found {kinds}"
                ),
            ));
            return None;
        }
        let kind = kind?;
        if let (Some((true, at)), PolicyKind::Rules(_)) = (check_output, &kind) {
            diags.push(bad(
                at,
                format!(
                    "policy `{name}`: declarative rules limit a stage's params before it runs; `check-output` needs a Rego or Cedar policy, which sees the output as `input.output`"
                ),
            ));
        }
        Some(PolicyDef {
            name: name.to_string(),
            span: e.key.span,
            kind,
            timeout_ms,
            check_output: check_output.is_some_and(|(b, _)| b),
        })
    }

    fn path_list(&self, v: &Node, key: &str, diags: &mut Vec<Diagnostic>) -> Vec<PathRef> {
        let list = if v.as_scalar().is_some_and(|s| s.kind == ScalarKind::Str) {
            vec![(v.as_str().unwrap_or_default().to_string(), v.span)]
        } else {
            string_list(v, key, diags).unwrap_or_default()
        };
        list.into_iter()
            .map(|(s, span)| PathRef {
                path: self.root.join(s),
                span,
            })
            .collect()
    }

    fn one_path(&self, v: &Node, key: &str, diags: &mut Vec<Diagnostic>) -> Option<PathRef> {
        match v.as_scalar() {
            Some(s) if s.kind == ScalarKind::Str && !s.text.trim().is_empty() => Some(PathRef {
                path: self.root.join(s.text.as_str()),
                span: v.span,
            }),
            _ => {
                diags.push(bad(
                    v.span,
                    format!("`{key}` must be a path, found {}", v.type_name()),
                ));
                None
            }
        }
    }

    fn read_rego(&self, name: &str, v: &Node, diags: &mut Vec<Diagnostic>) -> Option<PolicyKind> {
        let Some(fields) = v.as_map() else {
            diags.push(bad(
                v.span,
                format!("`rego` of policy `{name}` must be a mapping with `files` and `query`"),
            ));
            return None;
        };
        let (mut files, mut data, mut query) = (Vec::new(), Vec::new(), None);
        for f in fields {
            match f.key_str() {
                "files" => files = self.path_list(&f.value, "files", diags),
                "data" => data = self.path_list(&f.value, "data", diags),
                "query" => match f.value.as_scalar() {
                    Some(s) if s.kind == ScalarKind::Str && s.text.starts_with("data.") => {
                        query = Some((s.text.to_string(), f.value.span))
                    }
                    _ => diags.push(
                        bad(
                            f.value.span,
                            "`query` must be a reference into `data`, such as `data.payments.decision`".into(),
                        )
                        .with_help("the query's value is the decision: an object `{decision, reasons, approvers}`, a boolean, or a set of deny messages"),
                    ),
                },
                other => diags.push(unknown_key(f.key.span, other, REGO_KEYS)),
            }
        }
        if files.is_empty() {
            diags.push(bad(
                v.span,
                format!("`rego` of policy `{name}` names no module under `files`"),
            ));
            return None;
        }
        let Some((query, query_span)) = query else {
            diags.push(
                bad(v.span, format!("`rego` of policy `{name}` has no `query`")).with_help(
                    "add `query: data.PACKAGE.RULE`, the rule whose value is the decision",
                ),
            );
            return None;
        };
        Some(PolicyKind::Rego {
            files,
            data,
            query,
            query_span,
        })
    }

    fn read_cedar(&self, name: &str, v: &Node, diags: &mut Vec<Diagnostic>) -> Option<PolicyKind> {
        let Some(fields) = v.as_map() else {
            diags.push(bad(
                v.span,
                format!("`cedar` of policy `{name}` must be a mapping with `policies`"),
            ));
            return None;
        };
        let (mut policies, mut schema, mut entities) = (None, None, None);
        for f in fields {
            match f.key_str() {
                "policies" => policies = self.one_path(&f.value, "policies", diags),
                "schema" => schema = self.one_path(&f.value, "schema", diags),
                "entities" => entities = self.one_path(&f.value, "entities", diags),
                other => diags.push(unknown_key(f.key.span, other, CEDAR_KEYS)),
            }
        }
        let Some(policies) = policies else {
            diags.push(bad(
                v.span,
                format!("`cedar` of policy `{name}` names no `policies` file"),
            ));
            return None;
        };
        Some(PolicyKind::Cedar {
            policies,
            schema,
            entities,
        })
    }

    /// `always-on-policies:`: names of defined policies, applied to every action stage.
    pub(super) fn read_always_on_policies(&mut self, v: &Node, diags: &mut Vec<Diagnostic>) {
        if let Some(list) = string_list(v, "always-on-policies", diags) {
            self.always_on_policies = list;
        }
    }

    /// `check-policies:`: directories of Rego rules run over each resolved playbook by
    /// `pbc check`.
    pub(super) fn read_check_policies(&mut self, v: &Node, diags: &mut Vec<Diagnostic>) {
        self.check_policies = self.path_list(v, "check-policies", diags);
    }

    /// Reports `always-on-policies` entries that name no policy (after the whole file is
    /// read, whatever the order of its keys).
    pub(super) fn validate_policy_names(&self, diags: &mut Vec<Diagnostic>) {
        for (name, span) in &self.always_on_policies {
            if self.policies.contains(name) {
                continue;
            }
            let guess = did_you_mean(name, self.policies.iter().map(String::as_str));
            let help = match guess {
                Some(g) => format!("did you mean `{g}`? define the policy under `policies:`"),
                None => "define the policy under `policies:`".to_string(),
            };
            diags.push(
                Diagnostic::new(
                    &crate::model::UNKNOWN_POLICY,
                    *span,
                    format!("no configured policy is named `{name}`"),
                )
                .with_help(help),
            );
        }
    }
}

/// A name as a YAML flow-mapping key.
fn flow_key(n: &str) -> String {
    let plain = !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if plain {
        n.to_string()
    } else {
        serde_json::to_string(n).unwrap_or_else(|_| format!("\"{n}\""))
    }
}

fn number(v: &Node, key: &str, diags: &mut Vec<Diagnostic>) -> Option<f64> {
    let n = v
        .as_scalar()
        .and_then(|s| match s.kind {
            ScalarKind::Int => crate::yaml::parse_int(&s.text).map(|i| i as f64),
            ScalarKind::Float => crate::yaml::parse_float(&s.text),
            _ => None,
        })
        .filter(|f| f.is_finite() && *f >= 0.0);
    if n.is_none() {
        diags.push(bad(
            v.span,
            format!(
                "`{key}` must be a number of zero or more, found {}",
                v.type_name()
            ),
        ));
    }
    n
}

fn value_lists(
    v: &Node,
    key: &str,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, Vec<serde_json::Value>> {
    let mut out = BTreeMap::new();
    let Some(entries) = v.as_map() else {
        diags.push(bad(
            v.span,
            format!(
                "`{key}` must map param names to lists of values, found {}",
                v.type_name()
            ),
        ));
        return out;
    };
    for e in entries {
        match e.value.as_seq() {
            Some(items) => {
                out.insert(
                    e.key_str().to_string(),
                    items.iter().map(Node::to_json).collect(),
                );
            }
            None => diags.push(bad(
                e.value.span,
                format!(
                    "`{key}.{}` must be a list of values, found {}",
                    e.key_str(),
                    e.value.type_name()
                ),
            )),
        }
    }
    out
}

/// The declarative rules of a policy (`rules:`).
fn read_rules(v: &Node, diags: &mut Vec<Diagnostic>) -> Option<Vec<RuleDef>> {
    let Some(items) = v.as_seq() else {
        diags.push(bad(
            v.span,
            format!("`rules` must be a list of rules, found {}", v.type_name()),
        ));
        return None;
    };
    let before = diags.len();
    let mut rules = Vec::new();
    for item in items {
        let Some(fields) = item.as_map() else {
            diags.push(bad(
                item.span,
                format!("a rule must be a mapping, found {}", item.type_name()),
            ));
            continue;
        };
        let mut r = RuleDef::default();
        let str_field = |f: &Entry, diags: &mut Vec<Diagnostic>| match f.value.as_scalar() {
            Some(s) if s.kind == ScalarKind::Str => Some(s.text.to_string()),
            _ => {
                diags.push(bad(
                    f.value.span,
                    format!("`{}` must be a string", f.key_str()),
                ));
                None
            }
        };
        for f in fields {
            match f.key_str() {
                "id" => r.id = str_field(f, diags),
                "resource" => r.resource = str_field(f, diags),
                "param" => r.param = str_field(f, diags),
                "enforcement" => match f.value.as_str() {
                    Some("deny") => r.enforcement = Enforcement::Deny,
                    Some("require-approval") => r.enforcement = Enforcement::RequireApproval,
                    Some("warn") => r.enforcement = Enforcement::Warn,
                    _ => diags.push(bad(
                        f.value.span,
                        "`enforcement` must be `deny`, `require-approval` or `warn`".into(),
                    )),
                },
                "approvers" => {
                    if let Some(list) = string_list(&f.value, "approvers", diags) {
                        r.approvers = list.into_iter().map(|(s, _)| s).collect();
                    }
                }
                "constraints" => {
                    let Some(cs) = f.value.as_map() else {
                        diags.push(bad(f.value.span, "`constraints` must be a mapping".into()));
                        continue;
                    };
                    for c in cs {
                        match c.key_str() {
                            "amount_max" => r.amount_max = number(&c.value, "amount_max", diags),
                            "daily_aggregate_max" => {
                                r.daily_aggregate_max =
                                    number(&c.value, "daily_aggregate_max", diags)
                            }
                            "group-by" => r.group_by = str_field(c, diags),
                            "allow" => r.allow = value_lists(&c.value, "allow", diags),
                            "deny" => r.deny = value_lists(&c.value, "deny", diags),
                            other => diags.push(unknown_key(c.key.span, other, CONSTRAINT_KEYS)),
                        }
                    }
                }
                other => diags.push(unknown_key(f.key.span, other, RULE_KEYS)),
            }
        }
        if (r.amount_max.is_some() || r.daily_aggregate_max.is_some()) && r.param.is_none() {
            diags.push(
                bad(
                    item.span,
                    "a rule with `amount_max` or `daily_aggregate_max` needs `param`, the param that holds the amount".into(),
                )
                .with_help("for example `param: amount`"),
            );
        }
        if r.group_by.is_some() && r.daily_aggregate_max.is_none() {
            diags.push(bad(
                item.span,
                "`group-by` groups `daily_aggregate_max`, which this rule does not set".into(),
            ));
        }
        rules.push(r);
    }
    (diags.len() == before).then_some(rules)
}
