//! The weakenings of one playbook: the resolved document of a protected environment
//! (`cur`) against the same playbook resolved from its base or from the previous
//! environment (`base`). Findings point at the value the overlay's patch set, or at the
//! patch text that removed one (see [`crate::resolve::DocOrigin::removed`]), with a label at
//! the base's value. Every walk is over a fixed depth of the format (spec, stages, a
//! stage's fields): no recursion over the input.

use super::*;
use crate::diag::Code;
use crate::model::values::parse_duration;

pub(super) struct Cmp<'a> {
    /// What the overlay removed (the comparison's own base removed none of these).
    pub(super) removed: Vec<&'a Removal>,
    /// What `base` is, for messages: "the base `playbooks/base`".
    pub(super) against: &'a str,
    /// Where a removal nothing recorded points (the tree's kustomization).
    pub(super) fallback: Span,
    pub(super) out: Vec<Diagnostic>,
}

pub(super) fn text(n: Option<&Node>) -> Option<&str> {
    n.and_then(Node::as_scalar).map(|s| s.text.as_str())
}

fn stages(pb: &Node) -> Vec<(&str, &Node)> {
    pb.get_path(&["spec", "stages"])
        .and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .filter_map(|s| Some((text(s.get("name"))?, s)))
        .collect()
}

fn gated(approval: &str) -> bool {
    matches!(approval, "manual" | "conditional")
}

fn risk_level(r: &str) -> Option<u8> {
    match r {
        "low" => Some(0),
        "medium" => Some(1),
        "high" => Some(2),
        _ => None,
    }
}

/// An approver as written (`{role: R}`, `{user: E}`, or a bare string: a role, or with `@`
/// a user), as `role R` / `user E`.
fn approver_key(n: &Node) -> Option<String> {
    if let Some(s) = n.as_str() {
        let kind = if s.contains('@') { "user" } else { "role" };
        return Some(format!("{kind} `{s}`"));
    }
    for kind in ["role", "user"] {
        if let Some(v) = text(n.get(kind)) {
            return Some(format!("{kind} `{v}`"));
        }
    }
    None
}

fn approvers(list: Option<&Node>) -> Vec<(String, Span)> {
    list.and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .filter_map(|a| Some((approver_key(a)?, a.span)))
        .collect()
}

fn seconds(n: Option<&Node>) -> Option<u64> {
    text(n)
        .and_then(|t| parse_duration(t).ok())
        .map(|d| d.seconds)
}

impl Cmp<'_> {
    /// The span of the patch that removed what is at `path`: the latest removal of it or of
    /// a map holding it, else the latest removal below it, else the fallback.
    pub(super) fn removal(&self, path: &[&str]) -> Span {
        let holds = |r: &&&Removal| {
            r.path.len() <= path.len() && r.path.iter().zip(path).all(|(a, b)| a == b)
        };
        let below = |r: &&&Removal| {
            r.path.len() > path.len() && r.path.iter().zip(path).all(|(a, b)| a == b)
        };
        self.removed
            .iter()
            .filter(holds)
            .max_by_key(|r| r.path.len())
            .or_else(|| self.removed.iter().rev().find(below))
            .map_or(self.fallback, |r| r.span)
    }

    pub(super) fn emit(
        &mut self,
        code: &'static Code,
        span: Span,
        message: String,
        base: Span,
        base_label: String,
    ) {
        let d = Diagnostic::new(code, span, message)
            .with_label(base, format!("{}: {base_label}", self.against))
            .with_help(format!(
                "keep what {} has; for a reviewed exception, write `# pbc:allow({}): <reason>` on this line or the line above",
                self.against, code.id
            ));
        self.out.push(d);
    }

    /// Compares two resolved playbooks.
    pub(super) fn playbook(&mut self, base: &Node, cur: &Node) {
        let bst = stages(base);
        let cst = stages(cur);
        for (name, bs) in &bst {
            match cst.iter().find(|(n, _)| n == name) {
                Some((_, cs)) => self.stage(name, bs, cs, base, cur),
                None => {
                    let ba = text(bs.get("approval")).unwrap_or("auto");
                    if gated(ba) {
                        let span = self.removal(&["spec", "stages", name]);
                        let at = bs.get("approval").map_or(bs.span, |n| n.span);
                        self.emit(
                            &GATE_REMOVED,
                            span,
                            format!("the overlay removes stage `{name}` and its `{ba}` gate"),
                            at,
                            format!("stage `{name}` is gated (`approval: {ba}`)"),
                        );
                    }
                }
            }
        }
        self.order(&bst, &cst, base, cur);
        self.approver_list(
            "spec.approvers",
            base.get_path(&["spec", "approvers"]),
            cur.get_path(&["spec", "approvers"]),
            &["spec", "approvers"],
        );
        self.risk(
            "the playbook",
            base.get_path(&["spec", "risk"]),
            cur.get_path(&["spec", "risk"]),
            &["spec", "risk"],
        );
        // Audit sinks.
        let sinks = |pb: &Node| -> Vec<(String, Span)> {
            pb.get_path(&["spec", "audit", "log-to"])
                .and_then(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .filter_map(|s| Some((s.as_str()?.to_string(), s.span)))
                .collect()
        };
        let cs = sinks(cur);
        for (sink, sp) in sinks(base) {
            if !cs.iter().any(|(c, _)| *c == sink) {
                let at = cur
                    .get_path(&["spec", "audit", "log-to"])
                    .map_or_else(|| self.removal(&["spec", "audit", "log-to"]), |n| n.span);
                self.emit(
                    &AUDIT_WEAKENED,
                    at,
                    format!("the overlay removes the audit sink `{sink}` from `spec.audit.log-to`"),
                    sp,
                    format!("logs to `{sink}`"),
                );
            }
        }
        // Rollback on failure.
        let bo = base.get_path(&["spec", "rollback", "on-failure"]);
        let co = cur.get_path(&["spec", "rollback", "on-failure"]);
        if text(bo) == Some("revert-to-previous")
            && text(co) != Some("revert-to-previous")
            && let Some(b) = bo
        {
            let at = co.map_or_else(
                || self.removal(&["spec", "rollback", "on-failure"]),
                |n| n.span,
            );
            self.emit(
                &ROLLBACK_REMOVED,
                at,
                format!(
                    "the overlay changes `spec.rollback.on-failure` from `revert-to-previous` to `{}`",
                    text(co).unwrap_or("nothing")
                ),
                b.span,
                "reverts the completed stages on failure".into(),
            );
        }
    }

    fn order(&mut self, bst: &[(&str, &Node)], cst: &[(&str, &Node)], base: &Node, cur: &Node) {
        let common_b: Vec<&str> = bst
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| cst.iter().any(|(c, _)| c == n))
            .collect();
        let common_c: Vec<&str> = cst
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| bst.iter().any(|(b, _)| b == n))
            .collect();
        if common_b == common_c {
            return;
        }
        let Some(i) = common_b.iter().zip(&common_c).position(|(a, b)| a != b) else {
            return;
        };
        let exact = self
            .removed
            .iter()
            .rev()
            .find(|r| r.path == ["spec", "stages"])
            .map(|r| r.span);
        let at = exact
            .or_else(|| cur.get_path(&["spec", "stages"]).map(|n| n.span))
            .unwrap_or(self.fallback);
        let bspan = base
            .get_path(&["spec", "stages"])
            .map_or(base.span, |n| n.span);
        self.emit(
            &STAGES_REORDERED,
            at,
            format!(
                "the overlay reorders the stages: `{}` now runs where `{}` did",
                common_c[i], common_b[i]
            ),
            bspan,
            format!("the order is {}", common_b.join(", ")),
        );
    }

    fn stage(&mut self, name: &str, bs: &Node, cs: &Node, base: &Node, cur: &Node) {
        let p = |f: &'static str| -> [&str; 4] { ["spec", "stages", name, f] };
        let ba = text(bs.get("approval")).unwrap_or("auto");
        let ca = text(cs.get("approval")).unwrap_or("auto");
        if gated(ba) {
            let bspan = bs.get("approval").map_or(bs.span, |n| n.span);
            match cs.get("approval") {
                None => {
                    let at = self.removal(&p("approval"));
                    self.emit(
                        &GATE_REMOVED,
                        at,
                        format!("the overlay removes the `{ba}` gate of stage `{name}`"),
                        bspan,
                        format!("`approval: {ba}`"),
                    );
                }
                Some(n) if ca == "auto" || (ba == "manual" && ca == "conditional") => {
                    let how = if ca == "auto" {
                        "nobody approves it"
                    } else {
                        "it is approved only when a condition holds"
                    };
                    self.emit(
                        &APPROVAL_RELAXED,
                        n.span,
                        format!(
                            "the overlay turns the `{ba}` approval of stage `{name}` into `{ca}`: {how}"
                        ),
                        bspan,
                        format!("`approval: {ba}`"),
                    );
                }
                Some(_) => {}
            }
        }
        if gated(ba) && gated(ca) {
            self.approver_list(
                &format!("stage `{name}`"),
                bs.get("approvers"),
                cs.get("approvers"),
                &p("approvers"),
            );
            let bm = bs.get("min-approvals");
            let cm = cs.get("min-approvals");
            let num = |n: Option<&Node>| text(n).and_then(|t| t.parse::<u64>().ok()).unwrap_or(1);
            if num(cm) < num(bm)
                && let Some(b) = bm
            {
                let at = cm.map_or_else(|| self.removal(&p("min-approvals")), |n| n.span);
                self.emit(
                    &APPROVERS_REMOVED,
                    at,
                    format!(
                        "the overlay lowers `min-approvals` of stage `{name}` from {} to {}",
                        num(bm),
                        num(cm)
                    ),
                    b.span,
                    format!("`min-approvals: {}`", num(bm)),
                );
            }
        }
        if ba == "conditional" && ca == "conditional" {
            self.conditions(name, bs, cs);
        }
        self.guardrails(name, bs, cs);
        // Audit log.
        let bl = bs.get("audit-log");
        if text(bl) == Some("required")
            && let Some(b) = bl
            && text(cs.get("audit-log")) != Some("required")
        {
            let at = cs
                .get("audit-log")
                .map_or_else(|| self.removal(&p("audit-log")), |n| n.span);
            self.emit(
                &AUDIT_WEAKENED,
                at,
                format!("the overlay drops `audit-log: required` of stage `{name}`"),
                b.span,
                "`audit-log: required`".into(),
            );
        }
        // SLA and escalation.
        if let Some(b) = bs.get("sla")
            && let Some(bsec) = seconds(Some(b))
        {
            match cs.get("sla") {
                None => {
                    let at = self.removal(&p("sla"));
                    self.emit(
                        &ESCALATION_WEAKENED,
                        at,
                        format!("the overlay removes the SLA of stage `{name}`"),
                        b.span,
                        format!("`sla: {}`", text(Some(b)).unwrap_or("")),
                    );
                }
                Some(c) if seconds(Some(c)).is_some_and(|s| s > bsec) => self.emit(
                    &ESCALATION_WEAKENED,
                    c.span,
                    format!(
                        "the overlay lengthens the SLA of stage `{name}` from {} to {}",
                        text(Some(b)).unwrap_or(""),
                        text(Some(c)).unwrap_or("")
                    ),
                    b.span,
                    format!("`sla: {}`", text(Some(b)).unwrap_or("")),
                ),
                Some(_) => {}
            }
        }
        let levels = |n: Option<&Node>| n.and_then(Node::as_seq).map_or(0, <[Node]>::len);
        let be = bs.get("escalation");
        let ce = cs.get("escalation");
        if levels(ce) < levels(be)
            && let Some(b) = be
        {
            let at = ce.map_or_else(|| self.removal(&p("escalation")), |n| n.span);
            self.emit(
                &ESCALATION_WEAKENED,
                at,
                format!(
                    "the overlay drops escalation levels of stage `{name}`: {} instead of {}",
                    levels(ce),
                    levels(be)
                ),
                b.span,
                format!("{} escalation level(s)", levels(be)),
            );
        }
        // Risk: a stage without its own has the playbook's.
        let br = bs.get("risk").or_else(|| base.get_path(&["spec", "risk"]));
        let cr = cs.get("risk").or_else(|| cur.get_path(&["spec", "risk"]));
        if cs.get("risk").is_some() || bs.get("risk").is_some() {
            self.risk(&format!("stage `{name}`"), br, cr, &p("risk"));
        }
        // Rollback step.
        if let Some(b) = bs.get("rollback")
            && cs.get("rollback").is_none()
        {
            let at = self.removal(&p("rollback"));
            self.emit(
                &ROLLBACK_REMOVED,
                at,
                format!("the overlay removes the rollback step of stage `{name}`"),
                b.span,
                "the undo step".into(),
            );
        }
    }

    fn risk(&mut self, what: &str, b: Option<&Node>, c: Option<&Node>, path: &[&str]) {
        let level = |n: Option<&Node>| text(n).and_then(risk_level).unwrap_or(0);
        let Some(bn) = b else {
            return;
        };
        if level(c) >= level(b) {
            return;
        }
        let at = c.map_or_else(|| self.removal(path), |n| n.span);
        let bt = text(b).unwrap_or("");
        self.emit(
            &RISK_LOWERED,
            at,
            format!(
                "the overlay lowers the risk of {what} from `{bt}` to `{}`",
                text(c).unwrap_or("low")
            ),
            bn.span,
            format!("`risk: {bt}`"),
        );
    }

    pub(super) fn approver_list(
        &mut self,
        what: &str,
        b: Option<&Node>,
        c: Option<&Node>,
        path: &[&str],
    ) {
        let bl = approvers(b);
        let Some(bn) = b.filter(|_| !bl.is_empty()) else {
            return;
        };
        let cl = approvers(c);
        let missing: Vec<&(String, Span)> = bl
            .iter()
            .filter(|(k, _)| !cl.iter().any(|(c, _)| c == k))
            .collect();
        if missing.is_empty() && cl.len() >= bl.len() {
            return;
        }
        let at = c.map_or_else(|| self.removal(path), |n| n.span);
        let names: Vec<&str> = missing.iter().map(|(k, _)| k.as_str()).collect();
        let msg = if names.is_empty() {
            format!("the overlay gives {what} fewer approvers")
        } else {
            format!(
                "the overlay removes {} from the approvers of {what}",
                names.join(", ")
            )
        };
        let base_span = missing.first().map_or(bn.span, |(_, s)| *s);
        self.emit(
            &APPROVERS_REMOVED,
            at,
            msg,
            base_span,
            format!("{} approver(s)", bl.len()),
        );
    }

    fn guardrails(&mut self, name: &str, bs: &Node, cs: &Node) {
        let list = |n: &Node| -> Vec<(String, Span)> {
            n.get("guardrails")
                .and_then(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .filter_map(|g| Some((g.as_str()?.to_string(), g.span)))
                .collect()
        };
        let cl = list(cs);
        for (g, sp) in list(bs) {
            if !cl.iter().any(|(c, _)| *c == g) {
                let at = cs.get("guardrails").map_or_else(
                    || self.removal(&["spec", "stages", name, "guardrails"]),
                    |n| n.span,
                );
                self.emit(
                    &GUARDRAIL_REMOVED,
                    at,
                    format!("the overlay removes the guardrail `{g}` from stage `{name}`"),
                    sp,
                    format!("guardrail `{g}`"),
                );
            }
        }
        if let Some(bp) = bs.get("policy")
            && let Some(bt) = text(Some(bp))
            && text(cs.get("policy")) != Some(bt)
        {
            let at = cs.get("policy").map_or_else(
                || self.removal(&["spec", "stages", name, "policy"]),
                |n| n.span,
            );
            let msg = match text(cs.get("policy")) {
                Some(other) => {
                    format!("the overlay replaces the policy `{bt}` of stage `{name}` by `{other}`")
                }
                None => format!("the overlay removes the policy `{bt}` from stage `{name}`"),
            };
            self.emit(
                &GUARDRAIL_REMOVED,
                at,
                msg,
                bp.span,
                format!("policy `{bt}`"),
            );
        }
    }
}
