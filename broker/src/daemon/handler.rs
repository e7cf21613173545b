//! The seam between the broker's connection layer and the approval stack. The daemon owns
//! sockets, peers, framing, timeouts and shutdown; a [`RequestHandler`] owns every decision.
//! `occ broker` plugs in the approval gate (`crate::gate::Gate`); the connection layer's own
//! tests use [`FailClosedHandler`], which refuses everything.

use std::path::PathBuf;

use occ_proto::Request;

use super::conn::{Conn, PeerCred};

/// Reason code for every refusal of [`FailClosedHandler`].
#[cfg(test)]
pub const APPROVAL_STACK_UNAVAILABLE: &str = "approval_stack_unavailable";

/// A peer broke the protocol; its connection has been closed. Recorded as `protocol_error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    /// Stable snake_case kind: `oversize`, `bad_version`, `bad_magic`, `truncated`, `timeout`,
    /// `malformed`, `unexpected_frame`, `unexpected_fds`, `too_many_fds`, …
    pub kind: &'static str,
    /// Human detail for the event.
    pub detail: String,
}

impl ProtocolError {
    /// From a wire-format error.
    pub fn from_proto(e: &occ_proto::Error) -> ProtocolError {
        ProtocolError {
            kind: e.kind(),
            detail: e.to_string(),
        }
    }
}

/// What the daemon knows once it serves: for the `broker_started` event.
#[derive(Clone, Debug)]
pub struct StartInfo {
    /// The broker's pid.
    pub pid: u32,
    /// The broker's effective uid; only peers with this uid are served.
    pub uid: u32,
    /// `$OCC_HOME`.
    pub home: PathBuf,
    /// The socket it listens on.
    pub socket: PathBuf,
}

/// Why the broker stops: for the `broker_stopped` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopCause {
    /// SIGTERM, SIGINT or SIGHUP.
    Signal(i32),
    /// [`super::Shutdown::trigger`] from inside the process (tests, admin command).
    Requested,
}

/// Everything the approval stack plugs into. Called from many connection threads at once.
///
/// Contract for [`RequestHandler::handle`]: answer through `conn` with zero or more `Waiting`
/// frames and then exactly one final frame — `Pending`, `Refuse`, `Output` or `Grant`. After a
/// `Grant`, call [`Conn::recv_exit_report`] to learn how the run ended (or that it is unknown:
/// `exec_outcome_unknown`). While waiting for a human use [`Conn::wait_for`], which notices the
/// caller hanging up and the broker stopping; on [`super::conn::Wait::Stopping`] answer with
/// [`Conn::refuse_stopping`]. If `handle` returns without a final frame, the daemon refuses
/// with `internal_error` (or `broker_stopping` while stopping): it never fails open.
pub trait RequestHandler: Send + Sync {
    /// The socket is bound, the lock held and the pid file written; no peer served yet.
    fn started(&self, info: &StartInfo) {
        let _ = info;
    }

    /// One request from a peer whose uid matched the broker's. `conn` carries the peer's
    /// credentials and the caller's stdio descriptors.
    fn handle(&self, conn: &mut Conn, req: Request);

    /// One admin request (`occ approve`, `occ approvals`, …: a UTF-8 JSON body) from a peer
    /// whose uid matched. Answer with [`Conn::admin_reply`]. The default refuses, so a broker
    /// without the approval stack approves nothing.
    fn admin(&self, conn: &mut Conn, body: Vec<u8>) {
        let _ = body;
        let _ = conn.admin_reply(
            false,
            br#"{"error":"the approval stack is not installed in this broker","reason_code":"approval_stack_unavailable"}"#
                .to_vec(),
        );
    }

    /// A peer broke the protocol (oversize, bad version, garbage, half-sent or stalled frame)
    /// and its connection was closed. Only that connection is affected.
    fn protocol_error(&self, peer: &PeerCred, err: &ProtocolError);

    /// A peer with another uid connected; it was refused with `peer_uid_mismatch`.
    fn peer_refused(&self, peer: &PeerCred, broker_uid: u32);

    /// How many connections one uid may hold open at once for requests (`admin` false) or
    /// admin requests (`admin` true), in both modes.
    fn connections_per_uid(&self, admin: bool) -> usize {
        if admin {
            16
        } else {
            64
        }
    }

    /// A connection of `peer` was refused for holding `limit` connections already (`key`
    /// names the broker.json setting). Called often under a flood: record at a bounded rate.
    fn over_connection_limit(&self, peer: &PeerCred, key: &'static str, limit: usize) {
        let _ = (peer, key, limit);
    }

    /// SIGHUP in system mode: read the configuration again.
    fn reload(&self) {}

    /// Shutdown began: no new connections; waits in progress now see `Wait::Stopping`.
    fn stopping(&self, cause: StopCause) {
        let _ = cause;
    }

    /// Every connection has ended (or the grace period ran out); the socket is gone.
    fn stopped(&self) {}
}

/// A handler with no gate behind it, for the connection layer's tests: refuses every request
/// with `approval_stack_unavailable` (fail closed) and answers nothing else.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct FailClosedHandler;

#[cfg(test)]
impl RequestHandler for FailClosedHandler {
    fn started(&self, info: &StartInfo) {
        tracing::info!(pid = info.pid, uid = info.uid, socket = %info.socket.display(),
            "broker_started (fail-closed handler: the approval stack is not installed)");
    }

    fn handle(&self, conn: &mut Conn, req: Request) {
        let peer = conn.peer();
        tracing::info!(
            peer_pid = peer.pid,
            peer_uid = peer.uid,
            argc = req.argv.len(),
            "request refused: approval_stack_unavailable"
        );
        let _ = conn.refuse(
            "the approval stack is not installed in this broker, so nothing can be approved",
            APPROVAL_STACK_UNAVAILABLE,
        );
    }

    fn protocol_error(&self, _peer: &PeerCred, _err: &ProtocolError) {
        // The daemon has already logged it; there is no audit log to write it to yet.
    }

    fn peer_refused(&self, _peer: &PeerCred, _broker_uid: u32) {
        // The daemon has already logged it; there is no audit log to write it to yet.
    }

    fn stopping(&self, cause: StopCause) {
        tracing::info!(?cause, "broker stopping");
    }

    fn stopped(&self) {
        tracing::info!("broker_stopped");
    }
}
