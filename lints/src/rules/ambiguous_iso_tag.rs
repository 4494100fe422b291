//! PB5003: `ISO27001-A.x.y`, which is a 2013 control objective or 2022 numbering written with
//! an `A.`: it does not say which control is claimed.

use super::ResolvedTag;
use crate::tags::Resolved;
use pbc_compiler::declare_codes;
use pbc_compiler::diag::Diagnostic;

declare_codes! {
    /// `ISO27001-A.x.y` does not name one control.
    ///
    /// In ISO/IEC 27001:2013, `A.x.y` is a control *objective* (`A.12.4` Logging and
    /// monitoring), which groups several controls (`A.12.4.1` to `A.12.4.4`); it is not a
    /// control. ISO/IEC 27001:2022 numbers its Annex A controls `A.5.1` to `A.8.34`, but
    /// pbc's 2022 tags leave the `A.` out (`ISO27001-8.15`, or `ISO27001:2022-8.15`), so
    /// that the two editions can never be confused. A tag `ISO27001-A.5.1` could mean the
    /// 2013 objective or the 2022 control 5.1, so it is an error.
    ///
    /// The help lists the 2022 control the tag may mean, and the 2013 controls of the
    /// objective.
    ///
    /// ```yaml
    /// compliance:
    ///   - ISO27001-A.8.15   # write `ISO27001-8.15` (2022 Logging)
    ///   - ISO27001-A.12.4   # a 2013 objective: name `ISO27001-A.12.4.1`, …
    /// ```
    PB5003 AMBIGUOUS_ISO_TAG "ambiguous-iso-tag" Error "an ISO 27001 tag that names an objective, not a control";
}

/// Reports every ambiguous `A.x.y` tag.
pub fn check(tags: &[ResolvedTag<'_>], diags: &mut Vec<Diagnostic>) {
    for t in tags {
        let Resolved::Ambiguous { objective, current } = &t.resolved else {
            continue;
        };
        let mut help = Vec::new();
        if let Some((cat, c)) = current {
            help.push(format!(
                "for {} write `{}` ({})",
                cat.title,
                cat.tag(&c.id),
                c.name
            ));
        }
        let message = match objective {
            Some(o) => {
                let list: Vec<String> = o
                    .controls
                    .iter()
                    .map(|c| format!("`{}` ({})", o.catalog.tag(&c.id), c.name))
                    .collect();
                help.push(format!(
                    "for {} name a control of objective {}: {}",
                    o.catalog.title,
                    o.id,
                    list.join(", ")
                ));
                let title = o
                    .name
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                if current.is_some() {
                    format!(
                        "`{}` is ambiguous: {} is a {} control objective{title}, not a control, and 2022 tags are written without `A.`",
                        t.text, o.id, o.catalog.edition
                    )
                } else {
                    format!(
                        "`{}` names {} control objective {}{title}, not a control",
                        t.text, o.catalog.title, o.id
                    )
                }
            }
            None => format!(
                "`{}` is ambiguous: 2022 tags are written without `A.`, and `A.x.y` reads as a 2013 control objective",
                t.text
            ),
        };
        diags.push(
            Diagnostic::new(&AMBIGUOUS_ISO_TAG, t.span, message)
                .with_label_text("which control?")
                .with_help(help.join("; ")),
        );
    }
}
