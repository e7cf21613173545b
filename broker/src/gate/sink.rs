//! The audit sink: how the gate's events reach the hash-chained log. Events are written at once
//! (one `write(2)` each) and made durable before any answer (`audit.fsync: always`) or by the
//! group commit (`batch`). An event that cannot be written is an `Err`: the caller must not go
//! on with whatever the event was about.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use occ_audit::{Value, Writer};
use occ_policy::file::{Fsync, PolicyConfig};

use super::events::{Event, Fields};
use super::Core;

/// How often the flusher makes group-committed audit events durable and moves the head.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);

impl Core {
    /// Appends one event, group-committed: written with one `write(2)` at once (so a crash of
    /// the broker loses nothing), fsynced with the next durable event or within 200 ms of
    /// appends. An `Err` means the event is not on record.
    pub fn audit(&self, event: Event, fields: Fields) -> Result<u64, String> {
        self.append(event, fields, false)
    }

    /// Appends one event and makes it, and everything before it, durable before returning.
    /// Used for the events that let something happen: `exec_start`, approvals, tokens.
    pub fn audit_durable(&self, event: Event, fields: Fields) -> Result<u64, String> {
        self.append(event, fields, true)
    }

    fn append(&self, event: Event, fields: Fields, durable: bool) -> Result<u64, String> {
        let mut guard = self.audit.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let path = self.audit_log();
            if let Some(dir) = path.parent() {
                create_private_dir(dir)?;
            }
            // Group commit is done here, not by the writer: the flusher thread syncs and
            // moves the head within FLUSH_EVERY, and durable events sync at once.
            let opts = occ_audit::Options {
                fsync: occ_audit::Fsync::Batch {
                    max_records: u32::MAX,
                    max_delay: Duration::from_secs(24 * 3600),
                },
                ..occ_audit::Options::default()
            };
            let w =
                Writer::open(&path, opts).map_err(|e| format!("cannot open the audit log: {e}"))?;
            *guard = Some(w);
        }
        let Some(w) = guard.as_mut() else {
            return Err("the audit log is not open".into());
        };
        if self.seal_required.load(Ordering::SeqCst) && !w.sealing() {
            // Fail closed: an unsealed record where sealing is required is not on record.
            return Err(format!(
                "broker.json sets audit.seal but {} is not sealed; run `occ audit init --seal` \
                 (or set audit.seal to false)",
                w.path().display()
            ));
        }
        // A copy for the forwarders, taken only when there are any.
        let copy = self.forward.any().then(|| fields.clone());
        let result = w.append(event.name(), fields).and_then(|a| {
            self.appended_next.fetch_max(a.seq + 1, Ordering::SeqCst);
            if let Some(mut f) = copy {
                f.insert(
                    "seq".into(),
                    Value::Int(i64::try_from(a.seq).unwrap_or(i64::MAX)),
                );
                f.insert("event_type".into(), Value::Str(event.name().into()));
                f.insert("timestamp".into(), Value::Str(a.timestamp.clone()));
                f.insert("chain_hash".into(), Value::Str(a.chain_hash.clone()));
                // Still under the audit lock: the spools see events in seq order.
                self.forward.offer(a.seq, &Value::Object(f).to_canonical());
            }
            if durable {
                // The spool copies first: nothing is durable locally without them.
                self.forward.sync_spools(a.seq + 1);
                w.sync_data()?;
                self.forward.durable_through(a.seq + 1);
            }
            Ok(a.seq)
        });
        self.audit_dirty.store(true, Ordering::SeqCst);
        self.audit_unsynced
            .store(!durable || result.is_err(), Ordering::SeqCst);
        result.map_err(|e| {
            // Reopen next time: the file may have been rotated or repaired.
            *guard = None;
            tracing::error!("audit write failed: {e}");
            format!("cannot write the audit log: {e}")
        })
    }

    /// Follows `audit.fsync` and `audit.seal` as the policy files now say.
    pub(super) fn follow_audit_config(&self, cfg: &PolicyConfig) {
        self.fsync_always
            .store(cfg.broker.audit.fsync == Fsync::Always, Ordering::SeqCst);
        self.seal_required
            .store(cfg.broker.audit.seal, Ordering::SeqCst);
        self.forward.follow(&cfg.broker.audit);
    }

    /// Puts each forwarder's overflow on record once its spool has room again, so the
    /// `forward_overflow` event itself reaches the destination (called by the maintenance
    /// thread).
    pub(super) fn record_forward_overflows(&self) {
        for o in self.forward.take_overflows() {
            let mut f = Fields::new();
            f.insert("forwarder".into(), Value::Str(o.forwarder));
            f.insert("dropped".into(), super::events::int(o.dropped));
            f.insert("first_dropped_seq".into(), super::events::int(o.first_seq));
            f.insert("last_dropped_seq".into(), super::events::int(o.last_seq));
            f.insert(
                "spool_max_events".into(),
                super::events::int(o.spool_max_events),
            );
            let _ = self.audit(Event::ForwardOverflow, f);
        }
        // Records a destination refused and the forwarder skipped, so the ones after them go
        // on: the local log holds the event; this says which copy is missing there, and why.
        for r in self.forward.take_refused() {
            let mut f = Fields::new();
            f.insert("forwarder".into(), Value::Str(r.forwarder));
            f.insert("refused_seq".into(), super::events::int(r.seq));
            f.insert("error".into(), Value::Str(r.error));
            let _ = self.audit(Event::ForwardRefused, f);
        }
    }

    /// With `audit.fsync: always`, makes every appended event durable: called before each
    /// answer leaves the broker and after events nobody is answered about (expiry, the end of
    /// a run). With `batch` the maintenance thread does it within [`FLUSH_EVERY`].
    pub(super) fn settle(&self) {
        if !self.fsync_always.load(Ordering::SeqCst)
            || !self.audit_unsynced.swap(false, Ordering::SeqCst)
        {
            return;
        }
        // Sync through a second handle, outside the lock: appends by other callers go on
        // meanwhile, and everything appended before the handle was taken becomes durable.
        let (handle, appended) = {
            let guard = self.audit.lock().unwrap_or_else(|p| p.into_inner());
            (
                guard.as_ref().map(Writer::data_handle),
                self.appended_next.load(Ordering::SeqCst),
            )
        };
        let synced = match handle {
            None => return,
            Some(h) => h.map_err(|e| e.to_string()).and_then(|f| {
                self.forward.sync_spools(appended);
                f.sync_data()
                    .map_err(|e| format!("fdatasync of the audit log: {e}"))
            }),
        };
        match synced {
            Ok(()) => {
                self.answer_syncs.fetch_add(1, Ordering::SeqCst);
                self.forward.durable_through(appended);
            }
            Err(e) => {
                tracing::error!("audit sync failed: {e}");
                self.audit_unsynced.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Makes every appended event durable and brings the head checkpoint up to date, if
    /// anything was appended since the last time.
    pub(super) fn flush_audit(&self) {
        if !self.audit_dirty.swap(false, Ordering::SeqCst) {
            return;
        }
        let mut guard = self.audit.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = guard.as_mut() {
            self.forward
                .sync_spools(self.appended_next.load(Ordering::SeqCst));
            match w.sync() {
                Ok(()) => {
                    self.audit_unsynced.store(false, Ordering::SeqCst);
                    self.forward
                        .durable_through(self.appended_next.load(Ordering::SeqCst));
                }
                Err(e) => {
                    tracing::error!("audit sync failed: {e}");
                    self.audit_dirty.store(true, Ordering::SeqCst);
                }
            }
        }
    }
}

fn create_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::Ordering;

    use super::super::events::{Event, Fields};
    use super::super::Gate;

    /// A gate over a home whose broker.json sets `audit.fsync` to `fsync` (absent: the
    /// default).
    fn gate_with(fsync: Option<&str>) -> (tempfile::TempDir, Gate) {
        let d = tempfile::tempdir().unwrap();
        let sec = d.path().join("security");
        std::fs::create_dir(&sec).unwrap();
        for dir in [d.path(), sec.as_path()] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let cfg = sec.join("broker.json");
        let body = fsync.map_or("{}".to_string(), |f| {
            format!(r#"{{"audit": {{"fsync": "{f}"}}}}"#)
        });
        std::fs::write(&cfg, body).unwrap();
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
        let uid = nix::unistd::geteuid().as_raw();
        let gate = Gate::new(crate::layout::Layout::user(d.path()), uid, None);
        (d, gate)
    }

    fn answer_syncs(g: &Gate) -> u64 {
        g.status_json()["audit"]["syncs_before_answers"]
            .as_u64()
            .unwrap()
    }

    #[test]
    fn fsync_always_makes_each_event_durable_before_an_answer() {
        for fsync in [None, Some("always")] {
            let (_d, g) = gate_with(fsync);
            assert_eq!(g.status_json()["audit"]["fsync"], "always", "{fsync:?}");
            g.audit(Event::RequestReceived, Fields::new()).unwrap();
            g.audit(Event::PolicyBlock, Fields::new()).unwrap();
            g.settle();
            assert_eq!(answer_syncs(&g), 1, "one sync covers both events");
            // Nothing new appended: no sync.
            g.settle();
            assert_eq!(answer_syncs(&g), 1);
            // A durable event leaves nothing to settle.
            g.audit_durable(Event::ExecStart, Fields::new()).unwrap();
            g.settle();
            assert_eq!(answer_syncs(&g), 1);
        }
    }

    #[test]
    fn spool_copies_are_fsynced_with_the_log_as_audit_fsync_says() {
        for fsync in ["always", "batch"] {
            let (d, g) = gate_with(Some(fsync));
            let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let cfg = d.path().join("security/broker.json");
            std::fs::write(
                &cfg,
                format!(
                    r#"{{"audit": {{"fsync": "{fsync}", "forward": [{{"type": "syslog",
                        "address": "{}"}}]}}}}"#,
                    rx.local_addr().unwrap()
                ),
            )
            .unwrap();
            let uid = nix::unistd::geteuid().as_raw();
            let loaded = occ_policy::file::load(&d.path().join("security"), uid, &|_| None);
            g.follow_audit_config(&loaded.unwrap());
            g.audit(Event::PolicyBlock, Fields::new()).unwrap();
            assert_eq!(g.forward.unsynced(), 1, "{fsync}");
            g.settle();
            // "always": synced before the answer; "batch": left to the group commit.
            let left = if fsync == "always" { 0 } else { 1 };
            assert_eq!(g.forward.unsynced(), left, "{fsync}");
            g.flush_audit();
            assert_eq!(g.forward.unsynced(), 0, "{fsync}");
            // Events that let something happen sync their copies at once in either mode.
            g.audit_durable(Event::ExecStart, Fields::new()).unwrap();
            assert_eq!(g.forward.unsynced(), 0, "{fsync}");
        }
    }

    #[test]
    fn fsync_batch_leaves_events_to_the_group_commit() {
        let (d, g) = gate_with(Some("batch"));
        assert_eq!(g.status_json()["audit"]["fsync"], "batch");
        g.audit(Event::PolicyBlock, Fields::new()).unwrap();
        g.settle();
        assert_eq!(answer_syncs(&g), 0);
        // Written all the same (one write(2) per event), and durable at the next flush.
        let log =
            std::fs::read_to_string(d.path().join("security/privileged-audit.jsonl")).unwrap();
        assert!(log.contains("\"policy_block\""), "{log}");
        g.flush_audit();
        assert!(!g.audit_unsynced.load(Ordering::SeqCst));
    }
}
