//! The canonical form of an expression (`Display` for [`Expr`]).
//!
//! Keywords are upper case (`AND`, `OR`, `NOT`, `IN`, `NOT IN`), literals lower case (`true`,
//! `false`, `null`); `&&`, `||` and `!` print as `AND`, `OR` and `NOT`; binary operators have
//! one space on each side; lists print as `[a, b]`; strings use single quotes, escaping `\`,
//! `'`, newline, tab and carriage return; numbers print in plain decimal (never with an
//! exponent) with the fewest digits that read back as the same value; percentages and
//! durations print the number as written with their suffix (`30%`, `1.5h`).
//!
//! For a tree produced by [`super::parse`] without errors, printing then parsing again gives
//! the same tree (spans aside). The printer adds parentheses only where a hand-built tree
//! needs them to read back with the same structure (`NOT` around an `OR`, a comparison
//! inside a comparison, an `OR` directly inside an `OR`); a parsed tree carries its own
//! [`ExprKind::Paren`] nodes. An [`ExprKind::Error`] node prints as `<error>`, which does
//! not parse.

use std::fmt::{self, Display, Write as _};

use super::ast::{CompareOp, Expr, ExprKind};

impl Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_expr(f, self)
    }
}

/// Binding strength: a child whose level is below what its position needs gets parentheses.
fn level(e: &Expr) -> u8 {
    match e.kind {
        ExprKind::Or { .. } => 1,
        ExprKind::And { .. } => 2,
        ExprKind::Not { .. } => 3,
        ExprKind::Compare { .. } => 4,
        _ => 5,
    }
}

fn write_child(f: &mut fmt::Formatter<'_>, e: &Expr, min_level: u8) -> fmt::Result {
    if level(e) < min_level {
        f.write_char('(')?;
        write_expr(f, e)?;
        f.write_char(')')
    } else {
        write_expr(f, e)
    }
}

fn write_expr(f: &mut fmt::Formatter<'_>, e: &Expr) -> fmt::Result {
    match &e.kind {
        ExprKind::Or { operands, .. } => write_chain(f, operands, " OR ", 2),
        ExprKind::And { operands, .. } => write_chain(f, operands, " AND ", 3),
        ExprKind::Not { operand, .. } => {
            f.write_str("NOT ")?;
            write_child(f, operand, 3)
        }
        ExprKind::Compare { op, lhs, rhs, .. } => {
            write_child(f, lhs, 5)?;
            write!(f, " {op} ")?;
            write_child(f, rhs, 5)
        }
        ExprKind::Ref { segments } => {
            for (i, (name, _)) in segments.iter().enumerate() {
                if i > 0 {
                    f.write_char('.')?;
                }
                f.write_str(name)?;
            }
            Ok(())
        }
        ExprKind::Number(v) => write!(f, "{v}"),
        ExprKind::Percent { written, .. } => write!(f, "{written}%"),
        ExprKind::Duration { value, unit, .. } => write!(f, "{value}{}", unit.suffix()),
        ExprKind::Str(s) => write_string(f, s),
        ExprKind::Bool(true) => f.write_str("true"),
        ExprKind::Bool(false) => f.write_str("false"),
        ExprKind::Null => f.write_str("null"),
        ExprKind::Ident(name) => f.write_str(name),
        ExprKind::List(items) => {
            f.write_char('[')?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_child(f, item, 5)?;
            }
            f.write_char(']')
        }
        ExprKind::Paren(inner) => {
            f.write_char('(')?;
            write_expr(f, inner)?;
            f.write_char(')')
        }
        ExprKind::Error => f.write_str("<error>"),
    }
}

fn write_chain(
    f: &mut fmt::Formatter<'_>,
    operands: &[Expr],
    sep: &str,
    min_level: u8,
) -> fmt::Result {
    for (i, operand) in operands.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write_child(f, operand, min_level)?;
    }
    Ok(())
}

fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('\'')?;
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '\'' => f.write_str("\\'")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('\'')
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use crate::expr::parse;

    /// The canonical form of `src`, which must parse without errors.
    fn canon(src: &str) -> String {
        let (e, errors) = parse(src);
        assert!(errors.is_empty(), "{src:?}: {errors:#?}");
        e.map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(
            canon("security-report.risk-level >= HIGH"),
            "security-report.risk-level >= HIGH"
        );
        assert_eq!(canon("a&&b||!c"), "a AND b OR NOT c");
        assert_eq!(canon("a and (b or c)"), "a AND (b OR c)");
        assert_eq!(canon("x not in ['A',\"B\"]"), "x NOT IN ['A', 'B']");
        assert_eq!(canon("x in [ ]"), "x IN []");
        assert_eq!(canon("p == TRUE or q == Null"), "p == true OR q == null");
        assert_eq!(canon("n > 10000.0"), "n > 10000");
        assert_eq!(canon("n > -0.50"), "n > -0.5");
        assert_eq!(canon("r < 5%"), "r < 5%");
        assert_eq!(canon("t < 1.50h"), "t < 1.5h");
        assert_eq!(canon("s == \"it's\\n\""), "s == 'it\\'s\\n'");
        assert_eq!(canon("input.in.NOT == 1"), "input.in.NOT == 1");
        assert_eq!(canon("((a))"), "((a))");
    }

    #[test]
    fn printer_adds_parentheses_a_hand_built_tree_needs() {
        let leaf = |name: &str| Expr::new(ExprKind::Ident(name.into()), 0..0);
        let or = Expr::new(
            ExprKind::Or {
                operands: vec![leaf("a"), leaf("b")],
                op_spans: vec![0..0],
            },
            0..0,
        );
        let not = Expr::new(
            ExprKind::Not {
                op_span: 0..0,
                operand: Box::new(or.clone()),
            },
            0..0,
        );
        assert_eq!(not.to_string(), "NOT (a OR b)");
        let nested_or = Expr::new(
            ExprKind::Or {
                operands: vec![leaf("c"), or.clone()],
                op_spans: vec![0..0],
            },
            0..0,
        );
        assert_eq!(nested_or.to_string(), "c OR (a OR b)");
        let cmp = Expr::new(
            ExprKind::Compare {
                op: CompareOp::Eq,
                op_span: 0..0,
                lhs: Box::new(not.clone()),
                rhs: Box::new(Expr::new(ExprKind::Bool(false), 0..0)),
            },
            0..0,
        );
        assert_eq!(cmp.to_string(), "(NOT (a OR b)) == false");
        assert_eq!(Expr::new(ExprKind::Error, 0..0).to_string(), "<error>");
    }
}
