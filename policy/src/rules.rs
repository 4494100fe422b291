//! Declarative rules: a limit on one stage's amount (`amount_max`), on the total over a
//! rolling 24 hours of executed stages of the same action (`daily_aggregate_max`,
//! optionally per value of a `group-by` param), and allow/deny lists of param values.
//! Both limits are inclusive. A rule that is not met does what its `enforcement` says.

use crate::history::{HistoryRow, as_number, number};
use crate::{Decision, Verdict};
use pbc_compiler::config::{Enforcement, RuleDef};
use serde_json::Value;

const DAY_MS: i64 = 86_400_000;

/// Whether a rule's `resource` names this stage.
fn applies(rule: &RuleDef, input: &Value) -> bool {
    let Some(pattern) = rule.resource.as_deref() else {
        return true;
    };
    let subject = match (
        input.get("action").and_then(Value::as_str),
        input.get("agent").and_then(Value::as_str),
    ) {
        (Some(a), _) => a.to_string(),
        (None, Some(a)) => format!("agent:{a}"),
        _ => return false,
    };
    match pattern.strip_suffix('*') {
        Some(prefix) => subject.starts_with(prefix),
        None => subject == pattern,
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn show_number(f: f64) -> String {
    show(&number(f))
}

/// The problems of one rule for this stage.
fn violations(
    rule: &RuleDef,
    id: &str,
    input: &Value,
    history: &[HistoryRow],
    now_ms: i64,
) -> Vec<String> {
    let params = input.get("params").cloned().unwrap_or(Value::Null);
    let mut out = Vec::new();
    if let Some(param) = &rule.param
        && (rule.amount_max.is_some() || rule.daily_aggregate_max.is_some())
    {
        let Some(amount) = params.get(param).and_then(as_number) else {
            out.push(format!(
                "{id}: param `{param}` is missing or not a number, so its limits cannot be checked"
            ));
            return out;
        };
        if let Some(max) = rule.amount_max
            && amount > max
        {
            out.push(format!(
                "{id}: {param} {} is over amount_max {}",
                show_number(amount),
                show_number(max)
            ));
        }
        if let Some(max) = rule.daily_aggregate_max {
            let group = rule.group_by.as_ref().map(|g| (g, params.get(g).cloned()));
            let since = now_ms - DAY_MS;
            let done: f64 = history
                .iter()
                .filter(|r| r.at > since && r.at <= now_ms)
                .filter(|r| match &group {
                    Some((g, v)) => r.params.get(g.as_str()) == v.as_ref(),
                    None => true,
                })
                .filter_map(|r| r.params.get(param).and_then(as_number))
                .sum();
            let total = done + amount;
            if total > max {
                let per = match &group {
                    Some((g, Some(v))) => format!(" for {g} {}", show(v)),
                    Some((g, None)) => format!(" for no {g}"),
                    None => String::new(),
                };
                out.push(format!(
                    "{id}: {param} over the last 24h{per} would be {} ({} executed + {} now), over daily_aggregate_max {}",
                    show_number(total),
                    show_number(done),
                    show_number(amount),
                    show_number(max)
                ));
            }
        }
    }
    for (p, allowed) in &rule.allow {
        let v = params.get(p).cloned().unwrap_or(Value::Null);
        if !allowed.contains(&v) {
            out.push(format!("{id}: {p} `{}` is not in the allow-list", show(&v)));
        }
    }
    for (p, denied) in &rule.deny {
        if let Some(v) = params.get(p)
            && denied.contains(v)
        {
            out.push(format!("{id}: {p} `{}` is in the deny-list", show(v)));
        }
    }
    out
}

/// Decides a stage with declarative rules.
pub(crate) fn evaluate(
    rules: &[RuleDef],
    input: &Value,
    history: &[HistoryRow],
    now_ms: i64,
) -> Decision {
    let (mut deny, mut ask, mut warn, mut approvers) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, rule) in rules.iter().enumerate() {
        if !applies(rule, input) {
            continue;
        }
        let id = rule.id.clone().unwrap_or_else(|| format!("rule {}", i + 1));
        let found = violations(rule, &id, input, history, now_ms);
        if found.is_empty() {
            continue;
        }
        match rule.enforcement {
            Enforcement::Deny => deny.extend(found),
            Enforcement::RequireApproval => {
                ask.extend(found);
                for a in &rule.approvers {
                    if !approvers.contains(a) {
                        approvers.push(a.clone());
                    }
                }
            }
            Enforcement::Warn => warn.extend(found),
        }
    }
    if !deny.is_empty() {
        return Decision {
            decision: Verdict::Deny,
            reasons: deny,
            approvers: Vec::new(),
        };
    }
    if !ask.is_empty() {
        return Decision {
            decision: Verdict::RequireApproval,
            reasons: ask,
            approvers,
        };
    }
    Decision {
        decision: Verdict::Allow,
        reasons: warn,
        approvers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limit() -> Vec<RuleDef> {
        vec![RuleDef {
            id: Some("financial-transaction-limit".into()),
            resource: Some("payments:*".into()),
            param: Some("amount".into()),
            amount_max: Some(1000.0),
            daily_aggregate_max: Some(5000.0),
            group_by: Some("customer".into()),
            ..RuleDef::default()
        }]
    }

    fn input(amount: Value, customer: &str) -> Value {
        json!({"action": "payments:refund", "agent": null, "params": {"amount": amount, "customer": customer}})
    }

    #[test]
    fn limits_are_inclusive_and_grouped() {
        let now = 10 * DAY_MS;
        let rows: Vec<HistoryRow> = (0..4)
            .map(|i| HistoryRow {
                at: now - 1000 * (i + 1),
                params: json!({"amount": 1000, "customer": "c1"}),
            })
            .collect();
        let d = evaluate(&limit(), &input(json!(1000), "c1"), &rows, now);
        assert_eq!(d.decision, Verdict::Allow, "{d:?}");
        let mut five = rows.clone();
        five.push(HistoryRow {
            at: now - 10,
            params: json!({"amount": 1000, "customer": "c1"}),
        });
        let d = evaluate(&limit(), &input(json!(1000), "c1"), &five, now);
        assert_eq!(d.decision, Verdict::Deny);
        assert!(d.reasons[0].contains("6000"), "{:?}", d.reasons);
        // Another customer has its own total; a day later the window is empty.
        let d = evaluate(&limit(), &input(json!(1000), "c2"), &five, now);
        assert_eq!(d.decision, Verdict::Allow);
        let d = evaluate(&limit(), &input(json!(1000), "c1"), &five, now + DAY_MS);
        assert_eq!(d.decision, Verdict::Allow);
        let d = evaluate(&limit(), &input(json!(10000), "c3"), &[], now);
        assert_eq!(d.decision, Verdict::Deny);
        assert!(d.reasons[0].contains("over amount_max 1000"));
        let d = evaluate(&limit(), &input(json!("lots"), "c3"), &[], now);
        assert_eq!(d.decision, Verdict::Deny);
        // Other actions are not this rule's business.
        let other = json!({"action": "db:query", "params": {}});
        assert_eq!(
            evaluate(&limit(), &other, &[], now).decision,
            Verdict::Allow
        );
    }

    #[test]
    fn lists_and_enforcements() {
        let rules = vec![
            RuleDef {
                allow: [("currency".to_string(), vec![json!("USD")])].into(),
                enforcement: Enforcement::RequireApproval,
                approvers: vec!["finance".into()],
                ..RuleDef::default()
            },
            RuleDef {
                id: Some("embargo".into()),
                deny: [("country".to_string(), vec![json!("XX")])].into(),
                enforcement: Enforcement::Warn,
                ..RuleDef::default()
            },
        ];
        let i = json!({"action": "a:b", "params": {"currency": "EUR", "country": "XX"}});
        let d = evaluate(&rules, &i, &[], 0);
        assert_eq!(d.decision, Verdict::RequireApproval);
        assert_eq!(d.approvers, ["finance"]);
        let i = json!({"action": "a:b", "params": {"currency": "USD", "country": "XX"}});
        let d = evaluate(&rules, &i, &[], 0);
        assert_eq!(d.decision, Verdict::Allow);
        assert_eq!(d.reasons, ["embargo: country `XX` is in the deny-list"]);
    }
}
