//! `replacements`, as kustomize's replacement transformer: each replacement reads one
//! value from the one resource its source selects (by any name it has had), optionally a
//! part of it split by a delimiter, and writes it at the field paths of every resource its
//! targets select and do not reject. Field paths are kustomize's: `a.b`, `[k=v]` for the
//! list elements whose `k` is `v`, a number for a list index, `*` for every element; with
//! `create`, missing fields on the way are created.
//!
//! Provenance: a written value keeps the span of the source value it came from.

use super::kust::{FieldOptions, ReplEntry, Replacement, ResSel};
use super::*;
use crate::yaml::{Entry, ScalarKind, Style, resolve_plain};

fn bad(span: Span, msg: impl Into<String>) -> Diagnostic {
    Diagnostic::new(&INVALID_KUSTOMIZATION, span, msg)
}

/// kyaml's `SmarterPathSplitter`: `.` separates, except inside `[…]`.
fn split_path(p: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut cur, mut depth) = (String::new(), 0usize);
    for c in p.chars() {
        match c {
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            '.' if depth == 0 => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn ids(r: &Res) -> Vec<ResId> {
    let mut v = vec![r.cur()];
    v.extend(r.prev.iter().cloned());
    v
}

/// kustomize's `ResId.IsSelectedBy`.
fn selected(id: &ResId, s: &ResSel) -> bool {
    let eff = |ns: &str| {
        if ns.is_empty() || ns == "default" {
            "default".to_string()
        } else {
            ns.to_string()
        }
    };
    (s.name.is_empty() || s.name == id.name)
        && (s.namespace.is_empty() || eff(&s.namespace) == id.effective_ns())
        && (s.group.is_empty() || s.group == id.group)
        && (s.version.is_empty() || s.version == id.version)
        && (s.kind.is_empty() || s.kind == id.kind)
}

fn meta_selected(r: &Res, s: &ResSel) -> bool {
    s.labels
        .as_ref()
        .is_none_or(|l| l.matches(&r.meta_map("labels")))
        && s.annotations
            .as_ref()
            .is_none_or(|a| a.matches(&r.meta_map("annotations")))
}

/// `[k=v]`: the key and value.
fn element_match(part: &str) -> Option<(&str, &str)> {
    part.strip_prefix('[')?.strip_suffix(']')?.split_once('=')
}

fn elem_matches(n: &Node, k: &str, v: &str) -> bool {
    if k.is_empty() {
        return n.as_scalar().is_some_and(|s| s.text == v);
    }
    n.get(k)
        .and_then(Node::as_scalar)
        .is_some_and(|s| s.text == v)
}

/// kyaml's `Lookup`: the first node at the path.
fn lookup<'a>(mut n: &'a Node, path: &[String]) -> Option<&'a Node> {
    for part in path {
        n = if let Some((k, v)) = element_match(part) {
            n.as_seq()?.iter().find(|e| elem_matches(e, k, v))?
        } else if let Some(items) = n.as_seq() {
            items.get(part.parse::<usize>().ok()?)?
        } else {
            n.get(part)?
        };
    }
    Some(n)
}

/// kyaml's `PathMatcher`: every node at the path, created on the way with `create` (the
/// kind of the value to write).
fn matches_mut<'a>(
    root: &'a mut Node,
    path: &[String],
    create: Option<&Node>,
    span: Span,
) -> Vec<&'a mut Node> {
    let mut out = Vec::new();
    let mut work: Vec<(&'a mut Node, usize)> = vec![(root, 0)];
    while let Some((n, i)) = work.pop() {
        let Some(part) = path.get(i) else {
            out.push(n);
            continue;
        };
        let next_is_list = path
            .get(i + 1)
            .is_some_and(|p| p.starts_with('[') || p.parse::<usize>().is_ok());
        if let Some((k, v)) = element_match(part) {
            let Value::Seq(items) = &mut n.value else {
                continue;
            };
            if !items.iter().any(|e| elem_matches(e, k, v)) && create.is_some() && !k.is_empty() {
                items.push(Node::map(
                    span,
                    vec![Entry {
                        key: Node::string(span, k),
                        value: Node::string(span, v),
                    }],
                ));
            }
            for e in items.iter_mut().rev() {
                if elem_matches(e, k, v) {
                    work.push((e, i + 1));
                }
            }
            continue;
        }
        match &mut n.value {
            Value::Seq(items) => {
                if part == "*" {
                    for e in items.iter_mut().rev() {
                        work.push((e, i + 1));
                    }
                } else if let Some(e) = part.parse::<usize>().ok().and_then(|x| items.get_mut(x)) {
                    work.push((e, i + 1));
                }
            }
            Value::Map(m) => {
                if part == "*" {
                    for e in m.iter_mut().rev() {
                        work.push((&mut e.value, i + 1));
                    }
                    continue;
                }
                let pos = m.iter().position(|e| e.key_str() == part);
                let pos = match (pos, create) {
                    (Some(p), _) => p,
                    (None, Some(value)) => {
                        let fresh = if i + 1 == path.len() {
                            match &value.value {
                                Value::Scalar(_) => {
                                    Node::scalar(span, "", ScalarKind::Null, Style::Plain)
                                }
                                Value::Seq(_) => Node::seq(span, Vec::new()),
                                Value::Map(_) => Node::map(span, Vec::new()),
                            }
                        } else if next_is_list {
                            Node::seq(span, Vec::new())
                        } else {
                            Node::map(span, Vec::new())
                        };
                        m.push(Entry {
                            key: Node::string(span, part.as_str()),
                            value: fresh,
                        });
                        m.len() - 1
                    }
                    (None, None) => continue,
                };
                work.push((&mut m[pos].value, i + 1));
            }
            Value::Scalar(_) => {}
        }
    }
    out
}

/// Splits `text` by the delimiter and puts `v` at the index (before the first for a
/// negative index, after the last past the end), as kustomize's `setFieldValue`.
fn spliced(text: &str, delim: &str, index: i64, v: &str) -> String {
    let mut parts: Vec<&str> = text.split(delim).collect();
    if index < 0 {
        parts.insert(0, v);
    } else if index as usize >= parts.len() {
        parts.push(v);
    } else {
        parts[index as usize] = v;
    }
    parts.join(delim)
}

impl Ctx<'_> {
    /// The replacements of entries, files read.
    fn replacement_list(
        &self,
        kd: &KDir<'_>,
        entries: &[ReplEntry],
        acc: &mut Acc,
    ) -> Vec<Replacement> {
        let mut out = Vec::new();
        for e in entries {
            match e {
                ReplEntry::Inline(r) => out.push((**r).clone()),
                ReplEntry::Path(p) => {
                    let path = normalize(&kd.dir.join(&p.text));
                    if self.loader.metadata(&path).is_err() {
                        acc.diags
                            .push(self.missing(p, &path, "the replacements file"));
                        continue;
                    }
                    if let Some(d) = self.check_root(kd, p, &path) {
                        acc.diags.push(d);
                        continue;
                    }
                    let loaded = match self.loader.load(&path) {
                        Ok(l) => l,
                        Err(e) => {
                            acc.diags.push(load_error(p.span, &e));
                            continue;
                        }
                    };
                    acc.files.push(path);
                    acc.diags.extend(loaded.diags.iter().cloned());
                    for d in &loaded.docs {
                        let items: Vec<&Node> = match d.root.as_seq() {
                            Some(items) => items.iter().collect(),
                            None if d.root.is_null() => Vec::new(),
                            None => vec![&d.root],
                        };
                        for it in items {
                            if let Some(r) = super::kust::replacement(it, &mut acc.diags) {
                                out.push(r);
                            }
                        }
                    }
                }
            }
        }
        out
    }

    pub(super) fn replace(&self, kd: &KDir<'_>, entries: &[ReplEntry], acc: &mut Acc) {
        if entries.is_empty() {
            return;
        }
        for r in self.replacement_list(kd, entries, acc) {
            let (Some(src), false) = (&r.source, r.targets.is_empty()) else {
                acc.diags.push(bad(
                    r.span,
                    "a replacement needs a `source` and at least one target",
                ));
                continue;
            };
            let hits: Vec<usize> = (0..acc.res.len())
                .filter(|i| ids(&acc.res[*i]).iter().any(|id| selected(id, &src.sel)))
                .collect();
            let [hit] = hits.as_slice() else {
                let what = if hits.is_empty() {
                    "nothing is"
                } else {
                    "several resources are"
                };
                acc.diags.push(bad(
                    r.span,
                    format!("{what} selected by this replacement's source"),
                ));
                continue;
            };
            let fp = if src.field_path.is_empty() {
                "metadata.name"
            } else {
                &src.field_path
            };
            let Some(found) = lookup(&acc.res[*hit].node, &split_path(fp))
                .filter(|n| !n.is_null() && !n.as_scalar().is_some_and(|s| s.text.is_empty()))
            else {
                acc.diags.push(bad(
                    r.span,
                    format!("the source of this replacement has no `{fp}`"),
                ));
                continue;
            };
            let mut value = found.clone();
            let o = &src.options;
            if !o.delimiter.is_empty() {
                let Some(s) = value.as_scalar() else {
                    acc.diags
                        .push(bad(r.span, "a delimiter applies to a scalar value only"));
                    continue;
                };
                let parts: Vec<&str> = s.text.split(o.delimiter.as_str()).collect();
                let Some(part) = usize::try_from(o.index).ok().and_then(|i| parts.get(i)) else {
                    acc.diags.push(bad(
                        r.span,
                        format!("options.index {} is out of bounds", o.index),
                    ));
                    continue;
                };
                value = Node::scalar(value.span, *part, s.kind, s.style);
            }
            for t in &r.targets {
                let Some(sel) = &t.select else {
                    acc.diags
                        .push(bad(r.span, "a replacement target must `select` resources"));
                    continue;
                };
                let paths: Vec<Vec<String>> = if t.field_paths.is_empty() {
                    vec![split_path("metadata.name")]
                } else {
                    t.field_paths.iter().map(|p| split_path(p)).collect()
                };
                for res in acc.res.iter_mut() {
                    if !meta_selected(res, sel)
                        || t.reject.iter().any(|rj| {
                            (rj.labels.is_some() || rj.annotations.is_some())
                                && meta_selected(res, rj)
                        })
                    {
                        continue;
                    }
                    let rids = ids(res);
                    let rejected = t
                        .reject
                        .iter()
                        .any(|rj| !rj.is_empty_id() && rids.iter().any(|id| selected(id, rj)));
                    if rejected || !rids.iter().any(|id| selected(id, sel)) {
                        continue;
                    }
                    for p in &paths {
                        let create = t.options.create.then_some(&value);
                        let targets = matches_mut(&mut res.node, p, create, value.span);
                        if targets.is_empty() {
                            acc.diags.push(bad(
                                r.span,
                                format!(
                                    "a target of this replacement has no field `{}`",
                                    p.join(".")
                                ),
                            ));
                        }
                        for n in targets {
                            if !set_value(n, &value, &t.options) {
                                acc.diags.push(bad(
                                    r.span,
                                    "a delimiter applies to a scalar target only",
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// kustomize's `setFieldValue`: a scalar target takes the value's text (and keeps being a
/// string if it was one; otherwise it reads as the text reads), another is replaced.
/// False: a delimiter on a target that is not a scalar.
fn set_value(target: &mut Node, value: &Node, o: &FieldOptions) -> bool {
    let span = value.span;
    let vtext = value
        .as_scalar()
        .map(|s| s.text.to_string())
        .unwrap_or_default();
    let text = if o.delimiter.is_empty() {
        vtext
    } else {
        let Some(t) = target.as_scalar() else {
            return false;
        };
        spliced(&t.text, &o.delimiter, o.index, &vtext)
    };
    match &target.value {
        Value::Scalar(ts) => {
            *target = if ts.kind == ScalarKind::Str {
                Node::string(span, text)
            } else {
                let kind = resolve_plain(&text);
                Node::scalar(span, text, kind, Style::Plain)
            };
        }
        _ if !o.delimiter.is_empty() => return false,
        _ => *target = value.clone(),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::{ResolveOptions, resolve};
    use super::*;
    use crate::fs::MemFs;
    use crate::load::Loader;
    use std::path::Path;
    use std::sync::Arc;

    #[test]
    fn paths_split_outside_brackets() {
        assert_eq!(
            split_path("spec.containers.[name=a.b].env.0"),
            ["spec", "containers", "[name=a.b]", "env", "0"]
        );
    }

    /// As `kubectl kustomize` builds it: the image of one container copied into another
    /// (by index and by `[name=…]`), a created field, and a delimited part.
    #[test]
    fn a_replacement_copies_a_value_into_its_targets() {
        let mut fs = MemFs::new();
        fs.insert(
            "o/kustomization.yaml",
            "resources: [d.yaml]\nreplacements:\n- source: {kind: Deployment, fieldPath: spec.template.spec.containers.0.image}\n  targets:\n  - select: {kind: Deployment}\n    fieldPaths:\n    - spec.template.spec.containers.[name=b].image\n    - metadata.annotations.img\n    options: {create: true}\n- source: {kind: Deployment, fieldPath: spec.template.spec.containers.0.image, options: {delimiter: ':', index: 1}}\n  targets:\n  - select: {name: d}\n    fieldPaths: [metadata.labels.tag]\n    options: {create: true}\n",
        );
        fs.insert(
            "o/d.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: 'x:1'}, {name: b, image: y}]\n",
        );
        let l = Loader::new(Arc::new(fs), "", crate::yaml::Limits::default());
        let r = resolve(&l, Path::new("o"), &ResolveOptions::default()).expect("resolves");
        assert!(r.diags.is_empty(), "{:?}", r.diags);
        let j = r.docs[0].to_json();
        assert_eq!(
            j["spec"]["template"]["spec"]["containers"][1]["image"],
            "x:1"
        );
        assert_eq!(j["metadata"]["annotations"]["img"], "x:1");
        assert_eq!(j["metadata"]["labels"]["tag"], 1);
    }
}
