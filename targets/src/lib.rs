//! pbc-targets: what a checked playbook compiles to, and the release bundle.
//!
//! * [`argo`]: a `WorkflowTemplate` per playbook (plus a `CronWorkflow` for schedule
//!   triggers), valid against the Argo Workflows 3.7 and 4.x schemas, and the ConfigMaps
//!   holding the files its pods read.
//! * [`crd`]: a structural `CustomResourceDefinition` generated from
//!   `schemas/playbook.schema.json`, and each playbook as a custom resource in normalized form.
//! * [`langgraph`]: the `pbc.langgraph/v1` JSON of `docs/langgraph-format.md`, which
//!   `targets/python/pbc_langgraph.py` compiles into a LangGraph `StateGraph`.
//! * [`names`]: the check-time pass for emitted names that get too long (`PB6001`).
//! * [`bundle`]: `pbc bundle` (files, `manifest.json`, `--check`).
//!
//! Gates and `when`s are lowered only from the analysis ([`pbc_compiler::sema::lower`]), never
//! from the condition text, so an artifact cannot drift from what the checker accepted.
//! Every emitter is deterministic: the same playbook gives the same bytes.

pub mod argo;
pub mod bundle;
pub mod cond;
pub mod crd;
pub mod langgraph;
pub mod names;
pub mod out;

use pbc_compiler::diag::Code;
use pbc_compiler::model::Playbook;
use pbc_compiler::sema::Analysis;
use pbc_compiler::yaml::Node;

/// One checked playbook, ready to be emitted.
#[derive(Clone, Copy)]
pub struct Unit<'a> {
    /// The resolved document (overlays applied).
    pub root: &'a Node,
    pub playbook: &'a Playbook,
    pub analysis: &'a Analysis,
}

/// Target settings from the configuration (`.pbc.yaml`, `targets:`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The image that runs agent and action stages (and notifications, rollback).
    pub runner_image: String,
    /// No longer used: the runner image checks gates (`pbc runner gate`).
    pub check_image: String,
    /// The CRD's API group.
    pub crd_group: String,
    /// The most bytes a build may write (`limits.max-output-bytes`).
    pub max_output_bytes: u64,
}

impl Settings {
    pub fn from_config(cfg: &pbc_compiler::config::Config) -> Settings {
        Settings {
            runner_image: cfg.targets.runner_image.clone(),
            check_image: cfg.targets.check_image.clone(),
            crd_group: cfg.targets.crd_group.clone(),
            max_output_bytes: cfg.limits.max_output_bytes,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_config(&pbc_compiler::config::Config::default())
    }
}

/// Every diagnostic code this crate declares.
pub fn codes() -> Vec<&'static Code> {
    let mut v: Vec<&'static Code> = names::CODES.to_vec();
    v.extend(cond::CODES.iter().copied());
    v.extend(argo::CODES.iter().copied());
    v.sort_by_key(|c| c.id);
    v
}
