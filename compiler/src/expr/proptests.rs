//! Property tests for the expression module:
//!
//! * printing a tree and parsing the text gives the same tree (spans aside);
//! * no input, arbitrary or a soup of expression tokens, makes the lexer, the parser, the
//!   interpolation scanner or the monitoring parsers panic, and every span they return is a
//!   valid range of the input on character boundaries;
//! * any input that parses without errors prints to a form that parses back to the same
//!   tree;
//! * deep nesting is one "expression nests too deeply" error, never a crash.

use proptest::prelude::*;
use proptest::sample::select;

use super::ast::{CompareOp, Expr, ExprKind};
use super::lexer::{DurationUnit, keyword};
use super::{
    ExprError, Span, lex, parse, parse_alert_condition, parse_metric_target, scan_interpolations,
};

fn node(kind: ExprKind) -> Expr {
    Expr::new(kind, 0..0)
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_-]{0,8}"
}

fn plain_name() -> impl Strategy<Value = String> {
    name().prop_filter("keyword", |n| keyword(n).is_none())
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<i32>().prop_map(f64::from),
        -1.0e12..1.0e12f64,
        (0u32..10_000, 0u32..1000).prop_map(|(a, b)| f64::from(a) + f64::from(b) / 1000.0),
        Just(-0.0),
    ]
}

fn unit() -> impl Strategy<Value = DurationUnit> {
    select(vec![
        DurationUnit::Seconds,
        DurationUnit::Minutes,
        DurationUnit::Hours,
        DurationUnit::Days,
    ])
}

fn compare_op() -> impl Strategy<Value = CompareOp> {
    select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::In,
        CompareOp::NotIn,
    ])
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        number().prop_map(|v| node(ExprKind::Number(v))),
        number().prop_map(|w| node(ExprKind::Percent {
            value: w / 100.0,
            written: w
        })),
        (number(), unit()).prop_map(|(value, unit)| node(ExprKind::Duration {
            seconds: value * unit.seconds(),
            value,
            unit
        })),
        any::<String>().prop_map(|s| node(ExprKind::Str(s))),
        any::<bool>().prop_map(|b| node(ExprKind::Bool(b))),
        Just(node(ExprKind::Null)),
        plain_name().prop_map(|n| node(ExprKind::Ident(n))),
        (plain_name(), prop::collection::vec(name(), 1..4)).prop_map(|(first, rest)| {
            let segments = std::iter::once(first)
                .chain(rest)
                .map(|n| (n, 0..0))
                .collect();
            node(ExprKind::Ref { segments })
        }),
    ]
}

/// Arbitrary trees, including ones the parser would never build (an `OR` directly inside an
/// `OR`, a comparison inside a comparison): the printer must parenthesize those.
fn tree() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(5, 64, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..5).prop_map(|operands| {
                let op_spans = vec![0..0; operands.len() - 1];
                node(ExprKind::Or { operands, op_spans })
            }),
            prop::collection::vec(inner.clone(), 2..5).prop_map(|operands| {
                let op_spans = vec![0..0; operands.len() - 1];
                node(ExprKind::And { operands, op_spans })
            }),
            inner.clone().prop_map(|e| node(ExprKind::Not {
                op_span: 0..0,
                operand: Box::new(e)
            })),
            (compare_op(), inner.clone(), inner.clone()).prop_map(|(op, l, r)| node(
                ExprKind::Compare {
                    op,
                    op_span: 0..0,
                    lhs: Box::new(l),
                    rhs: Box::new(r)
                }
            )),
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| node(ExprKind::List(items))),
            inner.prop_map(|e| node(ExprKind::Paren(Box::new(e)))),
        ]
    })
}

/// The tree without spans and without parentheses.
fn shape(e: &Expr) -> Expr {
    fn strip(e: Expr) -> Expr {
        let Expr { kind, span } = e;
        let kind = match kind {
            ExprKind::Paren(inner) => return strip(*inner),
            ExprKind::Or { operands, op_spans } => ExprKind::Or {
                operands: operands.into_iter().map(strip).collect(),
                op_spans,
            },
            ExprKind::And { operands, op_spans } => ExprKind::And {
                operands: operands.into_iter().map(strip).collect(),
                op_spans,
            },
            ExprKind::Not { op_span, operand } => ExprKind::Not {
                op_span,
                operand: Box::new(strip(*operand)),
            },
            ExprKind::Compare {
                op,
                op_span,
                lhs,
                rhs,
            } => ExprKind::Compare {
                op,
                op_span,
                lhs: Box::new(strip(*lhs)),
                rhs: Box::new(strip(*rhs)),
            },
            ExprKind::List(items) => ExprKind::List(items.into_iter().map(strip).collect()),
            other => other,
        };
        Expr { kind, span }
    }
    strip(e.without_spans())
}

fn check_span(src: &str, span: &Span) -> Result<(), TestCaseError> {
    let (s, e) = (span.start as usize, span.end as usize);
    prop_assert!(
        s <= e && e <= src.len(),
        "span {span:?} out of bounds for {src:?}"
    );
    prop_assert!(
        src.is_char_boundary(s) && src.is_char_boundary(e),
        "span {span:?} not on char boundaries for {src:?}"
    );
    Ok(())
}

fn check_errors(src: &str, errors: &[ExprError]) -> Result<(), TestCaseError> {
    for err in errors {
        check_span(src, &err.span)?;
        prop_assert!(!err.message.is_empty());
        prop_assert!(
            err.message
                .chars()
                .next()
                .is_some_and(|c| !c.is_uppercase()),
            "message not lower-case: {}",
            err.message
        );
    }
    Ok(())
}

fn check_tree(src: &str, e: &Expr) -> Result<(), TestCaseError> {
    let mut spans = Vec::new();
    e.clone().map_spans(&mut |s| {
        spans.push(s.clone());
        s.clone()
    });
    for s in &spans {
        check_span(src, s)?;
    }
    Ok(())
}

/// Everything that reads text, on one input: no panic, valid spans, and the round trip for
/// any input that parses cleanly.
fn exercise(src: &str) -> Result<(), TestCaseError> {
    let lexed = lex(src);
    check_errors(src, &lexed.errors)?;
    for t in &lexed.tokens {
        check_span(src, &t.span)?;
    }

    let (expr, errors) = parse(src);
    check_errors(src, &errors)?;
    if let Some(e) = &expr {
        check_tree(src, e)?;
    }
    if errors.is_empty() {
        let e = expr.ok_or_else(|| TestCaseError::fail("no tree and no error"))?;
        prop_assert!(!e.contains_error());
        let printed = e.to_string();
        let (again, errors2) = parse(&printed);
        prop_assert!(
            errors2.is_empty(),
            "{printed:?} (from {src:?}): {errors2:?}"
        );
        let again = again.ok_or_else(|| TestCaseError::fail("no tree"))?;
        prop_assert_eq!(again.without_spans(), e.without_spans());
    } else {
        prop_assert!(expr.is_none_or(|e| e.span.end as usize <= src.len()));
    }

    let (target, errors) = parse_metric_target(src);
    check_errors(src, &errors)?;
    if let Some(t) = target {
        check_span(src, &t.span)?;
        check_span(src, &t.op_span)?;
        check_tree(src, &t.value)?;
    }
    let (alert, errors) = parse_alert_condition(src);
    check_errors(src, &errors)?;
    if let Some(a) = alert {
        check_span(src, &a.span)?;
        check_span(src, &a.metric_span)?;
    }

    let (interps, errors) = scan_interpolations(src);
    check_errors(src, &errors)?;
    for i in interps {
        check_span(src, &i.span)?;
        check_span(src, &i.inner_span)?;
        let (e, errors) = i.parse();
        check_errors(src, &errors)?;
        if let Some(e) = e {
            check_tree(src, &e)?;
        }
    }
    Ok(())
}

const TOKENS: &[&str] = &[
    "a",
    "b.c",
    "input.risk-level",
    "HIGH",
    "x-y",
    "AND",
    "or",
    "NOT",
    "not in",
    "!",
    "&&",
    "||",
    "IN",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "=",
    "<>",
    "&",
    "|",
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
    "1",
    "-2.5",
    "10000",
    "30%",
    "4h",
    "1.5d",
    "'s'",
    "\"t\"",
    "'",
    "\"",
    "\\",
    "true",
    "FALSE",
    "null",
    "10_pods",
    "$50/month",
    "5 minutes",
    "${x}",
    "$${",
    "${",
    "}",
    "-",
    "+",
    "é",
    "≥",
    "p95",
    "%",
    "2x",
    "is",
    "10,000",
    "\u{a0}",
    "\n",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec((select(TOKENS), any::<bool>()), 0..40).prop_map(|parts| {
        let mut s = String::new();
        for (tok, space) in parts {
            s.push_str(tok);
            if space {
                s.push(' ');
            }
        }
        s
    })
}

/// 512 cases per property, or `PROPTEST_CASES` when set (for longer local fuzzing).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// (a) print, parse, compare: the printer's output parses to the same tree (parentheses
    /// it had to add aside), and printing that tree again gives the same text.
    #[test]
    fn print_then_parse_round_trips(ast in tree()) {
        let printed = ast.to_string();
        let (parsed, errors) = parse(&printed);
        prop_assert!(errors.is_empty(), "{printed:?}: {errors:?}");
        let parsed = parsed.ok_or_else(|| TestCaseError::fail("no tree"))?;
        prop_assert_eq!(shape(&parsed), shape(&ast));
        let reprinted = parsed.to_string();
        prop_assert_eq!(&reprinted, &printed);
        let (again, _) = parse(&reprinted);
        let again = again.ok_or_else(|| TestCaseError::fail("no tree"))?;
        prop_assert_eq!(again.without_spans(), parsed.without_spans());
        check_tree(&printed, &parsed)?;
    }

    /// (b) arbitrary Unicode text.
    #[test]
    fn arbitrary_text_never_panics(src in any::<String>()) {
        exercise(&src)?;
    }

    /// (b) printable ASCII, where most of the grammar's characters live.
    #[test]
    fn arbitrary_ascii_never_panics(src in "[ -~]{0,60}") {
        exercise(&src)?;
    }

    /// (b) soups of expression tokens, with and without spaces between them.
    #[test]
    fn token_soup_never_panics(src in soup()) {
        exercise(&src)?;
    }

    /// (c) nesting past the limit is one error, whatever the nesting is made of.
    #[test]
    fn deep_nesting_is_an_error(
        depth in (super::MAX_DEPTH as usize + 1)..3000,
        opener in select(vec!["(", "NOT ", "!", "[", "([", "NOT ("]),
        closed in any::<bool>(),
    ) {
        let mut src = opener.repeat(depth);
        src.push('x');
        if closed {
            let closer: String = opener.chars().rev().filter_map(|c| match c {
                '(' => Some(')'),
                '[' => Some(']'),
                _ => None,
            }).collect();
            src.push_str(&closer.repeat(depth));
        }
        let (_, errors) = parse(&src);
        prop_assert_eq!(errors.len(), 1, "{:?}", errors);
        prop_assert_eq!(errors[0].message.as_str(), "expression nests too deeply");
        check_errors(&src, &errors)?;
    }
}
