//! A recursive-descent parser with exact spans and error recovery.
//!
//! [`parse`] reads a whole expression and returns the tree and every problem found. It keeps
//! going after an error where that gives more useful diagnostics:
//!
//! * A missing operand (`a >=`, `a AND`, `()`) becomes an [`ExprKind::Error`] node and the
//!   parse continues.
//! * Unexpected tokens after an operand or a comparison (`a > 5 minutes AND b < 10`) are
//!   reported once and skipped up to the next `AND`, `OR`, closing bracket or the end, so a
//!   later mistake is still found.
//! * An unclosed `(` or `[` is reported at the opening bracket.
//! * A chained comparison (`a < b < c`) is reported at the second operator; the tree keeps
//!   the first comparison.
//! * A malformed token already reported by the lexer is not reported again.
//! * Nesting deeper than [`MAX_DEPTH`] (parentheses, lists and `NOT`) is one error,
//!   "expression nests too deeply"; the nested part is skipped. The parser never recurses
//!   deeper than that, whatever the input, and `AND`/`OR` chains are built iteratively.
//!
//! Grammar choices where the language leaves room:
//!
//! * `NOT a == b` is `NOT (a == b)` (unary := NOT unary | compare), and `NOT IN` after an
//!   operand is the `NOT IN` operator (`a NOT IN [...]`).
//! * After a `.` in a reference, a keyword is a field name (`input.in`, `x.null`); a
//!   reference's first name cannot be a keyword.
//! * A single name is an [`ExprKind::Ident`]; `a.b` and longer are an [`ExprKind::Ref`].
//!   Whitespace around `.` is allowed (tokens are whitespace-insensitive).
//! * A comparison's operands are operands, not expressions: `a == NOT b` and `a == b == c`
//!   are errors; write `a == (NOT b)`.
//! * A trailing comma in a list (`[a, b,]`) is an error.

use super::ast::{CompareOp, Expr, ExprKind};
use super::lexer::{Lexed, Token, TokenKind, abbreviate, duration_suggestion, lex};
use super::{ExprError, Span, pos, slice};

mod operands;
mod recovery;

/// How deeply parentheses, lists and `NOT`s may nest before the parser gives up on that part
/// of the expression with "expression nests too deeply".
pub const MAX_DEPTH: u32 = 64;

/// Parses `src` as an expression.
///
/// Returns the tree, or `None` when there is no expression at all (empty or blank text), and
/// every error found, sorted by position. When the list of errors is empty the tree has no
/// [`ExprKind::Error`] node. All spans are byte ranges relative to `src`. Never panics.
pub fn parse(src: &str) -> Parsed {
    let Lexed { tokens, errors } = lex(src);
    let mut parser = Parser::new(src, tokens, errors);
    let expr = parser.root();
    let mut errors = parser.errors;
    errors.sort_by_key(|e| (e.span.start, e.span.end));
    (expr, errors)
}

/// A parse: the tree (if there is an expression at all) and the errors.
pub type Parsed = (Option<Expr>, Vec<ExprError>);

/// Texts remembered by [`parse_memo`] before it starts afresh (a bound on its memory).
const MEMO_ENTRIES: usize = 1 << 16;

/// [`parse`], remembered by text for the whole process: a tree checks the same conditions
/// in every overlay, and playbooks often share them. The parse is a function of the text
/// alone (its spans are relative to it), so a remembered one is the same value.
pub fn parse_memo(src: &str) -> std::sync::Arc<Parsed> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static MEMO: OnceLock<Mutex<HashMap<Box<str>, Arc<Parsed>>>> = OnceLock::new();
    let memo = MEMO.get_or_init(Default::default);
    if let Some(hit) = memo.lock().unwrap_or_else(|e| e.into_inner()).get(src) {
        return hit.clone();
    }
    let parsed = Arc::new(parse(src));
    let mut m = memo.lock().unwrap_or_else(|e| e.into_inner());
    if m.len() >= MEMO_ENTRIES {
        m.clear();
    }
    m.insert(src.into(), parsed.clone());
    parsed
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closer {
    Paren,
    Bracket,
}

/// What came just before an operand position, for "expected an operand after `>=`".
#[derive(Debug, Clone)]
struct After {
    span: Span,
    ctx: Ctx,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// After `(`.
    Open,
    /// After `[` or `,` in a list.
    ListItem,
    /// After `AND`, `OR` or `NOT`.
    Logical,
    /// After a comparison operator.
    Compare,
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    eof: Token,
    pos: usize,
    /// The end of the last token consumed.
    last_end: u32,
    errors: Vec<ExprError>,
    depth: u32,
    closers: Vec<Closer>,
    /// Set when a too-deep part ran to the end of the input: nothing more is reported.
    abandoned: bool,
    /// The token the last error was reported at, so one token gets one error.
    last_error_token: Option<usize>,
}

fn join(a: &Span, b: &Span) -> Span {
    a.start.min(b.start)..a.end.max(b.end)
}

/// From the first operand's start to the last one's end.
fn chain_span(operands: &[Expr]) -> Span {
    match (operands.first(), operands.last()) {
        (Some(first), Some(last)) => join(&first.span, &last.span),
        _ => 0..0,
    }
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, tokens: Vec<Token>, errors: Vec<ExprError>) -> Self {
        let end = pos(src.len());
        Parser {
            src,
            tokens,
            eof: Token {
                kind: TokenKind::Eof,
                span: end..end,
            },
            pos: 0,
            last_end: 0,
            errors,
            depth: 0,
            closers: Vec::new(),
            abandoned: false,
            last_error_token: None,
        }
    }

    // ----- token access -----

    fn tok(&self, i: usize) -> &Token {
        self.tokens.get(i).unwrap_or(&self.eof)
    }

    fn peek(&self) -> &TokenKind {
        &self.tok(self.pos).kind
    }

    fn peek_at(&self, n: usize) -> &TokenKind {
        &self.tok(self.pos.saturating_add(n)).kind
    }

    fn span_of(&self, i: usize) -> Span {
        self.tok(i).span.clone()
    }

    fn at_eof(&self) -> bool {
        matches!(self.peek(), TokenKind::Eof)
    }

    /// Consumes the current token (never moves past `Eof`) and returns its index.
    fn bump(&mut self) -> usize {
        let i = self.pos;
        if !self.at_eof() {
            self.last_end = self.tok(i).span.end;
            self.pos += 1;
        }
        i
    }

    fn text(&self, i: usize) -> &'a str {
        slice(self.src, &self.tok(i).span)
    }

    /// "`x`" for a token, or "end of expression".
    fn describe(&self, i: usize) -> String {
        if matches!(self.tok(i).kind, TokenKind::Eof) {
            "end of expression".to_string()
        } else {
            format!("`{}`", abbreviate(self.text(i)))
        }
    }

    // ----- errors -----

    fn error_at(
        &mut self,
        token: Option<usize>,
        span: Span,
        message: String,
        help: Option<String>,
    ) {
        if self.abandoned {
            return;
        }
        if let Some(i) = token
            && !matches!(self.tok(i).kind, TokenKind::Eof)
        {
            if self.last_error_token == Some(i) {
                return;
            }
            self.last_error_token = Some(i);
        }
        self.errors.push(ExprError {
            span,
            message,
            help,
        });
    }

    /// True if the current token ends the construct being parsed: the end, a closing bracket
    /// that an enclosing construct waits for, or a `,` directly inside a list.
    fn at_terminator(&self) -> bool {
        match self.peek() {
            TokenKind::Eof => true,
            TokenKind::RParen => self.closers.contains(&Closer::Paren),
            TokenKind::RBracket => self.closers.contains(&Closer::Bracket),
            TokenKind::Comma => self.closers.last() == Some(&Closer::Bracket),
            _ => false,
        }
    }

    /// Skips the current token and what follows, up to a terminator (or an `AND`/`OR` when
    /// `stop_at_logical`) outside any bracket opened in the skipped part. Always consumes at
    /// least one token unless at the end.
    fn skip_junk(&mut self, stop_at_logical: bool) {
        let mut nest: u32 = 0;
        let mut first = true;
        loop {
            let stop = match self.peek() {
                TokenKind::Eof => true,
                _ if first => false,
                TokenKind::And | TokenKind::Or => stop_at_logical && nest == 0,
                _ => nest == 0 && self.at_terminator(),
            };
            if stop {
                break;
            }
            match self.peek() {
                TokenKind::LParen | TokenKind::LBracket => nest += 1,
                TokenKind::RParen | TokenKind::RBracket => nest = nest.saturating_sub(1),
                _ => {}
            }
            self.bump();
            first = false;
        }
    }

    // ----- depth -----

    /// Runs `f` one nesting level deeper, or reports "expression nests too deeply" at token
    /// `at` and skips the nested part.
    fn nested(&mut self, at: usize, f: impl FnOnce(&mut Self) -> Expr) -> Expr {
        if self.depth >= MAX_DEPTH {
            return self.too_deep(at);
        }
        self.depth += 1;
        let e = f(self);
        self.depth -= 1;
        e
    }

    fn too_deep(&mut self, at: usize) -> Expr {
        let at_span = self.span_of(at);
        self.error_at(
            Some(at),
            at_span.clone(),
            "expression nests too deeply".to_string(),
            Some(format!(
                "at most {MAX_DEPTH} levels of parentheses, lists and `NOT` are allowed; split the condition"
            )),
        );
        // Skip the nested part: up to a closing bracket that is not opened in it.
        let mut nest: u32 = 0;
        let mut end = at_span.end;
        loop {
            match self.peek() {
                TokenKind::Eof => {
                    self.abandoned = true;
                    break;
                }
                TokenKind::LParen | TokenKind::LBracket => nest += 1,
                TokenKind::RParen | TokenKind::RBracket => {
                    if nest == 0 {
                        break;
                    }
                    nest -= 1;
                }
                _ => {}
            }
            end = self.tok(self.pos).span.end;
            self.bump();
        }
        Expr::new(ExprKind::Error, at_span.start..end)
    }

    // ----- grammar -----

    fn root(&mut self) -> Option<Expr> {
        if self.at_eof() {
            if self.errors.is_empty() {
                let end = pos(self.src.len());
                self.errors.push(
                    ExprError::new(0..end, "expected an expression, found end of expression")
                        .with_help("write a condition, such as `input.count > 10`"),
                );
            }
            return None;
        }
        let expr = self.parse_or(None);
        // Defensive: the loops above stop only at the end when nothing is open.
        while !self.at_eof() {
            let i = self.pos;
            let message = format!("unexpected {}", self.describe(i));
            self.error_at(Some(i), self.span_of(i), message, None);
            self.bump();
        }
        Some(expr)
    }

    fn parse_or(&mut self, after: Option<After>) -> Expr {
        let first = self.parse_and(after);
        if !matches!(self.peek(), TokenKind::Or) {
            return first;
        }
        let mut operands = vec![first];
        let mut op_spans = Vec::new();
        while matches!(self.peek(), TokenKind::Or) {
            let i = self.bump();
            let span = self.span_of(i);
            op_spans.push(span.clone());
            operands.push(self.parse_and(Some(After {
                span,
                ctx: Ctx::Logical,
            })));
        }
        let span = chain_span(&operands);
        Expr::new(ExprKind::Or { operands, op_spans }, span)
    }

    fn parse_and(&mut self, after: Option<After>) -> Expr {
        let mut operands = vec![self.parse_unary(after)];
        let mut op_spans = Vec::new();
        loop {
            match self.peek() {
                TokenKind::And => {
                    let i = self.bump();
                    let span = self.span_of(i);
                    op_spans.push(span.clone());
                    operands.push(self.parse_unary(Some(After {
                        span,
                        ctx: Ctx::Logical,
                    })));
                }
                TokenKind::Or => break,
                _ if self.at_terminator() => break,
                _ => {
                    let after_comparison = operands
                        .last()
                        .is_some_and(|e| matches!(e.kind, ExprKind::Compare { .. }));
                    self.junk(after_comparison);
                }
            }
        }
        if operands.len() == 1
            && let Some(only) = operands.pop()
        {
            return only;
        }
        let span = chain_span(&operands);
        Expr::new(ExprKind::And { operands, op_spans }, span)
    }

    fn parse_unary(&mut self, after: Option<After>) -> Expr {
        if !matches!(self.peek(), TokenKind::Not) {
            return self.parse_compare(after);
        }
        let i = self.bump();
        let op_span = self.span_of(i);
        self.nested(i, |p| {
            let operand = p.parse_unary(Some(After {
                span: op_span.clone(),
                ctx: Ctx::Logical,
            }));
            let span = join(&op_span, &operand.span);
            Expr::new(
                ExprKind::Not {
                    op_span,
                    operand: Box::new(operand),
                },
                span,
            )
        })
    }

    /// The comparison operator at the current token: the operator, its span and how many
    /// tokens it takes (2 for `NOT IN`).
    fn compare_op(&self) -> Option<(CompareOp, Span, usize)> {
        let span = self.span_of(self.pos);
        let op = match self.peek() {
            TokenKind::Eq => CompareOp::Eq,
            TokenKind::Ne => CompareOp::Ne,
            TokenKind::Lt => CompareOp::Lt,
            TokenKind::Le => CompareOp::Le,
            TokenKind::Gt => CompareOp::Gt,
            TokenKind::Ge => CompareOp::Ge,
            TokenKind::In => CompareOp::In,
            TokenKind::Not if matches!(self.peek_at(1), TokenKind::In) => {
                let end = self.tok(self.pos + 1).span.end;
                return Some((CompareOp::NotIn, span.start..end, 2));
            }
            _ => return None,
        };
        Some((op, span, 1))
    }

    fn parse_compare(&mut self, after: Option<After>) -> Expr {
        let lhs = self.parse_operand(after);
        let Some((op, op_span, n)) = self.compare_op() else {
            return lhs;
        };
        for _ in 0..n {
            self.bump();
        }
        let rhs = self.parse_operand(Some(After {
            span: op_span.clone(),
            ctx: Ctx::Compare,
        }));
        let span = join(&join(&lhs.span, &op_span), &rhs.span);

        // `a < b < c`: report once, consume the rest of the chain.
        let mut reported = false;
        while let Some((_, op2_span, n2)) = self.compare_op() {
            let op2_token = self.pos;
            for _ in 0..n2 {
                self.bump();
            }
            let third = self.parse_operand(Some(After {
                span: op2_span.clone(),
                ctx: Ctx::Compare,
            }));
            if !reported {
                reported = true;
                let help = self.chain_help(&lhs, &op_span, &rhs, &op2_span, &third);
                self.error_at(
                    Some(op2_token),
                    op2_span,
                    "comparison operators cannot be chained".to_string(),
                    Some(help),
                );
            }
        }

        Expr::new(
            ExprKind::Compare {
                op,
                op_span,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            },
            span,
        )
    }

    fn chain_help(&self, lhs: &Expr, op1: &Span, mid: &Expr, op2: &Span, rhs: &Expr) -> String {
        let parts = [
            slice(self.src, &lhs.span),
            slice(self.src, op1),
            slice(self.src, &mid.span),
            slice(self.src, op2),
            slice(self.src, &rhs.span),
        ];
        if parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().count() <= 30)
        {
            let [l, o1, m, o2, r] = parts;
            format!("join two comparisons with `AND`: `{l} {o1} {m} AND {m} {o2} {r}`")
        } else {
            "join two comparisons with `AND`, such as `a < b AND b < c`".to_string()
        }
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests;
