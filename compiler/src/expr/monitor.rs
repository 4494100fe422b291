//! The monitoring forms: metric targets and alert conditions.
//!
//! * A metric `target` is `[pNN] OP VALUE`: `p95 < 4h`, `< 5%`, `p99.9 <= 200`.
//! * An alert `condition` is `METRIC OP VALUE`: `approval-latency > 6h`.
//!
//! OP is one of `<`, `<=`, `>`, `>=`, `==`, `!=` (not `IN`); VALUE is a number, a percentage
//! or a duration. Both use the expression lexer, so tokens, errors and spans are as in
//! expressions. Whether METRIC is a declared metric name is for the checker to decide.

use super::ast::{CompareOp, Expr, ExprKind};
use super::lexer::{Lexed, Token, TokenKind, abbreviate, lex};
use super::{ExprError, Span, slice};

/// A percentile prefix: `p95` is 95, `p99.9` is 99.9.
#[derive(Debug, Clone, PartialEq)]
pub struct Percentile {
    /// The percentile, in `(0, 100]`.
    pub value: f64,
    /// Where `pNN` is.
    pub span: Span,
}

/// A parsed metric `target`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricTarget {
    /// The percentile, if one is given.
    pub percentile: Option<Percentile>,
    /// The comparison.
    pub op: CompareOp,
    /// Where the operator is.
    pub op_span: Span,
    /// The threshold: an [`ExprKind::Number`], [`ExprKind::Percent`] or
    /// [`ExprKind::Duration`].
    pub value: Expr,
    /// The whole target.
    pub span: Span,
}

/// A parsed alert `condition`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertCondition {
    /// The metric's name.
    pub metric: String,
    /// Where the metric's name is.
    pub metric_span: Span,
    /// The comparison.
    pub op: CompareOp,
    /// Where the operator is.
    pub op_span: Span,
    /// The threshold: an [`ExprKind::Number`], [`ExprKind::Percent`] or
    /// [`ExprKind::Duration`].
    pub value: Expr,
    /// The whole condition.
    pub span: Span,
}

/// Parses a metric `target` (`p95 < 4h`, `< 5%`). Returns `None` when no operator and value
/// could be read; errors are sorted by position. Never panics.
pub fn parse_metric_target(src: &str) -> (Option<MetricTarget>, Vec<ExprError>) {
    let mut c = Cursor::new(src);
    let result = c.metric_target();
    (result, c.finish())
}

/// Parses an alert `condition` (`approval-latency > 6h`). Returns `None` when no metric,
/// operator and value could be read; errors are sorted by position. Never panics.
pub fn parse_alert_condition(src: &str) -> (Option<AlertCondition>, Vec<ExprError>) {
    let mut c = Cursor::new(src);
    let result = c.alert_condition();
    (result, c.finish())
}

const OPERATORS: &str = "`<`, `<=`, `>`, `>=`, `==` or `!=`";

struct Cursor<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    eof: Token,
    pos: usize,
    errors: Vec<ExprError>,
}

impl<'a> Cursor<'a> {
    fn new(src: &'a str) -> Self {
        let Lexed { tokens, errors } = lex(src);
        let end = super::pos(src.len());
        Cursor {
            src,
            tokens,
            eof: Token {
                kind: TokenKind::Eof,
                span: end..end,
            },
            pos: 0,
            errors,
        }
    }

    fn finish(mut self) -> Vec<ExprError> {
        self.errors.sort_by_key(|e| (e.span.start, e.span.end));
        self.errors
    }

    fn tok(&self, i: usize) -> &Token {
        self.tokens.get(i).unwrap_or(&self.eof)
    }

    fn cur(&self) -> &Token {
        self.tok(self.pos)
    }

    fn bump(&mut self) {
        if !matches!(self.cur().kind, TokenKind::Eof) {
            self.pos += 1;
        }
    }

    fn describe(&self, what_end: &str) -> String {
        let t = self.cur();
        if matches!(t.kind, TokenKind::Eof) {
            format!("end of {what_end}")
        } else {
            format!("`{}`", abbreviate(slice(self.src, &t.span)))
        }
    }

    fn error(&mut self, span: Span, message: String, help: Option<String>) {
        self.errors.push(ExprError {
            span,
            message,
            help,
        });
    }

    /// An error at the current token, unless the lexer already reported it.
    fn error_here(&mut self, message: String, help: Option<String>) {
        if matches!(self.cur().kind, TokenKind::Error) {
            return;
        }
        let span = self.cur().span.clone();
        self.error(span, message, help);
    }

    fn metric_target(&mut self) -> Option<MetricTarget> {
        let start = self.cur().span.start;
        if matches!(self.cur().kind, TokenKind::Eof) {
            let span = self.cur().span.clone();
            self.error(
                0..span.end,
                "expected a metric target, found end of target".to_string(),
                Some("write `[pNN] OP VALUE`, such as `p95 < 4h` or `< 5%`".to_string()),
            );
            return None;
        }
        let mut percentile = None;
        if let TokenKind::Name(name) = &self.cur().kind {
            let name = name.clone();
            let span = self.cur().span.clone();
            self.bump();
            percentile = self.percentile(&name, span);
        }
        let (op, op_span) = self.operator(percentile.as_ref().map(|p| p.span.clone()), "target")?;
        let value = self.value(&op_span, "target")?;
        self.expect_end("target");
        let span = start..value.span.end;
        Some(MetricTarget {
            percentile,
            op,
            op_span,
            value,
            span,
        })
    }

    /// Reads `pNN` (already consumed, as `name` at `span`) and an adjacent `.NN` fraction.
    fn percentile(&mut self, name: &str, span: Span) -> Option<Percentile> {
        let digits = name
            .strip_prefix('p')
            .or_else(|| name.strip_prefix('P'))
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
        let Some(digits) = digits else {
            self.error(
                span,
                format!(
                    "expected a percentile such as `p95` or a comparison operator, found `{}`",
                    abbreviate(name)
                ),
                Some("write `[pNN] OP VALUE`, such as `p95 < 4h` or `< 5%`".to_string()),
            );
            return None;
        };
        let mut text = digits.to_string();
        let mut end = span.end;
        // `p99.9`: NAME `p99`, `.`, NUMBER `9`, all adjacent.
        if let (TokenKind::Dot, TokenKind::Number(_)) =
            (&self.tok(self.pos).kind, &self.tok(self.pos + 1).kind)
        {
            let dot = self.tok(self.pos).span.clone();
            let frac = self.tok(self.pos + 1).span.clone();
            let frac_text = slice(self.src, &frac);
            if dot.start == end
                && frac.start == dot.end
                && frac_text.bytes().all(|b| b.is_ascii_digit())
            {
                text.push('.');
                text.push_str(frac_text);
                end = frac.end;
                self.bump();
                self.bump();
            }
        }
        let span = span.start..end;
        match text.parse::<f64>() {
            Ok(value) if value > 0.0 && value <= 100.0 => Some(Percentile { value, span }),
            _ => {
                self.error(
                    span,
                    format!("percentile `p{}` is out of range", abbreviate(&text)),
                    Some(
                        "a percentile is above 0 and at most 100, such as `p95` or `p99.9`"
                            .to_string(),
                    ),
                );
                None
            }
        }
    }

    fn alert_condition(&mut self) -> Option<AlertCondition> {
        let start = self.cur().span.start;
        let (metric, metric_span) = match &self.cur().kind {
            TokenKind::Name(name) => (name.clone(), self.cur().span.clone()),
            _ => {
                let found = self.describe("condition");
                let message = format!("expected a metric name, found {found}");
                let help =
                    Some("write `METRIC OP VALUE`, such as `approval-latency > 6h`".to_string());
                if matches!(self.cur().kind, TokenKind::Eof) {
                    self.error(0..self.cur().span.end, message, help);
                } else {
                    self.error_here(message, help);
                }
                return None;
            }
        };
        self.bump();
        if matches!(self.cur().kind, TokenKind::Dot) {
            let dot = self.cur().span.clone();
            self.error(
                dot,
                "expected a comparison operator after the metric name, found `.`".to_string(),
                Some(
                    "a metric is a name declared under `monitoring.metrics`, not a reference"
                        .to_string(),
                ),
            );
            return None;
        }
        let (op, op_span) = self.operator(Some(metric_span.clone()), "condition")?;
        let value = self.value(&op_span, "condition")?;
        self.expect_end("condition");
        let span = start..value.span.end;
        Some(AlertCondition {
            metric,
            metric_span,
            op,
            op_span,
            value,
            span,
        })
    }

    fn operator(&mut self, after: Option<Span>, what_end: &str) -> Option<(CompareOp, Span)> {
        let span = self.cur().span.clone();
        let op = match self.cur().kind {
            TokenKind::Lt => CompareOp::Lt,
            TokenKind::Le => CompareOp::Le,
            TokenKind::Gt => CompareOp::Gt,
            TokenKind::Ge => CompareOp::Ge,
            TokenKind::Eq => CompareOp::Eq,
            TokenKind::Ne => CompareOp::Ne,
            _ => {
                let what = match &after {
                    Some(a) => format!(
                        "expected a comparison operator after `{}`",
                        abbreviate(slice(self.src, a))
                    ),
                    None => "expected a comparison operator".to_string(),
                };
                let found = self.describe(what_end);
                let help = format!("the operators are {OPERATORS}");
                if matches!(self.cur().kind, TokenKind::Eof) {
                    let at = after.unwrap_or(span);
                    self.error(at, format!("{what}, found {found}"), Some(help));
                } else {
                    self.error_here(format!("{what}, found {found}"), Some(help));
                }
                return None;
            }
        };
        self.bump();
        Some((op, span))
    }

    fn value(&mut self, op_span: &Span, what: &str) -> Option<Expr> {
        let span = self.cur().span.clone();
        let kind = match &self.cur().kind {
            TokenKind::Number(v) => ExprKind::Number(*v),
            TokenKind::Percent { value, written } => ExprKind::Percent {
                value: *value,
                written: *written,
            },
            TokenKind::Duration {
                seconds,
                value,
                unit,
            } => ExprKind::Duration {
                seconds: *seconds,
                value: *value,
                unit: *unit,
            },
            _ => {
                let found = self.describe(what);
                let message = format!(
                    "expected a number, percentage or duration after `{}`, found {found}",
                    slice(self.src, op_span)
                );
                let help = Some("such as `4h`, `5%` or `200`".to_string());
                if matches!(self.cur().kind, TokenKind::Eof) {
                    self.error(op_span.clone(), message, help);
                } else {
                    self.error_here(message, help);
                }
                return None;
            }
        };
        self.bump();
        Some(Expr::new(kind, span))
    }

    fn expect_end(&mut self, what: &str) {
        if matches!(self.cur().kind, TokenKind::Eof) {
            return;
        }
        let found = self.describe(what);
        self.error_here(format!("expected end of {what}, found {found}"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::lexer::DurationUnit;

    #[test]
    fn seed_000_targets() {
        let (t, errors) = parse_metric_target("p95 < 4h");
        assert!(errors.is_empty(), "{errors:#?}");
        let t = t.unwrap_or_else(|| panic!("no target"));
        assert_eq!(
            t.percentile,
            Some(Percentile {
                value: 95.0,
                span: 0..3
            })
        );
        assert_eq!(t.op, CompareOp::Lt);
        assert_eq!(t.op_span, 4..5);
        assert_eq!(
            t.value.kind,
            ExprKind::Duration {
                seconds: 14400.0,
                value: 4.0,
                unit: DurationUnit::Hours
            }
        );
        assert_eq!(t.value.span, 6..8);
        assert_eq!(t.span, 0..8);

        let (t, errors) = parse_metric_target("< 5%");
        assert!(errors.is_empty());
        let t = t.unwrap_or_else(|| panic!("no target"));
        assert_eq!(t.percentile, None);
        assert_eq!(
            t.value.kind,
            ExprKind::Percent {
                value: 0.05,
                written: 5.0
            }
        );
        assert_eq!(t.span, 0..4);
    }

    #[test]
    fn fractional_percentile() {
        let (t, errors) = parse_metric_target("p99.9 <= 200");
        assert!(errors.is_empty(), "{errors:#?}");
        let t = t.unwrap_or_else(|| panic!("no target"));
        assert_eq!(
            t.percentile,
            Some(Percentile {
                value: 99.9,
                span: 0..5
            })
        );
        assert_eq!(t.value.kind, ExprKind::Number(200.0));
    }

    #[test]
    fn target_errors() {
        let (t, errors) = parse_metric_target("p0 < 1s");
        assert!(t.is_some_and(|t| t.percentile.is_none()));
        assert_eq!(errors[0].message, "percentile `p0` is out of range");
        assert_eq!(errors[0].span, 0..2);

        let (_, errors) = parse_metric_target("avg < 1s");
        assert_eq!(
            errors[0].message,
            "expected a percentile such as `p95` or a comparison operator, found `avg`"
        );

        let (_, errors) = parse_metric_target("p95 4h");
        assert_eq!(
            errors[0].message,
            "expected a comparison operator after `p95`, found `4h`"
        );
        assert_eq!(errors[0].span, 4..6);

        let (_, errors) = parse_metric_target("p95 <");
        assert_eq!(
            errors[0].message,
            "expected a number, percentage or duration after `<`, found end of target"
        );
        assert_eq!(errors[0].span, 4..5);

        let (_, errors) = parse_metric_target("p95 < 'x'");
        assert_eq!(errors[0].span, 6..9);

        let (t, errors) = parse_metric_target("p95 < 4h extra");
        assert!(t.is_some());
        assert_eq!(errors[0].message, "expected end of target, found `extra`");

        let (_, errors) = parse_metric_target("p95 IN 4h");
        assert!(errors[0].help.as_deref().unwrap_or("").contains("`<=`"));

        let (t, errors) = parse_metric_target("");
        assert!(t.is_none());
        assert_eq!(errors.len(), 1);

        // A lexer error is reported once.
        let (_, errors) = parse_metric_target("p95 < 4hours");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .help
                .as_deref()
                .unwrap_or("")
                .starts_with("write `4h`")
        );
    }

    #[test]
    fn seed_000_alert() {
        let (a, errors) = parse_alert_condition("approval-latency > 6h");
        assert!(errors.is_empty());
        let a = a.unwrap_or_else(|| panic!("no condition"));
        assert_eq!(a.metric, "approval-latency");
        assert_eq!(a.metric_span, 0..16);
        assert_eq!(a.op, CompareOp::Gt);
        assert_eq!(a.op_span, 17..18);
        assert_eq!(a.value.span, 19..21);
        assert_eq!(a.span, 0..21);
    }

    #[test]
    fn alert_errors() {
        let (a, errors) = parse_alert_condition("> 6h");
        assert!(a.is_none());
        assert_eq!(errors[0].message, "expected a metric name, found `>`");
        let (_, errors) = parse_alert_condition("a.b > 6h");
        assert_eq!(errors[0].span, 1..2);
        let (_, errors) = parse_alert_condition("latency");
        assert_eq!(
            errors[0].message,
            "expected a comparison operator after `latency`, found end of condition"
        );
        assert_eq!(errors[0].span, 0..7);
        let (_, errors) = parse_alert_condition("");
        assert_eq!(errors.len(), 1);
        let (_, errors) = parse_alert_condition("rate >= 5% or");
        assert_eq!(errors[0].message, "expected end of condition, found `or`");
    }
}
