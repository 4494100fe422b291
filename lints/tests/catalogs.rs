//! The built-in catalogs: counts, structure, the 2013 → 2022 correspondence, and the
//! diagnostics for an organisation's catalog.

mod common;

use pbc_lints::catalog::{Catalog, Catalogs};
use std::collections::{BTreeMap, BTreeSet};

fn cat(id: &str) -> &'static Catalog {
    Catalogs::builtin()
        .get(id)
        .unwrap_or_else(|| panic!("no catalog {id}"))
}

#[test]
fn builtin_catalogs_parse_without_diagnostics() {
    let (cats, diags) = Catalogs::parse_builtin();
    assert!(diags.is_empty(), "{diags:#?}");
    assert_eq!(cats.ids(), ["soc2", "iso27001-2013", "iso27001-2022"]);
}

#[test]
fn counts() {
    assert_eq!(cat("soc2").controls.len(), 61);
    assert_eq!(cat("iso27001-2013").controls.len(), 114);
    assert_eq!(cat("iso27001-2022").controls.len(), 93);
}

fn count_by<'a>(
    c: &'a Catalog,
    f: impl Fn(&'a pbc_lints::catalog::Control) -> Option<&'a str>,
) -> BTreeMap<&'a str, usize> {
    let mut m = BTreeMap::new();
    for x in &c.controls {
        *m.entry(f(x).unwrap_or("")).or_insert(0) += 1;
    }
    m
}

#[test]
fn structure() {
    // SOC 2: 33 CC + 3 A + 2 C + 5 PI + 18 P in 20 series.
    let soc2 = cat("soc2");
    assert_eq!(soc2.groups.len(), 20);
    let by_cat = count_by(soc2, |c| c.category.as_deref());
    assert_eq!(
        by_cat,
        BTreeMap::from([
            ("Availability", 3),
            ("Confidentiality", 2),
            ("Privacy", 18),
            ("Processing Integrity", 5),
            ("Security", 33)
        ])
    );
    // COSO principles 1-17 on CC1-CC5, each once.
    let coso: BTreeSet<u64> = soc2
        .controls
        .iter()
        .filter_map(|c| c.coso_principle)
        .collect();
    assert_eq!(coso, (1..=17).collect());
    // ISO 2013: 14 sections, 35 objectives.
    let iso13 = cat("iso27001-2013");
    assert_eq!(iso13.groups.len(), 14);
    let objectives: BTreeSet<&str> = iso13
        .controls
        .iter()
        .filter_map(|c| c.objective.as_deref())
        .collect();
    assert_eq!(objectives.len(), 35);
    // ISO 2022: 37 organizational, 8 people, 14 physical, 34 technological; 11 new.
    let iso22 = cat("iso27001-2022");
    assert_eq!(
        count_by(iso22, |c| c.group.as_deref()),
        BTreeMap::from([("5", 37), ("6", 8), ("7", 14), ("8", 34)])
    );
    let new: Vec<&str> = iso22
        .controls
        .iter()
        .filter(|c| c.new)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        new,
        [
            "5.7", "5.23", "5.30", "7.4", "8.9", "8.10", "8.11", "8.12", "8.16", "8.23", "8.28"
        ]
    );
    for c in &iso22.controls {
        assert_eq!(
            c.new,
            c.replaces.as_deref().unwrap_or(&[]).is_empty(),
            "{}",
            c.id
        );
    }
}

#[test]
fn every_2013_control_maps_to_existing_2022_controls() {
    let old = cat("iso27001-2013");
    let new = cat("iso27001-2022");
    assert_eq!(old.superseded_by.as_deref(), Some("iso27001-2022"));
    let mut links = 0;
    for c in &old.controls {
        // `successors` must be given; `[]` would be an explicit "none" (no 2013 control has
        // none in ISO/IEC 27002:2022 Annex B).
        let succ = c
            .successors
            .as_deref()
            .unwrap_or_else(|| panic!("{} has no successors", c.id));
        assert!(!succ.is_empty(), "{} maps to nothing", c.id);
        for s in succ {
            let n = new
                .control(s)
                .unwrap_or_else(|| panic!("{} → {s}: no such 2022 control", c.id));
            assert!(
                n.replaces.as_deref().unwrap_or(&[]).contains(&c.id),
                "{s} does not list {}",
                c.id
            );
            links += 1;
        }
    }
    assert_eq!(links, 115, "114 controls, A.18.2.3 split in two");
    // 58 one-to-one, 24 merged from 57 (17 from 2, 5 from 3, 2 from 4), 11 new.
    let mut by_len = BTreeMap::new();
    for c in &new.controls {
        *by_len
            .entry(c.replaces.as_deref().unwrap_or(&[]).len())
            .or_insert(0) += 1;
    }
    assert_eq!(
        by_len,
        BTreeMap::from([(0, 11), (1, 58), (2, 17), (3, 5), (4, 2)])
    );
}

#[test]
fn known_correspondences() {
    let cats = Catalogs::builtin();
    let old = cat("iso27001-2013");
    let succ = |id: &str| -> Vec<&str> {
        cats.successors_of(old, id)
            .iter()
            .map(|(_, c)| c.id.as_str())
            .collect()
    };
    for (from, to) in [
        ("A.5.1.1", vec!["5.1"]),
        ("A.5.1.2", vec!["5.1"]),
        ("A.6.1.2", vec!["5.3"]),
        ("A.6.1.5", vec!["5.8"]),
        ("A.9.1.1", vec!["5.15"]),
        ("A.9.2.2", vec!["5.18"]),
        ("A.9.2.5", vec!["5.18"]),
        ("A.9.2.6", vec!["5.18"]),
        ("A.9.2.3", vec!["8.2"]),
        ("A.12.1.2", vec!["8.32"]),
        ("A.12.4.1", vec!["8.15"]),
        ("A.12.4.2", vec!["8.15"]),
        ("A.12.4.3", vec!["8.15"]),
        ("A.12.4.4", vec!["8.17"]),
        ("A.12.6.1", vec!["8.8"]),
        ("A.12.6.2", vec!["8.19"]),
        ("A.12.7.1", vec!["8.34"]),
        ("A.13.2.1", vec!["5.14"]),
        ("A.14.2.1", vec!["8.25"]),
        ("A.14.2.2", vec!["8.32"]),
        ("A.14.2.3", vec!["8.32"]),
        ("A.14.2.4", vec!["8.32"]),
        ("A.16.1.4", vec!["5.25"]),
        ("A.16.1.7", vec!["5.28"]),
        ("A.17.1.1", vec!["5.29"]),
        ("A.18.2.3", vec!["5.36", "8.8"]),
    ] {
        assert_eq!(succ(from), to, "{from}");
    }
}

#[test]
fn ids_never_collide_across_catalogs_sharing_a_prefix() {
    let cats = Catalogs::builtin();
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for c in &cats.catalogs {
        for ctl in &c.controls {
            for p in &c.tag_prefixes {
                let tag = format!("{p}{}", ctl.id);
                if let Some(other) = seen.insert(tag.clone(), &c.id) {
                    panic!("{tag} is in {other} and {}", c.id);
                }
            }
        }
    }
    // 2013 objectives (A.x.y) are never control ids of either edition.
    let old = cat("iso27001-2013");
    for o in old.controls.iter().filter_map(|c| c.objective.as_deref()) {
        assert!(old.control(o).is_none() && cat("iso27001-2022").control(o).is_none());
    }
}

#[test]
fn names_match_the_reference_for_spot_checks() {
    for (cat_id, id, name) in [
        (
            "iso27001-2013",
            "A.12.6.1",
            "Management of technical vulnerabilities",
        ),
        (
            "iso27001-2013",
            "A.13.2.4",
            "Confidentiality or nondisclosure agreements",
        ),
        (
            "iso27001-2013",
            "A.11.2.7",
            "Secure disposal or re-use of equipment",
        ),
        ("iso27001-2022", "8.1", "User end point devices"),
        ("iso27001-2022", "8.20", "Networks security"),
        ("iso27001-2022", "8.28", "Secure coding"),
        ("iso27001-2022", "8.15", "Logging"),
    ] {
        assert_eq!(
            cat(cat_id).control(id).map(|c| c.name.as_str()),
            Some(name),
            "{id}"
        );
    }
}

#[test]
fn organisation_catalog() {
    let loader = common::loader();
    let mut cats = Catalogs::builtin().clone();
    let mut diags = Vec::new();
    let c = cats
        .load_file(
            &loader,
            &common::root().join("testdata/compliance/data/acme-catalog.yaml"),
            &mut diags,
        )
        .expect("readable")
        .expect("valid");
    assert_eq!((c.id.as_str(), c.controls.len()), ("acme-controls", 3));
    assert!(diags.is_empty(), "{diags:?}");
    cats.validate(&mut diags);
    assert!(diags.is_empty(), "{diags:?}");
    assert!(matches!(
        pbc_lints::tags::resolve(&cats, "ACME-CM-1"),
        pbc_lints::tags::Resolved::Control { .. }
    ));
    // Selected for coverage only when asked for.
    let ids = |v: Vec<&Catalog>| v.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(cats.select(&[]).unwrap()), ["soc2", "iso27001-2022"]);
    assert_eq!(
        ids(cats
            .select(&["acme-controls".into(), "iso27001-2013".into()])
            .unwrap()),
        ["soc2", "iso27001-2013", "iso27001-2022", "acme-controls"]
    );
    // Naming a default catalog reports exactly what is named.
    assert_eq!(ids(cats.select(&["soc2".into()]).unwrap()), ["soc2"]);
    assert_eq!(
        ids(cats
            .select(&["iso27001-2013".into(), "iso27001-2022".into()])
            .unwrap()),
        ["iso27001-2013", "iso27001-2022"]
    );
    let err = cats.select(&["iso27001-2031".into()]).unwrap_err();
    insta::assert_snapshot!(err, @"unknown catalog `iso27001-2031`; did you mean `iso27001-2013`? known catalogs: `soc2`, `iso27001-2013`, `iso27001-2022` or `acme-controls`");
}

#[test]
fn invalid_organisation_catalog() {
    let loader = common::loader();
    let mut cats = Catalogs::builtin().clone();
    let mut diags = Vec::new();
    let c = cats
        .load_file(
            &loader,
            &common::root().join("testdata/compliance/data/acme-catalog-invalid.yaml"),
            &mut diags,
        )
        .expect("readable");
    assert!(c.is_none());
    let diags = common::sorted(&loader, diags);
    insta::assert_snapshot!("catalog_invalid_human", common::human(&loader, &diags));
    insta::assert_snapshot!("catalog_invalid_json", common::json(&loader, &diags));
}
