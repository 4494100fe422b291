//! Go to definition and find references: from a playbook to its stages, its overlays'
//! patches and bases, its roles in the configuration, and its output schemas.

use crate::convert::{Encoding, path_to_uri, range};
use crate::features::{At, Step, at, path_at, stage_ref, stages};
use crate::server::Server;
use lsp_types::{GotoDefinitionParams, GotoDefinitionResponse, Location, ReferenceParams};
use pbc_compiler::span::SourceFile;
use pbc_compiler::yaml::Node;

fn loc(f: &SourceFile, path: &std::path::Path, n: &Node, enc: Encoding) -> Option<Location> {
    Some(Location::new(
        path_to_uri(path)?,
        range(f, n.span.start, n.span.end, enc),
    ))
}

/// Go to definition: `needs` and `context` entries to their stage; a stage's `name` in an
/// overlay's patch to the base's stage; a `role` to its entry
/// in the configuration's `roles:`; `output-schema` and `input-schema` to the file.
pub fn definition(s: &Server, p: GotoDefinitionParams) -> Option<GotoDefinitionResponse> {
    let tp = p.text_document_position_params;
    let at = at(s, &tp.text_document.uri, tp.position)?;
    let root = &at.loaded.docs[at.doc].root;
    let steps = path_at(root, at.off);
    if let Some(name) = stage_ref(&steps).and_then(Node::as_str) {
        let on_name = matches!(steps.last(), Some(Step::Key(e, false)) if e.key_str() == "name");
        if on_name && let Some(pb) = root.get_path(&["metadata", "name"]).and_then(Node::as_str) {
            // An overlay's patch names a stage the base defines: go there.
            let others: Vec<Location> =
                s.ws.stage_elsewhere(&at.path, pb, name)
                    .into_iter()
                    .filter_map(|(p, l, sp)| {
                        Some(Location::new(
                            path_to_uri(&p)?,
                            range(&l.file, sp.start, sp.end, s.enc),
                        ))
                    })
                    .collect();
            if !others.is_empty() {
                return Some(GotoDefinitionResponse::Array(others));
            }
        }
        let (n, _) = stages(root)
            .into_iter()
            .find(|(n, _)| n.as_str() == Some(name))?;
        return loc(&at.loaded.file, &at.path, n, s.enc).map(GotoDefinitionResponse::Scalar);
    }
    if let Some(Step::Key(e, false)) = steps.last()
        && e.key_str() == "role"
        && let Some(role) = e.value.as_str()
        && let Some(cfg) = s.ws.config_path()
    {
        let (loaded, span) = crate::hover_refs::role_definition(&s.ws.loader, cfg, role)?;
        let uri = path_to_uri(cfg)?;
        let r = range(&loaded.file, span.start, span.end, s.enc);
        return Some(GotoDefinitionResponse::Scalar(Location::new(uri, r)));
    }
    if let Some(Step::Key(e, false)) = steps.last()
        && matches!(e.key_str(), "if" | "when")
        && let Some(r) = crate::hover_refs::reference_at(&at.loaded.file.text, at.off as usize)
    {
        // An output reference: the field in the output schema.
        let (path, loaded, span) =
            crate::hover_refs::output_field(&s.ws.loader, root, &at.path, r)?;
        let r = range(&loaded.file, span.start, span.end, s.enc);
        return Some(GotoDefinitionResponse::Scalar(Location::new(
            path_to_uri(&path)?,
            r,
        )));
    }
    if let Some(Step::Key(e, false)) = steps.last()
        && matches!(e.key_str(), "output-schema" | "input-schema")
    {
        let rel = e.value.as_str()?;
        let target = pbc_compiler::fs::normalize(&at.path.parent()?.join(rel));
        s.ws.loader.metadata(&target).ok()?;
        let uri = path_to_uri(&target)?;
        let zero = lsp_types::Range::default();
        return Some(GotoDefinitionResponse::Scalar(Location::new(uri, zero)));
    }
    None
}

/// The report (output) the cursor names: an `output-schema` value, or the `REPORT.` of a
/// reference in an `if` or `when`.
fn report_at(steps: &[Step<'_>], at: &At) -> Option<String> {
    match steps.last()? {
        Step::Key(e, false) if e.key_str() == "output-schema" => {
            Some(crate::hover_refs::stem(e.value.as_str()?).to_string())
        }
        Step::Key(e, false) if matches!(e.key_str(), "if" | "when") => {
            let r = crate::hover_refs::reference_at(&at.loaded.file.text, at.off as usize)?;
            Some(r.split_once('.')?.0.to_string())
        }
        _ => None,
    }
}

/// Find references of a stage (its name and every `needs` and `context` entry naming it),
/// or of an output (every reference to it in `when` and `if`).
pub fn references(s: &Server, p: ReferenceParams) -> Option<Vec<Location>> {
    let tp = p.text_document_position;
    let at = at(s, &tp.text_document.uri, tp.position)?;
    let root = &at.loaded.docs[at.doc].root;
    let steps = path_at(root, at.off);
    if let Some(report) = report_at(&steps, &at) {
        let uri = path_to_uri(&at.path)?;
        return Some(
            crate::hover_refs::output_uses(root, &at.loaded.file.text, &report)
                .into_iter()
                .map(|(a, b)| Location::new(uri.clone(), range(&at.loaded.file, a, b, s.enc)))
                .collect(),
        );
    }
    let name = stage_ref(&steps)?.as_str()?;
    let mut out = Vec::new();
    for (n, st) in stages(root) {
        if n.as_str() == Some(name) && p.context.include_declaration {
            out.extend(loc(&at.loaded.file, &at.path, n, s.enc));
        }
        for k in ["needs", "context"] {
            let Some(v) = st.get(k) else { continue };
            let items: &[Node] = v.as_seq().unwrap_or(std::slice::from_ref(v));
            for i in items.iter().filter(|i| i.as_str() == Some(name)) {
                out.extend(loc(&at.loaded.file, &at.path, i, s.enc));
            }
        }
    }
    Some(out)
}
