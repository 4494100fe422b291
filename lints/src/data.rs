//! Small helpers for reading pbc's own data files (catalogs, evidence rules) from the spanned
//! YAML tree. Every problem becomes a diagnostic with the data file's code, at the exact span.

use pbc_compiler::diag::{Code, Diagnostic, did_you_mean, one_of};
use pbc_compiler::span::Span;
use pbc_compiler::yaml::{Node, ScalarKind};

/// Reports problems in one data file under one code.
pub(crate) struct Reader<'d> {
    pub code: &'static Code,
    pub diags: &'d mut Vec<Diagnostic>,
    pub errors: usize,
}

impl<'d> Reader<'d> {
    pub fn new(code: &'static Code, diags: &'d mut Vec<Diagnostic>) -> Self {
        Reader {
            code,
            diags,
            errors: 0,
        }
    }

    pub fn error(&mut self, span: Span, msg: impl Into<String>) {
        self.errors += 1;
        self.diags.push(Diagnostic::new(self.code, span, msg));
    }

    pub fn error_help(&mut self, span: Span, msg: impl Into<String>, help: impl Into<String>) {
        self.errors += 1;
        self.diags
            .push(Diagnostic::new(self.code, span, msg).with_help(help));
    }

    /// The entries of a mapping whose keys must be among `known`; unknown keys are reported
    /// (with a did-you-mean) and skipped. `None` (reported) if `node` is not a mapping.
    pub fn fields<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        known: &[&str],
    ) -> Option<Vec<(&'n str, &'n Node, Span)>> {
        let Some(entries) = node.as_map() else {
            self.error(
                node.span,
                format!("{what} must be a mapping, found {}", node.type_name()),
            );
            return None;
        };
        let mut out = Vec::new();
        for e in entries {
            let k = e.key_str();
            if known.contains(&k) {
                out.push((k, &e.value, e.key.span));
            } else {
                let help = match did_you_mean(k, known.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`? known keys: {}", one_of(known)),
                    None => format!("known keys: {}", one_of(known)),
                };
                self.error_help(e.key.span, format!("unknown key `{k}` in {what}"), help);
            }
        }
        Some(out)
    }

    /// The text of a scalar that names something (a string, or a number written plainly such
    /// as an unquoted `5.1`). Reports null, booleans and collections.
    pub fn text(&mut self, node: &Node, what: &str) -> Option<String> {
        match node.as_scalar() {
            Some(s)
                if matches!(
                    s.kind,
                    ScalarKind::Str | ScalarKind::Int | ScalarKind::Float
                ) && !s.text.trim().is_empty() =>
            {
                Some(s.text.as_str().to_owned())
            }
            _ => {
                self.error(
                    node.span,
                    format!(
                        "{what} must be a non-empty string, found {}",
                        node.type_name()
                    ),
                );
                None
            }
        }
    }

    /// A list of names (see [`Reader::text`]) with their spans.
    pub fn text_list(&mut self, node: &Node, what: &str) -> Option<Vec<(String, Span)>> {
        let Some(items) = node.as_seq() else {
            self.error(
                node.span,
                format!("{what} must be a list, found {}", node.type_name()),
            );
            return None;
        };
        let mut out = Vec::new();
        for i in items {
            if let Some(t) = self.text(i, &format!("an item of {what}")) {
                out.push((t, i.span));
            }
        }
        Some(out)
    }

    /// A non-negative integer.
    pub fn uint(&mut self, node: &Node, what: &str) -> Option<u64> {
        match node.as_scalar() {
            Some(s) if s.kind == ScalarKind::Int => match s.text.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    self.error(node.span, format!("{what} must be a whole number ≥ 0"));
                    None
                }
            },
            _ => {
                self.error(
                    node.span,
                    format!("{what} must be an integer, found {}", node.type_name()),
                );
                None
            }
        }
    }

    /// A boolean.
    pub fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.as_scalar() {
            Some(s) if s.kind == ScalarKind::Bool => Some(s.text.eq_ignore_ascii_case("true")),
            _ => {
                self.error(
                    node.span,
                    format!(
                        "{what} must be `true` or `false`, found {}",
                        node.type_name()
                    ),
                );
                None
            }
        }
    }
}
