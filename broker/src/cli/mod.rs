//! The `occ` command line. Each subcommand lives in its own module and returns an exit code:
//! 0 ok, 1 findings/refusal/tampering, 2 usage or runtime error (explain: deny is 1).

use clap::{Parser, Subcommand};

pub mod audit;
pub mod broker;
pub mod explain;
pub mod policy;

/// occ: the privilege gate for AI agents.
#[derive(Parser, Debug)]
#[command(name = "occ", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Verify, show, tail, initialise and rotate the hash-chained audit log.
    Audit(audit::AuditArgs),
    /// Run the broker daemon (started on demand by the sudo shim).
    Broker(broker::BrokerArgs),
    /// Show what `sudo ARGS…` would do and why, executing nothing.
    Explain(explain::ExplainArgs),
    /// Check or initialise the policy files.
    Policy(policy::PolicyArgs),
}

/// Parses `std::env::args` and runs the command; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    run(cli)
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Audit(a) => audit::run(a),
        Command::Broker(a) => broker::run(a),
        Command::Explain(a) => explain::run(a),
        Command::Policy(a) => policy::run(a),
    }
}
