//! `compliance:` in `.pbc.yaml`: the organisation's Statement of Applicability
//! (`compliance.applicability`), controls it excludes with a justification or meets
//! outside the playbooks with a reference. The coverage report shows them with their own
//! status and never counts them as gaps.

use super::*;

/// What the Statement of Applicability says of a control.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApplicabilityStatus {
    /// The control does not apply to the organisation (a justification says why).
    NotApplicable,
    /// The control is met by something other than the playbooks (a reference says what).
    SatisfiedExternally,
}

impl ApplicabilityStatus {
    /// The status as written in `.pbc.yaml` and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicabilityStatus::NotApplicable => "not-applicable",
            ApplicabilityStatus::SatisfiedExternally => "satisfied-externally",
        }
    }
}

/// One entry of `compliance.applicability`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applicability {
    /// The control tag as written (`SOC2-CC6.4`).
    pub control: String,
    pub control_span: Span,
    pub status: ApplicabilityStatus,
    pub justification: Option<String>,
    pub reference: Option<String>,
}

const COMPLIANCE_KEYS: &[&str] = &["applicability"];
const ENTRY_KEYS: &[&str] = &["status", "justification", "reference"];

impl Config {
    pub(super) fn read_compliance(&mut self, v: &Node, diags: &mut Vec<Diagnostic>) {
        let Some(entries) = v.as_map() else {
            diags.push(bad(
                v.span,
                format!("`compliance` must be a mapping, found {}", v.type_name()),
            ));
            return;
        };
        for e in entries {
            match e.key_str() {
                "applicability" => self.read_applicability(&e.value, diags),
                other => diags.push(unknown_key(e.key.span, other, COMPLIANCE_KEYS)),
            }
        }
    }

    fn read_applicability(&mut self, v: &Node, diags: &mut Vec<Diagnostic>) {
        let Some(entries) = v.as_map() else {
            diags.push(bad(
                v.span,
                format!(
                    "`compliance.applicability` must be a mapping of control tags to `{{status, justification | reference}}`, found {}",
                    v.type_name()
                ),
            ));
            return;
        };
        for e in entries {
            let control = e.key_str().to_string();
            let Some(fields) = e.value.as_map() else {
                diags.push(bad(
                    e.value.span,
                    format!(
                        "`{control}` must be a mapping `{{status, justification | reference}}`, found {}",
                        e.value.type_name()
                    ),
                ));
                continue;
            };
            let mut status = None;
            let mut justification = None;
            let mut reference = None;
            let mut ok = true;
            for f in fields {
                let key = f.key_str();
                if !ENTRY_KEYS.contains(&key) {
                    diags.push(unknown_key(f.key.span, key, ENTRY_KEYS));
                    ok = false;
                    continue;
                }
                let text = match f.value.as_scalar() {
                    Some(s) if s.kind == ScalarKind::Str && !s.text.trim().is_empty() => {
                        s.text.split_whitespace().collect::<Vec<_>>().join(" ")
                    }
                    _ => {
                        diags.push(bad(
                            f.value.span,
                            format!("`{key}` of `{control}` must be a non-empty string"),
                        ));
                        ok = false;
                        continue;
                    }
                };
                match key {
                    "status" => match text.as_str() {
                        "not-applicable" => status = Some(ApplicabilityStatus::NotApplicable),
                        "satisfied-externally" => {
                            status = Some(ApplicabilityStatus::SatisfiedExternally)
                        }
                        _ => {
                            diags.push(
                                bad(
                                    f.value.span,
                                    format!("unknown applicability status `{text}` of `{control}`"),
                                )
                                .with_help(
                                    "the status is `not-applicable` (with a `justification`) or `satisfied-externally` (with a `reference`)",
                                ),
                            );
                            ok = false;
                        }
                    },
                    "justification" => justification = Some(text),
                    _ => reference = Some(text),
                }
            }
            let Some(status) = status else {
                if ok {
                    diags.push(
                        bad(e.key.span, format!("`{control}` has no `status`")).with_help(
                            "add `status: not-applicable` or `status: satisfied-externally`",
                        ),
                    );
                }
                continue;
            };
            if justification.is_none() && reference.is_none() {
                let help = match status {
                    ApplicabilityStatus::NotApplicable => {
                        "add `justification:` saying why the control does not apply"
                    }
                    ApplicabilityStatus::SatisfiedExternally => {
                        "add `reference:` naming what meets the control (a document, a system, a ticket)"
                    }
                };
                diags.push(
                    bad(
                        e.key.span,
                        format!(
                            "`{control}` is `{}` without a `justification` or `reference`",
                            status.as_str()
                        ),
                    )
                    .with_help(help),
                );
                continue;
            }
            if !ok {
                continue;
            }
            self.applicability.push(Applicability {
                control,
                control_span: e.key.span,
                status,
                justification,
                reference,
            });
        }
    }
}
