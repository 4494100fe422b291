//! The synthetic monorepo of the benchmarks: N playbooks of five stages each,
//! with output schemas and typed conditions, as a kustomize tree
//!
//! ```text
//! OUT/
//!   .pbc.yaml                        the channels and audit sinks the playbooks name
//!   base/kustomization.yaml          resources: every playbook
//!   base/pb-NNNNN-FAMILY.yaml        five stages: auto, conditional, manual, conditional, `when`
//!   base/schemas/FAMILY/*.json       input and output schemas (JSON Schema 2020-12)
//!   overlays/{dev,staging,production}/kustomization.yaml
//!                                    namePrefix, labels and one JSON 6902 patch each
//! ```
//!
//! The output depends only on N: the same N always gives the same bytes. Every playbook
//! passes `pbc check` without findings in every overlay.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

/// The schema families; playbook `i` uses family `i % FAMILIES.len()`.
pub const FAMILIES: &[&str] = &[
    "billing", "payments", "identity", "search", "storage", "network", "mobile", "data", "ml",
    "support",
];

/// The overlays: name, `namePrefix`, and the JSON 6902 patch (a list of operations) applied
/// to every Playbook.
pub const OVERLAYS: &[(&str, &str, &str)] = &[
    (
        "dev",
        "dev-",
        "- op: replace\n  path: /spec/stages/0/timeout\n  value: 30m\n",
    ),
    (
        "staging",
        "staging-",
        "- op: add\n  path: /metadata/labels/release-channel\n  value: beta\n",
    ),
    (
        "production",
        "prod-",
        "- op: add\n  path: /spec/audit/retention\n  value: 2555d\n",
    ),
];

/// A small deterministic generator (splitmix64), so that playbooks differ in their numbers.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// The name of playbook `i`.
pub fn playbook_name(i: usize) -> String {
    format!("pb-{i:05}-{}", FAMILIES[i % FAMILIES.len()])
}

/// The text of playbook `i`.
pub fn playbook(i: usize) -> String {
    let fam = FAMILIES[i % FAMILIES.len()];
    let mut r = Rng::new(i as u64);
    let team = format!("team-{:02}", r.range(1, 40));
    let score = r.range(50, 95);
    let findings = r.range(3, 30);
    let sla = r.range(2, 8);
    let esc = sla.div_ceil(2);
    let timeout = r.range(5, 30);
    let retries = r.range(0, 3);
    let level = r.pick(&["MEDIUM", "HIGH", "CRITICAL"]);
    let agent = r.pick(&["glm-5", "gpt-x", "claude-x"]);
    let event = r.pick(&[
        "pull-request-created",
        "deployment-requested",
        "incident-opened",
    ]);
    let latency = r.range(2, 12);
    let name = playbook_name(i);
    let mut s = String::with_capacity(4096);
    let _ = write!(
        s,
        r#"apiVersion: agenticops/v1
kind: Playbook
metadata:
  name: {name}
  labels:
    app.kubernetes.io/part-of: agentic-playbooks
    team: {team}
    family: {fam}
  description: "Synthetic playbook {i} of the {fam} family: intake, analysis, review, decision and apply"
  compliance:
    - SOC2-CC7.1
    - SOC2-CC8.1
    - ISO27001-8.25
  tags: [synthetic, {fam}]

spec:
  trigger:
    event: {event}
    input-schema: schemas/{fam}/request.json

  stages:
    # Stage 1: read the request
    - name: intake
      agent: {agent}
      prompt: >-
        Read request ${{input.request-id}} for ${{input.repository}} opened by
        ${{input.requester}} and classify its priority and the systems it touches.
      guardrails:
        - pii-detection
        - prompt-injection-detection
      approval: auto
      timeout: {timeout}m
      retries: {retries}
      output-schema: schemas/{fam}/intake-report.json

    # Stage 2: analysis; a lead looks at urgent requests
    - name: analysis
      agent: {agent}
      rag-source: {fam}-runbooks
      prompt: >-
        Analyse request ${{input.request-id}} ({{priority: ${{intake-report.priority}}}}) and
        score how safe the proposed change is, from 0 to 100.
      guardrails:
        - no-secrets-in-code
        - prompt-injection-detection
      context:
        - intake
      approval: conditional
      conditions:
        - if: intake-report.priority >= {level} OR intake-report.systems-touched > 5
          then: manual
          approvers:
            - role: {team}-leads
        - else: auto
      sla: {sla}h
      notification:
        on-pending: [slack-{team}]
      audit-log: required
      output-schema: schemas/{fam}/analysis-report.json

    # Stage 3: human review with escalation
    - name: review
      agent: {agent}
      prompt: Summarise the analysis for the reviewer and list the open questions.
      context:
        - intake
        - analysis
      approval: manual
      approvers:
        - role: {team}-reviewers
        - user: lead-{i}@example.com
      sla: {sla}h
      escalation:
        - after: {esc}h
          approvers:
            - role: {fam}-owners
          notify: [email-{fam}-owners]
      notification:
        on-pending: [slack-{team}]
        on-expired: [slack-{team}, email-{fam}-owners]
      audit-log: required
      output-schema: schemas/{fam}/review-report.json

    # Stage 4: the decision; automatic only for a clean, well-scored change
    - name: decision
      agent: {agent}
      prompt: Decide whether the change goes ahead, given the analysis and the review.
      context:
        - analysis
        - review
      approval: conditional
      conditions:
        - if: analysis-report.score < {score} AND review-report.approved == false
          then: manual
          approvers:
            - role: {fam}-owners
        - if: review-report.findings > {findings} OR analysis-report.risk == HIGH
          then: manual
          approvers:
            - role: {team}-leads
        - else: auto
      sla: {sla}h
      notification:
        on-pending: [slack-{team}]
      audit-log: required
      output-schema: schemas/{fam}/decision-report.json

    # Stage 5: apply, only when the decision says so
    - name: apply
      agent: {agent}
      prompt: >-
        Apply the change for ${{input.repository}} and report the outcome of run
        ${{execution.id}}.
      when: decision-report.go == true AND decision-report.confidence >= 0.5
      guardrails:
        - no-secrets-in-code
      context:
        - decision
      approval: auto
      timeout: {timeout}m

  rollback:
    on-failure: revert-to-previous
    notification:
      - slack-{team}

  audit:
    log-to: [langfuse, cloudtrail]

  monitoring:
    metrics:
      - name: review-latency
        target: p95 < {sla}h
      - name: guardrail-triggers
        target: < 1
    alerts:
      - condition: review-latency > {latency}h
        notify: [slack-{team}]
      - condition: guardrail-triggers > 0
        notify: [slack-{team}, email-{fam}-owners]
"#
    );
    s
}

/// The schemas of a family: `(file name, text)`.
pub fn schemas() -> Vec<(&'static str, String)> {
    let obj = |title: &str, props: &str, required: &str| {
        format!(
            "{{\n  \"$schema\": \"https://json-schema.org/draft/2020-12/schema\",\n  \"title\": \"{title}\",\n  \"type\": \"object\",\n  \"$defs\": {{\n    \"level\": {{\"type\": \"string\", \"enum\": [\"LOW\", \"MEDIUM\", \"HIGH\", \"CRITICAL\"]}}\n  }},\n  \"properties\": {{\n{props}\n  }},\n  \"required\": [{required}]\n}}\n"
        )
    };
    vec![
        (
            "request.json",
            obj(
                "request",
                "    \"request-id\": {\"type\": \"string\"},\n    \"repository\": {\"type\": \"string\"},\n    \"requester\": {\"type\": \"string\", \"format\": \"email\"}",
                "\"request-id\", \"repository\", \"requester\"",
            ),
        ),
        (
            "intake-report.json",
            obj(
                "intake-report",
                "    \"priority\": {\"$ref\": \"#/$defs/level\"},\n    \"systems-touched\": {\"type\": \"integer\", \"minimum\": 0},\n    \"summary\": {\"type\": \"string\"}",
                "\"priority\", \"systems-touched\", \"summary\"",
            ),
        ),
        (
            "analysis-report.json",
            obj(
                "analysis-report",
                "    \"score\": {\"type\": \"number\", \"minimum\": 0, \"maximum\": 100},\n    \"risk\": {\"$ref\": \"#/$defs/level\"},\n    \"notes\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}}",
                "\"score\", \"risk\"",
            ),
        ),
        (
            "review-report.json",
            obj(
                "review-report",
                "    \"approved\": {\"type\": \"boolean\"},\n    \"findings\": {\"type\": \"integer\", \"minimum\": 0},\n    \"questions\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}}",
                "\"approved\", \"findings\"",
            ),
        ),
        (
            "decision-report.json",
            obj(
                "decision-report",
                "    \"go\": {\"type\": \"boolean\"},\n    \"confidence\": {\"type\": \"number\", \"minimum\": 0, \"maximum\": 1},\n    \"reason\": {\"type\": \"string\"}",
                "\"go\", \"confidence\"",
            ),
        ),
    ]
}

/// The configuration: every channel (`slack-team-NN`, `email-FAMILY-owners`) and audit sink
/// (`langfuse`, `cloudtrail`) a playbook may name, each a local file; the playbooks are
/// deployed through `pbc run` and `pbc serve` (`targets.emit`), which enforce every control
/// they declare.
pub fn config() -> String {
    let mut s = String::from("targets:\n  emit: [local, serve]\nnotifications:\n");
    for t in 1..=40 {
        let _ = writeln!(s, "  slack-team-{t:02}: {{file: notifications.jsonl}}");
    }
    for fam in FAMILIES {
        let _ = writeln!(s, "  email-{fam}-owners: {{file: notifications.jsonl}}");
    }
    s.push_str("audit-sinks:\n");
    for sink in ["langfuse", "cloudtrail"] {
        let _ = writeln!(s, "  {sink}: {{file: audit-{sink}.jsonl}}");
    }
    s
}

/// The base's kustomization for `n` playbooks.
pub fn base_kustomization(n: usize) -> String {
    let mut s = String::from(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\nresources:\n",
    );
    for i in 0..n {
        let _ = writeln!(s, "  - {}.yaml", playbook_name(i));
    }
    s
}

/// An overlay's kustomization.
pub fn overlay_kustomization(env: &str, prefix: &str, patch: &str) -> String {
    let mut s = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\nresources:\n  - ../../base\n\nnamePrefix: {prefix}\n\nlabels:\n  - pairs:\n      environment: {env}\n\npatches:\n  - target:\n      kind: Playbook\n    patch: |-\n"
    );
    for line in patch.lines() {
        let _ = writeln!(s, "      {line}");
    }
    s
}

/// Writes the monorepo for `n` playbooks under `out` (which is emptied of a previous tree
/// first: `base/` and `overlays/` are replaced).
pub fn gen_monorepo(n: usize, out: &Path) -> io::Result<()> {
    for d in ["base", "overlays"] {
        let p = out.join(d);
        if p.exists() {
            std::fs::remove_dir_all(&p)?;
        }
    }
    let base = out.join("base");
    std::fs::create_dir_all(&base)?;
    std::fs::write(out.join(".pbc.yaml"), config())?;
    std::fs::write(base.join("kustomization.yaml"), base_kustomization(n))?;
    for i in 0..n {
        std::fs::write(base.join(format!("{}.yaml", playbook_name(i))), playbook(i))?;
    }
    let families = n.clamp(1, FAMILIES.len());
    for fam in &FAMILIES[..families] {
        let dir = base.join("schemas").join(fam);
        std::fs::create_dir_all(&dir)?;
        for (file, text) in schemas() {
            std::fs::write(dir.join(file), text)?;
        }
    }
    for (env, prefix, patch) in OVERLAYS {
        let dir = out.join("overlays").join(env);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("kustomization.yaml"),
            overlay_kustomization(env, prefix, patch),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_distinct() {
        assert_eq!(playbook(7), playbook(7));
        assert_ne!(playbook(7), playbook(8));
        assert!(base_kustomization(3).ends_with("  - pb-00002-identity.yaml\n"));
    }

    #[test]
    fn the_configuration_defines_every_name_a_playbook_uses() {
        let cfg = config();
        for i in 0..200 {
            let text = playbook(i);
            for line in text.lines() {
                let Some((_, list)) = line.split_once("notify: [").or_else(|| {
                    ["on-pending: [", "on-expired: [", "log-to: ["]
                        .iter()
                        .find_map(|k| line.split_once(k))
                }) else {
                    continue;
                };
                for name in list.trim_end_matches(']').split(", ") {
                    assert!(
                        cfg.contains(&format!("  {name}: ")),
                        "{name} of playbook {i}"
                    );
                }
            }
        }
    }
}
