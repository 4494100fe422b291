//! Types: output schemas as types, and the expression type checker.

pub mod check;
pub mod schema;

pub use check::{Checked, Env, Finding, Purpose, Root, TypedRef};
pub use schema::{EnumTy, Field, Lookup, ObjTy, Schema, SchemaStore, Ty};
