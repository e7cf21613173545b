//! The one way occ runs a helper program with a deadline (occ-scan's tools, the notifiers of
//! occ-scan and the broker): its own process group, killed whole when the deadline passes;
//! stdout and stderr drained concurrently and capped; stdin written from a thread, so a child
//! that never reads cannot block the caller. It decides nothing about what may run.

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Output kept per stream; the rest is read and dropped (see [`ChildOutput::truncated`]).
pub const CAPTURE_CAP: usize = 64 * 1024 * 1024;

/// What a child process did.
#[derive(Debug, Clone)]
pub struct ChildOutput {
    /// How it ended; `None` when the timeout killed it.
    pub status: Option<ExitStatus>,
    /// Exit code, or `None` when killed by a signal or the timeout.
    pub code: Option<i32>,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    /// Captured stdout (capped).
    pub stdout: Vec<u8>,
    /// Captured stderr (capped).
    pub stderr: Vec<u8>,
    /// Whether either stream wrote more than [`CAPTURE_CAP`] bytes (the rest was dropped).
    pub truncated: bool,
    /// Wall time.
    pub elapsed: Duration,
}

impl ChildOutput {
    /// Exit 0 and not timed out.
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// Stderr as lossy text, trimmed and shortened for reports.
    pub fn stderr_text(&self) -> String {
        let s = String::from_utf8_lossy(&self.stderr);
        let s = s.trim();
        s.chars().take(400).collect()
    }

    /// The signal that ended it, if one did (the deadline's SIGKILL included).
    pub fn signal(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        if self.timed_out {
            return Some(9);
        }
        self.status.and_then(|s| s.signal())
    }

    /// `Ok` when it exited 0; else why not, for a report: `timed out after 10s and was
    /// killed`, `exited 1: STDERR`, `killed by signal 15`.
    pub fn verdict(&self, timeout: Duration) -> Result<(), String> {
        if self.timed_out {
            return Err(format!(
                "timed out after {} and was killed",
                humanize(timeout)
            ));
        }
        match (self.code, self.signal()) {
            (Some(0), _) => Ok(()),
            (Some(c), _) => {
                let err = self.stderr_text();
                Err(if err.is_empty() {
                    format!("exited {c}")
                } else {
                    format!("exited {c}: {err}")
                })
            }
            (None, Some(s)) => Err(format!("killed by signal {s}")),
            (None, None) => Err("ended without an exit status".into()),
        }
    }
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A child that could not be started or waited for.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{program}: {message}")]
pub struct ChildError {
    /// The program.
    pub program: String,
    /// What happened.
    pub message: String,
}

/// Reads a stream to its end on a thread, keeping the first [`CAPTURE_CAP`] bytes.
fn drain(mut r: impl Read + Send + 'static) -> thread::JoinHandle<(Vec<u8>, bool)> {
    thread::spawn(move || {
        let mut out = Vec::new();
        let mut truncated = false;
        let mut buf = [0u8; 16 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) if out.len() + n <= CAPTURE_CAP => out.extend_from_slice(&buf[..n]),
                Ok(n) => {
                    let room = CAPTURE_CAP - out.len();
                    out.extend_from_slice(&buf[..room.min(n)]);
                    truncated = true;
                }
            }
        }
        (out, truncated)
    })
}

/// Runs `cmd` with `stdin` bytes (or /dev/null), capturing stdout and stderr, and kills its
/// process group when `timeout` passes (then `timed_out` is set). `Err` only when it cannot be
/// started or waited for.
pub fn run(
    mut cmd: Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<ChildOutput, ChildError> {
    use std::os::unix::process::CommandExt;
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| ChildError {
        program: program.clone(),
        message: format!("cannot start: {e}"),
    })?;
    let out_h = child.stdout.take().map(drain);
    let err_h = child.stderr.take().map(drain);
    if let (Some(data), Some(mut w)) = (stdin, child.stdin.take()) {
        let data = data.to_vec();
        // A child that never reads stdin must not block us: write from a thread.
        thread::spawn(move || {
            let _ = w.write_all(&data);
        });
    }
    let deadline = start + timeout;
    let mut nap = Duration::from_micros(200);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ChildError {
                    program,
                    message: format!("wait failed: {e}"),
                });
            }
        }
        if Instant::now() >= deadline {
            // The whole group: helpers the child started must not outlive the deadline.
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(nap.min(deadline.saturating_duration_since(Instant::now())));
        nap = (nap * 2).min(Duration::from_millis(20));
    };
    let (stdout, out_cut) = out_h.and_then(|h| h.join().ok()).unwrap_or_default();
    let (stderr, err_cut) = err_h.and_then(|h| h.join().ok()).unwrap_or_default();
    Ok(ChildOutput {
        status,
        code: status.and_then(|s| s.code()),
        timed_out: status.is_none(),
        stdout,
        stderr,
        truncated: out_cut || err_cut,
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_child_is_killed_at_the_deadline() {
        let mut cmd = Command::new("sleep");
        cmd.arg("5");
        let t = Instant::now();
        let out = run(cmd, None, Duration::from_millis(100)).unwrap();
        assert!(out.timed_out && out.status.is_none() && out.code.is_none());
        assert!(t.elapsed() < Duration::from_secs(3));
        assert_eq!(
            out.verdict(Duration::from_millis(100)),
            Err("timed out after 100ms and was killed".into())
        );
    }

    #[test]
    fn helpers_of_a_killed_child_die_with_it() {
        // The shell's `sleep` is in its process group; the group is killed, so the read end
        // sees EOF at once instead of when the orphaned sleep would have finished.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 5; echo late"]);
        let t = Instant::now();
        let out = run(cmd, None, Duration::from_millis(100)).unwrap();
        assert!(out.timed_out && out.stdout.is_empty());
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }

    #[test]
    fn large_output_does_not_wedge() {
        let mut cmd = Command::new("head");
        cmd.args(["-c", "1000000", "/dev/zero"]);
        let r = run(cmd, None, Duration::from_secs(10)).unwrap();
        assert!(r.success() && !r.truncated);
        assert_eq!(r.stdout.len(), 1_000_000);
    }

    #[test]
    fn stdin_bytes_reach_the_child() {
        let r = run(Command::new("cat"), Some(b"hello"), Duration::from_secs(10)).unwrap();
        assert_eq!((r.code, r.stdout.as_slice()), (Some(0), &b"hello"[..]));
    }

    #[test]
    fn failures_say_how_it_ended() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo nope >&2; exit 3"]);
        let r = run(cmd, None, Duration::from_secs(10)).unwrap();
        assert_eq!(
            r.verdict(Duration::from_secs(10)),
            Err("exited 3: nope".into())
        );
        let r = run(Command::new("false"), None, Duration::from_secs(10)).unwrap();
        assert_eq!(r.verdict(Duration::from_secs(10)), Err("exited 1".into()));
    }

    #[test]
    fn missing_program_is_an_error_naming_it() {
        let cmd = Command::new("/nonexistent/occ-test-program");
        let e = run(cmd, None, Duration::from_secs(1)).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/occ-test-program: cannot start:"),
            "{e}"
        );
    }
}
