//! The one error type of the wire format. Every way a peer can send bad bytes has its own
//! variant, so the broker can record exactly what broke in its `protocol_error` event.

use std::fmt;
use std::io;

/// What went wrong reading, decoding, encoding or sending a frame.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The socket failed (includes read timeouts: `WouldBlock` / `TimedOut`).
    Io(io::Error),
    /// The peer closed the connection cleanly, between frames.
    Closed,
    /// The peer closed the connection, or the buffer ended, in the middle of a frame.
    Truncated {
        /// Bytes the frame still needed.
        missing: usize,
    },
    /// The first header byte was not [`crate::MAGIC`]: not an occ peer, or garbage.
    BadMagic(u8),
    /// The peer speaks another protocol version.
    BadVersion(u8),
    /// The frame type byte names no frame.
    UnknownType(u8),
    /// The header's reserved flags byte was not zero.
    BadFlags(u8),
    /// The frame (or one encoded here) is larger than [`crate::MAX_PAYLOAD`].
    Oversize(usize),
    /// The payload does not decode as its frame type.
    Malformed(&'static str),
    /// More file descriptors than [`crate::MAX_FDS`] arrived, or the kernel cut the list.
    TooManyFds,
    /// A frame other than the request carried file descriptors, or the request's count was off.
    UnexpectedFds {
        /// Descriptors the frame said it carries.
        expected: usize,
        /// Descriptors that arrived.
        got: usize,
    },
}

impl Error {
    /// A stable snake_case name for audit events (`protocol_error` detail).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Io(e) if is_timeout(e) => "timeout",
            Error::Io(_) => "io",
            Error::Closed => "closed",
            Error::Truncated { .. } => "truncated",
            Error::BadMagic(_) => "bad_magic",
            Error::BadVersion(_) => "bad_version",
            Error::UnknownType(_) => "unknown_frame_type",
            Error::BadFlags(_) => "bad_flags",
            Error::Oversize(_) => "oversize",
            Error::Malformed(_) => "malformed",
            Error::TooManyFds => "too_many_fds",
            Error::UnexpectedFds { .. } => "unexpected_fds",
        }
    }
}

/// Whether an I/O error is a socket timeout (`SO_RCVTIMEO`/`SO_SNDTIMEO` report `EAGAIN`).
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) if is_timeout(e) => write!(f, "timed out waiting for the peer"),
            Error::Io(e) => write!(f, "socket error: {e}"),
            Error::Closed => write!(f, "connection closed"),
            Error::Truncated { missing } => {
                write!(f, "frame truncated ({missing} more bytes were due)")
            }
            Error::BadMagic(b) => write!(f, "not an occ frame (first byte 0x{b:02x})"),
            Error::BadVersion(v) => write!(
                f,
                "protocol version {v} is not supported (this build speaks {})",
                crate::VERSION
            ),
            Error::UnknownType(t) => write!(f, "unknown frame type {t}"),
            Error::BadFlags(b) => write!(f, "reserved header byte is 0x{b:02x}, not 0"),
            Error::Oversize(n) => write!(
                f,
                "frame of {n} bytes exceeds the {} byte limit",
                crate::MAX_PAYLOAD
            ),
            Error::Malformed(what) => write!(f, "malformed frame: {what}"),
            Error::TooManyFds => write!(
                f,
                "more than {} file descriptors were passed",
                crate::MAX_FDS
            ),
            Error::UnexpectedFds { expected, got } => write!(
                f,
                "frame declared {expected} file descriptors but {got} arrived"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}
