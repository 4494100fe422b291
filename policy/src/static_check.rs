//! Static policies (`pbc check --policy DIR`, `check-policies:`): Rego `deny` and `warn`
//! rules run over each resolved playbook, as conftest runs them over configuration files.
//! The input is the playbook after overlays. A rule's values are findings: a message
//! (conftest's `deny contains msg`), or an object `{"msg", "path"}` whose `path` is a JSON
//! pointer into the playbook; the finding is then reported at the line of that value, in
//! the file that contributed it (a base, or the overlay patch that changed it), with the
//! rule's line in the policy file as a secondary label.

use crate::rego::located;
use crate::{ErrorKind, POLICY_FILE_UNREADABLE};
use pbc_compiler::declare_codes;
use pbc_compiler::diag::Diagnostic;
use pbc_compiler::load::Loader;
use pbc_compiler::span::Span;
use pbc_compiler::yaml::Node;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

declare_codes! {
    /// A static policy's `deny` rule matched the playbook.
    ///
    /// `pbc check --policy DIR` (and `check-policies:` in `.pbc.yaml`) runs the Rego `deny`
    /// and `warn` rules of DIR over each resolved playbook. A finding with a JSON pointer
    /// (`{"msg": "...", "path": "/spec/stages/0/timeout"}`) is reported at that value, in
    /// the file that set it; a plain message at the playbook's `kind`.
    PB6020 STATIC_DENY "policy-deny" Error "a static policy denies the playbook";
    /// A static policy's `warn` rule matched the playbook.
    ///
    /// As `PB6020`, for `warn` rules: a warning, not an error.
    PB6021 STATIC_WARN "policy-warn" Warning "a static policy warns about the playbook";
}

/// A `deny` or `warn` rule of a package.
struct Rule {
    package: String,
    kind: &'static str,
    span: Span,
}

/// Compiled static policies, ready to run over playbooks.
pub struct StaticPolicies {
    engine: Mutex<regorus::Engine>,
    rules: Vec<Rule>,
}

impl std::fmt::Debug for StaticPolicies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticPolicies")
            .field("rules", &self.rules.len())
            .finish_non_exhaustive()
    }
}

fn rego_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rego_files(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "rego")
            && !p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with("_test.rego"))
        {
            out.push(p);
        }
    }
    Ok(())
}

impl StaticPolicies {
    /// Reads and compiles the `.rego` files under `dirs` (tests, `*_test.rego`, left out).
    /// Problems are diagnostics; `None` when there is nothing to run.
    pub fn load(
        dirs: &[(PathBuf, Option<Span>)],
        loader: &Loader,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<StaticPolicies> {
        let mut engine = regorus::Engine::new();
        let mut rules = Vec::new();
        let before = diags.len();
        for (dir, span) in dirs {
            let mut files = Vec::new();
            if let Err(e) = rego_files(&loader.resolve(dir), &mut files) {
                let msg = format!("cannot read the policy directory `{}`: {e}", dir.display());
                match span {
                    Some(s) => diags.push(Diagnostic::new(&POLICY_FILE_UNREADABLE, *s, msg)),
                    None => {
                        let f = loader.sources.add(loader.display_path(dir), "");
                        diags.push(Diagnostic::new(
                            &POLICY_FILE_UNREADABLE,
                            Span::point(f.id, 0),
                            msg,
                        ));
                    }
                }
                continue;
            }
            for path in files {
                let shown = loader.display_path(&path);
                let Ok(text) = std::fs::read_to_string(&path) else {
                    let f = loader.sources.add(shown.clone(), "");
                    diags.push(Diagnostic::new(
                        &POLICY_FILE_UNREADABLE,
                        Span::point(f.id, 0),
                        format!("cannot read `{}`", shown.display()),
                    ));
                    continue;
                };
                let file = loader.sources.add(shown.clone(), text.as_str());
                let name = shown.to_string_lossy().into_owned();
                match engine.add_policy(name.clone(), text.clone()) {
                    Ok(pkg) => {
                        let mut offset = 0u32;
                        for line in text.split_inclusive('\n') {
                            for kind in ["deny", "warn"] {
                                let rest = line.strip_prefix(kind).unwrap_or("");
                                if line.starts_with(kind)
                                    && rest.starts_with([' ', '[', '{', ':', '='])
                                    && !rules
                                        .iter()
                                        .any(|r: &Rule| r.package == pkg && r.kind == kind)
                                {
                                    rules.push(Rule {
                                        package: pkg.clone(),
                                        kind,
                                        span: Span::new(
                                            file.id,
                                            offset,
                                            offset + kind.len() as u32,
                                        ),
                                    });
                                }
                            }
                            offset += line.len() as u32;
                        }
                    }
                    Err(e) => {
                        let pe = located(&e.to_string(), ErrorKind::RegoCompile);
                        let span = match pe.line_col {
                            Some((l, c)) => {
                                let s = file.offset_of(l, c.saturating_sub(1));
                                Span::new(file.id, s, s)
                            }
                            None => Span::point(file.id, 0),
                        };
                        diags.push(Diagnostic::new(&crate::REGO_COMPILE, span, pe.message));
                    }
                }
            }
        }
        if diags.len() > before || rules.is_empty() {
            return None;
        }
        Some(StaticPolicies {
            engine: Mutex::new(engine),
            rules,
        })
    }

    /// Runs every rule over one resolved playbook.
    pub fn check(&self, root: &Node, diags: &mut Vec<Diagnostic>) {
        let input = root.to_json();
        let Ok(value) = regorus::Value::from_json_str(&input.to_string()) else {
            return;
        };
        let mut engine = self
            .engine
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        engine.set_input(value);
        let at_kind = root
            .entry("kind")
            .map(|e| e.key.span)
            .unwrap_or(Span::point(root.span.file, root.span.start));
        for r in &self.rules {
            let code = if r.kind == "deny" {
                &STATIC_DENY
            } else {
                &STATIC_WARN
            };
            let rule = format!("{}.{}", r.package, r.kind);
            let found = match engine.eval_rule(rule.clone()) {
                Ok(regorus::Value::Undefined) => continue,
                Ok(v) => v
                    .to_json_str()
                    .ok()
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                    .unwrap_or(Value::Null),
                Err(e) => {
                    let pe = located(&e.to_string(), ErrorKind::RegoCompile);
                    diags.push(
                        Diagnostic::new(
                            code,
                            at_kind,
                            format!("`{rule}` failed to evaluate: {}", pe.message),
                        )
                        .with_label(r.span, format!("`{}` is defined here", r.kind)),
                    );
                    continue;
                }
            };
            let items = match found {
                Value::Array(items) => items,
                Value::Bool(true) => vec![Value::String(format!("`{rule}` is true"))],
                Value::String(_) | Value::Object(_) => vec![found],
                _ => continue,
            };
            for item in items {
                let (msg, pointer) = match &item {
                    Value::String(s) => (s.clone(), None),
                    Value::Object(m) => (
                        m.get("msg")
                            .or(m.get("message"))
                            .and_then(Value::as_str)
                            .map(String::from)
                            .unwrap_or_else(|| item.to_string()),
                        m.get("path").and_then(Value::as_str).map(String::from),
                    ),
                    other => (other.to_string(), None),
                };
                let span = pointer
                    .as_deref()
                    .and_then(|p| locate(root, p))
                    .unwrap_or(at_kind);
                let mut d =
                    Diagnostic::new(code, span, msg).with_label(r.span, format!("rule `{rule}`"));
                if let Some(p) = &pointer
                    && locate(root, p).is_none()
                {
                    d = d.with_help(format!(
                        "the finding's path `{p}` names no value of this playbook"
                    ));
                }
                diags.push(d);
            }
        }
    }
}

/// The span of the value a JSON pointer names.
pub fn locate(root: &Node, pointer: &str) -> Option<Span> {
    let mut n = root;
    if pointer.is_empty() {
        return Some(n.span);
    }
    let rest = pointer.strip_prefix('/')?;
    for raw in rest.split('/') {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        n = match (n.as_map(), n.as_seq()) {
            (Some(_), _) => n.get(&seg)?,
            (_, Some(items)) => items.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(n.span)
}
