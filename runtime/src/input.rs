//! The trigger input, checked before a run starts: the playbook's input schema
//! (`trigger.input-schema` or `spec.input-schema`, the copy frozen with the playbook) fills in
//! its `default`s, then validates the input. An invalid input refuses the run with every
//! problem (JSON pointer and reason); nothing executes. `pbc run` and, later, `pbc serve`
//! (400 `invalid-input` with `details: [{path, reason}]`) share [`validate`].

use crate::guardrails::{Guard, Redactor};
use crate::load::Compiled;
use crate::{Error, Result};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};

/// At most this many problems are reported.
const MAX_PROBLEMS: usize = 50;
/// `properties` nested deeper than this get no defaults filled in.
const MAX_DEFAULT_DEPTH: usize = 32;

/// One reason the input does not match the schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InputProblem {
    /// A JSON pointer into the input (`/` for the input itself).
    pub path: String,
    pub reason: String,
}

impl std::fmt::Display for InputProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// The input schema's file name, when the playbook has one.
pub fn schema_name(c: &Compiled) -> Option<String> {
    c.playbook.spec.input_schema().map(|s| {
        s.value
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(&s.value)
            .to_string()
    })
}

/// The input schema as JSON (from the copy frozen with the playbook).
fn schema(c: &Compiled) -> Result<Option<Value>> {
    let Some(reference) = c.playbook.spec.input_schema() else {
        return Ok(None);
    };
    let text = c.frozen.files.get(&reference.value).ok_or_else(|| {
        Error::Usage(format!(
            "input schema `{}` is not in the frozen playbook",
            reference.value
        ))
    })?;
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return Ok(Some(v));
    }
    // YAML, through the compiler's loader.
    let loader = pbc_compiler::load::Loader::new(
        std::sync::Arc::new(pbc_compiler::fs::MemFs::new()),
        "",
        Default::default(),
    );
    let l = loader.load_text(reference.value.clone(), text.clone());
    if let Some(d) = l.diags.iter().find(|d| d.is_error()) {
        return Err(Error::Usage(format!(
            "input schema `{}` is neither JSON nor YAML: {}",
            reference.value, d.message
        )));
    }
    Ok(l.docs.first().map(|d| d.root.to_json()))
}

/// Fills in the schema's `default`s (`properties.NAME.default`, also in nested
/// `properties`) where the input's object lacks the key. Walks the schema breadth first,
/// without recursion, so a parent's default is in place before its children's.
fn apply_defaults(schema: &Value, input: &mut Value) {
    let mut defaults: Vec<(Vec<String>, Value)> = Vec::new();
    let mut queue: VecDeque<(&Value, Vec<String>)> = VecDeque::from([(schema, Vec::new())]);
    while let Some((node, path)) = queue.pop_front() {
        let Some(props) = node.get("properties").and_then(Value::as_object) else {
            continue;
        };
        for (k, sub) in props {
            let mut p = path.clone();
            p.push(k.clone());
            if let Some(d) = sub.get("default") {
                defaults.push((p.clone(), d.clone()));
            }
            if p.len() < MAX_DEFAULT_DEPTH {
                queue.push_back((sub, p));
            }
        }
    }
    for (path, value) in defaults {
        let Some((key, parent)) = path.split_last() else {
            continue;
        };
        let pointer: String = parent
            .iter()
            .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
            .collect();
        if let Some(obj) = input.pointer_mut(&pointer).and_then(Value::as_object_mut)
            && !obj.contains_key(key)
        {
            obj.insert(key.clone(), value);
        }
    }
}

/// Applies the input schema's defaults to `input` and validates it. Returns the problems
/// (none: the input is valid, or the playbook has no input schema). An error means the schema
/// itself cannot be used.
pub fn validate(c: &Compiled, input: &mut Value) -> Result<Vec<InputProblem>> {
    let Some(schema) = schema(c)? else {
        return Ok(Vec::new());
    };
    apply_defaults(&schema, input);
    let draft7 = schema
        .get("$schema")
        .and_then(Value::as_str)
        .is_some_and(|s| s.contains("draft-07"));
    let mut o = jsonschema::options();
    if draft7 {
        o = o.with_draft(jsonschema::Draft::Draft7);
    }
    let v = o.build(&schema).map_err(|e| {
        Error::Usage(format!(
            "input schema `{}` cannot be used to validate inputs: {e}",
            schema_name(c).unwrap_or_default()
        ))
    })?;
    // Reasons may quote the input: keep secrets and personal data out of them.
    let no_defs = BTreeMap::new();
    let redactor = Redactor::new(
        ["no-secrets-in-code", "pii-detection"]
            .iter()
            .filter_map(|n| Guard::resolve(n, &no_defs))
            .collect(),
    );
    Ok(v.iter_errors(input)
        .take(MAX_PROBLEMS)
        .map(|e| {
            let at = e.instance_path().to_string();
            let mut reason = redactor.text(&e.to_string());
            if reason.chars().count() > 300 {
                reason = format!("{}…", reason.chars().take(300).collect::<String>());
            }
            InputProblem {
                path: if at.is_empty() { "/".into() } else { at },
                reason,
            }
        })
        .collect())
}

/// [`validate`], with the problems as the refusal of a run (exit 1).
pub fn check(c: &Compiled, input: &mut Value) -> Result<()> {
    let problems = validate(c, input)?;
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "the input does not match the playbook's input schema ({}); nothing was run:\n{}",
        schema_name(c).unwrap_or_default(),
        problems
            .iter()
            .map(|p| format!("  input{}: {}", p.path.trim_end_matches('/'), p.reason))
            .collect::<Vec<_>>()
            .join("\n")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_fill_missing_keys_parents_first() {
        let schema = json!({"properties": {
            "a": {"default": 1},
            "o": {"default": {}, "properties": {"x": {"default": "d"}}},
            "p": {"properties": {"y": {"default": 2}}}
        }});
        let mut input = json!({"a": 5});
        apply_defaults(&schema, &mut input);
        assert_eq!(input, json!({"a": 5, "o": {"x": "d"}}));
        let mut input = json!({"p": {}});
        apply_defaults(&schema, &mut input);
        assert_eq!(input, json!({"a": 1, "o": {"x": "d"}, "p": {"y": 2}}));
        // Not an object: left alone (validation reports it).
        let mut input = json!([1]);
        apply_defaults(&schema, &mut input);
        assert_eq!(input, json!([1]));
    }
}
