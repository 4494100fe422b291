//! Rego policies, with the embedded `regorus` interpreter: modules and data documents are
//! loaded once; each evaluation clones the prepared engine, sets the input and evaluates the
//! query under a time limit.

use crate::{Decision, ErrorKind, FileText, PolicyError, Verdict};
use serde_json::Value;
use std::num::NonZeroU32;
use std::time::Duration;

pub(crate) struct Rego {
    engine: regorus::Engine,
    query: String,
}

/// Reads regorus's located message (`--> FILE:LINE:COL`, the source line, a caret, then
/// `error: MESSAGE`) into a [`PolicyError`].
pub(crate) fn located(text: &str, kind: ErrorKind) -> PolicyError {
    let mut file = None;
    let mut line_col = None;
    for l in text.lines() {
        if let Some(rest) = l.trim_start().strip_prefix("--> ") {
            let mut parts = rest.rsplitn(3, ':');
            let col = parts.next().and_then(|c| c.trim().parse::<u32>().ok());
            let line = parts.next().and_then(|c| c.trim().parse::<u32>().ok());
            if let (Some(line), Some(col), Some(f)) = (line, col, parts.next()) {
                file = Some(f.to_string());
                line_col = Some((line, col));
            }
            break;
        }
    }
    let message = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| {
            text.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or(text)
                .to_string()
        });
    PolicyError {
        file,
        range: None,
        line_col,
        message,
        kind,
    }
}

fn to_regorus(v: &Value) -> Result<regorus::Value, String> {
    regorus::Value::from_json_str(&v.to_string()).map_err(|e| e.to_string())
}

impl Rego {
    pub(crate) fn compile(
        modules: &[FileText],
        data: &[FileText],
        query: &str,
    ) -> Result<Rego, Vec<PolicyError>> {
        let mut engine = regorus::Engine::new();
        let mut errors = Vec::new();
        for m in modules {
            if let Err(e) = engine.add_policy(m.path.clone(), m.text.clone()) {
                let mut pe = located(&e.to_string(), ErrorKind::RegoCompile);
                pe.file.get_or_insert_with(|| m.path.clone());
                errors.push(pe);
            }
        }
        for d in data {
            let parsed = serde_json::from_str::<Value>(&d.text)
                .map_err(|e| e.to_string())
                .and_then(|v| to_regorus(&v));
            match parsed.and_then(|v| engine.add_data(v).map_err(|e| e.to_string())) {
                Ok(()) => {}
                Err(e) => errors.push(PolicyError {
                    file: Some(d.path.clone()),
                    range: None,
                    line_col: None,
                    message: format!("cannot merge it under `data`: {e}"),
                    kind: ErrorKind::DataInvalid,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        // Compiling happens on the first evaluation: do it now, with an empty input.
        engine.set_input(regorus::Value::new_object());
        if let Err(e) = engine.eval_query(query.to_string(), false) {
            let mut pe = located(&e.to_string(), ErrorKind::RegoCompile);
            if pe
                .file
                .as_ref()
                .is_some_and(|f| !modules.iter().any(|m| &m.path == f))
            {
                // The query itself (its own pseudo-file).
                pe.file = None;
                pe.line_col = None;
                pe.message = format!("the query `{query}`: {}", pe.message);
            }
            return Err(vec![pe]);
        }
        Ok(Rego {
            engine,
            query: query.to_string(),
        })
    }

    /// Evaluates the query with `input`; see [`interpret`] for the mapping.
    pub(crate) fn evaluate(&self, input: &Value, timeout_ms: u64) -> Decision {
        let mut engine = self.engine.clone();
        engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
            limit: Duration::from_millis(timeout_ms),
            check_interval: NonZeroU32::MIN,
        });
        match to_regorus(input) {
            Ok(v) => engine.set_input(v),
            Err(e) => return Decision::deny(format!("the input cannot be given to Rego: {e}")),
        }
        let results = match engine.eval_query(self.query.clone(), false) {
            Ok(r) => r,
            Err(e) => {
                let pe = located(&e.to_string(), ErrorKind::RegoCompile);
                let at = match (&pe.file, pe.line_col) {
                    (Some(f), Some((l, c))) => format!(" at {f}:{l}:{c}"),
                    _ => String::new(),
                };
                return Decision::deny(format!(
                    "evaluation error{at}: {} (an error denies)",
                    pe.message
                ));
            }
        };
        let value = results
            .result
            .first()
            .and_then(|r| r.expressions.first())
            .map(|e| e.value.clone());
        match value {
            None | Some(regorus::Value::Undefined) => Decision::deny(format!(
                "`{}` is undefined for this input (undefined denies)",
                self.query
            )),
            Some(v) => match v.to_json_str() {
                Ok(text) => match serde_json::from_str::<Value>(&text) {
                    Ok(j) => interpret(&self.query, &j),
                    Err(e) => Decision::deny(format!("the query's value cannot be read: {e}")),
                },
                Err(e) => Decision::deny(format!("the query's value cannot be read: {e}")),
            },
        }
    }
}

fn message(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(m) => match m.get("msg").or(m.get("message")) {
            Some(Value::String(s)) => s.clone(),
            _ => v.to_string(),
        },
        other => other.to_string(),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items.iter().map(message).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// A query's value as a decision: an object `{"decision", "reasons", "approvers"}`, a
/// boolean (allow / deny), or a set of deny messages (conftest's form: empty allows).
pub(crate) fn interpret(query: &str, v: &Value) -> Decision {
    match v {
        Value::Bool(true) => Decision::allow(),
        Value::Bool(false) => Decision::deny(format!("`{query}` is false")),
        Value::Array(items) if items.is_empty() => Decision::allow(),
        Value::Array(items) => Decision {
            decision: Verdict::Deny,
            reasons: items.iter().map(message).collect(),
            approvers: Vec::new(),
        },
        Value::Object(m) => {
            let verdict = m
                .get("decision")
                .and_then(Value::as_str)
                .and_then(Verdict::parse);
            match verdict {
                Some(decision) => {
                    let mut reasons = strings(m.get("reasons"));
                    if decision == Verdict::Deny && reasons.is_empty() {
                        reasons.push(format!("`{query}` decided deny"));
                    }
                    Decision {
                        decision,
                        reasons,
                        approvers: strings(m.get("approvers")),
                    }
                }
                None => Decision::deny(format!(
                    "`{query}` is an object without a `decision` of `allow`, `deny` or `require-approval`"
                )),
            }
        }
        other => Decision::deny(format!(
            "`{query}` is {other}, not a decision (an object with `decision`, a boolean, or a set of deny messages)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn file(path: &str, text: &str) -> FileText {
        FileText {
            path: path.into(),
            text: text.into(),
        }
    }

    #[test]
    fn compile_errors_are_located() {
        let m = file("p.rego", "package p\n\nallow if {\n  input.x ==\n}\n");
        let Err(errs) = Rego::compile(&[m], &[], "data.p.allow") else {
            panic!("compiles");
        };
        assert_eq!(errs[0].file.as_deref(), Some("p.rego"));
        assert_eq!(errs[0].line_col.map(|l| l.0), Some(5), "{errs:?}");
    }

    #[test]
    fn the_three_shapes_and_undefined() {
        let m = file(
            "p.rego",
            "package p\n\ndeny contains msg if {\n  input.x > 1\n  msg := sprintf(\"x is %v\", [input.x])\n}\n\nallow if input.x == 1\n\ndecision := {\"decision\": \"require-approval\", \"approvers\": [\"ops\"]} if input.x == 3\n",
        );
        let r = Rego::compile(std::slice::from_ref(&m), &[], "data.p.deny").expect("compiles");
        assert_eq!(r.evaluate(&json!({"x": 1}), 1000).decision, Verdict::Allow);
        let d = r.evaluate(&json!({"x": 2}), 1000);
        assert_eq!(d.reasons, ["x is 2"]);
        let r = Rego::compile(std::slice::from_ref(&m), &[], "data.p.allow").expect("compiles");
        assert_eq!(r.evaluate(&json!({"x": 1}), 1000).decision, Verdict::Allow);
        assert_eq!(r.evaluate(&json!({"x": 2}), 1000).decision, Verdict::Deny);
        let r = Rego::compile(&[m], &[], "data.p.decision").expect("compiles");
        let d = r.evaluate(&json!({"x": 3}), 1000);
        assert_eq!(d.decision, Verdict::RequireApproval);
        assert_eq!(d.approvers, ["ops"]);
        let d = r.evaluate(&json!({"x": 4}), 1000);
        assert_eq!(d.decision, Verdict::Deny);
        assert!(d.reasons[0].contains("undefined"), "{d:?}");
    }
}
