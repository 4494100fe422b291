//! pbc-runtime
