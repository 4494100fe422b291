//! Property test: pbc's JSON 6902 applier on the spanned tree agrees with the `json-patch`
//! crate on random documents and operation lists: the same result as JSON when both
//! succeed, and failure exactly when the crate fails, at the same operation. (On failure
//! pbc leaves the document unchanged; the crate undoes the operations before the failing one
//! but not a failing `move`'s removal, so failed documents are not compared.)

use pbc_compiler::resolve::json6902::{Op, OpKind, apply, node_from_json};
use pbc_compiler::span::Span;
use proptest::prelude::*;
use serde_json::{Value, json};

const KEYS: &[&str] = &["a", "b", "c", "0", "1", "-", "~", "/", "a/b", "~1"];
const TOKENS: &[&str] = &[
    "a", "b", "c", "0", "1", "2", "-", "~", "/", "a/b", "~1", "01", "",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..4).prop_map(|i| json!(i)),
        prop::sample::select(vec!["a", "b", "", "~", "x/y"]).prop_map(|s| json!(s)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..4).prop_map(
                |kvs| {
                    let mut m = serde_json::Map::new();
                    for (k, v) in kvs {
                        m.insert(k.to_string(), v);
                    }
                    Value::Object(m)
                }
            ),
        ]
    })
}

fn pointer() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS.to_vec()), 0..4).prop_map(|toks| {
        toks.iter()
            .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
            .collect()
    })
}

#[derive(Clone, Debug)]
struct RawOp {
    kind: OpKind,
    path: String,
    from: String,
    value: Value,
}

fn op() -> impl Strategy<Value = RawOp> {
    (
        prop::sample::select(vec![
            OpKind::Add,
            OpKind::Remove,
            OpKind::Replace,
            OpKind::Move,
            OpKind::Copy,
            OpKind::Test,
        ]),
        pointer(),
        pointer(),
        value(),
    )
        .prop_map(|(kind, path, from, value)| RawOp {
            kind,
            path,
            from,
            value,
        })
}

fn as_crate_patch(ops: &[RawOp]) -> json_patch::Patch {
    let list: Vec<Value> = ops
        .iter()
        .map(|o| match o.kind {
            OpKind::Add | OpKind::Replace | OpKind::Test => {
                json!({"op": o.kind.as_str(), "path": o.path, "value": o.value})
            }
            OpKind::Remove => json!({"op": "remove", "path": o.path}),
            OpKind::Move | OpKind::Copy => {
                json!({"op": o.kind.as_str(), "path": o.path, "from": o.from})
            }
        })
        .collect();
    serde_json::from_value(Value::Array(list)).expect("valid patch")
}

fn as_ops(ops: &[RawOp]) -> Vec<Op> {
    let sp = Span::default();
    ops.iter()
        .map(|o| Op {
            kind: o.kind,
            path: o.path.clone(),
            path_span: sp,
            from: matches!(o.kind, OpKind::Move | OpKind::Copy).then(|| (o.from.clone(), sp)),
            value: matches!(o.kind, OpKind::Add | OpKind::Replace | OpKind::Test)
                .then(|| node_from_json(&o.value, sp)),
            span: sp,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_json_patch_crate(doc in value(), ops in prop::collection::vec(op(), 1..5)) {
        let patch = as_crate_patch(&ops);
        // The crate panics when it cannot undo a failed patch (a `move` to the root): such
        // inputs say nothing about pbc and are skipped.
        let run = std::panic::catch_unwind(|| {
            let mut want = doc.clone();
            let r = json_patch::patch(&mut want, &patch);
            (want, r)
        });
        prop_assume!(run.is_ok());
        let Ok((want, crate_result)) = run else { return Ok(()) };
        let mut node = node_from_json(&doc, Span::default());
        let ours = apply(&mut node, &as_ops(&ops));
        prop_assert_eq!(ours.is_ok(), crate_result.is_ok(), "ours: {:?}, crate: {:?}", ours, crate_result);
        if let (Err(a), Err(b)) = (&ours, &crate_result) {
            prop_assert_eq!(a.index, b.operation, "failing operation differs: {:?} / {:?}", a, b);
            prop_assert_eq!(node.to_json(), doc);
        } else {
            prop_assert_eq!(node.to_json(), want);
        }
    }
}

#[test]
fn ops_that_the_crate_rejects_fail_here_too() {
    let doc = json!({"a": [1, 2], "b": {"c": 1}});
    for (ops, ok) in [
        (json!([{"op": "remove", "path": "/a/-"}]), false),
        (json!([{"op": "add", "path": "/a/01", "value": 0}]), false),
        (json!([{"op": "add", "path": "/a/3", "value": 0}]), false),
        (json!([{"op": "add", "path": "/a/2", "value": 0}]), true),
        (
            json!([{"op": "move", "from": "/b", "path": "/b/c/d"}]),
            false,
        ),
        (json!([{"op": "move", "from": "/b", "path": "/b"}]), true),
        (json!([{"op": "copy", "from": "", "path": "/z"}]), true),
        (json!([{"op": "replace", "path": "", "value": 1}]), true),
        (
            json!([{"op": "test", "path": "/b", "value": {"c": 1}}]),
            true,
        ),
    ] {
        let raw: Vec<RawOp> = ops
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| RawOp {
                kind: OpKind::parse(o["op"].as_str().unwrap_or("")).unwrap_or(OpKind::Test),
                path: o["path"].as_str().unwrap_or("").to_string(),
                from: o["from"].as_str().unwrap_or("").to_string(),
                value: o.get("value").cloned().unwrap_or(Value::Null),
            })
            .collect();
        let mut want = doc.clone();
        let c = json_patch::patch(&mut want, &as_crate_patch(&raw));
        let mut node = node_from_json(&doc, Span::default());
        let r = apply(&mut node, &as_ops(&raw));
        assert_eq!(c.is_ok(), ok, "{ops}");
        assert_eq!(r.is_ok(), ok, "{ops}");
        if ok {
            assert_eq!(node.to_json(), want, "{ops}");
        } else {
            assert_eq!(node.to_json(), doc, "{ops}");
        }
    }
}
