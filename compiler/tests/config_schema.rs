//! `schemas/pbc-config.schema.json` and the config module agree: same keys, and documents the
//! module accepts validate while documents it rejects do not.

use pbc_compiler::config::{Config, KEYS};
use pbc_compiler::fs::OsFs;
use pbc_compiler::load::Loader;
use std::sync::Arc;

fn schema() -> serde_json::Value {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/pbc-config.schema.json"
    );
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn check(text: &str) -> (bool, bool) {
    let loader = Loader::new(Arc::new(OsFs), "", Default::default());
    let l = loader.load_text("c.yaml", text);
    let mut diags = l.diags.clone();
    let mut cfg = Config::default();
    cfg.apply(&l.docs[0].root, &mut diags);
    let module_ok = !diags.iter().any(|d| d.is_error());
    let v = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema())
        .unwrap();
    (module_ok, v.is_valid(&l.docs[0].root.to_json()))
}

#[test]
fn keys_agree() {
    let s = schema();
    let mut schema_keys: Vec<&str> = s["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut module_keys = KEYS.to_vec();
    schema_keys.sort();
    module_keys.sort();
    assert_eq!(schema_keys, module_keys);
}

#[test]
fn accepted_and_rejected_agree() {
    for (text, ok) in [
        ("severity: {PB0008: deny}\nschema-paths: [schemas]\n", true),
        (
            "limits: {max-depth: 64, max-file-size: 1000}\nproduction-environments: [prod]\n",
            true,
        ),
        ("guardrails: [owasp]\npolicies: [p]\n", true),
        (
            "catalogs: [acme.yaml]\nevidence-rules: [rules.yaml]\naudit-retention-minimum: 365d\n",
            true,
        ),
        ("audit-retention-minimum: 1 year\n", false),
        ("catalogs: acme.yaml\n", false),
        (
            "targets: {runner-image: r:1, check-image: busybox:1, crd-group: example.com}\n",
            true,
        ),
        ("targets: {crd-group: nodot}\n", false),
        ("targets: {runner: r}\n", false),
        ("targets: {runner-image: 3}\n", false),
        ("severty: {PB0008: deny}\n", false),
        ("severity: {PB0008: loud}\n", false),
        ("schema-paths: schemas\n", false),
        ("limits: {max-depth: 0}\n", false),
        (
            "limits: {max-resources: 100, max-nodes: 10000, max-output-bytes: 1048576}\n",
            true,
        ),
        ("limits: {max-nodes: 0}\n", false),
        ("limits: {max-output-bytes: big}\n", false),
        ("limits: {depth: 3}\n", false),
        (
            "guardrails:\n  owasp: {patterns: ['eval\\(']}\n  scan: {command: [./scan.sh]}\n",
            true,
        ),
        ("guardrails:\n  owasp: {patterns: ['(']}\n", false),
        (
            "guardrails:\n  owasp: {patterns: [a], command: [b]}\n",
            false,
        ),
        ("guardrails:\n  owasp: {}\n", false),
        ("guardrails:\n  owasp: {regex: [a]}\n", false),
        (
            "always-on-guardrails: [pii-detection]\ndefault-sla: 4h\n",
            true,
        ),
        ("default-sla: 4 hours\n", false),
        ("on-rate-limit: wait\n", true),
        (
            "environments: {dev: {protect: true}, prod: {protect: false}, qa: null}\npromotion-order: [dev, staging, prod]\n",
            true,
        ),
        ("environments: [dev]\n", false),
        ("environments: {dev: {protect: maybe}}\n", false),
        ("environments: {dev: {protected: true}}\n", false),
        ("environments: {dev: true}\n", false),
        ("promotion-order: dev\n", false),
        ("promotion-order: [dev, dev]\n", false),
        ("state: postgres://pbc@db:5432/pbc\n", true),
        ("state: sqlite\n", true),
        ("state: postgres://pbc:secret@db/pbc\n", false),
        ("state: postgres://pbc@db/pbc?password=x\n", false),
        ("state: mysql://db/pbc\n", false),
        ("on-rate-limit: queue\n", false),
        (
            "notifications:\n  a: {stdout: true}\n  b: {file: n.jsonl}\n  c: {webhook: {url: 'http://127.0.0.1:9/x', timeout: 2s, retries: 1}}\n",
            true,
        ),
        ("notifications:\n  c: {webhook: {timeout: 2s}}\n", false),
        ("notifications:\n  c: {email: x}\n", false),
        (
            "notifications:\n  s: {slack: {webhook-url-env: SLACK_URL}}\n  b: {slack: {token-env: SLACK_TOKEN, channel: '#sec', api-url: 'http://127.0.0.1:9/api'}}\n",
            true,
        ),
        (
            "notifications:\n  s: {slack: {token-env: SLACK_TOKEN}}\n",
            false,
        ),
        (
            "notifications:\n  s: {slack: {webhook-url: 'https://hooks.slack.com/x'}}\n",
            false,
        ),
        (
            "notifications:\n  s: {slack: {webhook-url-env: 'not a name'}}\n",
            false,
        ),
        (
            "notifications:\n  p: {pagerduty: {routing-key-env: PD_KEY, api-url: 'https://events.eu.pagerduty.com', source: pbc-prod}}\n",
            true,
        ),
        (
            "notifications:\n  p: {pagerduty: {api-url: 'https://x'}}\n",
            false,
        ),
        (
            "notifications:\n  e: {email: {host: smtp.example.com, port: 587, tls: starttls, from: pbc@example.com, to: [ciso@example.com], username-env: U, password-env: P}}\n",
            true,
        ),
        (
            "notifications:\n  e: {email: {host: h, from: a@b, to: c@d, tls: ssl}}\n",
            false,
        ),
        (
            "notifications:\n  e: {email: {host: h, from: a@b}}\n",
            false,
        ),
        (
            "notifications:\n  e: {email: {host: h, from: a@b, to: c@d, password: x}}\n",
            false,
        ),
        (
            "notifications:\n  w: {webhook: {url-env: HOOK_URL, secret-env: HOOK_SECRET}}\n",
            true,
        ),
        (
            "notifications:\n  w: {webhook: {url: 'http://x', secret: s}}\n",
            false,
        ),
        ("serve: {public-url: 'https://pbc.example.com/'}\n", true),
        ("serve: {public-url: pbc.example.com}\n", false),
        ("serve: {listen: x}\n", false),
        (
            "serve:\n  oidc: {issuer: 'https://login.example.com', audience: pbc, jwks-file: jwks.json, user-claim: email}\n",
            true,
        ),
        ("serve: {oidc: {issuer: x, audience: pbc}}\n", false),
        (
            "serve: {oidc: {issuer: x, audience: pbc, jwks-file: j, algorithm: HS256}}\n",
            false,
        ),
        (
            "serve: {oidc: {issuer: 'a b', audience: pbc, jwks-file: j}}\n",
            false,
        ),
        (
            "serve: {slack: {signing-secret-env: SLACK_SIGNING_SECRET, users: {U01: ann@example.com}}}\n",
            true,
        ),
        ("serve: {slack: {signing-secret: abc}}\n", false),
        ("serve: {slack: {signing-secret-env: 'no good'}}\n", false),
        (
            "serve: {slack: {signing-secret-env: S, users: [ann]}}\n",
            false,
        ),
        (
            "audit-sinks:\n  trail: {file: .pbc/audit/trail.jsonl}\n  abs: {file: /var/log/pbc.jsonl}\n",
            true,
        ),
        ("audit-sinks:\n  trail: {s3: {bucket: b}}\n", true),
        (
            "audit-sinks:\n  trail: {s3: {bucket: b, endpoint: 'http://127.0.0.1:9000', path-style: true, object-lock: true, access-key-id-env: AK, timeout: 5s}}\n",
            true,
        ),
        ("audit-sinks:\n  trail: {s3: {prefix: p/}}\n", false),
        (
            "audit-sinks:\n  trail: {s3: {bucket: b, secret-access-key: x}}\n",
            false,
        ),
        (
            "audit-sinks:\n  trail: {s3: {bucket: b, retries: 2}}\n",
            false,
        ),
        (
            "audit-sinks:\n  trail: {otlp: {endpoint: 'http://127.0.0.1:4318'}}\n",
            true,
        ),
        (
            "audit-sinks:\n  trail: {otlp: {endpoint: 'http://127.0.0.1:4318', headers-env: H, logs: false}}\n",
            true,
        ),
        (
            "audit-sinks:\n  trail: {otlp: {endpoint: localhost}}\n",
            false,
        ),
        (
            "audit-sinks:\n  trail: {cloudtrail: {channel-arn: 'arn:aws:cloudtrail:eu-west-1:123456789012:channel/x'}}\n",
            true,
        ),
        ("audit-sinks:\n  trail: {cloudtrail: {}}\n", false),
        (
            "audit-sinks:\n  trail: {syslog: {host: h, port: 6514, tls: true}}\n",
            true,
        ),
        (
            "audit-sinks:\n  trail: {syslog: {host: h, port: 0}}\n",
            false,
        ),
        (
            "audit-sinks:\n  trail: {syslog: {host: h, app-name: 'a b'}}\n",
            false,
        ),
        ("audit-sinks:\n  trail: {syslog: true}\n", false),
        ("audit-sinks:\n  trail: {fiel: a.jsonl}\n", false),
        ("audit-sinks:\n  trail: {file: ''}\n", false),
        ("audit-sinks:\n  trail: {file: a, stdout: true}\n", false),
        ("audit-sinks:\n  trail: a.jsonl\n", false),
        ("audit-sinks: [trail]\n", false),
        (
            "serve:\n  tokens: [{user: ann@example.com, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}]\n  tokens-file: tokens.yaml\n  event-secret-env: PBC_EVENT_SECRET\n  agents: agents.yaml\n  max-body-bytes: 2048\n  workers: 4\n",
            true,
        ),
        (
            "serve: {tokens: [{user: ann@example.com, sha256: abc}]}\n",
            false,
        ),
        ("serve: {tokens: [{user: ann@example.com}]}\n", false),
        (
            "serve: {tokens: [{user: a, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, token: x}]}\n",
            false,
        ),
        ("serve: {event-secret-env: 'not a name'}\n", false),
        ("serve: {max-body-bytes: 0}\n", false),
        ("serve: {workers: many}\n", false),
        ("serve: {missed-schedules: skip}\n", true),
        ("serve: {missed-schedules: run-once}\n", true),
        ("serve: {missed-schedules: run-all}\n", false),
        ("serve: {missed-schedules: [skip]}\n", false),
        ("serve: {state: sqlite}\n", true),
        ("serve: {state: 'postgres://pbc@db:5432/pbc'}\n", true),
        (
            "serve: {state: 'postgresql://db/pbc?connect_timeout=5'}\n",
            true,
        ),
        ("serve: {state: 'postgres://pbc:secret@db/pbc'}\n", false),
        (
            "serve: {state: 'postgres://db/pbc?user=pbc&password=x'}\n",
            false,
        ),
        ("serve: {state: 'mysql://db/pbc'}\n", false),
        ("serve: {state: [sqlite]}\n", false),
        (
            "serve: {tls: {cert: tls/server.pem, key: tls/server.key}}\n",
            true,
        ),
        ("serve: {tls: {cert: tls/server.pem}}\n", false),
        ("serve: {tls: {key: tls/server.key}}\n", false),
        ("serve: {tls: {cert: '', key: k.pem}}\n", false),
        (
            "serve: {tls: {cert: c.pem, key: k.pem, ca: ca.pem}}\n",
            false,
        ),
        ("serve: {tls: server.pem}\n", false),
        ("tls: {ca-file: certs/ca.pem}\n", true),
        ("tls: {ca-file: ''}\n", false),
        ("tls: {ca: certs/ca.pem}\n", false),
        ("tls: certs/ca.pem\n", false),
        (
            "roles:\n  security-team: [ann@example.com, bob@example.com]\n  empty-team: []\n",
            true,
        ),
        ("roles:\n  security-team: ann@example.com\n", false),
        ("roles: [security-team]\n", false),
        ("roles:\n  security-team: ['']\n", false),
        (
            "policies:\n  pii: {rego: {files: [p/pii.rego], data: [p/vendors.json], query: data.pii.decision}}\n  writes: {cedar: {policies: p/w.cedar, schema: p/w.cedarschema, entities: p/e.json}}\n  limits:\n    timeout: 2s\n    rules:\n      - {id: per-refund, resource: 'payments:refund', param: amount, constraints: {amount_max: 1000, daily_aggregate_max: 5000, group-by: customer}, enforcement: deny}\n      - {constraints: {allow: {currency: [USD, EUR]}, deny: {country: [XX]}}, enforcement: require-approval, approvers: [finance]}\nalways-on-policies: [limits]\ncheck-policies: [policy/static]\n",
            true,
        ),
        ("policies: [a, b]\n", true),
        ("policies:\n  a: {rego: {files: [a.rego]}}\n", false),
        (
            "policies:\n  a: {rego: {files: [a.rego], query: allow}}\n",
            false,
        ),
        ("policies:\n  a: {cedar: {schema: s.json}}\n", false),
        (
            "policies:\n  a: {rules: [], cedar: {policies: p.cedar}}\n",
            false,
        ),
        ("policies:\n  a: {}\n", false),
        (
            "policies:\n  a: {rules: [{constraints: {amount_max: 10}}]}\n",
            false,
        ),
        (
            "policies:\n  a: {rules: [{param: x, constraints: {amount_max: big}}]}\n",
            false,
        ),
        (
            "policies:\n  a: {rules: [{param: x, constraints: {amount_maxx: 1}}]}\n",
            false,
        ),
        ("policies:\n  a: {rules: [{enforcement: block}]}\n", false),
        (
            "policies:\n  a: {rules: []}\n  b: {rules: [], timeout: soon}\n",
            false,
        ),
        ("policies: a\n", false),
    ] {
        let (module_ok, schema_ok) = check(text);
        assert_eq!((module_ok, schema_ok), (ok, ok), "{text}");
    }
}

#[test]
fn the_rules_schema_is_the_config_schemas_definition() {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/policy-rules.schema.json"
    );
    let mut rules: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let obj = rules.as_object_mut().unwrap();
    for k in ["$schema", "$id", "title"] {
        obj.remove(k);
    }
    assert_eq!(rules, schema()["$defs"]["policy-rules"]);
}

#[test]
fn unknown_always_on_policies_are_errors_and_the_list_form_is_deprecated() {
    let loader = Loader::new(Arc::new(OsFs), "", Default::default());
    let l = loader.load_text(
        "c.yaml",
        "always-on-policies: [limitz]\npolicies: {limits: {rules: []}}\n",
    );
    let mut diags = Vec::new();
    let mut cfg = Config::default();
    cfg.apply(&l.docs[0].root, &mut diags);
    let codes: Vec<_> = diags.iter().map(|d| (d.code.id, d.is_error())).collect();
    assert_eq!(codes, [("PB2016", true)]);
    assert!(diags[0].help.as_deref().unwrap_or("").contains("`limits`"));
    let l = loader.load_text("d.yaml", "policies: [a, b-c]\n");
    let mut diags = Vec::new();
    let mut cfg = Config::default();
    cfg.apply(&l.docs[0].root, &mut diags);
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].code.id, "PB0023");
    let fix = diags[0].fix.as_ref().unwrap();
    assert_eq!(fix.edits[0].text, "{a: {rules: []}, b-c: {rules: []}}");
    assert_eq!(cfg.policies, ["a", "b-c"]);
}
