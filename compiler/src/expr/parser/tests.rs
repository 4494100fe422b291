use super::*;
use crate::expr::lexer::DurationUnit;

#[test]
fn the_memo_gives_the_parse_of_the_text() {
    for src in ["a.b >= 3", "x.y IN [A, B] AND", "", "((", "a.b == 'c'"] {
        let memo = parse_memo(src);
        assert_eq!(*memo, parse(src), "{src:?}");
        assert!(
            std::sync::Arc::ptr_eq(&memo, &parse_memo(src)),
            "{src:?} kept"
        );
    }
}

/// Parses and asserts there were no errors.
fn ok(src: &str) -> Expr {
    let (e, errors) = parse(src);
    assert!(
        errors.is_empty(),
        "unexpected errors for {src:?}: {errors:#?}"
    );
    e.unwrap_or_else(|| panic!("no expression for {src:?}"))
}

fn errs(src: &str) -> Vec<ExprError> {
    parse(src).1
}

fn one_err(src: &str) -> ExprError {
    let errors = errs(src);
    assert_eq!(
        errors.len(),
        1,
        "expected one error for {src:?}: {errors:#?}"
    );
    errors
        .into_iter()
        .next()
        .unwrap_or_else(|| ExprError::new(0..0, ""))
}

fn text<'a>(src: &'a str, span: &Span) -> &'a str {
    &src[span.start as usize..span.end as usize]
}

#[test]
fn seed_000_conditions() {
    let src = "security-report.risk-level >= HIGH";
    let e = ok(src);
    assert_eq!(e.span, 0..34);
    let ExprKind::Compare {
        op,
        op_span,
        lhs,
        rhs,
    } = &e.kind
    else {
        panic!("{e:?}")
    };
    assert_eq!(*op, CompareOp::Ge);
    assert_eq!(text(src, op_span), ">=");
    assert_eq!(
        lhs.kind,
        ExprKind::Ref {
            segments: vec![
                ("security-report".into(), 0..15),
                ("risk-level".into(), 16..26)
            ]
        }
    );
    assert_eq!(lhs.span, 0..26);
    assert_eq!(rhs.kind, ExprKind::Ident("HIGH".into()));
    assert_eq!(rhs.span, 30..34);

    let e = ok("migration.affected-rows > 10000");
    let ExprKind::Compare { rhs, .. } = &e.kind else {
        panic!()
    };
    assert_eq!(rhs.kind, ExprKind::Number(10000.0));
    assert_eq!(rhs.span, 26..31);
}

#[test]
fn seed_003_conditions() {
    let e = ok("severity == P0 AND off_hours == true");
    let ExprKind::And { operands, op_spans } = &e.kind else {
        panic!()
    };
    assert_eq!(operands.len(), 2);
    assert_eq!(op_spans, &vec![15..18]);
    let e = ok("action IN ['restart_pod', 'scale_deployment']");
    let ExprKind::Compare { op, rhs, .. } = &e.kind else {
        panic!()
    };
    assert_eq!(*op, CompareOp::In);
    let ExprKind::List(items) = &rhs.kind else {
        panic!()
    };
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].kind, ExprKind::Str("scale_deployment".into()));
    assert_eq!(items[1].span, 26..44);
    assert_eq!(rhs.span, 10..45);
    assert_eq!(ok("risk == low").span, 0..11);
    assert!(matches!(
        ok("approval_not_required").kind,
        ExprKind::Ident(_)
    ));
}

#[test]
fn literals() {
    assert_eq!(ok("-0.5").kind, ExprKind::Number(-0.5));
    assert_eq!(
        ok("30%").kind,
        ExprKind::Percent {
            value: 0.3,
            written: 30.0
        }
    );
    assert_eq!(
        ok("1.5h").kind,
        ExprKind::Duration {
            seconds: 5400.0,
            value: 1.5,
            unit: DurationUnit::Hours
        }
    );
    assert_eq!(ok("'x'").kind, ExprKind::Str("x".into()));
    assert_eq!(ok("TRUE").kind, ExprKind::Bool(true));
    assert_eq!(ok("false").kind, ExprKind::Bool(false));
    assert_eq!(ok("Null").kind, ExprKind::Null);
    assert_eq!(ok("[]").kind, ExprKind::List(vec![]));
    assert_eq!(ok("[ ]").span, 0..3);
}

#[test]
fn precedence_and_associativity() {
    // OR < AND < NOT < comparison
    let e = ok("a OR b AND c OR d");
    let ExprKind::Or { operands, op_spans } = &e.kind else {
        panic!()
    };
    assert_eq!(operands.len(), 3);
    assert_eq!(op_spans, &vec![2..4, 13..15]);
    assert!(matches!(operands[1].kind, ExprKind::And { .. }));
    assert_eq!(operands[1].span, 5..12);

    let e = ok("NOT a == b");
    let ExprKind::Not { op_span, operand } = &e.kind else {
        panic!()
    };
    assert_eq!(*op_span, 0..3);
    assert!(matches!(operand.kind, ExprKind::Compare { .. }));
    assert_eq!(e.span, 0..10);

    let e = ok("!a && b || c");
    assert!(matches!(e.kind, ExprKind::Or { .. }));
    let e = ok("not not x");
    let ExprKind::Not { operand, .. } = &e.kind else {
        panic!()
    };
    assert!(matches!(operand.kind, ExprKind::Not { .. }));
}

#[test]
fn not_in() {
    let src = "input.kind NOT IN ['LOW', 'MEDIUM']";
    let e = ok(src);
    let ExprKind::Compare { op, op_span, .. } = &e.kind else {
        panic!()
    };
    assert_eq!(*op, CompareOp::NotIn);
    assert_eq!(text(src, op_span), "NOT IN");
    let e = ok("x not   in y");
    let ExprKind::Compare { op, op_span, .. } = &e.kind else {
        panic!()
    };
    assert_eq!(*op, CompareOp::NotIn);
    assert_eq!(*op_span, 2..10);
}

#[test]
fn parens_keep_spans() {
    let e = ok("(a OR b) AND c");
    let ExprKind::And { operands, .. } = &e.kind else {
        panic!()
    };
    assert_eq!(operands[0].span, 0..8);
    let ExprKind::Paren(inner) = &operands[0].kind else {
        panic!()
    };
    assert_eq!(inner.span, 1..7);
}

#[test]
fn refs_and_keyword_segments() {
    let e = ok("input.in.null.AND");
    let ExprKind::Ref { segments } = &e.kind else {
        panic!()
    };
    let names: Vec<_> = segments.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["input", "in", "null", "AND"]);
    assert_eq!(segments[3].1, 14..17);
    // Whitespace around `.` is allowed.
    let e = ok("a . b");
    assert_eq!(e.span, 0..5);
}

#[test]
fn missing_operand_at_end() {
    let err = one_err("a >=");
    assert_eq!(
        err.message,
        "expected an operand after `>=`, found end of expression"
    );
    assert_eq!(err.span, 2..4);
    let (e, _) = parse("a >=");
    let e = e.unwrap_or_else(|| Expr::new(ExprKind::Null, 0..0));
    let ExprKind::Compare { rhs, .. } = &e.kind else {
        panic!()
    };
    assert_eq!(rhs.kind, ExprKind::Error);
    assert_eq!(rhs.span, 4..4);
}

#[test]
fn missing_operand_before_token() {
    let err = one_err("a AND AND b");
    assert_eq!(err.message, "expected an operand after `AND`, found `AND`");
    assert_eq!(err.span, 6..9);
    let err = one_err("> 5");
    assert_eq!(err.message, "expected an expression, found `>`");
    assert!(err.help.is_some());
    let err = one_err("()");
    assert_eq!(err.message, "expected an expression after `(`, found `)`");
    assert_eq!(err.span, 1..2);
    let err = one_err("a == NOT b");
    assert_eq!(err.message, "expected an operand after `==`, found `NOT`");
    assert!(err.help.as_deref().unwrap_or("").contains("NOT (a == b)"));
}

#[test]
fn several_errors_in_one_expression() {
    let errors = errs("(a > ) AND (b <");
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert_eq!(
        errors[0].message,
        "expected an operand after `>`, found `)`"
    );
    assert_eq!(errors[0].span, 5..6);
    assert_eq!(
        errors[1].message,
        "unclosed `(`: expected `)` before the end of the expression"
    );
    assert_eq!(errors[1].span, 11..12);
    assert_eq!(
        errors[2].message,
        "expected an operand after `<`, found end of expression"
    );
    assert_eq!(errors[2].span, 14..15);
}

#[test]
fn unclosed_paren_and_bracket() {
    let err = one_err("(a > b");
    assert_eq!(err.span, 0..1);
    assert!(err.message.starts_with("unclosed `(`"));
    let err = one_err("x IN ['a', 'b'");
    assert_eq!(err.span, 5..6);
    assert!(err.message.starts_with("unclosed `[`"));
    let errors = errs("([a)");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].message, "expected `,` or `]`, found `)`");
    let errors = errs("[(a]");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].message, "expected `)` to close `(`, found `]`");
}

#[test]
fn unmatched_closer() {
    let err = one_err("a > b)");
    assert_eq!(err.message, "unmatched `)`");
    assert_eq!(err.span, 5..6);
    let (e, _) = parse("a > b) AND c");
    assert!(matches!(e.map(|e| e.kind), Some(ExprKind::And { .. })));
}

#[test]
fn chained_comparison() {
    let err = one_err("a < b < c");
    assert_eq!(err.message, "comparison operators cannot be chained");
    assert_eq!(err.span, 6..7);
    assert_eq!(
        err.help.as_deref(),
        Some("join two comparisons with `AND`: `a < b AND b < c`")
    );
    let (e, _) = parse("a < b < c");
    let e = e.unwrap_or_else(|| Expr::new(ExprKind::Null, 0..0));
    assert!(matches!(e.kind, ExprKind::Compare { .. }));
    assert_eq!(e.span, 0..5);
    // One error for a long chain.
    assert_eq!(errs("a == b == c == d").len(), 1);
    // `a > > b` is one missing-operand error, not also a chain.
    let err = one_err("a > > b");
    assert_eq!(err.message, "expected an operand after `>`, found `>`");
}

#[test]
fn trailing_junk() {
    let err = one_err("a > b c");
    assert_eq!(
        err.message,
        "expected `AND`, `OR` or end of expression, found `c`"
    );
    assert_eq!(err.span, 6..7);
    let err = one_err("a b");
    assert_eq!(
        err.message,
        "expected an operator or end of expression, found `b`"
    );
    let err = one_err("(a b)");
    assert_eq!(err.message, "expected an operator or `)`, found `b`");
    let err = one_err("x is null");
    assert_eq!(err.help.as_deref(), Some("compare with `==`"));
    let err = one_err("x is not null");
    assert_eq!(err.help.as_deref(), Some("compare with `!=`"));
    let err = one_err("len(x) > 1");
    assert_eq!(
        err.help.as_deref(),
        Some("function calls are not supported")
    );
}

#[test]
fn junk_recovery_finds_later_errors() {
    let errors = errs("a > 5 minutes AND b < 10_pods");
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(errors[0].message, "`5 minutes` is not a valid duration");
    assert_eq!(errors[0].span, 4..13);
    assert!(
        errors[0]
            .help
            .as_deref()
            .unwrap_or("")
            .starts_with("write `5m`")
    );
    assert_eq!(errors[1].message, "`10_pods` is not a valid number");
    assert_eq!(errors[1].span, 22..29);
}

#[test]
fn seed_003_forms_get_targeted_help() {
    let err = one_err("blast_radius < 10_pods");
    assert!(
        err.help
            .as_deref()
            .unwrap_or("")
            .starts_with("numbers take no unit: write `10`")
    );
    let err = one_err("savings > $50/month");
    assert_eq!(err.span, 10..19);
    assert!(err.help.as_deref().unwrap_or("").contains("`50`"));
    let err = one_err("timeout > 5 minutes");
    assert_eq!(err.span, 10..19);
    assert!(err.help.as_deref().unwrap_or("").starts_with("write `5m`"));
    let err = one_err("scale_up < 2x");
    assert_eq!(err.message, "`2x` is not a valid number");
    let err = one_err("count > 10 pods");
    assert_eq!(
        err.help.as_deref(),
        Some("numbers take no unit: write `10` alone")
    );
    let err = one_err("rows > 10,000");
    assert_eq!(err.message, "`10,000` is not a number");
    assert_eq!(err.span, 7..13);
}

#[test]
fn list_errors() {
    let err = one_err("x IN ['a', 'b',]");
    assert_eq!(err.message, "expected a list item after `,`, found `]`");
    assert_eq!(err.span, 14..15);
    assert_eq!(err.help.as_deref(), Some("remove the trailing `,`"));
    let err = one_err("x IN ['a' 'b']");
    assert_eq!(
        err.message,
        "expected `,` or `]` after a list item, found `'b'`"
    );
    assert_eq!(err.help.as_deref(), Some("separate list items with `,`"));
    let err = one_err("x IN [a AND b]");
    assert_eq!(err.span, 8..11);
    let err = one_err("x IN [,]");
    assert_eq!(err.message, "expected a list item after `[`, found `,`");
}

#[test]
fn ref_errors() {
    let err = one_err("a. > 1");
    assert_eq!(err.message, "expected a field name after `.`, found `>`");
    let (e, _) = parse("a.");
    assert_eq!(e.map(|e| (e.kind, e.span)), Some((ExprKind::Error, 0..2)));
    let err = one_err("items.0 > 1");
    assert!(err.help.as_deref().unwrap_or("").contains("list indexes"));
    let (e, errors) = parse("a.b. == 1");
    assert_eq!(errors.len(), 1);
    let e = e.unwrap_or_else(|| Expr::new(ExprKind::Null, 0..0));
    let ExprKind::Compare { lhs, .. } = &e.kind else {
        panic!()
    };
    assert!(matches!(lhs.kind, ExprKind::Ref { .. }));
}

#[test]
fn lexer_errors_are_not_repeated() {
    // The stray `+` is reported by the lexer; the parser skips it silently.
    let errors = errs("a + b > 1");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].message, "unexpected character `+`");
    let errors = errs("x == 'abc");
    assert_eq!(errors.len(), 1, "{errors:#?}");
}

#[test]
fn empty_expression() {
    let (e, errors) = parse("   ");
    assert!(e.is_none());
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].message,
        "expected an expression, found end of expression"
    );
    assert_eq!(errors[0].span, 0..3);
}

#[test]
fn depth_limit_is_exact() {
    let at_limit = format!("{}x{}", "(".repeat(64), ")".repeat(64));
    ok(&at_limit);
    let over = format!("{}x{}", "(".repeat(65), ")".repeat(65));
    let err = one_err(&over);
    assert_eq!(err.message, "expression nests too deeply");
    assert_eq!(err.span, 64..65);
    ok(&format!("{}x", "NOT ".repeat(64)));
    ok(&format!("x IN {}{}", "[".repeat(64), "]".repeat(64)));
}

#[test]
fn deep_nesting_is_one_error_not_a_crash() {
    for src in [
        "(".repeat(100_000),
        format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000)),
        "NOT ".repeat(100_000),
        "!".repeat(100_000),
        format!("x IN {}", "[".repeat(100_000)),
        "([".repeat(50_000),
    ] {
        let (_, errors) = parse(&src);
        assert_eq!(errors.len(), 1, "{:?}", &errors[..errors.len().min(3)]);
        assert_eq!(errors[0].message, "expression nests too deeply");
    }
    // Balanced over-deep nesting: the parts around it still parse.
    let src = format!("a AND {}x{} AND b >", "(".repeat(70), ")".repeat(70));
    let errors = errs(&src);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(errors[0].message, "expression nests too deeply");
}

#[test]
fn long_flat_chains_do_not_recurse() {
    let src = vec!["a"; 100_000].join(" AND ");
    let e = ok(&src);
    let ExprKind::And { operands, .. } = &e.kind else {
        panic!()
    };
    assert_eq!(operands.len(), 100_000);
    let src = vec!["a == 1"; 50_000].join(" || ");
    ok(&src);
    let src = format!("x IN [{}]", vec!["1"; 100_000].join(","));
    ok(&src);
    let src = format!("a{}", ".b".repeat(100_000));
    ok(&src);
    let errors = errs(&vec!["a"; 100_000].join(" < "));
    assert_eq!(errors.len(), 1);
}
