//! The crate's only FFI: `sendmsg`/`recvmsg` with `SCM_RIGHTS`, because std's ancillary-data
//! API is nightly-only. Nothing here interprets bytes; it only moves them and descriptors.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::MAX_FDS;

/// Control buffer big enough for `MAX_FDS` descriptors, aligned for `cmsghdr`.
#[repr(C, align(8))]
struct CmsgBuf([u8; 64]);

fn cmsg_space(nfds: usize) -> usize {
    let bytes = (nfds * std::mem::size_of::<RawFd>()) as libc::c_uint;
    // SAFETY: CMSG_SPACE is pure arithmetic on its argument; it touches no memory.
    (unsafe { libc::CMSG_SPACE(bytes) }) as usize
}

/// Sends `data` (at least one byte), attaching `fds` to its first byte. Returns bytes sent,
/// which may be fewer than `data.len()`; the caller sends the rest without descriptors.
/// Never raises SIGPIPE.
pub(crate) fn send_with_fds(sock: RawFd, data: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    if fds.len() > MAX_FDS || data.is_empty() {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let mut cbuf = CmsgBuf([0u8; 64]);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: msghdr is a plain C struct for which all-zero bytes is a valid (empty) value; on
    // musl it has private padding fields that must be zero.
    let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        let space = cmsg_space(fds.len());
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points at `cbuf`, which outlives this block, is aligned for
        // cmsghdr and holds `space` (<= 64) bytes, so CMSG_FIRSTHDR returns a pointer into it
        // with room for a header and `fds.len()` descriptors; we write within that room only.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            if cmsg.is_null() {
                return Err(io::Error::from(io::ErrorKind::InvalidInput));
            }
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as libc::c_uint) as _;
            let data_ptr = libc::CMSG_DATA(cmsg).cast::<RawFd>();
            for (i, fd) in fds.iter().enumerate() {
                data_ptr.add(i).write_unaligned(*fd);
            }
        }
    }
    loop {
        // SAFETY: `msg` points at `iov` and `cbuf`, both alive for the call; the kernel only
        // reads them.
        let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Receives into `buf`, appending any passed descriptors (close-on-exec) to `fds`. Returns the
/// byte count (0 at end of stream) and whether the kernel had to cut the control data, in which
/// case it closed the descriptors that did not fit.
pub(crate) fn recv_with_fds(
    sock: RawFd,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<(usize, bool)> {
    let mut cbuf = CmsgBuf([0u8; 64]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is a valid msghdr (see send_with_fds).
    let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    msg.msg_controllen = cmsg_space(MAX_FDS) as _;
    let n = loop {
        // SAFETY: `msg` points at `iov` (over `buf`) and `cbuf`, both alive and writable for
        // the call, with lengths that match their sizes.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    // SAFETY: after a successful recvmsg, msg_control/msg_controllen describe the control
    // messages the kernel wrote into `cbuf`; CMSG_FIRSTHDR/NXTHDR stay within that length, and
    // each SCM_RIGHTS payload holds (cmsg_len - CMSG_LEN(0)) / 4 descriptors that are now ours.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let header = libc::CMSG_LEN(0) as usize;
                let len = ((*cmsg).cmsg_len as usize).saturating_sub(header);
                let count = len / std::mem::size_of::<RawFd>();
                let data_ptr = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for i in 0..count {
                    let fd = data_ptr.add(i).read_unaligned();
                    if fd >= 0 {
                        fds.push(OwnedFd::from_raw_fd(fd));
                    }
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n, msg.msg_flags & libc::MSG_CTRUNC != 0))
}
