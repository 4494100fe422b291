//! pbc-lints
