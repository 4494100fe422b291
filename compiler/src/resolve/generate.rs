//! `configMapGenerator` and `secretGenerator`, as kustomize's built-in generators: the
//! key/value pairs of env files, literals and files (in that order), a ConfigMap's values
//! that are not UTF-8 under `binaryData`, a Secret's base64-encoded; the options' labels,
//! annotations and `immutable`; then the generated resource is added (`behavior: create`),
//! or merged into (`merge`) or replaces (`replace`) the one of that name already built.
//! The hash suffix is added at the end of the build (see [`hash_names`]).
//!
//! Provenance: a value keeps the span of the literal, file or env entry it came from; the
//! resource's own fields keep the span of the generator entry.

use super::digest::{base64_wrapped, name_hash};
use super::kust::{Behavior, GenKind, GenOptions, Generator};
use super::*;
use crate::yaml::Entry;

fn bad(span: Span, msg: impl Into<String>) -> Diagnostic {
    Diagnostic::new(&INVALID_KUSTOMIZATION, span, msg)
}

/// One key/value pair and the span it came from.
struct Pair {
    key: String,
    value: Vec<u8>,
    span: Span,
}

/// kustomize's `removeQuotes` of a literal's value.
fn unquote(v: &str) -> &str {
    let b = v.as_bytes();
    if b.len() >= 2 && b[0] == b[b.len() - 1] && (b[0] == b'"' || b[0] == b'\'') {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// The pairs of an env file: `KEY=value` lines; blank lines and `#` comments skipped.
fn env_pairs(text: &[u8], span: Span, out: &mut Vec<Pair>) -> Result<(), Box<Diagnostic>> {
    for (i, raw) in text.split(|b| *b == b'\n').enumerate() {
        let mut line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if i == 0 {
            line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
        }
        let Ok(line) = std::str::from_utf8(line) else {
            let d = bad(
                span,
                format!("line {} of this env file is not UTF-8", i + 1),
            );
            return Err(Box::new(d));
        };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        out.push(Pair {
            key: k.to_string(),
            value: v.as_bytes().to_vec(),
            span,
        });
    }
    Ok(())
}

fn set(m: &mut Vec<Entry>, span: Span, key: &str, value: Node) {
    match m.iter_mut().find(|e| e.key_str() == key) {
        Some(e) => e.value = value,
        None => m.push(Entry {
            key: Node::string(span, key),
            value,
        }),
    }
}

/// `kv` written into `map` (sorted by key, as kustomize writes them).
fn pairs_map(span: Span, kv: &[(Node, Node)]) -> Node {
    let mut entries: Vec<Entry> = kv
        .iter()
        .map(|(k, v)| Entry {
            key: k.clone(),
            value: Node::string(v.span, v.as_str().unwrap_or("")),
        })
        .collect();
    entries.sort_by(|a, b| a.key_str().cmp(b.key_str()));
    Node::map(span, entries)
}

impl Ctx<'_> {
    fn read_source(&self, kd: &KDir<'_>, r: &PathRef, acc: &mut Acc) -> Option<Vec<u8>> {
        if looks_remote(&r.text) {
            acc.diags.push(self.remote(r));
            return None;
        }
        let path = normalize(&kd.dir.join(&r.text));
        match self.loader.metadata(&path) {
            Ok(m) if m.kind == FileKind::File => {}
            Ok(_) => {
                acc.diags.push(bad(
                    r.span,
                    format!("`{}` is a directory, not a file", r.text),
                ));
                return None;
            }
            Err(_) => {
                acc.diags.push(self.missing(r, &path, "the file"));
                return None;
            }
        }
        if let Some(d) = self.check_root(kd, r, &path) {
            acc.diags.push(d);
            return None;
        }
        match self
            .loader
            .fs
            .read(&path, self.loader.limits.max_file_bytes)
        {
            Ok(b) => {
                acc.files.push(path);
                Some(b)
            }
            Err(_) => {
                acc.diags
                    .push(bad(r.span, format!("`{}` cannot be read", r.text)));
                None
            }
        }
    }

    /// The generated resource of one generator entry.
    fn generate(
        &self,
        kd: &KDir<'_>,
        g: &Generator,
        o: &GenOptions,
        acc: &mut Acc,
    ) -> Option<Node> {
        let what = match g.kind {
            GenKind::ConfigMap => "ConfigMap",
            GenKind::Secret => "Secret",
        };
        let Some(name) = g
            .name
            .clone()
            .filter(|n| n.as_str().is_some_and(|s| !s.is_empty()))
        else {
            acc.diags.push(
                bad(g.span, format!("a generated {what} must have a `name`"))
                    .with_help("add `name:` to the generator entry"),
            );
            return None;
        };
        let mut pairs: Vec<Pair> = Vec::new();
        let mut ok = true;
        for e in &g.envs {
            if let Some(b) = self.read_source(kd, e, acc) {
                if let Err(d) = env_pairs(&b, e.span, &mut pairs) {
                    acc.diags.push(*d);
                    ok = false;
                }
            } else {
                ok = false;
            }
        }
        for l in &g.literals {
            let text = l.as_str().unwrap_or("");
            match text.split_once('=') {
                Some((k, v)) if !k.is_empty() => pairs.push(Pair {
                    key: k.to_string(),
                    value: unquote(v).as_bytes().to_vec(),
                    span: l.span,
                }),
                _ => {
                    acc.diags.push(
                        bad(
                            l.span,
                            format!("invalid literal `{text}`, expected key=value"),
                        )
                        .with_help("write the literal as `key=value`"),
                    );
                    ok = false;
                }
            }
        }
        for f in &g.files {
            let (key, file) = match f.text.matches('=').count() {
                0 => (
                    f.text.rsplit('/').next().unwrap_or(&f.text).to_string(),
                    f.text.clone(),
                ),
                1 if !f.text.starts_with('=') && !f.text.ends_with('=') => {
                    let (k, p) = f.text.split_once('=').unwrap_or(("", ""));
                    (k.to_string(), p.to_string())
                }
                _ => {
                    acc.diags.push(
                        bad(f.span, format!("invalid file source `{}`", f.text))
                            .with_help("write `path` or `key=path`, with one `=` at most"),
                    );
                    ok = false;
                    continue;
                }
            };
            let r = PathRef {
                text: file,
                span: f.span,
            };
            match self.read_source(kd, &r, acc) {
                Some(b) => pairs.push(Pair {
                    key,
                    value: b,
                    span: f.span,
                }),
                None => ok = false,
            }
        }
        for (i, p) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|q| q.key == p.key) {
                acc.diags.push(bad(
                    p.span,
                    format!(
                        "{what} `{}` repeats the key `{}`",
                        name.as_str().unwrap_or(""),
                        p.key
                    ),
                ));
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        pairs.sort_by(|a, b| a.key.cmp(&b.key));
        let s = g.span;
        let mut md = vec![Entry {
            key: Node::string(s, "name"),
            value: name.clone(),
        }];
        if let Some(ns) = g
            .namespace
            .as_ref()
            .filter(|n| n.as_str().is_some_and(|t| !t.is_empty()))
        {
            set(&mut md, s, "namespace", ns.clone());
        }
        if !o.labels.is_empty() {
            set(&mut md, s, "labels", pairs_map(s, &o.labels));
        }
        if !o.annotations.is_empty() {
            set(&mut md, s, "annotations", pairs_map(s, &o.annotations));
        }
        let mut doc = vec![
            Entry {
                key: Node::string(s, "apiVersion"),
                value: Node::string(s, "v1"),
            },
            Entry {
                key: Node::string(s, "kind"),
                value: Node::string(s, what),
            },
            Entry {
                key: Node::string(s, "metadata"),
                value: Node::map(s, md),
            },
        ];
        let value = |p: &Pair, text: String| Entry {
            key: Node::string(p.span, p.key.as_str()),
            value: Node::string(p.span, text),
        };
        match g.kind {
            GenKind::ConfigMap => {
                let (mut data, mut binary) = (Vec::new(), Vec::new());
                for p in &pairs {
                    match std::str::from_utf8(&p.value) {
                        Ok(t) => data.push(value(p, t.to_string())),
                        Err(_) => binary.push(value(p, base64_wrapped(&p.value))),
                    }
                }
                if !data.is_empty() {
                    set(&mut doc, s, "data", Node::map(s, data));
                }
                if !binary.is_empty() {
                    set(&mut doc, s, "binaryData", Node::map(s, binary));
                }
            }
            GenKind::Secret => {
                let t = g
                    .type_
                    .clone()
                    .filter(|n| n.as_str().is_some_and(|t| !t.is_empty()))
                    .unwrap_or_else(|| Node::string(s, "Opaque"));
                set(&mut doc, s, "type", t);
                let data = pairs
                    .iter()
                    .map(|p| value(p, base64_wrapped(&p.value)))
                    .collect();
                set(&mut doc, s, "data", Node::map(s, data));
            }
        }
        if o.immutable {
            set(
                &mut doc,
                s,
                "immutable",
                Node::scalar(
                    s,
                    "true",
                    crate::yaml::ScalarKind::Bool,
                    crate::yaml::Style::Plain,
                ),
            );
        }
        Some(Node::map(s, doc))
    }

    /// Runs the kustomization's generators and adds what they make to `acc`.
    pub(super) fn run_generators(&self, kd: &KDir<'_>, acc: &mut Acc) {
        for g in &kd.kust.generators {
            let o = GenOptions::merged(g.options.as_ref(), kd.kust.gen_options.as_ref());
            let Some(node) = self.generate(kd, g, &o, acc) else {
                continue;
            };
            let nodes = node.count() as u64;
            let mut node = node;
            if self.origin_on.load(AtomicOrdering::Relaxed) {
                let kind = match g.kind {
                    GenKind::ConfigMap => "ConfigMapGenerator",
                    GenKind::Secret => "SecretGenerator",
                };
                let text = kd.kust.config_origin.clone().or_else(|| {
                    super::origin::of_generator(&self.kust_origin(kd), kind, None, None)
                });
                match text {
                    Some(t) => super::origin::annotate(&mut node, &t, g.span, true),
                    None => acc.diags.push(super::origin::unwritable(g.span)),
                }
            }
            let mut res = self.new_res(node, nodes);
            res.needs_hash = !o.disable_hash;
            self.absorb(res, g, acc);
        }
    }

    /// kustomize's `appendReplaceOrMerge`.
    fn absorb(&self, mut res: Res, g: &Generator, acc: &mut Acc) {
        let id = res.cur();
        let hits: Vec<usize> = acc
            .res
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.prev
                    .iter()
                    .chain(std::iter::once(&r.cur()))
                    .any(|p| p.equals(&id))
            })
            .map(|(i, _)| i)
            .collect();
        match (hits.as_slice(), g.behavior) {
            ([], Behavior::Create) => acc.res.push(res),
            ([], _) => acc.diags.push(
                bad(
                    g.span,
                    format!(
                        "{} does not exist, so it cannot be merged or replaced",
                        id.describe()
                    ),
                )
                .with_help(
                    "use `behavior: create`, or list the resource to merge into under `resources:`",
                ),
            ),
            ([_], Behavior::Create) => acc.diags.push(
                Diagnostic::new(
                    &DUPLICATE_RESOURCE,
                    g.span,
                    format!("{} already exists", id.describe()),
                )
                .with_help(
                    "use `behavior: merge` or `behavior: replace` to change the existing one",
                ),
            ),
            ([i], behavior) => {
                let old = &mut acc.res[*i];
                let merged = merge_generated(&old.node, &res.node, behavior == Behavior::Merge);
                res.node = merged;
                old.needs_hash = old.needs_hash && res.needs_hash;
                old.nodes = res.node.count() as u64;
                old.node = res.node;
            }
            (many, _) => acc.diags.push(bad(
                g.span,
                format!(
                    "{} resources could take the merge of {}",
                    many.len(),
                    id.describe()
                ),
            )),
        }
    }
}

/// kustomize's merge of a generated resource into the one it replaces: labels and
/// annotations merged (the new ones win), the old name and namespace, and for `merge` the
/// data (and binary data) merged too.
fn merge_generated(old: &Node, new: &Node, merge_data: bool) -> Node {
    let mut out = new.clone();
    let span = new.span;
    let Some(doc) = out.as_map_mut() else {
        return out;
    };
    let mut md: Vec<Entry> = new
        .get("metadata")
        .and_then(Node::as_map)
        .unwrap_or_default()
        .to_vec();
    for f in ["labels", "annotations"] {
        let mut m: Vec<Entry> = old
            .get_path(&["metadata", f])
            .and_then(Node::as_map)
            .unwrap_or_default()
            .to_vec();
        for e in new
            .get_path(&["metadata", f])
            .and_then(Node::as_map)
            .unwrap_or_default()
        {
            set(&mut m, span, e.key_str(), e.value.clone());
        }
        // A merge keeps the origin of the resource merged into.
        if merge_data
            && f == "annotations"
            && let Some(o) = old.get_path(&["metadata", f, super::origin::ORIGIN])
        {
            set(&mut m, span, super::origin::ORIGIN, o.clone());
        }
        md.retain(|e| e.key_str() != f);
        if !m.is_empty() {
            md.push(Entry {
                key: Node::string(span, f),
                value: Node::map(span, m),
            });
        }
    }
    for f in ["name", "namespace"] {
        md.retain(|e| e.key_str() != f);
        if let Some(v) = old.get_path(&["metadata", f]) {
            md.insert(
                0,
                Entry {
                    key: Node::string(span, f),
                    value: v.clone(),
                },
            );
        }
    }
    set(doc, span, "metadata", Node::map(span, md));
    if merge_data {
        for f in ["data", "binaryData"] {
            let mut m: Vec<Entry> = old
                .get(f)
                .and_then(Node::as_map)
                .unwrap_or_default()
                .to_vec();
            for e in new.get(f).and_then(Node::as_map).unwrap_or_default() {
                set(&mut m, span, e.key_str(), e.value.clone());
            }
            if !m.is_empty() {
                set(doc, span, f, Node::map(span, m));
            }
        }
    }
    out
}

/// Appends kustomize's hash suffix to the name of every generated resource that wants one
/// (at the end of the top-level build, on the final data).
pub(super) fn hash_names(res: &mut [Res]) {
    for r in res.iter_mut().filter(|r| r.needs_hash) {
        let h = name_hash(&r.node);
        r.store_prev();
        let id = r.cur();
        let span = r
            .node
            .get_path(&["metadata", "name"])
            .map(|n| n.span)
            .unwrap_or_default();
        if let Some(md) = metadata_mut(&mut r.node, span) {
            set_entry(
                md,
                Node::string(span, "name"),
                Node::string(span, format!("{}-{h}", id.name)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ResolveOptions, resolve};
    use crate::fs::MemFs;
    use crate::load::Loader;
    use std::path::Path;
    use std::sync::Arc;

    fn build(files: &[(&str, &str)]) -> super::super::Resolution {
        let mut fs = MemFs::new();
        for (p, t) in files {
            fs.insert(*p, *t);
        }
        let l = Loader::new(Arc::new(fs), "", crate::yaml::Limits::default());
        resolve(&l, Path::new("o"), &ResolveOptions::default()).expect("resolves")
    }

    /// The output of `kubectl kustomize` on the same tree.
    #[test]
    fn env_literal_and_file_sources_and_a_secret() {
        let r = build(&[
            (
                "o/kustomization.yaml",
                "configMapGenerator:\n- name: cm\n  envs: [a.env]\n  literals: [\"q='x y'\"]\n  files: [k=f.txt]\n  options: {labels: {l: v}}\nsecretGenerator:\n- name: s\n  literals: [p=pw]\ngeneratorOptions: {disableNameSuffixHash: true, annotations: {note: m}}\n",
            ),
            ("o/a.env", "# c\nA=1\n\n  B=two=2\n"),
            ("o/f.txt", "text\n"),
        ]);
        assert!(r.diags.is_empty(), "{:?}", r.diags);
        let j: Vec<serde_json::Value> = r.docs.iter().map(crate::yaml::Node::to_json).collect();
        assert_eq!(
            j[0],
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cm", "labels": {"l": "v"}, "annotations": {"note": "m"}},
                "data": {"A": "1", "B": "two=2", "k": "text\n", "q": "x y"}})
        );
        assert_eq!(
            j[1],
            serde_json::json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": "s", "annotations": {"note": "m"}}, "data": {"p": "cHc="}})
        );
    }

    #[test]
    fn merging_into_nothing_and_repeated_keys_fail() {
        let r = build(&[(
            "o/kustomization.yaml",
            "configMapGenerator:\n- name: cm\n  behavior: merge\n  literals: [a=1]\n- name: dup\n  literals: [a=1, a=2]\n",
        )]);
        let codes: Vec<&str> = r.diags.iter().map(|d| d.code.name).collect();
        assert_eq!(
            codes,
            ["invalid-kustomization", "invalid-kustomization"],
            "{:?}",
            r.diags
        );
    }
}
