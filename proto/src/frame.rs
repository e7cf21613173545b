//! The frames shim and broker exchange. Text the broker prints goes through the shim verbatim,
//! so the broker must escape requester-controlled text before putting it in a frame.
//!
//! Conversation (user mode): shim → `Request` (no fds); broker → zero or more `Waiting`,
//! then exactly one of `Pending`, `Refuse`, `Output` or `Grant`; after `Grant` the shim runs the
//! argv and sends `Signal` for each signal it relays, then one `ExitReport`. Only when the
//! broker opens the opt-in terminal prompt does it send `NeedTty` (after `Waiting`); the shim
//! answers with `Stdio` carrying those of its fds 0, 1 and 2 that are terminals, never a pipe.
//! So a stopped broker never holds the caller's pipes.
//!
//! System mode: shim → `Request` (no fds); broker → zero or more `Waiting`, then `Pending`,
//! `Refuse`, `Output` or `Run`. After `Run` (the grant is decided) the shim sends `Stdio` with
//! its stdio fds; the broker runs the command itself, the shim sends `Signal` for each signal it
//! receives, and the broker ends with `Exited` (what its own `waitpid` saw) or `Refuse`.

/// Most argv entries a request or grant may carry.
pub const MAX_ARGS: usize = 65_536;
/// Most environment entries a request may carry.
pub const MAX_ENV: usize = 4_096;
/// Largest single environment entry (name + value) a request may carry.
pub const MAX_ENV_ENTRY: usize = 128 * 1024;

/// The type byte of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameType {
    /// Shim → broker: what the caller asked for.
    Request = 1,
    /// Broker → shim: the request is queued and the shim should not wait (final).
    Pending = 2,
    /// Broker → shim: the request is queued and the broker is waiting for an approver.
    Waiting = 3,
    /// Broker → shim: run exactly this argv (final until the exit report).
    Grant = 4,
    /// Broker → shim: refused (final).
    Refuse = 5,
    /// Broker → shim: print this and exit with this code (final).
    Output = 6,
    /// Shim → broker: how the granted command ended.
    ExitReport = 7,
    /// Shim → broker: a signal the shim relayed to the command.
    Signal = 8,
    /// Admin client (`occ approve`, …) → broker: one JSON request.
    Admin = 9,
    /// Broker → admin client: the JSON answer and whether the operation succeeded (final).
    AdminReply = 10,
    /// Broker → shim (system mode): the grant is decided; send the stdio to run it with.
    Run = 11,
    /// Shim → broker: the caller's stdio, as `SCM_RIGHTS` (system mode: after `Run`; user
    /// mode: the terminals only, after `NeedTty`).
    Stdio = 12,
    /// Broker → shim (system mode): how the command the broker ran ended (final).
    Exited = 13,
    /// Broker → shim (user mode, after `Waiting`): the terminal prompt is on; send the terminal.
    NeedTty = 14,
    /// Broker → admin client: the next part of a long JSON answer (not final: the answer goes
    /// on in more parts and ends with `AdminReply`, whose body is its last part).
    AdminReplyPart = 15,
    /// Broker → admin client, after `{"op": "watch"}`: one change to the pending queue (not
    /// final: events go on until the broker ends the watch with `AdminReply`).
    AdminEvent = 16,
}

impl FrameType {
    /// The frame type for a header byte, if any.
    pub fn from_byte(b: u8) -> Option<FrameType> {
        Some(match b {
            1 => FrameType::Request,
            2 => FrameType::Pending,
            3 => FrameType::Waiting,
            4 => FrameType::Grant,
            5 => FrameType::Refuse,
            6 => FrameType::Output,
            7 => FrameType::ExitReport,
            8 => FrameType::Signal,
            9 => FrameType::Admin,
            10 => FrameType::AdminReply,
            11 => FrameType::Run,
            12 => FrameType::Stdio,
            13 => FrameType::Exited,
            14 => FrameType::NeedTty,
            15 => FrameType::AdminReplyPart,
            16 => FrameType::AdminEvent,
            _ => return None,
        })
    }
}

/// What the caller typed and the context it typed it in. Everything here is requester-controlled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// The raw arguments after `sudo` (argv[1..]), as bytes. No entry contains NUL.
    pub argv: Vec<Vec<u8>>,
    /// The caller's working directory, as bytes (empty if it could not be read).
    pub cwd: Vec<u8>,
    /// The caller's `OPENCLAW_*`, `TERM`, `LANG` and `LC_*` variables, as (name, value).
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
    /// Whether fds 0, 1 and 2 are terminals.
    pub isatty: [bool; 3],
    /// Which of fds 0, 1 and 2 travel with this frame (`SCM_RIGHTS`, in fd order).
    pub stdio_passed: [bool; 3],
    /// The caller's terminal name (`/dev/pts/3`), if any of its stdio is a terminal.
    pub tty: Option<Vec<u8>>,
    /// That terminal's size, (columns, lines), when it has one (sudo logs both).
    pub winsize: Option<(u16, u16)>,
}

impl Request {
    /// How many descriptors this request says travel with it.
    pub fn passed_fd_count(&self) -> usize {
        self.stdio_passed.iter().filter(|b| **b).count()
    }
}

/// A refusal, printed by the shim as `sudo: MESSAGE (occ: REASON_CODE)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refuse {
    /// Human text (already escaped by the broker).
    pub message: String,
    /// Stable snake_case reason code (`policy_block`, `broker_stopping`, …).
    pub reason_code: String,
    /// The shim's exit code; the shim turns 0 into 1, since a refusal never succeeds.
    pub exit_code: i32,
}

/// Text the broker answers with itself (`-h`, `-V`, `-l`, grammar errors, not found).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Bytes for the shim's stdout.
    pub stdout: Vec<u8>,
    /// Bytes for the shim's stderr.
    pub stderr: Vec<u8>,
    /// The shim's exit code.
    pub exit_code: i32,
}

/// How a granted command ended, as the shim saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitReport {
    /// The exit status when it exited normally; -1 when a signal killed it.
    pub exit_value: i32,
    /// The signal that killed it, or 0.
    pub signal: i32,
    /// Wall-clock run time in milliseconds.
    pub run_time_ms: u64,
}

/// One message on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// See [`Request`].
    Request(Request),
    /// Queued; the shim prints the pending line and exits 1.
    Pending {
        /// The pending id, `[a-z0-9]{1,32}`.
        id: String,
        /// When the request expires, RFC 3339 in UTC (`2025-01-31T12:30:00Z`): 1 to 40 of
        /// `[0-9A-Za-z:.+-]`.
        expires_at: String,
        /// The request is untrusted: the approver's command needs `--confirm-untrusted`.
        untrusted: bool,
    },
    /// Queued; the shim prints the waiting line and keeps reading.
    Waiting {
        /// The pending id, `[a-z0-9]{1,32}`.
        id: String,
        /// How long the broker will wait for a human (`approval.wait_seconds`): the shim gives
        /// up on a broker silent for longer than this plus a margin.
        wait_seconds: u32,
    },
    /// Run this argv; `argv[0]` is an absolute path and no entry contains NUL.
    Grant {
        /// The exact argv to exec.
        argv: Vec<Vec<u8>>,
    },
    /// See [`Refuse`].
    Refuse(Refuse),
    /// See [`Output`].
    Output(Output),
    /// See [`ExitReport`].
    ExitReport(ExitReport),
    /// The shim relayed this signal (1..=64) to the command.
    Signal {
        /// The signal number.
        signo: i32,
    },
    /// An approver's request to the broker, as UTF-8 JSON.
    Admin {
        /// The JSON text.
        body: Vec<u8>,
    },
    /// The broker's answer to an [`Frame::Admin`], as UTF-8 JSON.
    AdminReply {
        /// Whether the operation succeeded.
        ok: bool,
        /// The JSON text.
        body: Vec<u8>,
    },
    /// Part of an answer too long for one frame; the client joins the parts' bodies in order,
    /// up to and including the final [`Frame::AdminReply`]'s. Each part is whole UTF-8.
    AdminReplyPart {
        /// The JSON text's next part.
        body: Vec<u8>,
    },
    /// One change to the pending queue, as UTF-8 JSON, pushed to an admin client that asked to
    /// watch (`{"event": "added", "request": {…}}` or `{"event": "removed", "id": …,
    /// "reason": …}`); the watch ends with a final [`Frame::AdminReply`].
    AdminEvent {
        /// The JSON text.
        body: Vec<u8>,
    },
    /// System mode: approved; the shim answers with [`Frame::Stdio`].
    Run,
    /// Which of fds 0, 1 and 2 travel with this frame (`SCM_RIGHTS`, in order): system mode
    /// after [`Frame::Run`], user mode after [`Frame::NeedTty`].
    Stdio {
        /// Flags for fds 0, 1 and 2.
        passed: [bool; 3],
    },
    /// System mode: how the command ended, from the broker's own `waitpid`.
    Exited(ExitReport),
    /// User mode: the terminal prompt needs the caller's terminal; the shim answers with
    /// [`Frame::Stdio`], passing only the descriptors that are terminals.
    NeedTty,
}

impl Frame {
    /// The type byte this frame is sent with.
    pub fn frame_type(&self) -> FrameType {
        match self {
            Frame::Request(_) => FrameType::Request,
            Frame::Pending { .. } => FrameType::Pending,
            Frame::Waiting { .. } => FrameType::Waiting,
            Frame::Grant { .. } => FrameType::Grant,
            Frame::Refuse(_) => FrameType::Refuse,
            Frame::Output(_) => FrameType::Output,
            Frame::ExitReport(_) => FrameType::ExitReport,
            Frame::Signal { .. } => FrameType::Signal,
            Frame::Admin { .. } => FrameType::Admin,
            Frame::AdminReply { .. } => FrameType::AdminReply,
            Frame::AdminReplyPart { .. } => FrameType::AdminReplyPart,
            Frame::AdminEvent { .. } => FrameType::AdminEvent,
            Frame::Run => FrameType::Run,
            Frame::Stdio { .. } => FrameType::Stdio,
            Frame::Exited(_) => FrameType::Exited,
            Frame::NeedTty => FrameType::NeedTty,
        }
    }

    /// A refusal frame.
    pub fn refuse(message: impl Into<String>, reason_code: impl Into<String>) -> Frame {
        Frame::Refuse(Refuse {
            message: message.into(),
            reason_code: reason_code.into(),
            exit_code: 1,
        })
    }
}

/// Whether `id` is an acceptable pending id: 1 to 32 of `[a-z0-9]`.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Whether `t` is an acceptable expiry time: 1 to 40 of `[0-9A-Za-z:.+-]`.
pub(crate) fn valid_time(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 40
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'+' | b'-'))
}

/// Whether `code` is an acceptable reason code: 1 to 64 of `[a-z0-9_]`.
pub(crate) fn valid_reason_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
