//! Multi-document YAML as `kustomize build` writes it: keys sorted at every level in the
//! order Go's YAML encoder uses, block style, `{}`/`[]` for empty collections, and strings
//! that a YAML 1.1 reader would read as something else quoted. Numbers are written as JSON
//! numbers (`0x1F` becomes `31`, as kustomize's JSON round trip does).

use crate::yaml::{Node, ScalarKind, Value, parse_float, parse_int};
use std::fmt::Write as _;

/// Writes documents separated by `---`.
pub fn emit_yaml(docs: &[Node]) -> String {
    let parts = emit_parts(docs);
    let len = parts.iter().map(|p| p.len() + 4).sum();
    let mut out = String::with_capacity(len);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(p);
    }
    out
}

/// Writes documents separated by `---` to `w`, as [`emit_yaml`] does, without first
/// joining them into one string: a batch of documents is emitted (in parallel) and written
/// before the next, so the output is never held whole.
pub fn write_yaml(docs: &[Node], w: &mut impl std::io::Write) -> std::io::Result<()> {
    const BATCH: usize = 256;
    for (b, batch) in docs.chunks(BATCH).enumerate() {
        let parts = emit_parts(batch);
        let mut slices = Vec::with_capacity(parts.len() * 2);
        for (i, p) in parts.iter().enumerate() {
            if b > 0 || i > 0 {
                slices.push(std::io::IoSlice::new(b"---\n"));
            }
            slices.push(std::io::IoSlice::new(p.as_bytes()));
        }
        let mut rest: &mut [std::io::IoSlice<'_>] = &mut slices;
        while !rest.is_empty() {
            match w.write_vectored(rest) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => std::io::IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    w.flush()
}

/// Each document written on its own (in parallel when there are many), in order: the
/// output does not depend on the number of threads.
pub(super) fn emit_parts(docs: &[Node]) -> Vec<String> {
    use rayon::prelude::*;
    if docs.len() >= 64 {
        docs.par_iter()
            .map(|d| {
                let mut s = String::with_capacity(4096);
                emit_top(d, &mut s);
                s
            })
            .collect()
    } else {
        docs.iter()
            .map(|d| {
                let mut s = String::new();
                emit_top(d, &mut s);
                s
            })
            .collect()
    }
}

fn emit_top(n: &Node, out: &mut String) {
    match &n.value {
        Value::Map(m) if !m.is_empty() => emit_map(n, 0, false, out),
        Value::Seq(s) if !s.is_empty() => emit_seq(n, 0, false, out),
        _ => {
            write_inline(n, out);
            out.push('\n');
        }
    }
}

/// Go-yaml's key order (`keyList.Less`): letters compare by code point, any non-letter sorts
/// before a letter, and runs of digits compare as numbers.
pub fn key_less(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        // ASCII (nearly every key): the same comparison on bytes, without allocating.
        less_units(a.as_bytes(), b.as_bytes())
    } else {
        let ar: Vec<char> = a.chars().collect();
        let br: Vec<char> = b.chars().collect();
        less_units(&ar, &br)
    }
}

/// A unit of a key for [`key_less`]: a byte of an ASCII key, or a char.
trait KeyUnit: Copy + Ord {
    fn alpha(self) -> bool;
    fn digit(self) -> bool;
    fn zero(self) -> bool;
    fn value(self) -> i64;
}

impl KeyUnit for u8 {
    fn alpha(self) -> bool {
        self.is_ascii_alphabetic()
    }
    fn digit(self) -> bool {
        self.is_ascii_digit()
    }
    fn zero(self) -> bool {
        self == b'0'
    }
    fn value(self) -> i64 {
        self as i64 - b'0' as i64
    }
}

impl KeyUnit for char {
    fn alpha(self) -> bool {
        self.is_alphabetic()
    }
    fn digit(self) -> bool {
        self.is_ascii_digit()
    }
    fn zero(self) -> bool {
        self == '0'
    }
    fn value(self) -> i64 {
        self as i64 - '0' as i64
    }
}

fn less_units<T: KeyUnit>(ar: &[T], br: &[T]) -> bool {
    let n = ar.len().min(br.len());
    for i in 0..n {
        if ar[i] == br[i] {
            continue;
        }
        let al = ar[i].alpha();
        let bl = br[i].alpha();
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return bl;
        }
        let (mut an, mut bn): (i64, i64) = (0, 0);
        if ar[i].zero() || br[i].zero() {
            let mut j = i;
            while j > 0 {
                j -= 1;
                if !ar[j].digit() {
                    break;
                }
                if !ar[j].zero() {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].digit() {
            an = an.saturating_mul(10).saturating_add(ar[ai].value());
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].digit() {
            bn = bn.saturating_mul(10).saturating_add(br[bi].value());
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
    const SPACES: &str = "                                                                ";
    let mut n = n;
    while n > SPACES.len() {
        out.push_str(SPACES);
        n -= SPACES.len();
    }
    out.push_str(&SPACES[..n]);
}

/// Writes a mapping's entries at indentation `ind`; with `inline_first`, the first line
/// gets no indentation (it follows a `- ` already written).
fn emit_map(n: &Node, ind: usize, inline_first: bool, out: &mut String) {
    let Some(m) = n.as_map() else {
        return;
    };
    let mut entries: Vec<_> = m.iter().collect();
    sort_keys(&mut entries);
    for (i, e) in entries.into_iter().enumerate() {
        if i > 0 || !inline_first {
            indent(out, ind);
        }
        let start = out.len();
        write_scalar(out, e.key_str());
        let key_len = out[start..].chars().count();
        out.push(':');
        let col = ind + key_len + 2;
        emit_value(&e.value, ind, col, true, out);
    }
}

/// Writes a sequence's items at indentation `ind`; `inline_first` as for [`emit_map`].
fn emit_seq(n: &Node, ind: usize, inline_first: bool, out: &mut String) {
    let Some(items) = n.as_seq() else {
        return;
    };
    for (i, it) in items.iter().enumerate() {
        if i > 0 || !inline_first {
            indent(out, ind);
        }
        out.push('-');
        match &it.value {
            Value::Map(m) if !m.is_empty() => {
                // The first entry goes on the dash's line.
                out.push(' ');
                emit_map(it, ind + 2, true, out);
            }
            Value::Seq(s) if !s.is_empty() => {
                out.push(' ');
                emit_seq(it, ind + 2, true, out);
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
            emit_map(v, ind + 2, false, out);
        }
        Value::Seq(s) if !s.is_empty() => {
            out.push('\n');
            // Go's encoder does not indent a sequence under a mapping key.
            emit_seq(v, if in_map { ind } else { ind + 2 }, false, out);
        }
        Value::Scalar(s) if s.kind == ScalarKind::Str && s.text.contains('\n') => {
            if let Some(block) = literal(&s.text, ind + 2) {
                out.push(' ');
                out.push_str(&block);
            } else {
                out.push(' ');
                write_double_quoted(out, &s.text);
                out.push('\n');
            }
        }
        Value::Scalar(s) if s.kind == ScalarKind::Str => {
            out.push(' ');
            let start = out.len();
            write_scalar(out, &s.text);
            // Folding can only change a line that passes the width; most are short.
            if col + (out.len() - start) > FOLD_WIDTH + 1 && out[start..].contains(' ') {
                let folded = fold(&out[start..], col, ind + 2);
                out.truncate(start);
                out.push_str(&folded);
            }
            out.push('\n');
        }
        _ => {
            out.push(' ');
            write_inline(v, out);
            out.push('\n');
        }
    }
}

const FOLD_WIDTH: usize = 80;

/// Go's encoder breaks plain and single-quoted scalars at a space once a line passes 80
/// columns; continuation lines are indented to `cont`.
fn fold(text: &str, col: usize, cont: usize) -> String {
    const WIDTH: usize = FOLD_WIDTH;
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

fn write_inline(n: &Node, out: &mut String) {
    match &n.value {
        Value::Map(_) => out.push_str("{}"),
        Value::Seq(_) => out.push_str("[]"),
        Value::Scalar(s) => match s.kind {
            ScalarKind::Null => out.push_str("null"),
            ScalarKind::Bool => {
                if s.text.eq_ignore_ascii_case("true") {
                    out.push_str("true")
                } else {
                    out.push_str("false")
                }
            }
            ScalarKind::Int => match parse_int(&s.text) {
                Some(i) => {
                    let _ = write!(out, "{i}");
                }
                None => write_scalar(out, &s.text),
            },
            ScalarKind::Float => match parse_float(&s.text) {
                Some(f) if f.is_finite() => {
                    if f.fract() == 0.0 && f.abs() < 1e15 {
                        let _ = write!(out, "{}", f as i64);
                    } else {
                        let _ = write!(out, "{f}");
                    }
                }
                _ => write_scalar(out, &s.text),
            },
            ScalarKind::Str => write_scalar(out, &s.text),
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
#[cfg(test)]
fn scalar_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_scalar(&mut out, s);
    out
}

/// A quick, exact test for the common case of [`write_scalar`]: an ASCII text that starts
/// with a letter no special plain scalar starts with, with no control character and no
/// `: `, ` #` or trailing `:` or space, is written plain (the full rules agree).
fn plain_fast(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(&first) = b.first() else {
        return false;
    };
    // A plain scalar starting with a letter reads as something other than a string only as
    // one of a few words (`null`, `true`, `false`, `yes`, `no`, `on`, `off`, `y`, `n` in
    // their spellings), none longer than five bytes.
    if !first.is_ascii_alphabetic()
        || (b.len() <= 5
            && matches!(
                first,
                b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'y' | b'Y' | b'o' | b'O'
            ))
    {
        return false;
    }
    let mut prev = 0u8;
    for &c in b {
        if !(0x20..0x7f).contains(&c) || (prev == b':' && c == b' ') || (prev == b' ' && c == b'#')
        {
            return false;
        }
        prev = c;
    }
    !matches!(prev, b':' | b' ')
}

/// [`scalar_str`], appended to `out`.
fn write_scalar(out: &mut String, s: &str) {
    if plain_fast(s) {
        out.push_str(s);
        return;
    }
    if s.contains('\n') || s.chars().any(|c| c.is_control()) {
        return write_double_quoted(out, s);
    }
    if resolves_to_non_string(s) {
        return write_double_quoted(out, s);
    }
    if plain_ok(s) {
        out.push_str(s);
        return;
    }
    out.push('\'');
    for (i, part) in s.split('\'').enumerate() {
        if i > 0 {
            out.push_str("''");
        }
        out.push_str(part);
    }
    out.push('\'');
}

fn write_double_quoted(out: &mut String, s: &str) {
    out.push('"');
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn writing_equals_joining() {
        let sm = crate::span::SourceMap::new();
        let text: String = (0..600)
            .map(|i| format!("kind: K\nmetadata:\n  name: n{i}\nlist: [a, 'b c', \"x: y\"]\n"))
            .collect::<Vec<_>>()
            .join("---\n");
        let f = sm.add("t.yaml", text);
        let mut d = Vec::new();
        let docs: Vec<Node> = crate::yaml::parse(&f, &Default::default(), &mut d)
            .into_iter()
            .map(|d| d.root)
            .collect();
        assert_eq!(docs.len(), 600);
        for n in [0, 1, 2, 100, 256, 257, 600] {
            let mut out = Vec::new();
            write_yaml(&docs[..n], &mut out).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                emit_yaml(&docs[..n]),
                "{n} documents"
            );
        }
        assert_eq!(emit_yaml(&docs[..2]).matches("---\n").count(), 1);
    }

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
    fn the_fast_plain_test_agrees_with_the_rules() {
        for s in [
            "abc",
            "a: b",
            "a #x",
            "a:",
            "a ",
            "yes",
            "off",
            "x\ty",
            "café",
            "hello world",
            "a-b.c/d",
            "Zed",
            "a:b",
            "a#b",
            "q'x",
            "e1",
            "inf",
            "a\u{7f}",
            "nope",
            "name",
            "timeout",
            "nulls",
            "trueish",
            "falsey",
            "FALSE",
            "onboarding",
            "yesterday",
            "Off",
            "offline",
            "o",
            "True",
            "b\nc",
            "Y",
            "<<",
            "x, y",
            "[x]",
            "ok?",
            "under_score",
            "a%b",
        ] {
            let full = !s.contains('\n')
                && !s.chars().any(|c| c.is_control())
                && !resolves_to_non_string(s)
                && plain_ok(s);
            if plain_fast(s) {
                assert!(full, "{s:?}");
            }
            assert_eq!(scalar_str(s) == s, full, "{s:?}");
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
