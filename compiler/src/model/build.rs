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
const CONDITION: &[&str] = &["if", "then", "approvers", "else"];
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

impl<'a> Builder<'a> {
    pub(super) fn new(
        sources: &'a SourceMap,
        opts: &'a ModelOptions,
        diags: &'a mut Vec<Diagnostic>,
    ) -> Self {
        Builder {
            sources,
            opts,
            diags,
        }
    }

    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn vspan(&self, n: &Node) -> Span {
        whole_value_span(self.sources, n)
    }

    // ----- generic shapes -------------------------------------------------------------

    /// Reads a mapping, reporting a wrong type and unknown keys.
    #[allow(clippy::too_many_arguments)]
    fn obj<'n>(
        &mut self,
        node: &'n Node,
        key: &str,
        what: impl Into<String>,
        kind: &str,
        anchor: Span,
        allowed: &'static [&'static str],
        ctx: Ctx,
    ) -> Option<Obj<'n>> {
        let Some(entries) = node.as_map() else {
            self.wrong_type(key, node, &format!("{kind} (a mapping)"));
            return None;
        };
        let obj = Obj {
            entries,
            span: node.span,
            what: what.into(),
            anchor,
            allowed,
        };
        for e in entries {
            let k = e.key_str();
            if !allowed.contains(&k) {
                self.unknown_field(e, &obj, kind, allowed, ctx);
            }
        }
        Some(obj)
    }

    fn unknown_field(&mut self, e: &Entry, obj: &Obj<'_>, kind: &str, allowed: &[&str], ctx: Ctx) {
        let k = e.key_str();
        let guess = did_you_mean(k, allowed.iter().copied());
        let hint = elsewhere(ctx, k);
        let mut rest = String::new();
        if let Some(h) = hint {
            rest.push_str(&h);
            rest.push_str("; ");
        }
        rest.push_str(&format!("the fields of {kind} are {}", one_of(allowed)));
        let help = guess_help(guess, &rest);
        let mut d = Diagnostic::new(
            &UNKNOWN_FIELD,
            e.key.span,
            format!("unknown field `{}` in {}", show(k), obj.what),
        )
        .with_help(help);
        if let Some(g) = guess
            && obj.get(g).is_none()
        {
            d = d.with_fix(
                format!("rename to `{g}`"),
                vec![Edit {
                    span: e.key.span,
                    text: g.to_string(),
                }],
            );
        }
        self.push(d);
    }

    fn missing(&mut self, obj: &Obj<'_>, key: &str, help: impl Into<String>) {
        // A misspelling of the missing key was reported already.
        if obj
            .unknown()
            .any(|k| did_you_mean(k, obj.allowed.iter().copied()) == Some(key))
        {
            return;
        }
        self.push(
            Diagnostic::new(
                &MISSING_FIELD,
                obj.anchor,
                format!("{} has no `{key}`", obj.what),
            )
            .with_help(help),
        );
    }

    fn wrong_type(&mut self, key: &str, v: &Node, expected: &str) {
        let span = self.vspan(v);
        let mut d = Diagnostic::new(
            &WRONG_TYPE,
            span,
            format!(
                "expected {expected} for `{}`, found {}",
                show(key),
                found(v)
            ),
        );
        if let Value::Scalar(s) = &v.value {
            let wants_string = expected.starts_with("a string")
                || expected.starts_with("an expression")
                || expected.contains("name")
                || expected.starts_with("a path");
            let wants_list = expected.starts_with("a list");
            if s.kind == ScalarKind::Str && wants_list && s.style == Style::Plain {
                let src = self
                    .sources
                    .get(span.file)
                    .map(|f| f.slice(span).to_string())
                    .unwrap_or_default();
                d = d
                    .with_help(format!("write a list, even of one item: `[{src}]`"))
                    .with_fix(
                        "make it a list",
                        vec![Edit {
                            span,
                            text: format!("[{src}]"),
                        }],
                    );
            } else if wants_string
                && !wants_list
                && s.kind != ScalarKind::Str
                && !(s.kind == ScalarKind::Null && s.text.is_empty())
                && s.style == Style::Plain
            {
                d = d
                    .with_help(format!(
                        "quote it to make it a string: `\"{}\"`",
                        show(&s.text)
                    ))
                    .with_fix(
                        "quote the value",
                        vec![Edit {
                            span,
                            text: format!("{:?}", s.text),
                        }],
                    );
            } else if s.kind == ScalarKind::Str
                && (expected.contains("number") || expected.contains("boolean"))
                && s.style.is_quoted()
            {
                d = d.with_help(format!("write it without quotes: `{}`", show(&s.text)));
            }
        }
        self.push(d);
    }

    fn invalid_value(&mut self, span: Span, message: String, help: &str) {
        self.push(Diagnostic::new(&INVALID_VALUE, span, message).with_help(help));
    }

    /// A string scalar; `nonempty` reports an empty one.
    fn string(
        &mut self,
        key: &str,
        v: &Node,
        expected: &str,
        nonempty: bool,
    ) -> Option<Spanned<String>> {
        match &v.value {
            Value::Scalar(s) if s.kind == ScalarKind::Str => {
                let span = self.vspan(v);
                if nonempty && s.text.trim().is_empty() {
                    self.invalid_value(
                        span,
                        format!("`{}` is empty", show(key)),
                        &format!("give {expected}, or remove the field"),
                    );
                    return None;
                }
                Some(Spanned::new(s.text.as_str().to_owned(), span))
            }
            _ => {
                self.wrong_type(key, v, expected);
                None
            }
        }
    }

    fn string_list(&mut self, key: &str, v: &Node, items: &str) -> Vec<Spanned<String>> {
        let Some(seq) = v.as_seq() else {
            self.wrong_type(key, v, &format!("a list of {items}"));
            return Vec::new();
        };
        seq.iter()
            .filter_map(|i| self.string(key, i, "a string", true))
            .collect()
    }

    fn open_map(&mut self, key: &str, v: &Node) -> Option<Node> {
        if v.as_map().is_some() {
            Some(v.clone())
        } else {
            self.wrong_type(key, v, "a mapping");
            None
        }
    }

    fn duration(&mut self, key: &str, v: &Node) -> Option<Spanned<Duration>> {
        let span = self.vspan(v);
        let Value::Scalar(s) = &v.value else {
            self.wrong_type(key, v, "a duration such as `30s`, `10m`, `4h` or `2d`");
            return None;
        };
        match s.kind {
            ScalarKind::Str => match parse_duration(&s.text) {
                Ok(d) => Some(Spanned::new(d, span)),
                Err(e) => {
                    let mut d =
                        Diagnostic::new(&INVALID_DURATION, span, e.message).with_help(e.help);
                    if let Some(sug) = e.suggestion {
                        d = d.with_fix(format!("write `{sug}`"), vec![Edit { span, text: sug }]);
                    }
                    self.push(d);
                    None
                }
            },
            ScalarKind::Int | ScalarKind::Float => {
                let secs = crate::yaml::parse_int(&s.text).filter(|n| *n > 0);
                let help = match secs {
                    Some(n) => format!(
                        "a duration needs a unit (`{n}s`, `{n}m`, `{n}h`, `{n}d`); {n} seconds is `{}`",
                        Duration::from_secs(n as u64)
                    ),
                    None => "write a whole number followed by one unit: `s`, `m`, `h` or `d` (e.g. `30s`, `10m`, `4h`, `2d`)".to_string(),
                };
                self.push(
                    Diagnostic::new(
                        &INVALID_DURATION,
                        span,
                        format!("`{}` is not a duration: it has no unit", show(&s.text),),
                    )
                    .with_help(help),
                );
                None
            }
            _ => {
                self.wrong_type(key, v, "a duration such as `30s`, `10m`, `4h` or `2d`");
                None
            }
        }
    }

    fn enumv<T: Copy>(
        &mut self,
        key: &str,
        v: &Node,
        names: &[&str],
        parse: fn(&str) -> Option<T>,
    ) -> Option<Spanned<T>> {
        let span = self.vspan(v);
        let Value::Scalar(s) = &v.value else {
            self.wrong_type(key, v, &format!("one of {}", one_of(names)));
            return None;
        };
        if s.kind == ScalarKind::Str
            && let Some(t) = parse(&s.text)
        {
            return Some(Spanned::new(t, span));
        }
        let guess = did_you_mean(&s.text, names.iter().copied());
        let help = guess_help(guess, &format!("`{}` is {}", show(key), one_of(names)));
        let shown = if s.kind == ScalarKind::Null && s.text.is_empty() {
            "nothing".to_string()
        } else {
            format!("`{}`", show(&s.text))
        };
        let mut d = Diagnostic::new(
            &INVALID_ENUM,
            span,
            format!("{shown} is not a valid `{}`", show(key)),
        )
        .with_help(help);
        if let Some(g) = guess {
            d = d.with_fix(
                format!("write `{g}`"),
                vec![Edit {
                    span,
                    text: g.to_string(),
                }],
            );
        }
        self.push(d);
        None
    }

    fn expr(&mut self, key: &str, v: &Node) -> Option<ExprText> {
        match &v.value {
            Value::Scalar(s) if s.kind != ScalarKind::Null => {
                let span = self.vspan(v);
                if s.text.trim().is_empty() {
                    self.invalid_value(
                        span,
                        format!("the expression of `{}` is empty", show(key)),
                        "write an expression, or remove the field",
                    );
                    return None;
                }
                Some(ExprText {
                    text: Spanned::new(s.text.as_str().to_owned(), span),
                    node: v.clone(),
                })
            }
            _ => {
                self.wrong_type(key, v, "an expression (a string)");
                None
            }
        }
    }

    fn integer(&mut self, key: &str, v: &Node) -> Option<Spanned<u32>> {
        let span = self.vspan(v);
        match &v.value {
            Value::Scalar(s) if s.kind == ScalarKind::Int => {
                match crate::yaml::parse_int(&s.text) {
                    Some(n) if n < 0 => {
                        self.invalid_value(
                            span,
                            format!("`{}` must be 0 or more, found {n}", show(key)),
                            "use 0 for no retries",
                        );
                        None
                    }
                    Some(n) if n <= 1000 => Some(Spanned::new(n as u32, span)),
                    _ => {
                        self.invalid_value(
                            span,
                            format!("`{}` is too large", show(key)),
                            "use at most 1000",
                        );
                        None
                    }
                }
            }
            _ => {
                self.wrong_type(key, v, "a whole number");
                None
            }
        }
    }

    fn dns_name(&mut self, what: &str, name: &Spanned<String>, node: &Node) {
        let Some((a, b, why)) = dns1123_problem(&name.value) else {
            return;
        };
        let mut d = Diagnostic::new(
            &INVALID_NAME,
            name.span,
            format!("{what} `{}` is not a DNS-1123 label", show(&name.value)),
        )
        .with_help("use at most 63 lower-case letters, digits and `-`, starting and ending with a letter or digit");
        // The whole name is the culprit (the fix replaces it); the label says which
        // character is wrong. (`a..b` is where, for callers that want the sub-span.)
        let _ = (a, b, node);
        d = d.with_label_text(why);
        if let Some(n) = normalize_dns1123(&name.value) {
            d = d.with_fix(
                format!("rename to `{n}`"),
                vec![Edit {
                    span: name.span,
                    text: yaml_str(&n),
                }],
            );
        }
        self.push(d);
    }

    fn action_ref(&mut self, key: &str, v: &Node) -> Option<Spanned<ActionRef>> {
        let s = self.string(key, v, "an action `LAYER:FUNCTION`", true)?;
        match parse_action_ref(&s.value) {
            Ok(a) => Some(Spanned::new(a, s.span)),
            Err((a, b, why)) => {
                let sub = if b > a {
                    text_span(self.sources, v, a, b)
                } else {
                    s.span
                };
                self.push(
                    Diagnostic::new(
                        &INVALID_ACTION_REF,
                        sub,
                        format!(
                            "`{}` is not an action of the form `LAYER:FUNCTION`",
                            show(&s.value)
                        ),
                    )
                    .with_label_text(why)
                    .with_help(
                        "write the layer, a colon and the function, e.g. `k8s:scale_deployment`",
                    ),
                );
                None
            }
        }
    }

    fn approvers(&mut self, key: &str, v: &Node) -> Option<Spanned<Vec<Approver>>> {
        let Some(items) = v.as_seq() else {
            self.wrong_type(
                key,
                v,
                "a list of approvers (`{role: R}`, `{user: EMAIL}` or a role name)",
            );
            return None;
        };
        let mut out = Vec::new();
        for item in items {
            match &item.value {
                Value::Scalar(s) if s.kind == ScalarKind::Str => {
                    let Some(n) = self.string(key, item, "a role or user", true) else {
                        continue;
                    };
                    if s.text.contains('@') {
                        self.check_email(&n);
                        out.push(Approver::User(n));
                    } else {
                        out.push(Approver::Role(n));
                    }
                }
                Value::Map(_) => {
                    let anchor = item_anchor(item);
                    let Some(obj) = self.obj(
                        item,
                        key,
                        "this approver",
                        "an approver",
                        anchor,
                        APPROVER,
                        Ctx::Other,
                    ) else {
                        continue;
                    };
                    match (obj.get("role"), obj.get("user")) {
                        (Some(r), Some(u)) => {
                            let (first, second) = if r.key.span < u.key.span {
                                (r, u)
                            } else {
                                (u, r)
                            };
                            self.push(
                                Diagnostic::new(
                                    &CONFLICTING_FIELDS,
                                    second.key.span,
                                    "an approver is a `role` or a `user`, not both",
                                )
                                .with_label(first.key.span, "also given here")
                                .with_help("write two approvers: `- role: R` and `- user: EMAIL`"),
                            );
                            // Keep both, as the two approvers that were meant.
                            if let Some(n) = self.string("role", &r.value, "a role name", true) {
                                out.push(Approver::Role(n));
                            }
                            if let Some(n) =
                                self.string("user", &u.value, "an e-mail address", true)
                            {
                                self.check_email(&n);
                                out.push(Approver::User(n));
                            }
                        }
                        (Some(r), None) => {
                            if let Some(n) = self.string("role", &r.value, "a role name", true) {
                                out.push(Approver::Role(n));
                            }
                        }
                        (None, Some(u)) => {
                            if let Some(n) =
                                self.string("user", &u.value, "an e-mail address", true)
                            {
                                self.check_email(&n);
                                out.push(Approver::User(n));
                            }
                        }
                        (None, None) => {
                            if obj.entries.is_empty() {
                                self.push(
                                    Diagnostic::new(
                                        &MISSING_FIELD,
                                        item.span,
                                        "this approver is empty",
                                    )
                                    .with_help("write `role: R` or `user: EMAIL`"),
                                );
                            } else if obj.unknown().next().is_none() {
                                self.missing(&obj, "role", "write `role: R` or `user: EMAIL`");
                            }
                        }
                    }
                }
                _ => self.wrong_type(
                    key,
                    item,
                    "an approver (`{role: R}`, `{user: EMAIL}` or a role name)",
                ),
            }
        }
        if out.is_empty() && !items.is_empty() {
            // Every item was invalid (reported): not "no approvers".
            return None;
        }
        Some(Spanned::new(out, v.span))
    }

    fn check_email(&mut self, n: &Spanned<String>) -> bool {
        let ok = n
            .value
            .split_once('@')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('@'))
            && !n.value.contains(char::is_whitespace);
        if !ok {
            self.invalid_value(
                n.span,
                format!("`{}` is not an e-mail address", show(&n.value)),
                "a user approver is an e-mail address such as `ann@example.com`; a bare name is a role",
            );
        }
        ok
    }

    // ----- the document ---------------------------------------------------------------

    pub(super) fn playbook(&mut self, root: &Node) -> Option<Playbook> {
        let entries = root.as_map()?;
        let kind_e = root.entry("kind");
        let api_e = root.entry("apiVersion");
        let kind = kind_e.and_then(|e| e.value.as_str());
        let api = api_e.and_then(|e| e.value.as_str());
        let doc_start = Span::point(root.span.file, root.span.start);
        let top = Obj {
            entries,
            span: root.span,
            what: "the document".into(),
            anchor: doc_start,
            allowed: TOP,
        };
        match (api, kind) {
            (Some(API_VERSION), Some("Playbook")) => {}
            (_, Some("Playbook")) => match api_e {
                None => self.missing(
                    &top,
                    "apiVersion",
                    format!("add `apiVersion: {API_VERSION}`"),
                ),
                Some(e) => {
                    if api.is_some_and(|a| a.split('/').next().is_some_and(|g| g.contains('.'))) {
                        // A Kubernetes API group (pbc's own `crd` form): not ours.
                        return None;
                    }
                    let span = self.vspan(&e.value);
                    self.push(
                        Diagnostic::new(
                            &INVALID_API_VERSION,
                            span,
                            format!(
                                "`{}` is not the apiVersion of a Playbook",
                                show(api.unwrap_or(&found(&e.value)))
                            ),
                        )
                        .with_help(format!("Playbooks are `apiVersion: {API_VERSION}`"))
                        .with_fix(
                            format!("write `{API_VERSION}`"),
                            vec![Edit {
                                span,
                                text: API_VERSION.into(),
                            }],
                        ),
                    );
                }
            },
            (Some(API_VERSION), _) => match kind_e {
                None => self.missing(&top, "kind", "add `kind: Playbook`"),
                Some(e) => {
                    let span = self.vspan(&e.value);
                    let close = kind.is_some_and(|k| did_you_mean(k, ["Playbook"]).is_some());
                    let mut d = Diagnostic::new(
                        &UNKNOWN_KIND,
                        span,
                        format!(
                            "`{}` is not a kind of `{API_VERSION}`",
                            show(kind.unwrap_or(&found(&e.value)))
                        ),
                    )
                    .with_help(format!("`{API_VERSION}` has one kind, `Playbook`"));
                    if close {
                        d = d.with_fix(
                            "write `Playbook`",
                            vec![Edit {
                                span,
                                text: "Playbook".into(),
                            }],
                        );
                    }
                    self.push(d);
                    if !close {
                        return None;
                    }
                }
            },
            _ => return None,
        }
        for e in entries {
            if !TOP.contains(&e.key_str()) {
                self.unknown_field(e, &top, "a Playbook document", TOP, Ctx::Top);
            }
        }
        let metadata = match top.get("metadata") {
            Some(e) => self.metadata(e),
            None => {
                self.missing(&top, "metadata", "add `metadata:` with at least `name:`");
                None
            }
        };
        let metadata = metadata.unwrap_or_else(|| Metadata {
            name: Spanned::new(String::new(), doc_start),
            namespace: None,
            labels: None,
            annotations: None,
            description: None,
            compliance: Vec::new(),
            tags: Vec::new(),
            span: doc_start,
            keys: Keys::default(),
        });
        let spec = match top.get("spec") {
            Some(e) => self.spec(e),
            None => {
                self.missing(&top, "spec", "add `spec:` with `trigger:` and `stages:`");
                None
            }
        };
        let spec = spec.unwrap_or_else(|| Spec {
            trigger: None,
            input_schema: None,
            risk: None,
            approvers: None,
            stages: Vec::new(),
            rollback: None,
            audit: None,
            monitoring: None,
            rate_limits: Vec::new(),
            rollout: None,
            promotion: None,
            span: doc_start,
            keys: Keys::default(),
        });
        let sp =
            |e: Option<&Entry>, this: &Self| e.map(|e| this.vspan(&e.value)).unwrap_or(doc_start);
        Some(Playbook {
            api_version: Spanned::new(api.unwrap_or_default().to_string(), sp(api_e, self)),
            kind: Spanned::new(kind.unwrap_or_default().to_string(), sp(kind_e, self)),
            metadata,
            spec,
            span: root.span,
            keys: top.keys(),
        })
    }

    fn metadata(&mut self, e: &Entry) -> Option<Metadata> {
        let obj = self.obj(
            &e.value,
            "metadata",
            "`metadata`",
            "`metadata`",
            e.key.span,
            METADATA,
            Ctx::Metadata,
        )?;
        let mut m = Metadata {
            name: Spanned::new(String::new(), e.key.span),
            namespace: None,
            labels: None,
            annotations: None,
            description: None,
            compliance: Vec::new(),
            tags: Vec::new(),
            span: obj.span,
            keys: obj.keys(),
        };
        match obj.get("name") {
            Some(n) => {
                if let Some(s) = self.string("name", &n.value, "a name", true) {
                    self.dns_name("the playbook name", &s, &n.value);
                    m.name = s;
                }
            }
            None => self.missing(
                &obj,
                "name",
                "add `name:` with a DNS-1123 label, e.g. `name: code-review-agent`",
            ),
        }
        for f in obj.entries {
            let v = &f.value;
            match f.key_str() {
                "namespace" => {
                    if let Some(s) = self.string("namespace", v, "a namespace name", true) {
                        self.dns_name("the namespace", &s, v);
                        m.namespace = Some(s);
                    }
                }
                "labels" if self.k8s_map("labels", v, true) => m.labels = Some(v.clone()),
                "annotations" if self.k8s_map("annotations", v, false) => {
                    m.annotations = Some(v.clone())
                }
                "description" => m.description = self.string("description", v, "a string", false),
                "compliance" => m.compliance = self.string_list("compliance", v, "control tags"),
                "tags" => m.tags = self.string_list("tags", v, "strings"),
                _ => {}
            }
        }
        Some(m)
    }

    /// Checks labels/annotations; returns whether the value is a mapping.
    fn k8s_map(&mut self, key: &str, v: &Node, labels: bool) -> bool {
        let Some(entries) = v.as_map() else {
            self.wrong_type(key, v, "a mapping of strings");
            return false;
        };
        let what = if labels { "label" } else { "annotation" };
        for e in entries {
            let k = e.key_str();
            if let Some(why) = k8s_key_problem(k) {
                self.push(
                    Diagnostic::new(
                        &INVALID_LABEL,
                        e.key.span,
                        format!("`{}` is not a valid {what} key", show(k)),
                    )
                    .with_help(why),
                );
            }
            match &e.value.value {
                Value::Scalar(s) if s.kind == ScalarKind::Str => {
                    if labels && let Some(why) = k8s_label_value_problem(&s.text) {
                        self.push(
                            Diagnostic::new(
                                &INVALID_LABEL,
                                self.vspan(&e.value),
                                format!("`{}` is not a valid label value", show(&s.text)),
                            )
                            .with_help(why),
                        );
                    }
                }
                Value::Scalar(s) if s.style == Style::Plain && !s.text.is_empty() => {
                    let span = self.vspan(&e.value);
                    self.push(
                        Diagnostic::new(
                            &INVALID_LABEL,
                            span,
                            format!("{what} values are strings, found {}", found(&e.value)),
                        )
                        .with_help(format!("quote it: `\"{}\"`", show(&s.text)))
                        .with_fix(
                            "quote the value",
                            vec![Edit {
                                span,
                                text: format!("{:?}", s.text),
                            }],
                        ),
                    );
                }
                _ => self.wrong_type(k, &e.value, &format!("a string ({what} value)")),
            }
        }
        true
    }

    // ----- spec -----------------------------------------------------------------------

    fn spec(&mut self, e: &Entry) -> Option<Spec> {
        let obj = self.obj(
            &e.value,
            "spec",
            "`spec`",
            "`spec`",
            e.key.span,
            SPEC,
            Ctx::Spec,
        )?;
        let mut spec = Spec {
            trigger: None,
            input_schema: None,
            risk: None,
            approvers: None,
            stages: Vec::new(),
            rollback: None,
            audit: None,
            monitoring: None,
            rate_limits: Vec::new(),
            rollout: None,
            promotion: None,
            span: obj.span,
            keys: obj.keys(),
        };
        // Fields the stages depend on first.
        if let Some(r) = obj.get("risk") {
            spec.risk = self.enumv("risk", &r.value, Risk::NAMES, Risk::parse);
        }
        for f in obj.entries {
            let v = &f.value;
            match f.key_str() {
                "trigger" => spec.trigger = self.trigger(f),
                "input-schema" => {
                    spec.input_schema =
                        self.string("input-schema", v, "a path to a JSON Schema file", true)
                }
                "approvers" => spec.approvers = self.approvers("approvers", v),
                "stages" => spec.stages = self.stages(f, &spec),
                "rollback" => spec.rollback = self.rollback(f),
                "audit" => spec.audit = self.audit(f),
                "monitoring" => spec.monitoring = self.monitoring(f),
                "rate-limits" => spec.rate_limits = self.rate_limits(v),
                "rollout" if self.rollout(v, f.key.span) => spec.rollout = Some(v.clone()),
                "promotion" if self.promotion(v) => spec.promotion = Some(v.clone()),
                _ => {}
            }
        }
        if obj.get("trigger").is_none() {
            self.missing(&obj, "trigger", "add `trigger:` with an event name, `{event, input-schema}` or `{schedule, timezone}`");
        }
        if obj.get("stages").is_none() {
            self.missing(&obj, "stages", "add `stages:` with at least one stage");
        }
        // The input schema, given twice.
        if let (
            Some(s),
            Some(Spanned {
                value:
                    Trigger::EventWithSchema {
                        input_schema: Some(t),
                        ..
                    },
                ..
            }),
        ) = (&spec.input_schema, &spec.trigger)
        {
            self.push(
                Diagnostic::new(
                    &CONFLICTING_FIELDS,
                    s.span,
                    "the input schema is given twice, in `trigger.input-schema` and in `spec.input-schema`",
                )
                .with_label(t.span, "also given here")
                .with_help("keep one of the two"),
            );
        }
        // Who approves a medium-risk playbook.
        let has_approvers = approvers_given(&spec.keys, &spec.approvers);
        match &spec.risk {
            Some(r) if r.value == Risk::Medium && !has_approvers => {
                let mut d = Diagnostic::new(
                    &MISSING_APPROVERS,
                    r.span,
                    "a `medium`-risk playbook needs approvers, and `spec.approvers` names none",
                )
                .with_help("add `approvers:` to `spec`: one of them approves each run before its first stage");
                if let Some(a) = &spec.approvers {
                    d = d.with_label(a.span, "this list is empty");
                }
                self.push(d);
            }
            _ if spec.risk() == Risk::Low => {
                if let Some(k) = spec.keys.get("approvers") {
                    self.push(
                        Diagnostic::new(
                            &UNUSED_GATE_FIELD,
                            k,
                            "`spec.approvers` has no effect: the playbook's risk is `low`",
                        )
                        .with_help("`spec.approvers` approve a `risk: medium` playbook before it starts; set `risk: medium`, or move the approvers to the stages that need them"),
                    );
                }
            }
            _ => {}
        }
        Some(spec)
    }

    fn trigger(&mut self, e: &Entry) -> Option<Spanned<Trigger>> {
        let v = &e.value;
        let span = self.vspan(v);
        if let Value::Scalar(s) = &v.value
            && s.kind == ScalarKind::Str
        {
            let ev = self.string("trigger", v, "an event name", true)?;
            let _ = s;
            return Some(Spanned::new(Trigger::Event { event: ev }, span));
        }
        if v.as_map().is_none() {
            self.wrong_type(
                "trigger",
                v,
                "an event name or a mapping with `event` or `schedule`",
            );
            return None;
        }
        let has = |k: &str| v.entry(k);
        let (allowed, kind) = match (has("event"), has("schedule")) {
            (Some(a), Some(b)) => {
                let (first, second) = if a.key.span < b.key.span {
                    (a, b)
                } else {
                    (b, a)
                };
                self.push(
                    Diagnostic::new(
                        &CONFLICTING_FIELDS,
                        second.key.span,
                        "a trigger is an `event` or a `schedule`, not both",
                    )
                    .with_label(first.key.span, "also given here")
                    .with_help("keep one: `{event, input-schema}` runs on an event, `{schedule, timezone}` on a clock"),
                );
                (TRIGGER_ALL, "a trigger")
            }
            (_, Some(_)) => (TRIGGER_SCHEDULE, "a schedule trigger"),
            (Some(_), None) => (TRIGGER_EVENT, "an event trigger"),
            (None, None) => (TRIGGER_ALL, "a trigger"),
        };
        let obj = self.obj(
            v,
            "trigger",
            "the trigger",
            kind,
            e.key.span,
            allowed,
            Ctx::Other,
        )?;
        if let Some(sch) = obj.get("schedule") {
            let cron = self.cron(&sch.value);
            let timezone = match obj.get("timezone") {
                Some(t) => self.timezone(&t.value),
                None => None,
            };
            let cron = cron?;
            if obj.get("event").is_some() {
                return None;
            }
            return Some(Spanned::new(Trigger::Schedule { cron, timezone }, span));
        }
        match obj.get("event") {
            Some(ev) => {
                let event = self.string("event", &ev.value, "an event name", true)?;
                let input_schema = match obj.get("input-schema") {
                    Some(i) => self.string(
                        "input-schema",
                        &i.value,
                        "a path to a JSON Schema file",
                        true,
                    ),
                    None => None,
                };
                Some(Spanned::new(
                    Trigger::EventWithSchema {
                        event,
                        input_schema,
                    },
                    span,
                ))
            }
            None => {
                self.push(
                    Diagnostic::new(
                        &MISSING_FIELD,
                        e.key.span,
                        "the trigger has neither `event` nor `schedule`",
                    )
                    .with_help("write `trigger: EVENT`, `trigger: {event: EVENT, input-schema: FILE}` or `trigger: {schedule: CRON, timezone: ZONE}`"),
                );
                None
            }
        }
    }

    fn cron(&mut self, v: &Node) -> Option<Spanned<Cron>> {
        let s = self.string("schedule", v, "a cron schedule (a string)", false)?;
        match cron::parse_cron(&s.value) {
            Ok(schedule) => Some(Spanned::new(
                Cron {
                    text: s.value.clone(),
                    schedule,
                },
                s.span,
            )),
            Err(e) => {
                let sub = if e.start == 0 && e.end == s.value.len() {
                    s.span
                } else {
                    text_span(self.sources, v, e.start, e.end)
                };
                let mut d = Diagnostic::new(&INVALID_CRON, sub, e.message);
                if let Some(h) = e.help {
                    d = d.with_help(h);
                }
                if let Some(r) = e.replacement {
                    d = d.with_fix(format!("write `{r}`"), vec![Edit { span: sub, text: r }]);
                }
                self.push(d);
                None
            }
        }
    }

    fn timezone(&mut self, v: &Node) -> Option<Spanned<chrono_tz::Tz>> {
        let s = self.string("timezone", v, "an IANA time zone name", false)?;
        if let Ok(tz) = chrono_tz::Tz::from_str(&s.value) {
            return Some(Spanned::new(tz, s.span));
        }
        let names = chrono_tz::TZ_VARIANTS.iter().map(|t| t.name());
        let guess = names
            .clone()
            .find(|n| n.eq_ignore_ascii_case(&s.value))
            .or_else(|| did_you_mean(&s.value, names));
        let help = guess_help(
            guess,
            "use a name from the IANA time zone database, such as `Europe/Berlin`, `America/New_York` or `UTC`",
        );
        let mut d = Diagnostic::new(
            &UNKNOWN_TIMEZONE,
            s.span,
            format!("`{}` is not an IANA time zone", show(&s.value)),
        )
        .with_help(help);
        if let Some(g) = guess {
            d = d.with_fix(
                format!("write `{g}`"),
                vec![Edit {
                    span: s.span,
                    text: g.to_string(),
                }],
            );
        }
        self.push(d);
        None
    }

    fn rate_limits(&mut self, v: &Node) -> Vec<RateLimit> {
        let Some(entries) = v.as_map() else {
            self.wrong_type(
                "rate-limits",
                v,
                "a mapping of `LAYER:FUNCTION` to `\"N per UNIT\"`",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in entries {
            let action = self.action_ref("rate-limits", &e.key);
            let span = self.vspan(&e.value);
            let value = match &e.value.value {
                Value::Scalar(s) if s.kind == ScalarKind::Str => match parse_rate(&s.text) {
                    Ok((count, per)) => {
                        Some((count, per, Spanned::new(s.text.as_str().to_owned(), span)))
                    }
                    Err((a, b, msg, help)) => {
                        let sub = if a == 0 && b == s.text.len() {
                            span
                        } else {
                            text_span(self.sources, &e.value, a, b)
                        };
                        self.push(Diagnostic::new(&INVALID_RATE_LIMIT, sub, msg).with_help(help));
                        None
                    }
                },
                Value::Scalar(s) if matches!(s.kind, ScalarKind::Int | ScalarKind::Float) => {
                    self.push(
                        Diagnostic::new(
                            &INVALID_RATE_LIMIT,
                            span,
                            format!("`{}` is a number, not a rate limit", show(&s.text)),
                        )
                        .with_help(format!(
                            "say per what: `\"{} per hour\"` (second, minute, hour or day)",
                            show(&s.text)
                        )),
                    );
                    None
                }
                _ => {
                    self.wrong_type(e.key_str(), &e.value, "a rate limit `\"N per UNIT\"`");
                    None
                }
            };
            if let (Some(action), Some((count, per, value))) = (action, value) {
                out.push(RateLimit {
                    action,
                    count,
                    per,
                    value,
                });
            }
        }
        out
    }

    fn rollback(&mut self, e: &Entry) -> Option<Rollback> {
        let obj = self.obj(
            &e.value,
            "rollback",
            "`rollback`",
            "`spec.rollback`",
            e.key.span,
            ROLLBACK,
            Ctx::Other,
        )?;
        let on_failure = match obj.get("on-failure") {
            Some(f) => self.enumv("on-failure", &f.value, OnFailure::NAMES, OnFailure::parse),
            None => {
                self.missing(
                    &obj,
                    "on-failure",
                    format!("add `on-failure:` with {}", one_of(OnFailure::NAMES)),
                );
                None
            }
        };
        let notification = match obj.get("notification") {
            Some(n) => self.string_list("notification", &n.value, "channel names"),
            None => Vec::new(),
        };
        Some(Rollback {
            on_failure: on_failure?,
            notification,
            span: obj.span,
            keys: obj.keys(),
        })
    }

    fn audit(&mut self, e: &Entry) -> Option<Audit> {
        let obj = self.obj(
            &e.value,
            "audit",
            "`audit`",
            "`spec.audit`",
            e.key.span,
            AUDIT,
            Ctx::Other,
        )?;
        let log_to = match obj.get("log-to") {
            Some(l) => self.string_list("log-to", &l.value, "audit sink names"),
            None => Vec::new(),
        };
        let retention = match obj.get("retention") {
            Some(r) => self.duration("retention", &r.value),
            None => None,
        };
        Some(Audit {
            log_to,
            retention,
            span: obj.span,
            keys: obj.keys(),
        })
    }

    fn monitoring(&mut self, e: &Entry) -> Option<Monitoring> {
        let obj = self.obj(
            &e.value,
            "monitoring",
            "`monitoring`",
            "`spec.monitoring`",
            e.key.span,
            MONITORING,
            Ctx::Other,
        )?;
        let mut metrics = Vec::new();
        let mut alerts = Vec::new();
        if let Some(m) = obj.get("metrics") {
            if let Some(items) = m.value.as_seq() {
                let mut seen: HashMap<String, Span> = HashMap::new();
                for item in items {
                    let Some(o) = self.obj(
                        item,
                        "metrics",
                        "this metric",
                        "a metric",
                        item_anchor(item),
                        METRIC,
                        Ctx::Other,
                    ) else {
                        continue;
                    };
                    let name = match o.get("name") {
                        Some(n) => self.string("name", &n.value, "a metric name", true),
                        None => {
                            self.missing(
                                &o,
                                "name",
                                "add `name:`; alert conditions refer to metrics by name",
                            );
                            None
                        }
                    };
                    let target = match o.get("target") {
                        Some(t) => self.expr("target", &t.value),
                        None => {
                            self.missing(&o, "target", "add `target:`, e.g. `p95 < 4h` or `< 5%`");
                            None
                        }
                    };
                    if let Some(n) = &name {
                        let ok = n
                            .value
                            .chars()
                            .next()
                            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                            && n.value
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                        if !ok {
                            self.invalid_value(
                                n.span,
                                format!("metric name `{}` cannot be referred to from an alert condition", show(&n.value)),
                                "a metric name starts with a letter or `_` and holds letters, digits, `_` and `-`",
                            );
                        } else if let Some(first) = seen.get(&n.value) {
                            self.push(
                                Diagnostic::new(
                                    &DUPLICATE_NAME,
                                    n.span,
                                    format!("duplicate metric name `{}`", n.value),
                                )
                                .with_label(*first, "first defined here")
                                .with_help("give each metric its own name"),
                            );
                        } else {
                            seen.insert(n.value.clone(), n.span);
                        }
                    }
                    if let (Some(name), Some(target)) = (name, target) {
                        metrics.push(Metric {
                            name,
                            target,
                            span: item.span,
                        });
                    }
                }
            } else {
                self.wrong_type("metrics", &m.value, "a list of metrics (`{name, target}`)");
            }
        }
        if let Some(a) = obj.get("alerts") {
            if let Some(items) = a.value.as_seq() {
                for item in items {
                    let Some(o) = self.obj(
                        item,
                        "alerts",
                        "this alert",
                        "an alert",
                        item_anchor(item),
                        ALERT,
                        Ctx::Other,
                    ) else {
                        continue;
                    };
                    let condition = match o.get("condition") {
                        Some(c) => self.expr("condition", &c.value),
                        None => {
                            self.missing(
                                &o,
                                "condition",
                                "add `condition:`, e.g. `approval-latency > 6h`",
                            );
                            None
                        }
                    };
                    let notify = match o.get("notify") {
                        Some(n) => self.string_list("notify", &n.value, "channel names"),
                        None => Vec::new(),
                    };
                    if let Some(condition) = condition {
                        alerts.push(Alert {
                            condition,
                            notify,
                            span: item.span,
                        });
                    }
                }
            } else {
                self.wrong_type(
                    "alerts",
                    &a.value,
                    "a list of alerts (`{condition, notify}`)",
                );
            }
        }
        Some(Monitoring {
            metrics,
            alerts,
            span: obj.span,
            keys: obj.keys(),
        })
    }

    /// Shape-checks `spec.rollout` (`canary` steps or `blue-green`); returns whether it is a mapping.
    fn rollout(&mut self, v: &Node, key: Span) -> bool {
        let Some(obj) = self.obj(
            v,
            "rollout",
            "`rollout`",
            "`spec.rollout`",
            key,
            ROLLOUT,
            Ctx::Other,
        ) else {
            return false;
        };
        match obj.get("strategy") {
            Some(s) => {
                self.enumv(
                    "strategy",
                    &s.value,
                    RolloutStrategy::NAMES,
                    RolloutStrategy::parse,
                );
            }
            None => self.missing(
                &obj,
                "strategy",
                format!("add `strategy:` with {}", one_of(RolloutStrategy::NAMES)),
            ),
        }
        for f in obj.entries {
            let fv = &f.value;
            match f.key_str() {
                "steps" => {
                    let Some(items) = fv.as_seq() else {
                        self.wrong_type("steps", fv, "a list of rollout steps (`{weight, pause}`)");
                        continue;
                    };
                    for item in items {
                        let Some(o) = self.obj(
                            item,
                            "steps",
                            "this rollout step",
                            "a rollout step",
                            item_anchor(item),
                            ROLLOUT_STEP,
                            Ctx::Other,
                        ) else {
                            continue;
                        };
                        match o.get("weight") {
                            Some(w) => {
                                let ok = w
                                    .value
                                    .as_scalar()
                                    .filter(|s| s.kind == ScalarKind::Int)
                                    .map(|s| crate::yaml::parse_int(&s.text));
                                match ok {
                                    Some(Some(n)) if (0..=100).contains(&n) => {}
                                    Some(_) => self.invalid_value(
                                        self.vspan(&w.value),
                                        "a rollout weight is a percentage from 0 to 100".into(),
                                        "use a whole number from 0 to 100",
                                    ),
                                    None => self.wrong_type(
                                        "weight",
                                        &w.value,
                                        "a whole number (a percentage)",
                                    ),
                                }
                            }
                            None => self.missing(
                                &o,
                                "weight",
                                "add `weight:` (the percentage of traffic)",
                            ),
                        }
                        if let Some(p) = o.get("pause") {
                            self.duration("pause", &p.value);
                        }
                    }
                }
                "rollback" => {
                    if let Some(entries) = fv.as_map() {
                        for e in entries {
                            self.string(e.key_str(), &e.value, "a string", true);
                        }
                    } else {
                        self.wrong_type("rollback", fv, "a mapping");
                    }
                }
                "metrics" => {
                    let Some(items) = fv.as_seq() else {
                        self.wrong_type(
                            "metrics",
                            fv,
                            "a list of rollout metrics (`{name, threshold}`)",
                        );
                        continue;
                    };
                    for item in items {
                        let Some(o) = self.obj(
                            item,
                            "metrics",
                            "this rollout metric",
                            "a rollout metric",
                            item_anchor(item),
                            ROLLOUT_METRIC,
                            Ctx::Other,
                        ) else {
                            continue;
                        };
                        for k in ROLLOUT_METRIC {
                            match o.get(k) {
                                Some(x) => {
                                    self.expr(k, &x.value);
                                }
                                None => self.missing(&o, k, format!("add `{k}:`")),
                            }
                        }
                    }
                }
                "active-service" | "preview-service" => {
                    self.string(f.key_str(), fv, "a service name", true);
                }
                "auto-promotion" if fv.as_scalar().is_none_or(|s| s.kind != ScalarKind::Bool) => {
                    self.wrong_type("auto-promotion", fv, "a boolean");
                }
                _ => {}
            }
        }
        true
    }

    /// Shape-checks `spec.promotion`: `{from, to, requires}`, plus named promotions of the
    /// same shape (e.g. `staging-promotion`); returns whether it is a mapping.
    fn promotion(&mut self, v: &Node) -> bool {
        let Some(entries) = v.as_map() else {
            self.wrong_type("promotion", v, "a mapping");
            return false;
        };
        for e in entries {
            match e.key_str() {
                "from" | "to" => {
                    self.string(e.key_str(), &e.value, "an environment name", true);
                }
                "requires" => {
                    self.string_list("requires", &e.value, "requirements");
                }
                k => {
                    let Some(o) = self.obj(
                        &e.value,
                        k,
                        format!("promotion `{}`", show(k)),
                        "a promotion",
                        e.key.span,
                        PROMOTION,
                        Ctx::Other,
                    ) else {
                        continue;
                    };
                    for f in o.entries {
                        match f.key_str() {
                            "from" | "to" => {
                                self.string(f.key_str(), &f.value, "an environment name", true);
                            }
                            "requires" => {
                                self.string_list("requires", &f.value, "requirements");
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        true
    }

    // ----- stages ---------------------------------------------------------------------

    fn stages(&mut self, e: &Entry, spec: &Spec) -> Vec<Stage> {
        let Some(items) = e.value.as_seq() else {
            self.wrong_type("stages", &e.value, "a list of stages");
            return Vec::new();
        };
        if items.is_empty() {
            self.push(
                Diagnostic::new(&MISSING_FIELD, e.key.span, "`spec.stages` is empty")
                    .with_help("a playbook needs at least one stage"),
            );
        }
        let mut out: Vec<Stage> = Vec::new();
        let mut seen: HashMap<String, Span> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let Some(stage) = self.stage(item, i, spec) else {
                continue;
            };
            if !stage.name.value.is_empty() {
                if let Some(first) = seen.get(&stage.name.value) {
                    self.push(
                        Diagnostic::new(
                            &DUPLICATE_NAME,
                            stage.name.span,
                            format!("duplicate stage name `{}`", show(&stage.name.value)),
                        )
                        .with_label_text("defined again here")
                        .with_label(*first, "first defined here")
                        .with_help("stage names must be unique: rename one of the two"),
                    );
                } else {
                    seen.insert(stage.name.value.clone(), stage.name.span);
                }
            }
            out.push(stage);
        }
        out
    }

    fn stage(&mut self, item: &Node, index: usize, spec: &Spec) -> Option<Stage> {
        let anchor = item_anchor(item);
        let name_node = item.get("name");
        let label = name_node
            .and_then(Node::as_str)
            .filter(|n| !n.is_empty())
            .map(|n| format!("stage `{}`", show(n)))
            .unwrap_or_else(|| format!("stage {}", index + 1));
        let obj = self.obj(
            item,
            "stages",
            label.clone(),
            "a stage",
            anchor,
            STAGE,
            Ctx::Stage,
        )?;
        let mut st = Stage {
            name: Spanned::new(String::new(), anchor),
            index,
            executor: None,
            params: None,
            prompt: None,
            lora: None,
            rag_source: None,
            guardrails: Vec::new(),
            policy: None,
            approval: None,
            approvers: None,
            conditions: Vec::new(),
            escalation: Vec::new(),
            sla: None,
            timeout: None,
            retries: None,
            notification: None,
            output_schema: None,
            context: Vec::new(),
            needs: None,
            when: None,
            risk: None,
            compliance: Vec::new(),
            audit_log: None,
            rollback: None,
            langfuse: None,
            span: obj.span,
            keys: obj.keys(),
        };
        match obj.get("name") {
            Some(n) => {
                if let Some(s) = self.string("name", &n.value, "a stage name", true) {
                    self.dns_name("stage name", &s, &n.value);
                    st.name = s;
                }
            }
            None => self.missing(
                &obj,
                "name",
                "add `name:` with a DNS-1123 label unique in the playbook",
            ),
        }
        let mut conditions_entry = None;
        for f in obj.entries {
            let v = &f.value;
            let k = f.key_str();
            match k {
                "params" => st.params = self.open_map("params", v),
                "prompt" => st.prompt = self.string(k, v, "a string", true),
                "lora" => st.lora = self.string(k, v, "a LoRA adapter name", true),
                "rag-source" => st.rag_source = self.string(k, v, "a RAG source name", true),
                "guardrails" => {
                    st.guardrails = self.string_list(k, v, "guardrail names");
                    for g in &st.guardrails {
                        self.guardrail(g);
                    }
                }
                "policy" => {
                    st.policy = self.string(k, v, "a policy name", true);
                    if let Some(p) = &st.policy {
                        self.policy(p);
                    }
                }
                "approval" => st.approval = self.enumv(k, v, Approval::NAMES, Approval::parse),
                "approvers" => st.approvers = self.approvers(k, v),
                "conditions" => conditions_entry = Some(f),
                "escalation" => st.escalation = self.escalation(v),
                "sla" => st.sla = self.duration(k, v),
                "timeout" => st.timeout = self.duration(k, v),
                "retries" => st.retries = self.integer(k, v),
                "notification" => st.notification = self.notification(f),
                "output-schema" => {
                    st.output_schema = self.string(k, v, "a path to a JSON Schema file", true)
                }
                "context" => st.context = self.string_list(k, v, "stage names or output files"),
                "needs" => {
                    if v.as_seq().is_some() {
                        st.needs =
                            Some(Spanned::new(self.string_list(k, v, "stage names"), v.span));
                    } else {
                        self.wrong_type(k, v, "a list of stage names");
                    }
                }
                "when" => st.when = self.expr(k, v),
                "risk" => st.risk = self.enumv(k, v, Risk::NAMES, Risk::parse),
                "compliance" => st.compliance = self.string_list(k, v, "control tags"),
                "audit-log" => st.audit_log = self.enumv(k, v, AuditLog::NAMES, AuditLog::parse),
                "rollback" => st.rollback = self.stage_rollback(f),
                "langfuse" => st.langfuse = self.langfuse(f),
                _ => {}
            }
        }
        st.executor = self.executor(&obj, &st);
        if let Some(c) = conditions_entry {
            st.conditions = self.conditions(c);
        }
        self.gate(&st, conditions_entry, spec);
        Some(st)
    }

    fn executor(&mut self, obj: &Obj<'_>, st: &Stage) -> Option<Executor> {
        let agent = obj.get("agent");
        let action = obj.get("action");
        match (agent, action) {
            (Some(a), Some(b)) => {
                let (first, second) = if a.key.span < b.key.span {
                    (a, b)
                } else {
                    (b, a)
                };
                self.push(
                    Diagnostic::new(
                        &AGENT_OR_ACTION,
                        second.key.span,
                        format!("{} has both `agent` and `action`", obj.what),
                    )
                    .with_label(first.key.span, "also given here")
                    .with_help("a stage is an agent step (`agent: MODEL`) or an action (`action: LAYER:FUNCTION`), not both: remove one"),
                );
                None
            }
            (Some(a), None) => self
                .string("agent", &a.value, "a model name", true)
                .map(Executor::Agent),
            (None, Some(b)) => self.action_ref("action", &b.value).map(Executor::Action),
            (None, None) => {
                let span = if st.name.value.is_empty() {
                    obj.anchor
                } else {
                    st.name.span
                };
                self.push(
                    Diagnostic::new(
                        &AGENT_OR_ACTION,
                        span,
                        format!("{} has neither `agent` nor `action`", obj.what),
                    )
                    .with_help("add `agent: MODEL` for an agent step, or `action: LAYER:FUNCTION` for an action"),
                );
                None
            }
        }
    }

    fn guardrail(&mut self, g: &Spanned<String>) {
        let known = BUILTIN_GUARDRAILS
            .iter()
            .copied()
            .chain(self.opts.extra_guardrails.iter().map(String::as_str));
        if known.clone().any(|k| k == g.value) {
            return;
        }
        let guess = did_you_mean(&g.value, known);
        let help = guess_help(
            guess,
            &format!(
                "the built-in guardrails are {}; define others under `guardrails:` in `.pbc.yaml`",
                one_of(BUILTIN_GUARDRAILS)
            ),
        );
        let mut d = Diagnostic::new(
            &UNKNOWN_GUARDRAIL,
            g.span,
            format!(
                "guardrail `{}` is neither built in nor configured",
                show(&g.value)
            ),
        )
        .with_help(help);
        if let Some(x) = guess {
            d = d.with_fix(
                format!("write `{x}`"),
                vec![Edit {
                    span: g.span,
                    text: x.to_string(),
                }],
            );
        }
        self.push(d);
    }

    fn policy(&mut self, p: &Spanned<String>) {
        if self.opts.policies.contains(&p.value) {
            return;
        }
        let guess = did_you_mean(&p.value, self.opts.policies.iter().map(String::as_str));
        let help = guess_help(guess, "define the policy under `policies:` in `.pbc.yaml`");
        self.push(
            Diagnostic::new(
                &UNKNOWN_POLICY,
                p.span,
                format!("no configured policy is named `{}`", show(&p.value)),
            )
            .with_help(help),
        );
    }

    fn conditions(&mut self, e: &Entry) -> Vec<Condition> {
        let Some(items) = e.value.as_seq() else {
            self.wrong_type(
                "conditions",
                &e.value,
                "a list of conditions (`{if, then}` items and a closing `{else}`)",
            );
            return Vec::new();
        };
        let mut out: Vec<Condition> = Vec::new();
        for item in items {
            let anchor = item_anchor(item);
            let Some(obj) = self.obj(
                item,
                "conditions",
                "this condition",
                "a condition",
                anchor,
                CONDITION,
                Ctx::Other,
            ) else {
                continue;
            };
            let approvers = match obj.get("approvers") {
                Some(a) => self.approvers("approvers", &a.value),
                None => None,
            };
            let cond = match (obj.get("if"), obj.get("else")) {
                (Some(i), Some(el)) => {
                    self.push(
                        Diagnostic::new(
                            &INVALID_CONDITIONS,
                            el.key.span,
                            "a condition has both `if` and `else`",
                        )
                        .with_label(i.key.span, "`if` given here")
                        .with_help("write the `else` as its own, last item: `- else: auto`"),
                    );
                    None
                }
                (Some(i), None) => {
                    let test = self.expr("if", &i.value);
                    let then = match obj.get("then") {
                        Some(t) => self.enumv("then", &t.value, Gate::NAMES, Gate::parse),
                        None => {
                            self.missing(&obj, "then", "add `then: manual` or `then: auto`");
                            None
                        }
                    };
                    match (test, then) {
                        (Some(test), Some(then)) => Some(Condition {
                            test: Some(test),
                            then,
                            approvers,
                            span: item.span,
                            keys: obj.keys(),
                        }),
                        _ => None,
                    }
                }
                (None, Some(el)) => {
                    if let Some(t) = obj.get("then") {
                        self.push(
                            Diagnostic::new(
                                &INVALID_CONDITIONS,
                                t.key.span,
                                "an `else` takes its outcome directly; `then` does not belong to it",
                            )
                            .with_label(el.key.span, "the `else`")
                            .with_help("write `else: manual` or `else: auto`, without `then`"),
                        );
                    }
                    self.enumv("else", &el.value, Gate::NAMES, Gate::parse)
                        .map(|then| Condition {
                            test: None,
                            then,
                            approvers,
                            span: item.span,
                            keys: obj.keys(),
                        })
                }
                (None, None) => {
                    self.push(
                        Diagnostic::new(
                            &INVALID_CONDITIONS,
                            anchor,
                            "this condition has neither `if` nor `else`",
                        )
                        .with_help("write `- if: EXPR` with `then: manual|auto`, or the closing `- else: manual|auto`"),
                    );
                    None
                }
            };
            if let Some(c) = cond {
                out.push(c);
            }
        }
        // Order: exactly one `else`, last.
        let elses: Vec<&Condition> = out.iter().filter(|c| c.is_else()).collect();
        let else_key = |c: &Condition| c.keys.get("else").unwrap_or(c.span);
        if let (Some(first), Some(second)) = (elses.first(), elses.get(1)) {
            self.push(
                Diagnostic::new(
                    &INVALID_CONDITIONS,
                    else_key(second),
                    "the conditions have a second `else`",
                )
                .with_label(else_key(first), "first `else`")
                .with_help("keep one `else`, as the last condition"),
            );
        } else if let Some(el) = elses.first() {
            if let Some(pos) = out.iter().position(|c| c.is_else())
                && let Some(next) = out.get(pos + 1)
            {
                let next_span = next.keys.0.first().map(|k| k.1).unwrap_or(next.span);
                self.push(
                    Diagnostic::new(
                        &INVALID_CONDITIONS,
                        else_key(el),
                        "`else` must be the last condition",
                    )
                    .with_label(next_span, "this condition can never be reached")
                    .with_help("move the `else` to the end of `conditions`"),
                );
            }
        } else if !out.is_empty() || items.is_empty() {
            self.push(
                Diagnostic::new(
                    &INVALID_CONDITIONS,
                    e.key.span,
                    if items.is_empty() {
                        "`conditions` is empty".to_string()
                    } else {
                        "the conditions have no closing `else`".to_string()
                    },
                )
                .with_help("end the list with `- else: auto` or `- else: manual`: it decides when no `if` matches"),
            );
        }
        out
    }

    /// Checks the gate as a whole: conditions vs approval, approvers, unused gate fields.
    fn gate(&mut self, st: &Stage, conditions: Option<&Entry>, spec: &Spec) {
        let approval = st.approval();
        let stage_has = approvers_given(&st.keys, &st.approvers);
        let approval_span = st.approval.as_ref().map(|a| a.span);
        let who = if st.name.value.is_empty() {
            format!("stage {}", st.index + 1)
        } else {
            format!("stage `{}`", show(&st.name.value))
        };
        match (approval, conditions) {
            (Approval::Conditional, None) => {
                if let Some(s) = approval_span {
                    self.push(
                        Diagnostic::new(
                            &INVALID_CONDITIONS,
                            s,
                            format!("{who} has `approval: conditional` but no `conditions`"),
                        )
                        .with_help("add `conditions:` with `- if: EXPR` / `then: manual|auto` items and a closing `- else: manual|auto`"),
                    );
                }
            }
            (a, Some(c)) if a != Approval::Conditional => {
                let mut d = Diagnostic::new(
                    &INVALID_CONDITIONS,
                    c.key.span,
                    format!(
                        "{who} has `conditions`, but its approval is `{a}`, so they are never read"
                    ),
                )
                .with_help("set `approval: conditional`, or remove `conditions`");
                if let Some(s) = approval_span {
                    d = d.with_label(s, "approval set here");
                }
                self.push(d);
            }
            _ => {}
        }
        if approval == Approval::Manual && !stage_has {
            let span = approval_span.unwrap_or(st.name.span);
            let mut d = Diagnostic::new(
                &MISSING_APPROVERS,
                span,
                format!("{who} has a manual gate but no approvers"),
            )
            .with_help("add `approvers:` with at least one `- role: R` or `- user: EMAIL`");
            if let Some(a) = &st.approvers {
                d = d.with_label(a.span, "this list is empty");
            }
            self.push(d);
        }
        if approval == Approval::Conditional && !stage_has {
            for c in &st.conditions {
                let own = approvers_given(&c.keys, &c.approvers);
                if c.then.value == Gate::Manual && !own {
                    let branch = if c.is_else() {
                        "`else: manual`"
                    } else {
                        "`then: manual`"
                    };
                    self.push(
                        Diagnostic::new(
                            &MISSING_APPROVERS,
                            c.then.span,
                            format!("this {branch} branch has no approvers, and {who} has none either"),
                        )
                        .with_help("add `approvers:` to this condition, or to the stage (a branch without its own uses the stage's)"),
                    );
                }
            }
        }
        if let Some(r) = &st.risk
            && r.value == Risk::Medium
            && !stage_has
            && approval != Approval::Manual
        {
            self.push(
                Diagnostic::new(
                    &MISSING_APPROVERS,
                    r.span,
                    format!("{who} has `risk: medium` but no approvers"),
                )
                .with_help("a medium-risk stage needs one approval before it runs: add `approvers:` to the stage"),
            );
        }
        // Gate fields on a stage without a gate.
        if approval == Approval::Auto && st.risk(spec) == Risk::Low {
            for k in ["approvers", "sla", "escalation"] {
                if let Some(ks) = st.keys.get(k) {
                    let mut d = Diagnostic::new(
                        &UNUSED_GATE_FIELD,
                        ks,
                        format!("`{k}` has no effect: {who} has no gate (approval `auto`, risk `low`)"),
                    )
                    .with_help("set `approval: manual` or `conditional` if a person should decide; otherwise remove it");
                    if let Some(s) = approval_span {
                        d = d.with_label(s, "approval set here");
                    }
                    self.push(d);
                }
            }
        }
        if let Some(ek) = st.keys.get("escalation")
            && st.sla.is_none()
            && st.keys.get("sla").is_none()
        {
            self.push(
                Diagnostic::new(
                    &MISSING_FIELD,
                    ek,
                    format!("{who} has `escalation` but no `sla`"),
                )
                .with_help("add `sla:`: the first escalation level opens when the SLA passes"),
            );
        }
    }

    fn escalation(&mut self, v: &Node) -> Vec<Escalation> {
        let Some(items) = v.as_seq() else {
            self.wrong_type(
                "escalation",
                v,
                "a list of escalation levels (`{after, approvers, notify}`)",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let Some(o) = self.obj(
                item,
                "escalation",
                "this escalation level",
                "an escalation level",
                item_anchor(item),
                ESCALATION,
                Ctx::Other,
            ) else {
                continue;
            };
            let after = match o.get("after") {
                Some(a) => self.duration("after", &a.value),
                None => {
                    self.missing(
                        &o,
                        "after",
                        "add `after:`, how long this level lasts, e.g. `after: 2h`",
                    );
                    None
                }
            };
            let approvers = match o.get("approvers") {
                Some(a) => self.approvers("approvers", &a.value),
                None => None,
            };
            let notify = match o.get("notify") {
                Some(n) => self.string_list("notify", &n.value, "channel names"),
                None => Vec::new(),
            };
            if let Some(after) = after {
                out.push(Escalation {
                    after,
                    approvers,
                    notify,
                    span: item.span,
                    keys: o.keys(),
                });
            }
        }
        out
    }

    fn notification(&mut self, e: &Entry) -> Option<Notification> {
        let o = self.obj(
            &e.value,
            "notification",
            "`notification`",
            "a stage's `notification`",
            e.key.span,
            NOTIFICATION,
            Ctx::Other,
        )?;
        let mut n = Notification {
            span: o.span,
            keys: o.keys(),
            ..Notification::default()
        };
        for f in o.entries {
            let k = f.key_str();
            let slot = match k {
                "on-pending" => &mut n.on_pending,
                "on-approved" => &mut n.on_approved,
                "on-rejected" => &mut n.on_rejected,
                "on-expired" => &mut n.on_expired,
                "on-failure" => &mut n.on_failure,
                _ => continue,
            };
            *slot = self.string_list(k, &f.value, "channel names");
        }
        Some(n)
    }

    fn stage_rollback(&mut self, e: &Entry) -> Option<StageRollback> {
        let o = self.obj(
            &e.value,
            "rollback",
            "the stage's `rollback`",
            "a stage's `rollback`",
            e.key.span,
            STAGE_ROLLBACK,
            Ctx::StageRollback,
        )?;
        let action = match o.get("action") {
            Some(a) => self.action_ref("action", &a.value),
            None => {
                self.missing(
                    &o,
                    "action",
                    "add `action: LAYER:FUNCTION`, the step that undoes this stage",
                );
                None
            }
        };
        let params = match o.get("params") {
            Some(p) => self.open_map("params", &p.value),
            None => None,
        };
        Some(StageRollback {
            action: action?,
            params,
            span: o.span,
            keys: o.keys(),
        })
    }

    fn langfuse(&mut self, e: &Entry) -> Option<Langfuse> {
        let o = self.obj(
            &e.value,
            "langfuse",
            "`langfuse`",
            "`langfuse`",
            e.key.span,
            LANGFUSE,
            Ctx::Other,
        )?;
        let mut l = Langfuse {
            trace_id: None,
            tags: Vec::new(),
            metadata: None,
            span: o.span,
            keys: o.keys(),
        };
        for f in o.entries {
            match f.key_str() {
                "trace-id" => {
                    l.trace_id = self.string("trace-id", &f.value, "a trace id or `auto`", true)
                }
                "tags" => l.tags = self.string_list("tags", &f.value, "strings"),
                "metadata" => l.metadata = self.open_map("metadata", &f.value),
                _ => {}
            }
        }
        Some(l)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{Limits, parse};

    const HEAD: &str = "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\nspec:\n  trigger: e\n  stages:\n";

    /// Builds the first document; returns the model and `(code, text under the span)`.
    fn run_opts(
        text: &str,
        opts: &ModelOptions,
    ) -> (Option<Playbook>, Vec<(&'static str, String)>) {
        let sm = SourceMap::new();
        let f = sm.add("t.yaml", text);
        let mut d = Vec::new();
        let docs = parse(&f, &Limits::default(), &mut d);
        assert!(d.is_empty(), "{d:?}");
        let p = docs
            .first()
            .and_then(|doc| from_document(&doc.root, &sm, opts, &mut d));
        let out = d
            .iter()
            .map(|d| (d.code.id, f.slice(d.span).to_string()))
            .collect();
        (p, out)
    }

    fn run(text: &str) -> (Option<Playbook>, Vec<(&'static str, String)>) {
        run_opts(text, &ModelOptions::default())
    }

    fn stage(body: &str) -> Vec<(&'static str, String)> {
        run(&format!("{HEAD}    - name: s\n{body}")).1
    }

    fn one<'v>(v: &'v [(&'static str, String)]) -> (&'static str, &'v str) {
        assert_eq!(v.len(), 1, "{v:?}");
        (v[0].0, v[0].1.as_str())
    }

    #[test]
    fn other_documents_are_not_playbooks() {
        for t in [
            "- a\n- b\n",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n",
            "apiVersion: agenticops.io/v1\nkind: Playbook\nmetadata: {name: x}\n",
            "apiVersion: v1\nkind: ConfigMap\n",
            "a: 1\n",
        ] {
            let (p, d) = run(t);
            assert!(p.is_none() && d.is_empty(), "{t}: {d:?}");
        }
        let (p, d) = run("apiVersion: agenticops/v1\nkind: Workflow\n");
        assert!(p.is_none());
        assert_eq!(one(&d), ("PB2020", "Workflow"));
        let (p, d) = run(
            "apiVersion: agenticops/v1\nmetadata: {name: x}\nspec: {trigger: e, stages: [{name: s, agent: m}]}\n",
        );
        assert!(p.is_some());
        assert_eq!(one(&d), ("PB2003", ""));
        let (p, d) = run(
            "kind: Playbook\nmetadata: {name: x}\nspec: {trigger: e, stages: [{name: s, agent: m}]}\n",
        );
        assert!(p.is_some());
        assert_eq!(one(&d), ("PB2003", ""));
    }

    #[test]
    fn a_clean_playbook_has_no_findings() {
        let (p, d) = run(&format!(
            "{HEAD}    - name: s\n      agent: m\n      needs: []\n      when: true\n"
        ));
        assert!(d.is_empty(), "{d:?}");
        let p = p.unwrap();
        let s = &p.spec.stages[0];
        assert_eq!(s.needs.as_ref().map(|n| n.value.len()), Some(0));
        assert_eq!(s.when.as_ref().map(|w| w.text.value.as_str()), Some("true"));
        assert_eq!(s.agent().map(|a| a.value.as_str()), Some("m"));
        assert_eq!(s.approval(), Approval::Auto);
    }

    #[test]
    fn nulls_and_empty_values() {
        let d = stage("      agent: m\n      approval: manual\n      approvers:\n");
        assert_eq!(one(&d).0, "PB2002");
        assert_eq!(one(&stage("      agent: \"\"\n")), ("PB2018", "\"\""));
        assert_eq!(one(&stage("      agent: m\n      approval:\n")).0, "PB2004");
    }

    #[test]
    fn trigger_forms() {
        let t = |trig: &str| {
            run(&format!(
                "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\nspec:\n  trigger: {trig}\n  stages: [{{name: s, agent: m}}]\n"
            ))
        };
        let (p, d) = t("{event: e, input-schema: in.json}");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            p.unwrap().spec.input_schema().map(|s| s.value.as_str()),
            Some("in.json")
        );
        assert_eq!(one(&t("{}").1), ("PB2003", "trigger"));
        assert_eq!(
            one(&t("{event: e, timezone: UTC}").1),
            ("PB2001", "timezone")
        );
        assert_eq!(
            one(&t("{schedule: '0 3 * * *', input-schema: x.json}").1),
            ("PB2001", "input-schema")
        );
        assert_eq!(one(&t("[e]").1).0, "PB2002");
        assert_eq!(one(&t("{schedule: 5}").1), ("PB2002", "5"));
        assert_eq!(one(&t("{schedule: '@every 5m'}").1), ("PB2006", "@every"));
        assert_eq!(
            one(&t("{schedule: 'TZ=UTC 0 3 * * *'}").1),
            ("PB2006", "TZ=UTC")
        );
        assert_eq!(
            one(&t("{schedule: '@daily', timezone: europe/berlin}").1),
            ("PB2007", "europe/berlin")
        );
        let (_, d) = run(
            "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\nspec:\n  trigger: {event: e, input-schema: a.json}\n  input-schema: b.json\n  stages: [{name: s, agent: m}]\n",
        );
        assert_eq!(one(&d), ("PB2022", "b.json"));
    }

    #[test]
    fn spec_level_checks() {
        let spec = |extra: &str| {
            run(&format!(
                "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\nspec:\n  trigger: e\n{extra}  stages: [{{name: s, agent: m}}]\n"
            ))
            .1
        };
        assert_eq!(one(&spec("  risk: medium\n")), ("PB2012", "medium"));
        assert!(spec("  risk: medium\n  approvers: [release-managers]\n").is_empty());
        assert_eq!(
            one(&spec("  approvers: [release-managers]\n")),
            ("PB2013", "approvers")
        );
        assert_eq!(
            one(&spec("  rollback: {notification: [x]}\n")),
            ("PB2003", "rollback")
        );
        assert_eq!(
            one(&spec("  rollback: {on-failure: auto}\n")),
            ("PB2004", "auto")
        );
        assert_eq!(
            one(&spec("  audit: {retention: PT4H}\n")),
            ("PB2005", "PT4H")
        );
        assert_eq!(one(&spec("  audit: {retention: 0d}\n")), ("PB2005", "0d"));
        assert_eq!(
            one(&spec("  rate-limits: {\"a:b\": 10}\n")),
            ("PB2017", "10")
        );
        assert_eq!(
            one(&spec("  monitoring: {alerts: [{notify: [x]}]}\n")),
            ("PB2003", "notify")
        );
        assert_eq!(
            one(&spec(
                "  monitoring: {metrics: [{name: 9lives, target: < 5%}]}\n"
            ))
            .0,
            "PB2018"
        );
        let (_, d) = run(
            "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\nspec:\n  trigger: e\n  stages: []\n",
        );
        assert_eq!(one(&d), ("PB2003", "stages"));
        let (_, d) = run(
            "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\n  status: {}\nspec:\n  trigger: e\n  stages: [{name: s, agent: m}]\n",
        );
        assert_eq!(one(&d), ("PB2001", "status"));
    }

    #[test]
    fn rollout_and_promotion_from_the_seed() {
        let extra = "  rollout:\n    strategy: canary\n    steps:\n      - weight: 10\n        pause: 10m\n      - weight: 100\n    rollback:\n      on-failure: auto\n    metrics:\n      - name: error-rate\n        threshold: \"> 1%\"\n  promotion:\n    from: dev\n    to: staging\n    requires:\n      - all-tests-passed\n      - ragas-score > 0.8\n    staging-promotion:\n      from: staging\n      to: production\n      requires: [ciso-approval]\n";
        let (p, d) = run(&format!(
            "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\nspec:\n  trigger: e\n{extra}  stages: [{{name: s, agent: m}}]\n"
        ));
        assert!(d.is_empty(), "{d:?}");
        let p = p.unwrap();
        assert!(p.spec.rollout.is_some() && p.spec.promotion.is_some());
        let (_, d) = run(
            "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\nspec:\n  trigger: e\n  rollout: {strategy: linear, steps: [{weight: 150}]}\n  stages: [{name: s, agent: m}]\n",
        );
        assert_eq!(
            d.iter().map(|x| x.0).collect::<Vec<_>>(),
            ["PB2004", "PB2018"]
        );
    }

    #[test]
    fn stage_level_checks() {
        assert_eq!(
            one(&stage("      agent: m\n      retries: \"2\"\n")),
            ("PB2002", "\"2\"")
        );
        assert_eq!(
            one(&stage("      agent: m\n      retries: 1.5\n")),
            ("PB2002", "1.5")
        );
        assert_eq!(
            one(&stage(
                "      agent: m\n      notification: {on-pendng: [x]}\n"
            )),
            ("PB2001", "on-pendng")
        );
        assert_eq!(
            one(&stage("      agent: m\n      audit: {log-to: [x]}\n")),
            ("PB2001", "audit")
        );
        let d = stage("      action: a:b\n      rollback: {on-failure: x}\n");
        assert_eq!(
            d,
            [
                ("PB2001", "on-failure".to_string()),
                ("PB2003", "rollback".to_string())
            ]
        );
        assert_eq!(
            one(&stage("      action: a:b\n      rollback: {params: {}}\n")),
            ("PB2003", "rollback")
        );
        assert_eq!(
            one(&stage(
                "      action: a:b\n      rollback: {action: undo}\n"
            )),
            ("PB2010", "undo")
        );
        assert_eq!(
            one(&stage("      agent: m\n      params: [a]\n")).0,
            "PB2002"
        );
        assert_eq!(one(&stage("      agent: m\n      when: [a]\n")).0, "PB2002");
        assert_eq!(
            one(&stage("      agent: m\n      audit-log: always\n")),
            ("PB2004", "always")
        );
        assert_eq!(
            one(&stage(
                "      agent: m\n      langfuse: {trace-id: auto, tags: [a], metadata: {k: v}, extra: 1}\n"
            )),
            ("PB2001", "extra")
        );
        assert_eq!(
            one(&stage("      agent: m\n      sla: 1h\n")),
            ("PB2013", "sla")
        );
        assert!(
            stage("      agent: m\n      risk: medium\n      approvers: [sre]\n      sla: 1h\n")
                .is_empty()
        );
        assert_eq!(
            one(&stage(
                "      agent: m\n      approval: manual\n      approvers: [{}]\n"
            ))
            .0,
            "PB2003"
        );
        assert_eq!(
            one(&stage(
                "      agent: m\n      approval: manual\n      approvers: [{group: x}]\n"
            ))
            .0,
            "PB2001"
        );
        let d = stage("      agent: m\n      approval: manual\n      approvers: [{group: x}]\n");
        assert_eq!(d.len(), 1, "{d:?}");
    }

    #[test]
    fn condition_shapes() {
        let c = |items: &str| {
            stage(&format!(
                "      agent: m\n      approval: conditional\n      approvers: [a]\n      conditions:\n{items}"
            ))
        };
        assert!(
            c("        - if: x > 1\n          then: manual\n        - else: auto\n").is_empty()
        );
        assert_eq!(
            one(&c("        - if: x > 1\n          else: auto\n")),
            ("PB2014", "else")
        );
        assert_eq!(
            one(&c(
                "        - if: x > 1\n          then: manual\n        - else: auto\n        - else: manual\n"
            )),
            ("PB2014", "else")
        );
        assert_eq!(
            one(&c("        - approvers: [a]\n        - else: auto\n")),
            ("PB2014", "approvers")
        );
        assert_eq!(
            one(&c("        - if: x > 1\n        - else: auto\n")),
            ("PB2003", "if")
        );
        assert_eq!(
            one(&c("        - else: auto\n          then: manual\n")),
            ("PB2014", "then")
        );
        let d = c(
            "        - if: x > 1\n          then: manual\n        - else: manual\n          approvers: [b]\n",
        );
        assert!(d.is_empty(), "{d:?}");
        let d = stage(
            "      agent: m\n      approval: conditional\n      conditions:\n        - if: x\n          then: auto\n        - else: manual\n",
        );
        assert_eq!(one(&d), ("PB2012", "manual"));
        let d = stage("      agent: m\n      approval: conditional\n      conditions: []\n");
        assert_eq!(one(&d), ("PB2014", "conditions"));
    }

    #[test]
    fn options_define_guardrails_and_policies() {
        let text = format!(
            "{HEAD}    - name: s\n      agent: m\n      guardrails: [owasp-top-10]\n      policy: prod\n"
        );
        let (_, d) = run(&text);
        assert_eq!(
            d.iter().map(|x| x.0).collect::<Vec<_>>(),
            ["PB2015", "PB2016"]
        );
        let opts = ModelOptions {
            extra_guardrails: vec!["owasp-top-10".into()],
            policies: vec!["prod".into()],
            ..ModelOptions::default()
        };
        assert!(run_opts(&text, &opts).1.is_empty());
    }

    #[test]
    fn escalation_levels() {
        let d = stage(
            "      agent: m\n      approval: manual\n      approvers: [a]\n      sla: 1h\n      escalation:\n        - approvers: [b]\n",
        );
        assert_eq!(one(&d), ("PB2003", "approvers"));
        let d = stage(
            "      agent: m\n      approval: manual\n      approvers: [a]\n      sla: 1h\n      escalation: {after: 1h}\n",
        );
        assert_eq!(one(&d).0, "PB2002");
    }
}
