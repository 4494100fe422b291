//! The output order: kustomize's legacy sort (kinds first and last, then group, version,
//! kind, namespace and name), customised by `legacySortOptions`, or FIFO.

use super::*;

pub(super) const ORDER_FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
pub(super) const ORDER_LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

pub(super) fn gvk_string(id: &ResId) -> String {
    let or = |s: &str, d: &str| {
        if s.is_empty() {
            d.to_string()
        } else {
            s.to_string()
        }
    };
    format!(
        "{}_{}_{}",
        or(&id.group, "~G"),
        or(&id.version, "~V"),
        or(&id.kind, "~K")
    )
}

/// Kustomize's output order: legacy (by kind priority, then group/version/kind, namespace and
/// name) unless the top kustomization asks for `fifo`.
pub(super) fn sort_resources(res: &mut [Res], sort: Option<&SortSpec>) {
    if sort.is_some_and(|s| s.fifo) {
        return;
    }
    let (first, last): (Vec<String>, Vec<String>) = match sort.and_then(|s| s.legacy.clone()) {
        Some(l) => l,
        None => (
            ORDER_FIRST.iter().map(|s| s.to_string()).collect(),
            ORDER_LAST.iter().map(|s| s.to_string()).collect(),
        ),
    };
    let mut rank: HashMap<&str, i64> = HashMap::new();
    for (i, k) in first.iter().enumerate() {
        rank.insert(k, i as i64 - first.len() as i64);
    }
    for (i, k) in last.iter().enumerate() {
        rank.insert(k, i as i64 + 1);
    }
    // The keys are computed once per resource, not per comparison.
    struct Keyed {
        id: ResId,
        rank: i64,
        gvk: String,
        ns_name: String,
        i: usize,
    }
    let mut keyed: Vec<Keyed> = res
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let id = r.cur();
            let rank = rank.get(id.kind.as_str()).copied().unwrap_or(0);
            let gvk = gvk_string(&id);
            let ns_name = format!(
                "{}|{}",
                if id.ns.is_empty() { "~X" } else { &id.ns },
                if id.name.is_empty() { "~N" } else { &id.name }
            );
            Keyed {
                id,
                rank,
                gvk,
                ns_name,
                i,
            }
        })
        .collect();
    keyed.sort_by(|ka, kb| {
        let (a, b) = (&ka.id, &kb.id);
        let gvk_eq = a.same_gvk(b);
        if !gvk_eq {
            if ka.rank != kb.rank {
                return ka.rank.cmp(&kb.rank);
            }
            let (sa, sb) = (&ka.gvk, &kb.gvk);
            if a.kind == "Namespace"
                && b.kind == "Namespace"
                && (a.group.is_empty() || b.group.is_empty())
            {
                return sb.cmp(sa);
            }
            return sa.cmp(sb);
        }
        ka.ns_name.cmp(&kb.ns_name)
    });
    let order: Vec<usize> = keyed.into_iter().map(|k| k.i).collect();
    apply_permutation(res, &order);
}

pub(super) fn apply_permutation(res: &mut [Res], order: &[usize]) {
    // order[k] = index of the element that goes to position k.
    let mut taken: Vec<Option<Res>> = Vec::with_capacity(res.len());
    // Swap out every element with a placeholder-free approach: rebuild through a Vec.
    let len = res.len();
    let mut tmp: Vec<Res> = Vec::with_capacity(len);
    for r in res.iter_mut() {
        let placeholder = Res {
            node: Node::null(Span::default()),
            orig: r.orig.clone(),
            prev: Vec::new(),
            uid: r.uid,
            name_spans: Vec::new(),
            quiet: Vec::new(),
            removed: Vec::new(),
            nodes: 0,
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            needs_hash: false,
        };
        tmp.push(std::mem::replace(r, placeholder));
    }
    taken.extend(tmp.into_iter().map(Some));
    for (k, &i) in order.iter().enumerate() {
        if let Some(r) = taken.get_mut(i).and_then(Option::take) {
            res[k] = r;
        }
    }
}
