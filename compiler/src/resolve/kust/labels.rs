//! The `labels` field of a kustomization: entries of `pairs` with `includeSelectors`,
//! `includeTemplates` and `fields` (the entry's own field specs).

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
