//! Refusals: inputs for which kustomize would do something pbc does not implement. Each is
//! an `unsupported-overlay-feature` error at the kustomization entry that needs the feature,
//! naming the field and the kind, so that pbc never builds something other than kustomize
//! does without saying so.

use super::fieldspec::{self, nodes_at};
use super::{Res, ResId, UNSUPPORTED_OVERLAY};
use crate::diag::Diagnostic;
use crate::span::Span;
use crate::yaml::Node;

/// The names and namespaces kustomize would rewrite in other resources after renames: a
/// field of kustomize's name-reference specs that names a resource by a name it no longer
/// has (or, for a reference that carries a namespace, a resource moved to another
/// namespace). pbc does not rewrite references; each is refused.
pub(crate) fn name_references(res: &[Res]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    // kustomize's check of (cluster) role binding subjects fails on a blank namespace.
    for r in res {
        let id = r.cur();
        if !matches!(id.kind.as_str(), "RoleBinding" | "ClusterRoleBinding") {
            continue;
        }
        for s in r
            .node
            .get("subjects")
            .and_then(Node::as_seq)
            .unwrap_or_default()
        {
            if let Some(ns) = s.get("namespace")
                && ns.as_scalar().is_some_and(|v| v.text.is_empty())
                && s.get("kind").and_then(Node::as_str) == Some("ServiceAccount")
            {
                out.push(
                    Diagnostic::new(
                        &UNSUPPORTED_OVERLAY,
                        ns.span,
                        format!("a subject of {} has a blank `namespace`, which kustomize's name references reject", id.describe()),
                    )
                    .with_help("give the subject its namespace, or remove the `namespace` key"),
                );
            }
        }
    }
    let targets = fieldspec::name_reference_kinds();
    for t in res {
        let cur = t.cur();
        if !targets.iter().any(|k| *k == cur.kind) {
            continue;
        }
        let specs = fieldspec::specs();
        let old: Vec<&str> = std::iter::once(&t.orig)
            .chain(&t.prev)
            .map(|id| id.name.as_str())
            .filter(|n| *n != cur.name.as_str())
            .collect();
        let moved = t.orig.effective_ns() != cur.effective_ns();
        if old.is_empty() && !moved {
            continue;
        }
        for nr in &specs.name_reference {
            if !nr.target.selects(&cur.group, &cur.version, &cur.kind) {
                continue;
            }
            for r in res {
                if r.uid == t.uid {
                    continue;
                }
                let rid = r.cur();
                for f in &nr.referrers {
                    if !f.selects(&rid.group, &rid.version, &rid.kind) {
                        continue;
                    }
                    let mut found = Vec::new();
                    nodes_at(&r.node, &f.path, &mut found);
                    for n in found {
                        let (name, carries_ns) = match n.as_str() {
                            Some(s) => (Some(s), false),
                            None => (n.get("name").and_then(Node::as_str), true),
                        };
                        let Some(name) = name else { continue };
                        let stale = old.contains(&name);
                        let moved_ref = moved && carries_ns && name == cur.name.as_str();
                        if stale || moved_ref {
                            out.push(refusal(t, &cur, &rid, &f.path_text(), n.span, stale));
                        }
                    }
                }
            }
        }
    }
    out
}

fn refusal(t: &Res, cur: &ResId, rid: &ResId, field: &str, at: Span, renamed: bool) -> Diagnostic {
    let (entry, what) = if renamed {
        (
            t.name_spans.last().copied().unwrap_or(at),
            format!("renamed to `{}`", cur.name),
        )
    } else {
        (
            t.node
                .get_path(&["metadata", "namespace"])
                .map(|n| n.span)
                .unwrap_or(at),
            format!("moved to namespace `{}`", cur.ns),
        )
    };
    Diagnostic::new(
        &UNSUPPORTED_OVERLAY,
        entry,
        format!(
            "{} `{}` is {what}, and `{field}` of {} refers to it: kustomize would update the reference, and pbc does not implement name references",
            cur.kind,
            t.orig.name,
            rid.describe()
        ),
    )
    .with_label(at, "this reference would be rewritten")
    .with_help("write the final name in the reference (or keep the name unchanged), so that no reference needs rewriting")
}

/// The refusal of a custom OpenAPI schema (`openapi.path`) that declares kinds other than
/// the Playbook: kustomize would merge their lists by the schema's merge keys (and stop
/// merging the built-in kinds' lists). pbc always merges Playbook stages by name, as if
/// the Playbook schema were given, so a schema for the Playbook alone changes nothing.
pub(crate) fn custom_schema(bytes: &[u8], entry: Span) -> Option<Diagnostic> {
    let text = String::from_utf8_lossy(bytes);
    let file = crate::span::SourceFile::new(
        crate::span::FileId(u32::MAX - 1),
        std::path::PathBuf::from("openapi"),
        text.as_ref().into(),
    );
    let mut diags = Vec::new();
    let docs = crate::yaml::parse(&file, &crate::yaml::Limits::default(), &mut diags);
    let refuse = |what: String| {
        Diagnostic::new(
            &UNSUPPORTED_OVERLAY,
            entry,
            format!("pbc does not implement a custom OpenAPI schema for {what}"),
        )
        .with_help("pbc merges Playbook stages by name and refuses merges that need another schema; remove `openapi`, or build this tree with kustomize")
    };
    let Some(defs) = docs
        .first()
        .and_then(|d| d.root.get("definitions"))
        .and_then(Node::as_map)
    else {
        return Some(refuse("this file (it has no `definitions`)".into()));
    };
    for d in defs {
        for g in d
            .value
            .get("x-kubernetes-group-version-kind")
            .and_then(Node::as_seq)
            .unwrap_or_default()
        {
            let get = |k: &str| g.get(k).and_then(Node::as_str).unwrap_or("");
            let (group, version, kind) = (get("group"), get("version"), get("kind"));
            if (group, version, kind) != ("agenticops", "v1", "Playbook") {
                let api = if group.is_empty() {
                    version.to_string()
                } else {
                    format!("{group}/{version}")
                };
                return Some(refuse(format!("the kind `{kind}` ({api})")));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_for_the_playbook_alone_is_accepted() {
        let ok = br#"{"definitions": {"p": {"x-kubernetes-group-version-kind": [{"group": "agenticops", "version": "v1", "kind": "Playbook"}]}}}"#;
        assert!(custom_schema(ok, Span::default()).is_none());
        let other = br#"{"definitions": {"c": {"x-kubernetes-group-version-kind": [{"group": "example.com", "version": "v1", "kind": "MyCRD"}]}}}"#;
        let d = custom_schema(other, Span::default()).expect("refused");
        assert!(
            d.message.contains("`MyCRD` (example.com/v1)"),
            "{}",
            d.message
        );
    }
}
