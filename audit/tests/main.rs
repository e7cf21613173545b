//! occ-audit integration tests: one binary, modules per concern. Some tests re-run this
//! binary as child processes (concurrency, crash, full disk); see `child`.

mod bad_input;
mod canon_python;
mod chain_props;
mod child;
mod concurrency;
mod crash;
mod util;
mod verify_batches;
mod verify_reasons;
mod writer;
