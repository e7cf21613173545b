//! The broker's raw FFI: `poll` for readiness and hangup, and the fork for `occ broker`'s own
//! daemonisation. Everything else goes through `nix`. No privilege changes happen here.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// What `poll` saw on one descriptor.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ready {
    /// Data (or end of stream) to read.
    pub readable: bool,
    /// The peer closed its end, or the socket failed.
    pub hangup: bool,
}

/// Polls up to two descriptors for input and hangup. `None` waits forever.
pub fn poll2(
    a: BorrowedFd<'_>,
    b: Option<BorrowedFd<'_>>,
    timeout: Option<Duration>,
) -> io::Result<[Ready; 2]> {
    let events = libc::POLLIN | libc::POLLRDHUP;
    let mut fds = [
        libc::pollfd {
            fd: a.as_raw_fd(),
            events,
            revents: 0,
        },
        libc::pollfd {
            // A negative fd is ignored by poll.
            fd: b.map_or(-1, |b| b.as_raw_fd()),
            events,
            revents: 0,
        },
    ];
    let ms = match timeout {
        None => -1,
        Some(d) => libc::c_int::try_from(d.as_millis()).unwrap_or(libc::c_int::MAX),
    };
    // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok([Ready::default(); 2]);
        }
        return Err(e);
    }
    let ready = |p: &libc::pollfd| Ready {
        readable: p.revents & libc::POLLIN != 0,
        hangup: p.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0,
    };
    Ok([ready(&fds[0]), ready(&fds[1])])
}

/// Which side of a fork we are on.
pub enum Forked {
    /// The original process; the child's pid.
    Parent(i32),
    /// The new process.
    Child,
}

/// Forks. Call only while the process is single-threaded (before any thread is spawned).
pub fn fork_single_threaded() -> io::Result<Forked> {
    // SAFETY: the caller guarantees no other thread exists, so the child's copy of memory (and
    // of every lock) is consistent and it may keep running ordinary Rust code.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        p => Ok(Forked::Parent(p)),
    }
}

/// Leaves the process now, without running destructors or flushing (a forked parent's exit).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process immediately; nothing is touched afterwards.
    unsafe { libc::_exit(code) }
}
