//! pbc-targets
