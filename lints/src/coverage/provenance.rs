//! What a coverage report was made from and by: the source commit and whether the input
//! differed from it, pbc's version, each catalog's edition and content hash, the hash of the
//! evidence rules, the deployment targets evidence was judged against, and the time, taken
//! only from `SOURCE_DATE_EPOCH` (never the clock: the same input gives the same report).
//!
//! The bundle's `coverage.json` leaves out the commit, the dirty flag and the time: the
//! bundle's manifest carries the source, so a bundle stays byte-identical across commits
//! that change no input.

use crate::Compliance;
use crate::catalog::Catalog;
use sha2::{Digest, Sha256};

/// The source commit of the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// `HEAD`'s commit, `None` outside a git checkout.
    pub commit: Option<String>,
    /// True if an input file differs from the commit (or is not in it).
    pub dirty: bool,
}

/// A catalog's version: its edition and the SHA-256 of its content in canonical form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogVersion {
    pub id: String,
    pub edition: String,
    pub sha256: String,
}

/// The provenance block of a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    /// `None`: not recorded (the bundle's copy; the manifest has it).
    pub source: Option<Source>,
    pub pbc_version: String,
    pub catalogs: Vec<CatalogVersion>,
    /// SHA-256 of the evidence rules in force (built-in and the organisation's), in
    /// canonical form.
    pub rule_set_sha256: String,
    /// `targets.emit`: the targets whose enforcement the evidence was judged against.
    pub targets: Vec<&'static str>,
    /// RFC 3339 UTC time from `SOURCE_DATE_EPOCH`; `None` when it is not set.
    pub generated_at: Option<String>,
}

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// One field of a canonical line: tabs and line breaks cannot occur inside it.
fn field(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

fn catalog_hash(c: &Catalog) -> String {
    let mut h = Sha256::new();
    h.update(format!(
        "{}\t{}\t{}\n",
        field(&c.id),
        field(&c.framework),
        field(&c.edition)
    ));
    for ctl in &c.controls {
        h.update(format!(
            "{}\t{}\t{}\n",
            field(&ctl.id),
            field(&ctl.name),
            field(ctl.group.as_deref().unwrap_or(""))
        ));
    }
    hex(h.finalize())
}

impl Provenance {
    /// The provenance a report's inputs determine (no source, no time: the caller adds
    /// them).
    pub fn of(comp: &Compliance, selected: &[&Catalog]) -> Provenance {
        let mut rules: Vec<_> = comp.rules.rules.iter().collect();
        rules.sort_by(|a, b| (&a.catalog, &a.control_id).cmp(&(&b.catalog, &b.control_id)));
        let mut h = Sha256::new();
        for r in rules {
            let req: Vec<&str> = r.requires.iter().map(|k| k.name()).collect();
            h.update(format!(
                "{}\t{}\t{}\t{}\n",
                field(&r.catalog),
                field(&r.control_id),
                req.join(","),
                field(&r.rationale)
            ));
        }
        Provenance {
            source: None,
            pbc_version: env!("CARGO_PKG_VERSION").to_string(),
            catalogs: selected
                .iter()
                .map(|c| CatalogVersion {
                    id: c.id.clone(),
                    edition: c.edition.clone(),
                    sha256: catalog_hash(c),
                })
                .collect(),
            rule_set_sha256: hex(h.finalize()),
            targets: comp.settings.targets.iter().map(|t| t.name()).collect(),
            generated_at: None,
        }
    }
}

/// The time `SOURCE_DATE_EPOCH` (seconds since 1970, UTC) names, as RFC 3339; `Ok(None)`
/// when it is unset or empty, `Err` when it is not a number of seconds.
pub fn source_date(value: Option<&str>) -> Result<Option<String>, String> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let secs: i64 = v.parse().map_err(|_| {
        format!("SOURCE_DATE_EPOCH must be a whole number of seconds since 1970-01-01, found `{v}`")
    })?;
    let t = chrono::DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| format!("SOURCE_DATE_EPOCH `{v}` is out of range"))?;
    Ok(Some(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn source_date() {
        assert_eq!(super::source_date(None), Ok(None));
        assert_eq!(super::source_date(Some("")), Ok(None));
        assert_eq!(
            super::source_date(Some("1700000000")),
            Ok(Some("2023-11-14T22:13:20Z".into()))
        );
        assert!(super::source_date(Some("yesterday")).is_err());
    }
}
