//! Audit-log verification for `audit_log_integrity`, through occ-audit's streaming verifier,
//! resumed from the (offset, seq, hash) checkpoint kept in the scan state so a cycle stays fast
//! on a huge log. This module never writes the log.

use std::path::PathBuf;

use super::state::AuditCheckpoint;
use super::Paths;

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditOutcome {
    /// There is no log at this path.
    NoLog(String),
    /// The chain verifies.
    Intact {
        /// Events covered (from genesis, counting the checkpointed part).
        events: u64,
        /// Events verified in this run.
        new_events: u64,
        /// Whether the head checkpoint was present and matched.
        head_checked: bool,
        /// Last seq.
        last_seq: Option<u64>,
    },
    /// The chain is broken.
    Broken {
        /// Events read.
        events: u64,
        /// One line per break: `file:line seq reason detail`.
        breaks: Vec<String>,
    },
    /// The verifier is not available in this build.
    Unavailable(String),
    /// The log could not be read.
    Error(String),
}

/// The default audit log.
pub fn log_path(paths: &Paths) -> PathBuf {
    paths.security_file("privileged-audit.jsonl")
}

/// Verifies the log, resuming from `checkpoint` when it still applies. Returns the outcome and
/// the checkpoint to store (None to drop it).
pub fn verify(
    paths: &Paths,
    checkpoint: Option<&AuditCheckpoint>,
) -> (AuditOutcome, Option<AuditCheckpoint>) {
    let log = log_path(paths);
    match std::fs::symlink_metadata(&log) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (AuditOutcome::NoLog(log.display().to_string()), None)
        }
        Err(e) => {
            return (
                AuditOutcome::Error(format!("{}: {e}", log.display())),
                checkpoint.cloned(),
            )
        }
        Ok(_) => {}
    }
    (
        AuditOutcome::Unavailable(
            "occ-audit's streaming verifier is not linked into this build of occ-scan".into(),
        ),
        checkpoint.cloned(),
    )
}
