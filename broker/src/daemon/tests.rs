//! The seam, driven in-process: a real listener and real client sockets, with handlers that do
//! what the approval stack will do (wait for a decision, grant, collect the exit report).

use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use occ_proto::{read_frame, write_frame, ExitReport, Frame, Request};

use super::*;

/// Records what the daemon reported, and behaves per request according to argv[0].
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
    /// Decisions for "wait" requests are never sent: they wait until something else happens.
    hold: Mutex<Vec<mpsc::Sender<bool>>>,
}

impl Recorder {
    fn push(&self, s: String) {
        self.events.lock().unwrap().push(s);
    }
    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
}

impl RequestHandler for Recorder {
    fn handle(&self, conn: &mut Conn, req: Request) {
        let what = req.argv.first().cloned().unwrap_or_default();
        match what.as_slice() {
            b"wait" => {
                let (tx, rx) = mpsc::channel::<bool>();
                self.hold.lock().unwrap().push(tx);
                conn.waiting("abc123", Duration::from_secs(30)).unwrap();
                match conn.wait_for(&rx, Duration::from_secs(30)) {
                    Wait::Stopping => {
                        self.push("wait:stopping".into());
                        conn.refuse_stopping().unwrap();
                    }
                    Wait::ClientGone => self.push("wait:gone".into()),
                    other => self.push(format!("wait:{other:?}")),
                }
            }
            b"timeout" => {
                let (_tx, rx) = mpsc::channel::<bool>();
                let w = conn.wait_for(&rx, Duration::from_millis(120));
                self.push(format!("timeout:{w:?}"));
                conn.pending("abc123", "2025-01-31T12:30:00Z", false)
                    .unwrap();
            }
            b"grant" => {
                conn.grant(vec![b"/bin/true".to_vec()]).unwrap();
                match conn.recv_exit_report() {
                    ExecOutcome::Finished { report, relayed } => self.push(format!(
                        "finished:{}:{}:{:?}",
                        report.exit_value, report.signal, relayed
                    )),
                    ExecOutcome::Unknown { .. } => self.push("exec_outcome_unknown".into()),
                }
            }
            b"forget" => {}
            b"tty" | b"tty-grant" => {
                conn.waiting("abc123", Duration::from_secs(30)).unwrap();
                let asked = conn.ask_tty();
                let stdio = (0..3).filter(|n| conn.caller_stdio(*n).is_some()).count();
                if what.as_slice() == b"tty" {
                    conn.refuse(&format!("stdio {stdio} {asked:?}"), "test_refusal")
                        .unwrap();
                    return;
                }
                conn.grant(vec![b"/bin/true".to_vec()]).unwrap();
                match conn.recv_exit_report() {
                    ExecOutcome::Finished { report, relayed } => self.push(format!(
                        "finished:{}:{}:{:?}",
                        report.exit_value, report.signal, relayed
                    )),
                    ExecOutcome::Unknown { .. } => self.push("exec_outcome_unknown".into()),
                }
            }
            _ => {
                let stdio = (0..3).filter(|n| conn.caller_stdio(*n).is_some()).count();
                conn.refuse(&format!("stdio {stdio}"), "test_refusal")
                    .unwrap();
            }
        }
    }
    fn protocol_error(&self, peer: &PeerCred, err: &ProtocolError) {
        self.push(format!("protocol_error:{}:{}", err.kind, peer.pid));
    }
    fn peer_refused(&self, peer: &PeerCred, _broker_uid: u32) {
        self.push(format!("peer_refused:{}", peer.uid));
    }
    fn stopping(&self, _cause: StopCause) {
        self.push("stopping".into());
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    sock: std::path::PathBuf,
    rec: Arc<Recorder>,
    shutdown: Shutdown,
    thread: Option<std::thread::JoinHandle<usize>>,
}

fn start(uid: u32) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("s");
    let listener = UnixListener::bind(&sock).unwrap();
    let rec = Arc::new(Recorder::default());
    let shutdown = Shutdown::new().unwrap();
    let server = Server::new(listener, rec.clone(), shutdown.clone(), uid);
    let thread = std::thread::spawn(move || {
        server.accept_loop();
        server.drain(Duration::from_secs(3))
    });
    Fixture {
        _dir: dir,
        sock,
        rec,
        shutdown,
        thread: Some(thread),
    }
}

fn me() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn request(first: &str) -> Frame {
    Frame::Request(Request {
        argv: vec![first.as_bytes().to_vec()],
        ..Request::default()
    })
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

/// Descriptors that ride on a request are closed at once; the broker holds the caller's
/// descriptors only after it asked for them (`NeedTty`) and the shim sent them (`Stdio`).
#[test]
fn stdio_fds_come_only_when_the_broker_asks_for_the_terminal() {
    use std::os::fd::AsFd;
    let fx = start(me());
    let out = std::io::stdout();
    let err = std::io::stderr();
    // With the request: dropped, the handler sees none.
    let c = UnixStream::connect(&fx.sock).unwrap();
    let mut req = Request {
        argv: vec![b"x".to_vec()],
        ..Request::default()
    };
    req.stdio_passed = [true, false, true];
    write_frame(&c, &Frame::Request(req), &[out.as_fd(), err.as_fd()]).unwrap();
    match read_frame(&c).unwrap().frame {
        Frame::Refuse(r) => {
            assert_eq!(r.reason_code, "test_refusal");
            assert_eq!(r.message, "stdio 0");
        }
        f => panic!("{f:?}"),
    }
    // Asked for: the broker sends NeedTty after Waiting and takes what comes with Stdio.
    let c = UnixStream::connect(&fx.sock).unwrap();
    write_frame(&c, &request("tty"), &[]).unwrap();
    assert!(matches!(
        read_frame(&c).unwrap().frame,
        Frame::Waiting { .. }
    ));
    assert_eq!(read_frame(&c).unwrap().frame, Frame::NeedTty);
    let stdio = Frame::Stdio {
        passed: [true, false, true],
    };
    write_frame(&c, &stdio, &[out.as_fd(), err.as_fd()]).unwrap();
    match read_frame(&c).unwrap().frame {
        Frame::Refuse(r) => assert_eq!(r.message, "stdio 2 Ok(())"),
        f => panic!("{f:?}"),
    }
    fx.shutdown.trigger(StopCause::Requested);
}

#[test]
fn peer_with_another_uid_is_refused_and_recorded() {
    let fx = start(me().wrapping_add(1));
    let c = UnixStream::connect(&fx.sock).unwrap();
    write_frame(&c, &request("x"), &[]).unwrap();
    match read_frame(&c).unwrap().frame {
        Frame::Refuse(r) => assert_eq!(r.reason_code, PEER_UID_MISMATCH),
        f => panic!("{f:?}"),
    }
    assert!(fx.rec.events().contains(&format!("peer_refused:{}", me())));
    fx.shutdown.trigger(StopCause::Requested);
}

#[test]
fn waiting_caller_gets_broker_stopping_on_shutdown() {
    let mut fx = start(me());
    let c = UnixStream::connect(&fx.sock).unwrap();
    write_frame(&c, &request("wait"), &[]).unwrap();
    assert_eq!(
        read_frame(&c).unwrap().frame,
        Frame::Waiting {
            id: "abc123".into(),
            wait_seconds: 30
        }
    );
    fx.shutdown.trigger(StopCause::Signal(15));
    match read_frame(&c).unwrap().frame {
        Frame::Refuse(r) => assert_eq!(r.reason_code, BROKER_STOPPING),
        f => panic!("{f:?}"),
    }
    let left = fx.thread.take().unwrap().join().unwrap();
    assert_eq!(left, 0);
    let ev = fx.rec.events();
    assert!(ev.contains(&"stopping".to_string()), "{ev:?}");
    assert!(ev.contains(&"wait:stopping".to_string()), "{ev:?}");
}

#[test]
fn wait_notices_the_caller_hanging_up() {
    let fx = start(me());
    let c = UnixStream::connect(&fx.sock).unwrap();
    write_frame(&c, &request("wait"), &[]).unwrap();
    let _ = read_frame(&c).unwrap();
    drop(c);
    eventually("wait:gone", || {
        fx.rec.events().contains(&"wait:gone".to_string())
    });
    fx.shutdown.trigger(StopCause::Requested);
}

#[test]
fn wait_times_out_then_pending() {
    let fx = start(me());
    let c = UnixStream::connect(&fx.sock).unwrap();
    write_frame(&c, &request("timeout"), &[]).unwrap();
    assert_eq!(
        read_frame(&c).unwrap().frame,
        Frame::Pending {
            id: "abc123".into(),
            expires_at: "2025-01-31T12:30:00Z".into(),
            untrusted: false,
        }
    );
    assert!(fx.rec.events().contains(&"timeout:TimedOut".to_string()));
    fx.shutdown.trigger(StopCause::Requested);
}

#[test]
fn grant_then_exit_report_with_relayed_signals() {
    let fx = start(me());
    let c = UnixStream::connect(&fx.sock).unwrap();
    write_frame(&c, &request("grant"), &[]).unwrap();
    assert!(matches!(read_frame(&c).unwrap().frame, Frame::Grant { .. }));
    write_frame(&c, &Frame::Signal { signo: 2 }, &[]).unwrap();
    write_frame(
        &c,
        &Frame::ExitReport(ExitReport {
            exit_value: 3,
            signal: 0,
            run_time_ms: 5,
        }),
        &[],
    )
    .unwrap();
    eventually("finished", || {
        fx.rec.events().contains(&"finished:3:0:[2]".to_string())
    });
    fx.shutdown.trigger(StopCause::Requested);
}

#[test]
fn disconnect_after_grant_is_exec_outcome_unknown() {
    let fx = start(me());
    let c = UnixStream::connect(&fx.sock).unwrap();
    write_frame(&c, &request("grant"), &[]).unwrap();
    let _ = read_frame(&c).unwrap();
    drop(c);
    eventually("exec_outcome_unknown", || {
        fx.rec
            .events()
            .contains(&"exec_outcome_unknown".to_string())
    });
    fx.shutdown.trigger(StopCause::Requested);
}

#[test]
fn handler_that_forgets_to_answer_still_refuses() {
    let fx = start(me());
    let c = UnixStream::connect(&fx.sock).unwrap();
    write_frame(&c, &request("forget"), &[]).unwrap();
    match read_frame(&c).unwrap().frame {
        Frame::Refuse(r) => assert_eq!(r.reason_code, "internal_error"),
        f => panic!("{f:?}"),
    }
    fx.shutdown.trigger(StopCause::Requested);
}

#[test]
fn bad_frames_close_only_their_connection() {
    use std::io::{Read, Write};
    let fx = start(me());
    // A stalled half frame stays open while others are served.
    let mut stalled = UnixStream::connect(&fx.sock).unwrap();
    stalled
        .write_all(&[0xCC, 1, 1, 0, 0, 0, 0, 100, 1, 2])
        .unwrap();
    let cases: [&[u8]; 3] = [
        b"GET / HTTP/1.1\r\n\r\n",
        &[0xCC, 9, 1, 0, 0, 0, 0, 0],
        &[0xCC, 1, 1, 0, 0, 0x20, 0, 0],
    ];
    for bytes in cases {
        let mut g = UnixStream::connect(&fx.sock).unwrap();
        g.write_all(bytes).unwrap();
        g.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 16];
        // Closed without an answer: end of stream, or a reset because our bytes went unread.
        match g.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("expected the broker to close the connection, got {other:?}"),
        }
    }
    let c = UnixStream::connect(&fx.sock).unwrap();
    write_frame(&c, &request("x"), &[]).unwrap();
    assert!(matches!(read_frame(&c).unwrap().frame, Frame::Refuse(_)));
    let ev = fx.rec.events();
    for kind in ["bad_magic", "bad_version", "oversize"] {
        assert!(
            ev.iter()
                .any(|e| e.starts_with(&format!("protocol_error:{kind}:"))),
            "{kind} in {ev:?}"
        );
    }
    drop(stalled);
    fx.shutdown.trigger(StopCause::Requested);
}

#[test]
fn callers_stdio_is_released_with_the_final_answer() {
    use std::io::Read;
    use std::os::fd::AsFd;
    let fx = start(me());
    let c = UnixStream::connect(&fx.sock).unwrap();
    // Stand-in for the `$(sudo …)` pipe: the broker gets a copy of `w` as the caller's stdout.
    let (w, mut r) = UnixStream::pair().unwrap();
    write_frame(&c, &request("tty-grant"), &[]).unwrap();
    assert!(matches!(
        read_frame(&c).unwrap().frame,
        Frame::Waiting { .. }
    ));
    assert_eq!(read_frame(&c).unwrap().frame, Frame::NeedTty);
    let stdio = Frame::Stdio {
        passed: [false, true, false],
    };
    write_frame(&c, &stdio, &[w.as_fd()]).unwrap();
    assert!(matches!(read_frame(&c).unwrap().frame, Frame::Grant { .. }));
    drop(w);
    // The connection is still open (the broker waits for the exit report), yet the reader
    // sees end-of-file: the broker no longer holds the caller's stdout.
    r.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(r.read(&mut buf).unwrap(), 0);
    write_frame(
        &c,
        &Frame::ExitReport(ExitReport {
            exit_value: 0,
            signal: 0,
            run_time_ms: 1,
        }),
        &[],
    )
    .unwrap();
    eventually("finished", || {
        fx.rec.events().contains(&"finished:0:0:[]".to_string())
    });
    fx.shutdown.trigger(StopCause::Requested);
}

#[test]
fn run_files_refuse_a_symlinked_run_dir_and_a_non_socket() {
    let d = tempfile::tempdir().unwrap();
    let elsewhere = d.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let home = d.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::symlink(&elsewhere, home.join("run")).unwrap();
    let err = files::acquire(&files::RunPaths::new(&home)).unwrap_err();
    assert!(
        matches!(err, files::FilesError::Unsafe { .. }),
        "symlinked run/: {err}"
    );

    let home2 = d.path().join("home2");
    let paths = files::RunPaths::new(&home2);
    files::ensure_run_dir(&paths).unwrap();
    std::fs::write(&paths.socket, b"not a socket").unwrap();
    let err = files::acquire(&paths).unwrap_err();
    assert!(err.to_string().contains("is not a socket"), "{err}");
}

#[test]
fn run_files_take_the_lock_once_and_tighten_run_dir() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let paths = files::RunPaths::new(d.path());
    std::fs::create_dir(&paths.dir).unwrap();
    std::fs::set_permissions(&paths.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (running, _listener) = files::acquire(&paths).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&paths.dir), 0o700);
    assert_eq!(mode(&paths.socket), 0o600);
    assert_eq!(files::read_pid(&paths.pid), Some(std::process::id()));
    match files::acquire(&paths) {
        Err(files::FilesError::Locked { pid }) => assert_eq!(pid, Some(std::process::id())),
        other => panic!("second acquire: {other:?}"),
    }
    running.remove();
    assert!(!paths.socket.exists() && !paths.pid.exists());
}

#[test]
fn fail_closed_handler_refuses_requests_and_admin_alike() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("s");
    let listener = UnixListener::bind(&sock).unwrap();
    let shutdown = Shutdown::new().unwrap();
    let server = Server::new(listener, default_handler(), shutdown.clone(), me());
    let t = std::thread::spawn(move || server.accept_loop());
    for argv in [&b"-h"[..], b"-V", b"true"] {
        let c = UnixStream::connect(&sock).unwrap();
        let req = Request {
            argv: vec![argv.to_vec()],
            ..Request::default()
        };
        write_frame(&c, &Frame::Request(req), &[]).unwrap();
        match read_frame(&c).unwrap().frame {
            Frame::Refuse(r) => {
                assert_eq!(r.reason_code, APPROVAL_STACK_UNAVAILABLE);
                assert_eq!(r.exit_code, 1);
            }
            f => panic!("{f:?}"),
        }
    }
    let c = UnixStream::connect(&sock).unwrap();
    write_frame(
        &c,
        &Frame::Admin {
            body: br#"{"op":"approve","id":"abc"}"#.to_vec(),
        },
        &[],
    )
    .unwrap();
    assert!(matches!(
        read_frame(&c).unwrap().frame,
        Frame::AdminReply { ok: false, .. }
    ));
    shutdown.trigger(StopCause::Requested);
    assert_eq!(t.join().unwrap(), StopCause::Requested);
}
