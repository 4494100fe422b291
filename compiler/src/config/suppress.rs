//! Suppression comments in the checked files: `# pbc:allow(CODE)` on a finding's line or the
//! line above (a protected-environment finding also needs a reason, `crate::guard::suppress`).

use crate::diag::Diagnostic;

/// Suppression comments: `# pbc:allow(PB5003)` (several codes may be comma-separated) on the
/// line of a finding or on the line above it.
pub fn is_suppressed(
    text: &str,
    line_text: impl Fn(u32) -> Option<String>,
    line: u32,
    code: &str,
) -> bool {
    let _ = text;
    for l in [line, line.saturating_sub(1)] {
        if l == 0 {
            continue;
        }
        if let Some(t) = line_text(l)
            && allows(&t, code)
        {
            return true;
        }
    }
    false
}

/// True if a line holds a `# pbc:allow(...)` comment naming `code`.
pub fn allows(line: &str, code: &str) -> bool {
    let Some(hash) = line.find('#') else {
        return false;
    };
    let mut rest = &line[hash..];
    while let Some(i) = rest.find("pbc:allow(") {
        let after = &rest[i + "pbc:allow(".len()..];
        let Some(close) = after.find(')') else {
            return false;
        };
        if after[..close].split(',').any(|c| c.trim() == code) {
            return true;
        }
        rest = &after[close..];
    }
    false
}

/// Removes findings suppressed by comments in their source files.
/// A protected-environment finding (PB1030–PB1039) needs a reason after the comment
/// (`# pbc:allow(PB1031): reason`); see [`crate::guard::suppress`].
pub fn apply_suppressions(sources: &crate::span::SourceMap, diags: &mut Vec<Diagnostic>) {
    crate::guard::suppress::apply(sources, diags);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_comments() {
        assert!(allows("  risk: high  # pbc:allow(PB5003)", "PB5003"));
        assert!(allows("# pbc:allow(PB0001, PB5003)", "PB5003"));
        assert!(!allows("# pbc:allow(PB5004)", "PB5003"));
        assert!(!allows("name: pbc:allow(PB5003)", "PB5003"));
    }
}
