//! The tokens of the expression language: what [`super::lexer::lex`] produces and the
//! parser reads.

use super::{ExprError, Span};

/// The unit of a duration literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DurationUnit {
    /// `s`
    Seconds,
    /// `m`
    Minutes,
    /// `h`
    Hours,
    /// `d`
    Days,
}

impl DurationUnit {
    /// The number of seconds in one unit.
    pub fn seconds(self) -> f64 {
        match self {
            DurationUnit::Seconds => 1.0,
            DurationUnit::Minutes => 60.0,
            DurationUnit::Hours => 3600.0,
            DurationUnit::Days => 86400.0,
        }
    }

    /// The suffix letter: `s`, `m`, `h` or `d`.
    pub fn suffix(self) -> char {
        match self {
            DurationUnit::Seconds => 's',
            DurationUnit::Minutes => 'm',
            DurationUnit::Hours => 'h',
            DurationUnit::Days => 'd',
        }
    }

    /// The unit for a suffix letter (lower case only, as the contract writes them).
    pub fn from_suffix(c: u8) -> Option<Self> {
        match c {
            b's' => Some(DurationUnit::Seconds),
            b'm' => Some(DurationUnit::Minutes),
            b'h' => Some(DurationUnit::Hours),
            b'd' => Some(DurationUnit::Days),
            _ => None,
        }
    }
}

/// What a token is. Literal tokens carry their value.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    /// `10000`, `-3`, `0.5`.
    Number(f64),
    /// `30%`: `value` is the fraction (0.3), `written` the number before `%` (30).
    Percent {
        /// The fraction: `written / 100`.
        value: f64,
        /// The number as written.
        written: f64,
    },
    /// `4h`: `seconds` is `value * unit.seconds()`.
    Duration {
        /// The length in seconds.
        seconds: f64,
        /// The number as written.
        value: f64,
        /// The unit as written.
        unit: DurationUnit,
    },
    /// A string literal, escapes resolved.
    Str(String),
    /// A name that is not a keyword.
    Name(String),
    /// `AND` or `&&`.
    And,
    /// `OR` or `||`.
    Or,
    /// `NOT` or `!`.
    Not,
    /// `IN`.
    In,
    /// `true`.
    True,
    /// `false`.
    False,
    /// `null`.
    Null,
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `[`.
    LBracket,
    /// `]`.
    RBracket,
    /// `,`.
    Comma,
    /// `.`.
    Dot,
    /// A malformed piece of input, already reported in [`Lexed::errors`].
    Error,
    /// The end of the input (an empty span at its end). Always the last token.
    Eof,
}

impl TokenKind {
    /// True for the keywords that a name can also spell (`AND`, `OR`, `NOT`, `IN`, `true`,
    /// `false`, `null`): after a `.` in a reference they are field names.
    pub fn is_keyword(&self) -> bool {
        matches!(
            self,
            TokenKind::And
                | TokenKind::Or
                | TokenKind::Not
                | TokenKind::In
                | TokenKind::True
                | TokenKind::False
                | TokenKind::Null
        )
    }
}

/// A token and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// What the token is.
    pub kind: TokenKind,
    /// Its bytes in the lexed text.
    pub span: Span,
}

/// The result of [`lex`]: the tokens (ending with [`TokenKind::Eof`]) and the errors.
#[derive(Debug, Clone, PartialEq)]
pub struct Lexed {
    /// The tokens in order; the last one is always `Eof`.
    pub tokens: Vec<Token>,
    /// Problems found, in the order of the text.
    pub errors: Vec<ExprError>,
}
