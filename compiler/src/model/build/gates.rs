//! A stage's gate and what hangs on it: conditions, the gate's consistency, escalation
//! levels, notifications, the stage's rollback step and Langfuse tracing.

use super::*;

impl<'a> Builder<'a> {
    pub(super) fn conditions(&mut self, e: &Entry) -> Vec<Condition> {
        let Some(items) = e.value.as_seq() else {
            self.wrong_type(
                "conditions",
                &e.value,
                "a list of conditions (`{if, then}` items and a closing `{else}`)",
            );
            return Vec::new();
        };
        let mut out: Vec<Condition> = Vec::new();
        for item in items {
            let anchor = item_anchor(item);
            let Some(obj) = self.obj(
                item,
                "conditions",
                "this condition",
                "a condition",
                anchor,
                CONDITION,
                Ctx::Other,
            ) else {
                continue;
            };
            let approvers = match obj.get("approvers") {
                Some(a) => self.approvers("approvers", &a.value),
                None => None,
            };
            let min_approvals = obj
                .get("min-approvals")
                .and_then(|m| self.min_approvals(&m.value));
            let cond = match (obj.get("if"), obj.get("else")) {
                (Some(i), Some(el)) => {
                    self.push(
                        Diagnostic::new(
                            &INVALID_CONDITIONS,
                            el.key.span,
                            "a condition has both `if` and `else`",
                        )
                        .with_label(i.key.span, "`if` given here")
                        .with_help("write the `else` as its own, last item: `- else: auto`"),
                    );
                    None
                }
                (Some(i), None) => {
                    let test = self.expr("if", &i.value);
                    let then = match obj.get("then") {
                        Some(t) => self.enumv("then", &t.value, Gate::NAMES, Gate::parse),
                        None => {
                            self.missing(&obj, "then", "add `then: manual` or `then: auto`");
                            None
                        }
                    };
                    match (test, then) {
                        (Some(test), Some(then)) => Some(Condition {
                            test: Some(test),
                            then,
                            approvers,
                            min_approvals,
                            span: item.span,
                            keys: obj.keys(),
                        }),
                        _ => None,
                    }
                }
                (None, Some(el)) => {
                    if let Some(t) = obj.get("then") {
                        self.push(
                            Diagnostic::new(
                                &INVALID_CONDITIONS,
                                t.key.span,
                                "an `else` takes its outcome directly; `then` does not belong to it",
                            )
                            .with_label(el.key.span, "the `else`")
                            .with_help("write `else: manual` or `else: auto`, without `then`"),
                        );
                    }
                    self.enumv("else", &el.value, Gate::NAMES, Gate::parse)
                        .map(|then| Condition {
                            test: None,
                            then,
                            approvers,
                            min_approvals,
                            span: item.span,
                            keys: obj.keys(),
                        })
                }
                (None, None) => {
                    self.push(
                        Diagnostic::new(
                            &INVALID_CONDITIONS,
                            anchor,
                            "this condition has neither `if` nor `else`",
                        )
                        .with_help("write `- if: EXPR` with `then: manual|auto`, or the closing `- else: manual|auto`"),
                    );
                    None
                }
            };
            if let Some(c) = cond {
                out.push(c);
            }
        }
        // Order: exactly one `else`, last.
        let elses: Vec<&Condition> = out.iter().filter(|c| c.is_else()).collect();
        let else_key = |c: &Condition| c.keys.get("else").unwrap_or(c.span);
        if let (Some(first), Some(second)) = (elses.first(), elses.get(1)) {
            self.push(
                Diagnostic::new(
                    &INVALID_CONDITIONS,
                    else_key(second),
                    "the conditions have a second `else`",
                )
                .with_label(else_key(first), "first `else`")
                .with_help("keep one `else`, as the last condition"),
            );
        } else if let Some(el) = elses.first() {
            if let Some(pos) = out.iter().position(|c| c.is_else())
                && let Some(next) = out.get(pos + 1)
            {
                let next_span = next.keys.0.first().map(|k| k.1).unwrap_or(next.span);
                self.push(
                    Diagnostic::new(
                        &INVALID_CONDITIONS,
                        else_key(el),
                        "`else` must be the last condition",
                    )
                    .with_label(next_span, "this condition can never be reached")
                    .with_help("move the `else` to the end of `conditions`"),
                );
            }
        } else if !out.is_empty() || items.is_empty() {
            self.push(
                Diagnostic::new(
                    &INVALID_CONDITIONS,
                    e.key.span,
                    if items.is_empty() {
                        "`conditions` is empty".to_string()
                    } else {
                        "the conditions have no closing `else`".to_string()
                    },
                )
                .with_help("end the list with `- else: auto` or `- else: manual`: it decides when no `if` matches"),
            );
        }
        out
    }

    /// Checks the gate as a whole: conditions vs approval, approvers, unused gate fields.
    pub(super) fn gate(&mut self, st: &Stage, conditions: Option<&Entry>, spec: &Spec) {
        let approval = st.approval();
        let stage_has = approvers_given(&st.keys, &st.approvers);
        let approval_span = st.approval.as_ref().map(|a| a.span);
        let who = if st.name.value.is_empty() {
            format!("stage {}", st.index + 1)
        } else {
            format!("stage `{}`", show(&st.name.value))
        };
        match (approval, conditions) {
            (Approval::Conditional, None) => {
                if let Some(s) = approval_span {
                    self.push(
                        Diagnostic::new(
                            &INVALID_CONDITIONS,
                            s,
                            format!("{who} has `approval: conditional` but no `conditions`"),
                        )
                        .with_help("add `conditions:` with `- if: EXPR` / `then: manual|auto` items and a closing `- else: manual|auto`"),
                    );
                }
            }
            (a, Some(c)) if a != Approval::Conditional => {
                let mut d = Diagnostic::new(
                    &INVALID_CONDITIONS,
                    c.key.span,
                    format!(
                        "{who} has `conditions`, but its approval is `{a}`, so they are never read"
                    ),
                )
                .with_help("set `approval: conditional`, or remove `conditions`");
                if let Some(s) = approval_span {
                    d = d.with_label(s, "approval set here");
                }
                self.push(d);
            }
            _ => {}
        }
        if approval == Approval::Manual && !stage_has {
            let span = approval_span.unwrap_or(st.name.span);
            let mut d = Diagnostic::new(
                &MISSING_APPROVERS,
                span,
                format!("{who} has a manual gate but no approvers"),
            )
            .with_help("add `approvers:` with at least one `- role: R` or `- user: EMAIL`");
            if let Some(a) = &st.approvers {
                d = d.with_label(a.span, "this list is empty");
            }
            self.push(d);
        }
        if approval == Approval::Conditional && !stage_has {
            for c in &st.conditions {
                let own = approvers_given(&c.keys, &c.approvers);
                if c.then.value == Gate::Manual && !own {
                    let branch = if c.is_else() {
                        "`else: manual`"
                    } else {
                        "`then: manual`"
                    };
                    self.push(
                        Diagnostic::new(
                            &MISSING_APPROVERS,
                            c.then.span,
                            format!("this {branch} branch has no approvers, and {who} has none either"),
                        )
                        .with_help("add `approvers:` to this condition, or to the stage (a branch without its own uses the stage's)"),
                    );
                }
            }
        }
        if let Some(r) = &st.risk
            && r.value == Risk::Medium
            && !stage_has
            && approval != Approval::Manual
        {
            self.push(
                Diagnostic::new(
                    &MISSING_APPROVERS,
                    r.span,
                    format!("{who} has `risk: medium` but no approvers"),
                )
                .with_help("a medium-risk stage needs one approval before it runs: add `approvers:` to the stage"),
            );
        }
        // Gate fields on a stage without a gate.
        if approval == Approval::Auto && st.risk(spec) == Risk::Low {
            for k in ["approvers", "min-approvals", "sla", "escalation"] {
                if let Some(ks) = st.keys.get(k) {
                    let mut d = Diagnostic::new(
                        &UNUSED_GATE_FIELD,
                        ks,
                        format!("`{k}` has no effect: {who} has no gate (approval `auto`, risk `low`)"),
                    )
                    .with_help("set `approval: manual` or `conditional` if a person should decide; otherwise remove it");
                    if let Some(s) = approval_span {
                        d = d.with_label(s, "approval set here");
                    }
                    self.push(d);
                }
            }
        }
        if let Some(ek) = st.keys.get("escalation")
            && st.sla.is_none()
            && st.keys.get("sla").is_none()
        {
            self.push(
                Diagnostic::new(
                    &MISSING_FIELD,
                    ek,
                    format!("{who} has `escalation` but no `sla`"),
                )
                .with_help("add `sla:`: the first escalation level opens when the SLA passes"),
            );
        }
    }

    pub(super) fn escalation(&mut self, v: &Node) -> Vec<Escalation> {
        let Some(items) = v.as_seq() else {
            self.wrong_type(
                "escalation",
                v,
                "a list of escalation levels (`{after, approvers, notify}`)",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let Some(o) = self.obj(
                item,
                "escalation",
                "this escalation level",
                "an escalation level",
                item_anchor(item),
                ESCALATION,
                Ctx::Other,
            ) else {
                continue;
            };
            let after = match o.get("after") {
                Some(a) => self.duration("after", &a.value),
                None => {
                    self.missing(
                        &o,
                        "after",
                        "add `after:`, how long this level lasts, e.g. `after: 2h`",
                    );
                    None
                }
            };
            let approvers = match o.get("approvers") {
                Some(a) => self.approvers("approvers", &a.value),
                None => None,
            };
            let notify = match o.get("notify") {
                Some(n) => self.string_list("notify", &n.value, "channel names"),
                None => Vec::new(),
            };
            if let Some(after) = after {
                out.push(Escalation {
                    after,
                    approvers,
                    notify,
                    span: item.span,
                    keys: o.keys(),
                });
            }
        }
        out
    }

    pub(super) fn notification(&mut self, e: &Entry) -> Option<Notification> {
        let o = self.obj(
            &e.value,
            "notification",
            "`notification`",
            "a stage's `notification`",
            e.key.span,
            NOTIFICATION,
            Ctx::Other,
        )?;
        let mut n = Notification {
            span: o.span,
            keys: o.keys(),
            ..Notification::default()
        };
        for f in o.entries {
            let k = f.key_str();
            let slot = match k {
                "on-pending" => &mut n.on_pending,
                "on-approved" => &mut n.on_approved,
                "on-rejected" => &mut n.on_rejected,
                "on-expired" => &mut n.on_expired,
                "on-failure" => &mut n.on_failure,
                _ => continue,
            };
            *slot = self.string_list(k, &f.value, "channel names");
        }
        Some(n)
    }

    pub(super) fn stage_rollback(&mut self, e: &Entry) -> Option<StageRollback> {
        let o = self.obj(
            &e.value,
            "rollback",
            "the stage's `rollback`",
            "a stage's `rollback`",
            e.key.span,
            STAGE_ROLLBACK,
            Ctx::StageRollback,
        )?;
        let action = match o.get("action") {
            Some(a) => self.action_ref("action", &a.value),
            None => {
                self.missing(
                    &o,
                    "action",
                    "add `action: LAYER:FUNCTION`, the step that undoes this stage",
                );
                None
            }
        };
        let params = match o.get("params") {
            Some(p) => self.open_map("params", &p.value),
            None => None,
        };
        Some(StageRollback {
            action: action?,
            params,
            span: o.span,
            keys: o.keys(),
        })
    }

    pub(super) fn langfuse(&mut self, e: &Entry) -> Option<Langfuse> {
        let o = self.obj(
            &e.value,
            "langfuse",
            "`langfuse`",
            "`langfuse`",
            e.key.span,
            LANGFUSE,
            Ctx::Other,
        )?;
        let mut l = Langfuse {
            trace_id: None,
            tags: Vec::new(),
            metadata: None,
            span: o.span,
            keys: o.keys(),
        };
        for f in o.entries {
            match f.key_str() {
                "trace-id" => {
                    l.trace_id = self.string("trace-id", &f.value, "a trace id or `auto`", true)
                }
                "tags" => l.tags = self.string_list("tags", &f.value, "strings"),
                "metadata" => l.metadata = self.open_map("metadata", &f.value),
                _ => {}
            }
        }
        Some(l)
    }
}
