//! Plain scalars: YAML 1.2 core schema resolution (null, bool, int, float, string), number
//! parsing, and what a YAML 1.1 reader would make of a value (the `yes`/`no` trap).

use super::*;

/// Parses an integer as YAML 1.2 core reads it (decimal, `0o` octal, `0x` hex).
pub fn parse_int(t: &str) -> Option<i64> {
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = if let Some(h) = body.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = body.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else {
        body.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Parses a float as YAML 1.2 core reads it.
pub fn parse_float(t: &str) -> Option<f64> {
    match t {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        _ => t.parse::<f64>().ok(),
    }
}

/// Resolves a plain scalar's kind under the YAML 1.2 core schema.
pub fn resolve_plain(t: &str) -> ScalarKind {
    // Most plain scalars start with a letter: only `null`, `true` and `false` (in their three
    // spellings) among those resolve to something other than a string.
    if let Some(&c) = t.as_bytes().first()
        && c.is_ascii_alphabetic()
        && !matches!(c, b'n' | b'N' | b't' | b'T' | b'f' | b'F')
    {
        return ScalarKind::Str;
    }
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return ScalarKind::Null,
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => return ScalarKind::Bool,
        _ => {}
    }
    let b = t.as_bytes();
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    let body = match b.first() {
        Some(b'-') | Some(b'+') => &b[1..],
        _ => b,
    };
    if digits(body)
        || (t.starts_with("0x") && t.len() > 2 && t[2..].bytes().all(|c| c.is_ascii_hexdigit()))
        || (t.starts_with("0o")
            && t.len() > 2
            && t[2..].bytes().all(|c| (b'0'..=b'7').contains(&c)))
    {
        return ScalarKind::Int;
    }
    if is_core_float(t) {
        return ScalarKind::Float;
    }
    ScalarKind::Str
}

pub(super) fn is_core_float(t: &str) -> bool {
    if matches!(
        t,
        ".inf"
            | ".Inf"
            | ".INF"
            | "+.inf"
            | "+.Inf"
            | "+.INF"
            | "-.inf"
            | "-.Inf"
            | "-.INF"
            | ".nan"
            | ".NaN"
            | ".NAN"
    ) {
        return true;
    }
    // [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
    let s = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mant_ok = match mant.split_once('.') {
        Some((a, b)) => {
            (a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit()))
                && !(a.is_empty() && b.is_empty())
        }
        None => !mant.is_empty() && mant.bytes().all(|c| c.is_ascii_digit()),
    };
    let exp_ok = match exp {
        None => mant.contains('.'),
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit())
        }
    };
    mant_ok && exp_ok
}

/// What a YAML 1.1 reader would make of a plain scalar that YAML 1.2 reads as a string or
/// as a different number, if anything.
pub fn yaml11_reading(t: &str) -> Option<&'static str> {
    // Every reading below starts with a digit, a sign or one of `yYnNoO`.
    if let Some(&c) = t.as_bytes().first()
        && c.is_ascii_alphabetic()
        && !matches!(c, b'y' | b'Y' | b'n' | b'N' | b'o' | b'O')
    {
        return None;
    }
    match t {
        "yes" | "Yes" | "YES" | "on" | "On" | "ON" => return Some("the boolean true"),
        "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            return Some("the boolean false");
        }
        _ => {}
    }
    let b = t.as_bytes();
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    if body.len() > 1 && body.starts_with('0') && body.bytes().all(|c| c.is_ascii_digit()) {
        return Some(if body.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
            "an octal number"
        } else {
            "a number"
        });
    }
    if body.starts_with("0b") && body.len() > 2 && body[2..].bytes().all(|c| c == b'0' || c == b'1')
    {
        return Some("a binary number");
    }
    // Dates and timestamps: YYYY-MM-DD...
    if b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[8..10].iter().all(u8::is_ascii_digit)
        && (b.len() == 10 || matches!(b[10], b'T' | b't' | b' ' | b'\t'))
    {
        return Some("a timestamp");
    }
    // Sexagesimal integers such as 1:30 (YAML 1.1 reads 90).
    if let Some((h, m)) = t.split_once(':')
        && !h.is_empty()
        && h.bytes().all(|c| c.is_ascii_digit())
        && m.len() == 2
        && m.bytes().all(|c| c.is_ascii_digit())
        && h.as_bytes()[0] != b'0'
    {
        return Some("a base-60 number");
    }
    None
}
