//! `occ audit verify|show|tail|init|rotate`: the admin's view of the hash-chained audit log.
//! Reading commands never write; every failure is a message naming the file and the fix, with
//! exit 2, and a broken chain is exit 1. Nothing here may panic on what a log file holds.
//! The arguments live here; `verify.rs`, `show.rs` (show, tail) and `lifecycle.rs` (init,
//! rotate) do the work.

mod approvals;
mod format;
mod lifecycle;
mod show;
mod verify;
mod when;

use std::path::PathBuf;

use clap::{Args, Subcommand};
use occ_audit::AuditError;

use crate::paths;

/// Arguments of `occ audit`.
#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// The `occ audit` subcommands.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the hash chain, seals, rotation links and head checkpoint (exit 0 intact,
    /// 1 broken, 2 unreadable).
    Verify(VerifyArgs),
    /// Print events like journalctl: filters, -o short|verbose|json|cat, colour and a pager on
    /// a terminal.
    Show(ShowArgs),
    /// Count events by outcome, user and event type over a window.
    Stats(StatsArgs),
    /// List approvals and denials; --verify re-checks each signed one against allowed_signers.
    Approvals(approvals::ApprovalsArgs),
    /// Print the last events, and with -f keep printing new ones.
    Tail(TailArgs),
    /// Create the log with a log_initialized genesis event; --seal starts sealing.
    Init(InitArgs),
    /// Move the log to privileged-audit-<UTC time>.jsonl and start a linked new one; refuses
    /// a broken chain (exit 1) unless --force.
    Rotate(RotateArgs),
}

/// `--log PATH`, shared by every subcommand.
#[derive(Args, Debug, Clone)]
pub struct LogArg {
    /// The audit log (default: the system broker's /var/log/occ/privileged-audit.jsonl where
    /// system mode is installed and OCC_HOME is not set, else
    /// $OCC_HOME/security/privileged-audit.jsonl).
    #[arg(long, value_name = "PATH")]
    pub log: Option<PathBuf>,
}

impl LogArg {
    pub(super) fn path(&self) -> PathBuf {
        self.log.clone().unwrap_or_else(|| {
            let own_home = std::env::var_os("OCC_HOME").is_some_and(|h| !h.is_empty());
            if !own_home && crate::layout::Layout::system_selected() {
                crate::layout::Layout::system().audit_log
            } else {
                paths::audit_log()
            }
        })
    }
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// The verification key k_0 (64 hex digits) printed by `occ audit init --seal`.
    #[arg(long, value_name = "HEX", conflicts_with = "key_file")]
    pub key: Option<String>,
    /// A file holding k_0 as hex.
    #[arg(long, value_name = "F")]
    pub key_file: Option<PathBuf>,
    /// A head checkpoint to check the last record against (default with no FILE: the log's
    /// own audit-head.json).
    #[arg(long, value_name = "F")]
    pub head: Option<PathBuf>,
    /// A copy held elsewhere to compare the chain with: a sudo_logsrvd JSON event log, or a
    /// syslog file with occ's structured data (from `audit.forward`).
    #[arg(long, value_name = "FILE")]
    pub witness: Option<PathBuf>,
    #[command(flatten)]
    pub log: LogArg,
    /// Log files to verify as one chain, oldest first (default: the log).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// `--since` and `--until`.
#[derive(Args, Debug, Clone)]
pub struct WindowArgs {
    /// Only events at or after this time: RFC 3339, a date (2026-12-06, midnight UTC), today,
    /// yesterday, now, an offset (-2h) or a duration ago (10m).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Only events before this time (same forms as --since).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub until: Option<String>,
}

/// What `show` selects events by.
#[derive(Args, Debug, Clone)]
pub struct FilterArgs {
    /// Only events requested by this user (submituser).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Only events whose command runs as this user.
    #[arg(long, value_name = "NAME")]
    pub runuser: Option<String>,
    /// Only events whose command line, command path or command name matches this glob
    /// (`systemctl`, '*nginx*').
    #[arg(long, value_name = "GLOB")]
    pub command: Option<String>,
    /// Only events of this request id.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Only events of this event_type.
    #[arg(long, value_name = "T")]
    pub event_type: Option<String>,
    /// Only events whose session_id (or occ_session_id) is ID.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// How each event is printed.
    #[arg(short = 'o', long, value_enum, default_value = "short")]
    pub output: format::Output,
    /// The same as -o json: the lines as stored (JSONL).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub window: WindowArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Only the newest N matching events.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Write to stdout even on a terminal (no `less -R`).
    #[arg(long)]
    pub no_pager: bool,
    #[command(flatten)]
    pub log: LogArg,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    pub window: WindowArgs,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub log: LogArg,
}

#[derive(Args, Debug)]
pub struct TailArgs {
    /// Keep printing events as they are appended (follows rotation).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// How many of the last events to print first.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 10)]
    pub lines: usize,
    /// How each event is printed.
    #[arg(short = 'o', long, value_enum, default_value = "short")]
    pub output: format::Output,
    /// The same as -o json: lines as stored (JSONL).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub log: LogArg,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Start sealing: print the verification key k_0 once, and seal every later event.
    #[arg(long)]
    pub seal: bool,
    /// Print one JSON object instead of text (with --seal it carries the key as `k0`).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub log: LogArg,
}

#[derive(Args, Debug)]
pub struct RotateArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Rotate even when the log's chain is broken, recording `rotated_broken_log` (with the
    /// break count and the first break) in the new file.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub log: LogArg,
}

/// Runs `occ audit`; returns the exit code.
pub fn run(args: AuditArgs) -> i32 {
    let (name, res) = match args.command {
        AuditCommand::Verify(a) => ("verify", verify::verify(a)),
        AuditCommand::Show(a) => ("show", show::show(a)),
        AuditCommand::Stats(a) => ("stats", show::stats(a)),
        AuditCommand::Approvals(a) => ("approvals", approvals::approvals(a)),
        AuditCommand::Tail(a) => ("tail", show::tail(a)),
        AuditCommand::Init(a) => ("init", lifecycle::init(a)),
        AuditCommand::Rotate(a) => ("rotate", lifecycle::rotate(a)),
    };
    match res {
        Ok(code) => code,
        Err(Failure::Pipe) => 0,
        Err(Failure::Msg(m)) => {
            eprintln!("occ audit {name}: {m}");
            2
        }
    }
}

/// Why a command stopped early: a message (exit 2), or a closed stdout (exit quietly).
enum Failure {
    Msg(String),
    Pipe,
}

impl From<AuditError> for Failure {
    fn from(e: AuditError) -> Self {
        Failure::Msg(e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::Pipe
        } else {
            Failure::Msg(format!("cannot write output: {e}"))
        }
    }
}

type Res = Result<i32, Failure>;

fn msg(s: impl Into<String>) -> Failure {
    Failure::Msg(s.into())
}
