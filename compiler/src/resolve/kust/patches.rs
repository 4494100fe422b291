//! The `patches` entries of a kustomization (`path` or inline `patch`, `target`, `options`),
//! and their targets.

use super::*;

pub(super) const TARGET_FIELDS: &[&str] = &[
    "group",
    "version",
    "kind",
    "name",
    "namespace",
    "labelSelector",
    "annotationSelector",
];

pub(super) fn target(n: &Node, diags: &mut Vec<Diagnostic>) -> Option<Target> {
    let Some(m) = n.as_map() else {
        diags.push(invalid(
            n.span,
            format!("`target` must be a mapping, not {}", n.type_name()),
        ));
        return None;
    };
    let mut t = Target {
        group: Pattern::any(),
        version: Pattern::any(),
        kind: Pattern::any(),
        name: Pattern::any(),
        namespace: Pattern::any(),
        labels: None,
        annotations: None,
        span: n.span,
    };
    let mut ok = true;
    for e in m {
        let k = e.key_str();
        if !TARGET_FIELDS.contains(&k) {
            unknown_key(&e.key, k, "a patch target", TARGET_FIELDS, diags);
            continue;
        }
        let Some(v) = as_string(&e.value).filter(|_| e.value.as_scalar().is_some()) else {
            if !e.value.is_null() {
                diags.push(invalid(
                    e.value.span,
                    format!("`{k}` must be a string, not {}", e.value.type_name()),
                ));
                ok = false;
            }
            continue;
        };
        match k {
            "labelSelector" | "annotationSelector" => match LabelSelector::parse(&v) {
                Ok(s) => {
                    if k == "labelSelector" {
                        t.labels = Some(s);
                    } else {
                        t.annotations = Some(s);
                    }
                }
                Err(msg) => {
                    diags.push(
                        invalid(e.value.span, format!("invalid `{k}`: {msg}")).with_help(
                            "use Kubernetes selector syntax: `a=b`, `a!=b`, `a in (x, y)`, `a notin (x)`, `a`, `!a`, separated by commas",
                        ),
                    );
                    ok = false;
                }
            },
            _ => match Pattern::new(&v) {
                Ok(p) => match k {
                    "group" => t.group = p,
                    "version" => t.version = p,
                    "kind" => t.kind = p,
                    "name" => t.name = p,
                    _ => t.namespace = p,
                },
                Err(msg) => {
                    diags.push(
                        invalid(
                            e.value.span,
                            format!(
                                "`{k}` is not a valid regular expression: {}",
                                first_line(&msg)
                            ),
                        )
                        .with_help("target fields are regular expressions anchored at both ends"),
                    );
                    ok = false;
                }
            },
        }
    }
    ok.then_some(t)
}

pub(super) fn first_line(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

pub(super) const PATCH_FIELDS: &[&str] = &["path", "patch", "target", "options"];

pub(super) fn patch_entry(
    it: &Node,
    field: PatchField,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<PatchSpec> {
    let Some(m) = it.as_map() else {
        diags.push(invalid(
            it.span,
            format!(
                "an entry of `{what}` must be a mapping with `path` or `patch`, not {}",
                it.type_name()
            ),
        ));
        return None;
    };
    let mut path = None;
    let mut inline = None;
    let mut tgt = None;
    let mut bad = false;
    let (mut allow_name, mut allow_kind) = (false, false);
    for e in m {
        let k = e.key_str();
        match k {
            "path" => match as_string(&e.value) {
                Some(text) if e.value.as_scalar().is_some() => {
                    path = Some(PathRef {
                        text,
                        span: e.value.span,
                    })
                }
                _ => {
                    diags.push(invalid(e.value.span, "`path` must be a file path"));
                    bad = true;
                }
            },
            "patch" => match &e.value.value {
                Value::Scalar(s) if s.kind == ScalarKind::Str => inline = Some(e.value.clone()),
                _ => {
                    diags.push(
                        invalid(
                            e.value.span,
                            format!("`patch` must be a string holding the patch, not {}", e.value.type_name()),
                        )
                        .with_help("write the patch as a block string: `patch: |-` followed by the indented patch"),
                    );
                    bad = true;
                }
            },
            "target" => {
                if !e.value.is_null() {
                    match target(&e.value, diags) {
                        Some(t) => tgt = Some(t),
                        None => bad = true,
                    }
                }
            }
            "options" if field == PatchField::Patches => {
                if let Some(om) = e.value.as_map() {
                    for o in om {
                        match o.key_str() {
                            "allowNameChange" => {
                                allow_name = bool_field(&o.value, "allowNameChange", diags)
                            }
                            "allowKindChange" => {
                                allow_kind = bool_field(&o.value, "allowKindChange", diags)
                            }
                            other => unknown_key(
                                &o.key,
                                other,
                                "patch options",
                                &["allowNameChange", "allowKindChange"],
                                diags,
                            ),
                        }
                    }
                }
            }
            other => {
                let known: &[&str] = if field == PatchField::Patches {
                    PATCH_FIELDS
                } else {
                    &PATCH_FIELDS[..3]
                };
                unknown_key(
                    &e.key,
                    other,
                    &format!("an entry of `{what}`"),
                    known,
                    diags,
                );
            }
        }
    }
    if bad {
        return None;
    }
    let source = match (path, inline) {
        (Some(p), None) => PatchSource::Path(p),
        (None, Some(n)) => PatchSource::Inline(n),
        (Some(_), Some(_)) => {
            diags.push(invalid(
                it.span,
                "a patch has both `path` and `patch`; give only one",
            ));
            return None;
        }
        (None, None) => {
            diags.push(invalid(
                it.span,
                "a patch needs `path` (a file) or `patch` (the patch itself)",
            ));
            return None;
        }
    };
    if field == PatchField::Json6902 && tgt.is_none() {
        diags.push(invalid(
            it.span,
            "an entry of `patchesJson6902` needs a `target`",
        ));
        return None;
    }
    Some(PatchSpec {
        source,
        target: tgt,
        span: it.span,
        field,
        allow_name_change: allow_name,
        allow_kind_change: allow_kind,
    })
}

pub(super) fn patch_list(
    n: &Node,
    field: PatchField,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) -> Vec<PatchSpec> {
    if n.is_null() {
        return Vec::new();
    }
    let Some(items) = n.as_seq() else {
        diags.push(invalid(
            n.span,
            format!("`{what}` must be a list, not {}", n.type_name()),
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for it in items {
        if field == PatchField::StrategicMerge {
            // A string: a file path, or (for legacy reasons) the patch itself.
            match &it.value {
                Value::Scalar(s) if s.kind == ScalarKind::Str => {
                    let looks_inline = s.text.contains('\n')
                        || s.text.contains(": ")
                        || s.text.trim_start().starts_with('{');
                    out.push(PatchSpec {
                        source: if looks_inline {
                            PatchSource::Inline(it.clone())
                        } else {
                            PatchSource::Path(PathRef {
                                text: s.text.as_str().to_owned(),
                                span: it.span,
                            })
                        },
                        target: None,
                        span: it.span,
                        field,
                        allow_name_change: false,
                        allow_kind_change: false,
                    });
                }
                _ => diags.push(invalid(
                    it.span,
                    format!(
                        "an entry of `{what}` must be a file path or a patch, not {}",
                        it.type_name()
                    ),
                )),
            }
            continue;
        }
        if let Some(p) = patch_entry(it, field, what, diags) {
            out.push(p);
        }
    }
    out
}
