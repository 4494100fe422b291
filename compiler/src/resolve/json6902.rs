//! JSON Patch (RFC 6902) on the spanned tree.
//!
//! The six operations, with RFC 6901 pointers (`~0`, `~1`, `-` for the end of an array),
//! applied to [`Node`]s so that every value keeps the span it came from: a value an `add`
//! brings carries the patch's span, a `copy` carries its source's. The semantics follow the
//! `json-patch` crate (which the property tests compare against): a patch applies completely
//! or not at all.

use crate::span::Span;
use crate::yaml::{Entry, Node, Value};

/// The six operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Remove,
    Replace,
    Move,
    Copy,
    Test,
}

impl OpKind {
    pub fn parse(s: &str) -> Option<OpKind> {
        Some(match s {
            "add" => OpKind::Add,
            "remove" => OpKind::Remove,
            "replace" => OpKind::Replace,
            "move" => OpKind::Move,
            "copy" => OpKind::Copy,
            "test" => OpKind::Test,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Add => "add",
            OpKind::Remove => "remove",
            OpKind::Replace => "replace",
            OpKind::Move => "move",
            OpKind::Copy => "copy",
            OpKind::Test => "test",
        }
    }
}

/// One operation, with the spans of its parts (for diagnostics).
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub kind: OpKind,
    pub path: String,
    pub path_span: Span,
    /// `from`, for `move` and `copy`.
    pub from: Option<(String, Span)>,
    /// `value`, for `add`, `replace` and `test`.
    pub value: Option<Node>,
    /// The whole operation.
    pub span: Span,
}

/// Why an operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpError {
    /// Index of the failing operation.
    pub index: usize,
    pub message: String,
    /// True when the failure is in `from` rather than `path`.
    pub in_from: bool,
}

/// Checks that a string is a valid JSON Pointer (empty, or `/`-separated tokens whose `~` is
/// followed by `0` or `1`).
pub fn valid_pointer(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Ok(());
    }
    if !p.starts_with('/') {
        return Err(format!(
            "`{p}` is not a JSON pointer: it must start with `/`"
        ));
    }
    let b = p.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'~' && !matches!(b.get(i + 1), Some(b'0') | Some(b'1')) {
            return Err(format!(
                "`{p}` is not a valid JSON pointer: `~` must be followed by `0` or `1`"
            ));
        }
    }
    Ok(())
}

fn decode(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The tokens of a valid pointer, decoded.
fn tokens(p: &str) -> Vec<String> {
    if p.is_empty() {
        return Vec::new();
    }
    p[1..].split('/').map(decode).collect()
}

/// An array index as RFC 6901 reads it: digits, no leading zero.
fn parse_index(t: &str) -> Option<usize> {
    if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) || (t.starts_with('0') && t != "0") {
        return None;
    }
    t.parse().ok()
}

fn get<'a>(doc: &'a Node, p: &str) -> Option<&'a Node> {
    let mut n = doc;
    for t in tokens(p) {
        n = match &n.value {
            Value::Map(m) => &m.iter().find(|e| e.key_str() == t)?.value,
            Value::Seq(s) => s.get(parse_index(&t)?)?,
            Value::Scalar(_) => return None,
        };
    }
    Some(n)
}

fn get_mut<'a>(doc: &'a mut Node, p: &str) -> Option<&'a mut Node> {
    let mut n = doc;
    for t in tokens(p) {
        n = match &mut n.value {
            Value::Map(m) => &mut m.iter_mut().find(|e| e.key_str() == t)?.value,
            Value::Seq(s) => s.get_mut(parse_index(&t)?)?,
            Value::Scalar(_) => return None,
        };
    }
    Some(n)
}

fn split_back(p: &str) -> Option<(&str, &str)> {
    p.rsplit_once('/')
}

fn missing(p: &str) -> String {
    format!("the document has no value at `{p}`")
}

/// Where a new key comes from: its span (the op's `path`).
fn add(doc: &mut Node, p: &str, value: Node, key_span: Span) -> Result<(), String> {
    let Some((parent, last)) = split_back(p) else {
        *doc = value;
        return Ok(());
    };
    let parent_node = get_mut(doc, parent).ok_or_else(|| missing(parent_or_root(parent)))?;
    match &mut parent_node.value {
        Value::Map(m) => {
            let key = decode(last);
            if let Some(e) = m.iter_mut().find(|e| e.key_str() == key) {
                e.value = value;
            } else {
                m.push(Entry {
                    key: Node::string(key_span, key),
                    value,
                });
            }
            Ok(())
        }
        Value::Seq(s) => {
            let idx = if last == "-" {
                s.len()
            } else {
                match parse_index(&decode(last)) {
                    Some(i) if i <= s.len() => i,
                    Some(i) => {
                        return Err(format!(
                            "index {i} is out of bounds: the list at `{}` has {} items",
                            parent_or_root(parent),
                            s.len()
                        ));
                    }
                    None => return Err(bad_index(last)),
                }
            };
            s.insert(idx, value);
            Ok(())
        }
        Value::Scalar(_) => Err(format!(
            "`{}` is a scalar, it has no member `{}`",
            parent_or_root(parent),
            decode(last)
        )),
    }
}

fn parent_or_root(p: &str) -> &str {
    if p.is_empty() { "/" } else { p }
}

fn bad_index(t: &str) -> String {
    format!("`{t}` is not a list index (digits without a leading zero, or `-` to append)")
}

fn remove(doc: &mut Node, p: &str) -> Result<Node, String> {
    let Some((parent, last)) = split_back(p) else {
        return Err("the whole document cannot be removed".into());
    };
    let parent_node = get_mut(doc, parent).ok_or_else(|| missing(parent_or_root(parent)))?;
    match &mut parent_node.value {
        Value::Map(m) => {
            let key = decode(last);
            match m.iter().position(|e| e.key_str() == key) {
                Some(i) => Ok(m.remove(i).value),
                None => Err(missing(p)),
            }
        }
        Value::Seq(s) => match parse_index(&decode(last)) {
            Some(i) if i < s.len() => Ok(s.remove(i)),
            Some(i) => Err(format!(
                "index {i} is out of bounds: the list at `{}` has {} items",
                parent_or_root(parent),
                s.len()
            )),
            None if last == "-" => Err(format!(
                "`-` names no item of the list at `{}`",
                parent_or_root(parent)
            )),
            None => Err(bad_index(last)),
        },
        Value::Scalar(_) => Err(missing(p)),
    }
}

/// True if `path` lies strictly inside `from` (token-wise).
fn strictly_inside(path: &str, from: &str) -> bool {
    path.len() != from.len()
        && path.starts_with(from)
        && (from.len() == path.len() || path.as_bytes().get(from.len()) == Some(&b'/'))
}

/// Two nodes are equal as JSON data.
pub fn json_eq(a: &Node, b: &Node) -> bool {
    a.to_json() == b.to_json()
}

fn apply_one(doc: &mut Node, op: &Op) -> Result<(), (String, bool)> {
    let value = || {
        op.value.clone().ok_or_else(|| {
            (
                format!("a `{}` operation needs a `value`", op.kind.as_str()),
                false,
            )
        })
    };
    let from = || {
        op.from.as_ref().map(|f| f.0.as_str()).ok_or_else(|| {
            (
                format!("a `{}` operation needs a `from`", op.kind.as_str()),
                false,
            )
        })
    };
    match op.kind {
        OpKind::Add => add(doc, &op.path, value()?, op.path_span).map_err(|m| (m, false)),
        OpKind::Remove => remove(doc, &op.path).map(|_| ()).map_err(|m| (m, false)),
        OpKind::Replace => {
            let v = value()?;
            let t = get_mut(doc, &op.path).ok_or_else(|| (missing(&op.path), false))?;
            *t = v;
            Ok(())
        }
        OpKind::Move => {
            let f = from()?;
            if strictly_inside(&op.path, f) {
                return Err((
                    format!("cannot move `{f}` into its own child `{}`", op.path),
                    false,
                ));
            }
            let v = remove(doc, f).map_err(|m| (m, true))?;
            add(doc, &op.path, v, op.path_span).map_err(|m| (m, false))
        }
        OpKind::Copy => {
            let f = from()?;
            let v = get(doc, f).cloned().ok_or_else(|| (missing(f), true))?;
            add(doc, &op.path, v, op.path_span).map_err(|m| (m, false))
        }
        OpKind::Test => {
            let v = value()?;
            let t = get(doc, &op.path).ok_or_else(|| (missing(&op.path), false))?;
            if json_eq(t, &v) {
                Ok(())
            } else {
                Err((
                    format!(
                        "test failed: `{}` is {}, not {}",
                        op.path,
                        short_json(t),
                        short_json(&v)
                    ),
                    false,
                ))
            }
        }
    }
}

fn short_json(n: &Node) -> String {
    let s = n.to_json().to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// Applies `ops` in order. On failure the document is left unchanged.
pub fn apply(doc: &mut Node, ops: &[Op]) -> Result<(), OpError> {
    // A single operation other than `move` either fails before it changes anything or
    // succeeds, so it needs no working copy (a `move` removes before it adds).
    let in_place = ops.len() == 1 && ops[0].kind != OpKind::Move;
    let mut copy = None;
    let work: &mut Node = if in_place {
        doc
    } else {
        copy.insert(doc.clone())
    };
    for (index, op) in ops.iter().enumerate() {
        if let Err(m) = valid_pointer(&op.path) {
            return Err(OpError {
                index,
                message: m,
                in_from: false,
            });
        }
        if let Some((f, _)) = &op.from
            && let Err(m) = valid_pointer(f)
        {
            return Err(OpError {
                index,
                message: m,
                in_from: true,
            });
        }
        apply_one(work, op).map_err(|(message, in_from)| OpError {
            index,
            message,
            in_from,
        })?;
    }
    if let Some(c) = copy {
        *doc = c;
    }
    Ok(())
}

/// Builds a node from JSON data, every node spanning `span` (tests, synthesized values).
pub fn node_from_json(v: &serde_json::Value, span: Span) -> Node {
    use crate::yaml::{ScalarKind, Style};
    use serde_json::Value as J;
    match v {
        J::Null => Node::null(span),
        J::Bool(b) => Node::scalar(span, b.to_string(), ScalarKind::Bool, Style::Plain),
        J::Number(n) => {
            if n.is_i64() || n.is_u64() {
                Node::scalar(span, n.to_string(), ScalarKind::Int, Style::Plain)
            } else {
                Node::scalar(span, n.to_string(), ScalarKind::Float, Style::Plain)
            }
        }
        J::String(s) => Node::scalar(span, s.clone(), ScalarKind::Str, Style::DoubleQuoted),
        J::Array(a) => Node::seq(span, a.iter().map(|x| node_from_json(x, span)).collect()),
        J::Object(o) => Node::map(
            span,
            o.iter()
                .map(|(k, x)| Entry {
                    key: Node::string(span, k.clone()),
                    value: node_from_json(x, span),
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(kind: OpKind, path: &str, from: Option<&str>, value: Option<serde_json::Value>) -> Op {
        Op {
            kind,
            path: path.into(),
            path_span: Span::default(),
            from: from.map(|f| (f.to_string(), Span::default())),
            value: value.map(|v| node_from_json(&v, Span::default())),
            span: Span::default(),
        }
    }

    #[test]
    fn six_ops() {
        let mut d = node_from_json(&json!({"a": [1, 2], "b": {"c~/d": 1}}), Span::default());
        let ops = vec![
            op(OpKind::Add, "/a/-", None, Some(json!(3))),
            op(OpKind::Add, "/a/0", None, Some(json!(0))),
            op(OpKind::Remove, "/b/c~0~1d", None, None),
            op(OpKind::Replace, "/a/1", None, Some(json!(9))),
            op(OpKind::Copy, "/b/x", Some("/a"), None),
            op(OpKind::Move, "/m", Some("/b"), None),
            op(OpKind::Test, "/m/x/3", None, Some(json!(3))),
        ];
        apply(&mut d, &ops).unwrap();
        assert_eq!(
            d.to_json(),
            json!({"a": [0, 9, 2, 3], "m": {"x": [0, 9, 2, 3]}})
        );
    }

    #[test]
    fn failure_leaves_document_unchanged() {
        let before = json!({"a": 1});
        let mut d = node_from_json(&before, Span::default());
        let ops = vec![
            op(OpKind::Add, "/b", None, Some(json!(2))),
            op(OpKind::Test, "/a", None, Some(json!(2))),
        ];
        let e = apply(&mut d, &ops).unwrap_err();
        assert_eq!(e.index, 1);
        assert_eq!(d.to_json(), before);
    }
}
