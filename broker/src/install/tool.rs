//! Running the outside tools the installer talks to (`systemctl --user`, `openclaw`, the real
//! `sudo`) with a time limit, and finding programs on a PATH. Nothing here changes state by
//! itself; callers decide which commands to run.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a finished tool printed and how it ended.
#[derive(Debug, Clone)]
pub struct Ran {
    /// Exit code; `None` when killed by a signal or by the time limit.
    pub code: Option<i32>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Ran {
    /// Whether it exited 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// A one-line summary of why it failed, for messages.
    pub fn why(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            self.stdout.trim()
        } else {
            self.stderr.trim()
        };
        let first = text.lines().next().unwrap_or("");
        match self.code {
            Some(c) => format!("exit {c}: {first}"),
            None => format!("killed or timed out: {first}"),
        }
    }
}

/// Runs `prog args…` with stdin from /dev/null, waiting at most `limit`; the child is killed
/// when the time is up. `Err` only when it cannot be started.
pub fn run(prog: &Path, args: &[&str], limit: Duration) -> Result<Ran, String> {
    run_cmd(Command::new(prog).args(args), limit)
        .map_err(|e| format!("cannot run {}: {e}", prog.display()))
}

/// Runs a prepared command the same way as [`run`].
pub fn run_cmd(cmd: &mut Command, limit: Duration) -> std::io::Result<Ran> {
    run_cmd_input(cmd, None, limit)
}

/// [`run_cmd`] with `input` on the command's standard input (written from a thread, so a
/// child that does not read cannot block us past the limit).
pub fn run_cmd_input(
    cmd: &mut Command,
    input: Option<Vec<u8>>,
    limit: Duration,
) -> std::io::Result<Ran> {
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(bytes), Some(mut w)) = (input, child.stdin.take()) {
        std::thread::spawn(move || {
            use std::io::Write as _;
            let _ = w.write_all(&bytes);
        });
    }
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut b);
        }
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut b);
        }
        b
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break Some(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    Ok(Ran {
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
    })
}

/// The first executable regular file called `name` in the colon-separated `path`.
pub fn which_in(name: &str, path: &str) -> Option<PathBuf> {
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// [`which_in`] over this process's `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    which_in(name, &std::env::var("PATH").unwrap_or_default())
}

/// Whether `systemctl --user` reaches a running user manager.
pub fn systemd_user() -> Option<PathBuf> {
    let sc = which("systemctl")?;
    run(
        &sc,
        &["--user", "show-environment"],
        Duration::from_secs(10),
    )
    .ok()
    .filter(Ran::ok)
    .map(|_| sc)
}

/// `systemctl` when systemd runs this host (PID 1 is systemd), for the system broker's unit.
pub fn systemd_system() -> Option<PathBuf> {
    let comm = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
    if comm.trim() != "systemd" {
        return None;
    }
    which_in("systemctl", occ_policy::file::DEFAULT_SECURE_PATH)
}
