//! Code actions: each finding's fix, and its suppression with `# pbc:allow(CODE)`.

use crate::convert::uri_to_path;
use crate::server::Server;
use lsp_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionParams, Range, WorkspaceEdit,
};
use std::collections::HashMap;

fn overlaps(a: &Range, b: &Range) -> bool {
    a.start <= b.end && b.start <= a.end
}

/// The actions for the findings whose range meets the requested one.
#[allow(clippy::mutable_key_type)] // `Uri` hashes its text only
pub fn code_actions(s: &Server, p: CodeActionParams) -> Vec<CodeActionOrCommand> {
    let mut out = Vec::new();
    let Some(path) = uri_to_path(&p.text_document.uri) else {
        return out;
    };
    let Some(findings) = s.ws.files.get(&path) else {
        return out;
    };
    let uri = p.text_document.uri;
    let mut fixes = Vec::new();
    let mut suppressions = Vec::new();
    for f in findings
        .iter()
        .filter(|f| overlaps(&f.diag.range, &p.range))
    {
        if let Some((title, edit)) = &f.fix {
            fixes.push(CodeAction {
                title: title.clone(),
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![f.diag.clone()]),
                edit: Some(edit.clone()),
                is_preferred: Some(true),
                ..Default::default()
            });
        }
        let title = if pbc_compiler::guard::needs_reason(f.code.id) {
            format!(
                "suppress {} with `# pbc:allow({}): <reason>`",
                f.code.id, f.code.id
            )
        } else {
            format!("suppress {} with `# pbc:allow({})`", f.code.id, f.code.id)
        };
        if suppressions.iter().any(|c: &CodeAction| {
            c.title == title && c.edit.as_ref().is_some_and(|e| same_line(e, &f.suppress))
        }) {
            continue;
        }
        let mut changes = HashMap::new();
        changes.insert(uri.clone(), vec![f.suppress.clone()]);
        suppressions.push(CodeAction {
            title,
            kind: Some(CodeActionKind::QUICKFIX),
            diagnostics: Some(vec![f.diag.clone()]),
            edit: Some(WorkspaceEdit::new(changes)),
            ..Default::default()
        });
    }
    out.extend(fixes.into_iter().map(CodeActionOrCommand::CodeAction));
    out.extend(
        suppressions
            .into_iter()
            .map(CodeActionOrCommand::CodeAction),
    );
    out
}

/// Whether an edit already inserts the same suppression line.
fn same_line(e: &WorkspaceEdit, t: &lsp_types::TextEdit) -> bool {
    e.changes
        .as_ref()
        .is_some_and(|c| c.values().flatten().any(|x| x == t))
}
