//! Reading a `kustomization.yaml` (Kustomization or Component) into a typed form, every
//! value keeping its span. Unknown fields get a did-you-mean; kustomize fields pbc does not
//! implement are "unsupported"; deprecated ones warn as kustomize does.

use super::select::{LabelSelector, Pattern};
use super::{DEPRECATED_FIELD, INVALID_KUSTOMIZATION, UNKNOWN_FIELD, UNSUPPORTED_FIELD};
use crate::diag::{Diagnostic, Edit, did_you_mean, one_of};
use crate::span::Span;
use crate::yaml::{Node, ScalarKind, Value};

mod generators;
mod images;
mod labels;
mod patches;
mod replacements;
mod sort;
pub(crate) use generators::{Behavior, GenKind, GenOptions, Generator};
pub(crate) use images::{ImageSpec, ReplicaSpec};
use labels::pairs;
use patches::patch_list;
pub(crate) use replacements::{FieldOptions, ReplEntry, Replacement, ResSel, replacement};
use sort::sort_options;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KustKind {
    Kustomization,
    Component,
}

/// A path (or URL) written in a kustomization, with its span.
#[derive(Clone, Debug)]
pub(crate) struct PathRef {
    pub text: String,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub(crate) enum PatchSource {
    /// An inline patch: the scalar holding its text.
    Inline(Node),
    Path(PathRef),
}

/// Which kustomization field a patch came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatchField {
    Patches,
    StrategicMerge,
    Json6902,
}

#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub group: Pattern,
    pub version: Pattern,
    pub kind: Pattern,
    pub name: Pattern,
    pub namespace: Pattern,
    pub labels: Option<LabelSelector>,
    pub annotations: Option<LabelSelector>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub(crate) struct PatchSpec {
    pub source: PatchSource,
    pub target: Option<Target>,
    /// The entry in the patch list.
    pub span: Span,
    pub field: PatchField,
    pub allow_name_change: bool,
    pub allow_kind_change: bool,
}

/// Key/value pairs a transformer writes (labels, annotations), with the span of the field.
#[derive(Clone, Debug)]
pub(crate) struct Pairs {
    pub pairs: Vec<(Node, Node)>,
    pub field_span: Span,
    /// Where kustomize writes them.
    pub specs: PairSpecs,
    /// A `labels` entry's own field specs (`fields`), with the span of the entry.
    pub fields: Vec<super::fieldspec::FieldSpec>,
    /// Whether the pairs are a `labels` entry (which the `labels` field specs of
    /// `configurations` extend), not `commonLabels` or `commonAnnotations`.
    pub entry: bool,
}

/// The field specs a transformer of key/value pairs writes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PairSpecs {
    /// `metadata.labels` only (`labels` without `includeSelectors`/`includeTemplates`).
    Metadata,
    /// Metadata and pod templates (`labels` with `includeTemplates`).
    Templates,
    /// Metadata, templates and selectors (`commonLabels`, `labels` with `includeSelectors`).
    Selectors,
    /// `commonAnnotations`: metadata and pod templates.
    Annotations,
    /// Exactly the pairs' own `fields` (a `LabelTransformer` or `AnnotationsTransformer`
    /// configuration's field specs).
    Exact,
}

#[derive(Clone, Debug)]
pub(crate) struct SortSpec {
    pub fifo: bool,
    /// `legacySortOptions`: (orderFirst, orderLast); `None` for kustomize's defaults.
    pub legacy: Option<(Vec<String>, Vec<String>)>,
}

#[derive(Clone, Debug)]
pub(crate) struct Kust {
    pub kind: KustKind,
    pub resources: Vec<PathRef>,
    pub components: Vec<PathRef>,
    pub patches_sm: Vec<PatchSpec>,
    pub patches: Vec<PatchSpec>,
    pub patches_json: Vec<PatchSpec>,
    pub namespace: Option<Node>,
    pub prefix: Option<Node>,
    pub suffix: Option<Node>,
    /// `labels` entries then `commonLabels`, in the order kustomize applies them.
    pub labels: Vec<Pairs>,
    pub annotations: Option<Pairs>,
    pub openapi: Option<PathRef>,
    /// `openapi.version` is given (the built-in schema, set for the whole build).
    pub openapi_version: bool,
    pub sort: Option<SortSpec>,
    /// `configMapGenerator` entries, then `secretGenerator` entries (kustomize's order).
    pub generators: Vec<Generator>,
    pub gen_options: Option<GenOptions>,
    pub images: Vec<ImageSpec>,
    pub replicas: Vec<ReplicaSpec>,
    pub replacements: Vec<ReplEntry>,
    /// `configurations`: files of custom field specs.
    pub configurations: Vec<PathRef>,
    /// `generators` and `transformers`: built-in generator and transformer configurations,
    /// inline (the scalar) or files.
    pub generator_configs: Vec<Node>,
    pub transformer_configs: Vec<Node>,
    /// The field specs a `PrefixSuffixTransformer` configuration renames through (all
    /// `metadata/name`); `None` for `namePrefix`/`nameSuffix` (every resource).
    pub name_specs: Option<Vec<super::fieldspec::FieldSpec>>,
    /// `buildMetadata`: its options (only the top kustomization's count).
    pub build_metadata: Vec<Node>,
    /// For a generator configuration: the origin annotation of what it generates.
    pub config_origin: Option<String>,
}

/// Fields pbc implements.
const KNOWN: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "openapi",
    "namePrefix",
    "nameSuffix",
    "namespace",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "patchesStrategicMerge",
    "patchesJson6902",
    "patches",
    "sortOptions",
    "resources",
    "components",
    "bases",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "images",
    "imageTags",
    "replicas",
    "replacements",
    "configurations",
    "generators",
    "transformers",
    "buildMetadata",
];

/// Kustomize fields pbc does not implement.
const UNSUPPORTED: &[&str] = &[
    "vars",
    "crds",
    "helmGlobals",
    "helmCharts",
    "helmChartInflationGenerator",
    "validators",
];

fn invalid(span: Span, msg: impl Into<String>) -> Diagnostic {
    Diagnostic::new(&INVALID_KUSTOMIZATION, span, msg)
}

pub(super) fn unknown_key(
    key: &Node,
    field: &str,
    where_: &str,
    known: &[&str],
    diags: &mut Vec<Diagnostic>,
) {
    let mut d = Diagnostic::new(
        &UNKNOWN_FIELD,
        key.span,
        format!("unknown field `{field}` in {where_}"),
    );
    if let Some(s) = did_you_mean(field, known.iter().copied()) {
        d = d.with_help(format!("did you mean `{s}`?")).with_fix(
            format!("rename to `{s}`"),
            vec![Edit {
                span: key.span,
                text: s.to_string(),
            }],
        );
    } else {
        d = d.with_help(format!("expected one of {}", one_of(known)));
    }
    diags.push(d);
}

fn as_string(n: &Node) -> Option<String> {
    match &n.value {
        Value::Scalar(s) if s.kind != ScalarKind::Null => Some(s.text.as_str().to_owned()),
        _ => None,
    }
}

fn string_field(n: &Node, what: &str, diags: &mut Vec<Diagnostic>) -> Option<Node> {
    match &n.value {
        Value::Scalar(s) if s.kind == ScalarKind::Str => Some(n.clone()),
        Value::Scalar(s) if s.kind == ScalarKind::Null => None,
        _ => {
            diags.push(invalid(
                n.span,
                format!("`{what}` must be a string, not {}", n.type_name()),
            ));
            None
        }
    }
}

fn path_list(n: &Node, what: &str, diags: &mut Vec<Diagnostic>) -> Vec<PathRef> {
    if n.is_null() {
        return Vec::new();
    }
    let Some(items) = n.as_seq() else {
        diags.push(invalid(
            n.span,
            format!("`{what}` must be a list of paths, not {}", n.type_name()),
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for it in items {
        match as_string(it) {
            Some(text) if it.as_scalar().is_some() => out.push(PathRef {
                text,
                span: it.span,
            }),
            _ => diags.push(invalid(
                it.span,
                format!(
                    "an entry of `{what}` must be a path, not {}",
                    it.type_name()
                ),
            )),
        }
    }
    out
}

/// `generators` or `transformers`: each entry a path or an inline configuration (a string).
fn config_list(n: &Node, what: &str, diags: &mut Vec<Diagnostic>) -> Vec<Node> {
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
        if it.as_str().is_some() {
            out.push(it.clone());
        } else {
            diags.push(invalid(
                it.span,
                format!(
                    "an entry of `{what}` must be a path or an inline configuration, not {}",
                    it.type_name()
                ),
            ));
        }
    }
    out
}

pub(super) fn bool_field(n: &Node, what: &str, diags: &mut Vec<Diagnostic>) -> bool {
    match &n.value {
        Value::Scalar(s) if s.kind == ScalarKind::Bool => s.text.eq_ignore_ascii_case("true"),
        Value::Scalar(s) if s.kind == ScalarKind::Null => false,
        _ => {
            diags.push(invalid(
                n.span,
                format!("`{what}` must be `true` or `false`, not {}", n.type_name()),
            ));
            false
        }
    }
}

fn deprecated(key: &Node, field: &str, use_: &str, fix: Option<Edit>, diags: &mut Vec<Diagnostic>) {
    let mut d = Diagnostic::new(
        &DEPRECATED_FIELD,
        key.span,
        format!("`{field}` is deprecated; use `{use_}` instead"),
    )
    .with_help(format!(
        "kustomize prints the same warning; `kustomize edit fix` rewrites it as `{use_}`"
    ));
    if let Some(e) = fix {
        d = d.with_fix(format!("rename to `{use_}`"), vec![e]);
    }
    diags.push(d);
}

/// Reads a kustomization document.
pub(crate) fn parse(root: &Node, file_span: Span, diags: &mut Vec<Diagnostic>) -> Option<Kust> {
    let Some(m) = root.as_map() else {
        if root.is_null() {
            diags.push(
                invalid(file_span, "the kustomization is empty")
                    .with_help("list the files and directories to build under `resources:`"),
            );
        } else {
            diags.push(invalid(
                root.span,
                format!(
                    "a kustomization must be a mapping, not {}",
                    root.type_name()
                ),
            ));
        }
        return None;
    };
    let mut k = Kust {
        kind: KustKind::Kustomization,
        resources: Vec::new(),
        components: Vec::new(),
        patches_sm: Vec::new(),
        patches: Vec::new(),
        patches_json: Vec::new(),
        namespace: None,
        prefix: None,
        suffix: None,
        labels: Vec::new(),
        annotations: None,
        openapi: None,
        openapi_version: false,
        sort: None,
        generators: Vec::new(),
        gen_options: None,
        images: Vec::new(),
        replicas: Vec::new(),
        replacements: Vec::new(),
        configurations: Vec::new(),
        generator_configs: Vec::new(),
        transformer_configs: Vec::new(),
        name_specs: None,
        build_metadata: Vec::new(),
        config_origin: None,
    };
    let mut image_tags = Vec::new();
    let mut secrets = Vec::new();
    let mut api_version = None;
    let mut common_labels = None;
    let has_resources = m.iter().any(|e| e.key_str() == "resources");
    let mut substantive = false;
    for e in m {
        let key = e.key_str();
        let v = &e.value;
        if !matches!(key, "apiVersion" | "kind" | "metadata") {
            substantive = true;
        }
        match key {
            "apiVersion" => api_version = Some(v),
            "metadata" => {}
            "kind" => match v.as_str() {
                Some("Kustomization") => {}
                Some("Component") => k.kind = KustKind::Component,
                _ => diags.push(
                    invalid(v.span, "`kind` must be `Kustomization` or `Component`")
                        .with_help("omit `kind` for a plain kustomization"),
                ),
            },
            "resources" => k.resources.extend(path_list(v, "resources", diags)),
            "bases" => {
                let fix = (!has_resources).then(|| Edit {
                    span: e.key.span,
                    text: "resources".into(),
                });
                deprecated(&e.key, "bases", "resources", fix, diags);
                k.resources.extend(path_list(v, "bases", diags));
            }
            "components" => k.components = path_list(v, "components", diags),
            "patches" => k.patches = patch_list(v, PatchField::Patches, "patches", diags),
            "patchesStrategicMerge" => {
                deprecated(&e.key, "patchesStrategicMerge", "patches", None, diags);
                k.patches_sm = patch_list(v, PatchField::StrategicMerge, "patchesStrategicMerge", diags);
            }
            "patchesJson6902" => {
                deprecated(&e.key, "patchesJson6902", "patches", None, diags);
                k.patches_json = patch_list(v, PatchField::Json6902, "patchesJson6902", diags);
            }
            "namespace" => k.namespace = string_field(v, "namespace", diags),
            "namePrefix" => k.prefix = string_field(v, "namePrefix", diags),
            "nameSuffix" => k.suffix = string_field(v, "nameSuffix", diags),
            "commonLabels" => {
                deprecated(&e.key, "commonLabels", "labels", None, diags);
                common_labels = pairs(&e.key, v, "commonLabels", diags).map(|mut p| {
                    p.specs = PairSpecs::Selectors;
                    p
                });
            }
            "commonAnnotations" => {
                k.annotations = pairs(&e.key, v, "commonAnnotations", diags).map(|mut p| {
                    p.specs = PairSpecs::Annotations;
                    p
                })
            }
            "labels" => k.labels.extend(labels::labels(v, diags)),
            "configurations" => k.configurations = path_list(v, "configurations", diags),
            "buildMetadata" => k.build_metadata = config_list(v, key, diags),
            "generators" => k.generator_configs = config_list(v, key, diags),
            "transformers" => k.transformer_configs = config_list(v, key, diags),
            "openapi" => {
                if let Some(om) = v.as_map() {
                    // kustomize v5.5.0 builds in one schema, v1.21.2 (its default); it
                    // refuses any other version, and a version with a path.
                    if let Some(ver) = om.iter().find(|e| e.key_str() == "version") {
                        k.openapi_version = !as_string(&ver.value).unwrap_or_default().is_empty();
                        let text = as_string(&ver.value).unwrap_or_default();
                        if om.iter().any(|e| e.key_str() == "path") {
                            diags.push(invalid(ver.key.span, "`openapi` takes a `version` or a `path`, not both"));
                        } else if !text.is_empty() && text != "v1.21.2" {
                            diags.push(
                                invalid(ver.value.span, format!("the OpenAPI version `{text}` is not built in"))
                                    .with_help("kustomize builds in the Kubernetes schema v1.21.2 only; use it, or give a schema file as `path`"),
                            );
                        }
                    }
                    if let Some(p) = om.iter().find(|e| e.key_str() == "path")
                        && let Some(text) = as_string(&p.value)
                    {
                        k.openapi = Some(PathRef {
                            text,
                            span: p.value.span,
                        });
                    }
                } else if !v.is_null() {
                    diags.push(invalid(v.span, "`openapi` must be a mapping such as `{path: schema.json}`"));
                }
            }
            "sortOptions" => k.sort = sort_options(v, diags),
            "configMapGenerator" => {
                k.generators = generators::generators(v, GenKind::ConfigMap, key, diags);
            }
            "secretGenerator" => secrets = generators::generators(v, GenKind::Secret, key, diags),
            "generatorOptions" => k.gen_options = generators::options(v, diags),
            "images" => k.images = images::images(v, key, diags),
            "imageTags" => {
                deprecated(&e.key, "imageTags", "images", None, diags);
                image_tags = images::images(v, key, diags);
            }
            "replicas" => k.replicas = images::replicas(v, diags),
            "replacements" => k.replacements = replacements::entries(v, diags),
            // kustomize deprecates `vars`; pbc implements their successor only.
            "vars" => diags.push(
                Diagnostic::new(
                    &UNSUPPORTED_FIELD,
                    e.key.span,
                    "`vars` is deprecated in kustomize, and pbc does not implement it",
                )
                .with_help(
                    "write each var as a replacement: `replacements:` with a `source` (the var's `objref` and `fieldref.fieldpath`) and `targets` (the fields that use `$(VAR)`)",
                ),
            ),
            other if UNSUPPORTED.contains(&other) => diags.push(
                Diagnostic::new(
                    &UNSUPPORTED_FIELD,
                    e.key.span,
                    format!("pbc does not implement the kustomize field `{other}`"),
                )
                .with_help(
                    "pbc resolves resources, components, generators, patches, names, namespaces, labels, annotations, images, replicas, replacements and sort options itself; remove the field, or build this tree with kustomize",
                ),
            ),
            other => {
                let mut all: Vec<&str> = KNOWN.to_vec();
                all.extend_from_slice(UNSUPPORTED);
                unknown_key(&e.key, other, "a kustomization", &all, diags);
            }
        }
    }
    if let Some(c) = common_labels {
        k.labels.push(c);
    }
    k.generators.extend(secrets);
    k.images.extend(image_tags);
    // kustomize's `EnforceFields`: a Component is `v1alpha1`, a Kustomization `v1beta1`.
    if let Some(v) = api_version
        && let Some(text) = v.as_str().filter(|t| !t.is_empty())
    {
        let (kind, want) = match k.kind {
            KustKind::Component => ("Component", "kustomize.config.k8s.io/v1alpha1"),
            KustKind::Kustomization => ("Kustomization", "kustomize.config.k8s.io/v1beta1"),
        };
        if text != want {
            diags.push(
                invalid(
                    v.span,
                    format!("the apiVersion of a {kind} must be `{want}`"),
                )
                .with_help("kustomize refuses any other apiVersion; write it, or omit `apiVersion`")
                .with_fix(
                    format!("use `{want}`"),
                    vec![Edit {
                        span: v.span,
                        text: want.to_string(),
                    }],
                ),
            );
        }
    }
    if !substantive {
        diags.push(
            invalid(root.span, "the kustomization is empty")
                .with_help("list the files and directories to build under `resources:`"),
        );
    }
    Some(k)
}
