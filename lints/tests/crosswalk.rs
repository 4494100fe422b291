//! The SOC 2 ↔ ISO 27001:2022 crosswalk (`lints/rules/crosswalk.yaml`): it loads, every tag
//! names a control of the built-in catalogs, and each link pairs a SOC 2 criterion with an
//! ISO 27001:2022 control.

use pbc_lints::catalog::Catalogs;
use pbc_lints::crosswalk::{BUILTIN_CROSSWALK, Crosswalk};

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

#[test]
fn the_builtin_crosswalk_is_valid() {
    let cats = Catalogs::builtin();
    let (cw, diags) = Crosswalk::parse(cats, BUILTIN_CROSSWALK.1);
    assert!(diags.is_empty(), "{diags:?}");
    assert!(cw.links.len() >= 60, "{} links", cw.links.len());
    for (a, b) in &cw.links {
        assert_eq!(a.0, "soc2", "{a:?}");
        assert_eq!(b.0, "iso27001-2022", "{b:?}");
        for (cat, id) in [a, b] {
            let c = cats.catalogs.iter().find(|c| &c.id == cat).expect("catalog");
            assert!(c.control(id).is_some(), "{cat} {id}");
        }
    }
    assert_eq!(&cw, Crosswalk::builtin());
}

#[test]
fn links_are_symmetric() {
    let cats = Catalogs::builtin();
    let cw = Crosswalk::builtin();
    assert!(cw.related(cats, "soc2", "CC8.1").contains(&pair("iso27001-2022", "8.32")));
    assert!(cw.related(cats, "iso27001-2022", "8.32").contains(&pair("soc2", "CC8.1")));
    // The controls the auditor named.
    assert_eq!(cw.related(cats, "soc2", "A1.1"), [pair("iso27001-2022", "8.6")]);
    assert!(cw.related(cats, "iso27001-2022", "5.26").contains(&pair("soc2", "CC7.4")));
    // In catalog order.
    let r = cw.related(cats, "soc2", "CC6.1");
    let ids: Vec<&str> = r.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids, ["5.15", "5.16", "5.17", "8.2", "8.3", "8.5", "8.24"]);
}

#[test]
fn an_unknown_tag_or_a_repeated_link_is_an_error() {
    let text = "links:\n  SOC2-CC8.1: [ISO27001-8.32, ISO27001-9.99]\n  SOC2-CC99.1: [ISO27001-8.32]\n  ISO27001-8.32: [SOC2-CC8.1]\n";
    let (cw, diags) = Crosswalk::parse(Catalogs::builtin(), text);
    let msgs: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "`ISO27001-9.99` is not a control of any loaded catalog",
            "`SOC2-CC99.1` is not a control of any loaded catalog",
            "`ISO27001-8.32` and `SOC2-CC8.1` are linked twice",
        ]
    );
    assert_eq!(cw.links.len(), 1);
}
