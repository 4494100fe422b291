//! Cedar policies, with `cedar-policy`. The stage's facts become a request:
//!
//! - principal `Agent::"<agent>"` (an agent stage) or `Agent::"<playbook>"` (an action
//!   stage: the playbook acts), with attributes `role` (`"agent"`), `playbook`, `requester`;
//! - action `Action::"<LAYER:FUNCTION>"`, or `Action::"agent:<name>"` for an agent stage;
//! - resource `Stage::"<playbook>/<stage>"`, its attributes the stage's params (numbers that
//!   are not whole become strings, nulls are left out) and `playbook`, `stage`;
//! - context: `environment`, `requester`, `risk`, `kind`, `compliance`, `params`,
//!   `approvals` (how many granted), `has_human_approval`, `history`, `time`, `phase`
//!   (`before`, or `output` for a policy with `check-output`) and `output` (then).
//!
//! Allow is allow. A deny whose determining policies are all forbids annotated
//! `@pbc("require-approval")` asks for an approval instead (approvers from
//! `@approvers("role-a, ann@example.com")`); any other deny denies, with each determining
//! policy's `@reason`, else its `@id`, else its policy id. An evaluation error denies.

use crate::{Decision, ErrorKind, FileText, PolicyError, Verdict};
use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, EntityUid, PolicySet, Request,
    Schema, ValidationMode, Validator,
};
use serde_json::{Map, Value, json};
use std::str::FromStr;

pub(crate) struct Cedar {
    policies: PolicySet,
    entities: Entities,
}

/// Every located problem of a miette diagnostic and its related ones.
fn problems(d: &dyn miette::Diagnostic, file: &str, kind: ErrorKind) -> Vec<PolicyError> {
    let mut out = Vec::new();
    let mut one = |d: &dyn miette::Diagnostic| {
        let mut message = d.to_string();
        if let Some(h) = d.help() {
            message = format!("{message} ({h})");
        }
        let range = d
            .labels()
            .and_then(|mut l| l.next())
            .map(|l| (l.offset(), l.offset() + l.len()));
        out.push(PolicyError {
            file: Some(file.to_string()),
            range,
            line_col: None,
            message,
            kind,
        });
    };
    one(d);
    if let Some(rel) = d.related() {
        for r in rel {
            one(r);
        }
    }
    out
}

fn schema_of(f: &FileText) -> Result<Schema, Vec<PolicyError>> {
    if f.path.ends_with(".json") {
        Schema::from_json_str(&f.text).map_err(|e| problems(&e, &f.path, ErrorKind::CedarParse))
    } else {
        Schema::from_cedarschema_str(&f.text)
            .map(|(s, _warnings)| s)
            .map_err(|e| problems(&e, &f.path, ErrorKind::CedarParse))
    }
}

/// JSON as Cedar reads it: no nulls, whole numbers only (others become strings).
fn cedar_json(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => json!(i),
            None => json!(n.to_string()),
        }),
        Value::Array(items) => Some(Value::Array(items.iter().filter_map(cedar_json).collect())),
        Value::Object(m) => Some(Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with("__"))
                .filter_map(|(k, v)| cedar_json(v).map(|v| (k.clone(), v)))
                .collect(),
        )),
        other => Some(other.clone()),
    }
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl Cedar {
    pub(crate) fn compile(
        policies: &FileText,
        schema: Option<&FileText>,
        entities: Option<&FileText>,
    ) -> Result<Cedar, Vec<PolicyError>> {
        let pset = PolicySet::from_str(&policies.text)
            .map_err(|e| problems(&e, &policies.path, ErrorKind::CedarParse))?;
        let schema = schema.map(schema_of).transpose()?;
        if let Some(s) = &schema {
            let result = Validator::new(s.clone()).validate(&pset, ValidationMode::Strict);
            let errs: Vec<PolicyError> = result
                .validation_errors()
                .flat_map(|e| problems(e, &policies.path, ErrorKind::CedarInvalid))
                .collect();
            if !errs.is_empty() {
                return Err(errs);
            }
        }
        let entities = match entities {
            Some(f) => Entities::from_json_str(&f.text, schema.as_ref())
                .map_err(|e| problems(&e, &f.path, ErrorKind::CedarParse))?,
            None => Entities::empty(),
        };
        Ok(Cedar {
            policies: pset,
            entities,
        })
    }

    pub(crate) fn evaluate(&self, input: &Value) -> Decision {
        match self.decide(input) {
            Ok(d) => d,
            Err(e) => Decision::deny(format!("Cedar: {e} (an error denies)")),
        }
    }

    fn decide(&self, input: &Value) -> Result<Decision, String> {
        let playbook = text(input, "playbook");
        let stage = text(input, "stage");
        let (principal_id, action_id) = match (
            input.get("agent").and_then(Value::as_str),
            input.get("action").and_then(Value::as_str),
        ) {
            (Some(agent), _) => (agent.to_string(), format!("agent:{agent}")),
            (None, Some(action)) => (playbook.clone(), action.to_string()),
            _ => (playbook.clone(), String::new()),
        };
        let uid = |ty: &str, id: &str| {
            EntityUid::from_json(json!({"type": ty, "id": id})).map_err(|e| e.to_string())
        };
        let principal = uid("Agent", &principal_id)?;
        let action = uid("Action", &action_id)?;
        let resource = uid("Stage", &format!("{playbook}/{stage}"))?;
        let params = input
            .get("params")
            .and_then(cedar_json)
            .unwrap_or(json!({}));
        let mut attrs = params.as_object().cloned().unwrap_or_default();
        attrs.insert("playbook".into(), json!(playbook));
        attrs.insert("stage".into(), json!(stage));
        let requester = text(input, "requester");
        let facts = json!([
            {"uid": {"type": "Agent", "id": principal_id},
             "attrs": {"role": "agent", "playbook": playbook, "requester": requester},
             "parents": []},
            {"uid": {"type": "Stage", "id": format!("{playbook}/{stage}")},
             "attrs": Value::Object(attrs), "parents": []},
        ]);
        let approvals = input
            .get("approvals")
            .and_then(Value::as_array)
            .map(Vec::len)
            .unwrap_or(0);
        let mut ctx = Map::new();
        for k in [
            "environment",
            "requester",
            "risk",
            "kind",
            "compliance",
            "time",
            "phase",
            "output",
        ] {
            if let Some(v) = input.get(k).and_then(cedar_json) {
                ctx.insert(k.into(), v);
            }
        }
        ctx.insert("params".into(), params);
        ctx.insert("approvals".into(), json!(approvals));
        ctx.insert("has_human_approval".into(), json!(approvals > 0));
        if let Some(h) = input.get("history").and_then(cedar_json) {
            ctx.insert("history".into(), h);
        }
        let entities = self
            .entities
            .clone()
            .add_entities(
                Entities::from_json_value(facts, None).map_err(|e| e.to_string())?,
                None,
            )
            .map_err(|e| e.to_string())?;
        let context =
            Context::from_json_value(Value::Object(ctx), None).map_err(|e| e.to_string())?;
        let request =
            Request::new(principal, action, resource, context, None).map_err(|e| e.to_string())?;
        let response = Authorizer::new().is_authorized(&request, &self.policies, &entities);
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(ToString::to_string)
            .collect();
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        if response.decision() == CedarDecision::Allow {
            return Ok(Decision::allow());
        }
        let determining: Vec<_> = response.diagnostics().reason().cloned().collect();
        if determining.is_empty() {
            return Ok(Decision::deny(format!(
                "no Cedar policy permits `{action_id}` on stage `{stage}`"
            )));
        }
        let annotation = |id: &cedar_policy::PolicyId, key: &str| {
            self.policies.annotation(id, key).map(str::to_string)
        };
        let ask = determining
            .iter()
            .all(|id| annotation(id, "pbc").as_deref() == Some("require-approval"));
        let reasons: Vec<String> = determining
            .iter()
            .map(|id| {
                annotation(id, "reason")
                    .or_else(|| annotation(id, "id"))
                    .unwrap_or_else(|| format!("forbidden by Cedar policy {id}"))
            })
            .collect();
        if ask {
            let mut approvers = Vec::new();
            for id in &determining {
                for a in annotation(id, "approvers").unwrap_or_default().split(',') {
                    let a = a.trim().to_string();
                    if !a.is_empty() && !approvers.contains(&a) {
                        approvers.push(a);
                    }
                }
            }
            return Ok(Decision {
                decision: Verdict::RequireApproval,
                reasons,
                approvers,
            });
        }
        Ok(Decision {
            decision: Verdict::Deny,
            reasons,
            approvers: Vec::new(),
        })
    }
}
