//! The workspace as `pbc check` sees it, with the editor's buffers laid over the disk, checked
//! incrementally: one loader lives as long as the workspace, so a re-check parses only the
//! files that changed, and re-checks only the units (trees and loose files) that read them.
//! Findings are converted to the protocol's diagnostics, each with its fix and suppression.

use crate::convert::{Encoding, path_to_uri, range};
use crate::incremental::{TreeState, signature};
use lsp_types::{
    DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString, TextEdit, Uri,
    WorkspaceEdit,
};
use pbc_compiler::check::{self, PlaybookCtx, Units};
use pbc_compiler::config::{self, Config};
use pbc_compiler::diag::{Code, Diagnostic, Severity};
use pbc_compiler::fs::{FileKind, FileSystem, OsFs, OverlayFs};
use pbc_compiler::load::Loader;
use pbc_compiler::span::SourceFile;
use pbc_compiler::types::SchemaStore;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One finding as published, with what the code actions and hovers need.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub diag: lsp_types::Diagnostic,
    pub code: &'static Code,
    /// The finding's fix: its title and edit.
    pub fix: Option<(String, WorkspaceEdit)>,
    /// A comment line above the finding's line: `# pbc:allow(CODE)`.
    pub suppress: TextEdit,
}

/// What `pbc check` checks as one: a tree, or a loose file (`true`: named explicitly).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Unit {
    Tree(PathBuf),
    File(PathBuf, bool),
}

struct Checked {
    unit: Unit,
    /// The files its check loaded (resolved paths).
    touched: HashSet<PathBuf>,
    findings: Vec<(PathBuf, Finding)>,
    /// A tree's findings by where they arose, for re-checking one file of it.
    tree: Option<TreeState>,
}

/// The workspace under a root: its configuration, its loader (its parsed files), and each
/// unit's last findings.
pub struct Workspace {
    root: PathBuf,
    enc: Encoding,
    fs: Arc<OverlayFs>,
    pub loader: Loader,
    cfg: Config,
    comp: Arc<pbc_lints::Compliance>,
    /// The static policies (`check-policies:`), run over each playbook as `pbc check` does.
    statics: Option<Arc<pbc_policy::static_check::StaticPolicies>>,
    /// The configuration's own findings.
    cfg_findings: Vec<(PathBuf, Finding)>,
    units: Vec<Checked>,
    /// The units as last discovered; `None`: walk the workspace again.
    discovered: Option<BTreeSet<Unit>>,
    /// Files changed since the last check; `None`: check everything.
    changed: Option<BTreeSet<PathBuf>>,
    /// The [`signature`] of each changed file as the last check read it (`None`: not read,
    /// or not comparable).
    before: HashMap<PathBuf, Option<String>>,
    /// The compiled schemas, kept while only playbook files change.
    schemas: Arc<SchemaStore>,
    /// How many trees the checks so far re-checked by one file's documents only, instead
    /// of whole (what the incremental path saved; the tests look at it).
    pub spliced: usize,
    /// How many playbooks of trees checked whole kept their findings, resolving as before.
    pub reused: usize,
    /// The findings per file (absolute paths), as of the last check.
    pub files: BTreeMap<PathBuf, Vec<Finding>>,
}

impl Workspace {
    /// The catalogs and evidence rules the checks use (the configuration's included).
    pub(crate) fn compliance(&self) -> &pbc_lints::Compliance {
        &self.comp
    }

    /// The stage `stage` of playbook `playbook` in the other files the units that read
    /// `path` loaded: from an overlay's patch, the base's stage (and other patches of it).
    pub(crate) fn stage_elsewhere(
        &self,
        path: &Path,
        playbook: &str,
        stage: &str,
    ) -> Vec<(
        PathBuf,
        Arc<pbc_compiler::load::Loaded>,
        pbc_compiler::span::Span,
    )> {
        let path = self.loader.resolve(path);
        let mut files: BTreeSet<&PathBuf> = BTreeSet::new();
        for u in self.units.iter().filter(|u| u.touched.contains(&path)) {
            files.extend(u.touched.iter().filter(|p| **p != path));
        }
        let mut out = Vec::new();
        for f in files {
            let Ok(l) = self.loader.load(f) else { continue };
            for d in &l.docs {
                let r = &d.root;
                if r.get("kind").and_then(|k| k.as_str()) != Some("Playbook")
                    || r.get_path(&["metadata", "name"]).and_then(|n| n.as_str()) != Some(playbook)
                {
                    continue;
                }
                let stages = r.get_path(&["spec", "stages"]).and_then(|s| s.as_seq());
                for st in stages.unwrap_or(&[]) {
                    if let Some(n) = st.get("name").filter(|n| n.as_str() == Some(stage)) {
                        out.push((f.clone(), l.clone(), n.span));
                    }
                }
            }
        }
        out
    }

    /// `path` relative to the workspace root, for people.
    pub(crate) fn shown(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// The configuration in use.
    pub(crate) fn config(&self) -> &Config {
        &self.cfg
    }

    /// The configuration file in use, if any.
    pub(crate) fn config_path(&self) -> Option<&std::path::Path> {
        self.cfg.path.as_deref()
    }

    /// The workspace under `root` (nothing is checked until [`Workspace::check`]).
    pub fn new(root: &Path, enc: Encoding) -> Self {
        let fs = Arc::new(OverlayFs::new(Arc::new(OsFs)));
        Self::with_fs(root, enc, fs)
    }

    fn with_fs(root: &Path, enc: Encoding, fs: Arc<OverlayFs>) -> Self {
        let mut diags = Vec::new();
        let cfg_path = Config::discover(fs.as_ref(), root);
        let mut loader = Loader::new(fs.clone(), root, Default::default());
        let cfg = match cfg_path {
            Some(p) => Config::load(&loader, &p, &mut diags).unwrap_or_default(),
            None => Config::default(),
        };
        loader.limits = cfg.limits;
        let comp = Arc::new(pbc_lints::Compliance::load(&cfg, &loader, &mut diags));
        // As `pbc check`: configured policies must compile, and the static policies
        // (`check-policies:`) run over each playbook.
        let set = pbc_policy::freeze(&cfg, &loader, &mut diags);
        pbc_policy::check(&cfg, &set, &loader, &mut diags);
        let dirs: Vec<(PathBuf, Option<pbc_compiler::span::Span>)> = cfg
            .check_policies
            .iter()
            .map(|p| (p.path.clone(), Some(p.span)))
            .collect();
        let statics = pbc_policy::static_check::StaticPolicies::load(&dirs, &loader, &mut diags)
            .map(Arc::new);
        config::apply_suppressions(&loader.sources, &mut diags);
        cfg.apply_levels(&mut diags);
        let cfg_findings = convert_all(&loader, &diags, enc);
        let schemas = Arc::new(SchemaStore::with_root(&cfg.root));
        Workspace {
            root: root.to_path_buf(),
            enc,
            fs,
            loader,
            cfg,
            comp,
            statics,
            cfg_findings,
            units: Vec::new(),
            discovered: None,
            changed: None,
            before: HashMap::new(),
            schemas,
            spliced: 0,
            reused: 0,
            files: BTreeMap::new(),
        }
    }

    /// Sets (`Some`) or removes (`None`: the disk's file shows again) the buffer at `path`.
    pub fn set_buffer(&mut self, path: &Path, text: Option<&str>) {
        match text {
            Some(t) => self.fs.set(path, t.as_bytes()),
            None => {
                // A closed buffer of a file not on disk takes its unit away.
                self.fs.remove(path);
                self.discovered = None;
            }
        }
        self.touch(path);
    }

    /// Notes that `path` changed (on disk or in a buffer): the next check reads it again.
    pub fn touch(&mut self, path: &Path) {
        let key = self.loader.resolve(path);
        if !self.before.contains_key(&key) {
            let sig = self.loader.cached(path).and_then(|l| signature(&l));
            self.before.insert(key, sig);
        }
        self.loader.forget(path);
        if let Some(c) = &mut self.changed {
            c.insert(pbc_compiler::fs::normalize(path));
        }
    }

    /// Re-checks what changed since the last check (everything, the first time).
    pub fn check(&mut self) {
        let changed = self.changed.replace(BTreeSet::new());
        let config_changed = changed.as_ref().is_none_or(|c| {
            c.iter().any(|p| {
                p.file_name().and_then(|n| n.to_str()) == Some(config::FILE_NAME)
                    || self.cfg.path.as_deref() == Some(p.as_path())
            })
        });
        if config_changed && changed.is_some() {
            // A new configuration: catalogs, severities and limits start again.
            let files = std::mem::take(&mut self.files);
            *self = Self::with_fs(&self.root, self.enc, self.fs.clone());
            self.files = files;
            self.changed = Some(BTreeSet::new());
            return self.check_units(None);
        }
        self.check_units(changed)
    }

    /// The one file that changed, when it is a playbook file of a tree (one of its resolved
    /// playbooks came from it, so the checks do not read it as a schema) and kept its
    /// [`signature`]: the trees that read it may re-check that file's documents only. With
    /// its id.
    fn one_playbook_file(
        &mut self,
        changed: &Option<BTreeSet<PathBuf>>,
    ) -> Option<(PathBuf, pbc_compiler::span::FileId)> {
        let before = std::mem::take(&mut self.before);
        let ch = changed.as_ref()?;
        let [path] = ch.iter().collect::<Vec<_>>()[..] else {
            return None;
        };
        let key = self.loader.resolve(path);
        let old = before.get(&key)?.as_ref()?;
        let now = self.loader.load(path).ok()?;
        let id = now.file.id;
        let source = self
            .units
            .iter()
            .filter_map(|u| u.tree.as_ref())
            .any(|t| t.has_source(id));
        (source && signature(&now).as_ref() == Some(old)).then_some((key, id))
    }

    fn check_units(&mut self, changed: Option<BTreeSet<PathBuf>>) {
        // A file no unit read (a new one) or a kustomization may change what the units are.
        let structural = changed.as_ref().is_none_or(|ch| {
            ch.iter().any(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                check::KUSTOMIZATION_FILES.contains(&name)
                    || !self.units.iter().any(|u| u.touched.contains(p))
            })
        });
        let discovered = match self.discovered.take() {
            Some(d) if !structural => d,
            _ => self.discover(),
        };
        let stale = |c: &Checked| match &changed {
            None => true,
            Some(ch) => ch.iter().any(|p| c.touched.contains(p)),
        };
        let one = if structural {
            None
        } else {
            self.one_playbook_file(&changed)
        };
        // The compiled schemas stay while only files the trees' resolutions read changed
        // (playbooks, kustomizations, patches); else a schema may have changed, or appeared.
        let resolution_only = !structural
            && changed.as_ref().is_some_and(|ch| {
                ch.iter().all(|p| {
                    self.units
                        .iter()
                        .filter_map(|u| u.tree.as_ref())
                        .any(|t| t.read(p))
                })
            });
        if !resolution_only {
            self.schemas = Arc::new(SchemaStore::with_root(&self.cfg.root));
        }
        let mut keep: BTreeMap<Unit, Checked> = BTreeMap::new();
        // Trees checked whole again that may keep the findings of playbooks resolving as
        // before: only documents, kustomizations and patches changed.
        let mut prev: BTreeMap<Unit, TreeState> = BTreeMap::new();
        let mut read_before: BTreeMap<Unit, HashSet<PathBuf>> = BTreeMap::new();
        for mut c in std::mem::take(&mut self.units) {
            if !discovered.contains(&c.unit) {
                continue;
            }
            if !stale(&c) {
                keep.insert(c.unit.clone(), c);
            } else if one
                .as_ref()
                .is_some_and(|(f, id)| self.splice(&mut c, f, *id))
            {
                self.spliced += 1;
                keep.insert(c.unit.clone(), c);
            } else {
                // The kept schemas are not read through the loader again: the files they
                // came from stay among what the unit read.
                if resolution_only {
                    read_before.insert(c.unit.clone(), c.touched);
                }
                if let (Some(t), Some(ch)) = (c.tree, &changed)
                    && t.read_all(ch)
                {
                    prev.insert(c.unit, t);
                }
            }
        }
        for unit in &discovered {
            if !keep.contains_key(unit) {
                let mut c = self.check_unit(unit.clone(), prev.get(unit));
                c.touched
                    .extend(read_before.remove(unit).unwrap_or_default());
                keep.insert(unit.clone(), c);
            }
        }
        self.discovered = Some(discovered);
        self.units = keep.into_values().collect();
        let mut files: BTreeMap<PathBuf, Vec<Finding>> = BTreeMap::new();
        let all = self
            .cfg_findings
            .iter()
            .chain(self.units.iter().flat_map(|u| u.findings.iter()));
        for (p, f) in all {
            let v = files.entry(p.clone()).or_default();
            // A finding in a base shared by several trees is reported once.
            if !v.contains(f) {
                v.push(f.clone());
            }
        }
        self.files = files;
    }

    /// The checks `pbc check` runs on each playbook after the model's: compliance, the
    /// static policies, the targets' name rules.
    fn extra(&self) -> impl Fn(&PlaybookCtx<'_>, &mut Vec<Diagnostic>) + Sync + use<> {
        let comp = self.comp.clone();
        let statics = self.statics.clone();
        move |cx: &PlaybookCtx<'_>, diags: &mut Vec<Diagnostic>| {
            comp.check_playbook_with(
                cx.playbook,
                cx.env.as_deref(),
                Some(&cx.loader.sources),
                diags,
            );
            if let Some(s) = &statics {
                s.check(&cx.doc.root, diags);
            }
            pbc_targets::names::check_names(
                cx.playbook,
                &cx.doc.name_origin,
                &cx.loader.sources,
                diags,
            );
        }
    }

    /// Checks a unit whole; a tree's playbooks that resolve as in `prev` keep their
    /// findings there.
    fn check_unit(&mut self, unit: Unit, prev: Option<&TreeState>) -> Checked {
        let extra = self.extra();
        self.loader.record();
        let (report, tree) = match &unit {
            Unit::Tree(t) => {
                let (state, kept) =
                    TreeState::full(&self.loader, t, &self.cfg, &self.schemas, &extra, prev);
                self.reused += kept;
                (state.report(&self.loader, &self.cfg, t), Some(state))
            }
            Unit::File(f, e) => {
                let units = Units {
                    trees: Vec::new(),
                    files: vec![(f.clone(), *e)],
                };
                (check::check(&self.loader, &units, &self.cfg, &extra), None)
            }
        };
        let touched = self.loader.recorded();
        Checked {
            unit,
            touched,
            findings: convert_all(&self.loader, &report.diags, self.enc),
            tree,
        }
    }

    /// Re-checks the tree `c` after `file` (id `id`) changed and kept its signature, by
    /// that file's documents only; false (and `c` unchanged): it must be checked whole.
    fn splice(&self, c: &mut Checked, file: &Path, id: pbc_compiler::span::FileId) -> bool {
        let (Unit::Tree(dir), Some(state)) = (&c.unit, &mut c.tree) else {
            return false;
        };
        let extra = self.extra();
        self.loader.record();
        let done = state.splice(
            &self.loader,
            dir,
            file,
            id,
            &self.cfg,
            &self.schemas,
            &extra,
        );
        let read = self.loader.recorded();
        if done {
            c.touched.extend(read);
            let report = state.report(&self.loader, &self.cfg, dir);
            c.findings = convert_all(&self.loader, &report.diags, self.enc);
        }
        done
    }

    /// The units `pbc check ROOT` finds, plus the buffers that belong to none of them (a new
    /// file, or one in an ignored directory).
    fn discover(&self) -> BTreeSet<Unit> {
        let found = check::discover(std::slice::from_ref(&self.root)).unwrap_or_default();
        let mut out: BTreeSet<Unit> = found.trees.into_iter().map(Unit::Tree).collect();
        let files: HashSet<PathBuf> = found.files.iter().map(|(f, _)| f.clone()).collect();
        out.extend(found.files.into_iter().map(|(f, e)| Unit::File(f, e)));
        let top = self.fs.buffers();
        for p in top {
            let yaml = matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let special = check::KUSTOMIZATION_FILES.contains(&name) || name == config::FILE_NAME;
            if !yaml || special || files.contains(&p) {
                continue;
            }
            let in_tree = p.ancestors().skip(1).any(|dir| {
                check::KUSTOMIZATION_FILES.iter().any(|k| {
                    self.fs
                        .metadata(&dir.join(k))
                        .is_ok_and(|m| m.kind == FileKind::File)
                })
            });
            if !in_tree {
                out.insert(Unit::File(p, true));
            }
        }
        out
    }

    /// The parsed text of a file as the last check read it.
    pub fn source(&self, path: &Path) -> Option<Arc<SourceFile>> {
        self.loader.load(path).ok().map(|l| l.file.clone())
    }
}

fn convert_all(loader: &Loader, diags: &[Diagnostic], enc: Encoding) -> Vec<(PathBuf, Finding)> {
    diags
        .iter()
        .filter_map(|d| {
            let f = loader.sources.get(d.span.file)?;
            Some((loader.resolve(&f.path), convert(loader, &f, d, enc)))
        })
        .collect()
}

fn severity(s: Severity) -> DiagnosticSeverity {
    match s {
        Severity::Error => DiagnosticSeverity::ERROR,
        Severity::Warning => DiagnosticSeverity::WARNING,
        Severity::Info => DiagnosticSeverity::INFORMATION,
    }
}

/// The location of a span, in whichever file it lies.
fn location(loader: &Loader, span: pbc_compiler::span::Span, enc: Encoding) -> Option<Location> {
    let f = loader.sources.get(span.file)?;
    let uri = path_to_uri(&loader.resolve(&f.path))?;
    Some(Location::new(uri, range(&f, span.start, span.end, enc)))
}

#[allow(clippy::mutable_key_type)] // `Uri` hashes its text only
fn convert(loader: &Loader, f: &SourceFile, d: &Diagnostic, enc: Encoding) -> Finding {
    let mut message = d.message.clone();
    if let Some(l) = &d.label {
        message.push_str(&format!(" ({l})"));
    }
    if let Some(h) = &d.help {
        message.push_str(&format!("\nhelp: {h}"));
    }
    let related: Vec<DiagnosticRelatedInformation> = d
        .labels
        .iter()
        .filter_map(|l| {
            Some(DiagnosticRelatedInformation {
                location: location(loader, l.span, enc)?,
                message: l.message.clone(),
            })
        })
        .collect();
    let diag = lsp_types::Diagnostic {
        range: range(f, d.span.start, d.span.end, enc),
        severity: Some(severity(d.severity)),
        code: Some(NumberOrString::String(d.code.id.to_string())),
        code_description: None,
        source: Some("pbc".into()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        tags: None,
        data: None,
    };
    let fix = d.fix.as_ref().and_then(|fix| {
        let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
        for e in &fix.edits {
            let loc = location(loader, e.span, enc)?;
            changes
                .entry(loc.uri)
                .or_default()
                .push(TextEdit::new(loc.range, e.text.clone()));
        }
        Some((fix.title.clone(), WorkspaceEdit::new(changes)))
    });
    Finding {
        diag,
        code: d.code,
        fix,
        suppress: suppression(f, d.span.start, d.code.id, enc),
    }
}

/// A `# pbc:allow(CODE)` comment on its own line above the line at `offset`, indented
/// like it. A code that needs a reason (the protected-environment findings) gets
/// `# pbc:allow(CODE): ` for the reason to be typed after it (until it is, the comment is
/// PB1040).
fn suppression(f: &SourceFile, offset: u32, code: &str, enc: Encoding) -> TextEdit {
    let line = f.line_col(offset).line;
    let start = f.line_start(line).unwrap_or(0);
    let text = f.line_text(line);
    let indent: String = text.chars().take_while(|c| *c == ' ').collect();
    let at = crate::convert::position(f, start, enc);
    TextEdit::new(
        lsp_types::Range::new(at, at),
        if pbc_compiler::guard::needs_reason(code) {
            format!("{indent}# pbc:allow({code}): \n")
        } else {
            format!("{indent}# pbc:allow({code})\n")
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suppression_of_a_protected_environment_finding_asks_for_a_reason() {
        let f = SourceFile::new(
            pbc_compiler::span::FileId(0),
            PathBuf::from("p.yaml"),
            Arc::from("stages:\n  - name: a\n    approval: auto\n"),
        );
        let at = f.line_start(3).unwrap_or(0) + 4;
        let e = suppression(&f, at, "PB1031", Encoding::Utf16);
        assert_eq!(e.new_text, "    # pbc:allow(PB1031): \n");
        let e = suppression(&f, at, "PB2013", Encoding::Utf16);
        assert_eq!(e.new_text, "    # pbc:allow(PB2013)\n");
    }
}
