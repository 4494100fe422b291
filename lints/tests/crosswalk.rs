//! The SOC 2 ↔ ISO 27001:2022 crosswalk (`lints/rules/crosswalk.yaml`): it loads, every tag
//! names a control of the built-in catalogs, and each link pairs a SOC 2 criterion with an
//! ISO 27001:2022 control; `pbc coverage` shows a covered partner as related, never as
//! coverage.

mod common;

use pbc_lints::Compliance;
use pbc_lints::catalog::Catalogs;
use pbc_lints::coverage::{self, Status};
use pbc_lints::crosswalk::{BUILTIN_CROSSWALK, Crosswalk};
use pbc_lints::evidence::Settings;

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
            let c = cats
                .catalogs
                .iter()
                .find(|c| &c.id == cat)
                .expect("catalog");
            assert!(c.control(id).is_some(), "{cat} {id}");
        }
    }
    assert_eq!(&cw, Crosswalk::builtin());
}

#[test]
fn links_are_symmetric() {
    let cats = Catalogs::builtin();
    let cw = Crosswalk::builtin();
    assert!(
        cw.related(cats, "soc2", "CC8.1")
            .contains(&pair("iso27001-2022", "8.32"))
    );
    assert!(
        cw.related(cats, "iso27001-2022", "8.32")
            .contains(&pair("soc2", "CC8.1"))
    );
    // The controls the auditor named.
    assert_eq!(
        cw.related(cats, "soc2", "A1.1"),
        [pair("iso27001-2022", "8.6")]
    );
    assert!(
        cw.related(cats, "iso27001-2022", "5.26")
            .contains(&pair("soc2", "CC7.4"))
    );
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

const RULES: &str = "testdata/compliance/rules/overlays/production";

/// The coverage of one rule fixture (`pass` or `fail`), in production.
fn report_of(control: &str, which: &str) -> coverage::CoverageReport {
    let loader = common::loader();
    let comp = Compliance::builtin(Settings::from_config(&common::config(RULES)));
    let docs = common::playbooks(&loader, &format!("{RULES}/{control}/{which}.yaml"));
    coverage::coverage(
        &comp,
        &loader.sources,
        &[(Some("production".into()), docs)],
        &[],
    )
    .expect("known catalogs")
}

fn find<'a>(r: &'a coverage::CoverageReport, cat: &str, id: &str) -> &'a coverage::ControlReport {
    r.environments[0]
        .frameworks
        .iter()
        .find(|f| f.catalog == cat)
        .and_then(|f| f.controls.iter().find(|c| c.id == id))
        .unwrap_or_else(|| panic!("{cat} {id}"))
}

#[test]
fn coverage_shows_a_covered_partner_as_related_never_as_covered() {
    for (claimed, (cat, id), (ocat, oid), otag) in [
        (
            "SOC2-CC8.1",
            ("soc2", "CC8.1"),
            ("iso27001-2022", "8.32"),
            "ISO27001-8.32",
        ),
        (
            "ISO27001-8.32",
            ("iso27001-2022", "8.32"),
            ("soc2", "CC8.1"),
            "SOC2-CC8.1",
        ),
    ] {
        let r = report_of(claimed, "pass");
        assert_eq!(find(&r, cat, id).status, Status::Covered, "{claimed}");
        // The claimed control's own related: the partner is not covered, so none from it.
        assert!(
            find(&r, cat, id).related.iter().all(|x| x.id != oid),
            "{claimed}"
        );
        let other = find(&r, ocat, oid);
        assert_eq!(other.status, Status::NotClaimed, "{otag}");
        let tags: Vec<&str> = other.related.iter().map(|x| x.tag.as_str()).collect();
        assert_eq!(tags, [claimed], "{otag}");
        assert_eq!(other.related[0].status, Status::Covered);
        let slug = claimed.to_ascii_lowercase().replace('.', "-");
        assert_eq!(other.related[0].playbooks, [format!("{slug}-pass")]);
        // Never counted: the partner's framework covers nothing.
        let f = r.environments[0]
            .frameworks
            .iter()
            .find(|f| f.catalog == ocat)
            .expect("framework");
        assert_eq!(f.totals.covered, 0, "{otag}");

        // JSON: a `related` array on every control, the link on the partner.
        let v: serde_json::Value =
            serde_json::from_str(&coverage::json(&r)).expect("coverage JSON");
        let controls = v["environments"][0]["frameworks"]
            .as_array()
            .expect("frameworks")
            .iter()
            .find(|f| f["catalog"] == ocat)
            .and_then(|f| f["controls"].as_array())
            .expect("controls")
            .clone();
        assert!(controls.iter().all(|c| c["related"].is_array()));
        let c = controls.iter().find(|c| c["id"] == oid).expect("partner");
        assert_eq!(c["status"], "not-claimed");
        assert_eq!(c["related"][0]["tag"], claimed);
        assert_eq!(c["related"][0]["status"], "covered");

        // Markdown: a related-evidence list under the partner's framework.
        let md = coverage::markdown(&r);
        assert!(
            md.contains(&format!(
                "— not claimed — related: `{claimed}` covered by `{slug}-pass`"
            )),
            "{md}"
        );
    }
    // A claim without its evidence relates nothing.
    let r = report_of("SOC2-CC8.1", "fail");
    assert_eq!(
        find(&r, "soc2", "CC8.1").status,
        Status::ClaimedWithoutEvidence
    );
    assert!(find(&r, "iso27001-2022", "8.32").related.is_empty());
}
