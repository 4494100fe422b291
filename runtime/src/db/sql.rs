//! The engine's SQL is written once, in the subset SQLite and PostgreSQL share; the only
//! rewriting is of parameter placeholders: SQLite's `?1` (and bare `?`) become PostgreSQL's
//! `$1`. Quoted strings and identifiers are copied as they are.

/// `sql` with `?N` / `?` placeholders written as `$N` (outside quotes).
pub fn to_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    let mut next = 1u32;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                out.push('$');
                if digits.is_empty() {
                    out.push_str(&next.to_string());
                    next += 1;
                } else {
                    out.push_str(&digits);
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_postgres;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(
            to_postgres("SELECT a FROM t WHERE b = ?1 AND c IN (?2, ?12)"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $12)"
        );
        assert_eq!(
            to_postgres("UPDATE t SET a = ? WHERE b = ?"),
            "UPDATE t SET a = $1 WHERE b = $2"
        );
        assert_eq!(
            to_postgres("SELECT '?1', \"x?\" FROM t WHERE a = ?1"),
            "SELECT '?1', \"x?\" FROM t WHERE a = $1"
        );
        // '' inside a string closes and reopens it: still quoted.
        assert_eq!(
            to_postgres("SELECT 'it''s ?' , ?3"),
            "SELECT 'it''s ?' , $3"
        );
    }
}
