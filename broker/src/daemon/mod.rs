//! The broker daemon's connection layer: the socket, the single-instance lock, one thread per
//! caller, peer credentials, framing limits, signals and clean shutdown. It makes no decision:
//! every request goes to a [`RequestHandler`], and it never answers a request with a grant
//! on its own.

pub mod conn;
pub mod files;
pub mod handler;
mod process;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use occ_proto::{read_frame_by, write_frame, Frame};

pub use conn::{Conn, ExecOutcome, PeerCred, SendError, Wait, BROKER_STOPPING};
#[cfg(test)]
pub use handler::{FailClosedHandler, APPROVAL_STACK_UNAVAILABLE};
pub use handler::{ProtocolError, RequestHandler, StartInfo, StopCause};

use crate::sys;
use process::{detach, system_dirs, tell, watch_signals, Detached};

/// How long a new connection has to deliver its whole request frame.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long shutdown waits for open connections to finish before exiting anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// How often an accept loop re-checks for shutdown while idle.
const ACCEPT_TICK: Duration = Duration::from_millis(250);
/// Most connections served at once; more are refused with `broker_busy`.
pub const MAX_CONNECTIONS: usize = 512;
/// Reason code for a peer whose uid differs from the broker's.
pub const PEER_UID_MISMATCH: &str = "peer_uid_mismatch";
/// Reason code for a connection refused for load: over [`MAX_CONNECTIONS`], or over
/// broker.json's per-uid connection limits (the message then names the key).
pub const BROKER_BUSY: &str = "broker_busy";

/// A handler with no gate behind it (the connection layer's tests).
#[cfg(test)]
pub fn default_handler() -> Arc<dyn RequestHandler> {
    Arc::new(FailClosedHandler)
}

/// A cloneable shutdown switch: a flag plus a wake-up for the accept loop.
#[derive(Clone, Debug)]
pub struct Shutdown {
    inner: Arc<ShutdownInner>,
}

#[derive(Debug)]
struct ShutdownInner {
    flag: AtomicBool,
    cause: Mutex<Option<StopCause>>,
    wake_tx: UnixStream,
    wake_rx: UnixStream,
}

impl Shutdown {
    /// A new, untriggered switch.
    pub fn new() -> std::io::Result<Shutdown> {
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        Ok(Shutdown {
            inner: Arc::new(ShutdownInner {
                flag: AtomicBool::new(false),
                cause: Mutex::new(None),
                wake_tx,
                wake_rx,
            }),
        })
    }

    /// Starts shutdown (idempotent; the first cause wins).
    pub fn trigger(&self, cause: StopCause) {
        if let Ok(mut c) = self.inner.cause.lock() {
            c.get_or_insert(cause);
        }
        self.inner.flag.store(true, Ordering::SeqCst);
        let _ = (&self.inner.wake_tx).write(&[1]);
    }

    /// Whether shutdown has started.
    pub fn is_triggered(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    fn cause(&self) -> StopCause {
        self.inner
            .cause
            .lock()
            .ok()
            .and_then(|c| *c)
            .unwrap_or(StopCause::Requested)
    }
}

/// Counts live connection threads so shutdown can wait for them.
#[derive(Debug, Default)]
struct Live {
    count: Mutex<usize>,
    zero: Condvar,
    /// Connections still reading their first frame, cut at shutdown so they end at once
    /// instead of holding the broker for the request time-out.
    reading: Mutex<HashMap<u64, UnixStream>>,
    next: AtomicU64,
    /// Open connections per peer uid.
    per_uid: Mutex<HashMap<u32, usize>>,
    /// User mode, where one socket serves both: open connections per peer uid that turned out
    /// to be requests (`false`) or admin requests (`true`).
    per_kind: Mutex<HashMap<(u32, bool), usize>>,
}

impl Live {
    fn start_reading(&self, stream: &UnixStream) -> Option<u64> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let clone = stream.try_clone().ok()?;
        self.reading.lock().ok()?.insert(id, clone);
        Some(id)
    }

    fn done_reading(&self, id: Option<u64>) {
        if let (Some(id), Ok(mut r)) = (id, self.reading.lock()) {
            r.remove(&id);
        }
    }

    fn cut_readers(&self) {
        if let Ok(mut r) = self.reading.lock() {
            for (_, s) in r.drain() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

/// One admitted connection, counted against its uid.
struct LiveGuard(Arc<Live>, u32);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        release(&self.0.per_uid, self.1);
        if let Ok(mut n) = self.0.count.lock() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.0.zero.notify_all();
            }
        }
    }
}

/// A user-mode connection counted as a request or an admin request of its uid.
struct KindGuard<'a>(&'a Live, (u32, bool));

impl Drop for KindGuard<'_> {
    fn drop(&mut self) {
        release(&self.0.per_kind, self.1);
    }
}

fn release<K: std::hash::Hash + Eq>(map: &Mutex<HashMap<K, usize>>, key: K) {
    let mut per = map.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(n) = per.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            per.remove(&key);
        }
    }
}

/// Counts one more under `key` unless `max` are already held.
fn take<K: std::hash::Hash + Eq>(map: &Mutex<HashMap<K, usize>>, key: K, max: usize) -> bool {
    let mut per = map.lock().unwrap_or_else(|p| p.into_inner());
    let held = per.entry(key).or_insert(0);
    if *held < max {
        *held += 1;
        true
    } else {
        false
    }
}

/// Which peers a server serves, and what they may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serves {
    /// User mode: peers with this uid only; requests and admin requests on one socket.
    OneUid(u32),
    /// System mode's request socket: any uid (the gate checks `requesters`), requests only.
    Requests,
    /// System mode's admin socket: any uid (the gate checks `approvers`), admin requests only.
    Admin,
}

/// Accepts connections and hands each to its own thread.
pub struct Server {
    listener: UnixListener,
    handler: Arc<dyn RequestHandler>,
    shutdown: Shutdown,
    serves: Serves,
    live: Arc<Live>,
}

impl Server {
    /// A server for `listener` that serves peers with `uid` only.
    pub fn new(
        listener: UnixListener,
        handler: Arc<dyn RequestHandler>,
        shutdown: Shutdown,
        uid: u32,
    ) -> Server {
        Server::serving(listener, handler, shutdown, Serves::OneUid(uid))
    }

    /// A server for `listener` serving `serves`.
    pub fn serving(
        listener: UnixListener,
        handler: Arc<dyn RequestHandler>,
        shutdown: Shutdown,
        serves: Serves,
    ) -> Server {
        Server {
            listener,
            handler,
            shutdown,
            serves,
            live: Arc::new(Live::default()),
        }
    }

    /// Accepts until shutdown is triggered, then tells the handler it is stopping and returns
    /// the cause. Errors accepting one connection never stop the loop.
    pub fn accept_loop(&self) -> StopCause {
        if let Err(e) = self.listener.set_nonblocking(true) {
            tracing::error!("cannot make the listener non-blocking: {e}");
        }
        while !self.shutdown.is_triggered() {
            // The system broker has two accept loops on one shutdown switch; whichever wakes
            // first drains the wake-up, so each loop also re-checks the flag on a short tick.
            let ready = sys::poll2(
                self.listener.as_fd(),
                Some(self.shutdown.inner.wake_rx.as_fd()),
                Some(ACCEPT_TICK),
            );
            if let Err(e) = ready {
                tracing::error!("poll failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            match self.listener.accept() {
                Ok((stream, _)) => self.spawn(stream),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    // EMFILE and friends: back off instead of spinning.
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        let mut drain = [0u8; 16];
        while matches!((&self.shutdown.inner.wake_rx).read(&mut drain), Ok(n) if n > 0) {}
        self.live.cut_readers();
        let cause = self.shutdown.cause();
        if self.serves != Serves::Admin {
            self.handler.stopping(cause);
        }
        cause
    }

    fn spawn(&self, stream: UnixStream) {
        let peer = match peer_cred(&stream) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("SO_PEERCRED failed, closing the connection: {e}");
                return;
            }
        };
        // Per uid, in both modes. User mode serves requests and admin requests on one socket,
        // so a uid may hold both limits' worth until its first frame says which it is.
        let (per_uid_max, key) = match self.serves {
            Serves::OneUid(_) => (
                self.handler.connections_per_uid(false) + self.handler.connections_per_uid(true),
                "limits.connections_per_uid + limits.admin_connections_per_uid",
            ),
            Serves::Requests => (
                self.handler.connections_per_uid(false),
                "limits.connections_per_uid",
            ),
            Serves::Admin => (
                self.handler.connections_per_uid(true),
                "limits.admin_connections_per_uid",
            ),
        };
        let admitted = match self.live.count.lock() {
            Ok(mut n) if *n < MAX_CONNECTIONS => {
                if take(&self.live.per_uid, peer.uid, per_uid_max) {
                    *n += 1;
                    Ok(())
                } else {
                    Err(Some(()))
                }
            }
            _ => Err(None),
        };
        match admitted {
            Ok(()) => {}
            Err(None) => {
                tracing::warn!(
                    peer_uid = peer.uid,
                    "too many connections; refusing one with broker_busy"
                );
                refuse_now(
                    &stream,
                    "the occ broker is busy; try again".into(),
                    BROKER_BUSY,
                );
                return;
            }
            Err(Some(())) => {
                tracing::warn!(peer_uid = peer.uid, key, "per-uid connection limit reached");
                self.handler.over_connection_limit(&peer, key, per_uid_max);
                refuse_now(&stream, too_many_connections(per_uid_max, key), BROKER_BUSY);
                return;
            }
        }
        let guard = LiveGuard(self.live.clone(), peer.uid);
        let handler = self.handler.clone();
        let shutdown = self.shutdown.clone();
        let serves = self.serves;
        let live = self.live.clone();
        let spawned = std::thread::Builder::new()
            .name("occ-conn".into())
            .spawn(move || {
                let _guard = guard;
                serve_conn(stream, handler.as_ref(), shutdown, serves, &live);
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start a connection thread: {e}");
        }
    }

    /// Waits up to `grace` for connection threads; returns how many were still running.
    pub fn drain(&self, grace: Duration) -> usize {
        let deadline = Instant::now() + grace;
        let Ok(mut n) = self.live.count.lock() else {
            return 0;
        };
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            n = match self.live.zero.wait_timeout(n, left) {
                Ok((g, _)) => g,
                Err(_) => return 0,
            };
        }
        *n
    }
}

/// The refusal text for a uid over its connection limit: names the broker.json key.
fn too_many_connections(limit: usize, key: &str) -> String {
    format!(
        "the occ broker is busy: this user already holds {limit} connections to it \
         (broker.json {key}); try again when some have finished"
    )
}

/// Refuses a connection from the accept loop itself: one short write, never a wait.
fn refuse_now(stream: &UnixStream, message: String, code: &str) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let _ = write_frame(stream, &Frame::refuse(message, code), &[]);
}

/// Serves one connection: identify the peer, read one request within the time limit, hand it
/// to the handler, and make sure the caller gets a final answer.
fn serve_conn(
    stream: UnixStream,
    handler: &dyn RequestHandler,
    shutdown: Shutdown,
    serves: Serves,
    live: &Live,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(conn::WRITE_TIMEOUT));
    let accepted = sys::boot_ticks();
    let peer = match peer_cred(&stream) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("SO_PEERCRED failed, closing the connection: {e}");
            return;
        }
    };
    if matches!(serves, Serves::Requests | Serves::Admin) {
        // A broker serving many uids proves the pid is the caller's before anything is
        // recorded under it (SO_PEERPIDFD, or pidfd_open with a start-time check).
        if let Err(e) = sys::peer_pidfd(stream.as_fd(), peer.pid, accepted) {
            tracing::warn!(
                peer_pid = peer.pid,
                peer_uid = peer.uid,
                "peer not identified: {e}"
            );
            report_protocol_error(
                handler,
                &peer,
                ProtocolError {
                    kind: "peer_unidentified",
                    detail: e.to_string(),
                },
            );
            return;
        }
    }
    if let Serves::OneUid(uid) = serves {
        if peer.uid != uid {
            refuse_other_uid(&stream, handler, &peer, uid);
            return;
        }
    }
    serve_peer(stream, handler, shutdown, serves, live, peer);
}

/// A user-mode broker refuses every other uid with `peer_uid_mismatch`.
fn refuse_other_uid(stream: &UnixStream, handler: &dyn RequestHandler, peer: &PeerCred, uid: u32) {
    {
        tracing::warn!(
            peer_pid = peer.pid,
            peer_uid = peer.uid,
            peer_gid = peer.gid,
            broker_uid = uid,
            "peer_uid_mismatch: refused"
        );
        handler.peer_refused(peer, uid);
        let _ = write_frame(
            stream,
            &Frame::refuse(
                format!(
                    "this occ broker serves uid {uid} only, and the caller is uid {}",
                    peer.uid
                ),
                PEER_UID_MISMATCH,
            ),
            &[],
        );
        let _ = stream.shutdown(std::net::Shutdown::Write);
        // Read what the peer already sent, briefly, so closing does not reset the connection
        // before it has read the refusal.
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        let mut sink = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_millis(200);
        while Instant::now() < deadline {
            match (&*stream).read(&mut sink) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
    }
}

/// Reads one frame from an admitted peer and hands it to the handler.
fn serve_peer(
    stream: UnixStream,
    handler: &dyn RequestHandler,
    shutdown: Shutdown,
    serves: Serves,
    live: &Live,
    peer: PeerCred,
) {
    let reading = live.start_reading(&stream);
    let got = if shutdown.is_triggered() {
        Err(occ_proto::Error::Closed)
    } else {
        read_frame_by(&stream, Some(Instant::now() + REQUEST_TIMEOUT))
    };
    live.done_reading(reading);
    let received = match got {
        Ok(r) => r,
        Err(_) if shutdown.is_triggered() => {
            tracing::debug!(peer_pid = peer.pid, "connection cut by shutdown");
            return;
        }
        Err(occ_proto::Error::Closed) => {
            tracing::debug!(peer_pid = peer.pid, "connection closed before a request");
            return;
        }
        Err(e) => {
            report_protocol_error(handler, &peer, ProtocolError::from_proto(&e));
            return;
        }
    };
    let _ = stream.set_read_timeout(None);
    // User mode: now that the first frame says what this connection is, count it against the
    // limit of its kind, so requests cannot crowd out the approver (or the reverse).
    let _kind = match (serves, &received.frame) {
        (Serves::OneUid(_), Frame::Request(_) | Frame::Admin { .. }) => {
            let admin = matches!(received.frame, Frame::Admin { .. });
            let max = handler.connections_per_uid(admin);
            if !take(&live.per_kind, (peer.uid, admin), max) {
                let key = if admin {
                    "limits.admin_connections_per_uid"
                } else {
                    "limits.connections_per_uid"
                };
                tracing::warn!(peer_uid = peer.uid, key, "per-uid connection limit reached");
                handler.over_connection_limit(&peer, key, max);
                let mut conn = Conn::new(stream, peer, shutdown);
                let msg = too_many_connections(max, key);
                let _ = if admin {
                    let body = serde_json::json!({"error": msg, "reason_code": BROKER_BUSY});
                    conn.admin_reply(false, body.to_string().into_bytes())
                } else {
                    conn.refuse(&msg, BROKER_BUSY)
                };
                return;
            }
            Some(KindGuard(live, (peer.uid, admin)))
        }
        _ => None,
    };
    let req = match received.frame {
        Frame::Request(r) if serves != Serves::Admin => r,
        Frame::Admin { body } if serves != Serves::Requests => {
            let mut conn = Conn::new(stream, peer, shutdown);
            handler.admin(&mut conn, body);
            if !conn.answered() {
                let _ = conn.admin_reply(
                    false,
                    br#"{"error":"the broker ended the request without an answer","reason_code":"internal_error"}"#
                        .to_vec(),
                );
            }
            return;
        }
        other => {
            report_protocol_error(
                handler,
                &peer,
                ProtocolError {
                    kind: "unexpected_frame",
                    detail: format!(
                        "a {:?} frame is not served on this socket ({serves:?})",
                        other.frame_type()
                    ),
                },
            );
            return;
        }
    };
    // Descriptors that came with a request are closed at once: the broker asks for the
    // terminal only when its prompt needs it (`NeedTty`), and the system executor takes the
    // stdio only once the grant is decided (`Run`), so a stopped broker never holds a caller's
    // pipe.
    drop(received.fds);
    let mut conn = Conn::new(stream, peer, shutdown);
    if conn.is_stopping() {
        let _ = conn.refuse_stopping();
        return;
    }
    handler.handle(&mut conn, req);
    if !conn.answered() {
        // Fail closed: a handler that forgot to answer must not leave the caller hanging.
        let _ = if conn.is_stopping() {
            conn.refuse_stopping()
        } else {
            tracing::error!(peer_pid = peer.pid, "handler returned without an answer");
            conn.refuse(
                "the occ broker ended the request without an answer",
                "internal_error",
            )
        };
    }
}

/// Logs a protocol error in the daemon log and hands it to the handler for the audit event.
fn report_protocol_error(handler: &dyn RequestHandler, peer: &PeerCred, err: ProtocolError) {
    tracing::warn!(
        peer_pid = peer.pid,
        peer_uid = peer.uid,
        peer_gid = peer.gid,
        kind = err.kind,
        "protocol_error, connection closed: {}",
        err.detail
    );
    handler.protocol_error(peer, &err);
}

fn peer_cred(stream: &UnixStream) -> std::io::Result<PeerCred> {
    let c = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(std::io::Error::from)?;
    Ok(PeerCred {
        pid: c.pid(),
        uid: c.uid(),
        gid: c.gid(),
    })
}

/// How `occ broker` runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Stay attached, logging to stderr, instead of detaching and logging to run/broker.log.
    pub foreground: bool,
    /// `$OCC_HOME`.
    pub home: PathBuf,
    /// Report the detached start as one JSON object (`started`, `pid`, `socket`, `detail`).
    pub json: bool,
    /// The system broker: root, `/run/occ` with a request and an admin socket, SIGHUP reloads.
    pub system: bool,
}

/// Runs the broker until SIGTERM/SIGINT/SIGHUP; returns the exit code (0 after a clean stop).
pub fn run(opts: Options, handler: Arc<dyn RequestHandler>) -> i32 {
    let paths = if opts.system {
        if let Err(e) = system_dirs() {
            eprintln!("occ broker --system: {e}");
            return 2;
        }
        files::RunPaths::system()
    } else {
        files::RunPaths::new(&opts.home)
    };
    // Files we create are ours alone (the socket's bind honours the umask too).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let mut ready_pipe = None;
    if !opts.foreground {
        match detach(&paths, opts.json) {
            Ok(Detached::Parent(code)) => return code,
            Ok(Detached::Daemon(pipe)) => ready_pipe = Some(pipe),
            Err(e) => {
                eprintln!("occ broker: {e}");
                return 2;
            }
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();

    let (running, listener) = match files::acquire(&paths) {
        Ok(r) => r,
        Err(e @ files::FilesError::Locked { .. }) => {
            tracing::info!("not starting: {e}");
            tell(&mut ready_pipe, &format!("locked {e}"));
            eprintln!("occ broker: {e}");
            return 1;
        }
        Err(e) => {
            tracing::error!("cannot start: {e}");
            tell(&mut ready_pipe, &format!("error {e}"));
            eprintln!("occ broker: {e}");
            return 2;
        }
    };
    if !opts.foreground {
        match files::rotate_log(&paths) {
            Ok(true) => tracing::info!(
                "rotated {} (over {} bytes) to broker.log.1",
                paths.log.display(),
                files::LOG_ROTATE_BYTES
            ),
            Ok(false) => {}
            Err(e) => tracing::warn!("cannot rotate the broker log: {e}"),
        }
    }
    let shutdown = match Shutdown::new() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot create the shutdown pipe: {e}");
            running.remove();
            return 2;
        }
    };
    let reload = opts.system.then(|| {
        let h = handler.clone();
        Box::new(move || h.reload()) as Box<dyn Fn() + Send>
    });
    if let Err(e) = watch_signals(shutdown.clone(), reload) {
        tracing::error!("cannot install signal handling: {e}");
        running.remove();
        return 2;
    }
    let uid = nix::unistd::geteuid().as_raw();
    let admin = match files::bind_admin(&paths) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            tell(&mut ready_pipe, &format!("error {e}"));
            running.remove();
            return 2;
        }
    };
    // Started (state restored, configuration loaded) before any socket is served: the admin
    // socket's connections wait in its backlog until then, so no approver sees a half-started
    // broker (an empty queue).
    handler.started(&StartInfo {
        pid: std::process::id(),
        uid,
        home: opts.home.clone(),
        socket: paths.socket.clone(),
    });
    let (server, admin_thread) = match admin {
        None => (Server::new(listener, handler.clone(), shutdown, uid), None),
        Some(admin) => {
            let admin = Server::serving(admin, handler.clone(), shutdown.clone(), Serves::Admin);
            let t = std::thread::Builder::new()
                .name("occ-admin".into())
                .spawn(move || {
                    admin.accept_loop();
                    admin.drain(SHUTDOWN_GRACE);
                });
            let t = match t {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!("cannot start the admin socket's thread: {e}");
                    handler.stopped();
                    running.remove();
                    return 2;
                }
            };
            let requests = Server::serving(listener, handler.clone(), shutdown, Serves::Requests);
            (requests, Some(t))
        }
    };
    tracing::info!(pid = std::process::id(), socket = %paths.socket.display(), "listening");
    tell(&mut ready_pipe, &format!("ready {}", std::process::id()));
    ready_pipe = None;
    drop(ready_pipe);

    let cause = server.accept_loop();
    tracing::info!(?cause, "stopping");
    running.remove_socket();
    let left = server.drain(SHUTDOWN_GRACE);
    if left > 0 {
        tracing::warn!(connections = left, "exiting with connections still open");
    }
    if let Some(t) = admin_thread {
        let _ = t.join();
    }
    handler.stopped();
    running.remove();
    tracing::info!("stopped");
    0
}

#[cfg(test)]
mod tests;
