//! The `langgraph` target: the `pbc.langgraph/v1` JSON of
//! `docs/langgraph-format.md`, which `targets/python/pbc_langgraph.py` compiles
//! into a LangGraph `StateGraph` with `interrupt_before` at every approval node.
//!
//! Per stage: a node named after the stage (`agent` or `action`, with the stage's `when`
//! evaluated inside it, so a skipped stage records itself and joins still fire). Gates:
//! an `action:` stage's approval node `<stage>__approval` precedes it, an
//! `agent:` stage's follows it and leads to the route node `<stage>__done`, where the stage's
//! dependents start. A gate that does not always ask (a conditional gate, or a gated stage
//! with a `when`) is a conditional edge to the approval node: from the single node before the
//! gate, or from a route node `<stage>__gate`; the lowered branch is fail safe (an absent
//! value asks). An approval node goes on only when `approvals['<id>'] == 'approved'`, else
//! to `__end__`. A `risk: medium` agent stage gets `<stage>__risk_approval` before it, a
//! `risk: medium` playbook `pbc__playbook_approval` before its first stages. A `risk: high`
//! stage is a `route` node that records the refusal and ends its branch; the stages that need
//! it are not emitted (listed in `metadata.blocked`).

use crate::cond::{self, Src};
use crate::{Unit, obj};
use pbc_compiler::diag::Diagnostic;
use pbc_compiler::model::{Playbook, Stage, Trigger};
use pbc_compiler::sema::Analysis;
use pbc_compiler::sema::lower::{Cond, Valid, simplify};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The format tag.
pub const FORMAT: &str = "pbc.langgraph/v1";

const PLAYBOOK_GATE: &str = "pbc__playbook_approval";
const START: &str = "pbc__start";

/// The `langgraph` document of one playbook. Conditions that can only be lowered to their
/// safe side are reported as `PB6002` warnings.
pub fn emit(u: Unit<'_>, diags: &mut Vec<Diagnostic>) -> Value {
    Builder::new(u, diags).build()
}

/// The `langgraph` target as pretty JSON.
pub fn emit_json(u: Unit<'_>, diags: &mut Vec<Diagnostic>) -> String {
    crate::out::json(&emit(u, diags))
}

struct Builder<'a, 'd> {
    u: Unit<'a>,
    pb: &'a Playbook,
    an: &'a Analysis,
    diags: &'d mut Vec<Diagnostic>,
    kinds: BTreeMap<Vec<String>, Valid>,
    nodes: Vec<Value>,
    edges: Vec<Value>,
    cond_edges: Vec<(String, Value)>,
    interrupts: Vec<String>,
}

/// Where a stage's part of the graph starts and ends.
#[derive(Clone, Debug)]
struct Segment {
    /// What the stage's predecessors connect to.
    entry: String,
    /// Where the stage's dependents start.
    exit: String,
    /// True if the predecessor's exit already routes into this segment (a conditional edge).
    wired: bool,
}

const STAGE_META_SKIP: &[&str] = &[
    "name",
    "agent",
    "action",
    "when",
    "needs",
    "approval",
    "approvers",
    "conditions",
    "sla",
    "escalation",
    "notification",
];

impl<'a, 'd> Builder<'a, 'd> {
    fn new(u: Unit<'a>, diags: &'d mut Vec<Diagnostic>) -> Self {
        Builder {
            u,
            pb: u.playbook,
            an: u.analysis,
            diags,
            kinds: cond::read_kinds(u.analysis),
            nodes: Vec::new(),
            edges: Vec::new(),
            cond_edges: Vec::new(),
            interrupts: Vec::new(),
        }
    }

    fn value_of(&self, path: &[String]) -> String {
        let mut s = match path.first().and_then(|r| cond::source(self.pb, self.an, r)) {
            Some(Src::Stage(j)) => format!(
                "outputs[{}]",
                cond::py_str(&self.pb.spec.stages[j].name.value)
            ),
            Some(Src::Input) => "input".to_string(),
            None => return "null".into(),
        };
        for seg in &path[1..] {
            s.push_str(&format!("[{}]", cond::py_str(seg)));
        }
        s
    }

    /// Renders a condition; `gate` says which way is safe if it cannot be rendered exactly.
    fn render(&mut self, c: &Cond, gate: bool, s: &Stage) -> Option<String> {
        let c = if cond::reads_duration(c, &self.kinds) {
            let what = if gate { "gate of" } else { "`when` of" };
            let span = if gate {
                s.conditions
                    .first()
                    .map(|c| c.span)
                    .or(s.approval.as_ref().map(|a| a.span))
                    .unwrap_or(s.name.span)
            } else {
                s.when.as_ref().map(|w| w.text.span).unwrap_or(s.name.span)
            };
            self.diags.push(
                Diagnostic::new(
                    &cond::CONSERVATIVE_LOWERING,
                    span,
                    format!(
                        "the {what} stage `{}` compares a duration, which the langgraph target cannot read: it {}",
                        s.name.value,
                        if gate { "always asks for approval there" } else { "always skips the stage there" }
                    ),
                )
                .with_help("compare a number of seconds instead, or use the argo target, which is exact"),
            );
            Cond::Const(gate)
        } else {
            c.clone()
        };
        match c {
            Cond::Const(true) => None,
            c => Some(cond::py_expr(&c, &self.kinds, &|p| self.value_of(p))),
        }
    }

    fn stage_json(&self, i: usize) -> serde_json::Map<String, Value> {
        match self
            .u
            .root
            .get_path(&["spec", "stages"])
            .and_then(|n| n.as_seq())
            .and_then(|v| v.get(i))
            .map(|n| n.to_json())
        {
            Some(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        }
    }

    fn stage_meta(&self, i: usize) -> Value {
        let s = &self.pb.spec.stages[i];
        let mut m = serde_json::Map::new();
        m.insert("stage".into(), json!(s.name.value));
        for (k, v) in self.stage_json(i) {
            if !STAGE_META_SKIP.contains(&k.as_str()) {
                m.insert(k, v);
            }
        }
        Value::Object(m)
    }

    fn gate_meta(&self, i: usize, gate: &str) -> Value {
        let s = &self.pb.spec.stages[i];
        let mut m = serde_json::Map::new();
        m.insert("stage".into(), json!(s.name.value));
        m.insert("gate".into(), json!(gate));
        // The risk approval asks the stage's approvers; the approval gate, those of the
        // branch that fires (a `risk: medium` action's gate asks even when none does).
        let mut cases =
            cond::approver_cases(self.an, i, s, s.action().is_some() && cond::medium(s));
        if gate != "approval" {
            cases = cases.pop().into_iter().collect();
        }
        if cond::same_approvers(&cases) {
            let first = cases.first().map(|c| c.approvers.as_slice()).unwrap_or(&[]);
            m.insert("approvers".into(), cond::approvers_json(first));
        } else {
            m.insert(
                "approvers_by_branch".into(),
                self.approvers_by_branch(&cases),
            );
        }
        let j = self.stage_json(i);
        for k in [
            "sla",
            "escalation",
            "notification",
            "approval",
            "conditions",
        ] {
            if let Some(v) = j.get(k) {
                m.insert(k.into(), v.clone());
            }
        }
        Value::Object(m)
    }

    /// `[{"when": EXPR, "branch": …, "approvers": […]}, …, {"branch": "otherwise", …}]`: the
    /// first whose `when` holds (none: always) names who approves. A branch reading a
    /// duration, which the format cannot read, is taken as holding (its gate asks already).
    fn approvers_by_branch(&self, cases: &[cond::ApproverCase]) -> Value {
        let mut out = Vec::new();
        for c in cases {
            let when = match &c.when {
                Cond::Const(false) => continue,
                Cond::Const(true) => None,
                w if cond::reads_duration(w, &self.kinds) => None,
                w => Some(cond::py_expr(w, &self.kinds, &|p| self.value_of(p))),
            };
            let always = when.is_none();
            out.push(obj! {
                "when" => when,
                "branch" => c.branch.clone(),
                "approvers" => cond::approvers_json(&c.approvers),
            });
            if always {
                break;
            }
        }
        Value::Array(out)
    }

    fn approval_node(&mut self, id: &str, meta: Value, next: &str) {
        self.nodes
            .push(json!({"id": id, "kind": "approval", "metadata": meta}));
        self.interrupts.push(id.to_string());
        self.cond_edges.push((
            id.to_string(),
            json!({
                "source": id,
                "branches": [{"when": format!("approvals[{}] == 'approved'", cond::py_str(id)), "target": next}],
                "default": "__end__",
            }),
        ));
    }

    fn route(&mut self, id: &str, stage: &str) {
        self.nodes
            .push(json!({"id": id, "kind": "route", "metadata": {"stage": stage}}));
    }

    fn has_cond_edge(&self, id: &str) -> bool {
        self.cond_edges.iter().any(|(s, _)| s == id)
    }

    /// A gate before `next`: an approval node `approval`, asked when `guard` holds. Returns
    /// the segment's entry and whether a predecessor's exit was used as the branching point.
    #[allow(clippy::too_many_arguments)]
    fn pre_gate(
        &mut self,
        approval: &str,
        route_id: &str,
        meta: Value,
        guard: Option<String>,
        next: &str,
        stage: &str,
        single_pred: Option<&str>,
    ) -> (String, bool) {
        self.approval_node(approval, meta, next);
        let Some(g) = guard else {
            return (approval.to_string(), false);
        };
        let (source, wired) = match single_pred {
            Some(p) if !self.has_cond_edge(p) => (p.to_string(), true),
            _ => {
                self.route(route_id, stage);
                (route_id.to_string(), false)
            }
        };
        self.cond_edges.push((
            source.clone(),
            json!({"source": source, "branches": [{"when": g, "target": approval}], "default": next}),
        ));
        if wired {
            (approval.to_string(), true)
        } else {
            (source, false)
        }
    }

    fn build(mut self) -> Value {
        let pb = self.pb;
        let n = pb.spec.stages.len();
        // Refused stages, and the stages blocked behind them.
        let refused: Vec<bool> = pb
            .spec
            .stages
            .iter()
            .map(|s| cond::refused(pb, s))
            .collect();
        let mut blocked = vec![false; n];
        for &i in &self.an.graph.order {
            blocked[i] = self
                .an
                .graph
                .deps(i)
                .iter()
                .any(|&j| refused[j] || blocked[j]);
        }
        let mut segs: Vec<Option<Segment>> = vec![None; n];
        let order = self.an.graph.order.clone();
        for &i in &order {
            if blocked[i] {
                continue;
            }
            let s = &pb.spec.stages[i];
            let name = s.name.value.clone();
            if refused[i] {
                let mut meta = serde_json::Map::new();
                meta.insert("stage".into(), json!(name));
                meta.insert("refused".into(), json!(true));
                meta.insert("runbook".into(), Value::Object(self.stage_json(i)));
                self.nodes
                    .push(json!({"id": name, "kind": "route", "metadata": meta}));
                segs[i] = Some(Segment {
                    entry: name.clone(),
                    exit: name,
                    wired: false,
                });
                continue;
            }
            let deps = self.an.graph.deps(i);
            let single_pred: Option<String> = match deps.as_slice() {
                [p] => segs[*p].as_ref().map(|sg| sg.exit.clone()),
                _ => None,
            };
            let when = cond::when_condition(self.an, i, s);
            let approval = cond::approval_condition(self.an, i, s);
            let is_agent = s.agent().is_some();
            let gate = if !is_agent && cond::medium(s) {
                Some(Cond::Const(true))
            } else {
                approval
            }
            .map(|g| simplify(Cond::And(vec![when.clone(), g])));
            // The stage's own node.
            let mut node = obj! {
                "id" => name.clone(),
                "kind" => if is_agent { "agent" } else { "action" },
            };
            if let Value::Object(m) = &mut node {
                match &s.executor {
                    Some(pbc_compiler::model::Executor::Agent(a)) => {
                        m.insert("agent".into(), json!(a.value));
                    }
                    Some(pbc_compiler::model::Executor::Action(a)) => {
                        m.insert("action".into(), json!(a.value.to_string()));
                    }
                    None => {}
                }
                if s.when.is_some() {
                    let w = self
                        .render(&when, false, s)
                        .unwrap_or_else(|| "true".into());
                    m.insert("when".into(), json!(w));
                }
                m.insert("metadata".into(), self.stage_meta(i));
            }
            self.nodes.push(node);
            let mut entry = name.clone();
            let mut wired = false;
            let exit;
            if is_agent {
                if cond::medium(s) {
                    let guard = self.render(&when, true, s);
                    let meta = self.gate_meta(i, "risk");
                    let (e, w) = self.pre_gate(
                        &format!("{name}__risk_approval"),
                        &format!("{name}__risk_gate"),
                        meta,
                        guard,
                        &name,
                        &name,
                        single_pred.as_deref(),
                    );
                    entry = e;
                    wired = w;
                }
                match &gate {
                    Some(g) => {
                        let done = format!("{name}__done");
                        let approval_id = format!("{name}__approval");
                        let meta = self.gate_meta(i, "approval");
                        self.approval_node(&approval_id, meta, &done);
                        match self.render(g, true, s) {
                            None => self.edges.push(json!({"source": name, "target": approval_id})),
                            Some(w) => self.cond_edges.push((
                                name.clone(),
                                json!({"source": name, "branches": [{"when": w, "target": approval_id}], "default": done}),
                            )),
                        }
                        self.route(&done, &name);
                        exit = done;
                    }
                    None => exit = name.clone(),
                }
            } else {
                if let Some(g) = &gate {
                    let guard = self.render(g, true, s);
                    let meta = self.gate_meta(i, "approval");
                    let (e, w) = self.pre_gate(
                        &format!("{name}__approval"),
                        &format!("{name}__gate"),
                        meta,
                        guard,
                        &name,
                        &name,
                        single_pred.as_deref(),
                    );
                    entry = e;
                    wired = w;
                }
                exit = name.clone();
            }
            segs[i] = Some(Segment { entry, exit, wired });
        }
        // Edges between stages.
        let mut roots: Vec<String> = Vec::new();
        for &i in &order {
            let Some(seg) = segs[i].clone() else { continue };
            let deps = self.an.graph.deps(i);
            if deps.is_empty() {
                roots.push(seg.entry.clone());
                continue;
            }
            if seg.wired {
                continue;
            }
            let sources: Vec<String> = deps
                .iter()
                .filter_map(|&j| segs[j].as_ref().map(|sg| sg.exit.clone()))
                .collect();
            match sources.as_slice() {
                [] => roots.push(seg.entry.clone()),
                [one] => self.edges.push(json!({"source": one, "target": seg.entry})),
                many => self
                    .edges
                    .push(json!({"source": many, "target": seg.entry})),
            }
        }
        // Finish points: exits that nothing emitted follows.
        // (One pass over the edges: a search per stage would be quadratic in the stages.)
        let mut followed = vec![false; n];
        for &k in &order {
            if segs[k].is_some() {
                for j in self.an.graph.deps(k) {
                    followed[j] = true;
                }
            }
        }
        let mut finish: Vec<String> = Vec::new();
        let mut finished: std::collections::HashSet<String> = std::collections::HashSet::new();
        for &i in &order {
            let Some(seg) = &segs[i] else { continue };
            if (!followed[i] || refused[i]) && finished.insert(seg.exit.clone()) {
                finish.push(seg.exit.clone());
            }
        }
        let entry_points = if pb.spec.risk() == pbc_compiler::model::Risk::Medium
            && !roots.is_empty()
        {
            let next = if roots.len() == 1 {
                roots[0].clone()
            } else {
                self.route(START, "");
                for r in &roots {
                    self.edges.push(json!({"source": START, "target": r}));
                }
                START.to_string()
            };
            let meta = json!({
                "gate": "playbook",
                "approvers": cond::approvers_json(&pb.spec.approvers.as_ref().map(|a| a.value.clone()).unwrap_or_default()),
            });
            self.approval_node(PLAYBOOK_GATE, meta, &next);
            vec![PLAYBOOK_GATE.to_string()]
        } else {
            roots
        };
        let blocked_names: Vec<&str> = (0..n)
            .filter(|&i| blocked[i])
            .map(|i| pb.spec.stages[i].name.value.as_str())
            .collect();
        let mut meta = serde_json::Map::new();
        if let Some(t) = self.u.root.get_path(&["spec", "trigger"]) {
            meta.insert("trigger".into(), t.to_json());
        }
        if let Some(Trigger::Schedule { .. }) = pb.spec.trigger.as_ref().map(|t| &t.value) {
            meta.insert("scheduled".into(), json!(true));
        }
        for (k, path) in [
            ("namespace", &["metadata", "namespace"][..]),
            ("labels", &["metadata", "labels"][..]),
            ("compliance", &["metadata", "compliance"][..]),
            ("tags", &["metadata", "tags"][..]),
            ("risk", &["spec", "risk"][..]),
            ("rollback", &["spec", "rollback"][..]),
            ("audit", &["spec", "audit"][..]),
            ("monitoring", &["spec", "monitoring"][..]),
        ] {
            if let Some(v) = self.u.root.get_path(path) {
                meta.insert(k.into(), v.to_json());
            }
        }
        if !blocked_names.is_empty() {
            meta.insert("blocked".into(), json!(blocked_names));
        }
        let cond_edges: Vec<Value> = self.cond_edges.into_iter().map(|(_, v)| v).collect();
        obj! {
            "format" => FORMAT,
            "name" => pb.name(),
            "description" => pb.metadata.description.as_ref().map(|d| d.value.clone()),
            "nodes" => Value::Array(self.nodes),
            "edges" => Value::Array(self.edges),
            "conditional_edges" => (!cond_edges.is_empty()).then_some(Value::Array(cond_edges)),
            "entry_points" => json!(entry_points),
            "finish_points" => json!(finish),
            "interrupt_before" => json!(self.interrupts),
            "metadata" => Value::Object(meta),
        }
    }
}
