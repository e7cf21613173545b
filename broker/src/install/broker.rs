//! Starting, finding and stopping this home's broker for the installer: through the systemd
//! user unit when there is one, otherwise `occ broker` itself (which daemonises). It only ever
//! signals a pid whose executable is this home's `occ`.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use occ_proto::Frame;

use crate::daemon::files::{read_pid, RunPaths};
use crate::install::tool;

/// What a probe of the broker found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The socket accepts connections; `status` is the broker's answer to an admin status
    /// request when it gives one.
    Up {
        /// `{"op":"status"}` reply, when the broker speaks admin frames.
        status: Option<serde_json::Value>,
    },
    /// Nothing listens (no socket, or a stale one).
    Down(String),
}

/// Connects to `run/broker.sock` and asks for the status.
pub fn probe(home: &Path) -> Probe {
    let sock = RunPaths::new(home).socket;
    let stream = match UnixStream::connect(&sock) {
        Ok(s) => s,
        Err(e) => return Probe::Down(format!("{}: {e}", sock.display())),
    };
    let body = serde_json::to_vec(&crate::gate::admin::AdminRequest::Status).unwrap_or_default();
    if occ_proto::write_frame(&stream, &Frame::Admin { body }, &[]).is_err() {
        return Probe::Up { status: None };
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    let status = match occ_proto::read_frame_by(&stream, Some(deadline)) {
        Ok(got) => match got.frame {
            Frame::AdminReply { ok: true, body } => serde_json::from_slice(&body).ok(),
            _ => None,
        },
        Err(_) => None,
    };
    Probe::Up { status }
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// The pid in `run/broker.pid` when that process is alive and runs `expected_exe` (an
/// `occ` binary of this home, possibly replaced since it started).
pub fn running_pid(home: &Path, expected_exe: &Path) -> Option<u32> {
    running_pid_at(&RunPaths::new(home).pid, expected_exe)
}

/// The executable of a live process (without the ` (deleted)` a replaced binary shows).
pub fn exe_of(pid: u32) -> Option<PathBuf> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let exe = exe.to_string_lossy();
    Some(PathBuf::from(
        exe.strip_suffix(" (deleted)").unwrap_or(&exe),
    ))
}

/// The pid in `pid_file` when that process is alive and runs `expected_exe`.
pub fn running_pid_at(pid_file: &Path, expected_exe: &Path) -> Option<u32> {
    let pid = read_pid(pid_file)?;
    if !alive(pid) {
        return None;
    }
    let exe = exe_of(pid)?;
    let want = std::fs::canonicalize(expected_exe).unwrap_or_else(|_| expected_exe.to_path_buf());
    (exe == want || exe == expected_exe).then_some(pid)
}

/// Sends SIGTERM to this home's broker and waits up to 5 s for it to go (SIGKILL after).
/// Returns the pid it stopped.
pub fn stop(home: &Path, occ_bin: &Path) -> Option<u32> {
    stop_at(&RunPaths::new(home).pid, occ_bin)
}

/// [`stop`] for the broker named by `pid_file`, when it runs `occ_bin`.
pub fn stop_at(pid_file: &Path, occ_bin: &Path) -> Option<u32> {
    let pid = running_pid_at(pid_file, occ_bin)?;
    let p = nix::unistd::Pid::from_raw(i32::try_from(pid).ok()?);
    let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive(pid) {
        let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(pid)
}

/// Starts `occ broker` as the shim would: a cleared environment (PATH, HOME, LANG, OCC_HOME),
/// and the daemon detaches itself. Waits until it answers.
pub fn spawn(home: &Path, occ_bin: &Path) -> Result<(), String> {
    let mut cmd = Command::new(occ_bin);
    cmd.arg("broker").env_clear().env("OCC_HOME", home);
    for k in ["PATH", "HOME", "LANG"] {
        if let Some(v) = std::env::var_os(k) {
            cmd.env(k, v);
        }
    }
    let ran = tool::run_cmd(&mut cmd, Duration::from_secs(10))
        .map_err(|e| format!("cannot run {} broker: {e}", occ_bin.display()))?;
    if !ran.ok() {
        return Err(format!(
            "`{} broker` failed ({}); see {}",
            occ_bin.display(),
            ran.why(),
            RunPaths::new(home).log.display()
        ));
    }
    wait_up(home, Duration::from_secs(3))
}

/// Waits until the socket accepts connections.
pub fn wait_up(home: &Path, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        match probe(home) {
            Probe::Up { .. } => return Ok(()),
            Probe::Down(why) if Instant::now() >= deadline => {
                return Err(format!(
                    "the broker does not answer: {why}; see {}",
                    RunPaths::new(home).log.display()
                ))
            }
            Probe::Down(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Runs `systemctl ARGS…` against the system manager (system mode).
pub fn systemctl_system(sc: &Path, args: &[&str]) -> Result<(), String> {
    let ran = tool::run(sc, args, Duration::from_secs(60))?;
    if ran.ok() {
        Ok(())
    } else {
        Err(format!(
            "`systemctl {}` failed ({})",
            args.join(" "),
            ran.why()
        ))
    }
}

/// Runs `systemctl --user ARGS…`.
pub fn systemctl(sc: &Path, args: &[&str]) -> Result<(), String> {
    let mut all = vec!["--user"];
    all.extend_from_slice(args);
    let ran = tool::run(sc, &all, Duration::from_secs(30))?;
    if ran.ok() {
        Ok(())
    } else {
        Err(format!(
            "`systemctl {}` failed ({})",
            all.join(" "),
            ran.why()
        ))
    }
}

/// The installed `occ` of a home.
pub fn occ_bin(home: &Path) -> PathBuf {
    home.join("bin").join("occ")
}
