//! Refusals: inputs for which kustomize would do something pbc does not implement. Each is
//! an `unsupported-overlay-feature` error at the kustomization entry that needs the feature,
//! naming the field and the kind, so that pbc never builds something other than kustomize
//! does without saying so.

use super::UNSUPPORTED_OVERLAY;
use crate::diag::Diagnostic;
use crate::span::Span;
use crate::yaml::Node;

/// The refusal of a custom OpenAPI schema (`openapi.path`) that declares kinds other than
/// the Playbook: kustomize would merge their lists by the schema's merge keys (and stop
/// merging the built-in kinds' lists). pbc always merges Playbook stages by name, as if
/// the Playbook schema were given, so a schema for the Playbook alone changes nothing.
pub(crate) fn custom_schema(bytes: &[u8], entry: Span) -> Option<Diagnostic> {
    let text = String::from_utf8_lossy(bytes);
    let file = crate::span::SourceFile::new(
        crate::span::FileId(u32::MAX - 1),
        std::path::PathBuf::from("openapi"),
        text.as_ref().into(),
    );
    let mut diags = Vec::new();
    let docs = crate::yaml::parse(&file, &crate::yaml::Limits::default(), &mut diags);
    let refuse = |what: String| {
        Diagnostic::new(
            &UNSUPPORTED_OVERLAY,
            entry,
            format!("pbc does not implement a custom OpenAPI schema for {what}"),
        )
        .with_help("pbc merges Playbook stages by name and refuses merges that need another schema; remove `openapi`, or build this tree with kustomize")
    };
    let Some(defs) = docs
        .first()
        .and_then(|d| d.root.get("definitions"))
        .and_then(Node::as_map)
    else {
        return Some(refuse("this file (it has no `definitions`)".into()));
    };
    for d in defs {
        for g in d
            .value
            .get("x-kubernetes-group-version-kind")
            .and_then(Node::as_seq)
            .unwrap_or_default()
        {
            let get = |k: &str| g.get(k).and_then(Node::as_str).unwrap_or("");
            let (group, version, kind) = (get("group"), get("version"), get("kind"));
            if (group, version, kind) != ("agenticops", "v1", "Playbook") {
                let api = if group.is_empty() {
                    version.to_string()
                } else {
                    format!("{group}/{version}")
                };
                return Some(refuse(format!("the kind `{kind}` ({api})")));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_for_the_playbook_alone_is_accepted() {
        let ok = br#"{"definitions": {"p": {"x-kubernetes-group-version-kind": [{"group": "agenticops", "version": "v1", "kind": "Playbook"}]}}}"#;
        assert!(custom_schema(ok, Span::default()).is_none());
        let other = br#"{"definitions": {"c": {"x-kubernetes-group-version-kind": [{"group": "example.com", "version": "v1", "kind": "MyCRD"}]}}}"#;
        let d = custom_schema(other, Span::default()).expect("refused");
        assert!(
            d.message.contains("`MyCRD` (example.com/v1)"),
            "{}",
            d.message
        );
    }
}
