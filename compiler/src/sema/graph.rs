//! The stage graph (contract §4): who runs before whom.
//!
//! A stage starts when every stage in its `needs` is done; without `needs` it needs the stage
//! listed before it (the first stage is a root); `needs: []` makes it a root. Stages the graph
//! does not order may run in parallel. A skipped stage counts as done.

use super::{CYCLE, UNKNOWN_STAGE, UNREACHABLE};
use crate::diag::{Diagnostic, did_you_mean, one_of};
use crate::model::{Playbook, Risk, Spanned};
use crate::span::Span;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

/// Why one stage waits for another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EdgeKind {
    /// Listed in `needs` (the span of the entry).
    Needs(Span),
    /// No `needs`: the stage listed before it.
    Previous,
}

/// The dependency graph of a playbook's stages. Node `i` is `spec.stages[i]`; an edge
/// `a → b` means `b` waits for `a`.
#[derive(Debug)]
pub struct StageGraph {
    pub graph: DiGraph<usize, EdgeKind>,
    /// Stages on a cycle.
    pub cyclic: Vec<bool>,
    /// `ancestors[i][j]`: stage `j` is done before stage `i` starts.
    ancestors: Vec<Vec<bool>>,
    /// A topological order of the stages (cyclic stages left out).
    pub order: Vec<usize>,
}

impl StageGraph {
    /// True if stage `j` has finished before stage `i` starts.
    pub fn before(&self, j: usize, i: usize) -> bool {
        self.ancestors
            .get(i)
            .and_then(|a| a.get(j))
            .copied()
            .unwrap_or(false)
    }

    /// The stages `i` waits for directly.
    pub fn deps(&self, i: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .graph
            .neighbors_directed(NodeIndex::new(i), petgraph::Direction::Incoming)
            .map(|n| n.index())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Builds the graph, reporting unknown `needs` entries, cycles and stages that can never
    /// run.
    pub fn build(pb: &Playbook, diags: &mut Vec<Diagnostic>) -> StageGraph {
        let stages = &pb.spec.stages;
        let n = stages.len();
        let mut graph: DiGraph<usize, EdgeKind> = DiGraph::with_capacity(n, n);
        for i in 0..n {
            graph.add_node(i);
        }
        let names: Vec<&str> = stages.iter().map(|s| s.name.value.as_str()).collect();
        for (i, s) in stages.iter().enumerate() {
            match &s.needs {
                Some(needs) => {
                    for Spanned { value: need, span } in &needs.value {
                        match names.iter().position(|n| n == need) {
                            Some(j) => {
                                graph.add_edge(
                                    NodeIndex::new(j),
                                    NodeIndex::new(i),
                                    EdgeKind::Needs(*span),
                                );
                            }
                            None => {
                                let others: Vec<&str> = names
                                    .iter()
                                    .copied()
                                    .filter(|x| *x != s.name.value)
                                    .collect();
                                let help = match did_you_mean(need, others.iter().copied()) {
                                    Some(m) => {
                                        format!("did you mean `{m}`? stages: {}", one_of(&others))
                                    }
                                    None => format!("stages: {}", one_of(&others)),
                                };
                                diags.push(
                                    Diagnostic::new(&UNKNOWN_STAGE, *span, format!("stage `{}` needs `{need}`, which is not a stage of this playbook", s.name.value))
                                        .with_help(help),
                                );
                            }
                        }
                    }
                }
                None if i > 0 => {
                    graph.add_edge(NodeIndex::new(i - 1), NodeIndex::new(i), EdgeKind::Previous);
                }
                None => {}
            }
        }
        // Cycles: strongly connected components with more than one node, or a self-loop.
        let mut cyclic = vec![false; n];
        for scc in tarjan_scc(&graph) {
            let is_cycle = scc.len() > 1 || scc.iter().any(|x| graph.contains_edge(*x, *x));
            if !is_cycle {
                continue;
            }
            let mut members: Vec<usize> = scc.iter().map(|x| x.index()).collect();
            members.sort_unstable();
            for &m in &members {
                cyclic[m] = true;
            }
            report_cycle(pb, &graph, &members, diags);
        }
        // Topological order over the acyclic part; ancestors as bitsets.
        let mut indeg = vec![0usize; n];
        for e in graph.edge_indices() {
            if let Some((a, b)) = graph.edge_endpoints(e)
                && !cyclic[a.index()]
                && !cyclic[b.index()]
            {
                indeg[b.index()] += 1;
            }
        }
        let mut ready: std::collections::BTreeSet<usize> =
            (0..n).filter(|&i| indeg[i] == 0 && !cyclic[i]).collect();
        let mut order = Vec::with_capacity(n);
        let mut ancestors = vec![vec![false; n]; n];
        while let Some(&i) = ready.iter().next() {
            ready.remove(&i);
            order.push(i);
            let succs: Vec<usize> = graph
                .neighbors(NodeIndex::new(i))
                .map(|x| x.index())
                .collect();
            for s in succs {
                if cyclic[s] {
                    continue;
                }
                let (src, dst) = if i < s {
                    let (a, b) = ancestors.split_at_mut(s);
                    (&a[i], &mut b[0])
                } else {
                    let (a, b) = ancestors.split_at_mut(i);
                    (&b[0], &mut a[s])
                };
                for k in 0..n {
                    dst[k] |= src[k];
                }
                dst[i] = true;
                indeg[s] = indeg[s].saturating_sub(1);
                if indeg[s] == 0 {
                    ready.insert(s);
                }
            }
        }
        let g = StageGraph {
            graph,
            cyclic,
            ancestors,
            order,
        };
        g.report_unreachable(pb, diags);
        g
    }

    /// Stages that wait (transitively) for a cycle or for a refused (`high`-risk) stage can
    /// never run.
    fn report_unreachable(&self, pb: &Playbook, diags: &mut Vec<Diagnostic>) {
        let stages = &pb.spec.stages;
        let n = stages.len();
        // Blockers: cyclic stages and high-risk stages (refused: never executed).
        let refused: Vec<bool> = stages
            .iter()
            .map(|s| s.risk(&pb.spec) == Risk::High)
            .collect();
        if pb.spec.risk() == Risk::High {
            // The whole playbook is refused: one finding is enough (at its `risk`).
            return;
        }
        let mut blocked_by: Vec<Option<usize>> = vec![None; n];
        // Propagate in a fixed-point over edges; the graph is small.
        let mut changed = true;
        let mut rounds = 0;
        while changed && rounds <= n + 1 {
            changed = false;
            rounds += 1;
            for e in self.graph.edge_indices() {
                let Some((a, b)) = self.graph.edge_endpoints(e) else {
                    continue;
                };
                let (a, b) = (a.index(), b.index());
                if self.cyclic[b] || blocked_by[b].is_some() {
                    continue;
                }
                let cause = if self.cyclic[a] || refused[a] {
                    Some(a)
                } else {
                    blocked_by[a]
                };
                if let Some(c) = cause {
                    blocked_by[b] = Some(c);
                    changed = true;
                }
            }
        }
        for (i, b) in blocked_by.iter().enumerate() {
            let Some(c) = b else { continue };
            let why = if self.cyclic[*c] {
                "is on a dependency cycle"
            } else {
                "has `risk: high` and is refused (never executed)"
            };
            diags.push(
                Diagnostic::new(
                    &UNREACHABLE,
                    stages[i].name.span,
                    format!(
                        "stage `{}` can never run: it waits for `{}`, which {why}",
                        stages[i].name.value, stages[*c].name.value
                    ),
                )
                .with_label(stages[*c].name.span, "this stage never completes")
                .with_help("remove the dependency (`needs`), or fix the stage it waits for"),
            );
        }
    }
}

fn report_cycle(
    pb: &Playbook,
    graph: &DiGraph<usize, EdgeKind>,
    members: &[usize],
    diags: &mut Vec<Diagnostic>,
) {
    let stages = &pb.spec.stages;
    // Walk the cycle from its first member, following edges inside the component.
    let start = members[0];
    let mut path = vec![start];
    let mut cur = start;
    let mut edges: Vec<(usize, usize, EdgeKind)> = Vec::new();
    for _ in 0..=members.len() {
        let next = graph
            .edges(NodeIndex::new(cur))
            .filter(|e| members.contains(&e.target().index()))
            .map(|e| (e.target().index(), e.weight().clone()))
            .min_by_key(|(t, _)| if *t == start { 0 } else { t + 1 });
        let Some((t, w)) = next else { break };
        edges.push((cur, t, w));
        if t == start {
            break;
        }
        if path.contains(&t) {
            break;
        }
        path.push(t);
        cur = t;
    }
    let mut names: Vec<&str> = path
        .iter()
        .map(|&i| stages[i].name.value.as_str())
        .collect();
    names.push(stages[start].name.value.as_str());
    let mut d = Diagnostic::new(
        &CYCLE,
        stages[start].name.span,
        format!("the stages wait for each other in a cycle: {}", names.join(" → ")),
    )
    .with_help("a stage may only need stages that can finish before it; remove one `needs` entry of the cycle");
    for (a, b, w) in edges {
        let (span, why) = match w {
            EdgeKind::Needs(s) => (
                s,
                format!(
                    "`{}` needs `{}`",
                    stages[b].name.value, stages[a].name.value
                ),
            ),
            EdgeKind::Previous => (
                stages[b].name.span,
                format!(
                    "`{}` has no `needs`, so it waits for `{}`, the stage before it",
                    stages[b].name.value, stages[a].name.value
                ),
            ),
        };
        d = d.with_label(span, why);
    }
    diags.push(d);
}

use petgraph::visit::EdgeRef;
