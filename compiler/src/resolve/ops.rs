//! JSON 6902 operation lists as a kustomization holds them, read into operations.

use super::*;

/// Reads a JSON 6902 operation list.
pub(crate) fn parse_ops(list: &Node, diags: &mut Vec<Diagnostic>) -> Option<Vec<Op>> {
    let items = list.as_seq()?;
    let mut ops = Vec::new();
    let mut ok = true;
    for it in items {
        let bad = |span: Span, msg: String| Diagnostic::new(&INVALID_PATCH, span, msg);
        let Some(m) = it.as_map() else {
            diags.push(bad(
                it.span,
                format!(
                    "a JSON patch operation must be a mapping, not {}",
                    it.type_name()
                ),
            ));
            ok = false;
            continue;
        };
        let get = |k: &str| m.iter().find(|e| e.key_str() == k).map(|e| &e.value);
        let Some(opn) = get("op") else {
            diags.push(
                bad(it.span, "this operation has no `op`".into()).with_help(
                    "`op` is one of `add`, `remove`, `replace`, `move`, `copy` or `test`",
                ),
            );
            ok = false;
            continue;
        };
        let Some(kind) = opn.as_str().and_then(OpKind::parse) else {
            let name = opn.as_scalar().map(|s| s.text.as_str()).unwrap_or("");
            let mut d = bad(opn.span, format!("`{name}` is not a JSON patch operation"));
            d = match did_you_mean(name, ["add", "remove", "replace", "move", "copy", "test"]) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help(
                    "`op` is one of `add`, `remove`, `replace`, `move`, `copy` or `test`",
                ),
            };
            diags.push(d);
            ok = false;
            continue;
        };
        let ptr = |k: &str, diags: &mut Vec<Diagnostic>| -> Option<(String, Span)> {
            let v = get(k)?;
            match v.as_str() {
                Some(s) => match json6902::valid_pointer(s) {
                    Ok(()) => Some((s.to_string(), v.span)),
                    Err(msg) => {
                        diags.push(bad(v.span, msg));
                        None
                    }
                },
                None => {
                    diags.push(bad(v.span, format!("`{k}` must be a JSON pointer string")));
                    None
                }
            }
        };
        let Some((path, path_span)) = ptr("path", diags) else {
            if get("path").is_none() {
                diags.push(bad(
                    it.span,
                    format!("this `{}` operation has no `path`", kind.as_str()),
                ));
            }
            ok = false;
            continue;
        };
        let from = if matches!(kind, OpKind::Move | OpKind::Copy) {
            match ptr("from", diags) {
                Some(f) => Some(f),
                None => {
                    if get("from").is_none() {
                        diags.push(bad(
                            it.span,
                            format!("this `{}` operation has no `from`", kind.as_str()),
                        ));
                    }
                    ok = false;
                    continue;
                }
            }
        } else {
            None
        };
        let value = if matches!(kind, OpKind::Add | OpKind::Replace | OpKind::Test) {
            match get("value") {
                Some(v) => Some(v.clone()),
                None => {
                    diags.push(bad(
                        it.span,
                        format!("this `{}` operation has no `value`", kind.as_str()),
                    ));
                    ok = false;
                    continue;
                }
            }
        } else {
            None
        };
        ops.push(Op {
            kind,
            path,
            path_span,
            from,
            value,
            span: it.span,
        });
    }
    ok.then_some(ops)
}
