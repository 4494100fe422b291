//! Mapping positions inside a scalar's *value* back to its *source* text.
//!
//! A diagnostic about part of a value (one field of a cron schedule, the unit of a rate
//! limit, the first bad character of a name) must underline that part in the file, even when
//! the value was written quoted, with escapes (`"a\tb"`), folded over several lines, or as a
//! block scalar. [`ScalarMap`] aligns the decoded text with the source slice of the node: every
//! decoded character gets the source range it came from. The alignment is verified (every
//! non-blank character must match, in order); when it cannot be established (a value that
//! was synthesized by an overlay, say), callers fall back to the node's whole span.

use crate::span::{SourceMap, Span};
use crate::yaml::{Node, Style, Value};

/// For each byte offset of a scalar's decoded text where a character starts, the source
/// byte range (absolute, in the node's file) that produced it.
#[derive(Clone, Debug)]
pub struct ScalarMap {
    span: Span,
    /// `(text byte offset, source start, source end)` per decoded character, in order.
    chars: Vec<(u32, u32, u32)>,
    text_len: u32,
}

/// One unit of source text: the character it decodes to, where it is, and whether it is
/// literal whitespace (which folding and indentation may drop or turn into something else).
struct Unit {
    ch: char,
    start: u32,
    end: u32,
    blank: bool,
}

impl ScalarMap {
    /// Builds the map for a scalar node, or `None` if the node is not a scalar, its file is
    /// unknown, or its source text does not decode to its value.
    pub fn new(sources: &SourceMap, node: &Node) -> Option<ScalarMap> {
        let Value::Scalar(s) = &node.value else {
            return None;
        };
        let file = sources.get(node.span.file)?;
        let src = file
            .text
            .get(node.span.start as usize..node.span.end as usize)?;
        let units = units(src, node.span.start, s.style)?;
        let mut chars = Vec::with_capacity(s.text.len());
        let mut i = 0usize;
        for (off, c) in s.text.char_indices() {
            // Skip literal blanks that the value does not have here.
            if !c.is_whitespace() {
                while units.get(i).is_some_and(|u| u.blank) {
                    i += 1;
                }
                let u = units.get(i)?;
                if u.ch != c {
                    return None;
                }
                chars.push((off as u32, u.start, u.end));
                i += 1;
            } else {
                match units.get(i) {
                    Some(u) if u.ch == c => {
                        chars.push((off as u32, u.start, u.end));
                        i += 1;
                    }
                    // Folding or chomping made this blank: point at where it would be.
                    Some(u) => chars.push((off as u32, u.start, u.start)),
                    None => {
                        let end = units.last().map(|u| u.end).unwrap_or(node.span.start);
                        chars.push((off as u32, end, end));
                    }
                }
            }
        }
        if units.get(i..)?.iter().any(|u| !u.blank) {
            return None;
        }
        Some(ScalarMap {
            span: node.span,
            chars,
            text_len: s.text.len() as u32,
        })
    }

    /// The source span of the decoded text's byte range `[start, end)`. An empty range gives
    /// an empty span at the character's position.
    pub fn span(&self, start: usize, end: usize) -> Span {
        let start = start as u32;
        let end = (end as u32).max(start);
        let idx = self.chars.partition_point(|c| c.0 < start);
        let Some(first) = self.chars.get(idx) else {
            let at = self.chars.last().map(|c| c.2).unwrap_or(self.span.end);
            return Span::new(self.span.file, at, at);
        };
        if end == start {
            return Span::new(self.span.file, first.1, first.1);
        }
        let last_idx = self.chars.partition_point(|c| c.0 < end).saturating_sub(1);
        let last = self.chars.get(last_idx).unwrap_or(first);
        Span::new(self.span.file, first.1, last.2.max(first.1))
    }

    /// The length of the decoded text in bytes.
    pub fn text_len(&self) -> usize {
        self.text_len as usize
    }
}

/// The source span of bytes `[start, end)` of a scalar node's value, falling back to the
/// node's span when the value cannot be mapped to its source.
pub fn text_span(sources: &SourceMap, node: &Node, start: usize, end: usize) -> Span {
    match ScalarMap::new(sources, node) {
        Some(m) => m.span(start, end),
        None => node.span,
    }
}

/// The span to underline for a whole scalar value: the node's span, except that a block
/// scalar's trailing line breaks are left out.
pub fn value_span(sources: &SourceMap, node: &Node) -> Span {
    match &node.value {
        Value::Scalar(s) if matches!(s.style, Style::Literal | Style::Folded) => {
            let len = s.text.trim_end().len();
            match ScalarMap::new(sources, node) {
                Some(m) if len > 0 => m.span(0, len),
                _ => node.span,
            }
        }
        _ => node.span,
    }
}

/// Splits a scalar's source into units, decoding quotes and escapes.
fn units(src: &str, base: u32, style: Style) -> Option<Vec<Unit>> {
    let mut out = Vec::new();
    let mut body = src;
    let mut off = base;
    match style {
        Style::SingleQuoted | Style::DoubleQuoted => {
            let q = if style == Style::SingleQuoted {
                '\''
            } else {
                '"'
            };
            body = body.strip_prefix(q)?.strip_suffix(q)?;
            off += 1;
        }
        Style::Literal | Style::Folded => {
            // The node usually starts at the content; skip a header line if present.
            if body.starts_with(['|', '>']) {
                let nl = body.find('\n')?;
                off += nl as u32 + 1;
                body = body.get(nl + 1..)?;
            }
        }
        Style::Plain => {}
    }
    let mut it = body.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let start = off + i as u32;
        let blank = |ch: char| matches!(ch, ' ' | '\t' | '\n' | '\r');
        match (style, c) {
            (Style::SingleQuoted, '\'') => {
                // `''` is one quote.
                let (j, c2) = it.next()?;
                if c2 != '\'' {
                    return None;
                }
                out.push(Unit {
                    ch: '\'',
                    start,
                    end: off + j as u32 + 1,
                    blank: false,
                });
            }
            (Style::DoubleQuoted, '\\') => {
                let (j, e) = it.next()?;
                let simple = match e {
                    '0' => Some('\0'),
                    'a' => Some('\x07'),
                    'b' => Some('\x08'),
                    't' | '\t' => Some('\t'),
                    'n' => Some('\n'),
                    'v' => Some('\x0b'),
                    'f' => Some('\x0c'),
                    'r' => Some('\r'),
                    'e' => Some('\x1b'),
                    ' ' => Some(' '),
                    '"' => Some('"'),
                    '/' => Some('/'),
                    '\\' => Some('\\'),
                    'N' => Some('\u{85}'),
                    '_' => Some('\u{a0}'),
                    'L' => Some('\u{2028}'),
                    'P' => Some('\u{2029}'),
                    _ => None,
                };
                if let Some(ch) = simple {
                    out.push(Unit {
                        ch,
                        start,
                        end: off + (j + e.len_utf8()) as u32,
                        blank: false,
                    });
                    continue;
                }
                if e == '\n' || e == '\r' {
                    // An escaped line break joins the lines: nothing is produced, and the
                    // next line's indentation is blank.
                    continue;
                }
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    _ => return None,
                };
                let mut code = 0u32;
                let mut last = j + 1;
                for _ in 0..n {
                    let (k, h) = it.next()?;
                    code = code * 16 + h.to_digit(16)?;
                    last = k + 1;
                }
                out.push(Unit {
                    ch: char::from_u32(code)?,
                    start,
                    end: off + last as u32,
                    blank: false,
                });
            }
            _ => out.push(Unit {
                ch: c,
                start,
                end: start + c.len_utf8() as u32,
                blank: blank(c),
            }),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{Limits, parse};

    fn check(text: &str, key: &str, needle: &str, expect: &str) {
        let sm = SourceMap::new();
        let f = sm.add("t.yaml", text);
        let mut d = Vec::new();
        let docs = parse(&f, &Limits::default(), &mut d);
        let node = docs[0].root.get(key).unwrap();
        let value = &node.as_scalar().unwrap().text;
        let at = value.find(needle).unwrap();
        let span = text_span(&sm, node, at, at + needle.len());
        assert_ne!(span, node.span, "fell back for {key}");
        assert_eq!(f.slice(span), expect, "{key}");
    }

    #[test]
    fn maps_through_quotes_escapes_folding_and_blocks() {
        let text = "a: |-\n  Code-Review\n  x # y\n\nb: >\n  one\n  two\n\n  three\n\n\
                    c: plain\n  multi\n  line # c\nd: \"x\\\n   y\\tz\\u00e9\"\n\
                    e: 'it''s\n  ok'\nf: \"日本 MON-FRY\"\n";
        check(text, "a", "x # y", "x # y");
        check(text, "b", "two\nthree", "two\n\n  three");
        check(text, "c", "multi line", "multi\n  line");
        check(text, "d", "\tz", "\\tz");
        check(text, "d", "é", "\\u00e9");
        check(text, "e", "'s ok", "''s\n  ok");
        check(text, "f", "FRY", "FRY");
    }

    #[test]
    fn block_scalar_value_span_is_trimmed() {
        let text = "a: |\n  Code-Review\n\nb: 1\n";
        let sm = SourceMap::new();
        let f = sm.add("t.yaml", text);
        let mut d = Vec::new();
        let docs = parse(&f, &Limits::default(), &mut d);
        let node = docs[0].root.get("a").unwrap();
        assert_eq!(f.slice(value_span(&sm, node)), "Code-Review");
    }

    #[test]
    fn mismatch_falls_back() {
        let sm = SourceMap::new();
        let f = sm.add("t.yaml", "a: x\n");
        let node = Node::string(Span::new(f.id, 3, 4), "prefix-x");
        assert_eq!(text_span(&sm, &node, 0, 3), node.span);
    }
}
