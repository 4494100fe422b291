//! Patches: strategic-merge and JSON 6902 patches, inline or from files, and the target
//! selection that says which resources each applies to.

use super::*;

impl Ctx<'_> {
    /// Loads a patch's documents (inline or from a file).
    pub(super) fn patch_docs(
        &self,
        kd: &KDir<'_>,
        p: &PatchSpec,
        acc: &mut Acc,
    ) -> Option<Vec<Node>> {
        let (docs, span) = match &p.source {
            PatchSource::Inline(n) => {
                let file = self.loader.sources.get(kd.file)?;
                let (docs, diags) = inline::parse_inline(&file, n, &self.loader.limits);
                acc.diags.extend(diags);
                (docs, n.span)
            }
            PatchSource::Path(r) => {
                if looks_remote(&r.text) {
                    acc.diags.push(self.remote(r));
                    return None;
                }
                let path = normalize(&kd.dir.join(&r.text));
                match self.loader.metadata(&path) {
                    Ok(m) if m.kind == FileKind::File => {}
                    Ok(_) => {
                        acc.diags.push(Diagnostic::new(
                            &INVALID_PATCH,
                            r.span,
                            format!("the patch `{}` is a directory, not a file", r.text),
                        ));
                        return None;
                    }
                    Err(_) => {
                        acc.diags.push(self.missing(r, &path, "the patch file"));
                        return None;
                    }
                }
                if let Some(d) = self.check_root(kd, r, &path) {
                    acc.diags.push(d);
                    return None;
                }
                let loaded = match self.loader.load(&path) {
                    Ok(l) => l,
                    Err(e) => {
                        acc.diags.push(load_error(r.span, &e));
                        return None;
                    }
                };
                acc.files.push(path);
                acc.diags.extend(loaded.diags.iter().cloned());
                (loaded.docs.clone(), r.span)
            }
        };
        let roots: Vec<Node> = docs
            .into_iter()
            .map(|d| d.root)
            .filter(|r| !r.is_null())
            .collect();
        if roots.is_empty() {
            acc.diags
                .push(Diagnostic::new(&INVALID_PATCH, span, "the patch is empty"));
            return None;
        }
        Some(roots)
    }

    pub(super) fn patch(
        &self,
        kd: &KDir<'_>,
        p: &PatchSpec,
        acc: &mut Acc,
        merged: &mut HashMap<u64, Span>,
    ) {
        let Some(roots) = self.patch_docs(kd, p, acc) else {
            return;
        };
        let is_json = roots[0].as_seq().is_some();
        match (is_json, p.field) {
            (true, PatchField::StrategicMerge) => {
                acc.diags.push(
                    Diagnostic::new(
                        &INVALID_PATCH,
                        roots[0].span,
                        "`patchesStrategicMerge` holds a JSON patch (a list of operations)",
                    )
                    .with_help("list JSON patches under `patches:` with a `target`"),
                );
                return;
            }
            (false, PatchField::Json6902) => {
                acc.diags.push(
                    Diagnostic::new(
                        &INVALID_PATCH,
                        roots[0].span,
                        "`patchesJson6902` holds a strategic-merge patch, not a list of operations",
                    )
                    .with_help("list strategic-merge patches under `patches:`"),
                );
                return;
            }
            _ => {}
        }
        if is_json {
            if roots.len() > 1 {
                acc.diags.push(Diagnostic::new(
                    &INVALID_PATCH,
                    roots[1].span,
                    "a JSON patch is one list of operations; this second document is ignored",
                ));
            }
            let Some(ops) = parse_ops(&roots[0], &mut acc.diags) else {
                return;
            };
            // A copy or a move carries one part of a document into another (its labels, say,
            // which later targets select on): not a change of ids, labels and annotations
            // alone.
            if ops
                .iter()
                .any(|o| matches!(o.kind, OpKind::Copy | OpKind::Move))
            {
                self.cross.store(true, AtomicOrdering::Relaxed);
            }
            let Some(target) = &p.target else {
                acc.diags.push(
                    Diagnostic::new(&INVALID_PATCH, p.span, "a JSON patch needs a `target`")
                        .with_help(
                            "add `target:` with the `kind` and `name` of the resources to patch",
                        ),
                );
                return;
            };
            // Each selected resource is patched on its own (in parallel); the problems are
            // reported in resource order.
            let merged = &*merged;
            // The node budget: what each operation adds, charged as it runs.
            let values: Vec<(u64, usize)> = ops
                .iter()
                .map(|o| {
                    o.value
                        .as_ref()
                        .map_or((0, 0), |v| (v.count() as u64, v.depth()))
                })
                .collect();
            let max_depth = self.loader.limits.max_depth;
            let base: u64 = acc.res.iter().map(|r| r.nodes).sum();
            let grown = AtomicU64::new(0);
            let max_nodes = self.budget.max_nodes;
            let per_res: Vec<Vec<Diagnostic>> = acc
                .res
                .par_iter_mut()
                .filter(|r| selects(r, target))
                .map(|r| {
                let mut diags = Vec::new();
                if let Some(ms) = merged.get(&r.uid) {
                    for op in &ops {
                        for (ptr, span) in std::iter::once((&op.path, op.path_span))
                            .chain(op.from.as_ref().map(|(f, s)| (f, *s)))
                        {
                            if stage_index(ptr) {
                                diags.push(
                                    Diagnostic::new(
                                        &STAGE_INDEX_AFTER_MERGE,
                                        span,
                                        format!("`{ptr}` addresses a stage by index after a strategic merge on the stages of {}", r.cur().describe()),
                                    )
                                    .with_label(*ms, "the stages are merged here")
                                    .with_help("the merge may add, delete or reorder stages; patch the stage by name with a strategic-merge patch instead"),
                                );
                            }
                        }
                    }
                }
                r.store_prev();
                let before_name = r.name_node().map(|n| n.span);
                // kustomize's resources always carry (internal) annotations while patches
                // run, so an op may add under `/metadata/annotations` of a resource that
                // has none; and it writes annotations back as strings, dropping an empty map.
                let md_span = r.node.get("metadata").map(|m| m.span).unwrap_or_default();
                let had_annotations = r.node.get_path(&["metadata", "annotations"]).is_some();
                if !had_annotations && let Some(md) = metadata_mut(&mut r.node, md_span) {
                    set_entry(
                        md,
                        Node::string(md_span, "annotations"),
                        Node::map(md_span, Vec::new()),
                    );
                }
                let mut added = 0u64;
                let charge = |cost: Option<u64>| {
                    let Some(c) = cost else { return false };
                    added = added.saturating_add(c);
                    let before = grown.fetch_add(c, AtomicOrdering::Relaxed);
                    base.saturating_add(before).saturating_add(c) <= max_nodes
                };
                let removals = json_removals(&r.node, &ops);
                let result = budget::apply_json(&mut r.node, &ops, &values, charge, max_nodes, max_depth);
                if result.is_ok() {
                    r.nodes = r.nodes.saturating_add(added);
                    r.removed.extend(removals);
                }
                if let Some(md) = r
                    .node
                    .as_map_mut()
                    .and_then(|m| m.iter_mut().find(|e| e.key_str() == "metadata"))
                {
                    for (key, span, found) in normalize_annotations(&mut md.value, false) {
                        diags.push(collection_annotation(&key, span, found));
                    }
                }
                let result = match result {
                    Ok(()) => Ok(()),
                    Err(budget::JsonStop::Failed(e)) => Err(e),
                    Err(budget::JsonStop::TooDeep(i)) => {
                        diags.push(
                            Diagnostic::new(
                                &crate::yaml::NESTING_TOO_DEEP,
                                ops[i].span,
                                format!("this `{}` operation would nest {} deeper than {max_depth} levels (`limits.max-depth`); the resource is left unpatched", ops[i].kind.as_str(), r.cur().describe()),
                            )
                            .with_help("nest less (every later step walks the whole depth)"),
                        );
                        return diags;
                    }
                    Err(budget::JsonStop::OverBudget(i)) => {
                        if self.budget.trip() {
                            let what = format!("this `{}` operation on {}", ops[i].kind.as_str(), r.cur().describe());
                            diags.push(self.budget.too_many_nodes(ops[i].span, what));
                        }
                        return diags;
                    }
                };
                if let Err(e) = result {
                    let op = &ops[e.index];
                    let span = if e.in_from {
                        op.from.as_ref().map(|f| f.1).unwrap_or(op.path_span)
                    } else {
                        op.path_span
                    };
                    diags.push(
                        Diagnostic::new(
                            &JSON_PATCH_FAILED,
                            span,
                            format!("the `{}` operation failed on {}: {}", op.kind.as_str(), r.cur().describe(), e.message),
                        )
                        .with_help("the path is read against the resource as the earlier patches left it; the resource is left unpatched"),
                    );
                    return diags;
                }
                let after = r.name_node().map(|n| n.span);
                if after != before_name
                    && let Some(s) = after
                {
                    r.name_spans.push(s);
                }
                diags
                })
                .collect();
            if per_res.is_empty() {
                acc.diags.push(nothing_selected(target));
            }
            acc.diags.extend(per_res.into_iter().flatten());
            return;
        }
        for doc in &roots {
            if doc.as_map().is_none() {
                acc.diags.push(Diagnostic::new(
                    &INVALID_PATCH,
                    doc.span,
                    format!(
                        "a strategic-merge patch must be a mapping, not {}",
                        doc.type_name()
                    ),
                ));
                continue;
            }
            let sel: Vec<usize> = match &p.target {
                Some(t) => {
                    let s = select(&acc.res, t);
                    if s.is_empty() {
                        acc.diags.push(nothing_selected(t));
                    }
                    s
                }
                None => {
                    let pid = ResId::of(doc);
                    let hits: Vec<usize> = acc
                        .res
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| {
                            std::iter::once(&r.orig)
                                .chain(&r.prev)
                                .any(|id| id.equals(&pid))
                                || r.cur().equals(&pid)
                        })
                        .map(|(i, _)| i)
                        .collect();
                    if hits.len() != 1 {
                        acc.diags
                            .push(self.no_match(doc, &pid, hits.len(), p, &acc.res));
                        continue;
                    }
                    hits
                }
            };
            let mut deleted = Vec::new();
            let doc_nodes = doc.count() as u64;
            for i in sel {
                let r = &mut acc.res[i];
                // A merge adds at most the patch's own nodes.
                r.nodes = r.nodes.saturating_add(doc_nodes);
                let playbook = r.is_playbook();
                let keep = |n: &Node, path: &[&str]| n.get_path(path).cloned();
                let api = keep(&r.node, &["apiVersion"]);
                let kind = keep(&r.node, &["kind"]);
                let name = keep(&r.node, &["metadata", "name"]);
                let ns = keep(&r.node, &["metadata", "namespace"]);
                if p.allow_name_change || p.allow_kind_change {
                    r.store_prev();
                }
                let rid = ResId::of(&r.node);
                let Ok(sch) = acc.schema.for_merge(&rid.api_version(), &rid.kind) else {
                    let d = self.ambiguous_schema(p.span, &rid);
                    acc.diags.push(d);
                    continue;
                };
                acc.merged = true;
                acc.merged_unset |= acc.schema.is_unset();
                let m = smp::merge_resource(&mut r.node, doc, playbook, sch);
                if m.deleted || r.node.as_map().is_none_or(|m| m.is_empty()) {
                    deleted.push(i);
                    continue;
                }
                restore(&mut r.node, &["apiVersion"], api);
                if !p.allow_kind_change {
                    restore(&mut r.node, &["kind"], kind);
                }
                if !p.allow_name_change {
                    restore(&mut r.node, &["metadata", "name"], name);
                } else if let Some(n) = r.name_node()
                    && name.as_ref().is_none_or(|o| o.span != n.span)
                {
                    r.name_spans.push(n.span);
                }
                restore(&mut r.node, &["metadata", "namespace"], ns);
                if let Some(s) = m.stages_touched {
                    merged.insert(r.uid, s);
                }
                r.removed.extend(m.removed);
                for u in m.unknown_stages {
                    r.quiet.push(u.stage_span);
                    acc.diags.push(unknown_stage(&u, &r.cur().describe()));
                }
                for (n, s) in m.unknown_order {
                    acc.diags.push(
                        Diagnostic::new(
                            &UNKNOWN_ORDERED_STAGE,
                            s,
                            format!("`$setElementOrder/stages` names `{n}`, which is not a stage of {}", r.cur().describe()),
                        )
                        .with_help("list only existing stage names; the rest keep their order after the listed ones"),
                    );
                }
            }
            for i in deleted.into_iter().rev() {
                acc.res.remove(i);
            }
        }
        let total: u64 = acc.res.iter().map(|r| r.nodes).sum();
        if total > self.budget.max_nodes && self.budget.trip() {
            acc.diags.push(
                self.budget
                    .too_many_nodes(p.span, "this strategic-merge patch".to_string()),
            );
        }
    }

    pub(super) fn no_match(
        &self,
        doc: &Node,
        pid: &ResId,
        n: usize,
        p: &PatchSpec,
        res: &[Res],
    ) -> Diagnostic {
        let at = doc
            .get_path(&["metadata", "name"])
            .map(|n| n.span)
            .unwrap_or(doc.span.sub(0, 0));
        if n > 1 {
            return Diagnostic::new(
                &PATCH_NO_MATCH,
                at,
                format!(
                    "this strategic-merge patch matches {n} resources named {}",
                    pid.describe()
                ),
            )
            .with_label(p.span, "patch listed here")
            .with_help("add a `target:` to the patch entry to choose the resources");
        }
        let mut d = Diagnostic::new(
            &PATCH_NO_MATCH,
            at,
            format!(
                "no resource matches this strategic-merge patch for {} ({})",
                pid.describe(),
                pid.api_version()
            ),
        )
        .with_label(p.span, "patch listed here");
        let names: Vec<Text> = res
            .iter()
            .filter(|r| r.cur().same_gvk(pid) || r.orig.same_gvk(pid))
            .flat_map(|r| std::iter::once(r.orig.name.clone()).chain(std::iter::once(r.cur().name)))
            .collect();
        if let Some(s) = did_you_mean(&pid.name, names.iter().map(Text::as_str)) {
            d = d.with_help(format!("did you mean `{s}`?")).with_fix(
                format!("use `{s}`"),
                vec![crate::diag::Edit {
                    span: at,
                    text: s.to_string(),
                }],
            );
        } else {
            d = d.with_help("a patch without `target` applies to the resource with its apiVersion, kind and name; check them, or add a `target:`");
        }
        d
    }
}

/// A patch stage that names no base stage and has no executor (see [`smp::UnknownStage`]).
pub(super) fn unknown_stage(u: &smp::UnknownStage, resource: &str) -> Diagnostic {
    /// Labels at the base's stages: enough to see them, bounded for huge playbooks.
    const MAX_LABELS: usize = 12;
    let best = did_you_mean(&u.name, u.base.iter().map(|(n, _)| n.as_str()));
    let message = match best {
        Some(b) => format!(
            "patch names stage `{}`, which the base does not have; did you mean `{b}`?",
            u.name
        ),
        None => format!(
            "patch names stage `{}`, which the base does not have",
            u.name
        ),
    };
    let mut d = Diagnostic::new(&UNKNOWN_PATCH_STAGE, u.name_span, message)
        .with_label_text("no base stage has this name")
        .with_help(format!(
            "stages merge by `name`, so this one would be appended to {resource} as a new stage with neither `agent` nor `action`; fix the name, or give the new stage an `agent` or an `action`"
        ));
    for (n, span) in u.base.iter().take(MAX_LABELS) {
        let text = if Some(n.as_str()) == best {
            "the base stage with the closest name"
        } else {
            "a stage of the base"
        };
        d = d.with_label(*span, text);
    }
    d
}

pub(super) fn stage_index(ptr: &str) -> bool {
    ptr.strip_prefix("/spec/stages/")
        .map(|rest| rest.split('/').next().unwrap_or(""))
        .is_some_and(|t| !t.is_empty() && (t == "-" || t.bytes().all(|c| c.is_ascii_digit())))
}

pub(super) fn nothing_selected(t: &Target) -> Diagnostic {
    Diagnostic::new(
        &TARGET_SELECTS_NOTHING,
        t.span,
        "this patch target selects no resource; the patch does nothing",
    )
    .with_help("kustomize skips such a patch silently; check `kind`, `name` (an anchored regular expression) and the selectors")
}

/// The resources a target selects (kustomize's `Select`).
pub(super) fn select(res: &[Res], t: &Target) -> Vec<usize> {
    res.par_iter()
        .enumerate()
        .filter(|(_, r)| selects(r, t))
        .map(|(i, _)| i)
        .collect()
}

/// Whether a patch target selects a resource.
pub(super) fn selects(r: &Res, t: &Target) -> bool {
    {
        let cur = r.cur();
        if !t.namespace.is_any()
            && !t.namespace.matches(r.orig.effective_ns())
            && !t.namespace.matches(cur.effective_ns())
        {
            return false;
        }
        if !t.name.matches(&r.orig.name) && !t.name.matches(&cur.name) {
            return false;
        }
        if !t.group.matches(&cur.group)
            || !t.version.matches(&cur.version)
            || !t.kind.matches(&cur.kind)
        {
            return false;
        }
        if let Some(ls) = &t.labels
            && !ls.matches(&r.meta_map("labels"))
        {
            return false;
        }
        if let Some(asel) = &t.annotations
            && !asel.matches(&r.meta_map("annotations"))
        {
            return false;
        }
    }
    true
}

/// What the `remove` and `move` operations of a JSON patch take away (see
/// [`super::DocOrigin::removed`]), as paths in the document before the patch: a stage's
/// index under `/spec/stages` becomes its name.
fn json_removals(doc: &Node, ops: &[Op]) -> Vec<super::Removal> {
    let mut out = Vec::new();
    for op in ops {
        let (pointer, span) = match op.kind {
            OpKind::Remove => (op.path.as_str(), op.path_span),
            OpKind::Move => match &op.from {
                Some((f, s)) => (f.as_str(), *s),
                None => continue,
            },
            _ => continue,
        };
        let mut path: Vec<String> = pointer
            .split('/')
            .skip(1)
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect();
        if path.len() > 2
            && path[0] == "spec"
            && path[1] == "stages"
            && let Ok(i) = path[2].parse::<usize>()
            && let Some(name) = doc
                .get_path(&["spec", "stages"])
                .and_then(Node::as_seq)
                .and_then(|s| s.get(i))
                .and_then(|s| s.get("name"))
                .and_then(Node::as_str)
        {
            path[2] = name.to_string();
        }
        out.push(super::Removal { path, span });
    }
    out
}
