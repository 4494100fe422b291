//! `schemas/playbook.schema.json` against itself, the accepted fixtures, the
//! `testdata/bad` fixtures and a table of inline cases.
//!
//! The schema is the editor-facing and CRD-facing description of the format: it must accept
//! every playbook `pbc check` accepts, and reject what it can of what `pbc check` rejects.

use pbc_compiler::fs::OsFs;
use pbc_compiler::load::Loader;
use pbc_compiler::yaml::Limits;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the compiler crate lives in the workspace")
        .to_path_buf()
}

fn schema() -> Value {
    let path = root().join("schemas/playbook.schema.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn validator() -> jsonschema::Validator {
    jsonschema::draft202012::new(&schema()).expect("the schema compiles")
}

/// The schema's complaints about `doc`, one line each (`/json/pointer: message`).
fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// A file's documents as JSON, and the loader's error messages.
fn load(loader: &Loader, path: &Path) -> (Vec<Value>, Vec<String>) {
    let loaded = loader
        .load(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let docs = loaded.docs.iter().map(|d| d.root.to_json()).collect();
    let errs = loaded
        .diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{}: {}", d.code.id, d.message))
        .collect();
    (docs, errs)
}

fn loader() -> Loader {
    Loader::new(Arc::new(OsFs), root(), Limits::default())
}

fn is_yaml(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml") | Some("yml")
    )
}

/// Every YAML file under `dir`, recursively, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for entry in entries {
            let p = entry.expect("a directory entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if is_yaml(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn is_playbook(doc: &Value) -> bool {
    doc.get("kind").and_then(Value::as_str) == Some("Playbook")
}

// ---------------------------------------------------------------------------------------------
// (a) the schema itself

#[test]
fn schema_is_valid_draft_2020_12() {
    let s = schema();
    assert_eq!(
        s["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "the schema declares draft 2020-12"
    );
    assert_eq!(
        s["$id"],
        "https://agenticops.io/schemas/playbook.schema.json"
    );
    if let Err(e) = jsonschema::meta::validate(&s) {
        panic!(
            "the schema is not a valid 2020-12 schema: {}: {e}",
            e.instance_path()
        );
    }
    jsonschema::draft202012::new(&s).expect("the schema compiles");
}

/// Descends into the places that describe document structure (not into `if`, `then`, `not`,
/// `contains` or `allOf`, whose subschemas only state constraints), calling `f` with each
/// subschema and its location.
fn walk_structure<'a>(node: &'a Value, at: String, f: &mut dyn FnMut(&'a Value, &str)) {
    let Some(obj) = node.as_object() else { return };
    f(node, &at);
    for key in ["properties", "$defs"] {
        if let Some(props) = obj.get(key).and_then(Value::as_object) {
            for (name, sub) in props {
                walk_structure(sub, format!("{at}/{key}/{name}"), f);
            }
        }
    }
    for key in ["items", "additionalProperties", "propertyNames"] {
        if let Some(sub) = obj.get(key) {
            walk_structure(sub, format!("{at}/{key}"), f);
        }
    }
    for key in ["oneOf", "anyOf", "prefixItems"] {
        if let Some(subs) = obj.get(key).and_then(Value::as_array) {
            for (i, sub) in subs.iter().enumerate() {
                walk_structure(sub, format!("{at}/{key}/{i}"), f);
            }
        }
    }
}

#[test]
fn every_property_is_described_and_every_object_says_whether_it_is_closed() {
    let s = schema();
    let mut problems = Vec::new();
    walk_structure(&s, String::new(), &mut |node, at| {
        let Some(props) = node.get("properties").and_then(Value::as_object) else {
            return;
        };
        if node.get("additionalProperties").is_none() {
            problems.push(format!(
                "{at}: an object with `properties` must set `additionalProperties` (false, or true for an open map)"
            ));
        }
        for (name, sub) in props {
            let described = sub
                .get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.trim().is_empty());
            if !described {
                problems.push(format!("{at}/properties/{name}: no `description`"));
            }
        }
    });
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// (b) accepted fixtures

#[test]
fn accepted_fixtures_validate() {
    let v = validator();
    let loader = loader();
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for dir in ["testdata/example/playbooks/base", "testdata/seeds"] {
        for path in yaml_files(&root().join(dir)) {
            let (docs, load_errs) = load(&loader, &path);
            let shown = loader.display_path(&path);
            assert!(
                load_errs.is_empty(),
                "{}: an accepted fixture does not load: {load_errs:?}",
                shown.display()
            );
            for (i, doc) in docs.iter().enumerate().filter(|(_, d)| is_playbook(d)) {
                checked.push(format!("{} #{i}", shown.display()));
                for e in errors(&v, doc) {
                    failures.push(format!("{} (document {i}) {e}", shown.display()));
                }
            }
        }
    }
    assert!(
        !checked.is_empty(),
        "no Playbook documents found under testdata/example/playbooks/base or testdata/seeds"
    );
    eprintln!(
        "validated {} accepted Playbook documents: {}",
        checked.len(),
        checked.join(", ")
    );
    assert!(
        failures.is_empty(),
        "accepted fixtures fail the schema:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// (c) testdata/bad: the first line says whether the schema alone must reject the file

#[derive(Debug, PartialEq)]
enum Expect {
    Invalid,
    Valid,
}

fn header(text: &str) -> Option<Expect> {
    let first = text.lines().next()?.trim();
    let rest = first
        .strip_prefix('#')?
        .trim()
        .strip_prefix("schema:")?
        .trim();
    match rest.split_whitespace().next()? {
        "invalid" => Some(Expect::Invalid),
        "valid" => Some(Expect::Valid),
        _ => None,
    }
}

#[test]
fn bad_fixtures_match_their_schema_header() {
    let mut files: Vec<PathBuf> = Vec::new();
    for d in ["testdata/bad", "testdata/warn"] {
        let dir = root().join(d);
        assert!(dir.is_dir(), "{d} is missing");
        files.extend(
            std::fs::read_dir(&dir)
                .expect("the fixture directory is readable")
                .map(|e| e.expect("a directory entry").path())
                .filter(|p| p.is_file() && is_yaml(p)),
        );
    }
    files.sort();
    assert!(
        files.len() >= 20,
        "testdata/bad holds only {} fixtures",
        files.len()
    );

    let v = validator();
    let loader = loader();
    let mut problems = Vec::new();
    let (mut invalid, mut valid, mut skipped) = (0, 0, 0);
    for path in &files {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let text = String::from_utf8_lossy(&std::fs::read(path).expect("readable")).into_owned();
        let Some(expect) = header(&text) else {
            problems.push(format!(
                "{name}: the first line must be `# schema: invalid` or `# schema: valid`"
            ));
            continue;
        };
        let (docs, load_errs) = load(&loader, path);
        // Kustomizations are not Playbooks; every other document is checked, so that a
        // misspelt `kind` or `apiVersion` counts against the schema.
        let docs: Vec<&Value> = docs
            .iter()
            .filter(|d| {
                !d.get("apiVersion")
                    .and_then(Value::as_str)
                    .is_some_and(|a| a.starts_with("kustomize.config.k8s.io/"))
            })
            .collect();
        if docs.is_empty() {
            eprintln!(
                "note: {name}: no document to validate (loader errors: {load_errs:?}); skipped"
            );
            skipped += 1;
            continue;
        }
        let errs: Vec<String> = docs
            .iter()
            .enumerate()
            .flat_map(|(i, d)| errors(&v, d).into_iter().map(move |e| format!("#{i} {e}")))
            .collect();
        match expect {
            Expect::Invalid => {
                invalid += 1;
                if errs.is_empty() {
                    problems.push(format!(
                        "{name}: marked `# schema: invalid`, but the schema accepts it"
                    ));
                }
            }
            Expect::Valid => {
                valid += 1;
                if !errs.is_empty() {
                    problems.push(format!(
                        "{name}: marked `# schema: valid`, but the schema rejects it:\n    {}",
                        errs.join("\n    ")
                    ));
                }
            }
        }
    }
    eprintln!(
        "testdata/bad: {invalid} schema-invalid, {valid} schema-valid, {skipped} skipped, of {} files",
        files.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Inline cases: a small valid playbook, and mutations of it.

fn base() -> Value {
    json!({
        "apiVersion": "agenticops/v1",
        "kind": "Playbook",
        "metadata": {"name": "demo"},
        "spec": {
            "trigger": "demo-requested",
            "stages": [
                {"name": "analyse", "agent": "glm-5", "output-schema": "report.json"},
                {
                    "name": "apply",
                    "action": "db:apply_migration",
                    "approval": "manual",
                    "approvers": [{"role": "dba-team"}]
                }
            ]
        }
    })
}

/// `base()` edited: each `(parent, key, value)` sets `key` in the object at JSON pointer
/// `parent` to `value`, or removes `key` when `value` is `None`.
fn with(edits: &[(&str, &str, Option<Value>)]) -> Value {
    let mut doc = base();
    for (parent, key, value) in edits {
        let obj = doc
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("no object at {parent}"));
        match value {
            Some(v) => {
                obj.insert((*key).to_string(), v.clone());
            }
            None => {
                obj.remove(*key);
            }
        }
    }
    doc
}

const S0: &str = "/spec/stages/0";
const S1: &str = "/spec/stages/1";

#[test]
fn inline_valid_cases() {
    let v = validator();
    let cases: Vec<(&str, Value)> = vec![
        ("base", base()),
        (
            "event trigger with input schema",
            with(&[(
                "/spec",
                "trigger",
                Some(json!({"event": "pr-opened", "input-schema": "schemas/pr.json"})),
            )]),
        ),
        (
            "schedule trigger, 5 fields",
            with(&[(
                "/spec",
                "trigger",
                Some(json!({"schedule": "*/15 3-5 * * MON-FRI", "timezone": "Europe/Berlin"})),
            )]),
        ),
        (
            "schedule trigger, @daily",
            with(&[("/spec", "trigger", Some(json!({"schedule": "@daily"})))]),
        ),
        (
            "approvers in all three forms",
            with(&[(
                S1,
                "approvers",
                Some(
                    json!([{"role": "sre"}, {"user": "ann@example.com"}, "dba-team", "bob@example.com"]),
                ),
            )]),
        ),
        (
            "conditional: manual branch without approvers uses the stage's",
            with(&[
                (S1, "approval", Some(json!("conditional"))),
                (
                    S1,
                    "conditions",
                    Some(json!([
                        {"if": "report.rows > 1000", "then": "manual"},
                        {"if": "report.rows > 10", "then": "manual", "approvers": ["tech-lead"]},
                        {"else": "auto"}
                    ])),
                ),
            ]),
        ),
        (
            "conditional: every manual branch has its own approvers",
            with(&[
                (S1, "approval", Some(json!("conditional"))),
                (S1, "approvers", None),
                (
                    S1,
                    "conditions",
                    Some(json!([
                        {"if": "report.rows > 1000", "then": "manual", "approvers": [{"role": "dba"}]},
                        {"else": "auto"}
                    ])),
                ),
            ]),
        ),
        (
            "every stage field",
            with(&[
                (
                    S0,
                    "params",
                    Some(json!({"nested": {"a": [1, 2]}, "n": 5, "s": "${input.x}"})),
                ),
                (S0, "prompt", Some(json!("Review ${input.repo}."))),
                (S0, "lora", Some(json!("security-specialist"))),
                (S0, "rag-source", Some(json!("security-policies"))),
                (
                    S0,
                    "guardrails",
                    Some(json!(["pii-detection", "house-rule"])),
                ),
                (S0, "policy", Some(json!("code-review-policy"))),
                (S0, "approval", Some(json!("auto"))),
                (
                    S0,
                    "escalation",
                    Some(
                        json!([{"after": "2h", "approvers": [{"role": "ciso"}], "notify": ["email-ciso"]}]),
                    ),
                ),
                (S0, "sla", Some(json!("30s"))),
                (S0, "timeout", Some(json!("2d"))),
                (S0, "retries", Some(json!(0))),
                (
                    S0,
                    "notification",
                    Some(json!({
                   "on-pending": ["a"], "on-approved": ["b"], "on-rejected": ["c"],
                   "on-expired": ["d"], "on-failure": ["e"]})),
                ),
                (S0, "context", Some(json!(["earlier-stage", "report.json"]))),
                (S0, "needs", Some(json!([]))),
                (S0, "when", Some(json!("input.enabled == true"))),
                (S0, "risk", Some(json!("low"))),
                (
                    S0,
                    "compliance",
                    Some(json!([
                        "SOC2-CC8.1",
                        "ISO27001-8.32",
                        "ISO27001:2022-5.25",
                        "ISO27001-A.14.2.1"
                    ])),
                ),
                (S0, "audit-log", Some(json!("optional"))),
                (
                    S0,
                    "langfuse",
                    Some(
                        json!({"trace-id": "auto", "tags": ["x"], "metadata": {"anything": {"goes": 1}}}),
                    ),
                ),
                (
                    S1,
                    "rollback",
                    Some(json!({"action": "db:rollback_migration", "params": {"id": 1}})),
                ),
            ]),
        ),
        (
            "else branch with its own approvers",
            with(&[
                (S1, "approval", Some(json!("conditional"))),
                (S1, "approvers", None),
                (
                    S1,
                    "conditions",
                    Some(
                        json!([{"if": "a.b > 1", "then": "auto"}, {"else": "manual", "approvers": [{"role": "dba"}]}]),
                    ),
                ),
            ]),
        ),
        (
            "medium-risk stage with approvers, no gate",
            with(&[
                (S0, "risk", Some(json!("medium"))),
                (S0, "approvers", Some(json!(["owner"]))),
            ]),
        ),
        (
            "rate limit with extra spaces, cron with surrounding spaces",
            with(&[
                (
                    "/spec",
                    "rate-limits",
                    Some(json!({"db:apply": "10  per  hour"})),
                ),
                ("/spec", "trigger", Some(json!({"schedule": " 0 3 * * * "}))),
            ]),
        ),
        (
            "monitoring target forms of the expression module",
            with(&[(
                "/spec",
                "monitoring",
                Some(json!({
                "metrics": [{"name": "a", "target": "p99.9 <= 200"}, {"name": "_b", "target": "P95<1.5h"},
                            {"name": "c", "target": ">= -3"}],
                "alerts": [{"condition": "a>200", "notify": ["x"]}]})),
            )]),
        ),
        (
            "when: a literal boolean",
            with(&[(S0, "when", Some(json!(false)))]),
        ),
        (
            "every spec field",
            with(&[
                ("/spec", "input-schema", Some(json!("input.json"))),
                ("/spec", "risk", Some(json!("medium"))),
                ("/spec", "approvers", Some(json!([{"role": "owner"}]))),
                (
                    "/spec",
                    "rollback",
                    Some(json!({"on-failure": "notify-only", "notification": ["slack"]})),
                ),
                (
                    "/spec",
                    "audit",
                    Some(json!({"log-to": ["langfuse", "splunk"], "retention": "365d"})),
                ),
                (
                    "/spec",
                    "monitoring",
                    Some(json!({
                    "metrics": [{"name": "approval-latency", "target": "p95 < 4h"},
                                {"name": "false-positive-rate", "target": "< 5%"}],
                    "alerts": [{"condition": "approval-latency > 6h", "notify": ["slack-ops"]}]})),
                ),
                (
                    "/spec",
                    "rate-limits",
                    Some(json!({"db:apply_migration": "1 per day", "k8s:scale": "10 per hour"})),
                ),
            ]),
        ),
        (
            "metadata: namespace, labels, annotations, description, tags",
            with(&[
                ("/metadata", "namespace", Some(json!("agentic-ops"))),
                (
                    "/metadata",
                    "labels",
                    Some(json!({"app.kubernetes.io/part-of": "x", "env": ""})),
                ),
                (
                    "/metadata",
                    "annotations",
                    Some(json!({"agenticops.io/owner": "platform security"})),
                ),
                ("/metadata", "description", Some(json!("A demo."))),
                ("/metadata", "tags", Some(json!(["a", "b"]))),
            ]),
        ),
        (
            "rollout and promotion (open: extra keys allowed)",
            with(&[
                (
                    "/spec",
                    "rollout",
                    Some(json!({
                        "strategy": "canary",
                        "steps": [{"weight": 10, "pause": "10m"}, {"weight": 50, "pause": "30m"}, {"weight": 100}],
                        "rollback": {"on-failure": "auto"},
                        "metrics": [
                            {"name": "error-rate", "threshold": "> 1%"},
                            {"name": "latency-p99", "threshold": "> 5s"}],
                        "x-extra": {"anything": true}
                    })),
                ),
                (
                    "/spec",
                    "promotion",
                    Some(json!({
                        "from": "dev", "to": "staging",
                        "requires": ["all-tests-passed", "ragas-score > 0.8", "manual-approval"],
                        "staging-promotion": {"from": "staging", "to": "production",
                                              "requires": ["24h-soak-test", "ciso-approval"]}
                    })),
                ),
            ]),
        ),
        (
            "blue-green rollout",
            with(&[(
                "/spec",
                "rollout",
                Some(json!({
                "strategy": "blue-green", "active-service": "cr-blue",
                "preview-service": "cr-green", "auto-promotion": false,
                "rollback": {"on-failure": "instant-switch"}})),
            )]),
        ),
    ];
    let mut problems = Vec::new();
    for (name, doc) in &cases {
        let errs = errors(&v, doc);
        if !errs.is_empty() {
            problems.push(format!("{name}: rejected:\n    {}", errs.join("\n    ")));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn inline_invalid_cases() {
    let v = validator();
    let long = "a".repeat(64);
    let cases: Vec<(&str, Value)> = vec![
        (
            "unknown stage field",
            with(&[(S0, "timout", Some(json!("10m")))]),
        ),
        (
            "unknown spec field",
            with(&[("/spec", "stage", Some(json!([])))]),
        ),
        (
            "unknown metadata field",
            with(&[("/metadata", "label", Some(json!({})))]),
        ),
        (
            "unknown top-level field",
            with(&[("", "status", Some(json!({})))]),
        ),
        (
            "wrong apiVersion",
            with(&[("", "apiVersion", Some(json!("agenticops/v2")))]),
        ),
        ("wrong kind", with(&[("", "kind", Some(json!("Playbok")))])),
        ("no metadata.name", with(&[("/metadata", "name", None)])),
        ("no trigger", with(&[("/spec", "trigger", None)])),
        ("no stages", with(&[("/spec", "stages", None)])),
        (
            "empty stages",
            with(&[("/spec", "stages", Some(json!([])))]),
        ),
        ("manual without approvers", with(&[(S1, "approvers", None)])),
        (
            "manual with an empty approvers list",
            with(&[(S1, "approvers", Some(json!([])))]),
        ),
        (
            "bad duration: spelt out",
            with(&[(S0, "sla", Some(json!("4 hours")))]),
        ),
        (
            "bad duration: upper-case unit",
            with(&[(S0, "timeout", Some(json!("10M")))]),
        ),
        (
            "bad duration: a number",
            with(&[(S0, "timeout", Some(json!(600)))]),
        ),
        (
            "bad duration: ISO 8601 in YAML",
            with(&[(S0, "sla", Some(json!("PT4H")))]),
        ),
        (
            "both agent and action",
            with(&[(S0, "action", Some(json!("db:run_checks")))]),
        ),
        ("neither agent nor action", with(&[(S0, "agent", None)])),
        (
            "action without a layer",
            with(&[(S1, "action", Some(json!("apply_migration")))]),
        ),
        (
            "stage name with upper case",
            with(&[(S0, "name", Some(json!("Analyse")))]),
        ),
        (
            "stage name with underscore",
            with(&[(S0, "name", Some(json!("code_analysis")))]),
        ),
        (
            "stage name ending in -",
            with(&[(S0, "name", Some(json!("analyse-")))]),
        ),
        (
            "stage name of 64 characters",
            with(&[(S0, "name", Some(json!(long)))]),
        ),
        (
            "metadata.name not DNS-1123",
            with(&[("/metadata", "name", Some(json!("Demo.Playbook")))]),
        ),
        (
            "unknown approval",
            with(&[(S0, "approval", Some(json!("sometimes")))]),
        ),
        (
            "negative retries",
            with(&[(S0, "retries", Some(json!(-1)))]),
        ),
        (
            "retries as a string",
            with(&[(S0, "retries", Some(json!("2")))]),
        ),
        (
            "unknown risk",
            with(&[(S0, "risk", Some(json!("critical")))]),
        ),
        (
            "unknown audit-log",
            with(&[(S0, "audit-log", Some(json!("mandatory")))]),
        ),
        (
            "unknown notification key",
            with(&[(S0, "notification", Some(json!({"on-timeout": ["slack"]})))]),
        ),
        (
            "notification channels not a list",
            with(&[(S0, "notification", Some(json!({"on-pending": "slack"})))]),
        ),
        (
            "conditional without conditions",
            with(&[(S1, "approval", Some(json!("conditional")))]),
        ),
        (
            "conditions without a closing else",
            with(&[
                (S1, "approval", Some(json!("conditional"))),
                (
                    S1,
                    "conditions",
                    Some(json!([{"if": "report.rows > 10", "then": "manual"}])),
                ),
            ]),
        ),
        (
            "conditions with two else branches",
            with(&[
                (S1, "approval", Some(json!("conditional"))),
                (
                    S1,
                    "conditions",
                    Some(json!([{"else": "manual"}, {"else": "auto"}])),
                ),
            ]),
        ),
        (
            "condition with if and else in one item",
            with(&[
                (S1, "approval", Some(json!("conditional"))),
                (
                    S1,
                    "conditions",
                    Some(
                        json!([{"if": "a.b > 1", "then": "manual", "else": "auto"}, {"else": "auto"}]),
                    ),
                ),
            ]),
        ),
        (
            "condition branch then: something else",
            with(&[
                (S1, "approval", Some(json!("conditional"))),
                (
                    S1,
                    "conditions",
                    Some(json!([{"if": "a.b > 1", "then": "reject"}, {"else": "auto"}])),
                ),
            ]),
        ),
        (
            "conditional manual branch, no approvers anywhere",
            with(&[
                (S1, "approval", Some(json!("conditional"))),
                (S1, "approvers", None),
                (
                    S1,
                    "conditions",
                    Some(json!([{"if": "report.rows > 10", "then": "manual"}, {"else": "auto"}])),
                ),
            ]),
        ),
        (
            "conditional else: manual, no approvers anywhere",
            with(&[
                (S1, "approval", Some(json!("conditional"))),
                (S1, "approvers", None),
                (
                    S1,
                    "conditions",
                    Some(json!([{"if": "report.rows > 10", "then": "auto"}, {"else": "manual"}])),
                ),
            ]),
        ),
        (
            "medium-risk stage without approvers",
            with(&[(S0, "risk", Some(json!("medium")))]),
        ),
        (
            "medium-risk playbook without approvers",
            with(&[("/spec", "risk", Some(json!("medium")))]),
        ),
        (
            "approver with both role and user",
            with(&[(
                S1,
                "approvers",
                Some(json!([{"role": "dba", "user": "a@b.c"}])),
            )]),
        ),
        (
            "approver of an unknown form",
            with(&[(S1, "approvers", Some(json!([{"team": "dba"}])))]),
        ),
        (
            "approver user not an e-mail",
            with(&[(S1, "approvers", Some(json!([{"user": "ann"}])))]),
        ),
        (
            "bare approver with two @",
            with(&[(S1, "approvers", Some(json!(["a@b@c"])))]),
        ),
        (
            "trigger with both event and schedule",
            with(&[(
                "/spec",
                "trigger",
                Some(json!({"event": "x", "schedule": "@daily"})),
            )]),
        ),
        (
            "cron with four fields",
            with(&[("/spec", "trigger", Some(json!({"schedule": "0 3 * *"})))]),
        ),
        (
            "cron @-form Argo does not read",
            with(&[(
                "/spec",
                "trigger",
                Some(json!({"schedule": "@fortnightly"})),
            )]),
        ),
        (
            "trigger a number",
            with(&[("/spec", "trigger", Some(json!(42)))]),
        ),
        (
            "rate limit with a slash",
            with(&[("/spec", "rate-limits", Some(json!({"db:apply": "10/hour"})))]),
        ),
        (
            "rate limit keyed by a bare name",
            with(&[(
                "/spec",
                "rate-limits",
                Some(json!({"apply": "10 per hour"})),
            )]),
        ),
        (
            "rollback on-failure not in the enum",
            with(&[("/spec", "rollback", Some(json!({"on-failure": "auto"})))]),
        ),
        (
            "stage rollback without action",
            with(&[(S1, "rollback", Some(json!({"params": {}})))]),
        ),
        (
            "audit retention not a duration",
            with(&[("/spec", "audit", Some(json!({"retention": "7 years"})))]),
        ),
        (
            "compliance tag ISO27001-A.x.y (ambiguous)",
            with(&[("/metadata", "compliance", Some(json!(["ISO27001-A.14.2"])))]),
        ),
        (
            "compliance tag of an unknown framework",
            with(&[("/metadata", "compliance", Some(json!(["HIPAA-164.312"])))]),
        ),
        (
            "label value with a space",
            with(&[(
                "/metadata",
                "labels",
                Some(json!({"team": "platform security"})),
            )]),
        ),
        (
            "label value a number",
            with(&[("/metadata", "labels", Some(json!({"tier": 1})))]),
        ),
        (
            "monitoring target without an operator",
            with(&[(
                "/spec",
                "monitoring",
                Some(json!({"metrics": [{"name": "m", "target": "p95 4h"}]})),
            )]),
        ),
        (
            "escalation level without after",
            with(&[
                (S1, "sla", Some(json!("1h"))),
                (S1, "escalation", Some(json!([{"notify": ["x"]}]))),
            ]),
        ),
        (
            "escalation without sla",
            with(&[(
                S1,
                "escalation",
                Some(json!([{"after": "1h", "notify": ["x"]}])),
            )]),
        ),
        (
            "conditions on a manual stage",
            with(&[(
                S1,
                "conditions",
                Some(json!([{"if": "a.b > 1", "then": "auto"}, {"else": "manual"}])),
            )]),
        ),
        (
            "conditions without approval (auto)",
            with(&[(S0, "conditions", Some(json!([{"else": "auto"}])))]),
        ),
        (
            "conditional manual branch with an empty approvers list, none on the stage",
            with(&[
                (S1, "approval", Some(json!("conditional"))),
                (S1, "approvers", None),
                (
                    S1,
                    "conditions",
                    Some(
                        json!([{"if": "a.b > 1", "then": "manual", "approvers": []}, {"else": "auto"}]),
                    ),
                ),
            ]),
        ),
        (
            "input schema given twice",
            with(&[
                (
                    "/spec",
                    "trigger",
                    Some(json!({"event": "e", "input-schema": "a.json"})),
                ),
                ("/spec", "input-schema", Some(json!("b.json"))),
            ]),
        ),
        (
            "spec rollback without on-failure",
            with(&[("/spec", "rollback", Some(json!({"notification": ["x"]})))]),
        ),
        (
            "metric without target",
            with(&[(
                "/spec",
                "monitoring",
                Some(json!({"metrics": [{"name": "m"}]})),
            )]),
        ),
        (
            "metric name an alert cannot refer to",
            with(&[(
                "/spec",
                "monitoring",
                Some(json!({"metrics": [{"name": "9lives", "target": "< 5%"}]})),
            )]),
        ),
        ("zero duration", with(&[(S0, "timeout", Some(json!("0s")))])),
        (
            "rate limit of zero",
            with(&[(
                "/spec",
                "rate-limits",
                Some(json!({"db:apply": "0 per hour"})),
            )]),
        ),
        (
            "retries over 1000",
            with(&[(S0, "retries", Some(json!(1001)))]),
        ),
        ("blank prompt", with(&[(S0, "prompt", Some(json!("  ")))])),
        ("blank agent", with(&[(S0, "agent", Some(json!("")))])),
        (
            "blank role",
            with(&[(S1, "approvers", Some(json!([{"role": " "}])))]),
        ),
        (
            "blank bare approver",
            with(&[(S1, "approvers", Some(json!(["  "])))]),
        ),
        (
            "cron with a Quartz seconds field",
            with(&[("/spec", "trigger", Some(json!({"schedule": "0 0 3 * * *"})))]),
        ),
        (
            "rollout without strategy",
            with(&[("/spec", "rollout", Some(json!({"steps": [{"weight": 10}]})))]),
        ),
        (
            "rollout step with an unknown key",
            with(&[(
                "/spec",
                "rollout",
                Some(json!({"strategy": "canary", "steps": [{"weight": 10, "wait": "1m"}]})),
            )]),
        ),
        (
            "rollout metric without threshold",
            with(&[(
                "/spec",
                "rollout",
                Some(json!({"strategy": "canary", "metrics": [{"name": "error-rate"}]})),
            )]),
        ),
        (
            "named promotion that is not a promotion",
            with(&[(
                "/spec",
                "promotion",
                Some(json!({"from": "dev", "to": "staging", "staging-promotion": "yes"})),
            )]),
        ),
        (
            "needs naming a non-DNS name",
            with(&[(S1, "needs", Some(json!(["Analyse"])))]),
        ),
        (
            "langfuse unknown key",
            with(&[(S0, "langfuse", Some(json!({"trace": "auto"})))]),
        ),
        (
            "rollout strategy misspelt",
            with(&[("/spec", "rollout", Some(json!({"strategy": "canery"})))]),
        ),
        (
            "rollout step weight over 100",
            with(&[(
                "/spec",
                "rollout",
                Some(json!({"strategy": "canary", "steps": [{"weight": 150}]})),
            )]),
        ),
    ];
    let mut problems = Vec::new();
    for (name, doc) in &cases {
        let errs = errors(&v, doc);
        if errs.is_empty() {
            problems.push(format!("{name}: accepted, but must be rejected"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn yaml_loaded_through_the_loader_is_checked_like_json() {
    // The YAML 1.2 core reading matters: `retries: "2"` is a string, `retries: 2` an integer,
    // `when: false` a boolean; `sla: 4h` a string.
    let loader = loader();
    let v = validator();
    let text = "\
apiVersion: agenticops/v1
kind: Playbook
metadata: {name: demo}
spec:
  trigger: demo
  stages:
    - name: a
      agent: glm-5
      retries: 2
      sla: 4h
      when: false
";
    let ok = loader.load_text("ok.yaml", text);
    assert!(!ok.has_errors());
    let doc = ok.docs[0].root.to_json();
    assert_eq!(errors(&v, &doc), Vec::<String>::new());

    let bad = loader.load_text("bad.yaml", text.replace("retries: 2", "retries: \"2\""));
    let errs = errors(&v, &bad.docs[0].root.to_json());
    assert!(
        errs.iter().any(|e| e.starts_with("/spec/stages/0/retries")),
        "{errs:?}"
    );
}

#[test]
fn header_parsing() {
    assert_eq!(header("# schema: invalid\nx: 1"), Some(Expect::Invalid));
    assert_eq!(header("#schema: valid"), Some(Expect::Valid));
    assert_eq!(
        header("# schema: valid -- PB4001 cycle\n"),
        Some(Expect::Valid)
    );
    assert_eq!(header("# schema: maybe"), None);
    assert_eq!(header("apiVersion: agenticops/v1"), None);
}
