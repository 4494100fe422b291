//! Source files, file ids and byte spans.
//!
//! Every node pbc builds carries a [`Span`]: the file it came from and a byte range in that
//! file. Lines and columns are computed only when a diagnostic is rendered, from the file's
//! line index: lines are 1-based and columns count Unicode scalar values.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Identifies a file registered in a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileId(pub u32);

/// A byte range `[start, end)` in one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: u32, end: u32) -> Self {
        Span {
            file,
            start,
            end: end.max(start),
        }
    }

    /// An empty span at `offset`.
    pub fn point(file: FileId, offset: u32) -> Self {
        Span::new(file, offset, offset)
    }

    pub fn len(&self) -> u32 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// The smallest span covering both (same file assumed; otherwise `self`).
    pub fn to(self, other: Span) -> Span {
        if self.file != other.file {
            return self;
        }
        Span::new(
            self.file,
            self.start.min(other.start),
            self.end.max(other.end),
        )
    }

    /// A sub-span of this one, `[start, end)` relative to its start, clamped to it.
    pub fn sub(self, start: u32, end: u32) -> Span {
        let s = self.start.saturating_add(start).min(self.end);
        let e = self.start.saturating_add(end).min(self.end).max(s);
        Span::new(self.file, s, e)
    }
}

/// A 1-based line and column; the column counts Unicode scalar values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineCol {
    pub line: u32,
    pub column: u32,
}

/// A loaded source file: its display path (relative to the working directory where
/// possible), its text, and the byte offset of every line start.
#[derive(Debug)]
pub struct SourceFile {
    pub id: FileId,
    /// The path as shown to users.
    pub path: PathBuf,
    pub text: Arc<str>,
    line_starts: Vec<u32>,
}

impl SourceFile {
    pub fn new(id: FileId, path: PathBuf, text: Arc<str>) -> Self {
        let line_starts = std::iter::once(0u32)
            .chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i as u32 + 1))
            .collect();
        SourceFile {
            id,
            path,
            text,
            line_starts,
        }
    }

    /// The byte offset where `line` (1-based) starts, if it exists.
    pub fn line_start(&self, line: u32) -> Option<u32> {
        self.line_starts.get(line.checked_sub(1)? as usize).copied()
    }

    pub fn line_count(&self) -> u32 {
        self.line_starts.len() as u32
    }

    /// The line and column of a byte offset (clamped to the text, and to a char boundary).
    pub fn line_col(&self, offset: u32) -> LineCol {
        let offset = (offset as usize).min(self.text.len());
        let idx = match self.line_starts.binary_search(&(offset as u32)) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts[idx] as usize;
        let mut end = offset;
        while end > start && !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let col = self.text[start..end].chars().count() as u32 + 1;
        LineCol {
            line: idx as u32 + 1,
            column: col,
        }
    }

    /// The text of a 1-based line, without its line terminator.
    pub fn line_text(&self, line: u32) -> &str {
        let Some(start) = self.line_start(line) else {
            return "";
        };
        let end = self
            .line_start(line + 1)
            .map(|e| e as usize)
            .unwrap_or(self.text.len());
        self.text[start as usize..end].trim_end_matches(['\n', '\r'])
    }

    /// The byte offset of a 1-based line and a 0-based column in Unicode scalar values.
    pub fn offset_of(&self, line: u32, col0: u32) -> u32 {
        let Some(start) = self.line_start(line) else {
            return self.text.len() as u32;
        };
        let rest = &self.text[start as usize..];
        let mut off = rest.len();
        for (n, (i, _)) in rest.char_indices().enumerate() {
            if n == col0 as usize {
                off = i;
                break;
            }
        }
        start + off as u32
    }

    /// The source text of a span (empty if out of range).
    pub fn slice(&self, span: Span) -> &str {
        self.text
            .get(span.start as usize..span.end as usize)
            .unwrap_or("")
    }
}

/// All source files of one invocation. Cheap to share across threads; registering a file
/// takes a short write lock.
#[derive(Default, Clone)]
pub struct SourceMap {
    inner: Arc<RwLock<Vec<Arc<SourceFile>>>>,
}

impl fmt::Debug for SourceMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceMap").finish_non_exhaustive()
    }
}

impl SourceMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a file and returns it.
    pub fn add(&self, path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Arc<SourceFile> {
        let mut files = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let id = FileId(files.len() as u32);
        let file = Arc::new(SourceFile::new(id, path.into(), text.into()));
        files.push(file.clone());
        file
    }

    /// Replaces the text of a registered file (used once, after decoding), keeping its id.
    pub fn replace(&self, id: FileId, text: impl Into<Arc<str>>) -> Arc<SourceFile> {
        let mut files = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let idx = id.0 as usize;
        let path = files.get(idx).map(|f| f.path.clone()).unwrap_or_default();
        let file = Arc::new(SourceFile::new(id, path, text.into()));
        if let Some(slot) = files.get_mut(idx) {
            *slot = file.clone();
        }
        file
    }

    pub fn get(&self, id: FileId) -> Option<Arc<SourceFile>> {
        let files = self.inner.read().unwrap_or_else(|e| e.into_inner());
        files.get(id.0 as usize).cloned()
    }

    /// The registered file with this display path, if any.
    pub fn find(&self, path: &Path) -> Option<Arc<SourceFile>> {
        let files = self.inner.read().unwrap_or_else(|e| e.into_inner());
        files.iter().find(|f| f.path == path).cloned()
    }

    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves a span to `(path, start, end)` line/columns.
    pub fn resolve(&self, span: Span) -> Option<(PathBuf, LineCol, LineCol)> {
        let f = self.get(span.file)?;
        Some((f.path.clone(), f.line_col(span.start), f.line_col(span.end)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_scalar_values() {
        let sm = SourceMap::new();
        let f = sm.add("a.yaml", "a: 1\nnäme: 日本\n");
        let off = f.text.find("日本").unwrap() as u32;
        assert_eq!(f.line_col(off), LineCol { line: 2, column: 7 });
        assert_eq!(f.line_col(0), LineCol { line: 1, column: 1 });
        assert_eq!(f.offset_of(2, 6), off);
        assert_eq!(f.line_text(2), "näme: 日本");
    }
}
