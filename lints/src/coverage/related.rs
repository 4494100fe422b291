//! Related evidence: on each control, the covered controls the SOC 2 ↔ ISO 27001:2022
//! crosswalk links it to, in the same environment (`lints/rules/crosswalk.yaml`). A related
//! claim is context for a reviewer: it never changes the control's status or totals.

use super::{FrameworkReport, Status};
use crate::catalog::Catalogs;
use crate::crosswalk::Crosswalk;
use std::collections::BTreeMap;

/// A covered control the crosswalk links to the one reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Related {
    /// The linked control's catalog id (`soc2`).
    pub catalog: String,
    /// Its id (`CC8.1`).
    pub id: String,
    /// Its canonical tag (`SOC2-CC8.1`).
    pub tag: String,
    pub name: String,
    /// Its status in the environment: always `covered` (only covered links are listed).
    pub status: Status,
    /// The playbooks whose claims cover it, sorted.
    pub playbooks: Vec<String>,
}

/// Fills `related` on every control of one environment's frameworks: a linked control
/// counts when it is reported in the same environment and is covered there.
pub(super) fn fill(frameworks: &mut [FrameworkReport], cats: &Catalogs, cw: &Crosswalk) {
    let mut covered: BTreeMap<(String, String), Related> = BTreeMap::new();
    for f in frameworks.iter() {
        for c in f.controls.iter().filter(|c| c.status == Status::Covered) {
            let mut playbooks: Vec<String> = c.claims.iter().map(|k| k.playbook.clone()).collect();
            playbooks.sort();
            playbooks.dedup();
            covered.insert(
                (f.catalog.clone(), c.id.clone()),
                Related {
                    catalog: f.catalog.clone(),
                    id: c.id.clone(),
                    tag: c.tag.clone(),
                    name: c.name.clone(),
                    status: c.status,
                    playbooks,
                },
            );
        }
    }
    if covered.is_empty() {
        return;
    }
    for f in frameworks.iter_mut() {
        for c in f.controls.iter_mut() {
            c.related = cw
                .related(cats, &f.catalog, &c.id)
                .into_iter()
                .filter_map(|k| covered.get(&k).cloned())
                .collect();
        }
    }
}
