//! `buildMetadata: [originAnnotations]`: the `config.kubernetes.io/origin` annotation kustomize
//! writes on every resource, naming the file it was read from (relative to the directory
//! built), or the generator configuration that made it.
//!
//! As in kustomize, the top kustomization's `buildMetadata` holds for the whole build (the
//! others' are ignored); origins are tracked while building when it lists anything, and
//! written out only when it lists `originAnnotations`. Without it, kustomize removes every
//! origin (and transformations) annotation at the end, whoever wrote it; pbc does the same.
//! `transformerAnnotations` and `managedByLabel` are refused.

use super::*;

pub(super) const ORIGIN: &str = "config.kubernetes.io/origin";
const TRANSFORMATIONS: &str = "alpha.config.kubernetes.io/transformations";

/// Go's `filepath.Join`: the parts joined, and cleaned lexically.
pub(super) fn join(a: &str, b: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let abs = a.starts_with('/') || (a.is_empty() && b.starts_with('/'));
    for part in a.split('/').chain(b.split('/')) {
        match part {
            "" | "." => {}
            ".." => match out.last() {
                Some(&l) if l != ".." => {
                    out.pop();
                }
                _ if abs => {}
                _ => out.push(".."),
            },
            p => out.push(p),
        }
    }
    let body = out.join("/");
    match (abs, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

/// Whether YAML writes the text as it is (a plain scalar that reads back as this string).
fn plain(t: &str) -> bool {
    !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/".contains(c))
        && t.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || "._/".contains(c))
        && !matches!(
            t.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        )
        && t.parse::<f64>().is_err()
}

/// The annotation of a resource read from `path`.
pub(super) fn of_path(path: &str) -> Option<String> {
    plain(path).then(|| format!("path: {path}\n"))
}

/// The annotation of a resource a built-in generator made: configured in `file`, by the
/// generator `kind` (with the configuration's name and namespace, if it has them).
pub(super) fn of_generator(
    file: &str,
    kind: &str,
    name: Option<&str>,
    namespace: Option<&str>,
) -> Option<String> {
    let mut s =
        format!("configuredIn: {file}\nconfiguredBy:\n  apiVersion: builtin\n  kind: {kind}\n");
    if !plain(file) {
        return None;
    }
    for (k, v) in [("name", name), ("namespace", namespace)] {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            if !plain(v) {
                return None;
            }
            s.push_str(&format!("  {k}: {v}\n"));
        }
    }
    Some(s)
}

/// The origin path an origin annotation names (`path: …`).
pub(super) fn path_of(node: &Node) -> Option<String> {
    let text = node
        .get_path(&["metadata", "annotations", ORIGIN])
        .and_then(Node::as_str)?;
    text.strip_prefix("path: ")
        .map(|p| p.trim_end_matches('\n').to_string())
}

/// Writes the annotation (over any other value, as kustomize's `AnnotateAll`); `keep`
/// leaves one already there.
pub(super) fn annotate(doc: &mut Node, text: &str, span: Span, keep: bool) {
    if keep && doc.get_path(&["metadata", "annotations", ORIGIN]).is_some() {
        return;
    }
    let Some(md) = metadata_mut(doc, span) else {
        return;
    };
    let Some(m) = md.as_map_mut() else { return };
    let i = match m.iter().position(|e| e.key_str() == "annotations") {
        Some(i) => i,
        None => {
            m.push(crate::yaml::Entry {
                key: Node::string(span, "annotations"),
                value: Node::map(span, Vec::new()),
            });
            m.len() - 1
        }
    };
    let a = &mut m[i].value;
    if a.is_null() {
        *a = Node::map(span, Vec::new());
    }
    set_entry(a, Node::string(span, ORIGIN), Node::string(span, text));
}

/// The refusal of an origin pbc cannot write as kustomize does.
pub(super) fn unwritable(at: Span) -> Diagnostic {
    Diagnostic::new(
        &UNSUPPORTED_FIELD,
        at,
        "pbc does not implement an origin annotation for this path or name",
    )
    .with_help("pbc writes origins of plain paths and names (letters, digits, `-`, `.`, `_`, `/`); rename it, or build this tree with kustomize")
}

/// The end of a build: the annotations kustomize removes when the top kustomization does
/// not ask for them.
pub(super) fn finish(res: &mut [Res], keep_origin: bool) {
    for r in res {
        let Some(a) = r
            .node
            .as_map_mut()
            .and_then(|m| m.iter_mut().find(|e| e.key_str() == "metadata"))
            .and_then(|e| e.value.as_map_mut())
            .and_then(|m| m.iter_mut().find(|e| e.key_str() == "annotations"))
            .and_then(|e| e.value.as_map_mut())
        else {
            continue;
        };
        a.retain(|e| e.key_str() != TRANSFORMATIONS && (keep_origin || e.key_str() != ORIGIN));
    }
}

impl Ctx<'_> {
    /// Reads the top kustomization's `buildMetadata`, which holds for the whole build.
    pub(super) fn top_build_metadata(&self, k: &Kust, acc: &mut accumulate::Acc) {
        use std::sync::atomic::Ordering;
        if k.build_metadata.is_empty() {
            return;
        }
        self.origin_on.store(true, Ordering::Relaxed);
        for n in &k.build_metadata {
            match n.as_str() {
                Some("originAnnotations") => self.keep_origin.store(true, Ordering::Relaxed),
                Some(o @ ("transformerAnnotations" | "managedByLabel")) => acc.diags.push(
                    Diagnostic::new(
                        &UNSUPPORTED_FIELD,
                        n.span,
                        format!("pbc does not implement the build metadata `{o}`"),
                    )
                    .with_help("pbc writes `originAnnotations` only; remove this option, or build this tree with kustomize"),
                ),
                _ => {}
            }
        }
    }

    /// The file name of the kustomization, joined to its origin path.
    pub(super) fn kust_origin(&self, kd: &KDir<'_>) -> String {
        let name = self
            .loader
            .sources
            .get(kd.file)
            .and_then(|f| f.path.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "kustomization.yaml".into());
        join(&kd.origin, &name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_as_go_joins_them() {
        assert_eq!(join("", "service.yaml"), "service.yaml");
        assert_eq!(join("../base", "service.yaml"), "../base/service.yaml");
        assert_eq!(join("../base", "../other/x.yaml"), "../other/x.yaml");
        assert_eq!(join("a/./b", "./c"), "a/b/c");
        assert_eq!(join("", "../../x"), "../../x");
        assert_eq!(
            of_generator(
                "kustomization.yaml",
                "ConfigMapGenerator",
                Some("gen"),
                None
            )
            .as_deref(),
            Some(
                "configuredIn: kustomization.yaml\nconfiguredBy:\n  apiVersion: builtin\n  kind: ConfigMapGenerator\n  name: gen\n"
            )
        );
        assert!(of_path("a b.yaml").is_none());
        assert!(of_path("true").is_none());
    }
}
