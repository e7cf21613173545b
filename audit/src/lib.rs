//! occ's audit log: canonical JSON lines, hash chain, seal, head checkpoint, rotation and a
//! streaming verifier. It must never rewrite or lose a complete record once written.
//!
//! The broker appends through [`Writer`]; `occ audit` reads through [`verify_files`] and
//! [`lines::LineReader`]. The log format is DESIGN.md's "Audit log" section.
//!
//! ```
//! use std::collections::BTreeMap;
//! use occ_audit::{Options, Value, VerifyOptions, Writer};
//! # let dir = tempfile::tempdir().expect("tempdir");
//! let log = dir.path().join("privileged-audit.jsonl");
//! let mut w = Writer::open(&log, Options::default())?;
//! let mut fields = BTreeMap::new();
//! fields.insert("runargv".to_owned(), Value::from(vec!["systemctl", "restart", "nginx"]));
//! // An Err here means the event is not on record: do not run the command.
//! let rec = w.append("command_run", fields)?;
//! assert_eq!(rec.seq, 0);
//!
//! let report = occ_audit::verify_files(&[log], VerifyOptions::default(), &mut |_| {})?;
//! assert!(report.intact());
//! # Ok::<(), occ_audit::AuditError>(())
//! ```
#![forbid(unsafe_code)]

mod batch;
pub mod canon;
pub mod chain;
mod error;
mod examine;
pub mod head;
pub mod history;
pub mod lines;
pub mod rotate;
pub mod seal;
mod sys;
pub mod verify;
pub mod witness;

pub use canon::Value;
pub use chain::{now_rfc3339, Appended, Fsync, Options, Writer};
pub use error::{AuditError, Result};
pub use head::Head;
pub use history::{history, verify_history, History};
pub use rotate::Rotated;
pub use seal::SealKey;
pub use verify::{open_for_reading, verify_files, After, Break, Reason, Report, VerifyOptions};

/// The longest record (line, without its newline) the writer writes and the verifier reads.
/// Longer lines are reported as `invalid_json` and skipped without being buffered.
pub const MAX_LINE: usize = 1 << 20;

/// Lowercase hex SHA-256, as used for `chain_hash` and `log_recovered.sha256`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    occ_base::hex::encode(&sha2::Sha256::digest(bytes))
}
