//! Building the model from the spanned tree, with a diagnostic for every wrong shape.

use super::scalar::{text_span, whole_value_span};
use super::values::{
    dns1123_problem, k8s_key_problem, k8s_label_value_problem, normalize_dns1123, parse_action_ref,
    parse_duration, parse_rate,
};
use super::*;
use crate::diag::{Edit, did_you_mean, one_of};
use crate::yaml::{Entry, ScalarKind, Style, Value, resolve_plain, yaml11_reading};
use std::collections::HashMap;
use std::str::FromStr;

mod fields;
mod gates;
mod playbook;
mod sections;
mod stage;
#[cfg(test)]
mod tests;

const TOP: &[&str] = &["apiVersion", "kind", "metadata", "spec"];
const METADATA: &[&str] = &[
    "name",
    "namespace",
    "labels",
    "annotations",
    "description",
    "compliance",
    "tags",
];
const SPEC: &[&str] = &[
    "trigger",
    "input-schema",
    "risk",
    "approvers",
    "stages",
    "rollback",
    "audit",
    "monitoring",
    "rate-limits",
    "rollout",
    "promotion",
];
const STAGE: &[&str] = &[
    "name",
    "agent",
    "action",
    "params",
    "prompt",
    "lora",
    "rag-source",
    "guardrails",
    "policy",
    "approval",
    "approvers",
    "min-approvals",
    "conditions",
    "escalation",
    "sla",
    "timeout",
    "retries",
    "notification",
    "output-schema",
    "context",
    "needs",
    "when",
    "risk",
    "compliance",
    "audit-log",
    "rollback",
    "langfuse",
];
const TRIGGER_ALL: &[&str] = &["event", "input-schema", "schedule", "timezone"];
const TRIGGER_EVENT: &[&str] = &["event", "input-schema"];
const TRIGGER_SCHEDULE: &[&str] = &["schedule", "timezone"];
const CONDITION: &[&str] = &["if", "then", "approvers", "min-approvals", "else"];
const ESCALATION: &[&str] = &["after", "approvers", "notify"];
const NOTIFICATION: &[&str] = &[
    "on-pending",
    "on-approved",
    "on-rejected",
    "on-expired",
    "on-failure",
];
const ROLLBACK: &[&str] = &["on-failure", "notification"];
const STAGE_ROLLBACK: &[&str] = &["action", "params"];
const AUDIT: &[&str] = &["log-to", "retention"];
const MONITORING: &[&str] = &["metrics", "alerts"];
const METRIC: &[&str] = &["name", "target"];
const ALERT: &[&str] = &["condition", "notify"];
const LANGFUSE: &[&str] = &["trace-id", "tags", "metadata"];
const APPROVER: &[&str] = &["role", "user"];
const ROLLOUT: &[&str] = &[
    "strategy",
    "steps",
    "rollback",
    "metrics",
    "active-service",
    "preview-service",
    "auto-promotion",
];
const ROLLOUT_STEP: &[&str] = &["weight", "pause"];
const ROLLOUT_METRIC: &[&str] = &["name", "threshold"];
const PROMOTION: &[&str] = &["from", "to", "requires"];

/// Where a mapping sits, for "belongs elsewhere" hints on unknown fields.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Top,
    Metadata,
    Spec,
    Stage,
    StageRollback,
    Other,
}

/// A mapping being read.
struct Obj<'n> {
    entries: &'n [Entry],
    span: Span,
    /// How messages name it: "stage `deploy`", "`metadata`".
    what: String,
    /// Where a missing field is reported.
    anchor: Span,
    /// The keys this mapping may have.
    allowed: &'static [&'static str],
}

impl<'n> Obj<'n> {
    fn get(&self, k: &str) -> Option<&'n Entry> {
        self.entries.iter().find(|e| e.key_str() == k)
    }

    /// Keys this mapping may not have.
    fn unknown(&self) -> impl Iterator<Item = &'n str> + '_ {
        self.entries
            .iter()
            .map(Entry::key_str)
            .filter(|k| !self.allowed.contains(k))
    }

    fn keys(&self) -> Keys {
        Keys(
            self.entries
                .iter()
                .map(|e| (e.key_str().to_string(), e.key.span))
                .collect(),
        )
    }
}

/// The key span of a list item's mapping (its first key), else the item.
fn item_anchor(n: &Node) -> Span {
    n.as_map()
        .and_then(|m| m.first())
        .map(|e| e.key.span)
        .unwrap_or(n.span)
}

/// A value as shown inside a message: control characters escaped.
pub(super) fn show(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A plain scalar for `s` if YAML reads it back as the same string, else a quoted one.
pub(super) fn yaml_str(s: &str) -> String {
    let plain_ok = !s.is_empty()
        && resolve_plain(s) == ScalarKind::Str
        && yaml11_reading(s).is_none()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '@'))
        && !s.starts_with(['-', '@']);
    if plain_ok {
        s.to_string()
    } else {
        format!("{:?}", s)
    }
}

/// Help text, led by "did you mean `x`?" when there is a guess.
pub(super) fn guess_help(guess: Option<&str>, rest: &str) -> String {
    match guess {
        Some(g) => {
            let mut cs = rest.chars();
            let rest = match cs.next() {
                Some(c) => c.to_uppercase().chain(cs).collect::<String>(),
                None => String::new(),
            };
            format!("did you mean `{g}`? {rest}")
        }
        None => rest.to_string(),
    }
}

fn found(n: &Node) -> String {
    match &n.value {
        Value::Scalar(s) if s.kind == ScalarKind::Null && s.text.is_empty() => "nothing".into(),
        Value::Scalar(s) if s.kind != ScalarKind::Str && s.kind != ScalarKind::Null => {
            format!("{} (`{}`)", n.type_name(), show(&s.text))
        }
        _ => n.type_name().into(),
    }
}

pub(super) struct Builder<'a> {
    sources: &'a SourceMap,
    opts: &'a ModelOptions,
    diags: &'a mut Vec<Diagnostic>,
}

/// Whether a mapping names approvers: the key is there and is not an empty list. (A
/// wrong value was reported already; it is not reported again as "no approvers".)
fn approvers_given(keys: &Keys, approvers: &Option<Spanned<Vec<Approver>>>) -> bool {
    keys.get("approvers").is_some() && approvers.as_ref().is_none_or(|a| !a.value.is_empty())
}

/// A hint for a key that belongs to another mapping.
fn elsewhere(ctx: Ctx, k: &str) -> Option<String> {
    match ctx {
        Ctx::Top if METADATA.contains(&k) => Some(format!("`{k}` belongs under `metadata`")),
        Ctx::Top if SPEC.contains(&k) => Some(format!("`{k}` belongs under `spec`")),
        Ctx::Metadata if SPEC.contains(&k) => {
            Some(format!("`{k}` is a field of `spec`, not of `metadata`"))
        }
        Ctx::Spec if METADATA.contains(&k) => {
            Some(format!("`{k}` is a field of `metadata`, not of `spec`"))
        }
        Ctx::Spec if STAGE.contains(&k) => {
            Some(format!("`{k}` is a field of a stage, not of `spec`"))
        }
        Ctx::Stage if matches!(k, "log-to" | "retention") => {
            Some(format!("`{k}` belongs to `spec.audit`"))
        }
        Ctx::Stage if matches!(k, "on-failure") => {
            Some("`on-failure` belongs to `spec.rollback`".into())
        }
        Ctx::Stage if SPEC.contains(&k) => {
            Some(format!("`{k}` is a field of `spec`, not of a stage"))
        }
        Ctx::StageRollback if ROLLBACK.contains(&k) => Some(format!(
            "`{k}` belongs to `spec.rollback`; a stage's `rollback` is the undo step `{{action, params}}`"
        )),
        _ => None,
    }
}
