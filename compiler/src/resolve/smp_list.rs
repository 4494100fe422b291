//! Strategic merge of a list that the built-in schema merges by key (a pod's `containers`
//! by `name`, a container's `ports` by `containerPort` and `protocol`, `finalizers` as a set),
//! as kustomize's kyaml `merge2` does it with its "prepend" option:
//!
//! - a list-level `{$patch: replace}` element replaces the list, `{$patch: delete}` removes it;
//! - elements are identified by the values of the merge keys (a missing key reads as empty);
//!   the identities of the patch's elements come first, then those of the base's;
//! - each identity's base element is merged with its patch element (`$patch: delete` on the
//!   element removes it; an element with `$patch: replace` that the base also has keeps the
//!   base's element, as kustomize does);
//! - the result lists the elements in that order: the patch's first, then the base's others.
//!
//! A list of scalars with a merge strategy (keys empty) is the union of the patch's values
//! and the base's, the patch's first.

use super::schema::Sch;
use super::smp::{Merged, clean, merge_map};
use crate::yaml::{Entry, Node};

/// True if the element is a list-level directive (`{$patch: …}` and nothing else).
pub(super) fn is_list_directive(n: &Node) -> bool {
    n.as_map().is_some_and(|m| m.len() == 1) && n.get("$patch").is_some()
}

fn directive(n: &Node) -> Option<&str> {
    n.get("$patch").and_then(Node::as_str)
}

/// The text kyaml compares for a field: a scalar's text, empty for anything else.
fn text(n: &Node) -> &str {
    n.as_scalar().map(|s| s.text.as_str()).unwrap_or("")
}

/// The element's values of `keys` (empty for a missing or empty one).
fn values(n: &Node, keys: &[String]) -> Vec<String> {
    keys.iter()
        .map(|k| n.get(k).map(|v| text(v).to_string()).unwrap_or_default())
        .collect()
}

/// kyaml's element match: a mapping element with every key present and, where the wanted
/// value is not empty, equal to it.
fn matches(n: &Node, keys: &[String], want: &[String]) -> bool {
    n.as_map().is_some()
        && keys.iter().zip(want).all(|(k, w)| {
            n.get(k)
                .is_some_and(|v| !v.is_null() && (w.is_empty() || text(v) == w))
        })
}

/// kyaml's `validateKeys`: the keys some identity has a value for (all of them if none
/// has), and this identity's values of those keys.
fn valid(all: &[Vec<String>], this: &[String], keys: &[String]) -> (Vec<String>, Vec<String>) {
    let used: Vec<bool> = (0..keys.len())
        .map(|i| all.iter().any(|v| v.get(i).is_some_and(|x| !x.is_empty())))
        .collect();
    if !used.iter().any(|u| *u) {
        return (keys.to_vec(), this.to_vec());
    }
    let ks = keys
        .iter()
        .zip(&used)
        .filter(|(_, u)| **u)
        .map(|(k, _)| k.clone())
        .collect();
    let vs = this
        .iter()
        .zip(&used)
        .filter(|(v, u)| !v.is_empty() || **u)
        .map(|(v, _)| v.clone())
        .collect();
    (ks, vs)
}

/// kyaml's `mergeValues` for several keys: identities that agree where both have a value
/// (and share one) become one.
fn merge_values(list: &mut [Vec<String>]) {
    for i in 0..list.len() {
        for j in 0..list.len() {
            if list[i].len() != list[j].len() {
                continue;
            }
            let mut common = false;
            let mut res = Vec::with_capacity(list[i].len());
            let mut ok = true;
            for (a, b) in list[i].iter().zip(&list[j]) {
                if a == b {
                    common = true;
                    res.push(a.clone());
                } else if !a.is_empty() && !b.is_empty() {
                    ok = false;
                    break;
                } else if !a.is_empty() {
                    res.push(a.clone());
                } else {
                    res.push(b.clone());
                }
            }
            if ok && common {
                list[i] = res.clone();
                list[j] = res;
            }
        }
    }
}

/// kyaml's `FieldMatcher` on one element: the field is there and, if `want` is not empty,
/// has that text (`key` empty: the element is a scalar with that text).
fn field_matches(n: &Node, key: &str, want: &str) -> bool {
    if key.is_empty() {
        return n.as_scalar().is_some_and(|s| s.text == want);
    }
    n.get(key)
        .is_some_and(|v| want.is_empty() || text(v) == want)
}

/// kyaml's `ElementSetter`, literally: replaces the elements matching (keys, values) by
/// `elem`, or appends it if none does; with no `elem`, removes them. Empty elements are
/// dropped; with fewer values than keys the last value's match stands for the rest.
fn set_element(list: &mut Vec<Node>, elem: Option<&Node>, keys: &[String], want: &[String]) {
    let mapping_setter =
        keys.first().is_some_and(|k| !k.is_empty()) && want.first().is_some_and(|v| !v.is_empty());
    let mut found_any = false;
    let mut out = Vec::with_capacity(list.len() + 1);
    for n in list.drain(..) {
        if n.is_null() || n.as_map().is_some_and(|m| m.is_empty()) {
            continue;
        }
        if n.as_map().is_none() && mapping_setter {
            out.push(n);
            continue;
        }
        let mut found = !keys.is_empty();
        let mut last = false;
        for (j, k) in keys.iter().enumerate() {
            if let Some(w) = want.get(j) {
                last = field_matches(&n, k, w);
            }
            if !last {
                found = false;
                break;
            }
        }
        if !found {
            if !want.is_empty() {
                out.push(n);
            }
            continue;
        }
        found_any = true;
        if let Some(e) = elem {
            out.push(e.clone());
        }
    }
    if let Some(e) = elem
        && !found_any
    {
        out.push(e.clone());
    }
    *list = out;
}

/// kyaml's `appendListNode`: sets each element of `src` into `dst` by its keys.
fn append_list(dst: &mut Vec<Node>, src: &[Node], keys: &[String]) {
    for e in src {
        if keys.first().is_none_or(String::is_empty) {
            set_element(dst, Some(e), &[String::new()], &[text(e).to_string()]);
            continue;
        }
        let mut v = Vec::new();
        for k in keys {
            match e.get(k) {
                Some(x) => v.push(text(x).to_string()),
                None => dst.push(e.clone()),
            }
        }
        if keys.len() > 1 {
            set_element(dst, None, keys, &v);
        }
        set_element(dst, Some(e), keys, &v);
    }
}

/// Merges the patch list `patch` into the base list `base`; `None` removes the list.
pub(super) fn merge_list(
    base: &Node,
    patch: &Node,
    sch: Option<Sch>,
    path: &mut Vec<String>,
    out: &mut Merged,
    depth: usize,
) -> Option<Node> {
    let keys: &[String] = sch.and_then(Sch::merge_keys).unwrap_or_default();
    let elem_sch = sch.and_then(Sch::elements);
    let pitems = patch.as_seq().unwrap_or_default();
    let mut base_items: Vec<Node> = base.as_seq().unwrap_or_default().to_vec();
    // The list-level directive: the first element carrying `$patch`, if it has no other key.
    if let Some(d) = pitems.iter().find(|i| i.get("$patch").is_some())
        && is_list_directive(d)
    {
        match directive(d) {
            Some("delete") => return None,
            Some("replace") => return clean(patch, path, false, sch, depth),
            _ => {}
        }
    }
    let pitems: Vec<&Node> = pitems.iter().filter(|i| !is_list_directive(i)).collect();
    // Identities: the patch's first, then the base's (a list of scalars: their texts).
    let scalar_keys = [String::new()];
    let mut ids: Vec<Vec<String>> = Vec::new();
    for n in pitems.iter().copied().chain(base_items.iter()) {
        let v = if keys.is_empty() {
            if n.as_scalar().is_none() {
                continue;
            }
            vec![text(n).to_string()]
        } else {
            values(n, keys)
        };
        if !ids.contains(&v) {
            ids.push(v);
        }
    }
    let keys: &[String] = if keys.is_empty() { &scalar_keys } else { keys };
    if keys.len() > 1 {
        merge_values(&mut ids);
    }
    let mut added: Vec<Node> = Vec::new();
    let mut last_keys = keys.to_vec();
    for id in &ids {
        let (vk, vv) = valid(&ids, id, keys);
        // The elements are looked up by this identity's own keys.
        let (mk, mv) = valid(std::slice::from_ref(id), id, keys);
        let find = |n: &Node| {
            if mk.first().is_some_and(String::is_empty) {
                n.as_scalar()
                    .is_some_and(|s| Some(s.text.as_str()) == mv.first().map(String::as_str))
            } else {
                matches(n, &mk, &mv)
            }
        };
        let bpos = base_items.iter().position(find);
        let p = pitems.iter().find(|n| find(n)).copied();
        let merged: Option<Node> = match (bpos, p) {
            (None, None) => None,
            (None, Some(p)) => {
                if directive(p) == Some("delete") {
                    None
                } else {
                    clean(p, path, false, elem_sch, depth + 1)
                }
            }
            (Some(b), None) => Some(base_items[b].clone()),
            (Some(b), Some(p)) => {
                if p.as_scalar().is_some() {
                    Some(p.clone())
                } else {
                    match directive(p) {
                        Some("delete") => None,
                        Some("replace") => clean(p, path, false, elem_sch, depth + 1),
                        _ => {
                            if base_items[b].as_map().is_some() {
                                merge_map(
                                    &mut base_items[b],
                                    p,
                                    path,
                                    false,
                                    elem_sch,
                                    out,
                                    depth + 1,
                                );
                            }
                            Some(base_items[b].clone())
                        }
                    }
                }
            }
        };
        last_keys.clone_from(&vk);
        let Some(mut val) =
            merged.filter(|v| !v.is_null() && !v.as_map().is_some_and(|m| m.is_empty()))
        else {
            set_element(&mut base_items, None, &vk, &vv);
            continue;
        };
        let span = val.span;
        for (k, v) in vk.iter().zip(&vv) {
            if !k.is_empty()
                && !v.is_empty()
                && val.get(k).is_none()
                && let Some(m) = val.as_map_mut()
            {
                m.push(Entry {
                    key: Node::string(span, k.as_str()),
                    value: Node::string(span, v.as_str()),
                });
            }
        }
        set_element(&mut added, Some(&val), &vk, &vv);
    }
    // kyaml then sets each base element into the result by its keys (an element that was
    // replaced by the patch's comes back as the base had it).
    append_list(&mut added, &base_items, &last_keys);
    Some(Node::seq(base.span, added))
}

#[cfg(test)]
mod tests {
    use super::super::smp::merge_resource;
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

    /// The output of `kubectl kustomize` (v1.32) on this base and patch.
    #[test]
    fn containers_merge_by_name_the_patchs_first_as_kubectl() {
        let mut base = node(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    metadata: {finalizers: [a, b]}\n    spec:\n      containers:\n      - {name: a, image: A, args: [x]}\n      - {name: b, image: B, env: [{name: X, value: '1'}]}\n      - {name: z, image: Z}\n      volumes: [{name: v1}, {name: v2}]\n",
        );
        let patch = node(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    metadata: {finalizers: [c, a]}\n    spec:\n      containers:\n      - {name: b, image: B2, env: [{name: Y, value: '2'}]}\n      - {name: c, image: C}\n      - {name: a, $patch: replace, image: A2}\n      volumes: [{name: v1, $patch: delete}]\n",
        );
        let sch = Sch::for_kind("apps/v1", "Deployment");
        merge_resource(&mut base, &patch, false, sch);
        let want = node(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    metadata: {finalizers: [c, a, b]}\n    spec:\n      containers:\n      - {name: b, image: B2, env: [{name: Y, value: '2'}, {name: X, value: '1'}]}\n      - {name: c, image: C}\n      - {name: a, image: A, args: [x]}\n      - {name: z, image: Z}\n      volumes: [{name: v2}]\n",
        );
        assert_eq!(base.to_json(), want.to_json());
    }

    #[test]
    fn service_ports_merge_by_port_and_protocol() {
        let mut base = node(
            "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 30900, targetPort: 30900, protocol: TCP}]\n",
        );
        let patch = node(
            "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 30901, targetPort: 30901}]\n",
        );
        merge_resource(&mut base, &patch, false, Sch::for_kind("v1", "Service"));
        let ports = base.get_path(&["spec", "ports"]).map(Node::to_json);
        assert_eq!(
            ports,
            Some(
                serde_json::json!([{"port": 30901, "targetPort": 30901}, {"port": 30900, "targetPort": 30900, "protocol": "TCP"}])
            )
        );
    }

    #[test]
    fn list_directives_replace_and_delete() {
        let base = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a}, {name: b}]}\n";
        let mut b = node(base);
        let p = node("spec: {containers: [{$patch: replace}, {name: c}]}");
        merge_resource(&mut b, &p, false, Sch::for_kind("v1", "Pod"));
        assert_eq!(
            b.get_path(&["spec", "containers"]).map(Node::to_json),
            Some(serde_json::json!([{"name": "c"}]))
        );
        let mut b = node(base);
        let p = node("spec: {containers: [{$patch: delete}]}");
        merge_resource(&mut b, &p, false, Sch::for_kind("v1", "Pod"));
        assert!(b.get_path(&["spec", "containers"]).is_none());
    }
}
