//! Suppression comments: `# pbc:allow(CODE)` or `# pbc:allow(CODE): reason` on the line of a
//! finding or on the line above it (several codes may be comma-separated). The
//! protected-environment codes (PB1030–PB1039) need the reason: a comment without one
//! suppresses nothing and is itself a finding (PB1040). Every suppression that removed a
//! finding is returned, for `pbc check --format json` and the job summary.

use super::{SUPPRESSION_WITHOUT_REASON, needs_reason};
use crate::diag::{Code, Diagnostic};
use crate::span::{SourceFile, SourceMap, Span};

/// A finding a comment suppressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppressed {
    pub code: &'static Code,
    /// The finding's primary span.
    pub span: Span,
    /// The reason the comment gives, if any.
    pub reason: Option<String>,
}

/// A `pbc:allow(...)` comment on a line that names `code`: `Some(reason)` (the text after
/// `):`, trimmed; `None` when empty), or `None` when the line does not allow the code. Also
/// the byte offset of the comment's `#` in the line.
pub fn allow_with_reason(line: &str, code: &str) -> Option<(usize, Option<String>)> {
    let hash = line.find('#')?;
    let mut rest = &line[hash..];
    let mut base = hash;
    while let Some(i) = rest.find("pbc:allow(") {
        let open = i + "pbc:allow(".len();
        let after = &rest[open..];
        let close = after.find(')')?;
        if after[..close].split(',').any(|c| c.trim() == code) {
            let tail = &after[close + 1..];
            // The reason runs to the end of the line, or to the next suppression comment.
            let tail = tail.split("pbc:allow(").next().unwrap_or("");
            let reason = tail
                .trim_start()
                .strip_prefix(':')
                .map(|r| r.trim().trim_end_matches('#').trim().to_string())
                .filter(|r| !r.is_empty());
            return Some((hash, reason));
        }
        base += open + close;
        rest = &line[base..];
    }
    None
}

/// The comment that allows `code` for a finding on `line` (that line, else the line above):
/// (the comment's line, the offset of its `#` in the line, the reason).
fn allowing(f: &SourceFile, line: u32, code: &str) -> Option<(u32, usize, Option<String>)> {
    [line, line.saturating_sub(1)]
        .into_iter()
        .filter(|l| *l > 0)
        .find_map(|l| allow_with_reason(f.line_text(l), code).map(|(h, r)| (l, h, r)))
}

/// Removes the findings suppressed by comments in their source files; returns what was
/// suppressed. A protected-environment finding whose comment gives no reason stays, and the
/// comment is reported (once).
pub fn apply(sources: &SourceMap, diags: &mut Vec<Diagnostic>) -> Vec<Suppressed> {
    let mut suppressed = Vec::new();
    let mut unreasoned: Vec<Diagnostic> = Vec::new();
    diags.retain(|d| {
        let Some(f) = sources.get(d.span.file) else {
            return true;
        };
        if !f.text.contains("pbc:allow(") {
            return true;
        }
        let lc = f.line_col(d.span.start);
        let Some((line, hash, reason)) = allowing(&f, lc.line, d.code.id) else {
            return true;
        };
        if reason.is_none() && needs_reason(d.code.id) {
            let start = f.line_start(line).unwrap_or(0) + hash as u32;
            let end = f.line_start(line).unwrap_or(0) + f.line_text(line).len() as u32;
            let span = Span::new(f.id, start, end);
            if !unreasoned.iter().any(|u| u.span == span) {
                unreasoned.push(
                    Diagnostic::new(
                        &SUPPRESSION_WITHOUT_REASON,
                        span,
                        format!(
                            "`pbc:allow({})` gives no reason, so it suppresses nothing",
                            d.code.id
                        ),
                    )
                    .with_label(d.span, format!("{} is reported here", d.code.id))
                    .with_help(format!(
                        "say why this environment may do it: `# pbc:allow({}): <reason>`",
                        d.code.id
                    )),
                );
            }
            return true;
        }
        if !suppressed
            .iter()
            .any(|s: &Suppressed| s.code.id == d.code.id && s.span == d.span)
        {
            suppressed.push(Suppressed {
                code: d.code,
                span: d.span,
                reason,
            });
        }
        false
    });
    diags.extend(unreasoned);
    suppressed
}

#[cfg(test)]
mod tests {
    use super::allow_with_reason;

    #[test]
    fn reasons_follow_the_closing_parenthesis() {
        assert_eq!(
            allow_with_reason(
                "  approval: auto  # pbc:allow(PB1031): on-call approves",
                "PB1031"
            ),
            Some((18, Some("on-call approves".into())))
        );
        assert_eq!(
            allow_with_reason("# pbc:allow(PB1031)", "PB1031"),
            Some((0, None))
        );
        assert_eq!(
            allow_with_reason("# pbc:allow(PB1031):   ", "PB1031"),
            Some((0, None))
        );
        assert_eq!(
            allow_with_reason("# pbc:allow(PB0001, PB1032): why", "PB1032"),
            Some((0, Some("why".into())))
        );
        assert_eq!(
            allow_with_reason("# pbc:allow(PB5003) pbc:allow(PB1031): r", "PB1031"),
            Some((0, Some("r".into())))
        );
        assert_eq!(allow_with_reason("# pbc:allow(PB1030): r", "PB1031"), None);
        assert_eq!(
            allow_with_reason("name: pbc:allow(PB1031): r", "PB1031"),
            None
        );
    }
}
