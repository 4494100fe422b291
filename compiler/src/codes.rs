//! The registry of every diagnostic code the compiler declares, for `pbc explain`, the
//! configuration and SARIF rules. Codes live next to the code that emits them; this module
//! only lists the modules.

use crate::declare_codes;
use crate::diag::Code;

declare_codes! {
    /// pbc itself failed: a bug, not a problem in your files.
    ///
    /// pbc caught a panic or reached a state it should not. The run stops with exit code 2.
    /// Please report it with the input that caused it; the message names what failed.
    PB9001 INTERNAL "internal-error" Error "pbc failed internally";
}

/// Every code declared in the compiler crate, sorted by id.
pub fn all() -> Vec<&'static Code> {
    let mut v: Vec<&'static Code> = [
        crate::yaml::CODES,
        crate::load::CODES,
        crate::config::CODES,
        crate::types::schema::CODES,
        crate::types::check::CODES,
        crate::sema::CODES,
        crate::model::CODES,
        crate::model::names::CODES,
        crate::resolve::CODES,
        crate::resolve::budget::CODES,
        crate::guard::CODES,
        crate::enforcement::CODES,
        crate::approval_rules::CODES,
        CODES,
    ]
    .into_iter()
    .flatten()
    .copied()
    .collect();
    v.sort_by_key(|c| c.id);
    v
}

/// The code with this id (case-insensitive).
pub fn lookup(id: &str) -> Option<&'static Code> {
    all().into_iter().find(|c| c.id.eq_ignore_ascii_case(id))
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_are_unique_well_formed_and_documented() {
        let all = super::all();
        let mut ids: Vec<&str> = all.iter().map(|c| c.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), all.len(), "duplicate code ids");
        for c in all {
            assert!(
                c.id.len() == 6
                    && c.id.starts_with("PB")
                    && c.id[2..].bytes().all(|b| b.is_ascii_digit()),
                "{}",
                c.id
            );
            assert!(c.doc.trim().len() > 20, "{} has no documentation", c.id);
        }
    }
}
