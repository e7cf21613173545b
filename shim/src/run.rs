//! Running what the broker granted: exactly its argv, as our child, on the caller's own
//! terminal and stdio; relaying signals; reporting how it ended; then ending the same way.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Instant;

use std::os::fd::{AsRawFd, BorrowedFd};

use occ_proto::{read_frame_by, write_frame, write_frame_by, ExitReport, Frame};

use crate::print;
use crate::sys::{self, Ended};

/// Runs `argv` (argv[0] absolute, checked by the decoder) and returns the exit code, or dies of
/// the command's signal. The command's run time is not bounded; every frame to the broker is
/// ([`crate::ANSWER_BOUND`] each), so a stopped broker cannot keep the shim after the command.
pub fn granted(stream: UnixStream, argv: &[Vec<u8>]) -> i32 {
    let _ = stream.set_write_timeout(Some(crate::ANSWER_BOUND));
    let Some((prog, args)) = argv.split_first() else {
        print::err(&print::unavailable_line(
            "broker protocol error: empty grant",
        ));
        return 1;
    };
    if let Err(e) = sys::install_relay() {
        print::err(&print::refuse_line(
            &format!("cannot install signal relay: {e}"),
            "exec_failed",
        ));
        return 1;
    }
    let started = Instant::now();
    let child = match Command::new(OsStr::from_bytes(prog))
        .args(args.iter().map(|a| OsStr::from_bytes(a)))
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            print::err(&print::refuse_line(
                &format!("unable to execute {}: {e}", String::from_utf8_lossy(prog)),
                "exec_failed",
            ));
            report(&stream, 127, 0, started);
            return 1;
        }
    };
    let pid = child.id() as i32;
    sys::set_child(pid);
    let ended = loop {
        match sys::wait_child(pid) {
            Ok(Some(e)) => break Some(e),
            Ok(None) => {
                for signo in sys::take_relayed() {
                    let _ = write_frame(&stream, &Frame::Signal { signo }, &[]);
                }
            }
            Err(_) => break None,
        }
    };
    sys::set_child(0);
    for signo in sys::take_relayed() {
        let _ = write_frame(&stream, &Frame::Signal { signo }, &[]);
    }
    match ended {
        Some(Ended::Exited(code)) => {
            report(&stream, code, 0, started);
            code
        }
        Some(Ended::Signaled(sig)) => {
            report(&stream, -1, sig, started);
            drop(stream);
            sys::reraise(sig);
            128 + sig
        }
        None => 1,
    }
}

/// Tells the broker how it went. Best effort: the shim does not wait for the audit write.
fn report(stream: &UnixStream, exit_value: i32, signal: i32, started: Instant) {
    let run_time_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let _ = write_frame(
        stream,
        &Frame::ExitReport(ExitReport {
            exit_value,
            signal,
            run_time_ms,
        }),
        &[],
    );
}

/// System mode: the broker runs the command. Sends the caller's stdio now that the grant is
/// decided, passes on every signal the shim receives, and ends as the broker's `waitpid` says.
pub fn broker_runs(stream: UnixStream, stdio: &[BorrowedFd<'_>], passed: [bool; 3]) -> i32 {
    if let Err(e) = sys::note_signals_for_broker() {
        print::err(&print::refuse_line(
            &format!("cannot install signal relay: {e}"),
            "exec_failed",
        ));
        return 1;
    }
    let within = || Some(Instant::now() + crate::ANSWER_BOUND);
    let _ = stream.set_write_timeout(Some(crate::ANSWER_BOUND));
    if let Err(e) = write_frame_by(&stream, &Frame::Stdio { passed }, stdio, within()) {
        print::err(&print::unavailable_line(&format!(
            "could not pass the terminal to the broker: {e}"
        )));
        return 1;
    }
    loop {
        for signo in sys::take_relayed() {
            let _ = write_frame(&stream, &Frame::Signal { signo }, &[]);
        }
        if !sys::readable(stream.as_raw_fd(), 100) {
            continue;
        }
        // The command's run time is not bounded; a frame that has started arriving is.
        let frame = match read_frame_by(&stream, within()) {
            Ok(r) => r.frame,
            Err(e) => {
                print::err(&print::unavailable_line(&format!(
                    "the broker went away while the command ran: {e}"
                )));
                return 1;
            }
        };
        match frame {
            Frame::Exited(report) if report.signal > 0 => {
                drop(stream);
                sys::reraise(report.signal);
                return 128 + report.signal;
            }
            Frame::Exited(report) => return report.exit_value.clamp(0, 255),
            Frame::Refuse(r) => {
                print::err(&print::refuse_line(&r.message, &r.reason_code));
                return 1;
            }
            other => {
                print::err(&print::unavailable_line(&format!(
                    "broker protocol error: unexpected {:?} frame",
                    other.frame_type()
                )));
                return 1;
            }
        }
    }
}
