//! What a workflow carries in its ConfigMap: the files `pbc runner` reads from `/etc/pbc`,
//! collected when the tree is compiled (the loader and the configuration are at hand then),
//! and the environment variables its secrets come from.
//!
//! The layout, by path under the mount:
//!
//! - `playbook.yaml`: the resolved playbook, byte for byte as `pbc build --target resolved`
//!   writes it (the text a signed approval's `playbook_sha256` covers), each schema file at
//!   the relative path the playbook names; a reference that leaves the directory (`..`,
//!   absolute) or whose path another file takes is rewritten to a copy
//!   `schemas/<stage index>/<file name>` (`schemas/input/<file name>` for the input schema);
//! - `pbc.yaml`: the configuration file as written, with the files it names (policies' Rego
//!   modules, data, Cedar files; `tls.ca-file`) at their paths relative to it;
//! - `agents.yaml`: the agents file `serve.agents` names, with each fixture directory it
//!   names (relative to it, as the runner reads it).
//!
//! Secrets are never carried: every `…-env` key under `notifications:` and `audit-sinks:`
//! of the configuration and under `agents:`/`actions:` of the agents file names a variable
//! the containers take from a Secret. A file that cannot be carried (outside the
//! configuration's directory, unreadable, not UTF-8 text, or two files at one path) is
//! recorded as a problem, reported only when the `argo` target is built.

use pbc_compiler::config::{Config, PolicyKind};
use pbc_compiler::fs::ReadError;
use pbc_compiler::load::Loader;
use pbc_compiler::model::Playbook;
use pbc_compiler::span::Span;
use pbc_compiler::types::SchemaStore;
use pbc_compiler::yaml::{Node, Value as YValue};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

/// The playbook file under the mount.
pub const PLAYBOOK_FILE: &str = "playbook.yaml";
/// The configuration under the mount.
pub const CONFIG_FILE: &str = "pbc.yaml";
/// The agents file under the mount.
pub const AGENTS_FILE: &str = "agents.yaml";

/// The most files one fixture directory may hold (it is read whole).
const MAX_FIXTURE_FILES: usize = 10_000;

/// A file that cannot be carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where it is named (the playbook's name when nothing names it).
    pub span: Option<Span>,
    pub message: String,
    pub help: String,
}

/// One carried file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub text: String,
    /// What names it (for a finding about it).
    pub span: Option<Span>,
    /// The file it was read from, as shown to people.
    pub source: String,
}

/// The files (by path under the mount) and the secrets' variables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Carried {
    pub files: BTreeMap<String, File>,
    pub secrets: BTreeSet<String>,
    /// The configuration's `state:` PostgreSQL URL: the pods share that store (rate limits,
    /// one audit chain), its password from the Secret (`PBC_STATE_PASSWORD`).
    pub state_url: Option<String>,
    pub problems: Vec<Problem>,
    /// The `file` audit sinks and notification channels of the configuration: (`audit-sinks`
    /// or `notifications`, name, the `file` value's span). A pod cannot write them.
    pub file_outputs: Vec<(&'static str, String, Option<Span>)>,
}

impl Carried {
    /// Adds a file; another file already at `path` with other bytes is a problem.
    fn add(&mut self, path: String, file: File) {
        match self.files.get(&path) {
            Some(f) if f.text != file.text => self.problems.push(Problem {
                span: file.span,
                message: format!(
                    "`{}` and `{}` would both be `{path}` in the workflow's ConfigMap",
                    f.source, file.source
                ),
                help: "rename one of them".into(),
            }),
            Some(_) => {}
            None => {
                self.files.insert(path, file);
            }
        }
    }

    /// This set and `other` (the playbook's files after the configuration's).
    pub fn merged(&self, other: &Carried) -> Carried {
        let mut c = self.clone();
        for (p, f) in &other.files {
            c.add(p.clone(), f.clone());
        }
        c.secrets.extend(other.secrets.iter().cloned());
        if c.state_url.is_none() {
            c.state_url = other.state_url.clone();
        }
        c.problems.extend(other.problems.iter().cloned());
        c
    }

    fn read(
        &mut self,
        loader: &Loader,
        limit: u64,
        at: &Path,
        span: Option<Span>,
    ) -> Option<String> {
        let shown = loader.display_path(at).to_string_lossy().into_owned();
        let bytes = match loader.fs.read(&loader.resolve(at), limit) {
            Ok(b) => b,
            Err(e) => {
                let e = match e {
                    ReadError::TooLarge { len, limit } => {
                        format!("it is {len} bytes, more than the limit of {limit}")
                    }
                    ReadError::NotAFile(kind) => format!("it is {kind}, not a regular file"),
                    ReadError::Io(e) => e.to_string(),
                };
                self.problems.push(Problem {
                    span,
                    message: format!("`{shown}` cannot be read for the workflow's ConfigMap: {e}"),
                    help: "the runner reads this file in its pod: make it a readable regular file"
                        .into(),
                });
                return None;
            }
        };
        match String::from_utf8(bytes) {
            Ok(t) => Some(t),
            Err(_) => {
                self.problems.push(Problem {
                    span,
                    message: format!("`{shown}` is not UTF-8 text: the workflow's ConfigMap carries text files only"),
                    help: "convert the file to UTF-8".into(),
                });
                None
            }
        }
    }

    /// Reads `at` into the mount at `rel`.
    fn carry(&mut self, loader: &Loader, limit: u64, at: &Path, rel: String, span: Option<Span>) {
        if let Some(text) = self.read(loader, limit, at, span) {
            let source = loader.display_path(at).to_string_lossy().into_owned();
            self.add(rel, File { text, span, source });
        }
    }
}

/// `path` relative to `base` as a mount path (`a/b.json`), or `None` when it leaves `base`.
fn relative(path: &Path, base: &Path) -> Option<String> {
    let rel = path.strip_prefix(base).ok()?;
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?.to_string()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn outside(c: &mut Carried, loader: &Loader, at: &Path, base: &Path, span: Option<Span>) {
    c.problems.push(Problem {
        span,
        message: format!(
            "`{}` is not under `{}`: the workflow's ConfigMap mounts files at their paths relative to it",
            loader.display_path(at).display(),
            loader.display_path(base).display()
        ),
        help: "move the file into that directory (or below it) and name it from there".into(),
    });
}

/// Every `…-env` key's value under `node` (iteratively: the configuration is input).
fn env_names(node: &Node, out: &mut BTreeSet<String>) {
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        match &n.value {
            YValue::Map(entries) => {
                for e in entries.iter() {
                    if e.key_str().ends_with("-env")
                        && let Some(v) = e.value.as_str()
                    {
                        let v = v.trim();
                        if !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        {
                            out.insert(v.to_string());
                        }
                    } else {
                        stack.push(&e.value);
                    }
                }
            }
            YValue::Seq(items) => stack.extend(items.iter()),
            YValue::Scalar(_) => {}
        }
    }
}

/// The configuration's part: `pbc.yaml`, its files, the agents file and its fixtures, the
/// secrets' variables.
pub fn of_config(loader: &Loader, cfg: &Config) -> Carried {
    let mut c = Carried::default();
    let Some(path) = &cfg.path else {
        return c;
    };
    let limit = cfg.limits.max_file_bytes;
    let root_node = loader
        .load(path)
        .ok()
        .and_then(|l| l.docs.first().map(|d| d.root.clone()));
    let top = root_node.as_ref().map(|r| r.span);
    c.carry(loader, limit, path, CONFIG_FILE.into(), top);
    if let Some(r) = &root_node {
        for key in ["notifications", "audit-sinks"] {
            if let Some(n) = r.get(key) {
                env_names(n, &mut c.secrets);
                for e in n.as_map().into_iter().flatten() {
                    if let Some(f) = e.value.get("file") {
                        c.file_outputs
                            .push((key, e.key_str().to_string(), Some(f.span)));
                    }
                }
            }
        }
    }
    if let Some(url) = cfg
        .state
        .as_ref()
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
    {
        c.state_url = Some(url.clone());
        c.secrets.insert("PBC_STATE_PASSWORD".to_string());
    }
    let base = cfg.root.clone();
    let mut named: Vec<(PathBuf, Option<Span>)> = Vec::new();
    for def in cfg.policy_defs.values() {
        match &def.kind {
            PolicyKind::Rego { files, data, .. } => {
                named.extend(
                    files
                        .iter()
                        .chain(data)
                        .map(|p| (p.path.clone(), Some(p.span))),
                );
            }
            PolicyKind::Cedar {
                policies,
                schema,
                entities,
            } => {
                for p in std::iter::once(policies).chain(schema).chain(entities) {
                    named.push((p.path.clone(), Some(p.span)));
                }
            }
            PolicyKind::Rules(_) | PolicyKind::Undefined => {}
        }
    }
    let at_key = |key: &[&str]| {
        root_node
            .as_ref()
            .and_then(|r| r.get_path(key))
            .map(|n| n.span)
    };
    if let Some(ca) = &cfg.tls_ca_file {
        named.push((ca.clone(), at_key(&["tls", "ca-file"]).or(top)));
    }
    for (p, span) in named {
        match relative(&p, &base) {
            Some(rel) => c.carry(loader, limit, &p, rel, span),
            None => outside(&mut c, loader, &p, &base, span),
        }
    }
    if let Some(agents) = &cfg.serve.agents {
        let span = at_key(&["serve", "agents"]).or(top);
        agents_file(&mut c, loader, limit, agents, span);
    }
    c
}

/// The agents file, its fixture directories and the variables it names.
fn agents_file(c: &mut Carried, loader: &Loader, limit: u64, path: &Path, span: Option<Span>) {
    let Some(text) = c.read(loader, limit, path, span) else {
        return;
    };
    let source = loader.display_path(path).to_string_lossy().into_owned();
    c.add(
        AGENTS_FILE.into(),
        File {
            text: text.clone(),
            span,
            source: source.clone(),
        },
    );
    let parsed = loader.load_text(format!("{source} (agents)"), text);
    let Some(root) = parsed.docs.first().map(|d| &d.root) else {
        return;
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    for kind in ["agents", "actions"] {
        let Some(list) = root.get(kind) else { continue };
        env_names(list, &mut c.secrets);
        for e in list.as_map().into_iter().flatten() {
            let Some(f) = e.value.get("fixture").and_then(Node::as_str) else {
                continue;
            };
            let fdir = dir.join(f.trim());
            let Some(rel) = relative(&fdir, &dir) else {
                outside(c, loader, &fdir, &dir, span);
                continue;
            };
            let mut files = match loader.fs.read_dir(&loader.resolve(&fdir)) {
                Ok(f) => f,
                Err(err) => {
                    c.problems.push(Problem {
                        span,
                        message: format!(
                            "the fixture directory `{}` of {} `{}` cannot be read for the workflow's ConfigMap: {err}",
                            loader.display_path(&fdir).display(),
                            kind.trim_end_matches('s'),
                            e.key_str()
                        ),
                        help: "create the directory, or point `fixture` at one that exists".into(),
                    });
                    continue;
                }
            };
            files.sort();
            files.truncate(MAX_FIXTURE_FILES);
            for p in files {
                let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                let abs = loader.resolve(&fdir.join(name));
                let regular = loader
                    .fs
                    .metadata(&abs)
                    .is_ok_and(|m| m.kind == pbc_compiler::fs::FileKind::File);
                if regular && name.ends_with(".json") {
                    c.carry(
                        loader,
                        limit,
                        &fdir.join(name),
                        format!("{rel}/{name}"),
                        span,
                    );
                }
            }
        }
    }
}

/// The playbook's part: `playbook.yaml` (schema references pointing at their copies) and
/// the schema files.
pub fn of_playbook(loader: &Loader, cfg: &Config, root: &Node, pb: &Playbook) -> Carried {
    let mut c = Carried::default();
    let mut doc = root.clone();
    let refs = pb.schema_refs();
    // Where each schema went: kept at the path the playbook names (so `playbook.yaml` is the
    // resolved playbook byte for byte, the text a signed approval's hash covers), or copied
    // under `schemas/…` with the reference rewritten when that path leaves the mount or is
    // taken by another file.
    let mut placed: BTreeMap<String, PathBuf> = BTreeMap::new();
    for r in refs {
        let (at, reference) = (&r.at, r.reference);
        let dir = match r.stage {
            Some(i) => format!("schemas/{i}"),
            None => "schemas/input".to_string(),
        };
        let from = loader
            .sources
            .get(reference.span.file)
            .map(|f| f.path.clone())
            .unwrap_or_default();
        let Some(found) = SchemaStore::find(loader, &reference.value, &from, &cfg.schema_paths)
        else {
            c.problems.push(Problem {
                span: Some(reference.span),
                message: format!(
                    "schema file `{}` not found for the workflow's ConfigMap",
                    reference.value
                ),
                help: "the runner validates against this file in its pod: make it exist".into(),
            });
            continue;
        };
        let base = reference
            .value
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(&reference.value)
            .to_string();
        let keep = stays_inside(&reference.value)
            && !matches!(
                reference.value.as_str(),
                PLAYBOOK_FILE | CONFIG_FILE | AGENTS_FILE
            )
            && placed.get(&reference.value).is_none_or(|p| *p == found);
        let rel = if keep {
            reference.value.clone()
        } else {
            format!("{dir}/{base}")
        };
        placed.insert(rel.clone(), found.clone());
        c.carry(
            loader,
            cfg.limits.max_file_bytes,
            &found,
            rel.clone(),
            Some(reference.span),
        );
        if !keep {
            doc.set_scalar_at(at, &rel);
        }
    }
    let text = pbc_compiler::resolve::emit_yaml(std::slice::from_ref(&doc));
    c.add(
        PLAYBOOK_FILE.into(),
        File {
            text,
            span: Some(root.span),
            source: format!("the resolved playbook `{}`", pb.name()),
        },
    );
    c
}

/// A relative path that stays under the directory it is relative to (no `..`, not absolute).
fn stays_inside(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_inside() {
        let base = Path::new("/p");
        assert_eq!(
            relative(Path::new("/p/a/b.rego"), base).as_deref(),
            Some("a/b.rego")
        );
        assert_eq!(relative(Path::new("/p/./a"), base).as_deref(), Some("a"));
        assert_eq!(relative(Path::new("/p/../x"), base), None);
        assert_eq!(relative(Path::new("/q/x"), base), None);
        assert_eq!(relative(Path::new("/p"), base), None);
    }
}
