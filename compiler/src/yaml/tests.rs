use super::*;
use crate::span::SourceMap;

fn load(text: &str) -> (Vec<Document>, Vec<Diagnostic>, std::sync::Arc<SourceFile>) {
    let sm = SourceMap::new();
    let f = sm.add("t.yaml", text);
    let mut d = Vec::new();
    let docs = parse(&f, &Limits::default(), &mut d);
    (docs, d, f)
}

#[test]
fn spans_are_exact_after_non_ascii_and_block_scalars() {
    let text = "a: |\n  Résumé 日本語\nb: \"café ☕\"\nc: [x, y]\n";
    let (docs, d, f) = load(text);
    assert!(d.is_empty(), "{d:?}");
    let root = &docs[0].root;
    let b = root.entry("b").unwrap();
    assert_eq!(f.slice(b.key.span), "b");
    assert_eq!(f.slice(b.value.span), "\"café ☕\"");
    let c = root.get("c").unwrap();
    assert_eq!(f.slice(c.span), "[x, y]");
    assert_eq!(f.slice(c.as_seq().unwrap()[1].span), "y");
    let lc = f.line_col(b.value.span.start);
    assert_eq!((lc.line, lc.column), (3, 4));
}

#[test]
fn value_spans_inside_quoted_escaped_and_folded_scalars() {
    let text = "a: \"x \\t ré.risk-level >= HIGH\"\nb: 'it''s ré.x'\nc: >\n  first\n  ré.y > 3\nd: plain\n  ré.z\n";
    let (docs, d, f) = load(text);
    assert!(d.is_empty(), "{d:?}");
    let root = &docs[0].root;
    for (key, needle) in [
        ("a", "risk-level"),
        ("b", "ré.x"),
        ("c", "ré.y"),
        ("d", "ré.z"),
    ] {
        let n = root.get(key).unwrap();
        let v = &n.as_scalar().unwrap().text;
        let off = v.find(needle).unwrap() as u32;
        let sp = value_span(&f, n, off..off + needle.len() as u32);
        assert_eq!(f.slice(sp), needle, "{key}: {v:?}");
    }
    // After an escape, the span is still exact.
    let n = root.get("a").unwrap();
    let v = &n.as_scalar().unwrap().text;
    let off = v.find("HIGH").unwrap() as u32;
    assert_eq!(f.slice(value_span(&f, n, off..off + 4)), "HIGH");
}

#[test]
fn duplicate_keys_are_errors() {
    let (_, d, _) = load("a: 1\nb: 2\na: 3\n");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].code.id, "PB0007");
    assert_eq!(d[0].labels.len(), 1);
}

#[test]
fn scalars_resolve_as_core_schema() {
    for (t, k) in [
        ("1", ScalarKind::Int),
        ("-3", ScalarKind::Int),
        ("0x1F", ScalarKind::Int),
        ("1.5", ScalarKind::Float),
        ("1e3", ScalarKind::Float),
        ("true", ScalarKind::Bool),
        ("yes", ScalarKind::Str),
        ("~", ScalarKind::Null),
        ("4h", ScalarKind::Str),
        ("1.2.3", ScalarKind::Str),
    ] {
        assert_eq!(resolve_plain(t), k, "{t}");
    }
}

#[test]
fn yaml11_scalars_warn() {
    let (_, d, _) = load("a: yes\nb: \"on\"\nc: 010\nd: 2024-01-01\ne: 1:30\nf: hello\n");
    let codes: Vec<_> = d.iter().map(|d| d.code.id).collect();
    assert_eq!(codes, vec!["PB0008"; 4]);
}

#[test]
fn aliases_and_merge_keys() {
    let (docs, d, _) = load("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n");
    assert!(d.is_empty(), "{d:?}");
    let o = docs[0].root.get("other").unwrap();
    assert_eq!(o.get("x").unwrap().as_scalar().unwrap().text, "1");
    assert_eq!(o.get("y").unwrap().as_scalar().unwrap().text, "3");
}

#[test]
fn multi_document() {
    let (docs, d, _) = load("a: 1\n---\nb: 2\n---\n");
    assert!(d.is_empty());
    assert_eq!(docs.len(), 3);
    assert!(docs[2].root.is_null());
}

#[test]
fn syntax_error_has_position() {
    let (_, d, f) = load("a: 1\nb: [1, 2\n");
    assert_eq!(d[0].code.id, "PB0001");
    assert!(f.line_col(d[0].span.start).line >= 2);
}
