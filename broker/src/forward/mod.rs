//! Audit forwarding: a copy of every event the broker writes goes to each `audit.forward`
//! destination (sudo_logsrvd, syslog), so the trail outlives a host that could rewrite it.
//! Events wait in a per-destination spool (one 0600 file per event in a 0700 directory) and a
//! background thread sends them in seq order. It must never block or change a decision: an
//! offer only writes a spool file, a full spool drops (and counts) instead of waiting, and a
//! down destination only delays delivery.
//!
//! Durability: the spool files present are the read position (a file is deleted once its
//! destination has the event). The sink fsyncs new spool files, and the directory, just before
//! each fsync of the local log (`sync_spools`), so every event durable locally has a durable
//! spool copy; only events durable locally are sent. Delivery is at least once: a crash can
//! lose the deletion of a sent event's file (the directory is fsynced every `ACK_SYNC_EVERY`
//! deletions and when the spool empties), and that event is sent again after the restart.

mod logsrvd;
mod syslog;
mod tls;

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use occ_policy::file::{AuditConfig, Forward};
use serde_json::{json, Value as Json};

pub use logsrvd::proto as logsrv_proto;

/// How long a forwarder waits before trying a down destination again, at most.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Deletions of sent events between two fsyncs of the spool directory (and so, at most, the
/// events sent twice after a crash).
const ACK_SYNC_EVERY: u32 = 64;

/// A way to deliver one event. `Ok` means the destination has it (as far as its protocol can
/// say); `Err` means try again later.
trait Transport: Send {
    fn send(&mut self, ev: &Json) -> Result<(), SendError>;
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The destination could not be reached, or the session broke: send it again later.
    Retry(String),
    /// The destination read the record and refused it (sudo_logsrvd's `ServerMessage.error`):
    /// the same record gets the same answer, so after [`REFUSALS_BEFORE_SKIP`] in a row it is
    /// put on record as `forward_refused` and the events after it go on.
    Refused(String),
}

impl From<String> for SendError {
    fn from(e: String) -> Self {
        SendError::Retry(e)
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Retry(e) | SendError::Refused(e) => f.write_str(e),
        }
    }
}

/// Refusals of one record in a row before it is skipped (a refusal that came from a server
/// that was restarting gets a second chance).
const REFUSALS_BEFORE_SKIP: u32 = 3;

/// A record a destination refused, skipped so the ones after it go on: put on record as
/// `forward_refused` (the local log still holds the event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub forwarder: String,
    pub seq: u64,
    pub error: String,
}

/// This host's name, as `submithost` and the syslog HOSTNAME.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A forward overflow to put on record: `dropped` events (seq `first..=last`) never reached
/// `forwarder`'s spool because it was full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overflow {
    pub forwarder: String,
    pub dropped: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub spool_max_events: usize,
}

/// Every configured forwarder of one broker.
pub struct Forwarders {
    spool_root: PathBuf,
    /// Events with a seq below this are durable in the local log and may leave the host.
    durable_next: Arc<AtomicU64>,
    active: Mutex<Vec<Arc<Forwarder>>>,
}

impl Forwarders {
    /// Forwarders spooling under `spool_root` (created 0700 on first use).
    pub fn new(spool_root: PathBuf) -> Forwarders {
        Forwarders {
            spool_root,
            durable_next: Arc::new(AtomicU64::new(0)),
            active: Mutex::new(Vec::new()),
        }
    }

    /// Whether any forwarder is configured (so the sink need not build the event otherwise).
    pub fn any(&self) -> bool {
        !self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Forwarder>>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows `audit.forward` as broker.json says now: unchanged destinations keep their
    /// thread and spool; removed ones stop (their spool stays on disk, and drains if they come
    /// back); new ones start, first sending whatever their spool still holds.
    pub fn follow(&self, cfg: &AuditConfig) {
        let mut active = self.lock();
        let same = active.len() == cfg.forward.len()
            && active.iter().zip(&cfg.forward).all(|(a, f)| &a.target == f);
        for f in active.iter() {
            f.cap.store(cfg.spool_max_events, Ordering::SeqCst);
        }
        if same {
            return;
        }
        let mut next = Vec::new();
        for target in &cfg.forward {
            if let Some(pos) = active.iter().position(|a| &a.target == target) {
                next.push(active.remove(pos));
                continue;
            }
            match Forwarder::start(
                target.clone(),
                &self.spool_root,
                cfg.spool_max_events,
                Arc::clone(&self.durable_next),
            ) {
                Ok(f) => next.push(f),
                Err(e) => tracing::error!("audit forwarder {}: {e}", target.label()),
            }
        }
        for old in active.drain(..) {
            old.stop();
        }
        *active = next;
    }

    /// Offers one appended event (its canonical JSON, with `seq`) to every forwarder. Called
    /// in seq order under the audit lock; it never waits for a destination.
    pub fn offer(&self, seq: u64, event: &[u8]) {
        for f in self.lock().iter() {
            f.offer(seq, event);
        }
    }

    /// Makes every spool copy of an event below `next` durable (the files and the spool
    /// directories). Called just before the local log is fsynced through `next`, so an event
    /// never becomes durable locally without its copies.
    pub fn sync_spools(&self, next: u64) {
        let active: Vec<Arc<Forwarder>> = self.lock().iter().cloned().collect();
        for f in active {
            if let Err(e) = f.sync_spool(next) {
                // The local log is the record; a copy that may not survive a crash is logged,
                // never a reason to hold up the audit.
                tracing::error!("audit forwarder {}: spool fsync failed: {e}", f.label);
            }
        }
    }

    /// How many spool copies wait for their fsync, over all forwarders (for tests).
    #[cfg(test)]
    pub(crate) fn unsynced(&self) -> usize {
        self.lock().iter().map(|f| f.lock().unsynced.len()).sum()
    }

    /// Everything appended below `next` is durable locally: it may be sent.
    pub fn durable_through(&self, next: u64) {
        self.durable_next.fetch_max(next, Ordering::SeqCst);
        for f in self.lock().iter() {
            f.wake.notify_all();
        }
    }

    /// Records the destinations refused and that were skipped, ready to be put on record.
    pub fn take_refused(&self) -> Vec<Refused> {
        self.lock().iter().flat_map(|f| f.take_refused()).collect()
    }

    /// Overflows ready to be put on record: each forwarder that dropped events and whose spool
    /// has room again (so the `forward_overflow` event itself gets through).
    pub fn take_overflows(&self) -> Vec<Overflow> {
        self.lock()
            .iter()
            .filter_map(|f| f.take_overflow())
            .collect()
    }

    /// Each forwarder's state for `occ status`.
    pub fn status(&self) -> Json {
        Json::Array(self.lock().iter().map(|f| f.status()).collect())
    }
}

/// How long a stopping broker keeps sending what is already spooled, so a clean stop leaves
/// nothing behind when the destination is up (what is left waits for the next start).
pub const DRAIN_ON_STOP: Duration = Duration::from_secs(2);

impl Forwarders {
    /// A clean stop: each forwarder sends what is durable and spooled, for at most
    /// [`DRAIN_ON_STOP`], then stops. Called after the broker's last event is durable.
    pub fn finish(&self) {
        let until = std::time::Instant::now() + DRAIN_ON_STOP;
        let stopping: Vec<Arc<Forwarder>> = self.lock().drain(..).collect();
        for f in &stopping {
            f.drain_then_stop(until);
        }
        for f in &stopping {
            f.join();
        }
    }
}

impl Drop for Forwarders {
    fn drop(&mut self) {
        self.finish();
    }
}

/// One destination: its spool and its sending thread.
struct Forwarder {
    target: Forward,
    label: String,
    dir: PathBuf,
    cap: AtomicUsize,
    spool: Mutex<Spool>,
    wake: Condvar,
    stopped: AtomicBool,
    /// Set when stopping cleanly: keep sending what is durable until then.
    drain_until: Mutex<Option<std::time::Instant>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    sent: AtomicU64,
}

#[derive(Default)]
struct Spool {
    /// Spooled seqs, oldest first.
    queue: VecDeque<u64>,
    /// Spooled seqs whose files are not yet fsynced, oldest first.
    unsynced: Vec<u64>,
    /// Files were created or deleted since the directory was last fsynced.
    dir_dirty: bool,
    dropped: u64,
    first_dropped: u64,
    last_dropped: u64,
    state: &'static str,
    last_error: Option<String>,
    last_error_at: Option<String>,
    /// Records skipped after the destination refused them, not yet on record.
    refused: Vec<Refused>,
}

impl Forwarder {
    fn start(
        target: Forward,
        root: &Path,
        cap: usize,
        durable_next: Arc<AtomicU64>,
    ) -> Result<Arc<Forwarder>, String> {
        let label = target.label();
        let dir = root.join(spool_name(&target));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("cannot create the spool {}: {e}", dir.display()))?;
        let mut queue: Vec<u64> = std::fs::read_dir(&dir)
            .map_err(|e| format!("cannot read the spool {}: {e}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".json"))
                    .and_then(|n| n.parse().ok())
            })
            .collect();
        queue.sort_unstable();
        let transport: Box<dyn Transport> = match &target {
            Forward::Logsrvd {
                address,
                tls,
                ca,
                cert,
                key,
            } => {
                let files = match (tls, ca) {
                    (false, _) => None,
                    (true, Some(ca)) => Some(tls::TlsFiles {
                        ca: ca.clone(),
                        client: cert.clone().zip(key.clone()),
                    }),
                    // The loader refuses this; never fall back to plain TCP if it gets here.
                    (true, None) => return Err("\"tls\": true without \"ca\"".into()),
                };
                Box::new(logsrvd::Logsrvd::new(address, files))
            }
            Forward::Syslog {
                socket,
                address,
                protocol,
            } => Box::new(syslog::Syslog::new(
                socket.clone(),
                address.clone(),
                *protocol,
            )),
        };
        let f = Arc::new(Forwarder {
            target,
            label,
            dir,
            cap: AtomicUsize::new(cap),
            spool: Mutex::new(Spool {
                queue: queue.into_iter().collect(),
                state: "idle",
                ..Spool::default()
            }),
            wake: Condvar::new(),
            stopped: AtomicBool::new(false),
            drain_until: Mutex::new(None),
            thread: Mutex::new(None),
            sent: AtomicU64::new(0),
        });
        let me = Arc::clone(&f);
        let handle = std::thread::Builder::new()
            .name("occ-forward".into())
            .spawn(move || me.run(transport, &durable_next))
            .map_err(|e| format!("cannot start the forwarding thread: {e}"))?;
        *f.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(f)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn file(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.json"))
    }

    fn offer(&self, seq: u64, event: &[u8]) {
        let mut sp = self.lock();
        // Spool files at or past a new seq were left by a broker whose log lost its unsynced
        // tail in a crash after the spool was fsynced: the log has given their seqs to other
        // events, so they were never on record and must not leave the host.
        while sp.queue.back().is_some_and(|&last| last >= seq) {
            if let Some(stale) = sp.queue.pop_back() {
                tracing::warn!(
                    "audit forwarder {}: dropping spooled seq {stale}, which the local log \
                     does not hold (lost in a crash before it was durable)",
                    self.label
                );
                let _ = std::fs::remove_file(self.file(stale));
                sp.unsynced.retain(|&s| s != stale);
                sp.dir_dirty = true;
            }
        }
        if sp.queue.len() >= self.cap.load(Ordering::SeqCst) {
            if sp.dropped == 0 {
                sp.first_dropped = seq;
            }
            sp.dropped += 1;
            sp.last_dropped = seq;
            return;
        }
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(self.file(seq))
            .and_then(|mut f| f.write_all(event));
        match written {
            Ok(()) => {
                sp.queue.push_back(seq);
                sp.unsynced.push(seq);
                sp.dir_dirty = true;
                self.wake.notify_all();
            }
            Err(e) => {
                tracing::error!("audit forwarder {}: spool write failed: {e}", self.label);
                if sp.dropped == 0 {
                    sp.first_dropped = seq;
                }
                sp.dropped += 1;
                sp.last_dropped = seq;
            }
        }
    }

    /// fsyncs the spool files of events below `next`, then the directory (their names, and
    /// the deletions of sent events since the last time).
    fn sync_spool(&self, next: u64) -> Result<(), String> {
        let (files, dir) = {
            let mut sp = self.lock();
            let cut = sp.unsynced.partition_point(|&s| s < next);
            let files: Vec<u64> = sp.unsynced.drain(..cut).collect();
            let dir = std::mem::take(&mut sp.dir_dirty);
            (files, dir)
        };
        for seq in files {
            match std::fs::File::open(self.file(seq)) {
                Ok(f) => f
                    .sync_all()
                    .map_err(|e| format!("fsync {}: {e}", self.file(seq).display()))?,
                // Sent and deleted meanwhile (a restarted broker's events), or dropped as stale.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("{}: {e}", self.file(seq).display())),
            }
        }
        if dir {
            self.sync_dir()?;
        }
        Ok(())
    }

    fn sync_dir(&self) -> Result<(), String> {
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("fsync {}: {e}", self.dir.display()))
    }

    fn take_refused(&self) -> Vec<Refused> {
        std::mem::take(&mut self.lock().refused)
    }

    fn take_overflow(&self) -> Option<Overflow> {
        let mut sp = self.lock();
        let cap = self.cap.load(Ordering::SeqCst);
        if sp.dropped == 0 || sp.queue.len() >= cap {
            return None;
        }
        let o = Overflow {
            forwarder: self.label.clone(),
            dropped: sp.dropped,
            first_seq: sp.first_dropped,
            last_seq: sp.last_dropped,
            spool_max_events: cap,
        };
        sp.dropped = 0;
        Some(o)
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.wake.notify_all();
    }

    /// Stops once the spool holds nothing sendable, or at `until`, whichever comes first.
    fn drain_then_stop(&self, until: std::time::Instant) {
        *self.drain_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(until);
        self.stop();
    }

    fn join(&self) {
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// Whether a stopped forwarder should still send `front` (a clean stop's drain).
    fn draining(&self, front: Option<u64>, durable_next: u64) -> bool {
        let until = *self.drain_until.lock().unwrap_or_else(|p| p.into_inner());
        until.is_some_and(|t| std::time::Instant::now() < t)
            && front.is_some_and(|seq| seq < durable_next)
    }

    fn status(&self) -> Json {
        let sp = self.lock();
        json!({
            "name": self.label,
            "state": sp.state,
            "last_error": sp.last_error,
            "last_error_at": sp.last_error_at,
            "backlog": sp.queue.len(),
            "sent": self.sent.load(Ordering::SeqCst),
            "dropped_pending_record": sp.dropped,
            "spool": self.dir.display().to_string(),
            "spool_max_events": self.cap.load(Ordering::SeqCst),
        })
    }

    /// The sending loop: the oldest spooled event durable locally, until the destination has
    /// it. Spool files a previous broker left count only once the local log is durable past
    /// them (after this broker's first sync), so a copy the log lost is never sent.
    fn run(&self, mut transport: Box<dyn Transport>, durable_next: &AtomicU64) {
        let mut backoff = FIRST_BACKOFF;
        let mut unsynced_acks = 0u32;
        // (seq, refusals in a row) of the record at the head of the queue.
        let mut refusals: (u64, u32) = (u64::MAX, 0);
        loop {
            let next = {
                let mut sp = self.lock();
                loop {
                    if self.stopped.load(Ordering::SeqCst)
                        && !self.draining(
                            sp.queue.front().copied(),
                            durable_next.load(Ordering::SeqCst),
                        )
                    {
                        return;
                    }
                    match sp.queue.front() {
                        Some(&seq) if seq < durable_next.load(Ordering::SeqCst) => break seq,
                        _ => {
                            sp = self
                                .wake
                                .wait_timeout(sp, Duration::from_millis(200))
                                .unwrap_or_else(|p| p.into_inner())
                                .0;
                        }
                    }
                }
            };
            let path = self.file(next);
            let event = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Json>(&b).map_err(|e| e.to_string()));
            let result = match &event {
                Ok(ev) => transport.send(ev),
                Err(e) => {
                    // A spool file we cannot read is not an event we can send; say so and go on.
                    tracing::error!(
                        "audit forwarder {}: unreadable spool file {}: {e}",
                        self.label,
                        path.display()
                    );
                    Ok(())
                }
            };
            let mut sp = self.lock();
            let result = match result {
                Err(SendError::Refused(e)) => {
                    refusals = if refusals.0 == next {
                        (next, refusals.1 + 1)
                    } else {
                        (next, 1)
                    };
                    if refusals.1 >= REFUSALS_BEFORE_SKIP {
                        tracing::error!(
                            "audit forwarder {}: seq {next} refused {} times, skipped: {e}",
                            self.label,
                            refusals.1
                        );
                        sp.refused.push(Refused {
                            forwarder: self.label.clone(),
                            seq: next,
                            error: e.clone(),
                        });
                        sp.last_error = Some(format!("seq {next} skipped: {e}"));
                        sp.last_error_at = Some(occ_audit::now_rfc3339());
                        Ok(())
                    } else {
                        Err(e)
                    }
                }
                Err(SendError::Retry(e)) => Err(e),
                Ok(()) => Ok(()),
            };
            match result {
                Ok(()) => {
                    let _ = std::fs::remove_file(&path);
                    sp.queue.pop_front();
                    sp.state = "connected";
                    self.sent.fetch_add(1, Ordering::SeqCst);
                    backoff = FIRST_BACKOFF;
                    unsynced_acks += 1;
                    if unsynced_acks >= ACK_SYNC_EVERY || sp.queue.is_empty() {
                        // The deletions so far become durable: after a crash at most the
                        // events sent since are sent again.
                        sp.dir_dirty = false;
                        drop(sp);
                        unsynced_acks = 0;
                        if let Err(e) = self.sync_dir() {
                            tracing::error!("audit forwarder {}: {e}", self.label);
                        }
                    }
                }
                Err(e) => {
                    sp.state = "retrying";
                    sp.last_error = Some(e);
                    sp.last_error_at = Some(occ_audit::now_rfc3339());
                    if self.stopped.load(Ordering::SeqCst) {
                        // Stopping: a destination that is down gets no more tries now.
                        return;
                    }
                    let _ = self
                        .wake
                        .wait_timeout(sp, backoff)
                        .unwrap_or_else(|p| p.into_inner());
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// The spool directory's name: the kind and a digest of the whole entry, so two entries never
/// share a spool and an unchanged entry finds its spool again after a restart.
fn spool_name(target: &Forward) -> String {
    use sha2::Digest;
    let kind = match target {
        Forward::Logsrvd { .. } => "logsrvd",
        Forward::Syslog { .. } => "syslog",
    };
    let digest = sha2::Sha256::digest(target.label().as_bytes());
    format!("{kind}-{}", &occ_base::hex::encode(&digest)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use occ_policy::file::SyslogProtocol;
    use std::net::UdpSocket;

    /// Forwarders with one syslog/udp destination: a socket this test reads.
    fn udp_forwarders(root: &Path) -> (Forwarders, UdpSocket, Forward) {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let target = Forward::Syslog {
            socket: None,
            address: Some(rx.local_addr().unwrap().to_string()),
            protocol: Some(SyslogProtocol::Udp),
        };
        let f = Forwarders::new(root.to_path_buf());
        (f, rx, target)
    }

    fn follow(f: &Forwarders, target: &Forward) {
        f.follow(&AuditConfig {
            forward: vec![target.clone()],
            ..AuditConfig::default()
        });
    }

    fn event(seq: u64, marker: &str) -> Vec<u8> {
        format!(r#"{{"seq": {seq}, "event_type": "policy_block", "marker": "{marker}"}}"#)
            .into_bytes()
    }

    fn received(rx: &UdpSocket) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = rx.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        out
    }

    fn markers(got: &[String]) -> Vec<String> {
        got.iter()
            .map(|l| {
                let i = l.find("\"marker\":\"").expect("marker") + 10;
                l[i..i + l[i..].find('"').unwrap()].to_string()
            })
            .collect()
    }

    #[test]
    fn spool_copies_the_log_lost_in_a_crash_are_dropped_never_sent() {
        let d = tempfile::tempdir().unwrap();
        let (f, rx, target) = udp_forwarders(d.path());
        // A previous broker spooled 3, 4 and 5; its log kept only 3 (4 and 5 were unsynced).
        let dir = d.path().join(spool_name(&target));
        std::fs::create_dir_all(&dir).unwrap();
        for (seq, m) in [(3, "kept3"), (4, "lost4"), (5, "lost5")] {
            std::fs::write(dir.join(format!("{seq:020}.json")), event(seq, m)).unwrap();
        }
        follow(&f, &target);
        // Nothing leaves before this broker's log is durable past the old files.
        assert!(received(&rx).is_empty());
        // The restarted log gives seq 4 to its first event, and syncs it.
        f.offer(4, &event(4, "started4"));
        f.sync_spools(5);
        f.durable_through(5);
        let mut got = Vec::new();
        for _ in 0..20 {
            got.extend(received(&rx));
            if got.len() >= 2 {
                break;
            }
        }
        assert_eq!(markers(&got), ["kept3", "started4"], "{got:?}");
        assert!(!dir.join(format!("{:020}.json", 5)).exists());
    }

    #[test]
    fn sync_spools_fsyncs_exactly_the_copies_below_the_log_sync() {
        let d = tempfile::tempdir().unwrap();
        let (f, _rx, target) = udp_forwarders(d.path());
        follow(&f, &target);
        for seq in 0..4 {
            f.offer(seq, &event(seq, "x"));
        }
        let fw = Arc::clone(&f.lock()[0]);
        assert_eq!(fw.lock().unsynced, [0, 1, 2, 3]);
        assert!(fw.lock().dir_dirty);
        f.sync_spools(2);
        assert_eq!(fw.lock().unsynced, [2, 3]);
        assert!(
            !fw.lock().dir_dirty,
            "the directory is synced with the files"
        );
        f.sync_spools(4);
        assert!(fw.lock().unsynced.is_empty());
    }
}
