//! The broker's raw FFI: `poll` for readiness and hangup, the fork for `occ broker`'s own
//! daemonisation, and the system broker's spawn of an approved command (privileges change only
//! in that freshly forked child). Everything else goes through `nix`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
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

/// Everything a system-mode command is started with, prepared before the fork so the child
/// only makes system calls (no allocation, no locks: the broker is multi-threaded).
pub struct SpawnSpec {
    /// The approved file, opened and checked at resolution; executed by descriptor.
    pub exe: std::os::fd::OwnedFd,
    /// argv, NUL-terminated strings.
    pub argv: Vec<std::ffi::CString>,
    /// The environment built from scratch.
    pub envp: Vec<std::ffi::CString>,
    /// The directory the command runs in.
    pub cwd: std::ffi::CString,
    /// Target uid, gid and supplementary groups.
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    /// The caller's stdin, stdout and stderr (`/dev/null` where none came).
    pub stdio: [std::os::fd::OwnedFd; 3],
    /// Drop the capability bounding and ambient sets and set `no_new_privs` (non-root targets).
    pub drop_privileges: bool,
}

/// A started command: its pid (also its process group and session) and a pidfd for it.
pub struct Spawned {
    pub pid: i32,
    pub pidfd: std::os::fd::OwnedFd,
    /// Writing one byte here lets the child exec; dropping it unsent makes the child exit 127.
    go: std::os::fd::OwnedFd,
    /// End of file here means the exec happened; 4 bytes are the errno of the step that failed.
    status: std::fs::File,
}

fn pipe_cloexec() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    })
}

/// Forks the command's process and prepares it as `spec` says; it waits for
/// [`Spawned::release`] before it execs. The child: new session; capability sets dropped
/// (when asked); supplementary groups, gid and uid set (real, effective and saved); the
/// approved directory; the caller's stdio on 0–2; every other descriptor close-on-exec; the
/// signal mask, SIGPIPE and the umask (0022, sudo's default) reset; then `execveat(exe, "", argv, envp, AT_EMPTY_PATH)`.
pub fn spawn(spec: &SpawnSpec) -> io::Result<Spawned> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let (go_r, go_w) = pipe_cloexec()?;
    let (st_r, st_w) = pipe_cloexec()?;
    let mut argv: Vec<*const libc::c_char> = spec.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = spec.envp.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    let stdio = [
        spec.stdio[0].as_raw_fd(),
        spec.stdio[1].as_raw_fd(),
        spec.stdio[2].as_raw_fd(),
    ];
    let exe = spec.exe.as_raw_fd();
    let (go_r_fd, st_w_fd) = (go_r.as_raw_fd(), st_w.as_raw_fd());
    // SAFETY: fork in a multi-threaded process; the child below makes only async-signal-safe
    // system calls on memory prepared before the fork, and leaves by exec or _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: child side of the fork; see `child`.
        unsafe { child(spec, &argv, &envp, stdio, exe, go_r_fd, st_w_fd) }
    }
    drop(go_r);
    drop(st_w);
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let pidfd = if rc < 0 {
        let e = io::Error::last_os_error();
        // SAFETY: kill and waitpid on our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        return Err(e);
    } else {
        // SAFETY: a successful pidfd_open returns a new descriptor that nothing else owns.
        unsafe { std::os::fd::OwnedFd::from_raw_fd(rc as libc::c_int) }
    };
    Ok(Spawned {
        pid,
        pidfd,
        go: go_w,
        status: std::fs::File::from(st_r),
    })
}

/// The child side of [`spawn`]. Never returns.
///
/// # Safety
/// Call only in the child of a fork, with pointers into memory prepared before the fork.
unsafe fn child(
    spec: &SpawnSpec,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    stdio: [libc::c_int; 3],
    exe: libc::c_int,
    go: libc::c_int,
    status: libc::c_int,
) -> ! {
    let fail = |step: i32| -> ! {
        let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        // Built on the stack: the child must not allocate.
        let mut msg = [0u8; 8];
        msg[..4].copy_from_slice(&step.to_ne_bytes());
        msg[4..].copy_from_slice(&errno.to_ne_bytes());
        // SAFETY: write and _exit are async-signal-safe; `msg` lives on this stack.
        unsafe {
            libc::write(status, msg.as_ptr().cast(), msg.len());
            libc::_exit(127)
        }
    };
    // SAFETY: each call is an async-signal-safe system call on values prepared before the
    // fork; a failure is reported on the status pipe and ends the child.
    unsafe {
        // Wait for the parent to record exec_start; no byte means it could not.
        let mut b = 0u8;
        if libc::read(go, (&mut b as *mut u8).cast(), 1) != 1 {
            libc::_exit(127);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        // Every disposition back to its default: an ignored signal survives exec, and a
        // broker started with SIGHUP ignored (under `nohup`, by some init scripts) must not
        // hand that to the command, which would then outlive its hang-up. Signals this
        // kernel does not have, and SIGKILL/SIGSTOP, fail harmlessly with EINVAL.
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for sig in 1..65 {
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
        }
        // sudo's default umask for the command, not the broker's private 0077.
        libc::umask(0o022);
        if libc::setsid() < 0 {
            fail(1);
        }
        if spec.drop_privileges {
            for cap in 0..=63 {
                // Caps this kernel does not know fail with EINVAL: nothing to drop.
                libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
            }
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            );
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                fail(2);
            }
        }
        if libc::setgroups(spec.groups.len(), spec.groups.as_ptr()) != 0 {
            fail(3);
        }
        if libc::setresgid(spec.gid, spec.gid, spec.gid) != 0 {
            fail(4);
        }
        if libc::setresuid(spec.uid, spec.uid, spec.uid) != 0 {
            fail(5);
        }
        if libc::chdir(spec.cwd.as_ptr()) != 0 {
            fail(6);
        }
        for (target, fd) in stdio.iter().enumerate() {
            let target = target as libc::c_int;
            if *fd == target {
                // dup2 onto itself keeps close-on-exec; clear it instead.
                libc::fcntl(target, libc::F_SETFD, 0);
            } else if libc::dup2(*fd, target) < 0 {
                fail(7);
            }
        }
        // Nothing but 0-2 crosses the exec: the approved file's descriptor and the status
        // pipe are close-on-exec too.
        if libc::close_range(
            3,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_int,
        ) != 0
        {
            for fd in 3..65_536 {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        libc::execveat(
            exe,
            c"".as_ptr(),
            argv.as_ptr() as *const *mut libc::c_char,
            envp.as_ptr() as *const *mut libc::c_char,
            libc::AT_EMPTY_PATH,
        );
        fail(8)
    }
}

impl Spawned {
    /// Lets the child exec, then learns whether it did: `Err` names the step that failed.
    pub fn release(&mut self) -> io::Result<()> {
        use std::io::{Read, Write};
        std::fs::File::from(self.go.try_clone()?).write_all(&[1])?;
        let mut buf = [0u8; 8];
        let mut got = 0;
        while got < buf.len() {
            match self.status.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if got == 0 {
            return Ok(());
        }
        let step = i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let errno = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let what = match step {
            1 => "setsid",
            2 => "no_new_privs",
            3 => "setgroups",
            4 => "setresgid",
            5 => "setresuid",
            6 => "chdir to the approved directory",
            7 => "dup2 of the caller's stdio",
            _ => "execveat of the approved file",
        };
        Err(io::Error::new(
            io::Error::from_raw_os_error(errno).kind(),
            format!("{what}: {}", io::Error::from_raw_os_error(errno)),
        ))
    }

    /// Sends `signo` to the command's process group.
    pub fn signal_group(&self, signo: i32) -> io::Result<()> {
        // SAFETY: kill takes plain integers; a negative pid names the process group.
        if unsafe { libc::kill(-self.pid, signo) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reaps the command if it has ended: `Some((exit_value, signal))`, exit_value -1 when a
    /// signal killed it.
    pub fn try_wait(&self) -> io::Result<Option<(i32, i32)>> {
        let mut st: libc::c_int = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        let rc = unsafe { libc::waitpid(self.pid, &mut st, libc::WNOHANG) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        if rc == 0 {
            return Ok(None);
        }
        if libc::WIFEXITED(st) {
            Ok(Some((libc::WEXITSTATUS(st), 0)))
        } else if libc::WIFSIGNALED(st) {
            Ok(Some((-1, libc::WTERMSIG(st))))
        } else {
            Ok(None)
        }
    }
}

/// Whether a process with `pid` exists (for runs a crashed broker left behind).
pub fn process_exists(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// `SO_PEERPIDFD` (Linux 6.5): a pidfd for the peer process, taken by the kernel at connect.
const SO_PEERPIDFD: libc::c_int = 77;

/// A pidfd for the process at the other end of `sock`, proven to be the process that
/// connected: `SO_PEERPIDFD` where the kernel has it; otherwise `pidfd_open(pid)` with a start
/// time no later than `accepted_ticks` (clock ticks since boot when the connection was
/// accepted), re-checked after the pidfd is open, so a recycled pid is never taken for the
/// caller. `Err` when the caller is gone or the pid was reused.
pub fn peer_pidfd(
    sock: BorrowedFd<'_>,
    pid: i32,
    accepted_ticks: u64,
) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let mut fd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `fd`, an int we own.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            (&mut fd as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc == 0 && fd >= 0 {
        // SAFETY: the kernel returned a new pidfd that nothing else owns.
        return Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
    }
    pidfd_started_by(pid, accepted_ticks)
}

/// `pidfd_open(pid)`, accepted only for a process that started no later than
/// `accepted_ticks` and is still running once its pidfd is open: a pid recycled by a process
/// that started after the connection was accepted is refused.
fn pidfd_started_by(pid: i32, accepted_ticks: u64) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a successful pidfd_open returns a new descriptor that nothing else owns.
    let pidfd = unsafe { std::os::fd::OwnedFd::from_raw_fd(rc as libc::c_int) };
    let started = process_start_ticks(pid)?;
    if started > accepted_ticks {
        return Err(io::Error::other(format!(
            "pid {pid} started after the connection was accepted: the caller is gone and its pid reused"
        )));
    }
    // Still the same process after reading /proc: its pidfd has not reported an exit.
    if poll2(pidfd.as_fd(), None, Some(Duration::ZERO))?[0].readable {
        return Err(io::Error::other(format!(
            "pid {pid} exited while it was being identified"
        )));
    }
    Ok(pidfd)
}

/// Clock ticks since boot now (the unit of /proc/PID/stat's start time).
pub fn boot_ticks() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    // SAFETY: sysconf only reads a configuration value.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100);
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    // Rounded up: a process started in this tick counts as started before now.
    secs * hz + (nanos * hz).div_ceil(1_000_000_000)
}

/// A process's start time in clock ticks since boot (field 22 of /proc/PID/stat).
fn process_start_ticks(pid: i32) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("unreadable /proc stat"))?;
    rest.split_whitespace()
        .nth(19)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| io::Error::other("no start time in /proc stat"))
}

/// Makes `cmd`'s child become `uid`/`gid` with exactly `groups` before it execs (the system
/// broker's notifier): supplementary groups, then gid, then uid (real, effective and saved),
/// with no capabilities kept across the exec and `no_new_privs` set, so a set-id file cannot
/// take it back up. A failed step fails the spawn; it never runs as root by mistake.
pub fn become_user_on_exec(
    cmd: &mut std::process::Command,
    uid: u32,
    gid: u32,
    groups: Vec<libc::gid_t>,
) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and makes only
    // async-signal-safe system calls on `groups`, allocated before the fork; it does not
    // allocate, lock or touch the parent's state.
    unsafe {
        cmd.pre_exec(move || {
            for cap in 0..=63 {
                // Caps this kernel does not know fail with EINVAL: nothing to drop.
                libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
            }
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setresgid(gid, gid, gid) != 0
                || libc::setresuid(uid, uid, uid) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // Root cannot come back: a non-root uid that regains 0 means the drop failed.
            if uid != 0 && libc::setuid(0) == 0 {
                return Err(io::Error::from_raw_os_error(libc::EPERM));
            }
            Ok(())
        });
    }
}

/// Makes `cmd`'s child get SIGKILL when this process dies (`PR_SET_PDEATHSIG`), so a helper
/// outlives neither us nor whoever kills us: `occ notify-openclaw` killed at the broker's
/// notifier deadline takes its `openclaw` (in a process group of its own) with it. The child
/// refuses to start when we are already gone.
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec and makes only
    // async-signal-safe system calls (prctl, getppid) on plain integers copied before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // We died between the fork and the prctl: nobody waits for this child any more.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::{pidfd_started_by, process_start_ticks};

    /// The fallback without SO_PEERPIDFD: a process that started after the connection was
    /// accepted (what a recycled pid is) is refused; the one that started before is taken.
    #[test]
    fn a_pid_that_started_after_the_connection_is_never_taken_for_the_caller() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        let started = process_start_ticks(pid).expect("its start time");
        // Accepted the tick before it started: this pid now belongs to someone else.
        let e = pidfd_started_by(pid, started.saturating_sub(1)).unwrap_err();
        assert!(
            e.to_string()
                .contains("started after the connection was accepted"),
            "{e}"
        );
        assert!(pidfd_started_by(pid, started).is_ok());
        let _ = child.kill();
        let _ = child.wait();
        // Gone: no pidfd for it at all.
        assert!(pidfd_started_by(pid, u64::MAX).is_err());
    }
}
