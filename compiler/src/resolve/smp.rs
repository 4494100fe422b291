//! Strategic merge on the spanned tree.
//!
//! Kustomize's rules for kinds it knows no schema for: maps merge key by key, scalars and
//! lists are replaced by the patch's, `key: null` deletes, `$patch: delete|replace` work on
//! maps, and a top-level `$patch: delete` removes the resource. For Playbooks
//! (`agenticops/v1`), `spec.stages` merges by `name` (`$patch: delete|replace` on elements,
//! a `{$patch: replace}` element replaces the list), merged stages keep their base order,
//! new ones are appended, and `$setElementOrder/stages` sets an explicit order.
//!
//! For built-in kinds, lists whose schema has a `merge` patch strategy merge by their keys
//! (see [`super::smp_list`]); other `$…` keys are ordinary fields, as in kustomize.
//!
//! Provenance: a value taken from the patch keeps the patch's span, a value kept from the
//! base keeps the base's.

use super::schema::Sch;
use super::smp_list;
use crate::span::Span;
use crate::yaml::{Entry, Node, Value};

/// The result of merging one patch into one resource.
#[derive(Debug, Default)]
pub struct Merged {
    /// The patch removed the resource (`$patch: delete` at the top).
    pub deleted: bool,
    /// The patch merged into `spec.stages` of a Playbook (the key's span in the patch).
    pub stages_touched: Option<Span>,
    /// `$setElementOrder/stages` entries naming no stage: (name, span).
    pub unknown_order: Vec<(String, Span)>,
    /// Stages the patch appends to a base's stages that have neither `agent` nor `action`:
    /// almost always a misspelt name of a base stage.
    pub unknown_stages: Vec<UnknownStage>,
    /// What the patch removed, replaced whole or reordered (see [`super::DocOrigin::removed`]).
    pub removed: Vec<super::Removal>,
}

impl Merged {
    fn remove(&mut self, path: &[String], key: &str, span: Span) {
        let mut p = path.to_vec();
        p.push(key.to_string());
        self.removed.push(super::Removal { path: p, span });
    }
}

/// A stage a patch appends that names no base stage and could not run on its own.
#[derive(Debug, Clone)]
pub struct UnknownStage {
    pub name: String,
    /// The span of the patch's `name:` value.
    pub name_span: Span,
    /// The span of the whole stage in the patch: the findings inside it are consequences.
    pub stage_span: Span,
    /// The base's stages: (name, span of the name).
    pub base: Vec<(String, Span)>,
}

const MAX_DEPTH: usize = 256;

fn directive(n: &Node) -> Option<&str> {
    n.get("$patch")
        .and_then(|v| v.as_scalar())
        .map(|s| s.text.as_str())
}

fn without_directive(n: &Node) -> Node {
    match &n.value {
        Value::Map(m) => Node::map(
            n.span,
            m.iter()
                .filter(|e| e.key_str() != "$patch")
                .cloned()
                .collect(),
        ),
        _ => n.clone(),
    }
}

/// The span of a map's `$patch` value (else of the map).
fn directive_span(n: &Node) -> Span {
    n.get("$patch").map_or(n.span, |v| v.span)
}

/// True if the node is exactly `{$patch: X}`.
fn only_directive(n: &Node, d: &str) -> bool {
    n.as_map().is_some_and(|m| m.len() == 1) && directive(n) == Some(d)
}

/// Merges `patch` into the resource `doc`. `playbook` turns on the Playbook rules.
/// `sch` is the built-in schema of the resource's kind, if it has one.
pub(crate) fn merge_resource(
    doc: &mut Node,
    patch: &Node,
    playbook: bool,
    sch: Option<Sch>,
) -> Merged {
    let mut out = Merged::default();
    match directive(patch) {
        Some("delete") => {
            out.deleted = true;
            return out;
        }
        Some("replace") => {
            *doc = clean(&without_directive(patch), &[], playbook, sch, 0)
                .unwrap_or_else(|| Node::map(patch.span, Vec::new()));
            return out;
        }
        _ => {}
    }
    if doc.as_map().is_some() && patch.as_map().is_some() {
        merge_map(doc, patch, &mut Vec::new(), playbook, sch, &mut out, 0);
    } else {
        *doc = patch.clone();
    }
    out
}

fn is_stages(path: &[String], key: &str, playbook: bool) -> bool {
    playbook && key == "stages" && path.len() == 1 && path[0] == "spec"
}

pub(super) fn merge_map(
    dst: &mut Node,
    patch: &Node,
    path: &mut Vec<String>,
    playbook: bool,
    sch: Option<Sch>,
    out: &mut Merged,
    depth: usize,
) {
    let Some(pentries) = patch.as_map() else {
        return;
    };
    if depth > MAX_DEPTH {
        return;
    }
    let mut order: Option<(&Node, Span)> = None;
    for pe in pentries {
        let key = pe.key_str();
        if key == "$patch" {
            continue;
        }
        if playbook && key == "$setElementOrder/stages" && path.len() == 1 && path[0] == "spec" {
            order = Some((&pe.value, pe.key.span));
            out.stages_touched.get_or_insert(pe.key.span);
            continue;
        }
        let Some(dmap) = dst.as_map_mut() else {
            return;
        };
        let pos = dmap.iter().position(|e| e.key_str() == key);
        let pv = &pe.value;
        if pv.is_null() {
            if let Some(i) = pos {
                dmap.remove(i);
                out.remove(path, key, pe.key.span);
            }
            continue;
        }
        let stages = is_stages(path, key, playbook);
        let fsch = sch.and_then(|s| s.field(key));
        if stages {
            out.stages_touched.get_or_insert(pe.key.span);
        }
        match pos {
            None => {
                let cleaned = if stages {
                    pv.as_seq()
                        .and_then(|items| merge_stages(None, pv, items, out, playbook, depth + 1))
                } else {
                    path.push(key.to_string());
                    let c = clean(pv, path, playbook, fsch, depth + 1);
                    path.pop();
                    c
                };
                if let Some(v) = cleaned {
                    dmap.push(Entry {
                        key: pe.key.clone(),
                        value: v,
                    });
                }
            }
            Some(i) => {
                let dv = &mut dmap[i].value;
                match &pv.value {
                    Value::Map(_) => match directive(pv) {
                        Some("delete") => {
                            dmap.remove(i);
                            out.remove(path, key, directive_span(pv));
                        }
                        Some("replace") => {
                            out.remove(path, key, directive_span(pv));
                            path.push(key.to_string());
                            let c = clean(&without_directive(pv), path, playbook, fsch, depth + 1);
                            path.pop();
                            match c {
                                Some(v) => *dv = v,
                                None => {
                                    dmap.remove(i);
                                }
                            }
                        }
                        _ => {
                            path.push(key.to_string());
                            if dv.as_map().is_some() {
                                merge_map(dv, pv, path, playbook, fsch, out, depth + 1);
                            } else if let Some(v) = clean(pv, path, playbook, fsch, depth + 1) {
                                *dv = v;
                            }
                            path.pop();
                        }
                    },
                    Value::Seq(items) if stages => {
                        let base = dv.as_seq().map(|s| s.to_vec());
                        match merge_stages(base.as_deref(), pv, items, out, playbook, depth + 1) {
                            Some(v) => {
                                // The merged list keeps the base list's span.
                                let span = dv.span;
                                *dv = v;
                                if base.is_some() {
                                    dv.span = span;
                                }
                            }
                            None => {
                                dmap.remove(i);
                                out.remove(path, key, pe.key.span);
                            }
                        }
                    }
                    Value::Seq(_)
                        if dv.as_seq().is_some() && fsch.and_then(Sch::merge_keys).is_some() =>
                    {
                        path.push(key.to_string());
                        let merged = smp_list::merge_list(dv, pv, fsch, path, out, depth + 1);
                        path.pop();
                        match merged {
                            Some(v) => *dv = v,
                            None => {
                                dmap.remove(i);
                            }
                        }
                    }
                    // A scalar the patch restates unchanged (a stage's `name`) keeps the
                    // base's span: the value did not come from the patch.
                    Value::Scalar(ps)
                        if dv
                            .as_scalar()
                            .is_some_and(|ds| ds.text == ps.text && ds.kind == ps.kind) => {}
                    _ => *dv = pv.clone(),
                }
            }
        }
    }
    if let Some((order, key_span)) = order
        && let Some(dmap) = dst.as_map_mut()
        && let Some(e) = dmap.iter_mut().find(|e| e.key_str() == "stages")
        && let Value::Seq(items) = &mut e.value.value
    {
        apply_order(items, order, out);
        out.removed.push(super::Removal {
            path: vec!["spec".into(), "stages".into()],
            span: key_span,
        });
    }
}

fn stage_name(n: &Node) -> Option<&str> {
    n.get("name")
        .and_then(|v| v.as_scalar())
        .map(|s| s.text.as_str())
}

/// Merges a patch's stage list into the base's (or builds a new one when there is no base).
/// `None` means the list is deleted.
fn merge_stages(
    base: Option<&[Node]>,
    patch_list: &Node,
    items: &[Node],
    out: &mut Merged,
    playbook: bool,
    depth: usize,
) -> Option<Node> {
    if items.iter().any(|i| only_directive(i, "delete")) {
        return None;
    }
    let replace = items.iter().any(|i| only_directive(i, "replace"));
    if let Some(r) = items.iter().find(|i| only_directive(i, "replace")) {
        out.remove(&["spec".to_string()], "stages", directive_span(r));
    }
    let mut result: Vec<Node> = if replace {
        Vec::new()
    } else {
        base.map(|b| b.to_vec()).unwrap_or_default()
    };
    let mut spath = vec!["spec".to_string(), "stages".to_string()];
    for item in items {
        if only_directive(item, "replace") {
            continue;
        }
        let name = stage_name(item);
        let pos = name.and_then(|n| result.iter().position(|r| stage_name(r) == Some(n)));
        match (directive(item), pos) {
            (Some("delete"), Some(i)) => {
                result.remove(i);
                out.remove(&spath, name.unwrap_or_default(), directive_span(item));
            }
            (Some("delete"), None) => {}
            (Some("replace"), Some(i)) => {
                out.remove(&spath, name.unwrap_or_default(), directive_span(item));
                if let Some(v) = clean(&without_directive(item), &spath, playbook, None, depth + 1)
                {
                    result[i] = v;
                }
            }
            (_, Some(i)) => {
                // The stage's name in the path: what the patch removes inside it is found
                // by name (see `Merged::removed`).
                spath.push(name.unwrap_or_default().to_string());
                merge_map(
                    &mut result[i],
                    item,
                    &mut spath,
                    playbook,
                    None,
                    out,
                    depth + 1,
                );
                spath.pop();
            }
            (d, None) => {
                if d.is_none()
                    && !replace
                    && let Some(b) = base.filter(|b| !b.is_empty())
                    && item.get("agent").is_none()
                    && item.get("action").is_none()
                    && let Some(n) = item.get("name")
                    && let Some(text) = n.as_str()
                {
                    out.unknown_stages.push(UnknownStage {
                        name: text.to_string(),
                        name_span: n.span,
                        stage_span: item.span,
                        base: b
                            .iter()
                            .filter_map(|s| {
                                let n = s.get("name")?;
                                Some((n.as_str()?.to_string(), n.span))
                            })
                            .collect(),
                    });
                }
                if let Some(v) = clean(&without_directive(item), &spath, playbook, None, depth + 1)
                {
                    result.push(v);
                }
            }
        }
    }
    spath.clear();
    Some(Node::seq(patch_list.span, result))
}

/// Orders stages by `$setElementOrder/stages`: the named ones first, in that order, then the
/// others in their current order.
fn apply_order(items: &mut Vec<Node>, order: &Node, out: &mut Merged) {
    let Some(list) = order.as_seq() else {
        return;
    };
    let mut rest: Vec<Option<Node>> = std::mem::take(items).into_iter().map(Some).collect();
    for o in list {
        let name = o
            .as_scalar()
            .map(|s| (s.text.as_str(), o.span))
            .or_else(|| {
                let n = o.get("name")?;
                Some((n.as_scalar()?.text.as_str(), n.span))
            });
        let Some((name, span)) = name else {
            continue;
        };
        match rest
            .iter_mut()
            .find(|r| r.as_ref().is_some_and(|r| stage_name(r) == Some(name)))
        {
            Some(slot) => {
                if let Some(n) = slot.take() {
                    items.push(n);
                }
            }
            None => {
                if !items.iter().any(|i| stage_name(i) == Some(name)) {
                    out.unknown_order.push((name.to_string(), span));
                }
            }
        }
    }
    items.extend(rest.into_iter().flatten());
}

/// A value a patch adds where the base has nothing (or something of another type): maps
/// lose their `$patch` directives and their null entries (as kustomize does); stages merge
/// as a new list; a list the schema merges by key loses the elements that delete themselves;
/// other lists are taken literally. `None`: the value deletes itself.
pub(super) fn clean(
    n: &Node,
    path: &[String],
    playbook: bool,
    sch: Option<Sch>,
    depth: usize,
) -> Option<Node> {
    if depth > MAX_DEPTH {
        return Some(n.clone());
    }
    match &n.value {
        Value::Seq(items) if sch.and_then(Sch::merge_keys).is_some() => {
            let elem = sch.and_then(Sch::elements);
            let kept = items
                .iter()
                .filter(|i| !smp_list::is_list_directive(i))
                .filter_map(|i| match &i.value {
                    Value::Map(_) => clean(i, path, playbook, elem, depth + 1)
                        .filter(|c| c.as_map().is_some_and(|m| !m.is_empty())),
                    _ => Some(i.clone()),
                })
                .collect();
            Some(Node::seq(n.span, kept))
        }
        Value::Map(m) => {
            if directive(n) == Some("delete") {
                return None;
            }
            let mut entries = Vec::with_capacity(m.len());
            for e in m {
                let k = e.key_str();
                if k == "$patch" || e.value.is_null() {
                    continue;
                }
                if playbook
                    && k == "$setElementOrder/stages"
                    && path.len() == 1
                    && path[0] == "spec"
                {
                    continue;
                }
                let v = if is_stages(path, k, playbook) {
                    match e.value.as_seq() {
                        Some(items) => {
                            let mut scratch = Merged::default();
                            merge_stages(None, &e.value, items, &mut scratch, playbook, depth + 1)
                        }
                        None => Some(e.value.clone()),
                    }
                } else {
                    let mut p = path.to_vec();
                    p.push(k.to_string());
                    clean(
                        &e.value,
                        &p,
                        playbook,
                        sch.and_then(|s| s.field(k)),
                        depth + 1,
                    )
                };
                if let Some(v) = v {
                    entries.push(Entry {
                        key: e.key.clone(),
                        value: v,
                    });
                }
            }
            Some(Node::map(n.span, entries))
        }
        _ => Some(n.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::SourceMap;
    use crate::yaml::{Limits, parse};

    fn node(text: &str) -> Node {
        let sm = SourceMap::new();
        let f = sm.add("t.yaml", text);
        let mut d = Vec::new();
        let docs = parse(&f, &Limits::default(), &mut d);
        assert!(d.is_empty(), "{d:?}");
        docs[0].root.clone()
    }

    fn merged(base: &str, patch: &str) -> serde_json::Value {
        let mut b = node(base);
        let p = node(patch);
        let m = merge_resource(&mut b, &p, true, None);
        assert!(!m.deleted);
        b.to_json()
    }

    #[test]
    fn maps_merge_lists_replace_null_deletes() {
        let j = merged(
            "spec: {a: 1, b: {c: 2, d: 3}, l: [1, 2]}",
            "spec: {a: 5, b: {c: null, e: 4}, l: [9], n: {x: null, y: 1}}",
        );
        assert_eq!(
            j,
            serde_json::json!({"spec": {"a": 5, "b": {"d": 3, "e": 4}, "l": [9], "n": {"y": 1}}})
        );
    }

    #[test]
    fn stages_merge_by_name_in_base_order() {
        let j = merged(
            "spec: {stages: [{name: a, x: 1}, {name: b, x: 1}, {name: c}]}",
            "spec: {stages: [{name: new}, {name: c, x: 2}, {name: a, $patch: delete}]}",
        );
        assert_eq!(
            j,
            serde_json::json!({"spec": {"stages": [{"name": "b", "x": 1}, {"name": "c", "x": 2}, {"name": "new"}]}})
        );
    }

    #[test]
    fn set_element_order_and_element_replace() {
        let j = merged(
            "spec: {stages: [{name: a, x: 1}, {name: b, x: 1}, {name: c}]}",
            "spec: {$setElementOrder/stages: [{name: c}, {name: a}], stages: [{name: a, $patch: replace, y: 2}]}",
        );
        assert_eq!(
            j,
            serde_json::json!({"spec": {"stages": [{"name": "c"}, {"name": "a", "y": 2}, {"name": "b", "x": 1}]}})
        );
    }

    #[test]
    fn an_appended_stage_without_executor_is_flagged() {
        let unknown = |base: &str, patch: &str| {
            let mut b = node(base);
            let m = merge_resource(&mut b, &node(patch), true, None);
            m.unknown_stages
                .iter()
                .map(|u| (u.name.clone(), u.base.len()))
                .collect::<Vec<_>>()
        };
        let base = "spec: {stages: [{name: a, agent: m}, {name: deploy, action: k:x}]}";
        assert_eq!(
            unknown(
                base,
                "spec: {stages: [{name: deploy-to-k8s, approval: manual}]}"
            ),
            [("deploy-to-k8s".to_string(), 2)]
        );
        // A real new stage, a merge by name, a replaced list, a new list: nothing to flag.
        assert!(unknown(base, "spec: {stages: [{name: notify, action: chat:post}]}").is_empty());
        assert!(unknown(base, "spec: {stages: [{name: deploy, approval: manual}]}").is_empty());
        assert!(unknown(base, "spec: {stages: [{$patch: replace}, {name: only}]}").is_empty());
        assert!(unknown("spec: {trigger: t}", "spec: {stages: [{name: x}]}").is_empty());
    }

    #[test]
    fn list_replace_directive_and_map_directives() {
        let j = merged(
            "spec: {stages: [{name: a}], r: {x: 1}, q: {x: 1, y: 2}}",
            "spec: {stages: [{$patch: replace}, {name: z}], r: {$patch: delete}, q: {$patch: replace, z: 3}}",
        );
        assert_eq!(
            j,
            serde_json::json!({"spec": {"stages": [{"name": "z"}], "q": {"z": 3}}})
        );
    }
}
