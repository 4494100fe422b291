#!/usr/bin/env python3
"""Writes a passing and a failing fixture for every evidence rule of lints/rules/evidence.yaml:
testdata/compliance/rules/overlays/production/<control>/{pass,fail}.yaml: under
`overlays/production`, so `pbc check` judges them in the production environment, where
`production-action-gates` is assessed.

Both are one playbook claiming only that control. `pass.yaml` carries every fact any
evidence kind looks for (a gated agent stage, a gated action with an undo step, a policy, a
rate limit, schemas, timeouts, guardrails, escalation, two approvers, an audit sink and
retention, a failure notification, a security alert). `fail.yaml` is the same playbook with
the facts of ONE kind the rule requires taken away: of the rule's kinds, the one taken away
least often so far (ties: the first listed), so that the failing fixtures exercise every
kind. The test (lints/tests/rules.rs) checks them as `pbc check` does and fails when a rule has no pair, when `pass.yaml` reports PB5005 for the
control or when `fail.yaml` does not.

Run it after adding or changing a rule:  python3 testdata/compliance/rules/generate.py
(needs PyYAML). The output is deterministic.
"""

import copy
import os
import re
import shutil
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = os.path.join(HERE, "..", "..", "..", "lints", "rules", "evidence.yaml")
OUT = os.path.join(HERE, "overlays", "production")

GATE = {
    "approval": "manual",
    "min-approvals": 2,
    "sla": "4h",
    "escalation": [{"after": "4h", "approvers": [{"role": "change-managers"}], "notify": ["pagerduty-releases"]}],
}


def template(name, tag):
    review = {
        "name": "review",
        "agent": "glm-5",
        "prompt": "Review the change and say whether to apply it.",
        "guardrails": ["pii-detection"],
        "timeout": "10m",
        "output-schema": "review.json",
        **copy.deepcopy(GATE),
        "approvers": [{"role": "change-board"}],
        "notification": {"on-pending": ["slack-change-board"]},
        "audit-log": "required",
    }
    apply = {
        "name": "apply",
        "action": "infra:apply_change",
        "when": "review.decision == 'apply'",
        "params": {"change": "${input.change}"},
        "policy": "change-window",
        "timeout": "5m",
        "output-schema": "apply.json",
        **copy.deepcopy(GATE),
        "approvers": [{"role": "release-managers"}],
        "notification": {"on-pending": ["slack-releases"]},
        "audit-log": "required",
        "rollback": {"action": "infra:revert_change"},
    }
    return {
        "apiVersion": "agenticops/v1",
        "kind": "Playbook",
        "metadata": {"name": name, "compliance": [tag]},
        "spec": {
            "trigger": {"event": "change-requested", "input-schema": "request.json"},
            "rate-limits": {"infra:apply_change": "5 per hour"},
            "stages": [review, apply],
            "rollback": {"on-failure": "revert-to-previous", "notification": ["slack-releases"]},
            "audit": {"log-to": ["trail"], "retention": "400d"},
            "monitoring": {
                "metrics": [{"name": "change-failure-rate", "target": "< 5%"}],
                "alerts": [{"condition": "change-failure-rate > 10%", "notify": ["pagerduty-releases"]}],
            },
        },
    }


def stages(pb):
    return pb["spec"]["stages"]


def drop(d, *keys):
    for k in keys:
        d.pop(k, None)


def no_gates(pb):
    for s in stages(pb):
        drop(s, "approval", "approvers", "min-approvals", "sla", "escalation", "notification")


def break_kind(pb, kind):
    """Takes away the facts `kind` looks for; returns a phrase saying what was taken."""
    spec = pb["spec"]
    review, apply = stages(pb)
    if kind == "audit-sink":
        drop(spec["audit"], "log-to")
        return "no audit sink"
    if kind == "audit-log":
        drop(review, "audit-log")
        return "the gated `review` stage is not `audit-log: required`"
    if kind == "audit-retention":
        drop(spec["audit"], "retention")
        return "no audit retention"
    if kind == "human-gate":
        no_gates(pb)
        return "no stage is gated"
    if kind == "production-action-gates":
        drop(apply, "approval", "approvers", "min-approvals", "sla", "escalation", "notification")
        return "the action runs in production without a gate"
    if kind == "role-approvers":
        for s in stages(pb):
            s["approvers"] = [{"user": "ann@example.com"}, {"user": "bob@example.com"}]
            for e in s.get("escalation", []):
                e["approvers"] = [{"user": "cat@example.com"}]
        return "the gates name people only, no role"
    if kind == "gate-sla":
        drop(review, "sla", "escalation", "notification")
        return "the `review` gate has no SLA and no pending notification"
    if kind == "rollback-on-failure":
        spec["rollback"]["on-failure"] = "none"
        return "`on-failure: none`"
    if kind == "failure-notification":
        drop(spec["rollback"], "notification")
        return "no failure notification"
    if kind == "revert-to-previous":
        drop(apply, "rollback")
        return "the action has no undo step"
    if kind == "monitoring-alerts":
        drop(spec["monitoring"], "alerts")
        return "no monitoring alert"
    if kind == "security-alerts":
        spec["monitoring"] = {
            "metrics": [{"name": "review-latency", "target": "p95 < 1h"}],
            "alerts": [{"condition": "review-latency > 2h", "notify": ["pagerduty-releases"]}],
        }
        return "the only alert is a latency KPI"
    if kind == "rate-limits":
        drop(spec, "rate-limits")
        return "the action has no rate limit"
    if kind == "stage-timeouts":
        drop(apply, "timeout")
        return "the `apply` stage declares no timeout"
    if kind == "output-schemas":
        drop(apply, "output-schema")
        return "the `apply` stage declares no output schema"
    if kind == "input-schema":
        spec["trigger"] = "change-requested"
        return "the trigger has no input schema"
    if kind == "stage-guardrails":
        drop(review, "guardrails")
        return "the agent stage names no guardrail of its own"
    if kind == "action-policies":
        drop(apply, "policy")
        return "no policy checks the action"
    if kind == "gate-escalation":
        drop(review, "escalation")
        return "the `review` gate does not escalate"
    if kind == "two-person-approval":
        drop(review, "min-approvals")
        return "the `review` gate needs one approver"
    sys.exit(f"generate.py: no way to take away evidence kind `{kind}`: add one")


def slug(tag):
    return re.sub(r"[^a-z0-9]+", "-", tag.lower()).strip("-")


def write(path, header, pb):
    with open(path, "w") as f:
        f.write(header)
        yaml.safe_dump(pb, f, sort_keys=False, default_flow_style=None, width=100)


def main():
    with open(RULES) as f:
        rules = yaml.safe_load(f)["rules"]
    shutil.rmtree(OUT, ignore_errors=True)
    broken = {}
    for r in rules:
        tag, kinds = r["control"], r["requires"]
        kind = min(kinds, key=lambda k: (broken.get(k, 0), kinds.index(k)))
        broken[kind] = broken.get(kind, 0) + 1
        d = os.path.join(OUT, tag)
        os.makedirs(d)
        gen = "# Generated by testdata/compliance/rules/generate.py; do not edit.\n"
        write(
            os.path.join(d, "pass.yaml"),
            f"{gen}# Claims {tag} with every piece of evidence its rule requires ({', '.join(kinds)}).\n",
            template(f"{slug(tag)}-pass", tag),
        )
        pb = template(f"{slug(tag)}-fail", tag)
        what = break_kind(pb, kind)
        write(
            os.path.join(d, "fail.yaml"),
            f"{gen}# Claims {tag} without its `{kind}` evidence: {what}.\n",
            pb,
        )


if __name__ == "__main__":
    main()
