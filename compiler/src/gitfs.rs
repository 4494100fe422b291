//! A git tree as a [`FileSystem`]: the files of a revision, read with git2 from the object
//! database, with no checkout. `pbc diff` loads, discovers and resolves the base revision
//! through it exactly as it does the working tree through [`crate::fs::OsFs`].
//!
//! The tree stands in for the repository's working directory: a path under the working
//! directory (absolute, or relative to the given `cwd`) names the tree entry at the same
//! place; anything outside it does not exist. Symbolic links stored in the tree are
//! followed (bounded, as the kernel does), so the load restrictor sees the same canonical
//! paths it would see in a checkout. Submodules are neither files nor directories.

use crate::fs::{FileKind, FileSystem, Meta, ReadError, normalize};
use git2::{ObjectType, Oid, Repository};
use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How many symbolic links one lookup may follow (Linux's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// Why a revision could not be opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GitError {
    /// No repository at or above the directory.
    NotARepository(PathBuf),
    /// A bare repository: no working directory to compare with.
    Bare(PathBuf),
    /// The revision does not name a commit (or a tree) here. `shallow` is true for a
    /// shallow clone, which may simply not have fetched it.
    UnknownRevision { rev: String, shallow: bool },
    /// Any other libgit2 failure.
    Git(String),
}

impl std::fmt::Display for GitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GitError::NotARepository(p) => {
                write!(f, "{}: not inside a git repository", p.display())
            }
            GitError::Bare(p) => write!(
                f,
                "{}: a bare repository has no working tree to compare with",
                p.display()
            ),
            GitError::UnknownRevision { rev, shallow } => {
                write!(
                    f,
                    "unknown revision `{rev}`: no such commit in this repository"
                )?;
                if *shallow {
                    write!(
                        f,
                        " (this is a shallow clone, which may not have fetched it: fetch the \
                         history, e.g. `actions/checkout` with `fetch-depth: 0` or `git fetch \
                         --unshallow`)"
                    )?;
                }
                Ok(())
            }
            GitError::Git(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for GitError {}

/// A tree entry, as far as lookups care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tree(Oid),
    Blob(Oid),
    Link(Oid),
    /// A submodule (a commit entry) or anything else.
    Other,
}

type Listing = Arc<Vec<(OsString, Kind)>>;

/// The files of one git revision.
pub struct GitFs {
    repo: Mutex<Repository>,
    tree: Oid,
    commit: Option<Oid>,
    /// The directory the tree stands for (the working directory, canonical).
    root: PathBuf,
    /// Relative paths are taken relative to this directory.
    cwd: PathBuf,
    listings: Mutex<HashMap<Oid, Listing>>,
}

impl std::fmt::Debug for GitFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitFs")
            .field("tree", &self.tree)
            .field("commit", &self.commit)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn io_err(e: git2::Error) -> io::Error {
    io::Error::other(e.message().to_string())
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file or directory", path.display()),
    )
}

#[cfg(unix)]
fn os_name(bytes: &[u8]) -> OsString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(bytes).to_os_string()
}

#[cfg(not(unix))]
fn os_name(bytes: &[u8]) -> OsString {
    OsString::from(String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(unix)]
fn link_target(bytes: &[u8]) -> PathBuf {
    PathBuf::from(os_name(bytes))
}

#[cfg(not(unix))]
fn link_target(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).replace('/', "\\"))
}

impl GitFs {
    /// Opens the repository holding `cwd` and the tree of `rev` (anything `git rev-parse`
    /// takes: a branch, `origin/main`, a sha, `HEAD~2`). `cwd` must be an absolute path in
    /// the repository's working directory; relative paths given to the file system are taken
    /// relative to it.
    pub fn open(cwd: &Path, rev: &str) -> Result<GitFs, GitError> {
        Self::open_in(cwd, cwd, rev)
    }

    /// As [`GitFs::open`], for the repository holding `inside` (a path being compared, so
    /// that pbc can be started outside the repository, like `git -C`); relative paths are
    /// still taken relative to `cwd`.
    pub fn open_in(inside: &Path, cwd: &Path, rev: &str) -> Result<GitFs, GitError> {
        let repo = Repository::discover(inside)
            .map_err(|_| GitError::NotARepository(inside.to_path_buf()))?;
        let Some(workdir) = repo.workdir() else {
            return Err(GitError::Bare(repo.path().to_path_buf()));
        };
        let root = std::fs::canonicalize(workdir)
            .map_err(|e| GitError::Git(format!("{}: {e}", workdir.display())))?;
        let unknown = || GitError::UnknownRevision {
            rev: rev.to_string(),
            shallow: repo.is_shallow(),
        };
        let (commit, tree) = {
            let obj = repo.revparse_single(rev).map_err(|_| unknown())?;
            let commit = obj.peel_to_commit().ok().map(|c| c.id());
            let tree = obj.peel_to_tree().map_err(|_| unknown())?.id();
            (commit, tree)
        };
        let cwd = std::fs::canonicalize(cwd).unwrap_or_else(|_| normalize(cwd));
        Ok(GitFs {
            repo: Mutex::new(repo),
            tree,
            commit,
            root,
            cwd,
            listings: Mutex::new(HashMap::new()),
        })
    }

    /// The commit the revision named (none when it named a tree).
    pub fn commit(&self) -> Option<String> {
        self.commit.map(|c| c.to_string())
    }

    /// The directory the tree stands for: the repository's working directory (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The working directory relative paths are resolved against (canonical).
    pub fn cwd(&self) -> &Path {
        &self.cwd
    }

    /// The path inside the tree for a path on the file system, if it lies under the root.
    fn tree_path(&self, path: &Path) -> Option<PathBuf> {
        let abs = if path.is_absolute() {
            normalize(path)
        } else {
            normalize(&self.cwd.join(path))
        };
        if let Ok(rel) = abs.strip_prefix(&self.root) {
            return Some(rel.to_path_buf());
        }
        // A path through a link to the working directory (`/tmp` on macOS, a symlinked
        // checkout): its longest prefix that exists on disk, canonicalized.
        let mut prefix = abs.as_path();
        let mut rest = Vec::new();
        while let Some(parent) = prefix.parent() {
            if let Ok(c) = std::fs::canonicalize(prefix) {
                let mut p = c;
                p.extend(rest.iter().rev());
                return p.strip_prefix(&self.root).ok().map(Path::to_path_buf);
            }
            rest.push(prefix.file_name()?.to_os_string());
            prefix = parent;
        }
        None
    }

    /// The entries of a tree, cached by id.
    fn listing(&self, tree: Oid) -> io::Result<Listing> {
        if let Some(l) = self
            .listings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&tree)
        {
            return Ok(l.clone());
        }
        let out = {
            let repo = self.repo.lock().unwrap_or_else(|e| e.into_inner());
            let t = repo.find_tree(tree).map_err(io_err)?;
            let mut out = Vec::with_capacity(t.len());
            for e in t.iter() {
                let kind = match (e.kind(), e.filemode()) {
                    (Some(ObjectType::Tree), _) => Kind::Tree(e.id()),
                    (Some(ObjectType::Blob), 0o120000) => Kind::Link(e.id()),
                    (Some(ObjectType::Blob), _) => Kind::Blob(e.id()),
                    _ => Kind::Other,
                };
                out.push((os_name(e.name_bytes()), kind));
            }
            out
        };
        let l: Listing = Arc::new(out);
        self.listings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tree, l.clone());
        Ok(l)
    }

    fn blob(&self, id: Oid, limit: Option<u64>) -> Result<Vec<u8>, ReadError> {
        let repo = self.repo.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(limit) = limit {
            let odb = repo.odb().map_err(io_err)?;
            let (len, _) = odb.read_header(id).map_err(io_err)?;
            let len = len as u64;
            if len > limit {
                return Err(ReadError::TooLarge { len, limit });
            }
        }
        let blob = repo.find_blob(id).map_err(io_err)?;
        Ok(blob.content().to_vec())
    }

    fn blob_len(&self, id: Oid) -> io::Result<u64> {
        let repo = self.repo.lock().unwrap_or_else(|e| e.into_inner());
        let odb = repo.odb().map_err(io_err)?;
        let (len, _) = odb.read_header(id).map_err(io_err)?;
        Ok(len as u64)
    }

    /// Looks a path up, following symbolic links (also the last component when
    /// `follow_last`). Returns the resolved path inside the tree and the entry.
    fn lookup(&self, path: &Path, follow_last: bool) -> io::Result<(PathBuf, Kind)> {
        let rel = self.tree_path(path).ok_or_else(|| not_found(path))?;
        let mut todo: Vec<OsString> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                _ => None,
            })
            .collect();
        todo.reverse();
        let mut cur = PathBuf::new();
        let mut kind = Kind::Tree(self.tree);
        let mut links = 0usize;
        while let Some(name) = todo.pop() {
            let Kind::Tree(tree) = kind else {
                return Err(not_found(path));
            };
            let listing = self.listing(tree)?;
            let Some((_, k)) = listing.iter().find(|(n, _)| *n == name) else {
                return Err(not_found(path));
            };
            match *k {
                Kind::Link(id) if follow_last || !todo.is_empty() => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(io::Error::other(format!(
                            "{}: too many levels of symbolic links",
                            path.display()
                        )));
                    }
                    let target = self.blob(id, Some(4096)).map_err(|e| match e {
                        ReadError::Io(e) => e,
                        ReadError::TooLarge { .. } | ReadError::NotAFile(_) => not_found(path),
                    })?;
                    let target = link_target(&target);
                    // Restart from the root with the target spliced in front of the rest.
                    let joined = if target.is_absolute() {
                        match self.tree_path(&target) {
                            Some(p) => p,
                            None => return Err(not_found(path)),
                        }
                    } else {
                        let j = normalize(&cur.join(&target));
                        if j.starts_with("..") {
                            return Err(not_found(path));
                        }
                        j
                    };
                    for c in joined.components().rev() {
                        if let Component::Normal(n) = c {
                            todo.push(n.to_os_string());
                        }
                    }
                    cur = PathBuf::new();
                    kind = Kind::Tree(self.tree);
                }
                k => {
                    cur.push(&name);
                    kind = k;
                }
            }
        }
        Ok((cur, kind))
    }
}

impl FileSystem for GitFs {
    fn read(&self, path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
        match self.lookup(path, true)? {
            (_, Kind::Blob(id)) => self.blob(id, Some(limit)),
            (_, Kind::Tree(_)) => Err(ReadError::Io(io::Error::other(format!(
                "{}: is a directory",
                path.display()
            )))),
            _ => Err(ReadError::Io(io::Error::other(format!(
                "{}: not a regular file",
                path.display()
            )))),
        }
    }

    fn metadata(&self, path: &Path) -> io::Result<Meta> {
        Ok(match self.lookup(path, true)?.1 {
            Kind::Tree(_) => Meta {
                kind: FileKind::Dir,
                len: 0,
            },
            Kind::Blob(id) => Meta {
                kind: FileKind::File,
                len: self.blob_len(id)?,
            },
            Kind::Link(_) | Kind::Other => Meta {
                kind: FileKind::Other,
                len: 0,
            },
        })
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let (_, kind) = self.lookup(path, true)?;
        let Kind::Tree(tree) = kind else {
            return Err(io::Error::other(format!(
                "{}: not a directory",
                path.display()
            )));
        };
        let mut out: Vec<PathBuf> = self
            .listing(tree)?
            .iter()
            .map(|(n, _)| path.join(n))
            .collect();
        out.sort();
        Ok(out)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        let (rel, _) = self.lookup(path, true)?;
        Ok(self.root.join(rel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits every file of the working directory (a fixed author and time).
    fn commit_all(dir: &Path, message: &str) {
        let repo = Repository::open(dir).expect("repo");
        let mut index = repo.index().expect("index");
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .expect("add");
        index.write().expect("index write");
        let tree = repo
            .find_tree(index.write_tree().expect("tree"))
            .expect("tree");
        let sig = git2::Signature::new("t", "t@example.com", &git2::Time::new(0, 0)).expect("sig");
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .expect("commit");
    }

    fn repo() -> tempfile::TempDir {
        let t = tempfile::tempdir().expect("tempdir");
        let d = t.path();
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head("main");
        Repository::init_opts(d, &opts).expect("init");
        std::fs::create_dir_all(d.join("a/b")).expect("mkdir");
        std::fs::write(d.join("a/b/x.yaml"), "x: 1\n").expect("write");
        std::fs::write(d.join("top.yaml"), "top: true\n").expect("write");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("b/x.yaml", d.join("a/link.yaml")).expect("symlink");
            std::os::unix::fs::symlink("../..", d.join("a/b/up")).expect("symlink");
            std::os::unix::fs::symlink("loop2", d.join("loop1")).expect("symlink");
            std::os::unix::fs::symlink("loop1", d.join("loop2")).expect("symlink");
        }
        commit_all(d, "one");
        // The working tree moves on; the revision does not.
        std::fs::write(d.join("top.yaml"), "top: false\n").expect("write");
        std::fs::write(d.join("new.yaml"), "new: 1\n").expect("write");
        t
    }

    #[test]
    fn reads_the_revision_not_the_working_tree() {
        let t = repo();
        let root = std::fs::canonicalize(t.path()).expect("canonical");
        let fs = GitFs::open(&root, "HEAD").expect("opens");
        assert_eq!(
            fs.read(Path::new("top.yaml"), 100).expect("read"),
            b"top: true\n"
        );
        assert!(fs.metadata(Path::new("new.yaml")).is_err());
        assert_eq!(
            fs.metadata(&root.join("a")).expect("meta").kind,
            FileKind::Dir
        );
        let m = fs.metadata(Path::new("a/b/x.yaml")).expect("meta");
        assert_eq!((m.kind, m.len), (FileKind::File, 5));
        assert!(matches!(
            fs.read(Path::new("a/b/x.yaml"), 2),
            Err(ReadError::TooLarge { len: 5, limit: 2 })
        ));
        assert_eq!(
            fs.read_dir(Path::new("a")).expect("dir"),
            vec![PathBuf::from("a/b"), PathBuf::from("a/link.yaml")]
        );
        // Outside the working directory nothing exists.
        assert!(fs.metadata(Path::new("/etc/passwd")).is_err());
        assert!(fs.metadata(Path::new("../x")).is_err());
        assert!(fs.commit().is_some());
    }

    #[cfg(unix)]
    #[test]
    fn follows_links_inside_the_tree() {
        let t = repo();
        let root = std::fs::canonicalize(t.path()).expect("canonical");
        let fs = GitFs::open(&root, "main").expect("opens");
        assert_eq!(
            fs.read(Path::new("a/link.yaml"), 100).expect("read"),
            b"x: 1\n"
        );
        assert_eq!(
            fs.canonicalize(Path::new("a/link.yaml"))
                .expect("canonical"),
            root.join("a/b/x.yaml")
        );
        assert_eq!(
            fs.canonicalize(Path::new("a/b/up/top.yaml"))
                .expect("canonical"),
            root.join("top.yaml")
        );
        let e = fs.metadata(Path::new("loop1")).expect_err("a loop");
        assert!(e.to_string().contains("too many levels"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn paths_through_a_link_to_the_working_directory() {
        let t = repo();
        let links = tempfile::tempdir().expect("tempdir");
        let via = links.path().join("checkout");
        std::os::unix::fs::symlink(t.path(), &via).expect("symlink");
        let fs = GitFs::open(&via, "HEAD").expect("opens through the link");
        assert_eq!(
            fs.read(&via.join("top.yaml"), 100).expect("read"),
            b"top: true\n"
        );
        assert_eq!(
            fs.read(Path::new("a/b/x.yaml"), 100).expect("read"),
            b"x: 1\n"
        );
        // A file only in the revision (deleted from the disk) is still found.
        std::fs::remove_file(t.path().join("a/b/x.yaml")).expect("rm");
        assert!(fs.metadata(&via.join("a/b/x.yaml")).is_ok());
    }

    #[test]
    fn unknown_revisions_and_non_repositories() {
        let t = repo();
        let root = std::fs::canonicalize(t.path()).expect("canonical");
        let e = GitFs::open(&root, "no-such-branch").expect_err("unknown");
        assert_eq!(
            e,
            GitError::UnknownRevision {
                rev: "no-such-branch".into(),
                shallow: false
            }
        );
        let plain = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            GitFs::open(plain.path(), "HEAD"),
            Err(GitError::NotARepository(_))
        ));
    }
}
