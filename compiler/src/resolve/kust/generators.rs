//! The generator fields of a kustomization: `configMapGenerator`, `secretGenerator` and
//! `generatorOptions`.

use super::*;

/// `generatorOptions`, or a generator's `options`.
#[derive(Clone, Debug, Default)]
pub(crate) struct GenOptions {
    pub labels: Vec<(Node, Node)>,
    pub annotations: Vec<(Node, Node)>,
    pub disable_hash: bool,
    pub immutable: bool,
}

impl GenOptions {
    /// kustomize's `MergeGlobalOptionsIntoLocal`: the local options, with the global
    /// labels and annotations they do not set, and either's flags.
    pub fn merged(local: Option<&GenOptions>, global: Option<&GenOptions>) -> GenOptions {
        let mut out = local.cloned().unwrap_or_default();
        if let Some(g) = global {
            for (k, v) in &g.labels {
                if !out.labels.iter().any(|(x, _)| x.as_str() == k.as_str()) {
                    out.labels.push((k.clone(), v.clone()));
                }
            }
            for (k, v) in &g.annotations {
                if !out
                    .annotations
                    .iter()
                    .any(|(x, _)| x.as_str() == k.as_str())
                {
                    out.annotations.push((k.clone(), v.clone()));
                }
            }
            out.disable_hash |= g.disable_hash;
            out.immutable |= g.immutable;
        }
        out
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GenKind {
    ConfigMap,
    Secret,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Behavior {
    Create,
    Merge,
    Replace,
}

/// One entry of `configMapGenerator` or `secretGenerator`.
#[derive(Clone, Debug)]
pub(crate) struct Generator {
    pub kind: GenKind,
    pub name: Option<Node>,
    pub namespace: Option<Node>,
    pub behavior: Behavior,
    pub literals: Vec<Node>,
    pub files: Vec<PathRef>,
    pub envs: Vec<PathRef>,
    pub options: Option<GenOptions>,
    /// A Secret's `type`.
    pub type_: Option<Node>,
    /// The entry.
    pub span: Span,
}

const FIELDS: &[&str] = &[
    "name",
    "namespace",
    "behavior",
    "literals",
    "files",
    "envs",
    "env",
    "options",
    "type",
];

pub(super) fn options(n: &Node, diags: &mut Vec<Diagnostic>) -> Option<GenOptions> {
    if n.is_null() {
        return None;
    }
    let Some(m) = n.as_map() else {
        diags.push(invalid(
            n.span,
            format!("generator options must be a mapping, not {}", n.type_name()),
        ));
        return None;
    };
    let mut o = GenOptions::default();
    for e in m {
        match e.key_str() {
            "labels" => {
                o.labels = pairs(&e.key, &e.value, "labels", diags)
                    .map(|p| p.pairs)
                    .unwrap_or_default();
            }
            "annotations" => {
                o.annotations = pairs(&e.key, &e.value, "annotations", diags)
                    .map(|p| p.pairs)
                    .unwrap_or_default();
            }
            "disableNameSuffixHash" => {
                o.disable_hash = bool_field(&e.value, "disableNameSuffixHash", diags);
            }
            "immutable" => o.immutable = bool_field(&e.value, "immutable", diags),
            other => unknown_key(
                &e.key,
                other,
                "generator options",
                &[
                    "labels",
                    "annotations",
                    "disableNameSuffixHash",
                    "immutable",
                ],
                diags,
            ),
        }
    }
    Some(o)
}

fn strings(n: &Node, what: &str, diags: &mut Vec<Diagnostic>) -> Vec<Node> {
    if n.is_null() {
        return Vec::new();
    }
    let Some(items) = n.as_seq() else {
        diags.push(invalid(
            n.span,
            format!("`{what}` must be a list of strings, not {}", n.type_name()),
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for it in items {
        match &it.value {
            Value::Scalar(s) if s.kind == ScalarKind::Str => out.push(it.clone()),
            _ => diags.push(invalid(
                it.span,
                format!(
                    "an entry of `{what}` must be a string, not {}",
                    it.type_name()
                ),
            )),
        }
    }
    out
}

fn path_ref(n: &Node) -> PathRef {
    PathRef {
        text: n.as_str().unwrap_or("").to_string(),
        span: n.span,
    }
}

pub(super) fn generators(
    n: &Node,
    kind: GenKind,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Generator> {
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
    let mut out = Vec::new();
    for it in items {
        let Some(m) = it.as_map() else {
            diags.push(invalid(
                it.span,
                format!(
                    "an entry of `{what}` must be a mapping, not {}",
                    it.type_name()
                ),
            ));
            continue;
        };
        let mut g = Generator {
            kind,
            name: None,
            namespace: None,
            behavior: Behavior::Create,
            literals: Vec::new(),
            files: Vec::new(),
            envs: Vec::new(),
            options: None,
            type_: None,
            span: it.span,
        };
        let mut env = None;
        for e in m {
            let v = &e.value;
            match e.key_str() {
                "name" => g.name = string_field(v, "name", diags),
                "namespace" => g.namespace = string_field(v, "namespace", diags),
                "behavior" => match v.as_str() {
                    None | Some("") | Some("create") => {}
                    Some("merge") => g.behavior = Behavior::Merge,
                    Some("replace") => g.behavior = Behavior::Replace,
                    Some(other) => diags.push(
                        invalid(v.span, format!("unknown generator behavior `{other}`"))
                            .with_help("use `create`, `merge` or `replace`"),
                    ),
                },
                "literals" => g.literals = strings(v, "literals", diags),
                "files" => g.files = strings(v, "files", diags).iter().map(path_ref).collect(),
                "envs" => g.envs = strings(v, "envs", diags).iter().map(path_ref).collect(),
                "env" => env = string_field(v, "env", diags).filter(|n| n.as_str() != Some("")),
                "options" => g.options = options(v, diags),
                "type" if kind == GenKind::Secret => g.type_ = string_field(v, "type", diags),
                other => unknown_key(&e.key, other, &format!("a `{what}` entry"), FIELDS, diags),
            }
        }
        // kustomize appends the deprecated `env` to `envs`.
        if let Some(e) = env {
            g.envs.push(path_ref(&e));
        }
        out.push(g);
    }
    out
}
