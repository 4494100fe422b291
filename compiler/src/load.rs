//! Loading files: read through the [`FileSystem`], register in the [`SourceMap`], decode,
//! parse into spanned documents. Each file is parsed once per [`Loader`]; concurrent callers
//! share the result.

use crate::diag::Diagnostic;
use crate::fs::{FileSystem, Meta, ReadError, normalize};
use crate::span::{SourceFile, SourceMap, Span};
use crate::yaml::{self, Document, Limits};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// A parsed file: its source, its documents and the problems found while loading it.
#[derive(Debug)]
pub struct Loaded {
    pub file: Arc<SourceFile>,
    pub docs: Vec<Document>,
    pub diags: Vec<Diagnostic>,
}

impl Loaded {
    /// True if loading produced an error (the documents may be incomplete).
    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diagnostic::is_error)
    }
}

/// Why a file could not be loaded at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The path does not exist.
    NotFound(PathBuf),
    /// Any other I/O failure.
    Io(PathBuf, String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::NotFound(p) => write!(f, "{}: no such file or directory", p.display()),
            LoadError::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

type Slot = Arc<OnceLock<Result<Arc<Loaded>, LoadError>>>;

/// Loads and caches files. Paths are keyed after lexical normalization; the display path is
/// made relative to `cwd` when it lies under it.
pub struct Loader {
    pub fs: Arc<dyn FileSystem>,
    pub sources: SourceMap,
    pub limits: Limits,
    cwd: PathBuf,
    cache: Mutex<HashMap<PathBuf, Slot>>,
    /// [`Loader::metadata`]'s answers (an error kept as its kind).
    meta: Mutex<HashMap<PathBuf, Result<Meta, std::io::ErrorKind>>>,
    /// [`Loader::canonicalize`]'s answers.
    canon: Mutex<HashMap<PathBuf, Result<PathBuf, std::io::ErrorKind>>>,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("cwd", &self.cwd)
            .finish_non_exhaustive()
    }
}

impl Loader {
    pub fn new(fs: Arc<dyn FileSystem>, cwd: impl Into<PathBuf>, limits: Limits) -> Self {
        Loader {
            fs,
            sources: SourceMap::new(),
            limits,
            cwd: cwd.into(),
            cache: Mutex::new(HashMap::new()),
            meta: Mutex::new(HashMap::new()),
            canon: Mutex::new(HashMap::new()),
        }
    }

    /// The file system's metadata of `path`, asked once per loader, like the files it
    /// caches (several overlays look at the same files).
    pub fn metadata(&self, path: &Path) -> std::io::Result<Meta> {
        if let Some(r) = self
            .meta
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
        {
            return r.map_err(std::io::Error::from);
        }
        let r = self.fs.metadata(path).map_err(|e| e.kind());
        self.meta
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_path_buf(), r);
        r.map_err(std::io::Error::from)
    }

    /// The file system's canonical path of `path`, asked once per loader.
    pub fn canonicalize(&self, path: &Path) -> std::io::Result<PathBuf> {
        if let Some(r) = self
            .canon
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
        {
            return r.clone().map_err(std::io::Error::from);
        }
        let r = self.fs.canonicalize(path).map_err(|e| e.kind());
        self.canon
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_path_buf(), r.clone());
        r.map_err(std::io::Error::from)
    }

    /// The path shown to users for `path`: relative to the working directory (climbing
    /// with `..` to a file beside it, such as a base seen from inside an overlay); absolute
    /// only when the two share nothing but the file-system root.
    pub fn display_path(&self, path: &Path) -> PathBuf {
        let abs = if path.is_absolute() || self.cwd.as_os_str().is_empty() {
            normalize(path)
        } else {
            normalize(&self.cwd.join(path))
        };
        if self.cwd.as_os_str().is_empty() {
            return abs;
        }
        relative_to(&abs, &normalize(&self.cwd)).unwrap_or(abs)
    }

    /// The path the file system is asked for: a relative path (such as a display path) is
    /// taken relative to the loader's working directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_relative() && !self.cwd.as_os_str().is_empty() {
            normalize(&self.cwd.join(path))
        } else {
            normalize(path)
        }
    }

    /// Loads (once) and parses a file.
    pub fn load(&self, path: &Path) -> Result<Arc<Loaded>, LoadError> {
        // The cache hands out a slot per path; the first caller fills it, others wait on it.
        let key = self.resolve(path);
        let slot = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.entry(key.clone()).or_default().clone()
        };
        slot.get_or_init(|| self.load_uncached(&key)).clone()
    }

    fn load_uncached(&self, path: &Path) -> Result<Arc<Loaded>, LoadError> {
        let display = self.display_path(path);
        let bytes = match self.fs.read(path, self.limits.max_file_bytes) {
            Ok(b) => b,
            Err(ReadError::TooLarge { len, limit }) => {
                let file = self.sources.add(display, "");
                let d = Diagnostic::new(
                    &yaml::FILE_TOO_LARGE,
                    Span::point(file.id, 0),
                    format!(
                        "the file is {len} bytes, over the limit of {limit} bytes; it was not read"
                    ),
                )
                .with_help("split the file, or raise `limits.max-file-size` in `.pbc.yaml`");
                return Ok(Arc::new(Loaded {
                    file,
                    docs: Vec::new(),
                    diags: vec![d],
                }));
            }
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LoadError::NotFound(display));
            }
            Err(ReadError::Io(e)) => return Err(LoadError::Io(display, e.to_string())),
        };
        let provisional = self.sources.add(display.clone(), "");
        match yaml::decode_or_keep(provisional.id, bytes) {
            Err((d, bytes)) => {
                let lossy = || String::from_utf8_lossy(&bytes).into_owned();
                // Keep positions meaningful: the text up to the first invalid byte is exact.
                let file = if d.code == &yaml::INVALID_UTF8 {
                    self.sources.replace(provisional.id, lossy())
                } else {
                    provisional
                };
                Ok(Arc::new(Loaded {
                    file,
                    docs: Vec::new(),
                    diags: vec![*d],
                }))
            }
            Ok(text) => {
                let file = self.sources.replace(provisional.id, text);
                let mut diags = Vec::new();
                let docs = yaml::parse(&file, &self.limits, &mut diags);
                Ok(Arc::new(Loaded { file, docs, diags }))
            }
        }
    }

    /// Registers an in-memory text (an editor buffer, stdin) and parses it.
    pub fn load_text(&self, display: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Arc<Loaded> {
        let file = self.sources.add(display, text);
        let mut diags = Vec::new();
        let docs = yaml::parse(&file, &self.limits, &mut diags);
        Arc::new(Loaded { file, docs, diags })
    }
}

/// `path` relative to the directory `base` (both normalized): `None` when they share no
/// named component (then the absolute path reads better than a climb to the root).
fn relative_to(path: &Path, base: &Path) -> Option<PathBuf> {
    use std::path::Component;
    if let Ok(rel) = path.strip_prefix(base) {
        return Some(if rel.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            rel.to_path_buf()
        });
    }
    let p: Vec<Component> = path.components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let named = p[..common]
        .iter()
        .any(|c| matches!(c, Component::Normal(_)));
    if !named
        || b[common..]
            .iter()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c.as_os_str());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_paths_are_relative_to_the_working_directory() {
        let l = Loader::new(
            Arc::new(crate::fs::MemFs::new()),
            "/repo/playbooks/overlays/production",
            Limits::default(),
        );
        let d = |p: &str| l.display_path(Path::new(p));
        assert_eq!(d("kustomization.yaml"), PathBuf::from("kustomization.yaml"));
        assert_eq!(d("."), PathBuf::from("."));
        assert_eq!(d("../../base/a.yaml"), PathBuf::from("../../base/a.yaml"));
        assert_eq!(
            d("/repo/playbooks/overlays/staging/k.yaml"),
            PathBuf::from("../staging/k.yaml")
        );
        assert_eq!(d("/etc/x.yaml"), PathBuf::from("/etc/x.yaml"));
        // The display path resolves back to the file.
        assert_eq!(
            l.resolve(&d("/repo/playbooks/base/a.yaml")),
            PathBuf::from("/repo/playbooks/base/a.yaml")
        );
    }
}
