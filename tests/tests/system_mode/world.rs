//! One fresh system-mode world per test: real users, the real paths (/etc/occ, /run/occ,
//! /var/lib/occ, /var/log/occ), a real `occ broker --system` started as a child of the test, and
//! the shim in each requester's `~/.openclaw/bin/sudo`. The paths are shared by every
//! system-mode test, so a world holds `occ_tests::system_paths_lock()` for its whole life and
//! removes them when dropped.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use occ_proto::Frame;
use serde_json::{json, Value};

use crate::approval::text;

/// The requester: an agent with no sudo rights at all.
pub const AGENT: &str = "occ-sysagent";
/// The approver: another user, in broker.json's `approvers`.
pub const APPROVER: &str = "occ-approver";
/// A third user: the target of `sudo -u`, never a requester.
pub const TARGET: &str = "occ-systarget";
/// A second requester: the agent's neighbour (per-uid limits) and the user the environment
/// test compares with the real sudo.
pub const OTHER: &str = "occ-sysother";

pub const CONFIG_DIR: &str = "/etc/occ";
pub const RUN_DIR: &str = "/run/occ";
pub const STATE_DIR: &str = "/var/lib/occ";
pub const LOG_DIR: &str = "/var/log/occ";
pub const REQUEST_SOCKET: &str = "/run/occ/broker.sock";
pub const ADMIN_SOCKET: &str = "/run/occ/admin.sock";
pub const AUDIT_LOG: &str = "/var/log/occ/privileged-audit.jsonl";
pub const STATE_FILE: &str = "/var/lib/occ/state.json";
pub const BROKER_JSON: &str = "/etc/occ/broker.json";
/// Root-owned files the tests approve (the probe, the swapped binary).
pub const LIBEXEC: &str = "/usr/local/libexec/occ-test";

/// How long any wait for the broker may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A user as /etc/passwd has it.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl User {
    /// `~/.openclaw/bin`, where the shim is installed as `sudo`.
    pub fn bin(&self) -> PathBuf {
        self.home.join(".openclaw/bin")
    }

    pub fn shim(&self) -> PathBuf {
        self.bin().join("sudo")
    }
}

/// The passwd entry of `name`, if there is one.
pub fn lookup(name: &str) -> Option<User> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&name) && f.len() >= 6).then(|| {
            Some(User {
                name: name.to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: PathBuf::from(f[5]),
            })
        })?
    })
}

/// The user `name`, created (with a home) when missing, as `.ci/run` does.
pub(crate) fn ensure_user(name: &str) -> User {
    if lookup(name).is_none() {
        let out = Command::new("/usr/sbin/useradd")
            .args(["--create-home", "--shell", "/bin/sh", name])
            .output()
            .expect("run useradd");
        assert!(
            out.status.success(),
            "useradd {name}: {}",
            text(&out.stderr)
        );
    }
    let u = lookup(name).unwrap_or_else(|| panic!("{name} is not in /etc/passwd"));
    std::fs::create_dir_all(&u.home).unwrap();
    std::os::unix::fs::chown(&u.home, Some(u.uid), Some(u.gid)).unwrap();
    // Other users' commands (`sudo -u`) start in the caller's directory, as with sudo.
    std::fs::set_permissions(&u.home, std::fs::Permissions::from_mode(0o755)).unwrap();
    u
}

/// Whether these tests can run here; prints SKIP (a failure under OCC_REQUIRE_FULL_TESTS=1)
/// when they cannot.
pub fn ready(needs: &[&str]) -> bool {
    if !occ_tests::is_root() {
        occ_tests::skip("needs root (the system broker is a root service)");
        return false;
    }
    let missing_user = [AGENT, APPROVER, TARGET, OTHER]
        .iter()
        .any(|u| lookup(u).is_none());
    let useradd = missing_user.then_some("/usr/sbin/useradd");
    for tool in ["/usr/bin/sha256sum"]
        .iter()
        .chain(useradd.iter())
        .chain(needs)
    {
        if !Path::new(tool).is_file() {
            occ_tests::skip(&format!("needs {tool}"));
            return false;
        }
    }
    true
}

/// The config a world starts with: the agent and [`OTHER`] request, [`APPROVER`] approves, and
/// nobody waits (every request answers at once).
pub fn default_broker_json() -> Value {
    json!({
        "version": 1,
        "requesters": [AGENT, OTHER],
        "approvers": [APPROVER],
        "approval": {"wait_seconds": 0},
    })
}

pub struct World {
    pub agent: User,
    pub approver: User,
    pub target: User,
    pub other: User,
    broker: Option<Child>,
    /// The broker's stderr (its tracing log), shown when a test fails.
    broker_log: tempfile::NamedTempFile,
    /// A root-owned copy of `occ` in a root-owned directory: the system broker serves only
    /// approvers who run a program only root can change, wherever this checkout lives.
    occ: PathBuf,
    _serial: MutexGuard<'static, ()>,
}

impl World {
    /// A clean world with the default config written and no broker yet; `None` (after a SKIP)
    /// when the tests cannot run here.
    pub fn new(needs: &[&str]) -> Option<World> {
        if !ready(needs) {
            return None;
        }
        let serial = occ_tests::system_paths_lock();
        stop_leftover_broker();
        remove_system_dirs();
        let w = World {
            agent: ensure_user(AGENT),
            approver: ensure_user(APPROVER),
            target: ensure_user(TARGET),
            other: ensure_user(OTHER),
            broker: None,
            broker_log: tempfile::NamedTempFile::new().unwrap(),
            occ: install_root_exe(occ_tests::bin("occ"), "occ"),
            _serial: serial,
        };
        for u in [&w.agent, &w.other, &w.target] {
            install_shim(u);
        }
        std::fs::create_dir_all(CONFIG_DIR).unwrap();
        std::fs::set_permissions(CONFIG_DIR, std::fs::Permissions::from_mode(0o700)).unwrap();
        w.write_broker_json(&default_broker_json());
        w.write_config(
            "command-policy.json",
            r#"{"version": 2, "allow": [], "deny": ["/usr/bin/passwd"]}"#,
        );
        w.write_config(
            "prompt-policy.json",
            r#"{"require_confirmation_for_untrusted": true}"#,
        );
        Some(w)
    }

    /// [`World::new`] with the broker started on the default config.
    pub fn started(needs: &[&str]) -> Option<World> {
        let mut w = World::new(needs)?;
        w.start();
        Some(w)
    }

    /// [`World::new`] with `edit` applied to the default broker.json, then the broker started.
    pub fn started_with(needs: &[&str], edit: impl FnOnce(&mut Value)) -> Option<World> {
        let mut w = World::new(needs)?;
        let mut b = default_broker_json();
        edit(&mut b);
        w.write_broker_json(&b);
        w.start();
        Some(w)
    }

    /// Writes `/etc/occ/NAME` as root's 0600 file.
    pub fn write_config(&self, name: &str, body: &str) {
        write_root_file(&Path::new(CONFIG_DIR).join(name), body.as_bytes(), 0o600);
    }

    pub fn write_broker_json(&self, v: &Value) {
        self.write_config("broker.json", &serde_json::to_string_pretty(v).unwrap());
    }

    /// Starts `occ broker --system --foreground` and waits until its admin socket answers.
    pub fn start(&mut self) {
        self.spawn_broker();
        let pid = self.broker_pid();
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok((true, v)) = admin_call(&json!({"op": "status"})) {
                if v["pid"] == json!(pid) {
                    assert_eq!(v["mode"], "system", "{v}");
                    return;
                }
            }
            self.assert_broker_runs();
            assert!(
                Instant::now() < deadline,
                "the system broker did not answer on {ADMIN_SOCKET}:\n{}",
                self.broker_stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts `occ broker --system --foreground` without waiting for it, under `nohup`: the
    /// broker starts with SIGHUP ignored, as some init scripts start daemons, so every test
    /// also proves that it still reloads on SIGHUP and that approved commands get the default
    /// dispositions (a hung-up command dies of SIGHUP, not of the SIGKILL after the grace).
    pub fn spawn_broker(&mut self) {
        assert!(self.broker.is_none(), "the broker is already running");
        let log = self.broker_log.reopen().unwrap();
        let child = Command::new("/usr/bin/nohup")
            .arg(occ_tests::bin("occ"))
            .args(["broker", "--system", "--foreground"])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start occ broker --system");
        self.broker = Some(child);
    }

    /// Panics, showing its log, if the broker has exited.
    pub fn assert_broker_runs(&mut self) {
        if let Some(st) = self
            .broker
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            panic!("the system broker exited ({st}):\n{}", self.broker_stderr());
        }
    }

    pub fn broker_pid(&self) -> u32 {
        self.broker.as_ref().expect("the broker runs").id()
    }

    /// SIGTERM, then waits for a clean exit (code 0).
    pub fn stop(&mut self) {
        let Some(mut child) = self.broker.take() else {
            return;
        };
        signal(child.id(), "TERM");
        let st = wait_child(&mut child);
        assert_eq!(st.code(), Some(0), "broker exit:\n{}", self.broker_stderr());
    }

    /// SIGKILL: the broker dies wherever it is.
    pub fn crash(&mut self) {
        let Some(mut child) = self.broker.take() else {
            return;
        };
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGHUP: the broker reads its configuration again.
    pub fn hup(&self) {
        signal(self.broker_pid(), "HUP");
    }

    pub fn broker_stderr(&self) -> String {
        std::fs::read_to_string(self.broker_log.path()).unwrap_or_default()
    }

    /// A command run as `u`: a clean environment (HOME, PATH with the shim first, LANG), in
    /// `u`'s home, stdin from /dev/null. No OCC_MODE: the shim and `occ` pick system mode.
    pub fn as_user(&self, u: &User, program: impl AsRef<Path>) -> Command {
        let mut c = Command::new(program.as_ref());
        c.uid(u.uid)
            .gid(u.gid)
            .env_clear()
            .env("HOME", &u.home)
            .env("PATH", format!("{}:/usr/bin:/bin", u.bin().display()))
            .env("LANG", "C")
            .current_dir(&u.home)
            .stdin(Stdio::null());
        c
    }

    /// `sudo ARGS` through `u`'s shim, with `env` added to the clean environment.
    pub fn sudo(&self, u: &User, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.as_user(u, u.shim());
        c.args(args).envs(env.iter().copied());
        c.output().unwrap()
    }

    /// `occ` (the root-owned copy approvers must run) as `u`, not yet started.
    pub fn occ_cmd(&self, u: &User) -> Command {
        self.as_user(u, &self.occ)
    }

    /// `occ ARGS` as `u`.
    pub fn occ(&self, u: &User, args: &[&str]) -> Output {
        self.as_user(u, &self.occ).args(args).output().unwrap()
    }

    /// `occ ARGS` as `u` with `input` on stdin (the approval token).
    pub fn occ_with_stdin(&self, u: &User, args: &[&str], input: &str) -> Output {
        let mut child = self
            .as_user(u, &self.occ)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// `occ ARGS` as root.
    pub fn occ_root(&self, args: &[&str]) -> Output {
        Command::new(occ_tests::bin("occ"))
            .args(args)
            .env_clear()
            .env("HOME", "/root")
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C")
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `occ approve ID` (and `extra`) as the approver; panics unless it succeeds.
    pub fn approve(&self, id: &str, extra: &[&str]) {
        let mut args = vec!["approve", "--yes", id];
        args.extend_from_slice(extra);
        let out = self.occ(&self.approver, &args);
        assert!(
            out.status.success(),
            "occ approve {id}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    /// The pending requests, as the approver lists them.
    pub fn approvals(&self) -> Vec<Value> {
        let out = self.occ(&self.approver, &["approvals", "--json"]);
        assert!(out.status.success(), "occ approvals: {}", text(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .cloned()
            .unwrap()
    }

    /// `occ status --json` as the approver.
    pub fn status(&self) -> Value {
        let out = self.occ(&self.approver, &["status", "--json"]);
        assert!(out.status.success(), "occ status: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `occ audit verify --json` of the system log, as root: panics unless intact.
    pub fn verify_intact(&self, extra: &[&str]) -> Value {
        let mut args = vec!["audit", "verify", "--json", "--log", AUDIT_LOG];
        args.extend_from_slice(extra);
        let out = self.occ_root(&args);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        assert_eq!(
            v["intact"],
            Value::Bool(true),
            "audit verify: {} {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(out.status.success());
        v
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- system broker log ---\n{}", self.broker_stderr());
        }
        if let Some(mut child) = self.broker.take() {
            signal(child.id(), "TERM");
            wait_child(&mut child);
        }
        remove_system_dirs();
        for u in [&self.agent, &self.other, &self.target] {
            let _ = std::fs::remove_dir_all(u.home.join(".openclaw"));
        }
    }
}

/// Sends one admin request to the system broker's admin socket as this (root) process.
pub fn admin_call(body: &Value) -> Result<(bool, Value), String> {
    let s = std::os::unix::net::UnixStream::connect(ADMIN_SOCKET).map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(body).unwrap();
    occ_proto::write_frame(&s, &Frame::Admin { body }, &[]).map_err(|e| e.to_string())?;
    let got =
        occ_proto::read_frame_by(&s, Some(Instant::now() + DEADLINE)).map_err(|e| e.to_string())?;
    match got.frame {
        Frame::AdminReply { ok, body } => Ok((
            ok,
            serde_json::from_slice(&body).map_err(|e| e.to_string())?,
        )),
        other => Err(format!("unexpected {:?}", other.frame_type())),
    }
}

/// The system audit log's events, in order.
pub fn events() -> Vec<Value> {
    std::fs::read_to_string(AUDIT_LOG)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The events of type `event_type`.
pub fn events_of(event_type: &str) -> Vec<Value> {
    events()
        .into_iter()
        .filter(|e| e["event_type"] == event_type)
        .collect()
}

/// Waits for the first event that `matches`, and returns it.
pub fn wait_event(what: &str, matches: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(e) = events().into_iter().find(|e| matches(e)) {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} event in {AUDIT_LOG}: {:?}",
            crate::approval::types(&events())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `done` holds.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes a root-owned file with `mode`, replacing what was there.
pub fn write_root_file(path: &Path, body: &[u8], mode: u32) {
    std::fs::write(path, body).unwrap();
    std::os::unix::fs::chown(path, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The lowercase hex sha256 of a file, by `sha256sum` (an implementation the broker does not
/// share).
pub fn sha256_of(path: &Path) -> String {
    let out = Command::new("/usr/bin/sha256sum")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill -{sig} {pid}");
}

/// Waits for a child that was asked to stop; SIGKILL after [`DEADLINE`].
fn wait_child(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A system broker left running by an earlier, interrupted run of these tests (the same
/// `occ` binary) is stopped. Any other system broker is someone else's (another suite on this
/// host): the test waits for it to go, and fails if it stays.
fn stop_leftover_broker() {
    const FOREIGN_WAIT: Duration = Duration::from_secs(120);
    let ours = std::fs::canonicalize(occ_tests::bin("occ")).unwrap();
    let begun = Instant::now();
    loop {
        let Some(pid) = std::fs::read_to_string(Path::new(RUN_DIR).join("broker.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        else {
            return;
        };
        let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
            return;
        };
        if exe == ours {
            signal(pid, "TERM");
            wait_for("the leftover broker to stop", || {
                !Path::new(&format!("/proc/{pid}")).exists()
            });
            return;
        }
        assert!(
            begun.elapsed() < FOREIGN_WAIT,
            "another system broker (pid {pid}, {}) is running; stop it before these tests",
            exe.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn remove_system_dirs() {
    for d in [CONFIG_DIR, RUN_DIR, STATE_DIR, LOG_DIR, LIBEXEC] {
        match std::fs::remove_dir_all(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("cannot remove {d}: {e}"),
        }
    }
}

/// The shim as `u`'s `~/.openclaw/bin/sudo`, owned by `u`, as the installer puts it.
fn install_shim(u: &User) {
    let bin = u.bin();
    let _ = std::fs::remove_dir_all(u.home.join(".openclaw"));
    std::fs::create_dir_all(&bin).unwrap();
    occ_tests::copy_exe(occ_tests::bin("occ-shim"), u.shim());
    for p in [u.home.join(".openclaw"), bin.clone(), u.shim()] {
        std::os::unix::fs::chown(&p, Some(u.uid), Some(u.gid)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Installs a root-owned copy of `src` at `/usr/local/libexec/occ-test/NAME` (0755).
pub fn install_root_exe(src: impl AsRef<Path>, name: &str) -> PathBuf {
    std::fs::create_dir_all(LIBEXEC).unwrap();
    std::fs::set_permissions(LIBEXEC, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dst = Path::new(LIBEXEC).join(name);
    occ_tests::copy_exe(src, &dst);
    std::os::unix::fs::chown(&dst, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
    dst
}

/// The shim's refusal: exit 1, nothing on stdout, and its last line `sudo: … (occ: CODE)`.
pub fn refused(out: &std::process::Output, code: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.starts_with("sudo: ") && last.ends_with(&format!("(occ: {code})")),
        "want a {code} refusal: {err:?}"
    );
}

/// Runs `program ARGS` as the agent; returns whether it succeeded and its stderr.
pub fn agent_tries(w: &World, program: &str, args: &[&str]) -> (bool, String) {
    let out = w.as_user(&w.agent, program).args(args).output().unwrap();
    (out.status.success(), text(&out.stderr))
}

/// Kills a process the test started (through the broker) when the test ends, however it ends.
pub struct KillOnDrop(pub i64);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

/// Waits until the log holds `n` events of `event_type`; returns them.
pub fn wait_count(event_type: &str, n: usize) -> Vec<Value> {
    wait_for(&format!("{n} {event_type} events"), || {
        events_of(event_type).len() >= n
    });
    let got = events_of(event_type);
    assert_eq!(got.len(), n, "{got:?}");
    got
}
