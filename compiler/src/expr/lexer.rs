//! A hand-written lexer for the expression language.
//!
//! [`lex`] turns the whole text into tokens in one pass. It never stops at a problem: a
//! malformed piece (an unterminated string, a stray character, `10_pods`, `$50/month`)
//! becomes one [`TokenKind::Error`] token plus an [`ExprError`], and lexing continues after
//! it. The parser treats an `Error` token as an operand that was already reported, so one
//! mistake gives one diagnostic.
//!
//! Lexical rules:
//!
//! * Whitespace (any Unicode whitespace) separates tokens and is otherwise ignored.
//! * NAME: `[A-Za-z_][A-Za-z0-9_-]*`. A `-` inside a name belongs to it (`risk-level`,
//!   `a-b` is one name). The names `AND`, `OR`, `NOT`, `IN`, `true`, `false` and `null` are
//!   keywords, in any case (`and`, `Not`, `TRUE`).
//! * NUMBER: `-?[0-9]+(\.[0-9]+)?`. A `-` at the start of a token followed by a digit begins
//!   a negative number (`a -1` is a name and a number). `1.` is the number `1` and a `.`.
//! * PERCENT: a NUMBER directly followed by `%` (`30%` is 0.3).
//! * DURATION: a NUMBER directly followed by `s`, `m`, `h` or `d` and not by another name
//!   character (`4h`, `1.5h`, `30s`).
//! * A NUMBER directly followed by any other name character (`10_pods`, `5min`, `2x`) is an
//!   error, with a hint for the form that is supported.
//! * STRING: `'…'` or `"…"`. Escapes: `\\`, `\'`, `\"`, `\n`, `\t`, `\r`; any other escape
//!   is an error (the character is kept). A string may span lines.
//! * Operators: `==`, `!=`, `<`, `<=`, `>`, `>=`, `!` (NOT), `&&` (AND), `||` (OR), and the
//!   punctuation `(`, `)`, `[`, `]`, `,`, `.`. The look-alikes `=`, `&`, `|` and `<>` are
//!   reported and then read as `==`, `&&`, `||` and `!=` so parsing can go on.

pub use super::token::{DurationUnit, Lexed, Token, TokenKind};
use super::{ExprError, pos};

/// Splits `src` into tokens. Never panics; problems are reported in [`Lexed::errors`].
///
/// A text longer than `u32::MAX` bytes is not lexed: it gives one error and only `Eof`.
pub fn lex(src: &str) -> Lexed {
    if u32::try_from(src.len()).is_err() {
        return Lexed {
            tokens: vec![Token {
                kind: TokenKind::Eof,
                span: 0..0,
            }],
            errors: vec![ExprError::new(0..0, "expression is too long")],
        };
    }
    let mut lexer = Lexer {
        src,
        bytes: src.as_bytes(),
        pos: 0,
        tokens: Vec::new(),
        errors: Vec::new(),
    };
    lexer.run();
    Lexed {
        tokens: lexer.tokens,
        errors: lexer.errors,
    }
}

/// True for the characters that may continue a NAME.
pub(crate) fn is_name_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// True for the characters that may start a NAME.
pub(crate) fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

/// The keyword a name spells, if any (case-insensitive).
pub(crate) fn keyword(text: &str) -> Option<TokenKind> {
    const KEYWORDS: [(&str, TokenKind); 7] = [
        ("and", TokenKind::And),
        ("or", TokenKind::Or),
        ("not", TokenKind::Not),
        ("in", TokenKind::In),
        ("true", TokenKind::True),
        ("false", TokenKind::False),
        ("null", TokenKind::Null),
    ];
    KEYWORDS
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(text))
        .map(|(_, kind)| kind.clone())
}

/// The unit a spelled-out duration word stands for, and the factor to apply to the number
/// (`weeks` → days × 7, `ms` → seconds ÷ 1000). Used for hints on `5min` and `5 minutes`.
pub(crate) fn duration_word(word: &str) -> Option<(DurationUnit, f64)> {
    let w = word.to_ascii_lowercase();
    let unit = match w.as_str() {
        "sec" | "secs" | "second" | "seconds" => (DurationUnit::Seconds, 1.0),
        "min" | "mins" | "minute" | "minutes" => (DurationUnit::Minutes, 1.0),
        "hr" | "hrs" | "hour" | "hours" => (DurationUnit::Hours, 1.0),
        "day" | "days" => (DurationUnit::Days, 1.0),
        "w" | "wk" | "wks" | "week" | "weeks" => (DurationUnit::Days, 7.0),
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => (DurationUnit::Seconds, 0.001),
        _ => return None,
    };
    Some(unit)
}

/// The supported spelling of `number` `word` when `word` names a duration unit: `5 minutes`
/// → `5m`, `2 weeks` → `14d`.
pub(crate) fn duration_suggestion(number: &str, word: &str) -> Option<String> {
    let (unit, factor) = duration_word(word)?;
    let n: f64 = number.parse().ok()?;
    let v = n * factor;
    if !v.is_finite() {
        return None;
    }
    Some(format!("{v}{}", unit.suffix()))
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    tokens: Vec<Token>,
    errors: Vec<ExprError>,
}

impl Lexer<'_> {
    fn run(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                b'0'..=b'9' => self.number(),
                b'-' if self
                    .byte_at(self.pos + 1)
                    .is_some_and(|c| c.is_ascii_digit()) =>
                {
                    self.number()
                }
                b'A'..=b'Z' | b'a'..=b'z' | b'_' => self.name(),
                b'\'' | b'"' => self.string(b),
                b'(' => self.single(TokenKind::LParen, 1),
                b')' => self.single(TokenKind::RParen, 1),
                b'[' => self.single(TokenKind::LBracket, 1),
                b']' => self.single(TokenKind::RBracket, 1),
                b',' => self.single(TokenKind::Comma, 1),
                b'.' => self.single(TokenKind::Dot, 1),
                b'=' => {
                    if self.byte_at(self.pos + 1) == Some(b'=') {
                        self.single(TokenKind::Eq, 2);
                    } else {
                        self.lookalike(
                            TokenKind::Eq,
                            1,
                            "`=` is not an operator",
                            "use `==` to compare",
                        );
                    }
                }
                b'!' => {
                    if self.byte_at(self.pos + 1) == Some(b'=') {
                        self.single(TokenKind::Ne, 2);
                    } else {
                        self.single(TokenKind::Not, 1);
                    }
                }
                b'<' => match self.byte_at(self.pos + 1) {
                    Some(b'=') => self.single(TokenKind::Le, 2),
                    Some(b'>') => {
                        self.lookalike(TokenKind::Ne, 2, "`<>` is not an operator", "use `!=`")
                    }
                    _ => self.single(TokenKind::Lt, 1),
                },
                b'>' => {
                    if self.byte_at(self.pos + 1) == Some(b'=') {
                        self.single(TokenKind::Ge, 2);
                    } else {
                        self.single(TokenKind::Gt, 1);
                    }
                }
                b'&' => {
                    if self.byte_at(self.pos + 1) == Some(b'&') {
                        self.single(TokenKind::And, 2);
                    } else {
                        self.lookalike(
                            TokenKind::And,
                            1,
                            "`&` is not an operator",
                            "use `&&` or `AND`",
                        );
                    }
                }
                b'|' => {
                    if self.byte_at(self.pos + 1) == Some(b'|') {
                        self.single(TokenKind::Or, 2);
                    } else {
                        self.lookalike(
                            TokenKind::Or,
                            1,
                            "`|` is not an operator",
                            "use `||` or `OR`",
                        );
                    }
                }
                b'$' => self.dollar(),
                _ => match self.char_at(self.pos) {
                    Some(c) if c.is_whitespace() => self.pos += c.len_utf8(),
                    _ => self.stray(),
                },
            }
        }
        let end = pos(self.src.len());
        self.tokens.push(Token {
            kind: TokenKind::Eof,
            span: end..end,
        });
    }

    fn byte_at(&self, i: usize) -> Option<u8> {
        self.bytes.get(i).copied()
    }

    fn char_at(&self, i: usize) -> Option<char> {
        self.src.get(i..).and_then(|s| s.chars().next())
    }

    fn text(&self, start: usize, end: usize) -> &str {
        self.src.get(start..end).unwrap_or("")
    }

    fn push(&mut self, kind: TokenKind, start: usize, end: usize) {
        self.tokens.push(Token {
            kind,
            span: pos(start)..pos(end),
        });
    }

    fn error(&mut self, start: usize, end: usize, message: String, help: Option<String>) {
        self.errors.push(ExprError {
            span: pos(start)..pos(end),
            message,
            help,
        });
    }

    fn single(&mut self, kind: TokenKind, len: usize) {
        let start = self.pos;
        self.pos += len;
        self.push(kind, start, self.pos);
    }

    /// An operator look-alike: reported, then read as the operator it resembles.
    fn lookalike(&mut self, kind: TokenKind, len: usize, message: &str, help: &str) {
        let start = self.pos;
        self.pos += len;
        self.error(start, self.pos, message.to_string(), Some(help.to_string()));
        self.push(kind, start, self.pos);
    }

    fn skip_digits(&mut self) {
        while self.byte_at(self.pos).is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    fn number(&mut self) {
        let start = self.pos;
        if self.byte_at(self.pos) == Some(b'-') {
            self.pos += 1;
        }
        self.skip_digits();
        if self.byte_at(self.pos) == Some(b'.')
            && self
                .byte_at(self.pos + 1)
                .is_some_and(|c| c.is_ascii_digit())
        {
            self.pos += 1;
            self.skip_digits();
        }
        let num_end = self.pos;
        let text = self.text(start, num_end).to_string();
        let value = text.parse::<f64>().ok().filter(|v| v.is_finite());

        // A suffix of name characters directly after the digits.
        let next = self.byte_at(self.pos);
        let kind = match next {
            Some(b'%') => {
                self.pos += 1;
                value.map(|written| TokenKind::Percent {
                    value: written / 100.0,
                    written,
                })
            }
            Some(c)
                if DurationUnit::from_suffix(c).is_some()
                    && !self
                        .byte_at(self.pos + 1)
                        .is_some_and(|n| n.is_ascii_alphanumeric() || n == b'_') =>
            {
                self.pos += 1;
                let unit = DurationUnit::from_suffix(c).unwrap_or(DurationUnit::Seconds);
                value
                    .map(|value| (value, value * unit.seconds()))
                    .filter(|(_, seconds)| seconds.is_finite())
                    .map(|(value, seconds)| TokenKind::Duration {
                        seconds,
                        value,
                        unit,
                    })
            }
            Some(c) if is_name_start(c) => {
                while self.byte_at(self.pos).is_some_and(is_name_continue) {
                    self.pos += 1;
                }
                let suffix = self.text(num_end, self.pos).to_string();
                let (message, help) = bad_suffix(&text, &suffix);
                self.error(start, self.pos, message, Some(help));
                self.push(TokenKind::Error, start, self.pos);
                return;
            }
            _ => value.map(TokenKind::Number),
        };
        match kind {
            Some(kind) => self.push(kind, start, self.pos),
            None => {
                self.error(
                    start,
                    self.pos,
                    format!("`{}` is too large", abbreviate(self.text(start, self.pos))),
                    None,
                );
                self.push(TokenKind::Error, start, self.pos);
            }
        }
    }

    fn name(&mut self) {
        let start = self.pos;
        self.pos += 1;
        while self.byte_at(self.pos).is_some_and(is_name_continue) {
            self.pos += 1;
        }
        let text = self.text(start, self.pos);
        let kind = keyword(text).unwrap_or_else(|| TokenKind::Name(text.to_string()));
        self.push(kind, start, self.pos);
    }

    fn string(&mut self, quote: u8) {
        let start = self.pos;
        self.pos += 1;
        let quote = char::from(quote);
        let mut value = String::new();
        let mut terminated = false;
        while let Some(c) = self.char_at(self.pos) {
            if c == quote {
                self.pos += 1;
                terminated = true;
                break;
            }
            if c != '\\' {
                value.push(c);
                self.pos += c.len_utf8();
                continue;
            }
            let esc_start = self.pos;
            self.pos += 1;
            let Some(e) = self.char_at(self.pos) else {
                break;
            };
            self.pos += e.len_utf8();
            match e {
                '\\' | '\'' | '"' => value.push(e),
                'n' => value.push('\n'),
                't' => value.push('\t'),
                'r' => value.push('\r'),
                other => {
                    self.error(
                        esc_start,
                        self.pos,
                        format!("unknown escape sequence `\\{other}` in string"),
                        Some(
                            "the escapes are `\\\\`, `\\'`, `\\\"`, `\\n`, `\\t` and `\\r`"
                                .to_string(),
                        ),
                    );
                    value.push(other);
                }
            }
        }
        if terminated {
            self.push(TokenKind::Str(value), start, self.pos);
        } else {
            self.error(
                start,
                self.pos,
                "unterminated string".to_string(),
                Some(format!("add a closing `{quote}`")),
            );
            self.push(TokenKind::Error, start, self.pos);
        }
    }

    fn dollar(&mut self) {
        let start = self.pos;
        match self.byte_at(self.pos + 1) {
            Some(b'{') => {
                // `${…}` (or GitHub's `${{ … }}`) inside an expression.
                let double = self.byte_at(self.pos + 2) == Some(b'{');
                let open = if double { 3 } else { 2 };
                let close = if double { "}}" } else { "}" };
                let rest = self.src.get(start + open..).unwrap_or("");
                let (inner, end) = match rest.find(close) {
                    Some(i) => (rest.get(..i).unwrap_or(""), start + open + i + close.len()),
                    None => (rest, self.src.len()),
                };
                let inner = inner.trim();
                let help = if !inner.is_empty() && inner.len() <= 60 && !inner.contains(['{', '}'])
                {
                    format!("write the reference directly: `{inner}`")
                } else {
                    "write the reference directly, without `${` and `}`".to_string()
                };
                self.pos = end;
                self.error(
                    start,
                    end,
                    "`${…}` interpolation is not used inside an expression".to_string(),
                    Some(help),
                );
                self.push(TokenKind::Error, start, end);
            }
            Some(c) if c.is_ascii_digit() => {
                // A currency amount: `$50`, `$1,200.50`, `$50k`, `$50/month`.
                self.pos += 1;
                let digits_start = self.pos;
                while self
                    .byte_at(self.pos)
                    .is_some_and(|c| c.is_ascii_digit() || c == b',' || c == b'.')
                {
                    self.pos += 1;
                }
                let amount: String = self
                    .text(digits_start, self.pos)
                    .chars()
                    .filter(|&c| c != ',')
                    .collect();
                let amount = amount.trim_end_matches('.').to_string();
                while self.byte_at(self.pos).is_some_and(is_name_continue) {
                    self.pos += 1;
                }
                if self.byte_at(self.pos) == Some(b'/')
                    && self.byte_at(self.pos + 1).is_some_and(is_name_start)
                {
                    self.pos += 1;
                    while self.byte_at(self.pos).is_some_and(is_name_continue) {
                        self.pos += 1;
                    }
                }
                let text = abbreviate(self.text(start, self.pos));
                self.error(
                    start,
                    self.pos,
                    format!("`{text}` is not a number: the expression language has no currency amounts"),
                    Some(format!(
                        "compare against the plain number, such as `{amount}`; the unit belongs in the field's schema"
                    )),
                );
                self.push(TokenKind::Error, start, self.pos);
            }
            Some(c) if is_name_start(c) => {
                // `$name`: report the `$` and lex the name normally.
                self.pos += 1;
                self.error(
                    start,
                    self.pos,
                    "unexpected `$`".to_string(),
                    Some("names and references are written without `$`".to_string()),
                );
            }
            _ => self.stray(),
        }
    }

    /// True when the character at `i` begins a token (so a run of stray characters ends).
    fn starts_token(&self, i: usize) -> bool {
        match self.byte_at(i) {
            None => true,
            Some(b) => match b {
                b'-' => self.byte_at(i + 1).is_some_and(|c| c.is_ascii_digit()),
                b'0'..=b'9'
                | b'A'..=b'Z'
                | b'a'..=b'z'
                | b'_'
                | b'\''
                | b'"'
                | b'('
                | b')'
                | b'['
                | b']'
                | b','
                | b'.'
                | b'='
                | b'!'
                | b'<'
                | b'>'
                | b'&'
                | b'|'
                | b'$' => true,
                _ => self.char_at(i).is_none_or(char::is_whitespace),
            },
        }
    }

    /// A run of characters that start no token: one error and one `Error` token.
    fn stray(&mut self) {
        let start = self.pos;
        let Some(first) = self.char_at(self.pos) else {
            self.pos = self.src.len();
            return;
        };
        self.pos += first.len_utf8();
        if let Some(close) = match first {
            '‘' => Some('’'),
            '“' => Some('”'),
            _ => None,
        } {
            // A string in curly quotes: one error for the whole string.
            let rest = self.src.get(self.pos..).unwrap_or("");
            if let Some(k) = rest.find(close) {
                self.pos += k + close.len_utf8();
                let text = abbreviate(self.text(start, self.pos));
                self.error(
                    start,
                    self.pos,
                    format!("`{text}` is quoted with curly quotes"),
                    Some("quote strings with `'` or `\"`".to_string()),
                );
                self.push(TokenKind::Error, start, self.pos);
                return;
            }
        }
        while !self.starts_token(self.pos) {
            match self.char_at(self.pos) {
                Some(c) => self.pos += c.len_utf8(),
                None => break,
            }
        }
        let text = self.text(start, self.pos);
        let message = if text.chars().nth(1).is_some() {
            format!("unexpected characters `{}`", abbreviate(text))
        } else {
            format!("unexpected character `{text}`")
        };
        let help = match first {
            '+' | '-' | '*' | '/' | '%' => {
                Some("the expression language has no arithmetic operators".to_string())
            }
            '≥' => Some("use `>=`".to_string()),
            '≤' => Some("use `<=`".to_string()),
            '≠' => Some("use `!=`".to_string()),
            '‘' | '’' | '“' | '”' => Some("quote strings with `'` or `\"`".to_string()),
            '#' => Some("expressions have no comments".to_string()),
            _ => None,
        };
        self.error(start, self.pos, message, help);
        self.push(TokenKind::Error, start, self.pos);
    }
}

/// The message and help for a number followed directly by name characters.
fn bad_suffix(number: &str, suffix: &str) -> (String, String) {
    let whole = abbreviate(&format!("{number}{suffix}"));
    let word = suffix.trim_start_matches(['_', '-']);
    if let Some(suggestion) = duration_suggestion(number, word) {
        return (
            format!("`{whole}` is not a valid duration"),
            format!(
                "write `{suggestion}`: a duration is a number followed by `s`, `m`, `h` or `d`"
            ),
        );
    }
    let lower = word.to_ascii_lowercase();
    if lower == "pct" || lower == "percent" {
        return (
            format!("`{whole}` is not a valid percentage"),
            format!("write `{number}%`"),
        );
    }
    if lower
        .strip_prefix('e')
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
    {
        return (
            format!("`{whole}` is not a valid number"),
            "scientific notation is not supported: write the number in full".to_string(),
        );
    }
    (
        format!("`{whole}` is not a valid number"),
        format!(
            "numbers take no unit: write `{number}`; only durations (`30s`, `10m`, `4h`, `2d`) and percentages (`30%`) have a suffix"
        ),
    )
}

/// `text`, cut to at most 40 characters with `…` when longer.
pub(crate) fn abbreviate(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(MAX - 1).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests;
