//! The 24 checks. Each reads evidence (occ's files, OpenClaw's config, the host probes and the
//! scan reports) and returns a verdict with what it saw. A check that cannot gather its
//! evidence returns `not_assessed` with the error; presence alone never makes a check pass.
//! [`CHECKS`] maps each id of the controls map to the function that judges it.

#![allow(
    clippy::result_large_err,
    reason = "the Err side is the check's final verdict, built once per check"
)]

mod approval;
mod audit;
mod broker;
mod ctx;
mod host;
mod network;
mod openclaw;
mod policy;
mod system;
mod verdict;

pub use ctx::{Ctx, Loaded};
pub use host::age_days;
pub use network::is_loopback;
pub use policy::unsafe_allow_rules;
pub use verdict::Verdict;

/// One check: its id in the controls map and the function that judges it.
#[derive(Clone, Copy)]
pub struct Check {
    /// The id (the function's name).
    pub id: &'static str,
    /// The judge.
    pub run: fn(&Ctx) -> Verdict,
}

/// `section::function` per line; the id is the function's name, so the two cannot drift.
macro_rules! table {
    ($($section:ident::$check:ident,)*) => {
        &[$(Check { id: stringify!($check), run: $section::$check },)*]
    };
}

/// Every check, in the controls map's order.
pub const CHECKS: &[Check] = table! {
    approval::privilege_approval_required,
    approval::least_privilege_enforced,
    approval::elevation_timeout_30m,
    audit::audit_logging_privileged_actions,
    network::open_ports_approved,
    network::insecure_ports_remediated,
    openclaw::channel_allowlist_configured,
    openclaw::group_mentions_required,
    openclaw::gateway_loopback_only,
    host::secrets_permissions_hardened,
    approval::runtime_privilege_hook_installed,
    host::alternate_privilege_paths_restricted,
    host::backup_configured,
    host::update_hygiene,
    policy::prompt_injection_controls,
    policy::command_policy_enforced,
    policy::session_boundary_enforced,
    policy::multi_factor_approval,
    network::egress_allowlist_configured,
    network::egress_connections_approved,
    audit::audit_log_integrity,
    broker::broker_reachable,
    broker::shim_first_in_path,
    system::system_mode_boundary,
};

/// Runs one check by id; `None` for an unknown id.
pub fn run(id: &str, c: &Ctx) -> Option<Verdict> {
    CHECKS.iter().find(|k| k.id == id).map(|k| (k.run)(c))
}
