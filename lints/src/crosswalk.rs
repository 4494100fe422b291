//! The SOC 2 ↔ ISO 27001:2022 crosswalk (`lints/rules/crosswalk.yaml`): which criteria and
//! controls cover the same ground. `pbc coverage` shows a control's covered partners as
//! related evidence (never as coverage) and `pbc explain CONTROL` lists them.

use crate::catalog::Catalogs;
use crate::data::Reader;
use crate::evidence::EVIDENCE_RULES_INVALID;
use crate::tags::{Resolved, resolve};
use pbc_compiler::diag::Diagnostic;
use std::sync::OnceLock;

/// A control: (catalog id, control id).
pub type ControlRef = (String, String);

/// The crosswalk: symmetric links between controls of two catalogs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Crosswalk {
    /// Each link once, as written (the SOC 2 criterion first).
    pub links: Vec<(ControlRef, ControlRef)>,
}

/// pbc's crosswalk file.
pub const BUILTIN_CROSSWALK: (&str, &str) = (
    "<builtin>/rules/crosswalk.yaml",
    include_str!("../rules/crosswalk.yaml"),
);

impl Crosswalk {
    /// The built-in crosswalk (parsed once per process).
    pub fn builtin() -> &'static Crosswalk {
        static CELL: OnceLock<Crosswalk> = OnceLock::new();
        CELL.get_or_init(|| {
            let (cw, diags) = Crosswalk::parse(Catalogs::builtin(), BUILTIN_CROSSWALK.1);
            // The embedded file is tested; a problem here is a bug in pbc, not in the input.
            assert!(
                diags.is_empty(),
                "the built-in crosswalk is invalid: {diags:?}"
            );
            cw
        })
    }

    /// Parses a crosswalk file's text: `links:` maps a tag to the list of tags linked to it;
    /// every tag must name a control of `cats`. Problems are diagnostics (under the evidence
    /// rules' code: the crosswalk is rule data of the same kind).
    pub fn parse(cats: &Catalogs, text: &str) -> (Crosswalk, Vec<Diagnostic>) {
        let loader = crate::catalog::builtin_loader();
        let mut diags = Vec::new();
        let mut cw = Crosswalk::default();
        let loaded = loader.load_text(BUILTIN_CROSSWALK.0, text);
        diags.extend(loaded.diags.iter().cloned());
        let Some(doc) = loaded.docs.first().filter(|_| !loaded.has_errors()) else {
            return (cw, diags);
        };
        let mut r = Reader::new(&EVIDENCE_RULES_INVALID, &mut diags);
        let Some(fields) = r.fields(&doc.root, "a crosswalk file", &["links"]) else {
            return (cw, diags);
        };
        for (_, v, _) in fields {
            let Some(entries) = v.as_map() else {
                r.error(
                    v.span,
                    format!("`links` must be a mapping, found {}", v.type_name()),
                );
                continue;
            };
            for e in entries {
                let from = control(&mut r, cats, e.key_str(), e.key.span);
                for (tag, span) in r
                    .text_list(&e.value, "a list of linked tags")
                    .unwrap_or_default()
                {
                    let to = control(&mut r, cats, &tag, span);
                    if let (Some(a), Some(b)) = (&from, to) {
                        if cw
                            .links
                            .iter()
                            .any(|(x, y)| (x == a && *y == b) || (*x == b && y == a))
                        {
                            r.error(
                                span,
                                format!("`{}` and `{tag}` are linked twice", e.key_str()),
                            );
                            continue;
                        }
                        cw.links.push((a.clone(), b));
                    }
                }
            }
        }
        (cw, diags)
    }

    /// The controls linked to a control, in catalog order (`cats`' order, then each
    /// catalog's).
    pub fn related(&self, cats: &Catalogs, catalog: &str, id: &str) -> Vec<ControlRef> {
        let mut out: Vec<ControlRef> = Vec::new();
        for (a, b) in &self.links {
            let other = if a.0 == catalog && a.1 == id {
                b
            } else if b.0 == catalog && b.1 == id {
                a
            } else {
                continue;
            };
            if !out.contains(other) {
                out.push(other.clone());
            }
        }
        let order = |c: &ControlRef| {
            cats.catalogs
                .iter()
                .position(|k| k.id == c.0)
                .map(|i| {
                    let j = cats.catalogs[i]
                        .controls
                        .iter()
                        .position(|x| x.id == c.1)
                        .unwrap_or(usize::MAX);
                    (i, j)
                })
                .unwrap_or((usize::MAX, usize::MAX))
        };
        out.sort_by_key(order);
        out
    }
}

fn control(
    r: &mut Reader<'_>,
    cats: &Catalogs,
    tag: &str,
    span: pbc_compiler::span::Span,
) -> Option<ControlRef> {
    match resolve(cats, tag) {
        Resolved::Control { catalog, control } => Some((catalog.id.clone(), control.id.clone())),
        _ => {
            r.error(
                span,
                format!("`{tag}` is not a control of any loaded catalog"),
            );
            None
        }
    }
}
