//! pbc-compiler: the load → resolve → model → check pipeline for `agenticops/v1` playbooks.

pub mod approval_rules;
pub mod check;
pub mod codes;
pub mod config;
pub mod diag;
pub mod diff;
pub mod enforcement;
pub mod expr;
pub mod fs;
#[doc(hidden)]
pub mod fuzzing;
pub mod gitfs;
pub mod guard;
pub mod load;
pub mod model;
pub mod render;
pub mod resolve;
pub mod sema;
pub mod span;
pub mod types;
pub mod yaml;
