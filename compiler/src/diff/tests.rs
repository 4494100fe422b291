use super::compare::*;
use super::render::*;

#[test]
fn code_spans_fence_backticks_and_flatten_newlines() {
    assert_eq!(code("a"), "`a`");
    assert_eq!(code("a`b"), "`` a`b ``");
    assert_eq!(code("x\ny"), "`x y`");
    assert_eq!(code("<img src=x>"), "`<img src=x>`");
}

#[test]
fn text_escapes_markdown_and_html() {
    assert_eq!(text("a [b](c) <i>"), "a \\[b\\](c) &lt;i&gt;");
    assert_eq!(text("x\n `y`"), "x \\`y\\`");
}

#[test]
fn set_delta_keeps_order() {
    let b = vec!["a".to_string(), "b".to_string()];
    let a = vec!["c".to_string(), "a".to_string()];
    assert_eq!(set_delta(&b, &a), (vec!["c".into()], vec!["b".into()]));
}
