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
    /// Run the system broker: a root service (no setuid) with its config in /etc/occ, state in
    /// /var/lib/occ, the audit log in /var/log/occ and sockets in /run/occ. SIGHUP reloads.
    #[arg(long)]
    pub system: bool,
}

/// Runs the broker with the approval gate until it is stopped.
pub fn run(a: BrokerArgs) -> i32 {
    if a.system {
        let gate = crate::gate::Gate::new(crate::layout::Layout::system(), 0, None);
        return crate::daemon::run(
            crate::daemon::Options {
                foreground: a.foreground,
                home: std::path::PathBuf::from("/"),
                json: a.json,
                system: true,
            },
            std::sync::Arc::new(gate),
        );
    }
    let home = crate::paths::occ_home();
    let uid = nix::unistd::geteuid().as_raw();
    // The legacy plaintext token counts only from this process's own start environment or a
    // private $OCC_HOME/env file; callers can never supply it.
    let legacy = crate::legacy::token_sha256(&home);
    let gate = crate::gate::Gate::new(crate::layout::Layout::user(&home), uid, legacy);
    crate::daemon::run(
        crate::daemon::Options {
            foreground: a.foreground,
            home,
            json: a.json,
            system: false,
        },
        std::sync::Arc::new(gate),
    )
}
