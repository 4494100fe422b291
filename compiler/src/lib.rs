pub mod expr;
pub mod span;
