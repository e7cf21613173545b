//! The `occ` command line. Each subcommand lives in its own module and returns an exit code:
//! 0 ok, 1 findings/refusal/tampering, 2 usage or runtime error (explain: deny is 1).

use clap::{Parser, Subcommand};

pub mod admin;
pub mod audit;
pub mod broker;
pub mod docs;
pub mod doctor;
pub mod explain;
pub mod grants;
pub mod install;
pub mod notify_openclaw;
pub mod policy;
pub mod sign;
pub mod watch;

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
    /// List pending requests, with requester text escaped (--watch: follow the queue live).
    Approvals(admin::ApprovalsArgs),
    /// Show a pending request and approve it (--once by default, --session, or --for/--uses).
    Approve(admin::ApproveArgs),
    /// Deny a pending request, or end an approved grant that has not run.
    Deny(admin::DenyArgs),
    /// Sign an approval statement with your SSH key (`ssh-keygen -Y sign -n occ-approval`).
    Sign(sign::SignArgs),
    /// List live grants: id, scope, uses left, expiry, session and command.
    Grants(grants::GrantsArgs),
    /// End grants: one (by request id), one task session's, or all.
    Revoke(grants::RevokeArgs),
    /// Send a pending request (JSON on stdin, as approval.notify gives it) to a chat through
    /// `openclaw message send`.
    NotifyOpenclaw(notify_openclaw::NotifyOpenclawArgs),
    /// Show whether the broker is up, its pid, mode, and sessions with their grants.
    Status(admin::StatusArgs),
    /// Drop grants: one task session's, or all.
    Drop(admin::DropArgs),
    /// Set or clear the approval token (only its hash is stored; the current token is needed).
    Token(admin::TokenArgs),
    /// Run one command through the sudo shim's path, with a reason for the approver.
    Exec(admin::ExecArgs),
    /// Install occ for this user (binaries, policy templates, broker, agent PATH), or with
    /// --system the root broker service for an agent user.
    Install(install::InstallArgs),
    /// Undo `occ install` (or `--system`), keeping the audit log and edited policy files.
    Uninstall(install::UninstallArgs),
    /// Check the installation: PATH order, broker, files, real sudo, audit log, policy.
    Doctor(doctor::DoctorArgs),
    /// The agent's part of `occ install --system`, run as the agent (internal).
    #[command(hide = true)]
    AgentHome(install::AgentHomeArgs),
    /// Print occ(8), or write every manual page under --dir (the installer's source).
    #[command(hide = true)]
    Man(docs::ManArgs),
    /// Print the completion script for bash, zsh or fish (the installer's source).
    #[command(hide = true)]
    Completions(docs::CompletionsArgs),
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
        Command::Approvals(a) => admin::approvals(a),
        Command::Approve(a) => admin::approve(a),
        Command::Deny(a) => admin::deny(a),
        Command::Sign(a) => sign::sign(a),
        Command::Grants(a) => grants::grants(a),
        Command::Revoke(a) => grants::revoke(a),
        Command::NotifyOpenclaw(a) => notify_openclaw::run(a),
        Command::Status(a) => admin::status(a),
        Command::Drop(a) => admin::drop_grants(a),
        Command::Token(a) => admin::token(a),
        Command::Exec(a) => admin::exec(a),
        Command::Install(a) => install::run(a),
        Command::Uninstall(a) => install::run_uninstall(a),
        Command::Doctor(a) => doctor::run(a),
        Command::AgentHome(a) => install::run_agent_home(a),
        Command::Man(a) => docs::run_man(a),
        Command::Completions(a) => docs::run_completions(a),
    }
}
