//! The shim never hangs, in user mode too: whatever the broker does (stopped with SIGSTOP, its
//! listen backlog full, silent after `Waiting`), `sudo -n` and `sudo` without a terminal return
//! within 5 s (the shim gives the broker 4) with `broker_unavailable`; a stopped broker never holds the caller's
//! pipes; and broker.json's per-uid `limits` are enforced by the user-mode broker, each refusal
//! naming its key and audited at a bounded rate. Real processes and sockets throughout.

use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::shim_transport::{
    assert_broker_answered, field, finish_within, frame, output_within, read_one, spawn, stderr,
    unavailable, wait_until, waiting, Home,
};

/// The shim's own bound on everything before the broker's first answer.
const BOUND: Duration = Duration::from_secs(4);
/// What the shim promises the caller: back within 5 s (the bound, and process start and exit).
const PROMISE: Duration = Duration::from_secs(5);

/// A user-mode home whose broker is running (started on demand by a first request).
fn home_with_broker() -> (Home, u32) {
    let home = Home::new(true);
    assert_broker_answered(&output_within(home.shim(&["-n", "/usr/bin/true"]), 10));
    let pid = home.pid().expect("the shim started a broker");
    (home, pid)
}

fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill {sig} {pid}");
}

/// Runs `cmd`, returning its output and how long it took; fails the test past 30 s.
fn timed(cmd: Command) -> (Output, Duration) {
    let t = Instant::now();
    let out = output_within(cmd, 30);
    (out, t.elapsed())
}

fn assert_within_bound(took: Duration, what: &str) {
    assert!(took < PROMISE, "{what} took {took:?}");
}

/// `sh -c 'sudo ARGS 2>&1 | tail -n 5'`: a real pipe into a real `tail`.
fn piped_into_tail(home: &Home, args: &str) -> Command {
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(format!("\"$0\" {args} 2>&1 | tail -n 5"))
        .arg(home.sudo())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &home.path)
        .env("OCC_MODE", "user")
        .stdin(Stdio::null());
    c
}

// ---------- a stopped, flooded or silent broker ----------

#[test]
fn sigstopped_broker_cannot_hold_sudo_n_or_a_caller_without_a_terminal() {
    let (home, pid) = home_with_broker();
    signal(pid, "-STOP");
    let (out, took) = timed(home.shim(&["-n", "/usr/bin/id"]));
    assert_within_bound(took, "sudo -n id");
    assert_eq!(
        stderr(&out),
        unavailable("no answer from the broker within 4 s")
    );
    assert_eq!(out.status.code(), Some(1));
    // No -n, stdin not a terminal (the Home's shim has stdin /dev/null and stdout piped).
    let (out, took) = timed(home.shim(&["/usr/bin/id"]));
    assert_within_bound(took, "sudo id without a terminal");
    assert_eq!(
        stderr(&out),
        unavailable("no answer from the broker within 4 s")
    );
    assert_eq!(out.status.code(), Some(1));
    // Woken up, the same broker answers again: it was stopped, never replaced.
    signal(pid, "-CONT");
    assert_broker_answered(&output_within(home.shim(&["-n", "/usr/bin/id"]), 10));
    assert_eq!(home.pid(), Some(pid));
}

#[test]
fn sudo_n_piped_into_tail_ends_with_the_shim_even_when_the_broker_is_stopped() {
    let (home, pid) = home_with_broker();
    // Running normally: the pending line comes through the pipe.
    let (out, _) = timed(piped_into_tail(&home, "-n /usr/bin/id"));
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        shown.starts_with("sudo: approval pending (occ #") && shown.lines().count() == 1,
        "{shown:?}"
    );
    // Stopped: `tail` sees end-of-file when the shim exits, because no descriptor of the
    // caller's was ever passed to the broker (it would sit in the stopped broker's socket).
    signal(pid, "-STOP");
    let (out, took) = timed(piped_into_tail(&home, "-n /usr/bin/id"));
    signal(pid, "-CONT");
    assert_within_bound(took, "sudo -n id | tail");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        unavailable("no answer from the broker within 4 s")
    );
}

/// A socket whose listen backlog is full: bound with a backlog of one, never accepting, and
/// filled with non-blocking connects until the kernel says `EAGAIN`.
struct FullBacklog {
    _listener: std::os::fd::OwnedFd,
    _queued: Vec<std::os::fd::OwnedFd>,
}

fn full_backlog(path: &Path) -> FullBacklog {
    use nix::errno::Errno;
    use nix::sys::socket::{
        bind, connect, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
    };
    let addr = UnixAddr::new(path).unwrap();
    let listener = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    bind(listener.as_raw_fd(), &addr).unwrap();
    listen(&listener, Backlog::new(1).unwrap()).unwrap();
    let mut queued = Vec::new();
    loop {
        let s = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )
        .unwrap();
        match connect(s.as_raw_fd(), &addr) {
            Ok(()) => queued.push(s),
            Err(Errno::EAGAIN) => break,
            Err(e) => panic!("connect: {e}"),
        }
        assert!(queued.len() < 64, "the backlog never filled");
    }
    FullBacklog {
        _listener: listener,
        _queued: queued,
    }
}

#[test]
fn a_full_listen_backlog_cannot_hold_the_shim_and_starts_no_second_broker() {
    let home = Home::new(true);
    std::fs::create_dir_all(home.run()).unwrap();
    std::fs::set_permissions(home.run(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let _full = full_backlog(&home.sock());
    let (out, took) = timed(home.shim(&["-n", "/usr/bin/id"]));
    assert_within_bound(took, "sudo -n id against a full backlog");
    assert!(took >= BOUND - Duration::from_millis(100), "{took:?}");
    assert_eq!(
        stderr(&out),
        unavailable(&format!(
            "{} accepted no connection within 4 s (the broker is stopped or flooded)",
            home.sock().display()
        ))
    );
    assert_eq!(out.status.code(), Some(1));
    // Somebody listens, so the shim did not start a broker to replace it.
    assert_eq!(home.pid(), None, "a second broker was started");
}

/// A fake broker that says `Waiting` with a 1 s wait, then nothing: a caller with a terminal
/// waits the announced wait plus the margin, not the old hour.
#[test]
fn silent_broker_after_waiting_releases_a_terminal_caller_after_its_wait_and_margin() {
    if !Path::new("/usr/bin/script").is_file() {
        occ_tests::skip("needs script(1) from util-linux");
        return;
    }
    let home = Home::new(false);
    std::fs::create_dir_all(home.run()).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(home.sock()).unwrap();
    let holder = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let _ = read_one(&mut s);
        std::io::Write::write_all(&mut s, &waiting("ab12cd34", 1)).unwrap();
        std::thread::sleep(Duration::from_secs(30));
        drop(s);
    });
    let mut c = Command::new("/usr/bin/script");
    c.args([
        "-qec",
        &format!("{} /usr/bin/true", home.sudo().display()),
        "/dev/null",
    ])
    .env_clear()
    .env("PATH", "/usr/bin:/bin")
    .env("HOME", &home.path)
    .env("OCC_MODE", "user")
    .stdin(Stdio::null());
    let (out, took) = timed(c);
    // 1 s announced + the shim's 10 s margin.
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(12),
        "{took:?}"
    );
    let shown = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(
        shown.contains("sudo: waiting for approval (occ #ab12cd34): occ approve ab12cd34\n"),
        "{shown:?}"
    );
    assert!(
        shown.contains(&unavailable("no answer from the broker within 11 s")),
        "{shown:?}"
    );
    drop(holder);
}

/// When the broker's terminal prompt asks (`NeedTty`), the shim sends only the descriptors
/// that are terminals: here stdin and stderr, not stdout redirected to a file.
#[test]
fn need_tty_gets_only_the_terminals_never_a_file_or_pipe() {
    if !Path::new("/usr/bin/script").is_file() {
        occ_tests::skip("needs script(1) from util-linux");
        return;
    }
    let home = Home::new(false);
    std::fs::create_dir_all(home.run()).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(home.sock()).unwrap();
    let broker = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let (kind, req) = read_one(&mut s).expect("a request");
        assert_eq!(kind, 1);
        // No descriptor with the request, though two of three are terminals.
        assert_eq!(request_flags(&req), (0b101, 0));
        std::io::Write::write_all(&mut s, &waiting("ab12cd34", 30)).unwrap();
        std::io::Write::write_all(&mut s, &frame(14, &[])).unwrap();
        let stdio = read_one(&mut s).expect("the shim's Stdio frame");
        let mut refuse = field(b"done");
        refuse.extend(field(b"test_refusal"));
        refuse.extend(1i32.to_be_bytes());
        std::io::Write::write_all(&mut s, &frame(5, &refuse)).unwrap();
        stdio
    });
    let d = tempfile::tempdir().unwrap();
    let out_file = d.path().join("stdout");
    let mut c = Command::new("/usr/bin/script");
    c.args([
        "-qec",
        &format!(
            "{} /usr/bin/true > {}",
            home.sudo().display(),
            out_file.display()
        ),
        "/dev/null",
    ])
    .env_clear()
    .env("PATH", "/usr/bin:/bin")
    .env("HOME", &home.path)
    .env("OCC_MODE", "user")
    .stdin(Stdio::null());
    let (out, _) = timed(c);
    let shown = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(
        shown.contains("sudo: done (occ: test_refusal)"),
        "{shown:?}"
    );
    let (kind, passed) = broker.join().unwrap();
    assert_eq!(kind, 12, "a Stdio frame answers NeedTty");
    assert_eq!(passed, vec![0b101], "stdin and stderr only");
}

/// A request payload's isatty and stdio flags (after argv, cwd and env).
fn request_flags(req: &[u8]) -> (u8, u8) {
    let u32_at = |at: usize| u32::from_be_bytes(req[at..at + 4].try_into().unwrap()) as usize;
    let mut at = 0;
    let skip_field = |at: &mut usize| *at += 4 + u32_at(*at);
    let argc = u32_at(at);
    at += 4;
    for _ in 0..argc {
        skip_field(&mut at);
    }
    skip_field(&mut at); // cwd
    let envc = u32_at(at);
    at += 4;
    for _ in 0..envc * 2 {
        skip_field(&mut at);
    }
    (req[at], req[at + 1])
}

// ---------- user-mode limits ----------

/// Writes `security/broker.json` for a root-run user-mode broker.
fn broker_json(home: &Home, text: &str) {
    let sec = home.path.join("security");
    std::fs::create_dir_all(&sec).unwrap();
    std::fs::set_permissions(&sec, std::fs::Permissions::from_mode(0o700)).unwrap();
    let p = sec.join("broker.json");
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn events(home: &Home) -> Vec<Value> {
    std::fs::read_to_string(home.path.join("security/privileged-audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn refusals_with(home: &Home, code: &str) -> Vec<Value> {
    events(home)
        .into_iter()
        .filter(|e| e["event_type"] == "policy_block" && e["reason_code"] == code)
        .collect()
}

/// The refusal line `sudo: … (occ: CODE)` naming `key`, exit 1.
fn assert_refused(out: &Output, code: &str, key: &str) {
    let e = stderr(out);
    assert!(e.ends_with(&format!("(occ: {code})\n")), "{e}");
    assert!(e.contains("broker.json") && e.contains(key), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    assert_eq!(out.status.code(), Some(1), "{e}");
}

fn pending_id(out: &Output) -> String {
    let e = stderr(out);
    e.strip_prefix("sudo: approval pending (occ #")
        .and_then(|r| r.split([',', ')']).next())
        .unwrap_or_else(|| panic!("not a pending line: {e:?}"))
        .to_string()
}

#[test]
fn user_mode_request_over_request_bytes_is_refused_and_audited_at_a_bounded_rate() {
    let home = Home::new(true);
    // The default limit, 262144 bytes: three 100 000-byte arguments are over it, yet well
    // under the wire's 1 MiB frame limit.
    let big = "x".repeat(100_000);
    let args = ["-n", "/usr/bin/echo", &big, &big, &big];
    let shim = || {
        let mut c = home.shim(&args);
        c.current_dir("/");
        c
    };
    let out = output_within(shim(), 10);
    assert_refused(&out, "request_too_large", "limits.request_bytes");
    assert!(stderr(&out).contains("(262144)"), "{}", stderr(&out));
    let out = output_within(shim(), 10);
    assert_refused(&out, "request_too_large", "limits.request_bytes");
    // A request under the limit is still served.
    assert!(
        pending_id(&output_within(
            home.shim(&["-n", "/usr/bin/echo", &big]),
            10
        ))
        .len()
            == 8
    );
    home.stop_broker();
    let audited = refusals_with(&home, "request_too_large");
    assert_eq!(audited.len(), 1, "one audited per minute: {audited:?}");
    // "-n" and "/usr/bin/echo", the three arguments and the cwd "/".
    assert_eq!(audited[0]["request_bytes"], 2 + 13 + 300_000 + 1);
}

#[test]
fn user_mode_pending_requests_are_capped_at_pending_per_uid() {
    let home = Home::new(true);
    broker_json(&home, r#"{"limits": {"pending_per_uid": 2}}"#);
    let ask = |what: &str| output_within(home.shim(&["-n", "/usr/bin/echo", what]), 10);
    let first = pending_id(&ask("one"));
    pending_id(&ask("two"));
    let out = ask("three");
    assert_refused(&out, "too_many_pending", "limits.pending_per_uid");
    // Asking again for a request already filed still answers its id.
    assert_eq!(pending_id(&ask("one")), first);
    home.stop_broker();
    assert_eq!(refusals_with(&home, "too_many_pending").len(), 1);
}

/// A raw request a terminal caller would send (isatty on stdin, no -n): the broker answers
/// `Waiting` and holds the connection while it waits for an approver.
fn waiting_request(home: &Home) -> UnixStream {
    let mut p = 1u32.to_be_bytes().to_vec();
    p.extend(field(b"/usr/bin/true"));
    p.extend(field(b"/"));
    p.extend(0u32.to_be_bytes());
    p.extend([0b001, 0, 0]);
    let mut s = UnixStream::connect(home.sock()).unwrap();
    std::io::Write::write_all(&mut s, &frame(1, &p)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (kind, _) = read_one(&mut s).expect("an answer");
    assert_eq!(kind, 3, "Waiting");
    s
}

#[test]
fn user_mode_connections_per_uid_are_capped_and_the_approver_still_gets_in() {
    let home = Home::new(true);
    broker_json(
        &home,
        r#"{"limits": {"connections_per_uid": 2, "admin_connections_per_uid": 2}}"#,
    );
    assert_broker_answered(&output_within(home.shim(&["-n", "/usr/bin/true"]), 10));
    let held: Vec<UnixStream> = (0..2).map(|_| waiting_request(&home)).collect();
    // Two requests held: a third is refused once it says it is a request…
    let (out, took) = timed(home.shim(&["-n", "/usr/bin/id"]));
    assert_refused(&out, "broker_busy", "limits.connections_per_uid");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // …while the approver still gets in.
    let approvals = output_within(home.occ(&["approvals", "--json"]), 10);
    assert!(approvals.status.success(), "{}", stderr(&approvals));
    let listed: Value = serde_json::from_slice(&approvals.stdout).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    // Two more that say nothing fill the uid's 2 + 2: the next is refused at accept.
    let idle: Vec<UnixStream> = (0..2)
        .map(|_| UnixStream::connect(home.sock()).unwrap())
        .collect();
    wait_until("the idle connections to be accepted", 5, || {
        let out = output_within(home.shim(&["-n", "/usr/bin/id"]), 10);
        stderr(&out).contains("limits.connections_per_uid + limits.admin_connections_per_uid")
    });
    let out = output_within(home.shim(&["-n", "/usr/bin/id"]), 10);
    assert_refused(
        &out,
        "broker_busy",
        "limits.connections_per_uid + limits.admin_connections_per_uid",
    );
    drop(idle);
    drop(held);
    // Room again once they are gone.
    wait_until("the broker to serve again", 10, || {
        let out = output_within(home.shim(&["-n", "/usr/bin/id"]), 10);
        stderr(&out).starts_with("sudo: approval pending")
    });
    home.stop_broker();
    let audited = refusals_with(&home, "broker_busy");
    assert_eq!(audited.len(), 1, "one audited per minute: {audited:?}");
    assert_eq!(audited[0]["limit"], "limits.connections_per_uid");
}

/// Cold start is inside the bound: a shim that has to start the broker still answers within
/// 5 s, through a pipe.
#[test]
fn cold_start_answers_within_the_bound() {
    let home = Home::new(true);
    let child = spawn(
        piped_into_tail(&home, "-n /usr/bin/id")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let t = Instant::now();
    let out = finish_within(child, 30);
    assert_within_bound(t.elapsed(), "a cold start");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.starts_with("sudo: approval pending (occ #"),
        "{shown:?}"
    );
}
