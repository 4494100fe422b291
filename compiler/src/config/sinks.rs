//! `audit-sinks:`: the audit sinks a playbook's `spec.audit.log-to` may name.
//!
//! `audit-sinks: {NAME: {KIND: ...}}`. This version delivers one kind, `file: PATH` (JSON
//! lines, relative to the configuration file like a `file` notification channel). The other
//! kinds the format names (`s3`, `otlp`, `cloudtrail`, `syslog`) are refused: a sink that
//! would silently go nowhere is worse than none, since a playbook naming it would look
//! audited.

use super::{Config, bad, unknown_key};
use crate::diag::{Diagnostic, one_of};
use crate::yaml::Node;
use std::path::PathBuf;

/// An audit sink.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkDef {
    /// Append the audit trail as JSON lines to a file (absolute, or relative to the
    /// configuration file).
    File(PathBuf),
}

/// The sink kinds this version delivers.
pub const SINK_KINDS: &[&str] = &["file"];

/// Sink kinds the format names that this version does not deliver (refused).
pub const UNDELIVERED_SINK_KINDS: &[&str] = &["s3", "otlp", "cloudtrail", "syslog"];

impl Config {
    /// `audit-sinks:`, a mapping of sink names to `{file: PATH}`.
    pub(super) fn read_audit_sinks(&mut self, v: &Node, diags: &mut Vec<Diagnostic>) {
        let Some(entries) = v.as_map() else {
            diags.push(bad(
                v.span,
                format!(
                    "`audit-sinks` must be a mapping of sink names, found {}",
                    v.type_name()
                ),
            ));
            return;
        };
        for e in entries {
            let name = e.key_str().to_string();
            let Some(fields) = e.value.as_map().filter(|f| f.len() == 1) else {
                diags.push(bad(
                    e.value.span,
                    format!("audit sink `{name}` must be `{{file: PATH}}`, one kind"),
                ));
                continue;
            };
            let f = &fields[0];
            let def = match f.key_str() {
                "file" => match f.value.as_str() {
                    Some(p) if !p.trim().is_empty() => SinkDef::File(self.root.join(p)),
                    _ => {
                        diags.push(bad(f.value.span, "`file` must be a path".into()));
                        continue;
                    }
                },
                kind if UNDELIVERED_SINK_KINDS.contains(&kind) => {
                    diags.push(
                        bad(
                            f.key.span,
                            format!(
                                "audit sink kind `{kind}` is not delivered by this version of pbc; supported: {}",
                                one_of(SINK_KINDS)
                            ),
                        )
                        .with_help(format!(
                            "write the audit trail to a local file instead, e.g. `{name}: {{file: .pbc/audit/{name}.jsonl}}`"
                        )),
                    );
                    continue;
                }
                other => {
                    let known: Vec<&str> = SINK_KINDS
                        .iter()
                        .chain(UNDELIVERED_SINK_KINDS)
                        .copied()
                        .collect();
                    diags.push(unknown_key(f.key.span, other, &known));
                    continue;
                }
            };
            self.audit_sinks.insert(name, def);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::OsFs;
    use crate::load::Loader;
    use std::sync::Arc;

    /// Applies a configuration text; returns it and `(code, text under the span, message)`.
    fn apply(text: &str) -> (Config, Vec<(&'static str, String, String)>) {
        let loader = Loader::new(Arc::new(OsFs), "", Default::default());
        let l = loader.load_text("c.yaml", text);
        let mut diags = l.diags.clone();
        let mut cfg = Config {
            root: PathBuf::from("/etc/pbc"),
            ..Config::default()
        };
        cfg.apply(&l.docs[0].root, &mut diags);
        let f = loader.sources.get(l.docs[0].root.span.file);
        let out = diags
            .iter()
            .map(|d| {
                let under = f.as_ref().map(|f| f.slice(d.span).to_string());
                (d.code.id, under.unwrap_or_default(), d.message.clone())
            })
            .collect();
        (cfg, out)
    }

    #[test]
    fn file_sinks_resolve_against_the_config_directory() {
        let (cfg, d) = apply(
            "audit-sinks:\n  local: {file: .pbc/audit.jsonl}\n  abs: {file: /var/log/a.jsonl}\n",
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            cfg.audit_sinks.get("local"),
            Some(&SinkDef::File(PathBuf::from("/etc/pbc/.pbc/audit.jsonl")))
        );
        assert_eq!(
            cfg.audit_sinks.get("abs"),
            Some(&SinkDef::File(PathBuf::from("/var/log/a.jsonl")))
        );
    }

    #[test]
    fn sink_defs_round_trip_through_json() {
        let def = SinkDef::File(PathBuf::from("/a/b.jsonl"));
        let json = serde_json::to_string(&def).unwrap_or_default();
        assert_eq!(json, r#"{"file":"/a/b.jsonl"}"#);
        assert_eq!(serde_json::from_str::<SinkDef>(&json).ok(), Some(def));
    }

    #[test]
    fn undelivered_kinds_fail_closed() {
        for kind in UNDELIVERED_SINK_KINDS {
            let (cfg, d) = apply(&format!(
                "audit-sinks:\n  trail: {{{kind}: {{bucket: b}}}}\n"
            ));
            assert!(cfg.audit_sinks.is_empty(), "{kind}");
            assert_eq!(d.len(), 1, "{d:?}");
            assert_eq!(d[0].0, "PB0021");
            assert_eq!(d[0].1, *kind);
            assert_eq!(
                d[0].2,
                format!(
                    "audit sink kind `{kind}` is not delivered by this version of pbc; supported: `file`"
                )
            );
        }
    }

    #[test]
    fn unknown_kinds_are_unknown_keys_with_a_guess() {
        let loader = Loader::new(Arc::new(OsFs), "", Default::default());
        let l = loader.load_text("c.yaml", "audit-sinks:\n  trail: {fiel: a.jsonl}\n");
        let mut diags = Vec::new();
        let mut cfg = Config::default();
        cfg.apply(&l.docs[0].root, &mut diags);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].code.id, "PB0020");
        assert_eq!(diags[0].message, "unknown configuration key `fiel`");
        let help = diags[0].help.clone().unwrap_or_default();
        assert!(help.starts_with("did you mean `file`?"), "{help}");
        assert!(cfg.audit_sinks.is_empty());
    }

    #[test]
    fn wrong_shapes_are_bad_values() {
        for (text, under) in [
            ("audit-sinks: [a]\n", "[a]"),
            ("audit-sinks:\n  a: b.jsonl\n", "b.jsonl"),
            ("audit-sinks:\n  a: {}\n", "{}"),
            (
                "audit-sinks:\n  a: {file: x, stdout: true}\n",
                "{file: x, stdout: true}",
            ),
            ("audit-sinks:\n  a: {file: [x]}\n", "[x]"),
            ("audit-sinks:\n  a: {file: ''}\n", "''"),
        ] {
            let (cfg, d) = apply(text);
            assert!(cfg.audit_sinks.is_empty(), "{text}");
            assert_eq!(d.len(), 1, "{text}: {d:?}");
            assert_eq!((d[0].0, d[0].1.as_str()), ("PB0021", under), "{text}");
        }
    }
}
