use super::*;
use crate::yaml::{Limits, parse};

const HEAD: &str = "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\nspec:\n  trigger: e\n  stages:\n";

/// Builds the first document; returns the model and `(code, text under the span)`.
fn run_opts(text: &str, opts: &ModelOptions) -> (Option<Playbook>, Vec<(&'static str, String)>) {
    let sm = SourceMap::new();
    let f = sm.add("t.yaml", text);
    let mut d = Vec::new();
    let docs = parse(&f, &Limits::default(), &mut d);
    assert!(d.is_empty(), "{d:?}");
    let p = docs
        .first()
        .and_then(|doc| from_document(&doc.root, &sm, opts, &mut d));
    let out = d
        .iter()
        .map(|d| (d.code.id, f.slice(d.span).to_string()))
        .collect();
    (p, out)
}

fn run(text: &str) -> (Option<Playbook>, Vec<(&'static str, String)>) {
    run_opts(text, &ModelOptions::default())
}

fn stage(body: &str) -> Vec<(&'static str, String)> {
    run(&format!("{HEAD}    - name: s\n{body}")).1
}

fn one<'v>(v: &'v [(&'static str, String)]) -> (&'static str, &'v str) {
    assert_eq!(v.len(), 1, "{v:?}");
    (v[0].0, v[0].1.as_str())
}

#[test]
fn other_documents_are_not_playbooks() {
    for t in [
        "- a\n- b\n",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n",
        "apiVersion: agenticops.io/v1\nkind: Playbook\nmetadata: {name: x}\n",
        "apiVersion: v1\nkind: ConfigMap\n",
        "a: 1\n",
    ] {
        let (p, d) = run(t);
        assert!(p.is_none() && d.is_empty(), "{t}: {d:?}");
    }
    let (p, d) = run("apiVersion: agenticops/v1\nkind: Workflow\n");
    assert!(p.is_none());
    assert_eq!(one(&d), ("PB2020", "Workflow"));
    let (p, d) = run(
        "apiVersion: agenticops/v1\nmetadata: {name: x}\nspec: {trigger: e, stages: [{name: s, agent: m}]}\n",
    );
    assert!(p.is_some());
    assert_eq!(one(&d), ("PB2003", ""));
    let (p, d) = run(
        "kind: Playbook\nmetadata: {name: x}\nspec: {trigger: e, stages: [{name: s, agent: m}]}\n",
    );
    assert!(p.is_some());
    assert_eq!(one(&d), ("PB2003", ""));
}

#[test]
fn a_clean_playbook_has_no_findings() {
    let (p, d) = run(&format!(
        "{HEAD}    - name: s\n      agent: m\n      needs: []\n      when: true\n"
    ));
    assert!(d.is_empty(), "{d:?}");
    let p = p.unwrap();
    let s = &p.spec.stages[0];
    assert_eq!(s.needs.as_ref().map(|n| n.value.len()), Some(0));
    assert_eq!(s.when.as_ref().map(|w| w.text.value.as_str()), Some("true"));
    assert_eq!(s.agent().map(|a| a.value.as_str()), Some("m"));
    assert_eq!(s.approval(), Approval::Auto);
}

#[test]
fn nulls_and_empty_values() {
    let d = stage("      agent: m\n      approval: manual\n      approvers:\n");
    assert_eq!(one(&d).0, "PB2002");
    assert_eq!(one(&stage("      agent: \"\"\n")), ("PB2018", "\"\""));
    assert_eq!(one(&stage("      agent: m\n      approval:\n")).0, "PB2004");
}

#[test]
fn trigger_forms() {
    let t = |trig: &str| {
        run(&format!(
            "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\nspec:\n  trigger: {trig}\n  stages: [{{name: s, agent: m}}]\n"
        ))
    };
    let (p, d) = t("{event: e, input-schema: in.json}");
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(
        p.unwrap().spec.input_schema().map(|s| s.value.as_str()),
        Some("in.json")
    );
    assert_eq!(one(&t("{}").1), ("PB2003", "trigger"));
    assert_eq!(
        one(&t("{event: e, timezone: UTC}").1),
        ("PB2001", "timezone")
    );
    assert_eq!(
        one(&t("{schedule: '0 3 * * *', input-schema: x.json}").1),
        ("PB2001", "input-schema")
    );
    assert_eq!(one(&t("[e]").1).0, "PB2002");
    assert_eq!(one(&t("{schedule: 5}").1), ("PB2002", "5"));
    assert_eq!(one(&t("{schedule: '@every 5m'}").1), ("PB2006", "@every"));
    assert_eq!(
        one(&t("{schedule: 'TZ=UTC 0 3 * * *'}").1),
        ("PB2006", "TZ=UTC")
    );
    assert_eq!(
        one(&t("{schedule: '@daily', timezone: europe/berlin}").1),
        ("PB2007", "europe/berlin")
    );
    let (_, d) = run(
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\nspec:\n  trigger: {event: e, input-schema: a.json}\n  input-schema: b.json\n  stages: [{name: s, agent: m}]\n",
    );
    assert_eq!(one(&d), ("PB2022", "b.json"));
}

#[test]
fn spec_level_checks() {
    let spec = |extra: &str| {
        run(&format!(
            "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\nspec:\n  trigger: e\n{extra}  stages: [{{name: s, agent: m}}]\n"
        ))
        .1
    };
    assert_eq!(one(&spec("  risk: medium\n")), ("PB2012", "medium"));
    assert!(spec("  risk: medium\n  approvers: [release-managers]\n").is_empty());
    assert_eq!(
        one(&spec("  approvers: [release-managers]\n")),
        ("PB2013", "approvers")
    );
    assert_eq!(
        one(&spec("  rollback: {notification: [x]}\n")),
        ("PB2003", "rollback")
    );
    assert_eq!(
        one(&spec("  rollback: {on-failure: auto}\n")),
        ("PB2004", "auto")
    );
    assert_eq!(
        one(&spec("  audit: {retention: PT4H}\n")),
        ("PB2005", "PT4H")
    );
    assert_eq!(one(&spec("  audit: {retention: 0d}\n")), ("PB2005", "0d"));
    assert_eq!(
        one(&spec("  rate-limits: {\"a:b\": 10}\n")),
        ("PB2017", "10")
    );
    assert_eq!(
        one(&spec("  monitoring: {alerts: [{notify: [x]}]}\n")),
        ("PB2003", "notify")
    );
    assert_eq!(
        one(&spec(
            "  monitoring: {metrics: [{name: 9lives, target: < 5%}]}\n"
        ))
        .0,
        "PB2018"
    );
    let (_, d) = run(
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\nspec:\n  trigger: e\n  stages: []\n",
    );
    assert_eq!(one(&d), ("PB2003", "stages"));
    let (_, d) = run(
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\n  status: {}\nspec:\n  trigger: e\n  stages: [{name: s, agent: m}]\n",
    );
    assert_eq!(one(&d), ("PB2001", "status"));
}

#[test]
fn rollout_and_promotion_from_the_seed() {
    let extra = "  rollout:\n    strategy: canary\n    steps:\n      - weight: 10\n        pause: 10m\n      - weight: 100\n    rollback:\n      on-failure: auto\n    metrics:\n      - name: error-rate\n        threshold: \"> 1%\"\n  promotion:\n    from: dev\n    to: staging\n    requires:\n      - all-tests-passed\n      - ragas-score > 0.8\n    staging-promotion:\n      from: staging\n      to: production\n      requires: [ciso-approval]\n";
    let (p, d) = run(&format!(
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\nspec:\n  trigger: e\n{extra}  stages: [{{name: s, agent: m}}]\n"
    ));
    assert!(d.is_empty(), "{d:?}");
    let p = p.unwrap();
    assert!(p.spec.rollout.is_some() && p.spec.promotion.is_some());
    let (_, d) = run(
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\nspec:\n  trigger: e\n  rollout: {strategy: linear, steps: [{weight: 150}]}\n  stages: [{name: s, agent: m}]\n",
    );
    assert_eq!(
        d.iter().map(|x| x.0).collect::<Vec<_>>(),
        ["PB2004", "PB2018"]
    );
}

#[test]
fn stage_level_checks() {
    assert_eq!(
        one(&stage("      agent: m\n      retries: \"2\"\n")),
        ("PB2002", "\"2\"")
    );
    assert_eq!(
        one(&stage("      agent: m\n      retries: 1.5\n")),
        ("PB2002", "1.5")
    );
    assert_eq!(
        one(&stage(
            "      agent: m\n      notification: {on-pendng: [x]}\n"
        )),
        ("PB2001", "on-pendng")
    );
    assert_eq!(
        one(&stage("      agent: m\n      audit: {log-to: [x]}\n")),
        ("PB2001", "audit")
    );
    let d = stage("      action: a:b\n      rollback: {on-failure: x}\n");
    assert_eq!(
        d,
        [
            ("PB2001", "on-failure".to_string()),
            ("PB2003", "rollback".to_string())
        ]
    );
    assert_eq!(
        one(&stage("      action: a:b\n      rollback: {params: {}}\n")),
        ("PB2003", "rollback")
    );
    assert_eq!(
        one(&stage(
            "      action: a:b\n      rollback: {action: undo}\n"
        )),
        ("PB2010", "undo")
    );
    assert_eq!(
        one(&stage("      agent: m\n      params: [a]\n")).0,
        "PB2002"
    );
    assert_eq!(one(&stage("      agent: m\n      when: [a]\n")).0, "PB2002");
    assert_eq!(
        one(&stage("      agent: m\n      audit-log: always\n")),
        ("PB2004", "always")
    );
    assert_eq!(
        one(&stage(
            "      agent: m\n      langfuse: {trace-id: auto, tags: [a], metadata: {k: v}, extra: 1}\n"
        )),
        ("PB2001", "extra")
    );
    assert_eq!(
        one(&stage("      agent: m\n      sla: 1h\n")),
        ("PB2013", "sla")
    );
    assert!(
        stage("      agent: m\n      risk: medium\n      approvers: [sre]\n      sla: 1h\n")
            .is_empty()
    );
    assert_eq!(
        one(&stage(
            "      agent: m\n      approval: manual\n      approvers: [{}]\n"
        ))
        .0,
        "PB2003"
    );
    assert_eq!(
        one(&stage(
            "      agent: m\n      approval: manual\n      approvers: [{group: x}]\n"
        ))
        .0,
        "PB2001"
    );
    let d = stage("      agent: m\n      approval: manual\n      approvers: [{group: x}]\n");
    assert_eq!(d.len(), 1, "{d:?}");
}

#[test]
fn condition_shapes() {
    let c = |items: &str| {
        stage(&format!(
            "      agent: m\n      approval: conditional\n      approvers: [a]\n      conditions:\n{items}"
        ))
    };
    assert!(c("        - if: x > 1\n          then: manual\n        - else: auto\n").is_empty());
    assert_eq!(
        one(&c("        - if: x > 1\n          else: auto\n")),
        ("PB2014", "else")
    );
    assert_eq!(
        one(&c(
            "        - if: x > 1\n          then: manual\n        - else: auto\n        - else: manual\n"
        )),
        ("PB2014", "else")
    );
    assert_eq!(
        one(&c("        - approvers: [a]\n        - else: auto\n")),
        ("PB2014", "approvers")
    );
    assert_eq!(
        one(&c("        - if: x > 1\n        - else: auto\n")),
        ("PB2003", "if")
    );
    assert_eq!(
        one(&c("        - else: auto\n          then: manual\n")),
        ("PB2014", "then")
    );
    let d = c(
        "        - if: x > 1\n          then: manual\n        - else: manual\n          approvers: [b]\n",
    );
    assert!(d.is_empty(), "{d:?}");
    let d = stage(
        "      agent: m\n      approval: conditional\n      conditions:\n        - if: x\n          then: auto\n        - else: manual\n",
    );
    assert_eq!(one(&d), ("PB2012", "manual"));
    let d = stage("      agent: m\n      approval: conditional\n      conditions: []\n");
    assert_eq!(one(&d), ("PB2014", "conditions"));
}

#[test]
fn options_define_guardrails_and_policies() {
    let text = format!(
        "{HEAD}    - name: s\n      agent: m\n      guardrails: [owasp-top-10]\n      policy: prod\n"
    );
    let (_, d) = run(&text);
    assert_eq!(
        d.iter().map(|x| x.0).collect::<Vec<_>>(),
        ["PB2015", "PB2016"]
    );
    let opts = ModelOptions {
        extra_guardrails: vec!["owasp-top-10".into()],
        policies: vec!["prod".into()],
        ..ModelOptions::default()
    };
    assert!(run_opts(&text, &opts).1.is_empty());
}

#[test]
fn escalation_levels() {
    let d = stage(
        "      agent: m\n      approval: manual\n      approvers: [a]\n      sla: 1h\n      escalation:\n        - approvers: [b]\n",
    );
    assert_eq!(one(&d), ("PB2003", "approvers"));
    let d = stage(
        "      agent: m\n      approval: manual\n      approvers: [a]\n      sla: 1h\n      escalation: {after: 1h}\n",
    );
    assert_eq!(one(&d).0, "PB2002");
}
