//! The `crd` target: a structural `CustomResourceDefinition` for playbooks, generated from
//! `schemas/playbook.schema.json`, and each playbook as a custom resource in normalized form.
//!
//! Kubernetes wants a structural schema (every node typed, no `$ref`, unions only as value
//! validations, `properties` and `additionalProperties` not together) and refuses keywords
//! of newer drafts. So, from the JSON Schema: `$ref`s are inlined; each union is normalized
//! to one form (a trigger is always `{event, input-schema}` or `{schedule, timezone}` merged
//! into one object, an approver always `{role}` or `{user}`, a condition always an object, an
//! expression always a string, a rollout threshold always a string); `const` becomes a
//! one-member `enum`; `additionalProperties: false` is dropped (the API server prunes unknown
//! fields instead of refusing them; `pbc check` is the authority), `additionalProperties:
//! true` becomes `x-kubernetes-preserve-unknown-fields`; `if`/`then`, `not`,
//! `dependentRequired`, `dependentSchemas`, `contains`, `propertyNames`, `default` and
//! `title` are dropped. The custom resources use the same normalized forms, with `compliance`,
//! `tags` and `description` moved from `metadata` (ObjectMeta has no such fields) into
//! `spec`.

use crate::{Settings, Unit, obj};
use serde_json::{Map, Value, json};

/// `schemas/playbook.schema.json`.
pub const PLAYBOOK_SCHEMA: &str = include_str!("../../schemas/playbook.schema.json");

/// The CRD's version name.
pub const VERSION: &str = "v1";

const DROP: &[&str] = &[
    "$schema",
    "$id",
    "$defs",
    "title",
    "default",
    "if",
    "then",
    "else",
    "not",
    "allOf",
    "dependentRequired",
    "dependentSchemas",
    "contains",
    "minContains",
    "maxContains",
    "propertyNames",
    "examples",
];

fn resolve_ref<'a>(root: &'a Value, r: &str) -> Option<&'a Value> {
    let ptr = r.strip_prefix('#')?;
    root.pointer(ptr)
}

/// Inlines `$ref` (siblings win) and returns the merged schema object.
fn deref(node: &Value, root: &Value, depth: usize) -> Map<String, Value> {
    let Some(m) = node.as_object() else {
        return Map::new();
    };
    let mut out = Map::new();
    if let Some(Value::String(r)) = m.get("$ref")
        && depth < 32
        && let Some(target) = resolve_ref(root, r)
    {
        out = deref(target, root, depth + 1);
    }
    for (k, v) in m {
        if k != "$ref" {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

fn type_of(m: &Map<String, Value>) -> Option<String> {
    match m.get("type") {
        Some(Value::String(t)) => Some(t.clone()),
        Some(Value::Array(ts)) => {
            let ts: Vec<&str> = ts.iter().filter_map(Value::as_str).collect();
            if ts.contains(&"string") {
                Some("string".into())
            } else {
                ts.first().map(|t| t.to_string())
            }
        }
        Some(_) => None,
        None if m.contains_key("properties") => Some("object".into()),
        None if m.contains_key("items") => Some("array".into()),
        None => match m.get("enum").or(m.get("const")) {
            Some(Value::Array(xs)) if xs.iter().all(Value::is_string) => Some("string".into()),
            Some(Value::String(_)) => Some("string".into()),
            _ => None,
        },
    }
}

/// Merges the branches of a union into one structural schema.
fn union(branches: &[Value], root: &Value, depth: usize) -> Map<String, Value> {
    let bs: Vec<Map<String, Value>> = branches.iter().map(|b| deref(b, root, depth + 1)).collect();
    let has_object = bs.iter().any(|b| type_of(b).as_deref() == Some("object"));
    let mut out = Map::new();
    if has_object {
        out.insert("type".into(), json!("object"));
        let mut props = Map::new();
        for b in &bs {
            if let Some(Value::Object(p)) = b.get("properties") {
                for (k, v) in p {
                    if !props.contains_key(k) {
                        props.insert(k.clone(), Value::Object(convert(v, root, depth + 1)));
                    }
                }
            }
        }
        out.insert("properties".into(), Value::Object(props));
    } else {
        // Scalars: strings (an expression may also be written as a boolean; normalized to a
        // string in the custom resource).
        out.insert("type".into(), json!("string"));
        let enums: Option<Vec<Value>> = bs
            .iter()
            .map(|b| b.get("enum").and_then(Value::as_array).cloned())
            .collect::<Option<Vec<_>>>()
            .map(|v| v.into_iter().flatten().collect());
        if let Some(e) = enums {
            out.insert("enum".into(), Value::Array(e));
        }
    }
    out
}

/// Converts one schema node into its structural form.
fn convert(node: &Value, root: &Value, depth: usize) -> Map<String, Value> {
    let m = deref(node, root, depth);
    let mut out = Map::new();
    if let Some(d) = m.get("description") {
        out.insert("description".into(), d.clone());
    }
    let union_of = m.get("oneOf").or(m.get("anyOf")).and_then(Value::as_array);
    if let Some(bs) = union_of {
        // A union of value validations only (no types in its branches) is kept as it is.
        let typed = bs.iter().any(|b| {
            let b = deref(b, root, depth + 1);
            type_of(&b).is_some()
        });
        if typed {
            for (k, v) in union(bs, root, depth) {
                out.insert(k, v);
            }
            return out;
        }
    }
    let ty = type_of(&m);
    if let Some(t) = &ty {
        out.insert("type".into(), json!(t));
    }
    for (k, v) in &m {
        if DROP.contains(&k.as_str()) || k == "description" || k == "type" {
            continue;
        }
        match k.as_str() {
            "const" => {
                out.insert("enum".into(), json!([v]));
            }
            "properties" => {
                let mut props = Map::new();
                if let Some(p) = v.as_object() {
                    for (pk, pv) in p {
                        props.insert(pk.clone(), Value::Object(convert(pv, root, depth + 1)));
                    }
                }
                out.insert("properties".into(), Value::Object(props));
            }
            "items" => {
                out.insert("items".into(), Value::Object(convert(v, root, depth + 1)));
            }
            "additionalProperties" => match v {
                Value::Bool(true) => {
                    out.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
                }
                Value::Bool(false) => {}
                schema if !m.contains_key("properties") => {
                    out.insert(
                        "additionalProperties".into(),
                        Value::Object(convert(schema, root, depth + 1)),
                    );
                }
                _ => {
                    out.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
                }
            },
            "oneOf" | "anyOf" => {
                // Value validations only (e.g. exactly one of `agent` and `action`).
                let bs: Vec<Value> = v
                    .as_array()
                    .map(|bs| {
                        bs.iter()
                            .map(|b| {
                                let mut b = b.as_object().cloned().unwrap_or_default();
                                b.retain(|k, _| k == "required");
                                Value::Object(b)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Array(bs));
            }
            "uniqueItems" => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// The `openAPIV3Schema` of the playbook CRD.
pub fn structural_schema() -> Value {
    let root: Value = serde_json::from_str(PLAYBOOK_SCHEMA).unwrap_or(Value::Null);
    let mut spec = convert(&json!({"$ref": "#/$defs/spec"}), &root, 0);
    // `description`, `compliance` and `tags` live in `spec` here (ObjectMeta has no such
    // fields).
    let meta = deref(&json!({"$ref": "#/$defs/metadata"}), &root, 0);
    let mut props = Map::new();
    if let Some(Value::Object(mp)) = meta.get("properties") {
        for k in ["description", "compliance", "tags"] {
            if let Some(v) = mp.get(k) {
                props.insert(k.into(), Value::Object(convert(v, &root, 1)));
            }
        }
    }
    if let Some(Value::Object(sp)) = spec.get("properties") {
        for (k, v) in sp {
            props.insert(k.clone(), v.clone());
        }
    }
    spec.insert("properties".into(), Value::Object(props));
    json!({
        "type": "object",
        "description": root.get("description").cloned().unwrap_or(json!("A playbook.")),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "The API version, `<group>/v1`."},
            "kind": {"type": "string", "description": "Always `Playbook`."},
            "metadata": {"type": "object"},
            "spec": Value::Object(spec),
        },
    })
}

/// The `CustomResourceDefinition` for playbooks in the configured group.
pub fn definition(settings: &Settings) -> Value {
    let group = &settings.crd_group;
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("playbooks.{group}"),
            "labels": {"app.kubernetes.io/managed-by": "pbc"},
            // Argo CD applies lower waves first and waits for them to be healthy (a CRD:
            // Established) before the next wave, which holds the custom resources.
            "annotations": {"argocd.argoproj.io/sync-wave": "-1"},
        },
        "spec": {
            "group": group,
            "names": {
                "kind": "Playbook",
                "listKind": "PlaybookList",
                "plural": "playbooks",
                "singular": "playbook",
                "shortNames": ["pb"],
            },
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION,
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": structural_schema()},
                "additionalPrinterColumns": [
                    {"name": "Risk", "type": "string", "jsonPath": ".spec.risk"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
            }],
        },
    })
}

/// Where the CRD goes under an output directory: `crd-definition/playbooks.<group>.yaml`,
/// apart from the custom resources in `crd/`. kubectl maps every object of one apply before
/// it creates any, so a directory holding both fails on a fresh cluster whatever the file
/// names: the definition is applied (and waited for) first.
pub fn definition_path(settings: &Settings) -> String {
    format!("crd-definition/playbooks.{}.yaml", settings.crd_group)
}

/// The CRD as YAML.
pub fn definition_yaml(settings: &Settings) -> String {
    crate::out::yaml(&definition(settings))
}

fn approver(v: &Value) -> Value {
    match v {
        Value::String(s) if s.contains('@') => json!({"user": s}),
        Value::String(s) => json!({"role": s}),
        other => other.clone(),
    }
}

fn approvers(m: &mut Map<String, Value>) {
    if let Some(Value::Array(xs)) = m.get_mut("approvers") {
        for x in xs.iter_mut() {
            *x = approver(x);
        }
    }
}

fn expr_string(m: &mut Map<String, Value>, key: &str) {
    if let Some(v) = m.get_mut(key) {
        match v {
            Value::Bool(b) => *v = json!(if *b { "true" } else { "false" }),
            Value::Number(n) => *v = json!(n.to_string()),
            _ => {}
        }
    }
}

/// The playbook as a custom resource of the configured group, in normalized form.
pub fn custom_resource(u: Unit<'_>, settings: &Settings) -> Value {
    let root = u.root.to_json();
    let md = root
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut spec = root
        .get("spec")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    // The unions, normalized.
    if let Some(Value::String(e)) = spec.get("trigger").cloned() {
        spec.insert("trigger".into(), json!({"event": e}));
    }
    approvers(&mut spec);
    if let Some(Value::Array(stages)) = spec.get_mut("stages") {
        for st in stages.iter_mut() {
            let Some(s) = st.as_object_mut() else {
                continue;
            };
            approvers(s);
            expr_string(s, "when");
            if let Some(Value::Array(cs)) = s.get_mut("conditions") {
                for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                    approvers(c);
                    expr_string(c, "if");
                }
            }
            if let Some(Value::Array(es)) = s.get_mut("escalation") {
                for e in es.iter_mut().filter_map(Value::as_object_mut) {
                    approvers(e);
                }
            }
        }
    }
    if let Some(Value::Array(ms)) = spec.get_mut("rollout").and_then(|r| r.get_mut("metrics")) {
        for m in ms.iter_mut().filter_map(Value::as_object_mut) {
            expr_string(m, "threshold");
        }
    }
    let mut out_spec = Map::new();
    for k in ["description", "compliance", "tags"] {
        if let Some(v) = md.get(k) {
            out_spec.insert(k.into(), v.clone());
        }
    }
    out_spec.extend(spec);
    let mut meta = Map::new();
    for k in ["name", "namespace", "labels", "annotations"] {
        if let Some(v) = md.get(k) {
            meta.insert(k.into(), v.clone());
        }
    }
    obj! {
        "apiVersion" => format!("{}/{VERSION}", settings.crd_group),
        "kind" => "Playbook",
        "metadata" => Value::Object(meta),
        "spec" => Value::Object(out_spec),
    }
}

/// The custom resource as YAML.
pub fn custom_resource_yaml(u: Unit<'_>, settings: &Settings) -> String {
    crate::out::yaml(&custom_resource(u, settings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(v: &Value, path: &str, f: &mut dyn FnMut(&str, &Map<String, Value>)) {
        let Some(m) = v.as_object() else { return };
        f(path, m);
        if let Some(Value::Object(p)) = m.get("properties") {
            for (k, c) in p {
                walk(c, &format!("{path}.{k}"), f);
            }
        }
        if let Some(i) = m.get("items") {
            walk(i, &format!("{path}[]"), f);
        }
        if let Some(a @ Value::Object(_)) = m.get("additionalProperties") {
            walk(a, &format!("{path}{{}}"), f);
        }
    }

    #[test]
    fn the_schema_is_structural() {
        let s = structural_schema();
        walk(&s, "", &mut |path, m| {
            let preserve = m.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
            assert!(m.contains_key("type") || preserve, "{path}: no type");
            assert!(!m.contains_key("$ref"), "{path}: $ref");
            assert!(
                !(m.contains_key("properties") && m.contains_key("additionalProperties")),
                "{path}: properties and additionalProperties"
            );
            assert_ne!(m.get("additionalProperties"), Some(&json!(false)), "{path}");
            for k in [
                "const",
                "if",
                "then",
                "$defs",
                "allOf",
                "not",
                "propertyNames",
            ] {
                assert!(!m.contains_key(k), "{path}: {k}");
            }
        });
        let trigger = &s["properties"]["spec"]["properties"]["trigger"];
        assert_eq!(trigger["type"], "object");
        assert!(trigger["properties"]["schedule"].is_object());
        assert!(trigger["properties"]["event"].is_object());
    }
}
