//! The Argo workflow's ConfigMaps: what they carry (the playbook with its schemas, the
//! configuration with its policy files, the agents file with its fixtures), the secrets
//! referenced from a Secret, the split over the 1 MiB limit, and the findings for a file
//! too large to carry (PB6003) or that cannot be carried (PB6004).

mod common;

use pbc_compiler::render;
use pbc_targets::Settings;
use pbc_targets::bundle::{Target, artifacts};
use serde_json::Value;
use std::path::Path;

const PLAYBOOK: &str = "apiVersion: agenticops/v1
kind: Playbook
metadata:
  name: carried
spec:
  trigger: pull-request-created
  stages:
    - name: first
      agent: glm-5
      output-schema: schemas/first.json
    - name: second
      agent: glm-5
      needs: [first]
      output-schema: schemas/second.json
      policy: limits
";

const CONFIG: &str = "notifications:
  ops: {slack: {webhook-url-env: SLACK_URL}}
  pager: {pagerduty: {routing-key-env: PD_KEY}}
policies:
  limits:
    rego: {files: [policies/limits.rego], query: data.limits.deny}
serve:
  agents: agents/agents.yaml
";

const AGENTS: &str = "agents:
  glm-5: {http: {url: \"http://127.0.0.1:9/v1/chat/completions\", model: m, api-key-env: MODEL_KEY}}
actions:
  tickets:create: {fixture: recorded/}
";

fn schema(pad: usize) -> String {
    format!(
        "{{\"type\": \"object\", \"description\": \"{}\"}}\n",
        "x".repeat(pad)
    )
}

/// A project in a fresh directory: the playbook, `.pbc.yaml`, the policy, the agents file and
/// its fixture, schemas padded to the given sizes.
fn project(name: &str, first: usize, second: usize) -> std::path::PathBuf {
    let d = common::temp_dir(name);
    std::fs::create_dir_all(d.join("schemas")).unwrap();
    std::fs::create_dir_all(d.join("policies")).unwrap();
    std::fs::create_dir_all(d.join("agents/recorded")).unwrap();
    std::fs::write(d.join("pb.yaml"), PLAYBOOK).unwrap();
    std::fs::write(d.join(".pbc.yaml"), CONFIG).unwrap();
    std::fs::write(
        d.join("policies/limits.rego"),
        "package limits\n\ndeny contains \"never\" if false\n",
    )
    .unwrap();
    std::fs::write(d.join("agents/agents.yaml"), AGENTS).unwrap();
    std::fs::write(d.join("agents/recorded/second.json"), "{\"ok\": true}\n").unwrap();
    std::fs::write(d.join("schemas/first.json"), schema(first)).unwrap();
    std::fs::write(d.join("schemas/second.json"), schema(second)).unwrap();
    d
}

/// The argo artifact's documents, or the findings (rendered human and JSON).
fn build(d: &Path) -> Result<Vec<Value>, (Vec<String>, String, String)> {
    let (l, c) = common::compile(d, "pb.yaml");
    let mut diags = Vec::new();
    let files = artifacts(&c, &[Target::Argo], &Settings::default(), &mut diags);
    if !diags.is_empty() {
        let opts = render::HumanOptions {
            color: false,
            width: 100,
        };
        let human: String = diags
            .iter()
            .map(|x| render::human_one(&l.sources, x, &opts))
            .collect();
        let json: Vec<Value> = diags
            .iter()
            .map(|x| render::diagnostic_json(&l.sources, x))
            .collect();
        let codes = diags.iter().map(|x| x.code.id.to_string()).collect();
        let json = serde_json::to_string_pretty(&json).unwrap();
        return Err((codes, human, json));
    }
    let text = &files["argo/carried.yaml"];
    Ok(docs_of(text))
}

fn docs_of(text: &str) -> Vec<Value> {
    let loader = common::loader(Path::new(""));
    let l = loader.load_text("argo.yaml", text.to_string());
    l.docs.iter().map(|d| d.root.to_json()).collect()
}

/// The files the volume mounts: path → text.
fn mounted(docs: &[Value]) -> Vec<(String, String, String)> {
    let wt = docs
        .iter()
        .find(|d| d["kind"] == "WorkflowTemplate")
        .unwrap();
    let vol = wt["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "pbc-config")
        .unwrap();
    let mut out = Vec::new();
    for src in vol["projected"]["sources"].as_array().unwrap() {
        let name = src["configMap"]["name"].as_str().unwrap();
        let cm = docs
            .iter()
            .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == name)
            .unwrap();
        for item in src["configMap"]["items"].as_array().unwrap() {
            let key = item["key"].as_str().unwrap();
            out.push((
                name.to_string(),
                item["path"].as_str().unwrap().to_string(),
                cm["data"][key].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

#[test]
fn the_workflow_carries_its_files_and_references_its_secrets() {
    let d = project("carry", 10, 10);
    let docs = build(&d).unwrap_or_else(|e| panic!("{}", e.1));
    let kinds: Vec<&str> = docs.iter().map(|x| x["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ConfigMap", "WorkflowTemplate"]);
    let files = mounted(&docs);
    let paths: Vec<&str> = files.iter().map(|(_, p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "agents.yaml",
            "pbc.yaml",
            "playbook.yaml",
            "policies/limits.rego",
            "recorded/second.json",
            "schemas/first.json",
            "schemas/second.json",
        ]
    );
    let text = |p: &str| {
        files
            .iter()
            .find(|(_, q, _)| q == p)
            .map(|(_, _, t)| t.clone())
            .unwrap()
    };
    assert!(files.iter().all(|(cm, _, _)| cm == "carried-pbc"));
    assert_eq!(text("pbc.yaml"), CONFIG);
    assert_eq!(text("agents.yaml"), AGENTS);
    assert_eq!(text("recorded/second.json"), "{\"ok\": true}\n");
    assert_eq!(text("schemas/second.json"), schema(10));
    let pb = text("playbook.yaml");
    assert!(pb.contains("output-schema: schemas/first.json"), "{pb}");
    assert!(pb.contains("output-schema: schemas/second.json"), "{pb}");
    // Every container takes the three variables from the Secret, none inlined.
    let wt = docs
        .iter()
        .find(|x| x["kind"] == "WorkflowTemplate")
        .unwrap();
    let want: Value = serde_json::json!(["MODEL_KEY", "PD_KEY", "SLACK_URL"]
        .map(|v| serde_json::json!({"name": v, "valueFrom": {"secretKeyRef": {"name": "carried-pbc-secrets", "key": v}}})));
    let mut containers = 0;
    for t in wt["spec"]["templates"].as_array().unwrap() {
        if let Some(c) = t.get("container") {
            assert_eq!(c["env"], want, "{}", t["name"]);
            containers += 1;
        }
    }
    assert!(containers >= 2);
    // Deterministic bytes.
    assert_eq!(build(&d).ok(), Some(docs));
}

/// A schema the playbook names outside its directory is copied under `schemas/<stage>/`
/// and the reference rewritten; the others keep their paths (the playbook stays the
/// resolved text).
#[test]
fn a_schema_outside_the_directory_is_copied_and_its_reference_rewritten() {
    let d = project("outside", 10, 10);
    std::fs::create_dir_all(d.join("common")).unwrap();
    std::fs::write(d.join("common/outside-shared.json"), schema(3)).unwrap();
    // `..` leaves the directory the reference is relative to, as far as a pod can tell.
    let pb = PLAYBOOK.replace(
        "schemas/second.json",
        "schemas/../common/outside-shared.json",
    );
    std::fs::write(d.join("pb.yaml"), pb).unwrap();
    let docs = build(&d).unwrap_or_else(|e| panic!("{}", e.1));
    let files = mounted(&docs);
    let paths: Vec<&str> = files.iter().map(|(_, p, _)| p.as_str()).collect();
    assert!(
        paths.contains(&"schemas/1/outside-shared.json"),
        "{paths:?}"
    );
    assert!(paths.contains(&"schemas/first.json"), "{paths:?}");
    let pb = &files
        .iter()
        .find(|(_, p, _)| p == "playbook.yaml")
        .unwrap()
        .2;
    assert!(
        pb.contains("output-schema: schemas/1/outside-shared.json"),
        "{pb}"
    );
    assert!(pb.contains("output-schema: schemas/first.json"), "{pb}");
}

#[test]
fn files_over_one_mebibyte_together_are_split_over_config_maps() {
    let d = project("split", 600_000, 600_000);
    let docs = build(&d).unwrap_or_else(|e| panic!("{}", e.1));
    let names: Vec<&str> = docs
        .iter()
        .filter(|x| x["kind"] == "ConfigMap")
        .map(|x| x["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["carried-pbc", "carried-pbc-2"]);
    for cm in docs.iter().filter(|x| x["kind"] == "ConfigMap") {
        let size: usize = cm["data"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| k.len() + v.as_str().unwrap().len())
            .sum();
        assert!(size <= 1024 * 1024, "{size}");
    }
    let files = mounted(&docs);
    assert_eq!(files.len(), 7);
    let where_is = |p: &str| files.iter().find(|(_, q, _)| q == p).unwrap().0.clone();
    assert_eq!(where_is("schemas/first.json"), "carried-pbc");
    assert_eq!(where_is("schemas/second.json"), "carried-pbc-2");
}

#[test]
fn a_file_over_the_limit_is_pb6003_naming_it() {
    let d = project("large", 10, 1_100_000);
    let (codes, human, json) = build(&d).expect_err("a finding");
    assert_eq!(codes, ["PB6003"]);
    assert!(human.contains("schemas/second.json"), "{human}");
    let tmp = d.display().to_string();
    insta::assert_snapshot!("pb6003_human", human.replace(&tmp, "[DIR]"));
    insta::assert_snapshot!("pb6003_json", json.replace(&tmp, "[DIR]"));
}

#[test]
fn a_file_that_cannot_be_carried_is_pb6004() {
    let d = project("missing", 10, 10);
    std::fs::remove_dir_all(d.join("agents/recorded")).unwrap();
    let (codes, human, json) = build(&d).expect_err("a finding");
    assert_eq!(codes, ["PB6004"]);
    let tmp = d.display().to_string();
    insta::assert_snapshot!("pb6004_human", human.replace(&tmp, "[DIR]"));
    insta::assert_snapshot!("pb6004_json", json.replace(&tmp, "[DIR]"));
}
