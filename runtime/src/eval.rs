//! Evaluates the checker's lowered conditions ([`Cond`]) against actual values, so that the
//! runtime decides gates and `when` exactly as the checker typed them and as the Argo and
//! LangGraph targets lower them. Nothing here re-parses expression text.
//!
//! A ref is a path whose first name is resolved by a [`Scope`] (an output stem, a stage name,
//! or `input`); the rest walks object keys. Validity ([`Valid`]) is presence plus type:
//! numbers are JSON numbers, durations are strings `30s`/`10m`/`4h`/`2d` or ISO 8601
//! (`PT4H`, `P1DT2H`) compared in seconds, enums are one of their members.

use pbc_compiler::sema::lower::{Cond, Lit, Lowered, Op, Valid};
use serde_json::Value;

/// Resolves the first name of a ref to a value (`None`: absent).
pub trait Scope {
    fn root(&self, name: &str) -> Option<&Value>;
}

/// Follows a ref path.
pub fn lookup<'a>(scope: &'a dyn Scope, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut v = scope.root(first)?;
    for k in rest {
        v = v.as_object()?.get(k)?;
    }
    Some(v)
}

/// Seconds of a duration string: `30s`, `10m`, `4h`, `2d`, or ISO 8601 `PnDTnHnMnS`.
pub fn duration_seconds(s: &str) -> Option<f64> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('P').or_else(|| s.strip_prefix('p')) {
        return iso_duration(rest);
    }
    let unit = s.chars().last()?;
    let n: f64 = s.get(..s.len().checked_sub(1)?)?.parse().ok()?;
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let mul = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86400.0,
        _ => return None,
    };
    Some(n * mul)
}

fn iso_duration(rest: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut in_time = false;
    let mut num = String::new();
    let mut any = false;
    for c in rest.chars() {
        match c {
            'T' | 't' if num.is_empty() => in_time = true,
            '0'..='9' | '.' => num.push(c),
            _ => {
                let n: f64 = num.parse().ok()?;
                num.clear();
                let mul = match (c.to_ascii_uppercase(), in_time) {
                    ('W', false) => 604800.0,
                    ('D', false) => 86400.0,
                    ('H', true) => 3600.0,
                    ('M', true) => 60.0,
                    ('S', true) => 1.0,
                    _ => return None,
                };
                total += n * mul;
                any = true;
            }
        }
    }
    (any && num.is_empty()).then_some(total)
}

/// True if `v` satisfies `valid` (present and of its type).
pub fn is_valid(v: Option<&Value>, valid: &Valid) -> bool {
    let Some(v) = v else { return false };
    match valid {
        Valid::Number => v.is_number(),
        Valid::Duration => v.as_str().and_then(duration_seconds).is_some(),
        Valid::Str => v.is_string(),
        Valid::Bool => v.is_boolean(),
        Valid::OneOf(members) => v.as_str().is_some_and(|s| members.iter().any(|m| m == s)),
        Valid::Present => true,
    }
}

/// An evaluator: a scope plus the reads of the lowered expression (their `Valid` carries the
/// enum members, which order enum-to-enum comparisons).
pub struct Eval<'a> {
    pub scope: &'a dyn Scope,
    pub reads: &'a [(Vec<String>, Valid)],
}

impl Eval<'_> {
    fn valid_of(&self, path: &[String]) -> Option<&Valid> {
        self.reads.iter().find(|(p, _)| p == path).map(|(_, v)| v)
    }

    /// A comparable number for `v` read at `path`: numbers, or durations in seconds.
    fn number(&self, path: &[String], v: &Value) -> Option<f64> {
        if let Some(n) = v.as_f64() {
            return Some(n);
        }
        match self.valid_of(path) {
            Some(Valid::Duration) | None | Some(Valid::Present) => {
                v.as_str().and_then(duration_seconds)
            }
            _ => None,
        }
    }

    fn rank(&self, path: &[String], v: &Value) -> Option<usize> {
        match self.valid_of(path) {
            Some(Valid::OneOf(m)) => {
                let s = v.as_str()?;
                m.iter().position(|x| x == s)
            }
            _ => None,
        }
    }

    /// Evaluates a condition. A comparison whose operands do not fit (which validity rules
    /// out in `gate_manual`/`when_true` forms) is false.
    pub fn eval(&self, c: &Cond) -> bool {
        match c {
            Cond::Const(b) => *b,
            Cond::And(xs) => xs.iter().all(|x| self.eval(x)),
            Cond::Or(xs) => xs.iter().any(|x| self.eval(x)),
            Cond::Not(x) => !self.eval(x),
            Cond::Valid { path, valid } => is_valid(lookup(self.scope, path), valid),
            Cond::Truthy { path } => lookup(self.scope, path) == Some(&Value::Bool(true)),
            Cond::In { path, values } => match lookup(self.scope, path) {
                Some(v) => values.iter().any(|l| self.equal_lit(path, v, l)),
                None => false,
            },
            Cond::Cmp { path, op, value } => match lookup(self.scope, path) {
                Some(v) => self.cmp_lit(path, v, *op, value),
                None => false,
            },
            Cond::CmpRefs { lhs, op, rhs } => {
                match (lookup(self.scope, lhs), lookup(self.scope, rhs)) {
                    (Some(a), Some(b)) => self.cmp_refs(lhs, a, *op, rhs, b),
                    _ => false,
                }
            }
        }
    }

    fn equal_lit(&self, path: &[String], v: &Value, l: &Lit) -> bool {
        match l {
            Lit::Num(n) => self.number(path, v).is_some_and(|x| x == *n),
            Lit::Str(s) => v.as_str() == Some(s.as_str()),
            Lit::Bool(b) => v.as_bool() == Some(*b),
            Lit::Null => v.is_null(),
        }
    }

    fn cmp_lit(&self, path: &[String], v: &Value, op: Op, l: &Lit) -> bool {
        match op {
            Op::Eq => self.equal_lit(path, v, l),
            Op::Ne => !self.equal_lit(path, v, l),
            _ => match l {
                Lit::Num(n) => self.number(path, v).is_some_and(|x| ordered(x, op, *n)),
                Lit::Str(s) => {
                    // An enum member literal whose ordering was not lowered to a set.
                    let (Some(a), Some(Valid::OneOf(m))) =
                        (self.rank(path, v), self.valid_of(path))
                    else {
                        return false;
                    };
                    match m.iter().position(|x| x == s) {
                        Some(b) => ordered(a as f64, op, b as f64),
                        None => false,
                    }
                }
                _ => false,
            },
        }
    }

    fn cmp_refs(&self, lp: &[String], a: &Value, op: Op, rp: &[String], b: &Value) -> bool {
        if let (Some(x), Some(y)) = (self.rank(lp, a), self.rank(rp, b)) {
            return ordered(x as f64, op, y as f64);
        }
        if let (Some(x), Some(y)) = (self.number(lp, a), self.number(rp, b)) {
            return ordered(x, op, y);
        }
        match op {
            Op::Eq => a == b,
            Op::Ne => a != b,
            _ => false,
        }
    }
}

fn ordered(a: f64, op: Op, b: f64) -> bool {
    match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::Lt => a < b,
        Op::Le => a <= b,
        Op::Gt => a > b,
        Op::Ge => a >= b,
    }
}

/// True if every value the expression reads is valid.
pub fn all_valid(l: &Lowered, scope: &dyn Scope) -> bool {
    l.reads.iter().all(|(p, v)| is_valid(lookup(scope, p), v))
}

/// A `when`: false when it cannot be evaluated.
pub fn when_holds(l: &Lowered, scope: &dyn Scope) -> bool {
    Eval {
        scope,
        reads: &l.reads,
    }
    .eval(&l.when_true())
}

/// A `manual` branch's test: true when the condition holds or cannot be evaluated (fail safe).
pub fn gate_manual(l: &Lowered, scope: &dyn Scope) -> bool {
    Eval {
        scope,
        reads: &l.reads,
    }
    .eval(&l.gate_manual())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    struct S(BTreeMap<String, Value>);
    impl Scope for S {
        fn root(&self, name: &str) -> Option<&Value> {
            self.0.get(name)
        }
    }

    fn p(s: &str) -> Vec<String> {
        s.split('.').map(String::from).collect()
    }

    fn risk() -> Lowered {
        let members: Vec<String> = ["LOW", "MEDIUM", "HIGH", "CRITICAL"]
            .map(String::from)
            .to_vec();
        Lowered {
            strict: Cond::In {
                path: p("r.level"),
                values: vec![Lit::Str("HIGH".into()), Lit::Str("CRITICAL".into())],
            },
            reads: vec![(p("r.level"), Valid::OneOf(members))],
        }
    }

    fn scope(v: Value) -> S {
        S(BTreeMap::from([("r".to_string(), v)]))
    }

    #[test]
    fn gates_fail_safe_and_whens_fail_closed() {
        let l = risk();
        for (v, manual, when) in [
            (json!({"level": "LOW"}), false, false),
            (json!({"level": "HIGH"}), true, true),
            (json!({"level": "CRITICAL"}), true, true),
            (json!({}), true, false),
            (json!({"level": 3}), true, false),
            (json!({"level": "EXTREME"}), true, false),
        ] {
            let s = scope(v.clone());
            assert_eq!(gate_manual(&l, &s), manual, "{v}");
            assert_eq!(when_holds(&l, &s), when, "{v}");
        }
        assert!(gate_manual(&l, &S(BTreeMap::new())));
    }

    #[test]
    fn numbers_and_durations() {
        let l = Lowered {
            strict: Cond::Cmp {
                path: p("r.wait"),
                op: Op::Gt,
                value: Lit::Num(3600.0),
            },
            reads: vec![(p("r.wait"), Valid::Duration)],
        };
        assert!(when_holds(&l, &scope(json!({"wait": "2h"}))));
        assert!(when_holds(&l, &scope(json!({"wait": "PT1H30M"}))));
        assert!(!when_holds(&l, &scope(json!({"wait": "30m"}))));
        assert!(!when_holds(&l, &scope(json!({"wait": "soon"}))));
        assert!(gate_manual(&l, &scope(json!({"wait": "soon"}))));
        assert_eq!(duration_seconds("P1DT2H"), Some(93600.0));
        assert_eq!(duration_seconds("PT"), None);
        let n = Lowered {
            strict: Cond::Cmp {
                path: p("r.rows"),
                op: Op::Ge,
                value: Lit::Num(1000.0),
            },
            reads: vec![(p("r.rows"), Valid::Number)],
        };
        assert!(when_holds(&n, &scope(json!({"rows": 1000}))));
        assert!(!when_holds(&n, &scope(json!({"rows": "1000"}))));
    }

    #[test]
    fn enum_refs_compare_by_declaration_order() {
        let m: Vec<String> = ["LOW", "HIGH"].map(String::from).to_vec();
        let e = Eval {
            scope: &S(BTreeMap::from([
                ("a".to_string(), json!({"x": "HIGH"})),
                ("b".to_string(), json!({"x": "LOW"})),
            ])),
            reads: &[
                (p("a.x"), Valid::OneOf(m.clone())),
                (p("b.x"), Valid::OneOf(m)),
            ],
        };
        assert!(e.eval(&Cond::CmpRefs {
            lhs: p("a.x"),
            op: Op::Gt,
            rhs: p("b.x")
        }));
    }
}
