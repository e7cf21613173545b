//! End-to-end tests through the real binaries. One test binary, modules per area.

mod approval;
mod cli_smoke;
mod install;
mod shim_transport;
