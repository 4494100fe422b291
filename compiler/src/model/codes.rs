//! The codes of the Playbook format's shape and value diagnostics (PB2xxx), each with
//! the documentation `pbc explain` prints.

use crate::declare_codes;

declare_codes! {
    /// A mapping has a key that the Playbook format does not define at that place.
    ///
    /// Every mapping of an `agenticops/v1` Playbook has a fixed set of fields,
    /// except the open maps `params`, `metadata.labels`, `metadata.annotations`,
    /// `langfuse.metadata`, `rollout` and `promotion`. A misspelt field would otherwise be
    /// silently ignored, so it is an error. The help names the closest field and lists the
    /// valid ones; the fix renames the key.
    ///
    /// ```yaml
    /// - name: review
    ///   agent: glm-5
    ///   aproval: manual     # did you mean `approval`?
    /// ```
    PB2001 UNKNOWN_FIELD "unknown-field" Error "a field the Playbook format does not define";
    /// A value has the wrong YAML type: a mapping where a list is expected, a number where a
    /// string is expected, and so on.
    ///
    /// pbc reads YAML 1.2: `retries: "2"` is a string and `name: 123` an integer. Write the
    /// value in the expected form; quote strings that look like numbers or booleans, and write
    /// a single list item as a list (`guardrails: [pii-detection]`).
    ///
    /// ```yaml
    /// guardrails: pii-detection    # expected a list of guardrail names, found a string
    /// ```
    PB2002 WRONG_TYPE "wrong-type" Error "a value of the wrong type";
    /// A required field is missing.
    ///
    /// Required: `apiVersion`, `kind`, `metadata.name`, `spec.trigger`, `spec.stages` (at
    /// least one), a stage's `name`, a condition's `then`, a spec `rollback`'s `on-failure`, a
    /// stage `rollback`'s `action`, an escalation level's `after`, a metric's `name` and
    /// `target`, an alert's `condition`, and an `sla` wherever `escalation` is given (its first
    /// level opens when the SLA passes). The diagnostic points at the key of the mapping that
    /// lacks the field (for a list item, at its first key; for the document, at its start).
    ///
    /// ```yaml
    /// metadata:          # `metadata` has no `name`
    ///   description: x
    /// ```
    PB2003 MISSING_FIELD "missing-field" Error "a required field is missing";
    /// A value is not one of the allowed words.
    ///
    /// `approval` is `auto`, `manual` or `conditional`; a condition's `then`/`else` is `auto`
    /// or `manual`; `risk` is `low`, `medium` or `high`; `audit-log` is `required` or
    /// `optional`; `rollback.on-failure` is `revert-to-previous`, `notify-only` or `none`;
    /// `rollout.strategy` is `canary` or `blue-green`. Values are case-sensitive.
    ///
    /// ```yaml
    /// approval: manuel     # expected `auto`, `manual` or `conditional`
    /// ```
    PB2004 INVALID_ENUM "invalid-enum" Error "a value that is not one of the allowed words";
    /// A duration is not written as `<whole number><unit>`.
    ///
    /// Durations (`sla`, `timeout`, `escalation[].after`, `audit.retention`,
    /// `rollout.steps[].pause`) are strings of a positive whole number and one unit: `30s`,
    /// `10m`, `4h`, `2d`. A bare number is refused (seconds or minutes?), and so are combined
    /// units (`1h30m`: write `90m`), fractions (`1.5h`), upper-case units and ISO 8601
    /// (`PT4H`); the help gives the accepted spelling. The longest duration is what Go's
    /// `time.Duration` holds (about 292 years).
    ///
    /// ```yaml
    /// sla: 3600       # write `1h`
    /// ```
    PB2005 INVALID_DURATION "invalid-duration" Error "a duration that is not `30s`, `10m`, `4h` or `2d`";
    /// A schedule trigger's cron expression is not one Argo accepts.
    ///
    /// `schedule` is five fields, `minute hour day-of-month month day-of-week`, read like
    /// robfig/cron's standard parser (which Argo CronWorkflows use): numbers, `*`, `?`, ranges
    /// `a-b`, steps `*/n` and `a-b/n`, lists `a,b`, month names `JAN`-`DEC` and day names
    /// `SUN`-`SAT`. Day-of-week is 0-6 (Sunday is 0; 7 is refused). The descriptors
    /// `@hourly`, `@daily`, `@weekly`, `@monthly` and `@yearly` stand alone; `@annually` and
    /// `@midnight` are refused in favour of `@yearly` and `@daily`, `@every` is refused, and
    /// the time zone goes into `timezone:`, not a `CRON_TZ=` prefix. Quartz extensions (a
    /// seconds field, `L`, `W`, `#`) do not exist here. The diagnostic points at the field.
    ///
    /// ```yaml
    /// trigger:
    ///   schedule: "0 25 * * *"     # `25` is out of range for the hour field (0-23)
    /// ```
    PB2006 INVALID_CRON "invalid-cron" Error "a cron schedule Argo would not accept";
    /// `trigger.timezone` is not an IANA time zone name.
    ///
    /// Use a name of the IANA time zone database, such as `Europe/Berlin`, `America/New_York`
    /// or `UTC`; names are case-sensitive. Abbreviations like `CEST` or `PST` are not zones.
    ///
    /// ```yaml
    /// timezone: Europe/Belin     # did you mean `Europe/Berlin`?
    /// ```
    PB2007 UNKNOWN_TIMEZONE "unknown-timezone" Error "a time zone that is not in the IANA database";
    /// A name is not a DNS-1123 label.
    ///
    /// `metadata.name`, `metadata.namespace` and stage names become Kubernetes object names,
    /// label values and Argo template names, so they must be DNS-1123 labels: at most 63
    /// characters, lower-case letters, digits and `-`, starting and ending with a letter or a
    /// digit. The fix suggests the normalized name (lower-cased, other characters turned into
    /// `-`).
    ///
    /// ```yaml
    /// - name: Code_Review     # write `code-review`
    /// ```
    PB2008 INVALID_NAME "invalid-name" Error "a name that is not a DNS-1123 label";
    /// A stage has both `agent` and `action`, or neither.
    ///
    /// A stage is either an agent step (`agent: MODEL`, which produces an output) or an
    /// action (`action: LAYER:FUNCTION`, which changes something); exactly one of the two.
    ///
    /// ```yaml
    /// - name: deploy
    ///   agent: glm-5
    ///   action: k8s:apply     # remove one of the two
    /// ```
    PB2009 AGENT_OR_ACTION "agent-or-action" Error "a stage needs exactly one of `agent` and `action`";
    /// An action reference is not `LAYER:FUNCTION`.
    ///
    /// `action`, a stage rollback's `action` and the keys of `spec.rate-limits` name an
    /// action as a layer, a colon and a function: `k8s:scale_deployment`. Each part starts
    /// with a letter or digit and holds letters, digits, `_`, `-` and `.`.
    ///
    /// ```yaml
    /// action: notify      # write e.g. `notify:send_message`
    /// ```
    PB2010 INVALID_ACTION_REF "invalid-action-ref" Error "an action that is not `LAYER:FUNCTION`";
    /// Two stages (or two metrics) have the same name.
    ///
    /// Stage names identify stages in `needs`, `context`, expressions, overlays (stages merge
    /// by name) and every target; metric names are what alert conditions read. Each must be
    /// unique within its playbook. The secondary label shows the first definition.
    ///
    /// ```yaml
    /// - name: review
    ///   agent: glm-5
    /// - name: review      # duplicate stage name
    ///   agent: glm-5
    /// ```
    PB2011 DUPLICATE_NAME "duplicate-name" Error "a stage or metric name used twice";
    /// A gate that needs a human has nobody to ask.
    ///
    /// An `approval: manual` stage needs `approvers` (at least one). In a `conditional`
    /// stage, a branch that resolves to `manual` uses its own `approvers`, else the stage's;
    /// with neither it is an error. A `risk: medium` stage, and a playbook with `spec.risk:
    /// medium`, need approvers too. Approvers are `{role: R}`, `{user: EMAIL}`
    /// or a bare string (a role, or a user if it holds `@`).
    ///
    /// ```yaml
    /// - name: deploy
    ///   action: k8s:apply
    ///   approval: manual    # no approvers
    /// ```
    PB2012 MISSING_APPROVERS "missing-approvers" Error "a manual gate without approvers";
    /// A gate field on a stage that has no gate.
    ///
    /// `approvers`, `sla` and `escalation` only matter when a stage waits for a person:
    /// `approval: manual` or `conditional`, or `risk: medium`. On a stage with `approval:
    /// auto` (the default) and no medium risk they have no effect, which usually means the
    /// `approval` line was forgotten.
    ///
    /// ```yaml
    /// - name: deploy
    ///   agent: glm-5
    ///   approvers: [sre-team]    # no effect: approval is `auto`
    /// ```
    PB2013 UNUSED_GATE_FIELD "unused-gate-field" Warning "a gate field on a stage without a gate";
    /// The `conditions` of a conditional gate are malformed.
    ///
    /// `approval: conditional` needs `conditions`: a list of `{if: EXPR, then: manual|auto,
    /// approvers: [...]}` items ending with exactly one `{else: manual|auto}`. The `else` is
    /// required (no gate may have an undefined outcome) and must be last (nothing after it
    /// could ever be reached). An item is either an `if` or the `else`. `conditions` on a stage
    /// whose approval is not `conditional` are never read, so they are an error too.
    ///
    /// ```yaml
    /// approval: conditional
    /// conditions:
    ///   - if: report.risk >= HIGH
    ///     then: manual
    ///   # missing: - else: auto
    /// ```
    PB2014 INVALID_CONDITIONS "invalid-conditions" Error "malformed conditions of a conditional gate";
    /// A stage names a guardrail that is neither built in nor defined in the configuration.
    ///
    /// Built in: `no-secrets-in-code`, `pii-detection`, `prompt-injection-detection`. Others
    /// can be defined under `guardrails:` in `.pbc.yaml`. An unknown guardrail is a warning
    /// here; the runtime refuses to run a stage whose guardrails it cannot enforce unless
    /// `--allow-unenforced-guardrails` is given.
    ///
    /// ```yaml
    /// guardrails: [owasp-top-10]    # not built in
    /// ```
    PB2015 UNKNOWN_GUARDRAIL "unknown-guardrail" Warning "a guardrail that is not built in or configured";
    /// A stage's `policy` (or `always-on-policies` in `.pbc.yaml`) names a policy that the
    /// configuration does not define.
    ///
    /// A policy is evaluated before the stage runs; a name that defines nothing would let the
    /// stage run unchecked, so it is an error. Define the policy under `policies:` in
    /// `.pbc.yaml` (Rego, Cedar or declarative rules), or fix the name.
    ///
    /// ```yaml
    /// policy: prod-change-policy    # no configured policy has this name
    /// ```
    PB2016 UNKNOWN_POLICY "unknown-policy" Error "a policy the configuration does not define";
    /// A rate limit is not `"N per second|minute|hour|day"`.
    ///
    /// `spec.rate-limits` maps `LAYER:FUNCTION` to a string of a positive whole number, the
    /// word `per` and a singular unit: `"10 per hour"`.
    ///
    /// ```yaml
    /// rate-limits:
    ///   "k8s:scale_deployment": 10/hour     # write "10 per hour"
    /// ```
    PB2017 INVALID_RATE_LIMIT "invalid-rate-limit" Error "a rate limit that is not `N per UNIT`";
    /// A value has the right type but is not acceptable: an empty name, a negative
    /// `retries`, a `user` approver that is not an e-mail address, a metric name that an
    /// expression could not refer to.
    ///
    /// ```yaml
    /// retries: -1    # must be 0 or more
    /// ```
    PB2018 INVALID_VALUE "invalid-value" Error "a value outside what the field accepts";
    /// A `kind: Playbook` document has the wrong `apiVersion`.
    ///
    /// Playbooks are `apiVersion: agenticops/v1`. (A dotted API group such as
    /// `agenticops.io/v1` is a Kubernetes custom resource, as pbc's `crd` target emits, and is
    /// not checked as a Playbook.)
    ///
    /// ```yaml
    /// apiVersion: agenticops/v2    # write agenticops/v1
    /// kind: Playbook
    /// ```
    PB2019 INVALID_API_VERSION "invalid-api-version" Error "a Playbook whose apiVersion is not agenticops/v1";
    /// An `apiVersion: agenticops/v1` document whose `kind` is not `Playbook`.
    ///
    /// `agenticops/v1` defines one kind, `Playbook` (case-sensitive).
    ///
    /// ```yaml
    /// apiVersion: agenticops/v1
    /// kind: PlayBook    # write Playbook
    /// ```
    PB2020 UNKNOWN_KIND "unknown-kind" Error "an agenticops/v1 document of a kind other than Playbook";
    /// A label or annotation that Kubernetes would refuse.
    ///
    /// `metadata.labels` and `metadata.annotations` are carried into Kubernetes objects.
    /// Keys are `[prefix/]name` (prefix a DNS subdomain, name 1-63 alphanumerics, `-`, `_`,
    /// `.`); label values are empty or like a key's name; all values are strings.
    ///
    /// ```yaml
    /// labels:
    ///   Team Name: security     # spaces are not allowed in keys
    /// ```
    PB2021 INVALID_LABEL "invalid-label" Error "a label or annotation Kubernetes would refuse";
    /// Two fields that exclude each other are both given.
    ///
    /// A trigger is an `event` or a `schedule`, not both; an approver is a `role` or a
    /// `user`; the input schema is given once, in `trigger.input-schema` or in
    /// `spec.input-schema`.
    ///
    /// ```yaml
    /// trigger:
    ///   event: pr-opened
    ///   schedule: "0 3 * * *"    # one or the other
    /// ```
    PB2022 CONFLICTING_FIELDS "conflicting-fields" Error "fields that exclude each other";
}
