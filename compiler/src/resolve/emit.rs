//! Multi-document YAML as `kustomize build` writes it: keys sorted at every level in the
//! order Go's YAML encoder uses, block style, `{}`/`[]` for empty collections, and strings
//! that a YAML 1.1 reader would read as something else quoted. Numbers are written as JSON
//! numbers (`0x1F` becomes `31`, as kustomize's JSON round trip does).

use crate::yaml::{Node, ScalarKind, Value, parse_float, parse_int};
use std::fmt::Write as _;

/// Writes documents separated by `---`.
pub fn emit_yaml(docs: &[Node]) -> String {
    let mut out = String::new();
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        emit_top(d, &mut out);
    }
    out
}

fn emit_top(n: &Node, out: &mut String) {
    match &n.value {
        Value::Map(m) if !m.is_empty() => emit_map(n, 0, out),
        Value::Seq(s) if !s.is_empty() => emit_seq(n, 0, out),
        _ => {
            out.push_str(&inline(n));
            out.push('\n');
        }
    }
}

/// Go-yaml's key order (`keyList.Less`): letters compare by code point, any non-letter sorts
/// before a letter, and runs of digits compare as numbers.
pub fn key_less(a: &str, b: &str) -> bool {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let n = ar.len().min(br.len());
    for i in 0..n {
        if ar[i] == br[i] {
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return bl;
        }
        let (mut an, mut bn): (i64, i64) = (0, 0);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 {
                j -= 1;
                if !ar[j].is_ascii_digit() {
                    break;
                }
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .saturating_mul(10)
                .saturating_add(ar[ai] as i64 - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .saturating_mul(10)
                .saturating_add(br[bi] as i64 - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

/// Sorts entries by [`key_less`]. Go's order is not transitive for some keys (`a1b < a2 <
/// a10 < a1b`), so a library sort (which may panic on such an order) is not used: an
/// insertion sort, as Go's own sort uses for small maps, and a total order for huge ones.
fn sort_keys(entries: &mut [&crate::yaml::Entry]) {
    if entries.len() > 256 {
        entries.sort_by(|a, b| a.key_str().cmp(b.key_str()));
    }
    for i in 1..entries.len() {
        let mut j = i;
        while j > 0 && key_less(entries[j].key_str(), entries[j - 1].key_str()) {
            entries.swap(j, j - 1);
            j -= 1;
        }
    }
}

#[cfg(test)]
fn key_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    if key_less(a, b) {
        Ordering::Less
    } else if key_less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn emit_map(n: &Node, ind: usize, out: &mut String) {
    let Some(m) = n.as_map() else {
        return;
    };
    let mut entries: Vec<_> = m.iter().collect();
    sort_keys(&mut entries);
    for e in entries {
        indent(out, ind);
        let key = scalar_str(e.key_str());
        out.push_str(&key);
        out.push(':');
        let col = ind + key.chars().count() + 2;
        emit_value(&e.value, ind, col, true, out);
    }
}

fn emit_seq(n: &Node, ind: usize, out: &mut String) {
    let Some(items) = n.as_seq() else {
        return;
    };
    for it in items {
        indent(out, ind);
        out.push('-');
        match &it.value {
            Value::Map(m) if !m.is_empty() => {
                // The first entry goes on the dash's line.
                let mut s = String::new();
                emit_map(it, ind + 2, &mut s);
                out.push(' ');
                out.push_str(s.get(ind + 2..).unwrap_or(""));
            }
            Value::Seq(s) if !s.is_empty() => {
                let mut b = String::new();
                emit_seq(it, ind + 2, &mut b);
                out.push(' ');
                out.push_str(b.get(ind + 2..).unwrap_or(""));
            }
            _ => emit_value(it, ind, ind + 2, false, out),
        }
    }
}

/// Writes a value after `key:` or `-` (no space written yet); a scalar starts at column
/// `col`.
fn emit_value(v: &Node, ind: usize, col: usize, in_map: bool, out: &mut String) {
    match &v.value {
        Value::Map(m) if !m.is_empty() => {
            out.push('\n');
            emit_map(v, ind + 2, out);
        }
        Value::Seq(s) if !s.is_empty() => {
            out.push('\n');
            // Go's encoder does not indent a sequence under a mapping key.
            emit_seq(v, if in_map { ind } else { ind + 2 }, out);
        }
        Value::Scalar(s) if s.kind == ScalarKind::Str && s.text.contains('\n') => {
            if let Some(block) = literal(&s.text, ind + 2) {
                out.push(' ');
                out.push_str(&block);
            } else {
                out.push(' ');
                out.push_str(&double_quoted(&s.text));
                out.push('\n');
            }
        }
        Value::Scalar(s) if s.kind == ScalarKind::Str => {
            out.push(' ');
            out.push_str(&fold(&scalar_str(&s.text), col, ind + 2));
            out.push('\n');
        }
        _ => {
            out.push(' ');
            out.push_str(&inline(v));
            out.push('\n');
        }
    }
}

/// Go's encoder breaks plain and single-quoted scalars at a space once a line passes 80
/// columns; continuation lines are indented to `cont`.
fn fold(text: &str, col: usize, cont: usize) -> String {
    const WIDTH: usize = 80;
    let quoted = text.starts_with('\'');
    if text.starts_with('"') || !text.contains(' ') {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    let mut column = col;
    let mut spaces = false;
    let n = chars.len();
    for i in 0..n {
        let c = chars[i];
        if c == ' ' {
            let next_space = chars.get(i + 1) == Some(&' ');
            // For a quoted scalar, the first and last characters of the value (inside the
            // quotes) never break.
            let edge = quoted && (i <= 1 || i + 2 >= n);
            if !spaces && column > WIDTH && !next_space && !edge {
                out.push('\n');
                for _ in 0..cont {
                    out.push(' ');
                }
                column = cont;
            } else {
                out.push(' ');
                column += 1;
            }
            spaces = true;
        } else {
            out.push(c);
            column += 1;
            spaces = false;
        }
    }
    out
}

fn inline(n: &Node) -> String {
    match &n.value {
        Value::Map(_) => "{}".into(),
        Value::Seq(_) => "[]".into(),
        Value::Scalar(s) => match s.kind {
            ScalarKind::Null => "null".into(),
            ScalarKind::Bool => {
                if s.text.eq_ignore_ascii_case("true") {
                    "true".into()
                } else {
                    "false".into()
                }
            }
            ScalarKind::Int => match parse_int(&s.text) {
                Some(i) => i.to_string(),
                None => scalar_str(&s.text),
            },
            ScalarKind::Float => match parse_float(&s.text) {
                Some(f) if f.is_finite() => {
                    if f.fract() == 0.0 && f.abs() < 1e15 {
                        format!("{}", f as i64)
                    } else {
                        format!("{f}")
                    }
                }
                _ => scalar_str(&s.text),
            },
            ScalarKind::Str => scalar_str(&s.text),
        },
    }
}

/// A literal block (`|`, `|-`, `|+`) for a multi-line string, if one can hold it exactly.
fn literal(s: &str, ind: usize) -> Option<String> {
    if s.starts_with(' ')
        || s.starts_with('\n')
        || s.chars()
            .any(|c| (c.is_control() && c != '\n') || c == '\u{feff}')
        || s.split('\n').any(|l| l.ends_with(' '))
    {
        return None;
    }
    let trailing = s.len() - s.trim_end_matches('\n').len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let body = s.trim_end_matches('\n');
    let mut out = format!("|{chomp}\n");
    for line in body.split('\n') {
        if !line.is_empty() {
            indent(&mut out, ind);
            out.push_str(line);
        }
        out.push('\n');
    }
    for _ in 1..trailing {
        out.push('\n');
    }
    Some(out)
}

/// True if a plain scalar with this text would read as something other than this string
/// under YAML 1.1 or 1.2.
fn resolves_to_non_string(s: &str) -> bool {
    if crate::yaml::resolve_plain(s) != ScalarKind::Str || crate::yaml::yaml11_reading(s).is_some()
    {
        return true;
    }
    if matches!(
        s,
        "y" | "Y"
            | "n"
            | "N"
            | "yes"
            | "Yes"
            | "YES"
            | "no"
            | "No"
            | "NO"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
            | "<<"
            | "="
    ) {
        return true;
    }
    // YAML 1.1 numbers: underscores, leading `+`, `.5`, sexagesimal.
    let t = s.strip_prefix(['+', '-']).unwrap_or(s);
    if !t.is_empty()
        && t.chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '.')
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '_' | '.' | ':' | 'e' | 'E' | '+' | '-'))
        && t.chars().any(|c| c.is_ascii_digit())
    {
        return true;
    }
    false
}

/// True if the text can be written as a plain scalar without changing meaning.
fn plain_ok(s: &str) -> bool {
    if s.is_empty() || s.starts_with(' ') || s.ends_with(' ') {
        return false;
    }
    let first = s.chars().next().unwrap_or(' ');
    if matches!(
        first,
        '-' | '?'
            | ':'
            | ','
            | '['
            | ']'
            | '{'
            | '}'
            | '#'
            | '&'
            | '*'
            | '!'
            | '|'
            | '>'
            | '\''
            | '"'
            | '%'
            | '@'
            | '`'
    ) {
        // `-x` and `:x` are plain-safe in YAML, but Go's encoder quotes them.
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    if s.chars()
        .any(|c| c.is_control() || c == '\u{feff}' || c == '\t')
    {
        return false;
    }
    true
}

/// A string scalar as Go's encoder writes it: plain when it reads back as the same string,
/// double-quoted when it would read as another type, single-quoted otherwise.
pub fn scalar_str(s: &str) -> String {
    if s.contains('\n') || s.chars().any(|c| c.is_control()) {
        return double_quoted(s);
    }
    if resolves_to_non_string(s) {
        return double_quoted(s);
    }
    if plain_ok(s) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "''"))
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn go_key_order() {
        let keys = [
            "Zed", "a-b", "a.b", "a_b", "a1b", "a01", "a2", "a10", "aB", "stages", "trigger",
        ];
        for w in keys.windows(2) {
            assert_eq!(key_cmp(w[0], w[1]), Ordering::Less, "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(scalar_str("yes"), "\"yes\"");
        assert_eq!(scalar_str("y"), "\"y\"");
        assert_eq!(scalar_str("1"), "\"1\"");
        assert_eq!(scalar_str("10m"), "10m");
        assert_eq!(scalar_str("*.x"), "'*.x'");
        assert_eq!(scalar_str("a: b"), "'a: b'");
        assert_eq!(scalar_str("agenticops.io/owner"), "agenticops.io/owner");
        assert_eq!(scalar_str(""), "\"\"");
    }
}
