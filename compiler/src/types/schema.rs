//! JSON Schemas as types.
//!
//! A stage's `output-schema` (and the trigger's `input-schema`) is read through the spanned
//! loader, compiled once with the `jsonschema` crate (so a schema that would not validate
//! anything is reported in the schema file, at its line), and turned into a [`Ty`]: the type
//! the expression checker reads fields against. Local `$ref`s (`#/$defs/…`,
//! `#/definitions/…`, any JSON pointer), `allOf`, `oneOf`/`anyOf`, nested objects and arrays
//! are followed; a string with `format: duration` is a duration; a string `enum` is an
//! ordered enum (declaration order).

#[cfg(test)]
mod tests;
mod to_ty;

use crate::declare_codes;
use crate::diag::Diagnostic;
use crate::fs::{FileKind, normalize};
use crate::load::{LoadError, Loader};
use crate::span::{FileId, Span};
use crate::yaml::{Node, ScalarKind, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

declare_codes! {
    /// An `output-schema` or `input-schema` file cannot be found.
    ///
    /// File references resolve relative to the file that contributed the value (the base, or
    /// the patch that set it), then along the configured `schema-paths` (`.pbc.yaml`).
    /// Without the schema, nothing that reads this output can be type-checked.
    PB3001 SCHEMA_NOT_FOUND "schema-not-found" Error "a schema file cannot be found";
    /// A schema file is not a valid JSON Schema.
    ///
    /// pbc compiles every schema (draft 2020-12 by default, draft-07 when its `$schema`
    /// says so). A schema that does not compile would reject or accept outputs arbitrarily at
    /// run time. The diagnostic points at the offending keyword in the schema file.
    PB3002 SCHEMA_INVALID "schema-invalid" Error "a schema is not a valid JSON Schema";
    /// A `$ref` in a schema points nowhere, or loops back to itself.
    ///
    /// pbc follows local references (`#/$defs/name`, `#/definitions/name`, any JSON pointer
    /// into the same file). A reference that resolves to nothing, or a chain of references
    /// that returns to its start without passing through a property or an item, has no type.
    PB3003 SCHEMA_BAD_REF "schema-bad-ref" Error "a schema `$ref` cannot be resolved";
    /// A `$ref` to another file or a URL; pbc does not follow it, and treats the value as
    /// untyped (`any`).
    ///
    /// Expressions reading through such a reference are not checked. Inline the referenced
    /// definition under `$defs` to have it checked.
    PB3004 SCHEMA_EXTERNAL_REF "schema-external-ref" Warning "a schema `$ref` points outside the file";
}

/// An enum type: string members in declaration order.
#[derive(Clone, Debug, PartialEq)]
pub struct EnumTy {
    pub members: Vec<String>,
    /// Where the `enum` is declared.
    pub span: Span,
}

/// An object property.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub ty: Ty,
    pub required: bool,
    /// The property's key in the schema.
    pub span: Span,
}

/// An object type.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjTy {
    pub fields: Vec<Field>,
    /// True unless `additionalProperties: false` (or `unevaluatedProperties: false`).
    pub open: bool,
    pub span: Span,
}

impl ObjTy {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A type of the expression language.
#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    /// Unknown or unconstrained: not checked.
    Any,
    Null,
    Bool,
    Number,
    Integer,
    String,
    Duration,
    Enum(Arc<EnumTy>),
    List(Box<Ty>),
    Object(Arc<ObjTy>),
    /// One of several (from `oneOf`, `anyOf` or a list of `type`s).
    Union(Vec<Ty>),
}

impl Ty {
    /// A name for messages: `integer`, `enum [LOW, MEDIUM, HIGH]`, `object {a, b}`.
    pub fn describe(&self) -> String {
        match self {
            Ty::Any => "any".into(),
            Ty::Null => "null".into(),
            Ty::Bool => "boolean".into(),
            Ty::Number => "number".into(),
            Ty::Integer => "integer".into(),
            Ty::String => "string".into(),
            Ty::Duration => "duration".into(),
            Ty::Enum(e) => format!("enum [{}]", e.members.join(", ")),
            Ty::List(t) => format!("list of {}", t.describe()),
            Ty::Object(o) => {
                let names: Vec<&str> = o.fields.iter().map(|f| f.name.as_str()).collect();
                format!("object {{{}}}", names.join(", "))
            }
            Ty::Union(ts) => ts.iter().map(Ty::describe).collect::<Vec<_>>().join(" | "),
        }
    }

    /// The type without `null` members (a nullable value read as its non-null type).
    pub fn non_null(&self) -> Ty {
        match self {
            Ty::Union(ts) => {
                let rest: Vec<Ty> = ts.iter().filter(|t| **t != Ty::Null).cloned().collect();
                match rest.len() {
                    0 => Ty::Null,
                    1 => rest.into_iter().next().unwrap_or(Ty::Any),
                    _ => Ty::Union(rest),
                }
            }
            t => t.clone(),
        }
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self, Ty::Number | Ty::Integer)
    }
}

/// A loaded schema: its root type and the problems found in it.
#[derive(Debug)]
pub struct Schema {
    /// The schema file's path (as loaded).
    pub path: PathBuf,
    pub ty: Ty,
    pub diags: Vec<Diagnostic>,
}

type Slot = Arc<OnceLock<Result<Arc<Schema>, LoadError>>>;

/// A schema file found for a reference, and the root the load restrictor holds it to.
type Found = Option<(PathBuf, PathBuf)>;

/// Loads each schema once, shared across playbooks and overlays.
///
/// The load restrictor holds every schema file to a root: a file found relative to the
/// referring file lies under that file's kustomization (its nearest directory holding a
/// kustomization file) or, for a file in no kustomization, under the project (`root`: the
/// directory of `.pbc.yaml`, else the working directory) or else the file's own directory;
/// a file found along `schema-paths` lies under that directory. Symlinks are resolved first.
#[derive(Default)]
pub struct SchemaStore {
    /// The project root for files in no kustomization (empty: the working directory).
    root: PathBuf,
    /// `--load-restrictor none`: schema files may lie anywhere.
    unrestricted: bool,
    cache: Mutex<HashMap<PathBuf, Slot>>,
    /// [`SchemaStore::find`]'s answers, by the referring file's directory and the reference.
    found: Mutex<HashMap<PathBuf, HashMap<String, Found>>>,
    /// [`SchemaStore::load`]'s answers, by the path as given.
    loaded: Mutex<HashMap<PathBuf, Result<Arc<Schema>, LoadError>>>,
    /// [`SchemaStore::lookup`]'s answers, by the referring file and the reference.
    looked_up: Mutex<HashMap<FileId, HashMap<String, Lookup>>>,
}

/// Where a schema reference leads: [`SchemaStore::lookup`].
#[derive(Clone, Debug)]
pub enum Lookup {
    /// No candidate file exists.
    NotFound,
    /// The file exists but was not read: outside its root, not a regular file, unreadable.
    Refused(LoadError),
    /// The schema (its own problems are among its diagnostics).
    Loaded(Arc<Schema>),
}

impl std::fmt::Debug for SchemaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaStore").finish_non_exhaustive()
    }
}

impl SchemaStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store whose project root (for files in no kustomization) is `root`: the directory
    /// of `.pbc.yaml` (empty: the working directory).
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        SchemaStore {
            root: root.into(),
            ..Self::default()
        }
    }

    /// Lifts the load restrictor (`--load-restrictor none`).
    pub fn unrestricted(mut self) -> Self {
        self.unrestricted = true;
        self
    }

    /// Finds a referenced schema file: relative to `from_file`'s directory, then along
    /// `search`. Returns the first that exists (a directory does not count; a FIFO or a
    /// device does, for the read to refuse it by name).
    pub fn find(
        loader: &Loader,
        reference: &str,
        from_file: &Path,
        search: &[PathBuf],
    ) -> Option<PathBuf> {
        Self::find_rooted(loader, reference, from_file, search, Path::new("")).map(|(p, _)| p)
    }

    /// [`SchemaStore::find`], with the root the file is held to (see [`SchemaStore`]);
    /// `project` is the project root.
    pub fn find_rooted(
        loader: &Loader,
        reference: &str,
        from_file: &Path,
        search: &[PathBuf],
        project: &Path,
    ) -> Found {
        let exists = |p: &Path| {
            loader
                .metadata(&loader.resolve(p))
                .is_ok_and(|m| m.kind != FileKind::Dir)
        };
        let base = from_file.parent().unwrap_or(Path::new(""));
        let own = normalize(&base.join(reference));
        if exists(&own) {
            return Some((own, file_root(loader, base, project)));
        }
        search.iter().find_map(|d| {
            let p = normalize(&d.join(reference));
            exists(&p).then(|| (p, d.clone()))
        })
    }

    /// [`SchemaStore::find_rooted`] and the load restrictor, for a reader that reads the
    /// file itself: the path, or why it may not be read (`None`: no such file).
    pub fn locate(
        loader: &Loader,
        reference: &str,
        from_file: &Path,
        search: &[PathBuf],
        project: &Path,
    ) -> Option<Result<PathBuf, LoadError>> {
        let (path, root) = Self::find_rooted(loader, reference, from_file, search, project)?;
        Some(loader.check_within(&path, &root).map(|()| path))
    }

    /// [`SchemaStore::find`], answered once per directory and reference (every playbook
    /// of a tree names the same few schemas).
    pub fn find_cached(
        &self,
        loader: &Loader,
        reference: &str,
        from_file: &Path,
        search: &[PathBuf],
    ) -> Found {
        let dir = from_file.parent().unwrap_or(Path::new(""));
        {
            let found = self.found.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(hit) = found.get(dir).and_then(|m| m.get(reference)) {
                return hit.clone();
            }
        }
        let answer = Self::find_rooted(loader, reference, from_file, search, &self.root);
        let mut found = self.found.lock().unwrap_or_else(|e| e.into_inner());
        found
            .entry(dir.to_path_buf())
            .or_default()
            .insert(reference.to_string(), answer.clone());
        answer
    }

    /// [`SchemaStore::find_cached`], the load restrictor, then [`SchemaStore::load`],
    /// remembered by the referring file (`from`, whose path is `from_file`) and the
    /// reference, so that the stages of every playbook that name the same schema find it
    /// without a path lookup.
    pub fn lookup(
        &self,
        loader: &Loader,
        reference: &str,
        from: FileId,
        from_file: &Path,
        search: &[PathBuf],
    ) -> Lookup {
        if let Some(hit) = self
            .looked_up
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&from)
            .and_then(|m| m.get(reference))
        {
            return hit.clone();
        }
        let answer = match self.find_cached(loader, reference, from_file, search) {
            None => Lookup::NotFound,
            Some((path, root)) => {
                let allowed = if self.unrestricted {
                    Ok(())
                } else {
                    loader.check_within(&path, &root)
                };
                match allowed.and_then(|()| self.load(loader, &path)) {
                    Ok(s) => Lookup::Loaded(s),
                    Err(e) => Lookup::Refused(e),
                }
            }
        };
        self.looked_up
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(from)
            .or_default()
            .insert(reference.to_string(), answer.clone());
        answer
    }

    /// Loads (once) the schema at `path` (no load restrictor: [`SchemaStore::lookup`]
    /// applies it). An error if the file cannot be read at all.
    pub fn load(&self, loader: &Loader, path: &Path) -> Result<Arc<Schema>, LoadError> {
        if let Some(hit) = self
            .loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
        {
            return hit.clone();
        }
        let answer = self.load_slot(loader, path);
        self.loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_path_buf(), answer.clone());
        answer
    }

    fn load_slot(&self, loader: &Loader, path: &Path) -> Result<Arc<Schema>, LoadError> {
        let key = loader.resolve(path);
        let slot = {
            let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            c.entry(key.clone()).or_default().clone()
        };
        slot.get_or_init(|| load_schema(loader, &key).map(Arc::new))
            .clone()
    }
}

/// The root a schema found relative to a file in `dir` is held to: the nearest directory
/// holding a kustomization file, else the project root when `dir` lies under it, else `dir`.
fn file_root(loader: &Loader, dir: &Path, project: &Path) -> PathBuf {
    let abs = loader.resolve(dir);
    if let Some(k) = abs
        .ancestors()
        .find(|a| crate::resolve::find_kustomization(loader, a).is_some())
    {
        return k.to_path_buf();
    }
    let project = loader.resolve(project);
    if abs.starts_with(&project) {
        project
    } else {
        abs
    }
}

fn load_schema(loader: &Loader, path: &Path) -> Result<Schema, LoadError> {
    let loaded = loader.load(path)?;
    let mut diags = loaded.diags.clone();
    let Some(doc) = loaded.docs.first() else {
        return Ok(Schema {
            path: path.to_path_buf(),
            ty: Ty::Any,
            diags,
        });
    };
    let root = &doc.root;
    if !loaded.has_errors() {
        compile_check(root, &mut diags);
    }
    let ty = to_ty::to_ty(root, &mut diags);
    Ok(Schema {
        path: path.to_path_buf(),
        ty,
        diags,
    })
}

/// Compiles the schema with the `jsonschema` crate; a failure becomes PB3002 at the
/// offending keyword.
fn compile_check(root: &Node, diags: &mut Vec<Diagnostic>) {
    // A file that is not a schema at all (a text, a list): say so, quoting at most a short,
    // escaped excerpt of it (the validator's message would quote the whole value).
    let is_bool = root.as_scalar().is_some_and(|s| s.kind == ScalarKind::Bool);
    if root.as_map().is_none() && !is_bool {
        let what = match &root.value {
            Value::Scalar(s) => format!(
                "{} `{}`",
                root.type_name(),
                crate::diag::excerpt(&s.text, EXCERPT_CHARS)
            ),
            _ => root.type_name().to_string(),
        };
        diags.push(
            Diagnostic::new(
                &SCHEMA_INVALID,
                root.span.sub(0, 0),
                format!("this is not a JSON Schema: a schema is an object (or `true`/`false`), this file holds {what}"),
            )
            .with_help("point `output-schema`/`input-schema` at a JSON Schema file"),
        );
        return;
    }
    let json = root.to_json();
    let draft7 = json
        .get("$schema")
        .and_then(|s| s.as_str())
        .is_some_and(|s| s.contains("draft-07"));
    let mut opts = jsonschema::options();
    if draft7 {
        opts = opts.with_draft(jsonschema::Draft::Draft7);
    }
    // Only local references are followed; external ones are reported separately (PB3004), so
    // the compile check ignores their resolution failures.
    if let Err(e) = opts.build(&json) {
        let msg = e.to_string();
        if msg.contains("retriev")
            || msg.contains("resolve")
            || msg.contains("Resource")
            || msg.contains("Pointer")
        {
            return;
        }
        let ptr = e.instance_path().to_string();
        let node = pointer(root, &ptr).unwrap_or(root);
        diags.push(
            Diagnostic::new(
                &SCHEMA_INVALID,
                node.span,
                format!(
                    "this is not a valid JSON Schema: {}",
                    crate::diag::excerpt(&msg, MESSAGE_CHARS)
                ),
            )
            .with_help(
                "fix the keyword; see https://json-schema.org/draft/2020-12/json-schema-validation",
            ),
        );
    }
}

/// How much of a file that is not a schema a message quotes.
const EXCERPT_CHARS: usize = 40;
/// How much of the validator's message (which quotes the offending value) is kept.
const MESSAGE_CHARS: usize = 200;

/// Follows a JSON pointer (`/a/0/b`, with `~0`/`~1` escapes) in a spanned tree.
pub fn pointer<'a>(root: &'a Node, ptr: &str) -> Option<&'a Node> {
    if ptr.is_empty() {
        return Some(root);
    }
    let mut n = root;
    for raw in ptr.strip_prefix('/')?.split('/') {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        n = match &n.value {
            Value::Map(_) => n.get(&seg)?,
            Value::Seq(items) => items.get(seg.parse::<usize>().ok()?)?,
            Value::Scalar(_) => return None,
        };
    }
    Some(n)
}
