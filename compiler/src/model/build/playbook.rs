//! The document, `metadata` and `spec`: the trigger (events, cron schedules, time zones)
//! and rate limits.

use super::*;

impl<'a> Builder<'a> {
    // ----- the document ---------------------------------------------------------------

    pub(crate) fn playbook(&mut self, root: &Node) -> Option<Playbook> {
        let entries = root.as_map()?;
        let kind_e = root.entry("kind");
        let api_e = root.entry("apiVersion");
        let kind = kind_e.and_then(|e| e.value.as_str());
        let api = api_e.and_then(|e| e.value.as_str());
        let doc_start = Span::point(root.span.file, root.span.start);
        let top = Obj {
            entries,
            span: root.span,
            what: "the document".into(),
            anchor: doc_start,
            allowed: TOP,
        };
        match (api, kind) {
            (Some(API_VERSION), Some("Playbook")) => {}
            (_, Some("Playbook")) => match api_e {
                None => self.missing(
                    &top,
                    "apiVersion",
                    format!("add `apiVersion: {API_VERSION}`"),
                ),
                Some(e) => {
                    if api.is_some_and(|a| a.split('/').next().is_some_and(|g| g.contains('.'))) {
                        // A Kubernetes API group (pbc's own `crd` form): not ours.
                        return None;
                    }
                    let span = self.vspan(&e.value);
                    self.push(
                        Diagnostic::new(
                            &INVALID_API_VERSION,
                            span,
                            format!(
                                "`{}` is not the apiVersion of a Playbook",
                                show(api.unwrap_or(&found(&e.value)))
                            ),
                        )
                        .with_help(format!("Playbooks are `apiVersion: {API_VERSION}`"))
                        .with_fix(
                            format!("write `{API_VERSION}`"),
                            vec![Edit {
                                span,
                                text: API_VERSION.into(),
                            }],
                        ),
                    );
                }
            },
            (Some(API_VERSION), _) => match kind_e {
                None => self.missing(&top, "kind", "add `kind: Playbook`"),
                Some(e) => {
                    let span = self.vspan(&e.value);
                    let close = kind.is_some_and(|k| did_you_mean(k, ["Playbook"]).is_some());
                    let mut d = Diagnostic::new(
                        &UNKNOWN_KIND,
                        span,
                        format!(
                            "`{}` is not a kind of `{API_VERSION}`",
                            show(kind.unwrap_or(&found(&e.value)))
                        ),
                    )
                    .with_help(format!("`{API_VERSION}` has one kind, `Playbook`"));
                    if close {
                        d = d.with_fix(
                            "write `Playbook`",
                            vec![Edit {
                                span,
                                text: "Playbook".into(),
                            }],
                        );
                    }
                    self.push(d);
                    if !close {
                        return None;
                    }
                }
            },
            _ => return None,
        }
        for e in entries {
            if !TOP.contains(&e.key_str()) {
                self.unknown_field(e, &top, "a Playbook document", TOP, Ctx::Top);
            }
        }
        let metadata = match top.get("metadata") {
            Some(e) => self.metadata(e),
            None => {
                self.missing(&top, "metadata", "add `metadata:` with at least `name:`");
                None
            }
        };
        let metadata = metadata.unwrap_or_else(|| Metadata {
            name: Spanned::new(String::new(), doc_start),
            namespace: None,
            labels: None,
            annotations: None,
            description: None,
            compliance: Vec::new(),
            tags: Vec::new(),
            span: doc_start,
            keys: Keys::default(),
        });
        let spec = match top.get("spec") {
            Some(e) => self.spec(e),
            None => {
                self.missing(&top, "spec", "add `spec:` with `trigger:` and `stages:`");
                None
            }
        };
        let spec = spec.unwrap_or_else(|| Spec {
            trigger: None,
            input_schema: None,
            risk: None,
            approvers: None,
            stages: Vec::new(),
            rollback: None,
            audit: None,
            monitoring: None,
            rate_limits: Vec::new(),
            rollout: None,
            promotion: None,
            span: doc_start,
            keys: Keys::default(),
        });
        let sp =
            |e: Option<&Entry>, this: &Self| e.map(|e| this.vspan(&e.value)).unwrap_or(doc_start);
        Some(Playbook {
            api_version: Spanned::new(api.unwrap_or_default().to_string(), sp(api_e, self)),
            kind: Spanned::new(kind.unwrap_or_default().to_string(), sp(kind_e, self)),
            metadata,
            spec,
            span: root.span,
            keys: top.keys(),
        })
    }

    pub(super) fn metadata(&mut self, e: &Entry) -> Option<Metadata> {
        let obj = self.obj(
            &e.value,
            "metadata",
            "`metadata`",
            "`metadata`",
            e.key.span,
            METADATA,
            Ctx::Metadata,
        )?;
        let mut m = Metadata {
            name: Spanned::new(String::new(), e.key.span),
            namespace: None,
            labels: None,
            annotations: None,
            description: None,
            compliance: Vec::new(),
            tags: Vec::new(),
            span: obj.span,
            keys: obj.keys(),
        };
        match obj.get("name") {
            Some(n) => {
                if let Some(s) = self.string("name", &n.value, "a name", true) {
                    self.dns_name("the playbook name", &s, &n.value);
                    m.name = s;
                }
            }
            None => self.missing(
                &obj,
                "name",
                "add `name:` with a DNS-1123 label, e.g. `name: code-review-agent`",
            ),
        }
        for f in obj.entries {
            let v = &f.value;
            match f.key_str() {
                "namespace" => {
                    if let Some(s) = self.string("namespace", v, "a namespace name", true) {
                        self.dns_name("the namespace", &s, v);
                        m.namespace = Some(s);
                    }
                }
                "labels" if self.k8s_map("labels", v, true) => m.labels = Some(v.clone()),
                "annotations" if self.k8s_map("annotations", v, false) => {
                    m.annotations = Some(v.clone())
                }
                "description" => m.description = self.string("description", v, "a string", false),
                "compliance" => m.compliance = self.string_list("compliance", v, "control tags"),
                "tags" => m.tags = self.string_list("tags", v, "strings"),
                _ => {}
            }
        }
        Some(m)
    }

    /// Checks labels/annotations; returns whether the value is a mapping.
    pub(super) fn k8s_map(&mut self, key: &str, v: &Node, labels: bool) -> bool {
        let Some(entries) = v.as_map() else {
            self.wrong_type(key, v, "a mapping of strings");
            return false;
        };
        let what = if labels { "label" } else { "annotation" };
        for e in entries {
            let k = e.key_str();
            if let Some(why) = k8s_key_problem(k) {
                self.push(
                    Diagnostic::new(
                        &INVALID_LABEL,
                        e.key.span,
                        format!("`{}` is not a valid {what} key", show(k)),
                    )
                    .with_help(why),
                );
            }
            match &e.value.value {
                Value::Scalar(s) if s.kind == ScalarKind::Str => {
                    if labels && let Some(why) = k8s_label_value_problem(&s.text) {
                        self.push(
                            Diagnostic::new(
                                &INVALID_LABEL,
                                self.vspan(&e.value),
                                format!("`{}` is not a valid label value", show(&s.text)),
                            )
                            .with_help(why),
                        );
                    }
                }
                Value::Scalar(s) if s.style == Style::Plain && !s.text.is_empty() => {
                    let span = self.vspan(&e.value);
                    self.push(
                        Diagnostic::new(
                            &INVALID_LABEL,
                            span,
                            format!("{what} values are strings, found {}", found(&e.value)),
                        )
                        .with_help(format!("quote it: `\"{}\"`", show(&s.text)))
                        .with_fix(
                            "quote the value",
                            vec![Edit {
                                span,
                                text: format!("{:?}", s.text),
                            }],
                        ),
                    );
                }
                _ => self.wrong_type(k, &e.value, &format!("a string ({what} value)")),
            }
        }
        true
    }

    // ----- spec -----------------------------------------------------------------------

    pub(super) fn spec(&mut self, e: &Entry) -> Option<Spec> {
        let obj = self.obj(
            &e.value,
            "spec",
            "`spec`",
            "`spec`",
            e.key.span,
            SPEC,
            Ctx::Spec,
        )?;
        let mut spec = Spec {
            trigger: None,
            input_schema: None,
            risk: None,
            approvers: None,
            stages: Vec::new(),
            rollback: None,
            audit: None,
            monitoring: None,
            rate_limits: Vec::new(),
            rollout: None,
            promotion: None,
            span: obj.span,
            keys: obj.keys(),
        };
        // Fields the stages depend on first.
        if let Some(r) = obj.get("risk") {
            spec.risk = self.enumv("risk", &r.value, Risk::NAMES, Risk::parse);
        }
        for f in obj.entries {
            let v = &f.value;
            match f.key_str() {
                "trigger" => spec.trigger = self.trigger(f),
                "input-schema" => {
                    spec.input_schema =
                        self.string("input-schema", v, "a path to a JSON Schema file", true)
                }
                "approvers" => spec.approvers = self.approvers("approvers", v),
                "stages" => spec.stages = self.stages(f, &spec),
                "rollback" => spec.rollback = self.rollback(f),
                "audit" => spec.audit = self.audit(f),
                "monitoring" => spec.monitoring = self.monitoring(f),
                "rate-limits" => spec.rate_limits = self.rate_limits(v),
                "rollout" if self.rollout(v, f.key.span) => spec.rollout = Some(v.clone()),
                "promotion" if self.promotion(v) => spec.promotion = Some(v.clone()),
                _ => {}
            }
        }
        if obj.get("trigger").is_none() {
            self.missing(&obj, "trigger", "add `trigger:` with an event name, `{event, input-schema}` or `{schedule, timezone}`");
        }
        if obj.get("stages").is_none() {
            self.missing(&obj, "stages", "add `stages:` with at least one stage");
        }
        // The input schema, given twice.
        if let (
            Some(s),
            Some(Spanned {
                value:
                    Trigger::EventWithSchema {
                        input_schema: Some(t),
                        ..
                    },
                ..
            }),
        ) = (&spec.input_schema, &spec.trigger)
        {
            self.push(
                Diagnostic::new(
                    &CONFLICTING_FIELDS,
                    s.span,
                    "the input schema is given twice, in `trigger.input-schema` and in `spec.input-schema`",
                )
                .with_label(t.span, "also given here")
                .with_help("keep one of the two"),
            );
        }
        // Who approves a medium-risk playbook.
        let has_approvers = approvers_given(&spec.keys, &spec.approvers);
        match &spec.risk {
            Some(r) if r.value == Risk::Medium && !has_approvers => {
                let mut d = Diagnostic::new(
                    &MISSING_APPROVERS,
                    r.span,
                    "a `medium`-risk playbook needs approvers, and `spec.approvers` names none",
                )
                .with_help("add `approvers:` to `spec`: one of them approves each run before its first stage");
                if let Some(a) = &spec.approvers {
                    d = d.with_label(a.span, "this list is empty");
                }
                self.push(d);
            }
            _ if spec.risk() == Risk::Low => {
                if let Some(k) = spec.keys.get("approvers") {
                    self.push(
                        Diagnostic::new(
                            &UNUSED_GATE_FIELD,
                            k,
                            "`spec.approvers` has no effect: the playbook's risk is `low`",
                        )
                        .with_help("`spec.approvers` approve a `risk: medium` playbook before it starts; set `risk: medium`, or move the approvers to the stages that need them"),
                    );
                }
            }
            _ => {}
        }
        Some(spec)
    }

    pub(super) fn trigger(&mut self, e: &Entry) -> Option<Spanned<Trigger>> {
        let v = &e.value;
        let span = self.vspan(v);
        if let Value::Scalar(s) = &v.value
            && s.kind == ScalarKind::Str
        {
            let ev = self.string("trigger", v, "an event name", true)?;
            let _ = s;
            return Some(Spanned::new(Trigger::Event { event: ev }, span));
        }
        if v.as_map().is_none() {
            self.wrong_type(
                "trigger",
                v,
                "an event name or a mapping with `event` or `schedule`",
            );
            return None;
        }
        let has = |k: &str| v.entry(k);
        let (allowed, kind) = match (has("event"), has("schedule")) {
            (Some(a), Some(b)) => {
                let (first, second) = if a.key.span < b.key.span {
                    (a, b)
                } else {
                    (b, a)
                };
                self.push(
                    Diagnostic::new(
                        &CONFLICTING_FIELDS,
                        second.key.span,
                        "a trigger is an `event` or a `schedule`, not both",
                    )
                    .with_label(first.key.span, "also given here")
                    .with_help("keep one: `{event, input-schema}` runs on an event, `{schedule, timezone}` on a clock"),
                );
                (TRIGGER_ALL, "a trigger")
            }
            (_, Some(_)) => (TRIGGER_SCHEDULE, "a schedule trigger"),
            (Some(_), None) => (TRIGGER_EVENT, "an event trigger"),
            (None, None) => (TRIGGER_ALL, "a trigger"),
        };
        let obj = self.obj(
            v,
            "trigger",
            "the trigger",
            kind,
            e.key.span,
            allowed,
            Ctx::Other,
        )?;
        if let Some(sch) = obj.get("schedule") {
            let cron = self.cron(&sch.value);
            let timezone = match obj.get("timezone") {
                Some(t) => self.timezone(&t.value),
                None => None,
            };
            let cron = cron?;
            if obj.get("event").is_some() {
                return None;
            }
            return Some(Spanned::new(Trigger::Schedule { cron, timezone }, span));
        }
        match obj.get("event") {
            Some(ev) => {
                let event = self.string("event", &ev.value, "an event name", true)?;
                let input_schema = match obj.get("input-schema") {
                    Some(i) => self.string(
                        "input-schema",
                        &i.value,
                        "a path to a JSON Schema file",
                        true,
                    ),
                    None => None,
                };
                Some(Spanned::new(
                    Trigger::EventWithSchema {
                        event,
                        input_schema,
                    },
                    span,
                ))
            }
            None => {
                self.push(
                    Diagnostic::new(
                        &MISSING_FIELD,
                        e.key.span,
                        "the trigger has neither `event` nor `schedule`",
                    )
                    .with_help("write `trigger: EVENT`, `trigger: {event: EVENT, input-schema: FILE}` or `trigger: {schedule: CRON, timezone: ZONE}`"),
                );
                None
            }
        }
    }

    pub(super) fn cron(&mut self, v: &Node) -> Option<Spanned<Cron>> {
        let s = self.string("schedule", v, "a cron schedule (a string)", false)?;
        match cron::parse_cron(&s.value) {
            Ok(schedule) => Some(Spanned::new(
                Cron {
                    text: s.value.clone(),
                    schedule,
                },
                s.span,
            )),
            Err(e) => {
                let sub = if e.start == 0 && e.end == s.value.len() {
                    s.span
                } else {
                    text_span(self.sources, v, e.start, e.end)
                };
                let mut d = Diagnostic::new(&INVALID_CRON, sub, e.message);
                if let Some(h) = e.help {
                    d = d.with_help(h);
                }
                if let Some(r) = e.replacement {
                    d = d.with_fix(format!("write `{r}`"), vec![Edit { span: sub, text: r }]);
                }
                self.push(d);
                None
            }
        }
    }

    pub(super) fn timezone(&mut self, v: &Node) -> Option<Spanned<chrono_tz::Tz>> {
        let s = self.string("timezone", v, "an IANA time zone name", false)?;
        if let Ok(tz) = chrono_tz::Tz::from_str(&s.value) {
            return Some(Spanned::new(tz, s.span));
        }
        let names = chrono_tz::TZ_VARIANTS.iter().map(|t| t.name());
        let guess = names
            .clone()
            .find(|n| n.eq_ignore_ascii_case(&s.value))
            .or_else(|| did_you_mean(&s.value, names));
        let help = guess_help(
            guess,
            "use a name from the IANA time zone database, such as `Europe/Berlin`, `America/New_York` or `UTC`",
        );
        let mut d = Diagnostic::new(
            &UNKNOWN_TIMEZONE,
            s.span,
            format!("`{}` is not an IANA time zone", show(&s.value)),
        )
        .with_help(help);
        if let Some(g) = guess {
            d = d.with_fix(
                format!("write `{g}`"),
                vec![Edit {
                    span: s.span,
                    text: g.to_string(),
                }],
            );
        }
        self.push(d);
        None
    }

    pub(super) fn rate_limits(&mut self, v: &Node) -> Vec<RateLimit> {
        let Some(entries) = v.as_map() else {
            self.wrong_type(
                "rate-limits",
                v,
                "a mapping of `LAYER:FUNCTION` to `\"N per UNIT\"`",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in entries {
            let action = self.action_ref("rate-limits", &e.key);
            let span = self.vspan(&e.value);
            let value = match &e.value.value {
                Value::Scalar(s) if s.kind == ScalarKind::Str => match parse_rate(&s.text) {
                    Ok((count, per)) => {
                        Some((count, per, Spanned::new(s.text.as_str().to_owned(), span)))
                    }
                    Err((a, b, msg, help)) => {
                        let sub = if a == 0 && b == s.text.len() {
                            span
                        } else {
                            text_span(self.sources, &e.value, a, b)
                        };
                        self.push(Diagnostic::new(&INVALID_RATE_LIMIT, sub, msg).with_help(help));
                        None
                    }
                },
                Value::Scalar(s) if matches!(s.kind, ScalarKind::Int | ScalarKind::Float) => {
                    self.push(
                        Diagnostic::new(
                            &INVALID_RATE_LIMIT,
                            span,
                            format!("`{}` is a number, not a rate limit", show(&s.text)),
                        )
                        .with_help(format!(
                            "say per what: `\"{} per hour\"` (second, minute, hour or day)",
                            show(&s.text)
                        )),
                    );
                    None
                }
                _ => {
                    self.wrong_type(e.key_str(), &e.value, "a rate limit `\"N per UNIT\"`");
                    None
                }
            };
            if let (Some(action), Some((count, per, value))) = (action, value) {
                out.push(RateLimit {
                    action,
                    count,
                    per,
                    value,
                });
            }
        }
        out
    }
}
