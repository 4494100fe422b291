//! Spans inside a scalar's value: from a range of the value's text to the bytes of the
//! source that hold it, through quotes, escapes and folded or literal blocks.

use super::*;

/// Maps a byte range of a scalar's *value* (after unescaping and line folding) to the span
/// of the source text that produced it, so that a diagnostic inside a quoted, escaped, folded
/// or multi-line scalar underlines exactly the characters it is about.
///
/// The value is aligned with the source greedily, decoding double-quoted escapes and `''` in
/// single-quoted scalars, and skipping the indentation and line breaks that folding removed.
pub fn value_span(file: &SourceFile, node: &Node, range: std::ops::Range<u32>) -> Span {
    let Some(sc) = node.as_scalar() else {
        return node.span;
    };
    let src = file.slice(node.span);
    let base = node.span.start;
    // One pass over the alignment, kept to what the range needs: the first char at or after
    // `range.start`, the last char before `range.end`, and (if the start lies past the
    // value) the last char of all.
    let mut first_at_start: Option<u32> = None;
    let mut last_before_end: Option<u32> = None;
    let mut last: Option<u32> = None;
    align_each(src, &sc.text, sc.style, |v, s| {
        last = Some(s);
        if first_at_start.is_none() && v >= range.start {
            first_at_start = Some(s);
        }
        if v < range.end {
            last_before_end = Some(s);
            true
        } else {
            first_at_start.is_none()
        }
    });
    let start = match first_at_start {
        Some(s) => base + s,
        // Past the last char: just after the last mapped char.
        None => last.map(|s| base + s + 1).unwrap_or(base),
    };
    let end = if range.end > range.start {
        // The end of the last char that starts inside the range (an escape or `''` spans
        // several source bytes; a multi-byte char's last byte is not a char start).
        let s = match last_before_end {
            Some(s) => base + s,
            None => start,
        };
        let rest = file.text.get(s as usize..).unwrap_or("");
        let len = match (sc.style, rest.as_bytes()) {
            (Style::DoubleQuoted, [b'\\', b'x', ..]) => 4,
            (Style::DoubleQuoted, [b'\\', b'u', ..]) => 6,
            (Style::DoubleQuoted, [b'\\', b'U', ..]) => 10,
            (Style::DoubleQuoted, [b'\\', _, ..]) => 2,
            (Style::SingleQuoted, [b'\'', b'\'', ..]) => 2,
            _ => rest
                .chars()
                .next()
                .map(|c| c.len_utf8() as u32)
                .unwrap_or(1),
        };
        s + len
    } else {
        start
    };
    Span::new(node.span.file, start, end.min(node.span.end).max(start))
}

/// Pairs each char of `value` (by byte offset) with the byte offset in `src` it came from,
/// in order, handing each pair to `f` until it returns false.
pub(super) fn align_each(
    src: &str,
    value: &str,
    style: Style,
    mut f: impl FnMut(u32, u32) -> bool,
) {
    let s = src.as_bytes();
    // Skip the opening quote. (A block scalar's span starts at its content.)
    let mut i = match style {
        Style::SingleQuoted | Style::DoubleQuoted => 1,
        Style::Literal | Style::Folded | Style::Plain => 0,
    };
    for (voff, c) in value.char_indices() {
        let mut found = None;
        while i < s.len() {
            // Double-quoted escapes produce one char from several source bytes.
            if style == Style::DoubleQuoted && s[i] == b'\\' {
                let next = s.get(i + 1).copied().unwrap_or(b' ');
                if next == b'\n' || next == b'\r' {
                    // An escaped line break: no value char; skip it and the indentation.
                    i += 2;
                    while i < s.len() && (s[i] == b' ' || s[i] == b'\t' || s[i] == b'\n') {
                        i += 1;
                    }
                    continue;
                }
                let len = match next {
                    b'x' => 4,
                    b'u' => 6,
                    b'U' => 10,
                    _ => 2,
                };
                found = Some(i);
                i += len;
                break;
            }
            if style == Style::SingleQuoted
                && s[i] == b'\''
                && s.get(i + 1) == Some(&b'\'')
                && c == '\''
            {
                found = Some(i);
                i += 2;
                break;
            }
            let sc = src[i..].chars().next().unwrap_or(' ');
            if sc == c {
                found = Some(i);
                i += sc.len_utf8();
                break;
            }
            if c == ' ' && (sc == '\n' || sc == '\r') {
                // A folded line break became a space.
                found = Some(i);
                i += 1;
                while i < s.len() && (s[i] == b' ' || s[i] == b'\t') {
                    i += 1;
                }
                break;
            }
            i += sc.len_utf8();
        }
        match found {
            Some(at) => {
                if !f(voff as u32, at as u32) {
                    break;
                }
            }
            None => break,
        }
    }
}
