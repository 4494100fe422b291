//! The transformers that rename and move resources (`namespace`, `namePrefix`,
//! `nameSuffix`), and annotation values written as kustomize writes them.

use super::*;

impl Ctx<'_> {
    /// A kustomization's patches and transformers, in kustomize's order, with its custom
    /// field specs; false when the build was abandoned (over budget).
    pub(super) fn transform(&self, kd: &KDir<'_>, config: &config::Config, acc: &mut Acc) -> bool {
        let k = kd.kust;
        // 4. Patches.
        let mut merged_stages: HashMap<u64, Span> = HashMap::new();
        for p in k.patches_sm.iter().chain(&k.patches) {
            self.patch(kd, p, acc, &mut merged_stages);
            if self.budget.exceeded() {
                acc.res.clear();
                return false;
            }
        }
        // 5. Transformers.
        if let Some(ns) = &k.namespace {
            self.set_namespace(ns, acc);
        }
        if k.prefix.is_some() || k.suffix.is_some() {
            self.prefix_suffix(
                k.prefix.as_ref(),
                k.suffix.as_ref(),
                k.name_specs.as_deref(),
                acc,
            );
        }
        for p in k.labels.iter().chain(&k.annotations) {
            let custom = match fieldspec::custom_pair_specs(p, config) {
                Ok(c) => c,
                Err(d) => {
                    acc.diags.push(*d);
                    continue;
                }
            };
            acc.res
                .par_iter_mut()
                .for_each(|r| fieldspec::apply_pairs(&mut r.node, p, custom.as_deref()));
        }
        for p in &k.patches_json {
            self.patch(kd, p, acc, &mut merged_stages);
            if self.budget.exceeded() {
                acc.res.clear();
                return false;
            }
        }
        self.set_replicas(&k.replicas, acc);
        self.set_images(&k.images, acc);
        self.replace(kd, &k.replacements, acc);
        true
    }

    pub(super) fn set_namespace(&self, ns: &Node, acc: &mut Acc) {
        let text = ns.as_scalar().map(|s| s.text.clone()).unwrap_or_default();
        for r in &mut acc.res {
            let id = r.cur();
            // kustomize stores every resource's id before the namespace transformer.
            r.store_prev();
            if id.namespaced() {
                if let Some(md) = metadata_mut(&mut r.node, ns.span) {
                    set_entry(
                        md,
                        Node::string(ns.span, "namespace"),
                        Node::string(ns.span, text.clone()),
                    );
                }
            } else if id.kind == "Namespace" && id.group.is_empty() && id.version == "v1" {
                r.store_prev();
                if let Some(md) = metadata_mut(&mut r.node, ns.span) {
                    set_entry(
                        md,
                        Node::string(ns.span, "name"),
                        Node::string(ns.span, text.clone()),
                    );
                }
                r.name_spans.push(ns.span);
            }
            fieldspec::namespace_fields(&mut r.node, &id, ns, &text);
        }
        // The transformation must not make two ids equal.
        let mut first_of: HashMap<ResId, usize> = HashMap::with_capacity(acc.res.len());
        for i in 0..acc.res.len() {
            let id = acc.res[i].cur();
            let j = *first_of.entry(id.clone().key()).or_insert(i);
            if j != i {
                let mut d = Diagnostic::new(
                    &DUPLICATE_RESOURCE,
                    ns.span,
                    format!(
                        "setting the namespace makes two resources {}",
                        id.describe()
                    ),
                );
                for k in [j, i] {
                    if let Some(n) = acc.res[k].node.get_path(&["metadata", "name"]) {
                        d = d.with_label(n.span, "one of them");
                    }
                }
                acc.diags.push(d);
            }
        }
    }

    pub(super) fn prefix_suffix(
        &self,
        prefix: Option<&Node>,
        suffix: Option<&Node>,
        select: Option<&[fieldspec::FieldSpec]>,
        acc: &mut Acc,
    ) {
        let p = prefix
            .and_then(|n| n.as_scalar())
            .map(|s| s.text.as_str())
            .unwrap_or("");
        let s = suffix
            .and_then(|n| n.as_scalar())
            .map(|s| s.text.as_str())
            .unwrap_or("");
        let span = prefix.or(suffix).map(|n| n.span).unwrap_or_default();
        acc.res.par_iter_mut().for_each(|r| {
            let id = r.cur();
            // kustomize's skip list: any CustomResourceDefinition and Namespace kind, the
            // APIService of apiregistration.k8s.io.
            if matches!(id.kind.as_str(), "CustomResourceDefinition" | "Namespace")
                || (id.kind == "APIService" && id.group == "apiregistration.k8s.io")
            {
                return;
            }
            // A transformer configuration's field specs (all `metadata/name`) select by
            // the resource's original group, version and kind.
            if let Some(sel) = select
                && !sel
                    .iter()
                    .any(|f| f.selects(&r.orig.group, &r.orig.version, &r.orig.kind))
            {
                return;
            }
            if !p.is_empty() {
                r.prefixes.push(p.into());
            }
            if !s.is_empty() {
                r.suffixes.push(s.into());
            }
            r.store_prev();
            let new = format!("{p}{}{s}", id.name);
            if let Some(md) = metadata_mut(&mut r.node, span) {
                set_entry(md, Node::string(span, "name"), Node::string(span, new));
            }
            r.name_spans.extend(prefix.map(|n| n.span));
            r.name_spans.extend(suffix.map(|n| n.span));
        });
    }
}

/// Annotations as kustomize writes them back after a JSON patch: every value a string (a
/// collection becomes `""`), and no empty map. Returns the collections it emptied (key,
/// span of the value, what it was): that is data lost, which the caller reports.
pub(super) fn normalize_annotations(
    md: &mut Node,
    null_text: bool,
) -> Vec<(String, Span, &'static str)> {
    let mut lost = Vec::new();
    let empty = match md
        .as_map_mut()
        .and_then(|m| m.iter_mut().find(|e| e.key_str() == "annotations"))
    {
        Some(e) => match &mut e.value.value {
            Value::Map(m) => {
                for a in m.iter_mut() {
                    let found = match &a.value.value {
                        Value::Map(_) => Some("a mapping"),
                        Value::Seq(_) => Some("a list"),
                        _ => None,
                    };
                    if let Some(found) = found {
                        lost.push((a.key_str().to_string(), a.value.span, found));
                    }
                    let text = match &a.value.value {
                        Value::Scalar(s)
                            if null_text || s.kind != crate::yaml::ScalarKind::Null =>
                        {
                            s.text.as_str().to_owned()
                        }
                        _ => String::new(),
                    };
                    if a.value.as_str().is_none() {
                        a.value = Node::string(a.value.span, text);
                    }
                }
                m.is_empty()
            }
            _ => false,
        },
        None => false,
    };
    if empty {
        remove_entry(md, "annotations");
    }
    lost
}

/// An annotation value that is a mapping or a list after a JSON patch: kustomize writes it
/// as `""`, so it is reported with the same code as the same value written directly.
pub(super) fn collection_annotation(key: &str, span: Span, found: &str) -> Diagnostic {
    Diagnostic::new(
        &crate::model::WRONG_TYPE,
        span,
        format!("expected a string (annotation value) for `{key}`, found {found}"),
    )
    .with_label_text("annotation values are strings")
    .with_help(
        "kustomize writes a mapping or list annotation value as `\"\"`, so the value would be lost; write it as a string (for structured data, a JSON string)",
    )
}
