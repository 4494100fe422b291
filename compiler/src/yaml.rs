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

mod parse;
mod scalars;
mod spans;

pub use parse::{Document, Limits, decode, decode_or_keep, parse};
pub use scalars::{parse_float, parse_int, resolve_plain, yaml11_reading};
pub use spans::value_span;

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

/// One step of a path into a document: a mapping key or a sequence index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSeg {
    Key(&'static str),
    Index(usize),
}

impl Node {
    /// Sets the text of the scalar `at` leads to (nothing when the path leads nowhere or
    /// to a collection). A loop: no recursion.
    pub fn set_scalar_at(&mut self, at: &[PathSeg], text: &str) {
        let mut n = self;
        for seg in at {
            let next = match (&mut n.value, seg) {
                (Value::Map(entries), PathSeg::Key(k)) => entries
                    .iter_mut()
                    .find(|e| e.key_str() == *k)
                    .map(|e| &mut e.value),
                (Value::Seq(items), PathSeg::Index(i)) => items.get_mut(*i),
                _ => None,
            };
            match next {
                Some(x) => n = x,
                None => return,
            }
        }
        if let Value::Scalar(s) = &mut n.value {
            s.text = text.into();
        }
    }

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

/// Suggests the closest of `known` for an unknown key, for "did you mean" help.
pub fn suggest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    did_you_mean(key, known.iter().copied())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod hostile;
