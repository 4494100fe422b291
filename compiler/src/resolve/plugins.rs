//! The `generators` and `transformers` fields: configurations of kustomize's built-in
//! generators and transformers (`apiVersion: builtin`), inline or in files. Each is the
//! kustomization field it configures, written as a resource (a `PatchTransformer` is an
//! entry of `patches`, a `ConfigMapGenerator` one of `configMapGenerator`, …): pbc reads it
//! as that field of a kustomization of its own and runs it on the resources, after the
//! kustomization's own generators or transformers, as kustomize does. Plugins that are not
//! built in, and the built-in ones pbc does not implement, are refused.

use super::*;
use crate::yaml::Entry;
use accumulate::Acc;
use fieldspec::FieldSpec;

/// The built-in transformers pbc runs from a configuration.
const TRANSFORMERS: &[&str] = &[
    "PatchTransformer",
    "PatchJson6902Transformer",
    "PatchStrategicMergeTransformer",
    "PrefixSuffixTransformer",
    "PrefixTransformer",
    "SuffixTransformer",
    "LabelTransformer",
    "AnnotationsTransformer",
    "ReplacementTransformer",
];

const GENERATORS: &[&str] = &[
    "ConfigMapGenerator",
    "SecretGenerator",
    "IAMPolicyGenerator",
];

fn entry(key: &str, span: Span, value: Node) -> Entry {
    Entry {
        key: Node::string(span, key),
        value,
    }
}

fn refuse(at: Span, what: String, help: &str) -> Diagnostic {
    Diagnostic::new(&UNSUPPORTED_FIELD, at, what).with_help(help.to_string())
}

/// A configuration's field specs, read leniently as kustomize reads them (unknown keys
/// are ignored).
fn field_specs(n: Option<&Node>) -> Option<Vec<FieldSpec>> {
    let items = n?.as_seq()?;
    Some(
        items
            .iter()
            .filter_map(|i| i.as_map().map(fieldspec::spec_of))
            .collect(),
    )
}

impl Ctx<'_> {
    /// Runs the configurations of `generators` (`generate`) or `transformers`.
    pub(super) fn run_configs(
        &self,
        kd: &KDir<'_>,
        entries: &[Node],
        generate: bool,
        acc: &mut Acc,
        stack: &[accumulate::Frame],
    ) {
        if entries.is_empty() {
            return;
        }
        // kustomize reads the inline configurations first, then the files.
        // Each configuration, the file its spans are in, and its origin path.
        let mut docs: Vec<(Node, crate::span::FileId, Option<String>)> = Vec::new();
        let (inline, paths): (Vec<&Node>, Vec<&Node>) = entries.iter().partition(|n| {
            n.as_str()
                .is_some_and(|t| t.contains('\n') || t.contains(": "))
        });
        if let Some(file) = self.loader.sources.get(kd.file) {
            for n in inline {
                let (parsed, diags) = inline::parse_inline(&file, n, &self.loader.limits);
                acc.diags.extend(diags);
                let at = self.kust_origin(kd);
                docs.extend(
                    parsed
                        .into_iter()
                        .map(|d| (d.root, kd.file, Some(at.clone()))),
                );
            }
        }
        for n in paths {
            let r = PathRef {
                text: n.as_str().unwrap_or_default().to_string(),
                span: n.span,
            };
            if looks_remote(&r.text) {
                acc.diags.push(self.remote(&r));
                continue;
            }
            let path = normalize(&kd.dir.join(&r.text));
            match self.loader.metadata(&path) {
                Ok(m) if m.kind == FileKind::Dir => {
                    // A kustomization whose resources are the configurations.
                    if let Err(d) = self.check_enter(&path, &r, stack) {
                        acc.diags.push(*d);
                        continue;
                    }
                    acc.includes.push((path.clone(), r.span));
                    let (mut sub, _) = self.build_dir(
                        &path,
                        stack,
                        Some(r.span),
                        KustKind::Kustomization,
                        &acc.schema,
                        origin::join(&kd.origin, &r.text),
                    );
                    acc.merge_meta(&mut sub);
                    docs.extend(sub.res.into_iter().map(|x| {
                        let file = x.node.span.file;
                        let at = origin::path_of(&x.node);
                        (x.node, file, at)
                    }));
                    continue;
                }
                Ok(_) => {}
                Err(_) => {
                    acc.diags.push(self.missing(&r, &path, "the configuration"));
                    continue;
                }
            }
            if let Some(d) = self.check_root(kd, &r, &path) {
                acc.diags.push(d);
                continue;
            }
            let loaded = match self.loader.load(&path) {
                Ok(l) => l,
                Err(e) => {
                    acc.diags.push(load_error(r.span, &e));
                    continue;
                }
            };
            acc.files.push(path);
            acc.diags.extend(loaded.diags.iter().cloned());
            let at = origin::join(&kd.origin, &r.text);
            docs.extend(
                loaded
                    .docs
                    .iter()
                    .map(|d| (d.root.clone(), loaded.file.id, Some(at.clone()))),
            );
        }
        let origin_on = self.origin_on.load(AtomicOrdering::Relaxed);
        for (root, file, at) in docs {
            if root.is_null() {
                continue;
            }
            // What a generator configuration makes names it as its origin.
            let config_origin = if generate && origin_on {
                let text = at.as_deref().and_then(|at| {
                    origin::of_generator(
                        at,
                        root.get("kind").and_then(Node::as_str).unwrap_or(""),
                        root.get_path(&["metadata", "name"]).and_then(Node::as_str),
                        root.get_path(&["metadata", "namespace"])
                            .and_then(Node::as_str),
                    )
                });
                if text.is_none() {
                    acc.diags.push(origin::unwritable(root.span.sub(0, 0)));
                    continue;
                }
                text
            } else {
                None
            };
            if generate && root.get("kind").and_then(Node::as_str) == Some("IAMPolicyGenerator") {
                self.iam_policy(&root, config_origin.as_deref(), acc);
                continue;
            }
            let Some(mut frag) = self.fragment(&root, generate, acc) else {
                continue;
            };
            frag.config_origin = config_origin;
            let fkd = KDir {
                kust: &frag,
                dir: kd.dir.clone(),
                root: kd.root.clone(),
                file,
                origin: kd.origin.clone(),
            };
            if generate {
                self.run_generators(&fkd, acc);
            } else if !self.transform(&fkd, &config::Config::default(), acc) {
                return;
            }
        }
    }

    /// The kustomization a configuration stands for, or its refusal.
    fn fragment(&self, root: &Node, generate: bool, acc: &mut Acc) -> Option<Kust> {
        let at = root.span.sub(0, 0);
        let api = root.get("apiVersion").and_then(Node::as_str).unwrap_or("");
        let kind = root.get("kind").and_then(Node::as_str).unwrap_or("");
        let kind_span = root.get("kind").map(|n| n.span).unwrap_or(at);
        if api != "builtin" {
            acc.diags.push(refuse(
                kind_span,
                format!("pbc does not implement the plugin `{kind}` (`{api}`)"),
                "pbc runs kustomize's built-in generators and transformers (`apiVersion: builtin`) only; plugins stay unsupported",
            ));
            return None;
        }
        let known: &[&str] = if generate { GENERATORS } else { TRANSFORMERS };
        if !known.contains(&kind) {
            acc.diags.push(refuse(
                kind_span,
                format!(
                    "pbc does not implement the built-in {} `{kind}` as a configuration",
                    if generate { "generator" } else { "transformer" }
                ),
                "write it as the kustomization field it configures, or build this tree with kustomize",
            ));
            return None;
        }
        let get = |k: &str| root.get(k).cloned();
        let span = root.span;
        let one = |k: &str, v: Node| vec![entry(k, span, Node::seq(span, vec![v]))];
        let fields: Vec<Entry> = match kind {
            "PatchTransformer" => {
                let keep: Vec<Entry> = root
                    .as_map()
                    .unwrap_or_default()
                    .iter()
                    .filter(|e| matches!(e.key_str(), "patch" | "path" | "target" | "options"))
                    .cloned()
                    .collect();
                one("patches", Node::map(span, keep))
            }
            "PatchJson6902Transformer" => {
                let mut keep: Vec<Entry> = Vec::new();
                for e in root.as_map().unwrap_or_default() {
                    match e.key_str() {
                        "target" | "path" => keep.push(e.clone()),
                        "jsonOp" => keep.push(entry("patch", e.key.span, e.value.clone())),
                        _ => {}
                    }
                }
                one("patchesJson6902", Node::map(span, keep))
            }
            "PatchStrategicMergeTransformer" => {
                let mut items: Vec<Node> = get("paths")
                    .and_then(|p| p.as_seq().map(<[Node]>::to_vec))
                    .unwrap_or_default();
                items.extend(get("patches"));
                vec![entry("patchesStrategicMerge", span, Node::seq(span, items))]
            }
            "PrefixSuffixTransformer" | "PrefixTransformer" | "SuffixTransformer" => {
                let Some(specs) = field_specs(root.get("fieldSpecs")) else {
                    acc.diags.push(Diagnostic::new(
                        &INVALID_KUSTOMIZATION,
                        kind_span,
                        format!("a `{kind}` needs `fieldSpecs`"),
                    ).with_help("kustomize fails on it too (`fieldSpecs is not expected to be nil`); give `fieldSpecs: [{path: metadata/name}]`"));
                    return None;
                };
                if specs.iter().any(|f| f.path != ["metadata", "name"]) {
                    acc.diags.push(refuse(
                        root.get("fieldSpecs").map(|n| n.span).unwrap_or(at),
                        format!("pbc does not implement a `{kind}` on fields other than `metadata/name`"),
                        "pbc renames resources (and follows the references to them); build this tree with kustomize to prefix other fields",
                    ));
                    return None;
                }
                let mut out = Vec::new();
                if kind != "SuffixTransformer" {
                    out.extend(get("prefix").map(|v| entry("namePrefix", span, v)));
                }
                if kind != "PrefixTransformer" {
                    out.extend(get("suffix").map(|v| entry("nameSuffix", span, v)));
                }
                let mut k = self.parse_fragment(root, out, acc)?;
                k.name_specs = Some(specs);
                if k.prefix.is_none() && k.suffix.is_none() {
                    // An empty prefix still records the resources' ids, as kustomize does.
                    k.prefix = Some(Node::string(span, ""));
                }
                return Some(k);
            }
            "LabelTransformer" | "AnnotationsTransformer" => {
                let (key, field) = if kind == "LabelTransformer" {
                    ("labels", "commonLabels")
                } else {
                    ("annotations", "commonAnnotations")
                };
                let specs = field_specs(root.get("fieldSpecs")).unwrap_or_default();
                let pairs = get(key).unwrap_or_else(|| Node::map(span, Vec::new()));
                let mut k = self.parse_fragment(root, vec![entry(field, span, pairs)], acc)?;
                let mut p = if kind == "LabelTransformer" {
                    k.labels.pop()
                } else {
                    k.annotations.take()
                }?;
                p.specs = kust::PairSpecs::Exact;
                p.fields = specs;
                k.labels.clear();
                k.annotations = Some(p);
                return Some(k);
            }
            "ReplacementTransformer" => {
                vec![entry(
                    "replacements",
                    span,
                    get("replacements").unwrap_or_else(|| Node::seq(span, Vec::new())),
                )]
            }
            _ => {
                // A generator: its arguments are the entry, its name and namespace default
                // to the configuration's own.
                let mut keep: Vec<Entry> = root
                    .as_map()
                    .unwrap_or_default()
                    .iter()
                    .filter(|e| {
                        // kustomize reads the generator's arguments leniently: other keys
                        // are ignored.
                        matches!(
                            e.key_str(),
                            "name"
                                | "namespace"
                                | "behavior"
                                | "literals"
                                | "files"
                                | "envs"
                                | "env"
                                | "options"
                        ) || (e.key_str() == "type" && kind == "SecretGenerator")
                    })
                    .cloned()
                    .collect();
                for k in ["name", "namespace"] {
                    if !keep.iter().any(|e| e.key_str() == k)
                        && let Some(v) = root.get_path(&["metadata", k])
                    {
                        keep.push(entry(k, v.span, v.clone()));
                    }
                }
                let field = if kind == "ConfigMapGenerator" {
                    "configMapGenerator"
                } else {
                    "secretGenerator"
                };
                one(field, Node::map(span, keep))
            }
        };
        self.parse_fragment(root, fields, acc)
    }

    /// kustomize's `IAMPolicyGenerator` (GKE): a service account annotated with the cloud
    /// service account it acts as.
    fn iam_policy(&self, root: &Node, config_origin: Option<&str>, acc: &mut Acc) {
        let at = root.get("kind").map(|n| n.span).unwrap_or(root.span);
        if root.get("apiVersion").and_then(Node::as_str) != Some("builtin") {
            // Refused by `fragment`.
            let _ = self.fragment(root, true, acc);
            return;
        }
        let get = |path: &[&str]| root.get_path(path).filter(|n| n.as_str().is_some());
        let cloud = root.get("cloud").and_then(Node::as_str).unwrap_or("");
        if cloud != "gke" {
            acc.diags.push(
                Diagnostic::new(
                    &INVALID_KUSTOMIZATION,
                    root.get("cloud").map(|n| n.span).unwrap_or(at),
                    format!("the IAMPolicyGenerator cloud `{cloud}` is not supported"),
                )
                .with_help("kustomize fails on it too: it generates for `cloud: gke` only"),
            );
            return;
        }
        // kustomize writes the values into a YAML text and reads it back: a value that YAML
        // would read as something other than a plain string is refused.
        let plain = |n: Option<&Node>| -> Option<(String, Span)> {
            let n = n?;
            let t = n.as_str()?;
            let ok = t.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
                && !matches!(t.to_ascii_lowercase().as_str(), "true" | "false" | "null");
            ok.then(|| (t.to_string(), n.span))
        };
        let name = get(&["kubernetesService", "name"]);
        let ns = get(&["kubernetesService", "namespace"]).filter(|n| n.as_str() != Some(""));
        let sa = get(&["serviceAccount", "name"]);
        let project = get(&["serviceAccount", "projectId"]);
        let (Some(name), Some(sa), Some(project)) = (plain(name), plain(sa), plain(project)) else {
            acc.diags.push(refuse(
                at,
                "pbc does not implement this IAMPolicyGenerator: its names must be plain names".into(),
                "give `kubernetesService.name`, `serviceAccount.name` and `serviceAccount.projectId` as plain names (letters, digits, `-`, `.`), or build this tree with kustomize",
            ));
            return;
        };
        let ns = match ns {
            None => None,
            Some(n) => match plain(Some(n)) {
                Some(v) => Some(v),
                None => {
                    acc.diags.push(refuse(
                        n.span,
                        "pbc does not implement this IAMPolicyGenerator: its namespace must be a plain name".into(),
                        "give the namespace as a plain name, or build this tree with kustomize",
                    ));
                    return;
                }
            },
        };
        let s = |text: &str, span: Span| Node::string(span, text.to_string());
        let mut md = vec![
            entry(
                "annotations",
                sa.1,
                Node::map(
                    sa.1,
                    vec![entry(
                        "iam.gke.io/gcp-service-account",
                        sa.1,
                        s(
                            &format!("{}@{}.iam.gserviceaccount.com", sa.0, project.0),
                            sa.1,
                        ),
                    )],
                ),
            ),
            entry("name", name.1, s(&name.0, name.1)),
        ];
        if let Some((text, span)) = ns {
            md.push(entry("namespace", span, s(&text, span)));
        }
        let node = Node::map(
            root.span,
            vec![
                entry("apiVersion", at, s("v1", at)),
                entry("kind", at, s("ServiceAccount", at)),
                entry("metadata", root.span, Node::map(root.span, md)),
            ],
        );
        let mut node = node;
        if let Some(t) = config_origin {
            origin::annotate(&mut node, t, root.span, true);
        }
        let nodes = node.count() as u64;
        let res = self.new_res(node, nodes);
        let id = res.cur();
        if acc.res.iter().any(|r| r.cur().equals(&id)) {
            acc.diags.push(Diagnostic::new(
                &DUPLICATE_RESOURCE,
                at,
                format!("{} is defined twice", id.describe()),
            ).with_help("kustomize fails on it too: a generated resource may not have the id of another"));
            return;
        }
        acc.res.push(res);
    }

    /// Reads the fields as a kustomization (without the deprecation warnings of the
    /// fields that stand for a configuration).
    fn parse_fragment(&self, root: &Node, fields: Vec<Entry>, acc: &mut Acc) -> Option<Kust> {
        let node = Node::map(root.span, fields);
        let mut diags = Vec::new();
        let k = kust::parse(&node, root.span.sub(0, 0), &mut diags);
        acc.diags.extend(
            diags
                .into_iter()
                .filter(|d| d.code.id != DEPRECATED_FIELD.id),
        );
        k
    }
}
