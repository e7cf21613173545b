//! The restart snapshot: live grants and session activity, written when the broker stops and
//! read back once at the next start. It is restored only when the file passes the ownership
//! checks and the audit log's last event (`broker_stopped`) names its sha256; never pending
//! requests. In user mode the agent owns both files, so this stops accidents, not the agent.

use std::path::Path;

use super::events::{int, s, Event, Fields};
use super::Gate;
use crate::clock::now_ms;
use crate::session;

/// The restart snapshot of grants and sessions.
const STATE_FILE: &str = "root-session-state.json";

/// The last complete event of the audit log, parsed; `None` when there is none.
fn last_audit_event(log: &Path) -> Option<serde_json::Value> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = std::fs::File::open(log).ok()?;
    let len = f.metadata().ok()?.len();
    let start = len.saturating_sub(256 * 1024);
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).ok()?;
    let body = tail.strip_suffix(b"\n")?;
    let line = body.rsplit(|b| *b == b'\n').next()?;
    serde_json::from_slice(line).ok()
}

impl Gate {
    /// Writes the restart snapshot when grants are live, and returns its sha256 for the
    /// `broker_stopped` event that vouches for it.
    pub(super) fn save_state(&self) -> Option<String> {
        let snap = self.store().snapshot();
        if snap.grants.is_empty() {
            return None;
        }
        let bytes = serde_json::to_vec(&snap).ok()?;
        let file = self.layout.state_dir.join(STATE_FILE);
        match crate::paths::write_private(&file, &bytes) {
            Ok(()) => Some(occ_audit::sha256_hex(&bytes)),
            Err(e) => {
                tracing::error!("cannot save grants for a restart: {e}");
                None
            }
        }
    }

    /// Reads the restart snapshot back, once: only a file that passes the ownership checks
    /// and whose sha256 the audit log's last event (`broker_stopped`) names is restored. The
    /// file is removed either way. Returns the event to record.
    pub(super) fn restore_state(&self) -> Option<(Event, Fields)> {
        let file = self.layout.state_dir.join(STATE_FILE);
        if std::fs::symlink_metadata(&file).is_err() {
            return None;
        }
        let checked = occ_policy::file::read_checked(&file, self.uid);
        let _ = std::fs::remove_file(&file);
        let mut f = Fields::new();
        f.insert("file".into(), s(file.display().to_string()));
        let reject = |mut f: Fields, why: String| {
            tracing::warn!("not restoring {}: {why}", STATE_FILE);
            f.insert("reason".into(), s(why));
            Some((Event::StateRejected, f))
        };
        let text = match checked {
            Ok(Some(t)) => t,
            Ok(None) => return None,
            Err(e) => return reject(f, e.to_string()),
        };
        let log = self.audit_log();
        let vouched = last_audit_event(&log)
            .filter(|e| e["event_type"] == "broker_stopped")
            .and_then(|e| e["snapshot_sha256"].as_str().map(str::to_string));
        if vouched.as_deref() != Some(occ_audit::sha256_hex(text.as_bytes()).as_str()) {
            return reject(
                f,
                "the audit log's last event is not a broker_stopped that names this file's sha256"
                    .into(),
            );
        }
        let snap: session::Snapshot = match serde_json::from_str(&text) {
            Ok(s) => s,
            Err(e) => return reject(f, format!("not a snapshot: {e}")),
        };
        let mut store = self.store();
        let before = store.grant_count();
        store.restore(snap, now_ms());
        f.insert("grants".into(), int(store.grant_count() - before));
        Some((Event::GrantsRestored, f))
    }
}
