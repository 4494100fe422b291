//! The files and directories a kustomization names: display, the load restrictor, remote
//! references, and the findings for what is missing.

use super::*;

pub(super) fn looks_remote(s: &str) -> bool {
    s.contains("://") || s.starts_with("git@") || s.starts_with("git::")
}

pub(super) fn looks_remote_host(s: &str) -> bool {
    ["github.com/", "gitlab.com/", "bitbucket.org/"]
        .iter()
        .any(|h| s.starts_with(h))
}

impl Ctx<'_> {
    pub(super) fn display(&self, p: &Path) -> String {
        crate::render::path_str(&self.loader.display_path(p))
    }

    pub(super) fn canon(&self, p: &Path) -> PathBuf {
        self.loader.canonicalize(p).unwrap_or_else(|_| normalize(p))
    }

    /// A "did you mean" for a missing path, from the names in its directory.
    pub(super) fn suggest_path(&self, path: &Path, text: &str) -> Option<String> {
        let parent = path.parent()?;
        let name = path.file_name()?.to_str()?;
        let entries = self.loader.fs.read_dir(parent).ok()?;
        let names: Vec<String> = entries
            .iter()
            .filter_map(|e| e.file_name()?.to_str().map(str::to_string))
            .collect();
        let best = did_you_mean(name, names.iter().map(String::as_str))?;
        let prefix = text.strip_suffix(name).unwrap_or("");
        Some(format!("{prefix}{best}"))
    }

    pub(super) fn missing(&self, r: &PathRef, path: &Path, what: &str) -> Diagnostic {
        let mut d = Diagnostic::new(
            &MISSING_FILE,
            r.span,
            format!("{what} `{}` does not exist", r.text),
        )
        .with_label_text(format!("no such file or directory: {}", self.display(path)));
        if let Some(s) = self.suggest_path(path, &r.text) {
            d = d.with_help(format!("did you mean `{s}`?")).with_fix(
                format!("use `{s}`"),
                vec![crate::diag::Edit {
                    span: r.span,
                    text: s,
                }],
            );
        }
        d
    }

    /// The load restrictor: `path` (a file) must lie under `root`.
    pub(super) fn check_root(&self, kd: &KDir<'_>, r: &PathRef, path: &Path) -> Option<Diagnostic> {
        if self.opts.load_restrictor == LoadRestrictor::None {
            return None;
        }
        // A file directly in the kustomization's directory that is not a link lies in its
        // canonical root: one `lstat` instead of resolving every component of the path.
        if path.parent() == Some(kd.dir.as_path())
            && path.file_name().is_some()
            && self.loader.is_symlink(path) == Some(false)
        {
            return None;
        }
        let canon = self.canon(path);
        if canon.starts_with(&kd.root) {
            return None;
        }
        let lexically_inside = normalize(path).starts_with(normalize(&kd.dir));
        let msg = if lexically_inside {
            format!(
                "`{}` is a symlink to `{}`, which is outside the kustomization root `{}`",
                r.text,
                self.display(&canon),
                self.display(&kd.dir)
            )
        } else {
            format!(
                "`{}` is outside the kustomization root `{}`",
                r.text,
                self.display(&kd.dir)
            )
        };
        Some(
            Diagnostic::new(&OUTSIDE_ROOT, r.span, msg).with_help(
                "a kustomization reads files only from its own directory or below (kustomize's load restrictor): move the file there, make its directory a base with its own kustomization, or build with `--load-restrictor none`",
            ),
        )
    }

    pub(super) fn remote(&self, r: &PathRef) -> Diagnostic {
        Diagnostic::new(
            &REMOTE_RESOURCE,
            r.span,
            format!("`{}` is a remote resource; pbc builds only local files", r.text),
        )
        .with_help("vendor the remote base into this repository (e.g. with `git subtree`) and list its local path")
    }
}

pub(super) fn load_error(span: Span, e: &LoadError) -> Diagnostic {
    match e {
        LoadError::NotFound(p) => Diagnostic::new(
            &MISSING_FILE,
            span,
            format!("`{}` does not exist", crate::render::path_str(p)),
        ),
        _ => e.diagnostic(span),
    }
}
