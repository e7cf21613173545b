//! `occ broker [--foreground]`: runs the broker daemon. The connection layer lives in
//! `crate::daemon`; this module only maps arguments onto it.

use clap::Args;

/// Arguments of `occ broker`.
#[derive(Args, Debug)]
pub struct BrokerArgs {
    /// Stay in the foreground and log to stderr (default: detach, log to run/broker.log).
    #[arg(long)]
    pub foreground: bool,
    /// Report the detached start as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Runs the broker with the approval gate until it is stopped.
pub fn run(a: BrokerArgs) -> i32 {
    let home = crate::paths::occ_home();
    let uid = nix::unistd::geteuid().as_raw();
    // The legacy plaintext token counts only from this process's own start environment or a
    // private $OCC_HOME/env file; callers can never supply it.
    let legacy = crate::legacy::token_sha256(&home);
    let gate = crate::gate::Gate::new(home.clone(), uid, legacy);
    crate::daemon::run(
        crate::daemon::Options {
            foreground: a.foreground,
            home,
            json: a.json,
        },
        std::sync::Arc::new(gate),
    )
}
