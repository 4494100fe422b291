//! PB5001: a compliance tag that names no control of any loaded catalog.

use super::ResolvedTag;
use crate::tags::Resolved;
use pbc_compiler::declare_codes;
use pbc_compiler::diag::{Diagnostic, Edit};

declare_codes! {
    /// A compliance tag names no control of any loaded catalog.
    ///
    /// A tag is a catalog's prefix followed by one of its control ids, matched exactly (ids,
    /// never names; case matters): `SOC2-<criterion>` (`SOC2-CC7.1`), `ISO27001-x.y` or
    /// `ISO27001:2022-x.y` for ISO/IEC 27001:2022 Annex A (`ISO27001-8.15`), and
    /// `ISO27001-A.x.y.z` for the legacy 2013 Annex A (`ISO27001-A.12.4.1`). Catalogs an
    /// organisation adds bring their own prefixes. A claim pbc cannot match would silently
    /// count for nothing in a coverage report, so it is an error.
    ///
    /// The help suggests the tag that was most likely meant (another letter case, another
    /// spelling of the prefix, the `A.` of 2013 ids) and lists the ids of the group the tag
    /// would belong to; with a suggestion, the fix (an editor's code action) writes it.
    ///
    /// ```yaml
    /// compliance:
    ///   - SOC2-CC7.9        # CC7 has CC7.1 to CC7.5
    ///   - ISO27002-8.15     # did you mean `ISO27001-8.15`?
    /// ```
    PB5001 UNKNOWN_CONTROL "unknown-control" Error "a compliance tag names no known control";
}

/// Reports every tag that resolves to nothing.
pub fn check(tags: &[ResolvedTag<'_>], diags: &mut Vec<Diagnostic>) {
    for t in tags {
        let Resolved::Unknown { suggestion, note } = &t.resolved else {
            continue;
        };
        let mut help = Vec::new();
        if let Some(s) = suggestion {
            help.push(format!("did you mean `{s}`?"));
        }
        if let Some(n) = note {
            help.push(n.clone());
        }
        if suggestion.is_none() && note.is_none() {
            help.push(
                "tags are `SOC2-<criterion>` (`SOC2-CC7.1`), `ISO27001-x.y` or `ISO27001:2022-x.y` (2022), `ISO27001-A.x.y.z` (2013)"
                    .to_string(),
            );
        }
        let mut d = Diagnostic::new(
            &UNKNOWN_CONTROL,
            t.span,
            format!("`{}` is not a control of any known catalog", t.text),
        )
        .with_label_text("unknown control")
        .with_help(help.join("; "));
        if let Some(s) = suggestion {
            d = d.with_fix(
                format!("replace with `{s}`"),
                vec![Edit {
                    span: t.span,
                    text: s.clone(),
                }],
            );
        }
        diags.push(d);
    }
}
