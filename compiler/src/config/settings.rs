//! `limits:` (the loader's and the build's budgets), `targets:` (what the emitted artifacts
//! use) and `tls:` (extra trusted certificates) in `.pbc.yaml`.

use super::*;

impl Config {
    pub(super) fn read_limits(&mut self, v: &Node, diags: &mut Vec<Diagnostic>) {
        let Some(entries) = v.as_map() else {
            diags.push(bad(
                v.span,
                format!("`limits` must be a mapping, found {}", v.type_name()),
            ));
            return;
        };
        for e in entries {
            let n = match &e.value.value {
                Value::Scalar(s) if s.kind == ScalarKind::Int => {
                    s.text.parse::<u64>().ok().filter(|n| *n > 0)
                }
                _ => None,
            };
            let key = e.key_str();
            if !LIMIT_KEYS.contains(&key) {
                diags.push(unknown_key(e.key.span, key, LIMIT_KEYS));
                continue;
            }
            let Some(n) = n else {
                diags.push(bad(
                    e.value.span,
                    format!("`limits.{key}` must be a positive integer"),
                ));
                continue;
            };
            match key {
                "max-file-size" => self.limits.max_file_bytes = n,
                // Capped: every walk over a document is bounded by its depth.
                "max-depth" => self.limits.max_depth = n.min(MAX_DEPTH_CAP) as usize,
                "max-alias-nodes" => self.limits.max_alias_nodes = n as usize,
                "max-resources" => self.limits.max_resources = n as usize,
                "max-nodes" => self.limits.max_nodes = n,
                _ => self.limits.max_output_bytes = n,
            }
        }
    }

    pub(super) fn read_targets(&mut self, v: &Node, diags: &mut Vec<Diagnostic>) {
        let Some(entries) = v.as_map() else {
            diags.push(bad(
                v.span,
                format!("`targets` must be a mapping, found {}", v.type_name()),
            ));
            return;
        };
        for e in entries {
            let key = e.key_str();
            if !TARGET_KEYS.contains(&key) {
                diags.push(unknown_key(e.key.span, key, TARGET_KEYS));
                continue;
            }
            if key == "emit" {
                self.read_emit(&e.value, diags);
                continue;
            }
            let text = match e.value.as_scalar() {
                Some(s) if s.kind == ScalarKind::Str && !s.text.trim().is_empty() => s.text.clone(),
                _ => {
                    diags.push(bad(
                        e.value.span,
                        format!("`targets.{key}` must be a non-empty string"),
                    ));
                    continue;
                }
            };
            match key {
                "runner-image" => self.targets.runner_image = text.into(),
                "check-image" => self.targets.check_image = text.into(),
                _ => {
                    if !is_api_group(&text) {
                        diags.push(bad(
                            e.value.span,
                            "`targets.crd-group` must be a DNS subdomain with at least one dot, e.g. `agenticops.io`".to_string(),
                        ));
                        continue;
                    }
                    self.targets.crd_group = text.into();
                }
            }
        }
    }

    /// `targets.emit: [TARGET]`: the targets the playbooks are deployed through.
    fn read_emit(&mut self, v: &Node, diags: &mut Vec<Diagnostic>) {
        use crate::enforcement::{TARGETS, Target};
        let Some(list) = string_list(v, "targets.emit", diags) else {
            return;
        };
        let names: Vec<&str> = TARGETS.iter().map(|t| t.name()).collect();
        let mut emit = Vec::new();
        for (name, span) in list {
            match Target::parse(&name) {
                Some(t) if !emit.contains(&t) => emit.push(t),
                Some(_) => diags.push(bad(
                    span,
                    format!("`{name}` is listed twice in `targets.emit`"),
                )),
                None => {
                    let help = match crate::diag::did_you_mean(&name, names.iter().copied()) {
                        Some(s) => format!(
                            "did you mean `{s}`? targets: {}",
                            crate::diag::one_of(&names)
                        ),
                        None => format!("targets: {}", crate::diag::one_of(&names)),
                    };
                    diags.push(
                        bad(span, format!("unknown target `{name}` in `targets.emit`"))
                            .with_help(help),
                    );
                }
            }
        }
        emit.sort();
        self.targets.emit = emit;
        self.targets.emit_set = true;
    }

    /// `tls: {ca-file: PATH}` (relative to the configuration file).
    pub(super) fn read_tls(&mut self, v: &Node, diags: &mut Vec<Diagnostic>) {
        let Some(entries) = v.as_map() else {
            diags.push(bad(
                v.span,
                format!("`tls` must be a mapping, found {}", v.type_name()),
            ));
            return;
        };
        for e in entries {
            match (e.key_str(), e.value.as_str()) {
                ("ca-file", Some(p)) if !p.trim().is_empty() => {
                    self.tls_ca_file = Some(self.root.join(p))
                }
                ("ca-file", _) => diags.push(bad(
                    e.value.span,
                    "`tls.ca-file` must be the path of a PEM file".into(),
                )),
                (other, _) => diags.push(unknown_key(e.key.span, other, &["ca-file"])),
            }
        }
    }
}
