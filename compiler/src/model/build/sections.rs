//! The playbook-level sections of `spec`: rollback, audit, monitoring, rollout and
//! promotion.

use super::*;

impl<'a> Builder<'a> {
    pub(super) fn rollback(&mut self, e: &Entry) -> Option<Rollback> {
        let obj = self.obj(
            &e.value,
            "rollback",
            "`rollback`",
            "`spec.rollback`",
            e.key.span,
            ROLLBACK,
            Ctx::Other,
        )?;
        let on_failure = match obj.get("on-failure") {
            Some(f) => self.enumv("on-failure", &f.value, OnFailure::NAMES, OnFailure::parse),
            None => {
                self.missing(
                    &obj,
                    "on-failure",
                    format!("add `on-failure:` with {}", one_of(OnFailure::NAMES)),
                );
                None
            }
        };
        let notification = match obj.get("notification") {
            Some(n) => self.string_list("notification", &n.value, "channel names"),
            None => Vec::new(),
        };
        Some(Rollback {
            on_failure: on_failure?,
            notification,
            span: obj.span,
            keys: obj.keys(),
        })
    }

    pub(super) fn audit(&mut self, e: &Entry) -> Option<Audit> {
        let obj = self.obj(
            &e.value,
            "audit",
            "`audit`",
            "`spec.audit`",
            e.key.span,
            AUDIT,
            Ctx::Other,
        )?;
        let log_to = match obj.get("log-to") {
            Some(l) => self.string_list("log-to", &l.value, "audit sink names"),
            None => Vec::new(),
        };
        let retention = match obj.get("retention") {
            Some(r) => self.duration("retention", &r.value),
            None => None,
        };
        Some(Audit {
            log_to,
            retention,
            span: obj.span,
            keys: obj.keys(),
        })
    }

    pub(super) fn monitoring(&mut self, e: &Entry) -> Option<Monitoring> {
        let obj = self.obj(
            &e.value,
            "monitoring",
            "`monitoring`",
            "`spec.monitoring`",
            e.key.span,
            MONITORING,
            Ctx::Other,
        )?;
        let mut metrics = Vec::new();
        let mut alerts = Vec::new();
        if let Some(m) = obj.get("metrics") {
            if let Some(items) = m.value.as_seq() {
                let mut seen: HashMap<String, Span> = HashMap::new();
                for item in items {
                    let Some(o) = self.obj(
                        item,
                        "metrics",
                        "this metric",
                        "a metric",
                        item_anchor(item),
                        METRIC,
                        Ctx::Other,
                    ) else {
                        continue;
                    };
                    let name = match o.get("name") {
                        Some(n) => self.string("name", &n.value, "a metric name", true),
                        None => {
                            self.missing(
                                &o,
                                "name",
                                "add `name:`; alert conditions refer to metrics by name",
                            );
                            None
                        }
                    };
                    let target = match o.get("target") {
                        Some(t) => self.expr("target", &t.value),
                        None => {
                            self.missing(&o, "target", "add `target:`, e.g. `p95 < 4h` or `< 5%`");
                            None
                        }
                    };
                    if let Some(n) = &name {
                        let ok = n
                            .value
                            .chars()
                            .next()
                            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                            && n.value
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                        if !ok {
                            self.invalid_value(
                                n.span,
                                format!("metric name `{}` cannot be referred to from an alert condition", show(&n.value)),
                                "a metric name starts with a letter or `_` and holds letters, digits, `_` and `-`",
                            );
                        } else if let Some(first) = seen.get(&n.value) {
                            self.push(
                                Diagnostic::new(
                                    &DUPLICATE_NAME,
                                    n.span,
                                    format!("duplicate metric name `{}`", n.value),
                                )
                                .with_label(*first, "first defined here")
                                .with_help("give each metric its own name"),
                            );
                        } else {
                            seen.insert(n.value.clone(), n.span);
                        }
                    }
                    if let (Some(name), Some(target)) = (name, target) {
                        metrics.push(Metric {
                            name,
                            target,
                            span: item.span,
                        });
                    }
                }
            } else {
                self.wrong_type("metrics", &m.value, "a list of metrics (`{name, target}`)");
            }
        }
        if let Some(a) = obj.get("alerts") {
            if let Some(items) = a.value.as_seq() {
                for item in items {
                    let Some(o) = self.obj(
                        item,
                        "alerts",
                        "this alert",
                        "an alert",
                        item_anchor(item),
                        ALERT,
                        Ctx::Other,
                    ) else {
                        continue;
                    };
                    let condition = match o.get("condition") {
                        Some(c) => self.expr("condition", &c.value),
                        None => {
                            self.missing(
                                &o,
                                "condition",
                                "add `condition:`, e.g. `approval-latency > 6h`",
                            );
                            None
                        }
                    };
                    let notify = match o.get("notify") {
                        Some(n) => self.string_list("notify", &n.value, "channel names"),
                        None => Vec::new(),
                    };
                    if let Some(condition) = condition {
                        alerts.push(Alert {
                            condition,
                            notify,
                            span: item.span,
                        });
                    }
                }
            } else {
                self.wrong_type(
                    "alerts",
                    &a.value,
                    "a list of alerts (`{condition, notify}`)",
                );
            }
        }
        Some(Monitoring {
            metrics,
            alerts,
            span: obj.span,
            keys: obj.keys(),
        })
    }

    /// Shape-checks `spec.rollout` (`canary` steps or `blue-green`); returns whether it is a mapping.
    pub(super) fn rollout(&mut self, v: &Node, key: Span) -> bool {
        let Some(obj) = self.obj(
            v,
            "rollout",
            "`rollout`",
            "`spec.rollout`",
            key,
            ROLLOUT,
            Ctx::Other,
        ) else {
            return false;
        };
        match obj.get("strategy") {
            Some(s) => {
                self.enumv(
                    "strategy",
                    &s.value,
                    RolloutStrategy::NAMES,
                    RolloutStrategy::parse,
                );
            }
            None => self.missing(
                &obj,
                "strategy",
                format!("add `strategy:` with {}", one_of(RolloutStrategy::NAMES)),
            ),
        }
        for f in obj.entries {
            let fv = &f.value;
            match f.key_str() {
                "steps" => {
                    let Some(items) = fv.as_seq() else {
                        self.wrong_type("steps", fv, "a list of rollout steps (`{weight, pause}`)");
                        continue;
                    };
                    for item in items {
                        let Some(o) = self.obj(
                            item,
                            "steps",
                            "this rollout step",
                            "a rollout step",
                            item_anchor(item),
                            ROLLOUT_STEP,
                            Ctx::Other,
                        ) else {
                            continue;
                        };
                        match o.get("weight") {
                            Some(w) => {
                                let ok = w
                                    .value
                                    .as_scalar()
                                    .filter(|s| s.kind == ScalarKind::Int)
                                    .map(|s| crate::yaml::parse_int(&s.text));
                                match ok {
                                    Some(Some(n)) if (0..=100).contains(&n) => {}
                                    Some(_) => self.invalid_value(
                                        self.vspan(&w.value),
                                        "a rollout weight is a percentage from 0 to 100".into(),
                                        "use a whole number from 0 to 100",
                                    ),
                                    None => self.wrong_type(
                                        "weight",
                                        &w.value,
                                        "a whole number (a percentage)",
                                    ),
                                }
                            }
                            None => self.missing(
                                &o,
                                "weight",
                                "add `weight:` (the percentage of traffic)",
                            ),
                        }
                        if let Some(p) = o.get("pause") {
                            self.duration("pause", &p.value);
                        }
                    }
                }
                "rollback" => {
                    if let Some(entries) = fv.as_map() {
                        for e in entries {
                            self.string(e.key_str(), &e.value, "a string", true);
                        }
                    } else {
                        self.wrong_type("rollback", fv, "a mapping");
                    }
                }
                "metrics" => {
                    let Some(items) = fv.as_seq() else {
                        self.wrong_type(
                            "metrics",
                            fv,
                            "a list of rollout metrics (`{name, threshold}`)",
                        );
                        continue;
                    };
                    for item in items {
                        let Some(o) = self.obj(
                            item,
                            "metrics",
                            "this rollout metric",
                            "a rollout metric",
                            item_anchor(item),
                            ROLLOUT_METRIC,
                            Ctx::Other,
                        ) else {
                            continue;
                        };
                        for k in ROLLOUT_METRIC {
                            match o.get(k) {
                                Some(x) => {
                                    self.expr(k, &x.value);
                                }
                                None => self.missing(&o, k, format!("add `{k}:`")),
                            }
                        }
                    }
                }
                "active-service" | "preview-service" => {
                    self.string(f.key_str(), fv, "a service name", true);
                }
                "auto-promotion" if fv.as_scalar().is_none_or(|s| s.kind != ScalarKind::Bool) => {
                    self.wrong_type("auto-promotion", fv, "a boolean");
                }
                _ => {}
            }
        }
        true
    }

    /// Shape-checks `spec.promotion`: `{from, to, requires}`, plus named promotions of the
    /// same shape (e.g. `staging-promotion`); returns whether it is a mapping.
    pub(super) fn promotion(&mut self, v: &Node) -> bool {
        let Some(entries) = v.as_map() else {
            self.wrong_type("promotion", v, "a mapping");
            return false;
        };
        for e in entries {
            match e.key_str() {
                "from" | "to" => {
                    self.string(e.key_str(), &e.value, "an environment name", true);
                }
                "requires" => {
                    self.string_list("requires", &e.value, "requirements");
                }
                k => {
                    let Some(o) = self.obj(
                        &e.value,
                        k,
                        format!("promotion `{}`", show(k)),
                        "a promotion",
                        e.key.span,
                        PROMOTION,
                        Ctx::Other,
                    ) else {
                        continue;
                    };
                    for f in o.entries {
                        match f.key_str() {
                            "from" | "to" => {
                                self.string(f.key_str(), &f.value, "an environment name", true);
                            }
                            "requires" => {
                                self.string_list("requires", &f.value, "requirements");
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        true
    }
}
