//! The shim's only FFI: terminal queries, the bounded connect, the single-instance lock probe,
//! starting the broker as a detached daemon, signal relay and waiting for the granted command.
//! It never changes privileges and never looks up users, groups or hosts.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Connects to the Unix socket at `path`, giving up at `deadline`: a non-blocking connect, so a
/// broker that stopped accepting can never hold the shim. A full listen backlog (`EAGAIN` at
/// once for `AF_UNIX`) is retried with short sleeps until the deadline, then reported as
/// `TimedOut`; `ENOENT` and `ECONNREFUSED` (nobody listens) come back at once. The stream is
/// returned in blocking mode; every later read and write carries its own deadline.
pub fn connect_unix(path: &Path, deadline: Instant) -> io::Result<UnixStream> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain data; all-zero is a valid empty address that we then fill.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    let mut pause = Duration::from_millis(2);
    loop {
        // SAFETY: socket returns a new descriptor or -1; it touches no memory of ours.
        let raw = unsafe {
            libc::socket(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is the descriptor socket just returned, owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: `addr` is a valid sockaddr_un of which `len` bytes are used; the kernel only
        // reads it during the call.
        let rc = unsafe {
            libc::connect(
                raw,
                (&addr as *const libc::sockaddr_un).cast::<libc::sockaddr>(),
                len,
            )
        };
        let err = if rc == 0 {
            None
        } else {
            Some(io::Error::last_os_error())
        };
        match err.as_ref().and_then(io::Error::raw_os_error) {
            None => return blocking(fd),
            Some(libc::EINPROGRESS | libc::EALREADY | libc::EINTR) => {
                if !wait_writable(raw, deadline)? {
                    return Err(io::Error::from(io::ErrorKind::TimedOut));
                }
                let mut so_error: libc::c_int = 0;
                let mut optlen = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
                // SAFETY: `so_error` and `optlen` are valid out-pointers of the sizes given.
                let rc = unsafe {
                    libc::getsockopt(
                        raw,
                        libc::SOL_SOCKET,
                        libc::SO_ERROR,
                        (&mut so_error as *mut libc::c_int).cast(),
                        &mut optlen,
                    )
                };
                if rc != 0 {
                    return Err(io::Error::last_os_error());
                }
                if so_error != 0 {
                    return Err(io::Error::from_raw_os_error(so_error));
                }
                return blocking(fd);
            }
            Some(libc::EAGAIN) => {
                // The backlog is full: nobody accepts right now. Try again until the deadline.
                drop(fd);
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::from(io::ErrorKind::TimedOut));
                }
                std::thread::sleep(pause.min(left));
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Some(_) => return Err(err.unwrap_or_else(|| io::Error::other("connect failed"))),
        }
    }
}

fn blocking(fd: OwnedFd) -> io::Result<UnixStream> {
    let stream = UnixStream::from(fd);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// Waits until `fd` is writable (the connect finished) or `deadline` passes (`Ok(false)`).
fn wait_writable(fd: RawFd, deadline: Instant) -> io::Result<bool> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: `p` is one valid pollfd for the duration of the call.
        let rc = unsafe { libc::poll(&mut p, 1, ms) };
        if rc > 0 {
            return Ok(true);
        }
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// Whether `fd` is a terminal.
pub fn isatty(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor number; a closed fd yields 0.
    unsafe { libc::isatty(fd) == 1 }
}

/// Whether `fd` is open.
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD reads the descriptor's flags and touches no memory.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// The terminal device name of `fd`, if it is a terminal.
pub fn ttyname(fd: RawFd) -> Option<Vec<u8>> {
    let mut buf = [0u8; 256];
    // SAFETY: ttyname_r writes at most `buf.len()` bytes, NUL-terminated, into `buf`.
    let rc = unsafe { libc::ttyname_r(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let name = CStr::from_bytes_until_nul(&buf).ok()?;
    Some(name.to_bytes().to_vec())
}

/// The size of the terminal on `fd`, (columns, lines), when it has one set.
pub fn winsize(fd: RawFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct passed by pointer.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
}

/// What the broker's single-instance lock says.
#[derive(Debug, PartialEq, Eq)]
pub enum LockState {
    /// Nobody holds it (or it does not exist yet): a broker may be started.
    Free,
    /// A broker holds it: one is running or starting.
    Held,
}

/// Probes `run/broker.lock` without keeping it: a brief `flock(LOCK_EX|LOCK_NB)`.
pub fn probe_lock(path: &CStr) -> io::Result<LockState> {
    // SAFETY: `path` is a valid NUL-terminated string; open returns a new fd or -1.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::NotFound {
            return Ok(LockState::Free);
        }
        return Err(e);
    }
    // SAFETY: `fd` is the descriptor we just opened.
    let rc = unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) };
    let e = io::Error::last_os_error();
    // SAFETY: closing our own descriptor releases the probe lock if we took it.
    unsafe { libc::close(fd) };
    if rc == 0 {
        Ok(LockState::Free)
    } else if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(LockState::Held)
    } else {
        Err(e)
    }
}

/// Starts `argv` (with exactly `env`) as a daemon: fork, `setsid`, fork again, stdin from
/// /dev/null, stdout and stderr appended to `log`, every other descriptor closed, cwd `/`.
/// Returns once the intermediate child has exited, so the caller leaves no zombie and the
/// daemon holds none of the caller's descriptors (a `$(sudo …)` pipe closes promptly).
pub fn spawn_daemon(argv: &[CString], env: &[CString], log: &CStr) -> io::Result<()> {
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut env_p: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    env_p.push(std::ptr::null());
    let Some(prog) = argv.first() else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let devnull = c"/dev/null";
    let root = c"/";
    // SAFETY: the shim is single-threaded here, so the child may run any code; it only calls
    // async-signal-safe functions anyway, on pointers prepared before the fork, and leaves with
    // execve or _exit, never returning into Rust code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: see above; every pointer stays valid in the child's copy of memory.
        unsafe {
            if libc::setsid() < 0 {
                libc::_exit(1);
            }
            match libc::fork() {
                -1 => libc::_exit(1),
                0 => {}
                _ => libc::_exit(0),
            }
            libc::umask(0o077);
            let null = libc::open(devnull.as_ptr(), libc::O_RDONLY);
            let out = libc::open(
                log.as_ptr(),
                libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_NOFOLLOW,
                0o600 as libc::c_uint,
            );
            if null < 0 || out < 0 {
                libc::_exit(1);
            }
            libc::dup2(null, 0);
            libc::dup2(out, 1);
            libc::dup2(out, 2);
            close_from(3);
            libc::chdir(root.as_ptr());
            libc::execve(prog.as_ptr(), argv_p.as_ptr(), env_p.as_ptr());
            libc::_exit(127);
        }
    }
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child; `status` is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        Err(io::Error::other("the daemon's intermediate process failed"))
    }
}

/// Closes every descriptor from `first` up. Used only in a forked child before exec.
///
/// # Safety
/// Must only be called in a single-threaded forked child that owns no Rust objects wrapping
/// descriptors at or above `first`.
unsafe fn close_from(first: libc::c_uint) {
    // SAFETY: close_range closes descriptors only; the caller guarantees nothing uses them.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0) };
    if rc != 0 {
        // Kernels before 5.9: close them one by one up to the soft limit.
        // SAFETY: sysconf has no memory effects.
        let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) };
        let max = if max <= 0 { 1024 } else { max.min(65_536) } as libc::c_int;
        for fd in first as libc::c_int..max {
            // SAFETY: as above; EBADF on unused numbers is harmless.
            unsafe { libc::close(fd) };
        }
    }
}

/// The granted command's pid while it runs (0 otherwise), read by the signal handler.
static CHILD: AtomicI32 = AtomicI32::new(0);
/// Bit `n` set: signal `n` was relayed and not yet reported to the broker.
static RELAYED: AtomicU64 = AtomicU64::new(0);
/// Bit `n` set: signal `n` came while the command was being started (its pid not yet known);
/// [`set_child`] relays it as soon as the pid is.
static EARLY: AtomicU64 = AtomicU64::new(0);

/// The signals the shim relays to the command, as sudo does.
pub const RELAY: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// System mode: the broker runs the command in its own session, so every signal the shim gets
/// (the terminal's too) is only noted, and the main loop sends it to the broker.
static NOTE_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn relay_handler(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    if NOTE_ONLY.load(Ordering::SeqCst) {
        if (0..64).contains(&sig) {
            RELAYED.fetch_or(1u64 << sig, Ordering::SeqCst);
        }
        return;
    }
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    // A signal from the terminal driver (si_code > 0) already reached the command, which shares
    // our foreground process group; relaying it would deliver it twice. Signals sent by a
    // process (kill, si_code <= 0) are forwarded, as sudo forwards them.
    if code > 0 {
        return;
    }
    let child = CHILD.load(Ordering::SeqCst);
    if child > 0 {
        relay(child, sig);
    } else if (0..64).contains(&sig) {
        EARLY.fetch_or(1u64 << sig, Ordering::SeqCst);
    }
}

/// Sends `sig` to `child` and notes it for the broker. Async-signal-safe.
fn relay(child: libc::c_int, sig: libc::c_int) {
    // SAFETY: kill is async-signal-safe and only sends a signal.
    unsafe { libc::kill(child, sig) };
    if (0..64).contains(&sig) {
        RELAYED.fetch_or(1u64 << sig, Ordering::SeqCst);
    }
}

/// Installs the relay handler for [`RELAY`], without `SA_RESTART` so a blocked `waitpid`
/// returns `EINTR` and the main loop can report relayed signals.
pub fn install_relay() -> io::Result<()> {
    for sig in RELAY {
        // SAFETY: sigaction is plain data; all-zero is a valid empty action that we then fill.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = relay_handler as *const () as libc::sighandler_t;
        sa.sa_flags = libc::SA_SIGINFO;
        // SAFETY: `sa.sa_mask` is a valid sigset_t to clear.
        unsafe { libc::sigemptyset(&mut sa.sa_mask) };
        // SAFETY: installs a handler that only touches atomics and calls kill.
        if unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// System mode: signals are noted for the broker (see [`take_relayed`]), never sent by us.
pub fn note_signals_for_broker() -> io::Result<()> {
    NOTE_ONLY.store(true, Ordering::SeqCst);
    install_relay()
}

/// Waits up to `ms` for `fd` to be readable (or hung up); a signal ends the wait early.
pub fn readable(fd: RawFd, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd for the duration of the call.
    let rc = unsafe { libc::poll(&mut p, 1, ms) };
    rc > 0 && p.revents != 0
}

/// Tells the relay handler which pid to forward to (0 to stop). A signal that came while the
/// command was being started is relayed to it now. (The shim has one thread, so the handler
/// runs either before this store, and leaves the signal in `EARLY`, or after it, and relays.)
pub fn set_child(pid: i32) {
    CHILD.store(pid, Ordering::SeqCst);
    let early = EARLY.swap(0, Ordering::SeqCst);
    if pid > 0 {
        for sig in (1..64).filter(|s| early & (1u64 << s) != 0) {
            relay(pid, sig);
        }
    }
}

/// Takes the set of signals relayed since the last call.
pub fn take_relayed() -> Vec<i32> {
    let bits = RELAYED.swap(0, Ordering::SeqCst);
    (1..64).filter(|s| bits & (1u64 << s) != 0).collect()
}

/// How the command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this status.
    Exited(i32),
    /// This signal killed it.
    Signaled(i32),
}

/// Waits for `pid` once; `Ok(None)` when a signal interrupted the wait.
pub fn wait_child(pid: i32) -> io::Result<Option<Ended>> {
    let mut status = 0;
    // SAFETY: waiting for our own child; `status` is a valid out-pointer.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(None);
        }
        return Err(e);
    }
    if libc::WIFSIGNALED(status) {
        Ok(Some(Ended::Signaled(libc::WTERMSIG(status))))
    } else {
        Ok(Some(Ended::Exited(libc::WEXITSTATUS(status))))
    }
}

/// Dies of `sig` as the command did (sudo's behaviour); returns only if that did not kill us.
pub fn reraise(sig: i32) {
    // SAFETY: restoring the default action, unblocking and raising a signal on ourselves have
    // no memory effects; if the default action is fatal the process ends here.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn a_signal_before_the_pid_is_known_is_relayed_once_it_is() {
        install_relay().unwrap();
        // SIGTERM sent by a process (si_code <= 0) while no command runs yet.
        // SAFETY: the relay handler is installed for SIGTERM; raise only signals this thread.
        assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
        assert!(take_relayed().is_empty(), "nothing to relay to yet");
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("30")
            .spawn()
            .unwrap();
        set_child(child.id() as i32);
        let status = child.wait().unwrap();
        set_child(0);
        assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
        assert_eq!(take_relayed(), vec![libc::SIGTERM]);
    }
}
