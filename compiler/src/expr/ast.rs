//! The typed syntax tree of an expression.
//!
//! Every node has a [`Span`]; so does every segment of a reference and every operator, so a
//! type checker can report at the exact sub-span. `AND` and `OR` chains are n-ary
//! (`a AND b AND c` is one [`ExprKind::And`] with three operands): a long chain does not make
//! the tree deep, and the depth of a parsed tree is bounded by [`super::MAX_DEPTH`].

use super::Span;
use super::lexer::DurationUnit;

/// An expression node: what it is and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What the node is.
    pub kind: ExprKind,
    /// The bytes it covers, relative to the expression text.
    pub span: Span,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `IN`
    In,
    /// `NOT IN`
    NotIn,
}

impl CompareOp {
    /// The canonical spelling: `==`, `!=`, `<`, `<=`, `>`, `>=`, `IN`, `NOT IN`.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::In => "IN",
            CompareOp::NotIn => "NOT IN",
        }
    }

    /// True for `<`, `<=`, `>`, `>=` (they apply to numbers, durations and enums).
    pub fn is_ordering(self) -> bool {
        matches!(
            self,
            CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge
        )
    }

    /// True for `==` and `!=`.
    pub fn is_equality(self) -> bool {
        matches!(self, CompareOp::Eq | CompareOp::Ne)
    }

    /// True for `IN` and `NOT IN`.
    pub fn is_membership(self) -> bool {
        matches!(self, CompareOp::In | CompareOp::NotIn)
    }
}

/// What an expression node is.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// `a OR b OR …` (also `||`): at least two operands; `op_spans[i]` is the operator
    /// between `operands[i]` and `operands[i + 1]`.
    Or {
        /// The operands, in order.
        operands: Vec<Expr>,
        /// The spans of the operators, one fewer than the operands.
        op_spans: Vec<Span>,
    },
    /// `a AND b AND …` (also `&&`): as [`ExprKind::Or`].
    And {
        /// The operands, in order.
        operands: Vec<Expr>,
        /// The spans of the operators, one fewer than the operands.
        op_spans: Vec<Span>,
    },
    /// `NOT a` (also `!a`).
    Not {
        /// The span of `NOT` or `!`.
        op_span: Span,
        /// What is negated.
        operand: Box<Expr>,
    },
    /// `lhs OP rhs`.
    Compare {
        /// The operator.
        op: CompareOp,
        /// The operator's span (for `NOT IN`, from `NOT` to `IN`).
        op_span: Span,
        /// The left operand.
        lhs: Box<Expr>,
        /// The right operand.
        rhs: Box<Expr>,
    },
    /// `first.second…`: at least two segments, each with its own span.
    Ref {
        /// The names, in order, each with its span.
        segments: Vec<(String, Span)>,
    },
    /// `10000`, `-3`, `0.5`.
    Number(f64),
    /// `30%`: `value` is the fraction (0.3), `written` the number before `%` (30).
    Percent {
        /// The fraction: `written / 100`.
        value: f64,
        /// The number as written.
        written: f64,
    },
    /// `4h`, `1.5h`: `seconds` is `value * unit.seconds()`.
    Duration {
        /// The length in seconds.
        seconds: f64,
        /// The number as written.
        value: f64,
        /// The unit as written.
        unit: DurationUnit,
    },
    /// A string literal, escapes resolved.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// A bare name (`HIGH`): legal only against an enum that contains it.
    Ident(String),
    /// `[a, b, …]`: operands.
    List(Vec<Expr>),
    /// `( expr )`, kept so spans and the canonical form follow the source.
    Paren(Box<Expr>),
    /// Where an operand or expression could not be parsed; the error was reported.
    Error,
}

impl Expr {
    /// A node.
    pub fn new(kind: ExprKind, span: Span) -> Self {
        Expr { kind, span }
    }

    /// True if this node is [`ExprKind::Error`].
    pub fn is_error(&self) -> bool {
        matches!(self.kind, ExprKind::Error)
    }

    /// True if this node or any node below it is [`ExprKind::Error`].
    pub fn contains_error(&self) -> bool {
        let mut found = false;
        self.walk(&mut |e| found |= e.is_error());
        found
    }

    /// The node inside any number of parentheses.
    pub fn unparen(&self) -> &Expr {
        let mut e = self;
        while let ExprKind::Paren(inner) = &e.kind {
            e = inner;
        }
        e
    }

    /// The direct children, in source order.
    pub fn children(&self) -> Vec<&Expr> {
        match &self.kind {
            ExprKind::Or { operands, .. } | ExprKind::And { operands, .. } => {
                operands.iter().collect()
            }
            ExprKind::Not { operand, .. } => vec![operand],
            ExprKind::Compare { lhs, rhs, .. } => vec![lhs, rhs],
            ExprKind::List(items) => items.iter().collect(),
            ExprKind::Paren(inner) => vec![inner],
            ExprKind::Ref { .. }
            | ExprKind::Number(_)
            | ExprKind::Percent { .. }
            | ExprKind::Duration { .. }
            | ExprKind::Str(_)
            | ExprKind::Bool(_)
            | ExprKind::Null
            | ExprKind::Ident(_)
            | ExprKind::Error => Vec::new(),
        }
    }

    fn children_mut(&mut self) -> Vec<&mut Expr> {
        match &mut self.kind {
            ExprKind::Or { operands, .. } | ExprKind::And { operands, .. } => {
                operands.iter_mut().collect()
            }
            ExprKind::Not { operand, .. } => vec![operand],
            ExprKind::Compare { lhs, rhs, .. } => vec![lhs, rhs],
            ExprKind::List(items) => items.iter_mut().collect(),
            ExprKind::Paren(inner) => vec![inner],
            ExprKind::Ref { .. }
            | ExprKind::Number(_)
            | ExprKind::Percent { .. }
            | ExprKind::Duration { .. }
            | ExprKind::Str(_)
            | ExprKind::Bool(_)
            | ExprKind::Null
            | ExprKind::Ident(_)
            | ExprKind::Error => Vec::new(),
        }
    }

    /// Calls `f` on this node and every node below it, parents before children, in source
    /// order. Iterative: it does not recurse, whatever the depth of the tree.
    pub fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        let mut stack = vec![self];
        while let Some(e) = stack.pop() {
            f(e);
            stack.extend(e.children().into_iter().rev());
        }
    }

    /// Every reference in the tree, in source order.
    pub fn refs(&self) -> Vec<&Expr> {
        let mut stack = vec![self];
        let mut out = Vec::new();
        while let Some(e) = stack.pop() {
            if matches!(e.kind, ExprKind::Ref { .. }) {
                out.push(e);
            }
            stack.extend(e.children().into_iter().rev());
        }
        out
    }

    /// Applies `f` to every span in the tree: nodes, operators and reference segments.
    pub fn map_spans(&mut self, f: &mut dyn FnMut(&Span) -> Span) {
        let mut stack = vec![self];
        while let Some(e) = stack.pop() {
            e.span = f(&e.span);
            match &mut e.kind {
                ExprKind::Or { op_spans, .. } | ExprKind::And { op_spans, .. } => {
                    for s in op_spans.iter_mut() {
                        *s = f(s);
                    }
                }
                ExprKind::Not { op_span, .. } | ExprKind::Compare { op_span, .. } => {
                    *op_span = f(op_span);
                }
                ExprKind::Ref { segments } => {
                    for (_, s) in segments.iter_mut() {
                        *s = f(s);
                    }
                }
                _ => {}
            }
            stack.extend(e.children_mut());
        }
    }

    /// Moves every span `offset` bytes to the right (saturating): for an expression that
    /// starts `offset` bytes into a larger text.
    pub fn shift_spans(&mut self, offset: u32) {
        self.map_spans(&mut |s| super::shift_span(s, offset));
    }

    /// Sets every span to `0..0`, so trees can be compared by structure alone.
    pub fn strip_spans(&mut self) {
        self.map_spans(&mut |_| 0..0);
    }

    /// A copy with every span set to `0..0`.
    #[must_use]
    pub fn without_spans(&self) -> Expr {
        let mut e = self.clone();
        e.strip_spans();
        e
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    fn leaf(kind: ExprKind, span: Span) -> Expr {
        Expr::new(kind, span)
    }

    fn sample() -> Expr {
        // a.b > 1 AND NOT c
        let r = leaf(
            ExprKind::Ref {
                segments: vec![("a".into(), 0..1), ("b".into(), 2..3)],
            },
            0..3,
        );
        let cmp = leaf(
            ExprKind::Compare {
                op: CompareOp::Gt,
                op_span: 4..5,
                lhs: Box::new(r),
                rhs: Box::new(leaf(ExprKind::Number(1.0), 6..7)),
            },
            0..7,
        );
        let not = leaf(
            ExprKind::Not {
                op_span: 12..15,
                operand: Box::new(leaf(ExprKind::Ident("c".into()), 16..17)),
            },
            12..17,
        );
        leaf(
            ExprKind::And {
                operands: vec![cmp, not],
                op_spans: vec![8..11],
            },
            0..17,
        )
    }

    #[test]
    fn walk_is_preorder_in_source_order() {
        let mut starts = Vec::new();
        sample().walk(&mut |e| starts.push(e.span.start));
        assert_eq!(starts, vec![0, 0, 0, 6, 12, 16]);
    }

    #[test]
    fn shift_moves_every_span() {
        let mut e = sample();
        e.shift_spans(10);
        let ExprKind::And { operands, op_spans } = &e.kind else {
            panic!("not an And")
        };
        assert_eq!(e.span, 10..27);
        assert_eq!(op_spans, &vec![18..21]);
        let ExprKind::Compare { lhs, op_span, .. } = &operands[0].kind else {
            panic!("not a Compare")
        };
        assert_eq!(op_span, &(14..15));
        let ExprKind::Ref { segments } = &lhs.kind else {
            panic!("not a Ref")
        };
        assert_eq!(segments[1].1, 12..13);
    }

    #[test]
    fn strip_spans_and_helpers() {
        let e = sample().without_spans();
        let mut spans = Vec::new();
        e.walk(&mut |n| spans.push(n.span.clone()));
        assert!(spans.iter().all(|s| *s == (0..0)));
        assert_eq!(sample().refs().len(), 1);
        assert!(!sample().contains_error());
        let p = leaf(ExprKind::Paren(Box::new(leaf(ExprKind::Null, 1..5))), 0..6);
        assert_eq!(p.unparen().kind, ExprKind::Null);
        assert!(CompareOp::Ge.is_ordering() && CompareOp::NotIn.is_membership());
        assert!(CompareOp::Ne.is_equality());
        assert_eq!(CompareOp::NotIn.as_str(), "NOT IN");
    }
}
