//! `guardrails:` (names the checker knows, or definitions the runtime enforces) and `roles:`
//! (approver roles to people) in `.pbc.yaml`.

use super::*;

impl Config {
    /// `guardrails:` is a list of names (known to the checker, not enforceable by the
    /// runtime) or a mapping of names to definitions (`patterns` or `command`).
    pub(super) fn read_guardrails(&mut self, v: &Node, diags: &mut Vec<Diagnostic>) {
        if v.as_seq().is_some() {
            if let Some(list) = string_list(v, "guardrails", diags) {
                self.guardrails = list.into_iter().map(|(s, _)| s).collect();
            }
            return;
        }
        let Some(entries) = v.as_map() else {
            diags.push(bad(
                v.span,
                format!(
                    "`guardrails` must be a list of names or a mapping of names to definitions, found {}",
                    v.type_name()
                ),
            ));
            return;
        };
        for e in entries {
            let name = e.key_str().to_string();
            let Some(fields) = e.value.as_map() else {
                diags.push(bad(
                    e.value.span,
                    format!("guardrail `{name}` must be a mapping with `patterns` or `command`"),
                ));
                continue;
            };
            let mut def = GuardrailDef {
                patterns: Vec::new(),
                command: Vec::new(),
                description: None,
            };
            for f in fields {
                match f.key_str() {
                    "patterns" => {
                        if let Some(list) = string_list(&f.value, "patterns", diags) {
                            for (p, sp) in list {
                                match regex::Regex::new(&p) {
                                    Ok(_) => def.patterns.push(p),
                                    Err(err) => diags.push(bad(
                                        sp,
                                        format!(
                                            "not a regular expression: {}",
                                            first_line(&err.to_string())
                                        ),
                                    )),
                                }
                            }
                        }
                    }
                    "command" => {
                        if let Some(list) = string_list(&f.value, "command", diags) {
                            def.command = list.into_iter().map(|(s, _)| s).collect();
                        }
                    }
                    "description" => match f.value.as_str() {
                        Some(s) => def.description = Some(s.to_string()),
                        None => {
                            diags.push(bad(f.value.span, "`description` must be a string".into()))
                        }
                    },
                    other => diags.push(unknown_key(
                        f.key.span,
                        other,
                        &["patterns", "command", "description"],
                    )),
                }
            }
            let has_patterns = fields.iter().any(|f| f.key_str() == "patterns");
            let has_command = fields.iter().any(|f| f.key_str() == "command");
            if has_patterns == has_command {
                diags.push(bad(
                    e.key.span,
                    format!("guardrail `{name}` needs exactly one of `patterns` and `command`"),
                ));
            } else if has_patterns && def.patterns.is_empty()
                || has_command && def.command.is_empty()
            {
                diags.push(bad(
                    e.value.span,
                    format!("guardrail `{name}` has an empty definition"),
                ));
            }
            if !def.command.is_empty() {
                let prog = &def.command[0];
                if prog.contains('/') && Path::new(prog).is_relative() {
                    def.command[0] = self.root.join(prog).to_string_lossy().into_owned();
                }
            }
            self.guardrails.push(name.clone());
            self.guardrail_defs.insert(name, def);
        }
    }

    pub(super) fn read_roles(&mut self, v: &Node, diags: &mut Vec<Diagnostic>) {
        let Some(entries) = v.as_map() else {
            diags.push(bad(
                v.span,
                format!(
                    "`roles` must be a mapping of role names to lists of people, found {}",
                    v.type_name()
                ),
            ));
            return;
        };
        for e in entries {
            let name = e.key_str().to_string();
            let key = format!("roles.{name}");
            let Some(list) = string_list(&e.value, &key, diags) else {
                continue;
            };
            let mut members = Vec::new();
            for (m, span) in list {
                let m = m.trim().to_string();
                if m.is_empty() {
                    diags.push(bad(span, format!("role `{name}` has an empty member")));
                    continue;
                }
                members.push(m);
            }
            self.roles.insert(name, members);
        }
    }
}
