//! The `sudo` shim. It does no parsing and no user lookups: it forwards the request to the
//! broker and relays the outcome. It never falls back to the real sudo: an unreachable broker
//! is a refusal (`broker_unavailable`), never an exec of anything the broker did not grant.
#![deny(unsafe_code)]

mod home;
mod print;
mod run;
mod start;
// All FFI lives here; every unsafe block carries a SAFETY comment.
#[allow(unsafe_code)]
mod sys;

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use occ_proto::{read_frame_by, write_frame_by, Error as ProtoError, Frame, Request};

/// The bound on everything before the broker's first answer, counted from the shim's start:
/// connecting (starting a user-mode broker on demand included), sending the request and reading
/// the answer. Every answer that does not need a human comes at once; a request that does is
/// answered `Waiting` first. So with `-n` or without a terminal the shim returns within 5 s
/// whatever the broker does (stopped, flooded, hung): this 4 s, and a second to spare for
/// starting and exiting on a busy machine.
pub const ANSWER_BOUND: Duration = Duration::from_secs(4);

/// After `Waiting` (a terminal, no `-n`): the broker's own `approval.wait_seconds`, which it
/// sends with `Waiting`, ends the wait; the shim gives a silent broker this much more.
pub const WAIT_MARGIN: Duration = Duration::from_secs(10);

/// The longest the shim ever waits for a decision, whatever wait the broker announces.
pub const DECISION_TIMEOUT: Duration = Duration::from_secs(3600);

pub use print::{pending_line, refuse_line, unavailable_line, waiting_line};

/// Runs the shim with the process's arguments and environment; returns the exit code (or
/// re-raises the signal that killed the granted command).
pub fn main() -> i32 {
    let deadline = Instant::now() + ANSWER_BOUND;
    let argv: Vec<Vec<u8>> = std::env::args_os()
        .skip(1)
        .map(|a| a.as_bytes().to_vec())
        .collect();
    let home = match home::locate() {
        Ok(h) => h,
        Err(detail) => return unreachable(&argv, &detail),
    };
    let stream = match start::connect(&home, deadline) {
        Ok(s) => s,
        Err(detail) => return unreachable(&argv, &detail),
    };
    converse(stream, argv, home.system, deadline)
}

/// The broker cannot be reached: `-h`/`-V` alone are answered locally, everything else is
/// refused. Never runs the real sudo.
fn unreachable(argv: &[Vec<u8>], detail: &str) -> i32 {
    let only = match argv {
        [one] => one.as_slice(),
        _ => b"",
    };
    match only {
        b"-h" | b"--help" => {
            print::out(&print::local_help(detail));
            0
        }
        b"-V" | b"--version" => {
            print::out(&print::local_version(detail));
            0
        }
        _ => fail(&unavailable_line(detail)),
    }
}

fn fail(line: &str) -> i32 {
    print::err(line);
    1
}

/// Sends the request and follows the broker's answer, the first answer by `deadline`. No stdio
/// travels with the request: user mode sends the terminal only when the broker's prompt asks
/// for it (`NeedTty`), system mode the stdio only once the grant is decided (`Run`). So a
/// stopped broker never holds the caller's pipes (`sudo -n id | tail` ends with the shim).
fn converse(stream: UnixStream, argv: Vec<Vec<u8>>, system: bool, deadline: Instant) -> i32 {
    let mut req = Request {
        argv,
        cwd: std::env::current_dir()
            .map(|d| d.as_os_str().as_bytes().to_vec())
            .unwrap_or_default(),
        env: forwarded_env(),
        ..Request::default()
    };
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let std_fds: [BorrowedFd<'_>; 3] = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()];
    let mut borrowed = Vec::new();
    let mut terminals = Vec::new();
    let mut open = [false; 3];
    let mut tty_passed = [false; 3];
    for (i, fd) in std_fds.into_iter().enumerate() {
        req.isatty[i] = sys::isatty(fd.as_raw_fd());
        // A closed stdio descriptor cannot be passed; the flags tell the broker which came.
        if sys::fd_is_open(fd.as_raw_fd()) {
            open[i] = true;
            borrowed.push(fd);
            if req.isatty[i] {
                tty_passed[i] = true;
                terminals.push(fd);
            }
        }
    }
    // The broker waits for a human only for a caller with a terminal (and without -n, which
    // only the broker parses); for any other the first-answer bound is the whole bound.
    let interactive = req.isatty.iter().any(|t| *t);
    let terminal = (0..3).find(|i| req.isatty[*i]).map(|i| i as i32);
    req.tty = terminal.and_then(sys::ttyname);
    req.winsize = terminal.and_then(sys::winsize);
    // A broker that refuses at once (busy, wrong uid) may close before reading the request;
    // its answer is still worth reading, so a failed send is reported only if none came.
    let send_error = match write_frame_by(&stream, &Frame::Request(req), &[], Some(deadline)) {
        Ok(()) => None,
        Err(e @ ProtoError::Io(_)) => Some(e),
        // Nothing was sent (too large, or unencodable): there is no answer to wait for.
        Err(e) => {
            return fail(&unavailable_line(&format!(
                "could not send the request: {e}"
            )))
        }
    };
    // Never hang: the broker answers at once unless it says it is waiting for a human, and
    // even then only for as long as its own wait allows.
    let mut deadline = deadline;
    let mut limit = ANSWER_BOUND;
    loop {
        let frame = match read_frame_by(&stream, Some(deadline)) {
            Ok(r) => r.frame,
            Err(e) => {
                let detail = match (send_error, e) {
                    (Some(se), _) => format!("could not send the request: {se}"),
                    (None, ProtoError::Closed) => {
                        "the broker closed the connection without answering".to_string()
                    }
                    (None, ProtoError::Io(io)) if occ_proto::is_timeout(&io) => {
                        format!("no answer from the broker within {} s", limit.as_secs())
                    }
                    (None, e) => format!("broker protocol error: {e}"),
                };
                return fail(&unavailable_line(&detail));
            }
        };
        match frame {
            Frame::Waiting { id, wait_seconds } => {
                print::err(&waiting_line(&id));
                if interactive {
                    limit = (Duration::from_secs(wait_seconds.into()) + WAIT_MARGIN)
                        .min(DECISION_TIMEOUT);
                    deadline = Instant::now() + limit;
                }
            }
            Frame::NeedTty if !system => {
                // Only terminals, never a pipe or a file: the prompt reads and writes nothing
                // else, and the broker must never hold what the caller's pipeline waits on.
                let sent = write_frame_by(
                    &stream,
                    &Frame::Stdio { passed: tty_passed },
                    &terminals,
                    Some(Instant::now() + ANSWER_BOUND),
                );
                if let Err(e) = sent {
                    return fail(&unavailable_line(&format!(
                        "could not pass the terminal to the broker: {e}"
                    )));
                }
            }
            Frame::Pending {
                id,
                expires_at,
                untrusted,
            } => return fail(&pending_line(&id, &expires_at, untrusted)),
            Frame::Refuse(r) => {
                print::err(&refuse_line(&r.message, &r.reason_code));
                return if (1..=255).contains(&r.exit_code) {
                    r.exit_code
                } else {
                    1
                };
            }
            Frame::Output(o) => {
                let _ = std::io::stdout().lock().write_all(&o.stdout);
                let _ = std::io::stdout().flush();
                let _ = std::io::stderr().lock().write_all(&o.stderr);
                return if (0..=255).contains(&o.exit_code) {
                    o.exit_code
                } else {
                    1
                };
            }
            // From here the command runs: its run time is not bounded, only each frame is.
            Frame::Grant { argv } if !system => return run::granted(stream, &argv),
            Frame::Run if system => return run::broker_runs(stream, &borrowed, open),
            other => {
                return fail(&unavailable_line(&format!(
                    "broker protocol error: unexpected {:?} frame",
                    other.frame_type()
                )))
            }
        }
    }
}

/// The caller's variables the broker may look at: `OPENCLAW_*`, and the ones broker.json's
/// `env_keep` may keep for a system-mode command: sudo's checked terminal, locale and time-zone
/// set (`TERM`, `COLORTERM`, `LANG`, `LANGUAGE`, `LINGUAS`, `LC_*`, `TZ`), `NO_COLOR`, and
/// `DISPLAY`, `XAUTHORITY` and `KRB5CCNAME` (kept only when env_keep names them exactly). The
/// broker passes on only those env_keep names, with safe values; nothing else leaves the shim.
fn forwarded_env() -> Vec<(Vec<u8>, Vec<u8>)> {
    const KEEPABLE: &[&[u8]] = &[
        b"TERM",
        b"COLORTERM",
        b"NO_COLOR",
        b"LANG",
        b"LANGUAGE",
        b"LINGUAS",
        b"TZ",
        // Kept only when the system broker's env_keep names them exactly.
        b"DISPLAY",
        b"XAUTHORITY",
        b"KRB5CCNAME",
    ];
    std::env::vars_os()
        .filter_map(|(k, v)| {
            let kb = k.as_bytes();
            let keep =
                kb.starts_with(b"OPENCLAW_") || kb.starts_with(b"LC_") || KEEPABLE.contains(&kb);
            keep.then(|| (kb.to_vec(), v.as_bytes().to_vec()))
        })
        .collect()
}
