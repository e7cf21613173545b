//! One caller's connection as the approval stack sees it: who the peer is, the caller's stdio,
//! sending answers, waiting for a human while watching for hangup and shutdown, and collecting
//! the exit report. It never decides anything.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use occ_proto::{read_frame, write_frame, ExitReport, Frame, Output, Refuse};

use super::Shutdown;
use crate::sys;

/// How often a wait re-checks for hangup and shutdown.
const TICK: Duration = Duration::from_millis(50);
/// How long a peer may take to finish sending a frame it has started.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one answer may take to write before the peer counts as gone.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest body of one admin answer frame; longer answers go in parts (well under the frame
/// limit, `occ_proto::MAX_PAYLOAD`, with room for the frame's own fields).
pub const ADMIN_PART: usize = 512 * 1024;

/// Reason code sent to callers when the broker shuts down under them.
pub const BROKER_STOPPING: &str = "broker_stopping";

/// The peer's identity from `SO_PEERCRED`, recorded in every event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCred {
    /// The peer's pid (at connect time).
    pub pid: i32,
    /// The peer's uid.
    pub uid: u32,
    /// The peer's gid.
    pub gid: u32,
}

/// Why sending an answer failed: the caller hung up (or stalled), or the frame was invalid.
#[derive(Debug)]
pub struct SendError(pub occ_proto::Error);

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot answer the caller: {}", self.0)
    }
}

impl std::error::Error for SendError {}

/// How a wait for a decision ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Wait<T> {
    /// The decision arrived.
    Decided(T),
    /// Nothing arrived in time.
    TimedOut,
    /// The caller hung up (the shim was killed or gave up).
    ClientGone,
    /// The broker is shutting down: answer with [`Conn::refuse_stopping`].
    Stopping,
}

/// How a granted run ended, as far as the broker can know.
#[derive(Debug, PartialEq, Eq)]
pub enum ExecOutcome {
    /// The shim reported it; `relayed` lists the signals it forwarded to the command.
    Finished {
        /// The shim's report.
        report: ExitReport,
        /// Signals relayed during the run, in order.
        relayed: Vec<i32>,
    },
    /// The shim disconnected or misbehaved first, or the broker is stopping:
    /// `exec_outcome_unknown`.
    Unknown {
        /// Why it is unknown.
        detail: String,
        /// Signals relayed before that.
        relayed: Vec<i32>,
    },
}

/// One accepted connection after its request was read.
#[derive(Debug)]
pub struct Conn {
    stream: UnixStream,
    peer: PeerCred,
    stdio: [Option<OwnedFd>; 3],
    shutdown: Shutdown,
    finished: bool,
    before_answer: Option<AnswerHook>,
}

/// What runs before each answer (see [`Conn::before_answer`]).
struct AnswerHook(Box<dyn FnMut() + Send>);

impl std::fmt::Debug for AnswerHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnswerHook")
    }
}

impl Conn {
    pub(super) fn new(stream: UnixStream, peer: PeerCred, shutdown: Shutdown) -> Conn {
        Conn {
            stream,
            peer,
            stdio: Default::default(),
            shutdown,
            finished: false,
            before_answer: None,
        }
    }

    /// Runs `f` before every answer this connection sends (the gate makes the audit log
    /// durable there when `audit.fsync` is `always`).
    pub fn before_answer(&mut self, f: Box<dyn FnMut() + Send>) {
        self.before_answer = Some(AnswerHook(f));
    }

    /// The peer's pid, uid and gid.
    pub fn peer(&self) -> PeerCred {
        self.peer
    }

    /// The caller's stdin (0), stdout (1) or stderr (2), if it was passed: in user mode only
    /// after [`Conn::ask_tty`], and only the descriptors that are terminals.
    pub fn caller_stdio(&self, n: usize) -> Option<BorrowedFd<'_>> {
        self.stdio
            .get(n)
            .and_then(|f| f.as_ref())
            .map(|f| f.as_fd())
    }

    /// Whether a final frame (`Pending`, `Refuse`, `Output`, `Grant`, `AdminReply`) was sent.
    pub fn answered(&self) -> bool {
        self.finished
    }

    /// Whether the broker is shutting down.
    pub fn is_stopping(&self) -> bool {
        self.shutdown.is_triggered()
    }

    /// Sends `Waiting{id}`; the shim prints the waiting line and waits up to `wait` (plus a
    /// margin) for the final answer.
    pub fn waiting(&mut self, id: &str, wait: Duration) -> Result<(), SendError> {
        let wait_seconds = u32::try_from(wait.as_secs()).unwrap_or(u32::MAX);
        self.send(
            Frame::Waiting {
                id: id.to_owned(),
                wait_seconds,
            },
            false,
        )
    }

    /// User mode, after `Waiting`: asks the shim for its terminal (`NeedTty`) and takes the
    /// descriptors it sends back within [`FRAME_TIMEOUT`] — only those of its fds 0, 1 and 2
    /// that are terminals. The terminal prompt is the only thing that needs them, so the broker
    /// holds none of the caller's descriptors unless that channel is in use. `Err` when they do
    /// not come (the caller then waits on the queue alone).
    pub fn ask_tty(&mut self) -> Result<(), String> {
        if self.finished {
            return Err("a final answer was already sent on this connection".into());
        }
        write_frame(&self.stream, &Frame::NeedTty, &[])
            .map_err(|e| format!("cannot ask the shim for its terminal: {e}"))?;
        let _ = self.stream.set_read_timeout(Some(FRAME_TIMEOUT));
        let got = read_frame(&self.stream);
        let _ = self.stream.set_read_timeout(None);
        let r = got.map_err(|e| format!("no terminal from the shim: {e}"))?;
        match r.frame {
            Frame::Stdio { passed } => {
                let mut fds = r.fds.into_iter();
                for (slot, p) in self.stdio.iter_mut().zip(passed) {
                    if p {
                        *slot = fds.next();
                    }
                }
                Ok(())
            }
            other => Err(format!(
                "expected the caller's terminal, got a {:?} frame",
                other.frame_type()
            )),
        }
    }

    /// Sends the final `Pending{id}`; the shim prints the pending line and exits 1.
    pub fn pending(&mut self, id: &str) -> Result<(), SendError> {
        self.send(Frame::Pending { id: id.to_owned() }, true)
    }

    /// Sends the final `Grant`: the exact argv (absolute `argv[0]`) the shim will run.
    pub fn grant(&mut self, argv: Vec<Vec<u8>>) -> Result<(), SendError> {
        self.send(Frame::Grant { argv }, true)
    }

    /// Sends a final refusal (exit 1): `sudo: MESSAGE (occ: REASON_CODE)`.
    pub fn refuse(&mut self, message: &str, reason_code: &str) -> Result<(), SendError> {
        self.refuse_with(Refuse {
            message: message.to_owned(),
            reason_code: reason_code.to_owned(),
            exit_code: 1,
        })
    }

    /// Sends a final refusal with its own exit code.
    pub fn refuse_with(&mut self, refuse: Refuse) -> Result<(), SendError> {
        self.send(Frame::Refuse(refuse), true)
    }

    /// Refuses with `broker_stopping`.
    pub fn refuse_stopping(&mut self) -> Result<(), SendError> {
        self.refuse(
            "the occ broker is shutting down; try again",
            BROKER_STOPPING,
        )
    }

    /// Sends final text for the shim to print and exit with (`-h`, `-V`, `-l`, grammar errors,
    /// `command not found`).
    pub fn output(&mut self, output: Output) -> Result<(), SendError> {
        self.send(Frame::Output(output), true)
    }

    /// Sends an answer to an admin client: one final `AdminReply`, or, when the answer is
    /// longer than [`ADMIN_PART`], `AdminReplyPart` frames cut at character boundaries before
    /// it, so no answer (10,000 pending requests, a huge argv) ever meets the frame limit.
    pub fn admin_reply(&mut self, ok: bool, body: Vec<u8>) -> Result<(), SendError> {
        let mut rest = &body[..];
        let mut first = true;
        while rest.len() > ADMIN_PART {
            // Back up to the start of a character: every part is whole UTF-8.
            let mut cut = ADMIN_PART;
            while cut > 0 && rest[cut] & 0xc0 == 0x80 {
                cut -= 1;
            }
            let part = Frame::AdminReplyPart {
                body: rest[..cut].to_vec(),
            };
            self.send_hooked(part, false, first)?;
            first = false;
            rest = &rest[cut..];
        }
        self.send_hooked(
            Frame::AdminReply {
                ok,
                body: rest.to_vec(),
            },
            true,
            first,
        )
    }

    /// Sends one `AdminEvent` to a watching admin client (not final; the watch ends with an
    /// `AdminReply`). A client that does not read within [`WRITE_TIMEOUT`] counts as gone.
    pub fn admin_event(&mut self, body: Vec<u8>) -> Result<(), SendError> {
        self.send_hooked(Frame::AdminEvent { body }, false, false)
    }

    fn send(&mut self, frame: Frame, last: bool) -> Result<(), SendError> {
        self.send_hooked(frame, last, true)
    }

    fn send_hooked(&mut self, frame: Frame, last: bool, hook: bool) -> Result<(), SendError> {
        if self.finished {
            return Err(SendError(occ_proto::Error::Malformed(
                "a final answer was already sent on this connection",
            )));
        }
        if let (true, Some(AnswerHook(f))) = (hook, self.before_answer.as_mut()) {
            f();
        }
        if last {
            // Release the caller's stdio with the final answer: a `$(sudo …)` pipe must see
            // end-of-file when the shim exits, not when this connection ends.
            self.stdio = Default::default();
        }
        let sent = write_frame(&self.stream, &frame, &[]).map_err(SendError);
        if last {
            self.finished = true;
        }
        sent?;
        Ok(())
    }

    /// Whether the caller has hung up. Never blocks.
    pub fn client_gone(&self) -> bool {
        match sys::poll2(self.stream.as_fd(), None, Some(Duration::ZERO)) {
            Ok([r, _]) => r.hangup,
            Err(_) => true,
        }
    }

    /// Waits up to `timeout` for a decision on `rx`, noticing the caller hanging up and the
    /// broker stopping within [`TICK`]. A disconnected `rx` counts as a time-out.
    pub fn wait_for<T>(&self, rx: &Receiver<T>, timeout: Duration) -> Wait<T> {
        self.wait_with(timeout, |slice| match rx.recv_timeout(slice) {
            Ok(v) => Some(Some(v)),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(None),
        })
        .map_decided()
    }

    /// The general form of [`Conn::wait_for`]: `check(slice)` may block up to `slice` and
    /// returns `Some` once decided.
    pub fn wait_with<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(Duration) -> Option<T>,
    ) -> Wait<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_stopping() {
                return Wait::Stopping;
            }
            if self.client_gone() {
                return Wait::ClientGone;
            }
            let now = Instant::now();
            if now >= deadline {
                return Wait::TimedOut;
            }
            if let Some(v) = check(TICK.min(deadline - now)) {
                return Wait::Decided(v);
            }
        }
    }

    /// After a `Grant`: waits for the shim's `ExitReport`, collecting relayed `Signal`s. A
    /// hangup, a bad frame or shutdown gives [`ExecOutcome::Unknown`].
    pub fn recv_exit_report(&mut self) -> ExecOutcome {
        let mut relayed = Vec::new();
        loop {
            if self.is_stopping() {
                return ExecOutcome::Unknown {
                    detail: "the broker stopped before the command finished".into(),
                    relayed,
                };
            }
            match sys::poll2(self.stream.as_fd(), None, Some(TICK)) {
                Ok([r, _]) if r.readable || r.hangup => {}
                Ok(_) => continue,
                Err(e) => {
                    return ExecOutcome::Unknown {
                        detail: format!("poll failed: {e}"),
                        relayed,
                    }
                }
            }
            // A frame has started arriving: it must finish within FRAME_TIMEOUT.
            let _ = self.stream.set_read_timeout(Some(FRAME_TIMEOUT));
            let got = read_frame(&self.stream);
            let _ = self.stream.set_read_timeout(None);
            match got {
                Ok(r) => match r.frame {
                    Frame::Signal { signo } => relayed.push(signo),
                    Frame::ExitReport(report) => return ExecOutcome::Finished { report, relayed },
                    other => {
                        return ExecOutcome::Unknown {
                            detail: format!(
                                "expected an exit report, got a {:?} frame",
                                other.frame_type()
                            ),
                            relayed,
                        }
                    }
                },
                Err(occ_proto::Error::Closed) => {
                    return ExecOutcome::Unknown {
                        detail: "the shim disconnected before reporting the exit status".into(),
                        relayed,
                    }
                }
                Err(e) => {
                    return ExecOutcome::Unknown {
                        detail: format!("bad exit report: {e}"),
                        relayed,
                    }
                }
            }
        }
    }
}

/// What happened while the system broker's command ran, as seen from the connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Supervise {
    /// The shim asked for this signal to be sent to the command.
    Signal(i32),
    /// The command's pidfd is readable: it has ended.
    Ended,
    /// The shim hung up or broke the protocol.
    ShimGone(String),
    /// The broker is stopping.
    Stopping,
    /// Nothing yet.
    Idle,
}

impl Conn {
    /// System mode: tells the shim the grant is decided and takes the stdio it sends back
    /// (within [`FRAME_TIMEOUT`]). `Err` when it does not come.
    pub fn run_and_take_stdio(&mut self) -> Result<[Option<OwnedFd>; 3], String> {
        // Not an answer about the outcome: the durable point of a run is its `exec_start`,
        // which comes before the command may exec, so the answer hook (a sync) is skipped.
        self.send_hooked(Frame::Run, false, false)
            .map_err(|e| e.to_string())?;
        let _ = self.stream.set_read_timeout(Some(FRAME_TIMEOUT));
        let got = read_frame(&self.stream);
        let _ = self.stream.set_read_timeout(None);
        let r = got.map_err(|e| format!("no stdio from the shim: {e}"))?;
        match r.frame {
            Frame::Stdio { passed } => {
                let mut fds = r.fds.into_iter();
                let mut stdio: [Option<OwnedFd>; 3] = Default::default();
                for (slot, p) in stdio.iter_mut().zip(passed) {
                    if p {
                        *slot = fds.next();
                    }
                }
                Ok(stdio)
            }
            other => Err(format!(
                "expected the caller's stdio, got a {:?} frame",
                other.frame_type()
            )),
        }
    }

    /// System mode: waits up to [`TICK`] for the shim (a relayed signal, or hanging up) or
    /// for `pidfd` to say the command ended.
    pub fn supervise(&mut self, pidfd: BorrowedFd<'_>) -> Supervise {
        if self.is_stopping() {
            return Supervise::Stopping;
        }
        let [shim, cmd] = match sys::poll2(self.stream.as_fd(), Some(pidfd), Some(TICK)) {
            Ok(r) => r,
            Err(e) => return Supervise::ShimGone(format!("poll failed: {e}")),
        };
        if cmd.readable || cmd.hangup {
            return Supervise::Ended;
        }
        if !(shim.readable || shim.hangup) {
            return Supervise::Idle;
        }
        let _ = self.stream.set_read_timeout(Some(FRAME_TIMEOUT));
        let got = read_frame(&self.stream);
        let _ = self.stream.set_read_timeout(None);
        match got {
            Ok(r) => match r.frame {
                Frame::Signal { signo } => Supervise::Signal(signo),
                other => Supervise::ShimGone(format!(
                    "expected a signal, got a {:?} frame",
                    other.frame_type()
                )),
            },
            Err(occ_proto::Error::Closed) => {
                Supervise::ShimGone("the shim disconnected while the command ran".into())
            }
            Err(e) => Supervise::ShimGone(format!("bad frame from the shim: {e}")),
        }
    }

    /// System mode: the final `Exited`, with what the broker's own `waitpid` saw.
    pub fn exited(&mut self, report: ExitReport) -> Result<(), SendError> {
        self.send(Frame::Exited(report), true)
    }
}

impl<T> Wait<Option<T>> {
    fn map_decided(self) -> Wait<T> {
        match self {
            Wait::Decided(Some(v)) => Wait::Decided(v),
            Wait::Decided(None) | Wait::TimedOut => Wait::TimedOut,
            Wait::ClientGone => Wait::ClientGone,
            Wait::Stopping => Wait::Stopping,
        }
    }
}
