//! `pbc coverage --format oscal` (OSCAL 1.1 `assessment-results`) and `--format
//! oscal-component` (`component-definition`): each validates against NIST's OSCAL 1.1.2 JSON
//! schemas (`testdata/oscal/`), loads in compliance-trestle, says what the coverage report
//! says (a finding per claimed control, satisfied only when covered, observations with the
//! evidence's file and line, the Statement of Applicability), and is the same bytes for the
//! same inputs.

mod loopback;

use serde_json::Value;
use std::process::{Command, Output};

fn pbc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(args)
        .current_dir(loopback::root())
        .env("NO_COLOR", "1")
        .env("SOURCE_DATE_EPOCH", "1764547200")
        .output()
        .expect("run pbc")
}

fn doc(args: &[&str]) -> (Vec<u8>, Value) {
    let o = pbc(args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = serde_json::from_slice(&o.stdout).expect("JSON");
    (o.stdout, v)
}

fn valid(v: &Value, schema: &str) {
    let s: Value = serde_json::from_str(
        &std::fs::read_to_string(loopback::root().join("testdata/oscal").join(schema)).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&s).expect("NIST's schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

const MATRIX: &str = "testdata/compliance/matrix";

fn finding<'a>(result: &'a Value, control: &str) -> &'a Value {
    result["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["target"]["target-id"] == control)
        .unwrap_or_else(|| panic!("{control} in {result}"))
}

fn result<'a>(ar: &'a Value, env: &str) -> &'a Value {
    ar["assessment-results"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["props"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "environment" && p["value"] == env)
        })
        .unwrap_or_else(|| panic!("{env}"))
}

#[test]
fn assessment_results_validate_and_say_what_coverage_says() {
    let (bytes, ar) = doc(&["coverage", MATRIX, "--format", "oscal"]);
    valid(&ar, "oscal_assessment-results_schema.json");
    assert_eq!(
        ar["assessment-results"]["metadata"]["oscal-version"],
        "1.1.2"
    );
    assert_eq!(
        ar["assessment-results"]["metadata"]["last-modified"],
        "2025-12-01T00:00:00Z"
    );
    // Production keeps the gate: satisfied; dev lost it: not satisfied.
    let prod = finding(result(&ar, "production"), "soc2-cc6.3");
    assert_eq!(prod["target"]["status"]["state"], "satisfied", "{prod}");
    let dev = finding(result(&ar, "dev"), "soc2-cc6.3");
    assert_eq!(dev["target"]["status"]["state"], "not-satisfied", "{dev}");
    assert_eq!(dev["target"]["status"]["reason"], "fail");
    // Its observations carry the missing evidence at the dev patch's line.
    let dev_result = result(&ar, "dev");
    let related: Vec<&str> = dev["related-observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["observation-uuid"].as_str().unwrap())
        .collect();
    let hrefs: Vec<String> = dev_result["observations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| related.contains(&o["uuid"].as_str().unwrap()))
        .flat_map(|o| o["relevant-evidence"].as_array().unwrap().clone())
        .filter_map(|e| e["href"].as_str().map(String::from))
        .collect();
    assert!(
        hrefs
            .iter()
            .any(|h| h == "testdata/compliance/matrix/overlays/dev/patch.yaml#L8"),
        "{hrefs:?}"
    );
    // Same inputs, same bytes (UUIDs are name-based).
    assert_eq!(doc(&["coverage", MATRIX, "--format", "oscal"]).0, bytes);
}

#[test]
fn the_statement_of_applicability_is_in_the_findings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("p.yaml"),
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: p\n  compliance: [SOC2-CC7.2]\nspec:\n  trigger: ev\n  stages:\n    - name: a\n      agent: m\n      prompt: x\n",
    )
    .unwrap();
    std::fs::write(
        d.join(".pbc.yaml"),
        "compliance:\n  applicability:\n    SOC2-A1.2:\n      status: not-applicable\n      justification: no data centre of our own\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(["coverage", "p.yaml", "--format", "oscal"])
        .current_dir(d)
        .env("SOURCE_DATE_EPOCH", "1764547200")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let ar: Value = serde_json::from_slice(&o.stdout).unwrap();
    valid(&ar, "oscal_assessment-results_schema.json");
    let r = &ar["assessment-results"]["results"][0];
    let na = finding(r, "soc2-a1.2");
    assert!(
        na["props"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "applicability" && p["value"] == "not-applicable"),
        "{na}"
    );
    assert!(
        na["remarks"]
            .as_str()
            .unwrap()
            .contains("no data centre of our own")
    );
}

#[test]
fn the_component_definition_validates_with_a_component_per_playbook() {
    let (_, cd) = doc(&["coverage", MATRIX, "--format", "oscal-component"]);
    valid(&cd, "oscal_component_schema.json");
    let comps = cd["component-definition"]["components"].as_array().unwrap();
    assert_eq!(comps.len(), 1, "{cd}");
    assert_eq!(comps[0]["title"], "deploy");
    let req = &comps[0]["control-implementations"][0]["implemented-requirements"][0];
    assert_eq!(req["control-id"], "soc2-cc6.3");
    let text = req["description"].as_str().unwrap();
    assert!(text.contains("covered in production"), "{text}");
    assert!(text.contains("claimed without evidence in dev"), "{text}");
}

#[test]
fn both_documents_load_in_compliance_trestle() {
    let Some(py) = loopback::python("trestle.oscal.assessment_results") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (fmt, name) in [
        ("oscal", "assessment-results.json"),
        ("oscal-component", "component-definition.json"),
    ] {
        for tree in [MATRIX, "testdata/example"] {
            let (bytes, _) = doc(&["coverage", tree, "--format", fmt]);
            let f = dir
                .path()
                .join(format!("{}-{name}", tree.replace('/', "_")));
            std::fs::write(&f, bytes).unwrap();
            files.push(f);
        }
    }
    let o = Command::new(py)
        .arg(loopback::root().join("tests/oscal/load_trestle.py"))
        .args(&files)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(
        out.contains("assessment-results, 2 result(s), 2 finding(s)"),
        "{out}"
    );
    assert!(
        out.contains("component-definition, 1 component(s), 1 implemented requirement(s)"),
        "{out}"
    );
}
