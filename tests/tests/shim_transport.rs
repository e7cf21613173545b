//! The shim and the broker's connection layer through the real binaries: a temp OCC_HOME whose
//! `bin/` holds copies of the built `occ-shim` (as `sudo`) and `occ`. Frames in the fake-broker
//! tests are encoded by hand, so they also pin the wire format independently of occ-proto.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

// ---------- helpers ----------

pub(crate) struct Home {
    _dir: tempfile::TempDir,
    pub(crate) path: PathBuf,
}

impl Home {
    /// A home with `bin/sudo` (the shim) and, when `with_occ`, `bin/occ`.
    pub(crate) fn new(with_occ: bool) -> Home {
        let dir = tempfile::Builder::new()
            .prefix("occ-e2e")
            .tempdir()
            .unwrap();
        let path = dir.path().to_path_buf();
        let bin = path.join("bin");
        std::fs::create_dir(&bin).unwrap();
        occ_tests::copy_exe(occ_tests::bin("occ-shim"), bin.join("sudo"));
        if with_occ {
            occ_tests::copy_exe(occ_tests::bin("occ"), bin.join("occ"));
        }
        // Traversable by the unprivileged agent user in the peer-uid test.
        for d in [&path, &bin] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Home { _dir: dir, path }
    }
    pub(crate) fn sudo(&self) -> PathBuf {
        self.path.join("bin/sudo")
    }
    pub(crate) fn run(&self) -> PathBuf {
        self.path.join("run")
    }
    pub(crate) fn sock(&self) -> PathBuf {
        self.run().join("broker.sock")
    }
    pub(crate) fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.run().join("broker.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.run().join("broker.log")).unwrap_or_default()
    }
    /// A shim command with a clean environment (OCC_MODE=user so a system socket never
    /// interferes).
    pub(crate) fn shim(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.sudo());
        c.args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &self.path)
            .env("OCC_MODE", "user")
            .stdin(Stdio::null());
        c
    }
    /// `occ ARGS` from this home's bin/, with a clean environment.
    pub(crate) fn occ(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.path.join("bin/occ"));
        c.args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("OCC_HOME", &self.path)
            .env("OCC_MODE", "user")
            .stdin(Stdio::null());
        c
    }
    pub(crate) fn stop_broker(&self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            wait_until("the broker to remove its pid file", 5, || {
                !self.run().join("broker.pid").exists()
            });
        }
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

pub(crate) fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out after {secs}s waiting for {what}");
}

/// Runs a command to completion, failing the test if it takes longer than `secs`.
pub(crate) fn output_within(mut cmd: Command, secs: u64) -> Output {
    let child = spawn(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()));
    finish_within(child, secs)
}

/// Spawns, retrying `ETXTBSY`: a binary copied a moment ago may still be open for writing in a
/// child that another test thread forked but has not yet exec'd.
pub(crate) fn spawn(cmd: &mut Command) -> Child {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Ok(c) => return c,
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot run {cmd:?}: {e}"),
        }
    }
}

pub(crate) fn finish_within(child: Child, secs: u64) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("command did not finish within {secs}s (it hung)");
        }
    }
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub(crate) fn unavailable(detail: &str) -> String {
    format!("sudo: occ broker unavailable: {detail} (occ: broker_unavailable)\n")
}

/// The broker (whatever handler it runs) answered the shim: one `sudo: …` line naming occ —
/// a refusal `(occ: CODE)` other than `broker_unavailable`, or a pending line `(occ #ID)` — and
/// exit 1. `sudo -n true` is never granted without a human.
pub(crate) fn assert_broker_answered(o: &Output) {
    let e = stderr(o);
    assert_broker_line(&e);
    assert_eq!(o.status.code(), Some(1), "{e}");
}

pub(crate) fn assert_broker_line(e: &str) {
    assert!(e.starts_with("sudo: ") && e.ends_with('\n'), "{e}");
    assert!(e.contains("(occ: ") || e.contains("(occ #"), "{e}");
    assert!(!e.contains("broker_unavailable"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

/// A directory with a fake `sudo` that would leave a marker if anything ran it.
fn trap_sudo() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("real-sudo-ran");
    let fake = d.path().join("sudo");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\ntouch '{}'\nexit 0\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    (d, marker)
}

/// `occ broker --foreground` for this home, waiting until its socket answers.
fn foreground_broker(home: &Home) -> Child {
    let child = spawn(
        Command::new(home.path.join("bin/occ"))
            .args(["broker", "--foreground"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("OCC_HOME", &home.path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    wait_until("the foreground broker's socket", 5, || {
        UnixStream::connect(home.sock()).is_ok()
    });
    child
}

// ---------- hand-encoded frames ----------

const MAGIC: u8 = 0xCC;

pub(crate) fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![MAGIC, 1, kind, 0];
    f.extend((payload.len() as u32).to_be_bytes());
    f.extend(payload);
    f
}

pub(crate) fn field(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u32).to_be_bytes().to_vec();
    v.extend(b);
    v
}

fn grant(argv: &[&str]) -> Vec<u8> {
    let mut p = (argv.len() as u32).to_be_bytes().to_vec();
    for a in argv {
        p.extend(field(a.as_bytes()));
    }
    frame(4, &p)
}

/// `Pending`: the id, the expiry time, then the untrusted flag (u8).
pub(crate) fn pending(id: &str, expires_at: &str, untrusted: bool) -> Vec<u8> {
    let mut p = field(id.as_bytes());
    p.extend(field(expires_at.as_bytes()));
    p.push(u8::from(untrusted));
    frame(2, &p)
}

/// `Waiting`: the id, then the broker's wait in seconds (u32).
pub(crate) fn waiting(id: &str, wait_seconds: u32) -> Vec<u8> {
    let mut p = field(id.as_bytes());
    p.extend(wait_seconds.to_be_bytes());
    frame(3, &p)
}

fn refuse(msg: &str, code: &str, exit: i32) -> Vec<u8> {
    let mut p = field(msg.as_bytes());
    p.extend(field(code.as_bytes()));
    p.extend(exit.to_be_bytes());
    frame(5, &p)
}

fn output(out: &[u8], err: &[u8], exit: i32) -> Vec<u8> {
    let mut p = field(out);
    p.extend(field(err));
    p.extend(exit.to_be_bytes());
    frame(6, &p)
}

/// A frame as (type byte, payload).
pub(crate) type RawFrame = (u8, Vec<u8>);

pub(crate) fn read_one(s: &mut UnixStream) -> Option<RawFrame> {
    let mut h = [0u8; 8];
    s.read_exact(&mut h).ok()?;
    assert_eq!(h[0], MAGIC, "shim sent a bad magic byte");
    assert_eq!(h[1], 1, "shim sent another protocol version");
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    let mut p = vec![0u8; len];
    s.read_exact(&mut p).ok()?;
    Some((h[2], p))
}

/// A fake broker on the home's socket: for one connection, reads the request, sends `answer`,
/// then returns the request payload and every frame the shim sent afterwards.
fn fake_broker(
    home: &Home,
    answer: Vec<Vec<u8>>,
) -> std::thread::JoinHandle<(Vec<u8>, Vec<RawFrame>)> {
    std::fs::create_dir_all(home.run()).unwrap();
    let listener = UnixListener::bind(home.sock()).unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let (kind, req) = read_one(&mut s).expect("a request");
        assert_eq!(kind, 1, "the first frame is a request");
        if answer.is_empty() {
            // Hang up on the shim without answering.
            s.shutdown(std::net::Shutdown::Write).unwrap();
        }
        for f in answer {
            s.write_all(&f).unwrap();
        }
        let mut after = Vec::new();
        while let Some(f) = read_one(&mut s) {
            after.push(f);
        }
        (req, after)
    })
}

fn exit_report(p: &[u8]) -> (i32, i32, u64) {
    assert_eq!(p.len(), 16, "exit report payload");
    (
        i32::from_be_bytes([p[0], p[1], p[2], p[3]]),
        i32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        u64::from_be_bytes([p[8], p[9], p[10], p[11], p[12], p[13], p[14], p[15]]),
    )
}

// ---------- broker unreachable ----------

#[test]
fn broker_down_and_no_occ_refuses_and_never_runs_the_real_sudo() {
    let home = Home::new(false);
    let (trap, marker) = trap_sudo();
    let mut cmd = home.shim(&["-n", "true"]);
    cmd.env("PATH", format!("{}:/usr/bin:/bin", trap.path().display()));
    let out = output_within(cmd, 10);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        unavailable(&format!(
            "no broker is listening on {} and {} is missing, so none can be started",
            home.sock().display(),
            home.path.join("bin/occ").display()
        ))
    );
    assert!(out.stdout.is_empty());
    assert!(!marker.exists(), "the shim ran a sudo from PATH");
}

#[test]
fn broker_down_answers_version_and_help_locally_only() {
    let home = Home::new(false);
    let out = output_within(home.shim(&["-V"]), 10);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("occ sudo shim version "));
    let out = output_within(home.shim(&["-h"]), 10);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("usage: sudo"));
    // Anything more than a lone -h/-V is refused like any request.
    let out = output_within(home.shim(&["-V", "x"]), 10);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).ends_with("(occ: broker_unavailable)\n"));
}

#[test]
fn caller_occ_home_cannot_redirect_the_shim() {
    let home = Home::new(false);
    let other = Home::new(true);
    let mut cmd = home.shim(&["true"]);
    cmd.env("OCC_HOME", &other.path);
    let out = output_within(cmd, 10);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&home.sock().display().to_string()),
        "{}",
        stderr(&out)
    );
    assert!(
        !other.run().exists(),
        "a broker was started in the caller's OCC_HOME"
    );
}

#[test]
fn socket_path_too_long_for_sun_path_is_a_clear_error() {
    let home = Home::new(false);
    let deep = home.path.join("d".repeat(90));
    std::fs::create_dir_all(deep.join("bin")).unwrap();
    occ_tests::copy_exe(home.sudo(), deep.join("bin/sudo"));
    let out = output_within(
        {
            let mut c = Command::new(deep.join("bin/sudo"));
            c.arg("true").env("OCC_MODE", "user");
            c
        },
        10,
    );
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.starts_with("sudo: occ broker unavailable: socket path "),
        "{e}"
    );
    assert!(e.contains("sun_path"), "{e}");
    assert!(e.ends_with("(occ: broker_unavailable)\n"), "{e}");
}

#[test]
fn shim_outside_a_bin_directory_refuses() {
    let d = tempfile::tempdir().unwrap();
    let exe = d.path().join("sudo");
    occ_tests::copy_exe(occ_tests::bin("occ-shim"), &exe);
    let out = output_within(Command::new(&exe), 10);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not inside an OCC_HOME/bin directory"));
}

// ---------- on-demand start and the real broker ----------

#[test]
fn on_demand_start_through_a_pipe_returns_promptly() {
    let home = Home::new(true);
    let started = Instant::now();
    let mut sh = Command::new("/bin/sh");
    sh.arg("-c")
        .arg(r#"out=$("$0" -n true); echo "rc=$? out=[$out]""#)
        .arg(home.sudo())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("OCC_MODE", "user")
        .env("HOME", &home.path);
    let out = output_within(sh, 5);
    let took = started.elapsed();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "rc=1 out=[]\n");
    assert_broker_line(&stderr(&out));
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // The daemon: run/ 0700, socket 0600, a pid file naming a live process, a log.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home.run()), 0o700);
    assert_eq!(mode(&home.sock()), 0o600);
    let pid = home.pid().expect("broker.pid");
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    // Its environment was cleared to the allowlist.
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let mut names: Vec<String> = env
        .split(|b| *b == 0)
        .filter(|e| !e.is_empty())
        .map(|e| {
            String::from_utf8_lossy(e)
                .split('=')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["HOME", "OCC_HOME", "PATH"]);
    // A second request reuses the running broker.
    let out = output_within(home.shim(&["-n", "true"]), 5);
    assert_broker_answered(&out);
    assert_eq!(home.pid(), Some(pid));
    assert!(home.log().contains("listening"), "{}", home.log());
    home.stop_broker();
    assert!(!home.sock().exists(), "socket left behind");
}

#[test]
fn racing_shims_start_exactly_one_broker() {
    let home = Home::new(true);
    let children: Vec<Child> = (0..8)
        .map(|_| {
            spawn(
                home.shim(&["-n", "true"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped()),
            )
        })
        .collect();
    for c in children {
        assert_broker_answered(&finish_within(c, 10));
    }
    let log = home.log();
    assert_eq!(log.matches("INFO listening").count(), 1, "{log}");
    home.stop_broker();
}

#[test]
fn stale_socket_is_replaced_by_the_broker_holding_the_lock() {
    let home = Home::new(true);
    std::fs::create_dir_all(home.run()).unwrap();
    std::fs::set_permissions(home.run(), std::fs::Permissions::from_mode(0o700)).unwrap();
    drop(UnixListener::bind(home.sock()).unwrap());
    assert!(home.sock().exists());
    let out = output_within(home.shim(&["true"]), 5);
    assert_broker_answered(&out);
    home.stop_broker();
}

#[test]
fn second_broker_finds_the_lock_taken() {
    let home = Home::new(true);
    let mut first = foreground_broker(&home);
    let out = output_within(
        {
            let mut c = Command::new(home.path.join("bin/occ"));
            c.args(["broker", "--foreground"])
                .env_clear()
                .env("OCC_HOME", &home.path);
            c
        },
        5,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already running"), "{}", stderr(&out));
    // The first one still serves.
    let got = output_within(home.shim(&["true"]), 5);
    assert_broker_answered(&got);
    let _ = Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status();
    assert!(first.wait().unwrap().success());
}

#[test]
fn sigterm_stops_cleanly_and_removes_socket_and_pid() {
    let home = Home::new(true);
    let mut broker = foreground_broker(&home);
    assert!(home.run().join("broker.pid").exists());
    // An idle client that never sends its request must not hold the shutdown up.
    let idle = UnixStream::connect(home.sock()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &broker.id().to_string()])
        .status();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(broker.wait());
    });
    let status = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the broker exits within 5 s of SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "shutdown waited {:?} for an idle client",
        t.elapsed()
    );
    drop(idle);
    assert!(!home.sock().exists(), "socket left behind");
    assert!(
        !home.run().join("broker.pid").exists(),
        "pid file left behind"
    );
    // Now the shim finds no broker and starts a new one on demand.
    let out = output_within(home.shim(&["true"]), 5);
    assert_broker_answered(&out);
    home.stop_broker();
}

#[test]
fn garbage_oversized_and_half_sent_frames_close_only_their_connection() {
    let home = Home::new(true);
    let mut broker = foreground_broker(&home);
    let mut stalled = UnixStream::connect(home.sock()).unwrap();
    stalled
        .write_all(&[MAGIC, 1, 1, 0, 0, 0, 0, 100, 1, 2, 3])
        .unwrap();
    let cases: [(&str, Vec<u8>); 4] = [
        ("bad_magic", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        ("bad_version", vec![MAGIC, 7, 1, 0, 0, 0, 0, 0]),
        ("oversize", {
            let mut v = vec![MAGIC, 1, 1, 0];
            v.extend(((1u32 << 20) + 1).to_be_bytes());
            v.extend([0u8; 64]);
            v
        }),
        ("malformed", frame(1, &[0, 0, 0, 9, 1])),
    ];
    for (kind, bytes) in &cases {
        let mut g = UnixStream::connect(home.sock()).unwrap();
        g.write_all(bytes).unwrap();
        g.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 16];
        match g.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("{kind}: expected the connection closed, got {other:?}"),
        }
    }
    // While the half-sent frame is still pending, a normal caller is served at once.
    let t = Instant::now();
    let out = output_within(home.shim(&["-n", "true"]), 5);
    assert_broker_answered(&out);
    assert!(t.elapsed() < Duration::from_secs(2));
    // The stalled connection is closed after the request time-out.
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 16];
    match stalled.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("stalled: expected the connection closed, got {other:?}"),
    }
    let _ = Command::new("kill")
        .args(["-TERM", &broker.id().to_string()])
        .status();
    let mut log = String::new();
    broker
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(broker.wait().unwrap().success());
    for (kind, _) in &cases {
        assert!(
            log.contains(&format!("kind=\"{kind}\"")),
            "no protocol_error {kind} in {log}"
        );
    }
    assert!(log.contains("kind=\"timeout\""), "{log}");
    assert!(log.matches("protocol_error").count() >= 5, "{log}");
}

#[test]
fn peer_with_another_uid_is_refused_needs_root() {
    if !occ_tests::is_root() {
        occ_tests::skip("needs root: runs the shim as occ-agent against a root broker");
        return;
    }
    let agent_ok = Command::new("id")
        .arg("occ-agent")
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !agent_ok {
        occ_tests::skip("needs the occ-agent user (created by .ci/run)");
        return;
    }
    let home = Home::new(true);
    let mut broker = foreground_broker(&home);
    // Defeat the filesystem protection on purpose: SO_PEERCRED must still refuse.
    std::fs::set_permissions(home.run(), std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(home.sock(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = output_within(
        {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=occ-agent",
                "--regid=occ-agent",
                "--clear-groups",
                "--",
            ])
            .arg(home.sudo())
            .args(["-n", "true"])
            .env_clear()
            .env("OCC_MODE", "user")
            .env("PATH", "/usr/bin:/bin");
            c
        },
        10,
    );
    let uid = String::from_utf8(
        Command::new("id")
            .args(["-u", "occ-agent"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        stderr(&out),
        format!(
            "sudo: this occ broker serves uid 0 only, and the caller is uid {} \
             (occ: peer_uid_mismatch)\n",
            uid.trim()
        )
    );
    assert_eq!(out.status.code(), Some(1));
    let _ = Command::new("kill")
        .args(["-TERM", &broker.id().to_string()])
        .status();
    let mut log = String::new();
    broker
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let _ = broker.wait();
    assert!(log.contains("peer_uid_mismatch"), "{log}");
    assert!(log.contains(&format!("peer_uid={}", uid.trim())), "{log}");
}

// ---------- the shim against a fake broker (the grant path) ----------

#[test]
fn request_carries_argv_cwd_filtered_env_and_no_stdio() {
    let home = Home::new(false);
    let fb = fake_broker(&home, vec![refuse("no", "test_refusal", 1)]);
    let mut cmd = home.shim(&["-u", "root", "ls", "a b"]);
    cmd.current_dir("/tmp")
        .env("OPENCLAW_PRIV_REASON", "why")
        .env("LC_ALL", "C")
        .env("SECRET_TOKEN", "must-not-travel");
    let out = output_within(cmd, 10);
    assert_eq!(stderr(&out), "sudo: no (occ: test_refusal)\n");
    assert_eq!(out.status.code(), Some(1));
    let (req, _) = fb.join().unwrap();
    let text = String::from_utf8_lossy(&req);
    for want in [
        "-u",
        "root",
        "ls",
        "a b",
        "/tmp",
        "OPENCLAW_PRIV_REASON",
        "why",
        "LC_ALL",
    ] {
        assert!(text.contains(want), "{want} missing from {text:?}");
    }
    assert!(!text.contains("SECRET_TOKEN"), "unlisted env forwarded");
    assert!(!text.contains("must-not-travel"));
    // isatty flags, stdio flags, tty presence: none a tty, none passed (the broker asks for
    // the terminal when its prompt needs it, never for a pipe), no tty.
    assert_eq!(&req[req.len() - 3..], &[0, 0, 0]);
}

#[test]
fn waiting_then_pending_lines_are_word_for_word() {
    let home = Home::new(false);
    let fb = fake_broker(
        &home,
        vec![
            waiting("ab12cd34", 120),
            pending("ab12cd34", "2025-01-31T12:30:00Z", true),
        ],
    );
    let out = output_within(home.shim(&["true"]), 10);
    assert_eq!(
        stderr(&out),
        "sudo: waiting for approval (occ #ab12cd34): occ approve ab12cd34\n\
         sudo: approval pending (occ #ab12cd34, expires 2025-01-31T12:30:00Z): an approver can \
         run: occ approve ab12cd34 --confirm-untrusted\n"
    );
    assert_eq!(out.status.code(), Some(1));
    fb.join().unwrap();
}

#[test]
fn output_frame_is_printed_verbatim_with_its_exit_code() {
    let home = Home::new(false);
    let fb = fake_broker(
        &home,
        vec![output(
            b"",
            b"sudo: invalid option -- 'Z'\nusage: sudo -h | -K | -k | -V\n",
            1,
        )],
    );
    let out = output_within(home.shim(&["-Z"]), 10);
    assert_eq!(
        stderr(&out),
        "sudo: invalid option -- 'Z'\nusage: sudo -h | -K | -k | -V\n"
    );
    assert_eq!(out.status.code(), Some(1));
    fb.join().unwrap();
    let home = Home::new(false);
    let fb = fake_broker(&home, vec![output(b"occ version\n", b"", 0)]);
    let out = output_within(home.shim(&["-V"]), 10);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "occ version\n");
    assert_eq!(out.status.code(), Some(0));
    fb.join().unwrap();
}

#[test]
fn refusal_never_exits_zero() {
    let home = Home::new(false);
    let fb = fake_broker(&home, vec![refuse("m", "x", 0)]);
    let out = output_within(home.shim(&["true"]), 10);
    assert_eq!(out.status.code(), Some(1));
    fb.join().unwrap();
}

#[test]
fn granted_command_gets_the_callers_stdio_and_its_exit_code_passes_through() {
    let home = Home::new(false);
    let fb = fake_broker(
        &home,
        vec![grant(&[
            "/bin/sh",
            "-c",
            "read x; echo \"out:$x\"; echo err >&2; exit 7",
        ])],
    );
    let mut cmd = home.shim(&["whatever"]);
    let mut child = spawn(
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = finish_within(child, 10);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out:hello\n");
    assert_eq!(stderr(&out), "err\n");
    assert_eq!(out.status.code(), Some(7));
    let (_, after) = fb.join().unwrap();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].0, 7, "an exit report");
    let (exit_value, signal, _) = exit_report(&after[0].1);
    assert_eq!((exit_value, signal), (7, 0));
}

#[test]
fn sigterm_to_the_shim_is_relayed_and_the_shim_dies_of_the_same_signal() {
    let home = Home::new(false);
    let fb = fake_broker(&home, vec![grant(&["/bin/sleep", "30"])]);
    let child = spawn(
        home.shim(&["sleep", "30"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let pid = child.id();
    // Wait until the shim's child (sleep) exists.
    wait_until("the granted sleep to start", 5, || {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .map(|s| !s.trim().is_empty())
            .unwrap_or(false)
    });
    let t = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let out = finish_within(child, 10);
    assert!(t.elapsed() < Duration::from_secs(5), "sleep was not killed");
    assert_eq!(out.status.signal(), Some(15), "{:?}", out.status);
    let (_, after) = fb.join().unwrap();
    let kinds: Vec<u8> = after.iter().map(|f| f.0).collect();
    assert_eq!(kinds, vec![8, 7], "a Signal frame, then the exit report");
    assert_eq!(after[0].1, 15i32.to_be_bytes());
    let (exit_value, signal, _) = exit_report(&after[1].1);
    assert_eq!((exit_value, signal), (-1, 15));
}

#[test]
fn grant_with_a_relative_program_is_refused_not_executed() {
    let home = Home::new(false);
    let (trap, marker) = trap_sudo();
    let fb = fake_broker(&home, vec![grant(&["sudo", "true"])]);
    let mut cmd = home.shim(&["true"]);
    cmd.env("PATH", trap.path());
    let out = output_within(cmd, 10);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.starts_with("sudo: occ broker unavailable: broker protocol error"),
        "{e}"
    );
    assert!(!marker.exists(), "a relative grant was executed");
    fb.join().unwrap();
}

#[test]
fn broker_hanging_up_without_an_answer_is_unavailable() {
    let home = Home::new(false);
    let fb = fake_broker(&home, vec![]);
    let out = output_within(home.shim(&["true"]), 10);
    assert_eq!(
        stderr(&out),
        unavailable("the broker closed the connection without answering")
    );
    assert_eq!(out.status.code(), Some(1));
    fb.join().unwrap();
}

// ---------- the static build ----------

#[test]
fn musl_shim_is_static_when_built() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/x86_64-unknown-linux-musl/release/occ-shim");
    let Ok(elf) = std::fs::read(&p) else {
        eprintln!(
            "note: {} not built; CI's explicit musl build step checks it",
            p.display()
        );
        return;
    };
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "64-bit ELF");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&elf[o..o + 8]);
        u64::from_le_bytes(b) as usize
    };
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let p_type = u32::from_le_bytes(
            elf[phoff + i * phentsize..phoff + i * phentsize + 4]
                .try_into()
                .unwrap(),
        );
        // No program interpreter: static or static-pie (whose PT_DYNAMIC only relocates itself).
        assert_ne!(p_type, 3, "PT_INTERP: the shim is dynamically linked");
    }
}

#[test]
fn request_over_one_mebibyte_is_refused_at_once_without_exec() {
    let home = Home::new(false);
    std::fs::create_dir_all(home.run()).unwrap();
    // A listener that never answers: the shim must not wait for it.
    let listener = UnixListener::bind(home.sock()).unwrap();
    let big = "x".repeat(110 * 1024);
    let args: Vec<&str> = std::iter::repeat_n(big.as_str(), 10).collect();
    let t = Instant::now();
    let out = output_within(home.shim(&args), 10);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.starts_with("sudo: occ broker unavailable: could not send the request: frame of "),
        "{e}"
    );
    assert!(e.ends_with("byte limit (occ: broker_unavailable)\n"), "{e}");
    drop(listener);
}

#[test]
fn occ_broker_detaches_reports_started_and_keeps_serving() {
    let home = Home::new(true);
    let occ = |args: &[&str]| home.occ(args);
    // Returns promptly even with its stdout on a pipe: the daemon holds no copy of it.
    let out = output_within(occ(&["broker"]), 5);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let pid = home.pid().expect("broker.pid");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "occ broker: started (pid {pid}), listening on {}\n",
            home.sock().display()
        )
    );
    // Detached: in a session of its own making (not ours), yet not its leader (double fork,
    // so it can never reacquire a controlling terminal).
    let stat_of = |p: &str| {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap();
        let after: Vec<String> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .map(String::from)
            .collect();
        after
    };
    let daemon = stat_of(&pid.to_string());
    let me = stat_of("self");
    assert_ne!(daemon[3], me[3], "the daemon shares our session");
    assert_ne!(daemon[3], pid.to_string(), "the daemon is a session leader");
    let out = output_within(occ(&["broker"]), 5);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("already running"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_broker_answered(&output_within(home.shim(&["true"]), 5));
    home.stop_broker();
}

#[test]
fn a_starting_broker_rotates_an_oversized_log_and_logs_to_a_fresh_one() {
    use std::os::unix::fs::OpenOptionsExt;
    let home = Home::new(true);
    std::fs::create_dir_all(home.run()).unwrap();
    std::fs::set_permissions(home.run(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let old = home.run().join("broker.log");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&old)
        .unwrap();
    // Just over the 4 MiB limit, ending in a line we can find again.
    std::io::Write::write_all(&mut f, &vec![b'x'; 4 << 20]).unwrap();
    std::io::Write::write_all(&mut f, b"\nthe old log's last line\n").unwrap();
    drop(f);
    let out = output_within(home.occ(&["broker"]), 5);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rotated = std::fs::read(home.run().join("broker.log.1")).unwrap();
    assert!(rotated.ends_with(b"the old log's last line\n"));
    // The running broker writes to the fresh log: its start, and its stop.
    wait_until("the fresh log to name the rotation", 5, || {
        home.log().contains("rotated")
    });
    home.stop_broker();
    let log = home.log();
    assert!(log.len() < 64 << 10, "{} bytes", log.len());
    assert!(log.contains("stopped"), "{log}");
    let mode = std::fs::metadata(home.run().join("broker.log"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // A log under the limit is left alone.
    let out = output_within(home.occ(&["broker"]), 5);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    home.stop_broker();
    assert!(home.log().contains("rotated"), "the same log, appended to");
}

#[test]
fn a_broker_that_accepts_but_never_answers_cannot_hang_the_shim() {
    let home = Home::new(false);
    std::fs::create_dir_all(home.run()).unwrap();
    let listener = UnixListener::bind(home.sock()).unwrap();
    // Accept and read the request, then say nothing, keeping the connection open.
    let holder = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let _ = read_one(&mut s);
        std::thread::sleep(Duration::from_secs(40));
        drop(s);
    });
    let t = Instant::now();
    let out = output_within(home.shim(&["-n", "/usr/bin/true"]), 60);
    let took = t.elapsed();
    // The bound, not earlier: a slow broker gets the whole 4 s, and the caller has its
    // answer within 5 s.
    assert!(
        took >= Duration::from_millis(3900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        unavailable("no answer from the broker within 4 s")
    );
    drop(holder);
}

#[test]
fn occ_broker_json_reports_the_start_and_an_already_running_broker() {
    let home = Home::new(true);
    let occ = |args: &[&str]| home.occ(args);
    let out = output_within(occ(&["broker", "--json"]), 5);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pid = home.pid().expect("broker.pid");
    assert_eq!(v["started"], true);
    assert_eq!(v["pid"], pid);
    assert_eq!(v["socket"], home.sock().display().to_string());
    let out = output_within(occ(&["broker", "--json"]), 5);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["started"], false);
    assert!(
        v["detail"]
            .as_str()
            .unwrap_or("")
            .contains("already running"),
        "{v}"
    );
    home.stop_broker();
}
