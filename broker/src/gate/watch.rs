//! `occ approvals --watch`: the live queue. One thread follows the store (woken by the same
//! condition variable decisions use, never on a timer) and turns each change of the pending set
//! into an event: `added` with the approver's full view, `removed` with why (approved, denied,
//! expired). Each watcher has a bounded buffer; one that falls behind is dropped, so a watcher
//! that stops reading can never hold up the gate or grow the broker.

use std::collections::BTreeMap;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value as Json};

use super::Gate;
use crate::clock::now_ms;
use crate::daemon::conn::Conn;
use crate::session::Outcome;
use crate::view::PendingView;

/// Events one watcher may have waiting; a watcher this far behind is dropped.
pub const WATCH_BUFFER: usize = 256;
/// How often a watching connection checks for hangup, shutdown and its approver rights.
const TICK: Duration = Duration::from_millis(200);

type EventBody = Arc<Vec<u8>>;

/// The watchers and the pending set they were last told about.
#[derive(Default)]
pub struct Watchers {
    state: Mutex<WatchState>,
}

#[derive(Default)]
struct WatchState {
    next: u64,
    subs: Vec<(u64, SyncSender<EventBody>)>,
    /// What watchers know is pending: id → (view, approve command).
    known: BTreeMap<String, Json>,
}

impl Watchers {
    fn lock(&self) -> std::sync::MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new watcher: the pending requests now (as `added` events marked `initial`), then a
    /// `watching` event, then every change.
    fn subscribe(&self) -> (u64, Receiver<EventBody>) {
        let mut st = self.lock();
        let (tx, rx) = sync_channel(WATCH_BUFFER);
        let now: Vec<Json> = st.known.values().cloned().collect();
        // The snapshot may be longer than the buffer: then this watcher starts dropped.
        let mut ok = true;
        for item in &now {
            let mut e = item.clone();
            e["initial"] = Json::Bool(true);
            ok &= tx.try_send(Arc::new(e.to_string().into_bytes())).is_ok();
        }
        let ready = json!({"event": "watching", "pending": now.len()});
        ok &= tx
            .try_send(Arc::new(ready.to_string().into_bytes()))
            .is_ok();
        st.next += 1;
        let id = st.next;
        if ok {
            st.subs.push((id, tx));
        }
        (id, rx)
    }

    fn unsubscribe(&self, id: u64) {
        self.lock().subs.retain(|(i, _)| *i != id);
    }

    /// Sends `events` to every watcher; a full buffer drops that watcher (its receiver then
    /// sees the end of the channel).
    fn broadcast(st: &mut WatchState, events: &[Json]) {
        for e in events {
            let body: EventBody = Arc::new(e.to_string().into_bytes());
            st.subs
                .retain(|(_, tx)| match tx.try_send(Arc::clone(&body)) {
                    Ok(()) => true,
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
                });
        }
    }
}

/// Why a request left the queue, as watchers are told.
fn reason(o: Option<&Outcome>) -> &'static str {
    match o {
        Some(Outcome::Approved { .. }) => "approved",
        Some(Outcome::Denied { .. }) => "denied",
        Some(Outcome::Expired) => "expired",
        Some(Outcome::Stopping) => "broker_stopping",
        None => "withdrawn",
    }
}

impl Gate {
    /// Starts the thread that turns store changes into watch events.
    pub(super) fn start_watch_hub(&self) {
        let core = Arc::clone(&self.core);
        let spawned = std::thread::Builder::new()
            .name("occ-watch".into())
            .spawn(move || core.watch_hub());
        if let Err(e) = spawned {
            tracing::error!("cannot start the watch thread: {e}");
        }
    }

    /// Serves `{"op": "watch"}` on `conn` until the watcher hangs up, falls behind, stops
    /// being an approver (system mode) or the broker stops; then one final `AdminReply`.
    pub(super) fn watch(&self, conn: &mut Conn) {
        let peer = conn.peer();
        let (id, rx) = self.watchers.subscribe();
        let end = loop {
            if conn.is_stopping() {
                break (
                    true,
                    json!({"watch": "ended", "reason": "the broker is stopping"}),
                );
            }
            if conn.client_gone() {
                break (true, Json::Null);
            }
            if self.system() {
                if let Err(msg) = self.check_approver(&peer) {
                    break (
                        false,
                        json!({"error": msg, "reason_code": "not_an_approver"}),
                    );
                }
            }
            match rx.recv_timeout(TICK) {
                Ok(body) => {
                    if conn.admin_event(body.to_vec()).is_err() {
                        break (true, Json::Null);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    break (
                        false,
                        json!({
                            "error": format!(
                                "this watcher fell {WATCH_BUFFER} events behind and was dropped; \
                                 run `occ approvals --watch` again"
                            ),
                            "reason_code": "watch_dropped",
                        }),
                    )
                }
            }
        };
        self.watchers.unsubscribe(id);
        match end {
            (_, Json::Null) => {}
            (ok, body) => {
                let _ = conn.admin_reply(ok, body.to_string().into_bytes());
            }
        }
    }
}

impl super::Core {
    /// The watch thread: waits on the store's condition variable (every decision, expiry and
    /// new request signals it), compares the pending set with what watchers know, and sends
    /// the difference. The comparison is made under the store's lock before each wait, so no
    /// change between two waits goes unseen.
    fn watch_hub(&self) {
        let mut store = self.store();
        loop {
            let now = now_ms();
            let quorum = self.loaded_quorum();
            let mut events = Vec::new();
            {
                let mut st = self.watchers.lock();
                let gone: Vec<String> = st
                    .known
                    .keys()
                    .filter(|id| store.pending_by_id(id).is_none())
                    .cloned()
                    .collect();
                for id in gone {
                    st.known.remove(&id);
                    events.push(json!({
                        "event": "removed",
                        "id": id,
                        "reason": reason(store.outcome(&id)),
                    }));
                }
                for p in store.pending() {
                    if st.known.contains_key(&p.id) {
                        continue;
                    }
                    let e = json!({
                        "event": "added",
                        "id": p.id,
                        "request": serde_json::to_value(PendingView::of(p, now, quorum))
                            .unwrap_or(Json::Null),
                        "approve_command": super::notify::approve_command(p),
                    });
                    st.known.insert(p.id.clone(), e.clone());
                    events.push(e);
                }
                if !events.is_empty() {
                    Watchers::broadcast(&mut st, &events);
                }
            }
            store = self.decided.wait(store).unwrap_or_else(|p| p.into_inner());
        }
    }
}
