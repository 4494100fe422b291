//! The `images` (and deprecated `imageTags`) and `replicas` fields of a kustomization.

use super::*;

/// One entry of `images`.
#[derive(Clone, Debug, Default)]
pub(crate) struct ImageSpec {
    pub name: String,
    pub new_name: Option<Node>,
    pub new_tag: Option<Node>,
    pub digest: Option<Node>,
    pub tag_suffix: Option<Node>,
    pub span: Span,
}

/// One entry of `replicas`.
#[derive(Clone, Debug)]
pub(crate) struct ReplicaSpec {
    pub name: String,
    /// The count as written (an integer).
    pub count: Node,
    pub span: Span,
}

fn entries<'a>(n: &'a Node, what: &str, diags: &mut Vec<Diagnostic>) -> Vec<&'a Node> {
    if n.is_null() {
        return Vec::new();
    }
    let Some(items) = n.as_seq() else {
        diags.push(invalid(
            n.span,
            format!("`{what}` must be a list, not {}", n.type_name()),
        ));
        return Vec::new();
    };
    items
        .iter()
        .filter(|it| {
            let ok = it.as_map().is_some();
            if !ok {
                diags.push(invalid(
                    it.span,
                    format!(
                        "an entry of `{what}` must be a mapping, not {}",
                        it.type_name()
                    ),
                ));
            }
            ok
        })
        .collect()
}

/// A string field: kustomize fails on any other type (a tag `1.20` written unquoted is a
/// number to it).
fn text(n: &Node, what: &str, diags: &mut Vec<Diagnostic>) -> Option<Node> {
    match &n.value {
        Value::Scalar(s) if s.kind == ScalarKind::Null => None,
        Value::Scalar(s) if s.kind == ScalarKind::Str => Some(n.clone()),
        Value::Scalar(s) => {
            diags.push(
                invalid(
                    n.span,
                    format!("`{what}` must be a string, not {}", n.type_name()),
                )
                .with_help(format!("quote it: \"{}\"", s.text))
                .with_fix(
                    "quote the value",
                    vec![Edit {
                        span: n.span,
                        text: format!("\"{}\"", s.text),
                    }],
                ),
            );
            None
        }
        _ => {
            diags.push(invalid(
                n.span,
                format!("`{what}` must be a string, not {}", n.type_name()),
            ));
            None
        }
    }
}

pub(super) fn images(n: &Node, what: &str, diags: &mut Vec<Diagnostic>) -> Vec<ImageSpec> {
    let mut out = Vec::new();
    for it in entries(n, what, diags) {
        let mut img = ImageSpec {
            span: it.span,
            ..ImageSpec::default()
        };
        for e in it.as_map().unwrap_or_default() {
            let v = &e.value;
            match e.key_str() {
                "name" => {
                    img.name = text(v, "name", diags)
                        .and_then(|n| n.as_str().map(str::to_string))
                        .unwrap_or_default();
                }
                "newName" => img.new_name = text(v, "newName", diags),
                "newTag" => img.new_tag = text(v, "newTag", diags),
                "digest" => img.digest = text(v, "digest", diags),
                "tagSuffix" => img.tag_suffix = text(v, "tagSuffix", diags),
                other => unknown_key(
                    &e.key,
                    other,
                    &format!("an `{what}` entry"),
                    &["name", "newName", "newTag", "digest", "tagSuffix"],
                    diags,
                ),
            }
        }
        out.push(img);
    }
    out
}

pub(super) fn replicas(n: &Node, diags: &mut Vec<Diagnostic>) -> Vec<ReplicaSpec> {
    let mut out = Vec::new();
    for it in entries(n, "replicas", diags) {
        let (mut name, mut count) = (None, None);
        for e in it.as_map().unwrap_or_default() {
            let v = &e.value;
            match e.key_str() {
                "name" => name = text(v, "name", diags),
                "count" => match &v.value {
                    Value::Scalar(s) if s.kind == ScalarKind::Int => count = Some(v.clone()),
                    _ => diags.push(invalid(
                        v.span,
                        format!("`count` must be an integer, not {}", v.type_name()),
                    )),
                },
                other => unknown_key(
                    &e.key,
                    other,
                    "a `replicas` entry",
                    &["name", "count"],
                    diags,
                ),
            }
        }
        // kustomize reads a missing count as 0.
        let count = count.unwrap_or_else(|| {
            Node::scalar(it.span, "0", ScalarKind::Int, crate::yaml::Style::Plain)
        });
        if let Some(name) = name {
            out.push(ReplicaSpec {
                name: name.as_str().unwrap_or("").to_string(),
                count,
                span: it.span,
            });
        }
    }
    out
}
