//! The restart snapshot: live grants, session activity and pending requests, written when the
//! broker stops cleanly and read back once at the next start. It is restored only when the file
//! passes the ownership checks and the audit log's last event (`broker_stopped`) names its
//! sha256; each pending request restored is audited `pending_restored`. In user mode the agent
//! owns both files, so this stops accidents, not the agent. A SIGKILLed broker writes none.

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
        let snap = self.store().state();
        if snap.grants.is_empty() && snap.pending.is_empty() {
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
    pub(super) fn restore_state(&self) -> Vec<(Event, Fields)> {
        let file = self.layout.state_dir.join(STATE_FILE);
        if std::fs::symlink_metadata(&file).is_err() {
            return Vec::new();
        }
        let checked = occ_policy::file::read_checked(&file, self.uid);
        let _ = std::fs::remove_file(&file);
        let mut f = Fields::new();
        f.insert("file".into(), s(file.display().to_string()));
        let reject = |mut f: Fields, why: String| {
            tracing::warn!("not restoring {}: {why}", STATE_FILE);
            f.insert("reason".into(), s(why));
            vec![(Event::StateRejected, f)]
        };
        let text = match checked {
            Ok(Some(t)) => t,
            Ok(None) => return Vec::new(),
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
        let restored = pending_restored(&snap);
        let mut store = self.store();
        let before = store.grant_count();
        store.restore(snap, now_ms());
        f.insert("grants".into(), int(store.grant_count() - before));
        let mut out = vec![(Event::GrantsRestored, f)];
        out.extend(restored);
        out
    }
}

/// One `pending_restored` event per pending request a snapshot carries: its id, expiry and
/// what the approver will see, so the log shows what came back (both modes).
pub(super) fn pending_restored(snap: &session::Snapshot) -> Vec<(Event, Fields)> {
    snap.pending
        .iter()
        .map(|p| {
            let mut f = super::events::pending(p);
            f.insert("expires_ms".into(), int(p.expires_ms));
            (Event::PendingRestored, f)
        })
        .collect()
}
