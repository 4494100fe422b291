//! A kustomization's `openapi`: the schema whose merge keys strategic merges use (see
//! [`schema::SchemaState`] for which one is in effect when), read when the kustomization
//! is built, and the refusals where pbc cannot tell which schema kustomize would use.

use super::*;
use accumulate::Acc;
use schema::SchemaState;
use std::sync::Arc;

impl Ctx<'_> {
    /// Reads the kustomization's `openapi` and sets the schema in effect if none is yet
    /// (kustomize sets it once: the top kustomization, else the first that has one). The
    /// file is read either way, as kustomize does: a missing or invalid one is an error.
    pub(super) fn open_schema(&self, kd: &KDir<'_>, acc: &mut Acc, top: bool) {
        let k = kd.kust;
        let Some(o) = &k.openapi else {
            if k.openapi_version && acc.schema.is_unset() {
                acc.schema = SchemaState::Builtin;
            }
            return;
        };
        let path = normalize(&kd.dir.join(&o.text));
        if self.loader.metadata(&path).is_err() {
            acc.diags.push(self.missing(o, &path, "the openapi file"));
            return;
        }
        if let Some(d) = self.check_root(kd, o, &path) {
            acc.diags.push(d);
            return;
        }
        let loaded = match self.loader.load(&path) {
            Ok(l) => l,
            Err(e) => {
                acc.diags.push(load_error(o.span, &e));
                return;
            }
        };
        acc.files.push(path);
        acc.diags.extend(loaded.diags.iter().cloned());
        let root = loaded
            .docs
            .iter()
            .find(|d| !d.root.is_null())
            .map(|d| d.root.clone())
            .unwrap_or_else(|| Node::null(o.span));
        match schema::parse_custom(&root) {
            Ok(data) => {
                if acc.schema.is_unset() {
                    acc.schema = SchemaState::Custom {
                        data: Arc::new(data),
                        exact: top || (acc.res.is_empty() && !acc.merged),
                    };
                }
            }
            Err(why) => acc.diags.push(
                Diagnostic::new(
                    &INVALID_KUSTOMIZATION,
                    o.span,
                    format!("the OpenAPI schema `{}` is invalid: {why}", o.text),
                )
                .with_help("kustomize fails on it too; an OpenAPI schema is a mapping with `definitions`, each a schema"),
            ),
        }
    }

    /// After a `resources:` entry was built (in parallel with its siblings, with no schema
    /// set): the schema it set is in effect for the entries after it, as in kustomize. An
    /// entry built without it whose merges kustomize would have run with it is refused.
    pub(super) fn follow_schema(&self, acc: &mut Acc, sub: &Acc, entry: Span) {
        let set_before = !acc.schema.is_unset();
        if set_before
            && ((acc.schema.is_custom() && sub.merged_unset)
                || (!sub.schema.is_unset() && sub.merged))
        {
            acc.diags.push(
                Diagnostic::new(
                    &UNSUPPORTED_OVERLAY,
                    entry,
                    "pbc does not implement strategic merges in a base listed after the base that set the `openapi` schema",
                )
                .with_help("kustomize uses one schema for the whole build, from the first kustomization with `openapi`; give `openapi` in the top kustomization, or build this tree with kustomize"),
            );
        }
        if !set_before {
            acc.schema = sub.schema.clone();
            acc.merged_unset |= sub.merged_unset;
            // Set as if nothing was read before, but the entries before this one were.
            if let SchemaState::Custom { exact, .. } = &mut acc.schema
                && *exact
                && (!acc.res.is_empty() || acc.merged)
            {
                *exact = false;
                if sub.merged {
                    acc.diags.push(
                        Diagnostic::new(
                            &UNSUPPORTED_OVERLAY,
                            entry,
                            "pbc does not implement strategic merges under an `openapi` schema set by a base listed after other resources",
                        )
                        .with_help("kustomize adds such a schema to the built-in one or uses it alone, depending on what it read before; give `openapi` in the top kustomization, or build this tree with kustomize"),
                    );
                }
            }
        }
    }

    /// The refusal of a merge whose schema pbc cannot tell.
    pub(super) fn ambiguous_schema(&self, at: Span, id: &ResId) -> Diagnostic {
        Diagnostic::new(
            &UNSUPPORTED_OVERLAY,
            at,
            format!(
                "pbc cannot tell which OpenAPI schema kustomize would merge {} with",
                id.describe()
            ),
        )
        .with_help("an `openapi` schema set below the top kustomization is added to the built-in one or used alone, depending on what kustomize read before; give `openapi` in the top kustomization, describe the kind in it completely, or build this tree with kustomize")
    }
}
