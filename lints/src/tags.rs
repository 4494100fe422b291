//! Control tags: `SOC2-<criterion>`, `ISO27001-A.x.y.z` (2013 Annex A),
//! `ISO27001-x.y` or `ISO27001:2022-x.y` (2022 Annex A), and the prefixes of any catalog an
//! organisation adds. A tag is a catalog's prefix followed by one of its control ids, matched
//! exactly: ids, never names.

use crate::catalog::{Catalog, Catalogs, Control};
use pbc_compiler::span::Span;

/// What a tag names.
#[derive(Clone, Debug)]
pub enum Resolved<'a> {
    /// A control of a catalog.
    Control {
        catalog: &'a Catalog,
        control: &'a Control,
    },
    /// `ISO27001-A.x.y`: a 2013 control objective (not a control), or 2022 Annex A numbering
    /// written with the `A.` that 2022 tags leave out. Either way it does not say which
    /// control is meant.
    Ambiguous {
        /// The 2013 objective and its controls, if `A.x.y` is one.
        objective: Option<Objective<'a>>,
        /// The 2022 control `x.y`, if it exists.
        current: Option<(&'a Catalog, &'a Control)>,
    },
    /// Not a control of any loaded catalog.
    Unknown {
        /// The closest valid tag, when one is clearly meant.
        suggestion: Option<String>,
        /// A short note on the valid ids near it (`SOC2 CC7 has CC7.1 to CC7.5`).
        note: Option<String>,
    },
}

/// A control objective of a catalog that has them (ISO 27001:2013).
#[derive(Clone, Debug)]
pub struct Objective<'a> {
    pub catalog: &'a Catalog,
    pub id: String,
    pub name: Option<String>,
    pub controls: Vec<&'a Control>,
}

/// A tag with its place in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub text: String,
    pub span: Span,
}

/// Resolves a tag against the loaded catalogs.
pub fn resolve<'a>(cats: &'a Catalogs, tag: &str) -> Resolved<'a> {
    // Exact: a prefix of a catalog followed by one of its ids.
    for cat in &cats.catalogs {
        for p in &cat.tag_prefixes {
            if let Some(rest) = tag.strip_prefix(p.as_str())
                && let Some(control) = cat.control(rest)
            {
                return Resolved::Control {
                    catalog: cat,
                    control,
                };
            }
        }
    }
    // `PREFIX-A.x.y`: an objective, or a current id written with `A.`.
    let mut objective = None;
    let mut current = None;
    for cat in &cats.catalogs {
        for p in &cat.tag_prefixes {
            let Some(rest) = tag.strip_prefix(p.as_str()) else {
                continue;
            };
            if objective.is_none() {
                let controls = cat.objective_controls(rest);
                if let Some(first) = controls.first() {
                    objective = Some(Objective {
                        catalog: cat,
                        id: rest.to_string(),
                        name: first.objective_name.clone(),
                        controls,
                    });
                }
            }
            if current.is_none()
                && let Some(bare) = rest.strip_prefix("A.")
            {
                for other in &cats.catalogs {
                    if other.tag_prefixes.iter().any(|q| q == p)
                        && let Some(c) = other.control(bare)
                        && other.objective_controls(bare).is_empty()
                    {
                        current = Some((other, c));
                    }
                }
            }
        }
    }
    if objective.is_some() || current.is_some() {
        return Resolved::Ambiguous { objective, current };
    }
    Resolved::Unknown {
        suggestion: suggest(cats, tag),
        note: group_note(cats, tag),
    }
}

/// The canonical tag of every control, for suggestions.
fn all_tags(cats: &Catalogs) -> Vec<String> {
    let mut v = Vec::new();
    for cat in &cats.catalogs {
        for c in &cat.controls {
            for p in &cat.tag_prefixes {
                v.push(format!("{p}{}", c.id));
            }
        }
    }
    v
}

/// The closest valid tag, tried in order: the same tag in another letter case; another known
/// prefix with the same id (`ISO27002-8.15`, `ISO27001:2013-A.5.1.1`, `SOC 2-CC7.1`); the id
/// with or without the `A.` of 2013 ids; a unique tag one edit away.
pub fn suggest(cats: &Catalogs, tag: &str) -> Option<String> {
    let tags = all_tags(cats);
    if let Some(t) = tags.iter().find(|t| t.eq_ignore_ascii_case(tag)) {
        return Some(t.clone());
    }
    // The id part: after the last `-` (ids never contain `-` in the built-in catalogs; an
    // organisation's may, so try every split).
    for (i, _) in tag.match_indices('-').rev() {
        let id = &tag[i + 1..];
        for variant in id_variants(id) {
            let hits: Vec<String> = cats
                .catalogs
                .iter()
                .filter_map(|c| {
                    let ctl = c.control(&variant).or_else(|| {
                        c.controls
                            .iter()
                            .find(|x| x.id.eq_ignore_ascii_case(&variant))
                    })?;
                    Some(c.tag(&ctl.id))
                })
                .collect();
            if let [only] = hits.as_slice()
                && only != tag
            {
                return Some(only.clone());
            }
        }
    }
    let close: Vec<&String> = tags
        .iter()
        .filter(|t| strsim::levenshtein(t, tag) == 1)
        .collect();
    if let [only] = close.as_slice() {
        return Some((*only).clone());
    }
    None
}

fn id_variants(id: &str) -> Vec<String> {
    let mut v = vec![id.to_string()];
    if let Some(bare) = id.strip_prefix("A.") {
        v.push(bare.to_string());
    } else if id.split('.').count() == 3 && id.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        v.push(format!("A.{id}"));
    }
    v
}

/// For a tag whose prefix is known and whose id is not: the ids of the group it would sit in
/// (`SOC2-CC7.9` → "SOC2 CC7 has CC7.1 to CC7.5").
fn group_note(cats: &Catalogs, tag: &str) -> Option<String> {
    for cat in &cats.catalogs {
        for p in &cat.tag_prefixes {
            let Some(rest) = tag.strip_prefix(p.as_str()) else {
                continue;
            };
            // The longest id prefix ending before a `.` that is a group or an objective.
            let mut cut = rest.len();
            while let Some(i) = rest[..cut].rfind('.') {
                let head = &rest[..i];
                let members: Vec<&Control> = cat
                    .controls
                    .iter()
                    .filter(|c| {
                        c.objective.as_deref() == Some(head)
                            || (c.objective.is_none() && c.group.as_deref() == Some(head))
                    })
                    .collect();
                if let (Some(first), Some(last)) = (members.first(), members.last()) {
                    let name = first
                        .objective_name
                        .as_deref()
                        .filter(|_| first.objective.as_deref() == Some(head))
                        .or_else(|| cat.group(head).map(|g| g.name.as_str()));
                    let what = match name {
                        Some(n) => format!("`{head}` ({n})"),
                        None => format!("`{head}`"),
                    };
                    return Some(if members.len() == 1 {
                        format!(
                            "in {}, {what} has one control: `{p}{}`",
                            cat.title, first.id
                        )
                    } else {
                        format!(
                            "in {}, {what} has {} controls: `{p}{}` to `{p}{}`",
                            cat.title,
                            members.len(),
                            first.id,
                            last.id
                        )
                    });
                }
                cut = i;
            }
        }
    }
    None
}

/// A stable key for "the same control": (catalog id, control id).
pub fn control_key(catalog: &Catalog, control: &Control) -> (String, String) {
    (catalog.id.clone(), control.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(tag: &str) -> String {
        match resolve(Catalogs::builtin(), tag) {
            Resolved::Control { catalog, control } => format!("{}:{}", catalog.id, control.id),
            Resolved::Ambiguous { objective, current } => format!(
                "ambiguous:{}:{}",
                objective.map(|o| o.controls.len()).unwrap_or(0),
                current.map(|c| c.1.id.clone()).unwrap_or_default()
            ),
            Resolved::Unknown { suggestion, .. } => {
                format!("unknown:{}", suggestion.unwrap_or_default())
            }
        }
    }

    #[test]
    fn tag_forms() {
        assert_eq!(r("SOC2-CC7.1"), "soc2:CC7.1");
        assert_eq!(r("ISO27001-A.14.2.1"), "iso27001-2013:A.14.2.1");
        assert_eq!(r("ISO27001-8.15"), "iso27001-2022:8.15");
        assert_eq!(r("ISO27001:2022-8.15"), "iso27001-2022:8.15");
        // A.5.1 is a 2013 objective (two controls) and 5.1 a 2022 control.
        assert_eq!(r("ISO27001-A.5.1"), "ambiguous:2:5.1");
        // A.12.4 is an objective; 12.4 is no 2022 control.
        assert_eq!(r("ISO27001-A.12.4"), "ambiguous:4:");
        // A.8.15 is no objective, but 8.15 is a 2022 control.
        assert_eq!(r("ISO27001-A.8.15"), "ambiguous:0:8.15");
        assert_eq!(r("ISO27001:2022-A.8.15"), "ambiguous:0:8.15");
    }

    #[test]
    fn suggestions() {
        assert_eq!(r("soc2-cc7.1"), "unknown:SOC2-CC7.1");
        assert_eq!(r("ISO27002-8.15"), "unknown:ISO27001-8.15");
        assert_eq!(r("ISO27001-14.2.1"), "unknown:ISO27001-A.14.2.1");
        assert_eq!(r("ISO27001:2013-A.14.2.1"), "unknown:ISO27001-A.14.2.1");
        assert_eq!(r("SOC2-CC7.9"), "unknown:");
        assert_eq!(r("GDPR-32"), "unknown:");
        // Names never match.
        assert_eq!(r("ISO27001-Logging"), "unknown:");
    }

    #[test]
    fn group_notes() {
        let Resolved::Unknown { note, .. } = resolve(Catalogs::builtin(), "SOC2-CC7.9") else {
            panic!()
        };
        assert_eq!(
            note.as_deref(),
            Some(
                "in SOC 2 Trust Services Criteria, `CC7` (System Operations) has 5 controls: `SOC2-CC7.1` to `SOC2-CC7.5`"
            )
        );
        let Resolved::Unknown { note, .. } = resolve(Catalogs::builtin(), "ISO27001-A.12.4.9")
        else {
            panic!()
        };
        assert!(
            note.unwrap_or_default()
                .contains("`A.12.4` (Logging and monitoring) has 4 controls")
        );
        // One control: said so, not "1 controls: X to X".
        let Resolved::Unknown { note, .. } = resolve(Catalogs::builtin(), "ISO27001-A.7.3.9")
        else {
            panic!()
        };
        let note = note.unwrap_or_default();
        assert!(
            note.ends_with("has one control: `ISO27001-A.7.3.1`"),
            "{note}"
        );
    }
}
