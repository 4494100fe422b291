//! Names a playbook takes from the configuration: notification channels and audit sinks.
//!
//! A playbook names channels (a stage's `notification.on-*`, `escalation[].notify`,
//! `spec.rollback.notification`, `spec.monitoring.alerts[].notify`) and audit sinks
//! (`spec.audit.log-to`); `.pbc.yaml` defines them (`notifications:`, `audit-sinks:`). A name
//! the configuration does not define would be delivered nowhere, so it is an error, also when
//! there is no configuration at all. Runs over the built model, so each name is checked once
//! at the span of its value.

use super::build::{guess_help, show, yaml_str};
use super::{ModelOptions, Playbook, Spanned};
use crate::declare_codes;
use crate::diag::{Code, Diagnostic, Edit, did_you_mean};

declare_codes! {
    /// `spec.audit.log-to` names an audit sink that the configuration does not define.
    ///
    /// Audit sinks are defined under `audit-sinks:` in `.pbc.yaml`
    /// (`audit-sinks: {trail: {file: .pbc/audit/trail.jsonl}}`); a playbook names them. A name
    /// nothing defines would send the audit trail nowhere while the playbook looks audited
    /// (and `pbc coverage` counts only configured sinks as evidence), so it is an error, also
    /// when there is no `.pbc.yaml`. The help lists the defined sinks; the fix writes the
    /// closest one.
    ///
    /// ```yaml
    /// audit:
    ///   log-to: [cloudtrial]    # no audit sink `cloudtrial` is configured
    /// ```
    PB2023 UNKNOWN_AUDIT_SINK "unknown-audit-sink" Error "an audit sink the configuration does not define";
    /// A notification channel that the configuration does not define.
    ///
    /// Channels are defined under `notifications:` in `.pbc.yaml`
    /// (`notifications: {slack-security: {webhook: {url: ...}}}`); a playbook names them in a
    /// stage's `notification` (`on-pending`, `on-approved`, `on-rejected`, `on-expired`,
    /// `on-failure`), in `escalation[].notify`, in `spec.rollback.notification` and in
    /// `spec.monitoring.alerts[].notify`. A name nothing defines would reach nobody, so it is
    /// an error, also when there is no `.pbc.yaml`. The help lists the defined channels; the
    /// fix writes the closest one.
    ///
    /// ```yaml
    /// notification:
    ///   on-pending: [slack-sec]    # no notification channel `slack-sec` is configured
    /// ```
    PB2024 UNKNOWN_CHANNEL "unknown-channel" Error "a notification channel the configuration does not define";
}

/// What kind of name is checked, and where the configuration defines it.
struct Kind {
    code: &'static Code,
    /// `audit sink`, `notification channel`.
    what: &'static str,
    /// `audit sinks`, `channels`.
    plural: &'static str,
    /// The configuration key that defines them.
    key: &'static str,
}

const SINK: Kind = Kind {
    code: &UNKNOWN_AUDIT_SINK,
    what: "audit sink",
    plural: "audit sinks",
    key: "audit-sinks",
};

const CHANNEL: Kind = Kind {
    code: &UNKNOWN_CHANNEL,
    what: "notification channel",
    plural: "channels",
    key: "notifications",
};

/// The audit sinks and the notification channels `pb` names, each as written.
pub fn references(pb: &Playbook) -> (Vec<&Spanned<String>>, Vec<&Spanned<String>>) {
    let spec = &pb.spec;
    let mut sinks: Vec<&Spanned<String>> = Vec::new();
    let mut channels: Vec<&Spanned<String>> = Vec::new();
    if let Some(a) = &spec.audit {
        sinks.extend(&a.log_to);
    }
    if let Some(r) = &spec.rollback {
        channels.extend(&r.notification);
    }
    if let Some(m) = &spec.monitoring {
        for a in &m.alerts {
            channels.extend(&a.notify);
        }
    }
    for st in &spec.stages {
        if let Some(n) = &st.notification {
            for list in [
                &n.on_pending,
                &n.on_approved,
                &n.on_rejected,
                &n.on_expired,
                &n.on_failure,
            ] {
                channels.extend(list);
            }
        }
        for e in &st.escalation {
            channels.extend(&e.notify);
        }
    }
    // Source order within each kind (a stage's lists are read in field order above).
    channels.sort_by_key(|n| (n.span.file, n.span.start));
    (sinks, channels)
}

/// Reports every channel and audit sink name of `pb` that `opts` does not define.
pub(super) fn check(pb: &Playbook, opts: &ModelOptions, diags: &mut Vec<Diagnostic>) {
    let (sinks, channels) = references(pb);
    for n in sinks {
        name(&SINK, n, &opts.audit_sinks, diags);
    }
    for n in channels {
        name(&CHANNEL, n, &opts.channels, diags);
    }
}

/// At most this many defined names are listed in a help.
const LISTED: usize = 12;

fn name(kind: &Kind, n: &Spanned<String>, defined: &[String], diags: &mut Vec<Diagnostic>) {
    if defined.contains(&n.value) {
        return;
    }
    let guess = did_you_mean(&n.value, defined.iter().map(String::as_str));
    let rest = if defined.is_empty() {
        format!(
            "no {} are defined: add `{}:` to .pbc.yaml",
            kind.plural, kind.key
        )
    } else {
        let mut listed: Vec<String> = defined
            .iter()
            .take(LISTED)
            .map(|d| format!("`{}`", show(d)))
            .collect();
        if defined.len() > LISTED {
            listed.push(format!("… ({} in all)", defined.len()));
        }
        format!(
            "defined {}: {}; define others under `{}:` in .pbc.yaml",
            kind.plural,
            listed.join(", "),
            kind.key
        )
    };
    let mut d = Diagnostic::new(
        kind.code,
        n.span,
        format!("no {} `{}` is configured", kind.what, show(&n.value)),
    )
    .with_help(guess_help(guess, &rest));
    if let Some(x) = guess {
        d = d.with_fix(
            format!("write `{x}`"),
            vec![Edit {
                span: n.span,
                text: yaml_str(x),
            }],
        );
    }
    diags.push(d);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::SourceMap;
    use crate::yaml::{Limits, parse};

    const HEAD: &str =
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\nspec:\n  trigger: e\n";

    /// `(code, text under the span, help, fix text)` of each diagnostic of `spec_body`.
    fn run(spec_body: &str, opts: &ModelOptions) -> Vec<(&'static str, String, String, String)> {
        let sm = SourceMap::new();
        let f = sm.add("t.yaml", format!("{HEAD}{spec_body}"));
        let mut d = Vec::new();
        let docs = parse(&f, &Limits::default(), &mut d);
        assert!(d.is_empty(), "{d:?}");
        let root = docs.first().map(|doc| doc.root.clone());
        let pb = root.and_then(|r| super::super::from_document(&r, &sm, opts, &mut d));
        assert!(pb.is_some(), "{d:?}");
        d.iter()
            .map(|d| {
                (
                    d.code.id,
                    f.slice(d.span).to_string(),
                    d.help.clone().unwrap_or_default(),
                    d.fix
                        .as_ref()
                        .map(|x| x.edits[0].text.clone())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    fn opts(channels: &[&str], sinks: &[&str]) -> ModelOptions {
        ModelOptions {
            channels: channels.iter().map(|s| s.to_string()).collect(),
            audit_sinks: sinks.iter().map(|s| s.to_string()).collect(),
            ..ModelOptions::default()
        }
    }

    /// A playbook naming channel `c` in `place` and sink `s`.
    fn every_place() -> Vec<(&'static str, String)> {
        let stage = "  stages:\n    - name: s\n      agent: m\n      approval: manual\n      approvers: [a]\n      sla: 1h\n";
        let mut out = Vec::new();
        for ev in [
            "on-pending",
            "on-approved",
            "on-rejected",
            "on-expired",
            "on-failure",
        ] {
            out.push((
                ev,
                format!("{stage}      notification: {{{ev}: [zzzzzz]}}\n"),
            ));
        }
        out.push((
            "escalation[].notify",
            format!("{stage}      escalation:\n        - after: 1h\n          approvers: [b]\n          notify: [zzzzzz]\n"),
        ));
        out.push((
            "rollback.notification",
            format!("{stage}  rollback: {{on-failure: notify-only, notification: [zzzzzz]}}\n"),
        ));
        out.push((
            "alerts[].notify",
            format!("{stage}  monitoring:\n    alerts:\n      - {{condition: 'x > 1', notify: [zzzzzz]}}\n"),
        ));
        out
    }

    #[test]
    fn every_place_a_channel_is_named_is_checked() {
        for (place, body) in every_place() {
            let d = run(&body, &opts(&["ops"], &[]));
            assert_eq!(d.len(), 1, "{place}: {d:?}");
            assert_eq!((d[0].0, d[0].1.as_str()), ("PB2024", "zzzzzz"), "{place}");
            assert_eq!(
                d[0].2,
                "defined channels: `ops`; define others under `notifications:` in .pbc.yaml",
                "{place}"
            );
            let d = run(&body.replace("zzzzzz", "ops"), &opts(&["ops"], &[]));
            assert!(d.is_empty(), "{place}: {d:?}");
        }
    }

    #[test]
    fn audit_sinks_are_checked() {
        let body = "  stages:\n    - {name: s, agent: m}\n  audit: {log-to: [trail, nowhere]}\n";
        let d = run(body, &opts(&[], &["trail"]));
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!((d[0].0, d[0].1.as_str()), ("PB2023", "nowhere"));
        assert_eq!(
            d[0].2,
            "defined audit sinks: `trail`; define others under `audit-sinks:` in .pbc.yaml"
        );
    }

    #[test]
    fn without_configuration_every_name_is_an_error() {
        let body = "  stages:\n    - name: s\n      agent: m\n      notification: {on-failure: [ops]}\n  audit: {log-to: [trail]}\n";
        let d = run(body, &ModelOptions::default());
        assert_eq!(
            d.iter()
                .map(|x| (x.0, x.1.as_str(), x.2.as_str()))
                .collect::<Vec<_>>(),
            [
                (
                    "PB2023",
                    "trail",
                    "no audit sinks are defined: add `audit-sinks:` to .pbc.yaml"
                ),
                (
                    "PB2024",
                    "ops",
                    "no channels are defined: add `notifications:` to .pbc.yaml"
                ),
            ]
        );
        let sm = SourceMap::new();
        let f = sm.add("t.yaml", format!("{HEAD}{body}"));
        let mut diags = Vec::new();
        let docs = parse(&f, &Limits::default(), &mut diags);
        let root = docs.first().map(|doc| doc.root.clone());
        root.and_then(|r| {
            super::super::from_document(&r, &sm, &ModelOptions::default(), &mut diags)
        });
        assert!(diags.iter().all(Diagnostic::is_error), "{diags:?}");
        assert_eq!(
            diags[1].message,
            "no notification channel `ops` is configured"
        );
        assert_eq!(diags[0].message, "no audit sink `trail` is configured");
    }

    #[test]
    fn a_close_name_is_suggested_and_fixed() {
        let body = "  stages:\n    - name: s\n      agent: m\n      notification: {on-failure: [\"slack-sec\"]}\n  audit: {log-to: [cloudtrial]}\n";
        let d = run(
            body,
            &opts(&["slack-security", "pagerduty"], &["cloudtrail"]),
        );
        assert_eq!(
            d,
            [
                (
                    "PB2023",
                    "cloudtrial".to_string(),
                    "did you mean `cloudtrail`? Defined audit sinks: `cloudtrail`; define others under `audit-sinks:` in .pbc.yaml".to_string(),
                    "cloudtrail".to_string()
                ),
                (
                    "PB2024",
                    "\"slack-sec\"".to_string(),
                    "did you mean `slack-security`? Defined channels: `slack-security`, `pagerduty`; define others under `notifications:` in .pbc.yaml".to_string(),
                    "slack-security".to_string()
                ),
            ]
        );
    }

    #[test]
    fn long_lists_are_cut() {
        let many: Vec<String> = (0..20).map(|i| format!("ch{i:02}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let body = "  stages:\n    - name: s\n      agent: m\n      notification: {on-failure: [zzzzzz]}\n";
        let d = run(body, &opts(&refs, &[]));
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].2.contains("`ch11`, … (20 in all);"), "{}", d[0].2);
        assert!(!d[0].2.contains("ch12"), "{}", d[0].2);
    }
}
