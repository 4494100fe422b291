//! `${…}` interpolations inside strings.
//!
//! [`scan`] splits a string into literal text and interpolations; [`scan_interpolations`]
//! returns only the interpolations. Spans are byte ranges relative to the string.
//!
//! Rules:
//!
//! * `${` starts an interpolation and the first `}` after it ends it. The text between is
//!   the interpolation's expression ([`Interpolation::inner`]); [`Interpolation::parse`]
//!   parses it. Expressions contain no braces, so no nesting is needed.
//! * `$${` is an escape for a literal `${` (as in Terraform and Argo templates): it starts
//!   no interpolation, and the literal text has `${` in its place. The scan is left to
//!   right, so `$$${x}` is a literal `$` followed by the escape: the text `$${x}`.
//! * Any other `$` is literal text (`$5`, `a$b`, a trailing `$`).
//! * A `${` without a closing `}` is an error spanning from `${` to the end of the string;
//!   the rest of the string is kept as literal text.
//! * An empty interpolation (`${}` or `${ }`) is an error and is left out of the result.

use super::ast::Expr;
use super::{ExprError, Span, pos};

/// One `${…}` in a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpolation {
    /// The text between `${` and `}`, as written (not trimmed).
    pub inner: String,
    /// From `$` to `}` inclusive, relative to the string.
    pub span: Span,
    /// The span of [`Interpolation::inner`], relative to the string.
    pub inner_span: Span,
}

impl Interpolation {
    /// Parses the inner text as an expression (a reference is allowed there). Spans
    /// in the tree and the errors are relative to the containing string.
    pub fn parse(&self) -> (Option<Expr>, Vec<ExprError>) {
        let memo = super::parse_memo(&self.inner);
        let (expr, errors) = &*memo;
        let offset = self.inner_span.start;
        let expr = expr.clone().map(|mut e| {
            e.shift_spans(offset);
            e
        });
        let errors = errors.iter().map(|e| e.clone().shifted(offset)).collect();
        (expr, errors)
    }
}

/// A piece of a string: literal text or an interpolation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Literal text with `$${` escapes resolved to `${`; `span` covers the source bytes.
    Literal {
        /// The text it stands for.
        text: String,
        /// Where it is in the string.
        span: Span,
    },
    /// A `${…}`.
    Interpolation(Interpolation),
}

/// Splits `s` into literal text and interpolations, in order. Adjacent literal text is one
/// segment. Never panics.
pub fn scan(s: &str) -> (Vec<Segment>, Vec<ExprError>) {
    let bytes = s.as_bytes();
    let mut segments = Vec::new();
    let mut errors = Vec::new();
    let mut literal = String::new();
    let mut literal_start = 0usize;
    let mut chunk_start = 0usize;
    let mut i = 0usize;
    let piece = |a: usize, b: usize| s.get(a..b).unwrap_or("");

    while let Some(&b) = bytes.get(i) {
        if b != b'$' {
            i += 1;
            continue;
        }
        if bytes.get(i + 1) == Some(&b'$') && bytes.get(i + 2) == Some(&b'{') {
            literal.push_str(piece(chunk_start, i));
            literal.push_str("${");
            i += 3;
            chunk_start = i;
            continue;
        }
        if bytes.get(i + 1) != Some(&b'{') {
            i += 1;
            continue;
        }
        // `${` at i.
        literal.push_str(piece(chunk_start, i));
        let inner_start = i + 2;
        let Some(k) = s.get(inner_start..).and_then(|rest| rest.find('}')) else {
            errors.push(
                ExprError::new(
                    pos(i)..pos(s.len()),
                    "unterminated interpolation: `${` has no closing `}`",
                )
                .with_help("close it with `}`, or write `$${` for a literal `${`"),
            );
            // The rest of the string is literal text.
            chunk_start = i;
            break;
        };
        let inner_end = inner_start + k;
        let end = inner_end + 1;
        if !literal.is_empty() {
            segments.push(Segment::Literal {
                text: std::mem::take(&mut literal),
                span: pos(literal_start)..pos(i),
            });
        }
        let inner = piece(inner_start, inner_end);
        if inner.trim().is_empty() {
            errors.push(
                ExprError::new(pos(i)..pos(end), "empty interpolation")
                    .with_help("write a reference inside, such as `${input.name}`"),
            );
        } else {
            segments.push(Segment::Interpolation(Interpolation {
                inner: inner.to_string(),
                span: pos(i)..pos(end),
                inner_span: pos(inner_start)..pos(inner_end),
            }));
        }
        i = end;
        chunk_start = end;
        literal_start = end;
    }
    literal.push_str(piece(chunk_start, s.len()));
    if !literal.is_empty() {
        segments.push(Segment::Literal {
            text: literal,
            span: pos(literal_start)..pos(s.len()),
        });
    }
    (segments, errors)
}

/// The interpolations in `s`, in order, and the scanning errors (see [`scan`]).
pub fn scan_interpolations(s: &str) -> (Vec<Interpolation>, Vec<ExprError>) {
    let (segments, errors) = scan(s);
    let interpolations = segments
        .into_iter()
        .filter_map(|seg| match seg {
            Segment::Interpolation(i) => Some(i),
            Segment::Literal { .. } => None,
        })
        .collect();
    (interpolations, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::ExprKind;

    fn lit(text: &str, span: Span) -> Segment {
        Segment::Literal {
            text: text.to_string(),
            span,
        }
    }

    #[test]
    fn seed_000_interpolations() {
        let (found, errors) = scan_interpolations("${approver.email}");
        assert!(errors.is_empty());
        assert_eq!(
            found,
            vec![Interpolation {
                inner: "approver.email".into(),
                span: 0..17,
                inner_span: 2..16,
            }]
        );
        let s = "kubectl://logs ${pod} -n ${namespace} --tail=200";
        let (found, errors) = scan_interpolations(s);
        assert!(errors.is_empty());
        assert_eq!(found.len(), 2);
        assert_eq!(
            &s[found[1].span.start as usize..found[1].span.end as usize],
            "${namespace}"
        );
        assert_eq!(found[1].inner, "namespace");
    }

    #[test]
    fn segments_with_literals() {
        let (segs, errors) = scan("a ${x.y} b");
        assert!(errors.is_empty());
        assert_eq!(segs.len(), 3);
        assert_eq!(segs[0], lit("a ", 0..2));
        assert_eq!(segs[2], lit(" b", 8..10));
        let (segs, _) = scan("");
        assert!(segs.is_empty());
        let (segs, _) = scan("${a}${b}");
        assert_eq!(segs.len(), 2);
    }

    #[test]
    fn dollar_dollar_brace_is_a_literal_escape() {
        let (segs, errors) = scan("cost $${x} and ${y}");
        assert!(errors.is_empty());
        assert_eq!(segs[0], lit("cost ${x} and ", 0..15));
        let Segment::Interpolation(i) = &segs[1] else {
            panic!()
        };
        assert_eq!(i.span, 15..19);
        // Leftmost first: `$$${x}` is `$` then the escape.
        let (segs, _) = scan("$$${x}");
        assert_eq!(segs, vec![lit("$${x}", 0..6)]);
        // Other dollars are literal.
        let (segs, errors) = scan("$5 a$b $");
        assert!(errors.is_empty());
        assert_eq!(segs, vec![lit("$5 a$b $", 0..8)]);
    }

    #[test]
    fn unterminated_interpolation() {
        let (segs, errors) = scan("x ${a.b");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].span, 2..7);
        assert_eq!(
            errors[0].message,
            "unterminated interpolation: `${` has no closing `}`"
        );
        assert_eq!(segs, vec![lit("x ${a.b", 0..7)]);
    }

    #[test]
    fn empty_interpolation() {
        let (found, errors) = scan_interpolations("a ${ } b");
        assert!(found.is_empty());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].span, 2..6);
    }

    #[test]
    fn parse_shifts_spans_to_the_string() {
        let s = "by ${ execution.start-time }";
        let (found, _) = scan_interpolations(s);
        let (e, errors) = found[0].parse();
        assert!(errors.is_empty());
        let e = e.unwrap_or_else(|| Expr::new(ExprKind::Null, 0..0));
        assert_eq!(
            &s[e.span.start as usize..e.span.end as usize],
            "execution.start-time"
        );
        let ExprKind::Ref { segments } = &e.kind else {
            panic!()
        };
        assert_eq!(
            &s[segments[1].1.start as usize..segments[1].1.end as usize],
            "start-time"
        );

        let s = "x ${a.}";
        let (found, _) = scan_interpolations(s);
        let (_, errors) = found[0].parse();
        assert_eq!(errors.len(), 1);
        assert_eq!(
            &s[errors[0].span.start as usize..errors[0].span.end as usize],
            "."
        );
    }

    #[test]
    fn non_ascii_text() {
        let s = "é ${a.b} ü";
        let (segs, errors) = scan(s);
        assert!(errors.is_empty());
        assert_eq!(segs[0], lit("é ", 0..3));
        assert_eq!(segs[2], lit(" ü", 9..12));
    }
}
