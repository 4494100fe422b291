//! The builder's readers of one value each: strings, lists, durations, enumerations,
//! expressions, integers, names, action references and approvers, each reporting a wrong
//! shape or value at its span, and the shared reports (unknown field, missing key, wrong type).

use super::*;

impl<'a> Builder<'a> {
    pub(crate) fn new(
        sources: &'a SourceMap,
        opts: &'a ModelOptions,
        diags: &'a mut Vec<Diagnostic>,
    ) -> Self {
        Builder {
            sources,
            opts,
            diags,
        }
    }

    pub(super) fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    pub(super) fn vspan(&self, n: &Node) -> Span {
        whole_value_span(self.sources, n)
    }

    // ----- generic shapes -------------------------------------------------------------

    /// Reads a mapping, reporting a wrong type and unknown keys.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn obj<'n>(
        &mut self,
        node: &'n Node,
        key: &str,
        what: impl Into<String>,
        kind: &str,
        anchor: Span,
        allowed: &'static [&'static str],
        ctx: Ctx,
    ) -> Option<Obj<'n>> {
        let Some(entries) = node.as_map() else {
            self.wrong_type(key, node, &format!("{kind} (a mapping)"));
            return None;
        };
        let obj = Obj {
            entries,
            span: node.span,
            what: what.into(),
            anchor,
            allowed,
        };
        for e in entries {
            let k = e.key_str();
            if !allowed.contains(&k) {
                self.unknown_field(e, &obj, kind, allowed, ctx);
            }
        }
        Some(obj)
    }

    pub(super) fn unknown_field(
        &mut self,
        e: &Entry,
        obj: &Obj<'_>,
        kind: &str,
        allowed: &[&str],
        ctx: Ctx,
    ) {
        let k = e.key_str();
        let guess = did_you_mean(k, allowed.iter().copied());
        let hint = elsewhere(ctx, k);
        let mut rest = String::new();
        if let Some(h) = hint {
            rest.push_str(&h);
            rest.push_str("; ");
        }
        rest.push_str(&format!("the fields of {kind} are {}", one_of(allowed)));
        let help = guess_help(guess, &rest);
        let mut d = Diagnostic::new(
            &UNKNOWN_FIELD,
            e.key.span,
            format!("unknown field `{}` in {}", show(k), obj.what),
        )
        .with_help(help);
        if let Some(g) = guess
            && obj.get(g).is_none()
        {
            d = d.with_fix(
                format!("rename to `{g}`"),
                vec![Edit {
                    span: e.key.span,
                    text: g.to_string(),
                }],
            );
        }
        self.push(d);
    }

    pub(super) fn missing(&mut self, obj: &Obj<'_>, key: &str, help: impl Into<String>) {
        // A misspelling of the missing key was reported already.
        if obj
            .unknown()
            .any(|k| did_you_mean(k, obj.allowed.iter().copied()) == Some(key))
        {
            return;
        }
        self.push(
            Diagnostic::new(
                &MISSING_FIELD,
                obj.anchor,
                format!("{} has no `{key}`", obj.what),
            )
            .with_help(help),
        );
    }

    pub(super) fn wrong_type(&mut self, key: &str, v: &Node, expected: &str) {
        let span = self.vspan(v);
        let mut d = Diagnostic::new(
            &WRONG_TYPE,
            span,
            format!(
                "expected {expected} for `{}`, found {}",
                show(key),
                found(v)
            ),
        );
        if let Value::Scalar(s) = &v.value {
            let wants_string = expected.starts_with("a string")
                || expected.starts_with("an expression")
                || expected.contains("name")
                || expected.starts_with("a path");
            let wants_list = expected.starts_with("a list");
            if s.kind == ScalarKind::Str && wants_list && s.style == Style::Plain {
                let src = self
                    .sources
                    .get(span.file)
                    .map(|f| f.slice(span).to_string())
                    .unwrap_or_default();
                d = d
                    .with_help(format!("write a list, even of one item: `[{src}]`"))
                    .with_fix(
                        "make it a list",
                        vec![Edit {
                            span,
                            text: format!("[{src}]"),
                        }],
                    );
            } else if wants_string
                && !wants_list
                && s.kind != ScalarKind::Str
                && !(s.kind == ScalarKind::Null && s.text.is_empty())
                && s.style == Style::Plain
            {
                d = d
                    .with_help(format!(
                        "quote it to make it a string: `\"{}\"`",
                        show(&s.text)
                    ))
                    .with_fix(
                        "quote the value",
                        vec![Edit {
                            span,
                            text: format!("{:?}", s.text),
                        }],
                    );
            } else if s.kind == ScalarKind::Str
                && (expected.contains("number") || expected.contains("boolean"))
                && s.style.is_quoted()
            {
                d = d.with_help(format!("write it without quotes: `{}`", show(&s.text)));
            }
        }
        self.push(d);
    }

    pub(super) fn invalid_value(&mut self, span: Span, message: String, help: &str) {
        self.push(Diagnostic::new(&INVALID_VALUE, span, message).with_help(help));
    }

    /// A string scalar; `nonempty` reports an empty one.
    pub(super) fn string(
        &mut self,
        key: &str,
        v: &Node,
        expected: &str,
        nonempty: bool,
    ) -> Option<Spanned<String>> {
        match &v.value {
            Value::Scalar(s) if s.kind == ScalarKind::Str => {
                let span = self.vspan(v);
                if nonempty && s.text.trim().is_empty() {
                    self.invalid_value(
                        span,
                        format!("`{}` is empty", show(key)),
                        &format!("give {expected}, or remove the field"),
                    );
                    return None;
                }
                Some(Spanned::new(s.text.as_str().to_owned(), span))
            }
            _ => {
                self.wrong_type(key, v, expected);
                None
            }
        }
    }

    pub(super) fn string_list(&mut self, key: &str, v: &Node, items: &str) -> Vec<Spanned<String>> {
        let Some(seq) = v.as_seq() else {
            self.wrong_type(key, v, &format!("a list of {items}"));
            return Vec::new();
        };
        seq.iter()
            .filter_map(|i| self.string(key, i, "a string", true))
            .collect()
    }

    pub(super) fn open_map(&mut self, key: &str, v: &Node) -> Option<Node> {
        if v.as_map().is_some() {
            Some(v.clone())
        } else {
            self.wrong_type(key, v, "a mapping");
            None
        }
    }

    pub(super) fn duration(&mut self, key: &str, v: &Node) -> Option<Spanned<Duration>> {
        let span = self.vspan(v);
        let Value::Scalar(s) = &v.value else {
            self.wrong_type(key, v, "a duration such as `30s`, `10m`, `4h` or `2d`");
            return None;
        };
        match s.kind {
            ScalarKind::Str => match parse_duration(&s.text) {
                Ok(d) => Some(Spanned::new(d, span)),
                Err(e) => {
                    let mut d =
                        Diagnostic::new(&INVALID_DURATION, span, e.message).with_help(e.help);
                    if let Some(sug) = e.suggestion {
                        d = d.with_fix(format!("write `{sug}`"), vec![Edit { span, text: sug }]);
                    }
                    self.push(d);
                    None
                }
            },
            ScalarKind::Int | ScalarKind::Float => {
                let secs = crate::yaml::parse_int(&s.text).filter(|n| *n > 0);
                let help = match secs {
                    Some(n) => format!(
                        "a duration needs a unit (`{n}s`, `{n}m`, `{n}h`, `{n}d`); {n} seconds is `{}`",
                        Duration::from_secs(n as u64)
                    ),
                    None => "write a whole number followed by one unit: `s`, `m`, `h` or `d` (e.g. `30s`, `10m`, `4h`, `2d`)".to_string(),
                };
                self.push(
                    Diagnostic::new(
                        &INVALID_DURATION,
                        span,
                        format!("`{}` is not a duration: it has no unit", show(&s.text),),
                    )
                    .with_help(help),
                );
                None
            }
            _ => {
                self.wrong_type(key, v, "a duration such as `30s`, `10m`, `4h` or `2d`");
                None
            }
        }
    }

    pub(super) fn enumv<T: Copy>(
        &mut self,
        key: &str,
        v: &Node,
        names: &[&str],
        parse: fn(&str) -> Option<T>,
    ) -> Option<Spanned<T>> {
        let span = self.vspan(v);
        let Value::Scalar(s) = &v.value else {
            self.wrong_type(key, v, &format!("one of {}", one_of(names)));
            return None;
        };
        if s.kind == ScalarKind::Str
            && let Some(t) = parse(&s.text)
        {
            return Some(Spanned::new(t, span));
        }
        let guess = did_you_mean(&s.text, names.iter().copied());
        let help = guess_help(guess, &format!("`{}` is {}", show(key), one_of(names)));
        let shown = if s.kind == ScalarKind::Null && s.text.is_empty() {
            "nothing".to_string()
        } else {
            format!("`{}`", show(&s.text))
        };
        let mut d = Diagnostic::new(
            &INVALID_ENUM,
            span,
            format!("{shown} is not a valid `{}`", show(key)),
        )
        .with_help(help);
        if let Some(g) = guess {
            d = d.with_fix(
                format!("write `{g}`"),
                vec![Edit {
                    span,
                    text: g.to_string(),
                }],
            );
        }
        self.push(d);
        None
    }

    pub(super) fn expr(&mut self, key: &str, v: &Node) -> Option<ExprText> {
        match &v.value {
            Value::Scalar(s) if s.kind != ScalarKind::Null => {
                let span = self.vspan(v);
                if s.text.trim().is_empty() {
                    self.invalid_value(
                        span,
                        format!("the expression of `{}` is empty", show(key)),
                        "write an expression, or remove the field",
                    );
                    return None;
                }
                Some(ExprText {
                    text: Spanned::new(s.text.as_str().to_owned(), span),
                    node: v.clone(),
                })
            }
            _ => {
                self.wrong_type(key, v, "an expression (a string)");
                None
            }
        }
    }

    /// `min-approvals`: a whole number from 1 to 100.
    pub(super) fn min_approvals(&mut self, v: &Node) -> Option<Spanned<u32>> {
        let span = self.vspan(v);
        match &v.value {
            Value::Scalar(s) if s.kind == ScalarKind::Int => {
                match crate::yaml::parse_int(&s.text) {
                    Some(n) if (1..=100).contains(&n) => Some(Spanned::new(n as u32, span)),
                    Some(n) if n < 1 => {
                        self.invalid_value(
                            span,
                            format!("`min-approvals` must be 1 or more, found {n}"),
                            "use 1 for one approval (the default), 2 for a two-person rule",
                        );
                        None
                    }
                    _ => {
                        self.invalid_value(
                            span,
                            "`min-approvals` is too large".to_string(),
                            "use at most 100",
                        );
                        None
                    }
                }
            }
            _ => {
                self.wrong_type("min-approvals", v, "a whole number (1 or more)");
                None
            }
        }
    }

    pub(super) fn integer(&mut self, key: &str, v: &Node) -> Option<Spanned<u32>> {
        let span = self.vspan(v);
        match &v.value {
            Value::Scalar(s) if s.kind == ScalarKind::Int => {
                match crate::yaml::parse_int(&s.text) {
                    Some(n) if n < 0 => {
                        self.invalid_value(
                            span,
                            format!("`{}` must be 0 or more, found {n}", show(key)),
                            "use 0 for no retries",
                        );
                        None
                    }
                    Some(n) if n <= 1000 => Some(Spanned::new(n as u32, span)),
                    _ => {
                        self.invalid_value(
                            span,
                            format!("`{}` is too large", show(key)),
                            "use at most 1000",
                        );
                        None
                    }
                }
            }
            _ => {
                self.wrong_type(key, v, "a whole number");
                None
            }
        }
    }

    pub(super) fn dns_name(&mut self, what: &str, name: &Spanned<String>, node: &Node) {
        let Some((a, b, why)) = dns1123_problem(&name.value) else {
            return;
        };
        let mut d = Diagnostic::new(
            &INVALID_NAME,
            name.span,
            format!("{what} `{}` is not a DNS-1123 label", show(&name.value)),
        )
        .with_help("use at most 63 lower-case letters, digits and `-`, starting and ending with a letter or digit");
        // The whole name is the culprit (the fix replaces it); the label says which
        // character is wrong. (`a..b` is where, for callers that want the sub-span.)
        let _ = (a, b, node);
        d = d.with_label_text(why);
        if let Some(n) = normalize_dns1123(&name.value) {
            d = d.with_fix(
                format!("rename to `{n}`"),
                vec![Edit {
                    span: name.span,
                    text: yaml_str(&n),
                }],
            );
        }
        self.push(d);
    }

    pub(super) fn action_ref(&mut self, key: &str, v: &Node) -> Option<Spanned<ActionRef>> {
        let s = self.string(key, v, "an action `LAYER:FUNCTION`", true)?;
        match parse_action_ref(&s.value) {
            Ok(a) => Some(Spanned::new(a, s.span)),
            Err((a, b, why)) => {
                let sub = if b > a {
                    text_span(self.sources, v, a, b)
                } else {
                    s.span
                };
                self.push(
                    Diagnostic::new(
                        &INVALID_ACTION_REF,
                        sub,
                        format!(
                            "`{}` is not an action of the form `LAYER:FUNCTION`",
                            show(&s.value)
                        ),
                    )
                    .with_label_text(why)
                    .with_help(
                        "write the layer, a colon and the function, e.g. `k8s:scale_deployment`",
                    ),
                );
                None
            }
        }
    }

    pub(super) fn approvers(&mut self, key: &str, v: &Node) -> Option<Spanned<Vec<Approver>>> {
        let Some(items) = v.as_seq() else {
            self.wrong_type(
                key,
                v,
                "a list of approvers (`{role: R}`, `{user: EMAIL}` or a role name)",
            );
            return None;
        };
        let mut out = Vec::new();
        for item in items {
            match &item.value {
                Value::Scalar(s) if s.kind == ScalarKind::Str => {
                    let Some(n) = self.string(key, item, "a role or user", true) else {
                        continue;
                    };
                    if s.text.contains('@') {
                        self.check_email(&n);
                        out.push(Approver::User(n));
                    } else {
                        out.push(Approver::Role(n));
                    }
                }
                Value::Map(_) => {
                    let anchor = item_anchor(item);
                    let Some(obj) = self.obj(
                        item,
                        key,
                        "this approver",
                        "an approver",
                        anchor,
                        APPROVER,
                        Ctx::Other,
                    ) else {
                        continue;
                    };
                    match (obj.get("role"), obj.get("user")) {
                        (Some(r), Some(u)) => {
                            let (first, second) = if r.key.span < u.key.span {
                                (r, u)
                            } else {
                                (u, r)
                            };
                            self.push(
                                Diagnostic::new(
                                    &CONFLICTING_FIELDS,
                                    second.key.span,
                                    "an approver is a `role` or a `user`, not both",
                                )
                                .with_label(first.key.span, "also given here")
                                .with_help("write two approvers: `- role: R` and `- user: EMAIL`"),
                            );
                            // Keep both, as the two approvers that were meant.
                            if let Some(n) = self.string("role", &r.value, "a role name", true) {
                                out.push(Approver::Role(n));
                            }
                            if let Some(n) =
                                self.string("user", &u.value, "an e-mail address", true)
                            {
                                self.check_email(&n);
                                out.push(Approver::User(n));
                            }
                        }
                        (Some(r), None) => {
                            if let Some(n) = self.string("role", &r.value, "a role name", true) {
                                out.push(Approver::Role(n));
                            }
                        }
                        (None, Some(u)) => {
                            if let Some(n) =
                                self.string("user", &u.value, "an e-mail address", true)
                            {
                                self.check_email(&n);
                                out.push(Approver::User(n));
                            }
                        }
                        (None, None) => {
                            if obj.entries.is_empty() {
                                self.push(
                                    Diagnostic::new(
                                        &MISSING_FIELD,
                                        item.span,
                                        "this approver is empty",
                                    )
                                    .with_help("write `role: R` or `user: EMAIL`"),
                                );
                            } else if obj.unknown().next().is_none() {
                                self.missing(&obj, "role", "write `role: R` or `user: EMAIL`");
                            }
                        }
                    }
                }
                _ => self.wrong_type(
                    key,
                    item,
                    "an approver (`{role: R}`, `{user: EMAIL}` or a role name)",
                ),
            }
        }
        if out.is_empty() && !items.is_empty() {
            // Every item was invalid (reported): not "no approvers".
            return None;
        }
        Some(Spanned::new(out, v.span))
    }

    pub(super) fn check_email(&mut self, n: &Spanned<String>) -> bool {
        let ok = n
            .value
            .split_once('@')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('@'))
            && !n.value.contains(char::is_whitespace);
        if !ok {
            self.invalid_value(
                n.span,
                format!("`{}` is not an e-mail address", show(&n.value)),
                "a user approver is an e-mail address such as `ann@example.com`; a bare name is a role",
            );
        }
        ok
    }
}
