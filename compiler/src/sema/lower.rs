//! Lowering typed expressions for the targets, so that an Argo `when` or a LangGraph edge
//! cannot drift from what the checker accepted.
//!
//! [`lower`] turns a parsed, type-checked expression into a [`Lowered`] condition: refs are
//! paths, enum orderings become explicit member sets (`risk-level >= HIGH` →
//! `risk-level IN [HIGH, CRITICAL]`), durations are seconds, and every value read is listed
//! with the check that makes it *valid* (present and of its type). The two uses differ only
//! in how an invalid value counts:
//! - [`Lowered::gate_manual`]: a gate condition that cannot be evaluated requires the manual
//!   gate (fail safe): `NOT valid(reads) OR strict`;
//! - [`Lowered::when_true`]: a `when` that cannot be evaluated is false:
//!   `valid(reads) AND strict`.

use crate::expr::{CompareOp, Expr, ExprKind};
use crate::types::{Ty, TypedRef};

/// A literal value.
#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Num(f64),
    Str(String),
    Bool(bool),
    Null,
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// What makes a value read by a condition valid.
#[derive(Clone, Debug, PartialEq)]
pub enum Valid {
    /// Present and a number (durations: a duration string, compared in seconds).
    Number,
    Duration,
    Str,
    Bool,
    /// Present and one of these strings (an enum).
    OneOf(Vec<String>),
    /// Present (untyped).
    Present,
}

/// A target-neutral condition.
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    Const(bool),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    /// `path OP value`.
    Cmp {
        path: Vec<String>,
        op: Op,
        value: Lit,
    },
    /// `path OP path`.
    CmpRefs {
        lhs: Vec<String>,
        op: Op,
        rhs: Vec<String>,
    },
    /// `path IN [values]`.
    In {
        path: Vec<String>,
        values: Vec<Lit>,
    },
    /// A boolean value read as a condition.
    Truthy {
        path: Vec<String>,
    },
    /// `path` is valid (present and well-typed).
    Valid {
        path: Vec<String>,
        valid: Valid,
    },
}

/// A lowered expression: the strict condition (assuming every read is valid) and the reads.
#[derive(Clone, Debug, PartialEq)]
pub struct Lowered {
    pub strict: Cond,
    pub reads: Vec<(Vec<String>, Valid)>,
}

impl Lowered {
    fn all_valid(&self) -> Cond {
        let v: Vec<Cond> = self
            .reads
            .iter()
            .map(|(p, v)| Cond::Valid {
                path: p.clone(),
                valid: v.clone(),
            })
            .collect();
        match v.len() {
            0 => Cond::Const(true),
            1 => v.into_iter().next().unwrap_or(Cond::Const(true)),
            _ => Cond::And(v),
        }
    }

    /// When a gate whose branch says `manual` must ask a person: the condition holds, or it
    /// cannot be evaluated.
    pub fn gate_manual(&self) -> Cond {
        simplify(Cond::Or(vec![
            Cond::Not(Box::new(self.all_valid())),
            self.strict.clone(),
        ]))
    }

    /// When a `when` lets its stage run: every read is valid and the condition holds.
    pub fn when_true(&self) -> Cond {
        simplify(Cond::And(vec![self.all_valid(), self.strict.clone()]))
    }
}

fn valid_of(ty: &Ty) -> Valid {
    match ty.non_null() {
        Ty::Integer | Ty::Number => Valid::Number,
        Ty::Duration => Valid::Duration,
        Ty::String => Valid::Str,
        Ty::Bool => Valid::Bool,
        Ty::Enum(e) => Valid::OneOf(e.members.clone()),
        _ => Valid::Present,
    }
}

fn lit(e: &Expr) -> Option<Lit> {
    Some(match &e.unparen().kind {
        ExprKind::Number(n) => Lit::Num(*n),
        ExprKind::Percent { value, .. } => Lit::Num(*value),
        ExprKind::Duration { seconds, .. } => Lit::Num(*seconds),
        ExprKind::Str(s) | ExprKind::Ident(s) => Lit::Str(s.clone()),
        ExprKind::Bool(b) => Lit::Bool(*b),
        ExprKind::Null => Lit::Null,
        _ => return None,
    })
}

fn op_of(op: CompareOp) -> Op {
    match op {
        CompareOp::Eq | CompareOp::In => Op::Eq,
        CompareOp::Ne | CompareOp::NotIn => Op::Ne,
        CompareOp::Lt => Op::Lt,
        CompareOp::Le => Op::Le,
        CompareOp::Gt => Op::Gt,
        CompareOp::Ge => Op::Ge,
    }
}

fn flip(op: Op) -> Op {
    match op {
        Op::Lt => Op::Gt,
        Op::Le => Op::Ge,
        Op::Gt => Op::Lt,
        Op::Ge => Op::Le,
        o => o,
    }
}

struct Lx<'a> {
    refs: &'a [TypedRef],
    reads: Vec<(Vec<String>, Valid)>,
}

impl Lx<'_> {
    fn reference(&mut self, e: &Expr) -> Option<(Vec<String>, Ty)> {
        let ExprKind::Ref { segments } = &e.unparen().kind else {
            return None;
        };
        let path: Vec<String> = segments.iter().map(|(s, _)| s.clone()).collect();
        let ty = self
            .refs
            .iter()
            .find(|r| r.path == path)
            .map(|r| r.ty.clone())
            .unwrap_or(Ty::Any);
        let v = valid_of(&ty);
        if !self.reads.iter().any(|(p, _)| *p == path) {
            self.reads.push((path.clone(), v));
        }
        Some((path, ty))
    }

    fn cond(&mut self, e: &Expr) -> Cond {
        match &e.kind {
            ExprKind::Paren(i) => self.cond(i),
            ExprKind::Or { operands, .. } => {
                Cond::Or(operands.iter().map(|o| self.cond(o)).collect())
            }
            ExprKind::And { operands, .. } => {
                Cond::And(operands.iter().map(|o| self.cond(o)).collect())
            }
            ExprKind::Not { operand, .. } => Cond::Not(Box::new(self.cond(operand))),
            ExprKind::Bool(b) => Cond::Const(*b),
            ExprKind::Ref { .. } => match self.reference(e) {
                Some((path, _)) => Cond::Truthy { path },
                None => Cond::Const(false),
            },
            ExprKind::Compare { op, lhs, rhs, .. } => self.compare(*op, lhs, rhs),
            _ => Cond::Const(false),
        }
    }

    fn compare(&mut self, op: CompareOp, lhs: &Expr, rhs: &Expr) -> Cond {
        if op.is_membership() {
            let Some((path, ty)) = self.reference(lhs) else {
                return Cond::Const(false);
            };
            let values: Vec<Lit> = match &rhs.unparen().kind {
                ExprKind::List(items) => items.iter().filter_map(lit).collect(),
                _ => Vec::new(),
            };
            let _ = ty;
            let c = Cond::In { path, values };
            return if op == CompareOp::NotIn {
                Cond::Not(Box::new(c))
            } else {
                c
            };
        }
        let l = self.reference(lhs);
        let r = self.reference(rhs);
        let (path, ty, op, value) = match (l, r) {
            (Some((lp, _)), Some((rp, _))) => {
                return Cond::CmpRefs {
                    lhs: lp,
                    op: op_of(op),
                    rhs: rp,
                };
            }
            (Some((p, t)), None) => match lit(rhs) {
                Some(v) => (p, t, op_of(op), v),
                None => return Cond::Const(false),
            },
            (None, Some((p, t))) => match lit(lhs) {
                Some(v) => (p, t, flip(op_of(op)), v),
                None => return Cond::Const(false),
            },
            (None, None) => return Cond::Const(false),
        };
        // Enum orderings become explicit member sets.
        if let (Ty::Enum(e), Lit::Str(m)) = (ty.non_null(), &value)
            && matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge)
            && let Some(k) = e.members.iter().position(|x| x == m)
        {
            let keep = |i: usize| match op {
                Op::Lt => i < k,
                Op::Le => i <= k,
                Op::Gt => i > k,
                _ => i >= k,
            };
            let values = e
                .members
                .iter()
                .enumerate()
                .filter(|(i, _)| keep(*i))
                .map(|(_, s)| Lit::Str(s.clone()))
                .collect();
            return Cond::In { path, values };
        }
        Cond::Cmp { path, op, value }
    }
}

/// Lowers a checked expression. `refs` are the typed refs the checker recorded for it.
pub fn lower(e: &Expr, refs: &[TypedRef]) -> Lowered {
    let mut lx = Lx {
        refs,
        reads: Vec::new(),
    };
    let strict = simplify(lx.cond(e));
    Lowered {
        strict,
        reads: lx.reads,
    }
}

/// Flattens nested `AND`/`OR`, folds constants, removes double negation, and turns
/// `NOT valid(enum) OR x IN S` into `x NOT IN (members − S)`-style forms where possible.
pub fn simplify(c: Cond) -> Cond {
    match c {
        Cond::Not(inner) => match simplify(*inner) {
            Cond::Not(x) => *x,
            Cond::Const(b) => Cond::Const(!b),
            x => Cond::Not(Box::new(x)),
        },
        Cond::And(items) => {
            let mut out = Vec::new();
            for i in items.into_iter().map(simplify) {
                match i {
                    Cond::Const(true) => {}
                    Cond::Const(false) => return Cond::Const(false),
                    Cond::And(xs) => out.extend(xs),
                    x => out.push(x),
                }
            }
            match out.len() {
                0 => Cond::Const(true),
                1 => out.pop().unwrap_or(Cond::Const(true)),
                _ => Cond::And(out),
            }
        }
        Cond::Or(items) => {
            let mut out = Vec::new();
            for i in items.into_iter().map(simplify) {
                match i {
                    Cond::Const(false) => {}
                    Cond::Const(true) => return Cond::Const(true),
                    Cond::Or(xs) => out.extend(xs),
                    x => out.push(x),
                }
            }
            // `NOT valid(p: one of M) OR p IN S` == `NOT (p IN M − S)`: fail safe on absence.
            if out.len() == 2
                && let (Cond::Not(v), Cond::In { path, values }) = (&out[0], &out[1])
                && let Cond::Valid {
                    path: vp,
                    valid: Valid::OneOf(members),
                } = v.as_ref()
                && vp == path
            {
                let rest: Vec<Lit> = members
                    .iter()
                    .filter(|m| !values.contains(&Lit::Str((*m).clone())))
                    .map(|m| Lit::Str(m.clone()))
                    .collect();
                return Cond::Not(Box::new(Cond::In {
                    path: path.clone(),
                    values: rest,
                }));
            }
            match out.len() {
                0 => Cond::Const(false),
                1 => out.pop().unwrap_or(Cond::Const(false)),
                _ => Cond::Or(out),
            }
        }
        c => c,
    }
}

/// True if `a` holding implies `b` holds (a sound, incomplete test on span-free
/// expressions): identical expressions, a conjunction containing `b`, and numeric thresholds
/// on the same ref (`x > 10000` implies `x > 1000`).
pub fn implies(a: &Expr, b: &Expr) -> bool {
    let (a, b) = (a.unparen(), b.unparen());
    if a == b {
        return true;
    }
    if let ExprKind::And { operands, .. } = &a.kind
        && operands.iter().any(|o| implies(o, b))
    {
        return true;
    }
    if let ExprKind::Or { operands, .. } = &b.kind
        && operands.iter().any(|o| implies(a, o))
    {
        return true;
    }
    let (Some((pa, oa, va)), Some((pb, ob, vb))) = (threshold(a), threshold(b)) else {
        return false;
    };
    if pa != pb {
        return false;
    }
    match (oa, ob) {
        (Op::Gt, Op::Gt) | (Op::Ge, Op::Ge) | (Op::Gt, Op::Ge) => va >= vb,
        (Op::Ge, Op::Gt) => va > vb,
        (Op::Lt, Op::Lt) | (Op::Le, Op::Le) | (Op::Lt, Op::Le) => va <= vb,
        (Op::Le, Op::Lt) => va < vb,
        (Op::Eq, Op::Gt) => va > vb,
        (Op::Eq, Op::Ge) => va >= vb,
        (Op::Eq, Op::Lt) => va < vb,
        (Op::Eq, Op::Le) => va <= vb,
        (Op::Eq, Op::Eq) => va == vb,
        _ => false,
    }
}

fn threshold(e: &Expr) -> Option<(Vec<String>, Op, f64)> {
    let ExprKind::Compare { op, lhs, rhs, .. } = &e.kind else {
        return None;
    };
    if op.is_membership() {
        return None;
    }
    let num = |x: &Expr| match lit(x) {
        Some(Lit::Num(n)) => Some(n),
        _ => None,
    };
    let path = |x: &Expr| match &x.unparen().kind {
        ExprKind::Ref { segments } => {
            Some(segments.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>())
        }
        _ => None,
    };
    if let (Some(p), Some(n)) = (path(lhs), num(rhs)) {
        return Some((p, op_of(*op), n));
    }
    if let (Some(n), Some(p)) = (num(lhs), path(rhs)) {
        return Some((p, flip(op_of(*op)), n));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::parse;
    use crate::span::{FileId, Span};
    use crate::types::EnumTy;
    use std::sync::Arc;

    fn risk() -> Ty {
        Ty::Enum(Arc::new(EnumTy {
            members: ["LOW", "MEDIUM", "HIGH", "CRITICAL"]
                .map(String::from)
                .to_vec(),
            span: Span::point(FileId(0), 0),
        }))
    }

    fn lowered(src: &str, ty: Ty) -> Lowered {
        let e = parse(src).0.unwrap();
        let refs = vec![TypedRef {
            span: 0..0,
            path: vec!["security-report".into(), "risk-level".into()],
            ty,
            always_present: true,
        }];
        lower(&e, &refs)
    }

    fn strs(v: &[&str]) -> Vec<Lit> {
        v.iter().map(|s| Lit::Str((*s).into())).collect()
    }

    #[test]
    fn enum_ordering_is_an_explicit_set_and_gates_fail_safe() {
        let l = lowered("security-report.risk-level >= HIGH", risk());
        let path = vec!["security-report".to_string(), "risk-level".to_string()];
        assert_eq!(
            l.strict,
            Cond::In {
                path: path.clone(),
                values: strs(&["HIGH", "CRITICAL"])
            }
        );
        // Absent or not a member: manual. Exactly `NOT IN [LOW, MEDIUM]`.
        assert_eq!(
            l.gate_manual(),
            Cond::Not(Box::new(Cond::In {
                path: path.clone(),
                values: strs(&["LOW", "MEDIUM"])
            }))
        );
        // A `when`: valid AND in the set.
        assert_eq!(
            l.when_true(),
            Cond::And(vec![
                Cond::Valid {
                    path: path.clone(),
                    valid: Valid::OneOf(
                        ["LOW", "MEDIUM", "HIGH", "CRITICAL"]
                            .map(String::from)
                            .to_vec()
                    )
                },
                Cond::In {
                    path,
                    values: strs(&["HIGH", "CRITICAL"])
                },
            ])
        );
    }

    #[test]
    fn implication_of_thresholds() {
        let p = |s: &str| parse(s).0.unwrap().without_spans();
        assert!(implies(&p("m.rows > 10000"), &p("m.rows > 1000")));
        assert!(!implies(&p("m.rows > 1000"), &p("m.rows > 10000")));
        assert!(implies(&p("m.rows > 5 AND m.x == 1"), &p("m.rows > 5")));
        assert!(!implies(&p("m.a > 5"), &p("m.b > 1")));
    }
}
