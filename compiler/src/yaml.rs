//! The spanned YAML tree and its loader.
//!
//! YAML (and JSON, which loads through the same path) becomes a tree of [`Node`]s in which
//! every key, value and sequence item carries the [`Span`] it came from. The loader reads
//! saphyr-parser's event stream *iteratively*: nesting depth is bounded while events are read,
//! before anything recursive runs, aliases are expanded against a node budget, and every
//! problem is a diagnostic, never a panic.

use crate::declare_codes;
use crate::diag::{Diagnostic, did_you_mean};
use crate::span::{FileId, SourceFile, Span};
use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError};
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

declare_codes! {
    /// The file is not valid YAML (or JSON).
    ///
    /// pbc reports the first syntax error the parser meets, at its position. Common causes are
    /// tabs used for indentation, a `:` inside an unquoted value, and unclosed quotes or
    /// brackets. Quote the value or fix the indentation.
    PB0001 YAML_SYNTAX "yaml-syntax" Error "the file is not valid YAML";
    /// The file is not valid UTF-8.
    ///
    /// YAML files must be UTF-8 (or UTF-16/32 with a byte-order mark, which pbc does not
    /// accept either). The diagnostic points at the first invalid byte. Re-encode the file as
    /// UTF-8.
    PB0002 INVALID_UTF8 "invalid-utf8" Error "the file is not valid UTF-8";
    /// The file looks binary (it contains NUL bytes).
    ///
    /// A file that pbc was asked to read holds NUL bytes, so it is not a YAML or JSON text.
    /// Remove it from the checked paths, or list it in `.gitignore`.
    PB0003 BINARY_FILE "binary-file" Error "the file is binary";
    /// The file is larger than the configured limit (`limits.max-file-size`, default 8 MiB).
    ///
    /// pbc refuses to read very large files so that a stray data file cannot exhaust memory.
    /// The file is not read at all. Split it, or raise the limit in `.pbc.yaml`.
    PB0004 FILE_TOO_LARGE "file-too-large" Error "the file is too large";
    /// Collections nest deeper than the limit (`limits.max-depth`, default 128).
    ///
    /// Real playbooks nest a dozen levels at most. Deeper nesting is refused while the file is
    /// read, so that no input can exhaust the stack.
    PB0005 NESTING_TOO_DEEP "nesting-too-deep" Error "collections nest too deeply";
    /// Alias expansion exceeds the node budget (`limits.max-alias-nodes`, default 100,000).
    ///
    /// Aliases (`*name`) copy the anchored node. A few nested aliases can multiply into
    /// billions of nodes (the "billion laughs" attack); pbc stops once the expanded document
    /// would hold more nodes than the budget.
    PB0006 ALIAS_BUDGET "alias-budget" Error "alias expansion exceeds the node budget";
    /// A mapping has the same key twice.
    ///
    /// YAML forbids duplicate keys, and readers disagree on which value wins (kubectl keeps
    /// the last, others the first or fail). Remove one of them.
    PB0007 DUPLICATE_KEY "duplicate-key" Error "a mapping key is duplicated";
    /// A plain scalar that a YAML 1.1 reader (Go, Kubernetes, kustomize) reads differently.
    ///
    /// pbc reads YAML 1.2, where `yes`, `no`, `on` and `off` are strings, `010` is
    /// ten and `2024-01-01` is a string. Go's YAML readers used by Kubernetes tooling read them
    /// as booleans, octal numbers and timestamps. Quote the value so every reader agrees.
    PB0008 YAML11_SCALAR "yaml11-scalar" Warning "a plain scalar that YAML 1.1 readers read differently";
    /// A mapping key that is not a scalar (a `? [a, b]` complex key).
    ///
    /// Playbooks and kustomizations only use string keys. Write the key as a string.
    PB0009 COMPLEX_KEY "complex-key" Error "a mapping key is not a scalar";
    /// A file could not be read (permissions, or it vanished while pbc ran).
    PB0010 UNREADABLE "unreadable-file" Error "a file could not be read";
}

/// How a scalar was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

impl Style {
    pub fn is_quoted(self) -> bool {
        matches!(self, Style::SingleQuoted | Style::DoubleQuoted)
    }
}

/// The type a scalar resolves to (YAML 1.2 core schema, as Go's yaml.v3 and kyaml read it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScalarKind {
    Null,
    Bool,
    Int,
    Float,
    Str,
}

/// A scalar's text: held inline up to 24 bytes (nearly every key and value), so most
/// scalars need no allocation of their own.
pub type Text = compact_str::CompactString;

/// A scalar: its value text (after unescaping), its resolved kind and its style.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    pub text: Text,
    pub kind: ScalarKind,
    pub style: Style,
}

/// A mapping entry: a key node (always a scalar) and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: Node,
    pub value: Node,
}

impl Entry {
    /// The key's text.
    pub fn key_str(&self) -> &str {
        self.key.as_scalar().map(|s| s.text.as_str()).unwrap_or("")
    }
}

/// The value of a node. Collections are [`Shared`]: a resolved tree shares every subtree
/// that no overlay changed with the loaded file (and with the other overlays).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    Seq(Shared<Vec<Node>>),
    Map(Shared<Vec<Entry>>),
}

/// A value shared between trees until one of them changes it: cloning is a reference count,
/// and the first change through `&mut` ([`DerefMut`], copy-on-write) copies this level only
/// (its children stay shared). It reads and writes like the value itself.
#[derive(Clone, PartialEq, Default)]
pub struct Shared<T: Clone>(Arc<T>);

impl<T: Clone> Shared<T> {
    pub fn new(v: T) -> Self {
        Shared(Arc::new(v))
    }

    /// The value, copied only if it is still shared.
    pub fn into_inner(self) -> T {
        Arc::unwrap_or_clone(self.0)
    }

    /// True if both share the same value (not only equal ones).
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl<T: Clone> From<T> for Shared<T> {
    fn from(v: T) -> Self {
        Shared::new(v)
    }
}

impl<T: Clone> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Clone> DerefMut for Shared<T> {
    fn deref_mut(&mut self) -> &mut T {
        Arc::make_mut(&mut self.0)
    }
}

impl<T: Clone + std::fmt::Debug> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<'a, T: Clone> IntoIterator for &'a Shared<Vec<T>> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<'a, T: Clone> IntoIterator for &'a mut Shared<Vec<T>> {
    type Item = &'a mut T;
    type IntoIter = std::slice::IterMut<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        Arc::make_mut(&mut self.0).iter_mut()
    }
}

impl<T: Clone> IntoIterator for Shared<Vec<T>> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.into_inner().into_iter()
    }
}

/// A spanned YAML node.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub span: Span,
    pub value: Value,
}

impl Node {
    pub fn scalar(span: Span, text: impl Into<Text>, kind: ScalarKind, style: Style) -> Node {
        Node {
            span,
            value: Value::Scalar(Scalar {
                text: text.into(),
                kind,
                style,
            }),
        }
    }

    /// A plain string scalar.
    pub fn string(span: Span, text: impl Into<Text>) -> Node {
        Node::scalar(span, text, ScalarKind::Str, Style::Plain)
    }

    pub fn map(span: Span, entries: Vec<Entry>) -> Node {
        Node {
            span,
            value: Value::Map(entries.into()),
        }
    }

    pub fn seq(span: Span, items: Vec<Node>) -> Node {
        Node {
            span,
            value: Value::Seq(items.into()),
        }
    }

    pub fn null(span: Span) -> Node {
        Node::scalar(span, "", ScalarKind::Null, Style::Plain)
    }

    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The text of a string-kind scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) if s.kind == ScalarKind::Str => Some(&s.text),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The entries of a mapping, to change them (copied first if shared).
    pub fn as_map_mut(&mut self) -> Option<&mut Vec<Entry>> {
        match &mut self.value {
            Value::Map(m) => Some(&mut **m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s) if s.kind == ScalarKind::Null)
    }

    /// The entry for `key` in a mapping.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.as_map()?.iter().find(|e| e.key_str() == key)
    }

    /// The value for `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// Follows a path of mapping keys.
    pub fn get_path(&self, path: &[&str]) -> Option<&Node> {
        let mut n = self;
        for k in path {
            n = n.get(k)?;
        }
        Some(n)
    }

    /// A short name of the node's type, for messages: `a string`, `a mapping`, ….
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            Value::Scalar(s) => match s.kind {
                ScalarKind::Null => "null",
                ScalarKind::Bool => "a boolean",
                ScalarKind::Int => "an integer",
                ScalarKind::Float => "a number",
                ScalarKind::Str => "a string",
            },
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// Converts to a JSON value (aliases already expanded).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Scalar(s) => match s.kind {
                ScalarKind::Null => J::Null,
                ScalarKind::Bool => J::Bool(s.text.eq_ignore_ascii_case("true")),
                ScalarKind::Int => parse_int(&s.text)
                    .map(|i| J::Number(i.into()))
                    .unwrap_or_else(|| J::String(s.text.as_str().to_owned())),
                ScalarKind::Float => parse_float(&s.text)
                    .and_then(serde_json::Number::from_f64)
                    .map(J::Number)
                    .unwrap_or_else(|| J::String(s.text.as_str().to_owned())),
                ScalarKind::Str => J::String(s.text.as_str().to_owned()),
            },
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => {
                let mut m = serde_json::Map::new();
                for e in entries {
                    m.insert(e.key_str().to_string(), e.value.to_json());
                }
                J::Object(m)
            }
        }
    }

    /// The number of nodes in this subtree (iterative, no recursion).
    pub fn count(&self) -> usize {
        let mut n = 0;
        let mut stack = vec![self];
        while let Some(x) = stack.pop() {
            n += 1;
            match &x.value {
                Value::Seq(items) => stack.extend(items.iter()),
                Value::Map(entries) => {
                    for e in entries {
                        n += 1;
                        stack.push(&e.value);
                    }
                }
                Value::Scalar(_) => {}
            }
        }
        n
    }

    /// The nesting depth of this subtree (iterative).
    pub fn depth(&self) -> usize {
        let mut max = 0;
        let mut stack = vec![(self, 1usize)];
        while let Some((x, d)) = stack.pop() {
            max = max.max(d);
            match &x.value {
                Value::Seq(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
                Value::Map(entries) => stack.extend(entries.iter().map(|e| (&e.value, d + 1))),
                Value::Scalar(_) => {}
            }
        }
        max
    }
}

/// Parses an integer as YAML 1.2 core reads it (decimal, `0o` octal, `0x` hex).
pub fn parse_int(t: &str) -> Option<i64> {
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = if let Some(h) = body.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = body.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else {
        body.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Parses a float as YAML 1.2 core reads it.
pub fn parse_float(t: &str) -> Option<f64> {
    match t {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        _ => t.parse::<f64>().ok(),
    }
}

/// Resolves a plain scalar's kind under the YAML 1.2 core schema.
pub fn resolve_plain(t: &str) -> ScalarKind {
    // Most plain scalars start with a letter: only `null`, `true` and `false` (in their three
    // spellings) among those resolve to something other than a string.
    if let Some(&c) = t.as_bytes().first()
        && c.is_ascii_alphabetic()
        && !matches!(c, b'n' | b'N' | b't' | b'T' | b'f' | b'F')
    {
        return ScalarKind::Str;
    }
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return ScalarKind::Null,
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => return ScalarKind::Bool,
        _ => {}
    }
    let b = t.as_bytes();
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    let body = match b.first() {
        Some(b'-') | Some(b'+') => &b[1..],
        _ => b,
    };
    if digits(body)
        || (t.starts_with("0x") && t.len() > 2 && t[2..].bytes().all(|c| c.is_ascii_hexdigit()))
        || (t.starts_with("0o")
            && t.len() > 2
            && t[2..].bytes().all(|c| (b'0'..=b'7').contains(&c)))
    {
        return ScalarKind::Int;
    }
    if is_core_float(t) {
        return ScalarKind::Float;
    }
    ScalarKind::Str
}

fn is_core_float(t: &str) -> bool {
    if matches!(
        t,
        ".inf"
            | ".Inf"
            | ".INF"
            | "+.inf"
            | "+.Inf"
            | "+.INF"
            | "-.inf"
            | "-.Inf"
            | "-.INF"
            | ".nan"
            | ".NaN"
            | ".NAN"
    ) {
        return true;
    }
    // [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
    let s = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mant_ok = match mant.split_once('.') {
        Some((a, b)) => {
            (a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit()))
                && !(a.is_empty() && b.is_empty())
        }
        None => !mant.is_empty() && mant.bytes().all(|c| c.is_ascii_digit()),
    };
    let exp_ok = match exp {
        None => mant.contains('.'),
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit())
        }
    };
    mant_ok && exp_ok
}

/// What a YAML 1.1 reader would make of a plain scalar that YAML 1.2 reads as a string or
/// as a different number, if anything.
pub fn yaml11_reading(t: &str) -> Option<&'static str> {
    // Every reading below starts with a digit, a sign or one of `yYnNoO`.
    if let Some(&c) = t.as_bytes().first()
        && c.is_ascii_alphabetic()
        && !matches!(c, b'y' | b'Y' | b'n' | b'N' | b'o' | b'O')
    {
        return None;
    }
    match t {
        "yes" | "Yes" | "YES" | "on" | "On" | "ON" => return Some("the boolean true"),
        "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            return Some("the boolean false");
        }
        _ => {}
    }
    let b = t.as_bytes();
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    if body.len() > 1 && body.starts_with('0') && body.bytes().all(|c| c.is_ascii_digit()) {
        return Some(if body.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
            "an octal number"
        } else {
            "a number"
        });
    }
    if body.starts_with("0b") && body.len() > 2 && body[2..].bytes().all(|c| c == b'0' || c == b'1')
    {
        return Some("a binary number");
    }
    // Dates and timestamps: YYYY-MM-DD...
    if b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[8..10].iter().all(u8::is_ascii_digit)
        && (b.len() == 10 || matches!(b[10], b'T' | b't' | b' ' | b'\t'))
    {
        return Some("a timestamp");
    }
    // Sexagesimal integers such as 1:30 (YAML 1.1 reads 90).
    if let Some((h, m)) = t.split_once(':')
        && !h.is_empty()
        && h.bytes().all(|c| c.is_ascii_digit())
        && m.len() == 2
        && m.bytes().all(|c| c.is_ascii_digit())
        && h.as_bytes()[0] != b'0'
    {
        return Some("a base-60 number");
    }
    None
}

/// Limits that bound what a file may cost.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_file_bytes: u64,
    pub max_depth: usize,
    pub max_alias_nodes: usize,
    /// The most resources one resolution may produce (`limits.max-resources`).
    pub max_resources: usize,
    /// The most YAML nodes (keys, values, items) one resolution may produce, shared
    /// subtrees counted each time they appear (`limits.max-nodes`).
    pub max_nodes: u64,
    /// The most bytes one build may write (`limits.max-output-bytes`).
    pub max_output_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 8 * 1024 * 1024,
            max_depth: 128,
            max_alias_nodes: 100_000,
            max_resources: 20_000,
            max_nodes: 5_000_000,
            max_output_bytes: 256 * 1024 * 1024,
        }
    }
}

/// One YAML document of a file.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub root: Node,
    /// Index of the document in its file (0-based).
    pub index: usize,
    /// The nodes of the document as [`Node::count`] counts them (aliases expanded),
    /// counted while it was read.
    pub nodes: u64,
}

/// Checks raw bytes: binary content and UTF-8. Returns the text or a diagnostic.
pub fn decode(file: FileId, bytes: Vec<u8>) -> Result<String, Box<Diagnostic>> {
    decode_or_keep(file, bytes).map_err(|(d, _)| d)
}

/// [`decode`], handing the bytes back with the diagnostic (so that the caller can keep a
/// lossy text without copying every file it reads).
pub fn decode_or_keep(file: FileId, bytes: Vec<u8>) -> Result<String, (Box<Diagnostic>, Vec<u8>)> {
    let probe = &bytes[..bytes.len().min(8192)];
    if let Some(pos) = memchr::memchr(0, probe) {
        return Err((
            Box::new(
                Diagnostic::new(
                    &BINARY_FILE,
                    Span::point(file, 0),
                    format!("the file is binary (a NUL byte at offset {pos}), not YAML or JSON"),
                )
                .with_help("remove it from the checked paths, or list it in `.gitignore`"),
            ),
            bytes,
        ));
    }
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            Err((
                Box::new(
                    Diagnostic::new(
                        &INVALID_UTF8,
                        Span::point(file, valid as u32),
                        format!("the file is not valid UTF-8: invalid byte at offset {valid}"),
                    )
                    .with_help("re-encode the file as UTF-8"),
                ),
                e.into_bytes(),
            ))
        }
    }
}

/// Converts saphyr markers (char index, 1-based line, 0-based char column) to byte offsets,
/// in amortized linear time over a file.
struct ByteIndex<'a> {
    file: &'a SourceFile,
    char_idx: usize,
    byte_idx: usize,
    /// An ASCII text's char indices are its byte offsets.
    ascii: bool,
}

impl<'a> ByteIndex<'a> {
    fn new(file: &'a SourceFile) -> Self {
        ByteIndex {
            file,
            char_idx: 0,
            byte_idx: 0,
            ascii: file.text.is_ascii(),
        }
    }

    fn byte(&mut self, m: &Marker) -> u32 {
        let text: &str = &self.file.text;
        if self.ascii {
            return m.index().min(text.len()) as u32;
        }
        if m.index() < self.char_idx {
            // Go back to the start of the marker's line, then walk forward.
            let Some(ls) = self.file.line_start(m.line() as u32) else {
                return text.len() as u32;
            };
            self.byte_idx = ls as usize;
            self.char_idx = m.index().saturating_sub(m.col());
        }
        let rest = &text[self.byte_idx..];
        let need = m.index() - self.char_idx;
        let mut adv = rest.len();
        for (n, (i, _)) in rest.char_indices().enumerate() {
            if n == need {
                adv = i;
                break;
            }
        }
        if need == 0 {
            adv = 0;
        }
        self.byte_idx += adv;
        self.char_idx = m.index();
        self.byte_idx as u32
    }

    fn span(&mut self, s: &saphyr_parser::Span) -> Span {
        let a = self.byte(&s.start);
        let b = self.byte(&s.end);
        Span::new(self.file.id, a, b)
    }
}

/// Mappings with fewer entries are checked for duplicate keys by a scan.
const SMALL_MAP: usize = 16;

enum Frame {
    Seq {
        span: Span,
        anchor: usize,
        /// Where its items start in the shared item stack.
        items: usize,
    },
    Map {
        span: Span,
        anchor: usize,
        /// Where its entries start in the shared entry stack.
        entries: usize,
        pending_key: Option<Node>,
        /// First spans by key, built once the mapping holds [`SMALL_MAP`] entries.
        seen: Option<HashMap<String, Span>>,
        /// `<<` merge sources, applied at the end.
        merges: Vec<Node>,
    },
}

/// Parses a file's text into documents. Problems go to `diags`; a document with a syntax
/// error is dropped (with everything after it).
pub fn parse(file: &SourceFile, limits: &Limits, diags: &mut Vec<Diagnostic>) -> Vec<Document> {
    let mut docs = Vec::new();
    let mut idx = ByteIndex::new(file);
    let mut parser = Parser::new_from_str(&file.text);
    let mut stack: Vec<Frame> = Vec::new();
    // The children of the open collections, innermost last: a collection's children are
    // moved out into a vector of their exact size when it ends (no growing, no shrinking).
    let mut item_stack: Vec<Node> = Vec::new();
    let mut entry_stack: Vec<Entry> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut alias_nodes = 0usize;
    let mut doc_root: Option<Node> = None;
    let mut doc_index = 0usize;
    // The nodes of the current document (for the resolver's node budget).
    let mut doc_nodes = 0u64;

    loop {
        let (ev, sspan) = match parser.next_event() {
            None => break,
            Some(Ok(x)) => x,
            Some(Err(e)) => {
                diags.push(scan_error(&mut idx, &e));
                break;
            }
        };
        let span = idx.span(&sspan);
        let node = match ev {
            Event::StreamStart | Event::Nothing => continue,
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                anchors.clear();
                alias_nodes = 0;
                continue;
            }
            Event::DocumentEnd => {
                if let Some(root) = doc_root.take() {
                    docs.push(Document {
                        root,
                        index: doc_index,
                        nodes: doc_nodes,
                    });
                }
                doc_nodes = 0;
                doc_index += 1;
                continue;
            }
            Event::SequenceStart(anchor, _tag) => {
                if stack.len() >= limits.max_depth {
                    diags.push(too_deep(span, limits));
                    return docs;
                }
                stack.push(Frame::Seq {
                    span,
                    anchor,
                    items: item_stack.len(),
                });
                continue;
            }
            Event::MappingStart(anchor, _tag) => {
                if stack.len() >= limits.max_depth {
                    diags.push(too_deep(span, limits));
                    return docs;
                }
                stack.push(Frame::Map {
                    span,
                    anchor,
                    entries: entry_stack.len(),
                    pending_key: None,
                    seen: None,
                    merges: Vec::new(),
                });
                continue;
            }
            Event::SequenceEnd => {
                let Some(Frame::Seq {
                    span: start,
                    anchor,
                    items,
                }) = stack.pop()
                else {
                    diags.push(internal_yaml(span));
                    return docs;
                };
                let items: Vec<Node> = item_stack.drain(items.min(item_stack.len())..).collect();
                let s = collection_span(file, start, span, items.last().map(|n| n.span));
                let node = Node::seq(s, items);
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                node
            }
            Event::MappingEnd => {
                let Some(Frame::Map {
                    span: start,
                    anchor,
                    entries,
                    merges,
                    ..
                }) = stack.pop()
                else {
                    diags.push(internal_yaml(span));
                    return docs;
                };
                let mut entries: Vec<Entry> = entry_stack
                    .drain(entries.min(entry_stack.len())..)
                    .collect();
                if !merges.is_empty() {
                    apply_merges(&mut entries, merges);
                    entries.shrink_to_fit();
                }
                let last = entries.last().map(|e| e.value.span);
                let first = entries.first().map(|e| e.key.span);
                let mut s = collection_span(file, start, span, last);
                if let Some(f) = first
                    && f.start < s.start
                {
                    s.start = f.start;
                }
                let node = Node::map(s, entries);
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                node
            }
            Event::Scalar(value, style, anchor, tag) => {
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted => Style::SingleQuoted,
                    ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    ScalarStyle::Literal => Style::Literal,
                    ScalarStyle::Folded => Style::Folded,
                };
                let mut kind = if style == Style::Plain {
                    resolve_plain(&value)
                } else {
                    ScalarKind::Str
                };
                if let Some(t) = &tag
                    && (t.handle == "!!" || t.handle == "tag:yaml.org,2002:")
                {
                    kind = match t.suffix.as_str() {
                        "str" => ScalarKind::Str,
                        "int" => ScalarKind::Int,
                        "float" => ScalarKind::Float,
                        "bool" => ScalarKind::Bool,
                        "null" => ScalarKind::Null,
                        _ => kind,
                    };
                }
                if style == Style::Plain
                    && tag.is_none()
                    && let Some(reading) = yaml11_reading(&value)
                {
                    diags.push(
                        Diagnostic::new(
                            &YAML11_SCALAR,
                            span,
                            format!(
                                "`{value}` is {} here, but YAML 1.1 readers such as kubectl and Argo read {reading}",
                                match kind {
                                    ScalarKind::Int => "an integer",
                                    ScalarKind::Float => "a number",
                                    _ => "a string",
                                }
                            ),
                        )
                        .with_help(format!("quote it: \"{value}\""))
                        .with_fix(
                            "quote the value",
                            vec![crate::diag::Edit {
                                span,
                                text: format!("\"{value}\""),
                            }],
                        ),
                    );
                }
                // Inline up to 24 bytes; a longer text gets an exact-size copy (the scanner
                // grows its strings generously).
                let text = Text::from(value.as_ref());
                let node = Node::scalar(span, text, kind, style);
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                node
            }
            Event::Alias(id) => {
                let Some(target) = anchors.get(&id) else {
                    diags.push(Diagnostic::new(
                        &YAML_SYNTAX,
                        span,
                        "this alias refers to an anchor that is not defined before it",
                    ));
                    return docs;
                };
                let cost = target.count();
                alias_nodes = alias_nodes.saturating_add(cost);
                // The alias event itself is counted with the other nodes below.
                doc_nodes = doc_nodes.saturating_add(cost as u64).saturating_sub(1);
                if alias_nodes > limits.max_alias_nodes {
                    diags.push(
                        Diagnostic::new(
                            &ALIAS_BUDGET,
                            span,
                            format!(
                                "alias expansion exceeds the budget of {} nodes (a \"billion laughs\" document?)",
                                limits.max_alias_nodes
                            ),
                        )
                        .with_help("use fewer nested aliases, or raise `limits.max-alias-nodes` in `.pbc.yaml`"),
                    );
                    return docs;
                }
                if stack.len() + target.depth() > limits.max_depth {
                    diags.push(too_deep(span, limits));
                    return docs;
                }
                target.clone()
            }
        };

        doc_nodes = doc_nodes.saturating_add(1);
        // Attach the finished node to its parent.
        match stack.last_mut() {
            None => {
                doc_root = Some(node);
            }
            Some(Frame::Seq { .. }) => item_stack.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                seen,
                merges,
                ..
            }) => match pending_key.take() {
                None => {
                    if node.as_scalar().is_none() {
                        diags.push(
                            Diagnostic::new(
                                &COMPLEX_KEY,
                                node.span,
                                format!("a mapping key must be a string, not {}", node.type_name()),
                            )
                            .with_help("write the key as a plain or quoted string"),
                        );
                        return docs;
                    }
                    *pending_key = Some(node);
                }
                Some(key) => {
                    let k = key.as_scalar().map(|s| s.text.as_str()).unwrap_or("");
                    let is_merge =
                        k == "<<" && key.as_scalar().is_some_and(|s| s.style == Style::Plain);
                    if is_merge {
                        match &node.value {
                            Value::Seq(items) => merges.extend(items.iter().cloned()),
                            _ => merges.push(node),
                        }
                        continue;
                    }
                    let entries = &entry_stack[(*entries).min(entry_stack.len())..];
                    // Small mappings (nearly all) are scanned; a large one gets an index.
                    let first = if entries.len() < SMALL_MAP {
                        entries
                            .iter()
                            .find(|e| e.key_str() == k)
                            .map(|e| e.key.span)
                    } else {
                        let seen = seen.get_or_insert_with(|| {
                            let mut m = HashMap::with_capacity(entries.len() * 2);
                            for e in entries.iter() {
                                m.entry(e.key_str().to_string()).or_insert(e.key.span);
                            }
                            m
                        });
                        match seen.get(k) {
                            Some(f) => Some(*f),
                            None => {
                                seen.insert(k.to_string(), key.span);
                                None
                            }
                        }
                    };
                    if let Some(first) = first {
                        diags.push(
                            Diagnostic::new(
                                &DUPLICATE_KEY,
                                key.span,
                                format!("duplicate key `{k}`"),
                            )
                            .with_label_text("defined again here")
                            .with_label(first, "first defined here")
                            .with_help("remove one of the two entries"),
                        );
                    }
                    entry_stack.push(Entry { key, value: node });
                }
            },
        }
    }
    if let Some(root) = doc_root.take() {
        docs.push(Document {
            root,
            index: doc_index,
            nodes: doc_nodes,
        });
    }
    docs
}

/// Applies `<<` merge keys: entries of the merged mappings that the mapping does not define
/// itself are appended, earlier sources winning.
fn apply_merges(entries: &mut Vec<Entry>, merges: Vec<Node>) {
    for m in merges {
        if let Value::Map(src) = m.value {
            for e in src {
                if !entries.iter().any(|x| x.key_str() == e.key_str()) {
                    entries.push(e);
                }
            }
        }
    }
}

/// A collection's span: from its start to its closing bracket (flow) or its last child
/// (block).
fn collection_span(file: &SourceFile, start: Span, end_ev: Span, last_child: Option<Span>) -> Span {
    let first = file.text.as_bytes().get(start.start as usize).copied();
    let flow = matches!(first, Some(b'[') | Some(b'{'));
    let end = if flow {
        end_ev.end.max(start.end)
    } else {
        last_child.map(|c| c.end).unwrap_or(start.end)
    };
    Span::new(start.file, start.start, end)
}

fn too_deep(span: Span, limits: &Limits) -> Diagnostic {
    Diagnostic::new(
        &NESTING_TOO_DEEP,
        span,
        format!(
            "collections nest more than {} levels deep",
            limits.max_depth
        ),
    )
    .with_help("flatten the document, or raise `limits.max-depth` in `.pbc.yaml`")
}

fn internal_yaml(span: Span) -> Diagnostic {
    Diagnostic::new(
        &YAML_SYNTAX,
        span,
        "the YAML event stream is inconsistent (unbalanced collection end)",
    )
}

fn scan_error(idx: &mut ByteIndex<'_>, e: &ScanError) -> Diagnostic {
    let at = idx.byte(e.marker());
    let info = e.info();
    if info.contains("recursion limit") {
        return Diagnostic::new(
            &NESTING_TOO_DEEP,
            Span::point(idx.file.id, at),
            "flow collections nest too deeply",
        )
        .with_help("flatten the document");
    }
    let mut d = Diagnostic::new(
        &YAML_SYNTAX,
        Span::point(idx.file.id, at),
        format!("invalid YAML: {info}"),
    );
    if info.contains("tab") {
        d = d.with_help("YAML indentation must use spaces, not tabs");
    } else if info.contains("mapping values are not allowed") {
        d = d.with_help("a `: ` inside a plain value starts a mapping; quote the value");
    } else if info.contains("unknown anchor") {
        d = d.with_help("define the anchor (`&name`) before using the alias (`*name`)");
    }
    d
}

/// Maps a byte range of a scalar's *value* (after unescaping and line folding) to the span
/// of the source text that produced it, so that a diagnostic inside a quoted, escaped, folded
/// or multi-line scalar underlines exactly the characters it is about.
///
/// The value is aligned with the source greedily, decoding double-quoted escapes and `''` in
/// single-quoted scalars, and skipping the indentation and line breaks that folding removed.
pub fn value_span(file: &SourceFile, node: &Node, range: std::ops::Range<u32>) -> Span {
    let Some(sc) = node.as_scalar() else {
        return node.span;
    };
    let src = file.slice(node.span);
    let base = node.span.start;
    // One pass over the alignment, kept to what the range needs: the first char at or after
    // `range.start`, the last char before `range.end`, and (if the start lies past the
    // value) the last char of all.
    let mut first_at_start: Option<u32> = None;
    let mut last_before_end: Option<u32> = None;
    let mut last: Option<u32> = None;
    align_each(src, &sc.text, sc.style, |v, s| {
        last = Some(s);
        if first_at_start.is_none() && v >= range.start {
            first_at_start = Some(s);
        }
        if v < range.end {
            last_before_end = Some(s);
            true
        } else {
            first_at_start.is_none()
        }
    });
    let start = match first_at_start {
        Some(s) => base + s,
        // Past the last char: just after the last mapped char.
        None => last.map(|s| base + s + 1).unwrap_or(base),
    };
    let end = if range.end > range.start {
        // The end of the last char that starts inside the range (an escape or `''` spans
        // several source bytes; a multi-byte char's last byte is not a char start).
        let s = match last_before_end {
            Some(s) => base + s,
            None => start,
        };
        let rest = file.text.get(s as usize..).unwrap_or("");
        let len = match (sc.style, rest.as_bytes()) {
            (Style::DoubleQuoted, [b'\\', b'x', ..]) => 4,
            (Style::DoubleQuoted, [b'\\', b'u', ..]) => 6,
            (Style::DoubleQuoted, [b'\\', b'U', ..]) => 10,
            (Style::DoubleQuoted, [b'\\', _, ..]) => 2,
            (Style::SingleQuoted, [b'\'', b'\'', ..]) => 2,
            _ => rest
                .chars()
                .next()
                .map(|c| c.len_utf8() as u32)
                .unwrap_or(1),
        };
        s + len
    } else {
        start
    };
    Span::new(node.span.file, start, end.min(node.span.end).max(start))
}

/// Pairs each char of `value` (by byte offset) with the byte offset in `src` it came from,
/// in order, handing each pair to `f` until it returns false.
fn align_each(src: &str, value: &str, style: Style, mut f: impl FnMut(u32, u32) -> bool) {
    let s = src.as_bytes();
    // Skip the opening quote. (A block scalar's span starts at its content.)
    let mut i = match style {
        Style::SingleQuoted | Style::DoubleQuoted => 1,
        Style::Literal | Style::Folded | Style::Plain => 0,
    };
    for (voff, c) in value.char_indices() {
        let mut found = None;
        while i < s.len() {
            // Double-quoted escapes produce one char from several source bytes.
            if style == Style::DoubleQuoted && s[i] == b'\\' {
                let next = s.get(i + 1).copied().unwrap_or(b' ');
                if next == b'\n' || next == b'\r' {
                    // An escaped line break: no value char; skip it and the indentation.
                    i += 2;
                    while i < s.len() && (s[i] == b' ' || s[i] == b'\t' || s[i] == b'\n') {
                        i += 1;
                    }
                    continue;
                }
                let len = match next {
                    b'x' => 4,
                    b'u' => 6,
                    b'U' => 10,
                    _ => 2,
                };
                found = Some(i);
                i += len;
                break;
            }
            if style == Style::SingleQuoted
                && s[i] == b'\''
                && s.get(i + 1) == Some(&b'\'')
                && c == '\''
            {
                found = Some(i);
                i += 2;
                break;
            }
            let sc = src[i..].chars().next().unwrap_or(' ');
            if sc == c {
                found = Some(i);
                i += sc.len_utf8();
                break;
            }
            if c == ' ' && (sc == '\n' || sc == '\r') {
                // A folded line break became a space.
                found = Some(i);
                i += 1;
                while i < s.len() && (s[i] == b' ' || s[i] == b'\t') {
                    i += 1;
                }
                break;
            }
            i += sc.len_utf8();
        }
        match found {
            Some(at) => {
                if !f(voff as u32, at as u32) {
                    break;
                }
            }
            None => break,
        }
    }
}

/// Suggests the closest of `known` for an unknown key, for "did you mean" help.
pub fn suggest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    did_you_mean(key, known.iter().copied())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod hostile;
