//! Operands: names and paths, parenthesised expressions and lists.

use super::*;

impl Parser<'_> {
    pub(super) fn parse_operand(&mut self, after: Option<After>) -> Expr {
        let i = self.pos;
        let span = self.span_of(i);
        let kind = match &self.tok(i).kind {
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
            TokenKind::Str(s) => ExprKind::Str(s.clone()),
            TokenKind::True => ExprKind::Bool(true),
            TokenKind::False => ExprKind::Bool(false),
            TokenKind::Null => ExprKind::Null,
            TokenKind::Error => ExprKind::Error,
            TokenKind::Name(name) => {
                let name = name.clone();
                return self.parse_name(name, span);
            }
            TokenKind::LParen => return self.nested(i, |p| p.parse_paren()),
            TokenKind::LBracket => return self.nested(i, |p| p.parse_list()),
            _ => return self.missing_operand(after),
        };
        self.bump();
        Expr::new(kind, span)
    }

    /// An identifier, or a reference when a `.` follows.
    pub(super) fn parse_name(&mut self, first: String, first_span: Span) -> Expr {
        self.bump();
        if !matches!(self.peek(), TokenKind::Dot) {
            return Expr::new(ExprKind::Ident(first), first_span);
        }
        let start = first_span.start;
        let mut end = first_span.end;
        let mut segments = vec![(first, first_span)];
        while matches!(self.peek(), TokenKind::Dot) {
            let dot = self.bump();
            end = self.tok(dot).span.end;
            let i = self.pos;
            let span = self.span_of(i);
            let kind = self.tok(i).kind.clone();
            let name = match &kind {
                TokenKind::Name(n) => Some(n.clone()),
                k if k.is_keyword() => Some(self.text(i).to_string()),
                _ => None,
            };
            match name {
                Some(name) => {
                    self.bump();
                    end = span.end;
                    segments.push((name, span));
                }
                None => {
                    let help = match kind {
                        TokenKind::Number(_) | TokenKind::Duration { .. } => Some(
                            "a field name starts with a letter or `_`; list indexes are not supported"
                                .to_string(),
                        ),
                        _ => None,
                    };
                    let at = if matches!(kind, TokenKind::Eof) {
                        self.span_of(dot)
                    } else {
                        span
                    };
                    let message = format!(
                        "expected a field name after `.`, found {}",
                        self.describe(i)
                    );
                    self.error_at(Some(i), at, message, help);
                    break;
                }
            }
        }
        if segments.len() < 2 {
            return Expr::new(ExprKind::Error, start..end);
        }
        Expr::new(ExprKind::Ref { segments }, start..end)
    }

    pub(super) fn parse_paren(&mut self) -> Expr {
        let open = self.bump();
        let open_span = self.span_of(open);
        self.closers.push(Closer::Paren);
        let inner = self.parse_or(Some(After {
            span: open_span.clone(),
            ctx: Ctx::Open,
        }));
        self.closers.pop();
        let end = match self.peek() {
            TokenKind::RParen => {
                let i = self.bump();
                self.tok(i).span.end
            }
            TokenKind::Eof => {
                self.error_at(
                    None,
                    open_span.clone(),
                    "unclosed `(`: expected `)` before the end of the expression".to_string(),
                    Some("add `)` to close it".to_string()),
                );
                self.last_end.max(open_span.end)
            }
            _ => {
                // A `]` that an enclosing list waits for.
                let i = self.pos;
                let message = format!("expected `)` to close `(`, found {}", self.describe(i));
                self.error_at(Some(i), self.span_of(i), message, None);
                self.last_end.max(open_span.end)
            }
        };
        Expr::new(ExprKind::Paren(Box::new(inner)), open_span.start..end)
    }

    pub(super) fn parse_list(&mut self) -> Expr {
        let open = self.bump();
        let open_span = self.span_of(open);
        self.closers.push(Closer::Bracket);
        let mut items = Vec::new();
        let mut end = open_span.end;
        if matches!(self.peek(), TokenKind::RBracket) {
            let i = self.bump();
            end = self.tok(i).span.end;
            self.closers.pop();
            return Expr::new(ExprKind::List(items), open_span.start..end);
        }
        let mut after = open_span.clone();
        'items: loop {
            items.push(self.parse_operand(Some(After {
                span: after.clone(),
                ctx: Ctx::ListItem,
            })));
            loop {
                match self.peek() {
                    TokenKind::Comma => {
                        let comma = self.bump();
                        after = self.span_of(comma);
                        let last_missing = items.last().is_some_and(|e: &Expr| e.is_error());
                        if matches!(self.peek(), TokenKind::RBracket) {
                            if !last_missing {
                                let i = self.pos;
                                self.error_at(
                                    Some(i),
                                    after.clone(),
                                    "expected a list item after `,`, found `]`".to_string(),
                                    Some("remove the trailing `,`".to_string()),
                                );
                            }
                            continue;
                        }
                        continue 'items;
                    }
                    TokenKind::RBracket => {
                        let i = self.bump();
                        end = self.tok(i).span.end;
                        break 'items;
                    }
                    TokenKind::Eof => {
                        self.error_at(
                            None,
                            open_span.clone(),
                            "unclosed `[`: expected `]` before the end of the expression"
                                .to_string(),
                            Some("add `]` to close it".to_string()),
                        );
                        end = self.last_end.max(end);
                        break 'items;
                    }
                    _ if self.at_terminator() => {
                        // A `)` that an enclosing parenthesis waits for.
                        let i = self.pos;
                        let message = format!("expected `,` or `]`, found {}", self.describe(i));
                        self.error_at(Some(i), self.span_of(i), message, None);
                        end = self.last_end.max(end);
                        break 'items;
                    }
                    _ => {
                        let i = self.pos;
                        let kind = self.tok(i).kind.clone();
                        if !matches!(kind, TokenKind::Error) {
                            let help = match kind {
                                TokenKind::Number(_)
                                | TokenKind::Percent { .. }
                                | TokenKind::Duration { .. }
                                | TokenKind::Str(_)
                                | TokenKind::Name(_)
                                | TokenKind::True
                                | TokenKind::False
                                | TokenKind::Null
                                | TokenKind::LParen
                                | TokenKind::LBracket => {
                                    Some("separate list items with `,`".to_string())
                                }
                                _ => Some(
                                    "a list holds operands (names, references, literals), not conditions"
                                        .to_string(),
                                ),
                            };
                            let message = format!(
                                "expected `,` or `]` after a list item, found {}",
                                self.describe(i)
                            );
                            self.error_at(Some(i), self.span_of(i), message, help);
                        }
                        self.skip_junk(false);
                    }
                }
            }
        }
        self.closers.pop();
        Expr::new(ExprKind::List(items), open_span.start..end)
    }
}
