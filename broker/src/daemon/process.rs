//! The broker process itself: detaching from the caller (fork, setsid, fork), the signals that
//! stop it (SIGHUP reloads the system broker instead), and the system broker's own directories.
//! Nothing here serves a connection or decides anything.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};

use super::{files, Shutdown, StopCause};
use crate::sys;

/// The system broker's directories: state and log (root, 0700). Refuses to run as anyone
/// but root, and refuses directories someone else owns or can write.
pub(super) fn system_dirs() -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    if !nix::unistd::geteuid().is_root() {
        return Err("must run as root; it is started by the init system \
                    (systemctl start occ-broker), never by a setuid binary"
            .into());
    }
    for dir in [
        crate::layout::SYSTEM_STATE_DIR,
        crate::layout::SYSTEM_LOG_DIR,
    ] {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {dir}: {e}"))?;
        let md = std::fs::symlink_metadata(dir).map_err(|e| format!("{dir}: {e}"))?;
        if !md.is_dir() || md.uid() != 0 {
            return Err(format!(
                "{dir} must be a directory owned by root; fix: chown root:root {dir}"
            ));
        }
        if md.mode() & 0o7777 != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("chmod 0700 {dir}: {e}"))?;
        }
    }
    Ok(())
}

/// Blocks the stop signals in every thread and turns them into a shutdown from one thread
/// (SIGHUP into `reload` when there is one). Must run before any other thread is spawned, so
/// all threads inherit the mask.
pub(super) fn watch_signals(
    shutdown: Shutdown,
    reload: Option<Box<dyn Fn() + Send>>,
) -> std::io::Result<()> {
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block().map_err(std::io::Error::from)?;
    std::thread::Builder::new()
        .name("occ-signals".into())
        .spawn(move || loop {
            match set.wait() {
                Ok(Signal::SIGHUP) if reload.is_some() => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    if let Some(r) = &reload {
                        r();
                    }
                }
                Ok(sig) => {
                    tracing::info!(signal = %sig, "signal received");
                    shutdown.trigger(StopCause::Signal(sig as i32));
                }
                Err(e) => {
                    tracing::error!("sigwait failed: {e}");
                    return;
                }
            }
        })?;
    Ok(())
}

pub(super) fn tell(pipe: &mut Option<UnixStream>, msg: &str) {
    if let Some(p) = pipe.as_mut() {
        let _ = p.write_all(msg.as_bytes());
    }
}

pub(super) enum Detached {
    /// We are the process the user started; exit with this code.
    Parent(i32),
    /// We are the daemon; report readiness on this pipe.
    Daemon(UnixStream),
}

/// Detaches: fork, `setsid`, fork; the daemon's stdin is /dev/null and its stdout and stderr
/// go to run/broker.log. The original process waits (up to 5 s) to report whether it started.
pub(super) fn detach(paths: &files::RunPaths, json: bool) -> Result<Detached, String> {
    files::ensure_run_dir(paths).map_err(|e| e.to_string())?;
    let log = files::open_log(paths).map_err(|e| e.to_string())?;
    let devnull = std::fs::File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
    let (mut parent_end, child_end) =
        UnixStream::pair().map_err(|e| format!("cannot create a pipe: {e}"))?;
    match sys::fork_single_threaded().map_err(|e| format!("fork: {e}"))? {
        sys::Forked::Parent(pid) => {
            drop(child_end);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            let _ = parent_end.set_read_timeout(Some(Duration::from_secs(5)));
            let mut msg = String::new();
            let _ = (&mut parent_end).take(4096).read_to_string(&mut msg);
            let socket = paths.socket.display().to_string();
            let (code, started, pid, detail) = if let Some(pid) = msg.strip_prefix("ready ") {
                (
                    0,
                    true,
                    pid.trim().parse::<u32>().ok(),
                    format!("started (pid {pid}), listening on {socket}"),
                )
            } else if let Some(why) = msg.strip_prefix("locked ") {
                (0, false, None, why.to_string())
            } else if let Some(why) = msg.strip_prefix("error ") {
                (2, false, None, why.to_string())
            } else {
                (
                    2,
                    false,
                    None,
                    format!(
                        "the daemon did not report readiness; see {}",
                        paths.log.display()
                    ),
                )
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({"started": started, "pid": pid, "socket": socket, "detail": detail})
                );
            } else if code == 0 {
                println!("occ broker: {detail}");
            } else {
                eprintln!("occ broker: {detail}");
            }
            Ok(Detached::Parent(code))
        }
        sys::Forked::Child => {
            drop(parent_end);
            if nix::unistd::setsid().is_err() {
                sys::exit_now(2);
            }
            match sys::fork_single_threaded() {
                Ok(sys::Forked::Parent(_)) => sys::exit_now(0),
                Ok(sys::Forked::Child) => {}
                Err(_) => sys::exit_now(2),
            }
            use std::os::fd::AsRawFd;
            let ok = nix::unistd::dup2(devnull.as_raw_fd(), 0).is_ok()
                && nix::unistd::dup2(log.as_raw_fd(), 1).is_ok()
                && nix::unistd::dup2(log.as_raw_fd(), 2).is_ok();
            if !ok {
                sys::exit_now(2);
            }
            let _ = std::env::set_current_dir("/");
            Ok(Detached::Daemon(child_end))
        }
    }
}
