//! Custom field specs: the files a kustomization lists under `configurations` (kustomize's
//! transformer configurations) and a `labels` entry's `fields`. Both add field specs to
//! kustomize's built-in ones, merged as kustomize merges them (`FsSlice.MergeAll`: a spec
//! with the same path for a matching group/version/kind is kept once; the same spec with a
//! different `create` is kustomize's "conflicting fieldspecs" error).
//!
//! pbc implements the sections `labels`, `commonLabels`, `templateLabels`,
//! `commonAnnotations` and `nameReference` of a configuration; the others (prefixes,
//! suffixes, namespaces, images, replicas, var references) are refused.

use super::fieldspec::{FieldSpec, NameRef, spec_of};
use super::{INVALID_KUSTOMIZATION, UNSUPPORTED_FIELD};
use crate::diag::Diagnostic;
use crate::span::Span;
use crate::yaml::Node;

/// The field specs a kustomization's `configurations` add.
#[derive(Clone, Debug, Default)]
pub(crate) struct Config {
    /// `labels`: merged into every `labels` entry's field specs.
    pub labels: Vec<FieldSpec>,
    pub common_labels: Vec<FieldSpec>,
    pub template_labels: Vec<FieldSpec>,
    pub common_annotations: Vec<FieldSpec>,
    pub name_reference: Vec<NameRef>,
}

impl Config {
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
            && self.common_labels.is_empty()
            && self.template_labels.is_empty()
            && self.common_annotations.is_empty()
            && self.name_reference.is_empty()
    }

    /// kustomize's `TransformerConfig.Merge`.
    pub fn merge(&mut self, other: &Config, at: Span) -> Result<(), Box<Diagnostic>> {
        merge_all(&mut self.labels, &other.labels, at)?;
        merge_all(&mut self.common_labels, &other.common_labels, at)?;
        merge_all(&mut self.template_labels, &other.template_labels, at)?;
        merge_all(&mut self.common_annotations, &other.common_annotations, at)?;
        merge_refs(&mut self.name_reference, &other.name_reference, at)
    }
}

/// Whether `have` is the spec `x` names (kustomize's `effectivelyEquals`: the same path, and
/// `have`'s group/version/kind selected by `x`'s, whose empty parts match anything).
fn same_spec(have: &FieldSpec, x: &FieldSpec) -> bool {
    let sel = |a: &Option<String>, b: &Option<String>| {
        b.as_deref()
            .filter(|s| !s.is_empty())
            .is_none_or(|b| a.as_deref() == Some(b))
    };
    have.path == x.path
        && sel(&have.group, &x.group)
        && sel(&have.version, &x.version)
        && sel(&have.kind, &x.kind)
}

fn conflict(at: Span, x: &FieldSpec) -> Diagnostic {
    Diagnostic::new(
        &INVALID_KUSTOMIZATION,
        at,
        format!(
            "conflicting field specs: `{}` is given both with and without `create`",
            x.path.join("/")
        ),
    )
    .with_help("kustomize fails on it too; give the field spec once, with the `create` you mean")
}

/// kustomize's `FsSlice.MergeAll`.
pub(crate) fn merge_all(
    into: &mut Vec<FieldSpec>,
    incoming: &[FieldSpec],
    at: Span,
) -> Result<(), Box<Diagnostic>> {
    for x in incoming {
        merge_one(into, x, at)?;
    }
    Ok(())
}

/// kustomize's `FsSlice.MergeOne`.
pub(crate) fn merge_one(
    into: &mut Vec<FieldSpec>,
    x: &FieldSpec,
    at: Span,
) -> Result<(), Box<Diagnostic>> {
    match into.iter().find(|h| same_spec(h, x)) {
        Some(h) if h.create != x.create => Err(Box::new(conflict(at, x))),
        Some(_) => Ok(()),
        None => {
            into.push(x.clone());
            Ok(())
        }
    }
}

/// kustomize's `nbrSlice.mergeAll`: the referrers of a target already known are merged,
/// a new target is appended.
pub(crate) fn merge_refs(
    into: &mut Vec<NameRef>,
    incoming: &[NameRef],
    at: Span,
) -> Result<(), Box<Diagnostic>> {
    for r in incoming {
        let same = |t: &FieldSpec| {
            t.group.as_deref().unwrap_or("") == r.target.group.as_deref().unwrap_or("")
                && t.version.as_deref().unwrap_or("") == r.target.version.as_deref().unwrap_or("")
                && t.kind.as_deref().unwrap_or("") == r.target.kind.as_deref().unwrap_or("")
        };
        match into.iter_mut().find(|t| same(&t.target)) {
            Some(t) => merge_all(&mut t.referrers, &r.referrers, at)?,
            None => into.push(r.clone()),
        }
    }
    Ok(())
}

fn invalid(span: Span, msg: impl Into<String>) -> Diagnostic {
    Diagnostic::new(&INVALID_KUSTOMIZATION, span, msg)
}

/// A list of field specs (`- path: …, kind: …, create: …`), checked as kustomize's strict
/// reading checks it.
pub(crate) fn spec_list(n: &Node, what: &str, diags: &mut Vec<Diagnostic>) -> Vec<FieldSpec> {
    if n.is_null() {
        return Vec::new();
    }
    let Some(items) = n.as_seq() else {
        diags.push(invalid(
            n.span,
            format!(
                "`{what}` must be a list of field specs, not {}",
                n.type_name()
            ),
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for it in items {
        let Some(m) = it.as_map() else {
            diags.push(invalid(
                it.span,
                format!(
                    "a field spec of `{what}` must be a mapping, not {}",
                    it.type_name()
                ),
            ));
            continue;
        };
        let mut ok = true;
        for e in m {
            let k = e.key_str();
            if !matches!(k, "group" | "version" | "kind" | "path" | "create") {
                diags.push(
                    invalid(e.key.span, format!("unknown field `{k}` in a field spec")).with_help(
                        "a field spec has `path`, `create`, `group`, `version` and `kind`",
                    ),
                );
                ok = false;
            } else if k == "create" {
                if e.value
                    .as_scalar()
                    .is_none_or(|s| s.kind != crate::yaml::ScalarKind::Bool)
                {
                    diags.push(invalid(e.value.span, "`create` must be `true` or `false`"));
                    ok = false;
                }
            } else if e.value.as_str().is_none() && !e.value.is_null() {
                diags.push(invalid(
                    e.value.span,
                    format!(
                        "`{k}` of a field spec must be a string, not {}",
                        e.value.type_name()
                    ),
                ));
                ok = false;
            }
        }
        if ok {
            out.push(spec_of(m));
        }
    }
    out
}

/// Reads one configuration file's document.
pub(crate) fn parse(root: &Node, diags: &mut Vec<Diagnostic>) -> Config {
    let mut c = Config::default();
    if root.is_null() {
        return c;
    }
    let Some(m) = root.as_map() else {
        diags.push(invalid(
            root.span,
            format!(
                "a transformer configuration must be a mapping, not {}",
                root.type_name()
            ),
        ));
        return c;
    };
    for e in m {
        let key = e.key_str();
        match key {
            "labels" => c.labels = spec_list(&e.value, key, diags),
            "commonLabels" => c.common_labels = spec_list(&e.value, key, diags),
            "templateLabels" => c.template_labels = spec_list(&e.value, key, diags),
            "commonAnnotations" => c.common_annotations = spec_list(&e.value, key, diags),
            "nameReference" => c.name_reference = name_refs(&e.value, diags),
            "namePrefix" | "nameSuffix" | "namespace" | "images" | "replicas" | "varReference" => {
                if !e.value.is_null() && e.value.as_seq().is_none_or(|s| !s.is_empty()) {
                    diags.push(
                        Diagnostic::new(
                            &UNSUPPORTED_FIELD,
                            e.key.span,
                            format!("pbc does not implement custom `{key}` field specs in `configurations`"),
                        )
                        .with_help("pbc takes `labels`, `commonLabels`, `templateLabels`, `commonAnnotations` and `nameReference` from a transformer configuration; remove this section, or build this tree with kustomize"),
                    );
                }
            }
            other => diags.push(
                invalid(e.key.span, format!("unknown field `{other}` in a transformer configuration"))
                    .with_help("kustomize reads a configuration strictly: `namePrefix`, `nameSuffix`, `namespace`, `commonLabels`, `labels`, `templateLabels`, `commonAnnotations`, `nameReference`, `varReference`, `images`, `replicas`"),
            ),
        }
    }
    c
}

fn name_refs(n: &Node, diags: &mut Vec<Diagnostic>) -> Vec<NameRef> {
    if n.is_null() {
        return Vec::new();
    }
    let Some(items) = n.as_seq() else {
        diags.push(invalid(
            n.span,
            format!("`nameReference` must be a list, not {}", n.type_name()),
        ));
        return Vec::new();
    };
    let mut out: Vec<NameRef> = Vec::new();
    for it in items {
        let Some(m) = it.as_map() else {
            diags.push(invalid(
                it.span,
                "an entry of `nameReference` must be a mapping",
            ));
            continue;
        };
        let mut target_fields = Vec::new();
        let mut referrers = Vec::new();
        for e in m {
            match e.key_str() {
                "fieldSpecs" => referrers = spec_list(&e.value, "fieldSpecs", diags),
                "group" | "version" | "kind" => target_fields.push(e.clone()),
                other => diags.push(invalid(
                    e.key.span,
                    format!("unknown field `{other}` in a `nameReference` entry"),
                )),
            }
        }
        let r = NameRef {
            target: spec_of(&target_fields),
            referrers,
        };
        if let Err(d) = merge_refs(&mut out, std::slice::from_ref(&r), it.span) {
            diags.push(*d);
        }
    }
    out
}

impl super::accumulate::Ctx<'_> {
    /// Reads the kustomization's `configurations` files into one configuration (kustomize's
    /// `MakeTransformerConfig`, less its defaults: those are added where they are used).
    pub(super) fn load_config(
        &self,
        kd: &super::accumulate::KDir<'_>,
        acc: &mut super::accumulate::Acc,
    ) -> Config {
        let mut out = Config::default();
        for p in &kd.kust.configurations {
            let path = crate::fs::normalize(&kd.dir.join(&p.text));
            if self.loader.metadata(&path).is_err() {
                acc.diags
                    .push(self.missing(p, &path, "the configuration file"));
                continue;
            }
            if let Some(d) = self.check_root(kd, p, &path) {
                acc.diags.push(d);
                continue;
            }
            let loaded = match self.loader.load(&path) {
                Ok(l) => l,
                Err(e) => {
                    acc.diags.push(super::paths::load_error(p.span, &e));
                    continue;
                }
            };
            acc.files.push(path);
            acc.diags.extend(loaded.diags.iter().cloned());
            for d in &loaded.docs {
                let c = parse(&d.root, &mut acc.diags);
                // kustomize merges the files into its defaults, failing on a conflict.
                let s = super::fieldspec::specs();
                let mut defaults = Config {
                    labels: Vec::new(),
                    common_labels: s.common_labels.clone(),
                    template_labels: s.template_labels.clone(),
                    common_annotations: s.common_annotations.clone(),
                    name_reference: s.name_reference.clone(),
                };
                if let Err(d) = defaults
                    .merge(&c, p.span)
                    .and_then(|()| out.merge(&c, p.span))
                {
                    acc.diags.push(*d);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: Option<&str>, path: &str, create: bool) -> FieldSpec {
        FieldSpec {
            kind: kind.map(str::to_string),
            path: path.split('/').map(str::to_string).collect(),
            create,
            ..FieldSpec::default()
        }
    }

    #[test]
    fn a_spec_is_merged_once_and_a_different_create_conflicts() {
        let mut have = vec![spec(
            Some("Deployment"),
            "spec/template/metadata/labels",
            true,
        )];
        // Without a kind, it names the Deployment's spec too: kept once.
        merge_one(
            &mut have,
            &spec(None, "spec/template/metadata/labels", true),
            Span::default(),
        )
        .expect("merges");
        assert_eq!(have.len(), 1);
        merge_one(
            &mut have,
            &spec(Some("Job"), "spec/template/metadata/labels", true),
            Span::default(),
        )
        .expect("merges");
        assert_eq!(have.len(), 2);
        assert!(
            merge_one(
                &mut have,
                &spec(Some("Job"), "spec/template/metadata/labels", false),
                Span::default()
            )
            .is_err()
        );
    }
}
