//! `occ broker [--foreground]`: runs the broker daemon. The connection layer lives in
//! `crate::daemon`; this module only maps arguments onto it.

use clap::Args;

/// Arguments of `occ broker`.
#[derive(Args, Debug)]
pub struct BrokerArgs {
    /// Stay in the foreground and log to stderr (default: detach, log to run/broker.log).
    #[arg(long)]
    pub foreground: bool,
}

/// Runs the broker with the default handler until it is stopped.
pub fn run(a: BrokerArgs) -> i32 {
    crate::daemon::run(
        crate::daemon::Options {
            foreground: a.foreground,
            home: crate::paths::occ_home(),
        },
        crate::daemon::default_handler(),
    )
}
