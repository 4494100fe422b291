//! The `replacements` field of a kustomization: inline replacements, or `path:` entries
//! naming files of them (read when the kustomization is built).

use super::*;

/// A resource selector of a replacement: the parts it sets must match.
#[derive(Clone, Debug, Default)]
pub(crate) struct ResSel {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub labels: Option<LabelSelector>,
    pub annotations: Option<LabelSelector>,
}

impl ResSel {
    pub fn is_empty_id(&self) -> bool {
        self.group.is_empty()
            && self.version.is_empty()
            && self.kind.is_empty()
            && self.name.is_empty()
            && self.namespace.is_empty()
    }
}

/// `delimiter`/`index`/`create` of a source or a target.
#[derive(Clone, Debug, Default)]
pub(crate) struct FieldOptions {
    pub delimiter: String,
    pub index: i64,
    pub create: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct ReplSource {
    pub sel: ResSel,
    pub field_path: String,
    pub options: FieldOptions,
}

#[derive(Clone, Debug)]
pub(crate) struct ReplTarget {
    pub select: Option<ResSel>,
    pub reject: Vec<ResSel>,
    pub field_paths: Vec<String>,
    pub options: FieldOptions,
}

#[derive(Clone, Debug)]
pub(crate) struct Replacement {
    pub source: Option<ReplSource>,
    pub targets: Vec<ReplTarget>,
    pub span: Span,
}

/// An entry of `replacements`: a replacement, or a file of them.
#[derive(Clone, Debug)]
pub(crate) enum ReplEntry {
    Inline(Box<Replacement>),
    Path(PathRef),
}

fn text_of(n: &Node) -> String {
    n.as_scalar()
        .map(|s| s.text.to_string())
        .unwrap_or_default()
}

fn selector(n: &Node, what: &str, diags: &mut Vec<Diagnostic>) -> ResSel {
    let mut s = ResSel::default();
    for e in n.as_map().unwrap_or_default() {
        let v = &e.value;
        match e.key_str() {
            "group" => s.group = text_of(v),
            "version" => s.version = text_of(v),
            "kind" => s.kind = text_of(v),
            "name" => s.name = text_of(v),
            "namespace" => s.namespace = text_of(v),
            k @ ("labelSelector" | "annotationSelector") => {
                match LabelSelector::parse(&text_of(v)) {
                    Ok(sel) if k == "labelSelector" => s.labels = Some(sel),
                    Ok(sel) => s.annotations = Some(sel),
                    Err(msg) => diags.push(invalid(v.span, format!("invalid `{k}`: {msg}"))),
                }
            }
            // The source's own fields.
            "fieldPath" | "options" if what == "source" => {}
            other => unknown_key(
                &e.key,
                other,
                &format!("a replacement {what}"),
                &[
                    "group",
                    "version",
                    "kind",
                    "name",
                    "namespace",
                    "labelSelector",
                    "annotationSelector",
                ],
                diags,
            ),
        }
    }
    s
}

fn options(n: &Node, diags: &mut Vec<Diagnostic>) -> FieldOptions {
    let mut o = FieldOptions::default();
    for e in n.as_map().unwrap_or_default() {
        let v = &e.value;
        match e.key_str() {
            "delimiter" => o.delimiter = text_of(v),
            "index" => match v.as_scalar().and_then(|s| s.text.parse::<i64>().ok()) {
                Some(i) => o.index = i,
                None => diags.push(invalid(v.span, "`index` must be an integer")),
            },
            "create" => o.create = bool_field(v, "create", diags),
            other => unknown_key(
                &e.key,
                other,
                "replacement options",
                &["delimiter", "index", "create"],
                diags,
            ),
        }
    }
    o
}

/// One replacement (`source` and `targets`).
pub(crate) fn replacement(n: &Node, diags: &mut Vec<Diagnostic>) -> Option<Replacement> {
    let Some(m) = n.as_map() else {
        diags.push(invalid(
            n.span,
            format!("a replacement must be a mapping, not {}", n.type_name()),
        ));
        return None;
    };
    let mut r = Replacement {
        source: None,
        targets: Vec::new(),
        span: n.span,
    };
    for e in m {
        let v = &e.value;
        match e.key_str() {
            "source" => {
                r.source = Some(ReplSource {
                    sel: selector(v, "source", diags),
                    field_path: v.get("fieldPath").map(text_of).unwrap_or_default(),
                    options: v
                        .get("options")
                        .map(|o| options(o, diags))
                        .unwrap_or_default(),
                });
            }
            "targets" => {
                for t in v.as_seq().unwrap_or_default() {
                    let mut tg = ReplTarget {
                        select: None,
                        reject: Vec::new(),
                        field_paths: Vec::new(),
                        options: FieldOptions::default(),
                    };
                    for f in t.as_map().unwrap_or_default() {
                        let fv = &f.value;
                        match f.key_str() {
                            "select" => tg.select = Some(selector(fv, "target", diags)),
                            "reject" => {
                                tg.reject = fv
                                    .as_seq()
                                    .unwrap_or_default()
                                    .iter()
                                    .map(|x| selector(x, "target", diags))
                                    .collect();
                            }
                            "fieldPaths" => {
                                tg.field_paths = fv
                                    .as_seq()
                                    .unwrap_or_default()
                                    .iter()
                                    .map(text_of)
                                    .collect();
                            }
                            "options" => tg.options = options(fv, diags),
                            other => unknown_key(
                                &f.key,
                                other,
                                "a replacement target",
                                &["select", "reject", "fieldPaths", "options"],
                                diags,
                            ),
                        }
                    }
                    r.targets.push(tg);
                }
            }
            other => unknown_key(
                &e.key,
                other,
                "a replacement",
                &["source", "targets"],
                diags,
            ),
        }
    }
    Some(r)
}

pub(super) fn entries(n: &Node, diags: &mut Vec<Diagnostic>) -> Vec<ReplEntry> {
    if n.is_null() {
        return Vec::new();
    }
    let Some(items) = n.as_seq() else {
        diags.push(invalid(
            n.span,
            format!("`replacements` must be a list, not {}", n.type_name()),
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for it in items {
        if let Some(p) = it.get("path")
            && it.as_map().is_some_and(|m| m.len() == 1)
        {
            out.push(ReplEntry::Path(PathRef {
                text: text_of(p),
                span: p.span,
            }));
        } else if let Some(r) = replacement(it, diags) {
            out.push(ReplEntry::Inline(Box::new(r)));
        }
    }
    out
}
