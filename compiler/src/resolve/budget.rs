//! Work budgets of a resolution: how many resources and YAML nodes one build may produce
//! (`limits.max-resources`, `limits.max-nodes`) and how many bytes it may write
//! (`limits.max-output-bytes`).
//!
//! The resolver shares subtrees copy-on-write, so a few includes or `copy` operations can
//! stand for an exponential tree that every later pass (emitters, checks) would walk. Nodes
//! are counted as they are produced, never by walking the result: a parsed document knows
//! its count from the parser, a strategic-merge patch adds at most its own nodes, a JSON
//! patch `add`/`replace` its value's and a `copy` the copied subtree's (counted with a walk
//! that stops at the remaining budget). Once over a budget the resolution stops with a
//! finding at the culprit (the `resources:` entry, the patch operation) and drops what it
//! built.

use super::json6902::{self, Op, OpError, OpKind};
use crate::declare_codes;
use crate::diag::Diagnostic;
use crate::span::Span;
use crate::yaml::{Limits, Node, Value};
use std::sync::atomic::{AtomicBool, Ordering};

declare_codes! {
    /// A kustomization build produces more resources than the limit
    /// (`limits.max-resources`, default 20,000).
    ///
    /// Every include of a directory copies its resources, so a few kustomizations that
    /// include each other's directories twice (a "diamond" nested level after level) double
    /// the resources at each level: twenty levels are a million resources. pbc stops at the
    /// `resources:` entry that passes the limit, long before memory runs out. Include each
    /// base once, or raise the limit in `.pbc.yaml` if the tree really is that large.
    PB1020 TOO_MANY_RESOURCES "too-many-resources" Error "a build produces too many resources";
    /// A kustomization build produces more YAML nodes than the limit (`limits.max-nodes`,
    /// default 5,000,000).
    ///
    /// Nodes are the keys, values and list items of the resources; a subtree that a patch
    /// copies counts once per copy. A JSON patch whose `copy` operations copy a subtree into
    /// itself doubles the resource at each operation: twenty-five operations make a
    /// gigabyte. pbc stops at the operation (or the `resources:` entry) that passes the
    /// limit. Copy less, or raise the limit in `.pbc.yaml` if the tree really is that large.
    PB1021 TOO_MANY_NODES "too-many-nodes" Error "a build produces too many YAML nodes";
    /// A build writes more bytes than the limit (`limits.max-output-bytes`, default 256 MiB).
    ///
    /// pbc stops writing at the document that passes the limit, and fails. Large outputs
    /// come from large values copied many times (aliases, patches). Raise the limit in
    /// `.pbc.yaml` if the output really is that large.
    PB1022 OUTPUT_TOO_LARGE "output-too-large" Error "a build writes too many bytes";
}

/// The budgets of one resolution and whether one was exceeded (then every step stops).
pub(super) struct Budget {
    pub max_resources: usize,
    pub max_nodes: u64,
    exceeded: AtomicBool,
}

impl Budget {
    pub fn new(limits: &Limits) -> Budget {
        Budget {
            max_resources: limits.max_resources,
            max_nodes: limits.max_nodes,
            exceeded: AtomicBool::new(false),
        }
    }

    /// True once a budget was exceeded: the resolution is abandoned.
    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    /// Marks the resolution abandoned; true for the first caller (the one that reports).
    pub fn trip(&self) -> bool {
        !self.exceeded.swap(true, Ordering::Relaxed)
    }

    pub fn too_many_resources(&self, span: Span, kust: &str, n: usize) -> Diagnostic {
        Diagnostic::new(
            &TOO_MANY_RESOURCES,
            span,
            format!(
                "the build of `{kust}` reaches {n} resources here, over the limit of {} (`limits.max-resources`); the build stopped",
                self.max_resources
            ),
        )
        .with_help("a directory included several times copies its resources each time: include each base once, or raise `limits.max-resources` in `.pbc.yaml`")
    }

    pub fn too_many_nodes(&self, span: Span, what: String) -> Diagnostic {
        Diagnostic::new(
            &TOO_MANY_NODES,
            span,
            format!(
                "{what} makes the build exceed {} YAML nodes (`limits.max-nodes`); the build stopped",
                self.max_nodes
            ),
        )
        .with_help("a `copy` (or an include) duplicates whole subtrees: copy less, or raise `limits.max-nodes` in `.pbc.yaml`")
    }
}

/// The nodes of `n` as [`Node::count`] counts them and its depth, or `None` as soon as
/// the nodes pass `limit` (the walk stops there: its cost is bounded by the budget it
/// checks). Iterative.
pub(super) fn count_within(n: &Node, limit: u64) -> Option<(u64, usize)> {
    let mut count = 0u64;
    let mut depth = 0usize;
    let mut stack = vec![(n, 1usize)];
    while let Some((x, d)) = stack.pop() {
        count += 1;
        depth = depth.max(d);
        match &x.value {
            Value::Seq(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Map(entries) => {
                for e in entries {
                    count += 1;
                    stack.push((&e.value, d + 1));
                }
            }
            Value::Scalar(_) => {}
        }
        if count > limit {
            return None;
        }
    }
    Some((count, depth))
}

/// Why a budgeted JSON patch stopped.
pub(super) enum JsonStop {
    /// An operation failed (the resource is left unpatched).
    Failed(OpError),
    /// Operation `index` would pass the node budget.
    OverBudget(usize),
    /// Operation `index` would nest the resource deeper than `limits.max-depth`.
    TooDeep(usize),
}

/// Applies `ops` to `doc` as [`json6902::apply`] does (all or nothing), one operation at a
/// time, charging each operation's new nodes to `charge` before it runs; `charge` answers
/// whether the budget allows them. `values[i]` is the node count and depth of
/// `ops[i].value`. No operation may nest the resource deeper than `max_depth` (the
/// parser's limit), so that every later walk stays shallow.
pub(super) fn apply_json(
    doc: &mut Node,
    ops: &[Op],
    values: &[(u64, usize)],
    mut charge: impl FnMut(Option<u64>) -> bool,
    copy_limit: u64,
    max_depth: usize,
) -> Result<(), JsonStop> {
    let mut work = doc.clone();
    for (index, op) in ops.iter().enumerate() {
        let value = values.get(index).copied().unwrap_or((0, 0));
        let (cost, depth) = match op.kind {
            OpKind::Add | OpKind::Replace => (Some(value.0), value.1),
            OpKind::Copy | OpKind::Move => match op
                .from
                .as_ref()
                .and_then(|(f, _)| crate::types::schema::pointer(&work, f))
            {
                Some(src) => match count_within(src, copy_limit) {
                    // A move adds no node.
                    Some((n, d)) => (Some(if op.kind == OpKind::Copy { n } else { 0 }), d),
                    None => (None, 0),
                },
                // The operation fails on its own below.
                None => (Some(0), 0),
            },
            OpKind::Remove | OpKind::Test => (Some(0), 0),
        };
        // The value lands under the path's tokens (the root counts as level 1).
        let at = op.path.matches('/').count();
        if at + depth > max_depth {
            return Err(JsonStop::TooDeep(index));
        }
        if !charge(cost) {
            return Err(JsonStop::OverBudget(index));
        }
        json6902::apply(&mut work, std::slice::from_ref(op)).map_err(|e| {
            JsonStop::Failed(OpError {
                index,
                message: e.message,
                in_from: e.in_from,
            })
        })?;
    }
    *doc = work;
    Ok(())
}

/// Writes `docs` as [`super::write_yaml`] does (a batch emitted in parallel, then
/// written), at most `limit` bytes: the finding names the first document that does not fit
/// (nothing of it is written).
pub fn write_yaml_limited(
    docs: &[Node],
    w: &mut impl std::io::Write,
    limit: u64,
) -> Result<(), WriteError> {
    const BATCH: usize = 256;
    let mut written = 0u64;
    for (b, batch) in docs.chunks(BATCH).enumerate() {
        let parts = super::emit::emit_parts(batch);
        for (i, (d, p)) in batch.iter().zip(&parts).enumerate() {
            let sep: &[u8] = if b > 0 || i > 0 { b"---\n" } else { b"" };
            written += (sep.len() + p.len()) as u64;
            if written > limit {
                return Err(WriteError::TooLarge(output_too_large(d, limit)));
            }
            w.write_all(sep).map_err(WriteError::Io)?;
            w.write_all(p.as_bytes()).map_err(WriteError::Io)?;
        }
    }
    w.flush().map_err(WriteError::Io)
}

/// Why [`write_yaml_limited`] stopped.
#[derive(Debug)]
pub enum WriteError {
    /// Over the output budget (PB1022).
    TooLarge(Box<Diagnostic>),
    Io(std::io::Error),
}

/// PB1022 at `doc`, the document that passes the output budget.
pub fn output_too_large(doc: &Node, limit: u64) -> Box<Diagnostic> {
    let kind = doc.get("kind").and_then(Node::as_str).unwrap_or("document");
    let name = doc
        .get_path(&["metadata", "name"])
        .and_then(Node::as_str)
        .unwrap_or("unnamed");
    Box::new(
        Diagnostic::new(
            &OUTPUT_TOO_LARGE,
            doc.span.sub(0, 0),
            format!(
                "writing {kind} `{name}` passes the output limit of {limit} bytes (`limits.max-output-bytes`); the build stopped"
            ),
        )
        .with_help("raise `limits.max-output-bytes` in `.pbc.yaml` if the output really is that large"),
    )
}

#[cfg(test)]
mod tests {
    use crate::fs::MemFs;
    use crate::load::Loader;
    use crate::resolve::{ResolveOptions, resolve};
    use crate::yaml::Limits;
    use std::path::Path;
    use std::sync::Arc;

    fn run(fs: MemFs, limits: Limits, dir: &str) -> Vec<(&'static str, String)> {
        let loader = Loader::new(Arc::new(fs), "", limits);
        let r = resolve(&loader, Path::new(dir), &ResolveOptions::default()).expect("resolves");
        r.diags
            .iter()
            .map(|d| (d.code.id, d.message.clone()))
            .collect()
    }

    const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: x\n";

    #[test]
    fn a_diamond_stops_at_the_resource_budget() {
        let mut fs = MemFs::new();
        let levels = 12;
        fs.insert(
            format!("l{levels}/kustomization.yaml"),
            "resources: [cm.yaml]\n",
        );
        fs.insert(format!("l{levels}/cm.yaml"), CM);
        for i in 0..levels {
            fs.insert(
                format!("l{i}/kustomization.yaml"),
                format!("resources: [../l{}, sfx]\n", i + 1),
            );
            fs.insert(
                format!("l{i}/sfx/kustomization.yaml"),
                format!("nameSuffix: -s{i}\nresources: [../../l{}]\n", i + 1),
            );
        }
        let limits = Limits {
            max_resources: 100,
            ..Limits::default()
        };
        let d = run(fs, limits, "l0");
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].0, "PB1020");
        // 128 resources first pass 100 in the kustomization five levels up from the file.
        assert!(d[0].1.contains("`l5`") && d[0].1.contains("128"), "{d:?}");
    }

    #[test]
    fn doubling_copies_stop_at_the_node_budget_at_the_operation() {
        let mut fs = MemFs::new();
        fs.insert("t/cm.yaml", CM);
        let ops: String = (0..30)
            .map(|i| format!("- {{op: copy, from: /data, path: /data/c{i}}}\n"))
            .collect();
        fs.insert("t/p.yaml", ops);
        fs.insert(
            "t/kustomization.yaml",
            "resources: [cm.yaml]\npatches: [{path: p.yaml, target: {kind: ConfigMap}}]\n",
        );
        let limits = Limits {
            max_nodes: 10_000,
            ..Limits::default()
        };
        let d = run(fs, limits, "t");
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].0, "PB1021");
        assert!(d[0].1.contains("`copy` operation"), "{d:?}");
    }

    #[test]
    fn a_json_patch_may_not_nest_past_the_depth_limit() {
        let mut fs = MemFs::new();
        fs.insert("t/cm.yaml", CM);
        // Each copy nests `data` one level deeper inside itself.
        let ops: String = (0..20)
            .map(|_| "- {op: copy, from: /data, path: /data/d}\n".to_string())
            .collect();
        fs.insert("t/p.yaml", ops);
        fs.insert(
            "t/kustomization.yaml",
            "resources: [cm.yaml]\npatches: [{path: p.yaml, target: {kind: ConfigMap}}]\n",
        );
        let limits = Limits {
            max_depth: 10,
            ..Limits::default()
        };
        let d = run(fs, limits, "t");
        assert!(d.iter().any(|(c, _)| *c == "PB0005"), "{d:?}");
    }

    #[test]
    fn the_output_budget_names_the_document_that_passes_it() {
        let docs: Vec<crate::yaml::Node> = (0..3)
            .map(|i| {
                let sm = crate::span::SourceMap::new();
                let f = sm.add(
                    "x.yaml",
                    format!("kind: ConfigMap\nmetadata:\n  name: cm{i}\n"),
                );
                let mut diags = Vec::new();
                crate::yaml::parse(&f, &Limits::default(), &mut diags)
                    .remove(0)
                    .root
            })
            .collect();
        // The first document and a few bytes fit; the second does not.
        let limit = crate::resolve::emit_yaml(&docs[..1]).len() as u64 + 10;
        let mut out = Vec::new();
        let r = super::write_yaml_limited(&docs, &mut out, limit);
        let Err(super::WriteError::TooLarge(d)) = r else {
            panic!("{r:?}")
        };
        assert!(d.message.contains("`cm1`"), "{}", d.message);
        assert!(out.len() as u64 <= limit);
        let mut all = Vec::new();
        super::write_yaml_limited(&docs, &mut all, 1 << 20).expect("fits");
        assert_eq!(
            String::from_utf8(all).unwrap(),
            crate::resolve::emit_yaml(&docs)
        );
    }
}
