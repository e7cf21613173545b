//! occ-policy's integration tests: one binary, one module per area.

mod bypass;
mod files;
mod flags;
mod props;
mod spellings;
mod support;
