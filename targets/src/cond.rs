//! Gates and `when`s for the targets, composed only from the lowered conditions of the
//! analysis ([`Lowered::gate_manual`], [`Lowered::when_true`], and a branch's reads), and
//! rendered into Argo's expr-lang and into the Python subset of `pbc.langgraph/v1`.
//!
//! Fail safe: a gate whose condition cannot be evaluated is manual. For a
//! conditional gate, branches are tried in order; a branch whose reads are not all valid
//! (absent, wrong type) decides `manual` at once, whatever its `then`; a valid branch that
//! holds decides its `then`; the `else` decides the rest.

use pbc_compiler::declare_codes;
use pbc_compiler::model::{Approval, Approver, Gate, Playbook, Risk, Stage};
use pbc_compiler::sema::Analysis;
use pbc_compiler::sema::lower::{Cond, Lit, Lowered, Op, Valid, simplify};
use std::collections::BTreeMap;

declare_codes! {
    /// A condition that the `langgraph` target cannot express exactly was lowered to its
    /// safe side.
    ///
    /// `pbc.langgraph/v1` expressions have no way to read a duration string (`4h`) as a
    /// number of seconds. A gate condition that compares a duration output is lowered to
    /// "always ask a person", and a `when` that does is lowered to "skip", so the graph never
    /// runs something the checker would not. The Argo target is exact (its runner exports
    /// durations in seconds). Compare a number of seconds instead if the LangGraph graph
    /// should decide by it.
    PB6002 CONSERVATIVE_LOWERING "conservative-lowering" Warning "a condition lowered to its safe side for a target";
}

/// Where a ref's first name points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Src {
    /// A stage's output.
    Stage(usize),
    /// The trigger payload.
    Input,
}

/// Resolves a ref's first name as the checker does: an output stem, then a stage name, then
/// `input`.
pub fn source(_pb: &Playbook, an: &Analysis, root: &str) -> Option<Src> {
    if let Some(i) = an.producer(root) {
        return Some(Src::Stage(i));
    }
    (root == "input").then_some(Src::Input)
}

fn invalid(l: &Lowered) -> Cond {
    let v: Vec<Cond> = l
        .reads
        .iter()
        .map(|(p, v)| Cond::Valid {
            path: p.clone(),
            valid: v.clone(),
        })
        .collect();
    simplify(Cond::Not(Box::new(Cond::And(v))))
}

/// True if a stage is refused (its risk, own or the playbook's, is `high`).
pub fn refused(pb: &Playbook, s: &Stage) -> bool {
    s.risk(&pb.spec) == Risk::High
}

/// True if the stage's own `risk` is `medium` (an approval before it runs).
pub fn medium(s: &Stage) -> bool {
    s.risk.as_ref().is_some_and(|r| r.value == Risk::Medium)
}

/// When the stage's approval gate (`approval: manual | conditional`) asks a person; `None`
/// for `auto`. Does not include the stage's `when`.
pub fn approval_condition(an: &Analysis, i: usize, s: &Stage) -> Option<Cond> {
    match s.approval() {
        Approval::Auto => None,
        Approval::Manual => Some(Cond::Const(true)),
        Approval::Conditional => {
            let lowered = an.conditions.get(i);
            // Build from the last branch backwards.
            let mut rest = Cond::Const(true); // no `else` (reported by the checker): manual
            for (k, c) in s.conditions.iter().enumerate().rev() {
                let manual = c.then.value == Gate::Manual;
                if c.is_else() {
                    rest = Cond::Const(manual);
                    continue;
                }
                let Some(Some(l)) = lowered.and_then(|v| v.get(k)) else {
                    // A condition the checker could not lower: manual (fail safe).
                    rest = Cond::Const(true);
                    continue;
                };
                rest = if manual {
                    Cond::Or(vec![l.gate_manual(), rest])
                } else {
                    Cond::Or(vec![
                        invalid(l),
                        Cond::And(vec![Cond::Not(Box::new(l.strict.clone())), rest]),
                    ])
                };
            }
            Some(simplify(rest))
        }
    }
}

/// The stage's `when` as a condition (`true` without one; `false` when it could not be
/// lowered, which the checker reported).
pub fn when_condition(an: &Analysis, i: usize, s: &Stage) -> Cond {
    match (&s.when, an.whens.get(i)) {
        (None, _) => Cond::Const(true),
        (Some(_), Some(Some(l))) => l.when_true(),
        (Some(_), _) => Cond::Const(false),
    }
}

/// The approvers of a stage's approval gate: the stage's, and each `manual` branch's own,
/// in order, without repeats.
pub fn gate_approvers(s: &Stage) -> Vec<Approver> {
    let mut out: Vec<Approver> = Vec::new();
    if let Some(a) = &s.approvers {
        add_approvers(&mut out, &a.value);
    }
    for c in &s.conditions {
        if c.then.value == Gate::Manual
            && let Some(a) = &c.approvers
        {
            add_approvers(&mut out, &a.value);
        }
    }
    out
}

/// True if every case names the same approvers (in any order).
pub fn same_approvers(cases: &[ApproverCase]) -> bool {
    let key = |c: &ApproverCase| {
        let mut v: Vec<String> = c.approvers.iter().map(approver_str).collect();
        v.sort();
        v
    };
    cases.windows(2).all(|w| key(&w[0]) == key(&w[1]))
}

/// The cases with `extra` added to each (an escalation level's own approvers).
pub fn with_approvers(cases: &[ApproverCase], extra: &[Approver]) -> Vec<ApproverCase> {
    cases
        .iter()
        .map(|c| {
            let mut a = c.approvers.clone();
            add_approvers(&mut a, extra);
            ApproverCase {
                approvers: a,
                ..c.clone()
            }
        })
        .collect()
}

/// Adds `list` to `out`, without repeats.
fn add_approvers(out: &mut Vec<Approver>, list: &[Approver]) {
    for a in list {
        if !out
            .iter()
            .any(|x| x.name().value == a.name().value && x.is_user() == a.is_user())
        {
            out.push(a.clone());
        }
    }
}

/// One case of a gate's approvers: when it is the case that asks (tried in order, the
/// first that holds decides), who approves, and the branch in words.
#[derive(Clone, Debug)]
pub struct ApproverCase {
    pub when: Cond,
    pub approvers: Vec<Approver>,
    /// `` if `EXPR` ``, `` if `EXPR` cannot be evaluated ``, or `otherwise`.
    pub branch: String,
}

/// Who approves a stage's approval gate, per branch (as the runtime decides): a `manual`
/// branch that fires asks its own approvers (else the stage's); an `auto` branch whose
/// condition cannot be evaluated asks everyone listed (fail safe); the `else` and a gate that
/// is not conditional ask the stage's. `always` says the gate asks even when no branch does
/// (a `risk: medium` action): then the stage's approvers decide. Only cases in which the
/// gate asks are listed; the last always holds.
pub fn approver_cases(an: &Analysis, i: usize, s: &Stage, always: bool) -> Vec<ApproverCase> {
    let stage: Vec<Approver> = s
        .approvers
        .as_ref()
        .map(|a| a.value.clone())
        .unwrap_or_default();
    let case = |when: Cond, approvers: &[Approver], branch: String| ApproverCase {
        when,
        approvers: approvers.to_vec(),
        branch,
    };
    let otherwise = || case(Cond::Const(true), &stage, "otherwise".into());
    if s.approval() != Approval::Conditional {
        return vec![otherwise()];
    }
    let mut everyone = stage.clone();
    for c in &s.conditions {
        if let Some(a) = &c.approvers {
            add_approvers(&mut everyone, &a.value);
        }
    }
    let lowered = an.conditions.get(i);
    let mut out = Vec::new();
    for (k, c) in s.conditions.iter().enumerate() {
        let manual = c.then.value == Gate::Manual;
        let own: &[Approver] = match &c.approvers {
            Some(a) if !a.value.is_empty() => &a.value,
            _ => &stage,
        };
        let Some(test) = &c.test else {
            // `else: auto` asks nobody, unless the gate always asks.
            if manual || always || out.is_empty() {
                out.push(case(
                    Cond::Const(true),
                    if manual { own } else { &stage },
                    "otherwise".into(),
                ));
            }
            return last_always(out);
        };
        let text = &test.text.value;
        let Some(Some(l)) = lowered.and_then(|v| v.get(k)) else {
            // Not lowered (the checker reported it): manual, fail safe.
            out.push(case(Cond::Const(true), own, format!("if `{text}`")));
            return last_always(out);
        };
        if manual {
            out.push(case(l.gate_manual(), own, format!("if `{text}`")));
        } else {
            out.push(case(
                invalid(l),
                &everyone,
                format!("if `{text}` cannot be evaluated"),
            ));
            if always {
                out.push(case(l.when_true(), &stage, format!("if `{text}`")));
            }
        }
    }
    out.push(otherwise());
    last_always(out)
}

/// The gate asks only when one of its cases does: if none before the last holds, the last
/// is the one, whatever its own condition says.
fn last_always(mut cases: Vec<ApproverCase>) -> Vec<ApproverCase> {
    if let Some(c) = cases.last_mut() {
        c.when = Cond::Const(true);
    }
    cases
}

/// `role:NAME` / `user:EMAIL`.
pub fn approver_str(a: &Approver) -> String {
    match a {
        Approver::Role(r) => format!("role:{}", r.value),
        Approver::User(u) => format!("user:{}", u.value),
    }
}

/// Approvers as JSON objects (`{role}` / `{user}`).
pub fn approvers_json(list: &[Approver]) -> serde_json::Value {
    serde_json::Value::Array(
        list.iter()
            .map(|a| match a {
                Approver::Role(r) => serde_json::json!({"role": r.value}),
                Approver::User(u) => serde_json::json!({"user": u.value}),
            })
            .collect(),
    )
}

/// Every path a condition reads, with the validity check its lowering attached.
pub fn reads(c: &Cond, out: &mut Vec<Vec<String>>) {
    let mut push = |p: &Vec<String>| {
        if !out.contains(p) {
            out.push(p.clone());
        }
    };
    match c {
        Cond::Const(_) => {}
        Cond::And(xs) | Cond::Or(xs) => xs.iter().for_each(|x| reads(x, out)),
        Cond::Not(x) => reads(x, out),
        Cond::Cmp { path, .. } | Cond::In { path, .. } | Cond::Truthy { path } => push(path),
        Cond::Valid { path, .. } => push(path),
        Cond::CmpRefs { lhs, rhs, .. } => {
            push(lhs);
            push(rhs);
        }
    }
}

/// The kind of value each path read anywhere in the playbook's conditions holds, from the
/// validity checks of the lowering (first seen wins).
pub fn read_kinds(an: &Analysis) -> BTreeMap<Vec<String>, Valid> {
    let mut m = BTreeMap::new();
    let all = an
        .conditions
        .iter()
        .flatten()
        .chain(an.whens.iter())
        .flatten();
    for l in all {
        for (p, v) in &l.reads {
            m.entry(p.clone()).or_insert_with(|| v.clone());
        }
    }
    m
}

/// True if the condition reads a duration (which the LangGraph form cannot compare).
pub fn reads_duration(c: &Cond, kinds: &BTreeMap<Vec<String>, Valid>) -> bool {
    let mut ps = Vec::new();
    reads(c, &mut ps);
    ps.iter()
        .any(|p| matches!(kinds.get(p), Some(Valid::Duration)))
        || has_valid(c, &Valid::Duration)
}

fn has_valid(c: &Cond, v: &Valid) -> bool {
    match c {
        Cond::Valid { valid, .. } => valid == v,
        Cond::And(xs) | Cond::Or(xs) => xs.iter().any(|x| has_valid(x, v)),
        Cond::Not(x) => has_valid(x, v),
        _ => false,
    }
}

fn num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn op_str(op: Op) -> &'static str {
    match op {
        Op::Eq => "==",
        Op::Ne => "!=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
    }
}

// ---------------------------------------------------------------------------------------
// Argo: expr-lang inside `{{= … }}`, over string output parameters.

/// A JSON number as the runner writes it.
const NUM_RE: &str = "^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$";

/// An expr-lang string literal (single-quoted; `{` and `}` escaped so that no `{{`/`}}` can
/// end Argo's template tag).
pub fn expr_str(s: &str) -> String {
    let mut o = String::from("'");
    for ch in s.chars() {
        match ch {
            '\\' => o.push_str("\\\\"),
            '\'' => o.push_str("\\'"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            '{' => o.push_str("\\u007b"),
            '}' => o.push_str("\\u007d"),
            c => o.push(c),
        }
    }
    o.push('\'');
    o
}

fn argo_lit_str(l: &Lit) -> String {
    match l {
        Lit::Str(s) => expr_str(s),
        Lit::Num(n) => expr_str(&num(*n)),
        Lit::Bool(b) => expr_str(if *b { "true" } else { "false" }),
        Lit::Null => "''".into(),
    }
}

fn is_numeric(v: Option<&Valid>) -> bool {
    matches!(v, Some(Valid::Number) | Some(Valid::Duration))
}

/// Renders a condition as an expr-lang expression. `value(path)` gives the expression that
/// reads the path's exported string parameter (empty when absent). Every atom is total: it
/// never raises, whatever the string holds.
pub fn argo_expr(
    c: &Cond,
    kinds: &BTreeMap<Vec<String>, Valid>,
    value: &dyn Fn(&[String]) -> String,
) -> String {
    let is_num = |r: &str| format!("({r} matches {})", expr_str(NUM_RE));
    match c {
        Cond::Const(b) => (if *b { "true" } else { "false" }).into(),
        Cond::And(xs) => join(xs, " && ", kinds, value, argo_expr),
        Cond::Or(xs) => join(xs, " || ", kinds, value, argo_expr),
        Cond::Not(x) => format!("!({})", argo_expr(x, kinds, value)),
        Cond::Valid { path, valid } => {
            let r = value(path);
            match valid {
                Valid::Number | Valid::Duration => is_num(&r),
                Valid::Str | Valid::Present => format!("({r} != '')"),
                Valid::Bool => format!("({r} in ['true', 'false'])"),
                Valid::OneOf(ms) => format!(
                    "({r} in [{}])",
                    ms.iter()
                        .map(|m| expr_str(m))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
        Cond::Cmp { path, op, value: v } => {
            let r = value(path);
            match v {
                Lit::Num(n) => format!(
                    "({} && asFloat({r}) {} {})",
                    is_num(&r),
                    op_str(*op),
                    num(*n)
                ),
                _ => format!("({r} {} {})", op_str(*op), argo_lit_str(v)),
            }
        }
        Cond::CmpRefs { lhs, op, rhs } => {
            let (a, b) = (value(lhs), value(rhs));
            if is_numeric(kinds.get(lhs)) || is_numeric(kinds.get(rhs)) {
                format!(
                    "({} && {} && asFloat({a}) {} asFloat({b}))",
                    is_num(&a),
                    is_num(&b),
                    op_str(*op)
                )
            } else {
                format!("({a} {} {b})", op_str(*op))
            }
        }
        Cond::In { path, values } => {
            let r = value(path);
            if values.is_empty() {
                return "false".into();
            }
            if values.iter().all(|l| matches!(l, Lit::Num(_))) {
                let ns: Vec<String> = values
                    .iter()
                    .map(|l| match l {
                        Lit::Num(n) => num(*n),
                        _ => String::new(),
                    })
                    .collect();
                format!("({} && asFloat({r}) in [{}])", is_num(&r), ns.join(", "))
            } else {
                let ss: Vec<String> = values.iter().map(argo_lit_str).collect();
                format!("({r} in [{}])", ss.join(", "))
            }
        }
        Cond::Truthy { path } => format!("({} == 'true')", value(path)),
    }
}

type Render = fn(&Cond, &BTreeMap<Vec<String>, Valid>, &dyn Fn(&[String]) -> String) -> String;

fn join(
    xs: &[Cond],
    sep: &str,
    kinds: &BTreeMap<Vec<String>, Valid>,
    value: &dyn Fn(&[String]) -> String,
    f: Render,
) -> String {
    let parts: Vec<String> = xs
        .iter()
        .map(|x| match x {
            Cond::And(_) | Cond::Or(_) => format!("({})", f(x, kinds, value)),
            _ => f(x, kinds, value),
        })
        .collect();
    parts.join(sep)
}

// ---------------------------------------------------------------------------------------
// LangGraph: the restricted Python subset of `pbc.langgraph/v1`.

/// A Python string literal (single-quoted).
pub fn py_str(s: &str) -> String {
    let mut o = String::from("'");
    for ch in s.chars() {
        match ch {
            '\\' => o.push_str("\\\\"),
            '\'' => o.push_str("\\'"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c => o.push(c),
        }
    }
    o.push('\'');
    o
}

fn py_lit(l: &Lit) -> String {
    match l {
        Lit::Str(s) => py_str(s),
        Lit::Num(n) => num(*n),
        Lit::Bool(b) => (if *b { "true" } else { "false" }).into(),
        Lit::Null => "null".into(),
    }
}

/// Renders a condition in the Python subset. `value(path)` gives the subscript chain that
/// reads the path (`outputs['s']['f']`, `input['f']`). Validity checks are comparisons that
/// are false on a type error (the loader's rule): a number is `(x >= 0 or x < 0)`, a string
/// `x >= ''`.
pub fn py_expr(
    c: &Cond,
    kinds: &BTreeMap<Vec<String>, Valid>,
    value: &dyn Fn(&[String]) -> String,
) -> String {
    match c {
        Cond::Const(b) => (if *b { "true" } else { "false" }).into(),
        Cond::And(xs) => join(xs, " and ", kinds, value, py_expr),
        Cond::Or(xs) => join(xs, " or ", kinds, value, py_expr),
        Cond::Not(x) => match x.as_ref() {
            Cond::In { path, values } => format!(
                "{} not in [{}]",
                value(path),
                values.iter().map(py_lit).collect::<Vec<_>>().join(", ")
            ),
            other => format!("not ({})", py_expr(other, kinds, value)),
        },
        Cond::Valid { path, valid } => {
            let r = value(path);
            match valid {
                Valid::Number | Valid::Duration => format!("({r} >= 0 or {r} < 0)"),
                Valid::Str => format!("{r} >= ''"),
                Valid::Present => format!("{r} != null"),
                Valid::Bool => format!("{r} in [true, false]"),
                Valid::OneOf(ms) => format!(
                    "{r} in [{}]",
                    ms.iter().map(|m| py_str(m)).collect::<Vec<_>>().join(", ")
                ),
            }
        }
        Cond::Cmp { path, op, value: v } => {
            format!("{} {} {}", value(path), op_str(*op), py_lit(v))
        }
        Cond::CmpRefs { lhs, op, rhs } => {
            format!("{} {} {}", value(lhs), op_str(*op), value(rhs))
        }
        Cond::In { path, values } => format!(
            "{} in [{}]",
            value(path),
            values.iter().map(py_lit).collect::<Vec<_>>().join(", ")
        ),
        Cond::Truthy { path } => format!("{} == true", value(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        s.split('.').map(String::from).collect()
    }

    #[test]
    fn renders_the_fail_safe_enum_gate_in_both_dialects() {
        let c = Cond::Not(Box::new(Cond::In {
            path: p("security-report.risk-level"),
            values: vec![Lit::Str("LOW".into()), Lit::Str("MEDIUM".into())],
        }));
        let kinds = BTreeMap::new();
        let py = py_expr(&c, &kinds, &|path| {
            format!("outputs['security-review'][{}]", py_str(&path[1]))
        });
        assert_eq!(
            py,
            "outputs['security-review']['risk-level'] not in ['LOW', 'MEDIUM']"
        );
        let ar = argo_expr(&c, &kinds, &|path| {
            format!(
                "tasks['security-review'].outputs.parameters[{}]",
                expr_str(&path[1])
            )
        });
        assert_eq!(
            ar,
            "!((tasks['security-review'].outputs.parameters['risk-level'] in ['LOW', 'MEDIUM']))"
        );
    }

    #[test]
    fn numeric_atoms_are_total_in_argo() {
        let c = Cond::Cmp {
            path: p("m.rows"),
            op: Op::Gt,
            value: Lit::Num(10000.0),
        };
        let s = argo_expr(&c, &BTreeMap::new(), &|_| "X".into());
        assert_eq!(
            s,
            "((X matches '^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$') && asFloat(X) > 10000)"
        );
    }

    #[test]
    fn literals_cannot_close_an_argo_tag() {
        assert_eq!(expr_str("a}}b'"), "'a\\u007d\\u007db\\''");
        assert_eq!(py_str("it's"), "'it\\'s'");
    }
}
