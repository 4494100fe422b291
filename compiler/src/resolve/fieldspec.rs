//! kustomize's built-in field specs and kinds: where its transformers write labels,
//! annotations and namespaces, which fields refer to other resources by name, and which
//! resource types are built in (and namespaced). The data is kustomize's own, copied into
//! `data/` with its source and version, and read once, when first needed.

use crate::span::{FileId, SourceFile, Span};
use crate::yaml::{Entry, Limits, Node, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

const FIELDSPECS: &str = include_str!("data/fieldspecs.yaml");
const BUILTIN_KINDS: &str = include_str!("data/builtin-kinds.txt");

/// Where a transformer writes, for the resources a group/version/kind selects.
#[derive(Clone, Debug, Default)]
pub(crate) struct FieldSpec {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    /// The path's fields as kustomize writes them (`a/b[]/c`: a field marked `[]` is a list,
    /// never created; lists are walked into either way).
    pub path: Vec<String>,
    pub create: bool,
}

impl FieldSpec {
    /// Whether the spec applies to a resource of this group, version and kind (a field the
    /// spec leaves out matches anything).
    pub fn selects(&self, group: &str, version: &str, kind: &str) -> bool {
        self.group.as_deref().is_none_or(|g| g == group)
            && self.version.as_deref().is_none_or(|v| v == version)
            && self.kind.as_deref().is_none_or(|k| k == kind)
    }

    #[cfg(test)]
    pub fn path_text(&self) -> String {
        self.path
            .iter()
            .map(|p| p.trim_end_matches("[]"))
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// A kind whose name other resources refer to, and the fields that do.
#[derive(Clone, Debug, Default)]
pub(crate) struct NameRef {
    pub target: FieldSpec,
    pub referrers: Vec<FieldSpec>,
}

#[derive(Debug, Default)]
pub(crate) struct Specs {
    /// `commonLabels` (and `labels` with `includeSelectors`): selectors, templates, metadata.
    pub common_labels: Vec<FieldSpec>,
    /// `labels` with `includeTemplates`: metadata and pod templates.
    pub template_labels: Vec<FieldSpec>,
    pub common_annotations: Vec<FieldSpec>,
    /// `namespace`, beyond `metadata.namespace`.
    pub namespace: Vec<FieldSpec>,
    pub name_reference: Vec<NameRef>,
}

/// The built-in resource types (a small text, read apart from the field specs: the scope of
/// a kind is needed by every build, the field specs only by some).
#[derive(Debug, Default)]
struct Kinds {
    /// `apiVersion kind` → namespaced.
    builtin: HashMap<(String, String), bool>,
    /// The cluster-scoped ones: group, version, kind.
    cluster: Vec<(String, String, String)>,
}

fn kinds() -> &'static Kinds {
    static KINDS: OnceLock<Kinds> = OnceLock::new();
    KINDS.get_or_init(|| {
        let mut s = Kinds::default();
        for line in BUILTIN_KINDS.lines() {
            if line.starts_with('#') {
                continue;
            }
            let mut it = line.split_whitespace();
            if let (Some(a), Some(k), Some(scope)) = (it.next(), it.next(), it.next()) {
                s.builtin
                    .insert((a.to_string(), k.to_string()), scope == "namespaced");
                if scope != "namespaced" {
                    let (g, v) = a.split_once('/').unwrap_or(("", a));
                    s.cluster
                        .push((g.to_string(), v.to_string(), k.to_string()));
                }
            }
        }
        s
    })
}

/// The kinds other resources refer to by name (kustomize's name-reference targets), read
/// from the field specs' text without parsing them: most builds rename none of them.
pub(crate) fn name_reference_kinds() -> &'static [String] {
    static KINDS: OnceLock<Vec<String>> = OnceLock::new();
    KINDS.get_or_init(|| {
        let section = FIELDSPECS
            .split_once("\nnameReference:")
            .map(|(_, rest)| rest)
            .unwrap_or("");
        section
            .lines()
            .filter_map(|l| l.strip_prefix("- kind: "))
            .map(|k| k.trim().to_string())
            .collect()
    })
}

fn string(n: &Node) -> Option<String> {
    n.as_scalar().map(|s| s.text.to_string())
}

pub(crate) fn spec_of(m: &[Entry]) -> FieldSpec {
    let mut f = FieldSpec::default();
    for e in m {
        match e.key_str() {
            "group" => f.group = string(&e.value),
            "version" => f.version = string(&e.value),
            "kind" => f.kind = string(&e.value),
            "create" => f.create = string(&e.value).as_deref() == Some("true"),
            "path" => {
                f.path = string(&e.value)
                    .unwrap_or_default()
                    .split('/')
                    .map(str::to_string)
                    .collect()
            }
            _ => {}
        }
    }
    f
}

fn spec_list(n: &Node) -> Vec<FieldSpec> {
    n.as_seq()
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i.as_map().map(spec_of))
        .collect()
}

fn load() -> Specs {
    let file = SourceFile::new(
        FileId(u32::MAX),
        PathBuf::from("fieldspecs.yaml"),
        FIELDSPECS.into(),
    );
    let mut diags = Vec::new();
    let docs = crate::yaml::parse(&file, &Limits::default(), &mut diags);
    let mut s = Specs::default();
    for d in &docs {
        for e in d.root.as_map().unwrap_or_default() {
            match e.key_str() {
                "commonLabels" => s.common_labels = spec_list(&e.value),
                "templateLabels" => s.template_labels = spec_list(&e.value),
                "commonAnnotations" => s.common_annotations = spec_list(&e.value),
                "namespace" => s.namespace = spec_list(&e.value),
                "nameReference" => {
                    for t in e.value.as_seq().unwrap_or_default() {
                        let Some(m) = t.as_map() else { continue };
                        s.name_reference.push(NameRef {
                            target: spec_of(m),
                            referrers: t.get("fieldSpecs").map(spec_list).unwrap_or_default(),
                        });
                    }
                }
                _ => {}
            }
        }
    }
    s
}

/// kustomize's field specs, read on first use.
pub(crate) fn specs() -> &'static Specs {
    static SPECS: OnceLock<Specs> = OnceLock::new();
    SPECS.get_or_init(load)
}

/// Whether `apiVersion`/`kind` is a resource type of kustomize's built-in Kubernetes schema,
/// and if so whether it is namespaced.
#[cfg(test)]
pub(crate) fn builtin_scope(api_version: &str, kind: &str) -> Option<bool> {
    kinds()
        .builtin
        .get(&(api_version.to_string(), kind.to_string()))
        .copied()
}

/// Whether group/version/kind is a cluster-scoped built-in type (kustomize's
/// `IsClusterScoped`: anything it does not know, a custom `Namespace` kind included, is
/// namespaced).
pub(crate) fn cluster_scoped(group: &str, version: &str, kind: &str) -> bool {
    kinds()
        .cluster
        .iter()
        .any(|(g, v, k)| k == kind && v == version && g == group)
}

/// Writes `pairs` into the mapping at `path` of `node` (kustomize's field spec filter):
/// lists on the way are walked into, each element in turn; a missing mapping is created
/// (with `span`) only when `create` is set, and lists never are. Values are written as
/// strings. Returns whether anything was written.
pub(crate) fn set_pairs_at(
    node: &mut Node,
    path: &[String],
    create: bool,
    pairs: &[(Node, Node)],
    span: Span,
) -> bool {
    if let Some(items) = seq_mut(node) {
        let mut any = false;
        for it in items {
            any |= set_pairs_at(it, path, create, pairs, span);
        }
        return any;
    }
    let Some((first, rest)) = path.split_first() else {
        if node.is_null() && create {
            *node = Node::map(span, Vec::new());
        }
        let Some(m) = node.as_map_mut() else {
            return false;
        };
        for (k, v) in pairs {
            let key = k.as_scalar().map(|s| s.text.as_str()).unwrap_or("");
            let value = match v.as_scalar() {
                Some(s) if v.as_str().is_none() => Node::string(v.span, s.text.as_str()),
                _ => v.clone(),
            };
            match m.iter_mut().find(|e| e.key_str() == key) {
                Some(e) => e.value = value,
                None => m.push(Entry {
                    key: k.clone(),
                    value,
                }),
            }
        }
        return true;
    };
    let Some(m) = node.as_map_mut() else {
        return false;
    };
    let (first, create_here) = match first.strip_suffix("[]") {
        Some(f) => (f, false),
        None => (first.as_str(), create),
    };
    let i = match m.iter().position(|e| e.key_str() == first) {
        Some(i) => i,
        None if create_here => {
            m.push(Entry {
                key: Node::string(span, first),
                value: Node::map(span, Vec::new()),
            });
            m.len() - 1
        }
        None => return false,
    };
    let child = &mut m[i].value;
    if child.is_null() {
        if !create_here {
            return false;
        }
        *child = Node::map(span, Vec::new());
    }
    set_pairs_at(child, rest, create, pairs, span)
}

/// The field specs a transformer of pairs writes through when a `labels` entry has `fields`
/// or the kustomization has `configurations` (kustomize's label transformer configuration);
/// `None` when kustomize's built-in ones are meant.
pub(crate) fn custom_pair_specs(
    p: &super::kust::Pairs,
    config: &super::config::Config,
) -> Result<Option<Vec<FieldSpec>>, Box<crate::diag::Diagnostic>> {
    use super::config::{merge_all, merge_one};
    use super::kust::PairSpecs;
    if p.specs == PairSpecs::Exact {
        return Ok(Some(p.fields.clone()));
    }
    if p.fields.is_empty() && config.is_empty() {
        return Ok(None);
    }
    let at = p.field_span;
    let s = specs();
    let mut out = p.fields.clone();
    if p.entry {
        merge_all(&mut out, &config.labels, at)?;
    }
    match p.specs {
        PairSpecs::Selectors => {
            merge_all(&mut out, &s.common_labels, at)?;
            merge_all(&mut out, &config.common_labels, at)?;
        }
        PairSpecs::Annotations => {
            merge_all(&mut out, &s.common_annotations, at)?;
            merge_all(&mut out, &config.common_annotations, at)?;
        }
        PairSpecs::Exact => {}
        PairSpecs::Templates | PairSpecs::Metadata => {
            if p.specs == PairSpecs::Templates {
                merge_all(&mut out, &s.template_labels, at)?;
                merge_all(&mut out, &config.template_labels, at)?;
            }
            let metadata = FieldSpec {
                path: vec!["metadata".into(), "labels".into()],
                create: true,
                ..FieldSpec::default()
            };
            merge_one(&mut out, &metadata, at)?;
        }
    }
    Ok(Some(out))
}

/// Writes a transformer's pairs (labels or annotations) into a resource through its field
/// specs: kustomize's built-in ones, or `custom` (from [`custom_pair_specs`]).
pub(crate) fn apply_pairs(doc: &mut Node, p: &super::kust::Pairs, custom: Option<&[FieldSpec]>) {
    use super::kust::PairSpecs;
    let metadata_labels;
    let list: &[FieldSpec] = match (custom, p.specs) {
        (Some(c), _) => c,
        (None, PairSpecs::Metadata) => {
            // The common case, without reading the field specs.
            metadata_labels = [FieldSpec {
                path: vec!["metadata".into(), "labels".into()],
                create: true,
                ..FieldSpec::default()
            }];
            &metadata_labels
        }
        (None, PairSpecs::Templates) => &specs().template_labels,
        (None, PairSpecs::Selectors) => &specs().common_labels,
        (None, PairSpecs::Annotations) => &specs().common_annotations,
        (None, PairSpecs::Exact) => &p.fields,
    };
    let id = super::ResId::of(doc);
    for f in list {
        if f.selects(&id.group, &id.version, &id.kind) {
            set_pairs_at(doc, &f.path, f.create, &p.pairs, p.field_span);
        }
    }
}

/// The namespace transformer beyond `metadata.namespace` and a `Namespace`'s name: the
/// namespace field specs (an `APIService`'s service, a CRD's conversion webhook), and the
/// subjects named `default` of a `RoleBinding` or `ClusterRoleBinding`.
pub(crate) fn namespace_fields(doc: &mut Node, id: &super::ResId, ns: &Node, text: &str) {
    let key = Node::string(ns.span, "namespace");
    let pair = [(key, Node::string(ns.span, text))];
    for f in &specs().namespace {
        if f.path.first().map(String::as_str) == Some("metadata")
            || !f.selects(&id.group, &id.version, &id.kind)
        {
            continue;
        }
        if let Some((_, parent)) = f.path.split_last() {
            set_pairs_at(doc, parent, f.create, &pair, ns.span);
        }
    }
    if matches!(id.kind.as_str(), "RoleBinding" | "ClusterRoleBinding")
        && let Some(m) = doc.as_map_mut()
        && let Some(e) = m.iter_mut().find(|e| e.key_str() == "subjects")
        && let Some(items) = seq_mut(&mut e.value)
    {
        for s in items {
            if s.get("name").and_then(Node::as_str) == Some("default") {
                set_pairs_at(s, &[], true, &pair, ns.span);
            }
        }
    }
}

fn seq_mut(n: &mut Node) -> Option<&mut Vec<Node>> {
    match &mut n.value {
        Value::Seq(items) => Some(&mut **items),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copied_field_specs_are_read() {
        let s = specs();
        assert!(s.common_labels.len() > 20, "{}", s.common_labels.len());
        assert!(s.template_labels.len() >= 10);
        assert!(s.common_annotations.len() >= 9);
        assert!(s.namespace.len() >= 3);
        assert!(s.name_reference.len() >= 15);
        assert!(
            s.common_labels
                .iter()
                .any(|f| f.kind.as_deref() == Some("Deployment")
                    && f.path_text() == "spec.selector.matchLabels")
        );
        assert_eq!(builtin_scope("v1", "Namespace"), Some(false));
        assert_eq!(builtin_scope("apps/v1", "Deployment"), Some(true));
        assert_eq!(builtin_scope("example.com/v1", "Namespace"), None);
        assert!(cluster_scoped(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole"
        ));
        assert!(!cluster_scoped("example.com", "v1", "Namespace"));
        let kinds = name_reference_kinds();
        for k in ["ConfigMap", "Secret", "ServiceAccount", "Role", "Service"] {
            assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
        }
        assert_eq!(
            kinds.len(),
            s.name_reference.len(),
            "the text scan and the parse agree"
        );
    }
}

#[cfg(test)]
mod set_tests {
    use super::*;

    fn node(text: &str) -> Node {
        let file = SourceFile::new(FileId(0), "t.yaml".into(), text.into());
        let mut diags = Vec::new();
        let docs = crate::yaml::parse(&file, &Limits::default(), &mut diags);
        docs.into_iter()
            .next()
            .map(|d| d.root)
            .unwrap_or(Node::null(Span::default()))
    }

    fn path(p: &str) -> Vec<String> {
        p.split('/').map(str::to_string).collect()
    }

    #[test]
    fn pairs_go_into_each_list_element_and_lists_are_never_created() {
        let pair = [(
            Node::string(Span::default(), "team"),
            Node::string(Span::default(), "sre"),
        )];
        let mut n = node(
            "spec:\n  volumeClaimTemplates:\n    - metadata: {name: a}\n    - metadata: {name: b}\n",
        );
        let spec = path("spec/volumeClaimTemplates[]/metadata/labels");
        assert!(set_pairs_at(&mut n, &spec, true, &pair, Span::default()));
        let json = n.to_json();
        assert_eq!(
            json["spec"]["volumeClaimTemplates"][1]["metadata"]["labels"]["team"],
            "sre"
        );
        let mut bare = node("spec: {replicas: 1}\n");
        assert!(!set_pairs_at(
            &mut bare,
            &spec,
            true,
            &pair,
            Span::default()
        ));
        assert!(bare.to_json()["spec"].get("volumeClaimTemplates").is_none());
        // Without `create`, a missing selector stays missing.
        let mut job = node("spec: {template: {}}\n");
        assert!(!set_pairs_at(
            &mut job,
            &path("spec/selector/matchLabels"),
            false,
            &pair,
            Span::default()
        ));
        assert!(job.to_json()["spec"].get("selector").is_none());
    }
}
