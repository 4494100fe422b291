use super::*;
use crate::expr::Span;

fn kinds(src: &str) -> Vec<TokenKind> {
    lex(src).tokens.into_iter().map(|t| t.kind).collect()
}

fn spans(src: &str) -> Vec<Span> {
    lex(src).tokens.into_iter().map(|t| t.span).collect()
}

fn name(s: &str) -> TokenKind {
    TokenKind::Name(s.to_string())
}

#[test]
fn empty_input_is_just_eof() {
    let l = lex("");
    assert_eq!(
        l.tokens,
        vec![Token {
            kind: TokenKind::Eof,
            span: 0..0
        }]
    );
    assert!(l.errors.is_empty());
    assert_eq!(kinds("  \n\t "), vec![TokenKind::Eof]);
    assert_eq!(spans("  "), vec![2..2]);
}

#[test]
fn keywords_are_case_insensitive() {
    use TokenKind::*;
    assert_eq!(
        kinds("AND and And OR or NOT not IN in TRUE true False NULL null"),
        vec![
            And, And, And, Or, Or, Not, Not, In, In, True, True, False, Null, Null, Eof
        ]
    );
}

#[test]
fn symbolic_logical_operators() {
    use TokenKind::*;
    assert_eq!(
        kinds("a && b || !c"),
        vec![name("a"), And, name("b"), Or, Not, name("c"), Eof]
    );
    assert_eq!(spans("a && b"), vec![0..1, 2..4, 5..6, 6..6]);
}

#[test]
fn comparison_operators() {
    use TokenKind::*;
    assert_eq!(kinds("== != >= <= > <"), vec![Eq, Ne, Ge, Le, Gt, Lt, Eof]);
    assert_eq!(kinds("a>=b"), vec![name("a"), Ge, name("b"), Eof]);
    assert_eq!(kinds("!!a"), vec![Not, Not, name("a"), Eof]);
}

#[test]
fn names_with_dashes_are_one_token() {
    use TokenKind::*;
    assert_eq!(
        kinds("security-report.risk-level"),
        vec![name("security-report"), Dot, name("risk-level"), Eof]
    );
    assert_eq!(kinds("a-b"), vec![name("a-b"), Eof]);
    assert_eq!(kinds("_x1-"), vec![name("_x1-"), Eof]);
    assert_eq!(
        spans("input.affected-rows"),
        vec![0..5, 5..6, 6..19, 19..19]
    );
    // A keyword spelled inside a longer name is not a keyword.
    assert_eq!(
        kinds("and-x notable"),
        vec![name("and-x"), name("notable"), Eof]
    );
}

#[test]
fn numbers() {
    use TokenKind::*;
    assert_eq!(
        kinds("10000 0.5 -3 -0.25 007"),
        vec![
            Number(10000.0),
            Number(0.5),
            Number(-3.0),
            Number(-0.25),
            Number(7.0),
            Eof
        ]
    );
    // `a -1` is a name and a negative number; `a-1` is one name.
    assert_eq!(kinds("a -1"), vec![name("a"), Number(-1.0), Eof]);
    assert_eq!(kinds("a-1"), vec![name("a-1"), Eof]);
    // `1.` is a number and a dot.
    assert_eq!(kinds("1."), vec![Number(1.0), Dot, Eof]);
    assert_eq!(spans("-12.5"), vec![0..5, 5..5]);
}

#[test]
fn percent() {
    assert_eq!(
        kinds("30%"),
        vec![
            TokenKind::Percent {
                value: 0.3,
                written: 30.0
            },
            TokenKind::Eof
        ]
    );
    assert_eq!(
        kinds("-2.5%"),
        vec![
            TokenKind::Percent {
                value: -0.025,
                written: -2.5
            },
            TokenKind::Eof
        ]
    );
    assert_eq!(spans("5%"), vec![0..2, 2..2]);
}

#[test]
fn durations() {
    let d = |seconds, value, unit| TokenKind::Duration {
        seconds,
        value,
        unit,
    };
    assert_eq!(
        kinds("4h 30s 10m 2d 1.5h"),
        vec![
            d(14400.0, 4.0, DurationUnit::Hours),
            d(30.0, 30.0, DurationUnit::Seconds),
            d(600.0, 10.0, DurationUnit::Minutes),
            d(172800.0, 2.0, DurationUnit::Days),
            d(5400.0, 1.5, DurationUnit::Hours),
            TokenKind::Eof
        ]
    );
    assert_eq!(spans("1.5h"), vec![0..4, 4..4]);
    // A duration followed by punctuation.
    assert_eq!(
        kinds("4h)"),
        vec![
            d(14400.0, 4.0, DurationUnit::Hours),
            TokenKind::RParen,
            TokenKind::Eof
        ]
    );
}

#[test]
fn strings_and_escapes() {
    assert_eq!(
        kinds("'a b'"),
        vec![TokenKind::Str("a b".into()), TokenKind::Eof]
    );
    assert_eq!(
        kinds(r#""it's""#),
        vec![TokenKind::Str("it's".into()), TokenKind::Eof]
    );
    assert_eq!(
        kinds(r#"'a\'b\\c\"d\n\t\r'"#),
        vec![TokenKind::Str("a'b\\c\"d\n\t\r".into()), TokenKind::Eof]
    );
    assert_eq!(
        kinds("'héllo'"),
        vec![TokenKind::Str("héllo".into()), TokenKind::Eof]
    );
    assert_eq!(spans("x == 'é'"), vec![0..1, 2..4, 5..9, 9..9]);
}

#[test]
fn unknown_escape_is_reported_and_kept() {
    let l = lex(r"'a\qb'");
    assert_eq!(l.tokens[0].kind, TokenKind::Str("aqb".into()));
    assert_eq!(l.errors.len(), 1);
    assert_eq!(l.errors[0].span, 2..4);
    assert_eq!(
        l.errors[0].message,
        "unknown escape sequence `\\q` in string"
    );
}

#[test]
fn unterminated_string() {
    let l = lex("a == 'abc");
    assert_eq!(l.errors.len(), 1);
    assert_eq!(l.errors[0].span, 5..9);
    assert_eq!(l.errors[0].message, "unterminated string");
    assert_eq!(l.errors[0].help.as_deref(), Some("add a closing `'`"));
    assert_eq!(
        l.tokens[2],
        Token {
            kind: TokenKind::Error,
            span: 5..9
        }
    );
    // A trailing backslash does not close it either.
    let l = lex("'abc\\");
    assert_eq!(l.errors[0].message, "unterminated string");
    assert_eq!(l.errors[0].span, 0..5);
}

#[test]
fn stray_characters_are_grouped_and_lexing_continues() {
    let l = lex("a + b @@ c");
    assert_eq!(
        l.tokens.iter().map(|t| t.kind.clone()).collect::<Vec<_>>(),
        vec![
            name("a"),
            TokenKind::Error,
            name("b"),
            TokenKind::Error,
            name("c"),
            TokenKind::Eof
        ]
    );
    assert_eq!(l.errors.len(), 2);
    assert_eq!(l.errors[0].span, 2..3);
    assert_eq!(l.errors[0].message, "unexpected character `+`");
    assert!(
        l.errors[0]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("no arithmetic")
    );
    assert_eq!(l.errors[1].span, 6..8);
    assert_eq!(l.errors[1].message, "unexpected characters `@@`");
}

#[test]
fn non_ascii_stray_characters() {
    let l = lex("a ≥ 5");
    assert_eq!(l.errors.len(), 1);
    assert_eq!(l.errors[0].span, 2..5);
    assert_eq!(l.errors[0].help.as_deref(), Some("use `>=`"));
    // Non-ASCII whitespace separates tokens.
    assert_eq!(
        kinds("a\u{a0}b"),
        vec![name("a"), name("b"), TokenKind::Eof]
    );
}

#[test]
fn curly_quoted_string_is_one_error() {
    let l = lex("x == ‘a b’");
    assert_eq!(l.errors.len(), 1);
    assert_eq!(l.errors[0].span, 5..14);
    assert_eq!(l.errors[0].message, "`‘a b’` is quoted with curly quotes");
    assert_eq!(
        l.tokens[2],
        Token {
            kind: TokenKind::Error,
            span: 5..14
        }
    );
}

#[test]
fn operator_lookalikes_are_reported_and_recovered() {
    let l = lex("a = b");
    assert_eq!(l.tokens[1].kind, TokenKind::Eq);
    assert_eq!(l.errors[0].span, 2..3);
    assert_eq!(l.errors[0].help.as_deref(), Some("use `==` to compare"));
    let l = lex("a <> b & c | d");
    assert_eq!(
        l.tokens.iter().map(|t| t.kind.clone()).collect::<Vec<_>>(),
        vec![
            name("a"),
            TokenKind::Ne,
            name("b"),
            TokenKind::And,
            name("c"),
            TokenKind::Or,
            name("d"),
            TokenKind::Eof
        ]
    );
    assert_eq!(l.errors.len(), 3);
}

#[test]
fn number_with_unit_suffix() {
    let l = lex("blast_radius < 10_pods");
    assert_eq!(
        l.tokens[2],
        Token {
            kind: TokenKind::Error,
            span: 15..22
        }
    );
    assert_eq!(l.errors.len(), 1);
    assert_eq!(l.errors[0].span, 15..22);
    assert_eq!(l.errors[0].message, "`10_pods` is not a valid number");
    assert!(
        l.errors[0]
            .help
            .as_deref()
            .unwrap_or("")
            .starts_with("numbers take no unit: write `10`")
    );
}

#[test]
fn spelled_out_duration_suffix() {
    let l = lex("5min");
    assert_eq!(l.errors[0].message, "`5min` is not a valid duration");
    assert!(
        l.errors[0]
            .help
            .as_deref()
            .unwrap_or("")
            .starts_with("write `5m`")
    );
    let l = lex("2weeks");
    assert!(
        l.errors[0]
            .help
            .as_deref()
            .unwrap_or("")
            .starts_with("write `14d`")
    );
    let l = lex("500ms");
    assert!(
        l.errors[0]
            .help
            .as_deref()
            .unwrap_or("")
            .starts_with("write `0.5s`")
    );
    let l = lex("4hours");
    assert!(
        l.errors[0]
            .help
            .as_deref()
            .unwrap_or("")
            .starts_with("write `4h`")
    );
    let l = lex("1e5");
    assert!(
        l.errors[0]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("scientific notation")
    );
}

#[test]
fn currency_amounts() {
    let l = lex("savings > $50/month");
    assert_eq!(
        l.tokens[2],
        Token {
            kind: TokenKind::Error,
            span: 10..19
        }
    );
    assert_eq!(l.errors.len(), 1);
    assert_eq!(
        l.errors[0].message,
        "`$50/month` is not a number: the expression language has no currency amounts"
    );
    assert!(l.errors[0].help.as_deref().unwrap_or("").contains("`50`"));
    let l = lex("$1,200.50");
    assert!(
        l.errors[0]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("`1200.50`")
    );
}

#[test]
fn interpolation_inside_expression() {
    let l = lex("${input.x} > 5");
    assert_eq!(
        l.tokens[0],
        Token {
            kind: TokenKind::Error,
            span: 0..10
        }
    );
    assert_eq!(
        l.errors[0].help.as_deref(),
        Some("write the reference directly: `input.x`")
    );
    let l = lex("${{ a.b }}");
    assert_eq!(l.tokens[0].span, 0..10);
    assert_eq!(
        l.errors[0].help.as_deref(),
        Some("write the reference directly: `a.b`")
    );
    let l = lex("${a.b");
    assert_eq!(l.tokens[0].span, 0..5);
}

#[test]
fn dollar_name_is_reported_then_lexed() {
    let l = lex("$x");
    assert_eq!(l.tokens[0].kind, name("x"));
    assert_eq!(l.errors[0].span, 0..1);
}

#[test]
fn huge_number_is_an_error() {
    let big = "9".repeat(400);
    let l = lex(&big);
    assert_eq!(l.tokens[0].kind, TokenKind::Error);
    assert_eq!(l.errors[0].span, 0..400);
    assert!(l.errors[0].message.contains("too large"));
}
