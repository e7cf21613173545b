//! The scan state kept in `$OCC_HOME/assessments/scan-state.json`: when each finding was first
//! seen (so due dates do not slide), the audit verifier's checkpoint, and a short history of
//! runs for the dashboard. Written atomically with mode 0600; a corrupt file is replaced, and
//! the assessment says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::model::{RunRecord, Status};
use super::util::atomic_write_json;
use crate::error::ScanError;
use crate::paths::Paths;

/// File name of the state under `assessments/`.
pub const STATE_FILE: &str = "scan-state.json";
/// Runs kept in the history.
pub const HISTORY_LEN: usize = 30;

/// Per-check memory.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckMemory {
    /// When the current finding was first seen (RFC 3339), while it lasts.
    pub first_seen: Option<String>,
    /// Last status.
    pub last_status: Option<Status>,
}

/// Where incremental audit verification stopped last time.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditCheckpoint {
    /// The log file.
    pub file: PathBuf,
    /// Byte offset just past the last verified line.
    pub offset: u64,
    /// `seq` of the last verified event.
    pub seq: u64,
    /// `chain_hash` of the last verified event.
    pub hash: String,
    /// Byte offset where that event's line starts (it is re-checked on resume).
    #[serde(default)]
    pub line_start: u64,
    /// The rotated archives the chain was verified through, oldest first; a resume needs them
    /// unchanged, or the whole chain is verified again.
    #[serde(default)]
    pub archives: Vec<ArchiveMark>,
}

/// An archive as it was when the whole chain last verified.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ArchiveMark {
    /// The archive's path.
    pub file: PathBuf,
    /// Its length.
    pub len: u64,
    /// Its inode.
    pub ino: u64,
    /// Its modification time (seconds and nanoseconds).
    pub mtime: (i64, i64),
    /// Its inode change time (seconds and nanoseconds): an owner can set the mtime back after
    /// editing the file in place (`touch -r`), but any write or `touch` moves the ctime, which
    /// only the kernel sets. A mark from before this field (zero) never matches: the next
    /// check verifies the whole chain once.
    #[serde(default)]
    pub ctime: (i64, i64),
}

impl ArchiveMark {
    /// The mark of `file` as it is now.
    pub fn of(file: &std::path::Path) -> Option<ArchiveMark> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(file).ok()?;
        Some(ArchiveMark {
            file: file.to_path_buf(),
            len: m.len(),
            ino: m.ino(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// The whole state file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScanState {
    /// Format version (1).
    #[serde(default)]
    pub version: u32,
    /// Per-check memory.
    #[serde(default)]
    pub checks: BTreeMap<String, CheckMemory>,
    /// Audit verifier checkpoint.
    #[serde(default)]
    pub audit_checkpoint: Option<AuditCheckpoint>,
    /// Recent runs, oldest first.
    #[serde(default)]
    pub history: Vec<RunRecord>,
}

impl ScanState {
    /// The state file's path.
    pub fn path(paths: &Paths) -> PathBuf {
        paths.assessment_file(STATE_FILE)
    }

    /// Loads the state. A missing file is a fresh state; a corrupt one is a fresh state plus a
    /// warning naming the file (the next save replaces it).
    pub fn load(path: &Path) -> (ScanState, Option<String>) {
        match std::fs::read(path) {
            Ok(b) => match serde_json::from_slice::<ScanState>(&b) {
                Ok(s) => (s, None),
                Err(e) => (
                    ScanState::default(),
                    Some(format!(
                        "{}: unreadable scan state ({e}); started afresh, so first-seen dates restart today",
                        path.display()
                    )),
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (ScanState::default(), None),
            Err(e) => (
                ScanState::default(),
                Some(format!("{}: cannot read scan state: {e}", path.display())),
            ),
        }
    }

    /// Saves the state atomically (0600).
    pub fn save(&mut self, path: &Path) -> Result<(), ScanError> {
        self.version = 1;
        if self.history.len() > HISTORY_LEN {
            let cut = self.history.len() - HISTORY_LEN;
            self.history.drain(..cut);
        }
        atomic_write_json(path, self)
    }
}
