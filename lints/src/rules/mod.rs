//! The compliance lints, one rule per file. Tag rules look at one list of control tags (a
//! playbook's `metadata.compliance`, or a stage's `compliance`); the evidence rule looks at
//! the claims and the playbook's facts.

pub mod ambiguous_iso_tag;
pub mod duplicate_tag;
pub mod legacy_iso2013;
pub mod missing_evidence;
pub mod unknown_control;

use crate::catalog::Catalogs;
use crate::facts::Spanned;
use crate::tags::{Resolved, resolve};
use pbc_compiler::diag::{Code, Diagnostic};
use pbc_compiler::span::Span;

/// A tag with what it resolved to.
#[derive(Clone, Debug)]
pub struct ResolvedTag<'a> {
    pub text: &'a str,
    pub span: Span,
    pub resolved: Resolved<'a>,
}

/// Resolves a list of tags.
pub fn resolve_all<'a>(cats: &'a Catalogs, tags: &'a [Spanned<String>]) -> Vec<ResolvedTag<'a>> {
    tags.iter()
        .map(|t| ResolvedTag {
            text: &t.value,
            span: t.span,
            resolved: resolve(cats, &t.value),
        })
        .collect()
}

/// Runs every tag rule on one list of tags.
pub fn lint_tags(cats: &Catalogs, tags: &[Spanned<String>], diags: &mut Vec<Diagnostic>) {
    let resolved = resolve_all(cats, tags);
    unknown_control::check(&resolved, diags);
    ambiguous_iso_tag::check(&resolved, diags);
    legacy_iso2013::check(cats, &resolved, diags);
    duplicate_tag::check(&resolved, diags);
}

/// Every code the compliance lints and data files declare, sorted by id.
pub fn codes() -> Vec<&'static Code> {
    let mut v: Vec<&'static Code> = [
        unknown_control::CODES,
        legacy_iso2013::CODES,
        ambiguous_iso_tag::CODES,
        duplicate_tag::CODES,
        missing_evidence::CODES,
        crate::catalog::CODES,
        crate::evidence::CODES,
    ]
    .into_iter()
    .flatten()
    .copied()
    .collect();
    v.sort_by_key(|c| c.id);
    v
}
