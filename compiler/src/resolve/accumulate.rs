//! The build of one kustomization: its resources (files, and bases built completely first,
//! in parallel), its components, then its patches and transformers in kustomize's order.

use super::*;

#[derive(Default)]
pub(super) struct Acc {
    pub(super) res: Vec<Res>,
    pub(super) diags: Vec<Diagnostic>,
    pub(super) files: Vec<PathBuf>,
    pub(super) includes: Vec<(PathBuf, Span)>,
    /// The name-reference field specs of every `configurations` in the build so far
    /// (kustomize merges them up to the top, where references are fixed).
    pub(super) name_refs: Vec<fieldspec::NameRef>,
    /// The OpenAPI schema in effect (kustomize's, set once per build).
    pub(super) schema: schema::SchemaState,
    /// Whether a strategic merge ran, and one ran while no schema was set.
    pub(super) merged: bool,
    pub(super) merged_unset: bool,
}

impl Acc {
    pub(super) fn add_name_refs(&mut self, refs: &[fieldspec::NameRef], at: Span) {
        if let Err(d) = config::merge_refs(&mut self.name_refs, refs, at) {
            self.diags.push(*d);
        }
    }

    pub(super) fn merge_meta(&mut self, other: &mut Acc) {
        let refs = std::mem::take(&mut other.name_refs);
        self.add_name_refs(&refs, Span::default());
        self.diags.append(&mut other.diags);
        self.files.append(&mut other.files);
        self.includes.append(&mut other.includes);
    }
}

/// A kustomization being built, for cycle detection.
#[derive(Clone)]
pub(super) struct Frame {
    pub(super) canon: PathBuf,
    pub(super) display: PathBuf,
    /// The entry that included it (none for the top).
    pub(super) via: Option<Span>,
}

pub(super) struct Ctx<'a> {
    pub(super) loader: &'a Loader,
    pub(super) opts: &'a ResolveOptions,
    pub(super) uid: AtomicU64,
    pub(super) budget: budget::Budget,
    /// Origins are tracked (the top kustomization has `buildMetadata`), and written out
    /// (it lists `originAnnotations`).
    pub(super) origin_on: std::sync::atomic::AtomicBool,
    pub(super) keep_origin: std::sync::atomic::AtomicBool,
    /// Something ties documents to each other ([`Resolution::separable`] is false).
    pub(super) cross: std::sync::atomic::AtomicBool,
}

/// The kustomization being accumulated: its directory and root.
pub(super) struct KDir<'k> {
    pub(super) kust: &'k Kust,
    pub(super) dir: PathBuf,
    /// The canonical root for the load restrictor.
    pub(super) root: PathBuf,
    pub(super) file: crate::span::FileId,
    /// Its directory as kustomize's origin annotations name it: relative to the directory
    /// built.
    pub(super) origin: String,
}

impl<'a> Ctx<'a> {
    /// Builds the kustomization in `dir` on a fresh accumulator.
    pub(super) fn build_dir(
        &self,
        dir: &Path,
        stack: &[Frame],
        via: Option<Span>,
        expect: KustKind,
        inherited: &schema::SchemaState,
        origin: String,
    ) -> (Acc, Option<SortSpec>) {
        let mut acc = Acc {
            schema: inherited.clone(),
            ..Acc::default()
        };
        let Some((kust, kd_dir, file)) = self.load_kust(dir, via, expect, &mut acc) else {
            return (acc, None);
        };
        let mut stack2 = stack.to_vec();
        let canon = self.canon(dir);
        stack2.push(Frame {
            canon: canon.clone(),
            display: dir.to_path_buf(),
            via,
        });
        if stack.is_empty() {
            self.top_build_metadata(&kust, &mut acc);
        }
        let kd = KDir {
            kust: &kust,
            dir: kd_dir,
            root: canon,
            file,
            origin,
        };
        self.accumulate(&kd, &mut acc, &stack2);
        (acc, kust.sort.clone())
    }

    /// Finds, loads and reads a directory's kustomization, checking its kind.
    pub(super) fn load_kust(
        &self,
        dir: &Path,
        via: Option<Span>,
        expect: KustKind,
        acc: &mut Acc,
    ) -> Option<(Kust, PathBuf, crate::span::FileId)> {
        // Like kustomize, a kustomization's own paths are taken from its real directory
        // (symbolic links resolved): `../../base` in an overlay reached through a link
        // names the base next to the real overlay.
        let real = self.canon(dir);
        let Some(kfile) = find_kustomization(self.loader, &real) else {
            if let Some(v) = via {
                acc.diags.push(
                    Diagnostic::new(
                        &NO_KUSTOMIZATION,
                        v,
                        format!(
                            "the directory `{}` holds no kustomization.yaml, kustomization.yml or Kustomization",
                            self.display(dir)
                        ),
                    )
                    .with_help("list the files of the directory one by one, or add a kustomization.yaml to it"),
                );
            }
            return None;
        };
        let loaded = match self.loader.load(&kfile) {
            Ok(l) => l,
            Err(e) => {
                if let Some(v) = via {
                    acc.diags.push(load_error(v, &e));
                }
                return None;
            }
        };
        acc.files.push(kfile.clone());
        acc.diags.extend(loaded.diags.iter().cloned());
        let file = loaded.file.id;
        let root = loaded
            .docs
            .iter()
            .find(|d| !d.root.is_null())
            .map(|d| d.root.clone())
            .unwrap_or_else(|| Node::null(Span::point(file, 0)));
        if loaded.has_errors() && root.is_null() {
            return None;
        }
        let kust = kust::parse(&root, Span::point(file, 0), &mut acc.diags)?;
        if !(kust.replacements.is_empty()
            && kust.generators.is_empty()
            && kust.configurations.is_empty()
            && kust.generator_configs.is_empty()
            && kust.transformer_configs.is_empty())
        {
            self.cross.store(true, AtomicOrdering::Relaxed);
        }
        if kust.kind != expect
            && let Some(v) = via
        {
            let msg = match kust.kind {
                KustKind::Component => format!(
                    "`{}` is a Component; list it under `components:`, not `resources:`",
                    self.display(dir)
                ),
                KustKind::Kustomization => format!(
                    "`{}` is a Kustomization, not a Component; list it under `resources:`, not `components:`",
                    self.display(dir)
                ),
            };
            acc.diags.push(
                Diagnostic::new(&INVALID_KUSTOMIZATION, v, msg)
                    .with_help("a Component (`kind: Component`) runs inside the kustomization that lists it under `components:`; a Kustomization is built on its own and listed under `resources:`"),
            );
            return None;
        }
        Some((kust, real, file))
    }

    /// Cycle and depth checks before entering `dir`. `Err` carries the diagnostic.
    pub(super) fn check_enter(
        &self,
        dir: &Path,
        r: &PathRef,
        stack: &[Frame],
    ) -> Result<(), Box<Diagnostic>> {
        if stack.len() >= self.opts.max_depth {
            return Err(Box::new(Diagnostic::new(
                &TOO_DEEP,
                r.span,
                format!(
                    "kustomizations nest more than {} levels deep",
                    self.opts.max_depth
                ),
            )));
        }
        let cand = self.canon(dir);
        if let Some(i) = stack.iter().position(|f| f.canon.starts_with(&cand)) {
            let visited = &stack[i];
            let mut chain: Vec<String> = stack[i..]
                .iter()
                .map(|f| self.display(&f.display))
                .collect();
            chain.push(self.display(dir));
            let msg = if visited.canon == cand {
                format!(
                    "kustomizations include each other in a cycle: {}",
                    chain.join(" → ")
                )
            } else {
                format!(
                    "`{}` contains `{}`, which is being built: a kustomization cannot include its own directory or one above it",
                    r.text,
                    self.display(&stack[stack.len() - 1].display)
                )
            };
            let mut d = Diagnostic::new(&CYCLE, r.span, msg)
                .with_label_text(format!("includes `{}`", self.display(dir)));
            for (j, f) in stack.iter().enumerate().skip(i + 1) {
                if let Some(v) = f.via {
                    d = d.with_label(
                        v,
                        format!(
                            "`{}` includes `{}`",
                            self.display(&stack[j - 1].display),
                            self.display(&f.display)
                        ),
                    );
                }
            }
            return Err(Box::new(d.with_help(
                "remove one of the includes so that the kustomizations form a tree",
            )));
        }
        Ok(())
    }

    pub(super) fn new_res(&self, node: Node, nodes: u64) -> Res {
        let orig = ResId::of(&node);
        let name_spans = node
            .get_path(&["metadata", "name"])
            .map(|n| vec![n.span])
            .unwrap_or_default();
        Res {
            node,
            orig,
            prev: Vec::new(),
            uid: self.uid.fetch_add(1, AtomicOrdering::Relaxed),
            name_spans,
            quiet: Vec::new(),
            removed: Vec::new(),
            nodes,
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            needs_hash: false,
        }
    }

    /// One entry of `resources:`: a file or a directory, built on its own accumulator.
    pub(super) fn resource_entry(
        &self,
        kd: &KDir<'_>,
        r: &PathRef,
        stack: &[Frame],
        schema: &schema::SchemaState,
    ) -> Acc {
        let mut acc = Acc::default();
        if looks_remote(&r.text) {
            acc.diags.push(self.remote(r));
            return acc;
        }
        let path = normalize(&kd.dir.join(&r.text));
        let meta = match self.loader.metadata(&path) {
            Ok(m) => m,
            Err(_) => {
                acc.diags.push(if looks_remote_host(&r.text) {
                    self.remote(r)
                } else {
                    self.missing(r, &path, "the resource")
                });
                return acc;
            }
        };
        if meta.kind == FileKind::Dir {
            if let Err(d) = self.check_enter(&path, r, stack) {
                acc.diags.push(*d);
                return acc;
            }
            acc.includes.push((path.clone(), r.span));
            let (mut sub, _) = self.build_dir(
                &path,
                stack,
                Some(r.span),
                KustKind::Kustomization,
                schema,
                origin::join(&kd.origin, &r.text),
            );
            acc.merge_meta(&mut sub);
            acc.res = sub.res;
            acc.schema = sub.schema;
            acc.merged = sub.merged;
            acc.merged_unset = sub.merged_unset;
            return acc;
        }
        if let Some(only) = &self.opts.only
            && self.loader.resolve(&path) != *only
        {
            return acc;
        }
        if let Some(d) = self.check_root(kd, r, &path) {
            acc.diags.push(d);
            return acc;
        }
        let loaded = match self.loader.load(&path) {
            Ok(l) => l,
            Err(e) => {
                acc.diags.push(load_error(r.span, &e));
                return acc;
            }
        };
        acc.files.push(path);
        acc.diags.extend(loaded.diags.iter().cloned());
        // kustomize expands a `…List` with `items` into its items, appended after the
        // file's other documents.
        let mut queue: std::collections::VecDeque<(Node, u64)> = loaded
            .docs
            .iter()
            .map(|d| (d.root.clone(), d.nodes))
            .collect();
        while let Some((root, nodes)) = queue.pop_front() {
            let root = &root;
            if root.is_null() {
                continue;
            }
            if root.as_map().is_none() {
                acc.diags.push(Diagnostic::new(
                    &INVALID_RESOURCE,
                    root.span,
                    format!("a resource must be a mapping, not {}", root.type_name()),
                ));
                continue;
            }
            if root
                .get("kind")
                .and_then(|k| k.as_str())
                .is_none_or(str::is_empty)
            {
                acc.diags.push(
                    Diagnostic::new(
                        &INVALID_RESOURCE,
                        root.span.sub(0, 0),
                        "this resource has no `kind`",
                    )
                    .with_help("every resource needs `apiVersion`, `kind` and `metadata.name`"),
                );
                continue;
            }
            if root
                .get("kind")
                .and_then(Node::as_str)
                .is_some_and(|k| k.ends_with("List"))
                && let Some(items) = root.get("items")
            {
                match items.as_seq() {
                    Some(list) => {
                        queue.extend(list.iter().map(|i| (i.clone(), i.count() as u64)));
                    }
                    None if items.is_null() => {}
                    None => acc.diags.push(Diagnostic::new(
                        &INVALID_RESOURCE,
                        items.span,
                        format!(
                            "`items` of a list must be a list, not {}",
                            items.type_name()
                        ),
                    )),
                }
                continue;
            }
            if root
                .get_path(&["metadata", "name"])
                .and_then(|n| n.as_scalar())
                .is_none_or(|s| s.text.is_empty())
            {
                let at = root
                    .entry("metadata")
                    .map(|e| e.key.span)
                    .unwrap_or(root.span.sub(0, 0));
                acc.diags.push(
                    Diagnostic::new(
                        &INVALID_RESOURCE,
                        at,
                        "this resource has no `metadata.name`",
                    )
                    .with_help("every resource needs `apiVersion`, `kind` and `metadata.name`"),
                );
                continue;
            }
            let mut root = root.clone();
            if self.origin_on.load(AtomicOrdering::Relaxed) {
                match origin::of_path(&origin::join(&kd.origin, &r.text)) {
                    Some(text) => origin::annotate(&mut root, &text, r.span, false),
                    None => acc.diags.push(origin::unwritable(r.span)),
                }
            }
            acc.res.push(self.new_res(root, nodes));
        }
        acc
    }

    /// Adds a resource whose current id is `id`, refusing a duplicate id. `index` maps the
    /// [`ResId::key`] of every resource of `acc` to its position.
    pub(super) fn append_id(
        &self,
        acc: &mut Acc,
        index: &mut HashMap<ResId, usize>,
        res: Res,
        id: ResId,
        entry: Span,
    ) {
        let key = id.clone().key();
        if let Some(first) = index.get(&key).map(|&i| &acc.res[i]) {
            let mut d = Diagnostic::new(
                &DUPLICATE_RESOURCE,
                entry,
                format!("{} is defined twice", id.describe()),
            )
            .with_label_text("adds it a second time");
            if let Some(n) = first.name_node() {
                d = d.with_label(n.span, "first defined here");
            }
            if let Some(n) = res.name_node() {
                d = d.with_label(n.span, "defined again here");
            }
            acc.diags.push(d.with_help(
                "two resources may not share group, version, kind, namespace and name: rename one, or include the file once",
            ));
            return;
        }
        index.insert(key, acc.res.len());
        acc.res.push(res);
    }

    pub(super) fn accumulate(&self, kd: &KDir<'_>, acc: &mut Acc, stack: &[Frame]) {
        if self.budget.exceeded() {
            return;
        }
        let k = kd.kust;
        self.open_schema(kd, acc, stack.len() <= 1);
        let config = self.load_config(kd, acc);
        let config_span = k.configurations.first().map(|p| p.span).unwrap_or_default();
        acc.add_name_refs(&config.name_reference, config_span);
        // 1. Resources, each built independently (in parallel), appended in order.
        let subs: Vec<(Acc, Vec<ResId>)> = k
            .resources
            .par_iter()
            .map(|r| {
                let sub = self.resource_entry(kd, r, stack, &acc.schema);
                let ids = sub.res.iter().map(Res::cur).collect();
                (sub, ids)
            })
            .collect();
        let mut index: HashMap<ResId, usize> =
            HashMap::with_capacity(acc.res.len() + k.resources.len());
        for (i, r) in acc.res.iter().enumerate() {
            index.entry(r.cur().key()).or_insert(i);
        }
        let mut nodes: u64 = acc.res.iter().map(|r| r.nodes).sum();
        let mut stopped = false;
        let entry_unset = acc.schema.is_unset();
        for (r, (mut sub, ids)) in k.resources.iter().zip(subs) {
            if entry_unset {
                self.follow_schema(acc, &sub, r.span);
            }
            acc.merged |= sub.merged;
            // The findings of every entry are kept, also past a budget (one of them may be
            // the budget's finding, from a build in parallel).
            acc.merge_meta(&mut sub);
            if stopped {
                continue;
            }
            nodes = nodes.saturating_add(sub.res.iter().map(|r| r.nodes).sum());
            for (res, id) in sub.res.into_iter().zip(ids) {
                self.append_id(acc, &mut index, res, id, r.span);
            }
            stopped = self.over_budget(kd, r.span, acc, nodes);
        }
        if stopped || self.budget.exceeded() {
            acc.res.clear();
            return;
        }
        // 2. Components, run on everything accumulated so far.
        for c in &k.components {
            if looks_remote(&c.text) {
                acc.diags.push(self.remote(c));
                continue;
            }
            let path = normalize(&kd.dir.join(&c.text));
            match self.loader.metadata(&path) {
                Ok(m) if m.kind == FileKind::Dir => {}
                Ok(_) => {
                    acc.diags.push(Diagnostic::new(
                        &INVALID_KUSTOMIZATION,
                        c.span,
                        format!("a component must be a directory with a `kind: Component` kustomization; `{}` is a file", c.text),
                    ));
                    continue;
                }
                Err(_) => {
                    acc.diags.push(self.missing(c, &path, "the component"));
                    continue;
                }
            }
            if let Err(d) = self.check_enter(&path, c, stack) {
                acc.diags.push(*d);
                continue;
            }
            acc.includes.push((path.clone(), c.span));
            let Some((ckust, cdir, cfile)) =
                self.load_kust(&path, Some(c.span), KustKind::Component, acc)
            else {
                continue;
            };
            let canon = self.canon(&path);
            let mut stack2 = stack.to_vec();
            stack2.push(Frame {
                canon: canon.clone(),
                display: path.clone(),
                via: Some(c.span),
            });
            let ckd = KDir {
                kust: &ckust,
                dir: cdir,
                root: canon,
                file: cfile,
                origin: origin::join(&kd.origin, &c.text),
            };
            self.accumulate(&ckd, acc, &stack2);
            if self.budget.exceeded() {
                return;
            }
        }
        // 3. Generators.
        self.run_generators(kd, acc);
        self.run_configs(kd, &k.generator_configs, true, acc, stack);
        // 4. Patches and 5. transformers, then the `transformers` configurations.
        if self.transform(kd, &config, acc) {
            self.run_configs(kd, &k.transformer_configs, false, acc, stack);
        }
    }

    /// The resource and node budgets after the `resources:` entry at `entry` was added:
    /// over one, the finding (from the first to notice), the accumulated resources
    /// dropped, and true.
    pub(super) fn over_budget(
        &self,
        kd: &KDir<'_>,
        entry: Span,
        acc: &mut Acc,
        nodes: u64,
    ) -> bool {
        let b = &self.budget;
        let finding = if acc.res.len() > b.max_resources {
            Some(b.too_many_resources(entry, &self.display(&kd.dir), acc.res.len()))
        } else if nodes > b.max_nodes {
            Some(b.too_many_nodes(
                entry,
                format!("with this entry, the build of `{}`", self.display(&kd.dir)),
            ))
        } else {
            None
        };
        let Some(d) = finding else {
            return b.exceeded();
        };
        if b.trip() {
            acc.diags.push(d);
        }
        acc.res.clear();
        true
    }
}
