//! occ-scan's one error type, for the socket scans and the compliance half alike. Every
//! message names the file, key or tool at fault and the fix; a scan that fails is an error
//! (exit 2), never an empty, clean-looking result.

use std::io;
use std::path::{Path, PathBuf};

/// Why a scan, a file occ-scan reads or writes, a child process or a cycle failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// A file exists but cannot be read.
    #[error("cannot read {path}: {source}; check that it is a readable file")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A monitoring file is not valid JSON.
    #[error("{path} is not valid JSON ({detail}); it must be a JSON array of rule objects")]
    Json {
        /// The file.
        path: PathBuf,
        /// serde_json's description, with line and column.
        detail: String,
    },
    /// A monitoring file's top level is not an array.
    #[error("{path}: the top level must be a JSON array of rule objects, found {found}")]
    NotArray {
        /// The file.
        path: PathBuf,
        /// The JSON type found instead.
        found: &'static str,
    },
    /// A rule is not a JSON object.
    #[error("{path}: rule {index} must be a JSON object, found {found}")]
    RuleNotObject {
        /// The file.
        path: PathBuf,
        /// The rule's index in the array, from 0.
        index: usize,
        /// The JSON type found instead.
        found: &'static str,
    },
    /// A rule has a key the format does not define (a typo would silently widen a rule).
    #[error("{path}: rule {index} has unknown key \"{key}\"; remove it or use one of: {allowed}")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The rule's index in the array, from 0.
        index: usize,
        /// The unknown key.
        key: String,
        /// The keys this file accepts.
        allowed: &'static str,
    },
    /// A rule's value has the wrong type or an invalid value.
    #[error("{path}: rule {index}, key \"{key}\": {problem}")]
    InvalidValue {
        /// The file.
        path: PathBuf,
        /// The rule's index in the array, from 0.
        index: usize,
        /// The key at fault.
        key: &'static str,
        /// What is wrong and what to write instead.
        problem: String,
    },
    /// The /proc socket tables cannot be read.
    #[error(
        "cannot read the socket tables under {root}: {detail}; mount /proc, or use --method lsof"
    )]
    ProcUnavailable {
        /// The proc root that was tried.
        root: PathBuf,
        /// What failed.
        detail: String,
    },
    /// lsof cannot be found or started.
    #[error("lsof is not available ({detail}); install lsof, or use --method proc on Linux")]
    LsofUnavailable {
        /// What failed.
        detail: String,
    },
    /// An external tool ran but failed.
    #[error("{tool} failed: {detail}")]
    ToolFailed {
        /// The tool.
        tool: String,
        /// Exit status, timeout or stderr.
        detail: String,
    },
    /// Neither socket source works (automatic method selection).
    #[error("no socket source works: {proc_error}; and {lsof_error}")]
    NoSource {
        /// Why /proc failed.
        proc_error: String,
        /// Why lsof failed.
        lsof_error: String,
    },
    /// A file cannot be written.
    #[error(
        "cannot write {path}: {source}; check the directory's owner, permissions and free space"
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A file that would be replaced already exists.
    #[error("{path} already exists; review it, then pass --force to replace it atomically")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Neither OCC_HOME nor HOME is set, and this user has no home directory.
    #[error("cannot find the occ home: set OCC_HOME (or HOME, for ~/.openclaw)")]
    NoHome,
    /// A file's content is not what occ-scan expects.
    #[error("{path}: {key}: {message} (fix: {fix})")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key or position at fault.
        key: String,
        /// What is wrong.
        message: String,
        /// How to fix it.
        fix: String,
    },
    /// An environment variable cannot be used (`OPENCLAW_PROFILE`, `OPENCLAW_STATE_DIR`, …);
    /// the message names it and the fix.
    #[error("{message}")]
    Environment {
        /// What is wrong with which variable, and the fix.
        message: String,
    },
    /// Another cycle holds the lock.
    #[error("{path}: another occ-scan cycle is running (fix: wait for it, or remove a stale lock holder)")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A child process could not be started or waited for.
    #[error("{program}: {message}")]
    Child {
        /// The program.
        program: String,
        /// What happened.
        message: String,
    },
    /// The notifier configuration is refused.
    #[error("notifier refused: {message} (fix: {fix})")]
    NotifierRefused {
        /// Why.
        message: String,
        /// How to fix it.
        fix: String,
    },
    /// A schedule could not be installed or removed.
    #[error("schedule: {message} (fix: {fix})")]
    Schedule {
        /// What failed.
        message: String,
        /// How to fix it.
        fix: String,
    },
}

impl ScanError {
    pub(crate) fn invalid(path: &Path, key: &str, message: impl Into<String>, fix: &str) -> Self {
        ScanError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            message: message.into(),
            fix: fix.to_string(),
        }
    }

    /// The exit code for this error: 1 for a refusal (a file that `--force` would replace,
    /// a cycle that is already running), 2 when the run itself failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            ScanError::Exists { .. } | ScanError::Locked { .. } => 1,
            _ => 2,
        }
    }
}
