//! End-to-end tests through the real binaries. One test binary, modules per area.

mod approval;
mod approvals_view;
mod audit_cli;
mod cdp;
mod cli_smoke;
mod docs_commands;
mod flags;
mod forward;
mod forward_tls;
mod grants;
mod install;
mod load;
mod never_hangs;
mod notify;
mod openclaw;
mod policy_cli;
mod policy_judges;
mod scan_cli;
mod scan_compliance;
mod shim_differential;
mod shim_transport;
mod signed;
mod sudo_differential;
mod system_install;
mod system_mode;
mod token;
