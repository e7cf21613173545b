//! Reading and writing whole frames on a Unix stream socket, with the caller's stdio
//! descriptors riding on the request. Timeouts are the socket's own (`set_read_timeout`).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use crate::error::Error;
use crate::frame::Frame;
use crate::wire::{decode_header, decode_payload, encode};
use crate::{sys, HEADER_LEN, MAX_FDS};

/// A frame and the descriptors that came with it (only a request carries any).
#[derive(Debug)]
pub struct Received {
    /// The decoded frame.
    pub frame: Frame,
    /// Descriptors passed with it, in the order the sender gave them (close-on-exec).
    pub fds: Vec<OwnedFd>,
}

/// Reads exactly one frame. A clean end of stream before the first byte is [`Error::Closed`];
/// anything the peer gets wrong is a typed error, and descriptors that came with a bad frame
/// are closed.
pub fn read_frame(sock: &UnixStream) -> Result<Received, Error> {
    read_frame_by(sock, None)
}

/// Like [`read_frame`], but the whole frame must arrive before `deadline`, however slowly the
/// peer trickles it (a stalled or slow-drip peer gets a timeout). Changes the socket's read
/// timeout.
pub fn read_frame_by(sock: &UnixStream, deadline: Option<Instant>) -> Result<Received, Error> {
    let mut fds = Vec::new();
    let mut head = [0u8; HEADER_LEN];
    fill(sock, &mut head, &mut fds, true, deadline)?;
    let (kind, len) = decode_header(&head)?;
    let mut payload = vec![0u8; len];
    fill(sock, &mut payload, &mut fds, false, deadline)?;
    let frame = decode_payload(kind, &payload)?;
    let expected = match &frame {
        Frame::Request(r) => r.passed_fd_count(),
        Frame::Stdio { passed } => passed.iter().filter(|b| **b).count(),
        _ => 0,
    };
    if fds.len() != expected {
        return Err(Error::UnexpectedFds {
            expected,
            got: fds.len(),
        });
    }
    Ok(Received { frame, fds })
}

/// Fills `buf` completely. `at_start` makes an immediate end of stream a clean [`Error::Closed`].
fn fill(
    sock: &UnixStream,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    at_start: bool,
    deadline: Option<Instant>,
) -> Result<(), Error> {
    let mut got = 0;
    while got < buf.len() {
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Io(io::Error::from(io::ErrorKind::TimedOut)));
            }
            sock.set_read_timeout(Some(left))?;
        }
        let (n, cut) = sys::recv_with_fds(sock.as_raw_fd(), &mut buf[got..], fds)?;
        if cut || fds.len() > MAX_FDS {
            return Err(Error::TooManyFds);
        }
        if n == 0 {
            if at_start && got == 0 {
                return Err(Error::Closed);
            }
            return Err(Error::Truncated {
                missing: buf.len() - got,
            });
        }
        got += n;
    }
    Ok(())
}

/// Writes one frame, attaching `fds` (at most [`MAX_FDS`]) to its first byte. Never raises
/// SIGPIPE: a vanished peer is an [`Error::Io`] with `BrokenPipe`. Uses the socket's own write
/// timeout, if any.
pub fn write_frame(sock: &UnixStream, frame: &Frame, fds: &[BorrowedFd<'_>]) -> Result<(), Error> {
    write_frame_by(sock, frame, fds, None)
}

/// Like [`write_frame`], but the whole frame must be written before `deadline`, however slowly
/// the peer reads (a stopped peer with a full socket buffer gets a timeout). Changes the
/// socket's write timeout.
pub fn write_frame_by(
    sock: &UnixStream,
    frame: &Frame,
    fds: &[BorrowedFd<'_>],
    deadline: Option<Instant>,
) -> Result<(), Error> {
    if fds.len() > MAX_FDS {
        return Err(Error::TooManyFds);
    }
    let bytes = encode(frame)?;
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let fd = sock.as_raw_fd();
    let mut sent = 0;
    while sent < bytes.len() {
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Io(io::Error::from(io::ErrorKind::TimedOut)));
            }
            sock.set_write_timeout(Some(left))?;
        }
        let with = if sent == 0 { raw.as_slice() } else { &[] };
        sent += sys::send_with_fds(fd, &bytes[sent..], with)?;
    }
    Ok(())
}
