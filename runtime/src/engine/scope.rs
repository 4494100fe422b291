//! What a stage's conditions, `when`, params and prompt read: the run's scope (input, outputs
//! of the stages before it, built-ins), a stage's `context`, and `${…}` interpolation.

use super::{Live, Runtime};
use crate::clock::rfc3339;
use crate::eval::{self, Scope};
use crate::report::{ApprovalStatus, StageStatus};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Values refs read: outputs by stem and stage name, `input`, and the interpolation
/// built-ins.
pub(super) struct RunScope {
    pub(super) roots: BTreeMap<String, Value>,
}

impl Scope for RunScope {
    fn root(&self, name: &str) -> Option<&Value> {
        self.roots.get(name)
    }
}

/// Replaces `${…}` in every string of `v`. A string that is exactly one interpolation takes
/// the value itself (a number stays a number); otherwise values are spliced in as text. An
/// absent value is null (alone) or empty text.
pub(crate) fn interpolate(v: &Value, scope: &dyn Scope) -> Value {
    use pbc_compiler::expr::interp::{Segment, scan};
    match v {
        Value::String(s) if s.contains("${") => {
            let (segs, _) = scan(s);
            let lookup = |seg: &pbc_compiler::expr::interp::Interpolation| -> Option<Value> {
                let (e, errs) = seg.parse();
                let e = e.filter(|_| errs.is_empty())?;
                let pbc_compiler::expr::ExprKind::Ref { segments } = &e.kind else {
                    return None;
                };
                let path: Vec<String> = segments.iter().map(|(n, _)| n.clone()).collect();
                eval::lookup(scope, &path).cloned()
            };
            if let [Segment::Interpolation(one)] = segs.as_slice() {
                return lookup(one).unwrap_or(Value::Null);
            }
            let mut out = String::new();
            for seg in &segs {
                match seg {
                    Segment::Literal { text, .. } => out.push_str(text),
                    Segment::Interpolation(i) => match lookup(i) {
                        Some(Value::String(x)) => out.push_str(&x),
                        Some(Value::Null) | None => {}
                        Some(x) => out.push_str(&x.to_string()),
                    },
                }
            }
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| interpolate(x, scope)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), interpolate(x, scope)))
                .collect(),
        ),
        x => x.clone(),
    }
}

impl Runtime {
    /// The values a condition, `when` or interpolation of stage `i` may read.
    pub(super) fn scope(&self, live: &Live, i: usize, with_self: bool) -> RunScope {
        let pb = &live.c.playbook;
        let mut roots: BTreeMap<String, Value> = BTreeMap::new();
        roots.insert("input".into(), live.run.input.clone());
        roots.insert("playbook".into(), json!({"name": pb.name()}));
        roots.insert(
            "stage".into(),
            json!({"name": pb.spec.stages[i].name.value}),
        );
        // One execution id for a whole workflow: each of its stages is a run of its own, so
        // `${execution.id}` is the workflow's uid there (the same in every stage's pod).
        let execution = live
            .run
            .frozen
            .workflow_uid
            .as_ref()
            .unwrap_or(&live.run.id);
        roots.insert(
            "execution".into(),
            json!({"id": execution, "start-time": rfc3339(live.run.created_at)}),
        );
        let visible = |j: usize| {
            let s = &live.stages[j];
            (s.status == StageStatus::Passed
                && (live.c.analysis.graph.before(j, i) || live.run.frozen.only_stage.is_some()))
                || (with_self && j == i)
        };
        for (j, s) in live.stages.iter().enumerate() {
            if let (true, Some(o)) = (visible(j), &s.output) {
                roots.insert(s.name.clone(), o.clone());
            }
        }
        for o in &live.c.analysis.outputs {
            if let (Some(stem), true, Some(out)) =
                (&o.stem, visible(o.stage), &live.stages[o.stage].output)
            {
                roots.insert(stem.clone(), out.clone());
            }
        }
        if let Some(aid) = &live.stages[i].approval_id
            && let Ok(a) = self.approval(aid)
            && a.status == ApprovalStatus::Approved
        {
            roots.insert(
                "approver".into(),
                json!({"email": a.decided_by, "role": a.decided_role}),
            );
        }
        RunScope { roots }
    }

    /// `context`: each entry mapped to that (passed) stage's output.
    pub(super) fn context(&self, live: &Live, i: usize) -> Value {
        let pb = &live.c.playbook;
        let mut m = serde_json::Map::new();
        for c in &pb.spec.stages[i].context {
            let v = c.value.as_str();
            let stem = pbc_compiler::sema::stem(v);
            let by_file = pb.spec.stages.iter().position(|x| {
                x.output_schema.as_ref().is_some_and(|o| {
                    o.value == v
                        || o.value.rsplit('/').next() == Some(v)
                        || pbc_compiler::sema::stem(&o.value) == stem
                })
            });
            let j = by_file.or_else(|| pb.spec.stages.iter().position(|x| x.name.value == v));
            let out = j
                .and_then(|j| live.stages.get(j))
                .filter(|s| s.status == StageStatus::Passed)
                .and_then(|s| s.output.clone())
                .unwrap_or(Value::Null);
            m.insert(v.to_string(), out);
        }
        Value::Object(m)
    }
}
