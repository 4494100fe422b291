//! A kustomization's custom OpenAPI schema (`openapi: {path: FILE}`), and which schema is in
//! effect during a build.
//!
//! kustomize keeps one schema for the whole build, set once: by the top kustomization's
//! `openapi` (a `path`, or a built-in `version`), or else by the first kustomization that has
//! one, in the order it reads them (resources first, then components). A strategic merge
//! uses the schema in effect when it runs. A custom schema set by the top is used alone; one
//! set later is added over the built-in schema when kustomize had already read that, which
//! depends on what it did before. pbc follows the first case exactly, and in the second uses
//! the custom schema only where both readings agree (the merged kind is described by the
//! custom schema, whose references all resolve in it), refusing the rest. A schema set
//! before anything was read (a base's, listed first) is used alone, as the top's.

use super::{Data, Raw, RawField, Sch, Shape, index};
use crate::yaml::{Node, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The schema in effect in a build.
#[derive(Clone, Debug, Default)]
pub(crate) enum SchemaState {
    /// No kustomization set one yet: the built-in schema is used.
    #[default]
    Unset,
    /// `openapi.version` (the built-in schema).
    Builtin,
    /// `openapi.path`; `exact` when kustomize uses it alone: the top kustomization set it,
    /// or another did before anything was read.
    Custom { data: Arc<Data>, exact: bool },
}

impl SchemaState {
    pub(crate) fn is_unset(&self) -> bool {
        matches!(self, SchemaState::Unset)
    }

    pub(crate) fn is_custom(&self) -> bool {
        matches!(self, SchemaState::Custom { .. })
    }

    /// The schema of a resource of this kind for a strategic merge; `Err` when kustomize's
    /// result would depend on what it read before the schema was set.
    pub(crate) fn for_merge(&self, api_version: &str, kind: &str) -> Result<Option<Sch<'_>>, ()> {
        match self {
            SchemaState::Unset | SchemaState::Builtin => {
                Ok(Data::builtin().kind(api_version, kind))
            }
            SchemaState::Custom { data, exact: true } => Ok(data.kind(api_version, kind)),
            SchemaState::Custom { data, exact: false } => {
                if data.has_kind(api_version, kind) {
                    if data.unresolved {
                        Err(())
                    } else {
                        Ok(data.kind(api_version, kind))
                    }
                } else if Data::builtin().has_kind(api_version, kind) {
                    Err(())
                } else {
                    Ok(None)
                }
            }
        }
    }
}

fn str_of(n: &Node) -> Option<&str> {
    n.as_str()
}

/// The merge strategy of a property: its keys when its strategy includes `merge`.
fn merge_of(p: &Node) -> Option<Vec<String>> {
    let strategy = p.get("x-kubernetes-patch-strategy").and_then(str_of)?;
    if !strategy.split(',').any(|s| s == "merge") {
        return None;
    }
    if let Some(keys) = p.get("x-kubernetes-list-map-keys").and_then(Node::as_seq) {
        return Some(
            keys.iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect(),
        );
    }
    Some(
        p.get("x-kubernetes-patch-merge-key")
            .and_then(str_of)
            .map(|k| vec![k.to_string()])
            .unwrap_or_default(),
    )
}

fn is_array(p: &Node) -> bool {
    match p.get("type") {
        Some(t) => match &t.value {
            Value::Seq(items) => items.len() == 1 && items[0].as_str() == Some("array"),
            _ => t.as_str() == Some("array"),
        },
        None => false,
    }
}

/// The definition a property's schema names: its `$ref`, or the inline schema itself, queued
/// as a definition named `at`.
fn target_of<'a>(s: &'a Node, at: String, work: &mut Vec<(String, &'a Node)>) -> Option<String> {
    match s.get("$ref").and_then(str_of) {
        Some(r) => Some(r.strip_prefix("#/definitions/").unwrap_or(r).to_string()),
        None if s.get("properties").is_some() || s.get("additionalProperties").is_some() => {
            work.push((at.clone(), s));
            Some(at)
        }
        None => None,
    }
}

/// Parses a custom schema (the document of `openapi.path`) into merge keys. `Err` carries
/// why kustomize would fail on it.
pub(crate) fn parse_custom(root: &Node) -> Result<Data, String> {
    let Some(m) = root.as_map() else {
        return Err(format!(
            "an OpenAPI schema must be a mapping, not {}",
            root.type_name()
        ));
    };
    let mut raw = Raw::default();
    let Some(defs) = m.iter().find(|e| e.key_str() == "definitions") else {
        return Ok(index(&raw));
    };
    if defs.value.is_null() {
        return Ok(index(&raw));
    }
    let Some(defs) = defs.value.as_map() else {
        return Err(format!(
            "`definitions` must be a mapping, not {}",
            defs.value.type_name()
        ));
    };
    // Inline schemas become definitions of their own, named after their place; a work list
    // rather than recursion, for any depth.
    let mut work: Vec<(String, &Node)> = Vec::new();
    for d in defs {
        let name = d.key_str().to_string();
        if d.value.as_map().is_none() {
            return Err(format!("the definition `{name}` must be a mapping"));
        }
        for g in d
            .value
            .get("x-kubernetes-group-version-kind")
            .and_then(Node::as_seq)
            .unwrap_or_default()
        {
            let get = |k: &str| g.get(k).and_then(Node::as_str).unwrap_or("");
            let (group, version, kind) = (get("group"), get("version"), get("kind"));
            let api = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            raw.kinds.insert((api, kind.to_string()), name.clone());
        }
        work.push((name, &d.value));
    }
    while let Some((name, schema)) = work.pop() {
        let mut fields = HashMap::new();
        for p in schema
            .get("properties")
            .and_then(Node::as_map)
            .unwrap_or_default()
        {
            let pname = p.key_str();
            let here = format!("{name}\u{1f}{pname}");
            let v = &p.value;
            let field = if v.get("$ref").is_some() {
                RawField {
                    shape: Shape::Object,
                    target: target_of(v, here, &mut work),
                    merge: None,
                }
            } else if v.get("items").is_some() || merge_of(v).is_some() {
                let target = match v.get("items") {
                    Some(items) if is_array(v) => target_of(items, here, &mut work),
                    _ => None,
                };
                RawField {
                    shape: Shape::List,
                    target,
                    merge: merge_of(v),
                }
            } else if let Some(a) = v
                .get("additionalProperties")
                .filter(|a| a.as_map().is_some())
            {
                RawField {
                    shape: Shape::Map,
                    target: target_of(a, here, &mut work),
                    merge: None,
                }
            } else if v.get("properties").is_some() {
                RawField {
                    shape: Shape::Object,
                    target: target_of(v, here, &mut work),
                    merge: None,
                }
            } else {
                continue;
            };
            fields.insert(pname.to_string(), field);
        }
        raw.defs.insert(name, fields);
    }
    Ok(index(&raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::{FileId, SourceFile};

    fn node(text: &str) -> Node {
        let file = SourceFile::new(FileId(0), "s.json".into(), text.into());
        let mut diags = Vec::new();
        let docs = crate::yaml::parse(&file, &crate::yaml::Limits::default(), &mut diags);
        docs.into_iter().next().map(|d| d.root).expect("a document")
    }

    #[test]
    fn inline_and_referenced_lists_merge_by_the_schema_keys() {
        let d = parse_custom(&node(
            r##"{"definitions": {
              "c": {"x-kubernetes-group-version-kind": [{"group": "example.com", "version": "v1", "kind": "C"}],
                    "properties": {"spec": {"properties": {"items": {"type": "array", "items": {"$ref": "#/definitions/i"},
                      "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "id"}}}}},
              "i": {"properties": {"ports": {"type": "array", "items": {"type": "object"},
                      "x-kubernetes-patch-strategy": "merge", "x-kubernetes-list-map-keys": ["port", "protocol"]}}}
            }}"##,
        ))
        .expect("parses");
        assert!(!d.unresolved);
        let items = d
            .kind("example.com/v1", "C")
            .and_then(|s| s.field("spec"))
            .and_then(|s| s.field("items"))
            .expect("items");
        assert_eq!(items.merge_keys(), Some(&["id".to_string()][..]));
        let ports = items
            .elements()
            .and_then(|e| e.field("ports"))
            .expect("ports");
        assert_eq!(
            ports.merge_keys().map(<[String]>::to_vec),
            Some(vec!["port".to_string(), "protocol".to_string()])
        );
        assert!(d.kind("apps/v1", "Deployment").is_none());
    }

    #[test]
    fn invalid_forms_are_errors_and_a_dangling_reference_is_noted() {
        assert!(parse_custom(&node("[1, 2]")).is_err());
        assert!(parse_custom(&node("definitions: [1]")).is_err());
        let d = parse_custom(&node(
            r##"{"definitions": {"c": {"properties": {"spec": {"$ref": "#/definitions/nope"}}}}}"##,
        ))
        .expect("parses");
        assert!(d.unresolved);
    }
}
