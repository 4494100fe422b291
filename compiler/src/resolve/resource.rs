//! Resources as the build holds them: their ids as kustomize compares them, and the
//! small edits of their YAML every transformer makes.

use super::fieldspec;
use crate::span::Span;
use crate::yaml::{Entry, Node, Text};
use std::collections::BTreeMap;

/// A resource id as kustomize compares them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct ResId {
    pub(super) group: Text,
    pub(super) version: Text,
    pub(super) kind: Text,
    pub(super) ns: Text,
    pub(super) name: Text,
}

pub(super) fn text_at<'a>(n: &'a Node, path: &[&str]) -> &'a str {
    n.get_path(path)
        .and_then(|v| v.as_scalar())
        .map(|s| s.text.as_str())
        .unwrap_or("")
}

impl ResId {
    pub(super) fn of(n: &Node) -> ResId {
        let api = text_at(n, &["apiVersion"]);
        let (group, version) = match api.split_once('/') {
            Some((g, v)) => (g.into(), v.into()),
            None => (Text::default(), api.into()),
        };
        ResId {
            group,
            version,
            kind: text_at(n, &["kind"]).into(),
            ns: text_at(n, &["metadata", "namespace"]).into(),
            name: text_at(n, &["metadata", "name"]).into(),
        }
    }

    pub(super) fn namespaced(&self) -> bool {
        !fieldspec::cluster_scoped(&self.group, &self.version, &self.kind)
    }

    /// The namespace as kustomize compares it: `""` and `default` are the same.
    pub(super) fn effective_ns(&self) -> &str {
        if !self.namespaced() {
            "_non_namespaceable_"
        } else if self.ns.is_empty() || self.ns == "default" {
            "default"
        } else {
            &self.ns
        }
    }

    pub(super) fn same_gvk(&self, o: &ResId) -> bool {
        self.group == o.group && self.version == o.version && self.kind == o.kind
    }

    pub(super) fn equals(&self, o: &ResId) -> bool {
        self.same_gvk(o) && self.name == o.name && self.effective_ns() == o.effective_ns()
    }

    /// The id with its effective namespace: two ids are [`ResId::equals`] exactly when
    /// their keys are equal, so duplicates are found through a hash map.
    pub(super) fn key(mut self) -> ResId {
        let ns = self.effective_ns();
        if ns != self.ns {
            self.ns = ns.into();
        }
        self
    }

    /// `Playbook code-review-agent` (with its namespace, if any).
    pub(super) fn describe(&self) -> String {
        let kind = if self.kind.is_empty() {
            "resource"
        } else {
            &self.kind
        };
        if self.ns.is_empty() {
            format!("{kind} `{}`", self.name)
        } else {
            format!("{kind} `{}` in namespace `{}`", self.name, self.ns)
        }
    }

    pub(super) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

pub(super) struct Res {
    pub(super) node: Node,
    pub(super) orig: ResId,
    /// Ids the resource had before transformers changed them.
    pub(super) prev: Vec<ResId>,
    pub(super) uid: u64,
    pub(super) name_spans: Vec<Span>,
    /// See [`DocOrigin::quiet`].
    pub(super) quiet: Vec<Span>,
    /// See [`DocOrigin::removed`].
    pub(super) removed: Vec<super::Removal>,
    /// The YAML nodes this resource accounts for (the node budget): counted when it was
    /// read, grown by the patches applied to it.
    pub(super) nodes: u64,
    /// The name prefixes and suffixes transformers gave it, innermost first (name
    /// references prefer a resource renamed like the referrer).
    pub(super) prefixes: Vec<Text>,
    pub(super) suffixes: Vec<Text>,
    /// A generated ConfigMap or Secret whose name gets kustomize's hash suffix.
    pub(super) needs_hash: bool,
}

impl Res {
    pub(super) fn cur(&self) -> ResId {
        ResId::of(&self.node)
    }

    pub(super) fn store_prev(&mut self) {
        let c = self.cur();
        if self.prev.last() != Some(&c) {
            self.prev.push(c);
        }
    }

    pub(super) fn is_playbook(&self) -> bool {
        text_at(&self.node, &["apiVersion"]) == "agenticops/v1"
            && text_at(&self.node, &["kind"]) == "Playbook"
    }

    pub(super) fn meta_map(&self, field: &str) -> BTreeMap<String, String> {
        self.node
            .get_path(&["metadata", field])
            .and_then(|m| m.as_map())
            .map(|m| {
                m.iter()
                    .filter_map(|e| {
                        Some((
                            e.key_str().to_string(),
                            e.value.as_scalar()?.text.as_str().to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn name_node(&self) -> Option<&Node> {
        self.node.get_path(&["metadata", "name"])
    }
}

/// Sets `key: value` in the mapping `n` (replacing the value in place if the key exists).
pub(super) fn set_entry(n: &mut Node, key: Node, value: Node) {
    if let Some(m) = n.as_map_mut() {
        if let Some(e) = m
            .iter_mut()
            .find(|e| e.key_str() == key.as_scalar().map(|s| s.text.as_str()).unwrap_or(""))
        {
            e.value = value;
        } else {
            m.push(Entry { key, value });
        }
    }
}

pub(super) fn remove_entry(n: &mut Node, key: &str) {
    if let Some(m) = n.as_map_mut() {
        m.retain(|e| e.key_str() != key);
    }
}

/// The `metadata` mapping of a resource, created (with `span`) if missing.
pub(super) fn metadata_mut(doc: &mut Node, span: Span) -> Option<&mut Node> {
    let m = doc.as_map_mut()?;
    let i = match m.iter().position(|e| e.key_str() == "metadata") {
        Some(i) => i,
        None => {
            m.push(Entry {
                key: Node::string(span, "metadata"),
                value: Node::map(span, Vec::new()),
            });
            m.len() - 1
        }
    };
    let md = &mut m[i].value;
    if md.as_map().is_none() {
        *md = Node::map(span, Vec::new());
    }
    Some(md)
}

pub(super) fn restore(doc: &mut Node, path: &[&str], value: Option<Node>) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut n = doc;
    for p in parents {
        let Some(m) = n.as_map_mut() else {
            return;
        };
        let i = match m.iter().position(|e| e.key_str() == *p) {
            Some(i) => i,
            None => {
                let Some(v) = &value else {
                    return;
                };
                m.push(Entry {
                    key: Node::string(v.span, *p),
                    value: Node::map(v.span, Vec::new()),
                });
                m.len() - 1
            }
        };
        n = &mut m[i].value;
    }
    match value {
        Some(v) => {
            if n.get(last).is_some_and(|cur| cur == &v) {
                return;
            }
            set_entry(n, Node::string(v.span, *last), v);
        }
        None => remove_entry(n, last),
    }
}
