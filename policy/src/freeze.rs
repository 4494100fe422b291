//! Reading the files a configuration's policies name into the form a run keeps, and
//! checking them: each problem is a diagnostic at the line of the policy file (or at the
//! policy's entry in `.pbc.yaml` when the library reports no place).

use crate::{ErrorKind, POLICY_FILE_UNREADABLE, PolicyError};
use pbc_compiler::config::{Config, PathRef, PolicyKind, RuleDef};
use pbc_compiler::diag::Diagnostic;
use pbc_compiler::fs::ReadError;
use pbc_compiler::load::Loader;
use pbc_compiler::span::Span;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A policy file as read: its path as shown to people, and its text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileText {
    pub path: String,
    pub text: String,
}

/// A policy's definition with its files' contents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FrozenKind {
    Rego {
        modules: Vec<FileText>,
        /// JSON documents merged under `data` (YAML files are kept as JSON).
        data: Vec<FileText>,
        query: String,
    },
    Cedar {
        policies: FileText,
        schema: Option<FileText>,
        entities: Option<FileText>,
    },
    Rules(Vec<RuleDef>),
    Undefined,
}

/// One policy as a run keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrozenPolicy {
    pub name: String,
    pub kind: FrozenKind,
    /// sha256 of its files (of its rules, for declarative rules), in the audit log.
    pub sha256: String,
    pub timeout_ms: u64,
    /// Evaluated again on the stage's output (`check-output`).
    #[serde(default)]
    pub check_output: bool,
}

/// The configuration's policies, frozen with a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicySet {
    #[serde(default)]
    pub policies: BTreeMap<String, FrozenPolicy>,
    /// `always-on-policies`: evaluated before every action stage.
    #[serde(default)]
    pub always_on: Vec<String>,
    /// The environment (overlay directory) the run was resolved in.
    #[serde(default)]
    pub environment: Option<String>,
}

impl PolicySet {
    /// The policies evaluated before a stage: its own, then (for an action stage) the
    /// always-on ones, each once.
    pub fn for_stage(&self, own: Option<&str>, is_action: bool) -> Vec<String> {
        let mut names: Vec<String> = own.map(String::from).into_iter().collect();
        if is_action {
            for a in &self.always_on {
                if !names.contains(a) {
                    names.push(a.clone());
                }
            }
        }
        names
    }

    /// Of `names`, the policies that also check the stage's output.
    pub fn output_checks(&self, names: &[String]) -> Vec<String> {
        names
            .iter()
            .filter(|n| self.policies.get(*n).is_some_and(|p| p.check_output))
            .cloned()
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty() && self.always_on.is_empty()
    }
}

fn sha256_hex(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn read(loader: &Loader, p: &PathRef, diags: &mut Vec<Diagnostic>) -> Option<FileText> {
    let shown = loader.display_path(&p.path);
    let bytes = match loader
        .fs
        .read(&loader.resolve(&p.path), loader.limits.max_file_bytes)
    {
        Ok(b) => b,
        Err(e) => {
            let why = match e {
                ReadError::TooLarge { len, limit } => {
                    format!("it is {len} bytes, over the limit of {limit}")
                }
                ReadError::NotAFile(kind) => format!("it is {kind}, not a regular file"),
                ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    "no such file".to_string()
                }
                ReadError::Io(e) => e.to_string(),
            };
            diags.push(
                Diagnostic::new(
                    &POLICY_FILE_UNREADABLE,
                    p.span,
                    format!("cannot read policy file `{}`: {why}", shown.display()),
                )
                .with_help("paths in `.pbc.yaml` are relative to its directory"),
            );
            return None;
        }
    };
    let Ok(text) = String::from_utf8(bytes) else {
        diags.push(Diagnostic::new(
            &POLICY_FILE_UNREADABLE,
            p.span,
            format!("policy file `{}` is not UTF-8", shown.display()),
        ));
        return None;
    };
    let path = shown.to_string_lossy().into_owned();
    // Registered, so that diagnostics can point into it.
    if loader.sources.find(&shown).is_none() {
        loader.sources.add(shown, text.as_str());
    }
    Some(FileText { path, text })
}

/// A data document as JSON text (YAML is read with pbc's loader, problems reported).
fn read_data(loader: &Loader, p: &PathRef, diags: &mut Vec<Diagnostic>) -> Option<FileText> {
    let is_yaml = p
        .path
        .extension()
        .is_some_and(|e| e == "yaml" || e == "yml");
    if !is_yaml {
        return read(loader, p, diags);
    }
    let loaded = match loader.load(&p.path) {
        Ok(l) => l,
        Err(e) => {
            diags.push(Diagnostic::new(
                &POLICY_FILE_UNREADABLE,
                p.span,
                format!("cannot read policy data: {e}"),
            ));
            return None;
        }
    };
    diags.extend(loaded.diags.iter().cloned());
    let json = loaded
        .docs
        .first()
        .map(|d| d.root.to_json())
        .unwrap_or(serde_json::Value::Null);
    Some(FileText {
        path: loader.display_path(&p.path).to_string_lossy().into_owned(),
        text: json.to_string(),
    })
}

/// Reads every policy's files. Unreadable files are diagnostics; such a policy is left
/// out (a stage bound to it is refused: nothing to evaluate).
pub fn freeze(cfg: &Config, loader: &Loader, diags: &mut Vec<Diagnostic>) -> PolicySet {
    let mut set = PolicySet {
        always_on: cfg
            .always_on_policies
            .iter()
            .map(|(n, _)| n.clone())
            .collect(),
        ..PolicySet::default()
    };
    for (name, def) in &cfg.policy_defs {
        let before = diags.len();
        let kind = match &def.kind {
            PolicyKind::Rego {
                files, data, query, ..
            } => {
                let modules: Vec<FileText> = files
                    .iter()
                    .filter_map(|f| read(loader, f, diags))
                    .collect();
                let data: Vec<FileText> = data
                    .iter()
                    .filter_map(|f| read_data(loader, f, diags))
                    .collect();
                FrozenKind::Rego {
                    modules,
                    data,
                    query: query.clone(),
                }
            }
            PolicyKind::Cedar {
                policies,
                schema,
                entities,
            } => {
                let p = read(loader, policies, diags);
                let s = schema.as_ref().and_then(|f| read(loader, f, diags));
                let e = entities.as_ref().and_then(|f| read(loader, f, diags));
                match p {
                    Some(policies) => FrozenKind::Cedar {
                        policies,
                        schema: s,
                        entities: e,
                    },
                    None => continue,
                }
            }
            PolicyKind::Rules(r) => FrozenKind::Rules(r.clone()),
            PolicyKind::Undefined => FrozenKind::Undefined,
        };
        if diags[before..].iter().any(Diagnostic::is_error) {
            continue;
        }
        let sha256 = match &kind {
            FrozenKind::Rego {
                modules,
                data,
                query,
            } => {
                let mut parts: Vec<&str> = vec![query];
                parts.extend(modules.iter().map(|m| m.text.as_str()));
                parts.extend(data.iter().map(|m| m.text.as_str()));
                sha256_hex(&parts)
            }
            FrozenKind::Cedar {
                policies,
                schema,
                entities,
            } => sha256_hex(&[
                &policies.text,
                schema.as_ref().map(|s| s.text.as_str()).unwrap_or(""),
                entities.as_ref().map(|s| s.text.as_str()).unwrap_or(""),
            ]),
            FrozenKind::Rules(r) => sha256_hex(&[&serde_json::to_string(r).unwrap_or_default()]),
            FrozenKind::Undefined => sha256_hex(&[]),
        };
        set.policies.insert(
            name.clone(),
            FrozenPolicy {
                name: name.clone(),
                kind,
                sha256,
                timeout_ms: def.timeout_ms,
                check_output: def.check_output,
            },
        );
    }
    set
}

/// The span of a policy error: in its file when located, else at `fallback`.
fn span_of(loader: &Loader, e: &PolicyError, fallback: Span) -> Span {
    let Some(file) = e
        .file
        .as_ref()
        .and_then(|f| loader.sources.find(&PathBuf::from(f)))
    else {
        return fallback;
    };
    let len = file.text.len() as u32;
    if let Some((s, end)) = e.range {
        let s = (s as u32).min(len);
        let end = (end as u32).clamp(s, len);
        return Span::new(file.id, s, end);
    }
    if let Some((line, col)) = e.line_col
        && line >= 1
    {
        let start = file.offset_of(line, col.saturating_sub(1)).min(len);
        // To the end of the token (or of the line).
        let rest = &file.text[start as usize..];
        let n = rest
            .find(|c: char| c.is_whitespace())
            .unwrap_or(rest.len())
            .max(1)
            .min(rest.len());
        return Span::new(file.id, start, start + n as u32);
    }
    Span::point(file.id, 0)
}

/// Compiles every frozen policy; problems become diagnostics.
pub fn check(cfg: &Config, set: &PolicySet, loader: &Loader, diags: &mut Vec<Diagnostic>) {
    for (name, p) in &set.policies {
        let Err(errors) = p.compile() else {
            continue;
        };
        let fallback = match cfg.policy_defs.get(name).map(|d| &d.kind) {
            Some(PolicyKind::Rego { query_span, .. }) => *query_span,
            _ => cfg
                .policy_defs
                .get(name)
                .map(|d| d.span)
                .unwrap_or_default(),
        };
        for e in errors {
            let span = span_of(loader, &e, fallback);
            let what = match e.kind {
                ErrorKind::RegoCompile => "does not compile",
                ErrorKind::CedarParse => "does not parse",
                ErrorKind::CedarInvalid => "fails validation against its schema",
                ErrorKind::DataInvalid => "has data that cannot be read",
            };
            let cfg_span = cfg.policy_defs.get(name).map(|d| d.span);
            let mut d = Diagnostic::new(e.kind.code(), span, e.message.clone()).with_help(format!(
                "policy `{name}` {what}; stages bound to it are refused until it is fixed"
            ));
            if let Some(s) = cfg_span
                && s != span
            {
                d = d.with_label(s, format!("policy `{name}` is defined here"));
            }
            diags.push(d);
        }
    }
}
