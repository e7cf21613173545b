//! The one error type of occ-audit. Every message names the file or key at fault and the fix,
//! because the person reading it is an admin deciding whether privileged work may go on.

use std::io;
use std::path::PathBuf;

/// What went wrong in the audit log. A writer error means the caller must not proceed with the
/// privileged action it was about to record.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{path}: cannot {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path}: write failed ({source}); treat the action as not recorded: it must not \
         proceed. Fix: free space or repair the filesystem, then retry"
    )]
    WriteFailed {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path} is a symlink; occ refuses to follow it. Fix: remove the link (keep its target \
         as evidence) and let occ create a regular file there"
    )]
    Symlink { path: PathBuf },
    #[error("{path} is not a regular file. Fix: move it away and let occ create the log")]
    NotRegular { path: PathBuf },
    #[error(
        "{path} is owned by uid {owner}, not by this user (uid {me}) or root. Fix: `chown {me} \
         {path}` if it is yours, or investigate who replaced it"
    )]
    ForeignOwner { path: PathBuf, owner: u32, me: u32 },
    #[error("{path} is writable by group or others (mode {mode:o}). Fix: `chmod 600 {path}`")]
    Writable { path: PathBuf, mode: u32 },
    #[error(
        "{path}: the last record (line ending at byte {offset}) is not a valid audit record: \
         {detail}. occ will not chain onto it. Fix: run `occ audit verify --log {path}`, then \
         move the log and its audit-head.json aside as evidence; occ starts a new log"
    )]
    CorruptTail {
        path: PathBuf,
        offset: u64,
        detail: String,
    },
    #[error("{path}: {detail}. Fix: pass a sudo_logsrvd JSON event log or a syslog file with occ's structured data")]
    Witness { path: PathBuf, detail: String },
    #[error("event field `{key}` is filled in by the audit writer; remove it from the event")]
    ReservedField { key: String },
    #[error("event type {event_type:?} is empty or longer than 128 bytes")]
    BadEventType { event_type: String },
    #[error("the event is {len} bytes; audit records are limited to {max} bytes. Fix: shorten the fields")]
    TooLarge { len: usize, max: usize },
    #[error(
        "{path} is missing but {log} is sealed; occ cannot seal further events. Fix: restore \
         the key file from backup; the log stays verifiable with k_0"
    )]
    SealKeyMissing { path: PathBuf, log: PathBuf },
    #[error("{path} does not hold a 64-hex-digit seal key. Fix: restore it from backup")]
    SealKeyInvalid { path: PathBuf },
    #[error(
        "{path} already exists: sealing is already on for this log. Fix: nothing to do; use \
         the k_0 printed when sealing began"
    )]
    SealAlreadyOn { path: PathBuf },
    #[error("{path}: not a head checkpoint: {detail}. Fix: pass the audit-head.json occ wrote")]
    HeadInvalid { path: PathBuf, detail: String },
    #[error("{path} already exists; not overwriting it. Fix: wait a second and rotate again")]
    RotateTargetExists { path: PathBuf },
    #[error("{path} holds no events yet; nothing to rotate. Fix: run `occ audit init` first")]
    NothingToRotate { path: PathBuf },
    #[error("seal key must be 64 hex digits: {detail}")]
    BadKey { detail: String },
}

impl AuditError {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        AuditError::Io {
            path: path.into(),
            op,
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = AuditError> = std::result::Result<T, E>;
