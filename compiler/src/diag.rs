//! The one diagnostic model.
//!
//! A diagnostic is data: a [`Code`], a severity, a one-sentence message, a primary [`Span`],
//! secondary [`Label`]s (possibly in other files), optional help and an optional [`Fix`].
//! Rendering happens at the edge (`crate::render`). Codes are declared with [`declare_codes!`]
//! next to the code that emits them; their doc comments are what `pbc explain` prints.

use crate::span::Span;
use std::fmt;

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stable diagnostic code with its default severity and documentation.
#[derive(Debug)]
pub struct Code {
    /// `PB` + 4 digits.
    pub id: &'static str,
    /// A short kebab-case name (`unknown-field`).
    pub name: &'static str,
    pub severity: Severity,
    /// One line: what the code is about.
    pub summary: &'static str,
    /// Markdown documentation (from the doc comment where the code is declared).
    pub doc: &'static str,
}

impl PartialEq for Code {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for Code {}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id)
    }
}

/// Declares diagnostic codes and a `CODES` slice listing them.
///
/// ```ignore
/// declare_codes! {
///     /// Documentation shown by `pbc explain PB0001`.
///     PB0001 YAML_SYNTAX "yaml-syntax" Error "the file is not valid YAML";
/// }
/// ```
#[macro_export]
macro_rules! declare_codes {
    ($( $(#[doc = $doc:expr])* $id:ident $konst:ident $name:literal $sev:ident $summary:literal; )*) => {
        $(
            $(#[doc = $doc])*
            pub static $konst: $crate::diag::Code = $crate::diag::Code {
                id: stringify!($id),
                name: $name,
                severity: $crate::diag::Severity::$sev,
                summary: $summary,
                doc: concat!($($doc, "\n"),*),
            };
        )*
        /// Every code declared in this module.
        pub static CODES: &[&$crate::diag::Code] = &[$(&$konst),*];
    };
}

/// A secondary span with a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// One text replacement of a fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub span: Span,
    pub text: String,
}

/// A suggested fix: a title and the edits that apply it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fix {
    pub title: String,
    pub edits: Vec<Edit>,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: &'static Code,
    pub severity: Severity,
    pub message: String,
    pub span: Span,
    /// The text under the primary span's underline (optional).
    pub label: Option<String>,
    pub labels: Vec<Label>,
    pub help: Option<String>,
    pub fix: Option<Fix>,
}

impl Diagnostic {
    /// A diagnostic with the code's default severity.
    pub fn new(code: &'static Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.severity,
            message: message.into(),
            span,
            label: None,
            labels: Vec::new(),
            help: None,
            fix: None,
        }
    }

    pub fn with_label_text(mut self, text: impl Into<String>) -> Self {
        self.label = Some(text.into());
        self
    }

    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_fix(mut self, title: impl Into<String>, edits: Vec<Edit>) -> Self {
        self.fix = Some(Fix {
            title: title.into(),
            edits,
        });
        self
    }

    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sorts diagnostics into a stable order (file, position, code, message) and removes exact
/// duplicates.
pub fn sort_and_dedup(diags: &mut Vec<Diagnostic>, file_order: impl Fn(Span) -> (String, u32)) {
    diags.sort_by(|a, b| {
        let ka = file_order(a.span);
        let kb = file_order(b.span);
        ka.cmp(&kb)
            .then(a.span.end.cmp(&b.span.end))
            .then(a.code.id.cmp(b.code.id))
            .then(a.message.cmp(&b.message))
    });
    diags.dedup();
}

/// Counts of findings by severity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
    pub files: usize,
}

impl Summary {
    pub fn of(diags: &[Diagnostic], files: usize) -> Self {
        let mut s = Summary {
            files,
            ..Summary::default()
        };
        for d in diags {
            match d.severity {
                Severity::Error => s.errors += 1,
                Severity::Warning => s.warnings += 1,
                Severity::Info => s.infos += 1,
            }
        }
        s
    }
}

/// Returns the candidate closest to `name` (Jaro-Winkler over 0.8, or a small edit distance),
/// for "did you mean" help.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(&str, f64)> = None;
    for c in candidates {
        let jw = strsim::jaro_winkler(name, c);
        let lev = strsim::levenshtein(name, c);
        let ok = jw >= 0.82 || (lev <= 2 && name.len() > 2) || c.eq_ignore_ascii_case(name);
        if ok && best.is_none_or(|(_, s)| jw > s) {
            best = Some((c, jw));
        }
    }
    best.map(|(c, _)| c)
}

/// Formats a list of alternatives as `` `a`, `b` or `c` ``.
pub fn one_of<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("`{}`", s.as_ref())).collect();
    match quoted.len() {
        0 => String::new(),
        1 => quoted[0].clone(),
        n => format!("{} or {}", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}

/// A short, escaped excerpt of input text for a message: control and bidirectional
/// formatting characters escaped (so a message stays one line and cannot forge terminal
/// output), cut after `max` characters with `…`.
pub fn excerpt(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        let invisible = matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || invisible {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_finds_close_names() {
        let c = ["approvers", "approval", "agent", "action"];
        assert_eq!(did_you_mean("aproval", c), Some("approval"));
        assert_eq!(did_you_mean("approver", c), Some("approvers"));
        assert_eq!(did_you_mean("zzz", c), None);
    }

    #[test]
    fn one_of_lists() {
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
        assert_eq!(one_of(&["a"]), "`a`");
    }
}
