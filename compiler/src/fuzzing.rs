//! Fuzzing harnesses: one function per `cargo fuzz` target in `fuzz/fuzz_targets/`.
//!
//! They live in the library so that `tests/fuzz_regressions.rs` replays every input a
//! fuzzer ever crashed on through exactly the code the fuzzer ran (docs/fuzzing.md). Each
//! harness takes arbitrary bytes, runs one part of the pipeline on them through an
//! in-memory file system, and panics only when pbc breaks a promise: a panic inside pbc, a
//! diagnostic whose span is not a valid range of a registered file, a JSON patch that
//! fails half-way, an expression whose canonical form does not parse back to itself.
//!
//! Not a stable API: hidden from the docs, used only by the fuzz targets and their
//! regression tests.

use crate::config::Config;
use crate::diag::Diagnostic;
use crate::expr::{self, ExprError};
use crate::fs::MemFs;
use crate::load::Loader;
use crate::render::{self, HumanOptions};
use crate::span::{SourceMap, Span};
use crate::types::{Env, Purpose, Root, SchemaStore, Ty};
use crate::yaml::{self, Limits, Node};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The directory the in-memory trees live in (and the loader's working directory).
const ROOT: &str = "/fuzz";

/// The output schema the `model` and `expr` harnesses type-check against: an enum through
/// a `$ref`, numbers, a duration, an optional field, a list, a nested object and a union.
pub const REPORT_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "report",
  "type": "object",
  "$defs": {
    "risk": {"type": "string", "enum": ["LOW", "MEDIUM", "HIGH", "CRITICAL"]}
  },
  "properties": {
    "risk-level": {"$ref": "#/$defs/risk"},
    "rows": {"type": "integer"},
    "ratio": {"type": "number"},
    "wait": {"type": "string", "format": "duration"},
    "note": {"type": "string"},
    "ok": {"type": "boolean"},
    "tags": {"type": "array", "items": {"type": "string"}},
    "owner": {
      "type": "object",
      "properties": {"team": {"type": "string"}, "size": {"type": "integer"}},
      "required": ["team"],
      "additionalProperties": false
    },
    "score": {"oneOf": [{"type": "number"}, {"type": "null"}]}
  },
  "required": ["risk-level", "rows", "ratio", "wait", "ok"]
}
"##;

/// Where the schema is found, relative to [`ROOT`]: the names the playbooks of `testdata/`
/// (the seeds) refer to.
const SCHEMA_PATHS: &[&str] = &[
    "schemas/report.json",
    "schemas/security-report.json",
    "../bad/schemas/report.json",
];

fn loader(fs: MemFs) -> Loader {
    Loader::new(Arc::new(fs), ROOT, Limits::default())
}

fn with_schemas(mut fs: MemFs) -> MemFs {
    for p in SCHEMA_PATHS {
        fs.insert(Path::new(ROOT).join(p), REPORT_SCHEMA);
    }
    fs
}

/// Every span of every diagnostic lies inside a registered file, on character boundaries;
/// and every diagnostic renders (human and JSON).
fn check_diags(sources: &SourceMap, diags: &[Diagnostic]) {
    for d in diags {
        let spans = std::iter::once(d.span)
            .chain(d.labels.iter().map(|l| l.span))
            .chain(d.fix.iter().flat_map(|f| f.edits.iter().map(|e| e.span)));
        for s in spans {
            check_span(sources, s, d);
        }
        render::diagnostic_json(sources, d);
        render::human_one(sources, d, &HumanOptions::default());
    }
}

fn check_span(sources: &SourceMap, s: Span, d: &Diagnostic) {
    let Some(f) = sources.get(s.file) else {
        panic!("{} points into no file: {s:?} ({})", d.code.id, d.message);
    };
    let (a, b) = (s.start as usize, s.end as usize);
    assert!(
        a <= b && b <= f.text.len() && f.text.is_char_boundary(a) && f.text.is_char_boundary(b),
        "{} has span {a}..{b}, not a range of `{}` ({} bytes): {}",
        d.code.id,
        f.path.display(),
        f.text.len(),
        d.message
    );
}

/// `loader`: the bytes as a file, through decoding and the spanned YAML parser.
pub fn load(data: &[u8]) {
    let mut fs = MemFs::new();
    fs.insert(Path::new(ROOT).join("input.yaml"), data);
    let l = loader(fs);
    let Ok(loaded) = l.load(Path::new("input.yaml")) else {
        panic!("an in-memory file could not be loaded");
    };
    check_diags(&l.sources, &loaded.diags);
    for d in &loaded.docs {
        let _ = d.root.to_json();
        assert!(
            d.root.depth() <= l.limits.max_depth + 1,
            "a document deeper than the limit"
        );
    }
}

/// The ref roots the `expr` harness knows: `report`/`analyze` (the schema's type), `input`
/// (untyped) and `later` (known but not readable here).
struct FuzzEnv(Ty);

impl Env for FuzzEnv {
    fn root(&self, name: &str, _at: expr::Span) -> Root {
        match name {
            "report" | "analyze" => Root::Type(self.0.clone(), None),
            "input" => Root::Type(Ty::Any, None),
            "later" => Root::Rejected,
            _ => Root::Unknown,
        }
    }

    fn names(&self) -> Vec<String> {
        ["report", "analyze", "input"].map(String::from).to_vec()
    }
}

fn report_ty() -> &'static Ty {
    static TY: OnceLock<Ty> = OnceLock::new();
    TY.get_or_init(|| {
        let l = loader(with_schemas(MemFs::new()));
        SchemaStore::new()
            .load(&l, Path::new("schemas/report.json"))
            .map(|s| s.ty.clone())
            .unwrap_or(Ty::Any)
    })
}

fn check_expr_span(src: &str, s: &expr::Span) {
    let (a, b) = (s.start as usize, s.end as usize);
    assert!(
        a <= b && b <= src.len() && src.is_char_boundary(a) && src.is_char_boundary(b),
        "span {a}..{b} is not a range of {src:?}"
    );
}

fn check_expr_errors(src: &str, errors: &[ExprError]) {
    for e in errors {
        check_expr_span(src, &e.span);
    }
}

/// `expr`: the bytes (as UTF-8, lossily) as an expression: lexed, parsed, printed and parsed
/// back, type-checked for each purpose; as a monitoring target and alert condition; as a
/// text with `${…}` interpolations.
pub fn expr(data: &[u8]) {
    let src = String::from_utf8_lossy(data);
    let src: &str = &src;
    let lexed = expr::lex(src);
    check_expr_errors(src, &lexed.errors);
    for t in &lexed.tokens {
        check_expr_span(src, &t.span);
    }
    let (tree, errors) = expr::parse(src);
    check_expr_errors(src, &errors);
    if let Some(e) = &tree {
        e.clone().map_spans(&mut |s| {
            check_expr_span(src, s);
            s.clone()
        });
        let env = FuzzEnv(report_ty().clone());
        for purpose in [Purpose::Gate, Purpose::When, Purpose::Value] {
            let checked = crate::types::check::check(e, &env, purpose);
            for f in &checked.findings {
                check_expr_span(src, &f.span);
            }
            for r in &checked.refs {
                check_expr_span(src, &r.span);
            }
        }
    }
    if errors.is_empty()
        && let Some(e) = &tree
    {
        let printed = e.to_string();
        let (again, errors2) = expr::parse(&printed);
        assert!(
            errors2.is_empty(),
            "the canonical form {printed:?} of {src:?} does not parse: {errors2:?}"
        );
        let Some(again) = again else {
            panic!("the canonical form {printed:?} of {src:?} parses to nothing");
        };
        assert_eq!(
            again.without_spans(),
            e.without_spans(),
            "{src:?} -> {printed:?}"
        );
    }
    let (target, errors) = expr::parse_metric_target(src);
    check_expr_errors(src, &errors);
    if let Some(t) = target {
        check_expr_span(src, &t.span);
        check_expr_span(src, &t.op_span);
    }
    let (alert, errors) = expr::parse_alert_condition(src);
    check_expr_errors(src, &errors);
    if let Some(a) = alert {
        check_expr_span(src, &a.span);
        check_expr_span(src, &a.metric_span);
    }
    let (interps, errors) = expr::scan_interpolations(src);
    check_expr_errors(src, &errors);
    for i in interps {
        check_expr_span(src, &i.span);
        check_expr_span(src, &i.inner_span);
        let (_, errors) = i.parse();
        check_expr_errors(src, &errors);
    }
}

/// The model, the semantic checks and every diagnostic's span, on the Playbook documents
/// of `docs`.
fn check_playbooks<'a>(l: &Loader, docs: impl Iterator<Item = (&'a Node, Option<PathBuf>)>) {
    let cfg = Config::default();
    let schemas = SchemaStore::new();
    let mut diags = Vec::new();
    for (root, tree) in docs {
        if !crate::check::is_playbook(root) {
            continue;
        }
        let doc = crate::check::PlaybookDoc::new(root.clone(), tree);
        crate::check::check_document(l, &schemas, &doc, &cfg, &|_, _| {}, &mut diags);
    }
    check_diags(&l.sources, &diags);
}

/// `model`: the bytes as a playbook file next to its output schemas: loaded, each Playbook
/// document built into the model and checked (stages, graph, expressions against the
/// schema).
pub fn model(data: &[u8]) {
    let mut fs = with_schemas(MemFs::new());
    fs.insert(Path::new(ROOT).join("playbook.yaml"), data);
    let l = loader(fs);
    let Ok(loaded) = l.load(Path::new("playbook.yaml")) else {
        panic!("an in-memory file could not be loaded");
    };
    check_diags(&l.sources, &loaded.diags);
    check_playbooks(&l, loaded.docs.iter().map(|d| (&d.root, None)));
}

/// The line that starts a file in a `resolve` input: `==> path <==` (the format of
/// `head` on several files).
fn file_header(line: &[u8]) -> Option<&[u8]> {
    line.strip_prefix(b"==> ")?.strip_suffix(b" <==")
}

/// The files of a `resolve` input. Text before the first header is `kustomization.yaml`.
/// At most 64 files; a path is taken relative to [`ROOT`] (`..` may leave it).
pub fn split_tree(data: &[u8]) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut cur: (PathBuf, Vec<u8>) = (PathBuf::from("kustomization.yaml"), Vec::new());
    let mut leading = true;
    for line in data.split_inclusive(|&b| b == b'\n') {
        let bare = line.strip_suffix(b"\n").unwrap_or(line);
        if let Some(name) = file_header(bare) {
            if !(leading && cur.1.is_empty()) {
                files.push(std::mem::take(&mut cur));
            }
            leading = false;
            if files.len() >= 64 {
                return files;
            }
            let name = String::from_utf8_lossy(name).into_owned();
            cur = (PathBuf::from(name.trim_start_matches('/')), Vec::new());
        } else {
            cur.1.extend_from_slice(line);
        }
    }
    if !(leading && cur.1.is_empty()) {
        files.push(cur);
    }
    files
}

/// `resolve`: the bytes as a tree of files (see [`split_tree`]) in memory; the directory
/// of the first file is resolved like `kustomize build`, the result emitted as YAML, and
/// its Playbook documents built and checked.
pub fn resolve(data: &[u8]) {
    let files = split_tree(data);
    let Some((first, _)) = files.first() else {
        return;
    };
    let dir = first.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut fs = MemFs::new();
    for (p, text) in &files {
        fs.insert(Path::new(ROOT).join(p), text.clone());
    }
    let l = loader(fs);
    let opts = crate::resolve::ResolveOptions::default();
    let Ok(res) = crate::resolve::resolve(&l, &Path::new(ROOT).join(&dir), &opts) else {
        return;
    };
    check_diags(&l.sources, &res.diags);
    let _ = crate::resolve::emit_yaml(&res.docs);
    let tree = Some(Path::new(ROOT).join(&dir));
    check_playbooks(&l, res.docs.iter().map(|d| (d, tree.clone())));
}

/// `json6902`: the bytes as YAML; the first document is patched with the operation list
/// of the second (read as a kustomization's `patchesJson6902` entry is). A patch applies
/// completely or leaves the document unchanged.
pub fn json6902(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let sources = SourceMap::new();
    let file = sources.add("input.yaml", text);
    let mut diags = Vec::new();
    let docs = yaml::parse(&file, &Limits::default(), &mut diags);
    let [doc, list, ..] = docs.as_slice() else {
        return;
    };
    let ops = crate::resolve::parse_ops(&list.root, &mut diags);
    check_diags(&sources, &diags);
    let Some(ops) = ops else {
        return;
    };
    let mut node = doc.root.clone();
    if crate::resolve::json6902::apply(&mut node, &ops).is_err() {
        assert!(
            node == doc.root,
            "a failed patch changed the document: {} -> {}",
            doc.root.to_json(),
            node.to_json()
        );
    }
    let _ = node.to_json();
}
