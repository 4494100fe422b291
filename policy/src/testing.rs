//! Policy tests (`pbc policy test`): Rego `test_` rules, as `opa test` runs them, and YAML
//! case files for every kind of policy (an input, the decision expected).
//!
//! A case file names a configured policy and lists cases:
//!
//! ```yaml
//! policy: financial-transaction-limit
//! cases:
//!   - name: the sixth $1,000 refund of a day is denied
//!     input: {action: "payments:refund", params: {amount: 1000, customer_id: c-42}}
//!     history:                       # executed stages of the same action, by age
//!       - {age: 1h, params: {amount: 5000, customer_id: c-42}}
//!     expect: deny                   # or {decision, reasons (each a substring), approvers}
//! ```
//!
//! The input is laid over a default document (`schemas/policy-input.schema.json`), so a case
//! names only what matters to it.

use crate::{Decision, FileText, HistoryRow, PolicySet, aggregates};
use serde_json::{Value, json};

/// One test's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct TestResult {
    /// Where it comes from (a Rego file, a case file).
    pub file: String,
    pub name: String,
    pub ok: bool,
    /// Why it failed.
    pub message: Option<String>,
}

/// The time cases are evaluated at (a fixed instant: results never depend on the clock).
pub const TEST_NOW_MS: i64 = 1_800_000_000_000;

/// Runs the `test_` rules of `modules` (every package), with `data` merged under `data`.
pub fn rego_tests(modules: &[FileText], data: &[FileText]) -> Vec<TestResult> {
    let mut engine = regorus::Engine::new();
    let mut out = Vec::new();
    let mut tests: Vec<(String, String)> = Vec::new();
    for m in modules {
        match engine.add_policy(m.path.clone(), m.text.clone()) {
            Ok(pkg) => {
                for line in m.text.lines() {
                    let t = line.trim_start();
                    if !line.starts_with(char::is_whitespace) && t.starts_with("test_") {
                        let name: String = t
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        let rule = format!("{pkg}.{name}");
                        if !tests.iter().any(|(_, r)| *r == rule) {
                            tests.push((m.path.clone(), rule));
                        }
                    }
                }
            }
            Err(e) => out.push(TestResult {
                file: m.path.clone(),
                name: "(compile)".into(),
                ok: false,
                message: Some(
                    crate::rego::located(&e.to_string(), crate::ErrorKind::RegoCompile).message,
                ),
            }),
        }
    }
    for d in data {
        let v = serde_json::from_str::<Value>(&d.text)
            .map_err(|e| e.to_string())
            .and_then(|v| regorus::Value::from_json_str(&v.to_string()).map_err(|e| e.to_string()));
        if let Err(e) = v.and_then(|v| engine.add_data(v).map_err(|e| e.to_string())) {
            out.push(TestResult {
                file: d.path.clone(),
                name: "(data)".into(),
                ok: false,
                message: Some(e),
            });
        }
    }
    if !out.is_empty() {
        return out;
    }
    for (file, rule) in tests {
        let mut e = engine.clone();
        e.set_input(regorus::Value::new_object());
        let (ok, message) = match e.eval_rule(rule.clone()) {
            Ok(regorus::Value::Bool(true)) => (true, None),
            Ok(regorus::Value::Undefined) => (false, Some("undefined".to_string())),
            Ok(v) => (false, Some(format!("{v}"))),
            Err(err) => (
                false,
                Some(crate::rego::located(&err.to_string(), crate::ErrorKind::RegoCompile).message),
            ),
        };
        out.push(TestResult {
            file,
            name: rule,
            ok,
            message,
        });
    }
    out
}

/// The input document a case starts from.
pub fn default_input() -> Value {
    json!({
        "playbook": "policy-test",
        "environment": null,
        "stage": "policy-test",
        "kind": "action",
        "action": null,
        "agent": null,
        "params": {},
        "requester": "requester@example.com",
        "approvals": [],
        "risk": "low",
        "compliance": [],
        "history": {},
        "time": "2027-01-15T08:00:00Z",
    })
}

/// A duration such as `90s`, `2h`, `1d` in milliseconds.
fn age_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = n.parse().ok()?;
    let per = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(per)
}

/// The input of a case (its `input` over the default) and its history rows.
pub fn case_input(case: &Value) -> Result<(Value, Vec<HistoryRow>), String> {
    let mut input = default_input();
    if let Some(Value::Object(m)) = case.get("input") {
        for (k, v) in m {
            input[k] = v.clone();
        }
    } else if case.get("input").is_some() {
        return Err("`input` must be a mapping".into());
    }
    if input["agent"].is_string() && case["input"].get("kind").is_none() {
        input["kind"] = json!("agent");
    }
    let mut rows = Vec::new();
    for h in case
        .get("history")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let age = h
            .get("age")
            .and_then(Value::as_str)
            .and_then(age_ms)
            .ok_or("each `history` item needs an `age` such as `2h`")?;
        rows.push(HistoryRow {
            at: TEST_NOW_MS - age,
            params: h.get("params").cloned().unwrap_or(json!({})),
        });
    }
    if case["input"].get("history").is_none() {
        input["history"] = aggregates(&rows, &input["params"], TEST_NOW_MS);
    }
    Ok((input, rows))
}

/// Whether `got` is what `expect` says (a decision name, or `{decision, reasons,
/// approvers}`, each reason a substring of one of the decision's).
pub fn matches(expect: &Value, got: &Decision) -> Result<(), String> {
    let (decision, reasons, approvers) = match expect {
        Value::String(s) => (Some(s.as_str()), None, None),
        Value::Object(m) => (
            m.get("decision").and_then(Value::as_str),
            m.get("reasons").and_then(Value::as_array),
            m.get("approvers").and_then(Value::as_array),
        ),
        _ => return Err("`expect` must be a decision or a mapping with `decision`".into()),
    };
    let Some(decision) = decision else {
        return Err("`expect` names no `decision`".into());
    };
    let shown = || serde_json::to_string(&got.to_json()).unwrap_or_default();
    if decision != got.decision.as_str() {
        return Err(format!("expected {decision}, got {}", shown()));
    }
    for r in reasons.into_iter().flatten() {
        let r = r.as_str().unwrap_or_default();
        if !got.reasons.iter().any(|g| g.contains(r)) {
            return Err(format!("no reason contains {r:?}: {}", shown()));
        }
    }
    if let Some(a) = approvers {
        let want: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
        if want != got.approvers {
            return Err(format!("expected approvers {want:?}: {}", shown()));
        }
    }
    Ok(())
}

/// Runs a case file (its JSON form) against the configured policies.
pub fn case_file(file: &str, doc: &Value, set: &PolicySet) -> Vec<TestResult> {
    let fail = |name: &str, m: String| TestResult {
        file: file.to_string(),
        name: name.to_string(),
        ok: false,
        message: Some(m),
    };
    let Some(policy) = doc.get("policy").and_then(Value::as_str) else {
        return vec![fail("(file)", "a case file needs `policy: NAME`".into())];
    };
    let compiled = match set.policies.get(policy).map(|p| p.compile()) {
        None => {
            return vec![fail(
                "(file)",
                format!("no configured policy is named `{policy}`"),
            )];
        }
        Some(Err(errs)) => {
            return vec![fail(
                "(file)",
                format!(
                    "policy `{policy}` does not compile: {}",
                    errs.first().map(|e| e.message.as_str()).unwrap_or("")
                ),
            )];
        }
        Some(Ok(c)) => c,
    };
    let mut out = Vec::new();
    for (n, case) in doc
        .get("cases")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = case
            .get("name")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| format!("case {}", n + 1));
        let result = case_input(case).and_then(|(input, rows)| {
            let got = compiled.evaluate(&input, &rows, TEST_NOW_MS);
            matches(case.get("expect").unwrap_or(&Value::Null), &got)
        });
        out.push(TestResult {
            file: file.to_string(),
            name: format!("{policy}: {name}"),
            ok: result.is_ok(),
            message: result.err(),
        });
    }
    if out.is_empty() {
        out.push(fail("(file)", "a case file needs `cases: [...]`".into()));
    }
    out
}
