//! PB5002: a control of a superseded catalog edition (ISO/IEC 27001:2013), naming its
//! successors.

use super::ResolvedTag;
use crate::catalog::Catalogs;
use crate::tags::Resolved;
use pbc_compiler::declare_codes;
use pbc_compiler::diag::{Diagnostic, Edit};

declare_codes! {
    /// A compliance tag names a control of ISO/IEC 27001:2013, which 27001:2022 replaced.
    ///
    /// Certification against ISO/IEC 27001:2013 ended on 2025-10-31; audits now use the 2022
    /// Annex A. The tag still counts: in `pbc coverage` it claims each of its 2022 successors
    /// (shown `via A.x.y.z`), following the correspondence of ISO/IEC 27002:2022 Annex B.
    /// The warning names the successors so the tag can be replaced; with exactly one, its
    /// fix (an editor's code action) replaces it. One 2013 control may have
    /// several successors (`A.18.2.3` → `5.36` and `8.8`), and several 2013 controls may
    /// merge into one (`A.12.4.1`, `A.12.4.2`, `A.12.4.3` → `8.15`).
    ///
    /// ```yaml
    /// compliance:
    ///   - ISO27001-A.14.2.1    # 2022: ISO27001-8.25 (Secure development life cycle)
    /// ```
    ///
    /// The same applies to any catalog marked `superseded-by` another.
    PB5002 LEGACY_ISO2013 "legacy-iso2013" Warning "a control of the superseded ISO 27001:2013";
}

/// Reports every tag naming a control of a superseded catalog.
pub fn check(cats: &Catalogs, tags: &[ResolvedTag<'_>], diags: &mut Vec<Diagnostic>) {
    for t in tags {
        let Resolved::Control { catalog, control } = &t.resolved else {
            continue;
        };
        let Some(new_id) = &catalog.superseded_by else {
            continue;
        };
        let new_title = cats
            .get(new_id)
            .map(|c| c.title.clone())
            .unwrap_or_else(|| new_id.clone());
        let ended = if catalog.id == "iso27001-2013" {
            "; certification against it ended on 2025-10-31"
        } else {
            ""
        };
        let succ = cats.successors_of(catalog, &control.id);
        let help = match succ.as_slice() {
            [] => format!(
                "`{}` has no successor in {new_title}; choose the control the playbook supports there",
                control.id
            ),
            [(c, s)] => format!(
                "its successor in {}: `{}` ({}); replace the tag with it",
                c.title,
                c.tag(&s.id),
                s.name
            ),
            many => format!(
                "its successors in {new_title}: {}; replace the tag with those the playbook supports",
                many.iter()
                    .map(|(c, s)| format!("`{}` ({})", c.tag(&s.id), s.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut d = Diagnostic::new(
            &LEGACY_ISO2013,
            t.span,
            format!(
                "`{}` ({}) is a control of {}, which {new_title} replaces{ended}",
                t.text, control.name, catalog.title
            ),
        )
        .with_label_text("legacy control id")
        .with_help(help);
        // One successor: the fix writes it. Several: which of them the playbook supports is
        // for a person to say.
        if let [(c, s)] = succ.as_slice() {
            let tag = c.tag(&s.id);
            d = d.with_fix(
                format!("replace with `{tag}`"),
                vec![Edit {
                    span: t.span,
                    text: tag,
                }],
            );
        }
        diags.push(d);
    }
}
