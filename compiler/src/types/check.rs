//! The expression type checker.
//!
//! It checks a parsed [`Expr`] against the types of the outputs it reads: each ref's first
//! name is resolved by an [`Env`] (which also decides *visibility*: whether that output is
//! produced before the reader), the rest of the path is followed through the schema's
//! [`Ty`]. Findings are returned with spans relative to the expression text; the caller maps
//! them into the file. Every ref that type-checks is recorded in [`Checked::refs`] for the
//! lowering to targets.

use super::schema::{ObjTy, Ty};
use crate::declare_codes;
use crate::diag::{Code, did_you_mean, one_of};
use crate::expr::{CompareOp, Expr, ExprKind, Span as ESpan};
use crate::span::Span;

declare_codes! {
    /// An expression does not parse.
    ///
    /// Conditions, `when:` and `${…}` use the small expression language: refs
    /// (`security-report.risk-level`), literals (`10`, `30%`, `4h`, `'text'`, `true`),
    /// comparisons, `IN [..]`, `AND`/`OR`/`NOT` and parentheses. The message names what was
    /// expected where; the help shows the supported form for common look-alikes (`10_pods`,
    /// `$50/month`, `5 minutes`).
    PB3010 EXPR_SYNTAX "expr-syntax" Error "an expression does not parse";
    /// A ref's first name is not an output, a stage, or `input`.
    ///
    /// The first name of a ref is, in this order: the stem of a stage's `output-schema` file
    /// (`security-report` for `schemas/security-report.json`), a stage name (that stage's
    /// output), or `input` (the trigger payload). The help lists the names in scope.
    PB3011 UNKNOWN_REF "unknown-ref" Error "a ref names no output, stage or input";
    /// A ref reads a field its schema does not declare.
    ///
    /// The output's JSON Schema is the type of the output; a field it does not list under
    /// `properties` is almost always a typo (`risk_level` for `risk-level`). The help lists the
    /// declared fields. Declare the field in the schema if the agent really produces it.
    PB3012 UNKNOWN_FIELD "unknown-field" Error "a ref reads a field the schema does not declare";
    /// Two values of incompatible types are compared, or a value is used where a condition
    /// is expected.
    ///
    /// Comparisons need compatible types: numbers with numbers, durations with durations
    /// (`4h`), strings and enums with strings, booleans with `true`/`false`. A condition must
    /// be boolean: compare a number (`count > 0`) instead of using it alone.
    PB3013 TYPE_MISMATCH "type-mismatch" Error "incompatible types in an expression";
    /// An ordering operator (`<`, `<=`, `>`, `>=`) on a type without an order.
    ///
    /// Numbers, durations and enums are ordered (an enum by declaration order:
    /// `risk-level >= HIGH` is HIGH or any member declared after it). Strings, booleans,
    /// lists and objects are not.
    PB3014 NOT_ORDERABLE "not-orderable" Error "an ordering operator on an unordered type";
    /// A value compared with an enum is not one of its members.
    ///
    /// The comparison could never hold (or always holds, for `!=`). The help lists the
    /// members in declaration order.
    PB3015 NOT_A_MEMBER "not-a-member" Error "a value is not a member of the enum";
    /// `IN` / `NOT IN` without a list on the right.
    ///
    /// Write the alternatives as a list literal: `risk-level IN [HIGH, CRITICAL]`, or compare
    /// with a list-typed field.
    PB3016 IN_WITHOUT_LIST "in-without-list" Error "`IN` needs a list";
    /// A condition that is always true or always false.
    ///
    /// It compares constants, or a value with itself. The gate or stage it guards never
    /// varies; say what you mean (`approval: manual`, or remove the `when`).
    PB3017 CONSTANT_CONDITION "constant-condition" Warning "a condition is constant";
    /// A condition reads a field that its schema does not mark `required`.
    ///
    /// When the agent leaves the field out, the condition cannot be evaluated: a gate then
    /// fails safe to manual approval, and a `when` is false (the stage is skipped). Mark the
    /// field `required` in the schema if the agent always produces it.
    PB3018 OPTIONAL_FIELD "optional-field" Warning "a condition reads an optional field";
    /// A bare word is used where it is not an enum member.
    ///
    /// Unquoted words (`HIGH`) are legal only against an enum that contains them. Quote a
    /// string (`'HIGH'`), or compare with an enum-typed field.
    PB3019 BARE_WORD "bare-word" Error "a bare word is not a value here";
}

/// The result of resolving a ref's first name.
#[derive(Clone, Debug)]
pub enum Root {
    /// In scope, with the type of what it names and, for labels, the producing stage's name
    /// span and the name read.
    Type(Ty, Option<(Span, String)>),
    /// Not a known name.
    Unknown,
    /// Known but not readable here (a later or parallel stage): the env reports it itself.
    Rejected,
}

/// Resolves ref roots for the checker.
pub trait Env {
    /// Looks up `name` as read at `at` (a span in the expression).
    fn root(&self, name: &str, at: ESpan) -> Root;
    /// The names in scope (for "did you mean").
    fn names(&self) -> Vec<String>;
}

/// A finding, with a span relative to the expression text.
#[derive(Clone, Debug)]
pub struct Finding {
    pub code: &'static Code,
    pub span: ESpan,
    pub message: String,
    pub help: Option<String>,
    /// Secondary labels in files (a schema field, the producing stage).
    pub labels: Vec<(Span, String)>,
}

/// A ref that type-checked: its path, type, and whether every step is `required`.
#[derive(Clone, Debug)]
pub struct TypedRef {
    pub span: ESpan,
    pub path: Vec<String>,
    pub ty: Ty,
    pub always_present: bool,
}

/// What checking an expression produced.
#[derive(Clone, Debug, Default)]
pub struct Checked {
    pub findings: Vec<Finding>,
    pub refs: Vec<TypedRef>,
}

/// What the checked expression is for (it changes the wording of warnings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A gate condition (`conditions[].if`): absent values fail safe to manual.
    Gate,
    /// A `when`: absent values make it false.
    When,
    /// An interpolation `${…}`: a value, not a condition.
    Value,
}

/// The static type of a sub-expression.
#[derive(Clone, Debug, PartialEq)]
enum T {
    Ty(Ty),
    /// A bare identifier (legal only against an enum containing it).
    Ident(String),
    /// A percentage literal.
    Percent,
    /// An error already reported.
    Err,
}

struct Cx<'e> {
    env: &'e dyn Env,
    purpose: Purpose,
    out: Checked,
}

/// Type-checks an expression. A condition must be boolean; a value any type.
pub fn check(expr: &Expr, env: &dyn Env, purpose: Purpose) -> Checked {
    let mut cx = Cx {
        env,
        purpose,
        out: Checked::default(),
    };
    let t = cx.expr(expr);
    if purpose != Purpose::Value {
        cx.expect_bool(expr, &t);
        cx.constant(expr);
    }
    cx.out
}

fn lit_ty(e: &Expr) -> Option<T> {
    Some(match &e.kind {
        ExprKind::Number(n) => {
            if n.fract() == 0.0 {
                T::Ty(Ty::Integer)
            } else {
                T::Ty(Ty::Number)
            }
        }
        ExprKind::Percent { .. } => T::Percent,
        ExprKind::Duration { .. } => T::Ty(Ty::Duration),
        ExprKind::Str(_) => T::Ty(Ty::String),
        ExprKind::Bool(_) => T::Ty(Ty::Bool),
        ExprKind::Null => T::Ty(Ty::Null),
        ExprKind::Ident(s) => T::Ident(s.clone()),
        _ => return None,
    })
}

fn is_literal(e: &Expr) -> bool {
    match &e.unparen().kind {
        ExprKind::List(items) => items.iter().all(is_literal),
        _ => lit_ty(e.unparen()).is_some(),
    }
}

impl Cx<'_> {
    fn push(&mut self, code: &'static Code, span: ESpan, message: String, help: Option<String>) {
        self.out.findings.push(Finding {
            code,
            span,
            message,
            help,
            labels: Vec::new(),
        });
    }

    fn expr(&mut self, e: &Expr) -> T {
        match &e.kind {
            ExprKind::Or { operands, .. } | ExprKind::And { operands, .. } => {
                for o in operands {
                    let t = self.expr(o);
                    self.expect_bool(o, &t);
                }
                T::Ty(Ty::Bool)
            }
            ExprKind::Not { operand, .. } => {
                let t = self.expr(operand);
                self.expect_bool(operand, &t);
                T::Ty(Ty::Bool)
            }
            ExprKind::Paren(inner) => self.expr(inner),
            ExprKind::Compare {
                op,
                op_span,
                lhs,
                rhs,
            } => {
                self.compare(*op, op_span.clone(), lhs, rhs);
                T::Ty(Ty::Bool)
            }
            ExprKind::Ref { segments } => self.reference(e.span.clone(), segments),
            ExprKind::List(items) => {
                let mut elem = None;
                for i in items {
                    let t = self.expr(i);
                    if elem.is_none() {
                        elem = Some(t);
                    }
                }
                match elem {
                    Some(T::Ty(t)) => T::Ty(Ty::List(Box::new(t))),
                    _ => T::Ty(Ty::List(Box::new(Ty::Any))),
                }
            }
            ExprKind::Error => T::Err,
            _ => lit_ty(e).unwrap_or(T::Err),
        }
    }

    fn expect_bool(&mut self, e: &Expr, t: &T) {
        let ok = match t {
            T::Err => true,
            T::Ty(ty) => match ty.non_null() {
                Ty::Bool | Ty::Any => true,
                Ty::Union(ts) => ts.contains(&Ty::Bool),
                _ => false,
            },
            T::Ident(_) | T::Percent => false,
        };
        if ok {
            return;
        }
        let inner = e.unparen();
        match (t, &inner.kind) {
            (T::Ident(s), _) => self.push(
                &BARE_WORD,
                inner.span.clone(),
                format!("`{s}` is a bare word, not a condition"),
                Some("compare a value with it, e.g. `report.level == HIGH`".into()),
            ),
            (T::Ty(ty), ExprKind::Ref { .. }) => {
                let hint = match ty.non_null() {
                    Ty::Integer | Ty::Number => "compare it: `… > 0`",
                    Ty::String | Ty::Enum(_) => "compare it: `… == 'value'`",
                    Ty::List(_) => "test membership instead: `'x' IN …`",
                    _ => "compare it with a value",
                };
                self.push(
                    &TYPE_MISMATCH,
                    inner.span.clone(),
                    format!("this is {}, not a condition", a_ty(ty)),
                    Some(hint.into()),
                );
            }
            (T::Ty(ty), _) => self.push(
                &TYPE_MISMATCH,
                inner.span.clone(),
                format!("expected a condition, found {}", a_ty(ty)),
                None,
            ),
            (T::Percent, _) => self.push(
                &TYPE_MISMATCH,
                inner.span.clone(),
                "expected a condition, found a percentage".into(),
                None,
            ),
            (T::Err, _) => {}
        }
    }

    fn reference(&mut self, span: ESpan, segments: &[(String, ESpan)]) -> T {
        let Some((root, root_span)) = segments.first() else {
            return T::Err;
        };
        let (mut ty, producer) = match self.env.root(root, root_span.clone()) {
            Root::Type(t, p) => (t, p),
            Root::Rejected => return T::Err,
            Root::Unknown => {
                let names = self.env.names();
                let help = match did_you_mean(root, names.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`? in scope: {}", one_of(&names)),
                    None if names.is_empty() => "no outputs are in scope here".to_string(),
                    None => format!("in scope: {}", one_of(&names)),
                };
                self.push(
                    &UNKNOWN_REF,
                    root_span.clone(),
                    format!("`{root}` is not an output schema, a stage or `input`"),
                    Some(help),
                );
                return T::Err;
            }
        };
        let mut path = vec![root.clone()];
        let mut always = true;
        let mut optional_at: Option<(String, ESpan, Span)> = None;
        for (name, nspan) in &segments[1..] {
            let obj: Option<std::sync::Arc<ObjTy>> = match ty.non_null() {
                Ty::Object(o) => Some(o),
                Ty::Any => {
                    ty = Ty::Any;
                    path.push(name.clone());
                    continue;
                }
                _ => None,
            };
            let Some(obj) = obj else {
                self.push(
                    &TYPE_MISMATCH,
                    nspan.clone(),
                    format!(
                        "`{}` is {}, it has no field `{name}`",
                        path.join("."),
                        a_ty(&ty)
                    ),
                    None,
                );
                return T::Err;
            };
            if obj.fields.is_empty() && obj.open {
                ty = Ty::Any;
                path.push(name.clone());
                continue;
            }
            let Some(f) = obj.field(name) else {
                let names: Vec<&str> = obj.fields.iter().map(|f| f.name.as_str()).collect();
                let help = match did_you_mean(name, names.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`? fields: {}", one_of(&names)),
                    None => format!("fields: {}", one_of(&names)),
                };
                self.out.findings.push(Finding {
                    code: &UNKNOWN_FIELD,
                    span: nspan.clone(),
                    message: format!("`{}` has no field `{name}`", path.join(".")),
                    help: Some(help),
                    labels: producer_label(&producer, &obj.span, "the fields this output declares"),
                });
                return T::Err;
            };
            if !f.required && optional_at.is_none() {
                always = false;
                optional_at = Some((name.clone(), nspan.clone(), f.span));
            }
            ty = f.ty.clone();
            path.push(name.clone());
        }
        if let Some((name, nspan, decl)) = optional_at
            && self.purpose != Purpose::Value
        {
            let consequence = match self.purpose {
                Purpose::Gate => "when it is absent the gate fails safe to manual approval",
                _ => "when it is absent the condition is false and the stage is skipped",
            };
            self.out.findings.push(Finding {
                code: &OPTIONAL_FIELD,
                span: nspan,
                message: format!("`{name}` is not marked `required` in its schema; {consequence}"),
                help: Some(format!(
                    "add `{name}` to the schema's `required` list if the agent always produces it"
                )),
                labels: vec![(decl, "declared here, optional".into())],
            });
        }
        self.out.refs.push(TypedRef {
            span,
            path,
            ty: ty.clone(),
            always_present: always,
        });
        T::Ty(ty)
    }

    fn compare(&mut self, op: CompareOp, op_span: ESpan, lhs: &Expr, rhs: &Expr) {
        let lt = self.expr(lhs);
        if op.is_membership() {
            let inner = rhs.unparen();
            let items: Vec<&Expr> = match &inner.kind {
                ExprKind::List(items) => items.iter().collect(),
                _ => {
                    let rt = self.expr(rhs);
                    match rt {
                        T::Ty(Ty::List(_)) | T::Err | T::Ty(Ty::Any) => {}
                        _ => self.push(
                            &IN_WITHOUT_LIST,
                            inner.span.clone(),
                            format!("`{}` needs a list on its right", op.as_str()),
                            Some("write the alternatives as a list: `IN [A, B]`".into()),
                        ),
                    }
                    return;
                }
            };
            for i in items {
                let it = self.expr(i);
                self.compatible(CompareOp::Eq, op_span.clone(), lhs, &lt, i, &it);
            }
            return;
        }
        let rt = self.expr(rhs);
        self.compatible(op, op_span, lhs, &lt, rhs, &rt);
    }

    /// Checks that `l OP r` is well-typed.
    fn compatible(&mut self, op: CompareOp, op_span: ESpan, l: &Expr, lt: &T, r: &Expr, rt: &T) {
        use T::*;
        if matches!(lt, Err) || matches!(rt, Err) {
            return;
        }
        // Put an enum (or the typed side) on the left for the rules below.
        let (l, lt, r, rt) = match (lt, rt) {
            (Ident(_), Ty(_)) | (Percent, Ty(_)) => (r, rt, l, lt),
            (Ty(a), Ty(b))
                if matches!(b.non_null(), self::Ty::Enum(_))
                    && !matches!(a.non_null(), self::Ty::Enum(_)) =>
            {
                (r, rt, l, lt)
            }
            _ => (l, lt, r, rt),
        };
        let l_ty = match lt {
            Ty(t) => t.non_null(),
            Ident(s) => {
                self.push(
                    &BARE_WORD,
                    l.unparen().span.clone(),
                    format!("`{s}` is a bare word, not a value"),
                    Some(format!("quote it as a string: '{s}'")),
                );
                return;
            }
            Percent => self::Ty::Number,
            Err => return,
        };
        if l_ty == self::Ty::Any {
            return;
        }
        // null compares with anything by equality.
        if matches!(rt, Ty(self::Ty::Null)) {
            if op.is_ordering() {
                self.push(&NOT_ORDERABLE, op_span, "`null` has no order".into(), None);
            }
            return;
        }
        match &l_ty {
            self::Ty::Enum(e) => {
                let member = match (rt, &r.unparen().kind) {
                    (Ident(s), _) => Some(s.clone()),
                    (Ty(self::Ty::String), ExprKind::Str(s)) => Some(s.clone()),
                    (Ty(t), _) => {
                        if let self::Ty::Enum(e2) = t.non_null() {
                            if e2.members != e.members {
                                self.push(
                                    &TYPE_MISMATCH,
                                    op_span,
                                    format!(
                                        "cannot compare {} with a different {}",
                                        l_ty.describe(),
                                        t.describe()
                                    ),
                                    None,
                                );
                            }
                            return;
                        }
                        self.push(
                            &TYPE_MISMATCH,
                            r.unparen().span.clone(),
                            format!("cannot compare {} with {}", l_ty.describe(), a_ty(t)),
                            Some(format!("compare with one of {}", one_of(&e.members))),
                        );
                        return;
                    }
                    (Percent, _) => {
                        self.push(
                            &TYPE_MISMATCH,
                            r.unparen().span.clone(),
                            format!("cannot compare {} with a percentage", l_ty.describe()),
                            None,
                        );
                        return;
                    }
                    _ => None,
                };
                if let Some(m) = member
                    && !e.members.contains(&m)
                {
                    let help = match did_you_mean(&m, e.members.iter().map(String::as_str)) {
                        Some(s) => format!("did you mean `{s}`? members: {}", one_of(&e.members)),
                        None => format!("members, in order: {}", one_of(&e.members)),
                    };
                    self.out.findings.push(Finding {
                        code: &NOT_A_MEMBER,
                        span: r.unparen().span.clone(),
                        message: format!("`{m}` is not a member of {}", l_ty.describe()),
                        help: Some(help),
                        labels: vec![(e.span, "the enum is declared here".into())],
                    });
                }
            }
            self::Ty::Integer | self::Ty::Number => match rt {
                Ty(t) if t.non_null().is_numeric() => {}
                Percent if l_ty == self::Ty::Integer => {
                    let written = match &r.unparen().kind {
                        ExprKind::Percent { written, .. } => format!("{written}"),
                        _ => "N".into(),
                    };
                    self.push(
                        &TYPE_MISMATCH,
                        r.unparen().span.clone(),
                        "a percentage cannot be compared with an integer field".into(),
                        Some(format!(
                            "`{written}%` is the fraction {}; compare with a plain number (`{written}`) or make the field a number between 0 and 1",
                            trim_float(parse_or_zero(&written) / 100.0)
                        )),
                    );
                }
                Percent => {}
                Ty(t) => self.push(
                    &TYPE_MISMATCH,
                    r.unparen().span.clone(),
                    format!("cannot compare {} with {}", a_ty(&l_ty), a_ty(t)),
                    None,
                ),
                _ => {}
            },
            self::Ty::Duration => match rt {
                Ty(self::Ty::Duration) | Ty(self::Ty::Any) => {}
                Ty(t) => self.push(
                    &TYPE_MISMATCH,
                    r.unparen().span.clone(),
                    format!("cannot compare a duration with {}", a_ty(t)),
                    Some("write a duration literal such as `4h` or `30m`".into()),
                ),
                _ => self.push(
                    &TYPE_MISMATCH,
                    r.unparen().span.clone(),
                    "cannot compare a duration with a percentage".into(),
                    None,
                ),
            },
            self::Ty::String | self::Ty::Bool => {
                if op.is_ordering() {
                    self.push(
                        &NOT_ORDERABLE,
                        op_span.clone(),
                        format!(
                            "`{}` orders numbers, durations and enums, not {}",
                            op.as_str(),
                            a_ty(&l_ty)
                        ),
                        Some("use `==`/`!=`, or make the field an enum to order its values".into()),
                    );
                    return;
                }
                match rt {
                    Ty(t) if t.non_null() == l_ty || t.non_null() == self::Ty::Any => {}
                    Ty(t)
                        if l_ty == self::Ty::String
                            && matches!(t.non_null(), self::Ty::Enum(_)) => {}
                    Ty(t) => self.push(
                        &TYPE_MISMATCH,
                        r.unparen().span.clone(),
                        format!("cannot compare {} with {}", a_ty(&l_ty), a_ty(t)),
                        None,
                    ),
                    Ident(s) => self.push(
                        &BARE_WORD,
                        r.unparen().span.clone(),
                        format!("`{s}` is a bare word, not a value"),
                        Some(format!("quote it as a string: '{s}'")),
                    ),
                    _ => self.push(
                        &TYPE_MISMATCH,
                        r.unparen().span.clone(),
                        format!("cannot compare {} with a percentage", a_ty(&l_ty)),
                        None,
                    ),
                }
            }
            other => {
                if op.is_ordering() {
                    self.push(
                        &NOT_ORDERABLE,
                        op_span,
                        format!("`{}` cannot order {}", op.as_str(), a_ty(other)),
                        None,
                    );
                } else if !matches!(rt, Ty(self::Ty::Any)) {
                    self.push(
                        &TYPE_MISMATCH,
                        op_span,
                        format!("cannot compare {} by value", a_ty(other)),
                        None,
                    );
                }
            }
        }
    }

    /// Warns about conditions that are constant.
    fn constant(&mut self, e: &Expr) {
        let mut found: Vec<ESpan> = Vec::new();
        e.walk(&mut |x| {
            if let ExprKind::Compare { lhs, rhs, .. } = &x.kind {
                let same = lhs.without_spans() == rhs.without_spans() && !lhs.contains_error();
                if (is_literal(lhs) && is_literal(rhs)) || same {
                    found.push(x.span.clone());
                }
            }
        });
        if matches!(e.unparen().kind, ExprKind::Bool(_)) {
            found.push(e.span.clone());
        }
        for s in found {
            self.push(
                &CONSTANT_CONDITION,
                s,
                "this condition is always the same: it compares constants".into(),
                Some("compare a ref with a value, or remove the condition".into()),
            );
        }
    }
}

/// A type with its indefinite article: `an integer`, `a string`, `an enum [..]`.
fn a_ty(t: &Ty) -> String {
    let d = t.describe();
    let vowel = d.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {d}", if vowel { "an" } else { "a" })
}

/// Labels for a finding about a ref: the schema part, then the stage that produces it.
fn producer_label(
    producer: &Option<(Span, String)>,
    schema: &Span,
    what: &str,
) -> Vec<(Span, String)> {
    let mut v = vec![(*schema, what.to_string())];
    if let Some((s, name)) = producer {
        v.push((*s, format!("`{name}` is produced by this stage")));
    }
    v
}

fn parse_or_zero(s: &str) -> f64 {
    s.parse().unwrap_or(0.0)
}

fn trim_float(f: f64) -> String {
    let s = format!("{f:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests;
