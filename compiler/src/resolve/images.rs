//! The `replicas` and `images` transformers, as kustomize's built-in ones.
//!
//! `replicas`: each entry sets `spec.replicas` (created if missing) of the Deployments,
//! ReplicationControllers, ReplicaSets and StatefulSets that have, or once had, its name;
//! naming none is an error.
//!
//! `images`: each entry rewrites the container images that match its `name` (kustomize's
//! pattern: the name, then an optional `:tag` and `@sha256:digest`), in two passes as
//! kustomize makes them: first every `containers`/`initContainers` list anywhere in the
//! resource, then the image field specs (pod specs and pod templates). A
//! CustomResourceDefinition is left alone.
//!
//! Provenance: a rewritten value keeps the span of the kustomization entry that set it.

use super::kust::{ImageSpec, ReplicaSpec};
use super::*;
use crate::yaml::Entry;

/// kustomize's `image.Split`: name, tag, digest.
fn split(image: &str) -> (&str, &str, &str) {
    let slash = image.find('/').filter(|i| *i > 0).unwrap_or(0);
    let search = &image[slash..];
    let id = search.find('@');
    let ic = search.find(':');
    match (id, ic) {
        (None, None) => (image, "", ""),
        (Some(d), c) if c.is_none_or(|c| d < c) => {
            let d = d + slash;
            (&image[..d], "", &image[d + 1..])
        }
        (Some(d), Some(c)) => {
            let (d, c) = (d + slash, c + slash);
            (&image[..c], &image[c + 1..d], &image[d + 1..])
        }
        (None, Some(c)) => {
            let c = c + slash;
            (&image[..c], &image[c + 1..], "")
        }
        (Some(_), None) => (image, "", ""),
    }
}

/// One `images` entry, ready to apply.
struct Rewrite<'a> {
    spec: &'a ImageSpec,
    pattern: Option<regex::Regex>,
}

impl Rewrite<'_> {
    fn text(n: &Option<Node>) -> &str {
        n.as_ref().and_then(Node::as_str).unwrap_or("")
    }

    /// The new value of an image, if the entry matches it.
    fn apply(&self, value: &str) -> Option<String> {
        if !self.pattern.as_ref()?.is_match(value) {
            return None;
        }
        let (name, tag, digest) = split(value);
        let s = self.spec;
        let (new_tag, new_digest, suffix) = (
            Self::text(&s.new_tag),
            Self::text(&s.digest),
            Self::text(&s.tag_suffix),
        );
        let mut name = name.to_string();
        if let Some(n) = s
            .new_name
            .as_ref()
            .and_then(Node::as_str)
            .filter(|n| !n.is_empty())
        {
            name = n.to_string();
        }
        let (tag, digest) = if !new_tag.is_empty() && !new_digest.is_empty() {
            (new_tag.to_string(), new_digest)
        } else if !new_tag.is_empty() {
            (new_tag.to_string(), "")
        } else if !new_digest.is_empty() {
            (String::new(), new_digest)
        } else if !suffix.is_empty() {
            (format!("{tag}{suffix}"), "")
        } else {
            (tag.to_string(), digest)
        };
        if !tag.is_empty() {
            name = format!("{name}:{tag}");
        }
        if !digest.is_empty() {
            name = format!("{name}@{digest}");
        }
        Some(name)
    }

    fn span(&self) -> Span {
        let s = self.spec;
        [&s.new_tag, &s.digest, &s.new_name, &s.tag_suffix]
            .into_iter()
            .flatten()
            .map(|n| n.span)
            .next()
            .unwrap_or(s.span)
    }

    /// Rewrites `n` (an image value) in place.
    fn set(&self, n: &mut Node) {
        if let Some(v) = n.as_str()
            && let Some(new) = self.apply(v)
        {
            *n = Node::string(self.span(), new);
        }
    }
}

fn child_mut<'a>(n: &'a mut Node, key: &str) -> Option<&'a mut Node> {
    n.as_map_mut()?
        .iter_mut()
        .find(|e| e.key_str() == key)
        .map(|e| &mut e.value)
}

/// kustomize's legacy image pass: every `containers`/`initContainers` list anywhere.
fn legacy(doc: &mut Node, rw: &Rewrite<'_>) {
    let mut stack: Vec<&mut Node> = vec![doc];
    while let Some(n) = stack.pop() {
        match &mut n.value {
            Value::Map(m) => {
                for e in m.iter_mut() {
                    let containers = matches!(e.key_str(), "containers" | "initContainers");
                    if containers && let Value::Seq(items) = &mut e.value.value {
                        for it in items.iter_mut() {
                            if let Some(img) = child_mut(it, "image") {
                                rw.set(img);
                            }
                        }
                    }
                    stack.push(&mut e.value);
                }
            }
            Value::Seq(items) => stack.extend(items.iter_mut()),
            Value::Scalar(_) => {}
        }
    }
}

const IMAGE_PATHS: [&[&str]; 4] = [
    &["spec", "containers"],
    &["spec", "initContainers"],
    &["spec", "template", "spec", "containers"],
    &["spec", "template", "spec", "initContainers"],
];

impl Ctx<'_> {
    pub(super) fn set_images(&self, specs: &[ImageSpec], acc: &mut Acc) {
        for spec in specs {
            let rw = Rewrite {
                spec,
                pattern: regex::Regex::new(&format!(
                    "^{}(:[a-zA-Z0-9_.{{}}-]*)?(@sha256:[a-zA-Z0-9_.{{}}-]*)?$",
                    spec.name
                ))
                .ok(),
            };
            acc.res.par_iter_mut().for_each(|r| {
                if r.cur().kind == "CustomResourceDefinition" {
                    return;
                }
                legacy(&mut r.node, &rw);
                for path in IMAGE_PATHS {
                    let mut n = Some(&mut r.node);
                    for k in path {
                        n = n.and_then(|n| child_mut(n, k));
                    }
                    if let Some(Value::Seq(items)) = n.map(|n| &mut n.value) {
                        for it in items.iter_mut() {
                            if let Some(img) = child_mut(it, "image") {
                                rw.set(img);
                            }
                        }
                    }
                }
            });
        }
    }

    pub(super) fn set_replicas(&self, specs: &[ReplicaSpec], acc: &mut Acc) {
        const KINDS: [&str; 4] = [
            "Deployment",
            "ReplicationController",
            "ReplicaSet",
            "StatefulSet",
        ];
        for spec in specs {
            let mut found = false;
            for kind in KINDS {
                for r in acc.res.iter_mut() {
                    let cur = r.cur();
                    let hit = r
                        .prev
                        .iter()
                        .chain(std::iter::once(&cur))
                        .any(|id| id.name == spec.name && id.kind == kind);
                    if !hit || cur.kind != kind {
                        continue;
                    }
                    found = true;
                    let span = spec.count.span;
                    let Some(m) = r.node.as_map_mut() else {
                        continue;
                    };
                    let i = match m.iter().position(|e| e.key_str() == "spec") {
                        Some(i) => i,
                        None => {
                            m.push(Entry {
                                key: Node::string(span, "spec"),
                                value: Node::map(span, Vec::new()),
                            });
                            m.len() - 1
                        }
                    };
                    if m[i].value.is_null() {
                        m[i].value = Node::map(span, Vec::new());
                    }
                    if let Some(sm) = m[i].value.as_map_mut() {
                        match sm.iter_mut().find(|e| e.key_str() == "replicas") {
                            Some(e) => e.value = spec.count.clone(),
                            None => sm.push(Entry {
                                key: Node::string(span, "replicas"),
                                value: spec.count.clone(),
                            }),
                        }
                    }
                }
            }
            if !found {
                acc.diags.push(
                    Diagnostic::new(
                        &INVALID_KUSTOMIZATION,
                        spec.span,
                        format!(
                            "no Deployment, ReplicationController, ReplicaSet or StatefulSet is named `{}`",
                            spec.name
                        ),
                    )
                    .with_help("kustomize fails on a `replicas` entry that names no such resource; check the name"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_split_as_kustomize() {
        assert_eq!(split("nginx"), ("nginx", "", ""));
        assert_eq!(split("nginx:1.7"), ("nginx", "1.7", ""));
        assert_eq!(split("localhost:5000/x:v1"), ("localhost:5000/x", "v1", ""));
        assert_eq!(split("a/b@sha256:abc"), ("a/b", "", "sha256:abc"));
        assert_eq!(split("a/b:t@sha256:abc"), ("a/b", "t", "sha256:abc"));
    }

    /// kubectl fails on an unquoted numeric tag ("cannot unmarshal number into ... newTag");
    /// so does pbc, and it sets the tag and the replicas of a quoted one.
    #[test]
    fn a_numeric_tag_fails_and_a_quoted_one_is_set() {
        use super::super::{ResolveOptions, resolve};
        let build = |tag: &str| {
            let mut fs = crate::fs::MemFs::new();
            fs.insert(
                "o/kustomization.yaml",
                format!("resources: [d.yaml]\nimages:\n- name: nginx\n  newTag: {tag}\nreplicas:\n- name: d\n  count: 3\n"),
            );
            fs.insert(
                "o/d.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: nginx}]\n",
            );
            let l = crate::load::Loader::new(
                std::sync::Arc::new(fs),
                "",
                crate::yaml::Limits::default(),
            );
            resolve(&l, std::path::Path::new("o"), &ResolveOptions::default()).expect("resolves")
        };
        let r = build("1.20");
        assert!(
            r.diags
                .iter()
                .any(|d| d.code.name == "invalid-kustomization"),
            "{:?}",
            r.diags
        );
        let r = build("'1.20'");
        assert!(r.diags.is_empty(), "{:?}", r.diags);
        let j = r.docs[0].to_json();
        assert_eq!(
            j["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.20"
        );
        assert_eq!(j["spec"]["replicas"], 3);
    }
}
