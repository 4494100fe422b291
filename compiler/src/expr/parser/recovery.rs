//! Error recovery: a missing operand, junk after an expression, and the help each names
//! (the word the writer probably meant).

use super::*;

impl Parser<'_> {
    /// Reports a missing operand at the current token, which is left in place, and returns
    /// an empty [`ExprKind::Error`] node where the operand should be.
    pub(super) fn missing_operand(&mut self, after: Option<After>) -> Expr {
        let i = self.pos;
        let tok_span = self.span_of(i);
        let found_kind = self.tok(i).kind.clone();
        let found = self.describe(i);
        let message = match &after {
            None => format!("expected an expression, found {found}"),
            Some(a) => {
                let t = abbreviate(slice(self.src, &a.span));
                match a.ctx {
                    Ctx::Open => format!("expected an expression after `(`, found {found}"),
                    Ctx::ListItem => format!("expected a list item after `{t}`, found {found}"),
                    Ctx::Logical | Ctx::Compare => {
                        format!("expected an operand after `{t}`, found {found}")
                    }
                }
            }
        };
        let ctx = after.as_ref().map(|a| a.ctx);
        let help = match (&found_kind, ctx) {
            (TokenKind::Not, Some(Ctx::Compare)) => Some(
                "`NOT` negates a whole condition: write `NOT (a == b)`, or put the operand in parentheses"
                    .to_string(),
            ),
            (
                TokenKind::Eq
                | TokenKind::Ne
                | TokenKind::Lt
                | TokenKind::Le
                | TokenKind::Gt
                | TokenKind::Ge
                | TokenKind::In,
                None | Some(Ctx::Open) | Some(Ctx::Logical),
            ) => Some("a comparison needs a left-hand operand, such as `input.count > 10`".to_string()),
            (TokenKind::RParen, Some(Ctx::Open)) => {
                Some("write a condition between the parentheses".to_string())
            }
            (TokenKind::Dot, _) => Some("a reference starts with a name, such as `input.count`".to_string()),
            _ => None,
        };
        let span = match (&found_kind, &after) {
            (TokenKind::Eof, Some(a)) => a.span.clone(),
            _ => tok_span.clone(),
        };
        self.error_at(Some(i), span, message, help);
        Expr::new(ExprKind::Error, tok_span.start..tok_span.start)
    }

    /// Reports (unless the lexer already did) and skips unexpected tokens after an operand or
    /// a comparison.
    pub(super) fn junk(&mut self, after_comparison: bool) {
        let i = self.pos;
        if !matches!(self.tok(i).kind, TokenKind::Error) {
            let (span, message, help) = self.junk_report(i, after_comparison);
            self.error_at(Some(i), span, message, help);
        }
        self.skip_junk(true);
    }

    pub(super) fn junk_report(
        &self,
        i: usize,
        after_comparison: bool,
    ) -> (Span, String, Option<String>) {
        let tok = self.tok(i);
        let found = self.describe(i);
        if let TokenKind::RParen | TokenKind::RBracket = tok.kind {
            let (close, open) = if tok.kind == TokenKind::RParen {
                (")", "(")
            } else {
                ("]", "[")
            };
            return (
                tok.span.clone(),
                format!("unmatched `{close}`"),
                Some(format!("remove it, or add the matching `{open}` before it")),
            );
        }
        let end = match self.closers.last() {
            Some(Closer::Paren) => "`)`",
            Some(Closer::Bracket) => "`]`",
            None => "end of expression",
        };
        let expected = if after_comparison {
            format!("expected `AND`, `OR` or {end}")
        } else {
            format!("expected an operator or {end}")
        };
        let message = format!("{expected}, found {found}");
        let prev = i.checked_sub(1).map(|p| self.tok(p));
        let prev_text = i.checked_sub(1).map(|p| self.text(p)).unwrap_or("");

        match (&prev.map(|p| &p.kind), &tok.kind) {
            // `5 minutes`, `10 pods`
            (Some(TokenKind::Number(_)), TokenKind::Name(word)) => {
                if let (Some(p), Some(s)) = (prev, duration_suggestion(prev_text, word)) {
                    let span = p.span.start..tok.span.end;
                    return (
                        span,
                        format!("`{prev_text} {}` is not a valid duration", abbreviate(word)),
                        Some(format!(
                            "write `{s}`: a duration is a number directly followed by `s`, `m`, `h` or `d`"
                        )),
                    );
                }
                (
                    tok.span.clone(),
                    message,
                    Some(format!("numbers take no unit: write `{prev_text}` alone")),
                )
            }
            // `10,000`
            (Some(TokenKind::Number(_)), TokenKind::Comma) => {
                let next = self.tok(i + 1);
                let next_text = self.text(i + 1);
                if let (Some(p), TokenKind::Number(_)) = (prev, &next.kind)
                    && next_text.len() == 3
                    && next_text.bytes().all(|b| b.is_ascii_digit())
                    && !prev_text.contains('.')
                {
                    return (
                        p.span.start..next.span.end,
                        format!("`{prev_text},{next_text}` is not a number"),
                        Some(format!(
                            "write numbers without thousands separators: `{prev_text}{next_text}`"
                        )),
                    );
                }
                (tok.span.clone(), message, None)
            }
            (_, TokenKind::Name(word)) => (tok.span.clone(), message, word_help(word, self.peek_kind_after(i))),
            (_, TokenKind::Number(_) | TokenKind::Percent { .. } | TokenKind::Duration { .. })
                if self.text(i).starts_with('-') =>
            {
                (
                    tok.span.clone(),
                    message,
                    Some("the expression language has no arithmetic: this `-` makes a negative number".to_string()),
                )
            }
            (Some(TokenKind::Name(_)), TokenKind::LParen) => (
                tok.span.clone(),
                message,
                Some("function calls are not supported".to_string()),
            ),
            (_, TokenKind::Not) => (
                tok.span.clone(),
                message,
                Some("to test membership write `a NOT IN [...]`; to negate, put `NOT` before the condition".to_string()),
            ),
            _ => (tok.span.clone(), message, None),
        }
    }

    pub(super) fn peek_kind_after(&self, i: usize) -> &TokenKind {
        &self.tok(i + 1).kind
    }
}

/// Help for a word users write in place of an operator (`is`, `gt`, `contains`).
pub(super) fn word_help(word: &str, next: &TokenKind) -> Option<String> {
    let op = match word.to_ascii_lowercase().as_str() {
        "is" if matches!(next, TokenKind::Not) => "!=",
        "is" | "eq" | "equals" => "==",
        "ne" | "neq" => "!=",
        "lt" => "<",
        "le" | "lte" => "<=",
        "gt" => ">",
        "ge" | "gte" => ">=",
        "contains" => {
            return Some("write membership the other way round: `ITEM IN LIST`".to_string());
        }
        "between" => return Some("write two comparisons: `x >= a AND x <= b`".to_string()),
        "like" | "matches" => {
            return Some(
                "pattern matching is not supported; compare with `==` or `IN`".to_string(),
            );
        }
        "then" | "else" | "if" => {
            return Some(
                "write only the condition here; `then` and `else` are separate keys".to_string(),
            );
        }
        _ => return None,
    };
    Some(format!("compare with `{op}`"))
}
