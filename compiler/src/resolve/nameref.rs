//! Name references: after the build renamed or moved resources (prefixes, suffixes, hash
//! suffixes, namespaces, patches), the fields that name them in other resources are
//! rewritten, as kustomize's name-reference transformer does it at the end of the top-level
//! build, through its built-in name-reference field specs (a pod's `configMap.name`, a
//! binding's `roleRef` and `subjects`, an HPA's `scaleTargetRef`, …).
//!
//! For each field a spec names in a referrer, the resource it refers to is chosen among the
//! resources the referrer can see (its namespace, cluster-scoped ones, a role binding's
//! service-account namespaces) that once had the name written there and the spec's kind;
//! ties are broken by namespace, then by the prefixes and suffixes both were given. The
//! field then gets the referral's current name (and, for a `{name, namespace}` reference,
//! its namespace). A tie kustomize cannot break is an error, as in kustomize.

use super::fieldspec::{self, FieldSpec};
use super::{INVALID_KUSTOMIZATION, Res, ResId};
use crate::diag::Diagnostic;
use crate::span::Span;
use crate::yaml::{Entry, Node, Text, Value};

/// What the transformer needs of a possible referral, read before any field changes.
struct Cand {
    cur: ResId,
    prev: Vec<ResId>,
    org_ns: String,
    prefixes: Vec<Text>,
    suffixes: Vec<Text>,
    /// The span of the current `metadata.name` (where the new name came from).
    name_span: Span,
    ns_span: Span,
}

/// kustomize's `Gvk.IsSelected`: the selector's non-empty parts match.
fn gvk_selected(
    id: &ResId,
    group: Option<&str>,
    version: Option<&str>,
    kind: Option<&str>,
) -> bool {
    group.is_none_or(|g| g.is_empty() || g == id.group)
        && version.is_none_or(|v| v.is_empty() || v == id.version)
        && kind.is_none_or(|k| k.is_empty() || k == id.kind)
}

/// kustomize's `SameEndingSubSlice`.
fn same_ending(a: &[Text], b: &[Text]) -> bool {
    let (short, long) = if a.len() > b.len() { (b, a) } else { (a, b) };
    let diff = long.len() - short.len();
    if short.is_empty() {
        return diff == 0;
    }
    short.iter().zip(&long[diff..]).all(|(x, y)| x == y)
}

fn ps_equal(c: &Cand, r: &Cand, allow_empty: bool) -> bool {
    if allow_empty {
        (c.prefixes.is_empty() || r.prefixes.is_empty() || same_ending(&c.prefixes, &r.prefixes))
            && (c.suffixes.is_empty()
                || r.suffixes.is_empty()
                || same_ending(&c.suffixes, &r.suffixes))
    } else {
        same_ending(&c.prefixes, &r.prefixes) && same_ending(&c.suffixes, &r.suffixes)
    }
}

/// One referrer field's rewrite: what to write, and where it came from.
struct Choice {
    name: String,
    name_span: Span,
    ns: String,
    ns_span: Span,
}

/// Whether [`fix`] may rewrite a reference: something that others refer to was renamed or
/// moved. When not (the common case, decided without reading the field specs), no
/// reference can need rewriting.
pub(crate) fn may_rewrite(res: &[Res], extra: &[fieldspec::NameRef]) -> bool {
    let kinds = fieldspec::name_reference_kinds();
    res.iter().any(|r| {
        !r.prev.is_empty()
            && r.node.get("kind").and_then(Node::as_str).is_some_and(|k| {
                kinds.iter().any(|x| x == k)
                    || extra.iter().any(|e| e.target.kind.as_deref() == Some(k))
            })
    })
}

/// Rewrites the name references of `res`; returns kustomize's errors (ambiguous referrals).
pub(crate) fn fix(res: &mut [Res], extra: &[fieldspec::NameRef]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    // kustomize reads the service-account namespaces of every role binding, and fails on
    // one that is not a string.
    for r in res.iter() {
        if r.node.get("kind").and_then(Node::as_str) != Some("RoleBinding") {
            continue;
        }
        let id = r.cur();
        if !id.namespaced() {
            continue;
        }
        for s in r
            .node
            .get("subjects")
            .and_then(Node::as_seq)
            .unwrap_or_default()
        {
            if s.get("kind").and_then(Node::as_str) == Some("ServiceAccount")
                && let Some(ns) = s.get("namespace")
                && ns.as_str().is_none()
            {
                diags.push(
                    Diagnostic::new(
                        &INVALID_KUSTOMIZATION,
                        ns.span,
                        format!(
                            "the namespace of this subject of {} is blank, and kustomize fails on it",
                            id.describe()
                        ),
                    )
                    .with_help("give the subject its namespace, or remove the `namespace` key"),
                );
            }
        }
    }
    if !diags.is_empty() || !may_rewrite(res, extra) {
        return diags;
    }
    let cands: Vec<Cand> = res
        .iter()
        .map(|r| Cand {
            cur: r.cur(),
            prev: r.prev.clone(),
            org_ns: r
                .prev
                .first()
                .cloned()
                .unwrap_or_else(|| r.cur())
                .effective_ns()
                .to_string(),
            prefixes: r.prefixes.clone(),
            suffixes: r.suffixes.clone(),
            name_span: r
                .node
                .get_path(&["metadata", "name"])
                .map(|n| n.span)
                .unwrap_or_default(),
            ns_span: r
                .node
                .get_path(&["metadata", "namespace"])
                .map(|n| n.span)
                .unwrap_or_default(),
        })
        .collect();
    let merged;
    let name_reference: &[fieldspec::NameRef] = if extra.is_empty() {
        &fieldspec::specs().name_reference
    } else {
        let mut all = fieldspec::specs().name_reference.clone();
        // A conflict with the built-in specs was reported where the configuration was read.
        let _ = super::config::merge_refs(&mut all, extra, Span::default());
        merged = all;
        &merged
    };
    for (ri, r) in res.iter_mut().enumerate() {
        let me = &cands[ri];
        let org = me.prev.first().cloned().unwrap_or_else(|| me.cur.clone());
        let visible = visible_to(&cands, me, &r.node);
        for nr in name_reference {
            for f in &nr.referrers {
                if !f.selects(&org.group, &org.version, &org.kind) {
                    continue;
                }
                let role_ref = f.path.last().map(String::as_str) == Some("name")
                    && f.path.len() >= 2
                    && f.path[f.path.len() - 2] == "roleRef";
                let role_gvk = role_ref.then(|| {
                    let get = |k: &str| {
                        r.node
                            .get_path(&["roleRef", k])
                            .and_then(Node::as_str)
                            .map(str::to_string)
                    };
                    (get("apiGroup"), get("kind"))
                });
                let mut targets = Vec::new();
                at_mut(&mut r.node, &f.path, &mut targets);
                for n in targets {
                    let sel = Selector {
                        target: &nr.target,
                        role: role_gvk.as_ref(),
                        me,
                        cands: &cands,
                    };
                    match &mut n.value {
                        Value::Scalar(s) => {
                            let old = s.text.to_string();
                            match sel.select(&old, &visible, false) {
                                Ok(Some(c)) if c.name != old => {
                                    *n = Node::string(c.name_span, c.name);
                                }
                                Ok(_) => {}
                                Err(d) => diags.push(d.at(n.span)),
                            }
                        }
                        Value::Map(_) => {
                            let Some(old) =
                                n.get("name").and_then(Node::as_str).map(str::to_string)
                            else {
                                continue;
                            };
                            let pool: Vec<usize> =
                                match n.get("namespace").and_then(Node::as_scalar) {
                                    None => visible.clone(),
                                    Some(ns) => {
                                        let want = effective(&ns.text);
                                        let by_org: Vec<usize> = visible
                                            .iter()
                                            .copied()
                                            .filter(|i| cands[*i].org_ns == want)
                                            .collect();
                                        if by_org.is_empty() {
                                            visible
                                                .iter()
                                                .copied()
                                                .filter(|i| cands[*i].cur.effective_ns() == want)
                                                .collect()
                                        } else {
                                            by_org
                                        }
                                    }
                                };
                            match sel.select(&old, &pool, true) {
                                Ok(Some(c)) => {
                                    if c.name == old && c.ns.is_empty() {
                                        continue;
                                    }
                                    set(n, "name", Node::string(c.name_span, c.name));
                                    if !c.ns.is_empty() {
                                        set(n, "namespace", Node::string(c.ns_span, c.ns));
                                    }
                                }
                                Ok(None) => {}
                                Err(d) => diags.push(d.at(n.span)),
                            }
                        }
                        Value::Seq(_) => {}
                    }
                }
            }
        }
    }
    diags
}

fn effective(ns: &str) -> String {
    if ns.is_empty() {
        "default".into()
    } else {
        ns.into()
    }
}

fn set(n: &mut Node, key: &str, v: Node) {
    let span = n.span;
    if let Some(m) = n.as_map_mut() {
        match m.iter_mut().find(|e| e.key_str() == key) {
            Some(e) => e.value = v,
            None => m.push(Entry {
                key: Node::string(span, key),
                value: v,
            }),
        }
    }
}

/// kustomize's `SubsetThatCouldBeReferencedByResource`.
fn visible_to(cands: &[Cand], me: &Cand, node: &Node) -> Vec<usize> {
    if !me.cur.namespaced() {
        return (0..cands.len()).collect();
    }
    let mut sa_ns: Vec<&str> = Vec::new();
    if me.cur.kind == "RoleBinding" {
        for s in node
            .get("subjects")
            .and_then(Node::as_seq)
            .unwrap_or_default()
        {
            if s.get("kind").and_then(Node::as_str) == Some("ServiceAccount")
                && let Some(ns) = s.get("namespace").and_then(Node::as_str)
            {
                sa_ns.push(ns);
            }
        }
    }
    (0..cands.len())
        .filter(|i| {
            let c = &cands[*i].cur;
            !c.namespaced()
                || c.effective_ns() == me.cur.effective_ns()
                || sa_ns.contains(&c.ns.as_str())
        })
        .collect()
}

struct Selector<'a> {
    target: &'a FieldSpec,
    role: Option<&'a (Option<String>, Option<String>)>,
    me: &'a Cand,
    cands: &'a [Cand],
}

/// An ambiguous referral, placed once the field is known.
struct Ambiguous(String);

impl Ambiguous {
    fn at(self, span: Span) -> Diagnostic {
        Diagnostic::new(&INVALID_KUSTOMIZATION, span, self.0).with_help(
            "give the resources distinct names (or namespaces), so that the reference names one",
        )
    }
}

impl Selector<'_> {
    /// kustomize's `selectReferral`.
    fn select(
        &self,
        old: &str,
        pool: &[usize],
        mapping: bool,
    ) -> Result<Option<Choice>, Ambiguous> {
        let t = self.target;
        let mut c: Vec<&Cand> = pool
            .iter()
            .map(|i| &self.cands[*i])
            .filter(|c| c.prev.iter().any(|p| p.name == old))
            .filter(|c| {
                c.prev.iter().any(|p| {
                    let id = ResId {
                        kind: p.kind.clone(),
                        ..c.cur.clone()
                    };
                    gvk_selected(
                        &id,
                        t.group.as_deref(),
                        t.version.as_deref(),
                        t.kind.as_deref(),
                    )
                })
            })
            .collect();
        if let Some((group, kind)) = self.role {
            c.retain(|c| {
                c.prev.iter().any(|p| {
                    let id = ResId {
                        kind: p.kind.clone(),
                        ..c.cur.clone()
                    };
                    gvk_selected(&id, group.as_deref(), None, kind.as_deref())
                })
            });
        }
        if self.me.cur.namespaced() {
            c.retain(|c| {
                !c.cur.namespaced()
                    || c.cur.kind == "ServiceAccount"
                    || c.cur.effective_ns() == self.me.cur.effective_ns()
            });
        }
        if c.len() > 1 {
            c.retain(|c| ps_equal(c, self.me, true));
            if c.len() > 1 {
                c.retain(|c| ps_equal(c, self.me, false));
            }
        }
        let choice = |c: &Cand| Choice {
            name: c.cur.name.to_string(),
            name_span: c.name_span,
            ns: c.cur.ns.to_string(),
            ns_span: c.ns_span,
        };
        match c.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(choice(one))),
            [first, rest @ ..] => {
                let same = rest.iter().all(|o| {
                    o.cur.name == first.cur.name && (!mapping || o.cur.ns == first.cur.ns)
                });
                if same {
                    Ok(Some(choice(first)))
                } else {
                    Err(Ambiguous(format!(
                        "the name `{old}` could refer to {}: kustomize cannot choose which to rewrite the reference to",
                        c.iter()
                            .map(|c| c.cur.describe())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            }
        }
    }
}

/// The nodes at a field spec's path, lists on the way (and at the end) walked into.
fn at_mut<'a>(node: &'a mut Node, path: &[String], out: &mut Vec<&'a mut Node>) {
    // An explicit stack: lists may nest as deep as the input.
    let mut stack: Vec<(&'a mut Node, &[String])> = vec![(node, path)];
    while let Some((n, p)) = stack.pop() {
        if matches!(n.value, Value::Seq(_)) {
            if let Value::Seq(items) = &mut n.value {
                for it in items.iter_mut().rev() {
                    stack.push((it, p));
                }
            }
            continue;
        }
        match p.split_first() {
            None => out.push(n),
            Some((first, rest)) => {
                let key = first.trim_end_matches("[]");
                if let Some(m) = n.as_map_mut()
                    && let Some(e) = m.iter_mut().find(|e| e.key_str() == key)
                {
                    stack.push((&mut e.value, rest));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ResolveOptions, resolve};
    use crate::fs::MemFs;
    use crate::load::Loader;
    use std::path::Path;
    use std::sync::Arc;

    fn build(files: &[(&str, &str)]) -> Vec<serde_json::Value> {
        let mut fs = MemFs::new();
        for (p, t) in files {
            fs.insert(*p, *t);
        }
        let l = Loader::new(Arc::new(fs), "", crate::yaml::Limits::default());
        let r = resolve(&l, Path::new("o"), &ResolveOptions::default()).expect("resolves");
        assert!(r.diags.is_empty(), "{:?}", r.diags);
        r.docs.iter().map(crate::yaml::Node::to_json).collect()
    }

    /// As `kubectl kustomize` builds it: the subject follows the prefixed account, the
    /// cluster role (not renamed) keeps its name.
    #[test]
    fn a_prefixed_service_account_is_followed_by_its_binding() {
        let docs = build(&[
            (
                "o/kustomization.yaml",
                "namePrefix: prod-\nresources: [rbac.yaml]\n",
            ),
            (
                "o/rbac.yaml",
                "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: runner}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: runner}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects: [{kind: ServiceAccount, name: runner}]\n",
            ),
        ]);
        assert_eq!(docs[1]["subjects"][0]["name"], "prod-runner");
        assert_eq!(docs[1]["roleRef"]["name"], "view");
    }

    /// A generated ConfigMap's hashed name reaches the pod template that mounts it.
    #[test]
    fn a_generated_config_map_is_followed_by_its_volume() {
        let docs = build(&[
            (
                "o/kustomization.yaml",
                "resources: [d.yaml]\nconfigMapGenerator:\n- name: cm\n  literals: [foo=bar]\n",
            ),
            (
                "o/d.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      volumes: [{name: v, configMap: {name: cm}}]\n",
            ),
        ]);
        // kustomize's order: the ConfigMap first.
        assert_eq!(docs[0]["metadata"]["name"], "cm-798k5k7g9f");
        assert_eq!(
            docs[1]["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"],
            "cm-798k5k7g9f"
        );
    }
}
