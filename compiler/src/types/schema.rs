//! JSON Schemas as types.
//!
//! A stage's `output-schema` (and the trigger's `input-schema`) is read through the spanned
//! loader, compiled once with the `jsonschema` crate (so a schema that would not validate
//! anything is reported in the schema file, at its line), and turned into a [`Ty`]: the type
//! the expression checker reads fields against. Local `$ref`s (`#/$defs/…`,
//! `#/definitions/…`, any JSON pointer), `allOf`, `oneOf`/`anyOf`, nested objects and arrays
//! are followed; a string with `format: duration` is a duration; a string `enum` is an
//! ordered enum (declaration order).

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
    let mut cx = Cx {
        root,
        diags: &mut diags,
        stack: Vec::new(),
        depth: 0,
    };
    let ty = cx.ty(root, false);
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

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(h);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Cx<'a, 'd> {
    root: &'a Node,
    diags: &'d mut Vec<Diagnostic>,
    /// `$ref` targets being expanded, with whether a structural step (property/item) was
    /// taken since.
    stack: Vec<(String, bool)>,
    depth: usize,
}

const MAX_TYPE_DEPTH: usize = 48;

impl<'a> Cx<'a, '_> {
    fn ty(&mut self, n: &'a Node, structural: bool) -> Ty {
        if structural {
            for s in &mut self.stack {
                s.1 = true;
            }
        }
        if self.depth > MAX_TYPE_DEPTH {
            return Ty::Any;
        }
        self.depth += 1;
        let t = self.ty_inner(n);
        self.depth -= 1;
        t
    }

    fn ty_inner(&mut self, n: &'a Node) -> Ty {
        let Some(_) = n.as_map() else {
            // `true`/`false` schemas and anything odd: untyped.
            return Ty::Any;
        };
        if let Some(r) = n.get("$ref") {
            return self.reference(r);
        }
        let mut parts: Vec<Ty> = Vec::new();
        if let Some(all) = n.get("allOf").and_then(Node::as_seq) {
            let tys: Vec<Ty> = all.iter().map(|s| self.ty(s, false)).collect();
            let own = self.own(n);
            let mut merged = own;
            for t in tys {
                merged = intersect(merged, t);
            }
            return merged;
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(alts) = n.get(key).and_then(Node::as_seq) {
                for a in alts {
                    parts.push(self.ty(a, false));
                }
            }
        }
        if !parts.is_empty() {
            let own = self.own(n);
            if own != Ty::Any {
                parts = parts
                    .into_iter()
                    .map(|p| intersect(own.clone(), p))
                    .collect();
            }
            return union(parts);
        }
        self.own(n)
    }

    /// The type a schema object states itself (`type`, `enum`, `const`, `properties`, …).
    fn own(&mut self, n: &'a Node) -> Ty {
        if let Some(e) = n.get("enum").and_then(Node::as_seq) {
            return enum_ty(e, n.get("enum").map(|x| x.span).unwrap_or(n.span));
        }
        if let Some(c) = n.get("const") {
            return enum_ty(std::slice::from_ref(c), c.span);
        }
        let types: Vec<&str> = match n.get("type") {
            Some(t) => match &t.value {
                Value::Scalar(s) => vec![s.text.as_str()],
                Value::Seq(items) => items
                    .iter()
                    .filter_map(|i| i.as_scalar().map(|s| s.text.as_str()))
                    .collect(),
                Value::Map(_) => vec![],
            },
            None => {
                if n.get("properties").is_some() {
                    vec!["object"]
                } else if n.get("items").is_some() {
                    vec!["array"]
                } else {
                    vec![]
                }
            }
        };
        if types.is_empty() {
            return Ty::Any;
        }
        let tys: Vec<Ty> = types.iter().map(|t| self.one_type(t, n)).collect();
        union(tys)
    }

    fn one_type(&mut self, t: &str, n: &'a Node) -> Ty {
        match t {
            "null" => Ty::Null,
            "boolean" => Ty::Bool,
            "integer" => Ty::Integer,
            "number" => Ty::Number,
            "string" => {
                if n.get("format").and_then(Node::as_str) == Some("duration") {
                    Ty::Duration
                } else {
                    Ty::String
                }
            }
            "array" => {
                let item = match n.get("items") {
                    Some(i) if i.as_map().is_some() => self.ty(i, true),
                    _ => Ty::Any,
                };
                Ty::List(Box::new(item))
            }
            "object" => {
                let required: Vec<&str> = n
                    .get("required")
                    .and_then(Node::as_seq)
                    .map(|r| r.iter().filter_map(Node::as_str).collect())
                    .unwrap_or_default();
                let mut fields = Vec::new();
                if let Some(props) = n.get("properties").and_then(Node::as_map) {
                    for e in props {
                        let name = e.key_str().to_string();
                        let ty = self.ty(&e.value, true);
                        fields.push(Field {
                            required: required.contains(&name.as_str()),
                            name,
                            ty,
                            span: e.key.span,
                        });
                    }
                }
                let closed = |k: &str| {
                    n.get(k)
                        .and_then(Node::as_scalar)
                        .is_some_and(|s| s.kind == ScalarKind::Bool && s.text == "false")
                };
                Ty::Object(Arc::new(ObjTy {
                    fields,
                    open: !(closed("additionalProperties") || closed("unevaluatedProperties")),
                    // Labels point at the `properties` key rather than the whole object.
                    span: n.entry("properties").map(|e| e.key.span).unwrap_or(n.span),
                }))
            }
            _ => Ty::Any,
        }
    }

    fn reference(&mut self, r: &'a Node) -> Ty {
        let Some(target) = r.as_str() else {
            self.diags.push(Diagnostic::new(
                &SCHEMA_BAD_REF,
                r.span,
                "`$ref` must be a string",
            ));
            return Ty::Any;
        };
        let Some(frag) = target.strip_prefix('#') else {
            self.diags.push(
                Diagnostic::new(
                    &SCHEMA_EXTERNAL_REF,
                    r.span,
                    format!("`{target}` refers outside this file; pbc does not follow it, so values read through it are untyped"),
                )
                .with_help("move the definition under `$defs` in this file and refer to it as `#/$defs/NAME`"),
            );
            return Ty::Any;
        };
        let frag = percent_decode(frag);
        if let Some(pos) = self.stack.iter().position(|(t, _)| *t == frag) {
            let structural = self.stack[pos..].iter().any(|(_, s)| *s);
            if structural {
                // A recursive type (a tree): its inner levels are untyped.
                return Ty::Any;
            }
            self.diags.push(
                Diagnostic::new(
                    &SCHEMA_BAD_REF,
                    r.span,
                    format!("`$ref: {target}` loops back to itself"),
                )
                .with_help(
                    "a reference chain must reach a definition that is not itself only a `$ref`",
                ),
            );
            return Ty::Any;
        }
        let Some(node) = pointer(self.root, &frag) else {
            let defs: Vec<String> = ["$defs", "definitions"]
                .iter()
                .filter_map(|k| self.root.get(k).and_then(Node::as_map).map(|m| (k, m)))
                .flat_map(|(k, m)| m.iter().map(move |e| format!("#/{k}/{}", e.key_str())))
                .collect();
            let mut d = Diagnostic::new(
                &SCHEMA_BAD_REF,
                r.span,
                format!("`$ref: {target}` points to nothing in this schema"),
            );
            let names: Vec<&str> = defs.iter().map(String::as_str).collect();
            if let Some(s) = crate::diag::did_you_mean(target, names.iter().copied()) {
                d = d.with_help(format!("did you mean `{s}`?"));
            } else if !names.is_empty() {
                d = d.with_help(format!("defined here: {}", crate::diag::one_of(&names)));
            }
            self.diags.push(d);
            return Ty::Any;
        };
        self.stack.push((frag, false));
        let t = self.ty(node, false);
        self.stack.pop();
        t
    }
}

fn enum_ty(items: &[Node], span: Span) -> Ty {
    let mut members = Vec::new();
    let mut all_str = true;
    let mut has_null = false;
    for i in items {
        match i.as_scalar() {
            Some(s) if s.kind == ScalarKind::Str => members.push(s.text.as_str().to_owned()),
            Some(s) if s.kind == ScalarKind::Null => has_null = true,
            _ => all_str = false,
        }
    }
    if !all_str {
        // Numeric or mixed enums: typed by their first member's kind.
        return match items.first().and_then(Node::as_scalar).map(|s| s.kind) {
            Some(ScalarKind::Int) => Ty::Integer,
            Some(ScalarKind::Float) => Ty::Number,
            Some(ScalarKind::Bool) => Ty::Bool,
            _ => Ty::Any,
        };
    }
    let e = Ty::Enum(Arc::new(EnumTy { members, span }));
    if has_null {
        Ty::Union(vec![e, Ty::Null])
    } else {
        e
    }
}

fn union(mut tys: Vec<Ty>) -> Ty {
    tys.dedup();
    if tys.contains(&Ty::Any) {
        return Ty::Any;
    }
    match tys.len() {
        0 => Ty::Any,
        1 => tys.into_iter().next().unwrap_or(Ty::Any),
        _ => Ty::Union(tys),
    }
}

/// The conjunction of two types (for `allOf`): objects merge their fields and `required`s;
/// otherwise the more specific one wins.
fn intersect(a: Ty, b: Ty) -> Ty {
    match (a, b) {
        (Ty::Any, t) | (t, Ty::Any) => t,
        (Ty::Object(x), Ty::Object(y)) => {
            let mut fields = x.fields.clone();
            for f in &y.fields {
                match fields.iter_mut().find(|g| g.name == f.name) {
                    Some(g) => {
                        g.required |= f.required;
                        g.ty = intersect(g.ty.clone(), f.ty.clone());
                    }
                    None => fields.push(f.clone()),
                }
            }
            Ty::Object(Arc::new(ObjTy {
                fields,
                open: x.open && y.open,
                span: x.span,
            }))
        }
        (Ty::Number, Ty::Integer) | (Ty::Integer, Ty::Number) => Ty::Integer,
        (Ty::String, Ty::Duration) | (Ty::Duration, Ty::String) => Ty::Duration,
        (Ty::String, e @ Ty::Enum(_)) | (e @ Ty::Enum(_), Ty::String) => e,
        (a, _) => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFs;

    fn load(text: &str) -> Arc<Schema> {
        let mut fs = MemFs::new();
        fs.insert("s.json", text);
        let loader = Loader::new(Arc::new(fs), "", Default::default());
        SchemaStore::new()
            .load(&loader, Path::new("s.json"))
            .unwrap()
    }

    #[test]
    fn types_from_schema() {
        let s = load(
            r##"{"type": "object", "$defs": {"risk": {"type": "string", "enum": ["LOW", "HIGH"]}},
               "properties": {"risk-level": {"$ref": "#/$defs/risk"}, "rows": {"type": "integer"},
                 "wait": {"type": "string", "format": "duration"},
                 "items": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "boolean"}}}}},
               "required": ["risk-level"]}"##,
        );
        assert!(s.diags.is_empty(), "{:?}", s.diags);
        let Ty::Object(o) = &s.ty else {
            panic!("{:?}", s.ty)
        };
        let r = o.field("risk-level").unwrap();
        assert!(r.required);
        assert_eq!(r.ty.describe(), "enum [LOW, HIGH]");
        assert_eq!(o.field("rows").unwrap().ty, Ty::Integer);
        assert!(!o.field("rows").unwrap().required);
        assert_eq!(o.field("wait").unwrap().ty, Ty::Duration);
        assert_eq!(
            o.field("items").unwrap().ty.describe(),
            "list of object {x}"
        );
    }

    #[test]
    fn all_of_merges_objects() {
        let s = load(
            r#"{"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                          {"type": "object", "properties": {"b": {"type": "number"}}}]}"#,
        );
        let Ty::Object(o) = &s.ty else { panic!() };
        assert!(o.field("a").unwrap().required);
        assert_eq!(o.field("b").unwrap().ty, Ty::Number);
    }

    #[test]
    fn bad_refs_and_loops() {
        let s = load(
            r##"{"properties": {"a": {"$ref": "#/$defs/nope"}}, "$defs": {"x": {"$ref": "#/$defs/y"}, "y": {"$ref": "#/$defs/x"}}, "type": "object", "allOf": [{"$ref": "#/$defs/x"}]}"##,
        );
        let codes: Vec<&str> = s.diags.iter().map(|d| d.code.id).collect();
        assert!(codes.contains(&"PB3003"), "{codes:?}");
        assert!(
            s.diags.iter().any(|d| d.message.contains("loops")),
            "{:?}",
            s.diags
        );
    }

    #[test]
    fn recursive_types_are_fine() {
        let s = load(
            r##"{"$defs": {"node": {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}}, "$ref": "#/$defs/node"}"##,
        );
        assert!(s.diags.is_empty(), "{:?}", s.diags);
    }

    #[test]
    fn invalid_schema_is_reported_at_keyword() {
        let s = load(
            "{\n  \"type\": \"object\",\n  \"properties\": {\"a\": {\"type\": \"strin\"}}\n}\n",
        );
        assert_eq!(s.diags.len(), 1, "{:?}", s.diags);
        assert_eq!(s.diags[0].code.id, "PB3002");
    }
}
