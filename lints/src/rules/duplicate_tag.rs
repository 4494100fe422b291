//! PB5004: the same control claimed twice in one list.

use super::ResolvedTag;
use crate::tags::Resolved;
use pbc_compiler::declare_codes;
use pbc_compiler::diag::Diagnostic;
use pbc_compiler::span::Span;

declare_codes! {
    /// The same control is claimed twice in one `compliance` list.
    ///
    /// Either the tag is repeated, or two spellings name the same control
    /// (`ISO27001-8.15` and `ISO27001:2022-8.15`). The second claim adds nothing; remove it.
    /// A stage may claim a control that its playbook also claims: that is not a duplicate.
    ///
    /// ```yaml
    /// compliance:
    ///   - ISO27001-8.15
    ///   - ISO27001:2022-8.15    # the same control as the first
    /// ```
    PB5004 DUPLICATE_TAG "duplicate-tag" Warning "a control is claimed twice in one list";
}

/// Reports each repeated claim at its place, with a label at the first.
pub fn check(tags: &[ResolvedTag<'_>], diags: &mut Vec<Diagnostic>) {
    let mut seen: Vec<((String, String), &str, Span)> = Vec::new();
    for t in tags {
        let key = match &t.resolved {
            Resolved::Control { catalog, control } => (catalog.id.clone(), control.id.clone()),
            _ => (String::new(), t.text.to_string()),
        };
        if let Some((_, first_text, first_span)) = seen.iter().find(|(k, _, _)| *k == key) {
            let message = if *first_text == t.text {
                format!("`{}` is listed twice", t.text)
            } else {
                format!("`{}` claims the same control as `{first_text}`", t.text)
            };
            diags.push(
                Diagnostic::new(&DUPLICATE_TAG, t.span, message)
                    .with_label_text("claimed again here")
                    .with_label(*first_span, "first claimed here")
                    .with_help("remove the second claim"),
            );
        } else {
            seen.push((key, t.text, t.span));
        }
    }
}
