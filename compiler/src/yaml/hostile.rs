use super::*;
use crate::span::SourceMap;

fn codes(text: &str) -> Vec<&'static str> {
    let sm = SourceMap::new();
    let f = sm.add("t.yaml", text);
    let mut d = Vec::new();
    parse(&f, &Limits::default(), &mut d);
    d.iter().map(|d| d.code.id).collect()
}

#[test]
fn deep_flow_nesting_is_refused() {
    let text = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(codes(&text), vec!["PB0005"]);
    let text = "{a: ".repeat(10_000);
    assert_eq!(codes(&text), vec!["PB0005"]);
}

#[test]
fn deep_block_nesting_is_refused() {
    let mut text = String::new();
    for i in 0..10_000 {
        text.push_str(&" ".repeat(i));
        text.push_str("- \n");
    }
    let c = codes(&text);
    assert!(c == vec!["PB0005"] || c.first() == Some(&"PB0001"), "{c:?}");
}

#[test]
fn billion_laughs_is_refused() {
    let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    assert_eq!(codes(&text), vec!["PB0006"]);
}

#[test]
fn binary_and_utf8() {
    assert_eq!(
        decode(FileId(0), b"a: \0\x01".to_vec())
            .unwrap_err()
            .code
            .id,
        "PB0002".replace('2', "3")
    );
    let e = decode(FileId(0), b"a: \xff\n".to_vec()).unwrap_err();
    assert_eq!((e.code.id, e.span.start), ("PB0002", 3));
}
