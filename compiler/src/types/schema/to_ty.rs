//! A JSON Schema's spanned tree turned into a [`Ty`]: local `$ref`s followed (with cycle
//! detection and a depth cap), `allOf` intersected, `oneOf`/`anyOf` united, enums ordered.

use super::*;

/// The type a schema document describes; findings go to `diags`.
pub(super) fn to_ty(root: &Node, diags: &mut Vec<Diagnostic>) -> Ty {
    let mut cx = Cx {
        root,
        diags,
        stack: Vec::new(),
        depth: 0,
    };
    cx.ty(root, false)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(h);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Cx<'a, 'd> {
    root: &'a Node,
    diags: &'d mut Vec<Diagnostic>,
    /// `$ref` targets being expanded, with whether a structural step (property/item) was
    /// taken since.
    stack: Vec<(String, bool)>,
    depth: usize,
}

const MAX_TYPE_DEPTH: usize = 48;

impl<'a> Cx<'a, '_> {
    fn ty(&mut self, n: &'a Node, structural: bool) -> Ty {
        if structural {
            for s in &mut self.stack {
                s.1 = true;
            }
        }
        if self.depth > MAX_TYPE_DEPTH {
            return Ty::Any;
        }
        self.depth += 1;
        let t = self.ty_inner(n);
        self.depth -= 1;
        t
    }

    fn ty_inner(&mut self, n: &'a Node) -> Ty {
        let Some(_) = n.as_map() else {
            // `true`/`false` schemas and anything odd: untyped.
            return Ty::Any;
        };
        if let Some(r) = n.get("$ref") {
            return self.reference(r);
        }
        let mut parts: Vec<Ty> = Vec::new();
        if let Some(all) = n.get("allOf").and_then(Node::as_seq) {
            let tys: Vec<Ty> = all.iter().map(|s| self.ty(s, false)).collect();
            let own = self.own(n);
            let mut merged = own;
            for t in tys {
                merged = intersect(merged, t);
            }
            return merged;
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(alts) = n.get(key).and_then(Node::as_seq) {
                for a in alts {
                    parts.push(self.ty(a, false));
                }
            }
        }
        if !parts.is_empty() {
            let own = self.own(n);
            if own != Ty::Any {
                parts = parts
                    .into_iter()
                    .map(|p| intersect(own.clone(), p))
                    .collect();
            }
            return union(parts);
        }
        self.own(n)
    }

    /// The type a schema object states itself (`type`, `enum`, `const`, `properties`, …).
    fn own(&mut self, n: &'a Node) -> Ty {
        if let Some(e) = n.get("enum").and_then(Node::as_seq) {
            return enum_ty(e, n.get("enum").map(|x| x.span).unwrap_or(n.span));
        }
        if let Some(c) = n.get("const") {
            return enum_ty(std::slice::from_ref(c), c.span);
        }
        let types: Vec<&str> = match n.get("type") {
            Some(t) => match &t.value {
                Value::Scalar(s) => vec![s.text.as_str()],
                Value::Seq(items) => items
                    .iter()
                    .filter_map(|i| i.as_scalar().map(|s| s.text.as_str()))
                    .collect(),
                Value::Map(_) => vec![],
            },
            None => {
                if n.get("properties").is_some() {
                    vec!["object"]
                } else if n.get("items").is_some() {
                    vec!["array"]
                } else {
                    vec![]
                }
            }
        };
        if types.is_empty() {
            return Ty::Any;
        }
        let tys: Vec<Ty> = types.iter().map(|t| self.one_type(t, n)).collect();
        union(tys)
    }

    fn one_type(&mut self, t: &str, n: &'a Node) -> Ty {
        match t {
            "null" => Ty::Null,
            "boolean" => Ty::Bool,
            "integer" => Ty::Integer,
            "number" => Ty::Number,
            "string" => {
                if n.get("format").and_then(Node::as_str) == Some("duration") {
                    Ty::Duration
                } else {
                    Ty::String
                }
            }
            "array" => {
                let item = match n.get("items") {
                    Some(i) if i.as_map().is_some() => self.ty(i, true),
                    _ => Ty::Any,
                };
                Ty::List(Box::new(item))
            }
            "object" => {
                let required: Vec<&str> = n
                    .get("required")
                    .and_then(Node::as_seq)
                    .map(|r| r.iter().filter_map(Node::as_str).collect())
                    .unwrap_or_default();
                let mut fields = Vec::new();
                if let Some(props) = n.get("properties").and_then(Node::as_map) {
                    for e in props {
                        let name = e.key_str().to_string();
                        let ty = self.ty(&e.value, true);
                        fields.push(Field {
                            required: required.contains(&name.as_str()),
                            name,
                            ty,
                            span: e.key.span,
                        });
                    }
                }
                let closed = |k: &str| {
                    n.get(k)
                        .and_then(Node::as_scalar)
                        .is_some_and(|s| s.kind == ScalarKind::Bool && s.text == "false")
                };
                Ty::Object(Arc::new(ObjTy {
                    fields,
                    open: !(closed("additionalProperties") || closed("unevaluatedProperties")),
                    // Labels point at the `properties` key rather than the whole object.
                    span: n.entry("properties").map(|e| e.key.span).unwrap_or(n.span),
                }))
            }
            _ => Ty::Any,
        }
    }

    fn reference(&mut self, r: &'a Node) -> Ty {
        let Some(target) = r.as_str() else {
            self.diags.push(Diagnostic::new(
                &SCHEMA_BAD_REF,
                r.span,
                "`$ref` must be a string",
            ));
            return Ty::Any;
        };
        let Some(frag) = target.strip_prefix('#') else {
            self.diags.push(
                Diagnostic::new(
                    &SCHEMA_EXTERNAL_REF,
                    r.span,
                    format!("`{target}` refers outside this file; pbc does not follow it, so values read through it are untyped"),
                )
                .with_help("move the definition under `$defs` in this file and refer to it as `#/$defs/NAME`"),
            );
            return Ty::Any;
        };
        let frag = percent_decode(frag);
        if let Some(pos) = self.stack.iter().position(|(t, _)| *t == frag) {
            let structural = self.stack[pos..].iter().any(|(_, s)| *s);
            if structural {
                // A recursive type (a tree): its inner levels are untyped.
                return Ty::Any;
            }
            self.diags.push(
                Diagnostic::new(
                    &SCHEMA_BAD_REF,
                    r.span,
                    format!("`$ref: {target}` loops back to itself"),
                )
                .with_help(
                    "a reference chain must reach a definition that is not itself only a `$ref`",
                ),
            );
            return Ty::Any;
        }
        let Some(node) = pointer(self.root, &frag) else {
            let defs: Vec<String> = ["$defs", "definitions"]
                .iter()
                .filter_map(|k| self.root.get(k).and_then(Node::as_map).map(|m| (k, m)))
                .flat_map(|(k, m)| m.iter().map(move |e| format!("#/{k}/{}", e.key_str())))
                .collect();
            let mut d = Diagnostic::new(
                &SCHEMA_BAD_REF,
                r.span,
                format!("`$ref: {target}` points to nothing in this schema"),
            );
            let names: Vec<&str> = defs.iter().map(String::as_str).collect();
            if let Some(s) = crate::diag::did_you_mean(target, names.iter().copied()) {
                d = d.with_help(format!("did you mean `{s}`?"));
            } else if !names.is_empty() {
                d = d.with_help(format!("defined here: {}", crate::diag::one_of(&names)));
            }
            self.diags.push(d);
            return Ty::Any;
        };
        self.stack.push((frag, false));
        let t = self.ty(node, false);
        self.stack.pop();
        t
    }
}

fn enum_ty(items: &[Node], span: Span) -> Ty {
    let mut members = Vec::new();
    let mut all_str = true;
    let mut has_null = false;
    for i in items {
        match i.as_scalar() {
            Some(s) if s.kind == ScalarKind::Str => members.push(s.text.as_str().to_owned()),
            Some(s) if s.kind == ScalarKind::Null => has_null = true,
            _ => all_str = false,
        }
    }
    if !all_str {
        // Numeric or mixed enums: typed by their first member's kind.
        return match items.first().and_then(Node::as_scalar).map(|s| s.kind) {
            Some(ScalarKind::Int) => Ty::Integer,
            Some(ScalarKind::Float) => Ty::Number,
            Some(ScalarKind::Bool) => Ty::Bool,
            _ => Ty::Any,
        };
    }
    let e = Ty::Enum(Arc::new(EnumTy { members, span }));
    if has_null {
        Ty::Union(vec![e, Ty::Null])
    } else {
        e
    }
}

fn union(mut tys: Vec<Ty>) -> Ty {
    tys.dedup();
    if tys.contains(&Ty::Any) {
        return Ty::Any;
    }
    match tys.len() {
        0 => Ty::Any,
        1 => tys.into_iter().next().unwrap_or(Ty::Any),
        _ => Ty::Union(tys),
    }
}

/// The conjunction of two types (for `allOf`): objects merge their fields and `required`s;
/// otherwise the more specific one wins.
fn intersect(a: Ty, b: Ty) -> Ty {
    match (a, b) {
        (Ty::Any, t) | (t, Ty::Any) => t,
        (Ty::Object(x), Ty::Object(y)) => {
            let mut fields = x.fields.clone();
            for f in &y.fields {
                match fields.iter_mut().find(|g| g.name == f.name) {
                    Some(g) => {
                        g.required |= f.required;
                        g.ty = intersect(g.ty.clone(), f.ty.clone());
                    }
                    None => fields.push(f.clone()),
                }
            }
            Ty::Object(Arc::new(ObjTy {
                fields,
                open: x.open && y.open,
                span: x.span,
            }))
        }
        (Ty::Number, Ty::Integer) | (Ty::Integer, Ty::Number) => Ty::Integer,
        (Ty::String, Ty::Duration) | (Ty::Duration, Ty::String) => Ty::Duration,
        (Ty::String, e @ Ty::Enum(_)) | (e @ Ty::Enum(_), Ty::String) => e,
        (a, _) => a,
    }
}
