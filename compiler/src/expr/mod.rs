//! The expression language of playbooks.
//!
//! Conditions (`when:`, `conditions[].if:`), `${…}` interpolations and the monitoring forms
//! (`target: p95 < 4h`, `condition: approval-latency > 6h`) are all written in one small
//! language:
//!
//! ```text
//! expr    := or
//! or      := and (("OR" | "||") and)*
//! and     := unary (("AND" | "&&") unary)*
//! unary   := ("NOT" | "!") unary | compare
//! compare := operand (("==" | "!=" | ">=" | "<=" | ">" | "<" | "IN" | "NOT IN") operand)?
//! operand := ref | NUMBER | PERCENT | DURATION | STRING | "true" | "false" | "null" | IDENT
//!          | list | "(" expr ")"
//! list    := "[" (operand ("," operand)*)? "]"
//! ref     := NAME ("." NAME)+
//! ```
//!
//! This module is self-contained: it depends on nothing else in the crate. Every position it
//! reports is a byte range ([`Span`]) relative to the text it was given; the caller adds the
//! offset of that text inside its file (see [`Expr::shift_spans`] and [`ExprError::shifted`]).
//!
//! * [`lexer`]: tokens ([`lex`]).
//! * [`ast`]: the typed tree ([`Expr`], [`ExprKind`]).
//! * [`parser`]: recursive descent with error recovery ([`parse`]).
//! * [`print`](mod@print): the canonical form (`Display` for [`Expr`]).
//! * [`interp`]: `${…}` interpolations inside strings ([`scan_interpolations`]).
//! * [`monitor`]: metric targets and alert conditions ([`parse_metric_target`],
//!   [`parse_alert_condition`]).
//!
//! Nothing here panics on any input: every problem is an [`ExprError`] value.

use std::fmt;
use std::ops::Range;

pub mod ast;
pub mod interp;
pub mod lexer;
pub mod monitor;
pub mod parser;
pub mod print;
pub mod token;

#[cfg(test)]
mod proptests;

pub use ast::{CompareOp, Expr, ExprKind};
pub use interp::{Interpolation, Segment, scan_interpolations};
pub use lexer::{DurationUnit, Lexed, Token, TokenKind, lex};
pub use monitor::{
    AlertCondition, MetricTarget, Percentile, parse_alert_condition, parse_metric_target,
};
pub use parser::{MAX_DEPTH, Parsed, parse, parse_memo};

/// A byte range relative to the start of the text that was lexed or parsed.
pub type Span = Range<u32>;

/// A problem found in an expression: a lexing or parsing error.
///
/// `message` is one lower-case sentence naming what was expected and what was found;
/// `help`, when present, suggests the supported form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    /// Where the problem is, relative to the expression text.
    pub span: Span,
    /// One lower-case sentence, without a final period.
    pub message: String,
    /// A suggestion: the supported form, or how to fix the problem.
    pub help: Option<String>,
}

impl ExprError {
    /// An error without help.
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        ExprError {
            span,
            message: message.into(),
            help: None,
        }
    }

    /// Sets the help text.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The same error with its span moved `offset` bytes to the right (saturating), for an
    /// expression that starts `offset` bytes into a larger text.
    #[must_use]
    pub fn shifted(mut self, offset: u32) -> Self {
        self.span = shift_span(&self.span, offset);
        self
    }
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, " (help: {help})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ExprError {}

/// `span` moved `offset` bytes to the right, saturating at `u32::MAX`.
pub(crate) fn shift_span(span: &Span, offset: u32) -> Span {
    span.start.saturating_add(offset)..span.end.saturating_add(offset)
}

/// A byte offset as a span position, saturating at `u32::MAX` (inputs that long are rejected
/// by the lexer before any span is made).
pub(crate) fn pos(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The text `span` covers in `src`, or `""` when the span is not a valid range of `src`.
pub(crate) fn slice<'a>(src: &'a str, span: &Span) -> &'a str {
    src.get(span.start as usize..span.end as usize)
        .unwrap_or("")
}
