//! Hover and completion (go to definition and references: `navigate`): read from the YAML of the file as
//! the latest check parsed it, the playbook schema's documentation and the findings.

use crate::convert::{offset, uri_to_path};
use crate::server::Server;
use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionParams, Hover, HoverContents, HoverParams,
    MarkupContent, MarkupKind, Position, Uri,
};
use pbc_compiler::load::Loaded;
use pbc_compiler::yaml::{Entry, Node, Value};
use serde_json::Value as Json;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// The playbook's JSON Schema: the documentation of every field, and its enums.
fn schema() -> &'static Json {
    static S: OnceLock<Json> = OnceLock::new();
    S.get_or_init(|| {
        serde_json::from_str(include_str!("../../schemas/playbook.schema.json"))
            .unwrap_or(Json::Null)
    })
}

/// A step from a node to the child holding the cursor.
pub(crate) enum Step<'a> {
    /// A mapping entry; `true` when the cursor is on its key.
    Key(&'a Entry, bool),
    Index(&'a Node),
}

fn within(n: &Node, off: u32) -> bool {
    n.span.start <= off && off <= n.span.end
}

/// The path from a document's root to the deepest node at `off` (a loop: no recursion).
pub(crate) fn path_at(root: &Node, off: u32) -> Vec<Step<'_>> {
    let mut steps = Vec::new();
    let mut cur = root;
    loop {
        match &cur.value {
            Value::Map(m) => {
                let Some(e) = m.iter().find(|e| {
                    within(&e.key, off) || (e.key.span.end < off && within(&e.value, off))
                }) else {
                    break;
                };
                let on_key = within(&e.key, off);
                steps.push(Step::Key(e, on_key));
                if on_key {
                    break;
                }
                cur = &e.value;
            }
            Value::Seq(v) => {
                let Some(n) = v.iter().find(|n| within(n, off)) else {
                    break;
                };
                steps.push(Step::Index(n));
                cur = n;
            }
            Value::Scalar(_) => break,
        }
    }
    steps
}

/// The file at a URI as last checked, its document holding `pos`, and the offset.
pub(crate) struct At {
    pub(crate) loaded: Arc<Loaded>,
    pub(crate) doc: usize,
    pub(crate) off: u32,
    pub(crate) path: PathBuf,
}

pub(crate) fn at(s: &Server, uri: &Uri, pos: Position) -> Option<At> {
    let path = uri_to_path(uri)?;
    let loaded = s.ws.loader.load(&path).ok()?;
    let off = offset(&loaded.file, pos, s.enc);
    let doc = loaded
        .docs
        .iter()
        .position(|d| within(&d.root, off))
        .or_else(|| (!loaded.docs.is_empty()).then_some(0))?;
    Some(At {
        loaded,
        doc,
        off,
        path,
    })
}

/// Follows `$ref`s to the definition (a bounded number of times).
fn deref(mut s: &Json) -> &Json {
    for _ in 0..16 {
        let Some(r) = s.get("$ref").and_then(Json::as_str) else {
            break;
        };
        let Some(name) = r.strip_prefix("#/$defs/") else {
            break;
        };
        match schema().get("$defs").and_then(|d| d.get(name)) {
            Some(next) => s = next,
            None => break,
        }
    }
    s
}

/// The schema of a property of an object schema (also inside `allOf`/`oneOf`/`anyOf`).
fn property<'a>(s: &'a Json, key: &str) -> Option<&'a Json> {
    let s = deref(s);
    if let Some(p) = s.get("properties").and_then(|p| p.get(key)) {
        return Some(p);
    }
    for k in ["allOf", "oneOf", "anyOf"] {
        for alt in s.get(k).and_then(Json::as_array).into_iter().flatten() {
            if let Some(p) = deref(alt).get("properties").and_then(|p| p.get(key)) {
                return Some(p);
            }
        }
    }
    None
}

/// Every property name of an object schema, with its description.
fn properties(s: &Json) -> Vec<(String, String)> {
    let s = deref(s);
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |o: &Json| {
        for (k, v) in o
            .get("properties")
            .and_then(Json::as_object)
            .into_iter()
            .flatten()
        {
            if !out.iter().any(|(n, _)| n == k) {
                out.push((k.clone(), description(v)));
            }
        }
    };
    add(s);
    for k in ["allOf", "oneOf", "anyOf"] {
        for alt in s.get(k).and_then(Json::as_array).into_iter().flatten() {
            add(deref(alt));
        }
    }
    out
}

fn description(s: &Json) -> String {
    s.get("description")
        .or_else(|| deref(s).get("description"))
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_string()
}

/// The schema of the node the steps lead to (`None` once the path leaves the schema).
fn schema_of(steps: &[Step<'_>]) -> Option<&'static Json> {
    let mut s = schema();
    for step in steps {
        s = match step {
            Step::Key(e, _) => property(s, e.key_str())?,
            Step::Index(_) => deref(s).get("items")?,
        };
    }
    Some(s)
}

/// The stages of a document: their name nodes and their mappings.
pub(crate) fn stages(root: &Node) -> Vec<(&Node, &Node)> {
    root.get_path(&["spec", "stages"])
        .and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .filter_map(|st| Some((st.get("name")?, st)))
        .collect()
}

/// The stage name the cursor is on: a stage's `name`, or an entry of `needs` or `context`.
pub(crate) fn stage_ref<'a>(steps: &[Step<'a>]) -> Option<&'a Node> {
    let last_key = steps.iter().rev().find_map(|s| match s {
        Step::Key(e, on_key) => Some((e, *on_key)),
        Step::Index(_) => None,
    })?;
    let (e, on_key) = last_key;
    if on_key {
        return None;
    }
    // `spec` → `stages` → a stage → `name`.
    let in_stages = steps.len() == 4
        && matches!(steps[0], Step::Key(e, _) if e.key_str() == "spec")
        && matches!(steps[1], Step::Key(e, _) if e.key_str() == "stages");
    let node = match steps.last()? {
        Step::Index(n) => *n,
        Step::Key(e, _) => &e.value,
    };
    let ok = match e.key_str() {
        "needs" | "context" => true,
        "name" => in_stages,
        _ => false,
    };
    (ok && node.as_str().is_some()).then_some(node)
}

fn stage_summary(stage: &Node) -> String {
    let mut parts = Vec::new();
    for k in ["agent", "action"] {
        if let Some(v) = stage.get(k).and_then(Node::as_str) {
            parts.push(format!("{k} `{v}`"));
        }
    }
    let gate = stage
        .get("approval")
        .and_then(Node::as_str)
        .unwrap_or("auto");
    parts.push(format!("approval `{gate}`"));
    let approvers: Vec<String> = stage
        .get("approvers")
        .and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .filter_map(|a| {
            a.get("role")
                .and_then(Node::as_str)
                .map(|r| format!("role `{r}`"))
                .or_else(|| {
                    a.get("user")
                        .and_then(Node::as_str)
                        .map(|u| format!("user `{u}`"))
                })
        })
        .collect();
    if !approvers.is_empty() {
        parts.push(format!("approvers {}", approvers.join(", ")));
    }
    parts.join(" · ")
}

fn markdown(value: String) -> Hover {
    Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value,
        }),
        range: None,
    }
}

/// Hover: the `pbc explain` text of a finding under the cursor, a field's documentation,
/// a stage's summary, a compliance tag's control and evidence rules, an output reference's
/// schema, and where else an overlaid stage field is set (the base value, the patches).
pub fn hover(s: &Server, p: HoverParams) -> Option<Hover> {
    let tp = p.text_document_position_params;
    let mut parts: Vec<String> = Vec::new();
    if let Some(path) = uri_to_path(&tp.text_document.uri)
        && let Some(fs) = s.ws.files.get(&path)
    {
        for f in fs {
            let r = f.diag.range;
            if r.start <= tp.position && tp.position <= r.end {
                let c = f.code;
                parts.push(format!(
                    "**{}** `{}`: {}\n\n{}",
                    c.id,
                    c.name,
                    c.summary,
                    c.doc.trim()
                ));
            }
        }
    }
    if let Some(at) = at(s, &tp.text_document.uri, tp.position) {
        let root = &at.loaded.docs[at.doc].root;
        let steps = path_at(root, at.off);
        let value_of = steps.iter().rev().find_map(|s| match s {
            Step::Key(e, false) => Some(e.key_str()),
            _ => None,
        });
        let on_scalar = match steps.last() {
            Some(Step::Index(n)) => n.as_str().is_some(),
            Some(Step::Key(e, false)) => e.value.as_str().is_some(),
            _ => false,
        };
        if let Some(name) = stage_ref(&steps).and_then(Node::as_str) {
            if let Some((_, st)) = stages(root)
                .into_iter()
                .find(|(n, _)| n.as_str() == Some(name))
            {
                parts.push(format!("stage `{name}`: {}", stage_summary(st)));
            }
        } else if let (Some("compliance"), true, Some(Step::Index(n))) =
            (value_of, on_scalar, steps.last())
        {
            parts.extend(
                n.as_str()
                    .and_then(|t| crate::hover_refs::compliance_tag(s.ws.compliance(), t)),
            );
        } else if let (Some("if" | "when"), true) = (value_of, on_scalar)
            && let Some(r) = crate::hover_refs::reference_at(&at.loaded.file.text, at.off as usize)
            && let Some(h) = crate::hover_refs::output_reference(&s.ws.loader, root, &at.path, r)
        {
            parts.push(h);
        } else if let Some(Step::Key(e, _)) =
            steps.iter().rev().find(|s| matches!(s, Step::Key(..)))
        {
            let upto = steps
                .iter()
                .rposition(|s| matches!(s, Step::Key(..)))
                .unwrap_or(0);
            if let Some(sch) = schema_of(&steps[..=upto]) {
                let d = description(sch);
                if !d.is_empty() {
                    parts.push(format!("**`{}`**: {d}", e.key_str()));
                }
            }
        }
        // Overlays: where else this stage field is set (a base, the patches of it).
        parts.extend(provenance(s, &at, root, &steps));
    }
    (!parts.is_empty()).then(|| markdown(parts.join("\n\n---\n\n")))
}

/// A stage field's other values: the same field of the same stage of the same playbook in
/// the other files the units reading this one load (a base and its overlays' patches), each
/// with its file and line.
fn provenance(s: &Server, at: &At, root: &Node, steps: &[Step<'_>]) -> Option<String> {
    let in_stage = steps.len() >= 4
        && matches!(steps[0], Step::Key(e, _) if e.key_str() == "spec")
        && matches!(steps[1], Step::Key(e, _) if e.key_str() == "stages");
    let (Step::Index(stage), Step::Key(field, _)) = (steps.get(2)?, steps.get(3)?) else {
        return None;
    };
    let key = field.key_str();
    if !in_stage || key == "name" {
        return None;
    }
    let name = stage.get("name")?.as_str()?;
    let pb = root.get_path(&["metadata", "name"])?.as_str()?;
    let mut lines = Vec::new();
    for (path, loaded, span) in s.ws.stage_elsewhere(&at.path, pb, name) {
        let other = loaded.docs.iter().find_map(|d| {
            let stages = d.root.get_path(&["spec", "stages"])?.as_seq()?;
            stages
                .iter()
                .find(|st| st.get("name").is_some_and(|n| n.span == span))
        });
        let Some(v) = other.and_then(|st| st.get(key)) else {
            continue;
        };
        let text = loaded.file.slice(v.span).trim();
        let text: String = text.chars().take(120).collect();
        lines.push(format!(
            "- {}:{}: `{}`",
            s.ws.shown(&path),
            loaded.file.line_col(v.span.start).line,
            text.replace('`', "'")
        ));
    }
    (!lines.is_empty()).then(|| {
        format!(
            "`{key}` of stage `{name}` is also set in:\n{}",
            lines.join("\n")
        )
    })
}

/// The names the configuration (and pbc) define for `guardrails`, `policies` and channel
/// lists (`notify`, `on-pending`, …).
fn configured(
    s: &Server,
    key: &str,
    item: &dyn Fn(String, CompletionItemKind, String) -> CompletionItem,
) -> Vec<CompletionItem> {
    let cfg = s.ws.config();
    let names: Vec<(String, &str)> = match key {
        "guardrails" => pbc_compiler::model::BUILTIN_GUARDRAILS
            .iter()
            .map(|g| (g.to_string(), "built-in guardrail"))
            .chain(
                cfg.guardrails
                    .iter()
                    .map(|g| (g.clone(), "guardrail (.pbc.yaml)")),
            )
            .collect(),
        "policies" => cfg
            .policies
            .iter()
            .map(|p| (p.clone(), "policy (.pbc.yaml)"))
            .collect(),
        _ => cfg
            .notifications
            .keys()
            .map(|c| (c.clone(), "notification channel (.pbc.yaml)"))
            .collect(),
    };
    let mut seen = std::collections::BTreeSet::new();
    names
        .into_iter()
        .filter(|(n, _)| seen.insert(n.clone()))
        .map(|(n, d)| item(n, CompletionItemKind::VALUE, d.to_string()))
        .collect()
}

/// Completion: stage names in `needs` and `context`, control tags (with their names) in
/// `compliance`, output fields in `if` and `when`, configured guardrails, policies and
/// channels, enum members, and the fields the schema
/// allows where the cursor is.
pub fn completion(s: &Server, p: CompletionParams) -> Option<Vec<CompletionItem>> {
    let tp = p.text_document_position;
    let at = at(s, &tp.text_document.uri, tp.position)?;
    let root = &at.loaded.docs[at.doc].root;
    let steps = path_at(root, at.off);
    let item = |label: String, kind, detail: String| CompletionItem {
        label,
        kind: Some(kind),
        detail: (!detail.is_empty()).then_some(detail),
        ..Default::default()
    };
    let last_key = steps.iter().rev().find_map(|s| match s {
        Step::Key(e, on_key) => Some((e.key_str(), *on_key)),
        Step::Index(_) => None,
    });
    if let Some(("needs" | "context", false)) = last_key {
        return Some(
            stages(root)
                .into_iter()
                .filter_map(|(n, st)| {
                    Some(item(
                        n.as_str()?.to_string(),
                        CompletionItemKind::REFERENCE,
                        stage_summary(st),
                    ))
                })
                .collect(),
        );
    }
    match last_key {
        Some(("compliance", false)) => Some(
            crate::hover_refs::control_tags(s.ws.compliance())
                .into_iter()
                .map(|(t, name)| item(t, CompletionItemKind::CONSTANT, name))
                .collect(),
        ),
        Some((key @ ("guardrails" | "policies" | "notify"), false)) => {
            Some(configured(s, key, &item))
        }
        Some((key, false)) if key.starts_with("on-") => Some(configured(s, "notify", &item)),
        Some(("if" | "when", false)) => {
            // After `REPORT.FIELD ==`: the members of the field's enum; else the fields.
            let text = &at.loaded.file.text;
            let off = (at.off as usize).min(text.len());
            let line = text.get(..off).and_then(|t| t.rsplit('\n').next());
            if let Some(members) =
                line.and_then(|l| crate::hover_refs::compared_enum(&s.ws.loader, root, &at.path, l))
            {
                return Some(
                    members
                        .into_iter()
                        .map(|m| item(m, CompletionItemKind::ENUM_MEMBER, String::new()))
                        .collect(),
                );
            }
            Some(
                crate::hover_refs::output_fields(&s.ws.loader, root, &at.path)
                    .into_iter()
                    .map(|(f, d)| item(f, CompletionItemKind::FIELD, d))
                    .collect(),
            )
        }
        Some((_, false)) => {
            // A value: the members of the field's enum.
            let sch = deref(schema_of(&steps)?);
            let members = sch.get("enum").and_then(Json::as_array)?;
            Some(
                members
                    .iter()
                    .filter_map(Json::as_str)
                    .map(|m| {
                        item(
                            m.to_string(),
                            CompletionItemKind::ENUM_MEMBER,
                            String::new(),
                        )
                    })
                    .collect(),
            )
        }
        _ => {
            // A key: the fields of the mapping around it.
            let parent = match steps.last() {
                Some(Step::Key(_, true)) => &steps[..steps.len() - 1],
                _ => &steps[..],
            };
            Some(
                properties(schema_of(parent)?)
                    .into_iter()
                    .map(|(k, d)| item(k, CompletionItemKind::FIELD, d))
                    .collect(),
            )
        }
    }
}
