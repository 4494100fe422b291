//! Stages: the list, each stage's fields, its executor (agent or action), guardrails and
//! policy.

use super::*;

impl<'a> Builder<'a> {
    // ----- stages ---------------------------------------------------------------------

    pub(super) fn stages(&mut self, e: &Entry, spec: &Spec) -> Vec<Stage> {
        let Some(items) = e.value.as_seq() else {
            self.wrong_type("stages", &e.value, "a list of stages");
            return Vec::new();
        };
        if items.is_empty() {
            self.push(
                Diagnostic::new(&MISSING_FIELD, e.key.span, "`spec.stages` is empty")
                    .with_help("a playbook needs at least one stage"),
            );
        }
        let mut out: Vec<Stage> = Vec::new();
        let mut seen: HashMap<String, Span> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let Some(stage) = self.stage(item, i, spec) else {
                continue;
            };
            if !stage.name.value.is_empty() {
                if let Some(first) = seen.get(&stage.name.value) {
                    self.push(
                        Diagnostic::new(
                            &DUPLICATE_NAME,
                            stage.name.span,
                            format!("duplicate stage name `{}`", show(&stage.name.value)),
                        )
                        .with_label_text("defined again here")
                        .with_label(*first, "first defined here")
                        .with_help("stage names must be unique: rename one of the two"),
                    );
                } else {
                    seen.insert(stage.name.value.clone(), stage.name.span);
                }
            }
            out.push(stage);
        }
        out
    }

    pub(super) fn stage(&mut self, item: &Node, index: usize, spec: &Spec) -> Option<Stage> {
        let anchor = item_anchor(item);
        let name_node = item.get("name");
        let label = name_node
            .and_then(Node::as_str)
            .filter(|n| !n.is_empty())
            .map(|n| format!("stage `{}`", show(n)))
            .unwrap_or_else(|| format!("stage {}", index + 1));
        let obj = self.obj(
            item,
            "stages",
            label.clone(),
            "a stage",
            anchor,
            STAGE,
            Ctx::Stage,
        )?;
        let mut st = Stage {
            name: Spanned::new(String::new(), anchor),
            index,
            executor: None,
            params: None,
            prompt: None,
            lora: None,
            rag_source: None,
            guardrails: Vec::new(),
            policy: None,
            approval: None,
            approvers: None,
            min_approvals: None,
            conditions: Vec::new(),
            escalation: Vec::new(),
            sla: None,
            timeout: None,
            retries: None,
            notification: None,
            output_schema: None,
            context: Vec::new(),
            needs: None,
            when: None,
            risk: None,
            compliance: Vec::new(),
            audit_log: None,
            rollback: None,
            langfuse: None,
            span: obj.span,
            keys: obj.keys(),
        };
        match obj.get("name") {
            Some(n) => {
                if let Some(s) = self.string("name", &n.value, "a stage name", true) {
                    self.dns_name("stage name", &s, &n.value);
                    st.name = s;
                }
            }
            None => self.missing(
                &obj,
                "name",
                "add `name:` with a DNS-1123 label unique in the playbook",
            ),
        }
        let mut conditions_entry = None;
        for f in obj.entries {
            let v = &f.value;
            let k = f.key_str();
            match k {
                "params" => st.params = self.open_map("params", v),
                "prompt" => st.prompt = self.string(k, v, "a string", true),
                "lora" => st.lora = self.string(k, v, "a LoRA adapter name", true),
                "rag-source" => st.rag_source = self.string(k, v, "a RAG source name", true),
                "guardrails" => {
                    st.guardrails = self.string_list(k, v, "guardrail names");
                    for g in &st.guardrails {
                        self.guardrail(g);
                    }
                }
                "policy" => {
                    st.policy = self.string(k, v, "a policy name", true);
                    if let Some(p) = &st.policy {
                        self.policy(p);
                    }
                }
                "approval" => st.approval = self.enumv(k, v, Approval::NAMES, Approval::parse),
                "approvers" => st.approvers = self.approvers(k, v),
                "min-approvals" => st.min_approvals = self.min_approvals(v),
                "conditions" => conditions_entry = Some(f),
                "escalation" => st.escalation = self.escalation(v),
                "sla" => st.sla = self.duration(k, v),
                "timeout" => st.timeout = self.duration(k, v),
                "retries" => st.retries = self.integer(k, v),
                "notification" => st.notification = self.notification(f),
                "output-schema" => {
                    st.output_schema = self.string(k, v, "a path to a JSON Schema file", true)
                }
                "context" => st.context = self.string_list(k, v, "stage names or output files"),
                "needs" => {
                    if v.as_seq().is_some() {
                        st.needs =
                            Some(Spanned::new(self.string_list(k, v, "stage names"), v.span));
                    } else {
                        self.wrong_type(k, v, "a list of stage names");
                    }
                }
                "when" => st.when = self.expr(k, v),
                "risk" => st.risk = self.enumv(k, v, Risk::NAMES, Risk::parse),
                "compliance" => st.compliance = self.string_list(k, v, "control tags"),
                "audit-log" => st.audit_log = self.enumv(k, v, AuditLog::NAMES, AuditLog::parse),
                "rollback" => st.rollback = self.stage_rollback(f),
                "langfuse" => st.langfuse = self.langfuse(f),
                _ => {}
            }
        }
        st.executor = self.executor(&obj, &st);
        if let Some(c) = conditions_entry {
            st.conditions = self.conditions(c);
        }
        self.gate(&st, conditions_entry, spec);
        Some(st)
    }

    pub(super) fn executor(&mut self, obj: &Obj<'_>, st: &Stage) -> Option<Executor> {
        let agent = obj.get("agent");
        let action = obj.get("action");
        match (agent, action) {
            (Some(a), Some(b)) => {
                let (first, second) = if a.key.span < b.key.span {
                    (a, b)
                } else {
                    (b, a)
                };
                self.push(
                    Diagnostic::new(
                        &AGENT_OR_ACTION,
                        second.key.span,
                        format!("{} has both `agent` and `action`", obj.what),
                    )
                    .with_label(first.key.span, "also given here")
                    .with_help("a stage is an agent step (`agent: MODEL`) or an action (`action: LAYER:FUNCTION`), not both: remove one"),
                );
                None
            }
            (Some(a), None) => self
                .string("agent", &a.value, "a model name", true)
                .map(Executor::Agent),
            (None, Some(b)) => self.action_ref("action", &b.value).map(Executor::Action),
            (None, None) => {
                let span = if st.name.value.is_empty() {
                    obj.anchor
                } else {
                    st.name.span
                };
                self.push(
                    Diagnostic::new(
                        &AGENT_OR_ACTION,
                        span,
                        format!("{} has neither `agent` nor `action`", obj.what),
                    )
                    .with_help("add `agent: MODEL` for an agent step, or `action: LAYER:FUNCTION` for an action"),
                );
                None
            }
        }
    }

    pub(super) fn guardrail(&mut self, g: &Spanned<String>) {
        let known = BUILTIN_GUARDRAILS
            .iter()
            .copied()
            .chain(self.opts.extra_guardrails.iter().map(String::as_str));
        if known.clone().any(|k| k == g.value) {
            return;
        }
        let guess = did_you_mean(&g.value, known);
        let help = guess_help(
            guess,
            &format!(
                "the built-in guardrails are {}; define others under `guardrails:` in `.pbc.yaml`",
                one_of(BUILTIN_GUARDRAILS)
            ),
        );
        let mut d = Diagnostic::new(
            &UNKNOWN_GUARDRAIL,
            g.span,
            format!(
                "guardrail `{}` is neither built in nor configured",
                show(&g.value)
            ),
        )
        .with_help(help);
        if let Some(x) = guess {
            d = d.with_fix(
                format!("write `{x}`"),
                vec![Edit {
                    span: g.span,
                    text: x.to_string(),
                }],
            );
        }
        self.push(d);
    }

    pub(super) fn policy(&mut self, p: &Spanned<String>) {
        if self.opts.policies.contains(&p.value) {
            return;
        }
        let guess = did_you_mean(&p.value, self.opts.policies.iter().map(String::as_str));
        let help = guess_help(guess, "define the policy under `policies:` in `.pbc.yaml`");
        self.push(
            Diagnostic::new(
                &UNKNOWN_POLICY,
                p.span,
                format!("no configured policy is named `{}`", show(&p.value)),
            )
            .with_help(help),
        );
    }
}
