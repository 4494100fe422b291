//! Control catalogs: the controls of a framework (ids and short names) as data files.
//!
//! pbc ships three catalogs (`lints/catalogs/`, embedded at build time): the AICPA Trust
//! Services Criteria (`soc2`, 61 criteria), ISO/IEC 27001:2013 Annex A (`iso27001-2013`,
//! 114 controls) and ISO/IEC 27001:2022 Annex A (`iso27001-2022`, 93 controls) with the
//! 2013 → 2022 correspondence. An organisation adds its own catalogs as YAML files of the same
//! shape (`lints/catalogs/README.md`). They are read with pbc's spanned YAML loader, so a
//! mistake in a catalog is a diagnostic at its exact place. Tags match on ids, never names.

use crate::data::Reader;
use pbc_compiler::declare_codes;
use pbc_compiler::diag::Diagnostic;
use pbc_compiler::fs::MemFs;
use pbc_compiler::load::Loader;
use pbc_compiler::span::Span;
use pbc_compiler::yaml::{Limits, Node};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

declare_codes! {
    /// A control catalog file is not valid.
    ///
    /// Catalogs are YAML files of one shape (`lints/catalogs/README.md`):
    ///
    /// ```yaml
    /// catalog: acme-controls          # the id used by `--catalog`
    /// framework: ACME
    /// edition: "2025"
    /// tag-prefixes: [ACME-]           # a tag is a prefix followed by a control id
    /// count: 2                        # optional; checked against the list
    /// groups: [{id: AC, name: Access control}]
    /// controls:
    ///   - {id: AC-1, name: Access policy, group: AC}
    ///   - {id: AC-2, name: Account management, group: AC}
    /// ```
    ///
    /// The message names the problem: an unknown key (with the closest known one), a missing
    /// `id` or `name`, a duplicate id, a `count` that does not match the list, a `group`, a
    /// `successors` or a `replaces` entry that names nothing, a `catalog` id used twice.
    PB5010 CATALOG_INVALID "catalog-invalid" Error "a control catalog file is not valid";
}

/// A group of controls: an AICPA series, an ISO Annex A section or theme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub category: Option<String>,
}

/// One control (or criterion) of a catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Control {
    pub id: String,
    /// A short name: a label for people. Never used for matching.
    pub name: String,
    pub group: Option<String>,
    pub category: Option<String>,
    /// SOC 2 CC1–CC5: the COSO 2013 principle the criterion restates.
    pub coso_principle: Option<u64>,
    /// ISO 27001:2013: the control objective (`A.x.y`) the control belongs to.
    pub objective: Option<String>,
    pub objective_name: Option<String>,
    /// In a catalog that has a successor edition: the successor's control ids this control
    /// corresponds to (`Some([])`: explicitly none).
    pub successors: Option<Vec<String>>,
    /// In a successor edition: the predecessor's control ids this control replaces.
    pub replaces: Option<Vec<String>>,
    /// New in this edition (no predecessor).
    pub new: bool,
    pub description: Option<String>,
    /// Where the control is defined (in the catalog file's source map).
    pub span: Span,
}

/// A control catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Catalog {
    /// The catalog's id (`soc2`, `iso27001-2013`, `iso27001-2022`).
    pub id: String,
    /// The framework (`SOC2`, `ISO27001`).
    pub framework: String,
    /// A title for people (`ISO/IEC 27001:2022 Annex A`); default `framework edition`.
    pub title: String,
    pub edition: String,
    /// Tag prefixes; the first is the canonical one (`ISO27001-` before `ISO27001:2022-`).
    pub tag_prefixes: Vec<String>,
    /// The catalog id of the edition that supersedes this one.
    pub superseded_by: Option<String>,
    pub groups: Vec<Group>,
    /// In catalog order (the framework's own order).
    pub controls: Vec<Control>,
    index: HashMap<String, usize>,
}

impl Catalog {
    /// The control with this id (exact, case-sensitive).
    pub fn control(&self, id: &str) -> Option<&Control> {
        self.index.get(id).and_then(|i| self.controls.get(*i))
    }

    /// The position of a control in catalog order.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The canonical tag of a control id (`SOC2-CC7.1`, `ISO27001-8.15`).
    pub fn tag(&self, id: &str) -> String {
        format!(
            "{}{id}",
            self.tag_prefixes.first().map(String::as_str).unwrap_or("")
        )
    }

    /// The controls whose `objective` is `objective`, in catalog order.
    pub fn objective_controls(&self, objective: &str) -> Vec<&Control> {
        self.controls
            .iter()
            .filter(|c| c.objective.as_deref() == Some(objective))
            .collect()
    }

    /// The group with this id.
    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// The successor ids of a control (2013 → 2022); empty if none or unknown.
    pub fn successors(&self, id: &str) -> &[String] {
        self.control(id)
            .and_then(|c| c.successors.as_deref())
            .unwrap_or(&[])
    }

    /// Reads a catalog document. Problems are `PB5010` diagnostics; `None` when the document
    /// is not usable as a catalog.
    pub fn from_node(root: &Node, diags: &mut Vec<Diagnostic>) -> Option<Catalog> {
        let mut r = Reader::new(&CATALOG_INVALID, diags);
        let fields = r.fields(
            root,
            "a catalog",
            &[
                "catalog",
                "framework",
                "title",
                "edition",
                "tag-prefixes",
                "superseded-by",
                "count",
                "groups",
                "controls",
            ],
        )?;
        let mut id = None;
        let mut framework = None;
        let mut edition = None;
        let mut title = None;
        let mut prefixes = None;
        let mut superseded_by = None;
        let mut count = None;
        let mut groups = Vec::new();
        let mut controls = Vec::new();
        let mut controls_span = None;
        let mut listed = 0;
        for (k, v, kspan) in fields {
            match k {
                "catalog" => id = r.text(v, "`catalog`"),
                "framework" => framework = r.text(v, "`framework`"),
                "edition" => edition = r.text(v, "`edition`"),
                "title" => title = r.text(v, "`title`"),
                "tag-prefixes" => prefixes = r.text_list(v, "`tag-prefixes`"),
                "superseded-by" => superseded_by = r.text(v, "`superseded-by`"),
                "count" => count = r.uint(v, "`count`").map(|n| (n, v.span)),
                "groups" => groups = read_groups(&mut r, v),
                "controls" => {
                    controls_span = Some(kspan);
                    listed = v.as_seq().map(<[Node]>::len).unwrap_or(0);
                    controls = read_controls(&mut r, v);
                }
                _ => {}
            }
        }
        let mut missing = |name: &str| {
            r.error(
                Span::point(root.span.file, root.span.start),
                format!("the catalog has no `{name}`"),
            )
        };
        let (Some(id), Some(framework)) = (id, framework) else {
            missing("catalog` or `framework");
            return None;
        };
        let prefixes: Vec<String> = prefixes
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.0)
            .collect();
        if prefixes.is_empty() {
            missing("tag-prefixes");
            return None;
        }
        if controls_span.is_none() {
            missing("controls");
            return None;
        }
        let mut index = HashMap::new();
        for (i, c) in controls.iter().enumerate() {
            if index.insert(c.id.clone(), i).is_some() {
                r.error(c.span, format!("control `{}` is listed twice", c.id));
            }
        }
        if let Some((n, span)) = count
            && n != listed as u64
        {
            r.error(
                span,
                format!("`count` says {n} controls, but the catalog lists {listed}"),
            );
        }
        let group_ids: BTreeSet<&str> = groups.iter().map(|g| g.id.as_str()).collect();
        if !groups.is_empty() {
            for c in &controls {
                if let Some(g) = &c.group
                    && !group_ids.contains(g.as_str())
                {
                    r.error(
                        c.span,
                        format!("control `{}` names group `{g}`, which is not listed", c.id),
                    );
                }
            }
        }
        if r.errors > 0 {
            return None;
        }
        let edition = edition.unwrap_or_default();
        Some(Catalog {
            id,
            title: title.unwrap_or_else(|| format!("{framework} {edition}").trim().to_string()),
            framework,
            edition,
            tag_prefixes: prefixes,
            superseded_by,
            groups,
            controls,
            index,
        })
    }
}

fn read_groups(r: &mut Reader<'_>, v: &Node) -> Vec<Group> {
    let Some(items) = v.as_seq() else {
        r.error(
            v.span,
            format!("`groups` must be a list, found {}", v.type_name()),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        let Some(fields) = r.fields(item, "a group", &["id", "name", "category"]) else {
            continue;
        };
        let (mut id, mut name, mut category) = (None, None, None);
        for (k, v, _) in fields {
            match k {
                "id" => id = r.text(v, "a group's `id`"),
                "name" => name = r.text(v, "a group's `name`"),
                "category" => category = r.text(v, "a group's `category`"),
                _ => {}
            }
        }
        match (id, name) {
            (Some(id), Some(name)) => out.push(Group { id, name, category }),
            _ => r.error(item.span, "a group needs an `id` and a `name`"),
        }
    }
    out
}

const CONTROL_KEYS: &[&str] = &[
    "id",
    "name",
    "group",
    "category",
    "coso-principle",
    "objective",
    "objective-name",
    "successors",
    "replaces",
    "new",
    "description",
];

fn read_controls(r: &mut Reader<'_>, v: &Node) -> Vec<Control> {
    let Some(items) = v.as_seq() else {
        r.error(
            v.span,
            format!("`controls` must be a list, found {}", v.type_name()),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        let Some(fields) = r.fields(item, "a control", CONTROL_KEYS) else {
            continue;
        };
        let mut c = Control {
            id: String::new(),
            name: String::new(),
            group: None,
            category: None,
            coso_principle: None,
            objective: None,
            objective_name: None,
            successors: None,
            replaces: None,
            new: false,
            description: None,
            span: item.span,
        };
        for (k, v, _) in fields {
            match k {
                "id" => {
                    if let Some(t) = r.text(v, "a control's `id`") {
                        c.id = t;
                        c.span = v.span;
                    }
                }
                "name" => c.name = r.text(v, "a control's `name`").unwrap_or_default(),
                "group" => c.group = r.text(v, "`group`"),
                "category" => c.category = r.text(v, "`category`"),
                "coso-principle" => c.coso_principle = r.uint(v, "`coso-principle`"),
                "objective" => c.objective = r.text(v, "`objective`"),
                "objective-name" => c.objective_name = r.text(v, "`objective-name`"),
                "successors" => {
                    c.successors = r
                        .text_list(v, "`successors`")
                        .map(|l| l.into_iter().map(|x| x.0).collect())
                }
                "replaces" => {
                    c.replaces = r
                        .text_list(v, "`replaces`")
                        .map(|l| l.into_iter().map(|x| x.0).collect())
                }
                "new" => c.new = r.boolean(v, "`new`").unwrap_or(false),
                "description" => c.description = r.text(v, "`description`"),
                _ => {}
            }
        }
        if c.id.is_empty() || c.name.is_empty() {
            r.error(item.span, "a control needs an `id` and a `name`");
            continue;
        }
        if c.id.chars().any(char::is_whitespace) {
            r.error(c.span, format!("control id `{}` contains a space", c.id));
            continue;
        }
        out.push(c);
    }
    out
}

/// The catalogs known to one invocation: the built-in ones and the organisation's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalogs {
    pub catalogs: Vec<Catalog>,
}

/// The catalog ids `pbc coverage` reports by default.
pub const DEFAULT_COVERAGE: &[&str] = &["soc2", "iso27001-2022"];

/// The built-in catalog files: (display name, text).
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    (
        "<builtin>/catalogs/soc2-tsc.yaml",
        include_str!("../catalogs/soc2-tsc.yaml"),
    ),
    (
        "<builtin>/catalogs/iso27001-2013.yaml",
        include_str!("../catalogs/iso27001-2013.yaml"),
    ),
    (
        "<builtin>/catalogs/iso27001-2022.yaml",
        include_str!("../catalogs/iso27001-2022.yaml"),
    ),
];

/// A loader for pbc's embedded data (its own source map, never mixed with user files).
pub(crate) fn builtin_loader() -> Loader {
    Loader::new(Arc::new(MemFs::new()), "", Limits::default())
}

impl Catalogs {
    /// The built-in catalogs (parsed once per process).
    pub fn builtin() -> &'static Catalogs {
        static CELL: OnceLock<Catalogs> = OnceLock::new();
        CELL.get_or_init(|| {
            let (cats, diags) = Catalogs::parse_builtin();
            // The embedded files are tested; a problem here is a bug in pbc, not in the input.
            assert!(diags.is_empty(), "built-in catalogs are invalid: {diags:?}");
            cats
        })
    }

    /// Parses the embedded catalog files (exposed for tests).
    pub fn parse_builtin() -> (Catalogs, Vec<Diagnostic>) {
        let loader = builtin_loader();
        let mut cats = Catalogs::default();
        let mut diags = Vec::new();
        for (name, text) in BUILTIN_FILES {
            cats.load_text(&loader, name, text, &mut diags);
        }
        cats.validate(&mut diags);
        (cats, diags)
    }

    /// Parses a catalog file's text through `loader` (so its spans are in the loader's source
    /// map) and adds the catalog. A catalog whose id is already known replaces it.
    pub fn load_text(
        &mut self,
        loader: &Loader,
        display: &str,
        text: &str,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<&Catalog> {
        let loaded = loader.load_text(display, text);
        diags.extend(loaded.diags.iter().cloned());
        if loaded.has_errors() {
            return None;
        }
        let Some(doc) = loaded.docs.first() else {
            diags.push(Diagnostic::new(
                &CATALOG_INVALID,
                Span::point(loaded.file.id, 0),
                "the catalog file is empty",
            ));
            return None;
        };
        let cat = Catalog::from_node(&doc.root, diags)?;
        Some(self.insert(cat))
    }

    /// Loads a catalog file from disk through `loader`.
    pub fn load_file(
        &mut self,
        loader: &Loader,
        path: &std::path::Path,
        diags: &mut Vec<Diagnostic>,
    ) -> Result<Option<&Catalog>, pbc_compiler::load::LoadError> {
        let loaded = loader.load(path)?;
        diags.extend(loaded.diags.iter().cloned());
        if loaded.has_errors() {
            return Ok(None);
        }
        let Some(doc) = loaded.docs.first() else {
            diags.push(Diagnostic::new(
                &CATALOG_INVALID,
                Span::point(loaded.file.id, 0),
                "the catalog file is empty",
            ));
            return Ok(None);
        };
        let Some(cat) = Catalog::from_node(&doc.root, diags) else {
            return Ok(None);
        };
        Ok(Some(self.insert(cat)))
    }

    fn insert(&mut self, cat: Catalog) -> &Catalog {
        let pos = match self.catalogs.iter().position(|c| c.id == cat.id) {
            Some(i) => {
                self.catalogs[i] = cat;
                i
            }
            None => {
                self.catalogs.push(cat);
                self.catalogs.len() - 1
            }
        };
        &self.catalogs[pos]
    }

    /// Cross-catalog checks: `superseded-by` names a catalog, every `successors` and
    /// `replaces` entry names a control of the other edition, and the two lists agree.
    pub fn validate(&self, diags: &mut Vec<Diagnostic>) {
        let mut r = Reader::new(&CATALOG_INVALID, diags);
        for old in &self.catalogs {
            let Some(new_id) = &old.superseded_by else {
                continue;
            };
            let Some(new) = self.get(new_id) else {
                r.error(
                    old.controls.first().map(|c| c.span).unwrap_or_default(),
                    format!(
                        "catalog `{}` is superseded by `{new_id}`, which is not loaded",
                        old.id
                    ),
                );
                continue;
            };
            for c in &old.controls {
                let Some(succ) = &c.successors else {
                    r.error(
                        c.span,
                        format!(
                            "control `{}` has no `successors` (write `successors: []` if it has none in `{}`)",
                            c.id, new.id
                        ),
                    );
                    continue;
                };
                for s in succ {
                    match new.control(s) {
                        None => r.error(
                            c.span,
                            format!(
                                "control `{}` names successor `{s}`, which `{}` does not define",
                                c.id, new.id
                            ),
                        ),
                        Some(n) => {
                            if !n.replaces.as_deref().unwrap_or(&[]).contains(&c.id) {
                                r.error(
                                    n.span,
                                    format!(
                                        "`{}` lists `{}` as successor of `{}`, but `{}` does not list `{}` in `replaces`",
                                        old.id, s, c.id, s, c.id
                                    ),
                                );
                            }
                        }
                    }
                }
            }
            for n in &new.controls {
                for p in n.replaces.as_deref().unwrap_or(&[]) {
                    match old.control(p) {
                        None => r.error(
                            n.span,
                            format!(
                                "control `{}` replaces `{p}`, which `{}` does not define",
                                n.id, old.id
                            ),
                        ),
                        Some(o) => {
                            if !o.successors.as_deref().unwrap_or(&[]).contains(&n.id) {
                                r.error(
                                    o.span,
                                    format!(
                                        "`{}` says `{}` replaces `{p}`, but `{p}` does not list `{}` in `successors`",
                                        new.id, n.id, n.id
                                    ),
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// The catalog with this id.
    pub fn get(&self, id: &str) -> Option<&Catalog> {
        self.catalogs.iter().find(|c| c.id == id)
    }

    /// The ids of every loaded catalog.
    pub fn ids(&self) -> Vec<&str> {
        self.catalogs.iter().map(|c| c.id.as_str()).collect()
    }

    /// The successor controls of a control (`A.14.2.1` → `8.25`), resolved.
    pub fn successors_of<'a>(
        &'a self,
        catalog: &'a Catalog,
        id: &str,
    ) -> Vec<(&'a Catalog, &'a Control)> {
        let Some(new) = catalog.superseded_by.as_deref().and_then(|n| self.get(n)) else {
            return Vec::new();
        };
        catalog
            .successors(id)
            .iter()
            .filter_map(|s| new.control(s).map(|c| (new, c)))
            .collect()
    }

    /// The catalogs `pbc coverage` reports, in load order: the requested ones; with none
    /// requested, the defaults ([`DEFAULT_COVERAGE`]); when only catalogs outside the
    /// defaults are requested (`iso27001-2013`, an organisation's), the defaults and those.
    /// Unknown ids are an `Err` naming them and the known ones.
    pub fn select(&self, requested: &[String]) -> Result<Vec<&Catalog>, String> {
        let adds_only = requested
            .iter()
            .all(|r| !DEFAULT_COVERAGE.contains(&r.as_str()));
        let mut want: Vec<&str> = if adds_only {
            DEFAULT_COVERAGE.to_vec()
        } else {
            Vec::new()
        };
        for r in requested {
            if self.get(r).is_none() {
                let known = self.ids();
                let hint = pbc_compiler::diag::did_you_mean(r, known.iter().copied())
                    .map(|s| format!("did you mean `{s}`? "))
                    .unwrap_or_default();
                return Err(format!(
                    "unknown catalog `{r}`; {hint}known catalogs: {}",
                    pbc_compiler::diag::one_of(&known)
                ));
            }
            want.push(r);
        }
        Ok(self
            .catalogs
            .iter()
            .filter(|c| want.contains(&c.id.as_str()))
            .collect())
    }
}
