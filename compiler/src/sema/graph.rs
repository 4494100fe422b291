//! The stage graph: who runs before whom.
//!
//! A stage starts when every stage in its `needs` is done; without `needs` it needs the stage
//! listed before it (the first stage is a root); `needs: []` makes it a root. Stages the graph
//! does not order may run in parallel. A skipped stage counts as done.
//!
//! Nothing here recurses or is quadratic in the number of stages for a chain: cycles are
//! found with petgraph's iterative Kosaraju, the order with Kahn's algorithm, and "is `j`
//! done before `i`" is a bitset lookup for small graphs and a pruned backward walk for large
//! ones (a dense matrix for 100,000 stages would take gigabytes).

use super::{CYCLE, UNKNOWN_STAGE, UNREACHABLE};
use crate::diag::{Diagnostic, did_you_mean, one_of};
use crate::model::{Playbook, Risk, Spanned};
use crate::span::Span;
use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::HashMap;

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
    /// A topological order of the stages (cyclic stages left out).
    pub order: Vec<usize>,
    /// Each stage's position in `order` (`usize::MAX` for a cyclic stage).
    pos: Vec<usize>,
    /// For a graph of at most [`DENSE_MAX`] stages, `ancestors[i]` is the bitset of the
    /// stages done before stage `i` starts; larger graphs answer by walking.
    ancestors: Option<Vec<Vec<u64>>>,
}

/// The largest graph whose ancestor sets are kept as bitsets (512 KiB at most).
const DENSE_MAX: usize = 2048;

impl StageGraph {
    /// True if stage `j` has finished before stage `i` starts: a path `j → … → i` through
    /// stages on no cycle.
    pub fn before(&self, j: usize, i: usize) -> bool {
        if let Some(a) = &self.ancestors {
            return a
                .get(i)
                .and_then(|bits| bits.get(j / 64))
                .is_some_and(|w| w & (1 << (j % 64)) != 0);
        }
        self.walk_before(j, i)
    }

    /// [`StageGraph::before`] by a backward walk from `i` that visits only stages after
    /// `j` in the topological order (none else can lie on a path from `j`). Iterative.
    fn walk_before(&self, j: usize, i: usize) -> bool {
        let (Some(&pj), Some(&pi)) = (self.pos.get(j), self.pos.get(i)) else {
            return false;
        };
        if pj == usize::MAX || pi == usize::MAX || pj >= pi {
            return false;
        }
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![i];
        while let Some(x) = stack.pop() {
            for p in self
                .graph
                .neighbors_directed(NodeIndex::new(x), petgraph::Direction::Incoming)
            {
                let p = p.index();
                if p == j {
                    return true;
                }
                let pp = self.pos[p];
                if pp != usize::MAX && pp > pj && seen.insert(p) {
                    stack.push(p);
                }
            }
        }
        false
    }

    /// Every stage done before stage `i` starts, in stage order; `None` once there are more
    /// than `limit` (the walk stops there). Iterative.
    pub fn ancestors_within(&self, i: usize, limit: usize) -> Option<Vec<usize>> {
        if self.pos.get(i).is_none_or(|&p| p == usize::MAX) {
            return Some(Vec::new());
        }
        let mut seen = vec![i];
        let mut set = std::collections::HashSet::new();
        while let Some(x) = seen.pop() {
            for p in self
                .graph
                .neighbors_directed(NodeIndex::new(x), petgraph::Direction::Incoming)
            {
                let p = p.index();
                if !self.cyclic[p] && set.insert(p) {
                    if set.len() > limit {
                        return None;
                    }
                    seen.push(p);
                }
            }
        }
        let mut v: Vec<usize> = set.into_iter().collect();
        v.sort_unstable();
        Some(v)
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
        // The first stage of each name (a duplicate name is the model's finding).
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(n);
        for (i, name) in names.iter().enumerate() {
            index.entry(name).or_insert(i);
        }
        for (i, s) in stages.iter().enumerate() {
            match &s.needs {
                Some(needs) => {
                    for Spanned { value: need, span } in &needs.value {
                        match index.get(need.as_str()).copied() {
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
        let (g, cycles) = StageGraph::from_graph(graph);
        for members in &cycles {
            report_cycle(pb, &g.graph, members, diags);
        }
        g.report_unreachable(pb, diags);
        g
    }

    /// Cycles, order and ancestors of a built graph; also the members of each cycle (sorted).
    fn from_graph(graph: DiGraph<usize, EdgeKind>) -> (StageGraph, Vec<Vec<usize>>) {
        let n = graph.node_count();
        // Cycles: strongly connected components with more than one node, or a self-loop.
        let mut cyclic = vec![false; n];
        let mut cycles = Vec::new();
        for scc in kosaraju_scc(&graph) {
            let is_cycle = scc.len() > 1 || scc.iter().any(|x| graph.contains_edge(*x, *x));
            if !is_cycle {
                continue;
            }
            let mut members: Vec<usize> = scc.iter().map(|x| x.index()).collect();
            members.sort_unstable();
            for &m in &members {
                cyclic[m] = true;
            }
            cycles.push(members);
        }
        // Cycles are reported in the order of their first stage.
        cycles.sort_unstable();
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
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for s in graph.neighbors(NodeIndex::new(i)) {
                let s = s.index();
                if cyclic[s] {
                    continue;
                }
                indeg[s] = indeg[s].saturating_sub(1);
                if indeg[s] == 0 {
                    ready.insert(s);
                }
            }
        }
        let mut pos = vec![usize::MAX; n];
        for (k, &i) in order.iter().enumerate() {
            pos[i] = k;
        }
        let ancestors = (n <= DENSE_MAX).then(|| dense_ancestors(&graph, &order, &cyclic));
        let g = StageGraph {
            graph,
            cyclic,
            order,
            pos,
            ancestors,
        };
        (g, cycles)
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
        // In topological order every stage's predecessors are final when it is reached;
        // among them, the first edge (in declaration order) with a cause names it.
        let mut incoming: Vec<(usize, usize)> = Vec::new();
        for &b in &self.order {
            incoming.clear();
            incoming.extend(
                self.graph
                    .edges_directed(NodeIndex::new(b), petgraph::Direction::Incoming)
                    .map(|e| (e.id().index(), e.source().index())),
            );
            incoming.sort_unstable();
            blocked_by[b] = incoming.iter().find_map(|&(_, a)| {
                if self.cyclic[a] || refused[a] {
                    Some(a)
                } else {
                    blocked_by[a]
                }
            });
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
    let mut member = vec![false; stages.len()];
    for &m in members {
        member[m] = true;
    }
    let mut on_path = vec![false; stages.len()];
    // Walk the cycle from its first member, following edges inside the component.
    let start = members[0];
    on_path[start] = true;
    let mut path = vec![start];
    let mut cur = start;
    let mut edges: Vec<(usize, usize, EdgeKind)> = Vec::new();
    for _ in 0..=members.len() {
        let next = graph
            .edges(NodeIndex::new(cur))
            .filter(|e| member[e.target().index()])
            .map(|e| (e.target().index(), e.weight().clone()))
            .min_by_key(|(t, _)| if *t == start { 0 } else { t + 1 });
        let Some((t, w)) = next else { break };
        edges.push((cur, t, w));
        if t == start {
            break;
        }
        if on_path[t] {
            break;
        }
        on_path[t] = true;
        path.push(t);
        cur = t;
    }
    let mut names: Vec<&str> = path
        .iter()
        .map(|&i| stages[i].name.value.as_str())
        .collect();
    names.push(stages[start].name.value.as_str());
    // A long cycle is shown by its ends (a message and labels that stay readable).
    const HEAD: usize = 8;
    const TAIL: usize = 4;
    let long = names.len() > HEAD + TAIL;
    let chain = if long {
        format!(
            "{} → … ({} more) … → {}",
            names[..HEAD].join(" → "),
            names.len() - HEAD - TAIL,
            names[names.len() - TAIL..].join(" → ")
        )
    } else {
        names.join(" → ")
    };
    let mut d = Diagnostic::new(
        &CYCLE,
        stages[start].name.span,
        format!("the stages wait for each other in a cycle: {chain}"),
    )
    .with_help("a stage may only need stages that can finish before it; remove one `needs` entry of the cycle");
    let n_edges = edges.len();
    for (k, (a, b, w)) in edges.into_iter().enumerate() {
        if long && k >= HEAD && k + TAIL < n_edges {
            continue;
        }
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

/// The ancestor bitsets of a small graph, propagated along the topological order.
fn dense_ancestors(
    graph: &DiGraph<usize, EdgeKind>,
    order: &[usize],
    cyclic: &[bool],
) -> Vec<Vec<u64>> {
    let n = cyclic.len();
    let words = n.div_ceil(64);
    let mut anc = vec![vec![0u64; words]; n];
    for &i in order {
        for s in graph.neighbors(NodeIndex::new(i)) {
            let s = s.index();
            if cyclic[s] || s == i {
                continue;
            }
            let (src, dst) = if i < s {
                let (a, b) = anc.split_at_mut(s);
                (&a[i], &mut b[0])
            } else {
                let (a, b) = anc.split_at_mut(i);
                (&b[0], &mut a[s])
            };
            for (d, w) in dst.iter_mut().zip(src) {
                *d |= w;
            }
            dst[i / 64] |= 1 << (i % 64);
        }
    }
    anc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The walk answers as the bitsets do, on graphs with chains, diamonds, cycles and
    /// stages after cycles.
    #[test]
    fn walking_agrees_with_the_bitsets() {
        let mut seed = 7u64;
        let mut rand = move |m: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % m
        };
        for round in 0..40 {
            let n = 2 + rand(40);
            let mut graph: DiGraph<usize, EdgeKind> = DiGraph::new();
            for i in 0..n {
                graph.add_node(i);
            }
            for _ in 0..rand(3 * n) {
                let (a, b) = (rand(n), rand(n));
                // Mostly forward edges, a few back edges (cycles).
                if a < b || rand(10) == 0 {
                    graph.add_edge(NodeIndex::new(a), NodeIndex::new(b), EdgeKind::Previous);
                }
            }
            let (pb_free, _) = StageGraph::from_graph(graph);
            let dense = pb_free.ancestors.clone().expect("small graph");
            for (i, bits) in dense.iter().enumerate() {
                for j in 0..n {
                    let d = bits[j / 64] & (1 << (j % 64)) != 0;
                    assert_eq!(
                        d,
                        pb_free.walk_before(j, i),
                        "round {round}: {j} before {i}"
                    );
                }
                let anc = pb_free.ancestors_within(i, n).expect("within n");
                let want: Vec<usize> = (0..n).filter(|&j| pb_free.before(j, i)).collect();
                assert_eq!(anc, want, "round {round}: ancestors of {i}");
            }
        }
    }
}
