//! The `labels` field of a kustomization: entries of `pairs` with `includeSelectors`,
//! `includeTemplates` and `fields` (the entry's own field specs); and the key/value pairs
//! of labels and annotations.

use super::*;

/// Reads `labels`.
pub(super) fn labels(v: &Node, diags: &mut Vec<Diagnostic>) -> Vec<Pairs> {
    let mut out = Vec::new();
    if v.is_null() {
        return out;
    }
    let Some(items) = v.as_seq() else {
        diags.push(invalid(
            v.span,
            format!(
                "`labels` must be a list of `{{pairs: …}}` entries, not {}",
                v.type_name()
            ),
        ));
        return out;
    };
    for it in items {
        let Some(im) = it.as_map() else {
            diags.push(invalid(
                it.span,
                "an entry of `labels` must be a mapping with `pairs`",
            ));
            continue;
        };
        let (mut entry, mut selectors, mut templates) = (None, false, false);
        let mut fields = Vec::new();
        for f in im {
            match f.key_str() {
                "pairs" => entry = pairs(&f.key, &f.value, "pairs", diags),
                "includeSelectors" => {
                    selectors = bool_field(&f.value, "includeSelectors", diags);
                }
                "includeTemplates" => {
                    templates = bool_field(&f.value, "includeTemplates", diags);
                }
                "fields" => fields = crate::resolve::config::spec_list(&f.value, "fields", diags),
                other => unknown_key(
                    &f.key,
                    other,
                    "a `labels` entry",
                    &["pairs", "includeSelectors", "includeTemplates", "fields"],
                    diags,
                ),
            }
        }
        if let Some(mut p) = entry {
            p.specs = if selectors {
                PairSpecs::Selectors
            } else if templates {
                PairSpecs::Templates
            } else {
                PairSpecs::Metadata
            };
            p.fields = fields;
            p.entry = true;
            out.push(p);
        }
    }
    out
}

/// Reads `key: value` pairs whose values must be strings (labels, annotations).
pub(crate) fn pairs(
    key: &Node,
    n: &Node,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Pairs> {
    if n.is_null() {
        return None;
    }
    let Some(m) = n.as_map() else {
        diags.push(invalid(
            n.span,
            format!("`{what}` must be a mapping, not {}", n.type_name()),
        ));
        return None;
    };
    let mut out = Vec::new();
    for e in m {
        match &e.value.value {
            Value::Scalar(s) if s.kind == ScalarKind::Str => {
                out.push((e.key.clone(), e.value.clone()))
            }
            Value::Scalar(s) if s.kind != ScalarKind::Null => {
                diags.push(
                    invalid(
                        e.value.span,
                        format!(
                            "the value of `{}` in `{what}` must be a string, not {}",
                            e.key_str(),
                            e.value.type_name()
                        ),
                    )
                    .with_help(format!("quote it: \"{}\"", s.text))
                    .with_fix(
                        "quote the value",
                        vec![Edit {
                            span: e.value.span,
                            text: format!("\"{}\"", s.text),
                        }],
                    ),
                );
            }
            _ => diags.push(invalid(
                e.value.span,
                format!(
                    "the value of `{}` in `{what}` must be a string, not {}",
                    e.key_str(),
                    e.value.type_name()
                ),
            )),
        }
    }
    Some(Pairs {
        specs: PairSpecs::Metadata,
        fields: Vec::new(),
        entry: false,
        pairs: out,
        field_span: key.span,
    })
}
