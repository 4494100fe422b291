//! Emitted names that get too long: checked at check time, so that `pbc
//! check` fails before any artifact is built.
//!
//! A playbook's name becomes the `WorkflowTemplate`'s name and a label value (at most 63
//! characters) and, for a schedule trigger, the `CronWorkflow`'s name (at most 52: Argo
//! appends `-<unix time>` to name the Workflows it creates). Overlays' `namePrefix` and
//! `nameSuffix` lengthen it; the finding names each of them.

use pbc_compiler::declare_codes;
use pbc_compiler::diag::Diagnostic;
use pbc_compiler::model::{Playbook, Trigger};
use pbc_compiler::span::{SourceMap, Span};

declare_codes! {
    /// A name that an artifact needs is longer than its kind allows.
    ///
    /// The playbook's name (after the overlays' `namePrefix`/`nameSuffix`) names the Argo
    /// `WorkflowTemplate` and is a label value: at most 63 characters. For a schedule trigger
    /// it also names the `CronWorkflow`, which Argo limits to 52 characters because it names
    /// each run `<name>-<unix time>`. The labels show where each part of the name comes from:
    /// the playbook's own `metadata.name` and each prefix or suffix. Shorten one of them.
    ///
    /// ```yaml
    /// # overlays/staging/kustomization.yaml
    /// namePrefix: staging-eu-central-1-    # makes a 40-character name 61 characters long
    /// ```
    PB6001 NAME_TOO_LONG "name-too-long" Error "an emitted name is longer than its kind allows";
}

/// The longest `WorkflowTemplate` (and label value) name.
pub const MAX_NAME: usize = 63;
/// The longest `CronWorkflow` name.
pub const MAX_CRON_NAME: usize = 52;

/// Checks the names the targets will emit for one playbook. `name_origin` is the
/// resolution's provenance of `metadata.name` (`Resolution::origins[i].name`: the original
/// name, then each prefix, suffix or patch that changed it); empty for a playbook read
/// without overlays.
///
/// Names longer than 63 characters are also not DNS-1123 labels, which the model reports
/// as `PB2008` at the same place; this finding adds which prefix or suffix made it so.
pub fn check_names(
    pb: &Playbook,
    name_origin: &[Span],
    sources: &SourceMap,
    diags: &mut Vec<Diagnostic>,
) {
    let name = pb.name();
    if name.is_empty() {
        return;
    }
    let len = name.chars().count();
    let cron = matches!(
        pb.spec.trigger.as_ref().map(|t| &t.value),
        Some(Trigger::Schedule { .. })
    );
    let (kind, max) = if len > MAX_NAME {
        ("WorkflowTemplate", MAX_NAME)
    } else if cron && len > MAX_CRON_NAME {
        ("CronWorkflow", MAX_CRON_NAME)
    } else {
        return;
    };
    let slice = |s: Span| {
        sources
            .get(s.file)
            .map(|f| f.slice(s).to_string())
            .unwrap_or_default()
    };
    let primary = name_origin.last().copied().unwrap_or(pb.metadata.name.span);
    let parts: Vec<(Span, String)> = name_origin.iter().map(|s| (*s, slice(*s))).collect();
    let grown = parts.len() > 1;
    let mut d = Diagnostic::new(
        &NAME_TOO_LONG,
        primary,
        format!(
            "the {kind} name `{name}` is {len} characters long, more than the {max} {kind} allows"
        ),
    );
    for (i, (span, text)) in parts.iter().enumerate() {
        let n = text.chars().count();
        let msg = if i == 0 {
            format!("the playbook's name, {n} characters")
        } else {
            format!("`{text}` adds {n} characters")
        };
        if *span == primary {
            d = d.with_label_text(msg);
        } else {
            d = d.with_label(*span, msg);
        }
    }
    let help = if grown {
        let added: Vec<String> = parts
            .iter()
            .skip(1)
            .map(|(_, t)| format!("`{t}`"))
            .collect();
        format!(
            "shorten the playbook's name or {} by {} characters",
            added.join(", "),
            len - max
        )
    } else {
        format!("shorten the playbook's name by {} characters", len - max)
    };
    let help = if kind == "CronWorkflow" {
        format!("{help}; Argo appends `-<unix time>` to a CronWorkflow's name for each run")
    } else {
        help
    };
    diags.push(d.with_help(help));
}
