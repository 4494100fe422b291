//! The file-system seam. Everything pbc reads goes through [`FileSystem`], so that a git tree
//! (for `pbc diff`) or in-memory buffers (for an editor, for tests) can stand in for the disk.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};

/// What a path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Other,
}

/// Metadata of a path (symlinks followed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub kind: FileKind,
    pub len: u64,
}

/// Why a read failed.
#[derive(Debug)]
pub enum ReadError {
    /// The file is larger than the limit; `len` is its size.
    TooLarge {
        len: u64,
        limit: u64,
    },
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// A read-only file system.
pub trait FileSystem: Send + Sync {
    /// Reads a whole file, refusing (without reading it) one larger than `limit` bytes.
    fn read(&self, path: &Path, limit: u64) -> Result<Vec<u8>, ReadError>;
    /// Metadata with symlinks followed.
    fn metadata(&self, path: &Path) -> io::Result<Meta>;
    /// The entries of a directory, sorted by name.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>>;
    /// The canonical path (symlinks resolved), used by the load restrictor.
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;
    /// Whether `path` itself is a symbolic link (not followed), when that is cheaper to ask
    /// than [`FileSystem::canonicalize`]; `None` when unknown (then callers canonicalize).
    fn is_symlink(&self, _path: &Path) -> Option<bool> {
        None
    }
}

/// What kind of file `path` is when it is not a regular file ("a directory", "a named pipe
/// (FIFO)", "a character device", …); `None` for a regular file or a missing path (the
/// caller's open then says "not found"). pbc reads only regular files: a pipe would block the
/// read and a device such as `/dev/zero` never ends.
pub fn not_regular(path: &Path) -> Option<&'static str> {
    let t = std::fs::metadata(path).ok()?.file_type();
    (!t.is_file()).then(|| file_type_name(t))
}

/// The real disk.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsFs;

impl FileSystem for OsFs {
    fn read(&self, path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
        use std::io::Read;
        // The file type first: opening a FIFO blocks until a writer comes, and a device
        // (`/dev/zero`) never ends.
        let kind = std::fs::metadata(path)?.file_type();
        if !kind.is_file() {
            return Err(ReadError::Io(not_regular_error(kind)));
        }
        let file = std::fs::File::open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(ReadError::Io(not_regular_error(meta.file_type())));
        }
        let len = meta.len();
        if len > limit {
            return Err(ReadError::TooLarge { len, limit });
        }
        let mut buf = Vec::with_capacity(len as usize);
        // Read at most limit + 1 bytes: a file that grew meanwhile is still bounded.
        file.take(limit + 1).read_to_end(&mut buf)?;
        if buf.len() as u64 > limit {
            return Err(ReadError::TooLarge {
                len: buf.len() as u64,
                limit,
            });
        }
        Ok(buf)
    }

    fn metadata(&self, path: &Path) -> io::Result<Meta> {
        let m = std::fs::metadata(path)?;
        let kind = if m.is_file() {
            FileKind::File
        } else if m.is_dir() {
            FileKind::Dir
        } else {
            FileKind::Other
        };
        Ok(Meta { kind, len: m.len() })
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(path)? {
            out.push(e?.path());
        }
        out.sort();
        Ok(out)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }

    fn is_symlink(&self, path: &Path) -> Option<bool> {
        std::fs::symlink_metadata(path)
            .ok()
            .map(|m| m.file_type().is_symlink())
    }
}

/// An in-memory file system: a map from normalized paths to contents. Directories exist
/// implicitly as prefixes of file paths.
#[derive(Clone, Debug, Default)]
pub struct MemFs {
    files: BTreeMap<PathBuf, Vec<u8>>,
}

impl MemFs {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, path: impl AsRef<Path>, contents: impl Into<Vec<u8>>) {
        self.files.insert(normalize(path.as_ref()), contents.into());
    }

    fn is_dir(&self, p: &Path) -> bool {
        if p.as_os_str().is_empty() || p == Path::new("/") {
            return !self.files.is_empty();
        }
        self.files.keys().any(|k| k.starts_with(p) && k != p)
    }
}

impl FileSystem for MemFs {
    fn read(&self, path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
        let p = normalize(path);
        match self.files.get(&p) {
            Some(b) if b.len() as u64 > limit => Err(ReadError::TooLarge {
                len: b.len() as u64,
                limit,
            }),
            Some(b) => Ok(b.clone()),
            None => Err(ReadError::Io(not_found(path))),
        }
    }

    fn metadata(&self, path: &Path) -> io::Result<Meta> {
        let p = normalize(path);
        if let Some(b) = self.files.get(&p) {
            return Ok(Meta {
                kind: FileKind::File,
                len: b.len() as u64,
            });
        }
        if self.is_dir(&p) {
            return Ok(Meta {
                kind: FileKind::Dir,
                len: 0,
            });
        }
        Err(not_found(path))
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let p = normalize(path);
        if !self.is_dir(&p) {
            return Err(not_found(path));
        }
        let mut out: Vec<PathBuf> = Vec::new();
        for k in self.files.keys() {
            if let Ok(rest) = k.strip_prefix(&p)
                && let Some(first) = rest.components().next()
            {
                let child = p.join(first.as_os_str());
                if out.last() != Some(&child) {
                    out.push(child);
                }
            }
        }
        out.dedup();
        Ok(out)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        let p = normalize(path);
        if self.files.contains_key(&p) || self.is_dir(&p) {
            Ok(p)
        } else {
            Err(not_found(path))
        }
    }
}

/// What a path that is not a regular file is, for an error message.
pub fn file_type_name(kind: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else if kind.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

fn not_regular_error(kind: std::fs::FileType) -> io::Error {
    io::Error::other(format!(
        "it is {}, not a regular file (pbc reads only regular files)",
        file_type_name(kind)
    ))
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file or directory", path.display()),
    )
}

/// Lexically normalizes a path: removes `.` and resolves `..` against preceding components.
/// A `..` that has no name before it to cancel is kept (`../../x` stays so: it climbs above
/// the directory the path is relative to); at the file-system root it is dropped (`/..` is
/// `/`).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memfs_lists_and_reads() {
        let mut fs = MemFs::new();
        fs.insert("a/b.yaml", "x: 1");
        fs.insert("a/c/d.yaml", "y: 2");
        assert_eq!(fs.metadata(Path::new("a")).unwrap().kind, FileKind::Dir);
        assert_eq!(
            fs.read_dir(Path::new("a")).unwrap(),
            vec![PathBuf::from("a/b.yaml"), PathBuf::from("a/c")]
        );
        assert_eq!(fs.read(Path::new("./a/b.yaml"), 100).unwrap(), b"x: 1");
        assert!(matches!(
            fs.read(Path::new("a/b.yaml"), 2),
            Err(ReadError::TooLarge { len: 4, .. })
        ));
    }

    #[test]
    fn normalize_paths() {
        assert_eq!(normalize(Path::new("a/./b/../c")), PathBuf::from("a/c"));
        assert_eq!(normalize(Path::new("../x")), PathBuf::from("../x"));
        assert_eq!(normalize(Path::new(".")), PathBuf::from("."));
        assert_eq!(normalize(Path::new("a/..")), PathBuf::from("."));
        // A `..` never cancels another `..`: from inside an overlay, `./../../base` is two
        // levels up, not `base`.
        assert_eq!(
            normalize(Path::new("./../../base")),
            PathBuf::from("../../base")
        );
        assert_eq!(
            normalize(Path::new("../x/../../y")),
            PathBuf::from("../../y")
        );
        assert_eq!(normalize(Path::new("a/../../b")), PathBuf::from("../b"));
        assert_eq!(normalize(Path::new("/a/../..")), PathBuf::from("/"));
    }
}
