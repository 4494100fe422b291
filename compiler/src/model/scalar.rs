//! Spans inside scalar values, over [`crate::yaml::value_span`] (which aligns a scalar's
//! decoded value with its source: quotes, escapes, folding, block scalars).

use crate::span::{SourceMap, Span};
use crate::yaml::{Node, Style, Value};

/// The source span of bytes `[start, end)` of a scalar node's value (the node's span when
/// its file is unknown).
pub fn text_span(sources: &SourceMap, node: &Node, start: usize, end: usize) -> Span {
    match sources.get(node.span.file) {
        Some(f) => crate::yaml::value_span(&f, node, start as u32..end as u32),
        None => node.span,
    }
}

/// The span to underline for a whole value: the node's span, except that a block scalar's
/// trailing line breaks (which its node span includes) are left out.
pub fn whole_value_span(sources: &SourceMap, node: &Node) -> Span {
    match &node.value {
        Value::Scalar(s) if matches!(s.style, Style::Literal | Style::Folded) => {
            let value = s.text.trim_end();
            let (Some(first), Some(last)) = (value.chars().next(), value.chars().next_back())
            else {
                return node.span;
            };
            // The common case without aligning every char: the content starts the span and
            // its last char is the last one before the trailing line breaks.
            if let Some(f) = sources.get(node.span.file) {
                let src = f.slice(node.span).trim_end();
                if src.starts_with(first) && src.ends_with(last) {
                    return Span::new(
                        node.span.file,
                        node.span.start,
                        node.span.start + src.len() as u32,
                    );
                }
            }
            let sp = text_span(sources, node, 0, value.len());
            if sp.is_empty() { node.span } else { sp }
        }
        _ => node.span,
    }
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
        assert_eq!(f.slice(whole_value_span(&sm, node)), "Code-Review");
    }

    /// The quick path and the full alignment agree, also with comments, indentation
    /// indicators, more-indented lines and folding around the content.
    #[test]
    fn block_scalar_whole_value_span_agrees_with_the_alignment() {
        let texts = [
            "a: |\n  hello\n# a comment o\nb: 1\n",
            "a: >-\n  one\n  two\n\n  three   \n\n# three\n",
            "a: |2\n    indented\n  less\n",
            "a: >\n  folded\n    more\n  lines\n",
            "a: |+\n  keep\n\n\n",
            "a: |\n  x\n",
            "- |\n  item\n  # not a comment\n- b\n",
        ];
        for text in texts {
            let sm = SourceMap::new();
            let f = sm.add("t.yaml", text);
            let mut d = Vec::new();
            let docs = parse(&f, &Limits::default(), &mut d);
            assert!(!docs.is_empty(), "{text:?}: {d:?}");
            let root = &docs[0].root;
            let node = root
                .get("a")
                .or_else(|| root.as_seq().and_then(|s| s.first()))
                .unwrap();
            let len = node.as_scalar().unwrap().text.trim_end().len();
            let aligned = text_span(&sm, node, 0, len);
            assert_eq!(whole_value_span(&sm, node), aligned, "{text:?}");
        }
    }
}
